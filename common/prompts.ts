// The prompt vocabulary: what a person is asked about a program that tried the tunnel,
// the answers they can give, and the user decisions those answers leave behind. Shared by
// the helper (helper/daemon/prompts.ts, user-rules.ts), the API (common/api.ts), the event
// log (common/events.ts), the CLI and the tray app. Pure types and constants.

import type { AttemptDestination } from './attempts.js';
import type { Destination } from './profile.js';

/**
 * The answers to a prompt:
 * - `allow-once`: the prompting process(es) until they exit;
 * - `allow-for`: this binary for `seconds`, or until the user logs out (`untilLogout`);
 * - `allow-always`: this binary, pinned to the sha256 it has now (an update asks again);
 * - `deny`: not now; the prompting processes are not asked about again while they run;
 * - `deny-always`: never ask about this binary again (for this destination, if scoped).
 */
export type PromptDecision = 'allow-once' | 'allow-for' | 'allow-always' | 'deny' | 'deny-always';
export const PROMPT_DECISIONS: readonly PromptDecision[] = ['allow-once', 'allow-for', 'allow-always', 'deny', 'deny-always'];
/** `tunnel`: the whole tunnel; `destination`: only the destination(s) the program tried. */
export type PromptScope = 'tunnel' | 'destination';
export const PROMPT_SCOPES: readonly PromptScope[] = ['tunnel', 'destination'];

/** A prompt id as the helper makes them: 16 lower-case hex digits. */
export const PROMPT_ID_PATTERN = /^[0-9a-f]{16}$/;

/** The longest a timed rule (`allow-for`, `allow --for`) may last: ten years; longer is "always". */
export const MAX_RULE_SECONDS = 10 * 366 * 86400;

/** Why a prompt closed without an answer. `timeout` and `unanswered` count as deny. */
export type PromptCloseReason = 'timeout' | 'unanswered' | 'locked' | 'allowed';

export interface PromptProgram {
  /** `Name=` of its .desktop entry, else the executable's file name. */
  name: string;
  /** `Icon=` of its .desktop entry: a theme icon name or an absolute path. */
  icon?: string;
  desktopEntry?: string;
}

/** What a person needs to decide. Every string but `id` and the times is program-chosen or user data: show it through common/format.ts `visible`. */
export interface PromptView {
  id: string;
  uid: number;
  /** Login name of uid, or `uid N`. */
  user: string;
  exe: string;
  program: PromptProgram;
  /** Live processes of this prompt (the first attempt's first). */
  pids: number[];
  cmdline?: string[];
  /** "via": nearest parent first. */
  parents: Array<{ pid: number; exe: string }>;
  destinations: Array<AttemptDestination & { iface: string; count: number }>;
  /** Attempts folded into this prompt. */
  count: number;
  firstSeen: string;
  lastSeen: string;
  /** sha256 of what the process runs (/proc/PID/exe). */
  sha256?: string;
  /** E.g. the binary's hash differs from the one seen before at this path. */
  warnings: string[];
  /** When no answer counts as deny. Absent while no app of the user has shown the prompt. */
  deadline?: string;
}

export type RuleLifetime =
  | { kind: 'always' }
  | { kind: 'until'; expires: string }
  /** allow-once: these processes, until they exit. */
  | { kind: 'process'; pids: number[] }
  /** Until the user logs out: approximated as "until the user has no process left". */
  | { kind: 'session' };

/** A user's decision as stored: an allow rule (in the policy as `user.<uid>:<id>`) or a deny-always. */
export interface UserDecisionView {
  kind: 'allow' | 'deny';
  id: string;
  /** Allow rules: the effective rule's key. */
  key?: string;
  uid: number;
  path: string;
  sha256?: string;
  /** Absent: the whole tunnel. */
  destinations?: Destination[];
  lifetime: RuleLifetime;
  createdAt: string;
  createdBy: number;
  via: 'prompt' | 'api';
}
