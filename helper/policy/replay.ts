// `tunnelgate profile test`: what would a draft policy do with the attempts recorded so far?
// Pure: a policy and recorded attempts in, outcomes out. It never writes a rule.
import type { AttemptRecord, ReplayLine, ReplayOutcome } from '../../common/audit.js';
import type { EffectiveRule, Policy } from '../../common/policy.js';
import type { Destination } from '../../common/profile.js';
import { cidrContains, parseCidr } from '../profile/cidr.js';
import { decide, describe, isTrial } from './decide.js';

/** Does a destination scope cover this address/protocol/port? */
export function destinationCovers(d: Destination, dst: AttemptRecord['dst']): boolean {
  const outer = parseCidr(d.cidr);
  const host = parseCidr(`${dst.addr}/${dst.addr.includes(':') ? 128 : 32}`);
  if (!outer.ok || !host.ok || !cidrContains(outer.cidr, host.cidr)) return false;
  if (d.proto && d.proto !== dst.proto) return false;
  if (d.ports?.length) return (dst.proto === 'tcp' || dst.proto === 'udp') && dst.port !== undefined && d.ports.includes(dst.port);
  return true;
}

const covers = (ds: readonly Destination[], dst: AttemptRecord['dst']) => ds.some((d) => destinationCovers(d, dst));

/** What the gate does with this attempt under `policy`, and why. */
export function outcome(policy: Policy, r: AttemptRecord): { outcome: ReplayOutcome; reason: string } {
  const refuse = (reason: string, rule?: EffectiveRule) => {
    const audit = policy.mode === 'audit' || rule?.mode === 'audit';
    return { outcome: (audit ? 'pass-audit' : 'drop') as ReplayOutcome, reason: audit ? `${reason} (audit: passes, recorded)` : reason };
  };
  if (covers(policy.alwaysAllow, r.dst)) return { outcome: 'admit', reason: 'destination is always allowed' };
  const exe = r.exe;
  if (exe === undefined) return refuse('the sending process was not known');
  const v = decide(policy, { exe, exeDeleted: false, uid: r.uid });
  if (!v.allow) return refuse(v.reason, v.rule);
  const scopedDeny = policy.rules.find(
    (d) => d.action === 'deny' && !isTrial(policy, d) && d.destinations?.length && d.binary && covers(d.destinations, r.dst) &&
      decide({ ...policy, rules: [{ ...d, action: 'allow', destinations: undefined }] }, { exe, exeDeleted: false, uid: r.uid }).allow,
  );
  if (scopedDeny) return refuse(`denied to this destination by ${describe(scopedDeny)}`, scopedDeny);
  if (v.rule.destinations?.length && !covers(v.rule.destinations, r.dst)) {
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
