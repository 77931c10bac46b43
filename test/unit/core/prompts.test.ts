import { beforeEach, describe, expect, it } from 'vitest';
import type { UserDecisionView } from '../../../common/api.js';
import type { GateEvent } from '../../../common/events.js';
import type { Policy } from '../../../common/policy.js';
import type { Destination } from '../../../common/profile.js';
import type { DeniedAttempt } from '../../../common/attempts.js';
import type { SeenBinary, StoredDeny } from '../../../helper/store/decisions.js';
import { covers } from '../../../helper/policy/destinations.js';
import { MAX_PROMPTS_PER_USER, PromptManager } from '../../../helper/core/prompts.js';
import type { PromptChange } from '../../../helper/core/prompts.js';
import type { AllowRequest } from '../../../helper/core/user-rules.js';
import { policyOf, profile } from '../policy/fixtures.js';
import { attempt, FakeClock, FakeProcs, settle } from './fakes.js';

const SHA_NOW = 'b'.repeat(64);
const user = { uid: 1000, admin: false };
const other = { uid: 2000, admin: false };
const root = { uid: 0, admin: true };

let clock: FakeClock;
let policy: Policy;
let events: GateEvent[];
let procs: FakeProcs;
let viewers: Set<number>;
/** pid -> the rule allowing it, and whether it is admitted under that rule already. */
let allowed: Map<number, { key: string; destinations?: Destination[]; admitted?: boolean }>;
let allows: AllowRequest[];
/** pid -> the rule it was admitted under shortly before it exited. */
let recent: Map<number, { key: string }>;
let denies: StoredDeny[];
let seen: Record<string, SeenBinary>;
let inspected: number;
let changes: Array<[PromptChange, string]>;
let failAllow: Error | undefined;
let pm: PromptManager;

function make(): PromptManager {
  const m = new PromptManager({
    clock,
    events: { emit: (e) => events.push(e) },
    policy: () => policy,
    inspect: async (a: DeniedAttempt) => {
      inspected++;
      const exe = a.exe ?? procs.table.get(a.pid ?? -1)?.exe;
      if (!exe) return undefined;
      const live = a.pid !== undefined ? procs.table.get(a.pid) : undefined;
      return {
        ...(live && a.pid !== undefined ? { pid: a.pid, startTime: live.startTime } : {}),
        exe,
        sha256: SHA_NOW,
        cmdline: [exe, '--fetch'],
        parents: [{ pid: 1, exe: '/usr/bin/bash' }],
        program: { name: 'GNU Wget', icon: 'wget' },
        user: 'alice',
      };
    },
    admitIfAllowed: async (pid) => {
      const r = allowed.get(pid);
      if (!r) return undefined;
      const now = !r.admitted;
      r.admitted = true;
      return { rule: { key: r.key, ...(r.destinations ? { destinations: r.destinations } : {}) }, now };
    },
    recentAdmission: (pid) => recent.get(pid),
    decisions: {
      findDeny: (uid, exe, dst) => denies.find((d) => d.uid === uid && d.path === exe && (!d.destinations || d.destinations.some((x) => covers(x, dst)))),
      seen: (exe) => seen[exe],
      recordSeen: async (exe, sha256) => void (seen[exe] = { sha256, since: 'now' }),
      allow: async (req) => {
        if (failAllow) throw failAllow;
        allows.push(req);
        const view: UserDecisionView = { kind: 'allow', id: 'a'.repeat(16), key: `user.${req.uid}:${'a'.repeat(16)}`, uid: req.uid, path: req.path, lifetime: { kind: 'always' }, createdAt: 'x', createdBy: req.by, via: req.via };
        return { view, admitted: req.admit ?? [...procs.table].filter(([, p]) => p.exe === req.path && p.uid === req.uid).map(([pid]) => pid) };
      },
      denyAlways: async (req) => {
        const d: StoredDeny = { id: 'd'.repeat(16), uid: req.uid, path: req.path, ...(req.destinations ? { destinations: req.destinations } : {}), createdAt: 'x', createdBy: req.by, via: 'prompt' };
        denies.push(d);
        return { kind: 'deny', id: d.id, uid: d.uid, path: d.path, lifetime: { kind: 'always' }, createdAt: 'x', createdBy: req.by, via: 'prompt' };
      },
    },
    procs,
    hasViewer: (uid) => viewers.has(uid),
    timeoutMs: 30_000,
    pendingMaxMs: 3_600_000,
    updateThrottleMs: 1_000,
  });
  m.onChange((c, p) => changes.push([c, p.id]));
  return m;
}

