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
