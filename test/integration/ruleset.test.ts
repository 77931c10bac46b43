// The rendered ruleset against the real nft: test/unit/ruleset/render.test.ts pins the exact
// text; here the kernel's nftables checks that text (`nft -c -f`, a full transaction that is
// then aborted) for rulesets with every kind of rule — scoped and whole-tunnel allows,
// deny, kernel, alwaysAllow, wildcard interfaces, listeners, audit mode — and one of them is
// applied for real and listed back. All in a network namespace this file creates and
// removes; nothing touches the host's ruleset.
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Policy } from '../../common/policy.js';
import { renderGatedIndexes, renderListeners, renderTable, renderZoneListeners } from '../../helper/ruleset/render.js';
import { tableOutline } from '../../helper/kernel/nft.js';
import { deleteNetnsSync, NETNS_DIR, onExitUndo } from '../lab/cleanup.js';
import { policyOf, profile } from '../unit/policy/fixtures.js';

const NS = `tg-nftc-${randomBytes(3).toString('hex')}`;
let disarm = (): void => undefined;

/** `nft ARGS` in the throwaway namespace, with `input` on stdin; never rejects. */
const nft = (args: string[], input?: string) =>
  execa('nsenter', [`--net=${NETNS_DIR}/${NS}`, '--', 'nft', ...args], { reject: false, timeout: 20_000, ...(input === undefined ? {} : { input }) });

/** Classids as the gate hands them out: one per allow rule with a binary, in order. */
const render = (policy: Policy, listeners: { proto: 'tcp' | 'udp'; port: number }[] = []) =>
  renderTable({
    policy,
    classids: new Map(policy.rules.filter((r) => r.action === 'allow' && r.binary).map((r, i) => [r.key, 0x74670001 + i])),
    listeners,
    nflogGroup: 7467,
  });

const EVERY_KIND = policyOf([
  profile({
    interfaces: ['wg0', 'wg-corp*', 'tun-*'],
    alwaysAllow: [
      { cidr: '198.18.0.53/32', ports: [53], proto: 'udp' },
      { cidr: '198.18.1.0/24' },
      { cidr: 'fd00:7467::53/128', ports: [53, 853] },
      { cidr: 'fd00:7467:1::/48' },
    ],
    rules: [
      { id: 'ssh', binary: { path: '/usr/bin/ssh' } },
      { id: 'git', binary: { path: '/usr/bin/git' }, destinations: [{ cidr: '198.18.0.0/24', ports: [22, 443], proto: 'tcp' }, { cidr: 'fd00:7467::/64', ports: [22] }] },
      { id: 'v6', binary: { path: '/usr/bin/curl' }, destinations: [{ cidr: 'fd00:7467::/64' }, { cidr: '198.18.0.7/32', proto: 'udp' }] },
      { id: 'games', action: 'deny', binary: { path: '/usr/games/*' } },
      { id: 'no-db', action: 'deny', binary: { path: '/usr/bin/ssh' }, destinations: [{ cidr: '198.18.0.9/32' }, { cidr: 'fd00:7467::9/128', ports: [5432], proto: 'tcp' }] },
      { id: 'no-db-curl', action: 'deny', binary: { path: '/usr/bin/*' }, destinations: [{ cidr: '198.18.0.10/31', ports: [5432, 6379] }] },
      { id: 'nfs', kernel: true, destinations: [{ cidr: '198.18.0.20/32', ports: [2049], proto: 'tcp' }, { cidr: 'fd00:7467::20/128' }] },
    ],
  }),
]);

/** Two profiles, each on its own interfaces (helper/policy/scope.ts), the second in audit. */
const TWO_SCOPES = policyOf([
  profile({ id: 'corp', interfaces: ['wg0'], userPrompts: 'deny', alwaysAllow: [{ cidr: '198.18.0.53/32', ports: [53], proto: 'udp' }], rules: [
    { id: 'curl', binary: { path: '/usr/bin/curl' } },
    { id: 'nfs', kernel: true, destinations: [{ cidr: '198.18.0.20/32', ports: [2049], proto: 'tcp' }] },
  ] }),
  profile({ id: 'lab', interfaces: ['wg-lab*'], mode: 'audit', rules: [
    { id: 'any', binary: { path: '/usr/bin/*' }, destinations: [{ cidr: '198.18.0.0/24', ports: [443], proto: 'tcp' }] },
    { id: 'no-db', action: 'deny', binary: { path: '/usr/bin/curl' }, destinations: [{ cidr: '198.18.0.9/32' }] },
  ] }),
], [{ id: 'u1', uid: 1000, binary: { path: '/opt/tool' } }]);

