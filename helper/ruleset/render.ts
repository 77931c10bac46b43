// Policy -> nftables transaction. Pure: the same input gives the same text, byte for byte.
//
// Every allow rule owns a net_cls cgroup with its own classid (helper/kernel/netcls.ts);
// the sockets of an admitted process carry that classid and the table matches it with
// `meta cgroup`. Lookups go through sets, so the per-packet cost does not grow with the
// number of rules, and revoking a rule is a ruleset change alone.
//
// Interfaces (issue 9.2): gated by name pattern (oifname/iifname, evaluated per packet, so a
// new interface matching a pattern is gated at once) and by index (set `gated_if`, numeric
// iface_index elements, which load whether or not the interface exists). The index keeps a
// renamed interface, or one moved to another namespace and back (the kernel keeps a free
// index), gated; helper/ruleset/interfaces.ts decides the indexes, helper/kernel/links.ts
// reports link changes.
//
// Zones (issue 9, "a rule opens only the interfaces its own source names";
// helper/policy/scope.ts): what opens a tunnel (rule classids with their destinations,
// alwaysAllow, kernel rules, listeners) is grouped by the interface patterns of its source.
// Each zone has its own sets and chains (`zN_*`), jumped to from gate_out/gate_in only for a
// packet whose interface matches the zone's patterns or whose index was gated under one of
// them (`zN_if`). IT scoped denies stay global (`deny*`), checked between the zones'
// alwaysAllow and their rules, as before. A refused packet drops, unless only audit-mode
// profiles gate its interface (`verdict_*`, `enforce_if`): then it passes and is recorded.
//
// Inbound (issues 9.7, 9.8) — facts measured in the lab (test/integration/bypass-net.test.ts):
// - At the input hook skb->sk is set only by early demux: established TCP and connected UDP
//   (net.ipv4.tcp_early_demux / udp_early_demux, on by default). There `meta cgroup` is the
//   receiving socket's classid, which is what keeps a flow that predates the table (conntrack
//   picks it up mid-stream as `new`) alive for exactly the admitted sockets.
// - A TCP SYN or a datagram to an unconnected UDP socket has no socket yet. nft's `socket`
//   expression does the kernel's own lookup (listener, reuseport group, v6 dual-stack
//   included) but exposes only transparent, mark, wildcard and cgroupv2 — not the classid.
//   So a new flow is admitted by the admitted listener's exact bound address (`socket
//   wildcard 0`), or as a wildcard only if the socket the kernel picks is a wildcard one
//   (`socket wildcard 1`): another process's more specific bind on the same port never
//   matches. A listener whose element another process's socket shares (same address and
//   port with SO_REUSEADDR on both, or an SO_REUSEPORT group of one user) is contested
//   (helper/kernel/sockets.ts classifyListeners) and left out: refused, not split.
// What this cannot hold (no BPF loader here; NFQUEUE is not built):
// - between a contesting bind and the gate's next listener refresh, a process that shares
//   an admitted socket's exact address and port (only possible where the admitted program
//   opted into SO_REUSEADDR/SO_REUSEPORT itself) can receive new flows to it;
// - a contested port is refused for the admitted service too, and packets to another
//   process's more specific address never reach an admitted wildcard socket: the service
//   pays for the squatter. An sk_lookup BPF program steering gated-interface packets to the
//   admitted sockets (SOCKMAP) would hold both; BPF LSM socket_sock_rcv_skb the first;
// - with early demux switched off by sysctl, flows that predate the table are not
//   recognised and freeze as before 9.8 (new ones are unaffected).
import type { Policy, EffectiveRule } from '../../common/policy.js';
import type { Destination } from '../../common/profile.js';
import type { Listener } from '../kernel/sockets.js';
import { isTrial } from '../policy/decide.js';
import { auditPatterns, grants, interfaceMatches, ruleInterfaces } from '../policy/scope.js';
import type { GatedIndex } from './interfaces.js';
import { FAMILY, TABLE } from '../kernel/nft.js';
import { addressElements, addressPortElements, cidrRange } from './intervals.js';
import type { Box, Family } from './intervals.js';

