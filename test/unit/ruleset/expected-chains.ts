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
