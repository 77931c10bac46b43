// The tray app's view of the helper: polls it every few seconds and on demand, keeps
// the last answer, and tells its subscribers what changed. When there is no
// trustworthy helper (no socket, a socket root does not own, no answer) it says so,
// backs off, and tries again.
//
// Plain module: no Electron. The client factory and the clock come in through the
// constructor, so tests drive it with a fake helper and a fake clock.

import type { ListResult, StatusReport } from '../common/api.js';
import type { StampedEvent } from '../common/events.js';
import type { EventQuery, IpcErrorKind, IpcResult, NotifyMessage } from '../common/ipc.js';
import type { HelperClient } from '../common/node/client.js';
import { HelperError } from '../common/node/client.js';

/** The part of HelperClient this module uses. */
export type HelperLink = Pick<HelperClient, 'call' | 'close'>;
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

export interface HelperConnectionOptions {
  connect: ConnectFn;
  clock?: Clock;
  /** Between polls while the helper answers. */
  pollMs?: number;
  /** First retry after a failure; doubles on each further failure … */
  retryMs?: number;
  /** … up to this. */
  maxRetryMs?: number;
  /** A connect or call that takes longer counts as a failure. */
  timeoutMs?: number;
}

/** One change, named and shaped as the renderer's notification of it. */
export type ConnectionChange = NotifyMessage;

export type ConnectionState =
  | { kind: 'starting' }
  | { kind: 'connected'; status: StatusReport; rules: ListResult }
  | { kind: 'unavailable'; errorKind: IpcErrorKind; message: string; failures: number; retryInMs: number };

class Timeout extends Error {}

export class HelperConnection {
  private readonly connectFn: ConnectFn;
  private readonly clock: Clock;
  private readonly pollMs: number;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private readonly timeoutMs: number;

  private client: HelperLink | undefined;
  private current: ConnectionState = { kind: 'starting' };
  private failures = 0;
  private running = false;
  private closed = false;
  private timer: unknown;
  private inflight: Promise<void> | undefined;
  private readonly listeners = new Set<(change: ConnectionChange) => void>();

  constructor(opts: HelperConnectionOptions) {
    this.connectFn = opts.connect;
    this.clock = opts.clock ?? systemClock;
    this.pollMs = opts.pollMs ?? 5_000;
    this.retryMs = opts.retryMs ?? 1_000;
    this.maxRetryMs = opts.maxRetryMs ?? 30_000;
    this.timeoutMs = opts.timeoutMs ?? 5_000;
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** Polls now and then on its own schedule until stop(). */
  start(): void {
    if (this.running || this.closed) return;
    this.running = true;
    void this.refresh();
  }

  /** Final: stops polling and closes the connection. */
  stop(): void {
    this.closed = true;
    this.running = false;
    this.clearTimer();
    this.dropClient();
  }

  /** Polls now (joining a poll already under way); the schedule restarts after it. */
  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.inflight) return this.inflight;
    this.clearTimer();
    this.inflight = this.pollOnce().finally(() => {
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

  /** The helper serves no event log yet: an empty list while it answers. */
  async events(_query: EventQuery = {}): Promise<IpcResult<StampedEvent[]>> {
    const s = await this.settled();
    return s.kind === 'connected' ? { ok: true, value: [] } : failure(s);
  }

  private async settled(): Promise<Exclude<ConnectionState, { kind: 'starting' }>> {
    if (this.current.kind === 'starting') await this.refresh();
    const s = this.current;
    if (s.kind !== 'starting') return s;
    return { kind: 'unavailable', errorKind: 'unavailable', message: 'the tray app is shutting down', failures: 0, retryInMs: 0 };
  }

  private async pollOnce(): Promise<void> {
    try {
      const client = this.client ?? (await this.openClient());
      const [status, rules] = await Promise.all([
        this.withTimeout(client.call('status', {}), 'status'),
        this.withTimeout(client.call('list', {}), 'list'),
      ]);
      if (this.closed) return this.dropClient();
      this.failures = 0;
      this.update(status, rules);
    } catch (e) {
      this.dropClient();
      if (this.closed) return;
      this.failures += 1;
      const retryInMs = this.nextDelay();
      const errorKind: IpcErrorKind = e instanceof HelperError ? 'helper' : 'unavailable';
      const message = e instanceof HelperError ? `the helper refused: ${e.message}` : describe(e);
      this.current = { kind: 'unavailable', errorKind, message, failures: this.failures, retryInMs };
      this.emit({ name: 'helperUnavailable', payload: { message, retryInMs } });
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

  private update(status: StatusReport, rules: ListResult): void {
    const before = this.current;
    this.current = { kind: 'connected', status, rules };
    const was = before.kind === 'connected' ? before : undefined;
    if (!was || !sameJson(was.status, status)) this.emit({ name: 'statusChanged', payload: status });
    if (!was || !sameJson(was.rules, rules)) this.emit({ name: 'rulesChanged', payload: rules });
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
    if (!this.running) return;
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
    try {
      c?.close();
    } catch {
      // Already closed.
    }
  }

  private withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const h = this.clock.setTimeout(
        () => reject(new Timeout(`the helper did not answer (${what}) within ${this.timeoutMs / 1000} s`)),
        this.timeoutMs,
      );
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

function failure(s: Extract<ConnectionState, { kind: 'unavailable' }>): { ok: false; error: { kind: IpcErrorKind; message: string } } {
  return { ok: false, error: { kind: s.errorKind, message: s.message } };
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
