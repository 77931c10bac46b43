import { describe, expect, it } from 'vitest';
import { generateKeyPair, sign } from '../../../helper/profile/signing.js';
import type { Candidate, GoodCopy, KeyState, SelectInput, VersionRecord } from '../../../helper/profile/sources.js';
import { MAX_PROFILE_BYTES, REMOTE_KEY, examine, selectSources, sha256Of } from '../../../helper/profile/sources.js';
import { NOW } from './example.js';

const DIR = '/etc/tunnelgate/profiles.d';
const KEYDIR = '/etc/tunnelgate/trusted-keys';

function profileBytes(id: string, version: number, ruleIds: string[] = ['ssh'], extra: Record<string, unknown> = {}): Buffer {
  const p = {
    schema: 'tunnelgate/profile@1',
    id,
    version,
    mode: 'enforce',
    interfaces: ['wg0'],
    userPrompts: 'allow',
    rules: ruleIds.map((r) => ({ id: r, binary: { path: `/usr/bin/${r}` } })),
    ...extra,
  };
  return Buffer.from(`${JSON.stringify(p, null, 2)}\n`);
}

const noKeys: KeyState = { dir: KEYDIR, keys: [], problems: [], configured: false };
const pair = generateKeyPair();
const other = generateKeyPair();
const withKeys: KeyState = { dir: KEYDIR, keys: [{ name: 'corp', pem: pair.publicKeyPem }], problems: [], configured: true };

function cand(name: string, bytes: Buffer | undefined, opts: Partial<Candidate> = {}): Candidate {
  return { key: `profiles.d/${name}`, file: `${DIR}/${name}`, ...(bytes ? { bytes } : {}), requireSignature: false, ...opts };
}

function good(name: string, bytes: Buffer, id: string, version: number, rules: number, sig?: Buffer): GoodCopy {
  return { key: `profiles.d/${name}`, file: `${DIR}/${name}`, bytes, ...(sig ? { sig } : {}), profileId: id, version, rules, sha256: sha256Of(bytes), savedAt: NOW.toISOString() };
}

function select(partial: Partial<SelectInput> & { candidates: Candidate[] }) {
  return selectSources({ lastGood: new Map(), versions: new Map(), keys: noKeys, now: NOW, ...partial });
}

const versions = (entries: Record<string, number>): Map<string, VersionRecord> =>
  new Map(Object.entries(entries).map(([id, version]) => [id, { version, sha256: 'x', since: NOW.toISOString() }]));

