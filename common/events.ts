// What the helper reports as it works: `tunnelgate events`, the audit log and the tray app.
import type { PromptCloseReason, PromptDecision, PromptScope } from './prompts.js';
import type { DeniedAttempt } from './attempts.js';
import type { Mode } from './profile.js';

export type GateEvent =
  | { type: 'helper.started'; pid: number; version: string }
  | { type: 'helper.stopping'; signal: string }
  | { type: 'policy.applied'; rules: number; mode: Mode; problems: string[] }
  | { type: 'policy.failed'; reason: string }
  | { type: 'gate.adopted'; kept: number; released: number }
  | { type: 'gate.restored'; what: string; trigger: string }
  | { type: 'listeners.contested'; listeners: string[] }
  | { type: 'launch.admitted'; uid: number; pid: number; path: string; rule: string }
  | { type: 'launch.refused'; uid: number; pid?: number; path: string; reason: string }
  | { type: 'api.refused'; uid: number; pid: number; method: string; reason: string }
  | { type: 'profile.loaded'; file: string; profileId: string; version: number; previousVersion?: number; signedBy?: string; note?: string }
  | { type: 'profile.rejected'; file: string; profileId?: string; version?: number; problems: string[] }
  | { type: 'profile.removed'; file: string; profileId: string; version: number }
  | { type: 'profile.pulled'; url: string; result: 'updated' | 'not-modified' | 'failed'; detail?: string }
  | AttemptEvent
  // The watcher (issue 4): processes started any way, admitted into their rule's cgroup,
  // refused (a rule names their program but a safety check fails), or taken out again.
  // `at`: 'exec' when admitted while its exec was held (fanotify), 'ticket' when the hold's
  // reader thread replayed an earlier verdict for the same file and uid; absent: the watcher
  // after the exec.
  | { type: 'process.admitted'; pid: number; uid: number; path: string; rule: string; at?: 'exec' | 'ticket' }
  | { type: 'process.refused'; pid: number; uid: number; path: string; reason: string; rule?: string }
  | { type: 'process.released'; pid: number; uid?: number; path: string; rule: string; reason: string }
  // Prompts, user decisions and their store (issue 5). `uid` is always the user the
  // prompt or rule belongs to; `by` is who acted (the same user, or an admin).
  | { type: 'attempt.admitted'; uid: number; pid: number; exe: string; rule: string }
  | { type: 'prompt.opened'; id: string; uid: number; pid?: number; exe: string; dst: string; program: string; warnings: string[] }
  | { type: 'prompt.answered'; id: string; uid: number; exe: string; decision: PromptDecision; scope: PromptScope; by: number; count: number; rule?: string }
  | { type: 'prompt.closed'; id: string; uid: number; exe: string; count: number; reason: PromptCloseReason }
  | { type: 'rule.added'; key: string; uid: number; path: string; by: number; lifetime: string; sha256?: string; destinations?: string[]; admitted: number[] }
  | { type: 'rule.removed'; key: string; uid: number; path: string; by?: number; reason: RuleRemovalReason; released?: number }
  | { type: 'deny.added'; id: string; uid: number; path: string; by: number; destinations?: string[] }
  | { type: 'deny.removed'; id: string; uid: number; path: string; by?: number; reason: 'revoked' | 'replaced' }
  | { type: 'decisions.corrupt'; file: string; movedTo?: string; reason: string }
  | { type: 'binary.changed'; uid: number; path: string; previous: string; sha256: string; since: string };

export type { PromptCloseReason } from './prompts.js';
export type RuleRemovalReason = 'revoked' | 'expired' | 'process-exited' | 'session-ended' | 'replaced';

// A packet the gate dropped (or would have, in audit mode), attributed to its process.
export type AttemptEvent = { type: 'attempt.denied'; attempt: DeniedAttempt };

export type StampedEvent = GateEvent & { seq: number; time: string };

/** The user an event is about, if any. Users are shown their own events and those about nobody. */
export function eventUid(e: GateEvent): number | undefined {
  if (e.type === 'attempt.denied') return e.attempt.uid;
  return 'uid' in e ? e.uid : undefined;
}