const CASES: Array<[string, () => string]> = [
  ['every kind of rule, wildcard interfaces, listeners', () => render(EVERY_KIND, [{ proto: 'tcp', port: 22 }, { proto: 'udp', port: 5353 }])],
  ['no profile in force (closed, default interface)', () => render(policyOf([]))],
  ['audit mode', () => render(policyOf([profile({ mode: 'audit', interfaces: ['wg*'], rules: [{ id: 'ssh', binary: { path: '/usr/bin/ssh' } }] })]))],
  ['a whole-tunnel kernel rule', () => render(policyOf([profile({ rules: [{ id: 'k', kernel: true }, { id: 'games', action: 'deny', binary: { path: '/usr/games/*' } }] })]))],
  ['two profiles on their own interfaces (one in audit), a user rule, gated indexes, listeners by zone', () => renderTable({
    policy: TWO_SCOPES,
    classids: new Map(TWO_SCOPES.rules.filter((r) => r.action === 'allow' && r.binary).map((r, i) => [r.key, 0x74670001 + i])),
    listeners: [],
    listenersByZone: new Map([[JSON.stringify(['wg0']), [{ proto: 'tcp', port: 22, addr: '0.0.0.0' }]]]),
    gatedIndexes: [{ index: 3, pattern: 'wg0', name: 'wg0' }, { index: 7, pattern: 'wg-lab*', name: 'renamed' }],
    nflogGroup: 7467,
  })],
  ['ports without a protocol, a protocol without ports', () => render(policyOf([profile({ rules: [
    { id: 'a', binary: { path: '/a' }, destinations: [{ cidr: '198.18.0.2/32', ports: [80] }] },
    { id: 'b', binary: { path: '/b' }, destinations: [{ cidr: '198.18.0.2/32', proto: 'udp' }, { cidr: 'fd00::/8', proto: 'tcp' }] },
  ] })]))],
];

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('ruleset.test.ts needs root: it creates a network namespace and runs nft in it');
  disarm = onExitUndo(() => deleteNetnsSync(NS));
  await execa('ip', ['netns', 'add', NS]);
});

afterAll(async () => {
  if (existsSync(`${NETNS_DIR}/${NS}`)) await execa('ip', ['netns', 'del', NS]);
  disarm();
  expect(existsSync(`${NETNS_DIR}/${NS}`)).toBe(false);
});

describe('rendered rulesets, checked by the kernel (nft -c) in a throwaway namespace', () => {
  it('the check itself can fail: a broken table is refused', async () => {
    const broken = render(EVERY_KIND).replace('meta cgroup @z0_any accept', 'meta cgroup @no_such_set accept');
    const r = await nft(['-c', '-f', '-'], broken);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/no_such_set/);
  });

  it.each(CASES)('%s: nft -c accepts it', async (_name, text) => {
    const ruleset = text();
    const r = await nft(['-c', '-f', '-'], ruleset);
    expect({ code: r.exitCode, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  });

  it('applied for real, the table holds the rendered sets; the listener update applies on top', async () => {
    const r = await nft(['-f', '-'], render(EVERY_KIND, [{ proto: 'tcp', port: 22 }]));
    expect({ code: r.exitCode, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const listed = String((await nft(['list', 'table', 'inet', 'tunnelgate'])).stdout);
    // nft lists a classid in decimal: 0x74670001 is 1952907265.
    expect(listed).toMatch(/set deny4 \{[^}]*1952907265 \. 198\.18\.0\.9 /);
    expect(listed).toMatch(/set z0_kernel4_port \{[^}]*198\.18\.0\.20 \. tcp \. 2049/);
    expect(listed).toMatch(/set z0_always4_port \{[^}]*198\.18\.0\.53 \. udp \. 53/);
    expect(listed).toMatch(/oifname \{[^}]*"wg-corp\*"[^}]*\} jump gate_out/);
    expect(listed).toMatch(/oifname \{[^}]*"tun-\*"[^}]*\} jump gate_out/);
    expect(tableOutline(listed)).toBe(tableOutline(render(EVERY_KIND, [{ proto: 'tcp', port: 22 }])));
    expect(tableOutline(listed)).not.toBe(tableOutline(render(policyOf([]))));
    // A wildcard listener (no address) goes to listen_wild for both families; a bound one to listen4.
    const l = await nft(['-f', '-'], renderListeners([{ proto: 'udp', port: 5353 }, { proto: 'tcp', port: 8443, addr: '198.18.0.1' }]));
    expect({ code: l.exitCode, stderr: l.stderr }).toEqual({ code: 0, stderr: '' });
    const wild = String((await nft(['list', 'set', 'inet', 'tunnelgate', 'listen_wild'])).stdout);
    expect(wild).toMatch(/ipv4 \. udp \. 5353/);
    expect(wild).toMatch(/ipv6 \. udp \. 5353/);
    expect(String((await nft(['list', 'set', 'inet', 'tunnelgate', 'listen4'])).stdout)).toMatch(/198\.18\.0\.1 \. tcp \. 8443/);
    // Rendering again replaces the table in one transaction (the text starts by deleting it).
    const again = await nft(['-f', '-'], render(policyOf([])));
    expect({ code: again.exitCode, stderr: again.stderr }).toEqual({ code: 0, stderr: '' });
    const replaced = String((await nft(['list', 'table', 'inet', 'tunnelgate'])).stdout);
    expect(replaced).toContain('jump gate_out');
    expect(replaced).not.toContain('1952907265');
  });
});