beforeEach(() => {
  clock = new FakeClock();
  policy = policyOf([profile()]);
  events = [];
  procs = new FakeProcs().add(4242, 1000, '/usr/bin/wget').add(4343, 1000, '/usr/bin/wget').add(5000, 2000, '/usr/bin/wget');
  viewers = new Set();
  allowed = new Map();
  allows = [];
  recent = new Map();
  denies = [];
  seen = {};
  inspected = 0;
  changes = [];
  failAllow = undefined;
  pm = make();
});

const types = () => events.map((e) => e.type);

describe('deduplication', () => {
  it('1,000 attempts from one program in a burst make one prompt with count 1000', async () => {
    for (let i = 0; i < 1000; i++) pm.attempt(attempt({ dst: { addr: '198.18.0.2', port: 443 + (i % 3), proto: 'tcp' } }));
    await settle();
    const list = pm.list(user);
    expect(list).toHaveLength(1);
    expect(list[0]?.count).toBe(1000);
    expect(list[0]?.destinations.map((d) => [d.port, d.count])).toEqual([[443, 334], [444, 333], [445, 333]]);
    expect(inspected).toBe(1);
    expect(types().filter((t) => t === 'prompt.opened')).toHaveLength(1);
    // More after it opened: still one prompt; subscribers hear of it at most once a second.
    for (let i = 0; i < 500; i++) pm.attempt(attempt({ pid: 4343 }));
    expect(pm.list(user)[0]?.count).toBe(1500);
    expect(pm.list(user)[0]?.pids).toEqual([4242, 4343]);
    expect(changes.filter(([c]) => c === 'updated')).toHaveLength(0);
    clock.advance(1_000);
    expect(changes.filter(([c]) => c === 'updated')).toHaveLength(1);
  });

  it('a burst the log showed only in part counts every drop the kernel counted (repeats)', async () => {
    pm.attempt(attempt());
    pm.attempt(attempt({ repeats: 949 }));
    pm.attempt(attempt({ repeats: 0 }));
    await settle();
    expect(pm.list(user).map((p) => p.count)).toEqual([950]);
  });

  it('one prompt per (user, binary): two binaries, or two users, are two prompts', async () => {
    procs.add(6000, 1000, '/usr/bin/curl');
    pm.attempt(attempt());
    pm.attempt(attempt({ pid: 6000, exe: '/usr/bin/curl' }));
    pm.attempt(attempt({ uid: 2000, pid: 5000 }));
    await settle();
    expect(pm.list(user).map((p) => p.exe).sort()).toEqual(['/usr/bin/curl', '/usr/bin/wget']);
    expect(pm.list(other).map((p) => [p.uid, p.exe])).toEqual([[2000, '/usr/bin/wget']]);
    expect(pm.list(root)).toHaveLength(3);
  });

  it('an attempt that names only a pid folds into the prompt of that process', async () => {
    pm.attempt(attempt());
    await settle();
    pm.attempt(attempt({ exe: undefined }));
    expect(pm.list(user)[0]?.count).toBe(2);
  });

  it('carries what a person needs: program, path, command line, parents, user, destination', async () => {
    pm.attempt(attempt());
    await settle();
    const p = pm.list(user)[0];
    expect(p).toMatchObject({
      uid: 1000,
      user: 'alice',
      exe: '/usr/bin/wget',
      program: { name: 'GNU Wget', icon: 'wget' },
      pids: [4242],
      cmdline: ['/usr/bin/wget', '--fetch'],
      parents: [{ pid: 1, exe: '/usr/bin/bash' }],
      destinations: [{ addr: '198.18.0.2', port: 443, proto: 'tcp', iface: 'wg0', count: 1 }],
      sha256: SHA_NOW,
      warnings: [],
    });
    expect(events.find((e) => e.type === 'prompt.opened')).toMatchObject({ uid: 1000, pid: 4242, exe: '/usr/bin/wget', dst: '198.18.0.2:443/tcp', program: 'GNU Wget' });
  });

  it('warns when the binary differs from the one seen before at that path', async () => {
    seen['/usr/bin/wget'] = { sha256: 'a'.repeat(64), since: '2026-01-01T00:00:00.000Z' };
    pm.attempt(attempt());
    await settle();
    expect(pm.list(user)[0]?.warnings[0]).toMatch(/is not the program seen before at this path: its sha256 was a{16}… \(since 2026-01-01T00:00:00.000Z\) and is now b{16}…/);
    expect(events.find((e) => e.type === 'binary.changed')).toMatchObject({ path: '/usr/bin/wget', previous: 'a'.repeat(64), sha256: SHA_NOW });
    expect(seen['/usr/bin/wget']?.sha256).toBe(SHA_NOW);
  });
});

