// The CLI shows a hostile program's text escaped, in a lab with a real wireguard-go tunnel
// and the real helper. A copy of curl whose file name and arguments carry a terminal escape
// sequence (ESC[2J: clear the screen), an 8-bit CSI and bidi overrides and isolates tries the
// tunnel and is refused; `tunnelgate prompts`, `events`, `audit` and `explain` then print its
// path and argv with every such character written out (\u001b …), never raw; and so do the
// logs an admin reads (audit.log, the helper's output, decisions.json).
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditReport } from '../../common/audit.js';
import type { PromptView } from '../../common/prompts.js';
import { createLab } from '../lab/lab.js';
import type { Lab } from '../lab/lab.js';
import { startHelper } from '../lab/helper-proc.js';
import type { HelperHandle } from '../lab/helper-proc.js';

const CURL = realpathSync('/usr/bin/curl');
/** A user made up by this test. */
const MALLORY = 4351;
/** What a terminal or the bidi algorithm would act on; the output's own line breaks aside. */
// eslint-disable-next-line no-control-regex -- the point of the test
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const NAME = 'evil\u001b[2J\u202egpj.sh';
const NAME_SHOWN = 'evil\\u001b[2J\\u202egpj.sh';
const AGENT = '\u001b[2J\u001b]0;pwned\u0007\u009b31m\u2066x\u2069\u200f';
const AGENT_SHOWN = '\\u001b[2J\\u001b]0;pwned\\u0007\\u009b31m\\u2066x\\u2069\\u200f';

let lab: Lab;
let helper: HelperHandle;
let tmp: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** `tunnelgate ARGS…` as root: its stdout, checked to hold no raw control or bidi character. */
async function text(args: string[], exitCode = 0): Promise<string> {
  const r = await helper.cli(args);
  expect({ args, exitCode: r.exitCode, stderr: String(r.stderr) }).toEqual({ args, exitCode, stderr: '' });
  const out = String(r.stdout);
  expect(out).not.toMatch(RAW);
  return out;
}

beforeAll(async () => {
  lab = await createLab();
  tmp = mkdtempSync('/tmp/tg-escapes-');
  chmodSync(tmp, 0o755);
  helper = await startHelper(lab, {
    profiles: {
      corp: { schema: 'tunnelgate/profile@1', id: 'corp', version: 1, mode: 'enforce', interfaces: [lab.wsIface], userPrompts: 'allow', rules: [] },
    },
  });
}, 120_000);

afterAll(async () => {
  await helper?.cleanup();
  await lab?.destroy();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('escapes in CLI output', () => {
  it('prompts, events, audit and explain show a refused program\'s path and argv escaped, never raw', async () => {
    const bin = path.join(tmp, NAME);
    const binShown = path.join(tmp, NAME_SHOWN);
    copyFileSync(CURL, bin);
    chmodSync(bin, 0o755);
    const args = ['-s', '-o', '/dev/null', '-A', AGENT, '--connect-timeout', '20', '-m', '25', lab.urls.corpV4];
    const curl = lab.spawn('ws', 'setpriv', [`--reuid=${MALLORY}`, `--regid=${MALLORY}`, '--clear-groups', bin, ...args], { reject: false });

    // Refused: its dropped SYNs become a prompt. --json is the same data, escaped too.
    const prompt = await waitFor('the prompt', async () => {
      const r = await helper.cli(['prompts', '--json']);
      expect(String(r.stdout)).not.toMatch(RAW);
      return (JSON.parse(String(r.stdout)) as PromptView[]).find((p) => p.exe === bin);
    });
    expect(prompt.cmdline).toEqual([bin, ...args]);

    const prompts = await text(['prompts']);
    expect(prompts).toContain(`(${binShown}) of uid ${MALLORY}`);
    expect(prompts).toContain(`'${AGENT_SHOWN}'`);

    const events = await text(['events']);
    expect(events).toContain(`prompt.opened id=${prompt.id}`);
    expect(events).toContain(`exe=${binShown}`);

    const pid = prompt.pids[0];
    expect(pid).toBe(curl.pid);
    const explain = await text(['explain', String(pid)], 1);
    expect(explain).toMatch(/^deny/);
    expect(explain).toContain(`program: ${binShown} (pid ${pid})`);
    const byPath = await text(['explain', bin], 1);
    expect(byPath).toContain(`program: ${binShown}`);

    await waitFor('the audit record', async () => {
      const r = await helper.cli(['audit', '--json']);
      return (JSON.parse(String(r.stdout)) as AuditReport).records.find((x) => x.exe === bin);
    });
    const audit = await text(['audit']);
    expect(audit).toContain(`${binShown} -> ${lab.corpV4}:${lab.ports.http}/tcp`);

    // Done: deny it for good (a decision in decisions.json naming the path), and the program gives up.
    expect((await helper.cli(['answer', prompt.id, 'deny-always'])).exitCode).toBe(0);
    await curl;

    // The logs an admin reads hold the same text escaped at the writer: audit.log (JSON
    // lines, the exact value back through JSON.parse), the helper's own output (its event
    // lines and messages on stderr), decisions.json.
    const auditLog = readFileSync(path.join(helper.state, 'audit.log'), 'utf8');
    const decisionsJson = readFileSync(path.join(helper.state, 'decisions.json'), 'utf8');
    for (const [what, body] of [['audit.log', auditLog], ['helper output', helper.output()], ['decisions.json', decisionsJson]] as const) {
      expect(body, what).not.toMatch(RAW);
    }
    // (The helper's output holds events only where no journald takes them.)
    expect(auditLog).toContain(NAME_SHOWN);
    expect(decisionsJson).toContain(NAME_SHOWN);
    const lines = auditLog.trimEnd().split('\n').map((l) => JSON.parse(l) as { type: string; exe?: string; attempt?: { exe?: string } });
    expect(lines.some((e) => e.exe === bin || e.attempt?.exe === bin)).toBe(true);
    const decisions = JSON.parse(decisionsJson) as { denies: Array<{ path: string }> };
    expect(decisions.denies.map((d) => d.path)).toContain(bin);
  }, 90_000);
});
