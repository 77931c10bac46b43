// Where a rule applies (issue 9: "a rule opens only the interfaces its own source names").
// Pure.
//
// Every profile in force is a scope: its allow rules, kernel rules, alwaysAllow and audit
// mode apply on its own `interfaces` only (name patterns; the gate adds the indexes of
// interfaces once gated under them, helper/ruleset/interfaces.ts). IT deny rules apply on
// every gated interface: a deny only takes away, so it can never open a tunnel, and an IT
// deny names a program, not a tunnel. An interface several profiles gate is in audit only
// when every profile gating it is; an interface no profile in force names (the default
// `wg0` with no profile, or one kept gated while a source fails to load) is enforcing and
// opened by nothing.
//
// A process is in one rule's cgroup (one classid). When one program is allowed by rules of
// several profiles, the classid of the rule it is admitted under carries the grants of every
// rule that admits every process that rule admits (admitsAllOf: conservative, false when
// unsure), each on its own interfaces with its own destinations; decide() picks the rule
// whose classid carries the most of the rules admitting the process.
import type { EffectiveRule, Policy, PolicyScope } from '../../common/policy.js';
import type { Destination, Mode } from '../../common/profile.js';

/** nft's matching of an interface pattern: exact, or a prefix when it ends in `*`. */
export function interfaceMatches(name: string, pattern: string): boolean {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}

/** The patterns a rule opens: its own, or (a policy built before scoping) every gated one. */
export function ruleInterfaces(policy: Policy, r: EffectiveRule): readonly string[] {
  return r.interfaces ?? policy.interfaces;
}

/** Does rule `r` apply on the interface named `iface`? */
export function appliesOn(policy: Policy, r: EffectiveRule, iface: string): boolean {
  return ruleInterfaces(policy, r).some((p) => interfaceMatches(iface, p));
}

/** The scope of the profile a rule comes from, if the policy has scopes and it is a profile rule. */
export function scopeOf(policy: Policy, r: EffectiveRule): PolicyScope | undefined {
  const s = r.source;
  return s.kind === 'profile' ? policy.scopes?.find((x) => x.profileId === s.profileId) : undefined;
}

/** The mode of a rule's own profile (a user rule: enforce; no scopes: the policy's). */
export function sourceMode(policy: Policy, r: EffectiveRule): Mode {
  if (!policy.scopes) return policy.mode;
  return scopeOf(policy, r)?.mode ?? 'enforce';
}

/**
 * Patterns whose refused packets pass and are recorded (audit): the patterns of the profiles
 * in audit mode that no enforcing profile also names. Every other gated pattern drops.
 * Without scopes: all of them when the policy is in audit mode.
 */
export function auditPatterns(policy: Policy): string[] {
  if (!policy.scopes) return policy.mode === 'audit' ? [...policy.interfaces] : [];
  const enforcing = new Set(policy.scopes.filter((s) => s.mode === 'enforce').flatMap((s) => s.interfaces));
  return [...new Set(policy.scopes.filter((s) => s.mode === 'audit').flatMap((s) => s.interfaces))].filter((p) => !enforcing.has(p)).sort();
}

/**
 * Is the interface named `iface` in audit mode: every profile that gates it is in audit
 * mode, and no enforcing profile, kept or default pattern names it?
 */
export function auditOn(policy: Policy, iface: string): boolean {
  if (!policy.scopes) return policy.mode === 'audit';
  const audit = auditPatterns(policy);
  const others = policy.interfaces.filter((p) => !audit.includes(p));
  return audit.some((p) => interfaceMatches(iface, p)) && !others.some((p) => interfaceMatches(iface, p));
}

/** alwaysAllow destinations open on the interface named `iface`. */
export function alwaysAllowOn(policy: Policy, iface: string): Destination[] {
  if (!policy.scopes) return policy.alwaysAllow;
  return policy.scopes.filter((s) => s.interfaces.some((p) => interfaceMatches(iface, p))).flatMap((s) => s.alwaysAllow);
}

/**
 * May user rules open the interface named `iface`: a profile that gates it lets users
 * decide, and none that gates it locks? Without scopes: wherever the policy lets users decide.
 */
export function userRulesOn(policy: Policy, iface: string): boolean {
  if (!policy.scopes) return policy.userPrompts === 'allow';
  const on = policy.scopes.filter((s) => s.interfaces.some((p) => interfaceMatches(iface, p)));
  return on.some((s) => s.userPrompts === 'allow') && !on.some((s) => s.userPrompts !== 'allow');
}

const pathOf = (r: EffectiveRule) => r.binary?.path;

/** Does a path pattern (or path) name every path the other one names? Pure. */
export function pathCovers(wide: string, narrow: string): boolean {
  if (!wide.endsWith('*')) return wide === narrow;
  const prefix = wide.slice(0, -1);
  return narrow.startsWith(prefix);
}

/**
 * Does allow rule `wide` admit every process allow rule `narrow` admits (helper/policy/
 * decide.ts binaryMatches and refusal)? Conservative: false whenever that is not certain.
 * Destinations and interfaces are not compared: they are what each grants.
 */
