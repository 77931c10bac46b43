import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AnswerResult, ApiNotification, ListResult, PromptView, StatusReport } from '../../../common/api.js';
import { ErrorCode } from '../../../common/api.js';
import type { StampedEvent } from '../../../common/events.js';
import { HelperClient, HelperError, HelperUnavailable } from '../../../common/node/client.js';
import { HelperConnection } from '../../../main/helper-connection.js';
import type { Clock, ConnectionChange, HelperConnectionOptions, HelperLink } from '../../../main/helper-connection.js';
import { takeDue } from '../core/fakes.js';
import { AUDIT_REPORT, SOME_EVENTS, itRule, listResult, promptView, statusReport } from './fixtures.js';

/** Timers that run only when the test says time has passed. */
class FakeClock implements Clock {
  now = 0;
  private nextId = 1;
  private timers = new Map<number, { at: number; fn: () => void }>();

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.now + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Delays (from now) of the timers still pending, soonest first. */
  pending(): number[] {
    return [...this.timers.values()].map((t) => t.at - this.now).sort((a, b) => a - b);
  }

  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      await settle();
      const due = takeDue(this.timers, end);
      if (!due) break;
      this.now = due.at;
      due.fn();
    }
    this.now = end;
    await settle();
  }
}

/** Lets every promise chain that can run, run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

type Behaviour = 'up' | 'missing' | 'not-root' | 'hang' | 'refuse' | 'drop';

/** One connection to the fake helper: answers calls, pushes notifications, can be dropped by the helper. */
class FakeLink implements HelperLink {
  private readonly listeners = new Set<(n: ApiNotification) => void>();
  private readonly pending = new Set<(e: Error) => void>();
  private resolveClosed!: () => void;
  readonly closed = new Promise<void>((r) => (this.resolveClosed = r));
  isClosed = false;

  constructor(private readonly helper: FakeHelper) {}

  readonly call = ((method: string, params: unknown): Promise<unknown> => {
    if (this.isClosed) return Promise.reject(new Error('the helper closed the connection'));
    return new Promise<unknown>((resolve, reject) => {
      this.pending.add(reject);
      this.helper.handle(this, method, params).then(resolve, reject);
    });
  }) as HelperLink['call'];

  onNotification(fn: (n: ApiNotification) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get listening(): number {
    return this.listeners.size;
  }

  /** The client closes it. */
  close(): void {
    if (this.isClosed) return;
    this.helper.closes += 1;
    this.end();
  }

  /** The helper closes it (crashed, restarted). */
  drop(): void {
    this.end();
  }

  notify(n: ApiNotification): void {
    for (const l of [...this.listeners]) l(n);
  }

  private end(): void {
    this.isClosed = true;
    for (const reject of this.pending) reject(new Error('the helper closed the connection'));
    this.pending.clear();
    this.resolveClosed();
  }
}

/** A helper whose answers and failures the test sets. */
class FakeHelper {
  behaviour: Behaviour = 'up';
  status: StatusReport = statusReport();
  list: ListResult = listResult();
  prompts: PromptView[] = [];
  events: StampedEvent[] = [];
  answerResult: AnswerResult = { decision: 'allow-once', admitted: [5150] };
  answerError: HelperError | undefined;
  connects = 0;
  closes = 0;
  calls: Array<{ method: string; params: unknown }> = [];
  links: FakeLink[] = [];
  /** Methods this test adds (decisions, revoke, allow, explain, apps…). */
  extra: ((method: string, params: unknown) => Promise<unknown>) | undefined;
  /** Runs while the subscribe request is being answered: notifications sent here arrive before its result. */
  duringSubscribe: ((link: FakeLink) => void) | undefined;

  get link(): FakeLink {
    const l = this.links[this.links.length - 1];
    if (!l) throw new Error('no connection yet');
    return l;
  }

  methods(): string[] {
    return this.calls.map((c) => c.method);
  }