export interface RenderInput {
  policy: Policy;
  /** Classid of each allow rule's cgroup, by rule key. A rule without one admits nothing. */
  classids: ReadonlyMap<string, number>;
  /** Ports admitted processes listen on: new inbound connections from the tunnel reach only these. */
  listeners: readonly Listener[];
  /** NFLOG group the refuse chain logs to (rate-limited); the helper reads it for denied attempts. */
  nflogGroup: number;
  /**
   * Kernel indexes (ifindex) of every interface that was ever gated under a name the policy
   * names (helper/ruleset/interfaces.ts keeps them): such an interface stays gated under any
   * later name, but opened by no zone (no pattern known) and enforcing. Absent: gated by
   * name pattern only (the behaviour before issue 9.2).
   */
  interfaceIndexes?: readonly number[];
  /**
   * The gated indexes with the pattern each was gated under (helper/ruleset/interfaces.ts):
   * each stays in the zones of that pattern under any later name.
   */
  gatedIndexes?: readonly GatedIndex[];
  /**
   * Listeners by zone (zoneKey): those of the admitted processes whose classid is open to
   * that zone's whole tunnel (Zone.whole). A new inbound flow reaches one only on that
   * zone's interfaces. Absent: `listeners`, on every gated interface (before scoping).
   */
  listenersByZone?: ReadonlyMap<string, readonly Listener[]>;
}

export const LOG_PREFIX_DENY = 'tunnelgate deny: ';
export const LOG_PREFIX_AUDIT = 'tunnelgate audit: ';
export const LOG_RATE = 'limit rate 20/second burst 50 packets';

const ipOf = (f: Family) => (f === 4 ? 'ip' : 'ip6');

