// Is this process allowed to use the tunnel, and under which rule? Pure: the caller
// gathers the process identity from the kernel (helper/identity/gather.ts) and passes it in.
//
// Safety checks (issue 4), each refusing with its own reason:
// - a process being traced (ptrace) by anyone but the helper: its code can be changed;
// - LD_PRELOAD / LD_LIBRARY_PATH / LD_AUDIT in its initial environment, unless the rule
//   lists the name in allowEnv; for script rules also the interpreters' code-loading
//   variables (PYTHONPATH, NODE_OPTIONS, PERL5OPT, …: common/profile.ts INTERPRETER_ENV);
// - a path rule that does not pin sha256 needs an executable no non-root user could have
//   written or replaced, which is the same file on this system as in the process's own
//   mount namespace (exeUnsafe); a pinned rule checks the bytes instead;
// - a script rule needs a script its user (and any other non-root user) cannot change,
//   run without options that load other code (scriptUnsafe).
// Deny rules match whatever the checks say: refusing is always safe.
// A field left undefined was not examined (a pre-check on a path, before a process exists);
// the verdict that admits a process is always made on a full identity.
import type { EffectiveRule, Policy } from '../../common/policy.js';
import { INTERPRETER_ENV, LOADER_ENV } from '../../common/profile.js';
import type { BinaryMatcher, RefusedEnv } from '../../common/profile.js';
import { admitsAllOf, ruleInterfaces, sourceMode } from './scope.js';

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
  /** The process itself, when the identity is of a live process (allow-once rules name processes). */
  pid?: number;
  startTime?: string;
  /** Why the exe's path does not vouch for its bytes (writable by a non-root user, another file on this system). */
  exeUnsafe?: string;
  /** Why the script cannot be trusted (writable, replaceable, loaded with other code). */
  scriptUnsafe?: string;
  /** Refused environment variables the process was started with (non-empty ones). */
  env?: RefusedEnv[];
  /** Traced by a process other than the helper: the reason. */
  traced?: string;
  /** Packages (named by the policy) that own exe with the bytes they installed (helper/identity/package.ts). */
  packages?: string[];
  /** Verified app identities (helper/identity/apps.ts). */
  flatpak?: string;
  snap?: string;
  appimage?: string;
  /** Why an app identity a rule asks for was not established, for explain. */
  notes?: string[];
}

export type Verdict =
  | { allow: true; rule: EffectiveRule; reason: string }
  | { allow: false; rule?: EffectiveRule; reason: string };

export function pathMatches(pattern: string, exe: string): boolean {
  return pattern.endsWith('*') ? exe.startsWith(pattern.slice(0, -1)) : pattern === exe;
}

/** Does this matcher name the process? Hash pins and scripts must match too. */
export function binaryMatches(m: BinaryMatcher, id: ProcessIdentity): boolean {
  if (m.package !== undefined) return !id.exeDeleted && (id.packages?.includes(m.package) ?? false);
  if (m.flatpak !== undefined) return id.flatpak === m.flatpak && !id.exeDeleted;
  if (m.snap !== undefined) return id.snap === m.snap && !id.exeDeleted;
  if (m.appimage !== undefined) return id.appimage === m.appimage && !id.exeDeleted;
  if (m.path === undefined || id.exeDeleted || !pathMatches(m.path, id.exe)) return false;
  if (m.sha256 !== undefined && m.sha256 !== id.sha256) return false;
  if (m.script !== undefined && m.script !== id.script) return false;
  return true;
}

/** Rules that pin a hash for a path matching exe: the caller must hash before deciding. */
export function needsHash(policy: Policy, exe: string): boolean {
  return policy.rules.some((r) => r.binary?.sha256 !== undefined && r.binary.path !== undefined && pathMatches(r.binary.path, exe));
}

/** Rules a process running `exe` might match: cheap, from the path alone (the watcher's hot path). */
export function candidateRules(policy: Policy, exe: string): EffectiveRule[] {
  return policy.rules.filter((r) => {
    const b = r.binary;
    if (r.kernel || !b) return false;
    if (b.path !== undefined) return pathMatches(b.path, exe);
    if (b.snap !== undefined) return exe.startsWith(`/snap/${b.snap}/`);
    // Any file may belong to a package: gather looks it up in the package database first.
    if (b.package !== undefined) return true;
    if (b.appimage !== undefined) return exe.includes('/.mount_');
    // Inside a sandbox the exe is /app/… or the runtime's /usr/…
    if (b.flatpak !== undefined) return exe.startsWith('/app/') || exe.startsWith('/usr/');
    return false;
  });
}

/** Why this process may not use this (matching) allow rule, or undefined. */
export function refusal(r: EffectiveRule, id: ProcessIdentity): string | undefined {
  if (id.traced) return id.traced;
  const relaxed = new Set<string>(r.allowEnv ?? []);
  const script = r.binary?.script !== undefined;
  const considered: readonly string[] = script ? [...LOADER_ENV, ...INTERPRETER_ENV] : LOADER_ENV;
  const bad = (id.env ?? []).filter((n) => considered.includes(n) && !relaxed.has(n));
  if (bad.length) {
    return `it was started with ${bad.join(', ')} in its environment, which loads code ${describe(r)} does not name (a profile may list it in allowEnv)`;
  }
  if (script && id.scriptUnsafe) return `its script cannot be trusted: ${id.scriptUnsafe}`;
  if (r.binary?.path !== undefined && r.binary.sha256 === undefined && id.exeUnsafe) {
    return `${id.exeUnsafe}; only a rule that pins its sha256 can allow it`;
  }
  return undefined;
}

