// The status push of the subscription feeds (helper/api/feeds.ts): every change of what
// `status` says reaches subscribers, without waiting for an unrelated event (issue 9).
import { describe, expect, it } from 'vitest';
import type { Caller, StatusReport } from '../../../common/api.js';
import type { GateEvent, StampedEvent } from '../../../common/events.js';
import { SubscriberFeeds } from '../../../helper/api/feeds.js';
import type { FeedPrompts } from '../../../helper/api/feeds.js';
import type { Clock } from '../../../helper/core/clock.js';
import { StorageHealth } from '../../../helper/kernel/files.js';

/** A clock the test moves by hand. */
function manualClock() {
  let now = 0;
  let timers: Array<{ at: number; fn: () => void; id: number }> = [];
  let ids = 0;
  const clock: Clock = {
    now: () => now,
    setTimeout: (fn, ms) => {
      const id = ++ids;
      timers.push({ at: now + ms, fn, id });
      return id;
    },
    clearTimeout: (h) => void (timers = timers.filter((t) => t.id !== h)),
  };
  const advance = async (ms: number) => {
    now += ms;
    const due = timers.filter((t) => t.at <= now);
    timers = timers.filter((t) => t.at > now);
    for (const t of due) t.fn();
    await new Promise((r) => setImmediate(r));
  };
  return { clock, advance };
}

const ROOT: Caller = { uid: 0, gid: 0, pid: 1, admin: true };
const noPrompts: FeedPrompts = { list: () => [], viewerArrived: () => undefined, onChange: () => () => undefined };

function setup(health?: StorageHealth) {
  const { clock, advance } = manualClock();
  const listeners = new Set<(e: StampedEvent) => void>();
  let seq = 0;
  let state: StatusReport['state'] = 'enforcing';
  let reads = 0;
  const feeds = new SubscriberFeeds({
    clock,
    events: { recent: () => [], subscribe: (fn) => (listeners.add(fn), () => listeners.delete(fn)) },
    status: async () => {
      reads++;
      return { state } as StatusReport;
    },
    ...(health ? { statusChanges: (fn: () => void) => health.onChange(fn) } : {}),
  });
  feeds.attach(noPrompts);
  const emit = (e: GateEvent) => {
    const stamped = { ...e, seq: ++seq, time: new Date(0).toISOString() } as StampedEvent;
    for (const fn of listeners) fn(stamped);
  };
  const pushed: StatusReport[] = [];
  const subscribe = () => feeds.subscribe(ROOT, ['status'], (kind, data) => void (kind === 'status' && pushed.push(data as StatusReport)));
  return { feeds, emit, advance, pushed, subscribe, setState: (s: StatusReport['state']) => (state = s), reads: () => reads };
}

describe('status feed', () => {
  it('pushes the status when the gate put back what someone else removed (gate.restored)', async () => {
    const t = setup();
    await t.subscribe();
    t.setState('enforcing');
    t.emit({ type: 'gate.restored', what: 'table deleted', trigger: 'nft monitor: nft (pid 7)' });
    await t.advance(300);
    expect(t.pushed.map((s) => s.state)).toEqual(['enforcing']);
    t.feeds.close();
  });

  it('pushes the status when listeners are contested and when admitted processes come and go', async () => {
    const t = setup();
    await t.subscribe();
    t.setState('degraded');
    t.emit({ type: 'listeners.contested', listeners: ['udp 127.0.0.1:9500'] });
    await t.advance(300);
    t.setState('enforcing');
    t.emit({ type: 'process.released', pid: 9, path: '/usr/bin/curl', rule: 'r', reason: 'exited' });
    await t.advance(300);
    expect(t.pushed.map((s) => s.state)).toEqual(['degraded', 'enforcing']);
    t.feeds.close();
  });

  it('does not push for events that leave status as it was (a denied attempt)', async () => {
    const t = setup();
    await t.subscribe();
    t.emit({ type: 'api.refused', uid: 1, pid: 2, method: 'allow', reason: 'x' });
    await t.advance(1_000);
    expect(t.pushed).toEqual([]);
    t.feeds.close();
  });

  it('pushes the status at once when a state-dir write starts failing, and again when it works (issue 9.10)', async () => {
    const health = new StorageHealth();
    const t = setup(health);
    await t.subscribe();
    t.setState('degraded');
    health.fail('audit log', 'the state directory /s is full (ENOSPC)', { file: '/s/audit.log' });
    await t.advance(300);
    t.setState('enforcing');
    health.ok('audit log');
    await t.advance(300);
    expect(t.pushed.map((s) => s.state)).toEqual(['degraded', 'enforcing']);
    t.feeds.close();
    health.fail('audit log', 'again', {});
    await t.advance(300);
    expect(t.pushed).toHaveLength(2); // closed: no longer following
  });

  it('a steady stream of status events cannot hold the push back: one push within 250 ms of the first', async () => {
    const t = setup();
    await t.subscribe();
    for (let i = 0; i < 20; i++) {
      t.emit({ type: 'process.admitted', pid: 100 + i, uid: 1000, path: '/usr/bin/curl', rule: 'r' });
      await t.advance(100);
    }
    // 2 s of events every 100 ms: pushed every 250 ms or so, read once per push.
    expect(t.pushed.length).toBeGreaterThanOrEqual(6);
    expect(t.reads()).toBe(t.pushed.length + 1); // + the subscription's snapshot
    t.feeds.close();
  });
});
