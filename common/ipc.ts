// The IPC contract between the tray app's main process and its renderer, declared
// once (Mullvad's shared/ipc-schema.ts style). main/ipc-main.ts, main/preload.cts and
// renderer/ are all typed from this file; adding a call here is a type error on every
// side until each one handles it.
//
// Pure types and channel names: no Node, no Electron. Errors never cross IPC as thrown
// objects; every call answers with an IpcResult.

import type {
  AllowResult,
  AnswerResult,
  ExplainDst,
  ExplainResult,
  InstalledApp,
  ListResult,
  RevokeResult,
  StatusReport,
  UserDecisionView,
} from './api.js';
import type { PromptDecision, PromptScope, PromptView } from './prompts.js';
import type { AuditReport } from './audit.js';
import type { StampedEvent } from './events.js';
import type { Destination } from './profile.js';

/** Why a call failed, for the renderer to decide what to show. */
export type IpcErrorKind =
  /** No trustworthy helper: socket missing, not root's, refused, timed out. */
  | 'unavailable'
  /** The helper answered with an error. */
  | 'helper'
  /** The arguments did not match this contract. */
  | 'bad-request'
  /** The caller is not our own page. */
  | 'forbidden'
  /** A bug in the main process. */
  | 'internal';

export interface IpcError {
  kind: IpcErrorKind;
  message: string;
}

export type IpcResult<T> = { ok: true; value: T } | { ok: false; error: IpcError };

export interface EventQuery {
  /** Only events with a larger `seq`. */
  afterSeq?: number;
  /** At most this many, newest last (1..1000). */
  limit?: number;
}

/**
 * How the page answers a prompt: a subset of the helper's AnswerParams. The prompt id and
 * the decision are separate arguments; the helper decides against the caller's uid (the
 * tray app's), so the page only asks.
 */
export interface AnswerOptions {
  /** `tunnel` (default) or `destination`: only the destination(s) the program tried. */
  scope?: PromptScope;
  /** allow-for only, and then this or `untilLogout`: how long (1 s … 10 years). */
  seconds?: number;
  /** allow-for only: until the user logs out. */
  untilLogout?: true;
}

/** Longest `allow-for` the page may ask for: the helper's own limit. */
export { MAX_RULE_SECONDS as MAX_ALLOW_SECONDS } from './prompts.js';
/** A prompt id as the helper makes them. */
export { PROMPT_ID_PATTERN } from './prompts.js';

export interface AuditQuery {
  /** Records last seen within this many days (1..366; the helper's default is 30). */
  days?: number;
}

/**
 * "Add an app…": a user rule for a program, as the page asks for it. The helper checks
 * everything (the path, whether IT lets users decide, whether an IT deny overrides it).
 */
export interface AddAppRequest {
  /** Exactly one of `path` and `app`. Absolute path of the executable (an installed app's, or from the file picker). */
  path?: string;
  /** An installed app's `desktopEntry` whose executable the page does not know (Flatpak): the helper resolves it. */
  app?: string;
  /** Absent: the whole tunnel. */
  destinations?: Destination[];
  /** How long; absent (and no untilLogout): always. */
  seconds?: number;
  untilLogout?: true;
}

/** What the page asks the helper to explain: a program (optionally one destination), a live process, or a rule. */
export type ExplainQuery = { path: string; dst?: ExplainDst } | { pid: number; dst?: ExplainDst } | { rule: string };

/** An installed application (declared with the helper's `apps` in common/api.ts). */
export type { InstalledApp } from './api.js';

export interface AppList {
  apps: InstalledApp[];
  /** True where the helper cannot list applications (an older helper): the page offers the file picker only. */
  unsupported?: true;
}

/** `system`: follow the desktop (prefers-color-scheme). */
export type ThemePreference = 'system' | 'light' | 'dark';
/** `auto`: only where no tray icon can be shown; `always`; `never`. */
export type NotificationPreference = 'auto' | 'always' | 'never';

/** The tray app's UI preferences (kept by main in electron-store). Window bounds are main's alone. */
export interface UiPreferences {
  theme: ThemePreference;
  notifications: NotificationPreference;
}

/** renderer → main: request/response calls (ipcRenderer.invoke / ipcMain.handle). */
export interface InvokeSchema {
  getStatus: { args: []; result: StatusReport };
  getRules: { args: []; result: ListResult };
  getEvents: { args: [query?: EventQuery]; result: StampedEvent[] };
  /** The pending prompts of the tray app's user (all of them for an admin). */
  getPrompts: { args: []; result: PromptView[] };
  answerPrompt: { args: [id: string, decision: PromptDecision, options?: AnswerOptions]; result: AnswerResult };
  /** The helper's audit report: what was refused (or would have been), aggregated. */
  getAudit: { args: [query?: AuditQuery]; result: AuditReport };
  /** The tray app user's own rules and deny-always answers (the helper's `decisions`). */
  getDecisions: { args: []; result: UserDecisionView[] };
  /** Revoke a decision (its id) or a user rule (its key); the helper refuses IT rules. */
  revoke: { args: [target: string]; result: RevokeResult };
  /** "Add an app…": a user rule; refused by the helper where IT decides. */
  addApp: { args: [request: AddAppRequest]; result: AllowResult };
  /** The helper's explanation of a verdict, in its own words. */
  explain: { args: [query: ExplainQuery]; result: ExplainResult };
  /** Installed applications (names and icons from .desktop entries). */
  getApps: { args: []; result: AppList };
  /** The fallback of "Add an app…": main's file dialog; null when cancelled. */
  pickProgram: { args: []; result: string | null };
  getPreferences: { args: []; result: UiPreferences };
  setPreferences: { args: [changes: Partial<UiPreferences>]; result: UiPreferences };
}

