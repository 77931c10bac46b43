import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { GateEvent } from '../../../common/events.js';
import type { Profile } from '../../../common/profile.js';
import { DecisionsStore } from '../../../helper/store/decisions.js';
import { lockedReason, UserRules } from '../../../helper/core/user-rules.js';
import type { AllowRequest } from '../../../helper/core/user-rules.js';
import { mergePolicy } from '../../../helper/policy/merge.js';
import { profile } from '../policy/fixtures.js';
import { FakeClock, FakeGate, FakeProcs, shaOf } from './fakes.js';

const WGET = '/usr/bin/wget';
let dir: string;
let clock: FakeClock;
let procs: FakeProcs;
let gate: FakeGate;
let events: GateEvent[];
let profiles: Profile[];
let rules: UserRules;

const req = (over: Partial<AllowRequest> = {}): AllowRequest => ({ uid: 1000, path: WGET, pin: true, lifetime: { kind: 'always' }, by: 1000, via: 'api', ...over });

async function applyPolicy(): Promise<void> {
  gate.current = mergePolicy({ profiles: profiles.map((p) => ({ file: `${p.id}.json`, profile: p })), rejected: [], userRules: rules.userRules(), now: new Date(clock.now()) });
  gate.retire();
}

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'tg-rules-'));
  clock = new FakeClock();
  procs = new FakeProcs().add(11, 1000, WGET).add(12, 1000, WGET).add(21, 2000, WGET);
  gate = new FakeGate(procs);
  events = [];
  profiles = [profile()];
  const { store } = await DecisionsStore.open(dir);
  rules = new UserRules({ store, gate, events: { emit: (e) => events.push(e) }, applyPolicy, procs, hash: async (f) => shaOf(f), clock });
  await applyPolicy();
});
afterEach(async () => {
  await rules.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('UserRules', () => {
  it('allow: saved, in force, the live processes of that user admitted, an event', async () => {
    const r = await rules.allow(req());
    expect(r.view).toMatchObject({ kind: 'allow', uid: 1000, path: WGET, sha256: shaOf(WGET), lifetime: { kind: 'always' } });
    expect(r.admitted).toEqual([11, 12]);
    expect(gate.current?.rules.map((x) => x.key)).toEqual([r.view.key]);
    expect([...gate.admittedPids.keys()]).toEqual([11, 12]);
    expect(events.at(-1)).toMatchObject({ type: 'rule.added', key: r.view.key, uid: 1000, path: WGET, by: 1000, lifetime: 'always', admitted: [11, 12] });
    expect((await DecisionsStore.open(dir)).store.current.allows).toHaveLength(1);
  });

  it('a pinned rule does not admit a process whose binary differs', async () => {
    await rules.allow(req({ sha256: 'f'.repeat(64) }));
    expect(gate.admittedPids.size).toBe(0);
  });

  it('refused where a profile locks user decisions', async () => {
    profiles = [profile({ userPrompts: 'deny' })];
    await applyPolicy();
    await expect(rules.allow(req())).rejects.toMatchObject({ code: 1003, message: expect.stringContaining('only IT profiles decide') });
  });

  it('allowing the same binary again widens the rule instead of adding one', async () => {
    const a = await rules.allow(req({ destinations: [{ cidr: '198.18.0.2/32', ports: [443], proto: 'tcp' }] }));
    const b = await rules.allow(req({ destinations: [{ cidr: '198.18.0.3/32' }] }));
    expect(b.view.key).toBe(a.view.key);
    expect(b.view.destinations).toEqual([{ cidr: '198.18.0.2/32', ports: [443], proto: 'tcp' }, { cidr: '198.18.0.3/32' }]);
    const c = await rules.allow(req());
    expect(c.view.key).toBe(a.view.key);
    expect(c.view.destinations).toBeUndefined();
    expect(rules.views()).toHaveLength(1);
  });

  it("an allow replaces the user's deny-always of the same binary", async () => {
    const d = await rules.denyAlways({ uid: 1000, path: WGET, by: 1000, via: 'prompt' });
    expect(rules.findDeny(1000, WGET, { addr: '198.18.0.2', port: 1, proto: 'tcp' })?.id).toBe(d.id);
    await rules.allow(req());
    expect(rules.findDeny(1000, WGET, { addr: '198.18.0.2', port: 1, proto: 'tcp' })).toBeUndefined();
    expect(events).toContainEqual({ type: 'deny.removed', id: d.id, uid: 1000, path: WGET, by: 1000, reason: 'replaced' });
  });

  it('a scoped deny-always covers only its destinations', async () => {
    await rules.denyAlways({ uid: 1000, path: WGET, destinations: [{ cidr: '198.18.0.0/24', ports: [22], proto: 'tcp' }], by: 1000, via: 'prompt' });
    expect(rules.findDeny(1000, WGET, { addr: '198.18.0.7', port: 22, proto: 'tcp' })).toBeDefined();
    expect(rules.findDeny(1000, WGET, { addr: '198.18.0.7', port: 443, proto: 'tcp' })).toBeUndefined();
    expect(rules.findDeny(2000, WGET, { addr: '198.18.0.7', port: 22, proto: 'tcp' })).toBeUndefined();
  });

  it('remove: saved, applied, the processes released, counted', async () => {
    const { view } = await rules.allow(req());
    const r = await rules.remove(new Set([view.id]), 1000, 'revoked');
    expect(r).toMatchObject({ removed: [{ key: view.key }], released: 2 });
    expect(gate.admittedPids.size).toBe(0);
    expect(events.at(-1)).toEqual({ type: 'rule.removed', key: view.key, uid: 1000, path: WGET, by: 1000, reason: 'revoked', released: 2 });
    expect(rules.resolve(WGET, 1000)).toEqual({ allows: [], denies: [] });
  });

  it('a duration ends on time: the rule goes and its processes lose the tunnel', async () => {
    rules.start();
    const { view } = await rules.allow(req({ lifetime: { kind: 'until', expires: new Date(clock.now() + 3_600_000).toISOString() } }));
    clock.advance(3_599_000);
    await new Promise((r) => setImmediate(r));
    expect(gate.current?.rules.map((x) => x.key)).toEqual([view.key]);
    clock.advance(1_000);
    await vi.waitFor(() => expect(gate.current?.rules).toEqual([]), { timeout: 30_000, interval: 20 });
    expect(gate.admittedPids.size).toBe(0);
    expect(events.at(-1)).toMatchObject({ type: 'rule.removed', key: view.key, reason: 'expired', released: 2 });
  });

  it('allow-once lives while its processes run', async () => {
    const { view } = await rules.allow(req({ lifetime: { kind: 'process', processes: [{ pid: 11, startTime: '1011' }, { pid: 12, startTime: '1012' }] }, admit: [11, 12] }));
    procs.kill(11);
    await rules.sweep();
    expect(rules.views()[0]?.lifetime).toEqual({ kind: 'process', pids: [12] });
    procs.kill(12);
    procs.add(12, 1000, WGET, '99999');
    await rules.sweep();
    expect(rules.views()).toEqual([]);
    expect(events.at(-1)).toMatchObject({ type: 'rule.removed', key: view.key, reason: 'process-exited' });
  });

  it('until logout ends when the user has no process left', async () => {
    await rules.allow(req({ lifetime: { kind: 'session' } }));
    clock.advance(10_000);
    await rules.sweep();
    expect(rules.views()).toHaveLength(1);
    procs.kill(11);
    procs.kill(12);
    clock.advance(10_000);
    await rules.sweep();
    expect(rules.views()).toEqual([]);
    expect(events.at(-1)).toMatchObject({ type: 'rule.removed', reason: 'session-ended' });
  });

  it('a rule whose end cannot be saved (a full state dir) ends in force all the same; the removal is saved once it can be (issue 9.10)', async () => {
    const { view } = await rules.allow(req({ lifetime: { kind: 'session' } }));
    expect([...gate.admittedPids.keys()]).toEqual([11, 12]);
    // Every save fails from now on: the state dir is a file.
    rmSync(dir, { recursive: true, force: true });
    writeFileSync(dir, 'in the way');
    procs.kill(11);
    procs.kill(12);
    clock.advance(10_000);
    await expect(rules.sweep()).rejects.toThrow(/cannot save the removal: .*ended in force all the same/);
    expect(gate.current?.rules).toEqual([]);
    expect(rules.userRules()).toEqual([]);
    procs.add(13, 1000, WGET); // a new login of that user: not admitted by the ended rule
    expect(await gate.verdictFor(gate.current!, 13)).toMatchObject({ allow: false });
    rmSync(dir);
    mkdirSync(dir);
    clock.advance(10_000);
    await rules.sweep();
    expect(events.at(-1)).toMatchObject({ type: 'rule.removed', key: view.key, reason: 'session-ended' });
    expect((await DecisionsStore.open(dir)).store.current.allows).toEqual([]);
  });

  it('a duration that ends while the state dir is full: out of force on time, its processes off the tunnel', async () => {
    const { view } = await rules.allow(req({ lifetime: { kind: 'until', expires: new Date(clock.now() + 60_000).toISOString() } }));
    rmSync(dir, { recursive: true, force: true });
    writeFileSync(dir, 'in the way');
    clock.advance(60_000);
    await expect(rules.sweep()).rejects.toThrow(/cannot save/);
    expect(gate.current?.rules).toEqual([]);
    expect(gate.admittedPids.size).toBe(0);
    expect(events.some((e) => e.type === 'rule.removed')).toBe(false); // not saved: not announced as removed yet
    rmSync(dir);
    mkdirSync(dir);
    await rules.sweep();
    expect(events.at(-1)).toMatchObject({ type: 'rule.removed', key: view.key, reason: 'expired' });
  });

  it('a revoke while the state dir is full: the rule ends in force, and the error says so (not "nothing was changed")', async () => {
    const { view } = await rules.allow(req());
    rmSync(dir, { recursive: true, force: true });
    writeFileSync(dir, 'in the way');
    const err = await rules.remove(new Set([view.id]), 1000, 'revoked').catch((e: Error) => e);
    expect(String((err as Error).message)).toMatch(/^cannot save the removal: .*; the rule has ended in force all the same, and the removal is saved once the state directory can be written$/);
    expect(gate.current?.rules).toEqual([]);
    expect(gate.admittedPids.size).toBe(0);
  });

  it('userRules() leaves out durations that are over even before the sweep', async () => {
    await rules.allow(req({ lifetime: { kind: 'until', expires: new Date(clock.now() + 1000).toISOString() } }));
    expect(rules.userRules()).toHaveLength(1);
    clock.advance(1000);
    expect(rules.userRules()).toEqual([]);
  });
});

describe('the lock message names only the profiles that set the lock', () => {
  const merged = (...ps: Profile[]) => mergePolicy({ profiles: ps.map((p) => ({ file: `${p.id}.json`, profile: p })), rejected: [], userRules: [], now: new Date() });

  it('a profile that merely allows prompts is not named', () => {
    const policy = merged(profile({ id: 'corp-lock', userPrompts: 'deny' }), profile({ id: 'team-tools', userPrompts: 'allow' }));
    const why = lockedReason(policy) ?? '';
    expect(why).toMatch(/profile corp-lock sets userPrompts to "deny"/);
    expect(why).not.toContain('team-tools');
  });

  it('two profiles that both lock: both named; none: no refusal', () => {
    const policy = merged(profile({ id: 'a-lock', userPrompts: 'deny' }), profile({ id: 'b-open' }), profile({ id: 'c-lock', userPrompts: 'deny' }));
    expect(lockedReason(policy)).toMatch(/profiles a-lock, c-lock set userPrompts to "deny"/);
    expect(lockedReason(merged(profile({ id: 'a' }), profile({ id: 'b' })))).toBeUndefined();
  });

  it('the user rules the lock keeps out of force: the problem names the locking profile only', async () => {
    await rules.allow(req());
    profiles = [profile({ id: 'corp-lock', userPrompts: 'deny' }), profile({ id: 'team-tools' })];
    await applyPolicy();
    expect(gate.current?.problems).toContain('1 user rule(s) not in force: profile corp-lock locks this machine (userPrompts: deny)');
  });
});
