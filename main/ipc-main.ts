// Every ipcMain handler of the app, behind ONE wrapper (VS Code's validatedIpcMain,
// Fiddle's IpcMainManager): it answers only the top frame of our own app:// page,
// checks the arguments against common/ipc.ts, and turns every failure into a tagged
// result, so nothing is ever thrown across IPC. Also the one typed way to notify the
// renderer.
//
// No Electron import: Electron's ipcMain and WebContents are passed in and satisfy
// the small seams below, which is all the tests replace.

import type { PromptDecision } from '../common/prompts.js';
import { PROMPT_DECISIONS } from '../common/api.js';
import type {
  AddAppRequest,
  AnswerOptions,
  AuditQuery,
  ExplainQuery,
  UiPreferences,
  EventQuery,
  HandlerName,
  InvokeArgs,
  InvokeHandlers,
  InvokeName,
  IpcResult,
  NotifyMessage,
  NotifyName,
  NotifyPayload,
} from '../common/ipc.js';
import { INVOKE_CHANNELS, MAX_ALLOW_SECONDS, NOTIFY_CHANNELS, PROMPT_ID_PATTERN } from '../common/ipc.js';
import { isAppUrl } from './app-origin.js';

export interface SenderFrame {
  readonly url: string;
  readonly parent: SenderFrame | null;
}
export interface InvokeEvent {
  /** Null when the frame has navigated away or gone. */
  readonly senderFrame: SenderFrame | null;
}
export type InvokeListener = (event: InvokeEvent, ...args: unknown[]) => Promise<unknown>;

/** The part of Electron's ipcMain this module uses. */
export interface IpcMainSeam {
  handle(channel: string, listener: InvokeListener): void;
  removeHandler(channel: string): void;
}

/** The part of Electron's WebContents this module uses. */
export interface NotifyTarget {
  send(channel: string, ...args: unknown[]): void;
  getURL(): string;
  isDestroyed(): boolean;
}

export interface GuardOptions {
  /** Which sender frame URLs are ours. Default: app://tunnelgate/… only. */
  isTrustedUrl?: (url: string) => boolean;
  /** Where refusals are reported. */
  log?: (message: string) => void;
}

type Validator<K extends InvokeName> = (args: readonly unknown[]) => args is InvokeArgs<K>;

/** One argument check per call; a call added to common/ipc.ts is a type error here until checked. */
export const validators: { readonly [K in InvokeName]: Validator<K> } = {
  getStatus: (args): args is [] => args.length === 0,
  getRules: (args): args is [] => args.length === 0,
  getEvents: (args): args is [query?: EventQuery] => args.length === 0 || (args.length === 1 && isEventQuery(args[0])),
  getPrompts: (args): args is [] => args.length === 0,
  answerPrompt: (args): args is [id: string, decision: PromptDecision, options?: AnswerOptions] =>
    (args.length === 2 || args.length === 3) && isPromptId(args[0]) && isDecision(args[1]) && isAnswerOptions(args[1], args[2]),
  getAudit: (args): args is [query?: AuditQuery] => args.length === 0 || (args.length === 1 && isAuditQuery(args[0])),
  getDecisions: (args): args is [] => args.length === 0,
  revoke: (args): args is [target: string] => args.length === 1 && isRevokeTarget(args[0]),
  addApp: (args): args is [request: AddAppRequest] => args.length === 1 && isAddAppRequest(args[0]),
  explain: (args): args is [query: ExplainQuery] => args.length === 1 && isExplainQuery(args[0]),
  getApps: (args): args is [] => args.length === 0,
  pickProgram: (args): args is [] => args.length === 0,
  getPreferences: (args): args is [] => args.length === 0,
  setPreferences: (args): args is [changes: Partial<UiPreferences>] => args.length === 1 && isPreferenceChanges(args[0]),
};

export function handlerName<K extends InvokeName>(name: K): HandlerName<K> {
  return `handle${name.charAt(0).toUpperCase()}${name.slice(1)}` as HandlerName<K>;
}

type AnyHandler = (...args: readonly unknown[]) => Promise<IpcResult<unknown>>;

