// The gate chains exactly as helper/ruleset/render.ts writes them, shared by the render tests:
// `gate_out` matches a packet's destination, `gate_in` its source (the remote end), with
// established flows and new flows to admitted listeners accepted inbound only (issue 9.7).
// Each zone (the interface patterns of one source, helper/policy/scope.ts) has its own
// chains, reached only from packets on its interfaces (by name or by gated index).

/** A zone as the render tests name it: `z0`, … and its sorted patterns. */
export interface ZoneName {
  name: string;
  patterns: string[];
}

type Way = 'out' | 'in';
const ends = (way: Way) => (way === 'out' ? ['daddr', 'dport'] : ['saddr', 'sport']);

/** The four lines of one family of sets: v4, v4 with ports, v6, v6 with ports. */
function sets(way: Way, prefix: string, name: string, verdict: string): string[] {
  const [addr, port] = ends(way);
  return [
    `${prefix}ip ${addr} @${name}4 ${verdict}`,
    `${prefix}ip ${addr} . meta l4proto . th ${port} @${name}4_port ${verdict}`,
    `${prefix}ip6 ${addr} @${name}6 ${verdict}`,
    `${prefix}ip6 ${addr} . meta l4proto . th ${port} @${name}6_port ${verdict}`,
  ];
}

const listenLines = (prefix: string) => [
  `ct state new socket wildcard 0 ip daddr . meta l4proto . th dport @${prefix}listen4 accept`,
  `ct state new socket wildcard 0 ip6 daddr . meta l4proto . th dport @${prefix}listen6 accept`,
  `ct state new socket wildcard 1 meta nfproto . meta l4proto . th dport @${prefix}listen_wild accept`,
];

const block = (name: string, lines: readonly string[]) => `\tchain ${name} {\n${lines.map((l) => `\t\t${l}\n`).join('')}\t}\n`;

function jumps(way: Way, z: ZoneName, chain: string): string[] {
  const [name, index] = way === 'out' ? ['oifname', 'meta oif'] : ['iifname', 'meta iif'];
  return [`${name} { ${z.patterns.map((p) => `"${p}"`).join(', ')} } ${index} != @gated_if jump ${z.name}_${chain}`, `${index} @${z.name}_if jump ${z.name}_${chain}`];
}

/**
 * The text of `chain gate_out` or `chain gate_in`, tab-indented as in the table. `global`
 * listeners: the table was rendered without listenersByZone. `verdict`: `goto refuse`, or
 * `goto verdict_out`/`_in` where an interface is in audit.
 */
export function gateChainText(way: Way, zones: readonly ZoneName[] = [{ name: 'z0', patterns: ['wg0'] }], opts: { global?: boolean; audit?: boolean } = {}): string {
  const verdict = opts.audit ? `goto verdict_${way}` : 'goto refuse';
  const lines = [
    ...(way === 'in' ? ['ct state established,related accept'] : []),
    ...zones.flatMap((z) => jumps(way, z, `always_${way}`)),
    ...sets(way, 'meta cgroup . ', 'deny', verdict),
    ...zones.flatMap((z) => jumps(way, z, way)),
    ...(way === 'in' && (opts.global ?? true) ? listenLines('') : []),
    verdict,
  ];
  return block(`gate_${way}`, lines);
}

/** The four chains of one zone: alwaysAllow out, rules out, alwaysAllow in, rules in. */
export function zoneChainsText(z: string, opts: { kernelWhole?: boolean; listeners?: boolean } = {}): string {
  const rules = (way: Way) => [
    ...(opts.kernelWhole ? ['meta skuid 0 meta cgroup 0 accept'] : []),
    ...sets(way, 'meta skuid 0 meta cgroup 0 ', `${z}_kernel`, 'accept'),
    `meta cgroup @${z}_any accept`,
    ...sets(way, 'meta cgroup . ', `${z}_scope`, 'accept'),
    ...(way === 'in' && opts.listeners ? listenLines(`${z}_`) : []),
  ];
  return [
    block(`${z}_always_out`, sets('out', '', `${z}_always`, 'accept')),
    block(`${z}_out`, rules('out')),
    block(`${z}_always_in`, sets('in', 'meta skuid >= 0 ', `${z}_always`, 'accept')),
    block(`${z}_in`, rules('in')),
  ].join('');
}

/** The refuse chains: drop (and count) or, in audit, pass (and count); both log new flows. */
export function refuseChainsText(group = 7467): string {
  return [
    block('refuse', [`ct state new limit rate 20/second burst 50 packets log prefix "tunnelgate deny: " group ${group}`, 'counter name "dropped" drop']),
    block('refuse_audit', [`ct state new limit rate 20/second burst 50 packets log prefix "tunnelgate audit: " group ${group}`, 'counter name "audited" accept']),
  ].join('');
}

/** The text of one set: its `typeof`, `flags interval` when given, its elements one a line. */
export function setBlock(name: string, typeOf: string, elements: readonly string[] = [], interval = false): string {
  const els = elements.length ? `\t\telements = {\n${elements.map((e) => `\t\t\t${e}`).join(',\n')}\n\t\t}\n` : '';
  return `\tset ${name} {\n\t\ttypeof ${typeOf}\n${interval ? '\t\tflags interval\n' : ''}${els}\t}\n`;
}

/** A set of interface indexes. */
export function indexSetBlock(name: string, indexes: readonly number[] = []): string {
  return `\tset ${name} {\n\t\ttype iface_index\n${indexes.length ? `\t\telements = { ${indexes.join(', ')} }\n` : ''}\t}\n`;
}

/** The four empty interval sets of one kind of destination (v4, v4 with ports, v6, v6 with ports). */
export function emptyDestinationSets(name: string, perCgroup: boolean): string {
  const cg = perCgroup ? 'meta cgroup . ' : '';
  return [
    setBlock(`${name}4`, `${cg}ip daddr`, [], true),
    setBlock(`${name}4_port`, `${cg}ip daddr . meta l4proto . th dport`, [], true),
    setBlock(`${name}6`, `${cg}ip6 daddr`, [], true),
    setBlock(`${name}6_port`, `${cg}ip6 daddr . meta l4proto . th dport`, [], true),
  ].join('');
}
