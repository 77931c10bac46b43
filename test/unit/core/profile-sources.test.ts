// The I/O edge of the profile sources (helper/core/profile-sources.ts) on a temporary etc and
// state dir: what a helper restart keeps, and which file changes call for a reload.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { GateEvent } from '../../../common/events.js';
import type { Paths } from '../../../helper/config.js';
import { PROFILE_RECORDS, ProfileSources } from '../../../helper/core/profile-sources.js';
import { StorageHealth } from '../../../helper/kernel/files.js';
import { mergePolicy } from '../../../helper/policy/merge.js';
import { encodeSignature, generateKeyPair, sign } from '../../../helper/profile/signing.js';

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'tunnelgate-sources-'));
  const paths: Paths = { etc: join(dir, 'etc'), state: join(dir, 'state'), run: join(dir, 'run'), cgroupRoot: 'x' };
  mkdirSync(join(paths.etc, 'profiles.d'), { recursive: true });
  const events: GateEvent[] = [];
  const sink = { emit: (e: GateEvent) => void events.push(e) };
  const file = (name: string) => join(paths.etc, 'profiles.d', name);
  const write = (name: string, version: number, rules = ['ssh'], over: Record<string, unknown> = {}) => {
    const text = `${JSON.stringify({ schema: 'tunnelgate/profile@1', id: 'corp', version, mode: 'enforce', interfaces: ['wg0'], ...over, userPrompts: 'allow', rules: rules.map((id) => ({ id, binary: { path: `/usr/bin/${id}` } })) })}\n`;
    writeFileSync(`${file(name)}.tmp`, text);
    chmodSync(`${file(name)}.tmp`, 0o644);
    renameSync(`${file(name)}.tmp`, file(name));
    return text;
  };
  /** One reload as the helper does it: load, merge, (apply), commit. */
  const cycle = async (s: ProfileSources) => {
    const loaded = await s.load();
    const policy = mergePolicy({ ...loaded, userRules: [], now: new Date() });
    policy.problems.push(...loaded.notes);
    await s.commit(policy);
    return policy;
  };
  const open = () => ProfileSources.open(paths, sink);
  return { dir, paths, events, file, write, cycle, open };
}

const versionsOf = (p: { sources: Array<{ state: string; version?: number }> }) => p.sources.map((s) => `${s.state}:${s.version ?? '-'}`);