describe('zones applied for real: the updates the gate sends on top of a zoned table', () => {
  it('renderZoneListeners and renderGatedIndexes apply to the table rendered from the same policy', async () => {
    const classids = new Map(TWO_SCOPES.rules.filter((r) => r.action === 'allow' && r.binary).map((r, i) => [r.key, 0x74670001 + i]));
    const base = renderTable({ policy: TWO_SCOPES, classids, listeners: [], listenersByZone: new Map(), gatedIndexes: [], nflogGroup: 7467 });
    expect((await nft(['-f', '-'], base)).exitCode).toBe(0);
    const l = await nft(['-f', '-'], renderZoneListeners(TWO_SCOPES, classids, new Map([[JSON.stringify(['wg0']), [{ proto: 'tcp', port: 22, addr: '0.0.0.0' }]]])));
    expect({ code: l.exitCode, stderr: l.stderr }).toEqual({ code: 0, stderr: '' });
    const g = await nft(['-f', '-'], renderGatedIndexes(TWO_SCOPES, classids, [{ index: 3, pattern: 'wg0', name: 'wg0' }, { index: 7, pattern: 'wg-lab*', name: 'x' }]));
    expect({ code: g.exitCode, stderr: g.stderr }).toEqual({ code: 0, stderr: '' });
    const listed = String((await nft(['list', 'table', 'inet', 'tunnelgate'])).stdout);
    expect(listed).toMatch(/set z1_listen_wild \{[^}]*ipv4 \. tcp \. 22/);
    expect(listed).toMatch(/set z0_if \{[^}]*elements = \{ 7 \}/);
    expect(listed).toMatch(/set enforce_if \{[^}]*elements = \{ 3 \}/);
    // The gate adopts a read-back only when its outline is the rendered table's (gate.ts inForce).
    expect(tableOutline(listed)).toBe(tableOutline(base));
    expect(tableOutline(listed)).toContain('chain z1_out');
  });
});

// A profile may name a subnet and a host inside it, with and without ports, for the same
// protocol: nft refuses overlapping elements of an interval set (and with them the whole
// transaction), so render joins them (helper/ruleset/intervals.ts). Applied for real, and the
// kernel asked, element by element, what the sets admit.
const OVERLAPS = policyOf([
  profile({
    interfaces: ['wg0'],
    alwaysAllow: [{ cidr: '198.18.2.0/24' }, { cidr: '198.18.2.7/32' }, { cidr: '198.18.3.0/24', proto: 'tcp' }, { cidr: '198.18.3.0/24', proto: 'tcp', ports: [952] }],
    rules: [
      { id: 'a', binary: { path: '/usr/bin/a' }, destinations: [
        { cidr: '198.18.0.0/24', proto: 'tcp' },
        { cidr: '198.18.0.5/32', proto: 'tcp', ports: [443] },
        { cidr: '198.18.1.0/24', proto: 'tcp', ports: [443] },
        { cidr: '198.18.1.5/32', proto: 'tcp' },
        { cidr: 'fd00:7467::/64', ports: [22] },
        { cidr: 'fd00:7467::5/128' },
        { cidr: 'fd00:7467::5/128', proto: 'udp', ports: [53] },
        { cidr: 'fd00:7467:1::/48', proto: 'tcp', ports: [80, 443] },
        { cidr: 'fd00:7467:1::80/128', proto: 'tcp', ports: [443, 8443] },
      ] },
      { id: 'no-db', action: 'deny', binary: { path: '/usr/bin/a' }, destinations: [{ cidr: '198.18.0.9/32', ports: [5432] }, { cidr: '198.18.0.8/31', ports: [5432, 5433] }] },
      { id: 'nfs', kernel: true, destinations: [{ cidr: '198.18.4.0/24', proto: 'tcp', ports: [2049] }, { cidr: '198.18.4.20/32', proto: 'tcp' }] },
    ],
  }),
]);

