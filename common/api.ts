// The helper's API, declared once. The helper's server, the CLI and the tray app's
// main process are all typed from this file; the wire format (JSON-RPC 2.0 over a
// unix socket, one JSON document per line) stops at common/node/client.ts and
// helper/daemon/api-server.ts.
//
// Schema first: each method is ONE declaration in `API` below, its parameters as a JSON
// Schema built with common/schema.ts. The server compiles that schema (ajv) to check
// every request, and the parameter types (`Params<M>`, `AnswerParams` …) are inferred
// from the same object, so the two cannot drift apart.

import type { AttemptProto } from './attempts.js';
import type { StampedEvent } from './events.js';
import type { AuditReport, ProfileTestResult } from './audit.js';
import type { EffectiveRule, Policy, RuleSource, SourceStatus } from './policy.js';
import type { Destination, Mode } from './profile.js';
import type { PromptDecision, PromptView, UserDecisionView } from './prompts.js';
import { MAX_RULE_SECONDS, PROMPT_DECISIONS, PROMPT_ID_PATTERN, PROMPT_SCOPES } from './prompts.js';
import type { Infer, Schema } from './schema.js';
import { array, boolean, integer, object, oneOf, string } from './schema.js';

// The vocabulary, error codes and formatters that used to live here, for the modules
// that import them from this file.
export type { PromptCloseReason, PromptDecision, PromptProgram, PromptScope, PromptView, RuleLifetime, UserDecisionView } from './prompts.js';
export { MAX_RULE_SECONDS, PROMPT_DECISIONS, PROMPT_ID_PATTERN, PROMPT_SCOPES } from './prompts.js';
export { ErrorCode } from './errors.js';
export type { ErrorCodeValue } from './errors.js';
export { describeLifetime } from './format.js';

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
  /** The net_cls hierarchy in use: the system's mount, or the helper's own (RUN/net_cls) and why (helper/kernel/netcls.ts). */
  netCls?: { mount: string; own: boolean; reason: string };
  interfaces: InterfaceStatus[];
  /** Rules in the effective policy (allow and deny). */
  ruleCount: number;
  /** Processes admitted through `tunnelgate run` that are still alive. */
  admittedProcesses: number;
  /** Packets dropped by the gate since the table was last written. */
  dropped: { packets: number; bytes: number };
  sources: SourceStatus[];
  problems: string[];
  /**
   * How processes are watched (issue 10): whether execs are held for admission (fanotify)
   * and what the kernel's Yama setting lets users ptrace. Absent from an older helper.
   */
  processes?: { execHold: string; ptrace: string };
  /** netns: inode of the helper's network namespace (/proc/self/ns/net): a client in another one is warned. */
  helper: { pid: number; version: string; startedAt: string; appliedAt?: string; netns?: number };
}

export interface ListResult {
  rules: EffectiveRule[];
  userPrompts: Policy['userPrompts'];
}

export interface LaunchBeginResult {
  launchId: string;
}
export interface LaunchConfirmResult {
  rule: string;
  /** The kernel's view of what the process runs, as verified. */
  exe: string;
  /** Every exec of the launched process, in order (launchers first; the last is `exe`), as `program [script]`. */
  chain: string[];
}

/** Who is calling, from the kernel (SO_PEERCRED at connect time), never from the request. */
export interface Caller {
  pid: number;
  uid: number;
  gid: number;
  /** Root, or a member of the configured admin group (helper/daemon/admin.ts). */
  admin: boolean;
}

export interface AnswerResult {
  decision: PromptDecision;
  decisionRecord?: UserDecisionView;
  /** Processes admitted at once. */
  admitted: number[];
}

/** An installed application, as the helper reads it from a .desktop entry (Flatpak exports included). */
export interface InstalledApp {
  /** The entry's file, e.g. /usr/share/applications/org.gnome.Maps.desktop: the app's id here. */
  desktopEntry: string;
  /** `Name=` */
  name: string;
  /** `Icon=`: a theme icon name or an absolute path (shown as a name; no file is loaded). */
  icon?: string;
  /** The executable its Exec= starts, resolved by the helper (absent: it could not tell). */
  exe?: string;
  /** `Comment=` */
  comment?: string;
  /** A Flatpak export: the app id (the rule then names the app, not a path). */
  flatpak?: string;
}

