// Where admitted processes live: the net_cls controller (cgroup v1), in a subtree of our own.
//
// Design note (issue 4, "coexist with systemd"; LAB-NOTES "admitting a process late"):
// - A process is admitted by moving it into its rule's net_cls cgroup; the cgroup's classid
//   tags every socket the process owns, and the table matches `meta cgroup` (the classid).
// - Moving a task in net_cls re-tags the sockets it already has. So a program admitted after
//   it started (found by the watcher, or allowed at a prompt) gets through on the next
//   retransmission of the connection it is already attempting, and a revoked one loses its
//   existing connections at once. With cgroup v2 a socket keeps the cgroup it was created
//   in: late admission never worked there, measured in the lab.
// - net_cls is a separate hierarchy: a process keeps its cgroup v2 (systemd) placement.
//   `systemctl --user status` still shows the app in its scope, stopping tunnelgate's
//   service kills no app, and revocation puts the process back at the top of the net_cls
//   hierarchy, which is exactly where it was.
// - The hierarchy is reused where the system already mounts net_cls and that mount can be
//   written, else mounted by us under the run dir (`RUN/net_cls`, source
//   `tunnelgate-net_cls`): the same hierarchy, writable. A read-only system mount (a
//   container, ProtectControlGroups=yes, a distribution that mounts /sys/fs/cgroup ro) or
//   none at all: our own. `status` says which is used and why. It works the same on pure
//   cgroup v2 and on hybrid machines.
// - Kernels before 5.15 disabled cgroup v2 socket matching once net_cls was in use; these
//   machines run 6.x, where both work side by side.
import { constants, promises as fs, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Runner } from './run.js';

/** Our mounts of the hierarchy are named by their source, so they are told from the system's. */
export const OWN_MOUNT_SOURCE = 'tunnelgate-net_cls';

export interface NetClsMount {
  mountPoint: string;
  source: string;
  /** Mounted read-only (`ro` in the mount's or the superblock's options). */
  readOnly: boolean;
}

/** Mounts of cgroup v1 hierarchies carrying net_cls, from /proc/self/mountinfo text (proc(5): mountinfo). */
export function findNetClsMounts(mountinfo: string): NetClsMount[] {
  const out: NetClsMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const [fstype, source, superOpts] = line.slice(sep + 3).split(' ');
    if (fstype !== 'cgroup' || !superOpts?.split(',').includes('net_cls')) continue;
    const fields = line.slice(0, sep).split(' ');
    const mountPoint = fields[4];
    const readOnly = (fields[5] ?? '').split(',').includes('ro') || superOpts.split(',').includes('ro');
    if (mountPoint) out.push({ mountPoint: unescape(mountPoint), source: source ?? '', readOnly });
  }
  return out;
}

const unescape = (s: string) => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The hierarchy in use: where, whether it is the helper's own mount, and why (for status). */
export interface NetClsChoice {
  mount: string;
  own: boolean;
  reason: string;
}

/**
 * The hierarchy to use: our own mount when it is already there, else the system's writable
 * mount; undefined when neither exists (then mount our own: ensureNetClsMount). A read-only
 * system mount is passed over. Another helper's mount (another run dir, as in tests) is
 * never borrowed: it may go away with that helper. Mounting net_cls again gives the same
 * hierarchy. Pure.
 */
export function chooseNetClsMount(mounts: readonly NetClsMount[], ownMountPoint: string): NetClsChoice | undefined {
  const ours = mounts.find((m) => m.mountPoint === ownMountPoint);
  if (ours) return { mount: ours.mountPoint, own: true, reason: ownReason(mounts) };
  const system = mounts.find((m) => m.source !== OWN_MOUNT_SOURCE && !m.readOnly);
  return system ? { mount: system.mountPoint, own: false, reason: "the system's net_cls mount" } : undefined;
}

/** Why our own mount is used, from what the system has. */
function ownReason(mounts: readonly NetClsMount[], unwritable?: string): string {
  if (unwritable) return `the helper's own net_cls mount: the system's ${unwritable}`;
  const ro = mounts.find((m) => m.source !== OWN_MOUNT_SOURCE && m.readOnly);
  if (ro) return `the helper's own net_cls mount: the system's ${ro.mountPoint} is read-only`;
  const system = mounts.find((m) => m.source !== OWN_MOUNT_SOURCE);
  return system ? `the helper's own net_cls mount` : "the helper's own net_cls mount: the system mounts no net_cls hierarchy";
}

/**
 * The hierarchy to use (chooseNetClsMount), with a system mount that the mount table calls
 * writable checked for write access too (access(2) W_OK: EROFS, EACCES); where none is
 * usable, our own is mounted at OWN_MOUNT_POINT. @throws the mount's error
 */