const SAFE = /^[A-Za-z0-9_.:/*-]+$/;
/** Quote a string for nft. Everything we emit was validated upstream; refuse anything else here too. */
function q(s: string): string {
  if (!SAFE.test(s)) throw new Error(`refusing to render unsafe nft string ${JSON.stringify(s)}`);
  return `"${s}"`;
}
function cidrText(cidr: string): string {
  if (!/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(cidr)) throw new Error(`refusing to render CIDR ${JSON.stringify(cidr)}`);
  return cidr;
}
function addrText(addr: string): string {
  if (!/^[0-9a-fA-F:.]+$/.test(addr) || addr.length > 45) throw new Error(`refusing to render address ${JSON.stringify(addr)}`);
  return addr;
}
function hex(id: number): string {
  if (!Number.isInteger(id) || id <= 0 || id > 0xffffffff) throw new Error(`refusing to render classid ${id}`);
  return `0x${id.toString(16).padStart(8, '0')}`;
}

/**
 * Destinations of set elements `[key .] addr [. proto . port]`, split by family and by
 * port-scoping, kept as ranges by key (and protocol) until rendered: elements() turns each
 * group into disjoint elements, since nft refuses overlapping ones (helper/ruleset/intervals.ts).
 */
interface Elements {
  /** By key (`''`: none): address ranges. */
  any: Record<Family, Map<string, Box[]>>;
  /** By key and protocol (`KEY\0tcp`): address × port ranges. */
  port: Record<Family, Map<string, Box[]>>;
}
const emptyElements = (): Elements => ({ any: { 4: new Map(), 6: new Map() }, port: { 4: new Map(), 6: new Map() } });

function push(m: Map<string, Box[]>, k: string, b: Box): void {
  const l = m.get(k);
  if (l) l.push(b);
  else m.set(k, [b]);
}

function portNumber(p: number): number {
  if (!Number.isInteger(p) || p < 0 || p > 0xffff) throw new Error(`refusing to render port ${p}`);
  return p;
}

function addDestinations(into: Elements, key: string | undefined, dests: readonly Destination[]): void {
  const head = key ?? '';
  for (const d of dests) {
    const { family: f, lo, hi } = cidrRange(cidrText(d.cidr));
    if (!d.proto && !d.ports?.length) {
      push(into.any[f], head, { lo, hi, plo: 0, phi: 0xffff });
      continue;
    }
    const protos = d.proto ? [q(d.proto).slice(1, -1)] : ['tcp', 'udp'];
    const ports = d.ports?.length ? d.ports.map((p) => [portNumber(p), p] as const) : [[0, 0xffff] as const];
    for (const p of protos) for (const [plo, phi] of ports) push(into.port[f], `${head}\0${p}`, { lo, hi, plo, phi });
  }
}

/** The set elements of one family's groups, disjoint within each key (and protocol). */
function elements(groups: Map<string, Box[]>, f: Family, withPorts: boolean): string[] {
  const out: string[] = [];
  for (const [k, boxes] of groups) {
    const [key = '', proto = ''] = k.split('\0');
    const head = key ? `${key} . ` : '';
    if (!withPorts) for (const a of addressElements(f, boxes)) out.push(`${head}${a}`);
    else for (const [a, p] of addressPortElements(f, boxes)) out.push(`${head}${a} . ${proto} . ${p}`);
  }
  return out;
}
const anyOf = (e: Elements, f: Family) => elements(e.any[f], f, false);
const portOf = (e: Elements, f: Family) => elements(e.port[f], f, true);

function set(name: string, typeOf: string, elements: readonly string[], interval: boolean): string {
  const lines = [`\tset ${name} {`, `\t\ttypeof ${typeOf}`];
  if (interval) lines.push('\t\tflags interval');
  const unique = [...new Set(elements)].sort();
  if (unique.length) lines.push(`\t\telements = {\n\t\t\t${unique.join(',\n\t\t\t')}\n\t\t}`);
  lines.push('\t}');
  return lines.join('\n');
}

/** Trial rules (per-rule audit inside an enforcing profile) are reported, never enforced. */
const enforced = (policy: Policy) => policy.rules.filter((r) => !isTrial(policy, r));

/** Allow rules that are enforced by cgroup membership (process rules, not kernel or deny rules). */
export function processAllowRules(policy: Policy): EffectiveRule[] {
  return enforced(policy).filter((r) => r.action === 'allow' && !r.kernel && r.binary);
}

/**
 * Set elements of the inbound listener sets. A socket bound to one address admits packets
 * to that address only (`listen4`/`listen6`, matched with `socket wildcard 0`); a wildcard
 * socket admits its family (`listen_wild`, matched with `socket wildcard 1`), and `::`
 * admits IPv4 too unless it is v6-only (then another process may own 0.0.0.0 on the port). The
 * `socket` expression looks up the socket the kernel will deliver to, so a more specific
 * socket of another process on the same port never matches a wildcard listener's element.
 * A listener without `addr` (callers before issue 9.7) is a wildcard of both families.
 */
export function listenerElements(listeners: readonly Listener[]): { v4: string[]; v6: string[]; wild: string[] } {
  const out = { v4: [] as string[], v6: [] as string[], wild: [] as string[] };
  for (const l of listeners) {
    if (!Number.isInteger(l.port) || l.port <= 0 || l.port > 0xffff) throw new Error(`refusing to render port ${l.port}`);
    if (l.proto !== 'tcp' && l.proto !== 'udp') throw new Error(`refusing to render protocol ${String(l.proto)}`);
    const tail = `${l.proto} . ${l.port}`;
    const a = l.addr;
    if (a === '::' && l.v6only) out.wild.push(`ipv6 . ${tail}`);
    else if (a === undefined || a === '::') out.wild.push(`ipv4 . ${tail}`, `ipv6 . ${tail}`);
    else if (a === '0.0.0.0') out.wild.push(`ipv4 . ${tail}`);
    else if (a.startsWith('::ffff:') && a.includes('.')) out.v4.push(`${addrText(a.slice(7))} . ${tail}`);
    else if (a.includes(':')) out.v6.push(`${addrText(a)} . ${tail}`);
    else out.v4.push(`${addrText(a)} . ${tail}`);
  }
  return out;
}

function indexText(i: number): string {
  if (!Number.isInteger(i) || i <= 0 || i > 0x7fffffff) throw new Error(`refusing to render interface index ${i}`);
  return String(i);
}

/**
 * A zone: the interface patterns one or more sources name, and everything that opens them
 * (helper/policy/scope.ts): rule classids with their destinations (grants), alwaysAllow,
 * kernel rules, listeners. Its chains are reached only from packets on those interfaces.
 */
export interface Zone {
  /** `z0`, `z1`, … in order of their sorted pattern lists. */
  name: string;
  patterns: string[];
  /** Rule keys whose classid is open here to the whole tunnel. */
  whole: Set<string>;
  /** Rule keys whose classid is open here to some destinations. */
  scoped: Map<string, Destination[]>;
  always: Destination[];
  kernel: EffectiveRule[];
}

/**
 * The zones of a policy for the rules that have a classid, in a stable order (the same
 * policy and classids give the same names, which renderZoneListeners and renderGatedIndexes
 * rely on). Pure.
 */
export function zonesOf(policy: Policy, classids: ReadonlyMap<string, number>): Zone[] {
  const byKey = new Map<string, Zone>();
  const zone = (patterns: readonly string[]): Zone => {
    const sorted = [...new Set(patterns)].sort();
    const key = JSON.stringify(sorted);
    let z = byKey.get(key);
    if (!z) byKey.set(key, (z = { name: '', patterns: sorted, whole: new Set(), scoped: new Map(), always: [], kernel: [] }));
    return z;
  };
  const allow = processAllowRules(policy).filter((r) => classids.has(r.key));
  for (const g of grants(policy, allow)) {
    if (!g.interfaces.length) continue;
    const z = zone(g.interfaces);
    if (!g.destinations?.length) z.whole.add(g.owner.key);
    else z.scoped.set(g.owner.key, [...(z.scoped.get(g.owner.key) ?? []), ...g.destinations]);
  }
  const scopes = policy.scopes ?? [{ interfaces: policy.interfaces, alwaysAllow: policy.alwaysAllow }];
  for (const s of scopes) if (s.alwaysAllow.length && s.interfaces.length) zone(s.interfaces).always.push(...s.alwaysAllow);
  for (const r of enforced(policy)) {
    const ifs = ruleInterfaces(policy, r);
    if (r.kernel && r.action === 'allow' && ifs.length) zone(ifs).kernel.push(r);
  }
  const zones = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, z]) => z);
  zones.forEach((z, i) => (z.name = `z${i}`));
  return zones;
}

