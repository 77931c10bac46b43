// The CLI in-process (helper/cli/program.ts main): `profile validate --json`, `profile verify`,
// and every `--json` command printing JSON when the helper is down.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildProgram, main } from '../../../helper/cli/program.js';
import { encodeSignature, generateKeyPair, sign } from '../../../helper/profile/signing.js';
import { commandTree } from '../../../packaging/docs.js';
import { exampleJson } from '../profile/example.js';

let dir: string;
let out: string;
let err: string;

/** Runs `tunnelgate ARGS…`: its exit code, stdout and stderr. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  out = '';
  err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    const code = await main(['node', 'tunnelgate', ...args]);
    return { code, stdout: out, stderr: err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

const json = (s: string) => JSON.parse(s) as Record<string, unknown> & { error?: { kind: string; message: string } };

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tg-cli-'));
  chmodSync(dir, 0o755);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function writeProfile(name: string, doc: unknown, mode = 0o644): string {
  const file = path.join(dir, name);
  writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2));
  chmodSync(file, mode);
  return file;
}

describe('profile validate --json', () => {
  it('one document with every problem, exit 1; ok with the profile, exit 0', async () => {
    const bad = exampleJson();
    bad.version = 0;
    bad.mode = 'block';
    (bad.rules[0] as { binary: { path: string } }).binary.path = 'relative';
    const r = await cli('profile', 'validate', writeProfile('bad.json', bad), '--json');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('');
    const doc = json(r.stdout) as unknown as { ok: boolean; problems: Array<{ path: string }> };
    expect(doc.ok).toBe(false);
    expect(doc.problems.map((p) => p.path).sort()).toEqual(['mode', 'rules[0].binary.path', 'version']);

    const good = await cli('profile', 'validate', writeProfile('good.json', exampleJson()), '--json');
    expect(good.code).toBe(0);
    expect(json(good.stdout)).toMatchObject({ ok: true, problems: [], profile: { id: 'corp-base', version: 7, rules: 6 } });
  });

  it('a file it cannot read: still one JSON document, exit 1', async () => {
    const r = await cli('profile', 'validate', path.join(dir, 'absent.json'), '--json');
    expect(r.code).toBe(1);
    expect(json(r.stdout)).toMatchObject({ ok: false, problems: [{ path: '', message: expect.stringMatching(/^cannot read: ENOENT/) }] });
  });
});

describe('profile verify', () => {
  let etc: string;
  let state: string;
  let profilesD: string;
  const key = generateKeyPair();
  const other = generateKeyPair();

  beforeEach(() => {
    etc = path.join(dir, 'etc');
    state = path.join(dir, 'state');
    profilesD = path.join(etc, 'profiles.d');
    mkdirSync(path.join(etc, 'trusted-keys'), { recursive: true });
    mkdirSync(profilesD, { recursive: true });
    mkdirSync(state, { mode: 0o700 });
  });

  /** NAME in ETC/profiles.d, where the helper reads it. */
  const installed = (name: string, doc: unknown = exampleJson(), mode = 0o644) => writeProfile(path.join('etc', 'profiles.d', name), doc, mode);
  const withKey = () => writeFileSync(path.join(etc, 'trusted-keys', 'corp.pub'), key.publicKeyPem);
  const signed = (name: string, by = key.privateKeyPem) => {
    const file = installed(name);
    writeFileSync(`${file}.sig`, encodeSignature(sign(Buffer.from(JSON.stringify(exampleJson(), null, 2)), by)));
    return file;
  };
  const verify = (file: string, ...more: string[]) => cli('profile', 'verify', file, '--etc', etc, '--state', state, ...more);

  it('signed by a trusted key, trusted path, no rollback: exit 0', async () => {
    withKey();
    const r = await verify(signed('corp.json'), '--json');
    expect(r.code).toBe(0);
    expect(json(r.stdout)).toMatchObject({
      verdict: 'accept',
      ok: true,
      profile: { id: 'corp-base', version: 7 },
      location: { loaded: true },
      ownership: { checked: true, ok: true },
      signature: { required: true, state: 'good', key: 'corp' },
      version: { checked: true },
      problems: [],
    });
    const text = await verify(path.join(profilesD, 'corp.json'));
    expect(text.stdout).toMatch(/corp\.json: the helper will accept it \(profile corp-base version 7, 6 rules\)\n {2}location: {8}ok/);
    expect(text.stdout).toContain('signature:       good, by corp.pub in');
  });

  it('refused: a signature by another key, a missing signature, a changed byte', async () => {
    withKey();
    const byOther = await verify(signed('other.json', other.privateKeyPem), '--json');
    expect(byOther.code).toBe(1);
    expect(json(byOther.stdout)).toMatchObject({ verdict: 'refuse', ok: false, signature: { state: 'bad', detail: expect.stringMatching(/does not match any trusted key/) } });

    const unsigned = await verify(installed('unsigned.json'), '--json');
    expect(unsigned.code).toBe(1);
    expect(json(unsigned.stdout)).toMatchObject({ ok: false, signature: { state: 'missing' }, problems: [expect.stringMatching(/^not signed: unsigned\.json\.sig is missing/)] });

    const file = signed('changed.json');
    writeFileSync(file, JSON.stringify(exampleJson(), null, 2).replace('"version": 7', '"version": 8'));
    const changed = await verify(file);
    expect(changed.code).toBe(1);
    expect(changed.stdout).toMatch(/the helper will REFUSE it/);
    expect(changed.stdout).toMatch(/signature: {7}BAD/);
  });

  it('no trusted key: "not signed (not required …)", never BAD, even with a .sig it cannot read or check', async () => {
    const r = await verify(installed('plain.json'), '--json');
    expect(r.code).toBe(0);
    expect(json(r.stdout)).toMatchObject({ verdict: 'accept', ok: true, signature: { required: false, state: 'not-required', present: false } });
    const text = await verify(path.join(profilesD, 'plain.json'));
    expect(text.stdout).toContain('signature:       not signed (not required: no trusted keys in');
    expect(text.stdout).not.toMatch(/BAD/);
    // A .sig others may write, or one by an unknown key: the helper does not look at it.
    const file = installed('with-sig.json');
    writeFileSync(`${file}.sig`, encodeSignature(sign(Buffer.from('other bytes'), other.privateKeyPem)));
    chmodSync(`${file}.sig`, 0o666);
    const withSig = await verify(file, '--json');
    expect(withSig.code).toBe(0);
    expect(json(withSig.stdout)).toMatchObject({ verdict: 'accept', signature: { state: 'not-required', present: true }, ownership: { ok: true }, problems: [] });
    expect((await verify(file)).stdout).toMatch(/with-sig\.json\.sig present but not checked \(not required: no trusted keys/);
  });

  it('a file others may write is refused, as the helper refuses it, and each problem is said once', async () => {
    const r = await verify(installed('open.json', exampleJson(), 0o666), '--json');
    expect(r.code).toBe(1);
    const doc = json(r.stdout) as unknown as { ownership: { problems: string[] }; problems: string[] };
    expect(doc).toMatchObject({ verdict: 'refuse', ok: false, ownership: { ok: false, problems: [expect.stringMatching(/open\.json is writable by others/)] } });
    expect(doc.problems).toEqual([...new Set(doc.problems)]);
    // A directory others may write: FILE and FILE.sig are refused for the same reason; said once.
    withKey();
    const file = signed('corp.json');
    chmodSync(profilesD, 0o777);
    const d = await verify(file, '--json');
    const dd = json(d.stdout) as unknown as { ownership: { problems: string[] }; problems: string[] };
    expect(dd.ownership.problems).toEqual([expect.stringMatching(/profiles\.d is writable by others/)]);
    expect(dd.problems.filter((p) => /profiles\.d is writable by others/.test(p))).toHaveLength(1);
    const text = (await verify(file)).stdout;
    expect(text.match(/profiles\.d is writable by others/g)).toHaveLength(1);
  });

  it('a lower version than the one in force is a rollback', async () => {
    writeFileSync(path.join(state, 'profile-versions.json'), JSON.stringify({ format: 1, profiles: { 'corp-base': { version: 9, sha256: 'x', since: '2026-01-01T00:00:00Z' } } }));
    const r = await verify(installed('old.json'), '--json');
    expect(r.code).toBe(1);
    expect(json(r.stdout)).toMatchObject({ ok: false, version: { checked: true, inForce: 9 }, problems: [expect.stringMatching(/rollback from version 9 to 7 refused/)] });
  });

  it('a file the helper never reads: outside profiles.d, a name it skips, a configuration dir that does not exist: not "accept"', async () => {
    const outside = writeProfile('draft.json', exampleJson());
    const r = await verify(outside, '--json');
    expect(r.code).toBe(1);
    expect(json(r.stdout)).toMatchObject({ verdict: 'not-loaded', ok: false, location: { loaded: false, detail: expect.stringMatching(/is not in .*profiles\.d: the helper loads only the \*\.json files there/) } });
    expect((await verify(outside)).stdout).toMatch(/draft\.json: the helper will NOT LOAD it/);

    for (const name of ['corp.json.bak', '.corp.json']) {
      const skipped = await verify(installed(name), '--json');
      expect(skipped.code, name).toBe(1);
      expect(json(skipped.stdout), name).toMatchObject({ verdict: 'not-loaded', location: { loaded: false, detail: expect.stringMatching(/loads only names ending in \.json/) } });
    }

    const noEtc = await cli('profile', 'verify', installed('corp.json'), '--etc', path.join(dir, 'no-such-etc'), '--state', state, '--json');
    expect(noEtc.code).toBe(1);
    expect(json(noEtc.stdout)).toMatchObject({ verdict: 'not-loaded', location: { loaded: false, detail: expect.stringMatching(/no-such-etc does not exist/) } });
  });

  it('a file that does not exist: ownership not checked (never ok), refused', async () => {
    const r = await verify(path.join(profilesD, 'absent.json'), '--json');
    expect(r.code).toBe(1);
    expect(json(r.stdout)).toMatchObject({ verdict: 'refuse', ok: false, ownership: { checked: false, ok: false }, problems: [expect.stringMatching(/absent\.json does not exist/)] });
    expect((await verify(path.join(profilesD, 'absent.json'))).stdout).toMatch(/owner and modes: not checked \(no such file\)/);
  });
});