describe('selectSources: signatures', () => {
  const bytes = profileBytes('corp', 3);

  it('accepts unsigned profiles where no trusted key is configured', () => {
    const s = select({ candidates: [cand('corp.json', bytes)] });
    expect(s.profiles.map((p) => p.profile.id)).toEqual(['corp']);
    expect(s.rejected).toEqual([]);
    expect(s.accepted.get('profiles.d/corp.json')?.version).toBe(3);
  });

  it('accepts a profile signed by a trusted key and says which key', () => {
    const s = select({ keys: withKeys, candidates: [cand('corp.json', bytes, { sig: sign(bytes, pair.privateKeyPem) })] });
    expect(s.rejected).toEqual([]);
    expect(s.accepted.get('profiles.d/corp.json')?.signedBy).toBe('corp');
  });

  it('rejects a missing, foreign or tampered signature, naming the file and why', () => {
    const tampered = Buffer.from(bytes);
    tampered[tampered.indexOf('"corp"') + 1] = 'C'.charCodeAt(0);
    const cases: Array<[Candidate, RegExp]> = [
      [cand('a.json', bytes), /not signed: a\.json\.sig is missing, and trusted keys are configured in \/etc\/tunnelgate\/trusted-keys/],
      [cand('b.json', bytes, { sig: sign(bytes, other.privateKeyPem) }), /bad signature \(b\.json\.sig\): signature does not match any trusted key \(tried corp\)/],
      [cand('c.json', tampered, { sig: sign(bytes, pair.privateKeyPem) }), /bad signature \(c\.json\.sig\)/],
      [cand('d.json', bytes, { sig: Buffer.from('garbage\n') }), /bad signature \(d\.json\.sig\): not a signature/],
      [cand('e.json', bytes, { sigError: 'EACCES' }), /cannot read the signature e\.json\.sig: EACCES/],
    ];
    for (const [c, re] of cases) {
      const s = select({ keys: withKeys, candidates: [c] });
      expect(s.profiles, c.file).toEqual([]);
      expect(s.rejected).toHaveLength(1);
      expect(s.rejected[0]?.file).toBe(c.file);
      expect(s.rejected[0]?.state).toBe('rejected');
      expect(s.rejected[0]?.problems.join('\n')).toMatch(re);
    }
  });

  it('fails closed when trusted-keys/ holds only unusable keys, and says so', () => {
    const broken: KeyState = { dir: KEYDIR, keys: [], problems: [`${KEYDIR}/old.pub: not a PEM public key`], configured: true };
    const s = select({ keys: broken, candidates: [cand('corp.json', bytes, { sig: sign(bytes, pair.privateKeyPem) })] });
    expect(s.profiles).toEqual([]);
    const keyStatus = s.rejected.find((r) => r.file === KEYDIR);
    expect(keyStatus?.problems).toEqual([`${KEYDIR}/old.pub: not a PEM public key`, expect.stringMatching(/none is usable.*fail closed/)]);
    expect(s.rejected.find((r) => r.file.endsWith('corp.json'))?.problems[0]).toMatch(/no usable trusted key in .* \(fail closed\)/);
  });

  it('reports key problems next to good keys without failing the profiles', () => {
    const mixed: KeyState = { ...withKeys, problems: [`${KEYDIR}/x.pub: writable by group or others; not trusted`] };
    const s = select({ keys: mixed, candidates: [cand('corp.json', bytes, { sig: sign(bytes, pair.privateKeyPem) })] });
    expect(s.profiles).toHaveLength(1);
    expect(s.rejected).toEqual([{ file: KEYDIR, state: 'rejected', problems: [`${KEYDIR}/x.pub: writable by group or others; not trusted`] }]);
  });

  it('always requires a signature for a pulled profile, and refuses it clearly without trusted keys', () => {
    const remote: Candidate = { key: REMOTE_KEY, file: 'https://corp.example/p.json', bytes, requireSignature: true };
    const s = select({ candidates: [remote] });
    expect(s.profiles).toEqual([]);
    expect(s.rejected[0]?.problems[0]).toMatch(/a pulled profile must be signed by a trusted key, and \/etc\/tunnelgate\/trusted-keys holds none: refusing to use it/);
    expect(s.rejected[0]?.problems[0]).not.toContain('profiles.d');
    const signed = select({ keys: withKeys, candidates: [{ ...remote, sig: sign(bytes, pair.privateKeyPem) }] });
    expect(signed.profiles).toHaveLength(1);
    const unsigned = select({ keys: withKeys, candidates: [remote] });
    expect(unsigned.rejected[0]?.problems[0]).toMatch(/not signed: https:\/\/corp\.example\/p\.json\.sig is missing/);
  });
});

