import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { GoodCopy } from '../../../helper/profile/sources.js';
import { sha256Of } from '../../../helper/profile/sources.js';
import { LAST_GOOD_DIR, ProfileStore, VERSIONS_FILE, writeFileAtomic } from '../../../helper/profile/store.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'tunnelgate-store-'));

function copy(key: string, version: number, extra: Partial<GoodCopy> = {}): GoodCopy {
  const bytes = Buffer.from(`{"id":"corp","version":${version}}\n`);
  return { key, file: `/etc/tunnelgate/${key}`, bytes, profileId: 'corp', version, rules: 2, sha256: sha256Of(bytes), savedAt: '2026-01-01T00:00:00.000Z', ...extra };
}

describe('writeFileAtomic', () => {
  it('replaces the file whole, with the given mode, and leaves no temporary file', async () => {
    const dir = tmp();
    const file = join(dir, 'x.json');
    writeFileSync(file, 'old');
    await writeFileAtomic(file, 'new', 0o600);
    expect(readFileSync(file, 'utf8')).toBe('new');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['x.json']);
  });
});

describe('ProfileStore', () => {
  it('round-trips versions and last good copies (bytes, signature, ETag) exactly', async () => {
    const store = new ProfileStore(tmp());
    const sig = Buffer.alloc(64, 7);
    await store.writeVersions(new Map([['corp', { version: 7, sha256: 'abc', since: '2026-01-01T00:00:00.000Z' }]]));
    await store.writeGood(copy('profiles.d/corp.json', 7, { sig, signedBy: 'it' }));
    await store.writeGood(copy('remote', 7, { file: 'https://p.example/corp.json', etag: '"v7"' }));
    const back = await store.read();
    expect(back.problems).toEqual([]);
    expect(back.versions.get('corp')).toEqual({ version: 7, sha256: 'abc', since: '2026-01-01T00:00:00.000Z' });
    expect(back.lastGood.get('profiles.d/corp.json')).toEqual(copy('profiles.d/corp.json', 7, { sig, signedBy: 'it' }));
    expect(back.lastGood.get('remote')?.etag).toBe('"v7"');
    expect(statSync(join(store.stateDir, LAST_GOOD_DIR)).mode & 0o777).toBe(0o700);
    await store.removeGood('remote');
    expect((await store.read()).lastGood.has('remote')).toBe(false);
  });

  it('starts empty without a state dir', async () => {
    const back = await new ProfileStore(join(tmp(), 'missing')).read();
    expect(back).toEqual({ versions: new Map(), lastGood: new Map(), gated: [], problems: [] });
  });

  it('survives a corrupt versions file: a problem, and the last good copies still set the floor', async () => {
    const store = new ProfileStore(tmp());
    await store.writeGood(copy('profiles.d/corp.json', 9));
    writeFileSync(join(store.stateDir, VERSIONS_FILE), '{ trunc');
    const back = await store.read();
    expect(back.problems).toEqual([expect.stringMatching(/profile-versions\.json: cannot read .*rollback protection rests on the last good copies/)]);
    expect(back.versions.get('corp')?.version).toBe(9);
  });

  it('keeps the higher of the recorded version and the last good copy', async () => {
    const store = new ProfileStore(tmp());
    await store.writeVersions(new Map([['corp', { version: 12, sha256: 'abc', since: 'x' }]]));
    await store.writeGood(copy('profiles.d/corp.json', 9));
    expect((await store.read()).versions.get('corp')?.version).toBe(12);
  });

  it('reports an unusable last good copy instead of using it', async () => {
    const store = new ProfileStore(tmp());
    await store.writeGood(copy('profiles.d/corp.json', 9));
    const dir = join(store.stateDir, LAST_GOOD_DIR);
    const name = readdirSync(dir)[0] as string;
    writeFileSync(join(dir, 'profiles.d%2Fother.json.json'), readFileSync(join(dir, name)));
    writeFileSync(join(dir, 'junk.json'), 'nope');
    const back = await store.read();
    expect([...back.lastGood.keys()]).toEqual(['profiles.d/corp.json']);
    expect(back.problems).toEqual([
      expect.stringMatching(/junk\.json: cannot use this last good copy/),
      expect.stringMatching(/other\.json\.json: cannot use this last good copy \(names source profiles\.d\/corp\.json/),
    ]);
  });
});