describe('--json when the helper is down', () => {
  /** A sample value for each positional argument. */
  const SAMPLE: Record<string, string> = { file: '', target: '/usr/bin/curl', path: '/usr/bin/curl', id: '0123456789abcdef', decision: 'allow-once' };

  it('every command with --json prints one JSON document on stdout, nothing on stderr, and exits non-zero', async () => {
    const file = writeProfile('p.json', exampleJson());
    const withJson = commandTree(buildProgram()).filter((t) => t.cmd.options.some((o) => o.long === '--json'));
    expect(withJson.map((t) => t.path.join(' ')).sort()).toEqual(
      ['allow', 'answer', 'audit', 'decisions', 'events', 'explain', 'list', 'profile keygen', 'profile sign', 'profile test', 'profile validate', 'profile verify', 'prompts', 'revoke', 'status'].sort(),
    );
    const online = withJson.filter((t) => t.cmd.options.some((o) => o.long === '--run'));
    for (const t of online) {
      const args = t.cmd.registeredArguments.map((a) => (a.name() === 'file' ? file : (SAMPLE[a.name()] ?? 'x')));
      for (const extra of t.path[0] === 'events' ? [[], ['--follow']] : [[]]) {
        const r = await cli(...t.path, ...args, ...extra, '--run', path.join(dir, 'no-helper'), '--json');
        const what = `tunnelgate ${t.path.join(' ')} ${extra.join(' ')}`;
        expect(r.code, what).not.toBe(0);
        expect(r.stderr, what).toBe('');
        const doc = json(r.stdout);
        if (t.path[0] === 'status') expect(doc, what).toMatchObject({ state: 'down' });
        else expect(doc.error, what).toMatchObject({ kind: 'helper-unavailable', message: expect.stringContaining('no-helper') });
      }
    }
  });

  it('a usage error found by the command: a JSON error too, exit 2', async () => {
    const r = await cli('answer', 'not-an-id', 'allow-once', '--json', '--run', path.join(dir, 'no-helper'));
    expect(r.code).toBe(2);
    expect(json(r.stdout).error).toMatchObject({ kind: 'usage', message: 'invalid prompt id "not-an-id"' });
  });

  it('without --json: the text message on stderr, as before', async () => {
    const r = await cli('list', '--run', path.join(dir, 'no-helper'));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^tunnelgate: .*no-helper/);
  });
});

