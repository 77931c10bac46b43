import { describe, expect, it } from 'vitest';
import { mayOverlap, renderListeners, renderTable } from '../../../helper/ruleset/render.js';
import type { Policy } from '../../../common/policy.js';
import { policyOf, profile } from '../policy/fixtures.js';
import { emptyDestinationSets, gateChainText, indexSetBlock, refuseChainsText, setBlock, zoneChainsText } from './expected-chains.js';

/** Classids as the gate hands them out: one per allow rule, in order. */
function ids(policy: Policy): Map<string, number> {
  return new Map(policy.rules.filter((r) => r.action === 'allow' && r.binary).map((r, i) => [r.key, 0x74670001 + i]));
}
const render = (policy: Policy, listeners: { proto: 'tcp' | 'udp'; port: number }[] = []) =>
  renderTable({ policy, classids: ids(policy), listeners, nflogGroup: 7467 });

describe('renderTable', () => {
  it('renders whole-tunnel and scoped rules, alwaysAllow and listeners as exact nft text (the kernel checks such text: test/integration/ruleset.test.ts)', () => {
    const policy = policyOf([
      profile({
        interfaces: ['wg0', 'wg-corp*'],
        alwaysAllow: [{ cidr: '198.18.0.53/32', ports: [53], proto: 'udp' }],
        rules: [
          { id: 'ssh', binary: { path: '/usr/bin/ssh' } },
          { id: 'git', binary: { path: '/usr/bin/git' }, destinations: [{ cidr: '198.18.0.0/24', ports: [22, 443], proto: 'tcp' }] },
          { id: 'v6', binary: { path: '/usr/bin/curl' }, destinations: [{ cidr: 'fd00:7467::/64' }] },
        ],
      }),
    ]);
    const z0 = { name: 'z0', patterns: ['wg-corp*', 'wg0'] };
    expect(render(policy, [{ proto: 'tcp', port: 22 }, { proto: 'udp', port: 5353 }])).toBe(`table inet tunnelgate {}
delete table inet tunnelgate
table inet tunnelgate {
\tcomment "tunnelgate: per-application gate for wg-corp* wg0; managed by tunnelgate helper"
\tcounter dropped {}
\tcounter audited {}
${emptyDestinationSets('deny', true)}${setBlock('listen4', 'ip daddr . meta l4proto . th dport')}${setBlock('listen6', 'ip6 daddr . meta l4proto . th dport')}${setBlock(
      'listen_wild',
      'meta nfproto . meta l4proto . th dport',
      ['ipv4 . tcp . 22', 'ipv4 . udp . 5353', 'ipv6 . tcp . 22', 'ipv6 . udp . 5353'],
    )}${indexSetBlock('gated_if')}${indexSetBlock('z0_if')}${setBlock('z0_any', 'meta cgroup', ['0x74670001'])}${setBlock('z0_always4', 'ip daddr', [], true)}${setBlock(
      'z0_always4_port',
      'ip daddr . meta l4proto . th dport',
      ['198.18.0.53/32 . udp . 53'],
      true,
    )}${setBlock('z0_always6', 'ip6 daddr', [], true)}${setBlock('z0_always6_port', 'ip6 daddr . meta l4proto . th dport', [], true)}${emptyDestinationSets('z0_kernel', false)}${setBlock(
      'z0_scope4',
      'meta cgroup . ip daddr',
      [],
      true,
    )}${setBlock('z0_scope4_port', 'meta cgroup . ip daddr . meta l4proto . th dport', ['0x74670002 . 198.18.0.0/24 . tcp . 22', '0x74670002 . 198.18.0.0/24 . tcp . 443'], true)}${setBlock(
      'z0_scope6',
      'meta cgroup . ip6 daddr',
      ['0x74670003 . fd00:7467::/64'],
      true,
    )}${setBlock('z0_scope6_port', 'meta cgroup . ip6 daddr . meta l4proto . th dport', [], true)}\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t\toifname { "wg-corp*", "wg0" } jump gate_out
\t\tmeta oif @gated_if jump gate_out
\t}
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tiifname { "wg-corp*", "wg0" } jump gate_in
\t\tmeta iif @gated_if jump gate_in
\t}
${gateChainText('out', [z0])}${gateChainText('in', [z0])}${zoneChainsText('z0')}${refuseChainsText()}}
`);
  });

  it('with no profile in force, gates the default interface with no rule at all (closed)', () => {
    const text = render(policyOf([]));
    expect(text).toContain('oifname { "wg0" } jump gate_out');
    expect(text).not.toContain('_any');
    expect(text).not.toMatch(/0x[0-9a-f]{8}/);
    expect(text).toContain('\t\tgoto refuse\n\t}\n\tchain gate_in');
    expect(text).toContain('counter name "dropped" drop');
  });

  it('audit mode logs and accepts instead of dropping', () => {
    const text = render(policyOf([profile({ mode: 'audit' })]));
    expect(text).toContain('log prefix "tunnelgate audit: " group 7467');
    expect(text).toContain('counter name "audited" accept');
    // Every gated interface is in audit: nothing names one that enforces.
    expect(text).toContain('\tchain verdict_out {\n\t\tmeta oif @enforce_if goto refuse\n\t\tgoto refuse_audit\n\t}');
    expect(text).not.toMatch(/oifname \{[^}]*\} goto refuse/);
  });

  it('ports without a protocol cover tcp and udp; a protocol without ports covers every port', () => {
    const text = render(policyOf([profile({ rules: [
        { id: 'a', binary: { path: '/a' }, destinations: [{ cidr: '198.18.0.2/32', ports: [80] }] },
        { id: 'b', binary: { path: '/b' }, destinations: [{ cidr: '198.18.0.2/32', proto: 'udp' }] },
      ] })]));
    expect(text).toContain('0x74670001 . 198.18.0.2/32 . tcp . 80');
    expect(text).toContain('0x74670001 . 198.18.0.2/32 . udp . 80');
    expect(text).toContain('0x74670002 . 198.18.0.2/32 . udp . 0-65535');
  });

  it('a scoped deny is enforced against the allow rules whose binaries it may cover', () => {
    const text = render(policyOf([profile({ rules: [
        { id: 'ssh', binary: { path: '/usr/bin/ssh' } },
        { id: 'curl', binary: { path: '/usr/bin/curl' } },
        { id: 'no-db', action: 'deny', binary: { path: '/usr/bin/ssh' }, destinations: [{ cidr: '198.18.0.9/32' }] },
      ] })]));
    expect(text).toMatch(/set deny4 \{[^}]*0x74670001 \. 198\.18\.0\.9\/32/);
    expect(text).not.toContain('0x74670002 . 198.18.0.9/32');
  });

  it('deny rules own no cgroup; kernel rules admit uid-0 sockets outside every cgroup to their destinations', () => {
    const text = render(policyOf([profile({ rules: [
      { id: 'games', action: 'deny', binary: { path: '/usr/games/*' } },
      { id: 'nfs', kernel: true, destinations: [{ cidr: '198.18.0.20/32', ports: [2049], proto: 'tcp' }] },
    ] })]));
    expect(text).not.toMatch(/0x[0-9a-f]{8}/);
    expect(text).toMatch(/set z0_kernel4_port \{[^}]*198\.18\.0\.20\/32 \. tcp \. 2049/);
    expect(text).not.toContain('meta skuid 0 meta cgroup 0 accept');
    const whole = render(policyOf([profile({ rules: [{ id: 'k', kernel: true }] })]));
    expect(whole).toContain('\t\tmeta skuid 0 meta cgroup 0 accept\n');
  });

  it('an allow rule without a classid (no cgroup yet) admits nothing', () => {
    const policy = policyOf([profile({ rules: [{ id: 'x', binary: { path: '/x' } }] })]);
    const text = renderTable({ policy, classids: new Map(), listeners: [], nflogGroup: 7467 });
    expect(text).not.toMatch(/0x[0-9a-f]{8}/);
    expect(() => renderTable({ policy, classids: new Map([['corp-base:x', 0]]), listeners: [], nflogGroup: 7467 })).toThrow(/refusing to render classid/);
  });

  it('refuses to render strings that could inject nft syntax', () => {
    const bad = policyOf([profile({ interfaces: ['wg0" } accept #'] })]);
    expect(() => render(bad)).toThrow(/unsafe nft string/);
    const badCidr = policyOf([profile({ alwaysAllow: [{ cidr: '0.0.0.0/0 accept' }] })]);
    expect(() => render(badCidr)).toThrow(/refusing to render CIDR/);
  });
});

