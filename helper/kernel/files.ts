// Files the helper must never leave half-written: state, decisions, logs' metadata.
import { subscribe } from '../../common/listeners.js';
import { randomBytes } from 'node:crypto';
import { constants, statfsSync } from 'node:fs';
import type { Stats, StatsFs } from 'node:fs';
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

/**
 * Whether `name` (a file name, no directory) is a temp file of writeFileAtomic:
 * `.NAME.HEX.tmp` with 12 hex digits. Pure.
 */
export function isInterruptedWrite(name: string): boolean {
  return /^\..+\.[0-9a-f]{12}\.tmp$/.test(name);
}

/**
 * Removes from `dir` (not its subdirectories) the temp files writeFileAtomic leaves when a
 * crash (SIGKILL, power loss) interrupts it before its rename: the file itself is then still
 * the old one, so they are litter holding space, not data. Call only while nothing writes
 * there (at start, under the helper's locks). A missing `dir` removes nothing.
 * @returns the names removed
 * @throws the errno error of a removal that fails for another reason than ENOENT
 */
export async function removeInterruptedWrites(dir: string): Promise<string[]> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter(isInterruptedWrite);
  for (const n of names) await rm(join(dir, n), { force: true });
  return names;
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}


/** What describeWriteError reads of the file system after an ENOSPC (statfs(2)'s counts). */
export type FsCounts = Pick<StatsFs, 'bavail' | 'files' | 'ffree'>;

/** statfs(2) of `dir`, or undefined when it cannot be read (the dir is gone, say). */
export function statfsOf(dir: string): FsCounts | undefined {
  try {
    return statfsSync(dir);
  } catch {
    return undefined;
  }
}

/**
 * ENOSPC is the kernel's errno for "no block left" and for "no inode left" alike; statfs(2)
 * tells them apart: no free inode (f_ffree 0, on a file system that counts them: f_files > 0;
 * btrfs and others report 0 and 0) is said as such, also when blocks are left.
 */
function noSpace(dir: string, fs: FsCounts | undefined): string {
  const noInodes = fs !== undefined && fs.files > 0 && fs.ffree === 0;
  if (!noInodes) return `the state directory ${dir} is full (ENOSPC)`;
  return fs.bavail === 0 ? `the state directory ${dir} is full and has no inodes left (ENOSPC)` : `the state directory ${dir} has no inodes left (ENOSPC)`;
}

/**
 * What a failed write of the state dir means, in words for people (errno code kept). For
 * ENOSPC it reads statfs(2) of `dir` (synchronously, on this error path only) to say whether
 * the blocks or the inodes ran out.
 * @param statfs the counts of `dir` now (tests); default statfs(2)
 */
