import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ListResult, StatusReport } from '../../../common/api.js';
import { ErrorCode } from '../../../common/api.js';
import { HelperClient, HelperError, HelperUnavailable } from '../../../common/node/client.js';
import { HelperConnection } from '../../../main/helper-connection.js';
import type { Clock, ConnectionChange, HelperConnectionOptions, HelperLink } from '../../../main/helper-connection.js';
import { itRule, listResult, statusReport } from './fixtures.js';

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
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
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

/** A helper whose answers and failures the test sets. */
class FakeHelper {
  behaviour: Behaviour = 'up';
  status: StatusReport = statusReport();
  list: ListResult = listResult();
  connects = 0;
  closes = 0;
  calls: string[] = [];

  readonly connect = async (): Promise<HelperLink> => {
    this.connects += 1;
    if (this.behaviour === 'missing') throw new HelperUnavailable('the helper is not running (no /run/tunnelgate/api.sock)');
    if (this.behaviour === 'not-root') throw new HelperUnavailable('refusing /run/tunnelgate/api.sock: it is not a socket owned by root');
    const call = async (method: string): Promise<unknown> => {
      this.calls.push(method);
      switch (this.behaviour) {
        case 'hang':
          return new Promise(() => undefined);
        case 'refuse':
          throw new HelperError('not allowed', ErrorCode.Forbidden);
        case 'drop':
          throw new Error('the helper closed the connection');
        default:
          return structuredClone(method === 'status' ? this.status : this.list);
      }
    };
    return { call: call as HelperLink['call'], close: () => void (this.closes += 1) };
  };
}

function setup(over: Partial<HelperConnectionOptions> = {}) {
  const clock = new FakeClock();
  const helper = new FakeHelper();
  const conn = new HelperConnection({ connect: helper.connect, clock, pollMs: 5000, retryMs: 1000, maxRetryMs: 8000, timeoutMs: 3000, ...over });
  const changes: ConnectionChange[] = [];
  conn.subscribe((c) => changes.push(c));
  const names = () => changes.map((c) => c.name);
  return { clock, helper, conn, changes, names };
}