/** A rule line for each of the four families of sets (v4, v4 with ports, v6, v6 with ports). */
function setLines(prefix: string, name: string, key: (f: Family) => string, addr: (f: Family) => string, verdict: string): string[] {
  const out: string[] = [];
  for (const f of [4, 6] as const) out.push(`\t\t${prefix}${addr(f)} @${name}${f} ${verdict}`, `\t\t${prefix}${key(f)} @${name}${f}_port ${verdict}`);
  return out;
}

/** The four interval sets of one kind of destination; `cg`: keyed by classid first. */
function destinationSets(name: string, e: Elements, cg: boolean, portKey: (f: Family) => string): string[] {
  const head = cg ? 'meta cgroup . ' : '';
  const out: string[] = [];
  for (const f of [4, 6] as const) {
    out.push(set(`${name}${f}`, `${head}${ipOf(f)} daddr`, anyOf(e, f), true));
    out.push(set(`${name}${f}_port`, `${head}${portKey(f)}`, portOf(e, f), true));
  }
  return out;
}

/** The listener sets of a zone (or the legacy global ones, prefix ''). */
function listenSets(prefix: string, listeners: readonly Listener[]): string[] {
  const listen = listenerElements(listeners);
  return [
    set(`${prefix}listen4`, 'ip daddr . meta l4proto . th dport', listen.v4, false),
    set(`${prefix}listen6`, 'ip6 daddr . meta l4proto . th dport', listen.v6, false),
    set(`${prefix}listen_wild`, 'meta nfproto . meta l4proto . th dport', listen.wild, false),
  ];
}

