// The watcher's cheap first look and its following of admitted processes in the kernel
// filter (issue 10, part 6): pure parts, and the bookkeeping driven by a fake event source.
import { spawn } from 'node:child_process';
import { readlinkSync, realpathSync, statSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import type { Policy } from '../../../common/policy.js';
import type { ProcEvent } from '../../../helper/kernel/netlink.js';
import type { WatchEvents } from '../../../helper/kernel/proc-events.js';
import { holdCovers, ruleNames, Watcher, type WatcherGate } from '../../../helper/admission/watcher.js';
import { HashCache } from '../../../helper/kernel/proc.js';
import { policyOf, profile } from '../policy/fixtures.js';

const policy = (rules: unknown[]): Policy => policyOf([profile({ rules: rules as never })]);

describe('ruleNames: is this path named by any rule at all', () => {
  it('exact paths and globs by prefix; every other path is a no', () => {
    const n = ruleNames(policy([{ id: 'a', binary: { path: '/usr/bin/curl' } }, { id: 'b', binary: { path: '/opt/corp/*' } }, { id: 'c', binary: { snap: 'code' } }]));
    expect(n.mayName('/usr/bin/curl')).toBe(true);
    expect(n.mayName('/opt/corp/tool')).toBe(true);
    expect(n.mayName('/snap/code/12/usr/bin/code')).toBe(true);
    expect(n.mayName('/usr/bin/curl2')).toBe(false);
    expect(n.mayName('/bin/true')).toBe(false);
  });

  it('a package or app-identity rule may name any path: always maybe', () => {
    expect(ruleNames(policy([{ id: 'p', binary: { package: 'curl' } }])).mayName('/bin/true')).toBe(true);
    expect(ruleNames(policy([{ id: 'f', binary: { flatpak: 'org.example.App' } }])).mayName('/usr/bin/x')).toBe(true);
  });

  it('no rule: nothing is named', () => {
    expect(ruleNames(policy([])).mayName('/usr/bin/curl')).toBe(false);
  });
});

describe('holdCovers: may unrelated execs be dropped in the kernel', () => {
  const mark = (path: string, ino = 7n) => ({ path, dev: 1n, ino, children: false });
  const inode = (ino = 7n) => () => ({ dev: 1n, ino });

  it('every allow rule an exact path whose file is the marked inode: covered', () => {
    expect(holdCovers(policy([{ id: 'a', binary: { path: '/usr/bin/curl' } }]), [mark('/usr/bin/curl')], inode())).toBe(true);
    expect(holdCovers(policy([]), [], inode())).toBe(true);
  });

  it('a path not marked, a replaced file (another inode), a file that is gone: not covered', () => {
    const p = policy([{ id: 'a', binary: { path: '/usr/bin/curl' } }]);
    expect(holdCovers(p, [], inode())).toBe(false);
    expect(holdCovers(p, [mark('/usr/bin/curl')], inode(8n))).toBe(false);
    expect(holdCovers(p, [mark('/usr/bin/curl')], () => undefined)).toBe(false);
  });

  it('globs, scripts, packages and app identities are left to the watcher: not covered', () => {
    const marks = [mark('/usr/bin/python3'), { path: '/opt/corp', dev: 1n, ino: 9n, children: true }];
    for (const binary of [{ path: '/opt/corp/*' }, { path: '/usr/bin/python3', script: '/opt/x.py' }, { package: 'curl' }, { flatpak: 'org.example.App' }, { snap: 'code' }, { appimage: 'Tool' }]) {
      expect(holdCovers(policy([{ id: 'r', binary }]), marks, inode()), JSON.stringify(binary)).toBe(false);
    }
  });

  it('deny rules need no mark', () => {
    expect(holdCovers(policy([{ id: 'd', action: 'deny', binary: { path: '/usr/bin/nc' } }]), [], inode())).toBe(true);
  });
});

/** A WatchEvents that records what the watcher asks of the kernel filter. */
function fakeSource() {
  let onEvent: ((e: ProcEvent) => void) | undefined;
  const sets: number[][] = [];
  const allExecs: boolean[] = [];
  const src: WatchEvents = {
    onExec: () => () => undefined,
    onOverrun: () => () => undefined,
    onEvent: (cb) => ((onEvent = cb), () => undefined),
    setWatched: (t) => void sets.push([...t].sort((a, b) => a - b)),
    setAllExecs: (on) => void allExecs.push(on),
    filter: 'kernel',
    allExecs: true,
    close: () => undefined,
  };
  return { src, sets, allExecs, emit: (e: ProcEvent) => onEvent?.(e) };
}

// Pids no process has (above pid_max's default): the watcher's looks find them gone.
const P = 4_000_001;
const C = 4_000_002;

function watcher(covers: boolean) {
  const f = fakeSource();
  const current = policy([{ id: 'a', binary: { path: '/nonexistent/app' } }]);
  const gate: WatcherGate = {
    current,
    cgroupRoot: 'tunnelgate',
    admit: () => Promise.resolve(),
    releasePid: () => Promise.resolve(),
    admitted: () => Promise.resolve(new Map()),
    onPolicyChange: () => () => undefined,
  };
  const w = new Watcher({ gate, events: { emit: () => undefined } as never, hashes: new HashCache(), source: f.src, holdCovers: () => covers });
  return { w, f };
}

describe('Watcher: following admitted processes in the kernel filter', () => {
  it('a followed process: its forked child is followed at once, a thread is not, an exit ends it', async () => {
    const { w, f } = watcher(false);
    await w.start();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    w.track(P);
    expect(f.sets.at(-1)).toEqual([P]);
    f.emit({ kind: 'fork', parentPid: P, parentTgid: P, childPid: C + 5, childTgid: P }); // a thread
    expect(f.sets.at(-1)).toEqual([P]);
    f.emit({ kind: 'fork', parentPid: P, parentTgid: P, childPid: C, childTgid: C });
    expect(f.sets.at(-1)).toEqual([P, C]);
    f.emit({ kind: 'exit', pid: C + 5, tgid: P, exitCode: 0, exitSignal: 17, parentPid: 1, parentTgid: 1 }); // a thread's exit
    expect(w.following).toBe(2);
    f.emit({ kind: 'exit', pid: P, tgid: P, exitCode: 0, exitSignal: 17, parentPid: 1, parentTgid: 1 });
    expect(w.following).toBe(1);
    // The exited pid leaves the kernel filter with its next change, or after a moment.
    vi.advanceTimersByTime(1_000);
    expect(f.sets.at(-1)).toEqual([C]);
    f.emit({ kind: 'exit', pid: C, tgid: C, exitCode: 0, exitSignal: 17, parentPid: 1, parentTgid: 1 });
    w.track(P + 1);
    expect(f.sets.at(-1)).toEqual([P + 1]);
    vi.useRealTimers();
    w.stop();
  });

  it('a fork whose parent is not followed changes nothing', async () => {
    const { w, f } = watcher(false);
    await w.start();
    const n = f.sets.length;
    f.emit({ kind: 'fork', parentPid: P, parentTgid: P, childPid: C, childTgid: C });
    expect(f.sets.length).toBe(n);
    expect(w.following).toBe(0);
    w.stop();
  });

  it('unrelated execs are dropped in the kernel only when the hold covers the policy', async () => {
    const covered = watcher(true);
    await covered.w.start();
    expect(covered.f.allExecs.at(-1)).toBe(false);
    covered.w.stop();
    const open = watcher(false);
    await open.w.start();
    expect(open.f.allExecs.at(-1)).toBe(true);
    open.w.stop();
  });
});

describe('Watcher.adopt: a process the hold admitted by a ticket, before the watcher followed it', () => {
  // A real process of ours whose /proc/PID/exe is sleep's inode; the "admitted" and
  // "caller" files of the ticket are chosen around it.
  const inodeOf = (p: string) => {
    const s = statSync(p, { bigint: true });
    return { dev: s.dev, ino: s.ino };
  };
  async function adoptLooks(admitted: string, caller: string | undefined): Promise<boolean> {
    const { w } = watcher(true);
    const child = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
    try {
      await new Promise((r) => child.once('spawn', r));
      await vi.waitFor(() => expect(readlinkSync(`/proc/${child.pid}/exe`)).toBe(realpathSync('/bin/sleep')));
      const looks = vi.spyOn(w as unknown as { examineNow(pid: number, force: boolean): Promise<void> }, 'examineNow');
      await w.adopt(child.pid as number, 'r', inodeOf(admitted), caller === undefined ? undefined : inodeOf(caller));
      return looks.mock.calls.some(([pid, force]) => pid === child.pid && force);
    } finally {
      child.kill('SIGKILL'); // ours, by pid
    }
  }

  it('it runs the admitted file: its exec is done, it is looked at now', async () => {
    expect(await adoptLooks('/bin/sleep', '/bin/true')).toBe(true);
  });

  it('it runs neither the admitted file nor the program that called execve: it exec\'d again, looked at now (a launcher\'s exec events were dropped)', async () => {
    expect(await adoptLooks('/bin/true', '/usr/bin/env')).toBe(true);
  });

  it('it still runs the program that called execve: its exec is under way, its exec event is still to come', async () => {
    expect(await adoptLooks('/bin/true', '/bin/sleep')).toBe(false);
  });
});
