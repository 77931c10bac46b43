// Files the helper must never leave half-written: state, decisions, logs' metadata.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import type { Stats } from 'node:fs';
import { lstat, open, readdir, readlink, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/** Write `data` to `file` so that readers see the old or the new contents, also after a crash. */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    // A full disk must not also keep the half-written temp file (it holds the space).
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await syncDir(dir);
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}


/** What a failed write of the state dir means, in words for people (errno code kept). */
export function describeWriteError(e: unknown, dir: string): string {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case 'ENOSPC':
      return `the state directory ${dir} is full (ENOSPC)`;
    case 'EDQUOT':
      return `the state directory ${dir} is over its disk quota (EDQUOT)`;
    case 'EROFS':
      return `the state directory ${dir} is on a read-only file system (EROFS)`;
    case 'EIO':
      return `the state directory ${dir} cannot be written: input/output error (EIO)`;
    case 'EACCES':
    case 'EPERM':
      return `the state directory ${dir} is not writable (${err.code})`;
    default:
      return `the state directory ${dir} cannot be written (${err?.message ?? String(e)})`;
  }
}

/**
 * Write failures of the state dir, by what failed to be written (`audit log`, `attempt
 * records`, …): the problems status shows while they last. One shared instance
 * (storageHealth); listeners hear when the set of failing writers or their reason changes.
 */
export class StorageHealth {
  private readonly failing = new Map<string, string>();
  private readonly extra = new Map<string, () => string>();
  private readonly listeners = new Set<() => void>();

  /** `what` cannot be written, because of `reason`; `detail` adds figures read when asked (queued, dropped). */
  fail(what: string, reason: string, detail?: () => string): void {
    if (detail) this.extra.set(what, detail);
    if (this.failing.get(what) === reason) return;
    this.failing.set(what, reason);
    this.notify();
  }

  /** `what` was written again. */
  ok(what: string): void {
    this.extra.delete(what);
    if (this.failing.delete(what)) this.notify();
  }

  /** One line per failing writer, e.g. `cannot write the audit log: the state directory … is full (ENOSPC); 12 lines kept in memory`. */
  problems(): string[] {
    return [...this.failing].map(([what, reason]) => {
      const d = this.extra.get(what)?.();
      return `cannot write the ${what}: ${reason}${d ? `; ${d}` : ''}`;
    });
  }

  /** Call `fn` whenever the failures change; returns the unsubscribe function. */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private notify(): void {
    for (const fn of this.listeners) fn();
  }
}

/** The helper's one StorageHealth: the audit trail, evidence and decisions report to it; the profile sources show it. */
export const storageHealth = new StorageHealth();

// ---------------------------------------------------------------------------------------
// Trusted reads (issue 9.3): a file the helper takes policy or keys from is used only if it
// and every directory above it up to / are owned by root (or the helper's own uid) and
// writable by no one else. A directory writable by others is safe only with the sticky bit
// (like /tmp): only the owner of an entry (root, checked next) can rename or remove it.
// Checked on what is actually opened: each component is opened with O_NOFOLLOW below the
// directory opened before it (through /proc/self/fd/N, an openat(2) from Node), and the
// checks are made on the open file descriptors (fstat), so no rename, directory swap or
// symlink between check and use can substitute another file. A symlink is followed only
// when it sits in a trusted directory, and its target is walked the same way.

const MAX_LINKS = 40;

/** Why a path is not trusted (message for status: the path and what to fix). */
export class UntrustedError extends Error {
  readonly code = 'EUNTRUSTED';
}

/** The owners a trusted path may have: root, and the uid the helper runs as (tests as non-root). */
function trustedOwner(uid: number): boolean {
  return uid === 0 || uid === (process.geteuid?.() ?? 0);
}

/** Why `st` (of `shown`) is not trusted, or undefined when it is. Pure. */
export function untrustedBecause(st: Pick<Stats, 'uid' | 'gid' | 'mode'> & { isDirectory(): boolean }, shown: string): string | undefined {
  if (!trustedOwner(st.uid)) return `${shown} is owned by uid ${st.uid}, not root: not trusted (chown root)`;
  const sticky = st.isDirectory() && (st.mode & 0o1000) !== 0;
  if (sticky) return undefined;
  if ((st.mode & 0o002) !== 0) return `${shown} is writable by others: not trusted (chmod o-w)`;
  if ((st.mode & 0o020) !== 0 && !trustedOwner(st.gid)) return `${shown} is writable by group ${st.gid}: not trusted (chmod g-w)`;
  return undefined;
}

function check(st: Stats, shown: string): void {
  const why = untrustedBecause(st, shown);
  if (why) throw new UntrustedError(why);
}

/** Open `name` below the open directory `dir` without following a symlink there. */
async function openBelow(dir: FileHandle, name: string, flags: number): Promise<FileHandle | { link: string }> {
  const at = `/proc/self/fd/${dir.fd}/${name}`;
  try {
    return await open(at, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ELOOP' && code !== 'ENOTDIR') throw e;
    const st = await lstat(at).catch(() => undefined);
    if (!st?.isSymbolicLink()) throw e;
    return { link: await readlink(at) };
  }
}

/**
 * Open `file` (absolute) after checking it and every directory above it (see above).
 * @param directory open a directory (O_DIRECTORY) rather than a file
 * @throws UntrustedError naming the first untrusted component; the open errors (ENOENT, …)
 */
export async function openTrusted(file: string, directory = false, links = 0): Promise<FileHandle> {
  const parts = resolve(file).split('/').filter(Boolean);
  let cur = await open('/', constants.O_RDONLY | constants.O_DIRECTORY);
  let shown = '/';
  try {
    check(await cur.stat(), shown);
    for (let i = 0; i < parts.length; i++) {
      const last = i === parts.length - 1;
      const name = parts[i] as string;
      const next = await openBelow(cur, name, constants.O_RDONLY | (last && !directory ? 0 : constants.O_DIRECTORY));
      if ('link' in next) {
        if (links >= MAX_LINKS) throw new UntrustedError(`${file}: too many symbolic links`);
        const target = resolve(shown, next.link, ...parts.slice(i + 1));
        return await openTrusted(target, directory, links + 1);
      }
      await cur.close();
      cur = next;
      shown = join(shown, name);
      check(await cur.stat(), shown);
    }
    const done = cur;
    cur = undefined as unknown as FileHandle;
    return done;
  } finally {
    await cur?.close().catch(() => undefined);
  }
}

/**
 * Read a trusted regular file of at most `maxBytes`; undefined when it does not exist.
 * @throws UntrustedError, or a read error, or Error when it is not a regular file or too large
 */
export async function readTrusted(file: string, maxBytes: number): Promise<Buffer | undefined> {
  let fh: FileHandle;
  try {
    fh = await openTrusted(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > maxBytes) throw new Error(`larger than ${maxBytes} bytes; refused unread`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/**
 * The names in a trusted directory (read through the checked descriptor); undefined when it
 * does not exist. @throws UntrustedError, or the open/read error
 */
export async function listTrusted(dir: string): Promise<string[] | undefined> {
  let fh: FileHandle;
  try {
    fh = await openTrusted(dir, true);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return await readdir(`/proc/self/fd/${fh.fd}`);
  } finally {
    await fh.close();
  }
}
