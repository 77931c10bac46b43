// `tunnelgate explain`: the verdict for a process or a binary, optionally for one
// destination, and the rule, lock or reason behind it. Pure: decide() gives the rule a
// process falls under; this adds what the table does per destination (alwaysAllow, IT
// scoped denies, the rule's own scope) and whether the user would be asked.
import type { ExplainDst, ExplainResult } from '../../common/api.js';
import type { EffectiveRule, Policy } from '../../common/policy.js';
import type { Destination } from '../../common/profile.js';
import { binaryMatches, decide, describe, isTrial, reach } from './decide.js';
import type { ProcessIdentity, Verdict } from './decide.js';
import { covers, formatRuleDestination } from './destinations.js';
import { auditPatterns } from './scope.js';

export interface ExplainInput {
  policy: Policy;
  id: ProcessIdentity;
  pid?: number;
  dst?: ExplainDst;
  /** The verdict the gate computed for a live process (it may know more than the identity). */
  verdict?: Verdict;
  /** A deny-always of this user that covers the binary (and destination). */
  userDeny?: { id: string };
  /** The rule whose cgroup the process is in now. */
  admittedUnder?: string;
  notes?: string[];
}

const dstText = (d: ExplainDst) => `${d.addr.includes(':') ? `[${d.addr}]` : d.addr}${d.port !== undefined ? `:${d.port}` : ''}${d.proto ? `/${d.proto}` : ''}`;

function ruleView(r: EffectiveRule): NonNullable<ExplainResult['rule']> {
  return { key: r.key, source: r.source, locked: r.locked, ...(r.destinations ? { destinations: r.destinations } : {}), description: describe(r) };
}

export function explain(input: ExplainInput): ExplainResult {
  const { policy, id, dst } = input;
  let v = input.verdict ?? decide(policy, id);
  // decide() names the rule whose hash pin failed even when it is another user's: that rule
  // is none of this user's business, and it could not have allowed them anyway.
  if (!v.allow && v.rule?.uid !== undefined && v.rule.uid !== id.uid) v = { allow: false, reason: `no rule allows ${id.exe}` };
  const notes = [...(input.notes ?? [])];
  let allow = v.allow;
  let reason = v.reason;
  let rule = v.rule;
  let itDecides = !v.allow && v.rule?.source.kind === 'profile' && v.rule.action === 'deny';

  if (dst) {
    const always = alwaysFor(policy, dst);
    if (always) {
      allow = true;
      rule = undefined;
      reason = `${dstText(dst)} is open to every program${always.where} (alwaysAllow ${formatRuleDestination(always.d)} of ${always.of})`;
      itDecides = true;
    } else if (v.allow) {
      const scopedDeny = policy.rules.find(
        (r) => r.source.kind === 'profile' && r.action === 'deny' && !r.kernel && r.destinations?.some((d) => covers(d, dst)) && r.binary && binaryMatches(r.binary, id),
      );
      if (scopedDeny) {
        allow = false;
        rule = scopedDeny;
        reason = `denied for ${dstText(dst)} by ${describe(scopedDeny)}`;
        itDecides = true;
      } else if (v.rule.destinations?.length && !v.rule.destinations.some((d) => covers(d, dst))) {
        allow = false;
        reason = `${describe(v.rule)} allows only ${v.rule.destinations.map(formatRuleDestination).join(', ')}, not ${dstText(dst)}`;
      } else {
        reason = `${v.reason}${v.rule.destinations?.length ? `, whose scope includes ${dstText(dst)}` : ''}`;
      }
    }
  }

  if (allow && rule) {
    const where = interfacesOf(policy, rule);
    if (where) {
      reason = `${reason} (${where.reason})`;
      notes.push(where.note);
    }
  }
  const locked = policy.userPrompts === 'deny';
  if (input.pid !== undefined && allow && rule && input.admittedUnder !== rule.key) {
    notes.push(
      input.admittedUnder
        ? `process ${input.pid} is admitted under ${input.admittedUnder} now, not under ${rule.key}`
        : `process ${input.pid} is not admitted yet: it is when it is started with tunnelgate run, or when the helper next sees it try the tunnel`,
    );
  }
  if (input.pid !== undefined && !v.allow && input.admittedUnder !== undefined) {
    // Not allowed on its own, yet in a rule's cgroup: a child that inherited its parent's rule.
    const inherited = policy.rules.find((r) => r.key === input.admittedUnder);
    notes.push(
      inherited && inherited.children !== 'confine'
        ? `process ${input.pid} has the tunnel anyway: it inherited ${describe(inherited)} from its parent (the rule lets children inherit)`
        : `process ${input.pid} is still in ${input.admittedUnder}; the helper takes it out when it next looks`,
    );
  }
  notes.push(...modeNotes(policy));
  if (locked) notes.push('a profile sets userPrompts to "deny": only IT profiles decide on this machine');

  return {
    verdict: allow ? 'allow' : 'deny',
    enforced: allow || policy.mode === 'enforce',
    reason,
    subject: { ...(input.pid !== undefined ? { pid: input.pid } : {}), exe: id.exe, uid: id.uid, ...(id.sha256 ? { sha256: id.sha256 } : {}) },
    ...(rule ? { rule: ruleView(rule) } : {}),
    locked,
    prompt: allow || itDecides ? 'not-applicable' : locked ? 'locked' : input.userDeny ? 'decided' : 'would-ask',
    ...(input.admittedUnder ? { admittedUnder: input.admittedUnder } : {}),
    notes,
  };
}

