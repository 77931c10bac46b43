// The helper's API, declared once. The helper's server, the CLI and the tray app's
// main process are all typed from this file; the wire format (JSON-RPC 2.0 over a
// unix socket, one JSON document per line) stops at common/node/client.ts and
// helper/daemon/api-server.ts.

import type { AttemptDestination, AttemptProto } from './attempts.js';
import type { StampedEvent } from './events.js';
import type { AuditReport, ProfileTestResult } from './audit.js';
import type { EffectiveRule, Policy, RuleSource, SourceStatus } from './policy.js';
import type { Destination, Mode } from './profile.js';

export const API_SOCKET_NAME = 'api.sock';
/** A request or reply line longer than this closes the connection. */
export const MAX_MESSAGE_BYTES = 256 * 1024;

export type GateState = 'enforcing' | 'audit' | 'degraded' | 'down';
export type Mechanism = 'net_cls';

export interface InterfaceStatus {
  /** Name or trailing-`*` pattern from the policy. */
  pattern: string;
  /** Interfaces present now that it matches (in the helper's network namespace). */
  present: string[];
}

export interface StatusReport {
  state: GateState;
  mode: Mode;
  mechanism: Mechanism;
  /** Where the rule cgroups live, e.g. /sys/fs/cgroup/net_cls/tunnelgate. */
  cgroupDir: string;
  interfaces: InterfaceStatus[];
  /** Rules in the effective policy (allow and deny). */
  ruleCount: number;
  /** Processes admitted through `tunnelgate run` that are still alive. */
  admittedProcesses: number;
  /** Packets dropped by the gate since the table was last written. */
  dropped: { packets: number; bytes: number };
  sources: SourceStatus[];
  problems: string[];
  helper: { pid: number; version: string; startedAt: string; appliedAt?: string };
}

export interface ListResult {
  rules: EffectiveRule[];
  userPrompts: Policy['userPrompts'];
}

export interface LaunchBeginParams {
  /** The caller's child, stopped before exec, that will run the program. */
  pid: number;
  /** The absolute path the caller intends to exec: used to pick a rule, never trusted. */
  path: string;
}
export interface LaunchBeginResult {
  launchId: string;
  rule: string;
}
export interface LaunchConfirmParams {
  launchId: string;
}
export interface LaunchConfirmResult {
  rule: string;
  /** The kernel's view of what the process runs, as verified. */
  exe: string;
}

/** Who is calling, from the kernel (SO_PEERCRED at connect time), never from the request. */
export interface Caller {
  pid: number;
  uid: number;
  gid: number;
  /** Root, or a member of the configured admin group (helper/daemon/admin.ts). */
  admin: boolean;
}

// ---- Prompts and user decisions (issue 5) -------------------------------------------

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

export interface PromptProgram {
  /** `Name=` of its .desktop entry, else the executable's file name. */
  name: string;
  /** `Icon=` of its .desktop entry: a theme icon name or an absolute path. */
  icon?: string;
  desktopEntry?: string;
}

/** What a person needs to decide. */
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

/** `always`, `until 2026-…Z`, `while pid 12, 13 runs`, `until logout`. */
export function describeLifetime(l: RuleLifetime): string {
  switch (l.kind) {
    case 'always':
      return 'always';
    case 'until':
      return `until ${l.expires}`;
    case 'process':
      return `while pid ${l.pids.join(', ')} runs`;
    case 'session':
      return 'until logout';
  }
}

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

export interface AnswerParams {
  id: string;
  decision: PromptDecision;
  /** Default `tunnel`; `destination` with no `destinations` means those the program tried. */
  scope?: PromptScope;
  destinations?: Destination[];
  /** allow-for: how long. */
  seconds?: number;
  /** allow-for: until the user logs out. */
  untilLogout?: boolean;
}
export interface AnswerResult {
  decision: PromptDecision;
  decisionRecord?: UserDecisionView;
  /** Processes admitted at once. */
  admitted: number[];
}

export interface AllowParams {
  /** Absolute path of the executable as the kernel sees it (no symlink). */
  path: string;
  destinations?: Destination[];
  seconds?: number;
  untilLogout?: boolean;
  /** Pin the binary's current sha256 (default true). */
  pin?: boolean;
  /** Admins only: the user the rule is for (default: the caller). */
  uid?: number;
}
export interface AllowResult {
  rule: UserDecisionView;
  admitted: number[];
}

export interface RevokeParams {
  /** An absolute path, a rule key (`user.1000:ab12…`) or a decision id. */
  target: string;
  /** Admins only, with a path: whose rules (default: the caller's). */
  uid?: number;
}
export interface RevokeResult {
  removed: UserDecisionView[];
  /** Processes that lost tunnel access. */
  released: number;
}