describe('ProfileSources across restarts', () => {
  it('keeps enforcing the last good copy when the file is broken at start-up', async () => {
    const t = setup();
    t.write('corp.json', 3, ['ssh', 'git']);
    expect(versionsOf(await t.cycle(await t.open()))).toEqual(['active:3']);
    writeFileSync(t.file('corp.json'), '{"schema": "tunnelgate/profile@1",');
    const p = await t.cycle(await t.open()); // a new helper
    expect(versionsOf(p)).toEqual(['rejected:-', 'active:3']);
    expect(p.rules.map((r) => r.id)).toEqual(['ssh', 'git']);
    expect(p.problems[0]).toMatch(/corp\.json: rejected: invalid JSON at line 1, column 35: .*; the last good copy \(profile corp version 3\) stays in force/);
    expect(t.events).toContainEqual(expect.objectContaining({ type: 'profile.rejected', file: t.file('corp.json') }));
  });

  it('refuses a rollback after a restart, and records a version only once it is in force', async () => {
    const t = setup();
    t.write('corp.json', 7);
    await t.cycle(await t.open());
    const versions = () => JSON.parse(readFileSync(join(t.paths.state, 'profile-versions.json'), 'utf8')) as { profiles: Record<string, { version: number }> };
    expect(versions().profiles.corp?.version).toBe(7);
    t.write('corp.json', 6);
    const s = await t.open();
    const p = await t.cycle(s);
    expect(p.problems[0]).toContain('rollback from version 7 to 6 refused (profile corp)');
    expect(versionsOf(p)).toEqual(['rejected:6', 'active:7']);
    // Loaded but never committed (the apply failed): not recorded.
    t.write('corp.json', 8);
    await s.load();
    expect(versions().profiles.corp?.version).toBe(7);
  });

  it('forgets a deleted file (its rules leave) but not its version', async () => {
    const t = setup();
    t.write('corp.json', 5);
    const s = await t.open();
    await t.cycle(s);
    rmSync(t.file('corp.json'));
    const p = await t.cycle(s);
    expect(p.rules).toEqual([]);
    expect(p.problems).toContain('no profile in force: the tunnel is closed to every program');
    expect(t.events).toContainEqual({ type: 'profile.removed', file: t.file('corp.json'), profileId: 'corp', version: 5 });
    t.write('corp.json', 4);
    expect((await t.cycle(await t.open())).problems[0]).toContain('rollback from version 5 to 4 refused');
  });

  it('requires signatures once trusted-keys/ has a key, and skips hidden temporary files', async () => {
    const t = setup();
    const keys = join(t.paths.etc, 'trusted-keys');
    mkdirSync(keys);
    const pair = generateKeyPair();
    writeFileSync(join(keys, 'it.pub'), pair.publicKeyPem, { mode: 0o644 });
    const text = t.write('corp.json', 1);
    writeFileSync(join(t.paths.etc, 'profiles.d', '.corp.json.ansible-tmp.json'), 'half');
    const s = await t.open();
    let p = await t.cycle(s);
    expect(p.sources).toEqual([
      expect.objectContaining({ state: 'rejected', problems: [expect.stringMatching(/not signed: corp\.json\.sig is missing/), 'nothing from this source is in force'] }),
    ]);
    writeFileSync(`${t.file('corp.json')}.sig`, encodeSignature(sign(Buffer.from(text), pair.privateKeyPem)));
    p = await t.cycle(s);
    expect(versionsOf(p)).toEqual(['active:1']);
    expect(t.events).toContainEqual(expect.objectContaining({ type: 'profile.loaded', profileId: 'corp', version: 1, signedBy: 'it' }));
  });

  it('reports a group-writable profile as not trusted', async () => {
    const t = setup();
    t.write('corp.json', 1);
    chmodSync(t.file('corp.json'), 0o666);
    let p = await t.cycle(await t.open());
    expect(p.sources[0]?.problems[0]).toBe(`${t.file('corp.json')} is writable by others: not trusted (chmod o-w)`);
    // The directory above it, group-writable by an ordinary user's group: every file in it is refused.
    chmodSync(t.file('corp.json'), 0o644);
    chmodSync(join(t.paths.etc, 'profiles.d'), 0o775);
    chownSync(join(t.paths.etc, 'profiles.d'), 0, 4242);
    p = await t.cycle(await t.open());
    expect(p.sources[0]?.problems[0]).toMatch(/profiles\.d is writable by group 4242: not trusted \(chmod g-w; no group but root.s may write what the helper trusts, the admin group neither\)/);
    expect(p.rules).toEqual([]);
  });

  it('rejects a malformed remote.json by field', async () => {
    const t = setup();
    writeFileSync(join(t.paths.etc, 'remote.json'), '{"url":"http://x/corp.json","every":5}');
    const p = await t.cycle(await t.open());
    expect(p.sources).toEqual([
      { file: join(t.paths.etc, 'remote.json'), state: 'rejected', problems: ['every: unknown field (known: url, intervalSeconds, ca)', 'url: must be an https:// URL', 'the previous pull settings stay'] },
    ]);
  });
});