describe('overlapping destinations: one element each, accepted by the kernel', () => {
  it('nft -f applies the table; the kernel\'s sets admit exactly the union of the destinations', async () => {
    const r = await nft(['-f', '-'], render(OVERLAPS));
    expect({ code: r.exitCode, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const cg = '0x74670001';
    /**
     * Does the set hold the element (`nft get element`, which the kernel answers)? The last
     * field is asked as a one-value range `X-X`: nft 1.0.6 answers a plain point in a
     * concatenation that starts with `meta cgroup` with ENOENT even where it matches.
     */
    const holds = async (set: string, element: string) => {
      const last = element.split(' . ').at(-1) as string;
      const asked = `${element.slice(0, element.length - last.length)}${last}-${last}`;
      return (await nft(['get', 'element', 'inet', 'tunnelgate', set, `{ ${asked} }`])).exitCode === 0;
    };
    const expectations: Array<[string, string, boolean]> = [
      ['z0_scope4_port', `${cg} . 198.18.0.77 . tcp . 22`, true], // the port-less /24
      ['z0_scope4_port', `${cg} . 198.18.0.5 . tcp . 8080`, true], // its host, ports beyond the host's own
      ['z0_scope4_port', `${cg} . 198.18.0.5 . udp . 443`, false],
      ['z0_scope4_port', `${cg} . 198.18.1.77 . tcp . 443`, true], // the ported /24
      ['z0_scope4_port', `${cg} . 198.18.1.77 . tcp . 22`, false],
      ['z0_scope4_port', `${cg} . 198.18.1.5 . tcp . 22`, true], // its port-less host
      ['z0_scope6_port', `${cg} . fd00:7467::9 . tcp . 22`, true],
      ['z0_scope6_port', `${cg} . fd00:7467::9 . tcp . 23`, false],
      ['z0_scope6_port', `${cg} . fd00:7467::5 . udp . 53`, true],
      ['z0_scope6_port', `${cg} . fd00:7467:1::80 . tcp . 8443`, true],
      ['z0_scope6_port', `${cg} . fd00:7467:1::81 . tcp . 8443`, false],
      ['z0_scope6', `${cg} . fd00:7467::5`, true], // the port-less v6 host: any protocol
      ['z0_always4', '198.18.2.7', true],
      ['z0_always4', '198.18.2.200', true],
      ['z0_always4_port', '198.18.3.1 . tcp . 952', true],
      ['z0_always4_port', '198.18.3.1 . udp . 952', false],
      ['deny4_port', `${cg} . 198.18.0.9 . tcp . 5433`, true],
      ['deny4_port', `${cg} . 198.18.0.10 . tcp . 5432`, false],
      ['z0_kernel4_port', '198.18.4.20 . tcp . 22', true],
      ['z0_kernel4_port', '198.18.4.21 . tcp . 22', false],
      ['z0_kernel4_port', '198.18.4.21 . tcp . 2049', true],
    ];
    const got = [];
    for (const [set, element] of expectations) got.push([set, element, await holds(set, element)]);
    expect(got).toEqual(expectations);
  });

  it('nft -c accepts each of them alone too (every set kind: plain and concatenated, IPv4 and IPv6)', async () => {
    for (const d of [
      [{ cidr: '10.0.0.0/24' }, { cidr: '10.0.0.5/32' }],
      [{ cidr: '10.0.0.0/8', proto: 'tcp' as const }, { cidr: '10.0.0.0/8', proto: 'tcp' as const, ports: [952] }],
      [{ cidr: 'fd00::/64' }, { cidr: 'fd00::5/128' }],
      [{ cidr: 'fd00::/64', ports: [22] }, { cidr: 'fd00::5/128' }, { cidr: 'fd00::5/128', ports: [22, 23] }],
    ]) {
      const policy = policyOf([profile({ alwaysAllow: d, rules: [{ id: 'a', binary: { path: '/a' }, destinations: d }] })]);
      const c = await nft(['-c', '-f', '-'], render(policy));
      expect({ d, code: c.exitCode, stderr: c.stderr }).toEqual({ d, code: 0, stderr: '' });
    }
  });
});
