// Attribution of a packet to a process: the socket that owns its local port (/proc/net/tcp,
// udp, tcp6, udp6 of our namespace) -> socket inode -> the PID holding it (/proc/PID/fd)
// -> its parents (/proc/PID/stat). From the kernel's tables, never from anything the
// process says. helper/kernel/nflog-reader.ts reads the NFLOG records this is applied to.
import { promises as fs } from 'node:fs';
import type { PacketInfo } from '../kernel/netlink.js';
import { readCmdline, readExe, parseStat } from '../kernel/proc.js';
import { parseProcNet, socketInodes } from '../kernel/sockets.js';

/** Who sent a packet: the owning process, its exe and argv, and up to 4 ancestors (nearest first). */
export interface Attribution {
  pid?: number;
  exe?: string;
  cmdline?: string[];
  parents?: Array<{ pid: number; exe: string }>;
}

/** The socket inode owning local port `sport` of `proto`, from /proc/net of our namespace. */
export async function socketInodeOf(p: PacketInfo): Promise<string | undefined> {
  if (p.sport === undefined || (p.proto !== 'tcp' && p.proto !== 'udp')) return undefined;
  const file = `/proc/net/${p.proto}${p.family === 6 ? '6' : ''}`;
  const rows = parseProcNet(await fs.readFile(file, 'utf8').catch(() => ''));
  return rows.find((r) => r.port === p.sport && r.inode !== '0')?.inode;
}

/** PID of the process holding socket `inode`, looking first at processes of `uid`. */
export async function pidOfSocket(inode: string, uid: number | undefined): Promise<number | undefined> {
  // Newest first: the sender of a connection attempt is most often a recent process, and a
  // short-lived one may exit while older processes' descriptors are read.
  const pids = (await fs.readdir('/proc')).filter((n) => /^\d+$/.test(n)).sort((a, b) => Number(b) - Number(a));
  const owned = uid === undefined
    ? pids
    : (await Promise.all(pids.map(async (p) => ((await fs.stat(`/proc/${p}`).catch(() => undefined))?.uid === uid ? p : undefined))))
        .filter((p): p is string => p !== undefined);
  for (const p of owned) if ((await socketInodes(Number(p))).has(inode)) return Number(p);
  return undefined;
}

async function parentsOf(pid: number, depth = 4): Promise<Array<{ pid: number; exe: string }>> {
  const out: Array<{ pid: number; exe: string }> = [];
  let cur = pid;
  for (let i = 0; i < depth; i++) {
    const stat = await fs.readFile(`/proc/${cur}/stat`, 'utf8').catch(() => '');
    if (!stat) break;
    const { ppid } = parseStat(stat);
    if (ppid <= 1) break;
    const exe = await readExe(ppid).then((e) => e.exe, () => '?');
    out.push({ pid: ppid, exe });
    cur = ppid;
  }
  return out;
}

/**
 * The process that sent packet `p` (of kernel uid `uid`, from the NFLOG record, if known).
 * Empty when the socket is gone or no process holds it any more; never throws for a
 * vanished process (/proc reads that fail count as not found).
 */
export async function attribute(p: PacketInfo, uid: number | undefined): Promise<Attribution> {
  const inode = await socketInodeOf(p);
  if (!inode) return {};
  const pid = await pidOfSocket(inode, uid);
  if (pid === undefined) return {};
  const [exe, cmdline, parents] = await Promise.all([
    readExe(pid).then((e) => e.exe, () => undefined),
    readCmdline(pid).catch(() => undefined),
    parentsOf(pid),
  ]);
  return { pid, ...(exe ? { exe } : {}), ...(cmdline ? { cmdline } : {}), parents };
}