describe('no prompt', () => {
  it('where the policy is locked (userPrompts deny): the attempt is only recorded', async () => {
    policy = policyOf([profile({ userPrompts: 'deny' })]);
    pm.attempt(attempt());
    await settle();
    expect(pm.list(root)).toEqual([]);
    expect(inspected).toBe(0);
  });

  it('in audit mode, for unattributed packets and unknown uids', async () => {
    pm.attempt(attempt({ mode: 'audit' }));
    pm.attempt(attempt({ pid: undefined, exe: undefined }));
    pm.attempt(attempt({ uid: -1 }));
    await settle();
    expect(pm.list(root)).toEqual([]);
  });

  it('for a process a rule allows already: it is admitted instead', async () => {
    allowed.set(4242, { key: 'user.1000:r1' });
    pm.attempt(attempt());
    await settle();
    expect(pm.list(root)).toEqual([]);
    expect(events).toContainEqual({ type: 'attempt.admitted', uid: 1000, pid: 4242, exe: '/usr/bin/wget', rule: 'user.1000:r1' });
    expect(changes).toEqual([]);
  });

  it('for a packet dropped before its process was admitted (an answer raced a retransmission): no new prompt', async () => {
    pm.attempt(attempt());
    await settle();
    const p = pm.list(user)[0];
    await pm.answer(user, { id: p?.id ?? '', decision: 'allow-always' });
    // The rule is in force and 4242 sits in its cgroup; a SYN logged before that is read now.
    allowed.set(4242, { key: 'user.1000:r1', admitted: true });
    events = [];
    pm.attempt(attempt());
    pm.attempt(attempt({ time: new Date(clock.now() - 5).toISOString() }));
    await settle();
    expect(pm.list(root)).toEqual([]);
    expect(types()).not.toContain('prompt.opened');
    expect(types()).not.toContain('attempt.admitted');
  });

  it('for a process admitted shortly before it exited (its drop read late): no prompt; a process never admitted that exited: asked', async () => {
    procs.add(4545, 1000, '/usr/bin/wget').add(4646, 1000, '/usr/bin/wget');
    recent.set(4545, { key: 'corp:wget' });
    procs.table.delete(4545);
    procs.table.delete(4646);
    pm.attempt(attempt({ pid: 4545 }));
    await settle();
    expect(pm.list(root)).toEqual([]);
    expect(types()).not.toContain('prompt.opened');
    pm.attempt(attempt({ pid: 4646 }));
    await settle();
    expect(pm.list(user).map((p) => p.pids)).toEqual([[4646]]);
  });

  it('for a live process admitted before but not allowed now (it exec\'d something else): asked', async () => {
    recent.set(4242, { key: 'corp:wget' });
    pm.attempt(attempt());
    await settle();
    expect(pm.list(user).map((p) => p.pids)).toEqual([[4242]]);
  });

  it('for a process admitted under a rule whose destinations leave this one out: asked about this one', async () => {
    allowed.set(4242, { key: 'user.1000:r1', destinations: [{ cidr: '10.0.0.0/8' }], admitted: true });
    pm.attempt(attempt());
    await settle();
    const list = pm.list(user);
    expect(list).toHaveLength(1);
    expect(list[0]?.pids).toEqual([4242]);
  });

  it('a policy that becomes locked closes pending prompts', async () => {
    pm.attempt(attempt());
    await settle();
    policy = policyOf([profile({ userPrompts: 'deny' })]);
    pm.policyChanged();
    expect(pm.list(root)).toEqual([]);
    expect(events.at(-1)).toMatchObject({ type: 'prompt.closed', reason: 'locked', count: 1 });
  });
});

