// The `tunnelgate run` protocol (helper/core/launches.ts) over a fake /proc port, gate and
// tracer: who may launch, and what each exec of the launched process is decided on
// (the verdict a direct start gets), through a launcher's exec chain.
import { describe, expect, it, vi } from 'vitest';
import type { Caller } from '../../../common/api.js';
import { ErrorCode } from '../../../common/api.js';
import type { Policy } from '../../../common/policy.js';
import type { ProcInfo } from '../../../helper/kernel/proc.js';
import { chainNote, launchStep, Launches, MAX_EXECS } from '../../../helper/core/launches.js';
import type { LaunchesDeps, LaunchGate } from '../../../helper/core/launches.js';
import type { ProcPort } from '../../../helper/core/ports.js';
import type { ExecTracer } from '../../../helper/native/index.js';
import { decide } from '../../../helper/policy/decide.js';
import type { GateEvent } from '../../../common/events.js';
import { policyOf, profile } from '../policy/fixtures.js';

const SSH = '/usr/bin/ssh';
const CURL = '/usr/bin/curl';
const DASH = '/usr/bin/dash';
const PY = '/usr/bin/python3.11';
const DEPLOY = '/opt/corp/deploy.py';
const CHROMIUM = '/usr/lib/chromium/chromium';
const ALICE: Caller = { pid: 500, uid: 1000, gid: 1000, admin: false };

interface Image { exe: string; argv: string[] }

/**
 * A fake machine. With `traced`, the process stops at each exec queued by execs() until
 * the launch resumes it (the next queued exec) or detaches / kills it; `exit()` ends it.
 */
function world(policy: Policy | undefined, opts: { traced?: boolean; userns?: boolean; deadlineMs?: number; now?: number } = {}) {
  const procs = new Map<number, ProcInfo>();
  const images = new Map<number, Image>();
  const queued = new Map<number, Array<Image | 'exit'>>();
  const stopped = new Set<number>();
  const calls: string[] = [];
  const port: ProcPort = {
    process: async (pid) => {
      const p = procs.get(pid);
      if (!p) throw new Error('ENOENT');
      return p;
    },
    exe: async (pid) => ({ exe: images.get(pid)?.exe ?? '?', deleted: false }),
    cmdline: async (pid) => images.get(pid)?.argv ?? [],
    startTime: async (pid) => procs.get(pid)?.startTime,
    cgroup: async () => '',
    // What gather reads: the exe, and for python the script it was given.
    identity: async (pid) => {
      const img = images.get(pid);
      const script = img?.exe === PY ? img.argv.find((a) => a.endsWith('.py')) : undefined;
      return { exe: img?.exe ?? '?', exeDeleted: false, uid: procs.get(pid)?.uid ?? -1, ...(script ? { script } : {}) };
    },
    sha256: async () => 'x',
  };
  const step = (pid: number): 'exec' | 'exited' | 'running' => {
    const next = queued.get(pid)?.shift();
    if (next === undefined) return 'running';
    if (next === 'exit') {
      procs.delete(pid);
      return 'exited';
    }
    images.set(pid, next);
    stopped.add(pid);
    return 'exec';
  };
  const tracer: ExecTracer = {
    seize: (pid) => void calls.push(`seize ${pid}`),
    pollExec: (pid) => (!procs.has(pid) ? 'exited' : stopped.has(pid) ? 'running' : step(pid)),
    detach: (pid) => {
      calls.push(`detach ${pid}`);
      stopped.delete(pid);
    },
    resume: (pid) => {
      calls.push(`resume ${pid}`);
      stopped.delete(pid);
    },
  };
  const admitted: Array<[number, string]> = [];
  const gate: LaunchGate = {
    current: policy,
    verdictFor: async (p, pid) => decide(p, await port.identity(pid, p)),
    admit: async (pid, key) => void admitted.push([pid, key]),
  };
  const events: GateEvent[] = [];
  const deps: LaunchesDeps = {
    gate, procs: port, events: { emit: (e) => events.push(e) },
    kill: (pid) => {
      calls.push(`kill ${pid}`);
      procs.delete(pid);
    },
    inInitialUserns: async () => opts.userns ?? true,
    launcherDeadlineMs: opts.deadlineMs ?? 5_000,
    execDeadlineMs: opts.deadlineMs ?? 5_000,
    ...(opts.now !== undefined ? { now: () => opts.now as number } : {}),
    ...(opts.traced ? { tracer } : {}),
  };
  const launches = new Launches(deps);
  const stub = (pid: number, over: Partial<ProcInfo> = {}) => {
    procs.set(pid, { pid, ppid: ALICE.pid, uid: ALICE.uid, euid: ALICE.uid, startTime: '77', exe: '/usr/bin/node', exeDeleted: false, ...over });
    images.set(pid, { exe: DASH, argv: ['/bin/sh', '-c', 'stub'] });
  };
  /** Without a tracer: the process runs this image now. */
  const exec = (pid: number, exe: string, argv: string[] = [exe]) => images.set(pid, { exe, argv });
  /** With a tracer: these execs happen in order, each stopping the process until it is resumed. */
  const execs = (pid: number, ...xs: Array<Image | 'exit'>) => queued.set(pid, xs);
  return { launches, stub, exec, execs, admitted, events, calls };
}

