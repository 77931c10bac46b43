// Profiles (already validated) and user decisions -> the effective policy. Pure.
//
// Precedence is IT deny > IT allow > user decisions. Several profiles are one gate, each
// in its own scope (helper/policy/scope.ts): the gate covers every interface any of them
// names; each profile's allow rules, kernel rules, alwaysAllow and audit mode apply on its
// own interfaces only; IT deny rules apply everywhere. A user rule opens the interfaces of
// the profiles that let users decide and have no rule of their own for its program.
import type { EffectiveRule, Policy, PolicyScope, SourceStatus } from '../../common/policy.js';
import { DEFAULT_INTERFACES } from '../../common/policy.js';
import type { Destination } from '../../common/profile.js';
import type { LoadedProfile } from '../profile/loaded.js';
import { userRuleInterfaces } from './scope.js';

export interface UserRule {
  id: string;
  uid: number;
  binary: { path: string; sha256?: string };
  destinations?: Destination[];
  expires?: string;
  /** Allow once: only these processes, not other processes of the same binary. */
  processes?: Array<{ pid: number; startTime: string }>;
  /**
   * Interface patterns the decision was made for, when saved with one: it then opens at
   * most these. Absent (every decision saved so far): the interfaces of the profiles that
   * let users decide for its program (scope.ts userRuleInterfaces), never more.
   */
  interfaces?: string[];
}

export interface MergeInput {
  profiles: readonly LoadedProfile[];
  /** Sources that did not load (malformed, bad signature, …), reported as they are. */
  rejected: readonly SourceStatus[];
  userRules: readonly UserRule[];
  now: Date;
  /**
   * The interfaces gated so far (remembered in the state dir across restarts). While any
   * source is not in force (rejected, expired) or no profile is, they all stay gated: only a
   * policy whose every source is valid and in force may release an interface.
   */
  gated?: readonly string[];
}

/**
 * The interfaces to gate: those of the profiles in force (or the default), plus, while the
 * policy is degraded, every interface gated before (a policy that fails to load never
 * releases one). Expired profiles keep theirs gated too (their rules are gone, not the gate).
 */
export function gatedInterfaces(active: readonly LoadedProfile[], expired: readonly LoadedProfile[], degraded: boolean, gated: readonly string[] = []): string[] {
  const named = active.length ? active.flatMap((p) => p.profile.interfaces) : [...DEFAULT_INTERFACES];
  const kept = degraded ? gated : [];
  return [...new Set([...named, ...expired.flatMap((p) => p.profile.interfaces), ...kept])].sort();
}

export function mergePolicy(input: MergeInput): Policy {
  const problems: string[] = [];
  const sources: SourceStatus[] = [...input.rejected];
  for (const s of input.rejected) problems.push(`${s.file}: rejected: ${s.problems.join('; ')}`);

  const active: LoadedProfile[] = [];
  const expired: LoadedProfile[] = [];
  const seenIds = new Map<string, string>();
  for (const lp of [...input.profiles].sort((a, b) => a.file.localeCompare(b.file))) {
    const { profile, file } = lp;
    const base = { file, profileId: profile.id, version: profile.version };
    if (profile.expires && Date.parse(profile.expires) <= input.now.getTime()) {
      const msg = `profile ${profile.id} expired at ${profile.expires}; its rules are no longer in force`;
      sources.push({ ...base, state: 'expired', problems: [msg] });
      problems.push(`${file}: ${msg}`);
      expired.push(lp);
      continue;
    }
    const other = seenIds.get(profile.id);
    if (other) {
      const msg = `profile id ${profile.id} is also defined in ${other}; this copy is ignored`;
      sources.push({ ...base, state: 'rejected', problems: [msg] });
      problems.push(`${file}: ${msg}`);
      continue;
    }
    seenIds.set(profile.id, file);
    sources.push({ ...base, state: 'active', problems: [] });
    active.push(lp);
  }

  const rules: EffectiveRule[] = [];
  for (const { file, profile } of active) {
    for (const r of profile.rules) {
      rules.push({
        key: `${profile.id}:${r.id}`,
        id: r.id,
        source: { kind: 'profile', profileId: profile.id, version: profile.version, file },
        action: r.action ?? 'allow',
        ...(r.binary ? { binary: { ...r.binary } } : {}),
        kernel: r.kernel === true,
        ...(r.destinations ? { destinations: r.destinations.map((d) => ({ ...d })) } : {}),
        mode: r.mode ?? profile.mode,
        locked: true,
        ...(profile.expires ? { expires: profile.expires } : {}),
        ...(r.children ? { children: r.children } : {}),
        ...(r.allowEnv ? { allowEnv: [...r.allowEnv] } : {}),
        interfaces: [...profile.interfaces],
      });
    }
  }

  const scopes: PolicyScope[] = active.map(({ profile: p }) => ({
    profileId: p.id,
    interfaces: [...p.interfaces],
    mode: p.mode,
    userPrompts: p.userPrompts,
    alwaysAllow: dedupeDestinations(p.alwaysAllow ?? []),
  }));
  // Only the profiles that set the lock: one that merely allows prompts is not the reason.
  const lockedBy = active.filter((p) => p.profile.userPrompts === 'deny').map((p) => p.profile.id);
  const locked = addUserRules(rules, scopes, input, problems, active.length > 0, lockedBy);
  const modes = active.map((p) => p.profile.mode);
  const degraded = !active.length || sources.some((s) => s.state !== 'active');
  const interfaces = gatedInterfaces(active, expired, degraded, input.gated);
  problems.push(...gateProblems(active, sources, interfaces, rules.length));
  return {
    mode: modes.length && modes.every((m) => m === 'audit') ? 'audit' : 'enforce',
    interfaces,
    alwaysAllow: dedupeDestinations(active.flatMap((p) => p.profile.alwaysAllow ?? [])),
    userPrompts: locked ? 'deny' : 'allow',
    ...(lockedBy.length ? { lockedBy } : {}),
    rules,
    scopes,
    sources,
    problems,
  };
}

