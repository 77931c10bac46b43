// Which local sockets admitted processes take new inbound flows on, from /proc: the kernel's
// socket tables (/proc/net/tcp, tcp6, udp, udp6 of the helper's network namespace, with
// each socket's bound address) joined with the socket inodes each process holds
// (/proc/PID/fd); IPV6_V6ONLY, which /proc does not show, from sock_diag (`ss -e`).
import { promises as fs } from 'node:fs';
import { run } from './run.js';
import type { Runner } from './run.js';

export interface Listener {
  proto: 'tcp' | 'udp';
  port: number;
  /**
   * Local address the socket is bound to, as the kernel prints it decoded: `0.0.0.0`,
   * `::` (wildcards), `198.18.0.1`, `fd00:7467::1`, `::ffff:198.18.0.1`. Absent (callers
   * before issue 9.7): treated as a wildcard of both families.
   */
  addr?: string;
  /** `::` with IPV6_V6ONLY: it receives no IPv4, so it admits none (another socket may own 0.0.0.0 on its port). */
  v6only?: boolean;
}

/** A socket of /proc/net/{tcp,udp}[6]: decoded local address, port, state and inode. */
export interface SocketRow {
  proto: 'tcp' | 'udp';
  addr: string;
  port: number;
  state: string;
  inode: string;
  /** IPV6_V6ONLY (from sock_diag via `ss -e`; /proc/net does not show it). */
  v6only?: boolean;
}

const TCP_LISTEN = '0A';

/** Rows of a /proc/net/{tcp,udp}[6] table: local port, state and socket inode. */
export function parseProcNet(text: string): Array<{ port: number; state: string; inode: string }> {
  const rows = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = f[1] as string;
    const port = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    rows.push({ port, state: f[3] as string, inode: f[9] as string });
  }
  return rows;
}

/**
 * Decode the kernel's hex local address: 8 hex digits (IPv4) or 32 (IPv6), each 32-bit word
 * printed in host byte order (/proc/net/tcp, net/ipv4/tcp_ipv4.c get_tcp4_sock; little-endian
 * here). IPv6 is printed in the canonical short form of RFC 5952, v4-mapped as ::ffff:a.b.c.d.
 */
