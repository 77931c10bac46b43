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
  mode: Mode;
  interfaces: string[];
  alwaysAllow: Destination[];
  userPrompts: 'allow' | 'deny';
  /** The ids of the profiles in force that set userPrompts "deny" (the ones that lock the machine; absent: none). */
  lockedBy?: string[];
  rules: EffectiveRule[];
  sources: SourceStatus[];
  /** Human-readable problems found while building the policy (conflicts, rejections). */
  problems: string[];
}

/** The gate with no valid profile: closed for every program on the default interface. */
export const DEFAULT_INTERFACES = ['wg0'];
