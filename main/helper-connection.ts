// The tray app's one connection to the helper. On it, main keeps ONE subscription
// (topics status, prompts, events): the helper pushes prompts as they open, change and
// close, every event the user may see, and status changes. The same connection is also
// polled slowly (status and whitelist): the status carries counters that change without
// an event, and a helper that stops answering must be noticed. The whitelist is asked for
// again after events that change it.
//
// When there is no trustworthy helper (no socket, a socket root does not own, no answer,
// the connection closed) it says so, forgets the prompts (they cannot be answered without
// the helper), backs off, and connects and subscribes again.
//
// Plain module: no Electron. The client factory and the clock come in through the
// constructor, so tests drive it with a fake helper and a fake clock.

import type {
  AllowParams,
  AllowResult,
  AnswerParams,
  AnswerResult,
  ExplainParams,
  ExplainResult,
  ApiNotification,
  ListResult,
  PromptDecision,
  PromptView,
  StatusReport,
  RevokeResult,
  SubscribeResult,
  Topic,
  UserDecisionView,
} from '../common/api.js';
import { ErrorCode } from '../common/api.js';
import type { AuditReport } from '../common/audit.js';
import type { GateEvent, StampedEvent } from '../common/events.js';
import type {
  AddAppRequest,
  AnswerOptions,
  AppList,
  AuditQuery,
  EventQuery,
  ExplainQuery,
  IpcError,
  IpcErrorKind,
  IpcResult,
  NotifyMessage,
} from '../common/ipc.js';
import type { HelperClient } from '../common/node/client.js';
import { HelperError } from '../common/node/client.js';

/** The part of HelperClient this module uses. */
export type HelperLink = Pick<HelperClient, 'call' | 'close' | 'onNotification' | 'closed'>;
/** Connects and verifies the helper (HelperClient.connect checks that root owns the socket). */
export type ConnectFn = () => Promise<HelperLink>;

export interface Clock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** What main subscribes to, once per connection. */
export const SUBSCRIBED_TOPICS: readonly Topic[] = ['status', 'prompts', 'events'];

/** Events after which the whitelist may differ: `list` is asked again. */
export const RULE_EVENTS: ReadonlySet<GateEvent['type']> = new Set<GateEvent['type']>([
  'policy.applied',
  'rule.added',
  'rule.removed',
  'deny.added',
  'deny.removed',
  'profile.loaded',
  'profile.removed',
]);

export interface HelperConnectionOptions {
  connect: ConnectFn;
  clock?: Clock;
  /** Between polls (status, whitelist) while the helper answers. */
  pollMs?: number;
  /** First retry after a failure; doubles on each further failure … */
  retryMs?: number;
  /** … up to this. */
  maxRetryMs?: number;
  /** A connect or call that takes longer counts as a failure. */
  timeoutMs?: number;
  /** Answering a prompt may take the helper longer (hashing, applying rules). */
  answerTimeoutMs?: number;
  /** Events kept for the window (the newest). */
  maxEvents?: number;
  /** Events that change the whitelist come in bursts: one `list` after the last. */
  rulesDelayMs?: number;
}

/** One change, named and shaped as the renderer's notification of it. */
export type ConnectionChange = NotifyMessage;

export type ConnectionState =
  | { kind: 'starting' }
  | { kind: 'connected'; status: StatusReport; rules: ListResult; prompts: PromptView[] }
  | { kind: 'unavailable'; errorKind: IpcErrorKind; message: string; failures: number; retryInMs: number };

type Unavailable = Extract<ConnectionState, { kind: 'unavailable' }>;

/** An IpcResult whose error may carry the helper's JSON-RPC error code (main only; not sent to the page). */
type AskResult<T> = { ok: true; value: T } | { ok: false; error: IpcError & { code?: number } };

class Timeout extends Error {}

export class HelperConnection {
  private readonly connectFn: ConnectFn;
  private readonly clock: Clock;
  private readonly pollMs: number;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private readonly timeoutMs: number;
  private readonly answerTimeoutMs: number;
  private readonly maxEvents: number;
  private readonly rulesDelayMs: number;