/**
 * Put the user rules in force into `rules`, each with the interfaces it may open
 * (scope.ts userRuleInterfaces); say in `problems` which are not, and why. Returns whether
 * users may decide nowhere (the policy's userPrompts is then deny).
 */
function addUserRules(rules: EffectiveRule[], scopes: readonly PolicyScope[], input: MergeInput, problems: string[], anyActive: boolean, lockedBy: readonly string[]): boolean {
  const byProfile = new Map<string, EffectiveRule[]>();
  for (const r of rules) if (r.source.kind === 'profile') byProfile.set(r.source.profileId, [...(byProfile.get(r.source.profileId) ?? []), r]);
  const rulesOf = (id: string) => byProfile.get(id) ?? [];
  // Users decide only where a profile in force lets them and no profile locks: with no
  // profile in force, nowhere.
  const locked = !userRuleInterfaces(scopes, () => [], '').length;
  let outOfScope = 0;
  for (const u of input.userRules) {
    if (u.expires && Date.parse(u.expires) <= input.now.getTime()) continue;
    if (locked) continue;
    const interfaces = userRuleInterfaces(scopes, rulesOf, u.binary.path, u.interfaces);
    if (!interfaces.length) {
      outOfScope++;
      continue;
    }
    rules.push({
      key: `user.${u.uid}:${u.id}`,
      id: u.id,
      source: { kind: 'user', uid: u.uid },
      action: 'allow',
      binary: { ...u.binary },
      kernel: false,
      ...(u.destinations ? { destinations: u.destinations.map((d) => ({ ...d })) } : {}),
      mode: 'enforce',
      locked: false,
      uid: u.uid,
      ...(u.expires ? { expires: u.expires } : {}),
      ...(u.processes ? { processes: u.processes.map((p) => ({ ...p })) } : {}),
      interfaces,
    });
  }
  if (locked && input.userRules.length) {
    problems.push(anyActive
      ? lockedBy.length
        ? `${input.userRules.length} user rule(s) not in force: profile ${lockedBy.join(', ')} locks this machine (userPrompts: deny)`
        : `${input.userRules.length} user rule(s) not in force: a profile locks this machine (userPrompts: deny) wherever another lets users decide`
      : `${input.userRules.length} user rule(s) not in force: no profile in force lets users decide`);
  }
  if (outOfScope) {
    problems.push(`${outOfScope} user rule(s) not in force: no profile that lets users decide gates an interface for their program without a rule of its own for it`);
  }
  return locked;
}

/** What status must say about the gate when no profile (or not every one) is in force. */
function gateProblems(active: readonly LoadedProfile[], sources: readonly SourceStatus[], interfaces: readonly string[], rules: number): string[] {
  if (active.length) return [];
  const failed = sources.filter((s) => s.state !== 'active');
  if (!failed.length) return ['no profile in force: the tunnel is closed to every program'];
  const why = failed.map((s) => `${s.profileId ? `profile ${s.profileId}` : s.file} ${s.state}: ${s.problems.join('; ')}`).join('; ');
  const allowed = rules ? `only user rules allow programs` : 'no program is allowed';
  return [`degraded: ${why}; ${interfaces.join(', ')} ${interfaces.length > 1 ? 'stay' : 'stays'} gated with no profile rules (${allowed})`];
}

function dedupeDestinations(ds: Destination[]): Destination[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const k = JSON.stringify([d.cidr, d.proto ?? null, d.ports ?? null]);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
