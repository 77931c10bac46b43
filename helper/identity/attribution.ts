// Denied attempts: the refuse chain logs to an NFLOG group (rate-limited); each record is
// parsed and attributed to the process that owns the socket (socket -> inode -> PID), from
// the kernel's tables, never from anything the process says.
import { promises as fs } from 'node:fs';
import type { DeniedAttempt } from '../../common/attempts.js';
import { openNetlink } from '../native/index.js';
import type { NetlinkSocket } from '../native/index.js';
import { errorOf, NETLINK_NETFILTER, nflogConfigMessages, parseMessages, parseNflog, parsePacket } from '../kernel/netlink.js';
import type { PacketInfo } from '../kernel/netlink.js';
import { readCmdline, readExe, parseStat } from '../kernel/proc.js';
import { parseProcNet, socketInodes } from '../kernel/sockets.js';
import { LOG_PREFIX_AUDIT } from '../ruleset/render.js';

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

export interface AttemptReaderDeps {
  group: number;
  onAttempt: (a: DeniedAttempt) => void;
  /** Interface name of an ifindex in our namespace. */
  ifaceName: (index: number) => Promise<string>;
  onError: (message: string) => void;
}

/** Reads the gate's NFLOG group and turns outbound drops into attributed attempts. */
export class AttemptReader {
  private sock: NetlinkSocket | undefined;

  constructor(private readonly deps: AttemptReaderDeps) {}

  start(): void {
    this.sock = openNetlink({ protocol: NETLINK_NETFILTER }, (b) => this.onDatagram(b));
    for (const m of nflogConfigMessages(this.deps.group)) this.sock.send(m);
  }

  private onDatagram(b: Buffer): void {
    if (!b.length) {
      this.deps.onError('the kernel dropped NFLOG records (reader too slow)');
      return;
    }
    for (const m of parseMessages(b)) {
      const err = errorOf(m);
      if (err) this.deps.onError(`NFLOG group ${this.deps.group}: errno ${err}${err === 16 ? ' (another reader holds this group)' : ''}`);
      const rec = parseNflog(m);
      if (!rec || rec.outdev === undefined) continue; // inbound drops are counted, not attributed
      const pkt = parsePacket(rec.payload);
      if (!pkt) continue;
      const time = new Date().toISOString();
      void (async () => {
        const who = await attribute(pkt, rec.uid);
        const port = pkt.dport;
        this.deps.onAttempt({
          time,
          uid: rec.uid ?? -1,
          ...who,
          dst: { addr: pkt.dst, ...(port !== undefined ? { port } : {}), proto: pkt.proto },
          iface: await this.deps.ifaceName(rec.outdev as number).catch(() => `if${rec.outdev}`),
          mode: rec.prefix === LOG_PREFIX_AUDIT ? 'audit' : 'enforce',
        });
      })().catch((e: Error) => this.deps.onError(`attributing a dropped packet: ${e.message}`));
    }
  }

  stop(): void {
    this.sock?.close();
    this.sock = undefined;
  }
}