  readonly connect = async (): Promise<HelperLink> => {
    this.connects += 1;
    if (this.behaviour === 'missing') throw new HelperUnavailable('the helper is not running (no /run/tunnelgate/api.sock)');
    if (this.behaviour === 'not-root') throw new HelperUnavailable('refusing /run/tunnelgate/api.sock: it is not a socket owned by root');
    const link = new FakeLink(this);
    this.links.push(link);
    return link;
  };

  async handle(link: FakeLink, method: string, params: unknown): Promise<unknown> {
    this.calls.push({ method, params });
    switch (this.behaviour) {
      case 'hang':
        return new Promise(() => undefined);
      case 'refuse':
        throw new HelperError('not allowed', ErrorCode.Forbidden);
      case 'drop':
        link.drop();
        throw new Error('the helper closed the connection');
      default:
        break;
    }
    switch (method) {
      case 'status':
        return structuredClone(this.status);
      case 'list':
        return structuredClone(this.list);
      case 'subscribe': {
        const result = structuredClone({ topics: ['status', 'prompts', 'events'], status: this.status, prompts: this.prompts, events: this.events });
        this.duringSubscribe?.(link);
        return result;
      }
      case 'answer':
        if (this.answerError) throw this.answerError;
        return structuredClone(this.answerResult);
      case 'audit':
        return structuredClone(AUDIT_REPORT);
      default:
        if (this.extra) return this.extra(method, params);
        throw new HelperError(`no method ${method}`, ErrorCode.MethodNotFound);
    }
  }
}

function setup(over: Partial<HelperConnectionOptions> = {}) {
  const clock = new FakeClock();
  const helper = new FakeHelper();
  const conn = new HelperConnection({
    connect: helper.connect,
    clock,
    pollMs: 15_000,
    retryMs: 1000,
    maxRetryMs: 8000,
    timeoutMs: 3000,
    answerTimeoutMs: 10_000,
    rulesDelayMs: 250,
    ...over,
  });
  const changes: ConnectionChange[] = [];
  conn.subscribe((c) => changes.push(c));
  const names = () => changes.map((c) => c.name);
  const last = <N extends ConnectionChange['name']>(name: N) =>
    changes.filter((c): c is Extract<ConnectionChange, { name: N }> => c.name === name).at(-1)?.payload;
  return { clock, helper, conn, changes, names, last };
}

/** setup(), the helper behaving as `behaviour` from the first connect; started, and run until it waits. */
async function started(behaviour: Behaviour = 'up') {
  const s = setup();
  s.helper.behaviour = behaviour;
  s.conn.start();
  await s.clock.advance(0);
  return s;
}
/** What the connection reports when it cannot reach the helper, and when it tries again. */
const unavailable = (message: string, retryInMs = 1000): ConnectionChange => ({ name: 'helperUnavailable', payload: { message, retryInMs } });

const ev = (seq: number, over: Partial<StampedEvent> = {}): StampedEvent =>
  ({ seq, time: `2026-11-22T08:10:${String(seq % 60).padStart(2, '0')}.000Z`, type: 'helper.started', pid: 4242, version: '0.1.0', ...over }) as StampedEvent;
const opened = (prompt: PromptView): ApiNotification => ({ method: 'prompt', params: { change: 'opened', prompt } });
const updated = (prompt: PromptView): ApiNotification => ({ method: 'prompt', params: { change: 'updated', prompt } });
const closed = (prompt: PromptView): ApiNotification => ({ method: 'prompt', params: { change: 'closed', prompt } });
const event = (e: StampedEvent): ApiNotification => ({ method: 'event', params: e });

describe('HelperConnection: the subscription', () => {
  it('connects, subscribes once to status, prompts and events, and reports the snapshot', async () => {
    const { clock, helper, conn, changes, names } = setup();
    const p = promptView();
    helper.prompts = [p];
    helper.events = SOME_EVENTS;
    conn.start();
    await clock.advance(0);
    expect(helper.calls).toEqual([
      { method: 'subscribe', params: { topics: ['status', 'prompts', 'events'] } },
      { method: 'list', params: {} },
    ]);
    expect(names()).toEqual(['statusChanged', 'rulesChanged', 'promptsChanged', 'eventsAdded']);
    expect(changes[0]).toEqual({ name: 'statusChanged', payload: helper.status });
    expect(changes[2]).toEqual({ name: 'promptsChanged', payload: [p] });
    expect(changes[3]).toEqual({ name: 'eventsAdded', payload: { events: SOME_EVENTS, replace: true } });
    expect(conn.state).toEqual({ kind: 'connected', status: helper.status, rules: helper.list, prompts: [p] });
    expect(helper.link.listening).toBe(1);
    expect(clock.pending()).toEqual([15_000]);

    expect(await conn.status()).toEqual({ ok: true, value: helper.status });
    expect(await conn.rules()).toEqual({ ok: true, value: helper.list });
    expect(await conn.pendingPrompts()).toEqual({ ok: true, value: [p] });
    expect(await conn.recentEvents()).toEqual({ ok: true, value: SOME_EVENTS });
    expect(await conn.recentEvents({ afterSeq: 1, limit: 1 })).toEqual({ ok: true, value: [SOME_EVENTS[2]] });
    conn.stop();
  });

  it('prompt notifications: opened, updated and closed each give the full list, oldest first', async () => {
    const { helper, conn, changes, names, last } = await started();
    expect(names()).toEqual(['statusChanged', 'rulesChanged', 'eventsAdded']); // no prompt: nothing to say about prompts
    changes.length = 0;

    const older = promptView({ id: 'aaaaaaaaaaaaaaaa', firstSeen: '2026-11-22T08:00:00.000Z' });
    const newer = promptView({ id: 'bbbbbbbbbbbbbbbb', firstSeen: '2026-11-22T08:01:00.000Z' });
    helper.link.notify(opened(newer));
    helper.link.notify(opened(older));
    expect(last('promptsChanged')).toEqual([older, newer]);

    const more = { ...newer, count: 7, pids: [5150, 5151] };
    helper.link.notify(updated(more));
    expect(last('promptsChanged')).toEqual([older, more]);
    helper.link.notify(updated(more)); // nothing new: nothing said

    helper.link.notify(closed(older)); // answered, timed out, or closed by the helper
    expect(last('promptsChanged')).toEqual([more]);
    expect(conn.state).toMatchObject({ kind: 'connected', prompts: [more] });
    expect(names()).toEqual(['promptsChanged', 'promptsChanged', 'promptsChanged', 'promptsChanged']);
    expect(await conn.pendingPrompts()).toEqual({ ok: true, value: [more] });
    conn.stop();
  });

  it('events: appended as they come, repeats of the snapshot skipped, the newest kept, queried', async () => {
    const { clock, helper, conn, changes } = setup({ maxEvents: 4 });
    helper.events = [ev(1), ev(2)];
    conn.start();
    await clock.advance(0);
    changes.length = 0;
    helper.link.notify(event(ev(2)));
    for (const seq of [3, 4, 5]) helper.link.notify(event(ev(seq)));
    expect(changes).toEqual([3, 4, 5].map((seq) => ({ name: 'eventsAdded', payload: { events: [ev(seq)], replace: false } })));
    expect(await conn.recentEvents()).toEqual({ ok: true, value: [ev(2), ev(3), ev(4), ev(5)] });
    expect(await conn.recentEvents({ afterSeq: 3 })).toEqual({ ok: true, value: [ev(4), ev(5)] });
    expect(await conn.recentEvents({ limit: 1 })).toEqual({ ok: true, value: [ev(5)] });
    conn.stop();
  });

  it('notifications that arrive before the subscribe result are applied after its snapshot', async () => {
    const { clock, helper, conn, last } = setup();
    const p = promptView();
    helper.prompts = [p];
    helper.events = [ev(1)];
    helper.duringSubscribe = (link) => {
      link.notify(closed(p));
      link.notify(event(ev(2)));
    };
    conn.start();
    await clock.advance(0);
    expect(conn.state).toMatchObject({ kind: 'connected', prompts: [] });
    expect(last('promptsChanged')).toEqual([]);
    expect(await conn.recentEvents()).toEqual({ ok: true, value: [ev(1), ev(2)] });
    conn.stop();
  });

  it('status notifications and events that change the whitelist: statusChanged, then ONE list after the burst', async () => {
    const { clock, helper, conn, changes, names } = await started();
    changes.length = 0;
    helper.calls.length = 0;

    const degraded = statusReport({ state: 'degraded', problems: ['interface pattern wg1 matches no interface'] });
    helper.link.notify({ method: 'status', params: degraded });
    expect(changes).toEqual([{ name: 'statusChanged', payload: degraded }]);

    helper.list = listResult([itRule('git', { binary: { path: '/usr/bin/git' } })]);
    helper.link.notify(event(ev(10, { type: 'policy.applied', rules: 1, mode: 'enforce', problems: [] })));
    helper.link.notify(event(ev(11, { type: 'rule.added', key: 'user.1000:x', uid: 1000, path: '/usr/bin/curl', by: 1000, lifetime: 'always', admitted: [] })));
    helper.link.notify(event(ev(12, { type: 'launch.refused', uid: 1000, path: '/usr/bin/nc', reason: 'no rule' })));
    await clock.advance(249);
    expect(helper.methods()).toEqual([]);
    await clock.advance(1);
    expect(helper.methods()).toEqual(['list']);
    expect(names()).toEqual(['statusChanged', 'eventsAdded', 'eventsAdded', 'eventsAdded', 'rulesChanged']);
    expect(changes.at(-1)).toEqual({ name: 'rulesChanged', payload: helper.list });
    conn.stop();
  });

  it('malformed notifications are ignored', async () => {
    const { helper, conn, changes } = await started();
    changes.length = 0;
    for (const n of [
      { method: 'prompt', params: { change: 'opened' } },
      { method: 'prompt', params: { change: 'exploded', prompt: promptView() } },
      { method: 'prompt', params: null },
      { method: 'event', params: { seq: 'x', type: 'helper.started' } },
      { method: 'status', params: [] },
    ]) {
      helper.link.notify(n as unknown as ApiNotification);
    }
    expect(changes).toEqual([]);
    expect(conn.state.kind).toBe('connected');
    conn.stop();
  });

  it('polls status and whitelist on the same connection every pollMs; still one subscription', async () => {
    const { clock, helper, conn, names } = await started();
    helper.status = statusReport({ dropped: { packets: 12, bytes: 720 } }); // counters change without an event
    await clock.advance(15_000);
    expect(helper.methods()).toEqual(['subscribe', 'list', 'status', 'list']);
    expect(names()).toEqual(['statusChanged', 'rulesChanged', 'eventsAdded', 'statusChanged']);
    await clock.advance(15_000);
    expect(helper.methods().filter((m) => m === 'subscribe')).toHaveLength(1);
    expect(helper.connects).toBe(1);
    conn.stop();
  });
});

describe('HelperConnection: outages, reconnection and back-off', () => {
  it('the helper closes the connection: unavailable at once, prompts forgotten, reconnects and subscribes again', async () => {
    const { clock, helper, conn, changes, names, last } = setup();
    helper.prompts = [promptView()];
    conn.start();
    await clock.advance(0);
    changes.length = 0;

    helper.link.drop();
    helper.behaviour = 'missing'; // it is restarting
    await clock.advance(0);
    expect(changes).toEqual([
      { name: 'promptsChanged', payload: [] },
      unavailable('the helper closed the connection'),
    ]);
    expect(conn.state).toMatchObject({ kind: 'unavailable', failures: 1 });
    expect(await conn.pendingPrompts()).toEqual({ ok: false, error: { kind: 'unavailable', message: 'the helper closed the connection' } });
    expect(await conn.answer('0123456789abcdef', 'deny')).toEqual({
      ok: false,
      error: { kind: 'unavailable', message: 'the helper closed the connection' },
    });
    expect(clock.pending()).toEqual([1000]);

    await clock.advance(1000); // still missing
    expect(last('helperUnavailable')).toEqual({ message: 'the helper is not running (no /run/tunnelgate/api.sock)', retryInMs: 2000 });
    helper.behaviour = 'up';
    helper.events = [ev(1)]; // a restarted helper counts from 1 again
    changes.length = 0;
    await clock.advance(2000);
    expect(helper.connects).toBe(3);
    expect(helper.methods().filter((m) => m === 'subscribe')).toHaveLength(2);
    expect(names()).toEqual(['statusChanged', 'rulesChanged', 'promptsChanged', 'eventsAdded']);
    expect(last('eventsAdded')).toEqual({ events: [ev(1)], replace: true });
    expect(last('promptsChanged')).toEqual([promptView()]);
    expect(clock.pending()).toEqual([15_000]);
    conn.stop();
  });

  it('socket missing: reports helperUnavailable, answers calls with kind "unavailable", backs off 1, 2, 4, 8, 8 s', async () => {
    const { clock, helper, conn, changes } = await started('missing');
    expect(changes).toEqual([
      unavailable('the helper is not running (no /run/tunnelgate/api.sock)'),
    ]);
    expect(await conn.status()).toEqual({
      ok: false,
      error: { kind: 'unavailable', message: 'the helper is not running (no /run/tunnelgate/api.sock)' },
    });
    expect(await conn.rules()).toMatchObject({ ok: false, error: { kind: 'unavailable' } });
    expect(await conn.audit()).toMatchObject({ ok: false, error: { kind: 'unavailable' } });

    const delays: number[] = [clock.pending()[0] ?? -1];
    for (let i = 0; i < 4; i++) {
      await clock.advance(delays[delays.length - 1] ?? 0);
      delays.push(clock.pending()[0] ?? -1);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect(helper.connects).toBe(5);
    expect(changes.map((c) => (c.name === 'helperUnavailable' ? c.payload.retryInMs : c.name))).toEqual([1000, 2000, 4000, 8000, 8000]);
    conn.stop();
  });

  it('a socket root does not own is refused, and says so', async () => {
    const { conn, changes } = await started('not-root');
    expect(changes).toEqual([
      unavailable('refusing /run/tunnelgate/api.sock: it is not a socket owned by root'),
    ]);
    conn.stop();
  });

  it('a poll that fails drops the connection; the next attempt reconnects and subscribes', async () => {
    const { clock, helper, conn, names } = await started();
    helper.behaviour = 'drop';
    await clock.advance(15_000);
    expect(names()).toEqual(['statusChanged', 'rulesChanged', 'eventsAdded', 'helperUnavailable']);
    expect(conn.state).toMatchObject({ kind: 'unavailable', message: 'the helper closed the connection', failures: 1 });

    helper.behaviour = 'up'; // same answers as before the outage
    await clock.advance(1000);
    expect(names().slice(4)).toEqual(['statusChanged', 'rulesChanged', 'eventsAdded']);
    expect(helper.connects).toBe(2);
    expect(helper.links[0]?.listening).toBe(0); // the old connection's listener is gone
    expect(clock.pending()).toEqual([15_000]);
    expect((await conn.status()).ok).toBe(true);
    conn.stop();
  });

  it('a subscribe that is never answered times out; the connection is closed and retried', async () => {
    const { clock, helper, conn, changes } = setup();
    helper.behaviour = 'hang';
    conn.start();
    await clock.advance(2999);
    expect(changes).toEqual([]);
    await clock.advance(1);
    expect(changes).toEqual([
      unavailable('the helper did not answer (subscribe) within 3 s'),
    ]);
    expect(helper.closes).toBe(1);
    expect(clock.pending()).toEqual([1000]);
    conn.stop();
  });

  it('a subscription the helper refuses has kind "helper"', async () => {
    const { conn } = await started('refuse');
    expect(await conn.status()).toEqual({ ok: false, error: { kind: 'helper', message: 'the helper refused: not allowed' } });
    conn.stop();
  });
});

describe('HelperConnection: asking on behalf of the page', () => {
  it('answer: exactly the given decision and options go to the helper; the result comes back', async () => {
    const { helper, conn } = await started();
    helper.calls.length = 0;
    expect(await conn.answer('0123456789abcdef', 'allow-once', { scope: 'tunnel' })).toEqual({ ok: true, value: helper.answerResult });
    await conn.answer('0123456789abcdef', 'allow-for', { seconds: 3600, scope: 'destination' });
    await conn.answer('0123456789abcdef', 'allow-for', { untilLogout: true });
    await conn.answer('0123456789abcdef', 'deny-always');
    expect(helper.calls).toEqual([
      { method: 'answer', params: { id: '0123456789abcdef', decision: 'allow-once', scope: 'tunnel' } },
      { method: 'answer', params: { id: '0123456789abcdef', decision: 'allow-for', scope: 'destination', seconds: 3600 } },
      { method: 'answer', params: { id: '0123456789abcdef', decision: 'allow-for', untilLogout: true } },
      { method: 'answer', params: { id: '0123456789abcdef', decision: 'deny-always' } },
    ]);
    conn.stop();
  });

  it("answer: the helper's refusal comes back as kind \"helper\", and the connection stays", async () => {
    const { helper, conn } = await started();
    helper.answerError = new HelperError('prompt 0123456789abcdef is about a process of another user: only that user or an admin may answer it', ErrorCode.Forbidden);
    expect(await conn.answer('0123456789abcdef', 'allow-always')).toEqual({
      ok: false,
      error: { kind: 'helper', message: 'prompt 0123456789abcdef is about a process of another user: only that user or an admin may answer it' },
    });
    expect(conn.state.kind).toBe('connected');
    expect(helper.connects).toBe(1);
    conn.stop();
  });

  it('answer: a helper that does not answer in time is a failed result', async () => {
    const { clock, helper, conn } = await started();
    helper.behaviour = 'hang';
    const pending = conn.answer('0123456789abcdef', 'deny');
    await clock.advance(10_000);
    expect(await pending).toEqual({ ok: false, error: { kind: 'unavailable', message: 'the helper did not answer (answer) within 10 s' } });
    conn.stop();
  });

  it('audit: the days asked for, the report as the helper made it', async () => {
    const { helper, conn } = await started();
    helper.calls.length = 0;
    expect(await conn.audit({ days: 7 })).toEqual({ ok: true, value: AUDIT_REPORT });
    expect(await conn.audit()).toEqual({ ok: true, value: AUDIT_REPORT });
    expect(helper.calls).toEqual([
      { method: 'audit', params: { days: 7 } },
      { method: 'audit', params: {} },
    ]);
    conn.stop();
  });

  it('a call before the first connection waits for it', async () => {
    const { helper, conn } = setup();
    expect(await conn.status()).toEqual({ ok: true, value: helper.status });
    conn.stop();
  });
});

describe('HelperConnection: life cycle', () => {
  it('refresh() on demand joins a round under way and restarts the schedule', async () => {
    const { clock, helper, conn } = await started();
    await clock.advance(3000);
    const a = conn.refresh();
    const b = conn.refresh();
    expect(a).toBe(b);
    await a;
    expect(helper.methods()).toEqual(['subscribe', 'list', 'status', 'list']);
    expect(clock.pending()).toEqual([15_000]);
    conn.stop();
  });

  it('stop(): no timer left, connection closed, later notifications ignored, no more connections', async () => {
    const { clock, helper, conn, changes } = await started();
    const link = helper.link;
    conn.stop();
    expect(clock.pending()).toEqual([]);
    expect(helper.closes).toBe(1);
    expect(link.listening).toBe(0);
    changes.length = 0;
    link.notify(opened(promptView()));
    await clock.advance(60_000);
    expect(changes).toEqual([]);
    expect(helper.connects).toBe(1);
  });

  it('a failing listener does not stop the others', async () => {
    const { clock, conn, names } = setup();
    conn.subscribe(() => {
      throw new Error('boom');
    });
    const errors: unknown[] = [];
    const orig = console.error;
    console.error = (...a: unknown[]) => void errors.push(a);
    try {
      conn.start();
      await clock.advance(0);
    } finally {
      console.error = orig;
    }
    expect(names()).toEqual(['statusChanged', 'rulesChanged', 'eventsAdded']);
    expect(errors).toHaveLength(3);
    conn.stop();
  });
});

describe('HelperConnection with the real HelperClient.connect', () => {
  const dirs: string[] = [];
  const servers: net.Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('no socket: "the helper is not running"', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-conn-'));
    dirs.push(dir);
    const conn = new HelperConnection({ connect: () => HelperClient.connect(dir) });
    expect(await conn.status()).toEqual({
      ok: false,
      error: { kind: 'unavailable', message: `the helper is not running (no ${path.join(dir, 'api.sock')})` },
    });
    conn.stop();
  });

  /** A run dir holding a listening unix socket (owned by whoever runs the test). */
  async function runDirWithSocket(): Promise<string> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-conn-'));
    dirs.push(dir);
    const server = net.createServer((s) => s.destroy());
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(path.join(dir, 'api.sock'), resolve));
    return dir;
  }