export async function ensureNetClsMount(
  run: Runner,
  ownMountPoint: string,
  writable: (dir: string) => Promise<void> = (dir) => fs.access(dir, constants.W_OK),
  mountinfo: () => Promise<string> = () => fs.readFile('/proc/self/mountinfo', 'utf8'),
): Promise<NetClsChoice> {
  const mounts = findNetClsMounts(await mountinfo());
  const chosen = chooseNetClsMount(mounts, ownMountPoint);
  let unwritable: string | undefined;
  if (chosen?.own) return chosen;
  if (chosen) {
    const why = await writable(chosen.mount).then(() => undefined, (e: Error) => e.message);
    if (why === undefined) return chosen;
    unwritable = `${chosen.mount} cannot be written (${why})`;
  }
  await fs.mkdir(ownMountPoint, { recursive: true, mode: 0o755 });
  await run('mount', ['-t', 'cgroup', '-o', 'net_cls', OWN_MOUNT_SOURCE, ownMountPoint]);
  return { mount: ownMountPoint, own: true, reason: ownReason(mounts, unwritable) };
}

/** 32-bit classid `major:minor`. The major is derived from the subtree name, so two subtrees do not collide. */
export function classidMajor(rootName: string): number {
  let h = 0x811c9dc5;
  for (const c of rootName) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return 0x1000 + (h % 0xe000);
}

export const classid = (major: number, minor: number) => ((major << 16) | minor) >>> 0;

export const formatClassid = (id: number) => `${(id >>> 16).toString(16)}:${(id & 0xffff).toString(16)}`;

/** The net_cls path of a process from /proc/PID/cgroup text (`N:net_cls[,net_prio]:/path`). */
export function netClsPath(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    if (line.slice(a + 1, b).split(',').includes('net_cls')) return line.slice(b + 1);
  }
  return undefined;
}

/** The rule key of a net_cls path inside our subtree (`/<root>/<key>`), else undefined. */
export function ruleKeyOfPath(path: string | undefined, root: string): string | undefined {
  const prefix = `/${root}/`;
  if (!path?.startsWith(prefix)) return undefined;
  const key = path.slice(prefix.length);
  return key && !key.includes('/') ? key : undefined;
}

/**
 * The rule a process is in, from /proc/PID/cgroup text: its net_cls line names the path
 * inside the hierarchy, `/<root>/<rule key>` when it is admitted.
 */
export function ruleKeyOf(procCgroup: string, rootName: string): string | undefined {
  return ruleKeyOfPath(netClsPath(procCgroup), rootName);
}

/** Thin file operations on our subtree of the net_cls hierarchy. */
export class NetClsTree {
  readonly dir: string;

  constructor(
    readonly mount: string,
    readonly rootName: string,
  ) {
    if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(rootName) || rootName.split('/').some((p) => p === '.' || p === '..')) {
      throw new Error(`cgroup root "${rootName}" is not a relative path of plain names`);
    }
    this.dir = path.join(mount, rootName);
  }

  private dirOf(rel: string): string {
    return rel ? path.join(this.dir, rel) : this.dir;
  }

  async ensure(rel = ''): Promise<void> {
    await fs.mkdir(this.dirOf(rel), { recursive: true });
  }

  async children(rel = ''): Promise<string[]> {
    const entries = await fs.readdir(this.dirOf(rel), { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [];
      throw e;
    });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  }

  async readClassid(rel: string): Promise<number> {
    return Number((await fs.readFile(path.join(this.dirOf(rel), 'net_cls.classid'), 'utf8')).trim());
  }

  async writeClassid(rel: string, id: number): Promise<void> {
    await fs.writeFile(path.join(this.dirOf(rel), 'net_cls.classid'), `${id}\n`);
  }

  async procs(rel: string): Promise<number[]> {
    const text = await fs.readFile(this.procsFile(rel), 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return '';
      throw e;
    });
    return [...new Set(text.split('\n').filter(Boolean).map(Number))];
  }

  /** Move a whole process (all its threads); its sockets take the cgroup's classid at once. */
  async move(pid: number, rel: string): Promise<void> {
    await fs.writeFile(this.procsFile(rel), `${pid}\n`);
  }

  /**
   * move() without leaving the calling tick (one write(2) to cgroup.procs, ~20 µs): for the
   * exec hold, where a held exec must not wait for libuv's thread pool. Throws the errno.
   */
  moveNow(pid: number, rel: string): void {
    writeFileSync(this.procsFile(rel), `${pid}\n`);
  }

  /** The cgroup.procs file of `rel` (the exec hold's verdict tickets write to it from the addon). */
  procsFile(rel: string): string {
    return path.join(this.dirOf(rel), 'cgroup.procs');
  }

  /** Back to the top of the hierarchy (classid 0): where every process starts. */
  async release(pid: number): Promise<void> {
    await fs.writeFile(path.join(this.mount, 'cgroup.procs'), `${pid}\n`).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ESRCH') throw e;
    });
  }

  /** Remove an empty cgroup; false when it still has processes or children. */
  async remove(rel: string): Promise<boolean> {
    try {
      await fs.rmdir(this.dirOf(rel));
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return true;
      if (code === 'EBUSY' || code === 'ENOTEMPTY') return false;
      throw e;
    }
  }
}
