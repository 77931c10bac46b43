import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DpkgDb, parseMd5sums } from '../../../helper/identity/package.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tg-dpkg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('dpkg package ownership', () => {
  it('parses md5sums lines', () => {
    expect(parseMd5sums('0123456789abcdef0123456789abcdef  usr/bin/ssh\nbogus\n')).toEqual(new Map([['/usr/bin/ssh', '0123456789abcdef0123456789abcdef']]));
  });

  it('owns a listed file with a matching digest; not a changed one, another file, or a missing package', async () => {
    const info = path.join(dir, 'info');
    mkdirSync(info);
    // A package listing a file under a symlinked directory (merged /usr): the kernel sees the real path.
    const real = path.join(dir, 'usr-bin');
    mkdirSync(real);
    symlinkSync(real, path.join(dir, 'bin'));
    const listed = path.join(dir, 'bin', 'tool');
    writeFileSync(path.join(real, 'tool'), 'x');
    writeFileSync(path.join(info, 'tool:amd64.md5sums'), `${'a'.repeat(32)}  ${listed.slice(1)}\n`);
    const db = new DpkgDb(info);
    const md5 = (v: string) => async () => v;
    expect(await db.owns('tool', path.join(real, 'tool'), md5('a'.repeat(32)))).toEqual({ ok: true });
    expect(await db.owns('tool', listed, md5('a'.repeat(32)))).toEqual({ ok: true });
    expect(await db.owns('tool', path.join(real, 'tool'), md5('b'.repeat(32)))).toMatchObject({ ok: false, reason: expect.stringMatching(/differs from what package tool installed/) });
    expect(await db.owns('tool', '/usr/bin/other', md5('a'.repeat(32)))).toMatchObject({ ok: false, reason: expect.stringMatching(/does not belong to package tool/) });
    expect(await db.owns('nope', listed, md5('a'.repeat(32)))).toMatchObject({ ok: false, reason: expect.stringMatching(/not installed/) });
    expect(await db.owns('../etc', listed, md5('a'.repeat(32)))).toMatchObject({ ok: false });
  });

  it('on this machine: curl belongs to curl, with the digest dpkg recorded', async () => {
    const { createHash } = await import('node:crypto');
    const { readFileSync, realpathSync } = await import('node:fs');
    const exe = realpathSync('/usr/bin/curl');
    const db = new DpkgDb();
    const digest = async () => createHash('md5').update(readFileSync(exe)).digest('hex');
    expect(await db.owns('curl', exe, digest)).toEqual({ ok: true });
    expect(await db.owns('openssh-client', exe, digest)).toMatchObject({ ok: false });
  });
});

describe('verifiedPackages', () => {
  it('lists the packages that vouch for the file and notes changed bytes, reading the digest once', async () => {
    const { verifiedPackages } = await import('../../../helper/identity/package.js');
    let reads = 0;
    const digest = async () => {
      reads++;
      return 'c'.repeat(32);
    };
    const db = {
      owns: async (pkg: string, _exe: string, d: () => Promise<string>) => {
        const got = await d();
        if (pkg === 'good') return got === 'c'.repeat(32) ? { ok: true as const } : { ok: false as const, reason: 'x' };
        if (pkg === 'changed') return { ok: false as const, reason: `/usr/bin/x differs from what package changed installed (md5 ${got}, dpkg has ${'d'.repeat(32)})` };
        return { ok: false as const, reason: `/usr/bin/x does not belong to package ${pkg}` };
      },
    };
    const r = await verifiedPackages(['good', 'changed', 'other', 'good'], '/usr/bin/x', digest, db);
    expect(r.packages).toEqual(['good']);
    expect(r.notes).toEqual([`/usr/bin/x differs from what package changed installed (md5 ${'c'.repeat(32)}, dpkg has ${'d'.repeat(32)})`]);
    expect(reads).toBe(1);
  });
});