const rules = (...rs: Array<{ id: string; binary: Record<string, string> }>) => policyOf([profile({ rules: rs })]);
const allowSsh = () => rules({ id: 'ssh', binary: { path: SSH } });
const code = (p: Promise<unknown>) => p.then(() => 'resolved', (e: { code?: number }) => e.code);
const message = (p: Promise<unknown>) => p.then(() => 'resolved', (e: Error) => e.message);

describe('launchStep (pure)', () => {
  const no = { allow: false as const, reason: 'no rule allows X' };
  it('admits what a rule allows, follows a launcher, refuses anything else', () => {
    const policy = allowSsh();
    const rule = policy.rules[0] as Policy['rules'][number];
    expect(launchStep({ allow: true, rule, reason: 'ok' }, DASH, 1)).toEqual({ kind: 'admit', rule: rule.key });
    expect(launchStep(no, DASH, 1)).toEqual({ kind: 'follow' });
    expect(launchStep(no, '/usr/bin/env', 2)).toEqual({ kind: 'follow' });
    expect(launchStep(no, CURL, 1)).toEqual({ kind: 'refuse', reason: 'no rule allows X' });
    expect(launchStep(no, PY, 1)).toEqual({ kind: 'refuse', reason: 'no rule allows X' });
    expect(launchStep(no, DASH, MAX_EXECS)).toMatchObject({ kind: 'refuse', reason: expect.stringMatching(/at most/) });
  });

  it('names the chain only when there was one', () => {
    expect(chainNote([CURL])).toBe('');
    expect(chainNote([`${DASH} /usr/bin/chromium`, CHROMIUM])).toBe(` (exec chain: ${DASH} /usr/bin/chromium → ${CHROMIUM})`);
  });
});

