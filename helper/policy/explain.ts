// `tunnelgate explain`: the verdict for a process or a binary, optionally for one
// destination, and the rule, lock or reason behind it. Pure: decide() gives the rule a
// process falls under; this adds what the table does per destination (alwaysAllow, IT
// scoped denies, the rule's own scope) and whether the user would be asked.
import type { ExplainDst, ExplainResult } from '../../common/api.js';
import type { EffectiveRule, Policy } from '../../common/policy.js';
import { binaryMatches, decide, describe } from './decide.js';
import type { ProcessIdentity, Verdict } from './decide.js';
import { covers, formatRuleDestination } from './destinations.js';

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
    const always = policy.alwaysAllow.find((d) => covers(d, dst));
    if (always) {
      allow = true;
      rule = undefined;
      reason = `${dstText(dst)} is open to every program (alwaysAllow ${formatRuleDestination(always)} of the profiles in force)`;
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
  if (policy.mode === 'audit') notes.push('the gate is in audit mode: what it denies is recorded and let through');
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
