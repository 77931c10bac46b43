// Issue 10, part 1 and 6, at the kernel: fanotify holds each exec of a marked binary until
// the helper answers (or the deadline, or the group's end), with the new argv/envp read
// while the task waits in execve; unmarked binaries never wait; a binary replaced by a
// rename is noticed and re-marked. And the proc connector filtered in the kernel: thread
// events never reach JavaScript. No network is used; every process started here is ended
// by its PID. Root only (fanotify permission events need CAP_SYS_ADMIN).
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExecHold } from '../../helper/kernel/fanotify.js';
import type { HeldExec } from '../../helper/kernel/fanotify.js';
import { openProcConnector } from '../../helper/kernel/proc-events.js';
import type { ProcEvent } from '../../helper/kernel/netlink.js';
import { envOccurrences, loaderValues } from '../../helper/identity/exec-env.js';
import { buildRawexec } from '../lab/rawexec.js';

const TRUE = realpathSync('/bin/true');
const PYTHON = realpathSync('/usr/bin/python3');
const ADDON = path.resolve('build/Release/tunnelgate_native.node');
let tmp: string;
let held: string; // marked
let other: string; // an identical copy, never marked
let rawexec: string; // execve with exactly the argv/envp given (duplicates kept)
const started: ChildProcess[] = [];
const holds: ExecHold[] = [];

/** Starts `sh -c script` (sh is our child; what it runs is not), collecting its output. */
function sh(script: string): { proc: ChildProcess; done: Promise<{ code: number | null; out: string; err: string }> } {
  const proc = spawn('/bin/sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(proc);
  let out = '';
  let err = '';
  proc.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) => proc.on('close', (code) => resolve({ code, out, err })));
  return { proc, done };
}

/** The first value `subscribe` delivers that satisfies `pred`. */
function first<T>(subscribe: (cb: (x: T) => void) => () => void, pred: (x: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const off = subscribe((x) => {
      if (!pred(x)) return;
      off();
      resolve(x);
    });
  });
}

function open(deadlineMs: number): ExecHold {
  const h = ExecHold.open({ deadlineMs });
  holds.push(h);
  return h;
}

const syscallOf = (tid: number) => readFileSync(`/proc/${tid}/syscall`, 'utf8').split(' ')[0];

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('exec-hold tests need root (fanotify permission events)');
  tmp = mkdtempSync('/tmp/tg-exec-hold-');
  chmodSync(tmp, 0o755);
  held = path.join(tmp, 'held');
  other = path.join(tmp, 'other');
  copyFileSync(TRUE, held);
  copyFileSync(TRUE, other);
  chmodSync(held, 0o755);
  chmodSync(other, 0o755);
  rawexec = buildRawexec(tmp);
});

afterEach(() => {
  for (const h of holds.splice(0)) h.close();
});