describe('renderListeners', () => {
  it('replaces the listener sets in one transaction', () => {
    expect(renderListeners([{ proto: 'tcp', port: 22 }, { proto: 'udp', port: 53 }])).toBe(
      'flush set inet tunnelgate listen4\nflush set inet tunnelgate listen6\nflush set inet tunnelgate listen_wild\n' +
        'add element inet tunnelgate listen_wild { ipv4 . tcp . 22, ipv4 . udp . 53, ipv6 . tcp . 22, ipv6 . udp . 53 }\n',
    );
    expect(renderListeners([])).toBe('flush set inet tunnelgate listen4\nflush set inet tunnelgate listen6\nflush set inet tunnelgate listen_wild\n');
  });
});

describe('mayOverlap', () => {
  const rule = (binary: { path?: string; package?: string }) =>
    policyOf([profile({ rules: [{ id: 'r', binary }] })]).rules[0]!;
  it.each([
    [{ path: '/usr/bin/ssh' }, { path: '/usr/bin/ssh' }, true],
    [{ path: '/usr/bin/ssh' }, { path: '/usr/bin/scp' }, false],
    [{ path: '/usr/games/*' }, { path: '/usr/games/nethack' }, true],
    [{ path: '/usr/games/*' }, { path: '/usr/bin/ssh' }, false],
    [{ path: '/usr/bin/ssh' }, { path: '/usr/*' }, true],
    [{ path: '/opt/a/*' }, { path: '/opt/*' }, true],
    [{ package: 'openssh-client' }, { path: '/usr/bin/ssh' }, true],
    [{ package: 'a' }, { package: 'b' }, false],
  ])('%o vs %o -> %s', (d, a, expected) => {
    expect(mayOverlap(rule(d), rule(a))).toBe(expected);
  });
});
