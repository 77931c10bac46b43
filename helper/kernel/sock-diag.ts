// The socket behind a packet, from the kernel's socket tables through sock_diag
// (NETLINK_SOCK_DIAG, inet_diag: include/uapi/linux/inet_diag.h, net/ipv4/inet_diag.c,
// udp_diag.c) instead of parsing /proc/net/{tcp,udp}[6].
//
// One dump per address family, filtered in the kernel by local port (inet_diag_dump_icsk and
// udp_dump skip every socket whose local port is not idiag_sport), gives each candidate's
// addresses, state, owner uid, inode and IPV6_V6ONLY. Both families are asked for every
// packet: an AF_INET6 socket that is not v6-only sends IPv4 (a dual-stack socket connected
// to ::ffff:198.18.0.2 is listed with the v6 sockets, never in /proc/net/tcp).
//
// Choosing (pickSocket, pure): the socket connected to exactly the packet's destination, else
// the one unconnected socket bound to the source port and a compatible address. Two or more
// candidates of the same rank (an SO_REUSEPORT group, SO_REUSEADDR binds) name nothing: the
// kernel's own pick for a reply is not the sender's socket, and a wrong name on a prompt is
// worse than none.
import type { NetlinkSocket } from '../native/index.js';
import { openNetlink } from '../native/index.js';
import { errorOf, parseAttributes, parseMessages } from './netlink.js';
import type { NlMessage, PacketInfo } from './netlink.js';

export const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_MULTI = 2;
const AF_INET = 2;
const AF_INET6 = 10;
const IPPROTO = { tcp: 6, udp: 17 } as const;
const INET_DIAG_SKV6ONLY = 11;
const REQ_LEN = 56; // struct inet_diag_req_v2
const MSG_LEN = 72; // struct inet_diag_msg

/** One socket of a sock_diag dump. Addresses as 16 bytes (IPv4: v4-mapped ::ffff:a.b.c.d). */
export interface DiagSocket {
  family: 4 | 6;
  proto: 'tcp' | 'udp';
  /** TCP state number (include/net/tcp_states.h); UDP: 1 connected, 7 unconnected. */
  state: number;
  src: Buffer;
  sport: number;
  dst: Buffer;
  dport: number;
  uid: number;
  inode: number;
  v6only: boolean;
}

/** A SOCK_DIAG_BY_FAMILY dump request for the sockets of `proto` and `family` with local port `sport`. */
export function inetDiagDumpRequest(family: 4 | 6, proto: 'tcp' | 'udp', sport: number, seq: number): Buffer {
  const b = Buffer.alloc(16 + REQ_LEN);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
  b.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
  b.writeUInt32LE(seq, 8);
  b.writeUInt8(family === 4 ? AF_INET : AF_INET6, 16);
  b.writeUInt8(IPPROTO[proto], 17);
  b.writeUInt32LE(0xffffffff, 20); // every state
  b.writeUInt16BE(sport, 24); // id.idiag_sport: the kernel skips other local ports
  return b;
}

/**
 * A SOCK_DIAG_BY_FAMILY request for the one TCP socket with this 4-tuple (local src:sport,
 * peer dst:dport), answered from the kernel's established hash (inet_diag_find_one_icsk), in
 * the packet's family: an IPv4 tuple also finds a dual-stack AF_INET6 socket, which is hashed
 * under its IPv4 addresses. `src`, `dst`: 16 bytes, IPv4 v4-mapped.
 */
export function inetDiagExactRequest(family: 4 | 6, src: Buffer, sport: number, dst: Buffer, dport: number, seq: number): Buffer {
  const b = Buffer.alloc(16 + REQ_LEN);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
  b.writeUInt16LE(NLM_F_REQUEST, 6);
  b.writeUInt32LE(seq, 8);
  b.writeUInt8(family === 4 ? AF_INET : AF_INET6, 16);
  b.writeUInt8(IPPROTO.tcp, 17);
  b.writeUInt32LE(0xffffffff, 20);
  b.writeUInt16BE(sport, 24);
  b.writeUInt16BE(dport, 26);
  (family === 4 ? src.subarray(12) : src).copy(b, 28);
  (family === 4 ? dst.subarray(12) : dst).copy(b, 44);
  b.writeUInt32LE(0xffffffff, 64); // INET_DIAG_NOCOOKIE
  b.writeUInt32LE(0xffffffff, 68);
  return b;
}

const V4_MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
const mapped = (v4: Buffer) => Buffer.concat([V4_MAPPED_PREFIX, v4]);