export function decodeProcAddr(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes: number[] = [];
  for (const w of words) {
    const v = parseInt(w, 16);
    bytes.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.length !== 16) throw new Error(`not a /proc/net address: ${hex}`);
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${bytes.slice(12).join('.')}`;
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i] as number) << 8) | (bytes[2 * i + 1] as number));
  // The longest run of two or more zero groups becomes '::' (the first one on a tie).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hexOf = (g: readonly number[]) => g.map((x) => x.toString(16)).join(':');
  if (best < 0) return hexOf(groups);
  return `${hexOf(groups.slice(0, best))}::${hexOf(groups.slice(best + bestLen))}`;
}

/** Rows of a /proc/net/{tcp,udp}[6] table with their decoded local addresses. */
export function parseSocketTable(text: string, proto: 'tcp' | 'udp'): SocketRow[] {
  const rows: SocketRow[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = f[1] as string;
    const colon = local.lastIndexOf(':');
    rows.push({ proto, addr: decodeProcAddr(local.slice(0, colon)), port: parseInt(local.slice(colon + 1), 16), state: f[3] as string, inode: f[9] as string });
  }
  return rows;
}

/** Inodes of the sockets `ss -Htuanle` marks `v6only:1`. */
export function v6onlyInodes(ssText: string): Set<string> {
  const out = new Set<string>();
  for (const line of ssText.split('\n')) {
    const m = /\bino:(\d+)\b/.exec(line);
    if (m && /\bv6only:1\b/.test(line)) out.add(m[1] as string);
  }
  return out;
}

/**
 * Which sockets of the admitted processes may take new inbound flows, pure.
 *
 * Admitted: TCP listeners and UDP sockets (any state: a connected one is early-demuxed, see
 * render.ts) held by the admitted processes. A listener is *contested* when a socket of any
 * other process would give the same nft set element (same protocol, port and bound address,
 * or both wildcards of a family; `::` counts as IPv4 too): the `socket` expression cannot
 * tell the two apart, and the kernel may deliver to either (SO_REUSEADDR on both, or an
 * SO_REUSEPORT group of one user). A contested listener is left out (the port is refused
 * for that address: fail closed) and reported. A specific bind of another process next to
 * an admitted wildcard is NOT contested: the kernel delivers to the specific socket, which
 * `socket wildcard 1` does not match, so those packets are refused and the rest pass.
 */
export function classifyListeners(rows: readonly SocketRow[], admittedInodes: ReadonlySet<string>): { listeners: Listener[]; contested: Listener[] } {
  const taking = (r: SocketRow) => r.port > 0 && r.inode !== '0' && (r.proto === 'udp' || r.state === TCP_LISTEN);
  const keysOf = (r: { proto: string; port: number; addr: string; v6only?: boolean }): string[] => {
    if (r.addr === '::') return r.v6only ? [`${r.proto}/6/*/${r.port}`] : [`${r.proto}/4/*/${r.port}`, `${r.proto}/6/*/${r.port}`];
    if (r.addr === '0.0.0.0') return [`${r.proto}/4/*/${r.port}`];
    if (r.addr.startsWith('::ffff:') && r.addr.includes('.')) return [`${r.proto}/4/${r.addr.slice(7)}/${r.port}`];
    return [`${r.proto}/${r.addr.includes(':') ? 6 : 4}/${r.addr}/${r.port}`];
  };
  const others = new Set<string>();
  for (const r of rows) if (taking(r) && !admittedInodes.has(r.inode)) for (const k of keysOf(r)) others.add(k);
  const listeners = new Map<string, Listener>();
  const contested = new Map<string, Listener>();
  for (const r of rows) {
    if (!taking(r) || !admittedInodes.has(r.inode)) continue;
    const l: Listener = { proto: r.proto, port: r.port, addr: r.addr, ...(r.v6only ? { v6only: true } : {}) };
    const id = `${r.proto}/${r.addr}/${r.port}`;
    if (keysOf(r).some((k) => others.has(k))) contested.set(id, l);
    else listeners.set(id, l);
  }
  const order = (a: Listener, b: Listener) => a.proto.localeCompare(b.proto) || a.port - b.port || (a.addr ?? '').localeCompare(b.addr ?? '');
  return { listeners: [...listeners.values()].sort(order), contested: [...contested.values()].sort(order) };
}

export async function socketInodes(pid: number): Promise<Set<string>> {
  const out = new Set<string>();
  const fds = await fs.readdir(`/proc/${pid}/fd`).catch(() => []);
  await Promise.all(
    fds.map(async (fd) => {
      const link = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m) out.add(m[1] as string);
    }),
  );
  return out;
}

/**
 * The sockets on which these processes accept new inbound flows (TCP listeners, UDP
 * sockets), by bound address, from /proc/net/{tcp,udp}[6] of the caller's namespace and
 * /proc/PID/fd; contested ones are left out (classifyListeners). `procNet`: the socket tables
 * of another namespace (`/proc/PID/net` of a process inside it), for tests.
 */
export async function inspectListeners(pids: readonly number[], procNet = '/proc/net', runner: Runner = run): Promise<{ listeners: Listener[]; contested: Listener[] }> {
  if (!pids.length) return { listeners: [], contested: [] };
  const inodes = new Set<string>();
  for (const pid of pids) for (const i of await socketInodes(pid)) inodes.add(i);
  const rows: SocketRow[] = [];
  for (const [file, proto] of [['tcp', 'tcp'], ['tcp6', 'tcp'], ['udp', 'udp'], ['udp6', 'udp']] as const) {
    rows.push(...parseSocketTable(await fs.readFile(`${procNet}/${file}`, 'utf8').catch(() => ''), proto));
  }
  // Whether a `::` socket takes IPv4 too is only in sock_diag: ask ss when there is one.
  if (rows.some((r) => r.addr === '::')) {
    const v6only = v6onlyInodes((await runner('ss', ['-Htuanle'])).stdout);
    for (const r of rows) if (r.addr === '::' && v6only.has(r.inode)) r.v6only = true;
  }
  return classifyListeners(rows, inodes);
}

/** Listeners of these processes that new inbound flows may reach (inspectListeners without the contested ones). */
export async function listeningPorts(pids: readonly number[]): Promise<Listener[]> {
  return (await inspectListeners(pids)).listeners;
}