export interface EventsParams {
  /** Only events with a larger `seq`. */
  afterSeq?: number;
  /** At most this many, newest last. */
  limit?: number;
}

export interface ExplainDst {
  addr: string;
  port?: number;
  proto?: AttemptProto;
}
export interface ExplainParams {
  pid?: number;
  path?: string;
  dst?: ExplainDst;
  /** Admins only, with a path: explain for this user (default: the caller). */
  uid?: number;
}
export interface ExplainResult {
  verdict: 'allow' | 'deny';
  /** False where the deciding mode is `audit`: a deny is recorded, not enforced. */
  enforced: boolean;
  reason: string;
  subject: { pid?: number; exe: string; uid: number; sha256?: string };
  rule?: { key: string; source: RuleSource; locked: boolean; destinations?: Destination[]; description: string };
  /** A profile forbids user decisions (userPrompts: deny). */
  locked: boolean;
  /** What happens on a denied attempt: the user is asked, or not (and why). */
  prompt: 'would-ask' | 'locked' | 'decided' | 'not-applicable';
  /** PID only: the rule the process is admitted under now. */
  admittedUnder?: string;
  notes: string[];
}

export type Topic = 'events' | 'prompts' | 'status';
export interface SubscribeParams {
  topics: Topic[];
}
/** The current state of each topic; notifications follow on the same connection. */
export interface SubscribeResult {
  topics: Topic[];
  events?: StampedEvent[];
  prompts?: PromptView[];
  status?: StatusReport;
}

/**
 * What the helper sends, after `subscribe`, as JSON-RPC notifications (method = the key).
 * Events and prompts are filtered like the calls that read them.
 */
export interface ApiNotifications {
  event: StampedEvent;
  prompt: { change: 'opened' | 'updated' | 'closed'; prompt: PromptView };
  status: StatusReport;
}
export type NotificationName = keyof ApiNotifications;
/** A notification as a tagged union, for `switch (n.method)`. */
export type ApiNotification = { [N in NotificationName]: { method: N; params: ApiNotifications[N] } }[NotificationName];
export const NOTIFICATION_NAMES: readonly NotificationName[] = ['event', 'prompt', 'status'];

/** Every method the helper serves: its parameters, its result, and who may call it. */
export interface ApiMethods {
  status: { params: Record<string, never>; result: StatusReport };
  list: { params: Record<string, never>; result: ListResult };
  'launch.begin': { params: LaunchBeginParams; result: LaunchBeginResult };
  'launch.confirm': { params: LaunchConfirmParams; result: LaunchConfirmResult };
  prompts: { params: Record<string, never>; result: PromptView[] };
  answer: { params: AnswerParams; result: AnswerResult };
  allow: { params: AllowParams; result: AllowResult };
  revoke: { params: RevokeParams; result: RevokeResult };
  decisions: { params: Record<string, never>; result: UserDecisionView[] };
  events: { params: EventsParams; result: StampedEvent[] };
  explain: { params: ExplainParams; result: ExplainResult };
  subscribe: { params: SubscribeParams; result: SubscribeResult };
  /** What was refused (or, in audit mode, would have been), aggregated; users see their own. */
  audit: { params: AuditParams; result: AuditReport };
  /** Replay the recorded attempts against a draft profile; writes nothing. */
  'profile.test': { params: ProfileTestParams; result: ProfileTestResult };
}

export interface AuditParams {
  /** Records last seen within this many days (default 30). */
  days?: number;
}

export interface ProfileTestParams {
  /** The draft profile's exact text. */
  text: string;
  /** Its file name, for messages. */
  file: string;
  days?: number;
}
export type MethodName = keyof ApiMethods;
export type Params<M extends MethodName> = ApiMethods[M]['params'];
export type Result<M extends MethodName> = ApiMethods[M]['result'];

/**
 * `any`: every local user (each handler then limits what a user sees and touches to their
 * own); `admin`: root or the configured admin group. Methods not listed here are refused.
 */
export type Access = 'any' | 'admin';

interface JsonSchemaObject {
  type: 'object';
  properties: Record<string, unknown>;
  required: string[];
  additionalProperties: false;
}

const noParams: JsonSchemaObject = { type: 'object', properties: {}, required: [], additionalProperties: false };
const pidSchema = { type: 'integer', minimum: 2, maximum: 4194304 };
const uidSchema = { type: 'integer', minimum: 0, maximum: 4294967294 };
const portSchema = { type: 'integer', minimum: 1, maximum: 65535 };
const pathSchema = { type: 'string', minLength: 2, maxLength: 4096, pattern: '^/[^\\u0000]*$' };
/** At most ten years: longer is "always". */
const secondsSchema = { type: 'integer', minimum: 1, maximum: 10 * 366 * 86400 };
/** Profile destinations (schema/profile-v1.schema.json): the helper checks the CIDR itself too. */
const destinationsSchema = {
  type: 'array',
  minItems: 1,
  maxItems: 64,
  items: {
    type: 'object',
    properties: {
      cidr: { type: 'string', minLength: 3, maxLength: 64, pattern: '^[0-9A-Fa-f:.]+/[0-9]{1,3}$' },
      ports: { type: 'array', minItems: 1, maxItems: 64, items: portSchema },
      proto: { enum: ['tcp', 'udp'] },
    },
    required: ['cidr'],
    additionalProperties: false,
  },
};