/** One inet_diag_msg (with its attributes) of a dump, or undefined for other messages. */
export function parseInetDiagMsg(m: NlMessage, proto: 'tcp' | 'udp'): DiagSocket | undefined {
  if (m.type !== SOCK_DIAG_BY_FAMILY || m.body.length < MSG_LEN) return undefined;
  const b = m.body;
  const fam = b.readUInt8(0);
  if (fam !== AF_INET && fam !== AF_INET6) return undefined;
  const addr = (off: number) => (fam === AF_INET ? mapped(b.subarray(off, off + 4)) : Buffer.from(b.subarray(off, off + 16)));
  const attrs = parseAttributes(b.subarray(MSG_LEN));
  return {
    family: fam === AF_INET ? 4 : 6,
    proto,
    state: b.readUInt8(1),
    sport: b.readUInt16BE(4),
    dport: b.readUInt16BE(6),
    src: addr(8),
    dst: addr(24),
    uid: b.readUInt32LE(64),
    inode: b.readUInt32LE(68),
    v6only: (attrs.get(INET_DIAG_SKV6ONLY)?.readUInt8(0) ?? 0) === 1,
  };
}

/**
 * An address as parsePacket prints it (dotted quad, or IPv6 in hex groups with at most one
 * `::`) as 16 bytes; IPv4 v4-mapped. Throws on anything else.
 */
export function addrBytes(text: string): Buffer {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(text)) return mapped(Buffer.from(text.split('.').map(Number)));
  const halves = text.split('::');
  if (halves.length > 2) throw new Error(`not an IP address: ${text}`);
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : NaN)));
  const head = groups(halves[0] as string);
  const tail = halves.length === 2 ? groups(halves[1] as string) : [];
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 1 && fill !== 0) || fill < 0 || [...head, ...tail].some(Number.isNaN)) throw new Error(`not an IP address: ${text}`);
  const out = Buffer.alloc(16);
  [...head, ...Array<number>(fill).fill(0), ...tail].forEach((g, i) => out.writeUInt16BE(g, 2 * i));
  return out;
}

const isV4Mapped = (a: Buffer) => a.subarray(0, 12).equals(V4_MAPPED_PREFIX);
const isZero = (a: Buffer) => a.every((x) => x === 0);
/** The unspecified address of a socket: 0.0.0.0 (mapped, for AF_INET) or ::. */
const unspecified = (s: DiagSocket, a: Buffer) => isZero(a) || (s.family === 4 && isV4Mapped(a) && isZero(a.subarray(12)));

/**
 * Whether socket `s` could have sent packet `p` (same protocol and source port, given by the
 * dump): 'connected' to exactly its destination, 'unconnected' (no peer) and bound to its
 * source address or a wildcard, or undefined. An IPv4 packet may come from an AF_INET socket
 * or from an AF_INET6 one that is not v6-only (its addresses v4-mapped); an IPv6 packet only
 * from an AF_INET6 socket.
 */
export function socketMatch(s: DiagSocket, p: Pick<PacketInfo, 'family' | 'src' | 'dst' | 'dport'>): 'connected' | 'unconnected' | undefined {
  if (p.family === 6 && s.family !== 6) return undefined;
  if (p.family === 4 && s.family === 6 && s.v6only) return undefined;
  const src = addrBytes(p.src);
  const dst = addrBytes(p.dst);
  if (p.family === 6 && isV4Mapped(src)) return undefined;
  if (!s.src.equals(src) && !unspecified(s, s.src)) return undefined;
  if (s.dport === 0 && unspecified(s, s.dst)) return 'unconnected';
  return s.dst.equals(dst) && s.dport === p.dport ? 'connected' : undefined;
}

/**
 * The one socket that sent packet `p` among `sockets` (those of its protocol and source
 * port), or undefined: none, or two or more equally good (see the file's header). A socket
 * connected to the destination wins over unconnected ones.
 */
export function pickSocket(sockets: readonly DiagSocket[], p: Pick<PacketInfo, 'family' | 'src' | 'dst' | 'dport'>): DiagSocket | undefined {
  const connected: DiagSocket[] = [];
  const unconnected: DiagSocket[] = [];
  for (const s of sockets) {
    if (s.inode === 0) continue; // a TIME_WAIT or request socket: no process holds it
    const m = socketMatch(s, p);
    if (m === 'connected') connected.push(s);
    else if (m === 'unconnected') unconnected.push(s);
  }
  if (connected.length) return connected.length === 1 ? connected[0] : undefined;
  return unconnected.length === 1 ? unconnected[0] : undefined;
}