/** An alwaysAllow destination covering `dst`, and where it is open (helper/policy/scope.ts). */
function alwaysFor(policy: Policy, dst: ExplainDst): { d: Destination; where: string; of: string } | undefined {
  if (!policy.scopes) {
    const d = policy.alwaysAllow.find((x) => covers(x, dst));
    return d && { d, where: '', of: 'the profiles in force' };
  }
  const s = policy.scopes.find((x) => x.alwaysAllow.some((d) => covers(d, dst)));
  const d = s?.alwaysAllow.find((x) => covers(x, dst));
  if (!s || !d) return undefined;
  const everywhere = policy.interfaces.every((p) => s.interfaces.includes(p));
  return { d, where: everywhere ? '' : ` on ${s.interfaces.join(', ')}`, of: `profile ${s.profileId}` };
}

/**
 * On which gated interfaces a process admitted under `rule` may send, when not on all of
 * them: words for the reason and a note (helper/policy/decide.ts reach).
 */
export function interfacesOf(policy: Policy, rule: EffectiveRule): { reason: string; note: string } | undefined {
  const r = reach(policy, rule);
  const open = r.filter((x) => x.by);
  const closed = r.filter((x) => !x.by).map((x) => x.pattern);
  if (!closed.length) return undefined;
  const by = open.map((x) => `${x.pattern} by ${describe(x.by as EffectiveRule)}${x.by?.destinations?.length ? ` (only ${x.by.destinations.map(formatRuleDestination).join(', ')})` : ''}`);
  return {
    reason: open.length ? `on ${open.map((x) => x.pattern).join(', ')} only` : 'on no gated interface',
    note: `admitted on ${by.join('; ') || 'no interface'}; not on ${closed.join(', ')}: a rule opens only the interfaces of its own profile`,
  };
}

/** Audit mode, of the whole gate or of some interfaces. */
function modeNotes(policy: Policy): string[] {
  if (policy.mode === 'audit') return ['the gate is in audit mode: what it denies is recorded and let through'];
  const audit = auditPatterns(policy);
  return audit.length ? [`${audit.join(', ')} ${audit.length > 1 ? 'are' : 'is'} in audit mode (a profile gating only ${audit.length > 1 ? 'them' : 'it'} says so): what it denies there is recorded and let through`] : [];
}