  it('a run dir others may write to is refused', async () => {
    const dir = await runDirWithSocket();
    chmodSync(dir, 0o777);
    const conn = new HelperConnection({ connect: () => HelperClient.connect(dir) });
    expect(await conn.status()).toEqual({
      ok: false,
      error: { kind: 'unavailable', message: `refusing ${dir}: it must be owned by root and writable only by root` },
    });
    conn.stop();
  });

  it('a socket root does not own is refused', async () => {
    const dir = await runDirWithSocket();
    const sock = path.join(dir, 'api.sock');
    const root = process.getuid?.() === 0;
    if (root) chownSync(sock, 65534, 65534); // as nobody's socket
    const conn = new HelperConnection({ connect: () => HelperClient.connect(dir) });
    expect(await conn.status()).toEqual({
      ok: false,
      error: {
        kind: 'unavailable',
        // Not root: the test's own directory is refused first, for the same reason.
        message: root ? `refusing ${sock}: it is not a socket owned by root` : `refusing ${dir}: it must be owned by root and writable only by root`,
      },
    });
    conn.stop();
  });
});

describe('HelperConnection: managing rules on behalf of the page (issue 12)', () => {
  const explained = { verdict: 'allow', enforced: true, reason: 'allowed by rule ssh of profile corp-base', subject: { exe: '/usr/bin/ssh', uid: 1000 }, locked: false, prompt: 'not-applicable', notes: [] };

  it('decisions, revoke and allow go to the helper as they are; its refusal comes back with its words', async () => {
    const { helper, conn } = setup();
    helper.extra = async (method, params) => {
      if (method === 'decisions') return [];
      if (method === 'revoke') return { removed: [], released: 2 };
      if (method === 'allow') throw new HelperError('/usr/games/foo is denied by rule no-games of profile corp-base: IT rules override user rules', ErrorCode.Forbidden);
      throw new HelperError(`no method ${method} ${JSON.stringify(params)}`, ErrorCode.MethodNotFound);
    };
    conn.start();
    await settle();
    expect(await conn.decisions()).toEqual({ ok: true, value: [] });
    expect(await conn.revoke('0123456789abcdef')).toEqual({ ok: true, value: { removed: [], released: 2 } });
    expect(await conn.addApp({ path: '/usr/games/foo', seconds: 3600, destinations: [{ cidr: '198.18.0.0/24', ports: [443], proto: 'tcp' }] })).toEqual({
      ok: false,
      error: { kind: 'helper', message: '/usr/games/foo is denied by rule no-games of profile corp-base: IT rules override user rules' },
    });
    expect(helper.calls.filter((c) => ['decisions', 'revoke', 'allow'].includes(c.method))).toEqual([
      { method: 'decisions', params: {} },
      { method: 'revoke', params: { target: '0123456789abcdef' } },
      { method: 'allow', params: { path: '/usr/games/foo', destinations: [{ cidr: '198.18.0.0/24', ports: [443], proto: 'tcp' }], seconds: 3600 } },
    ]);
    expect(conn.state.kind).toBe('connected');
    conn.stop();
  });

  it('an installed app named by its entry is `allow {app}` (the helper of after the merge)', async () => {
    const { helper, conn } = setup();
    helper.extra = async (method, params) => ({ rule: { method, params }, admitted: [] });
    conn.start();
    await settle();
    await conn.addApp({ app: '/var/lib/flatpak/exports/share/applications/org.example.Chat.desktop', untilLogout: true });
    expect(helper.calls.at(-1)).toEqual({ method: 'allow', params: { app: '/var/lib/flatpak/exports/share/applications/org.example.Chat.desktop', untilLogout: true } });
    conn.stop();
  });

  it('apps: a helper without the method means "unsupported", not an outage', async () => {
    const { helper, conn } = setup();
    conn.start();
    await settle();
    expect(await conn.apps()).toEqual({ ok: true, value: { apps: [], unsupported: true } });
    helper.extra = async () => ({ apps: [{ desktopEntry: '/usr/share/applications/x.desktop', name: 'X', exe: '/usr/bin/x' }] });
    expect(await conn.apps()).toEqual({ ok: true, value: { apps: [{ desktopEntry: '/usr/share/applications/x.desktop', name: 'X', exe: '/usr/bin/x' }] } });
    expect(conn.state.kind).toBe('connected');
    conn.stop();
  });

  it('explain: path and pid as the helper takes them; a rule by key, or by its path where the helper cannot yet', async () => {
    const { helper, conn } = setup();
    helper.list = listResult([itRule('ssh', { binary: { path: '/usr/bin/ssh' } }), itRule('games', { action: 'deny', binary: { path: '/usr/games/*' } })]);
    helper.extra = async (method, params) => {
      if (method === 'explain' && typeof params === 'object' && params !== null && 'rule' in params) throw new HelperError('invalid params: rule', ErrorCode.InvalidParams);
      if (method === 'explain') return explained;
      throw new HelperError('no', ErrorCode.MethodNotFound);
    };
    conn.start();
    await settle();
    expect(await conn.explain({ path: '/usr/bin/nc', dst: { addr: '198.18.0.2', port: 80, proto: 'tcp' } })).toEqual({ ok: true, value: explained });
    expect(await conn.explain({ pid: 5150 })).toEqual({ ok: true, value: explained });
    expect(await conn.explain({ rule: 'corp-base:ssh' })).toEqual({ ok: true, value: explained });
    expect(await conn.explain({ rule: 'corp-base:games' })).toEqual({
      ok: false,
      error: { kind: 'helper', message: 'this helper cannot explain a rule yet (it needs `explain {rule}`)' },
    });
    expect(helper.calls.filter((c) => c.method === 'explain').map((c) => c.params)).toEqual([
      { path: '/usr/bin/nc', dst: { addr: '198.18.0.2', port: 80, proto: 'tcp' } },
      { pid: 5150 },
      { rule: 'corp-base:ssh' },
      { path: '/usr/bin/ssh' },
      { rule: 'corp-base:games' },
    ]);
    conn.stop();
  });
});