/** The three rules of new inbound flows to the listener sets named with `prefix`. */
function listenLines(prefix: string): string[] {
  return [
    `\t\tct state new socket wildcard 0 ip daddr . meta l4proto . th dport @${prefix}listen4 accept`,
    `\t\tct state new socket wildcard 0 ip6 daddr . meta l4proto . th dport @${prefix}listen6 accept`,
    `\t\tct state new socket wildcard 1 meta nfproto . meta l4proto . th dport @${prefix}listen_wild accept`,
  ];
}

/** The key of a zone in RenderInput.listenersByZone: its sorted patterns. */
export const zoneKey = (z: Pick<Zone, 'patterns'>): string => JSON.stringify(z.patterns);

const zoneListeners = (z: Zone, byZone: ReadonlyMap<string, readonly Listener[]>): readonly Listener[] => byZone.get(zoneKey(z)) ?? [];

const ifaceSet = (patterns: readonly string[]) => `{ ${[...new Set(patterns)].sort().map(q).join(', ')} }`;

export function renderTable(input: RenderInput): string {
  const { policy, classids, listeners, nflogGroup } = input;
  if (!Number.isInteger(nflogGroup) || nflogGroup < 0 || nflogGroup > 0xffff) throw new Error(`refusing to render NFLOG group ${nflogGroup}`);
  const cls = (key: string) => hex(classids.get(key) as number);
  const allowRules = processAllowRules(policy).filter((r) => classids.has(r.key));
  const denyRules = enforced(policy).filter((r) => r.action === 'deny' && r.destinations?.length && !r.kernel);
  const zones = zonesOf(policy, classids);
  const gated = input.gatedIndexes ?? [];
  const indexes = [...(input.interfaceIndexes ?? []), ...gated.map((g) => g.index)];

  // IT denies apply on every gated interface (helper/policy/scope.ts): a scoped deny is
  // enforced against the cgroups of every allow rule whose binaries it may cover.
  const denied = emptyElements();
  for (const d of denyRules) {
    for (const a of allowRules) if (mayOverlap(d, a)) addDestinations(denied, cls(a.key), d.destinations ?? []);
  }

  // Audit (helper/policy/scope.ts auditPatterns): an interface only audit profiles gate
  // passes and records what it refuses; every other gated interface drops.
  const audit = auditPatterns(policy);
  const enforcing = [...new Set(policy.interfaces)].filter((p) => !audit.includes(p));
  const enforceIndexes = [...(input.interfaceIndexes ?? []), ...gated.filter((g) => !audit.includes(g.pattern)).map((g) => g.index)];
  const verdict = (way: 'out' | 'in') => (audit.length ? `goto verdict_${way}` : 'goto refuse');

  const sets: string[] = [...destinationSets('deny', denied, true, portKey)];
  if (!input.listenersByZone) sets.push(...listenSets('', listeners));
  sets.push(indexSet('gated_if', indexes));
  if (audit.length) sets.push(indexSet('enforce_if', enforceIndexes));
  const zoneChains: string[] = [];
  const out: string[] = [];
  const inb: string[] = ['\t\tct state established,related accept'];
  const jumps = (z: Zone, way: 'out' | 'in', chain: string) => {
    const [name, index] = way === 'out' ? ['oifname', 'meta oif'] : ['iifname', 'meta iif'];
    // By name only while the interface has no gated index yet (it has just appeared): once
    // gated, an index belongs to the zones whose patterns named it then (zoneIndexes), and a
    // rename into another zone's pattern must not add that zone's rules (a fresh tester
    // renamed the corporate tunnel to the lab profile's name and the lab's programs got 200).
    return [`\t\t${name} ${ifaceSet(z.patterns)} ${index} != @gated_if jump ${z.name}_${chain}`, `\t\t${index} @${z.name}_if jump ${z.name}_${chain}`];
  };
  for (const z of zones) {
    const parts = zoneParts(z, cls, gated, input.listenersByZone);
    sets.push(...parts.sets);
    zoneChains.push(...parts.chains);
    out.push(...jumps(z, 'out', 'always_out'));
    inb.push(...jumps(z, 'in', 'always_in'));
  }
  out.push(...setLines('meta cgroup . ', 'deny', portKey, outAddr, verdict('out')));
  inb.push(...setLines('meta cgroup . ', 'deny', inPortKey, inAddr, verdict('in')));
  for (const z of zones) {
    out.push(...jumps(z, 'out', 'out'));
    inb.push(...jumps(z, 'in', 'in'));
  }
  if (!input.listenersByZone) inb.push(...listenLines(''));
  out.push(`\t\t${verdict('out')}`);
  inb.push(`\t\t${verdict('in')}`);

  // Inbound (issues 9.7, 9.8). A packet is admitted only towards a socket of an admitted
  // process: (1) a flow conntrack already knows; (2) a socket early demux has already found
  // (established TCP, connected UDP: skb->sk is set at the input hook, so `meta cgroup` is the
  // receiving socket's classid) — this is what keeps a connection that predates the table
  // alive, since its first packet seen by conntrack is "new" (mid-stream pickup); (3) a new
  // flow to a listener of an admitted process (of a whole-tunnel grant in that zone), by its
  // exact bound address or as a wildcard, checked against the socket the kernel will
  // deliver to (`socket wildcard`). The same order as gate_out, seen from the other end.
  // Only a connection's first packet is an attempt: a dropped SYN is retried as a new one,
  // and in audit mode the rest of a flow that passes is not logged again.
  const verdictChains = audit.length
    ? (['out', 'in'] as const).map((way) => {
        const [name, index] = way === 'out' ? ['oifname', 'meta oif'] : ['iifname', 'meta iif'];
        return chain(`verdict_${way}`, [
          ...(enforcing.length ? [`\t\t${name} ${ifaceSet(enforcing)} goto refuse`] : []),
          `\t\t${index} @enforce_if goto refuse`,
          '\t\tgoto refuse_audit',
        ]);
      })
    : [];
  const allIfaces = ifaceSet(policy.interfaces);
  return [
    // Create-then-delete makes the replacement one atomic transaction whether or not
    // the table exists: there is no moment without a gate.
    `table ${FAMILY} ${TABLE} {}`,
    `delete table ${FAMILY} ${TABLE}`,
    `table ${FAMILY} ${TABLE} {`,
    `\tcomment "tunnelgate: per-application gate for ${policy.interfaces.join(' ')}; managed by tunnelgate helper"`,
    '\tcounter dropped {}',
    '\tcounter audited {}',
    ...sets,
    '\tchain output {',
    '\t\ttype filter hook output priority filter; policy accept;',
    `\t\toifname ${allIfaces} jump gate_out`,
    '\t\tmeta oif @gated_if jump gate_out',
    '\t}',
    '\tchain input {',
    '\t\ttype filter hook input priority filter; policy accept;',
    `\t\tiifname ${allIfaces} jump gate_in`,
    '\t\tmeta iif @gated_if jump gate_in',
    '\t}',
    chain('gate_out', out),
    chain('gate_in', inb),
    ...zoneChains,
    ...verdictChains,
    chain('refuse', [`\t\tct state new ${LOG_RATE} log prefix ${JSON.stringify(LOG_PREFIX_DENY)} group ${nflogGroup}`, '\t\tcounter name "dropped" drop']),
    chain('refuse_audit', [`\t\tct state new ${LOG_RATE} log prefix ${JSON.stringify(LOG_PREFIX_AUDIT)} group ${nflogGroup}`, '\t\tcounter name "audited" accept']),
    '}',
    '',
  ].join('\n');
}

