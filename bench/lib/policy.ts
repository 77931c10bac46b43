// Synthetic policies for the benchmarks: realistic in shape, deterministic in content.
//
// Mix (what the "1,000-rule policy" is taken to mean): 70% whole-tunnel rules that
// name one executable path, 30% destination-scoped rules with 1-3 destinations each, some
// IPv6, most narrowed to a protocol and 1-3 ports. Destinations never overlap within a
// rule (nft refuses overlapping intervals in one set), and every rule owns its own
// cgroup/classid, as in the helper.
import type { Policy } from '../../common/policy.js';
import type { Destination, Profile, ProfileRule } from '../../common/profile.js';
import { PROFILE_SCHEMA } from '../../common/profile.js';
import { mergePolicy } from '../../helper/policy/merge.js';
import { processAllowRules } from '../../helper/ruleset/render.js';
import { classid } from '../../helper/kernel/netcls.js';

/** Share of rules that are destination-scoped. */
export const SCOPED_SHARE = 0.3;

/** mulberry32: a tiny deterministic PRNG, so every run benchmarks the same policy. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Rule i is scoped when it falls in the last 3 of every 10: exactly 30% at 10, 100, 1000, 5000. */
export const isScoped = (i: number): boolean => i % 10 >= 7;

function destinations(i: number, rnd: () => number): Destination[] {
  const count = 1 + Math.floor(rnd() * 3);
  const out: Destination[] = [];
  for (let j = 0; j < count; j++) {
    // Unique per (i, j): rule index in the middle octets, destination index in the second.
    const hi = j * 64 + (i >> 8);
    const lo = i & 0xff;
    const kind = rnd();
    const cidr = kind < 0.15
      ? `fd00:${(j + 1).toString(16)}:${i.toString(16)}::/48`
      : kind < 0.45 ? `10.${hi}.${lo}.${1 + Math.floor(rnd() * 250)}/32` : `10.${hi}.${lo}.0/24`;
    const shape = rnd();
    if (shape < 0.1) {
      out.push({ cidr });
      continue;
    }
    const ports = [...new Set(Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => 1 + Math.floor(rnd() * 65000)))].sort((a, b) => a - b);
    out.push(shape < 0.8 ? { cidr, proto: 'tcp', ports } : shape < 0.9 ? { cidr, proto: 'udp', ports } : { cidr, ports });
  }
  return out;
}

export interface SyntheticOptions {
  /** Total rules, including `extra`. */
  rules: number;
  interfaces: string[];
  /** Rules put first (e.g. the benchmark client's own); they count towards `rules`. */
  extra?: ProfileRule[];
  id?: string;
  version?: number;
  seed?: number;
}

export function syntheticProfile(o: SyntheticOptions): Profile {
  const rnd = prng(o.seed ?? 0x7467);
  const rules: ProfileRule[] = [...(o.extra ?? [])];
  for (let i = 0; rules.length < o.rules; i++) {
    const rule: ProfileRule = { id: `app-${i}`, binary: { path: `/opt/bench/app-${i}/bin/app-${i}` } };
    if (isScoped(i)) rule.destinations = destinations(i, rnd);
    rules.push(rule);
  }
  return {
    schema: PROFILE_SCHEMA,
    id: o.id ?? 'bench',
    version: o.version ?? 1,
    mode: 'enforce',
    interfaces: o.interfaces,
    userPrompts: 'deny',
    alwaysAllow: [{ cidr: '198.18.0.53/32', proto: 'udp', ports: [53] }],
    rules,
  };
}

export function syntheticPolicy(rules: number, interfaces = ['wg0']): Policy {
  return mergePolicy({
    profiles: [{ file: '/etc/tunnelgate/profiles.d/bench.json', profile: syntheticProfile({ rules, interfaces }) }],
    rejected: [],
    userRules: [],
    now: new Date(),
  });
}

/**
 * Classids as the gate would hand them out (major from the subtree name, minors 1..n).
 * nft does not check that a classid exists: `meta cgroup` matches a number.
 */
export function fabricatedClassids(policy: Policy, major = 0x7467): Map<string, number> {
  return new Map(processAllowRules(policy).map((r, i) => [r.key, classid(major, i + 1)]));
}
