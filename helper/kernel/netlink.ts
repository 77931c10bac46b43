// Netlink messages, built and parsed here (pure, unit-tested); the addon only moves bytes.
// Two sources use them: NFLOG (the gate's drop rule logs to a group; each record is a
// denied attempt) and the proc connector (exec events for the watcher).

const NLMSG_HDRLEN = 16;
const NLA_HDRLEN = 4;
const NLA_TYPE_MASK = 0x3fff;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 1;

export const NETLINK_CONNECTOR = 11;
export const NETLINK_NETFILTER = 12;

const align4 = (n: number) => (n + 3) & ~3;

function nlmsg(type: number, flags: number, seq: number, body: Buffer): Buffer {
  const h = Buffer.alloc(NLMSG_HDRLEN);
  h.writeUInt32LE(NLMSG_HDRLEN + body.length, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt32LE(seq, 8);
  h.writeUInt32LE(0, 12);
  return Buffer.concat([h, body]);
}

function nla(type: number, value: Buffer): Buffer {
  const len = NLA_HDRLEN + value.length;
  const b = Buffer.alloc(align4(len));
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(type, 2);
  value.copy(b, NLA_HDRLEN);
  return b;
}

export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  body: Buffer;
}

/** Split a datagram into netlink messages; a truncated tail is ignored. */
export function parseMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) break;
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      body: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/** An NLMSG_ERROR carries a negative errno (0 is an ack). */
export function errorOf(m: NlMessage): number | undefined {
  return m.type === NLMSG_ERROR && m.body.length >= 4 ? -m.body.readInt32LE(0) : undefined;
}

export function parseAttributes(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + NLA_HDRLEN <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < NLA_HDRLEN || off + len > buf.length) break;
    out.set(buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, buf.subarray(off + NLA_HDRLEN, off + len));
    off += align4(len);
  }
  return out;
}

// ---- NFLOG (nfnetlink_log) ----

const NFNL_SUBSYS_ULOG = 4;
const NFULNL_MSG_PACKET = 0;
const NFULNL_MSG_CONFIG = 1;
const NFULA_CFG_CMD = 1;
const NFULA_CFG_MODE = 2;
const NFULA_CFG_TIMEOUT = 4;
const NFULA_CFG_QTHRESH = 5;
const NFULNL_CFG_CMD_BIND = 1;
const NFULNL_COPY_PACKET = 2;
const NFULA_IFINDEX_INDEV = 4;
const NFULA_IFINDEX_OUTDEV = 5;
const NFULA_PAYLOAD = 9;
const NFULA_PREFIX = 10;
const NFULA_UID = 11;
const NFULA_GID = 14;

function nfgen(family: number, resId: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt8(family, 0);
  b.writeUInt8(0, 1); // NFNETLINK_V0
  b.writeUInt16BE(resId, 2);
  return b;
}

const be32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v, 0);
  return b;
};

/**
 * Bind an NFLOG group and ask for each packet at once (queue threshold 1) with its first
 * `copyRange` bytes: enough for the IP and transport headers.
 */
export function nflogConfigMessages(group: number, copyRange = 128): Buffer[] {
  const type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
  const mode = Buffer.alloc(6);
  mode.writeUInt32BE(copyRange, 0);
  mode.writeUInt8(NFULNL_COPY_PACKET, 4);
  return [
    nlmsg(type, NLM_F_REQUEST | 4 /* NLM_F_ACK */, 1, Buffer.concat([nfgen(0, group), nla(NFULA_CFG_CMD, Buffer.from([NFULNL_CFG_CMD_BIND]))])),
    nlmsg(type, NLM_F_REQUEST | 4, 2, Buffer.concat([
      nfgen(0, group),
      nla(NFULA_CFG_MODE, mode),
      nla(NFULA_CFG_QTHRESH, be32(1)),
      nla(NFULA_CFG_TIMEOUT, be32(1)),
    ])),
  ];
}

export interface NflogRecord {
  prefix: string;
  uid?: number;
  gid?: number;
  indev?: number;
  outdev?: number;
  payload: Buffer;
}

