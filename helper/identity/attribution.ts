// Attribution of a dropped packet to the process that sent it, from the kernel's tables,
// never from anything the process says. helper/kernel/nflog-reader.ts reads the NFLOG
// records this is applied to.
//
// Sources, best first:
// 1. The kernel's record made at the packet (helper/kernel/send-trace.ts, eBPF programs on
//    the netfilter drop: the task that was sending, its tgid and exe path), when it loaded:
//    used when recent (2 s), not shared by two processes, complete and of the record's uid.
//    It is the only source that names a program that sent and exited before the helper
//    looked (a burst of datagrams from a process that ends at once). argv and parents are
//    added from /proc only while the same process (pid and start time) still runs.
// 2. The socket, looked up while it exists: sock_diag (helper/kernel/sock-diag.ts) by the
//    packet's 4-tuple (TCP: one exact lookup in the established hash) or local port (UDP:
//    a dump filtered in the kernel), in both address families, so a dual-stack AF_INET6
//    socket sending IPv4 is found; /proc/net/{tcp,udp}[6] (all four tables) where sock_diag
//    cannot be used. Then the process holding the socket inode (/proc/PID/fd, processes of
//    the socket's uid only) and its parents (/proc/PID/stat).
// Never a guess: a socket that two equally good candidates could be (SO_REUSEPORT), a socket
// whose owner differs from the record's uid, or one held by processes of different binaries
// names nobody.
//
// Measured (bench/attribution.ts, bench/RESULTS.md): sock_diag TCP exact lookup ~0.2-0.5 ms
// including the hop through the reader thread, against a TCP dump that walks the whole
// established hash (2-20 ms here); UDP dump by port ~0.4-0.6 ms.
import { promises as fs } from 'node:fs';
import type { PacketInfo } from '../kernel/netlink.js';
import { readCmdline, readExe, parseStat } from '../kernel/proc.js';
import { SendTrace } from '../kernel/send-trace.js';
import type { SendRecord } from '../kernel/send-trace.js';
import { pickSocket, SockDiag } from '../kernel/sock-diag.js';
import type { DiagSocket } from '../kernel/sock-diag.js';
import { parseSocketTable, socketInodes } from '../kernel/sockets.js';
import { logError } from '../../common/node/log.js';

/** Who sent a packet: the owning process, its exe and argv, and up to 4 ancestors (nearest first). */
export interface Attribution {
  pid?: number;
  exe?: string;
  cmdline?: string[];
  parents?: Array<{ pid: number; exe: string }>;
  /** Drops this packet stands for (common/attempts.ts DeniedAttempt.repeats), when the kernel counted more than one. */
  repeats?: number;
}

/** The socket behind a packet: its inode and owner uid. */
export interface SocketOwner {
  inode: string;
  uid?: number;
}

let diag: SockDiag | undefined;
let diagBroken = false;
let trace: SendTrace | undefined;

/** A kernel record counts for a packet read this long after the record's last drop (ns). */
const RECORD_FRESH_NS = 2_000_000_000n;
/** USER_HZ: /proc/PID/stat's start time is in these ticks since boot. */
const TICK_NS = 10_000_000n;

/**
 * Loads the kernel's record of senders (helper/kernel/send-trace.ts); not with
 * TUNNELGATE_SEND_TRACE=off in the environment. Returns undefined when
 * it is in force, or the sentence `status` shows when it is not (attribution then reads sockets
 * only, and a program that exits at once stays unnamed).
 */
export function startSendTrace(load: () => SendTrace = () => SendTrace.load()): string | undefined {
  if (trace) return undefined;
  if (process.env.TUNNELGATE_SEND_TRACE === 'off') return 'denied attempts are attributed from sockets only (TUNNELGATE_SEND_TRACE=off): a program that sends and exits at once is not named';
  try {
    trace = load();
    return undefined;
  } catch (e) {
    const why = (e as Error).message.split('\n')[0];
    return `denied attempts are attributed from sockets only (the kernel's record of senders could not be loaded: ${why}): a program that sends and exits at once is not named`;
  }
}

/**
 * Whether record `r` names the sender of a packet read now (`nowNs`, CLOCK_MONOTONIC) with
 * record uid `uid`: recent, not shared by two processes, its exe path complete, the same uid.
 * Pure.
 */
export function recordNames(r: SendRecord, uid: number | undefined, nowNs: bigint): boolean {
  return !r.shared && r.exe !== undefined && nowNs - r.lastNs <= RECORD_FRESH_NS && (uid === undefined || r.uid === uid);
}

/** Per flow and process (key, tgid, first drop): attempts seen, and drops they have stood for. */
type Reported = Map<string, { firstNs: bigint; attempts: number; count: number }>;
const reported: Reported = new Map();
const MAX_REPORTED = 4096;

