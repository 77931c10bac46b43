// Which interfaces are gated, by index as well as by name (issue 9.2). Pure.
//
// The table gates every interface whose name matches a pattern of the policy at the moment
// a packet passes (oifname/iifname), and every index in the set `gated_if`. An index enters
// the set the first time an interface with that index carries a gated name, and stays while
// the policy names that pattern, whatever the interface is called later, whether it is
// present or not: a rename, or a trip to another namespace and back (the kernel keeps the
// index when it is free there), leaves it gated. An index is given up only when a valid
// policy stops naming the pattern it was gated under. The cost of keeping an absent index
// is at most gating a new, unrelated interface that is given the same index (the kernel
// counts indexes up per namespace and reuses one only after wrapping or when asked for it
// explicitly, `ip link add … index N`): closed, never open.
import type { Link } from '../kernel/links.js';
import { interfaceMatches } from '../policy/scope.js';

/** An index that is gated, the pattern that gated it and the name it had then. */
export interface GatedIndex {
  index: number;
  pattern: string;
  name: string;
}

/**
 * The gated indexes after seeing `links` under `patterns`: the previous ones whose pattern
 * is still named, plus every present link whose name matches a pattern. Sorted by index.
 * Persist the result (state dir) so a restarted helper keeps an interface renamed while it
 * was down gated as well.
 */
export function nextGatedIndexes(previous: readonly GatedIndex[], links: readonly Link[], patterns: readonly string[]): GatedIndex[] {
  const named = new Set(patterns);
  const out = new Map<number, GatedIndex>();
  for (const g of previous) if (named.has(g.pattern)) out.set(g.index, g);
  for (const l of links) {
    if (out.has(l.index)) continue;
    const pattern = patterns.find((p) => interfaceMatches(l.name, p));
    if (pattern !== undefined) out.set(l.index, { index: l.index, pattern, name: l.name });
  }
  return [...out.values()].sort((a, b) => a.index - b.index);
}

/**
 * What `status` must say about the gated interfaces. `degraded` when an interface a
 * non-wildcard pattern names is absent, or a gated interface now carries a name no pattern
 * matches (it is still gated, by its index, but the policy no longer describes it).
 * Wildcard patterns with nothing present are not a fault (a tunnel that is not up).
 */
export function interfaceProblems(patterns: readonly string[], links: readonly Link[], gated: readonly GatedIndex[]): { degraded: boolean; problems: string[] } {
  const problems: string[] = [];
  for (const p of patterns) {
    if (p.endsWith('*') || links.some((l) => l.name === p)) continue;
    const renamed = gated.filter((g) => g.name === p && g.pattern === p).map((g) => links.find((l) => l.index === g.index)).find((l) => l !== undefined);
    problems.push(renamed
      ? `interface ${p} is now named ${renamed.name}; it is still gated by its index ${renamed.index}`
      : `no interface named ${p} exists now (it is gated as soon as it appears)`);
  }
  for (const g of gated) {
    const l = links.find((x) => x.index === g.index);
    if (!l || patterns.some((p) => interfaceMatches(l.name, p))) continue;
    const line = `interface ${g.name} is now named ${l.name}; it is still gated by its index ${l.index}`;
    if (!problems.includes(line)) problems.push(line);
  }
  return { degraded: problems.length > 0, problems };
}