export function admitsAllOf(wide: EffectiveRule, narrow: EffectiveRule): boolean {
  if (wide === narrow) return true;
  if (wide.action !== 'allow' || narrow.action !== 'allow' || wide.kernel || narrow.kernel) return false;
  const w = wide.binary;
  const n = narrow.binary;
  if (!w || !n) return false;
  if (wide.uid !== undefined && wide.uid !== narrow.uid) return false;
  if (wide.processes && !(narrow.processes ?? [undefined]).every((p) => p && wide.processes?.some((q) => q.pid === p.pid && q.startTime === p.startTime))) return false;
  // A child inheriting narrow's cgroup must be one wide would let inherit too.
  if (wide.children === 'confine' && narrow.children !== 'confine') return false;
  const env = new Set<string>(wide.allowEnv ?? []);
  if (!(narrow.allowEnv ?? []).every((e) => env.has(e))) return false;
  if (w.script !== undefined && w.script !== n.script) return false;
  if (w.sha256 !== undefined && w.sha256 !== n.sha256) return false;
  // Without a pin, wide refuses an executable a user could replace; a pinned narrow admits it.
  if (w.sha256 === undefined && n.sha256 !== undefined && w.path !== undefined) return false;
  for (const k of ['package', 'flatpak', 'snap', 'appimage'] as const) {
    if (w[k] !== undefined || n[k] !== undefined) return w[k] === n[k] && w.path === undefined && n.path === undefined;
  }
  if (w.path === undefined || n.path === undefined) return false;
  return n.path.endsWith('*') ? w.path.endsWith('*') && pathCovers(w.path, n.path.slice(0, -1)) : pathCovers(w.path, n.path);
}

/** Index of allow rules by what they name, so admitsAllOf is asked only where it may hold. */
export interface RuleIndex {
  /** Rules that may admit every process of `narrow` (narrow included). */
  widerThan(narrow: EffectiveRule): EffectiveRule[];
}

/** Build a RuleIndex over `rules` (allow rules of processes). O(n) to build. */
export function ruleIndex(rules: readonly EffectiveRule[]): RuleIndex {
  const exact = new Map<string, EffectiveRule[]>();
  const patterns: EffectiveRule[] = [];
  const other = new Map<string, EffectiveRule[]>();
  const add = (m: Map<string, EffectiveRule[]>, k: string, r: EffectiveRule) => {
    const l = m.get(k);
    if (l) l.push(r);
    else m.set(k, [r]);
  };
  const otherKey = (r: EffectiveRule) => JSON.stringify([r.binary?.package, r.binary?.flatpak, r.binary?.snap, r.binary?.appimage]);
  for (const r of rules) {
    const p = pathOf(r);
    if (p === undefined) add(other, otherKey(r), r);
    else if (p.endsWith('*')) patterns.push(r);
    else add(exact, p, r);
  }
  return {
    widerThan(narrow) {
      const p = pathOf(narrow);
      const candidates = p === undefined ? other.get(otherKey(narrow)) ?? [] : [...(p.endsWith('*') ? [] : exact.get(p) ?? []), ...patterns];
      return candidates.filter((w) => admitsAllOf(w, narrow));
    },
  };
}

/** One grant: processes in `owner`'s cgroup may use `interfaces` (to `destinations`, if scoped) by `by`. */
export interface Grant {
  owner: EffectiveRule;
  by: EffectiveRule;
  interfaces: readonly string[];
  /** Absent or empty: the whole tunnel. */
  destinations?: Destination[];
}

/**
 * What the classid of each rule in `allowRules` (enforced process allow rules) opens: one
 * grant per rule that admits all its processes (itself first), each on that rule's
 * interfaces with that rule's destinations.
 */
export function grants(policy: Policy, allowRules: readonly EffectiveRule[]): Grant[] {
  const index = ruleIndex(allowRules);
  const out: Grant[] = [];
  for (const owner of allowRules) {
    const wider = index.widerThan(owner).filter((w) => w !== owner);
    for (const by of [owner, ...wider]) {
      out.push({ owner, by, interfaces: ruleInterfaces(policy, by), ...(by.destinations?.length ? { destinations: by.destinations } : {}) });
    }
  }
  return out;
}

/** Could some interface name match both patterns? */
export function patternsOverlap(a: string, b: string): boolean {
  const pa = a.endsWith('*') ? a.slice(0, -1) : undefined;
  const pb = b.endsWith('*') ? b.slice(0, -1) : undefined;
  if (pa === undefined && pb === undefined) return a === b;
  if (pa !== undefined && pb !== undefined) return pa.startsWith(pb) || pb.startsWith(pa);
  return pa !== undefined ? b.startsWith(pa) : a.startsWith(pb as string);
}

/**
 * The interfaces a user rule for `path` may open: the patterns of the profiles in force that
 * let users decide (userPrompts allow), except any pattern that could name an interface of
 * a profile that locks (userPrompts deny) or has a rule of its own for that path (an IT rule
 * decides its program there: IT allow > user decisions, per interface). `recorded`, when a
 * saved decision carries interfaces, narrows it further (never widens it).
 */
export function userRuleInterfaces(scopes: readonly PolicyScope[], rulesOf: (profileId: string) => readonly EffectiveRule[], path: string, recorded?: readonly string[]): string[] {
  const closed = scopes
    .filter((s) => s.userPrompts !== 'allow' || rulesOf(s.profileId).some((r) => !r.kernel && r.binary?.path !== undefined && pathCovers(r.binary.path, path)))
    .flatMap((s) => s.interfaces);
  const out = new Set<string>();
  for (const s of scopes) {
    if (s.userPrompts !== 'allow') continue;
    for (const p of s.interfaces) {
      if (recorded && !recorded.includes(p)) continue;
      if (!closed.some((c) => patternsOverlap(c, p))) out.add(p);
    }
  }
  return [...out].sort();
}
