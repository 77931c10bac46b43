// Policy -> nftables transaction. Pure: the same input gives the same text, byte for byte.
//
// Design: every allow rule owns a cgroup (<root>/<rule key>); a socket is judged by the
// cgroup it was created in (`socket cgroupv2 level N`), so what a process may reach
// follows from where the helper placed it, and revoking a rule is a ruleset change
// alone. Lookups go through sets, so the per-packet cost does not grow with the
// number of rules. Processes still being verified after `tunnelgate run` sit in a
// launch cgroup one level below their rule and are dropped until verified.
import type { Policy, EffectiveRule } from '../../common/policy.js';
import type { Destination } from '../../common/profile.js';
import { FAMILY, TABLE } from '../kernel/nft.js';

export interface RenderInput {
  policy: Policy;
  /** The subtree as nft names it (relative to /sys/fs/cgroup) and the depth of rule cgroups. */
  cgroups: { nftPath: string; ruleLevel: number };
  /** Launch cgroups (`<rule key>/l-<id>`) whose processes are not verified yet. */
  pending: readonly string[];
}

export const LOG_PREFIX_DENY = 'tunnelgate deny: ';
export const LOG_PREFIX_AUDIT = 'tunnelgate audit: ';
export const LOG_RATE = 'limit rate 20/second burst 50 packets';

type Family = 4 | 6;
const famOf = (cidr: string): Family => (cidr.includes(':') ? 6 : 4);
const ipOf = (f: Family) => (f === 4 ? 'ip' : 'ip6');
const addrType = (f: Family) => (f === 4 ? 'ipv4_addr' : 'ipv6_addr');

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

/** Set elements for destinations: `[keyPrefix] . addr [. proto . port]`, split by family and by port-scoping. */
interface Elements {
  any: Record<Family, string[]>;
  port: Record<Family, string[]>;
}
const emptyElements = (): Elements => ({ any: { 4: [], 6: [] }, port: { 4: [], 6: [] } });

function addDestinations(into: Elements, prefix: string | undefined, dests: readonly Destination[]): void {
  const head = prefix === undefined ? '' : `${prefix} . `;
  for (const d of dests) {
    const f = famOf(d.cidr);
    const addr = cidrText(d.cidr);
    if (!d.proto && !d.ports?.length) {
      into.any[f].push(`${head}${addr}`);
      continue;
    }
    const protos = d.proto ? [d.proto] : ['tcp', 'udp'];
    const ports = d.ports?.length ? d.ports.map(String) : ['0-65535'];
    for (const p of protos) for (const port of ports) into.port[f].push(`${head}${addr} . ${p} . ${port}`);
  }
}

function set(name: string, type: string, elements: readonly string[], interval: boolean): string {
  const lines = [`\tset ${name} {`, `\t\ttype ${type}`];
  if (interval) lines.push('\t\tflags interval');
  const unique = [...new Set(elements)].sort();
  if (unique.length) lines.push(`\t\telements = {\n\t\t\t${unique.join(',\n\t\t\t')}\n\t\t}`);
  lines.push('\t}');
  return lines.join('\n');
}

/** Allow rules that are enforced by cgroup membership (process rules, not kernel or deny rules). */
export function processAllowRules(policy: Policy): EffectiveRule[] {
  return policy.rules.filter((r) => r.action === 'allow' && !r.kernel && r.binary);
}

