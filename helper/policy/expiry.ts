// Rules with a lifetime (user rules for a duration): what is in force at a moment. Pure.
import type { Policy } from '../../common/policy.js';

/** The policy as it stands at `now`: rules past their expiry are out. */
export function inForce(policy: Policy, now: number): Policy {
  const rules = policy.rules.filter((r) => r.expires === undefined || Date.parse(r.expires) > now);
  return rules.length === policy.rules.length ? policy : { ...policy, rules };
}

/** Milliseconds until the next rule expires, if any. */
export function nextExpiry(policy: Policy, now: number): number | undefined {
  let next: number | undefined;
  for (const r of policy.rules) {
    const t = r.expires === undefined ? NaN : Date.parse(r.expires);
    if (t > now && (next === undefined || t < next)) next = t;
  }
  return next === undefined ? undefined : next - now;
}