describe('HelperConnection', () => {
  it('first poll: connected, one statusChanged and one rulesChanged, then polls every pollMs', async () => {
    const { clock, helper, conn, changes, names } = setup();
    conn.start();
    await clock.advance(0);
    expect(names()).toEqual(['statusChanged', 'rulesChanged']);
    expect(changes[0]).toEqual({ name: 'statusChanged', payload: helper.status });
    expect(conn.state.kind).toBe('connected');
    expect(clock.pending()).toEqual([5000]);
    expect(await conn.status()).toEqual({ ok: true, value: helper.status });
    expect(await conn.rules()).toEqual({ ok: true, value: helper.list });
    expect(await conn.events({ limit: 10 })).toEqual({ ok: true, value: [] });

    await clock.advance(5000);
    expect(helper.calls.filter((m) => m === 'status')).toHaveLength(2);
    expect(helper.connects).toBe(1); // the connection is kept between polls
    expect(names()).toEqual(['statusChanged', 'rulesChanged']); // nothing changed, nothing said
    conn.stop();
  });

  it('emits only what changed', async () => {
    const { clock, helper, conn, changes, names } = setup();
    conn.start();
    await clock.advance(0);
    changes.length = 0;

    helper.status = statusReport({ state: 'degraded', problems: ['interface pattern wg1 matches no interface'] });
    await clock.advance(5000);
    expect(names()).toEqual(['statusChanged']);
    expect(changes[0]?.payload).toMatchObject({ state: 'degraded' });

    helper.list = listResult([itRule('git', { binary: { path: '/usr/bin/git' } })]);
    await clock.advance(5000);
    expect(names()).toEqual(['statusChanged', 'rulesChanged']);
    conn.stop();
  });

  it('socket missing: reports helperUnavailable, answers calls with kind "unavailable", backs off 1, 2, 4, 8, 8 s', async () => {
    const { clock, helper, conn, changes } = setup();
    helper.behaviour = 'missing';
    conn.start();
    await clock.advance(0);
    expect(changes).toEqual([
      { name: 'helperUnavailable', payload: { message: 'the helper is not running (no /run/tunnelgate/api.sock)', retryInMs: 1000 } },
    ]);
    expect(await conn.status()).toEqual({
      ok: false,
      error: { kind: 'unavailable', message: 'the helper is not running (no /run/tunnelgate/api.sock)' },
    });
    expect(await conn.rules()).toMatchObject({ ok: false, error: { kind: 'unavailable' } });

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
    const { clock, helper, conn, changes } = setup();
    helper.behaviour = 'not-root';
    conn.start();
    await clock.advance(0);
    expect(changes).toEqual([
      { name: 'helperUnavailable', payload: { message: 'refusing /run/tunnelgate/api.sock: it is not a socket owned by root', retryInMs: 1000 } },
    ]);
    conn.stop();
  });

  it('recovers: after the helper returns, full state again and the normal poll interval', async () => {
    const { clock, helper, conn, names } = setup();
    conn.start();
    await clock.advance(0);
    helper.behaviour = 'drop';
    await clock.advance(5000);
    expect(names()).toEqual(['statusChanged', 'rulesChanged', 'helperUnavailable']);
    expect(helper.closes).toBe(1); // the broken connection is dropped
    expect(conn.state).toMatchObject({ kind: 'unavailable', message: 'the helper closed the connection', failures: 1 });

    helper.behaviour = 'up'; // same answers as before the outage
    await clock.advance(1000);
    expect(names().slice(3)).toEqual(['statusChanged', 'rulesChanged']);
    expect(helper.connects).toBe(2);
    expect(clock.pending()).toEqual([5000]);
    expect((await conn.status()).ok).toBe(true);
    conn.stop();
  });

  it('a helper that does not answer times out, is dropped, and counts as unavailable', async () => {
    const { clock, helper, conn, changes } = setup();
    helper.behaviour = 'hang';
    conn.start();
    await clock.advance(2999);
    expect(changes).toEqual([]);
    await clock.advance(1);
    expect(changes).toEqual([
      { name: 'helperUnavailable', payload: { message: 'the helper did not answer (status) within 3 s', retryInMs: 1000 } },
    ]);
    expect(helper.closes).toBe(1);
    conn.stop();
  });

  it('an error answer from the helper has kind "helper"', async () => {
    const { clock, helper, conn } = setup();
    helper.behaviour = 'refuse';
    conn.start();
    await clock.advance(0);
    expect(await conn.status()).toEqual({ ok: false, error: { kind: 'helper', message: 'the helper refused: not allowed' } });
    conn.stop();
  });

  it('refresh() on demand joins a poll under way and restarts the schedule', async () => {
    const { clock, helper, conn } = setup();
    conn.start();
    await clock.advance(0);
    await clock.advance(3000);
    const a = conn.refresh();
    const b = conn.refresh();
    expect(a).toBe(b);
    await a;
    expect(helper.calls.filter((m) => m === 'status')).toHaveLength(2);
    expect(clock.pending()).toEqual([5000]);
    conn.stop();
  });

  it('a call before the first poll waits for it', async () => {
    const { helper, conn } = setup();
    expect(await conn.status()).toEqual({ ok: true, value: helper.status });
  });

  it('stop(): no timer left, connection closed, no more polls', async () => {
    const { clock, helper, conn } = setup();
    conn.start();
    await clock.advance(0);
    conn.stop();
    expect(clock.pending()).toEqual([]);
    expect(helper.closes).toBe(1);
    await clock.advance(60_000);
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
    expect(names()).toEqual(['statusChanged', 'rulesChanged']);
    expect(errors).toHaveLength(2);
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
  });
});