/**
 * A trial rule (`rules[].mode: "audit"` inside an enforcing profile) changes nothing: it is
 * reported, never enforced. In a profile that is in audit mode as a whole, rules act as
 * usual, and everything they do not admit on its interfaces passes and is recorded.
 */
export function isTrial(policy: Policy, r: EffectiveRule): boolean {
  return r.mode === 'audit' && sourceMode(policy, r) === 'enforce';
}

export function decide(policy: Policy, id: ProcessIdentity): Verdict {
  const all = policy.rules.filter(
    (r) => !r.kernel && r.binary && binaryMatches(r.binary, id) && (r.uid === undefined || r.uid === id.uid) && processMatches(r, id),
  );
  const trials = all.filter((r) => isTrial(policy, r));
  const v = decideEnforced(policy, id, all.filter((r) => !isTrial(policy, r)));
  if (!trials.length) return v;
  // Say what the trial rules would have done.
  const note = trials
    .map((t) => `trial ${describe(t)} would ${t.action === 'deny' && !t.destinations?.length ? 'deny' : t.action === 'deny' ? 'deny some destinations of' : 'allow'} it`)
    .join('; ');
  return { ...v, reason: `${v.reason} (${note})` };
}

function decideEnforced(policy: Policy, id: ProcessIdentity, matching: EffectiveRule[]): Verdict {
  const itDeny = matching.find((r) => r.source.kind === 'profile' && r.action === 'deny' && !r.destinations?.length);
  if (itDeny) return { allow: false, rule: itDeny, reason: `denied by ${describe(itDeny)}` };
  // IT rules before user rules; a rule for the whole tunnel before a scoped one.
  const rank = (r: EffectiveRule) => (r.source.kind === 'profile' ? 0 : 2) + (r.destinations?.length ? 1 : 0);
  const allows = matching.filter((r) => r.action === 'allow').sort((a, b) => rank(a) - rank(b));
  let refused: { rule: EffectiveRule; reason: string } | undefined;
  const admitting: EffectiveRule[] = [];
  for (const r of allows) {
    const why = refusal(r, id);
    if (why === undefined) admitting.push(r);
    else refused ??= { rule: r, reason: `${id.exe} matches ${describe(r)}, but ${why}` };
  }
  if (admitting.length) {
    const r = widest(admitting);
    return { allow: true, rule: r, reason: `allowed by ${describe(r)}` };
  }
  if (refused) return { allow: false, ...refused };
  if (id.exeDeleted) return { allow: false, reason: `${id.exe} was replaced or deleted after the process started it` };
  const pinned = policy.rules.find((r) => r.binary?.sha256 && r.binary.path && pathMatches(r.binary.path, id.exe));
  if (pinned) return { allow: false, rule: pinned, reason: `${id.exe} does not match the sha256 pinned by ${describe(pinned)}` };
  if (id.notes?.length) return { allow: false, reason: `no rule allows ${id.exe} (${id.notes.join('; ')})` };
  return { allow: false, reason: `no rule allows ${id.exe}` };
}

/**
 * The rule whose cgroup gives a process the most: the one the most of the rules admitting it
 * admit in full (their grants go with its classid, helper/policy/scope.ts grants); the first
 * in precedence order among equals. `admitting` is in precedence order, non-empty.
 */
function widest(admitting: readonly EffectiveRule[]): EffectiveRule {
  let best = admitting[0] as EffectiveRule;
  let most = 0;
  for (const c of admitting) {
    const n = admitting.filter((r) => admitsAllOf(r, c)).length;
    if (n > most) {
      best = c;
      most = n;
    }
  }
  return best;
}

/** One gated interface pattern and what opens it to a process admitted under a rule. */
export interface Reach {
  pattern: string;
  /** The rule whose grant opens it (its destinations apply), or none: closed there. */
  by?: EffectiveRule;
}

/**
 * Where a process admitted under `rule` may send: for each gated pattern of the policy, the
 * enforced allow rule (of those that admit every process `rule` admits) that opens it, a
 * whole-tunnel rule before a scoped one, the rule itself first among equals. What the ruleset grants
 * the rule's classid (helper/ruleset/render.ts).
 */
export function reach(policy: Policy, rule: EffectiveRule): Reach[] {
  const order = (r: EffectiveRule) => (r.destinations?.length ? 2 : 0) + (r === rule ? 0 : 1);
  const wider = policy.rules
    .filter((r) => r === rule || (!isTrial(policy, r) && admitsAllOf(r, rule)))
    .sort((a, b) => order(a) - order(b));
  return policy.interfaces.map((pattern) => {
    const by = wider.find((r) => ruleInterfaces(policy, r).includes(pattern));
    return by ? { pattern, by } : { pattern };
  });
}

export function describe(r: EffectiveRule): string {
  return r.source.kind === 'profile' ? `rule ${r.id} of profile ${r.source.profileId}` : `user rule ${r.id} (uid ${r.source.uid})`;
}

/** Package names the policy's rules refer to. */
export function packagesNamed(policy: Policy): string[] {
  return [...new Set(policy.rules.flatMap((r) => (r.binary?.package !== undefined ? [r.binary.package] : [])))];
}

/** An allow-once rule admits only the processes it names; other rules any process. */
export function processMatches(r: EffectiveRule, id: ProcessIdentity): boolean {
  return !r.processes || r.processes.some((p) => p.pid === id.pid && p.startTime === id.startTime);
}