/** NFLOG packet records of one message (other message types give nothing). */
export function parseNflog(m: NlMessage): NflogRecord | undefined {
  if (m.type !== ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET) || m.body.length < 4) return undefined;
  const a = parseAttributes(m.body.subarray(4));
  const payload = a.get(NFULA_PAYLOAD);
  if (!payload) return undefined;
  const u32 = (k: number) => (a.get(k)?.length === 4 ? (a.get(k) as Buffer).readUInt32BE(0) : undefined);
  const rec: NflogRecord = { prefix: (a.get(NFULA_PREFIX) ?? Buffer.alloc(0)).toString('utf8').replace(/\0+$/, ''), payload };
  for (const [k, name] of [[NFULA_UID, 'uid'], [NFULA_GID, 'gid'], [NFULA_IFINDEX_INDEV, 'indev'], [NFULA_IFINDEX_OUTDEV, 'outdev']] as const) {
    const v = u32(k);
    if (v !== undefined) rec[name] = v;
  }
  return rec;
}

export interface PacketInfo {
  family: 4 | 6;
  proto: 'tcp' | 'udp' | 'icmp' | 'other';
  protoNumber: number;
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
}

function ipv6Text(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // Compress the longest run of zero groups, as RFC 5952 asks.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** Addresses, protocol and ports of an IP packet's first bytes. */
export function parsePacket(p: Buffer): PacketInfo | undefined {
  if (p.length < 1) return undefined;
  const version = p.readUInt8(0) >> 4;
  let protoNumber: number;
  let l4: number;
  let info: Omit<PacketInfo, 'proto' | 'protoNumber'>;
  if (version === 4 && p.length >= 20) {
    l4 = (p.readUInt8(0) & 0x0f) * 4;
    protoNumber = p.readUInt8(9);
    info = { family: 4, src: [...p.subarray(12, 16)].join('.'), dst: [...p.subarray(16, 20)].join('.') };
  } else if (version === 6 && p.length >= 40) {
    l4 = 40;
    protoNumber = p.readUInt8(6);
    info = { family: 6, src: ipv6Text(p.subarray(8, 24)), dst: ipv6Text(p.subarray(24, 40)) };
  } else {
    return undefined;
  }
  const proto = protoNumber === 6 ? 'tcp' : protoNumber === 17 ? 'udp' : protoNumber === 1 || protoNumber === 58 ? 'icmp' : 'other';
  const out: PacketInfo = { ...info, proto, protoNumber };
  if ((proto === 'tcp' || proto === 'udp') && p.length >= l4 + 4) {
    out.sport = p.readUInt16BE(l4);
    out.dport = p.readUInt16BE(l4 + 2);
  }
  return out;
}

// ---- proc connector ----

const CN_IDX_PROC = 1;
const CN_VAL_PROC = 1;
const PROC_CN_MCAST_LISTEN = 1;
const PROC_EVENT_EXEC = 0x2;
const CN_MSG_LEN = 20;

export const PROC_CONNECTOR_GROUP = CN_IDX_PROC;

/** Subscribe to process events (host byte order, as the connector expects). */
export function procConnectorListen(): Buffer {
  const cn = Buffer.alloc(CN_MSG_LEN + 4);
  cn.writeUInt32LE(CN_IDX_PROC, 0);
  cn.writeUInt32LE(CN_VAL_PROC, 4);
  cn.writeUInt16LE(4, 16);
  cn.writeUInt32LE(PROC_CN_MCAST_LISTEN, CN_MSG_LEN);
  return nlmsg(NLMSG_DONE, 0, 0, cn);
}

/** The tgid of an exec event, or undefined for any other message. */
export function parseExecEvent(m: NlMessage): number | undefined {
  const b = m.body;
  if (b.length < CN_MSG_LEN + 16 + 8) return undefined;
  if (b.readUInt32LE(0) !== CN_IDX_PROC) return undefined;
  const ev = CN_MSG_LEN;
  if (b.readUInt32LE(ev) !== PROC_EVENT_EXEC) return undefined;
  return b.readUInt32LE(ev + 16 + 4); // exec_proc_event { pid, tgid }
}

// ---- proc connector: every event kind, the kernel's event filter, a socket filter ----
//
// Message layout (include/uapi/linux/connector.h, cn_proc.h), offsets from the start of
// the netlink message: nlmsghdr 0..15; cn_msg { id.idx 16, id.val 20, seq 24, ack 28,
// len 32, flags 34 }; proc_event { what 36, cpu 40, timestamp_ns 44, event_data 52 }.
// Every event_data starts with (pid, tgid) of its subject at 52/56 (fork: the parent's),
// then: exit { exit_code 60, exit_signal 64, parent_pid 68, parent_tgid 72 };
// fork { child_pid 60, child_tgid 64 }; ptrace { tracer_pid 60, tracer_tgid 64 };
// comm { comm[16] 60 }. All in host byte order.

export const PROC_EVENT = {
  none: 0x0,
  fork: 0x1,
  exec: 0x2,
  uid: 0x4,
  gid: 0x40,
  sid: 0x80,
  ptrace: 0x100,
  comm: 0x200,
  coredump: 0x40000000,
  exit: 0x80000000,
} as const;

export type ProcEventKind = 'fork' | 'exec' | 'exit' | 'ptrace' | 'comm';

export type ProcEvent =
  | { kind: 'fork'; parentPid: number; parentTgid: number; childPid: number; childTgid: number }
  | { kind: 'exec'; pid: number; tgid: number }
  | { kind: 'exit'; pid: number; tgid: number; exitCode: number; exitSignal: number; parentPid: number; parentTgid: number }
  | { kind: 'ptrace'; pid: number; tgid: number; tracerPid: number; tracerTgid: number }
  | { kind: 'comm'; pid: number; tgid: number; comm: string };

const EV = CN_MSG_LEN; // proc_event within the cn_msg body
const DATA = EV + 16; // event_data within the body

/** Any proc connector event of the kinds above, or undefined (other kinds, acks, other messages). */
export function parseProcEvent(m: NlMessage): ProcEvent | undefined {
  const b = m.body;
  if (b.length < DATA + 8 || b.readUInt32LE(0) !== CN_IDX_PROC) return undefined;
  const u = (off: number) => b.readUInt32LE(DATA + off);
  const what = b.readUInt32LE(EV);
  const need = (n: number) => b.length >= DATA + n;
  switch (what) {
    case PROC_EVENT.exec:
      return { kind: 'exec', pid: u(0), tgid: u(4) };
    case PROC_EVENT.fork:
      return need(16) ? { kind: 'fork', parentPid: u(0), parentTgid: u(4), childPid: u(8), childTgid: u(12) } : undefined;
    case PROC_EVENT.exit:
      return need(24) ? { kind: 'exit', pid: u(0), tgid: u(4), exitCode: u(8), exitSignal: u(12), parentPid: u(16), parentTgid: u(20) } : undefined;
    case PROC_EVENT.ptrace:
      return need(16) ? { kind: 'ptrace', pid: u(0), tgid: u(4), tracerPid: u(8), tracerTgid: u(12) } : undefined;
    case PROC_EVENT.comm: {
      if (!need(24)) return undefined;
      const raw = b.subarray(DATA + 8, DATA + 24);
      const end = raw.indexOf(0);
      return { kind: 'comm', pid: u(0), tgid: u(4), comm: raw.subarray(0, end < 0 ? raw.length : end).toString('utf8') };
    }
    default:
      return undefined;
  }
}

/**
 * PROC_CN_MCAST_LISTEN with the kernel's event filter (struct proc_input { mcast_op,
 * event_type }, Linux >= 6.6, drivers/connector/cn_proc.c cn_filter): only events whose
 * `what` has a bit in `mask` are sent to this socket. Older kernels ignore a message of
 * this size (and then send nothing): use procConnectorListen() there.
 */
export function procConnectorListenFiltered(mask: number): Buffer {
  const cn = Buffer.alloc(CN_MSG_LEN + 8);
  cn.writeUInt32LE(CN_IDX_PROC, 0);
  cn.writeUInt32LE(CN_VAL_PROC, 4);
  cn.writeUInt16LE(8, 16);
  cn.writeUInt32LE(PROC_CN_MCAST_LISTEN, CN_MSG_LEN);
  cn.writeUInt32LE(mask >>> 0, CN_MSG_LEN + 4);
  return nlmsg(NLMSG_DONE, 0, 0, cn);
}

/** The event_type mask of a set of kinds. */
export function procEventMask(kinds: readonly ProcEventKind[]): number {
  return kinds.reduce((m, k) => (m | PROC_EVENT[k]) >>> 0, 0);
}

/** Whether this kernel release has the proc connector's event filter (6.6+). */
export function hasProcEventFilter(release: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 6 || (major === 6 && minor >= 6);
}

// Classic BPF (Documentation/networking/filter.rst). Loads of packet words are
// big-endian: the host-order fields above are compared with byte-swapped constants.
const BPF_LD_W_ABS = 0x20;
const BPF_TAX = 0x07;
const BPF_JEQ_K = 0x15;
const BPF_JEQ_X = 0x1d;
const BPF_JA = 0x05;
const BPF_RET_K = 0x06;
const OFF_WHAT = NLMSG_HDRLEN + EV;
const OFF_DATA = NLMSG_HDRLEN + DATA;
const ACCEPT = 0xffffffff;

const bswap32 = (v: number) => (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;

interface Ins {
  code: number;
  jt: number | string;
  jf: number | string;
  k: number | string;
  label?: string;
}

/** Resolves labels (jt/jf: conditional, must land within 255; k of `ja`: any distance forward). */
function assemble(prog: Ins[]): Buffer {
  const at = new Map<string, number>();
  prog.forEach((ins, i) => ins.label !== undefined && at.set(ins.label, i));
  const out = Buffer.alloc(prog.length * 8);
  prog.forEach((ins, i) => {
    const rel = (x: number | string) => {
      if (typeof x === 'number') return x;
      const t = at.get(x);
      if (t === undefined || t <= i) throw new Error(`bpf: bad label ${x}`);
      return t - i - 1;
    };
    const jt = ins.code === BPF_JA ? 0 : rel(ins.jt);
    const jf = ins.code === BPF_JA ? 0 : rel(ins.jf);
    if (jt > 255 || jf > 255) throw new Error('bpf: conditional jump too long');
    out.writeUInt16LE(ins.code, i * 8);
    out.writeUInt8(jt, i * 8 + 2);
    out.writeUInt8(jf, i * 8 + 3);
    out.writeUInt32LE((ins.code === BPF_JA ? rel(ins.k) : (ins.k as number)) >>> 0, i * 8 + 4);
  });
  return out;
}

export interface ProcFilterOptions {
  /** Event kinds to pass (plus PROC_EVENT_NONE: the connector's acks). */
  kinds: readonly ProcEventKind[];
  /** Drop thread events: exit and comm of a task that is not its group's leader, fork of a thread. */
  leadersOnly: boolean;
  /** If given, only events whose subject tgid (offset 56: fork: the parent) is one of these. At most 3,000. */
  tgids?: readonly number[];
}

/**
 * A classic BPF socket filter for a proc connector socket (SO_ATTACH_FILTER): struct
 * sock_filter[] in host order, 8 bytes each. The kernel runs it on every event before it
 * is queued, so what it drops never wakes the helper.
 */
export function procEventFilter(opts: ProcFilterOptions): Buffer {
  const ld = (off: number, label?: string): Ins => ({ code: BPF_LD_W_ABS, jt: 0, jf: 0, k: off, ...(label ? { label } : {}) });
  const ret = (k: number, label?: string): Ins => ({ code: BPF_RET_K, jt: 0, jf: 0, k, ...(label ? { label } : {}) });
  const ja = (to: string, label?: string): Ins => ({ code: BPF_JA, jt: 0, jf: 0, k: to, ...(label ? { label } : {}) });
  const kinds = [...new Set(opts.kinds)];
  const tgids = opts.tgids ? [...new Set(opts.tgids)] : undefined;
  if (tgids && tgids.length > 3000) throw new Error('bpf: too many tgids for one filter');
  const next = tgids ? 'pids' : 'accept';
  const prog: Ins[] = [ld(OFF_WHAT), { code: BPF_JEQ_K, jt: 'to-accept', jf: 0, k: bswap32(PROC_EVENT.none) }];
  for (const k of kinds) prog.push({ code: BPF_JEQ_K, jt: `to-${k}`, jf: 0, k: bswap32(PROC_EVENT[k]) });
  prog.push(ret(0), ja('accept', 'to-accept'));
  for (const k of kinds) {
    // pid == tgid: the subject is a thread group leader (fork: the child is a process)
    const leaderCheck = opts.leadersOnly && (k === 'exit' || k === 'comm' || k === 'fork');
    if (!leaderCheck) {
      prog.push(ja(next, `to-${k}`));
      continue;
    }
    const [a, b] = k === 'fork' ? [8, 12] : [0, 4];
    prog.push(ld(OFF_DATA + a, `to-${k}`), { code: BPF_TAX, jt: 0, jf: 0, k: 0 }, ld(OFF_DATA + b));
    prog.push({ code: BPF_JEQ_X, jt: 1, jf: 0, k: 0 }, ret(0), ja(next));
  }
  if (tgids) {
    prog.push(ld(OFF_DATA + 4, 'pids'));
    for (let i = 0; i < tgids.length; i += 200) {
      const block = tgids.slice(i, i + 200);
      block.forEach((t, j) => prog.push({ code: BPF_JEQ_K, jt: block.length - j, jf: 0, k: bswap32(t) }));
      prog.push({ code: BPF_JA, jt: 0, jf: 0, k: 1 }, ret(ACCEPT));
    }
    prog.push(ret(0));
  }
  prog.push(ret(ACCEPT, 'accept'));
  return assemble(prog);
}