  private client: HelperLink | undefined;
  private offNotifications: (() => void) | undefined;
  private current: ConnectionState = { kind: 'starting' };
  private failures = 0;
  private running = false;
  private closed = false;
  private timer: unknown;
  private rulesTimer: unknown;
  private inflight: Promise<void> | undefined;
  private prompts = new Map<string, PromptView>();
  private lastPrompts = '[]';
  private events: StampedEvent[] = [];
  private readonly listeners = new Set<(change: ConnectionChange) => void>();

  constructor(opts: HelperConnectionOptions) {
    this.connectFn = opts.connect;
    this.clock = opts.clock ?? systemClock;
    this.pollMs = opts.pollMs ?? 15_000;
    this.retryMs = opts.retryMs ?? 1_000;
    this.maxRetryMs = opts.maxRetryMs ?? 30_000;
    this.timeoutMs = opts.timeoutMs ?? 5_000;
    this.answerTimeoutMs = opts.answerTimeoutMs ?? 20_000;
    this.maxEvents = opts.maxEvents ?? 500;
    this.rulesDelayMs = opts.rulesDelayMs ?? 250;
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** Connects, subscribes, and keeps at it until stop(). */
  start(): void {
    if (this.running || this.closed) return;
    this.running = true;
    void this.refresh();
  }

  /** Final: stops polling and closes the connection (which ends the subscription). */
  stop(): void {
    this.closed = true;
    this.running = false;
    this.clearTimer();
    this.dropClient();
  }

  /**
   * Now, rather than on schedule: polls the helper if connected, else connects (and
   * subscribes) again. Joins a round already under way; the schedule restarts after it.
   */
  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.inflight) return this.inflight;
    this.clearTimer();
    const client = this.client;
    this.inflight = (client ? this.poll(client) : this.connectAndSubscribe()).finally(() => {
      this.inflight = undefined;
      this.schedule();
    });
    return this.inflight;
  }

  subscribe(listener: (change: ConnectionChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async status(): Promise<IpcResult<StatusReport>> {
    const s = await this.settled();
    return s.kind === 'connected' ? { ok: true, value: s.status } : failure(s);
  }

  async rules(): Promise<IpcResult<ListResult>> {
    const s = await this.settled();
    return s.kind === 'connected' ? { ok: true, value: s.rules } : failure(s);
  }

  async pendingPrompts(): Promise<IpcResult<PromptView[]>> {
    const s = await this.settled();
    return s.kind === 'connected' ? { ok: true, value: s.prompts } : failure(s);
  }

  /** The events received from the subscription (newest last), as the query narrows them. */
  async recentEvents(query: EventQuery = {}): Promise<IpcResult<StampedEvent[]>> {
    const s = await this.settled();
    if (s.kind !== 'connected') return failure(s);
    let events = this.events;
    if (query.afterSeq !== undefined) {
      const after = query.afterSeq;
      events = events.filter((e) => e.seq > after);
    }
    if (query.limit !== undefined) events = events.slice(-query.limit);
    return { ok: true, value: [...events] };
  }

  /** Passes the answer on; the helper decides whether this user may give it. */
  async answer(id: string, decision: PromptDecision, options: AnswerOptions = {}): Promise<IpcResult<AnswerResult>> {
    const params: AnswerParams = { id, decision };
    if (options.scope !== undefined) params.scope = options.scope;
    if (options.seconds !== undefined) params.seconds = options.seconds;
    if (options.untilLogout !== undefined) params.untilLogout = options.untilLogout;
    return this.ask((c) => c.call('answer', params), 'answer', this.answerTimeoutMs);
  }

  async audit(query: AuditQuery = {}): Promise<IpcResult<AuditReport>> {
    return this.ask((c) => c.call('audit', query.days !== undefined ? { days: query.days } : {}), 'audit', this.timeoutMs);
  }

  /** The caller's own rules and deny-always answers. */
  async decisions(): Promise<IpcResult<UserDecisionView[]>> {
    return this.ask((c) => c.call('decisions', {}), 'decisions', this.timeoutMs);
  }

  /** Revokes a decision (id) or user rule (key); the helper refuses what is not the caller's. */
  async revoke(target: string): Promise<IpcResult<RevokeResult>> {
    return this.ask((c) => c.call('revoke', { target }), 'revoke', this.answerTimeoutMs);
  }

  /** "Add an app…": `allow` for a path, or for an installed app by its desktop entry (`app`: the helper resolves its Exec=). */
  async addApp(req: AddAppRequest): Promise<IpcResult<AllowResult>> {
    const scope: Omit<AllowParams, 'path'> = {};
    if (req.destinations !== undefined) scope.destinations = req.destinations;
    if (req.seconds !== undefined) scope.seconds = req.seconds;
    if (req.untilLogout !== undefined) scope.untilLogout = req.untilLogout;
    if (req.path !== undefined) {
      const params: AllowParams = { path: req.path, ...scope };
      return this.ask((c) => c.call('allow', params), 'allow', this.answerTimeoutMs);
    }
    const params: AllowParams = { app: req.app ?? '', ...scope };
    return this.ask((c) => c.call('allow', params), 'allow', this.answerTimeoutMs);
  }

  /** The helper's explanation of a program, a process or a rule (by key); an older helper without `explain {rule}` explains an exact-path rule by its path. */
  async explain(query: ExplainQuery): Promise<IpcResult<ExplainResult>> {
    if ('rule' in query) {
      const r = await this.askCoded((c) => c.call('explain', { rule: query.rule }), 'explain', this.timeoutMs);
      if (r.ok) return r;
      if (r.error.code !== ErrorCode.InvalidParams) return { ok: false, error: { kind: r.error.kind, message: r.error.message } };
      // A helper without `explain {rule}`: a rule for one exact path is explained by that path.
      const s = this.current;
      const rule = s.kind === 'connected' ? s.rules.rules.find((x) => x.key === query.rule) : undefined;
      const p = rule?.binary?.path;
      if (!rule || p === undefined || p.endsWith('*')) {
        return { ok: false, error: { kind: 'helper', message: 'this helper cannot explain a rule yet (it needs `explain {rule}`)' } };
      }
      return this.ask((c) => c.call('explain', { path: p }), 'explain', this.timeoutMs);
    }
    const params: ExplainParams = 'pid' in query ? { pid: query.pid } : { path: query.path };
    if (query.dst !== undefined) params.dst = query.dst;
    return this.ask((c) => c.call('explain', params), 'explain', this.timeoutMs);
  }

  /** Installed applications from the helper's `apps`; an older helper without it: `unsupported`. */
  async apps(): Promise<IpcResult<AppList>> {
    const r = await this.askCoded((c) => c.call('apps', {}), 'apps', this.timeoutMs);
    if (!r.ok && r.error.kind === 'helper' && r.error.code === ErrorCode.MethodNotFound) return { ok: true, value: { apps: [], unsupported: true } };
    return r.ok ? { ok: true, value: { apps: r.value.apps } } : { ok: false, error: { kind: r.error.kind, message: r.error.message } };
  }

  // ---- the connection -------------------------------------------------------------

  private async settled(): Promise<Exclude<ConnectionState, { kind: 'starting' }>> {
    if (this.current.kind === 'starting') await this.refresh();
    const s = this.current;
    if (s.kind !== 'starting') return s;
    return { kind: 'unavailable', errorKind: 'unavailable', message: 'the tray app is shutting down', failures: 0, retryInMs: 0 };
  }

  /** One request on the connection, on behalf of the page; failures are results, not outages. */
  private async ask<T>(request: (c: HelperLink) => Promise<T>, what: string, timeoutMs: number): Promise<IpcResult<T>> {
    const r = await this.askCoded(request, what, timeoutMs);
    return r.ok ? r : { ok: false, error: { kind: r.error.kind, message: r.error.message } };
  }

  /** Like ask, with the helper's JSON-RPC error code kept (for main's own fallbacks). */
  private async askCoded<T>(request: (c: HelperLink) => Promise<T>, what: string, timeoutMs: number): Promise<AskResult<T>> {
    const s = await this.settled();
    const client = this.client;
    if (s.kind !== 'connected' || !client) return failure(s.kind === 'connected' ? unavailableNow() : s);
    try {
      return { ok: true, value: await this.withTimeout(request(client), what, timeoutMs) };
    } catch (e) {
      return { ok: false, error: e instanceof HelperError ? { kind: 'helper', message: e.message, code: e.code } : { kind: 'unavailable', message: describe(e) } };
    }
  }

  private async connectAndSubscribe(): Promise<void> {
    let client: HelperLink | undefined;
    try {
      client = await this.openClient();
      const link = client;
      // Notifications may arrive before the subscribe result; they are newer than it.
      let early: ApiNotification[] | undefined = [];
      this.offNotifications = link.onNotification((n) => {
        if (this.client !== link) return;
        if (early) early.push(n);
        else this.apply(n);
      });
      void link.closed.then(() => this.lost(link));
      const [sub, rules] = await Promise.all([
        this.withTimeout(link.call('subscribe', { topics: [...SUBSCRIBED_TOPICS] }), 'subscribe'),
        this.withTimeout(link.call('list', {}), 'list'),
      ]);
      if (this.closed || this.client !== link) return;
      const status = sub.status ?? (await this.withTimeout(link.call('status', {}), 'status'));
      if (this.closed || this.client !== link) return;
      this.failures = 0;
      this.takeSnapshot(sub, status, rules);
      const queued = early;
      early = undefined;
      for (const n of queued) this.apply(n);
    } catch (e) {
      this.fail(client, e);
    }
  }

  private async openClient(): Promise<HelperLink> {
    const pending = this.connectFn();
    try {
      this.client = await this.withTimeout(pending, 'connect');
      return this.client;
    } catch (e) {
      // A connection that arrives after its deadline is not kept.
      pending.then((late) => late.close(), () => undefined);
      throw e;
    }
  }

  private takeSnapshot(sub: SubscribeResult, status: StatusReport, rules: ListResult): void {
    this.prompts = new Map((sub.prompts ?? []).map((p) => [p.id, p]));
    this.events = (sub.events ?? []).slice(-this.maxEvents);
    this.update({ status, rules });
    this.emit({ name: 'eventsAdded', payload: { events: [...this.events], replace: true } });
  }

  private async poll(client: HelperLink): Promise<void> {
    try {
      const [status, rules] = await Promise.all([
        this.withTimeout(client.call('status', {}), 'status'),
        this.withTimeout(client.call('list', {}), 'list'),
      ]);
      if (this.closed || this.client !== client) return;
      this.failures = 0;
      this.update({ status, rules });
    } catch (e) {
      this.fail(client, e);
    }
  }

  /** A notification from the subscription, after its snapshot. */
  private apply(n: ApiNotification): void {
    if (this.closed || this.current.kind !== 'connected') return;
    switch (n.method) {
      case 'status':
        if (!isRecord(n.params) || typeof n.params.state !== 'string') return;
        this.update({ status: n.params });
        return;
      case 'prompt': {
        const p: unknown = n.params;
        if (!isRecord(p) || !isRecord(p.prompt) || typeof p.prompt.id !== 'string') return;
        const prompt = p.prompt as unknown as PromptView;
        if (p.change === 'closed') this.prompts.delete(prompt.id);
        else if (p.change === 'opened' || p.change === 'updated') this.prompts.set(prompt.id, prompt);
        else return;
        this.update({});
        return;
      }
      case 'event': {
        const e = n.params;
        if (!isRecord(e) || !Number.isSafeInteger(e.seq) || typeof e.type !== 'string') return;
        const last = this.events[this.events.length - 1];
        if (last && e.seq <= last.seq) return; // already in the snapshot
        this.events.push(e);
        if (this.events.length > this.maxEvents) this.events.splice(0, this.events.length - this.maxEvents);
        this.emit({ name: 'eventsAdded', payload: { events: [e], replace: false } });
        if (RULE_EVENTS.has(e.type)) this.scheduleRules();
        return;
      }
      default:
        return;
    }
  }

  /** The new state; tells listeners what differs from before. */
  private update(next: { status?: StatusReport; rules?: ListResult }): void {
    const was = this.current.kind === 'connected' ? this.current : undefined;
    const status = next.status ?? was?.status;
    const rules = next.rules ?? was?.rules;
    if (!status || !rules) return;
    const prompts = [...this.prompts.values()].sort(byAge);
    this.current = { kind: 'connected', status, rules, prompts };
    if (!was || !sameJson(was.status, status)) this.emit({ name: 'statusChanged', payload: status });
    if (!was || !sameJson(was.rules, rules)) this.emit({ name: 'rulesChanged', payload: rules });
    this.emitPrompts(prompts);
  }

  private emitPrompts(prompts: PromptView[]): void {
    const json = JSON.stringify(prompts);
    if (json === this.lastPrompts) return;
    this.lastPrompts = json;
    this.emit({ name: 'promptsChanged', payload: prompts });
  }

  private scheduleRules(): void {
    this.clock.clearTimeout(this.rulesTimer);
    this.rulesTimer = this.clock.setTimeout(() => {
      this.rulesTimer = undefined;
      const client = this.client;
      if (!client) return;
      this.withTimeout(client.call('list', {}), 'list').then(
        (rules) => {
          if (this.client === client) this.update({ rules });
        },
        (e: unknown) => {
          this.fail(client, e);
          if (!this.inflight) this.schedule();
        },
      );
    }, this.rulesDelayMs);
  }

  /** The helper (or the kernel) closed the connection. */
  private lost(client: HelperLink): void {
    if (this.client !== client || this.closed) return;
    this.fail(client, new Error('the helper closed the connection'));
    if (!this.inflight) this.schedule();
  }

  /** Drops the connection (if it is still `client`'s) and reports the outage. */
  private fail(client: HelperLink | undefined, e: unknown): void {
    if (client && this.client !== client) return; // already reported
    this.dropClient();
    if (this.closed) return;
    this.failures += 1;
    const retryInMs = this.nextDelay();
    const errorKind: IpcErrorKind = e instanceof HelperError ? 'helper' : 'unavailable';
    const message = e instanceof HelperError ? `the helper refused: ${e.message}` : describe(e);
    this.current = { kind: 'unavailable', errorKind, message, failures: this.failures, retryInMs };
    // Prompts cannot be answered without the helper; they come back with the next snapshot.
    this.prompts.clear();
    this.emitPrompts([]);
    this.emit({ name: 'helperUnavailable', payload: { message, retryInMs } });
  }

  private emit(change: ConnectionChange): void {
    for (const l of [...this.listeners]) {
      try {
        l(change);
      } catch (e) {
        console.error('tunnelgate: a helper-connection listener failed:', e);
      }
    }
  }

  /** While the helper answers: pollMs. After n failures in a row: retryMs·2^(n-1), capped. */
  private nextDelay(): number {
    if (this.failures === 0) return this.pollMs;
    return Math.min(this.maxRetryMs, this.retryMs * 2 ** Math.min(this.failures - 1, 30));
  }

  private schedule(): void {
    if (!this.running || this.closed) return;
    this.clearTimer();
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.refresh();
    }, this.nextDelay());
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private dropClient(): void {
    const c = this.client;
    this.client = undefined;
    this.offNotifications?.();
    this.offNotifications = undefined;
    this.clock.clearTimeout(this.rulesTimer);
    this.rulesTimer = undefined;
    try {
      c?.close();
    } catch {
      // Already closed.
    }
  }

  private withTimeout<T>(p: Promise<T>, what: string, ms = this.timeoutMs): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const h = this.clock.setTimeout(() => reject(new Timeout(`the helper did not answer (${what}) within ${ms / 1000} s`)), ms);
      p.then(
        (v) => {
          this.clock.clearTimeout(h);
          resolve(v);
        },
        (e: unknown) => {
          this.clock.clearTimeout(h);
          reject(e);
        },
      );
    });
  }
}

function failure(s: Pick<Unavailable, 'errorKind' | 'message'>): { ok: false; error: IpcError } {
  return { ok: false, error: { kind: s.errorKind, message: s.message } };
}

function unavailableNow(): Pick<Unavailable, 'errorKind' | 'message'> {
  return { errorKind: 'unavailable', message: 'the connection to the helper was just lost' };
}

/** Oldest first: the one whose answer time runs out first is on top. */
function byAge(a: PromptView, b: PromptView): number {
  return a.firstSeen < b.firstSeen ? -1 : a.firstSeen > b.firstSeen ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