export function describeWriteError(e: unknown, dir: string, statfs: (dir: string) => FsCounts | undefined = statfsOf): string {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case 'ENOSPC':
      return noSpace(dir, statfs(dir));
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

/** What StorageHealth.fail is told besides the reason. */
export interface WriteFailure {
  /** The file that could not be written (shown in the problem). */
  file?: string;
  /** Figures read when status asks (lines queued, records kept). */
  detail?: () => string;
  /**
   * Try the write again (latest data); StorageHealth calls it every retryMs while the failure
   * lasts. It reports its own outcome (ok/fail); its rejection is ignored. Writers that retry
   * on their own (the audit trail, the evidence store) pass none.
   */
  retry?: () => Promise<unknown>;
}

/**
 * Write failures of the state dir, by what failed to be written (`audit log`, `attempt
 * records`, `saved ruleset`, …): the problems status shows while they last (status is
 * `degraded`). One shared instance (storageHealth); listeners hear at once when the set of
 * failing writers or their reason changes (the API pushes status to subscribers then).
 */
export class StorageHealth {
  private readonly failing = new Map<string, { reason: string } & WriteFailure>();
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private retrying = false;

  /** @param retryMs how often the retries of failing writers run, in ms */
  constructor(private readonly retryMs = 2_000) {}

  /** `what` cannot be written, because of `reason` (describeWriteError: names the errno). */
  fail(what: string, reason: string, o: WriteFailure = {}): void {
    const prev = this.failing.get(what);
    this.failing.set(what, { reason, ...o });
    this.arm();
    if (prev?.reason === reason && prev.file === o.file) return;
    this.notify();
  }

  /** `what` was written again. */
  ok(what: string): void {
    if (!this.failing.delete(what)) return;
    this.arm();
    this.notify();
  }

  /** Whether `what` is failing now. */
  isFailing(what: string): boolean {
    return this.failing.has(what);
  }

  /**
   * One line per failing writer, e.g. `cannot write the audit log (/var/lib/tunnelgate/audit.log):
   * the state directory … is full (ENOSPC); 12 line(s) kept in memory`.
   */
  problems(): string[] {
    return [...this.failing].map(([what, f]) => {
      const d = f.detail?.();
      return `cannot write the ${what}${f.file ? ` (${f.file})` : ''}: ${f.reason}${d ? `; ${d}` : ''}`;
    });
  }

  /** Call `fn` whenever the failures change; returns the unsubscribe function. */
  onChange(fn: () => void): () => void {
    return subscribe(this.listeners, fn);
  }

  /** Stop the retry timer (the helper's end; tests). */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The retry timer runs while some failing writer has a retry. */
  private arm(): void {
    const need = [...this.failing.values()].some((f) => f.retry);
    if (need && !this.timer) {
      this.timer = setInterval(() => void this.retryAll(), this.retryMs);
      this.timer.unref?.();
    } else if (!need && this.timer) this.close();
  }

  private async retryAll(): Promise<void> {
    if (this.retrying) return;
    this.retrying = true;
    try {
      for (const f of [...this.failing.values()]) await f.retry?.().catch(() => undefined);
    } finally {
      this.retrying = false;
    }
  }

  private notify(): void {
    for (const fn of this.listeners) fn();
  }
}

/** The helper's one StorageHealth: every writer of the state dir reports to it; status shows it. */
export const storageHealth = new StorageHealth();

/**
 * A state-dir file written whole (writeFileAtomic) whose write failures are reported to
 * `health` as `what` (naming the file and the errno) and retried with the latest data
 * until a write works, which clears the problem. For files whose newest contents are all
 * that matters (the saved ruleset, the gated interfaces). Writes run one at a time, in order.
 */
export class ResumingFile {
  private latest: { data: string | Buffer } | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly file: string,
    private readonly what: string,
    private readonly health: StorageHealth = storageHealth,
    private readonly mode = 0o600,
  ) {}

  /**
   * Write `data`; resolves when it is on disk, or when writing failed (then it is reported
   * and retried: never throws). A newer write replaces a pending one.
   */
  write(data: string | Buffer): Promise<void> {
    const mine = { data };
    this.latest = mine;
    this.queue = this.queue.then(async () => {
      if (this.latest !== mine) return; // a newer write supersedes this one
      try {
        await writeFileAtomic(this.file, mine.data, this.mode);
      } catch (e) {
        this.health.fail(this.what, describeWriteError(e, dirname(this.file)), { file: this.file, retry: () => (this.latest === mine ? this.write(mine.data) : Promise.resolve()) });
        return;
      }
      if (this.latest === mine) this.latest = undefined;
      this.health.ok(this.what);
    });
    return this.queue;
  }

  /** Data not yet on disk (a failed write waiting for its retry). */
  get pending(): boolean {
    return this.latest !== undefined;
  }
}

// ---------------------------------------------------------------------------------------
// Trusted reads (issue 9.3): a file the helper takes policy or keys from is used only if it
// and every directory above it up to / are owned by root (or the helper's own uid) and
// writable by no one else: not by others, and by a group only if it is root's own group
// (gid 0; or the helper's own gid). There is no exception for helper.json's adminGroup: its
// members may use the API as root does, but a file they can write is not trusted (README,
// "Which files the helper trusts"). A directory writable by others is safe only with the sticky bit
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

/** The groups that may have write access to a trusted path: root's (gid 0), and the helper's own gid (tests as non-root). */
function trustedGroup(gid: number): boolean {
  return gid === 0 || gid === (process.getegid?.() ?? 0);
}

/** Why `st` (of `shown`) is not trusted, or undefined when it is. Pure. */
export function untrustedBecause(st: Pick<Stats, 'uid' | 'gid' | 'mode'> & { isDirectory(): boolean }, shown: string): string | undefined {
  if (!trustedOwner(st.uid)) return `${shown} is owned by uid ${st.uid}, not root: not trusted (chown root)`;
  const sticky = st.isDirectory() && (st.mode & 0o1000) !== 0;
  if (sticky) return undefined;
  if ((st.mode & 0o002) !== 0) return `${shown} is writable by others: not trusted (chmod o-w)`;
  if ((st.mode & 0o020) !== 0 && !trustedGroup(st.gid)) return `${shown} is writable by group ${st.gid}: not trusted (chmod g-w; no group but root's may write what the helper trusts, the admin group neither)`;
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