describe('Launches, held by ptrace', () => {
  it('admits the program the stub execs, at that exec, and lets it go', async () => {
    const w = world(allowSsh(), { traced: true });
    w.stub(901);
    w.execs(901, { exe: SSH, argv: [SSH, 'host'] });
    const { launchId } = await w.launches.begin(ALICE, { pid: 901, path: SSH });
    expect(await w.launches.confirm(ALICE, launchId)).toEqual({ rule: 'corp-base:ssh', exe: SSH, chain: [SSH] });
    expect(w.admitted).toEqual([[901, 'corp-base:ssh']]);
    expect(w.calls).toEqual(['seize 901', 'detach 901']);
    expect(w.events.map((e) => e.type)).toEqual(['launch.admitted']);
  });

  it('a script rule: python3 with the named script is admitted; another script is refused before it runs (9.6)', async () => {
    const policy = rules({ id: 'deploy', binary: { path: PY, script: DEPLOY } });
    const w = world(policy, { traced: true });
    w.stub(902);
    w.execs(902, { exe: PY, argv: ['/usr/bin/python3', '-I', DEPLOY] });
    const a = await w.launches.begin(ALICE, { pid: 902, path: '/usr/bin/python3' });
    expect(await w.launches.confirm(ALICE, a.launchId)).toMatchObject({ rule: 'corp-base:deploy', exe: PY });
    w.stub(903);
    w.execs(903, { exe: PY, argv: ['/usr/bin/python3', '-I', '/home/u/other.py'] });
    const b = await w.launches.begin(ALICE, { pid: 903, path: '/usr/bin/python3' });
    expect(await message(w.launches.confirm(ALICE, b.launchId))).toBe(`${PY} may not use the tunnel: no rule allows ${PY}`);
    expect(w.admitted).toEqual([[902, 'corp-base:deploy']]);
    expect(w.calls).toContain('kill 903');
  });

  it('follows a wrapper script to the program it execs; the wrapper itself is never admitted (10.5)', async () => {
    const w = world(rules({ id: 'chromium', binary: { path: CHROMIUM } }), { traced: true });
    w.stub(904);
    w.execs(904, { exe: DASH, argv: ['/bin/sh', '/usr/bin/chromium', '--headless'] }, { exe: CHROMIUM, argv: [CHROMIUM, '--headless'] });
    const { launchId } = await w.launches.begin(ALICE, { pid: 904, path: '/usr/bin/chromium' });
    expect(await w.launches.confirm(ALICE, launchId)).toEqual({ rule: 'corp-base:chromium', exe: CHROMIUM, chain: [`${DASH} /usr/bin/chromium`, CHROMIUM] });
    expect(w.admitted).toEqual([[904, 'corp-base:chromium']]);
    expect(w.calls).toEqual(['seize 904', 'resume 904', 'detach 904']);
  });

  it('env and a shell in between are followed too (#!/usr/bin/env sh)', async () => {
    const w = world(allowSsh(), { traced: true });
    w.stub(905);
    w.execs(905, { exe: '/usr/bin/env', argv: ['/usr/bin/env', 'sh', '/opt/w'] }, { exe: DASH, argv: ['sh', '/opt/w'] }, { exe: SSH, argv: [SSH] });
    const { launchId } = await w.launches.begin(ALICE, { pid: 905, path: '/opt/w' });
    expect((await w.launches.confirm(ALICE, launchId)).chain).toEqual(['/usr/bin/env', `${DASH} /opt/w`, SSH]);
  });

  it('a wrapper that execs a program no rule names: refused with the chain, killed where it stands', async () => {
    const w = world(allowSsh(), { traced: true });
    w.stub(906);
    w.execs(906, { exe: DASH, argv: ['/bin/sh', '/opt/w'] }, { exe: CURL, argv: [CURL] });
    const { launchId } = await w.launches.begin(ALICE, { pid: 906, path: '/opt/w' });
    const p = w.launches.confirm(ALICE, launchId);
    expect(await message(p)).toBe(`${CURL} may not use the tunnel: no rule allows ${CURL} (exec chain: ${DASH} /opt/w → ${CURL})`);
    expect(await code(w.launches.confirm(ALICE, launchId))).toBe(ErrorCode.NotFound);
    expect(w.admitted).toEqual([]);
    expect(w.calls).toEqual(['seize 906', 'resume 906', 'kill 906']);
    expect(w.events).toMatchObject([{ type: 'launch.refused', pid: 906, path: CURL }]);
  });

  it('a wrapper that exits without an exec: NotAllowed, naming it; a stub that exits first: NotFound', async () => {
    const w = world(allowSsh(), { traced: true });
    w.stub(907);
    w.execs(907, { exe: DASH, argv: ['/bin/sh', '/opt/w'] }, 'exit');
    const a = await w.launches.begin(ALICE, { pid: 907, path: '/opt/w' });
    const p = w.launches.confirm(ALICE, a.launchId);
    expect(await code(p)).toBe(ErrorCode.NotAllowed);
    expect(await message(p)).toBe(`${DASH} /opt/w exited without starting a program a rule allows (exec chain: ${DASH} /opt/w → (exit))`);
    expect(w.calls).not.toContain('kill 907');
    expect(w.events).toMatchObject([{ type: 'launch.refused', pid: 907, path: DASH }]);
    w.stub(908);
    w.execs(908, 'exit');
    const b = await w.launches.begin(ALICE, { pid: 908, path: SSH });
    expect(await code(w.launches.confirm(ALICE, b.launchId))).toBe(ErrorCode.NotFound);
  });

  it('a wrapper that does not exec within the deadline is stopped', async () => {
    const w = world(allowSsh(), { traced: true, deadlineMs: 30 });
    w.stub(909);
    w.execs(909, { exe: DASH, argv: ['/bin/sh', '/opt/w'] });
    const { launchId } = await w.launches.begin(ALICE, { pid: 909, path: '/opt/w' });
    expect(await message(w.launches.confirm(ALICE, launchId))).toMatch(/^\/usr\/bin\/dash \/opt\/w did not start another program within 0\.03 s; it was stopped/);
    expect(w.calls.at(-1)).toBe('kill 909');
  });

  it('a stub never confirmed is ended, not left held', async () => {
    const w = world(allowSsh(), { traced: true, deadlineMs: 10 });
    w.stub(912);
    await w.launches.begin(ALICE, { pid: 912, path: SSH });
    await vi.waitFor(() => expect(w.calls).toEqual(['seize 912', 'kill 912']));
  });

  it(`follows at most ${MAX_EXECS} execs`, async () => {
    const w = world(allowSsh(), { traced: true });
    w.stub(910);
    w.execs(910, ...Array.from({ length: MAX_EXECS + 1 }, () => ({ exe: DASH, argv: ['/bin/sh', '-c', 'exec sh'] })));
    const { launchId } = await w.launches.begin(ALICE, { pid: 910, path: DASH });
    expect(await message(w.launches.confirm(ALICE, launchId))).toMatch(/follows a launcher's execs 8 deep at most \(exec chain: /);
    expect(w.calls.filter((c) => c.startsWith('resume'))).toHaveLength(MAX_EXECS - 1);
  });

  it('decides on the rules in force: a rule past its expiry admits nothing', async () => {
    // Merged on 2026-11-22 with a rule until the 23rd; decided on the 24th, before any reload.
    const expired = policyOf([profile()], [{ id: 'u1', uid: ALICE.uid, binary: { path: SSH }, expires: '2026-11-23T00:00:00Z' }]);
    expect(expired.rules).toHaveLength(1);
    const w = world(expired, { traced: true, now: Date.parse('2026-11-24T00:00:00Z') });
    w.stub(911);
    w.execs(911, { exe: SSH, argv: [SSH] });
    const { launchId } = await w.launches.begin(ALICE, { pid: 911, path: SSH });
    expect(await code(w.launches.confirm(ALICE, launchId))).toBe(ErrorCode.NotAllowed);
  });
});

describe('Launches, who may launch', () => {
  it('refuses another user\'s process, a process that is not the caller\'s child, a missing one; begin decides nothing', async () => {
    const w = world(allowSsh());
    w.stub(902);
    expect(await code(w.launches.begin(ALICE, { pid: 902, path: '/usr/bin/curl' }))).toBe('resolved');
    w.stub(903, { uid: 1001, euid: 1001 });
    expect(await code(w.launches.begin(ALICE, { pid: 903, path: SSH }))).toBe(ErrorCode.Forbidden);
    w.stub(904, { ppid: 1 });
    expect(await code(w.launches.begin(ALICE, { pid: 904, path: SSH }))).toBe(ErrorCode.Forbidden);
    expect(await code(w.launches.begin(ALICE, { pid: 999, path: SSH }))).toBe(ErrorCode.NotFound);
    expect(w.events).toEqual([]);
  });

  it('no policy yet: Internal', async () => {
    const w = world(undefined);
    w.stub(906);
    expect(await code(w.launches.begin(ALICE, { pid: 906, path: SSH }))).toBe(ErrorCode.Internal);
  });
});

describe('Launches, polled (no ptrace)', () => {
  it('admits the program the stub execs; a stub that execs another program than it named is not admitted', async () => {
    const w = world(allowSsh());
    w.stub(901);
    const a = await w.launches.begin(ALICE, { pid: 901, path: SSH });
    w.exec(901, SSH);
    expect(await w.launches.confirm(ALICE, a.launchId)).toEqual({ rule: 'corp-base:ssh', exe: SSH, chain: [SSH] });
    w.stub(905);
    const b = await w.launches.begin(ALICE, { pid: 905, path: SSH });
    w.exec(905, CURL);
    expect(await code(w.launches.confirm(ALICE, b.launchId))).toBe(ErrorCode.NotAllowed);
    expect(w.admitted).toEqual([[901, 'corp-base:ssh']]);
    expect(await code(w.launches.confirm(ALICE, b.launchId))).toBe(ErrorCode.NotFound);
    expect(w.calls).toEqual([]); // nothing held, nothing killed: the CLI ends its child
  });

  it('a process in a user namespace of its own is not admitted without ptrace (its exe can be re-pointed)', async () => {
    const w = world(allowSsh(), { userns: false });
    w.stub(907);
    const { launchId } = await w.launches.begin(ALICE, { pid: 907, path: SSH });
    w.exec(907, SSH);
    expect(await message(w.launches.confirm(ALICE, launchId))).toMatch(/user namespace of its own/);
    expect(w.admitted).toEqual([]);
  });
});
