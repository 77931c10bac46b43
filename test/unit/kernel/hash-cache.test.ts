// HashCache: a digest is found again without I/O by the stat of the same bytes, and a file
// rewritten with its mtime set back is hashed again (ctime is in the key).
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HashCache } from '../../../helper/kernel/proc.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tg-hash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('HashCache', () => {
  it('peek() finds a digest by the stat of the file it was computed for, and only then', async () => {
    const f = path.join(dir, 'a');
    writeFileSync(f, 'one');
    const cache = new HashCache();
    expect(cache.peek(statSync(f, { bigint: true }))).toBeUndefined();
    expect(await cache.sha256(f)).toBe(sha('one'));
    expect(cache.peek(statSync(f, { bigint: true }))).toBe(sha('one'));
  });

  it('a rewrite of the same size with the old mtime put back is not served from the cache', async () => {
    const f = path.join(dir, 'b');
    writeFileSync(f, 'two');
    utimesSync(f, 1_000_000, 1_000_000);
    const cache = new HashCache();
    expect(await cache.sha256(f)).toBe(sha('two'));
    const before = statSync(f, { bigint: true });
    writeFileSync(f, 'TWO');
    utimesSync(f, 1_000_000, 1_000_000);
    const st = statSync(f, { bigint: true });
    expect([st.ino, st.size, st.mtimeNs]).toEqual([before.ino, before.size, before.mtimeNs]);
    expect(cache.peek(st)).toBeUndefined();
    expect(await cache.sha256(f)).toBe(sha('TWO'));
  });
});
