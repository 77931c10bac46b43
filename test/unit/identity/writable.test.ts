import { describe, expect, it } from 'vitest';
import {
  ancestry, dirLetsNonRootReplace, dirLetsReplace, fileWritableBy, fileWritableByNonRoot, pathWritableByNonRoot, scriptUnsafe,
} from '../../../helper/identity/writable.js';

const st = (mode: number, uid = 0, gid = 0) => ({ mode, uid, gid });
const ROOT_DIR = st(0o40755);
const TMP = st(0o41777);
const BIN = st(0o100755);

describe('writability by non-root users', () => {
  it('a file: owner, group (not root), other', () => {
    expect(fileWritableByNonRoot(BIN)).toBeUndefined();
    expect(fileWritableByNonRoot(st(0o100755, 1000))).toBe('owned by uid 1000');
    expect(fileWritableByNonRoot(st(0o100757))).toBe('writable by every user (mode 0757)');
    expect(fileWritableByNonRoot(st(0o100775, 0, 50))).toBe('writable by group 50 (mode 0775)');
    expect(fileWritableByNonRoot(st(0o100775, 0, 0))).toBeUndefined();
  });

  it('a directory lets its entries be replaced unless root-only, or sticky with a root-owned entry', () => {
    expect(dirLetsNonRootReplace(ROOT_DIR, BIN)).toBeUndefined();
    expect(dirLetsNonRootReplace(st(0o40755, 1000), BIN)).toBe('its directory is owned by uid 1000');
    expect(dirLetsNonRootReplace(st(0o40777), BIN)).toMatch(/writable by every user \(mode 0777, no sticky bit\)/);
    expect(dirLetsNonRootReplace(TMP, BIN)).toBeUndefined();
    expect(dirLetsNonRootReplace(TMP, st(0o100755, 1000))).toMatch(/writable by every user/);
    expect(dirLetsNonRootReplace(st(0o40775, 0, 50), BIN)).toMatch(/group 50/);
  });

  it('the whole chain up to /', () => {
    const paths = ancestry('/opt/corp/tool');
    expect(paths).toEqual(['/opt/corp/tool', '/opt/corp', '/opt', '/']);
    expect(pathWritableByNonRoot([BIN, ROOT_DIR, ROOT_DIR, ROOT_DIR], paths)).toBeUndefined();
    expect(pathWritableByNonRoot([BIN, ROOT_DIR, st(0o40755, 1000), ROOT_DIR], paths))
      .toBe('/opt/corp/tool can be replaced: /opt (owned by uid 1000)');
    expect(pathWritableByNonRoot([BIN, st(0o40777), ROOT_DIR, ROOT_DIR], paths)).toMatch(/^\/opt\/corp\/tool can be replaced: \/opt\/corp/);
    // a root-owned binary in /tmp (sticky) is safe; a user's is not
    expect(pathWritableByNonRoot([BIN, TMP, ROOT_DIR], ['/tmp/x', '/tmp', '/'])).toBeUndefined();
    expect(pathWritableByNonRoot([st(0o100755, 1000), TMP, ROOT_DIR], ['/tmp/x', '/tmp', '/'])).toBe('/tmp/x is owned by uid 1000');
  });
});

describe('writability by one user', () => {
  const u = { uid: 1000, gids: [1000, 27] };
  it('owner, group membership, other; root writes anything', () => {
    expect(fileWritableBy(st(0o100444, 1000), u)).toBe(true); // the owner can chmod
    expect(fileWritableBy(st(0o100664, 0, 27), u)).toBe(true);
    expect(fileWritableBy(st(0o100664, 0, 50), u)).toBe(false);
    expect(fileWritableBy(st(0o100646, 0, 50), u)).toBe(true);
    expect(fileWritableBy(BIN, { uid: 0, gids: [0] })).toBe(true);
  });

  it('sticky directories protect entries of others', () => {
    expect(dirLetsReplace(TMP, BIN, u)).toBe(false);
    expect(dirLetsReplace(TMP, st(0o100644, 1000), u)).toBe(true);
    expect(dirLetsReplace(st(0o40777), BIN, u)).toBe(true);
    expect(dirLetsReplace(st(0o40775, 0, 27), BIN, u)).toBe(true);
    expect(dirLetsReplace(ROOT_DIR, BIN, u)).toBe(false);
  });

  it('scripts: the process user first, then every non-root user', () => {
    const paths = ['/srv/s.py', '/srv', '/'];
    expect(scriptUnsafe([st(0o100644), ROOT_DIR, ROOT_DIR], paths, u)).toBeUndefined();
    expect(scriptUnsafe([st(0o100644, 1000), ROOT_DIR, ROOT_DIR], paths, u)).toBe("/srv/s.py is writable by the process's user (uid 1000)");
    expect(scriptUnsafe([st(0o100644), st(0o40777), ROOT_DIR], paths, u)).toMatch(/replaced by the process's user \(uid 1000\) through \/srv/);
    // another user could change it: not safe either, even for root's process
    expect(scriptUnsafe([st(0o100644, 1001), ROOT_DIR, ROOT_DIR], paths, { uid: 0, gids: [0] })).toBe('/srv/s.py is owned by uid 1001');
    expect(scriptUnsafe([st(0o100644), TMP, ROOT_DIR], ['/tmp/s.py', '/tmp', '/'], u)).toBeUndefined();
  });
});
