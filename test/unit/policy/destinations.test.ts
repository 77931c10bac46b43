import { describe, expect, it } from 'vitest';
import { scopeCovers } from '../../../helper/policy/destinations.js';

const dst = { addr: '198.18.0.2', port: 443, proto: 'tcp' };

describe('scopeCovers', () => {
  it('absent or empty is the whole tunnel, as the ruleset renders it', () => {
    expect(scopeCovers(undefined, dst)).toBe(true);
    expect(scopeCovers([], dst)).toBe(true);
  });

  it('otherwise one destination must take in address, protocol and port', () => {
    expect(scopeCovers([{ cidr: '198.18.0.0/24', proto: 'tcp', ports: [443] }], dst)).toBe(true);
    expect(scopeCovers([{ cidr: '198.18.0.0/24', proto: 'udp' }, { cidr: '10.0.0.0/8' }], dst)).toBe(false);
    expect(scopeCovers([{ cidr: '198.18.0.0/24', ports: [22] }], dst)).toBe(false);
  });
});