export interface AppsResult {
  /** Sorted by name (then entry path); NoDisplay and Hidden entries left out. */
  apps: InstalledApp[];
}

export interface AllowResult {
  rule: UserDecisionView;
  admitted: number[];
}

export interface RevokeResult {
  removed: UserDecisionView[];
  /** Processes that lost tunnel access. */
  released: number;
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
export const TOPICS: readonly Topic[] = ['events', 'prompts', 'status'];
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

// ---- parameters: the schemas the server checks, and the types inferred from them -----

const noParams = object({});
const pid = integer({ minimum: 2, maximum: 4194304 });
const uid = integer({ minimum: 0, maximum: 4294967294 });
const port = integer({ minimum: 1, maximum: 65535 });
const absolutePath = string({ minLength: 2, maxLength: 4096, pattern: '^/[^\\u0000]*$' });
const promptId = string({ pattern: PROMPT_ID_PATTERN.source });
/** At most ten years: longer is "always". */
const seconds = integer({ minimum: 1, maximum: MAX_RULE_SECONDS });
const days = integer({ minimum: 1, maximum: 366 });
const desktopEntryPath = string({ minLength: 10, maxLength: 4096, pattern: '^/[^\\u0000]*\\.desktop$' });
const ruleKey = string({ minLength: 3, maxLength: 300, pattern: '^[^\\u0000-\\u001f]+$' });
/** Profile destinations (schema/profile-v1.schema.json): the helper checks the CIDR itself too. */
const destination: Schema<Destination> = object(
  {
    cidr: string({ minLength: 3, maxLength: 64, pattern: '^[0-9A-Fa-f:.]+/[0-9]{1,3}$' }),
    ports: array(port, { minItems: 1, maxItems: 64 }),
    proto: oneOf(['tcp', 'udp']),
  },
  ['cidr'],
);
const destinations = array(destination, { minItems: 1, maxItems: 64 });
const explainDst = object(
  {
    addr: string({ minLength: 2, maxLength: 64, pattern: '^[0-9A-Fa-f:.]+$' }),
    port,
    proto: oneOf<AttemptProto>(['tcp', 'udp', 'icmp', 'other']),
  },
  ['addr'],
);

/**
 * `any`: every local user (each handler then limits what a user sees and touches to their
 * own); `admin`: root or the configured admin group. Methods not listed here are refused.
 */
export type Access = 'any' | 'admin';

declare const RESULT: unique symbol;
/** One method: who may call it, its parameters' schema, and (as a type only) its result. */
export interface MethodSpec<P, R> {
  readonly access: Access;
  readonly params: Schema<P>;
  readonly [RESULT]?: R;
}

/** Declares a method: `method('any', schema).returns<Result>()`. */
function method<P>(access: Access, params: Schema<P>) {
  return { returns: <R>(): MethodSpec<P, R> => ({ access, params }) };
}

/** Every method the helper serves: who may call it, its parameters, and its result. */
export const API = {
  status: method('any', noParams).returns<StatusReport>(),
  list: method('any', noParams).returns<ListResult>(),
  'launch.begin': method(
    'any',
    object(
      {
        /** The caller's child, stopped before exec, that will run the program. */
        pid,
        /** The absolute path the caller intends to exec: named in messages, never trusted (each exec is decided on what the kernel runs). */
        path: string({ minLength: 1, maxLength: 4096, pattern: '^/' }),
      },
      ['pid', 'path'],
    ),
  ).returns<LaunchBeginResult>(),
  'launch.confirm': method('any', object({ launchId: string({ pattern: '^[0-9a-f]{16}$' }) }, ['launchId'])).returns<LaunchConfirmResult>(),
  prompts: method('any', noParams).returns<PromptView[]>(),
  answer: method(
    'any',
    object(
      {
        id: promptId,
        decision: oneOf(PROMPT_DECISIONS),
        /** Default `tunnel`; `destination` with no `destinations` means those the program tried. */
        scope: oneOf(PROMPT_SCOPES),
        destinations,
        /** allow-for: how long. */
        seconds,
        /** allow-for: until the user logs out. */
        untilLogout: boolean(),
      },
      ['id', 'decision'],
    ),
  ).returns<AnswerResult>(),
  allow: method(
    'any',
    object(
      {
        /** Absolute path of the executable as the kernel sees it (no symlink). Exactly one of path and app. */
        path: absolutePath,
        /** An installed application by its .desktop entry (from `apps`): the helper resolves its Exec=. */
        app: desktopEntryPath,
        destinations,
        seconds,
        untilLogout: boolean(),
        /** Pin the binary's current sha256 (default true). */
        pin: boolean(),
        /** Admins only: the user the rule is for (default: the caller). */
        uid,
      },
    ),
  ).returns<AllowResult>(),
  revoke: method(
    'any',
    object(
      {
        /** An absolute path, a rule key (`user.1000:ab12…`) or a decision id. */
        target: string({ minLength: 1, maxLength: 4096 }),
        /** Admins only, with a path: whose rules (default: the caller's). */
        uid,
      },
      ['target'],
    ),
  ).returns<RevokeResult>(),
  decisions: method('any', noParams).returns<UserDecisionView[]>(),
  /** Installed applications the caller can start (.desktop entries: system, the caller's own, Flatpak exports, snapd's). */
  apps: method('any', noParams).returns<AppsResult>(),
  events: method(
    'any',
    object({
      /** Only events with a larger `seq`. */
      afterSeq: integer({ minimum: 0 }),
      /** At most this many, newest last. */
      limit: integer({ minimum: 1, maximum: 10000 }),
    }),
  ).returns<StampedEvent[]>(),
  explain: method(
    'any',
    object({
      pid,
      path: absolutePath,
      dst: explainDst,
      /** A rule of the whitelist by key (`corp:ssh`, `user.1000:ab12…`; `user 1000:ab12…` too): what it matches, scope, lifetime, who may remove it. */
      rule: ruleKey,
      /** Admins only, with a path: explain for this user (default: the caller). */
      uid,
    }),
  ).returns<ExplainResult>(),
  /** What was refused (or, in audit mode, would have been), aggregated; users see their own. */
  audit: method(
    'any',
    object({
      /** Records last seen within this many days (default 30). */
      days,
    }),
  ).returns<AuditReport>(),
  /** Replay the recorded attempts against a draft profile; writes nothing. */
  'profile.test': method(
    'admin',
    object(
      {
        /** The draft profile's exact text. */
        text: string({ minLength: 1, maxLength: 200_000 }),
        /** Its file name, for messages. */
        file: string({ minLength: 1, maxLength: 4096 }),
        days,
      },
      ['text', 'file'],
    ),
  ).returns<ProfileTestResult>(),
  subscribe: method('any', object({ topics: array(oneOf(TOPICS), { minItems: 1, maxItems: 3, uniqueItems: true }) }, ['topics'])).returns<SubscribeResult>(),
};

export type MethodName = keyof typeof API;
type ResultOf<S> = S extends { readonly [RESULT]?: infer R } ? R : never;
/** Every method's parameters and result, as types (derived from `API`). */
export type ApiMethods = { [M in MethodName]: { params: Infer<(typeof API)[M]['params']>; result: ResultOf<(typeof API)[M]> } };
export type Params<M extends MethodName> = ApiMethods[M]['params'];
export type Result<M extends MethodName> = ApiMethods[M]['result'];

export type LaunchBeginParams = Params<'launch.begin'>;
export type LaunchConfirmParams = Params<'launch.confirm'>;
export type AnswerParams = Params<'answer'>;
export type AllowParams = Params<'allow'>;
export type RevokeParams = Params<'revoke'>;
export type EventsParams = Params<'events'>;
export type ExplainDst = Infer<typeof explainDst>;
export type ExplainParams = Params<'explain'>;
export type SubscribeParams = Params<'subscribe'>;
export type AuditParams = Params<'audit'>;
export type ProfileTestParams = Params<'profile.test'>;