describe('timeout', () => {
  it('counts as deny once an app of the user shows the prompt; those processes are not asked again', async () => {
    viewers.add(1000);
    pm.attempt(attempt());
    await settle();
    const p = pm.list(user)[0];
    expect(p?.deadline).toBe(new Date(clock.now() + 30_000).toISOString());
    clock.advance(29_999);
    expect(pm.list(user)).toHaveLength(1);
    clock.advance(1);
    expect(pm.list(user)).toEqual([]);
    expect(events.at(-1)).toMatchObject({ type: 'prompt.closed', id: p?.id, reason: 'timeout' });
    expect(changes.at(-1)).toEqual(['closed', p?.id]);
    // The same process again: folded, no prompt. A new process of the binary: asked.
    pm.attempt(attempt());
    await settle();
    expect(pm.list(user)).toEqual([]);
    pm.attempt(attempt({ pid: 4343 }));
    await settle();
    expect(pm.list(user).map((x) => x.pids)).toEqual([[4343]]);
  });

  it('without an app the prompt waits for tunnelgate answer; the clock starts when an app subscribes', async () => {
    pm.attempt(attempt());
    await settle();
    expect(pm.list(user)[0]?.deadline).toBeUndefined();
    clock.advance(60_000);
    expect(pm.list(user)).toHaveLength(1);
    viewers.add(1000);
    pm.viewerArrived(1000);
    expect(pm.list(user)[0]?.deadline).toBe(new Date(clock.now() + 30_000).toISOString());
    clock.advance(30_000);
    expect(pm.list(user)).toEqual([]);
  });

  it('an unanswered prompt ends after promptPendingMaxSeconds, as a deny', async () => {
    pm.attempt(attempt());
    await settle();
    clock.advance(3_600_000);
    expect(pm.list(user)).toEqual([]);
    expect(events.at(-1)).toMatchObject({ type: 'prompt.closed', reason: 'unanswered' });
  });

  it('a prompt waiting never blocks another program: each is asked on its own', async () => {
    viewers.add(1000);
    procs.add(6000, 1000, '/usr/bin/curl');
    pm.attempt(attempt());
    await settle();
    clock.advance(20_000);
    pm.attempt(attempt({ pid: 6000, exe: '/usr/bin/curl' }));
    await settle();
    expect(pm.list(user)).toHaveLength(2);
    clock.advance(10_000);
    expect(pm.list(user).map((p) => p.exe)).toEqual(['/usr/bin/curl']);
  });
});

