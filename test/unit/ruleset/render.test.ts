import { describe, expect, it } from 'vitest';
import { mayOverlap, renderPendingChange, renderTable } from '../../../helper/ruleset/render.js';
import { policyOf, profile } from '../policy/fixtures.js';

const cgroups = { nftPath: 'unified/tunnelgate', ruleLevel: 2 };

describe('renderTable', () => {
  it('renders a whole-tunnel rule, a scoped rule and alwaysAllow as exact nft text', () => {
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
    expect(renderTable({ policy, cgroups, pending: ['corp-base:ssh/l-00112233aabbccdd'] })).toBe(`table inet tunnelgate {}
delete table inet tunnelgate
table inet tunnelgate {
\tcomment "tunnelgate: per-application gate for wg-corp* wg0; managed by tunnelgate helper"
\tcounter dropped {}
\tcounter audited {}
\tcounter pending {}
\tset rules_any {
\t\ttype cgroupsv2
\t\telements = {
\t\t\t"unified/tunnelgate/corp-base:ssh"
\t\t}
\t}
\tset pending {
\t\ttype cgroupsv2
\t\telements = {
\t\t\t"unified/tunnelgate/corp-base:ssh/l-00112233aabbccdd"
\t\t}
\t}
\tset always4 {
\t\ttype ipv4_addr
\t\tflags interval
\t}
\tset always4_port {
\t\ttype ipv4_addr . inet_proto . inet_service
\t\tflags interval
\t\telements = {
\t\t\t198.18.0.53/32 . udp . 53
\t\t}
\t}
\tset always6 {
\t\ttype ipv6_addr
\t\tflags interval
\t}
\tset always6_port {
\t\ttype ipv6_addr . inet_proto . inet_service
\t\tflags interval
\t}
\tset deny4 {
\t\ttype cgroupsv2 . ipv4_addr
\t\tflags interval
\t}
\tset deny4_port {
\t\ttype cgroupsv2 . ipv4_addr . inet_proto . inet_service
\t\tflags interval
\t}
\tset deny6 {
\t\ttype cgroupsv2 . ipv6_addr
\t\tflags interval
\t}
\tset deny6_port {
\t\ttype cgroupsv2 . ipv6_addr . inet_proto . inet_service
\t\tflags interval
\t}
\tset scope4 {
\t\ttype cgroupsv2 . ipv4_addr
\t\tflags interval
\t}
\tset scope4_port {
\t\ttype cgroupsv2 . ipv4_addr . inet_proto . inet_service
\t\tflags interval
\t\telements = {
\t\t\t"unified/tunnelgate/corp-base:git" . 198.18.0.0/24 . tcp . 22,
\t\t\t"unified/tunnelgate/corp-base:git" . 198.18.0.0/24 . tcp . 443
\t\t}
\t}
\tset scope6 {
\t\ttype cgroupsv2 . ipv6_addr
\t\tflags interval
\t\telements = {
\t\t\t"unified/tunnelgate/corp-base:v6" . fd00:7467::/64
\t\t}
\t}
\tset scope6_port {
\t\ttype cgroupsv2 . ipv6_addr . inet_proto . inet_service
\t\tflags interval
\t}
\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t\toifname { "wg-corp*", "wg0" } jump gate_out
\t}
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tiifname { "wg-corp*", "wg0" } jump gate_in
\t}
\tchain gate_out {
\t\tsocket cgroupv2 level 3 @pending counter name "pending" drop
\t\tip daddr @always4 accept
\t\tip daddr . meta l4proto . th dport @always4_port accept
\t\tip6 daddr @always6 accept
\t\tip6 daddr . meta l4proto . th dport @always6_port accept
\t\tsocket cgroupv2 level 2 . ip daddr @deny4 goto refuse
\t\tsocket cgroupv2 level 2 . ip daddr . meta l4proto . th dport @deny4_port goto refuse
\t\tsocket cgroupv2 level 2 . ip6 daddr @deny6 goto refuse
\t\tsocket cgroupv2 level 2 . ip6 daddr . meta l4proto . th dport @deny6_port goto refuse
\t\tsocket cgroupv2 level 2 @rules_any accept
\t\tsocket cgroupv2 level 2 . ip daddr @scope4 accept
\t\tsocket cgroupv2 level 2 . ip daddr . meta l4proto . th dport @scope4_port accept
\t\tsocket cgroupv2 level 2 . ip6 daddr @scope6 accept
\t\tsocket cgroupv2 level 2 . ip6 daddr . meta l4proto . th dport @scope6_port accept
\t\tgoto refuse
\t}
\tchain gate_in {
\t\tct state established,related accept
\t\tsocket cgroupv2 level 3 @pending drop
\t\tsocket cgroupv2 level 2 @rules_any accept
\t\tgoto refuse
\t}
\tchain refuse {
\t\tlimit rate 20/second burst 50 packets log prefix "tunnelgate deny: " level info flags skuid
\t\tcounter name "dropped" drop
\t}
}
`);
  });

  it('with no profile in force, gates the default interface with no rule at all (closed)', () => {
    const text = renderTable({ policy: policyOf([]), cgroups, pending: [] });
    expect(text).toContain('oifname { "wg0" } jump gate_out');
    expect(text).not.toMatch(/rules_any \{\n\t\ttype cgroupsv2\n\t\telements/);
    expect(text).toContain('counter name "dropped" drop');
  });

  it('audit mode logs and accepts instead of dropping', () => {
    const text = renderTable({ policy: policyOf([profile({ mode: 'audit' })]), cgroups, pending: [] });
    expect(text).toContain('log prefix "tunnelgate audit: "');
    expect(text).toContain('counter name "audited" accept');
    expect(text).not.toContain('counter name "dropped" drop');
  });

  it('ports without a protocol cover tcp and udp; a protocol without ports covers every port', () => {
    const text = renderTable({
      policy: policyOf([profile({ rules: [
        { id: 'a', binary: { path: '/a' }, destinations: [{ cidr: '198.18.0.2/32', ports: [80] }] },
        { id: 'b', binary: { path: '/b' }, destinations: [{ cidr: '198.18.0.2/32', proto: 'udp' }] },
      ] })]),
      cgroups,
      pending: [],
    });
    expect(text).toContain('"unified/tunnelgate/corp-base:a" . 198.18.0.2/32 . tcp . 80');
    expect(text).toContain('"unified/tunnelgate/corp-base:a" . 198.18.0.2/32 . udp . 80');
    expect(text).toContain('"unified/tunnelgate/corp-base:b" . 198.18.0.2/32 . udp . 0-65535');
  });

  it('a scoped deny is enforced against the allow rules whose binaries it may cover', () => {
    const text = renderTable({
      policy: policyOf([profile({ rules: [
        { id: 'ssh', binary: { path: '/usr/bin/ssh' } },
        { id: 'curl', binary: { path: '/usr/bin/curl' } },
        { id: 'no-db', action: 'deny', binary: { path: '/usr/bin/ssh' }, destinations: [{ cidr: '198.18.0.9/32' }] },
      ] })]),
      cgroups,
      pending: [],
    });
    expect(text).toMatch(/set deny4 \{[^}]*"unified\/tunnelgate\/corp-base:ssh" \. 198\.18\.0\.9\/32/);
    expect(text).not.toContain('"unified/tunnelgate/corp-base:curl" . 198.18.0.9/32');
  });

  it('deny rules and kernel rules own no cgroup and admit nothing', () => {
    const text = renderTable({
      policy: policyOf([profile({ rules: [
        { id: 'games', action: 'deny', binary: { path: '/usr/games/*' } },
        { id: 'nfs', kernel: true, destinations: [{ cidr: '198.18.0.20/32', ports: [2049], proto: 'tcp' }] },
      ] })]),
      cgroups,
      pending: [],
    });
    expect(text).not.toContain('games');
    expect(text).not.toContain('nfs');
  });

  it('uses the level of a nested cgroup root', () => {
    const text = renderTable({ policy: policyOf([profile({ rules: [{ id: 'x', binary: { path: '/x' } }] })]), cgroups: { nftPath: 'a/b', ruleLevel: 3 }, pending: [] });
    expect(text).toContain('socket cgroupv2 level 3 @rules_any accept');
    expect(text).toContain('socket cgroupv2 level 4 @pending counter name "pending" drop');
    expect(text).toContain('"a/b/corp-base:x"');
  });

  it('refuses to render strings that could inject nft syntax', () => {
    const bad = policyOf([profile({ interfaces: ['wg0" } accept #'] })]);
    expect(() => renderTable({ policy: bad, cgroups, pending: [] })).toThrow(/unsafe nft string/);
    const badCidr = policyOf([profile({ alwaysAllow: [{ cidr: '0.0.0.0/0 accept' }] })]);
    expect(() => renderTable({ policy: badCidr, cgroups, pending: [] })).toThrow(/refusing to render CIDR/);
  });
});

describe('renderPendingChange', () => {
  it('adds and deletes launch cgroups in one statement', () => {
    expect(renderPendingChange('add', 'tunnelgate', ['r:a/l-1', 'r:a/l-2'])).toBe(
      'add element inet tunnelgate pending { "tunnelgate/r:a/l-1", "tunnelgate/r:a/l-2" }\n',
    );
    expect(renderPendingChange('delete', 'tunnelgate', [])).toBe('');
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