const portKey = (f: Family) => `${ipOf(f)} daddr . meta l4proto . th dport`;
/** The same sets seen from an inbound packet: the remote end is the source. */
const inPortKey = (f: Family) => `${ipOf(f)} saddr . meta l4proto . th sport`;
const outAddr = (f: Family) => `${ipOf(f)} daddr`;
const inAddr = (f: Family) => `${ipOf(f)} saddr`;
// Kernel traffic (NFS, CIFS) has no process: its sockets belong to kernel threads, uid 0
// in no net_cls cgroup. Root processes outside every rule look the same to the packet
// filter; root can change the firewall anyway, so this widens nothing that matters.
const kernelSk = 'meta skuid 0 meta cgroup 0';

/**
 * The gated indexes that belong to a zone of `patterns`: those gated under one of them, and
 * those whose name when gated matched one (an interface `wg0` gated under `wg*` belongs to
 * a zone of `wg0` too). Never by the interface's present name: a renamed interface keeps the
 * zones it had. Pure.
 */
export function zoneIndexes(patterns: readonly string[], gated: readonly GatedIndex[]): GatedIndex[] {
  return gated.filter((g) => patterns.includes(g.pattern) || patterns.some((p) => interfaceMatches(g.name, p)));
}

/** A zone's sets and its four chains (alwaysAllow out, rules out, alwaysAllow in, rules in). */
function zoneParts(z: Zone, cls: (key: string) => string, gated: readonly GatedIndex[], byZone: ReadonlyMap<string, readonly Listener[]> | undefined): { sets: string[]; chains: string[] } {
  const always = emptyElements();
  addDestinations(always, undefined, z.always);
  const kernel = emptyElements();
  for (const r of z.kernel) addDestinations(kernel, undefined, r.destinations ?? []);
  const kernelWhole = z.kernel.some((r) => !r.destinations?.length);
  const scoped = emptyElements();
  for (const [k, ds] of [...z.scoped].sort(([a], [b]) => (a < b ? -1 : 1))) addDestinations(scoped, cls(k), ds);
  const sets = [
    indexSet(`${z.name}_if`, zoneIndexes(z.patterns, gated).map((g) => g.index)),
    set(`${z.name}_any`, 'meta cgroup', [...z.whole].map(cls), false),
    ...destinationSets(`${z.name}_always`, always, false, portKey),
    ...destinationSets(`${z.name}_kernel`, kernel, false, portKey),
    ...destinationSets(`${z.name}_scope`, scoped, true, portKey),
    ...(byZone ? listenSets(`${z.name}_`, zoneListeners(z, byZone)) : []),
  ];
  const rules = (way: 'out' | 'in') => {
    const [key, addr] = way === 'out' ? [portKey, outAddr] : [inPortKey, inAddr];
    return [
      ...(kernelWhole ? [`\t\t${kernelSk} accept`] : []),
      ...setLines(`${kernelSk} `, `${z.name}_kernel`, key, addr, 'accept'),
      `\t\tmeta cgroup @${z.name}_any accept`,
      ...setLines('meta cgroup . ', `${z.name}_scope`, key, addr, 'accept'),
      ...(way === 'in' && byZone ? listenLines(`${z.name}_`) : []),
    ];
  };
  // `meta skuid >= 0` inbound holds only when the packet already has its socket (early
  // demux): alwaysAllow admits the socket that connected to such a destination, never a
  // new flow to any listener.
  const chains = [
    chain(`${z.name}_always_out`, setLines('', `${z.name}_always`, portKey, outAddr, 'accept')),
    chain(`${z.name}_out`, rules('out')),
    chain(`${z.name}_always_in`, setLines('meta skuid >= 0 ', `${z.name}_always`, inPortKey, inAddr, 'accept')),
    chain(`${z.name}_in`, rules('in')),
  ];
  return { sets, chains };
}