/** What a rule's matcher names, in words: `/usr/bin/ssh with sha256 ab12…`, `any program of package openssh-client`, `kernel traffic`. */
export function describeMatcher(r: EffectiveRule): string {
  if (r.kernel) return 'traffic of the kernel itself (no process: WireGuard keepalives, NFS, …)';
  const b = r.binary;
  if (!b) return 'nothing (a rule without a matcher)';
  if (b.package !== undefined) return `any executable that package ${b.package} installed, with the bytes it installed`;
  if (b.flatpak !== undefined) return `Flatpak app ${b.flatpak} (system installation), any program in its sandbox`;
  if (b.snap !== undefined) return `snap ${b.snap}, programs under /snap/${b.snap}/`;
  if (b.appimage !== undefined) return `the AppImage ${b.appimage}, while its user runs it`;
  const path = b.path === undefined ? '?' : b.path.endsWith('*') ? `programs under ${b.path.slice(0, -1)}` : b.path;
  const script = b.script !== undefined ? ` running the script ${b.script}` : '';
  const pin = b.sha256 !== undefined ? ` with sha256 ${b.sha256.slice(0, 12)}… (another build does not match)` : '';
  return `${path}${script}${pin}`;
}

/**
 * `explain {rule}`: one rule of the whitelist in explain's words: what it matches, for whom,
 * its scope and lifetime, whether it is enforced, and who may remove it. `viewer` is the
 * caller's uid (the subject's uid for IT rules). Pure.
 */
export function explainRule(policy: Policy, r: EffectiveRule, viewer: number): ExplainResult {
  const trial = isTrial(policy, r);
  const scope = r.destinations?.length ? `only ${r.destinations.map(formatRuleDestination).join(', ')}` : 'the whole tunnel';
  const whom = r.uid !== undefined ? `processes of uid ${r.uid}` : 'processes of every user';
  const verb = r.action === 'allow' ? 'allows' : 'denies';
  const notes: string[] = [];
  if (r.processes) notes.push(`allow-once: only process ${r.processes.map((p) => p.pid).join(', ')}`);
  if (r.expires) notes.push(`in force until ${r.expires}`);
  if (trial) notes.push(`a trial rule (mode audit): what it would ${r.action === 'allow' ? 'allow' : 'deny'} is recorded, nothing is enforced`);
  if (r.action === 'deny' && r.source.kind === 'profile') notes.push('an IT deny: it wins over every allow rule, user rules included');
  if (r.action === 'allow' && r.source.kind === 'user') notes.push('an IT deny for the same program wins over it');
  if (r.children === 'confine') notes.push('child processes do not inherit it');
  if (r.allowEnv?.length) notes.push(`accepts ${r.allowEnv.join(', ')} in the environment`);
  notes.push(r.source.kind === 'profile' ? 'set by IT (locked): only a change of the profile removes it' : `a user decision: uid ${r.source.uid} (or an admin) may revoke it`);
  notes.push(...modeNotes(policy));
  const where = r.action === 'allow' && !r.kernel && r.binary ? interfacesOf(policy, r) : undefined;
  if (where) notes.push(where.note);
  const locked = policy.userPrompts === 'deny';
  if (locked) notes.push('a profile sets userPrompts to "deny": only IT profiles decide on this machine');
  return {
    verdict: r.action,
    enforced: !trial && (r.action === 'allow' || policy.mode === 'enforce'),
    reason: `${describe(r)} ${verb} ${describeMatcher(r)}, for ${whom}, on ${scope}${r.interfaces && !policy.interfaces.every((p) => r.interfaces?.includes(p)) ? ` of ${r.interfaces.join(', ')}` : ''}`,
    subject: { exe: r.binary?.path ?? r.binary?.appimage ?? describeMatcher(r), uid: r.uid ?? viewer, ...(r.binary?.sha256 ? { sha256: r.binary.sha256 } : {}) },
    rule: ruleView(r),
    locked,
    prompt: 'not-applicable',
    notes,
  };
}