describe('explain PID', () => {
  it('pid 1 (init) is a PID the helper is asked about; 0, -1, +1 and a huge number are usage errors', async () => {
    const noHelper = path.join(dir, 'no-helper');
    const one = await cli('explain', '1', '--json', '--run', noHelper);
    expect(one.code).toBe(1);
    expect(json(one.stdout).error).toMatchObject({ kind: 'helper-unavailable' });
    for (const bad of ['0', '-1', '+1', '99999999999']) {
      const r = await cli('explain', bad, '--json', '--run', noHelper);
      expect(r.code, bad).toBe(2);
      expect(json(r.stdout).error, bad).toMatchObject({ kind: 'usage', message: expect.stringContaining(`invalid PID "${bad}"`) });
    }
  });
});

describe('every command with output for scripts takes --json', () => {
  it('all but the helper itself and run (which execs CMD) have --json', () => {
    const tree = commandTree(buildProgram()).filter((t) => t.cmd.commands.length === 0);
    const without = tree.filter((t) => !t.cmd.options.some((o) => o.long === '--json')).map((t) => t.path.join(' '));
    expect(without.sort()).toEqual(['helper', 'run']);
  });

  it('profile keygen --json: the paths written, one document; an existing pair: a JSON error, exit 1', async () => {
    const out = path.join(dir, 'keys');
    const r = await cli('profile', 'keygen', '--out', out, '--name', 'corp', '--json');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(json(r.stdout)).toEqual({ privateKey: path.join(out, 'corp.key'), publicKey: path.join(out, 'corp.pub') });
    const again = await cli('profile', 'keygen', '--out', out, '--name', 'corp', '--json');
    expect(again.code).toBe(1);
    expect(again.stderr).toBe('');
    expect(json(again.stdout).error).toMatchObject({ kind: 'failure', message: expect.stringMatching(/already exists/) });
  });

  it('profile sign --json: what was signed; an invalid profile: a JSON error with every problem, no .sig', async () => {
    const keys = path.join(dir, 'keys');
    await cli('profile', 'keygen', '--out', keys, '--name', 'corp');
    const file = writeProfile('p.json', exampleJson());
    const r = await cli('profile', 'sign', file, '--key', path.join(keys, 'corp.key'), '--json');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(json(r.stdout)).toEqual({ file, signature: `${file}.sig`, profile: { id: 'corp-base', version: 7 } });

    const bad = exampleJson();
    bad.version = 0;
    bad.mode = 'block';
    const badFile = writeProfile('bad.json', bad);
    const refused = await cli('profile', 'sign', badFile, '--key', path.join(keys, 'corp.key'), '--json');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe('');
    const err = json(refused.stdout).error as unknown as { kind: string; problems: string[] };
    expect(err.kind).toBe('invalid-profile');
    expect(err.problems).toHaveLength(2);
    expect(existsSync(`${badFile}.sig`)).toBe(false);
    // Without --json: the problems on stderr, as before.
    const text = await cli('profile', 'sign', badFile, '--key', path.join(keys, 'corp.key'));
    expect(text.code).toBe(1);
    expect(text.stderr).toMatch(/bad\.json: not signed: fix the problems first/);
  });
});