function chain(name: string, lines: readonly string[]): string {
  return [`\tchain ${name} {`, ...lines, '\t}'].join('\n');
}

/** A set of interface indexes (numbers, so nft needs no interface to exist to load it). */
function indexSet(name: string, indexes: readonly number[]): string {
  const elements = [...new Set(indexes.map(indexText))].sort((a, b) => Number(a) - Number(b));
  const lines = [`\tset ${name} {`, '\t\ttype iface_index'];
  if (elements.length) lines.push(`\t\telements = { ${elements.join(', ')} }`);
  lines.push('\t}');
  return lines.join('\n');
}

/** Replace the listener sets in one transaction. */
export function renderListeners(listeners: readonly Listener[]): string {
  const e = listenerElements(listeners);
  const lines: string[] = [];
  for (const [name, elements] of [['listen4', e.v4], ['listen6', e.v6], ['listen_wild', e.wild]] as const) {
    lines.push(`flush set ${FAMILY} ${TABLE} ${name}`);
    const unique = [...new Set(elements)].sort();
    if (unique.length) lines.push(`add element ${FAMILY} ${TABLE} ${name} { ${unique.join(', ')} }`);
  }
  return `${lines.join('\n')}\n`;
}

/** `flush set` and `add element` lines that make one set hold `elements`. */
function refill(name: string, elements: readonly string[]): string[] {
  const unique = [...new Set(elements)].sort();
  return [`flush set ${FAMILY} ${TABLE} ${name}`, ...(unique.length ? [`add element ${FAMILY} ${TABLE} ${name} { ${unique.join(', ')} }`] : [])];
}