afterAll(async () => {
  for (const h of holds.splice(0)) h.close();
  await Promise.all(started.map((p) => new Promise<void>((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  })));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('fanotify exec hold', () => {
  it('holds an exec of a marked binary, reports its pid and new argv/envp (a repeated LD_PRELOAD too), and allow releases it', async () => {
    const hold = open(120_000);
    const mark = hold.mark(held);
    const event = first<HeldExec>((cb) => hold.onExec(cb));
    const run = sh(`${rawexec} ${held} first "second arg" -- LD_PRELOAD=/nonexistent/one.so PATH=/bin LD_PRELOAD=/nonexistent/two.so; echo "rc=$?"`);
    const e = await event;
    // Still inside execve: the kernel waits for our answer.
    expect(syscallOf(e.tid)).toBe('59');
    expect(hold.pending()).toBe(1);
    expect(e.path).toBe(held);
    expect([e.dev, e.ino]).toEqual([mark.dev, mark.ino]);
    expect(e.pid).toBe(e.tid);
    expect(e.ppid).toBe(run.proc.pid);
    expect(e.threads).toBe(1);
    expect(e.syscall).toBe(59);
    expect(e.argv).toEqual([held, 'first', 'second arg']);
    expect(e.envp).toEqual(['LD_PRELOAD=/nonexistent/one.so', 'PATH=/bin', 'LD_PRELOAD=/nonexistent/two.so']);
    expect(envOccurrences(e.envp ?? []).get('LD_PRELOAD')).toEqual(['/nonexistent/one.so', '/nonexistent/two.so']);
    // /proc/PID/exe still names the old image (rawexec) while the exec is held.
    expect(realpathSync(`/proc/${e.pid}/exe`)).toBe(rawexec);
    expect(hold.allow(e.id)).toBe(true);
    const r = await run.done;
    expect(r.out.trim()).toBe('rc=0');
    expect(hold.allow(e.id)).toBe(false); // answered already
    expect(hold.pending()).toBe(0);
  });

  it('deny makes the execve fail with EPERM', async () => {
    const hold = open(120_000);
    hold.mark(held);
    const event = first<HeldExec>((cb) => hold.onExec(cb));
    const run = sh(`${rawexec} ${held} --; echo "rc=$?"`);
    expect(hold.deny((await event).id)).toBe(true);
    const r = await run.done;
    expect(r.err).toMatch(/execve: Operation not permitted/);
    expect(r.out.trim()).toBe('rc=127');
  });

  it('reads the arguments of an exec from a thread other than the leader, and counts the threads', async () => {
    const hold = open(120_000);
    hold.mark(held);
    const event = first<HeldExec>((cb) => hold.onExec(cb));
    const py = `import os, threading, time
threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
t = threading.Thread(target=lambda: os.execve(${JSON.stringify(held)}, ['from-a-thread'], {'LD_PRELOAD': '/nonexistent/t.so'}))
t.start(); t.join()`;
    const run = sh(`${PYTHON} -c '${py.replace(/'/g, "'\\''")}'; echo "rc=$?"`);
    const e = await event;
    expect(e.tid).not.toBe(e.pid); // the exec'ing thread; after the exec it becomes pid e.pid
    expect(e.threads).toBe(3);
    expect(e.argv).toEqual(['from-a-thread']);
    expect(e.envp).toEqual(['LD_PRELOAD=/nonexistent/t.so']);
    hold.allow(e.id);
    expect((await run.done).out.trim()).toBe('rc=0');
  });

  it('the deadline releases an exec nobody answers', async () => {
    const hold = open(200);
    hold.mark(held);
    const event = first<HeldExec>((cb) => hold.onExec(cb));
    const expired = first<{ id: number; tid: number }>((cb) => hold.onExpired(cb));
    const run = sh(`${rawexec} ${held} --; echo "rc=$?"`);
    const e = await event;
    const x = await expired;
    expect(x).toEqual({ id: e.id, tid: e.tid });
    expect((await run.done).out.trim()).toBe('rc=0');
    expect(hold.allow(e.id)).toBe(false); // too late: the reader thread answered
  });

  it('closing the group releases a held exec', async () => {
    const hold = open(120_000);
    hold.mark(held);
    const event = first<HeldExec>((cb) => hold.onExec(cb));
    const run = sh(`${rawexec} ${held} --; echo "rc=$?"`);
    const e = await event;
    expect(syscallOf(e.tid)).toBe('59');
    hold.close();
    expect((await run.done).out.trim()).toBe('rc=0');
  });

  it('a helper that dies releases its held execs (the kernel closes its group)', async () => {
    // Another process holds the group and never answers; we kill it by PID while it holds.
    const script = `
const n = require(${JSON.stringify(ADDON)});
const g = n.fanotifyOpen((e) => { if (e.kind === 'exec') console.log('held ' + e.tid); }, 600000, true);
g.mark(${JSON.stringify(held)});
console.log('ready');`;
    const owner = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    started.push(owner);
    const lines: string[] = [];
    const line = (pred: (l: string) => boolean) => new Promise<string>((resolve) => {
      const check = () => {
        const l = lines.find(pred);
        if (l) resolve(l);
        else owner.stdout?.once('data', check);
      };
      check();
    });
    owner.stdout?.on('data', (b: Buffer) => lines.push(...b.toString().split('\n').filter(Boolean)));
    await line((l) => l === 'ready');
    const run = sh(`${rawexec} ${held} --; echo "rc=$?"`);
    const tid = Number((await line((l) => l.startsWith('held '))).slice(5));
    expect(syscallOf(tid)).toBe('59');
    const gone = new Promise((resolve) => owner.once('exit', resolve));
    owner.kill('SIGKILL');
    await gone;
    expect((await run.done).out.trim()).toBe('rc=0');
  });

  it('without CAP_SYS_ADMIN the group cannot be had, and says why (the helper falls back to the watcher)', () => {
    const script = `try { require(${JSON.stringify(ADDON)}).fanotifyOpen(() => {}, 100, true); console.log('opened'); } catch (e) { console.log(e.message); }`;
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout.trim()).toBe('fanotify_init(FAN_CLASS_CONTENT): Operation not permitted');
  });

  it('execs of unmarked binaries never produce an event (never wait)', async () => {
    const hold = open(120_000);
    hold.mark(held);
    const seen: HeldExec[] = [];
    hold.onExec((e) => {
      seen.push(e);
      hold.allow(e.id);
    });
    const last = first<HeldExec>((cb) => hold.onExec(cb));
    // 20 execs of the unmarked copy, then one of the marked file: events come in order, so
    // when the marked one is reported, any event for the copy would have been seen.
    const run = sh(`for i in $(seq 20); do ${other}; done; ${held}; echo done`);
    await last;
    expect((await run.done).out.trim()).toBe('done');
    expect(seen.map((e) => e.path)).toEqual([held]);
  });

  it('a binary replaced by rename is noticed and re-marked; the new file is held, the old inode too', async () => {
    const hold = open(120_000);
    const before = hold.mark(held);
    const replaced = first<{ path: string; before: { ino: bigint }; after: { ino: bigint } | undefined }>((cb) => hold.onReplaced(cb));
    const next = `${held}.dpkg-new`;
    copyFileSync(TRUE, next);
    chmodSync(next, 0o755);
    renameSync(next, held); // what dpkg does on upgrade
    const r = await replaced;
    expect(r.path).toBe(held);
    expect(r.before.ino).toBe(before.ino);
    expect(r.after?.ino).not.toBe(before.ino);
    expect(hold.marked()).toEqual([{ path: held, dev: before.dev, ino: r.after?.ino, children: false }]);
    const event = first<HeldExec>((cb) => hold.onExec(cb));
    const run = sh(`${held}; echo "rc=$?"`);
    const e = await event;
    expect(e.ino).toBe(r.after?.ino);
    hold.allow(e.id);
    expect((await run.done).out.trim()).toBe('rc=0');
  });

  it('a directory mark holds execs of every file directly in it', async () => {
    const hold = open(120_000);
    const dir = mkdtempSync(path.join(tmp, 'dir-'));
    chmodSync(dir, 0o755);
    hold.mark(dir, { children: true });
    const later = path.join(dir, 'added-later');
    copyFileSync(TRUE, later);
    chmodSync(later, 0o755);
    const event = first<HeldExec>((cb) => hold.onExec(cb));
    const run = sh(`${later}; echo "rc=$?"`);
    const e = await event;
    expect(e.path).toBe(later);
    hold.allow(e.id);
    expect((await run.done).out.trim()).toBe('rc=0');
  });
});

describe('duplicate variables: who reads which occurrence (glibc 2.36 on Debian 12)', () => {
  it('ld.so loads the LAST LD_PRELOAD and EVERY LD_AUDIT; getenv returns the FIRST; dash the LAST', () => {
    const lib = (name: string) => {
      const src = path.join(tmp, `${name}.c`);
      writeFileSync(src, `#include <stdio.h>\n__attribute__((constructor)) static void hi(void) { fprintf(stderr, "loaded ${name}\\n"); }\nunsigned int la_version(unsigned int v) { fprintf(stderr, "audit ${name}\\n"); return v; }\n`);
      const so = path.join(tmp, `${name}.so`);
      execFileSync('gcc', ['-shared', '-fPIC', '-o', so, src]);
      return so;
    };
    const [p1, p2, a1, a2] = [lib('p1'), lib('p2'), lib('a1'), lib('a2')];
    const getenvSrc = path.join(tmp, 'getenv.c');
    writeFileSync(getenvSrc, '#include <stdio.h>\n#include <stdlib.h>\nint main(int c, char **v) { const char *s = getenv(v[1]); printf("%s\\n", s ? s : "(unset)"); return 0; }\n');
    const getenvBin = path.join(tmp, 'getenv');
    execFileSync('gcc', ['-o', getenvBin, getenvSrc]);
    const run = (argv: string[], env: string[]) => {
      const r = spawnSyncText(rawexec, [...argv, '--', ...env]);
      return r;
    };
    const preload = run([getenvBin, 'LD_PRELOAD'], [`LD_PRELOAD=${p1}`, `LD_PRELOAD=${p2}`]);
    expect(preload.stderr).toContain('loaded p2');
    expect(preload.stderr).not.toContain('loaded p1');
    expect(preload.stdout.trim()).toBe(p1); // getenv: the first
    expect(loaderValues(envOccurrences([`LD_PRELOAD=${p1}`, `LD_PRELOAD=${p2}`]), 'LD_PRELOAD')).toEqual([p2]);
    const audit = run([TRUE], [`LD_AUDIT=${a1}`, `LD_AUDIT=${a2}`]);
    expect(audit.stderr).toContain('audit a1');
    expect(audit.stderr).toContain('audit a2');
    expect(loaderValues(envOccurrences([`LD_AUDIT=${a1}`, `LD_AUDIT=${a2}`]), 'LD_AUDIT')).toEqual([a1, a2]);
    const dash = run([realpathSync('/bin/sh'), '-c', 'echo "$V"'], ['V=first', 'V=last']);
    expect(dash.stdout.trim()).toBe('last');
  });
});

function spawnSyncText(file: string, args: string[]): { stdout: string; stderr: string } {
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 20_000 });
  return { stdout: r.stdout, stderr: r.stderr };
}