describe('ProfileSources.start: what calls for a reload', () => {
  const waitFor = async (what: string, seen: string[], re: RegExp) => {
    const deadline = Date.now() + 3_000;
    while (!seen.some((w) => re.test(w))) {
      if (Date.now() > deadline) throw new Error(`no reload for ${what}; saw ${JSON.stringify(seen)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    seen.length = 0;
  };

  it('reacts to atomic renames, .sig files, trusted-keys/ appearing later, and remote.json', async () => {
    const t = setup();
    const s = await t.open();
    await t.cycle(s);
    const seen: string[] = [];
    const w = s.start((why) => seen.push(why));
    try {
      t.write('corp.json', 1);
      await waitFor('an atomic rename', seen, /^profiles\.d\/corp\.json$/);
      writeFileSync(`${t.file('corp.json')}.sig`, 'x');
      await waitFor('a .sig file', seen, /^profiles\.d\/corp\.json\.sig$/);
      mkdirSync(join(t.paths.etc, 'trusted-keys'));
      await waitFor('trusted-keys/ created', seen, /^etc\/trusted-keys$/);
      writeFileSync(join(t.paths.etc, 'trusted-keys', 'it.pub'), 'x');
      await waitFor('a key in the new trusted-keys/', seen, /^trusted-keys\/it\.pub$/);
      writeFileSync(join(t.paths.etc, 'remote.json'), '{}');
      await waitFor('remote.json', seen, /^etc\/remote\.json$/);
    } finally {
      w.close();
    }
  });

  it('never releases an interface when its profile stops loading (a key arrives before the .sig), also after a restart', async () => {
    const t = setup();
    t.write('corp.json', 1, ['ssh'], { interfaces: ['corpvpn'] });
    expect((await t.cycle(await t.open())).interfaces).toEqual(['corpvpn']);
    const keys = join(t.paths.etc, 'trusted-keys');
    mkdirSync(keys);
    const pair = generateKeyPair();
    writeFileSync(join(keys, 'it.pub'), pair.publicKeyPem, { mode: 0o644 });
    let p = await t.cycle(await t.open());
    expect(p.rules).toEqual([]);
    expect(p.interfaces).toEqual(['corpvpn', 'wg0']);
    expect(p.problems.join('\n')).toMatch(/degraded: \S*corp.json rejected: not signed.*corpvpn, wg0 stay gated with no profile rules/);
    expect(p.problems.join('\n')).not.toMatch(/closed to every program/);
    // A restart with the last good copy gone too: the state dir remembers.
    rmSync(join(t.paths.state, 'profiles-last-good'), { recursive: true });
    p = await t.cycle(await t.open());
    expect(p.interfaces).toContain('corpvpn');
    // A valid (signed) policy that names another interface releases it.
    const text = t.write('corp.json', 2, ['ssh'], { interfaces: ['wg0'] });
    writeFileSync(`${t.file('corp.json')}.sig`, encodeSignature(sign(Buffer.from(text), pair.privateKeyPem)));
    const s = await t.open();
    p = await t.cycle(s);
    expect(p.interfaces).toEqual(['wg0']);
    expect(JSON.parse(readFileSync(join(t.paths.state, 'gated-names.json'), 'utf8'))).toEqual({ format: 1, interfaces: ['wg0'] });
  });

  it('keeps the interfaces of an expired profile gated', async () => {
    const t = setup();
    t.write('corp.json', 1, ['ssh'], { interfaces: ['corpvpn'], expires: new Date(Date.now() + 3_600_000).toISOString() });
    const s = await t.open();
    expect((await t.cycle(s)).interfaces).toEqual(['corpvpn']);
    const loaded = await s.load();
    const p = mergePolicy({ ...loaded, userRules: [], now: new Date(Date.now() + 7_200_000) });
    expect(p.rules).toEqual([]);
    expect(p.interfaces).toContain('corpvpn');
  });
});

describe('ProfileSources when the state dir cannot be written (issue 9.10)', () => {
  it('the policy stays as loaded (no rejected source), storageHealth names the failure, and the retry records the versions once it can', async () => {
    const t = setup();
    const health = new StorageHealth(10);
    t.write('corp.json', 4);
    const s = await ProfileSources.open(t.paths, { emit: (e: GateEvent) => void t.events.push(e) }, { health });
    writeFileSync(t.paths.state, 'a file where the state directory should be'); // after the start: every write fails
    const p = await t.cycle(s);
    expect(versionsOf(p)).toEqual(['active:4']);
    expect(p.problems.join('\n')).not.toMatch(/cannot record/);
    expect(health.problems()).toEqual([expect.stringMatching(new RegExp(`^cannot write the ${PROFILE_RECORDS} \\(${t.paths.state}\\): the state directory .* cannot be written`))]);
    // A reload meanwhile does not turn the write failure into a rejected source either.
    expect(versionsOf(await t.cycle(s))).toEqual(['active:4']);
    const cleared = new Promise<void>((resolve) => health.onChange(() => health.problems().length === 0 && resolve()));
    rmSync(t.paths.state);
    await cleared;
    const versions = JSON.parse(readFileSync(join(t.paths.state, 'profile-versions.json'), 'utf8')) as { profiles: Record<string, { version: number }> };
    expect(versions.profiles.corp?.version).toBe(4);
    health.close();
  });
});