/**
 * Replace every zone's listener sets in one transaction (a table rendered with
 * `listenersByZone` and the same policy and classids). Throws on a bad listener.
 */
export function renderZoneListeners(policy: Policy, classids: ReadonlyMap<string, number>, byZone: ReadonlyMap<string, readonly Listener[]>): string {
  const lines: string[] = [];
  for (const z of zonesOf(policy, classids)) {
    const e = listenerElements(zoneListeners(z, byZone));
    lines.push(...refill(`${z.name}_listen4`, e.v4), ...refill(`${z.name}_listen6`, e.v6), ...refill(`${z.name}_listen_wild`, e.wild));
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Replace the index sets (gated_if, each zone's, enforce_if) in one transaction: a link
 * appeared under a gated name (helper/ruleset/interfaces.ts decides which indexes). The
 * same policy and classids as the table in force. Throws on a bad index.
 */
export function renderGatedIndexes(policy: Policy, classids: ReadonlyMap<string, number>, gated: readonly GatedIndex[]): string {
  const text = (xs: readonly GatedIndex[]) => [...new Set(xs.map((g) => indexText(g.index)))];
  const lines = refill('gated_if', text(gated));
  const audit = auditPatterns(policy);
  if (audit.length) lines.push(...refill('enforce_if', text(gated.filter((g) => !audit.includes(g.pattern)))));
  for (const z of zonesOf(policy, classids)) lines.push(...refill(`${z.name}_if`, text(zoneIndexes(z.patterns, gated))));
  return `${lines.join('\n')}\n`;
}

/**
 * Could a deny rule's binaries include some of an allow rule's? Conservative: true unless
 * both name paths or packages that cannot coincide.
 */
export function mayOverlap(deny: EffectiveRule, allow: EffectiveRule): boolean {
  const d = deny.binary;
  const a = allow.binary;
  if (!d || !a) return true;
  if (d.package !== undefined || a.package !== undefined) {
    return d.package === undefined || a.package === undefined || d.package === a.package;
  }
  if (d.path === undefined || a.path === undefined) return true;
  const dp = d.path.endsWith('*') ? d.path.slice(0, -1) : undefined;
  const ap = a.path.endsWith('*') ? a.path.slice(0, -1) : undefined;
  if (dp === undefined && ap === undefined) return d.path === a.path;
  if (dp !== undefined && ap !== undefined) return dp.startsWith(ap) || ap.startsWith(dp);
  if (dp !== undefined) return a.path.startsWith(dp);
  return d.path.startsWith(ap as string);
}
