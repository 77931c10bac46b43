// Trusted reads (helper/kernel/files.ts, issue 9.3) on real files: owners, modes, symlinks.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeWriteError, listTrusted, readTrusted, untrustedBecause } from '../../../helper/kernel/files.js';

const asRoot = process.geteuid?.() === 0;
let d: string;
beforeEach(() => {
  d = mkdtempSync('/tmp/tg-trust-');
  chmodSync(d, 0o755);
  mkdirSync(`${d}/p`, { mode: 0o755 });
  writeFileSync(`${d}/p/a.json`, 'hi', { mode: 0o644 });
});
afterEach(() => rmSync(d, { recursive: true, force: true }));

describe('trusted reads', () => {
  it('reads a file whose every directory is trusted, through a sticky /tmp', async () => {
    expect(String(await readTrusted(`${d}/p/a.json`, 100))).toBe('hi');
    expect(await listTrusted(`${d}/p`)).toEqual(['a.json']);
    expect(await readTrusted(`${d}/p/none.json`, 100)).toBeUndefined();
    symlinkSync('a.json', `${d}/p/link.json`);
    expect(String(await readTrusted(`${d}/p/link.json`, 100))).toBe('hi');
  });

  it.runIf(asRoot)('refuses a symlink to a user-owned file, a group-writable parent, a user-owned file', async () => {
    writeFileSync(`${d}/u.json`, 'user', { mode: 0o644 });
    chownSync(`${d}/u.json`, 4242, 4242);
    symlinkSync(`${d}/u.json`, `${d}/p/evil.json`);
    await expect(readTrusted(`${d}/p/evil.json`, 100)).rejects.toThrow(/u\.json is owned by uid 4242, not root/);
    chownSync(`${d}/p/a.json`, 4242, 4242);
    await expect(readTrusted(`${d}/p/a.json`, 100)).rejects.toThrow(/a\.json is owned by uid 4242/);
    chownSync(`${d}/p/a.json`, 0, 0);
    chownSync(`${d}/p`, 0, 4242);
    chmodSync(`${d}/p`, 0o775);
    await expect(readTrusted(`${d}/p/a.json`, 100)).rejects.toThrow(/\/p is writable by group 4242: not trusted/);
    await expect(listTrusted(`${d}/p`)).rejects.toThrow(/writable by group 4242/);
  });

  it('judges owners and modes (pure)', () => {
    const st = (uid: number, gid: number, mode: number, dir = false) => ({ uid, gid, mode, isDirectory: () => dir });
    expect(untrustedBecause(st(0, 0, 0o40755, true), '/etc')).toBeUndefined();
    expect(untrustedBecause(st(0, 0, 0o41777, true), '/tmp')).toBeUndefined();
    expect(untrustedBecause(st(0, 0, 0o40777, true), '/x')).toMatch(/writable by others/);
    expect(untrustedBecause(st(0, 1000, 0o100664), '/f')).toMatch(/writable by group 1000/);
    expect(untrustedBecause(st(1000, 0, 0o100644), '/f')).toMatch(/owned by uid 1000/);
  });

  it('no exception for the admin group (README, "Which files the helper trusts"): only root\'s group may have write access', () => {
    const st = (gid: number, mode: number) => ({ uid: 0, gid, mode, isDirectory: () => true });
    // helper.json's adminGroup (here gid 4712) is not consulted: its group write is refused like any user's.
    expect(untrustedBecause(st(4712, 0o40775), '/etc/tunnelgate/profiles.d')).toMatch(/writable by group 4712: not trusted .*the admin group neither/);
    expect(untrustedBecause(st(4712, 0o40755), '/etc/tunnelgate/profiles.d')).toBeUndefined(); // owned by that group, not writable by it: fine
    expect(untrustedBecause(st(0, 0o40775), '/etc/tunnelgate/profiles.d')).toBeUndefined(); // root's own group
  });

  it('says what a write failure means', () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    const counts = (bavail: number, files: number, ffree: number) => () => ({ bavail, files, ffree });
    expect(describeWriteError(err('ENOSPC'), '/var/lib/tunnelgate', counts(0, 1000, 10))).toBe('the state directory /var/lib/tunnelgate is full (ENOSPC)');
    expect(describeWriteError(err('ENOSPC'), '/var/lib/tunnelgate', () => undefined)).toBe('the state directory /var/lib/tunnelgate is full (ENOSPC)');
    // Inode exhaustion is ENOSPC too: statfs's f_ffree tells it apart.
    expect(describeWriteError(err('ENOSPC'), '/s', counts(900, 1000, 0))).toBe('the state directory /s has no inodes left (ENOSPC)');
    expect(describeWriteError(err('ENOSPC'), '/s', counts(0, 1000, 0))).toBe('the state directory /s is full and has no inodes left (ENOSPC)');
    // A file system that does not count inodes (btrfs: f_files 0, f_ffree 0) is not "out of inodes".
    expect(describeWriteError(err('ENOSPC'), '/s', counts(0, 0, 0))).toBe('the state directory /s is full (ENOSPC)');
    expect(describeWriteError(err('EROFS'), '/s')).toMatch(/read-only file system \(EROFS\)/);
    expect(describeWriteError(err('EDQUOT'), '/s')).toMatch(/quota \(EDQUOT\)/);
  });
});
