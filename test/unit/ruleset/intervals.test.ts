// Disjoint set elements (helper/ruleset/intervals.ts): nft refuses overlapping elements of an
// interval set, so render normalises each set to the union of its destinations.
import { describe, expect, it } from 'vitest';
import { addressElements, addressPortElements, cidrRange, formatRange } from '../../../helper/ruleset/intervals.js';
import type { Box } from '../../../helper/ruleset/intervals.js';

const box = (cidr: string, plo = 0, phi = 0xffff): Box => ({ ...cidrRange(cidr), plo, phi });

describe('set elements without overlaps', () => {
  it('addresses: a /32 inside a /24 is the /24; touching ranges join; a v6 host inside its /64 too', () => {
    expect(addressElements(4, [box('10.0.0.0/24'), box('10.0.0.5/32')])).toEqual(['10.0.0.0/24']);
    expect(addressElements(4, [box('10.0.0.0/25'), box('10.0.0.128/25')])).toEqual(['10.0.0.0/24']);
    expect(addressElements(4, [box('10.0.0.0/24'), box('10.0.1.0/25')])).toEqual(['10.0.0.0-10.0.1.127']);
    expect(addressElements(6, [box('fd00:7467::/64'), box('fd00:7467::9/128')])).toEqual(['fd00:7467::/64']);
    expect(addressElements(4, [box('198.18.0.53/32'), box('198.18.1.0/24')])).toEqual(['198.18.0.53/32', '198.18.1.0/24']);
  });

  it('addresses × ports: a port-less /24 and a ported /32 in it become one element; a ported /24 and a port-less /32 are split around the host', () => {
    expect(addressPortElements(4, [box('10.0.0.0/24'), box('10.0.0.5/32', 443, 443)])).toEqual([['10.0.0.0/24', '0-65535']]);
    expect(addressPortElements(4, [box('10.0.0.0/24', 443, 443), box('10.0.0.5/32')])).toEqual([
      ['10.0.0.0-10.0.0.4', '443'],
      ['10.0.0.5/32', '0-65535'],
      ['10.0.0.6-10.0.0.255', '443'],
    ]);
    expect(addressPortElements(4, [box('10.0.0.0/8'), box('10.0.0.0/8', 952, 952)])).toEqual([['10.0.0.0/8', '0-65535']]);
    expect(addressPortElements(6, [box('fd00::/64', 22, 22), box('fd00::/64', 23, 23), box('fd00::/64', 443, 443)])).toEqual([
      ['fd00::/64', '22-23'],
      ['fd00::/64', '443'],
    ]);
  });

  it('the union is exactly what the boxes admit (every address and port checked on a small space)', () => {
    const boxes = [box('10.0.0.0/29', 10, 20), box('10.0.0.2/31', 15, 30), box('10.0.0.6/32'), box('10.0.0.12/30', 5, 5)];
    const inBoxes = (a: bigint, p: number) => boxes.some((b) => b.lo <= a && a <= b.hi && b.plo <= p && p <= b.phi);
    const parsed = addressPortElements(4, boxes).map(([a, p]) => {
      const [alo, ahi] = a.includes('-') ? a.split('-').map((x) => cidrRange(`${x}/32`).lo) : [cidrRange(a).lo, cidrRange(a).hi];
      const [plo, phi] = p.split('-').map(Number);
      return { alo: alo as bigint, ahi: ahi as bigint, plo: plo as number, phi: (phi ?? plo) as number };
    });
    for (let i = 0; i < parsed.length; i++)
      for (let j = i + 1; j < parsed.length; j++) {
        const x = parsed[i]!;
        const y = parsed[j]!;
        expect(x.alo <= y.ahi && y.alo <= x.ahi && x.plo <= y.phi && y.plo <= x.phi, `${i} and ${j} overlap`).toBe(false);
      }
    const base = cidrRange('10.0.0.0/32').lo;
    for (let a = base; a < base + 16n; a++)
      for (let p = 0; p < 40; p++) expect(parsed.some((e) => e.alo <= a && a <= e.ahi && e.plo <= p && p <= e.phi), `${a} ${p}`).toBe(inBoxes(a, p));
  });

  it('formats: a prefix as net/len, a single address with its full length, else lo-hi', () => {
    expect(formatRange(4, 0n, 0xffffffffn)).toBe('0.0.0.0/0');
    expect(formatRange(6, 1n, 1n)).toBe('::1/128');
    expect(formatRange(4, 1n, 2n)).toBe('0.0.0.1-0.0.0.2');
    expect(cidrRange('::ffff:10.0.0.1/128').lo).toBe(0xffff0a000001n);
  });
});