/**
 * How many drops an attempt with record `r` stands for (`attempt` false: a later look with
 * no attempt of its own). A flow's attempts stand, together, for max(the kernel's count,
 * the number of attempts): the log is rate-limited (the kernel counted drops it did not
 * show), and the kernel does not count retransmissions from a timer (the log showed drops
 * it did not count). So an attempt whose drop an earlier attempt already counted stands for
 * 0. Updates `seen`.
 */
export function repeatsOf(seen: Reported, key: string, r: Pick<SendRecord, 'firstNs' | 'count'>, attempt = true): number {
  const prev = seen.get(key);
  const same = prev !== undefined && prev.firstNs === r.firstNs;
  const attempts = (same ? prev.attempts : 0) + (attempt ? 1 : 0);
  const before = same ? prev.count : 0;
  const total = Math.max(before, r.count, attempts);
  if (seen.size >= MAX_REPORTED && !prev) seen.clear();
  seen.set(key, { firstNs: r.firstNs, attempts, count: total });
  return total - before;
}

/** The attribution from a kernel record; argv and parents only while the same process (by start time) lives. */
async function fromRecord(r: SendRecord, key: string): Promise<Attribution> {
  const n = repeatsOf(reported, `${key}/${r.tgid}`, r);
  const base = { pid: r.tgid, exe: r.exe as string, ...(n !== 1 ? { repeats: n } : {}) };
  const stat = await fs.readFile(`/proc/${r.tgid}/stat`, 'utf8').catch(() => '');
  const same = stat !== '' && BigInt(parseStat(stat).startTime) === r.startNs / TICK_NS;
  if (!same) return base;
  const [cmdline, parents] = await Promise.all([readCmdline(r.tgid).catch(() => undefined), parentsOf(r.tgid)]);
  return { ...base, ...(cmdline ? { cmdline } : {}), parents };
}