interface Pending {
  proto: 'tcp' | 'udp';
  out: DiagSocket[];
  resolve: (s: DiagSocket[]) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * sock_diag queries on one netlink socket of the caller's network namespace (the helper's:
 * the gated interfaces' sockets are there), answered by the addon's reader thread.
 */
export class SockDiag {
  private sock: NetlinkSocket | undefined;
  private seq = 1;
  private readonly pending = new Map<number, Pending>();
  private queue: Promise<void> = Promise.resolve();

  /** Opens the socket. Throws the errno text (EPROTONOSUPPORT where sock_diag is not built). */
  open(): void {
    this.sock ??= openNetlink({ protocol: NETLINK_SOCK_DIAG }, (b) => this.onDatagram(b));
  }

  /**
   * The sockets of `proto`, both families, with local port `sport`. Rejects on a netlink
   * error or when the kernel has not answered within `timeoutMs` (milliseconds).
   */
  async socketsOnPort(proto: 'tcp' | 'udp', sport: number, timeoutMs = 2_000): Promise<DiagSocket[]> {
    this.open();
    const a = await this.dump(4, proto, sport, timeoutMs);
    return [...a, ...(await this.dump(6, proto, sport, timeoutMs))];
  }

  /**
   * The TCP socket with exactly this 4-tuple (see inetDiagExactRequest), or undefined (ENOENT:
   * no such socket). Rejects on other errors or no answer within `timeoutMs`.
   */
  async tcpSocket(p: Pick<PacketInfo, 'family' | 'src' | 'dst' | 'sport' | 'dport'>, timeoutMs = 2_000): Promise<DiagSocket | undefined> {
    this.open();
    if (p.sport === undefined || p.dport === undefined) return undefined;
    const src = addrBytes(p.src);
    const dst = addrBytes(p.dst);
    const { sport, dport } = p;
    const found = await this.request('tcp', timeoutMs, (seq) => inetDiagExactRequest(p.family, src, sport, dst, dport, seq)).catch((e: Error) => {
      if (/errno 2$/.test(e.message)) return [];
      throw e;
    });
    return found[0];
  }

  private dump(family: 4 | 6, proto: 'tcp' | 'udp', sport: number, timeoutMs: number): Promise<DiagSocket[]> {
    return this.request(proto, timeoutMs, (seq) => inetDiagDumpRequest(family, proto, sport, seq));
  }

  /**
   * Sends one request once the previous one is answered (a netlink socket runs one dump at a
   * time: EBUSY otherwise); resolves with the sockets of its answer.
   */
  private request(proto: 'tcp' | 'udp', timeoutMs: number, build: (seq: number) => Buffer): Promise<DiagSocket[]> {
    const run = this.queue.then(() => this.send(proto, timeoutMs, build));
    this.queue = run.then(() => undefined, () => undefined);
    return run;
  }

  private send(proto: 'tcp' | 'udp', timeoutMs: number, build: (seq: number) => Buffer): Promise<DiagSocket[]> {
    const seq = this.seq = (this.seq % 0x7fffffff) + 1;
    return new Promise<DiagSocket[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new Error('sock_diag: no answer'));
      }, timeoutMs);
      this.pending.set(seq, { proto, out: [], resolve, reject, timer });
      try {
        (this.sock as NetlinkSocket).send(build(seq));
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(seq);
        reject(e as Error);
      }
    });
  }

  private onDatagram(b: Buffer): void {
    for (const m of parseMessages(b)) {
      const p = this.pending.get(m.seq);
      if (!p) continue;
      const finish = (err?: Error) => {
        clearTimeout(p.timer);
        this.pending.delete(m.seq);
        if (err) p.reject(err);
        else p.resolve(p.out);
      };
      if (m.type === NLMSG_DONE) finish();
      else if (m.type === NLMSG_ERROR) {
        const errno = errorOf(m) ?? 0;
        finish(errno ? new Error(`sock_diag: errno ${errno}`) : undefined);
      } else {
        const s = parseInetDiagMsg(m, p.proto);
        if (s) p.out.push(s);
        // An exact lookup answers with one message and no NLMSG_DONE.
        if (!(m.flags & NLM_F_MULTI)) finish();
      }
    }
  }

  close(): void {
    this.sock?.close();
    this.sock = undefined;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error('sock_diag: closed'));
    }
    this.pending.clear();
  }
}
