// Issue 9.2, 9.7, 9.8: the inbound chain, the listener sets by bound address and the set of
// gated interface indexes, as exact nft text. The same text is loaded by nft in a lab
// namespace in test/integration/bypass-net.test.ts.
import { describe, expect, it } from 'vitest';
import { listenerElements, renderGatedIndexes, renderListeners, renderTable, renderZoneListeners } from '../../../helper/ruleset/render.js';
import type { Policy } from '../../../common/policy.js';
import { policyOf, profile } from '../policy/fixtures.js';
import { gateChainText, indexSetBlock, setBlock } from './expected-chains.js';

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

  it('with listeners by zone, a new flow reaches a listener only on the interfaces its process is admitted on', () => {
    const two = policyOf([
      profile({ id: 'a', interfaces: ['wg0'], rules: [{ id: 'ssh', binary: { path: '/usr/bin/ssh' } }] }),
      profile({ id: 'b', interfaces: ['wg-lab'], rules: [{ id: 'web', binary: { path: '/usr/bin/python3' } }] }),
    ]);
    const t = renderTable({
      policy: two,
      classids: ids(two),
      nflogGroup: 7467,
      listeners: [],
      listenersByZone: new Map([[JSON.stringify(['wg0']), [{ proto: 'tcp', port: 22, addr: '0.0.0.0' }]], [JSON.stringify(['wg-lab']), [{ proto: 'tcp', port: 8080, addr: '0.0.0.0' }]]]),
    });
    const zones = [{ name: 'z0', patterns: ['wg-lab'] }, { name: 'z1', patterns: ['wg0'] }];
    expect(chain(t, 'gate_in')).toBe(gateChainText('in', zones, { global: false }));
    expect(chain(t, 'z1_in')).toContain('@z1_listen_wild accept');
    expect(setText(t, 'z1_listen_wild')).toBe(setBlock('z1_listen_wild', 'meta nfproto . meta l4proto . th dport', ['ipv4 . tcp . 22']));
    expect(setText(t, 'z0_listen_wild')).toBe(setBlock('z0_listen_wild', 'meta nfproto . meta l4proto . th dport', ['ipv4 . tcp . 8080']));
    expect(t).not.toContain('set listen_wild');
    expect(renderZoneListeners(two, ids(two), new Map([[JSON.stringify(['wg0']), [{ proto: 'udp', port: 53, addr: '198.18.0.1' }]]]))).toBe(
      'flush set inet tunnelgate z0_listen4\nflush set inet tunnelgate z0_listen6\nflush set inet tunnelgate z0_listen_wild\n' +
        'flush set inet tunnelgate z1_listen4\nadd element inet tunnelgate z1_listen4 { 198.18.0.1 . udp . 53 }\nflush set inet tunnelgate z1_listen6\nflush set inet tunnelgate z1_listen_wild\n',
    );
  });

  it('each zone keeps the indexes gated under its own patterns; a renamed interface keeps its zone', () => {
    const two = policyOf([
      profile({ id: 'a', interfaces: ['wg0'], rules: [{ id: 'ssh', binary: { path: '/usr/bin/ssh' } }] }),
      profile({ id: 'b', interfaces: ['wg-lab*'], mode: 'audit', rules: [{ id: 'web', binary: { path: '/usr/bin/python3' } }] }),
    ]);
    const gated = [{ index: 4, pattern: 'wg0', name: 'wg0' }, { index: 9, pattern: 'wg-lab*', name: 'wg-lab1' }];
    const t = renderTable({ policy: two, classids: ids(two), nflogGroup: 7467, listeners: [], gatedIndexes: gated });
    expect(setText(t, 'gated_if')).toBe(indexSetBlock('gated_if', [4, 9]));
    expect(setText(t, 'z0_if')).toBe(indexSetBlock('z0_if', [9]));
    expect(setText(t, 'z1_if')).toBe(indexSetBlock('z1_if', [4]));
    // Only wg-lab* is in audit: wg0 (by name or by its index under any name) drops.
    expect(setText(t, 'enforce_if')).toBe(indexSetBlock('enforce_if', [4]));
    expect(chain(t, 'verdict_out')).toBe('\tchain verdict_out {\n\t\toifname { "wg0" } goto refuse\n\t\tmeta oif @enforce_if goto refuse\n\t\tgoto refuse_audit\n\t}\n');
    expect(renderGatedIndexes(two, ids(two), gated)).toBe(
      'flush set inet tunnelgate gated_if\nadd element inet tunnelgate gated_if { 4, 9 }\n' +
        'flush set inet tunnelgate enforce_if\nadd element inet tunnelgate enforce_if { 4 }\n' +
        'flush set inet tunnelgate z0_if\nadd element inet tunnelgate z0_if { 9 }\n' +
        'flush set inet tunnelgate z1_if\nadd element inet tunnelgate z1_if { 4 }\n',
    );
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
    const none = policyOf([]);
    const at = (...indexes: number[]) => renderGatedIndexes(none, new Map(), indexes.map((index) => ({ index, pattern: 'wg0', name: 'wg0' })));
    expect(at(7, 3, 7)).toMatch(/^flush set inet tunnelgate gated_if\nadd element inet tunnelgate gated_if \{ 3, 7 \}\n/);
    expect(at()).toMatch(/^flush set inet tunnelgate gated_if\n(?!add element inet tunnelgate gated_if)/);
    for (const bad of [0, -1, 1.5, 2 ** 31]) expect(() => at(bad)).toThrow(/interface index/);
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
