import { describe, expect, it } from 'vitest';
import { cidrContains, formatAddress, parseCidr } from '../../../helper/profile/cidr.js';
import type { Cidr } from '../../../helper/profile/cidr.js';

function cidr(text: string): Cidr {
  const r = parseCidr(text);
  if (!r.ok) throw new Error(r.message);
  return r.cidr;
}

describe('parseCidr', () => {
  it.each([
    ['198.18.0.0/24', '198.18.0.0/24'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['198.18.0.53/32', '198.18.0.53/32'],
    ['fd00:7467::/64', 'fd00:7467::/64'],
    ['FD00:7467:0:0::/64', 'fd00:7467::/64'],
    ['::/0', '::/0'],
    ['::1/128', '::1/128'],
    ['::ffff:198.18.0.1/128', '::ffff:c612:1/128'],
    ['2001:db8:0:0:1:0:0:1/128', '2001:db8::1:0:0:1/128'],
  ])('%s is %s', (text, canonical) => {
    expect(cidr(text).text).toBe(canonical);
  });

  it.each([
    ['198.18.0.1/24', 'host bits are set; did you mean 198.18.0.0/24?'],
    ['198.18.0.129/25', 'host bits are set; did you mean 198.18.0.128/25?'],
    ['fd00:7467::1/64', 'host bits are set; did you mean fd00:7467::/64?'],
    ['198.18.0.0/33', 'prefix length must be 0..32'],
    ['fd00::/129', 'prefix length must be 0..128'],
    ['198.18.0.0', 'prefix length must be 0..32'],
    ['198.18.0.0/', 'prefix length must be 0..32'],
    ['198.018.0.0/24', '"198.018.0.0" is not an IPv4 or IPv6 address'],
    ['fe80::1%eth0/64', '"fe80::1%eth0" is not an IPv4 or IPv6 address'],
    ['1:2:3:4:5:6:7:8:9/64', '"1:2:3:4:5:6:7:8:9" is not an IPv4 or IPv6 address'],
  ])('%s: %s', (text, message) => {
    expect(parseCidr(text)).toEqual({ ok: false, message });
  });
});

describe('cidrContains', () => {
  it('compares prefixes within one family', () => {
    expect(cidrContains(cidr('198.18.0.0/16'), cidr('198.18.0.20/32'))).toBe(true);
    expect(cidrContains(cidr('198.18.0.0/24'), cidr('198.18.0.0/16'))).toBe(false);
    expect(cidrContains(cidr('198.18.1.0/24'), cidr('198.18.0.20/32'))).toBe(false);
    expect(cidrContains(cidr('::/0'), cidr('198.18.0.0/24'))).toBe(false);
    expect(cidrContains(cidr('fd00:7467::/64'), cidr('fd00:7467::20/128'))).toBe(true);
  });
});

describe('formatAddress', () => {
  it('compresses only the longest run of two or more zero groups', () => {
    expect(formatAddress(cidr('1:0:0:2:0:0:0:3/128').bytes)).toBe('1:0:0:2::3');
    expect(formatAddress(cidr('1:0:2:3:4:5:6:7/128').bytes)).toBe('1:0:2:3:4:5:6:7');
  });
});
