// Which denied attempts are refusals, for the evidence store (`audit`, `profile test`).
//
// A packet of a program that a rule allows, dropped before its process was admitted (the
// watcher admits a few milliseconds after the exec; an allow answered while a SYN was being
// retransmitted), is not a refusal: the program is allowed, and recording it would show an
// allowed program as refused in `audit` and replay it as a drop in `profile test`. The
// attempt.denied event still says that the packet was dropped.
//
// The verdict is the gate's own for the live process (the one verdict, whoever takes it),
// covering the destination; for a process that has exited, the policy's decision on its
// binary and user, as `profile test` replays it.
import type { DeniedAttempt } from '../../common/attempts.js';
import type { Policy } from '../../common/policy.js';
import type { Verdict } from '../policy/decide.js';
import { destinationCovers, outcome } from '../policy/replay.js';

export interface RefusalDeps {
  /** The policy in force. */
  policy: () => Policy | undefined;
  /** The gate's verdict for a live process; rejects (or undefined) when the process is gone. */
  verdictFor: (policy: Policy, pid: number) => Promise<Verdict | undefined>;
}

/** Whether a verdict allows this destination (its rule names none, or one covering it). Pure. */
export function verdictCovers(v: Verdict, dst: DeniedAttempt['dst']): boolean {
  return v.allow && (!v.rule.destinations?.length || v.rule.destinations.some((d) => destinationCovers(d, dst)));
}

/**
 * Whether attempt `a` is a refusal to record: false when the policy in force allows its
 * process (or, once it has exited, its binary and user) to reach its destination. True
 * whenever it cannot tell (no policy, no program named).
 */
export async function isRefusal(a: DeniedAttempt, d: RefusalDeps): Promise<boolean> {
  const policy = d.policy();
  if (!policy || a.exe === undefined) return true;
  if (a.pid !== undefined) {
    const v = await d.verdictFor(policy, a.pid).catch(() => undefined);
    if (v) return !verdictCovers(v, a.dst);
  }
  const r = outcome(policy, { mode: a.mode, uid: a.uid, exe: a.exe, dst: a.dst, count: 1, firstSeen: a.time, lastSeen: a.time });
  return r.outcome !== 'admit';
}