/** The wrapper: sender check, argument check, handler, and nothing thrown. */
export function guard<K extends InvokeName>(name: K, handler: AnyHandler, opts: GuardOptions = {}): InvokeListener {
  const trusted = opts.isTrustedUrl ?? isAppUrl;
  const log = opts.log ?? ((m: string) => console.warn(`tunnelgate: ${m}`));
  return async (event, ...args): Promise<IpcResult<unknown>> => {
    const frame = event.senderFrame;
    if (!frame || frame.parent !== null || !trusted(frame.url)) {
      log(`refused ${name} from ${frame ? (frame.parent ? 'a subframe at ' : '') + frame.url : 'a frame that is gone'}`);
      return { ok: false, error: { kind: 'forbidden', message: `${name}: not allowed from this page` } };
    }
    if (!validators[name](args)) {
      log(`refused ${name}: arguments do not match the contract`);
      return { ok: false, error: { kind: 'bad-request', message: `${name}: invalid arguments` } };
    }
    try {
      return await handler(...args);
    } catch (e) {
      console.error(`tunnelgate: ${name} failed:`, e);
      return { ok: false, error: { kind: 'internal', message: `${name} failed: ${e instanceof Error ? e.message : String(e)}` } };
    }
  };
}

/** Registers one guarded handler per call of the contract; returns the undo. */
export function registerInvokeHandlers(ipcMain: IpcMainSeam, handlers: InvokeHandlers, opts: GuardOptions = {}): () => void {
  const names = Object.keys(INVOKE_CHANNELS) as InvokeName[];
  for (const name of names) {
    const handler = handlers[handlerName(name)] as AnyHandler;
    ipcMain.handle(INVOKE_CHANNELS[name], guard(name, handler, opts));
  }
  return () => {
    for (const name of names) ipcMain.removeHandler(INVOKE_CHANNELS[name]);
  };
}

/** Sends a notification to our page; nothing goes to a page that is not (or no longer) ours. */
export function notifyRenderer<K extends NotifyName>(
  target: NotifyTarget | undefined,
  name: K,
  payload: NotifyPayload<K>,
  isTrustedUrl: (url: string) => boolean = isAppUrl,
): boolean {
  if (!target || target.isDestroyed() || !isTrustedUrl(target.getURL())) return false;
  target.send(NOTIFY_CHANNELS[name], payload);
  return true;
}