export function renderTable(input: RenderInput): string {
  const { policy, cgroups, pending } = input;
  const L = cgroups.ruleLevel;
  const cg = (rel: string) => q(`${cgroups.nftPath}/${rel}`);
  const allowRules = processAllowRules(policy);
  const denyRules = policy.rules.filter((r) => r.action === 'deny' && r.destinations?.length && !r.kernel);

  const unscoped = allowRules.filter((r) => !r.destinations?.length).map((r) => cg(r.key));
  const scoped = emptyElements();
  for (const r of allowRules) if (r.destinations?.length) addDestinations(scoped, cg(r.key), r.destinations);
  // A scoped deny is enforced against the cgroups of every allow rule whose binaries it may cover.
  const denied = emptyElements();
  for (const d of denyRules) {
    for (const a of allowRules) if (mayOverlap(d, a)) addDestinations(denied, cg(a.key), d.destinations ?? []);
  }
  const always = emptyElements();
  addDestinations(always, undefined, policy.alwaysAllow);

  const ifaces = [...new Set(policy.interfaces)].sort().map(q).join(', ');
  const audit = policy.mode === 'audit';
  const sk = `socket cgroupv2 level ${L}`;
  const portKey = (f: Family) => `${ipOf(f)} daddr . meta l4proto . th dport`;

  const sets: string[] = [
    set('rules_any', 'cgroupsv2', unscoped, false),
    set('pending', 'cgroupsv2', pending.map(cg), false),
  ];
  const out: string[] = [`\t\tsocket cgroupv2 level ${L + 1} @pending counter name "pending" drop`];
  for (const f of [4, 6] as const) {
    sets.push(set(`always${f}`, addrType(f), always.any[f], true));
    sets.push(set(`always${f}_port`, `${addrType(f)} . inet_proto . inet_service`, always.port[f], true));
    out.push(`\t\t${ipOf(f)} daddr @always${f} accept`, `\t\t${portKey(f)} @always${f}_port accept`);
  }
  for (const f of [4, 6] as const) {
    sets.push(set(`deny${f}`, `cgroupsv2 . ${addrType(f)}`, denied.any[f], true));
    sets.push(set(`deny${f}_port`, `cgroupsv2 . ${addrType(f)} . inet_proto . inet_service`, denied.port[f], true));
    out.push(`\t\t${sk} . ${ipOf(f)} daddr @deny${f} goto refuse`, `\t\t${sk} . ${portKey(f)} @deny${f}_port goto refuse`);
  }
  out.push(`\t\t${sk} @rules_any accept`);
  for (const f of [4, 6] as const) {
    sets.push(set(`scope${f}`, `cgroupsv2 . ${addrType(f)}`, scoped.any[f], true));
    sets.push(set(`scope${f}_port`, `cgroupsv2 . ${addrType(f)} . inet_proto . inet_service`, scoped.port[f], true));
    out.push(`\t\t${sk} . ${ipOf(f)} daddr @scope${f} accept`, `\t\t${sk} . ${portKey(f)} @scope${f}_port accept`);
  }
  out.push('\t\tgoto refuse');

  const refuse = audit
    ? [`\t\t${LOG_RATE} log prefix ${JSON.stringify(LOG_PREFIX_AUDIT)} level info flags skuid`, '\t\tcounter name "audited" accept']
    : [`\t\t${LOG_RATE} log prefix ${JSON.stringify(LOG_PREFIX_DENY)} level info flags skuid`, '\t\tcounter name "dropped" drop'];

  return [
    // Create-then-delete makes the replacement one atomic transaction whether or not
    // the table exists: there is no moment without a gate.
    `table ${FAMILY} ${TABLE} {}`,
    `delete table ${FAMILY} ${TABLE}`,
    `table ${FAMILY} ${TABLE} {`,
    `\tcomment "tunnelgate: per-application gate for ${policy.interfaces.join(' ')}; managed by tunnelgate helper"`,
    '\tcounter dropped {}',
    '\tcounter audited {}',
    '\tcounter pending {}',
    ...sets,
    '\tchain output {',
    '\t\ttype filter hook output priority filter; policy accept;',
    `\t\toifname { ${ifaces} } jump gate_out`,
    '\t}',
    '\tchain input {',
    '\t\ttype filter hook input priority filter; policy accept;',
    `\t\tiifname { ${ifaces} } jump gate_in`,
    '\t}',
    '\tchain gate_out {',
    ...out,
    '\t}',
    '\tchain gate_in {',
    '\t\tct state established,related accept',
    `\t\tsocket cgroupv2 level ${L + 1} @pending drop`,
    `\t\t${sk} @rules_any accept`,
    '\t\tgoto refuse',
    '\t}',
    '\tchain refuse {',
    ...refuse,
    '\t}',
    '}',
    '',
  ].join('\n');
}

/** One atomic change of the pending set: launches entering or leaving verification. */
export function renderPendingChange(op: 'add' | 'delete', nftPath: string, rels: readonly string[]): string {
  if (!rels.length) return '';
  const elems = rels.map((r) => q(`${nftPath}/${r}`)).join(', ');
  return `${op} element ${FAMILY} ${TABLE} pending { ${elems} }\n`;
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
