// Issue 9.2, 9.7, 9.8: the inbound chain, the listener sets by bound address and the set of
// gated interface indexes, as exact nft text. The same text is loaded by nft in a lab
// namespace in test/integration/bypass-net.test.ts.
import { describe, expect, it } from 'vitest';
import { listenerElements, renderInterfaceIndexes, renderListeners, renderTable } from '../../../helper/ruleset/render.js';
import type { Policy } from '../../../common/policy.js';
import { policyOf, profile } from '../policy/fixtures.js';
import { gateChainText, setBlock } from './expected-chains.js';

const ids = (policy: Policy) => new Map(policy.rules.filter((r) => r.action === 'allow' && r.binary).map((r, i) => [r.key, 0x74670001 + i]));
const chain = (text: string, name: string) => {
  const start = text.indexOf(`\tchain ${name} {\n`);
  return text.slice(start, text.indexOf('\t}\n', start) + 3);
};
const setText = (text: string, name: string) => {
  const start = text.indexOf(`\tset ${name} {\n`);
  return text.slice(start, text.indexOf('\n\t}\n', start) + 4);
};

describe('the inbound chain', () => {
  const policy = policyOf([profile({ interfaces: ['wg0'], rules: [{ id: 'ssh', binary: { path: '/usr/bin/ssh' } }] })]);
  const text = renderTable({
    policy,
    classids: ids(policy),
    nflogGroup: 7467,
    interfaceIndexes: [12, 3, 12],
    listeners: [
      { proto: 'udp', port: 9500, addr: '127.0.0.1' },
      { proto: 'tcp', port: 22, addr: '::' },
      { proto: 'udp', port: 53, addr: '0.0.0.0' },
      { proto: 'tcp', port: 80, addr: 'fd00:7467::1' },
      { proto: 'tcp', port: 81, addr: '::ffff:198.18.0.1' },
    ],
  });

  it('accepts known flows, early-demuxed sockets of admitted processes, and new flows to admitted listeners only', () => {
    expect(chain(text, 'gate_in')).toBe(gateChainText('in'));
  });

  it('keys each listener by its bound address; wildcards by family (:: covers IPv4 too)', () => {
    const key = 'daddr . meta l4proto . th dport';
    expect(setText(text, 'listen4')).toBe(setBlock('listen4', `ip ${key}`, ['127.0.0.1 . udp . 9500', '198.18.0.1 . tcp . 81']));
    expect(setText(text, 'listen6')).toBe(setBlock('listen6', `ip6 ${key}`, ['fd00:7467::1 . tcp . 80']));
    expect(setText(text, 'listen_wild')).toBe(setBlock('listen_wild', 'meta nfproto . meta l4proto . th dport', ['ipv4 . tcp . 22', 'ipv4 . udp . 53', 'ipv6 . tcp . 22']));
  });

  it('gates interfaces by index as well as by name, in both directions', () => {
    expect(setText(text, 'gated_if')).toBe('\tset gated_if {\n\t\ttype iface_index\n\t\telements = { 3, 12 }\n\t}\n');
    expect(chain(text, 'output')).toContain('\t\toifname { "wg0" } jump gate_out\n\t\tmeta oif @gated_if jump gate_out\n');
    expect(chain(text, 'input')).toContain('\t\tiifname { "wg0" } jump gate_in\n\t\tmeta iif @gated_if jump gate_in\n');
  });

  it('replaces the index set in one transaction and refuses what is not an index', () => {
    expect(renderInterfaceIndexes([7, 3, 7])).toBe('flush set inet tunnelgate gated_if\nadd element inet tunnelgate gated_if { 3, 7 }\n');
    expect(renderInterfaceIndexes([])).toBe('flush set inet tunnelgate gated_if\n');
    for (const bad of [0, -1, 1.5, 2 ** 31]) expect(() => renderInterfaceIndexes([bad])).toThrow(/interface index/);
  });

  it('refuses listener fields that could inject nft syntax', () => {
    expect(() => listenerElements([{ proto: 'udp', port: 1, addr: '1.2.3.4 } accept' }])).toThrow(/address/);
    expect(() => listenerElements([{ proto: 'udp', port: 0, addr: '1.2.3.4' }])).toThrow(/port/);
    expect(() => listenerElements([{ proto: 'icmp' as 'udp', port: 1 }])).toThrow(/protocol/);
  });

  it('a v6-only wildcard admits IPv6 only', () => {
    expect(listenerElements([{ proto: 'udp', port: 9510, addr: '::', v6only: true }])).toEqual({ v4: [], v6: [], wild: ['ipv6 . udp . 9510'] });
  });

  it('renderListeners fills the three sets from bound addresses', () => {
    expect(renderListeners([{ proto: 'udp', port: 9500, addr: '198.18.0.1' }, { proto: 'udp', port: 9500, addr: '::' }])).toBe(
      'flush set inet tunnelgate listen4\nadd element inet tunnelgate listen4 { 198.18.0.1 . udp . 9500 }\n' +
        'flush set inet tunnelgate listen6\n' +
        'flush set inet tunnelgate listen_wild\nadd element inet tunnelgate listen_wild { ipv4 . udp . 9500, ipv6 . udp . 9500 }\n',
    );
  });
});