describe('answers', () => {
  async function open(a: Partial<DeniedAttempt> = {}): Promise<string> {
    pm.attempt(attempt(a));
    await settle();
    const id = pm.list(root).find((p) => p.exe === (a.exe ?? '/usr/bin/wget'))?.id;
    if (!id) throw new Error('no prompt');
    return id;
  }

  it('allow-always: a hash-pinned rule for the whole tunnel, and the live processes admitted', async () => {
    const id = await open();
    pm.attempt(attempt({ pid: 4343 }));
    const r = await pm.answer(user, { id, decision: 'allow-always' });
    expect(allows).toEqual([{ uid: 1000, path: '/usr/bin/wget', pin: true, sha256: SHA_NOW, by: 1000, via: 'prompt', lifetime: { kind: 'always' } }]);
    expect(r.admitted).toEqual([4242, 4343]);
    expect(pm.list(user)).toEqual([]);
    expect(events.at(-1)).toMatchObject({ type: 'prompt.answered', id, decision: 'allow-always', scope: 'tunnel', by: 1000, count: 2 });
  });

  it('allow-once: only the prompting processes, while they run', async () => {
    const id = await open();
    pm.attempt(attempt({ pid: 4343 }));
    procs.kill(4343);
    await pm.answer(user, { id, decision: 'allow-once' });
    expect(allows[0]?.lifetime).toEqual({ kind: 'process', processes: [{ pid: 4242, startTime: '5242' }] });
    expect(allows[0]?.admit).toEqual([4242]);
  });

  it('allow-once when every process has exited: a clear error, and the prompt stays', async () => {
    const id = await open();
    procs.kill(4242);
    await expect(pm.answer(user, { id, decision: 'allow-once' })).rejects.toThrow(/have exited: nothing to allow once/);
    expect(pm.list(user)).toHaveLength(1);
  });

  it('allow-for: a duration, or until logout; a duration is required, and only there', async () => {
    const id = await open();
    await expect(pm.answer(user, { id, decision: 'allow-for' })).rejects.toThrow(/needs a duration/);
    await expect(pm.answer(user, { id, decision: 'allow-always', seconds: 60 })).rejects.toThrow(/takes no duration/);
    await pm.answer(user, { id, decision: 'allow-for', seconds: 3600 });
    expect(allows[0]?.lifetime).toEqual({ kind: 'until', expires: new Date(clock.now() + 3_600_000).toISOString() });
    const id2 = await open();
    await pm.answer(user, { id: id2, decision: 'allow-for', untilLogout: true });
    expect(allows[1]?.lifetime).toEqual({ kind: 'session' });
  });

  it('scope destination: exactly the destinations the program tried', async () => {
    const id = await open();
    pm.attempt(attempt({ dst: { addr: 'fd00:7467::2', port: 53, proto: 'udp' } }));
    pm.attempt(attempt({ dst: { addr: '198.18.0.9', proto: 'icmp' } }));
    await pm.answer(user, { id, decision: 'allow-always', scope: 'destination' });
    expect(allows[0]?.destinations).toEqual([
      { cidr: '198.18.0.2/32', proto: 'tcp', ports: [443] },
      { cidr: 'fd00:7467::2/128', proto: 'udp', ports: [53] },
      { cidr: '198.18.0.9/32' },
    ]);
  });

  it('scope destination with chosen destinations', async () => {
    const id = await open();
    await pm.answer(user, { id, decision: 'allow-always', destinations: [{ cidr: '198.18.0.0/24', ports: [443], proto: 'tcp' }] });
    expect(allows[0]?.destinations).toEqual([{ cidr: '198.18.0.0/24', ports: [443], proto: 'tcp' }]);
  });

  it('deny for one destination: the same process is asked again only about another destination', async () => {
    const id = await open();
    await pm.answer(user, { id, decision: 'deny', scope: 'destination' });
    expect(allows).toEqual([]);
    pm.attempt(attempt());
    await settle();
    expect(pm.list(user)).toEqual([]);
    pm.attempt(attempt({ dst: { addr: '198.18.0.3', port: 22, proto: 'tcp' } }));
    await settle();
    expect(pm.list(user).map((p) => p.destinations[0]?.addr)).toEqual(['198.18.0.3']);
  });

  it('deny-always: stored, and the binary is not asked about again, by any process', async () => {
    const id = await open();
    await pm.answer(user, { id, decision: 'deny-always' });
    expect(denies).toHaveLength(1);
    pm.attempt(attempt({ pid: 4343 }));
    await settle();
    expect(pm.list(user)).toEqual([]);
  });

  it('only the owner of the process or an admin may answer', async () => {
    const id = await open();
    await expect(pm.answer(other, { id, decision: 'allow-always' })).rejects.toMatchObject({ code: 1003, message: expect.stringMatching(/another user/) });
    expect(pm.list(user)).toHaveLength(1);
    await pm.answer(root, { id, decision: 'allow-always' });
    expect(allows[0]).toMatchObject({ uid: 1000, by: 0 });
  });

  it('an unknown or already answered prompt', async () => {
    const id = await open();
    await pm.answer(user, { id, decision: 'deny' });
    await expect(pm.answer(user, { id, decision: 'deny' })).rejects.toMatchObject({ code: 1004 });
  });

  it('a failed allow leaves the prompt pending, with its clock running again', async () => {
    viewers.add(1000);
    const id = await open();
    failAllow = new Error('disk full');
    await expect(pm.answer(user, { id, decision: 'allow-always' })).rejects.toThrow('disk full');
    expect(pm.list(user)[0]?.id).toBe(id);
    clock.advance(30_000);
    expect(pm.list(user)).toEqual([]);
  });

  it('answering where the policy became locked: refused, and the prompt closes', async () => {
    const id = await open();
    policy = policyOf([profile({ userPrompts: 'deny' })]);
    await expect(pm.answer(user, { id, decision: 'allow-always' })).rejects.toMatchObject({ code: 1003, message: expect.stringMatching(/userPrompts to "deny"/) });
    expect(pm.list(root)).toEqual([]);
  });

  it('a rule added with tunnelgate allow closes the prompt it answers', async () => {
    await open();
    pm.ruleAdded(1000, '/usr/bin/wget', [{ cidr: '198.18.0.0/24', ports: [22] }]);
    expect(pm.list(user)).toHaveLength(1);
    pm.ruleAdded(1000, '/usr/bin/wget', undefined);
    expect(pm.list(user)).toEqual([]);
    expect(events.at(-1)).toMatchObject({ type: 'prompt.closed', reason: 'allowed' });
  });
});

describe('bounds', () => {
  it('a user has at most MAX_PROMPTS_PER_USER prompts; further binaries are only recorded', async () => {
    for (let i = 0; i < MAX_PROMPTS_PER_USER + 5; i++) pm.attempt(attempt({ pid: 10_000 + i, exe: `/opt/bin/tool${i}` }));
    await settle();
    expect(pm.list(user)).toHaveLength(MAX_PROMPTS_PER_USER);
    pm.attempt(attempt({ uid: 2000, pid: 5000 }));
    await settle();
    expect(pm.list(other)).toHaveLength(1);
  });

  it('exited processes are forgotten by the sweep', async () => {
    viewers.add(1000);
    pm.attempt(attempt());
    pm.attempt(attempt({ pid: 4343 }));
    await settle();
    clock.advance(30_000);
    procs.kill(4242);
    await pm.sweep();
    // pid 4242 is free again: a new process there is asked about.
    procs.add(4242, 1000, '/usr/bin/wget', '9999');
    pm.attempt(attempt());
    await settle();
    expect(pm.list(user).map((p) => p.pids)).toEqual([[4242]]);
  });
});
