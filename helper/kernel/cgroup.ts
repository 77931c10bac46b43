// Where cgroup v2 lives on this machine, and the few file operations the gate needs.
// The mount point is read from mountinfo, never assumed: pure v2 mounts it at
// /sys/fs/cgroup, the hybrid layout at /sys/fs/cgroup/unified, and nft resolves
// `socket cgroupv2` paths relative to /sys/fs/cgroup.
import { promises as fs } from 'node:fs';
import path from 'node:path';

export const NFT_CGROUP_BASE = '/sys/fs/cgroup';

/** Mount point of the cgroup2 filesystem, parsed from /proc/self/mountinfo text. */
export function findCgroup2Mount(mountinfo: string): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype !== 'cgroup2') continue;
    const mountPoint = line.slice(0, sep).split(' ')[4];
    if (mountPoint) return mountPoint.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  }
  return undefined;
}

export interface CgroupLayout {
  /** Absolute directory of the subtree, e.g. /sys/fs/cgroup/unified/tunnelgate. */
  dir: string;
  /** The same directory as nft names it (relative to /sys/fs/cgroup), e.g. unified/tunnelgate. */
  nftPath: string;
  /** cgroup v2 depth of a rule cgroup (a direct child of the subtree). */
  ruleLevel: number;
}

export function cgroupLayout(mountPoint: string, rootName: string): CgroupLayout {
  if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(rootName) || rootName.split('/').some((p) => p === '.' || p === '..')) {
    throw new Error(`cgroup root "${rootName}" is not a relative path of plain names`);
  }
  const rel = path.relative(NFT_CGROUP_BASE, mountPoint);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new Error(`cgroup v2 is mounted at ${mountPoint}, outside ${NFT_CGROUP_BASE} where nft resolves cgroup paths`);
  }
  return {
    dir: path.join(mountPoint, rootName),
    nftPath: rel === '' ? rootName : `${rel}/${rootName}`,
    ruleLevel: rootName.split('/').length + 1,
  };
}

export async function detectCgroup2(rootName: string): Promise<CgroupLayout> {
  const mount = findCgroup2Mount(await fs.readFile('/proc/self/mountinfo', 'utf8'));
  if (!mount) throw new Error('no cgroup2 filesystem is mounted (see /proc/self/mountinfo); tunnelgate needs cgroup v2');
  return cgroupLayout(mount, rootName);
}

/** Thin file operations on one cgroup subtree. */
export class CgroupTree {
  constructor(readonly layout: CgroupLayout) {}

  dirOf(rel: string): string {
    return path.join(this.layout.dir, rel);
  }

  nftPathOf(rel: string): string {
    return `${this.layout.nftPath}/${rel}`;
  }

  async ensure(rel = ''): Promise<void> {
    await fs.mkdir(this.dirOf(rel), { recursive: true });
  }

  async exists(rel: string): Promise<boolean> {
    return fs.access(this.dirOf(rel)).then(() => true, () => false);
  }

  /** Names of the child cgroups of `rel`. */
  async children(rel = ''): Promise<string[]> {
    const entries = await fs.readdir(this.dirOf(rel), { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [];
      throw e;
    });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  }

  async procs(rel: string): Promise<number[]> {
    const text = await fs.readFile(path.join(this.dirOf(rel), 'cgroup.procs'), 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return '';
      throw e;
    });
    return text.split('\n').filter(Boolean).map(Number);
  }

  /** Move a whole process (all its threads) into the cgroup `rel` of this tree. */
  async move(pid: number, rel: string): Promise<void> {
    await fs.writeFile(path.join(this.dirOf(rel), 'cgroup.procs'), `${pid}\n`);
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

/** Absolute cgroup v2 directory a process is in now (from /proc/PID/cgroup). */
export async function cgroupOfPid(pid: number, mountPoint: string): Promise<string | undefined> {
  const text = await fs.readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
  const line = text.split('\n').find((l) => l.startsWith('0::'));
  return line ? path.join(mountPoint, line.slice(3)) : undefined;
}

/** Move a process into any cgroup v2 directory (used to return it where it was). */
export async function moveToDir(pid: number, dir: string): Promise<void> {
  await fs.writeFile(path.join(dir, 'cgroup.procs'), `${pid}\n`);
}
