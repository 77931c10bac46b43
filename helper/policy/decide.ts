// Is this process allowed to use the tunnel, and under which rule? Pure: the caller
// gathers the process identity from the kernel (/proc) and passes it in.
import type { EffectiveRule, Policy } from '../../common/policy.js';
import type { BinaryMatcher } from '../../common/profile.js';

export interface ProcessIdentity {
  /** /proc/PID/exe as the kernel resolved it, without a ` (deleted)` suffix. */
  exe: string;
  /** The executable was replaced or removed after the process started it. */
  exeDeleted: boolean;
  /** sha256 of the executable's bytes, when it was computed. */
  sha256?: string;
  /** Resolved script path, when exe is an interpreter started with a script. */
  script?: string;
  uid: number;
}

export type Verdict =
  | { allow: true; rule: EffectiveRule; reason: string }
  | { allow: false; rule?: EffectiveRule; reason: string };

export function pathMatches(pattern: string, exe: string): boolean {
  return pattern.endsWith('*') ? exe.startsWith(pattern.slice(0, -1)) : pattern === exe;
}

/** Does this matcher name the process? Hash pins and scripts must match too. */
export function binaryMatches(m: BinaryMatcher, id: ProcessIdentity): boolean {
  if (m.package !== undefined) return false; // package rules: not enforced yet (see merge problems)
  if (m.path === undefined || id.exeDeleted || !pathMatches(m.path, id.exe)) return false;
  if (m.sha256 !== undefined && m.sha256 !== id.sha256) return false;
  if (m.script !== undefined && m.script !== id.script) return false;
  return true;
}

/** Rules that pin a hash for a path matching exe: the caller must hash before deciding. */
export function needsHash(policy: Policy, exe: string): boolean {
  return policy.rules.some((r) => r.binary?.sha256 !== undefined && r.binary.path !== undefined && pathMatches(r.binary.path, exe));
}

export function decide(policy: Policy, id: ProcessIdentity): Verdict {
  const matching = policy.rules.filter(
    (r) => !r.kernel && r.binary && binaryMatches(r.binary, id) && (r.uid === undefined || r.uid === id.uid),
  );
  const itDeny = matching.find((r) => r.source.kind === 'profile' && r.action === 'deny' && !r.destinations?.length);
  if (itDeny) return { allow: false, rule: itDeny, reason: `denied by ${describe(itDeny)}` };
  const allows = matching.filter((r) => r.action === 'allow');
  // IT rules before user rules; a rule for the whole tunnel before a scoped one.
  const rank = (r: EffectiveRule) => (r.source.kind === 'profile' ? 0 : 2) + (r.destinations?.length ? 1 : 0);
  const best = [...allows].sort((a, b) => rank(a) - rank(b))[0];
  if (best) return { allow: true, rule: best, reason: `allowed by ${describe(best)}` };
  if (id.exeDeleted) return { allow: false, reason: `${id.exe} was replaced or deleted after the process started it` };
  const pinned = policy.rules.find((r) => r.binary?.sha256 && r.binary.path && pathMatches(r.binary.path, id.exe));
  if (pinned) return { allow: false, rule: pinned, reason: `${id.exe} does not match the sha256 pinned by ${describe(pinned)}` };
  return { allow: false, reason: `no rule allows ${id.exe}` };
}

export function describe(r: EffectiveRule): string {
  return r.source.kind === 'profile' ? `rule ${r.id} of profile ${r.source.profileId}` : `user rule ${r.id} (uid ${r.source.uid})`;
}
