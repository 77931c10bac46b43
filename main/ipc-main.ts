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
  AnswerOptions,
  AuditQuery,
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
 * The options as the helper takes them for this decision: a scope for any; for allow-for
 * exactly one of a duration and "until logout", for the others neither. Nothing else.
 */
function isAnswerOptions(decision: PromptDecision, v: unknown): v is AnswerOptions | undefined {
  if (v === undefined) return decision !== 'allow-for';
  if (!isPlainObject(v)) return false;
  for (const [k, x] of Object.entries(v)) {
    if (k === 'scope') {
      if (x !== 'tunnel' && x !== 'destination') return false;
    } else if (k === 'seconds') {
      if (!Number.isSafeInteger(x) || (x as number) < 1 || (x as number) > MAX_ALLOW_SECONDS) return false;
    } else if (k === 'untilLogout') {
      if (x !== true) return false;
    } else {
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