export interface HelperUnavailableNotice {
  message: string;
  /** When the main process tries again. */
  retryInMs: number;
}

/** New events from the helper's subscription, oldest first. */
export interface EventBatch {
  events: StampedEvent[];
  /** True after a (re)connection: these replace every event shown so far. */
  replace: boolean;
}

/** Parts of the page main may bring into view (the tray's "prompts waiting" entry). */
export type PageSection = 'prompts';

/** main → renderer: notifications (webContents.send / ipcRenderer.on). One payload each. */
export interface NotifySchema {
  statusChanged: StatusReport;
  rulesChanged: ListResult;
  helperUnavailable: HelperUnavailableNotice;
  /** Every pending prompt, after each change (opened, updated, answered, closed). */
  promptsChanged: PromptView[];
  eventsAdded: EventBatch;
  revealSection: PageSection;
  preferencesChanged: UiPreferences;
}

export type InvokeName = keyof InvokeSchema;
export type InvokeArgs<K extends InvokeName> = InvokeSchema[K]['args'];
export type InvokeResult<K extends InvokeName> = InvokeSchema[K]['result'];
export type NotifyName = keyof NotifySchema;
export type NotifyPayload<K extends NotifyName> = NotifySchema[K];

/** One notification with its name, e.g. as queued or forwarded in main. */
export type NotifyMessage = { [K in NotifyName]: { name: K; payload: NotifyPayload<K> } }[NotifyName];

/** Channel names. The sandboxed preload cannot import this module at run time, so it
 *  builds the same strings itself and these types check that they agree. */
export type InvokeChannel<K extends InvokeName = InvokeName> = `tunnelgate:invoke:${K}`;
export type NotifyChannel<K extends NotifyName = NotifyName> = `tunnelgate:notify:${K}`;

export const INVOKE_CHANNELS: { readonly [K in InvokeName]: InvokeChannel<K> } = {
  getStatus: 'tunnelgate:invoke:getStatus',
  getRules: 'tunnelgate:invoke:getRules',
  getEvents: 'tunnelgate:invoke:getEvents',
  getPrompts: 'tunnelgate:invoke:getPrompts',
  answerPrompt: 'tunnelgate:invoke:answerPrompt',
  getAudit: 'tunnelgate:invoke:getAudit',
  getDecisions: 'tunnelgate:invoke:getDecisions',
  revoke: 'tunnelgate:invoke:revoke',
  addApp: 'tunnelgate:invoke:addApp',
  explain: 'tunnelgate:invoke:explain',
  getApps: 'tunnelgate:invoke:getApps',
  pickProgram: 'tunnelgate:invoke:pickProgram',
  getPreferences: 'tunnelgate:invoke:getPreferences',
  setPreferences: 'tunnelgate:invoke:setPreferences',
};

export const NOTIFY_CHANNELS: { readonly [K in NotifyName]: NotifyChannel<K> } = {
  statusChanged: 'tunnelgate:notify:statusChanged',
  rulesChanged: 'tunnelgate:notify:rulesChanged',
  helperUnavailable: 'tunnelgate:notify:helperUnavailable',
  promptsChanged: 'tunnelgate:notify:promptsChanged',
  eventsAdded: 'tunnelgate:notify:eventsAdded',
  revealSection: 'tunnelgate:notify:revealSection',
  preferencesChanged: 'tunnelgate:notify:preferencesChanged',
};

/** Derived names: `handleGetStatus` in main, `onStatusChanged` in the renderer. */
export type HandlerName<K extends InvokeName> = `handle${Capitalize<K>}`;
export type ListenerName<K extends NotifyName> = `on${Capitalize<K>}`;

/** What main/ipc-main.ts must be given: one handler per call. Args are validated before. */
export type InvokeHandlers = {
  [K in InvokeName as HandlerName<K>]: (...args: InvokeArgs<K>) => Promise<IpcResult<InvokeResult<K>>>;
};

export type Unsubscribe = () => void;

/** The one object the preload exposes as `window.tunnelgate`. Listeners get the payload
 *  only, never an IPC event, and return their own unsubscribe function. */
export type TunnelgateApi = {
  readonly [K in InvokeName]: (...args: InvokeArgs<K>) => Promise<IpcResult<InvokeResult<K>>>;
} & {
  readonly [K in NotifyName as ListenerName<K>]: (listener: (payload: NotifyPayload<K>) => void) => Unsubscribe;
};

/** The global name of that object. */
export const API_GLOBAL = 'tunnelgate';
