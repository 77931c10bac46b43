// The effective policy: what the helper enforces after merging every source.
// This is what `tunnelgate list` prints and what the tray app shows.

import type { Action, BinaryMatcher, ChildrenPolicy, Destination, Mode, RefusedEnv } from './profile.js';

export type RuleSource =
  | { kind: 'profile'; profileId: string; version: number; file: string }
  | { kind: 'user'; uid: number };

export interface EffectiveRule {
  /** Unique across sources: `<profile>:<rule>` or `user.<uid>:<rule>`. Also the cgroup name. */
  key: string;
  id: string;
  source: RuleSource;
  action: Action;
  binary?: BinaryMatcher;
  kernel: boolean;
  /** Absent: the whole tunnel. */
  destinations?: Destination[];
  mode: Mode;
  /** Locked rules cannot be overridden or revoked by users. IT rules are always locked. */
  locked: boolean;
  /** User rules only: the uid whose processes this rule admits. */
  uid?: number;
  /** ISO instant after which the rule is no longer in force. */
  expires?: string;
  /** Allow-once rules: they admit only these processes (pid and start time name one). */
  processes?: Array<{ pid: number; startTime: string }>;
  /** Profile allow rules: what happens to descendants (absent: inherit). */
  children?: ChildrenPolicy;
  /** Profile allow rules: refused environment variables this rule accepts. */
  allowEnv?: RefusedEnv[];
  /**
   * The interface names or trailing-`*` patterns this rule opens: its profile's `interfaces`
   * (a user rule: those of the profiles that let users decide for its program,
   * helper/policy/scope.ts). Absent (policies built before scoping): every gated interface.
   */
  interfaces?: string[];
}

/** One profile in force as the gate sees it: where it applies and how. */
export interface PolicyScope {
  profileId: string;
  /** Its `interfaces`: its rules, alwaysAllow and audit mode apply there only. */
  interfaces: string[];
  mode: Mode;
  userPrompts: 'allow' | 'deny';
  alwaysAllow: Destination[];
}

export interface SourceStatus {
  file: string;
  profileId?: string;
  version?: number;
  /** in force, or why not. */
  state: 'active' | 'rejected' | 'expired';
  problems: string[];
}

export interface Policy {
  /** `audit` only when every profile in force is in audit mode (per interface: scopes). */
  mode: Mode;
  /** Every gated interface pattern (the union of the scopes', plus those kept gated). */
  interfaces: string[];
  /** Every profile's alwaysAllow (each applies on its own profile's interfaces: scopes). */
  alwaysAllow: Destination[];
  /** `allow` when some profile in force lets users decide (on its own interfaces). */
  userPrompts: 'allow' | 'deny';
  /** The ids of the profiles in force that set userPrompts "deny" (the ones that lock the machine; absent: none). */
  lockedBy?: string[];
  rules: EffectiveRule[];
  /**
   * The profiles in force, each with its interfaces (issue 9: a rule opens only the
   * interfaces its own source names). Absent (policies built by hand, older code): the
   * policy applies as one scope on every interface.
   */
  scopes?: PolicyScope[];
  sources: SourceStatus[];
  /** Human-readable problems found while building the policy (conflicts, rejections). */
  problems: string[];
}

/** The gate with no valid profile: closed for every program on the default interface. */
export const DEFAULT_INTERFACES = ['wg0'];