export function forwardToRenderer(target: NotifyTarget | undefined, message: NotifyMessage): boolean {
  return notifyRenderer(target, message.name, message.payload as NotifyPayload<typeof message.name>);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function isEventQuery(v: unknown): v is EventQuery {
  if (!isPlainObject(v)) return false;
  for (const [k, x] of Object.entries(v)) {
    if (k === 'afterSeq') {
      if (!Number.isSafeInteger(x) || (x as number) < 0) return false;
    } else if (k === 'limit') {
      if (!Number.isSafeInteger(x) || (x as number) < 1 || (x as number) > 1000) return false;
    } else {
      return false;
    }
  }
  return true;
}

function isPromptId(v: unknown): v is string {
  return typeof v === 'string' && PROMPT_ID_PATTERN.test(v);
}

function isDecision(v: unknown): v is PromptDecision {
  return typeof v === 'string' && (PROMPT_DECISIONS as readonly string[]).includes(v);
}

/**
 * Whether `k: x` is a valid rule-lifetime field of an answer or an allow: `seconds` (an
 * integer 1..MAX_ALLOW_SECONDS) or `untilLogout: true`. False for any other key.
 */
function lifetimeFieldOk(k: string, x: unknown): boolean {
  if (k === 'seconds') return Number.isSafeInteger(x) && (x as number) >= 1 && (x as number) <= MAX_ALLOW_SECONDS;
  return k === 'untilLogout' && x === true;
}

/**
 * The options as the helper takes them for this decision: a scope for any; for allow-for
 * exactly one of a duration and "until logout", for the others neither. Nothing else.
 */
function isAnswerOptions(decision: PromptDecision, v: unknown): v is AnswerOptions | undefined {
  if (v === undefined) return decision !== 'allow-for';
  if (!isPlainObject(v)) return false;
  for (const [k, x] of Object.entries(v)) {
    if (k === 'scope') {
      if (x !== 'tunnel' && x !== 'destination') return false;
    } else if (!lifetimeFieldOk(k, x)) {
      return false;
    }
  }
  const timed = ('seconds' in v ? 1 : 0) + ('untilLogout' in v ? 1 : 0);
  return decision === 'allow-for' ? timed === 1 : timed === 0;
}

function isAuditQuery(v: unknown): v is AuditQuery {
  if (!isPlainObject(v)) return false;
  for (const [k, x] of Object.entries(v)) {
    if (k !== 'days' || !Number.isSafeInteger(x) || (x as number) < 1 || (x as number) > 366) return false;
  }
  return true;
}

/** A decision id (16 hex) or a user rule key (`user.<uid>:<id>`): the page revokes nothing else. */
export const REVOKE_TARGET_PATTERN = /^(?:[0-9a-f]{16}|user\.[0-9]{1,10}:[A-Za-z0-9][A-Za-z0-9_.-]{0,62})$/;

function isRevokeTarget(v: unknown): v is string {
  return typeof v === 'string' && REVOKE_TARGET_PATTERN.test(v);
}

function isAbsolutePath(v: unknown): v is string {
  return typeof v === 'string' && v.length >= 2 && v.length <= 4096 && v.startsWith('/') && !v.includes('\0');
}

const CIDR = /^[0-9A-Fa-f:.]+\/[0-9]{1,3}$/;

function isDestination(v: unknown): boolean {
  if (!isPlainObject(v) || typeof v.cidr !== 'string' || !CIDR.test(v.cidr) || v.cidr.length > 64) return false;
  for (const [k, x] of Object.entries(v)) {
    if (k === 'cidr') continue;
    if (k === 'proto') {
      if (x !== 'tcp' && x !== 'udp') return false;
    } else if (k === 'ports') {
      if (!Array.isArray(x) || x.length < 1 || x.length > 64) return false;
      if (!x.every((p) => Number.isSafeInteger(p) && (p as number) >= 1 && (p as number) <= 65535)) return false;
    } else {
      return false;
    }
  }
  return true;
}

/** Exactly one of path and app; optional destinations (1..64); at most one of seconds and untilLogout. */
function isAddAppRequest(v: unknown): v is AddAppRequest {
  if (!isPlainObject(v)) return false;
  for (const [k, x] of Object.entries(v)) {
    if (k === 'path' || k === 'app') {
      if (!isAbsolutePath(x)) return false;
    } else if (k === 'destinations') {
      if (!Array.isArray(x) || x.length < 1 || x.length > 64 || !x.every(isDestination)) return false;
    } else if (!lifetimeFieldOk(k, x)) {
      return false;
    }
  }
  return ('path' in v) !== ('app' in v) && !('seconds' in v && 'untilLogout' in v);
}

function isExplainDst(v: unknown): boolean {
  if (!isPlainObject(v) || typeof v.addr !== 'string' || !/^[0-9A-Fa-f:.]{2,64}$/.test(v.addr)) return false;
  for (const [k, x] of Object.entries(v)) {
    if (k === 'addr') continue;
    if (k === 'port') {
      if (!Number.isSafeInteger(x) || (x as number) < 1 || (x as number) > 65535) return false;
    } else if (k === 'proto') {
      if (x !== 'tcp' && x !== 'udp' && x !== 'icmp' && x !== 'other') return false;
    } else {
      return false;
    }
  }
  return true;
}

function isExplainQuery(v: unknown): v is ExplainQuery {
  if (!isPlainObject(v)) return false;
  const keys = Object.keys(v);
  if ('rule' in v) return keys.length === 1 && typeof v.rule === 'string' && v.rule.length >= 1 && v.rule.length <= 200 && !/[\0\n]/.test(v.rule);
  if (keys.some((k) => k !== 'path' && k !== 'pid' && k !== 'dst')) return false;
  if ('dst' in v && !isExplainDst(v.dst)) return false;
  if ('path' in v) return !('pid' in v) && isAbsolutePath(v.path);
  return Number.isSafeInteger(v.pid) && (v.pid as number) >= 2 && (v.pid as number) <= 4194304;
}

function isPreferenceChanges(v: unknown): v is Partial<UiPreferences> {
  if (!isPlainObject(v)) return false;
  for (const [k, x] of Object.entries(v)) {
    if (k === 'theme') {
      if (x !== 'system' && x !== 'light' && x !== 'dark') return false;
    } else if (k === 'notifications') {
      if (x !== 'auto' && x !== 'always' && x !== 'never') return false;
    } else {
      return false;
    }
  }
  return true;
}