describe('proc connector filtered in the kernel', () => {
  it('thread events and forks never reach JavaScript; execs and process exits do', async () => {
    const unfiltered = await openProcConnector({ kinds: ['exec', 'exit', 'fork'], filter: 'none' });
    const filtered = await openProcConnector({ kinds: ['exec', 'exit'], leadersOnly: true });
    if (!('events' in unfiltered) || !('events' in filtered)) throw new Error('proc connector unavailable');
    try {
      expect(filtered.events.filtering).toEqual({ eventType: true, bpf: true });
      const all: ProcEvent[] = [];
      const some: ProcEvent[] = [];
      unfiltered.events.onEvent((e) => all.push(e));
      filtered.events.onEvent((e) => some.push(e));
      const py = 'import threading\nts=[threading.Thread(target=lambda: None) for _ in range(5)]\n[t.start() for t in ts]\n[t.join() for t in ts]';
      const run = sh(`exec ${PYTHON} -c '${py}'`);
      const pid = run.proc.pid as number;
      // sh execs python (same pid); wait for the leader's exit in both streams.
      const leaderExit = (e: ProcEvent) => e.kind === 'exit' && e.tgid === pid && e.pid === pid;
      const exits = [first(unfiltered.events.onEvent, leaderExit), first(filtered.events.onEvent, leaderExit)];
      await run.done;
      await Promise.all(exits);
      // A new thread's fork event names the process's parent as parent (its real_parent).
      const mine = (xs: ProcEvent[]) => xs.filter((e) => (e.kind === 'fork' ? e.parentTgid === pid || e.childTgid === pid : e.tgid === pid));
      const threadExits = (xs: ProcEvent[]) => mine(xs).filter((e) => e.kind === 'exit' && e.pid !== e.tgid);
      expect(threadExits(all).length).toBe(5);
      expect(mine(all).filter((e) => e.kind === 'fork' && e.childTgid === pid && e.childPid !== pid).length).toBe(5);
      expect(threadExits(some)).toEqual([]);
      expect(some.filter((e) => e.kind === 'fork')).toEqual([]);
      // sh's own exec (spawn), python's exec, the process's exit
      expect(mine(some).map((e) => e.kind)).toEqual(['exec', 'exec', 'exit']);
    } finally {
      unfiltered.events.close();
      filtered.events.close();
    }
  });

  it('setTgids keeps only the events of the given processes', async () => {
    const c = await openProcConnector({ kinds: ['exec', 'exit'], tgids: [] });
    if (!('events' in c)) throw new Error(c.error);
    try {
      const got: ProcEvent[] = [];
      c.events.onEvent((e) => got.push(e));
      const ev = c.events;
      // A process we watch (a shell waiting on a fifo, so we know its pid before it execs).
      const fifo = path.join(tmp, 'go');
      execFileSync('mkfifo', [fifo]);
      const watched = sh(`read x < ${fifo}; exec ${other}`);
      const pid = watched.proc.pid as number;
      c.events.setTgids([pid]);
      const exited = first(ev.onEvent, (e) => e.kind === 'exit' && e.tgid === pid);
      const unwatched = sh(`${other}; ${other}`);
      await unwatched.done;
      writeFileSync(fifo, 'go\n');
      await watched.done;
      await exited;
      expect(new Set(got.map((e) => (e.kind === 'fork' ? e.parentTgid : e.tgid)))).toEqual(new Set([pid]));
      expect(got.map((e) => e.kind)).toEqual(['exec', 'exit']);
    } finally {
      c.events.close();
    }
  });
});
