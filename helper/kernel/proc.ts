// What a process is, from /proc: the kernel's answer, never the process's own claim.
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** Real and effective uid. */
  uid: number;
  euid: number;
  /** Clock ticks since boot at which the process started: with pid, names it uniquely. */
  startTime: string;
  exe: string;
  exeDeleted: boolean;
}

const DELETED = ' (deleted)';

export async function readExe(pid: number): Promise<{ exe: string; deleted: boolean }> {
  const link = await fs.readlink(`/proc/${pid}/exe`);
  return link.endsWith(DELETED) ? { exe: link.slice(0, -DELETED.length), deleted: true } : { exe: link, deleted: false };
}

/** Fields of /proc/PID/stat after the parenthesised comm (which may contain spaces and parens). */
export function parseStat(text: string): { ppid: number; startTime: string } {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): ppid is field 4, starttime field 22.
  const ppid = Number(rest[1]);
  const startTime = rest[19];
  if (!Number.isInteger(ppid) || startTime === undefined) throw new Error('unreadable /proc/PID/stat');
  return { ppid, startTime };
}

export function parseStatusUids(text: string): { uid: number; euid: number } {
  const line = text.split('\n').find((l) => l.startsWith('Uid:'));
  const [uid, euid] = (line ?? '').slice(4).trim().split(/\s+/).map(Number);
  if (uid === undefined || euid === undefined || Number.isNaN(uid) || Number.isNaN(euid)) throw new Error('unreadable /proc/PID/status');
  return { uid, euid };
}

/** Everything the gate needs to know about a live process; throws if it is gone. */
export async function readProc(pid: number): Promise<ProcInfo> {
  const [stat, status, exe] = await Promise.all([
    fs.readFile(`/proc/${pid}/stat`, 'utf8'),
    fs.readFile(`/proc/${pid}/status`, 'utf8'),
    readExe(pid),
  ]);
  const { ppid, startTime } = parseStat(stat);
  const { uid, euid } = parseStatusUids(status);
  return { pid, ppid, uid, euid, startTime, exe: exe.exe, exeDeleted: exe.deleted };
}

export async function readCmdline(pid: number): Promise<string[]> {
  const raw = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
  return raw.split('\0').slice(0, -1);
}

export async function startTimeOf(pid: number): Promise<string | undefined> {
  try {
    return parseStat(await fs.readFile(`/proc/${pid}/stat`, 'utf8')).startTime;
  } catch {
    return undefined;
  }
}

/** The stat fields a cached digest is keyed by (a BigIntStats has them). */
export interface DigestKey {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

function keyOf(st: DigestKey): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * sha256 of a file, cached per (device, inode, size, mtime, ctime): a binary is hashed
 * once, and a replaced or rewritten one is hashed again. ctime is in the key because
 * mtime can be set back by anyone who may write the file (utimensat), ctime cannot; a
 * digest is cached only if the file's stat is the same after the read as before it.
 * Hashing /proc/PID/exe reads what the process really runs, even when the path now holds
 * another file.
 */
export class HashCache {
  private readonly cache = new Map<string, string>();
  constructor(
    private readonly max = 4096,
    private readonly algorithm: 'sha256' | 'md5' = 'sha256',
  ) {}

  /** sha256 of `file` (for a cache made for sha256, the default). */
  sha256(file: string): Promise<string> {
    return this.digest(file);
  }

  /**
   * The cached digest of the file whose stat is `st`, without any I/O (the exec hold's
   * path: a held exec never waits for a hash); undefined when not hashed yet.
   */
  peek(st: DigestKey): string | undefined {
    return this.cache.get(keyOf(st));
  }

  /** The digest of `file` with this cache's algorithm. */
  async digest(file: string): Promise<string> {
    const st = await fs.stat(file, { bigint: true });
    const key = keyOf(st);
    const hit = this.cache.get(key);
    if (hit) return hit;
    const hash = createHash(this.algorithm);
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    const digest = hash.digest('hex');
    const after = await fs.stat(file, { bigint: true }).catch(() => undefined);
    // Changed while it was read: the digest is of no one version; not kept.
    if (!after || keyOf(after) !== key) return digest;
    if (this.cache.size >= this.max) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, digest);
    return digest;
  }
}
