// Precise CIDR parsing for profile destinations: the schema only checks the shape.

import { isIPv4, isIPv6 } from 'node:net';

export interface Cidr {
  family: 4 | 6;
  /** Network address bytes (4 or 16), host bits cleared. */
  bytes: Uint8Array;
  prefix: number;
  /** Canonical text: network address / prefix. */
  text: string;
}

export type CidrResult = { ok: true; cidr: Cidr } | { ok: false; message: string };

export function parseCidr(text: string): CidrResult {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const prefixText = slash < 0 ? '' : text.slice(slash + 1);
  const family = isIPv4(addr) ? 4 : isIPv6(addr) && !addr.includes('%') ? 6 : 0;
  if (family === 0) return { ok: false, message: `"${addr}" is not an IPv4 or IPv6 address` };
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
    return { ok: false, message: `prefix length must be 0..${max}` };
  }
  const prefix = Number(prefixText);
  const bytes = family === 4 ? ipv4Bytes(addr) : ipv6Bytes(addr);
  const network = maskBytes(bytes, prefix);
  const cidrText = `${formatAddress(network)}/${prefix}`;
  if (!network.every((b, i) => b === bytes[i])) {
    return { ok: false, message: `host bits are set; did you mean ${cidrText}?` };
  }
  return { ok: true, cidr: { family, bytes: network, prefix, text: cidrText } };
}

/** Whether every address of `inner` is inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  const masked = maskBytes(inner.bytes, outer.prefix);
  return masked.every((b, i) => b === outer.bytes[i]);
}

function maskBytes(bytes: Uint8Array, prefix: number): Uint8Array {
  return bytes.map((b, i) => {
    const bits = Math.min(8, Math.max(0, prefix - i * 8));
    return b & ((0xff << (8 - bits)) & 0xff);
  });
}

function ipv4Bytes(addr: string): Uint8Array {
  return Uint8Array.from(addr.split('.').map(Number));
}

/** Expects an address that node:net accepts as IPv6 (no zone id). */
function ipv6Bytes(addr: string): Uint8Array {
  let text = addr;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = ipv4Bytes(tail);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const words = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  return Uint8Array.from(words.flatMap((w) => [w >> 8, w & 0xff]));
}

/** IPv4 dotted quad, or IPv6 in RFC 5952 form (longest run of two or more zero groups as `::`). */
export function formatAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const words = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0));
  let best = { start: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > best.len) best = { start: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  if (best.len < 2) return hex(words);
  return `${hex(words.slice(0, best.start))}::${hex(words.slice(best.start + best.len))}`;
}
