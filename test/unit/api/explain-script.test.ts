// `explain /path/script.py` where an interpreter rule names the script: say which rule
// admits it when run by which interpreter (the path's own verdict is not the script's).
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Caller } from '../../../common/api.js';
import { explainHandlers, scriptNotes } from '../../../helper/api/handlers/explain.js';
import { policyOf, profile } from '../policy/fixtures.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tg-explain-script-'));
chmodSync(tmp, 0o755);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const me: Caller = { pid: 100, uid: 0, gid: 0, admin: true };
const script = path.join(tmp, 'deploy.py');
writeFileSync(script, '#!/usr/bin/python3\nprint("hi")\n');
chmodSync(script, 0o755);

const policy = policyOf([
  profile({
    rules: [
      { id: 'deploy', binary: { path: '/usr/bin/python3*', script } },
      { id: 'no-perl-x', action: 'deny', binary: { path: '/usr/bin/perl', script } },
      { id: 'other', binary: { path: '/usr/bin/python3', script: '/opt/other.py' } },
    ],
  }),
]);
const deps = {
  current: () => policy,
  gate: { verdictFor: () => Promise.reject(new Error('n/a')), ruleOf: async () => undefined },
  procs: { process: () => Promise.reject(new Error('n/a')), sha256: async () => 'f'.repeat(64) },
  rules: { findDeny: () => undefined, views: () => [] },
  packages: async () => ({ packages: [], notes: [] }),
};

describe('explain on a script path', () => {
  it('names the interpreter rules that admit or refuse it, and the #! interpreter', async () => {
    const r = await explainHandlers(deps as never).explain(me, { path: script });
    expect(r.notes).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`is a script: rule corp-base:deploy admits it when run by /usr/bin/python3\\* \\(\`/usr/bin/python3… ${script}\``)),
        expect.stringMatching(/rule corp-base:no-perl-x refuses it when run by \/usr\/bin\/perl/),
        `run directly, ${script} runs as /usr/bin/python3 (its #! line): the gate judges that process as /usr/bin/python3 with this script`,
      ]),
    );
    expect(r.notes.join('\n')).not.toContain('corp-base:other');
  });

  it('a script others may write: the rule would not admit it, and says why', async () => {
    chmodSync(script, 0o666);
    try {
      const r = await explainHandlers(deps as never).explain(me, { path: script });
      expect(r.notes).toContainEqual(expect.stringMatching(/^but the rule would not admit it now: .*deploy\.py is .*writable/));
    } finally {
      chmodSync(script, 0o755);
    }
  });

  it('a path no script rule names: no script notes (pure)', () => {
    expect(scriptNotes(policy, '/usr/bin/curl')).toEqual([]);
  });
});
