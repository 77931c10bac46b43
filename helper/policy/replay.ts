// `tunnelgate profile test`: what would a draft policy do with the attempts recorded so far?
// Pure: a policy and recorded attempts in, outcomes out. It never writes a rule.
import type { AttemptRecord, ReplayLine, ReplayOutcome } from '../../common/audit.js';
import type { EffectiveRule, Policy } from '../../common/policy.js';
import type { Destination } from '../../common/profile.js';
import { decide, describe, isTrial, reach } from './decide.js';
import { covers as destinationCovers } from './destinations.js';
import { alwaysAllowOn, auditOn, interfaceMatches } from './scope.js';

/** Does a destination scope cover this address/protocol/port? (helper/policy/destinations.ts covers, under its old name.) */
export { destinationCovers };

const covers = (ds: readonly Destination[], dst: AttemptRecord['dst']) => ds.some((d) => destinationCovers(d, dst));

/**
 * What the gate does with this attempt under `policy`, and why. Records carry no interface:
 * the attempt is judged on each gated interface (helper/policy/scope.ts) and the outcome is
 * the one on every interface when they agree; when they differ, the least open one (drop
 * before pass-audit before admit) with the reason saying where it would go through, so a
 * draft that opens a program on one tunnel only never reads as admitting it everywhere.
 */
export function outcome(policy: Policy, r: AttemptRecord): { outcome: ReplayOutcome; reason: string } {
  const each = policy.interfaces.map((p) => ({ p, o: outcomeOn(policy, r, p.replace(/\*$/, '')) }));
  const first = each[0];
  if (!first || each.every((x) => x.o.outcome === first.o.outcome)) return first?.o ?? outcomeOn(policy, r, undefined);
  const rank: Record<ReplayOutcome, number> = { drop: 0, 'pass-audit': 1, admit: 2 };
  const worst = [...each].sort((a, b) => rank[a.o.outcome] - rank[b.o.outcome])[0] as (typeof each)[number];
  const elsewhere = each.filter((x) => x.o.outcome !== worst.o.outcome).map((x) => `${x.o.outcome} on ${x.p}`);
  return { outcome: worst.o.outcome, reason: `on ${worst.p}: ${worst.o.reason} (${elsewhere.join(', ')})` };
}

/** The outcome on the interface named `iface` (undefined: a policy without interfaces). */
function outcomeOn(policy: Policy, r: AttemptRecord, iface: string | undefined): { outcome: ReplayOutcome; reason: string } {
  const refuse = (reason: string, rule?: EffectiveRule) => {
    const audit = iface === undefined ? policy.mode === 'audit' || rule?.mode === 'audit' : auditOn(policy, iface) || (rule !== undefined && isTrial(policy, rule));
    return { outcome: (audit ? 'pass-audit' : 'drop') as ReplayOutcome, reason: audit ? `${reason} (audit: passes, recorded)` : reason };
  };
  if (covers(iface === undefined ? policy.alwaysAllow : alwaysAllowOn(policy, iface), r.dst)) return { outcome: 'admit', reason: 'destination is always allowed' };
  const exe = r.exe;
  if (exe === undefined) return refuse('the sending process was not known');
  const v = decide(policy, { exe, exeDeleted: false, uid: r.uid });
  if (!v.allow) return refuse(v.reason, v.rule);
  const scopedDeny = policy.rules.find(
    (d) => d.action === 'deny' && !isTrial(policy, d) && d.destinations?.length && d.binary && covers(d.destinations, r.dst) &&
      decide({ ...policy, rules: [{ ...d, action: 'allow', destinations: undefined }] }, { exe, exeDeleted: false, uid: r.uid }).allow,
  );
  if (scopedDeny) return refuse(`denied to this destination by ${describe(scopedDeny)}`, scopedDeny);
  // The grants of the rule's classid on this interface (its own, or of a rule that admits all it admits).
  const grants = reach(policy, v.rule).filter((x) => x.by && (iface === undefined || interfaceMatches(iface, x.pattern))).map((x) => x.by as EffectiveRule);
  if (iface !== undefined && !grants.length) return refuse(`${describe(v.rule)} applies on ${(v.rule.interfaces ?? policy.interfaces).join(', ')} only, not on ${iface}`, v.rule);
  const open = grants.find((g) => !g.destinations?.length || covers(g.destinations, r.dst));
  if (iface === undefined ? v.rule.destinations?.length && !covers(v.rule.destinations, r.dst) : !open) {
    return refuse(`${describe(v.rule)} does not cover ${r.dst.addr}${r.dst.port ? `:${r.dst.port}` : ''}/${r.dst.proto}`, v.rule);
  }
  return { outcome: 'admit', reason: v.reason };
}

/** Attempts whose fate changes between the policy in force and a draft. */
export function replay(current: Policy, draft: Policy, records: readonly AttemptRecord[]): { newlyDropped: ReplayLine[]; newlyAdmitted: ReplayLine[] } {
  const newlyDropped: ReplayLine[] = [];
  const newlyAdmitted: ReplayLine[] = [];
  for (const record of records) {
    const before = outcome(current, record);
    const after = outcome(draft, record);
    const line = { record, before: before.outcome, after: after.outcome, reason: after.reason };
    if (before.outcome !== 'drop' && after.outcome === 'drop') newlyDropped.push(line);
    else if (before.outcome === 'drop' && after.outcome === 'admit') newlyAdmitted.push(line);
  }
  return { newlyDropped, newlyAdmitted };
}
