// The gate chains exactly as helper/ruleset/render.ts writes them, shared by the render tests:
// `gate_out` matches a packet's destination, `gate_in` its source (the remote end), with
// established flows and new flows to admitted listeners accepted inbound only (issue 9.7).

/** The text of `chain gate_out` or `chain gate_in`, tab-indented as in the table. */
export function gateChainText(way: 'out' | 'in'): string {
  const [addr, port] = way === 'out' ? ['daddr', 'dport'] : ['saddr', 'sport'];
  /** The four lines of one family of sets: v4, v4 with ports, v6, v6 with ports. */
  const sets = (prefix: string, name: string, verdict: string) => [
    `${prefix}ip ${addr} @${name}4 ${verdict}`,
    `${prefix}ip ${addr} . meta l4proto . th ${port} @${name}4_port ${verdict}`,
    `${prefix}ip6 ${addr} @${name}6 ${verdict}`,
    `${prefix}ip6 ${addr} . meta l4proto . th ${port} @${name}6_port ${verdict}`,
  ];
  const lines = [
    ...(way === 'in' ? ['ct state established,related accept'] : []),
    ...sets(way === 'in' ? 'meta skuid >= 0 ' : '', 'always', 'accept'),
    ...sets('meta cgroup . ', 'deny', 'goto refuse'),
    ...sets('meta skuid 0 meta cgroup 0 ', 'kernel', 'accept'),
    'meta cgroup @rules_any accept',
    ...sets('meta cgroup . ', 'scope', 'accept'),
    ...(way === 'in'
      ? [
          'ct state new socket wildcard 0 ip daddr . meta l4proto . th dport @listen4 accept',
          'ct state new socket wildcard 0 ip6 daddr . meta l4proto . th dport @listen6 accept',
          'ct state new socket wildcard 1 meta nfproto . meta l4proto . th dport @listen_wild accept',
        ]
      : []),
    'goto refuse',
  ];
  return `\tchain gate_${way} {\n${lines.map((l) => `\t\t${l}\n`).join('')}\t}\n`;
}

/** The text of one set: its `typeof`, `flags interval` when given, its elements one a line. */
export function setBlock(name: string, typeOf: string, elements: readonly string[] = [], interval = false): string {
  const els = elements.length ? `\t\telements = {\n${elements.map((e) => `\t\t\t${e}`).join(',\n')}\n\t\t}\n` : '';
  return `\tset ${name} {\n\t\ttypeof ${typeOf}\n${interval ? '\t\tflags interval\n' : ''}${els}\t}\n`;
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
