// Files the helper must never leave half-written: state, decisions, logs' metadata.
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

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
