// Set elements without overlaps. nft refuses overlapping elements in a set with `flags
// interval` — "conflicting intervals specified" for a plain one (10.0.0.0/24 and 10.0.0.5/32),
// "File exists" for a concatenated one (`10.0.0.0/8 . tcp . 0-65535` and `10.0.0.0/8 . tcp .
// 952`) — and with it the whole transaction. A profile may well name such destinations (a
// subnet, and one host of it with ports), so they are normalised here before rendering: the
// union of what they admit, as disjoint elements (measured with nft 1.0.6 in the lab;
// test/integration/render-nft.test.ts). Pure.
import { isIPv4, isIPv6 } from 'node:net';
import { formatAddress as formatBytes } from '../profile/cidr.js';

export type Family = 4 | 6;

/** Addresses lo..hi (inclusive) × ports plo..phi of one protocol; no protocol: addresses only. */
export interface Box {
  lo: bigint;
  hi: bigint;
  plo: number;
  phi: number;
}

/** Bits of an address of the family. */
const bits = (f: Family) => (f === 4 ? 32 : 128);

/** The address range of a CIDR (shape checked by the caller); host bits are ignored. @throws Error when not an address */
export function cidrRange(cidr: string): { family: Family; lo: bigint; hi: bigint } {
  const [addr = '', len = ''] = cidr.split('/');
  const family: Family = isIPv4(addr) ? 4 : isIPv6(addr) && !addr.includes('%') ? 6 : (() => {
    throw new Error(`refusing to render CIDR ${JSON.stringify(cidr)}`);
  })();
  const prefix = Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits(family)) throw new Error(`refusing to render CIDR ${JSON.stringify(cidr)}`);
  const value = family === 4 ? v4Value(addr) : v6Value(addr);
  const host = (1n << BigInt(bits(family) - prefix)) - 1n;
  const lo = value & ~host & ((1n << BigInt(bits(family))) - 1n);
  return { family, lo, hi: lo | host };
}

function v4Value(addr: string): bigint {
  return addr.split('.').reduce((v, o) => (v << 8n) | BigInt(Number(o)), 0n);
}

function v6Value(addr: string): bigint {
  let text = addr;
  const last = text.lastIndexOf(':');
  if (text.slice(last + 1).includes('.')) {
    const v4 = v4Value(text.slice(last + 1));
    text = `${text.slice(0, last + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const words = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  return words.reduce((v, w) => (v << 16n) | BigInt(w), 0n);
}

/** An address as nft reads it: dotted quad, or IPv6 in RFC 5952 form (helper/profile/cidr.ts). */
export function formatAddress(f: Family, v: bigint): string {
  const n = f === 4 ? 4 : 16;
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = Number((v >> BigInt(8 * (n - 1 - i))) & 0xffn);
  return formatBytes(bytes);
}

/** `net/len` where lo..hi is exactly one prefix (a single address is `/32` or `/128`), else `lo-hi`. */
export function formatRange(f: Family, lo: bigint, hi: bigint): string {
  const size = hi - lo + 1n;
  if ((size & (size - 1n)) === 0n && lo % size === 0n) {
    const len = bits(f) - (size.toString(2).length - 1);
    return `${formatAddress(f, lo)}/${len}`;
  }
  return `${formatAddress(f, lo)}-${formatAddress(f, hi)}`;
}

const portText = (lo: number, hi: number) => (lo === hi ? String(lo) : `${lo}-${hi}`);

/** Merge ranges (inclusive ends) that overlap or touch; sorted by start. */
function mergeRanges(ranges: ReadonlyArray<readonly [bigint, bigint]>): Array<[bigint, bigint]> {
  const sorted = [...ranges].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: Array<[bigint, bigint]> = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && last[1] + 1n >= lo) {
      if (hi > last[1]) last[1] = hi;
    } else out.push([lo, hi]);
  }
  return out;
}

/** Address ranges of boxes (ports ignored): their union as disjoint texts, sorted by address. */
export function addressElements(f: Family, boxes: readonly Box[]): string[] {
  return mergeRanges(boxes.map((b) => [b.lo, b.hi] as const)).map(([lo, hi]) => formatRange(f, lo, hi));
}

/**
 * The union of boxes (addresses × ports, one protocol) as disjoint `addresses . ports`
 * pairs: the address axis is cut at every box's ends; each piece gets the merged ports of
 * the boxes that cover it; neighbouring pieces with the same ports are joined again.
 */
export function addressPortElements(f: Family, boxes: readonly Box[]): Array<[string, string]> {
  if (!boxes.length) return [];
  const cuts = [...new Set(boxes.flatMap((b) => [b.lo, b.hi + 1n]))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const pieces: Array<{ lo: bigint; hi: bigint; ports: Array<[number, number]>; key: string }> = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const lo = cuts[i] as bigint;
    const hi = (cuts[i + 1] as bigint) - 1n;
    const covering = boxes.filter((b) => b.lo <= lo && b.hi >= hi);
    if (!covering.length) continue;
    const ports = mergeRanges(covering.map((b) => [BigInt(b.plo), BigInt(b.phi)] as const)).map(([a, b]) => [Number(a), Number(b)] as [number, number]);
    const key = JSON.stringify(ports);
    const last = pieces[pieces.length - 1];
    if (last && last.key === key && last.hi + 1n === lo) last.hi = hi;
    else pieces.push({ lo, hi, ports, key });
  }
  return pieces.flatMap((p) => p.ports.map(([plo, phi]) => [formatRange(f, p.lo, p.hi), portText(plo, phi)] as [string, string]));
}