describe('selectSources: bad input keeps the last good copy', () => {
  const v7 = profileBytes('corp', 7, ['ssh', 'git']);
  const last = new Map([['profiles.d/corp.json', good('corp.json', v7, 'corp', 7, 2)]]);

  it.each([
    ['malformed JSON', cand('corp.json', Buffer.from('{"schema": "tunnelgate/profile@1", '))],
    ['an unknown field', cand('corp.json', profileBytes('corp', 8, ['ssh'], { mdoe: 'audit' }))],
    ['an unreadable file', cand('corp.json', undefined, { readError: 'cannot read: EACCES: permission denied' })],
    ['invalid UTF-8', cand('corp.json', Buffer.concat([Buffer.from('{"id":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]))],
    ['an oversized file', cand('corp.json', Buffer.alloc(MAX_PROFILE_BYTES + 1, 0x20))],
  ])('%s: rejected, and version 7 stays in force', (_what, c) => {
    const s = select({ candidates: [c], lastGood: last, versions: versions({ corp: 7 }) });
    expect(s.profiles).toEqual([{ file: `${DIR}/corp.json`, profile: expect.objectContaining({ id: 'corp', version: 7 }) }]);
    expect(s.accepted.size).toBe(0);
    expect(s.rejected).toHaveLength(1);
    expect(s.rejected[0]?.file).toBe(`${DIR}/corp.json`);
    expect(s.rejected[0]?.problems.at(-1)).toBe('the last good copy (profile corp version 7) stays in force');
  });

  it('a file rejected on first sight has nothing in force, and says so', () => {
    const s = select({ candidates: [cand('new.json', Buffer.from('nope'))] });
    expect(s.profiles).toEqual([]);
    expect(s.rejected[0]?.problems.at(-1)).toBe('nothing from this source is in force');
  });

  it('a last good copy is checked again: signed copies need a trusted key still', () => {
    const sig = sign(v7, pair.privateKeyPem);
    const signedLast = new Map([['profiles.d/corp.json', good('corp.json', v7, 'corp', 7, 2, sig)]]);
    const bad = cand('corp.json', Buffer.from('{'));
    expect(select({ keys: withKeys, candidates: [bad], lastGood: signedLast }).profiles).toHaveLength(1);
    const rotated: KeyState = { ...withKeys, keys: [{ name: 'new', pem: other.publicKeyPem }] };
    const s = select({ keys: rotated, candidates: [bad], lastGood: signedLast });
    expect(s.profiles).toEqual([]);
    expect(s.rejected[0]?.problems.at(-1)).toMatch(/nothing from this source is in force: its last good copy \(version 7\) no longer holds: bad signature/);
  });

  it('a pending source (first pull in flight) keeps its last good copy without a complaint', () => {
    const remoteGood: GoodCopy = { ...good('x', v7, 'corp', 7, 2, sign(v7, pair.privateKeyPem)), key: REMOTE_KEY, file: 'https://corp.example/p.json' };
    const s = select({
      keys: withKeys,
      candidates: [{ key: REMOTE_KEY, file: 'https://corp.example/p.json', requireSignature: true, pending: true }],
      lastGood: new Map([[REMOTE_KEY, remoteGood]]),
    });
    expect(s.profiles).toHaveLength(1);
    expect(s.rejected).toEqual([]);
    expect(s.present.has(REMOTE_KEY)).toBe(true);
  });

  it('a deleted file is gone: no fallback, and not present (its copy is dropped on commit)', () => {
    const s = select({ candidates: [], lastGood: last });
    expect(s.profiles).toEqual([]);
    expect(s.present.size).toBe(0);
  });

  it('does not fall back to a copy whose profile id now comes from another file', () => {
    const moved = cand('corp-base.json', profileBytes('corp', 8));
    const s = select({ candidates: [cand('corp.json', Buffer.from('{')), moved], lastGood: last, versions: versions({ corp: 7 }) });
    expect(s.profiles.map((p) => [p.file, p.profile.version])).toEqual([[`${DIR}/corp-base.json`, 8]]);
    expect(s.rejected[0]?.problems.at(-1)).toBe('nothing from this source is in force: profile corp now comes from another source');
  });
});

describe('selectSources: rollback protection', () => {
  it('refuses a lower version than the one in force for the same id', () => {
    const s = select({ candidates: [cand('corp.json', profileBytes('corp', 6))], versions: versions({ corp: 7 }) });
    expect(s.profiles).toEqual([]);
    expect(s.rejected[0]).toMatchObject({ file: `${DIR}/corp.json`, profileId: 'corp', version: 6, state: 'rejected' });
    expect(s.rejected[0]?.problems[0]).toBe('rollback from version 7 to 6 refused (profile corp); publish version 7 or higher');
  });

  it('keeps the in-force copy during a rollback attempt', () => {
    const v7 = profileBytes('corp', 7);
    const s = select({
      candidates: [cand('corp.json', profileBytes('corp', 6))],
      versions: versions({ corp: 7 }),
      lastGood: new Map([['profiles.d/corp.json', good('corp.json', v7, 'corp', 7, 1)]]),
    });
    expect(s.profiles.map((p) => p.profile.version)).toEqual([7]);
  });

  it('accepts the same version and higher ones; ids never seen have no floor', () => {
    expect(select({ candidates: [cand('a.json', profileBytes('corp', 7))], versions: versions({ corp: 7 }) }).profiles).toHaveLength(1);
    expect(select({ candidates: [cand('a.json', profileBytes('corp', 8))], versions: versions({ corp: 7 }) }).profiles).toHaveLength(1);
    expect(select({ candidates: [cand('a.json', profileBytes('other', 1))], versions: versions({ corp: 7 }) }).profiles).toHaveLength(1);
  });

  it('notes a re-push: the same version with different content', () => {
    const v7 = profileBytes('corp', 7, ['ssh']);
    const v7b = profileBytes('corp', 7, ['ssh', 'git']);
    const s = select({
      candidates: [cand('corp.json', v7b)],
      versions: new Map([['corp', { version: 7, sha256: sha256Of(v7), since: NOW.toISOString() }]]),
      lastGood: new Map([['profiles.d/corp.json', good('corp.json', v7, 'corp', 7, 1)]]),
    });
    expect(s.profiles).toHaveLength(1);
    expect(s.notes).toEqual([`${DIR}/corp.json: profile corp version 7 changed without a new version number (accepted as a re-push)`]);
  });

  it('property: whatever the versions, nothing below the floor is ever selected', () => {
    for (let floor = 1; floor <= 5; floor++) {
      for (let v = 1; v <= 5; v++) {
        const s = select({ candidates: [cand('a.json', profileBytes('corp', v))], versions: versions({ corp: floor }) });
        expect(s.profiles.length, `floor ${floor}, version ${v}`).toBe(v >= floor ? 1 : 0);
      }
    }
  });
});

describe('selectSources: the drop-all guard', () => {
  const v7 = profileBytes('corp', 7, ['ssh', 'git']);
  const last = new Map([['profiles.d/corp.json', good('corp.json', v7, 'corp', 7, 2)]]);

  it('refuses `rules: []` at the same version when it would leave the machine without rules', () => {
    const s = select({ candidates: [cand('corp.json', profileBytes('corp', 7, []))], lastGood: last, versions: versions({ corp: 7 }) });
    expect(s.profiles.map((p) => p.profile.rules.length)).toEqual([2]);
    expect(s.accepted.size).toBe(0);
    expect(s.rejected[0]?.problems).toEqual([
      'would remove every rule on this machine (version 7 in force had 2, this copy has none); publish it as a version higher than 7 if that is intended',
      'the last good copy (profile corp version 7) stays in force',
    ]);
  });

  it('accepts the emptying when it comes with a higher version', () => {
    const s = select({ candidates: [cand('corp.json', profileBytes('corp', 8, []))], lastGood: last, versions: versions({ corp: 7 }) });
    expect(s.profiles.map((p) => [p.profile.version, p.profile.rules.length])).toEqual([[8, 0]]);
    expect(s.rejected).toEqual([]);
  });

  it('does not interfere while another source still has rules', () => {
    const s = select({
      candidates: [cand('corp.json', profileBytes('corp', 7, [])), cand('dev.json', profileBytes('dev', 1, ['make']))],
      lastGood: last,
      versions: versions({ corp: 7 }),
    });
    expect(s.profiles.map((p) => [p.profile.id, p.profile.rules.length])).toEqual([['corp', 0], ['dev', 1]]);
  });

  it('does not apply to a first profile with no rules, or to deletions', () => {
    expect(select({ candidates: [cand('corp.json', profileBytes('corp', 1, []))] }).profiles).toHaveLength(1);
    expect(select({ candidates: [], lastGood: last }).profiles).toEqual([]);
  });
});

describe('examine', () => {
  it('reports schema problems as `path: message` without the file name', () => {
    const r = examine(cand('x.json', profileBytes('corp', 0)), noKeys, new Map(), NOW);
    expect(r).toEqual({ ok: false, problems: ['version: must be a positive integer'] });
  });
});