export const API: { [M in MethodName]: { access: Access; params: JsonSchemaObject } } = {
  status: { access: 'any', params: noParams },
  list: { access: 'any', params: noParams },
  'launch.begin': {
    access: 'any',
    params: {
      type: 'object',
      properties: {
        pid: { type: 'integer', minimum: 2, maximum: 4194304 },
        path: { type: 'string', minLength: 1, maxLength: 4096, pattern: '^/' },
      },
      required: ['pid', 'path'],
      additionalProperties: false,
    },
  },
  'launch.confirm': {
    access: 'any',
    params: {
      type: 'object',
      properties: { launchId: { type: 'string', pattern: '^[0-9a-f]{16}$' } },
      required: ['launchId'],
      additionalProperties: false,
    },
  },
  prompts: { access: 'any', params: noParams },
  answer: {
    access: 'any',
    params: {
      type: 'object',
      properties: {
        id: { type: 'string', pattern: '^[0-9a-f]{16}$' },
        decision: { enum: [...PROMPT_DECISIONS] },
        scope: { enum: ['tunnel', 'destination'] },
        destinations: destinationsSchema,
        seconds: secondsSchema,
        untilLogout: { type: 'boolean' },
      },
      required: ['id', 'decision'],
      additionalProperties: false,
    },
  },
  allow: {
    access: 'any',
    params: {
      type: 'object',
      properties: {
        path: pathSchema,
        destinations: destinationsSchema,
        seconds: secondsSchema,
        untilLogout: { type: 'boolean' },
        pin: { type: 'boolean' },
        uid: uidSchema,
      },
      required: ['path'],
      additionalProperties: false,
    },
  },
  revoke: {
    access: 'any',
    params: {
      type: 'object',
      properties: { target: { type: 'string', minLength: 1, maxLength: 4096 }, uid: uidSchema },
      required: ['target'],
      additionalProperties: false,
    },
  },
  decisions: { access: 'any', params: noParams },
  events: {
    access: 'any',
    params: {
      type: 'object',
      properties: { afterSeq: { type: 'integer', minimum: 0 }, limit: { type: 'integer', minimum: 1, maximum: 10000 } },
      required: [],
      additionalProperties: false,
    },
  },
  explain: {
    access: 'any',
    params: {
      type: 'object',
      properties: {
        pid: pidSchema,
        path: pathSchema,
        dst: {
          type: 'object',
          properties: {
            addr: { type: 'string', minLength: 2, maxLength: 64, pattern: '^[0-9A-Fa-f:.]+$' },
            port: portSchema,
            proto: { enum: ['tcp', 'udp', 'icmp', 'other'] },
          },
          required: ['addr'],
          additionalProperties: false,
        },
        uid: uidSchema,
      },
      required: [],
      additionalProperties: false,
    },
  },
  audit: {
    access: 'any',
    params: {
      type: 'object',
      properties: { days: { type: 'integer', minimum: 1, maximum: 366 } },
      required: [],
      additionalProperties: false,
    },
  },
  'profile.test': {
    access: 'admin',
    params: {
      type: 'object',
      properties: {
        text: { type: 'string', minLength: 1, maxLength: 200_000 },
        file: { type: 'string', minLength: 1, maxLength: 4096 },
        days: { type: 'integer', minimum: 1, maximum: 366 },
      },
      required: ['text', 'file'],
      additionalProperties: false,
    },
  },
  subscribe: {
    access: 'any',
    params: {
      type: 'object',
      properties: { topics: { type: 'array', items: { enum: ['events', 'prompts', 'status'] }, minItems: 1, maxItems: 3, uniqueItems: true } },
      required: ['topics'],
      additionalProperties: false,
    },
  },
};

/** Application error codes carried in JSON-RPC errors (outside the reserved range). */
export const ErrorCode = {
  InvalidParams: -32602,
  MethodNotFound: -32601,
  Internal: -32603,
  /** The program may not use the tunnel (CLI exit 126). */
  NotAllowed: 1001,
  /** The caller may not do this. */
  Forbidden: 1003,
  NotFound: 1004,
  /** The request no longer applies (a prompt already answered, closed meanwhile). */
  Conflict: 1009,
} as const;
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];