/** The kernel's record for packet `p`, if it names the sender (recordNames). */
function recordFor(p: PacketInfo, uid: number | undefined): SendRecord | undefined {
  if (!trace || (p.family !== 4 && p.family !== 6)) return undefined;
  try {
    const r = trace.lookup(p);
    return r && recordNames(r, uid, process.hrtime.bigint()) ? r : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The socket that sent packet `p` in our namespace, by sock_diag (see the header); undefined
 * when there is none or it is ambiguous. Throws when sock_diag itself fails.
 */
export async function socketByDiag(p: PacketInfo, d: SockDiag): Promise<SocketOwner | undefined> {
  if (p.sport === undefined || (p.proto !== 'tcp' && p.proto !== 'udp')) return undefined;
  let s: DiagSocket | undefined;
  if (p.proto === 'tcp') {
    s = await d.tcpSocket(p);
    if (s && s.inode === 0) s = undefined;
  } else {
    s = pickSocket(await d.socketsOnPort('udp', p.sport), p);
  }
  return s ? { inode: String(s.inode), uid: s.uid } : undefined;
}

/**
 * The socket inode owning local port `sport` of `proto`, from /proc/net of our namespace:
 * the IPv4 and the IPv6 table for an IPv4 packet (a dual-stack socket is listed in tcp6/udp6),
 * the IPv6 table for IPv6. Undefined when no socket, or several, hold the port.
 */
export async function socketInodeOf(p: PacketInfo): Promise<string | undefined> {
  if (p.sport === undefined || (p.proto !== 'tcp' && p.proto !== 'udp')) return undefined;
  const files = p.family === 6 ? [`${p.proto}6`] : [p.proto, `${p.proto}6`];
  const inodes = new Set<string>();
  for (const f of files) {
    for (const r of parseSocketTable(await fs.readFile(`/proc/net/${f}`, 'utf8').catch(() => ''), p.proto)) {
      if (r.port !== p.sport || r.inode === '0') continue;
      // A v4 packet from an AF_INET6 socket: bound to :: or to a v4-mapped address.
      if (f.endsWith('6') && p.family === 4 && r.addr !== '::' && !r.addr.startsWith('::ffff:')) continue;
      inodes.add(r.inode);
    }
  }
  return inodes.size === 1 ? [...inodes][0] : undefined;
}

/**
 * The process holding socket `inode`, among the processes of `uid` (every process if
 * undefined), described as soon as it is found (a short-lived sender may exit while the rest
 * of /proc is read). Undefined when none holds it, or processes of different binaries do (a
 * socket shared across an exec: which one sent is not known). Of several processes of one
 * binary, the newest.
 */
export async function ownerOfSocket(inode: string, uid: number | undefined): Promise<Attribution | undefined> {
  // Newest first: the sender of a connection attempt is most often a recent process.
  const pids = (await fs.readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => b - a);
  let first: Promise<Attribution> | undefined;
  const others: number[] = [];
  for (let i = 0; i < pids.length; i += 32) {
    const batch = pids.slice(i, i + 32);
    const found = await Promise.all(batch.map(async (pid) => {
      if (uid !== undefined && (await fs.stat(`/proc/${pid}`).catch(() => undefined))?.uid !== uid) return undefined;
      return (await socketInodes(pid)).has(inode) ? pid : undefined;
    }));
    for (const pid of found) {
      if (pid === undefined) continue;
      if (!first) first = describePid(pid);
      else others.push(pid);
    }
  }
  if (!first) return undefined;
  const who = await first;
  if (!others.length) return who;
  const exes = await Promise.all(others.map((pid) => readExe(pid).then((e) => e.exe, () => undefined)));
  return exes.every((e) => e === undefined || e === who.exe) ? who : undefined;
}

/** PID of the process holding socket `inode` (ownerOfSocket). */
export async function pidOfSocket(inode: string, uid: number | undefined): Promise<number | undefined> {
  return (await ownerOfSocket(inode, uid))?.pid;
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

/** The socket behind `p` (sock_diag, else /proc/net); sock_diag failing once switches to /proc/net for good. */
async function socketOf(p: PacketInfo): Promise<SocketOwner | undefined> {
  if (!diagBroken) {
    try {
      diag ??= new SockDiag();
      return await socketByDiag(p, diag);
    } catch (e) {
      if (!diag) return undefined; // closed: the helper is stopping
      diagBroken = true;
      logError(`sock_diag unavailable (${(e as Error).message}); attributing from /proc/net`);
    }
  }
  const inode = await socketInodeOf(p);
  return inode ? { inode } : undefined;
}

/** Whether attribution uses sock_diag ('sock_diag') or has fallen back to /proc/net. */
export function socketSource(): 'sock_diag' | '/proc/net' {
  return diagBroken ? '/proc/net' : 'sock_diag';
}

/** The process facts of `pid`: exe, argv and parents, each absent when it could not be read (the process has gone). */
export async function describePid(pid: number): Promise<Attribution> {
  const [exe, cmdline, parents] = await Promise.all([
    readExe(pid).then((e) => e.exe, () => undefined),
    readCmdline(pid).catch(() => undefined),
    parentsOf(pid),
  ]);
  return { pid, ...(exe ? { exe } : {}), ...(cmdline ? { cmdline } : {}), parents };
}

/**
 * The process that sent packet `p` (of kernel uid `uid`, from the NFLOG record, if known):
 * from the kernel's record of the drop when it names one, else from the socket while it
 * exists. Empty when the socket is gone, ambiguous, owned by another
 * uid than the record's, or no process holds it any more; never throws for a vanished
 * process (/proc reads that fail count as not found).
 */
export async function attribute(p: PacketInfo, uid: number | undefined): Promise<Attribution> {
  const key = `${p.family}/${p.protoNumber}/${p.src}/${p.sport ?? 0}/${p.dst}/${p.dport ?? 0}`;
  const rec = recordFor(p, uid);
  if (rec) return fromRecord(rec, key);
  const sock = await socketOf(p);
  const who = sock && (uid === undefined || sock.uid === undefined || sock.uid === uid) ? await ownerOfSocket(sock.inode, sock.uid ?? uid) : undefined;
  if (who) return who;
  // The NFLOG record can reach us before the kernel finished recording the drop that follows it.
  const late = recordFor(p, uid);
  return late ? fromRecord(late, key) : {};
}

/**
 * Drops of packet `p`'s flow by process `pid` that the kernel counted since the last
 * attempt reported for them (0 if none, or no record): the log is rate-limited, so the rest
 * of a burst is only seen here, later.
 */
export function unreportedDrops(p: PacketInfo, pid: number): number {
  const key = `${p.family}/${p.protoNumber}/${p.src}/${p.sport ?? 0}/${p.dst}/${p.dport ?? 0}/${pid}`;
  if (!trace || !reported.has(key)) return 0;
  let r: SendRecord | undefined;
  try {
    r = trace.lookup(p);
  } catch {
    return 0;
  }
  if (!r || r.tgid !== pid) return 0;
  const prev = reported.get(key);
  if (!prev || prev.firstNs !== r.firstNs) return 0;
  return repeatsOf(reported, key, r, false);
}

/** Closes the sock_diag socket and unloads the kernel's record of senders (the helper's stop). */
export function closeAttribution(): void {
  diag?.close();
  diag = undefined;
  trace?.close();
  trace = undefined;
}
