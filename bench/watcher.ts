// The watcher (issue 4): what its hot path costs, how fast a directly started program is
// admitted, and what the helper costs on an idle machine with 1,000 processes.
//   1. Listing processes: ps-list (a named dependency) against reading /proc directly,
//      with 1,000 extra processes on the machine; ratios printed. This chose the hot path
//      (helper/identity/exec-poll.ts): the kernel's last pid from /proc/loadavg, then one
//      readlink per new pid; ps-list never runs there.
//   2. exec -> admitted latency in the lab: many short starts of a whitelisted program (a
//      copy of bash) that takes its own timestamp first thing and then watches its own
//      /proc/self/cgroup until it is in the rule's net_cls cgroup. Both event sources: the
//      proc connector and the polling fallback (TUNNELGATE_WATCH=poll).
//   3. The helper's CPU (utime + stime from /proc) over 10 s with 1,000 idle `sleep`
//      processes of ours on the machine (in the helper's namespace), both sources.
// Targets (issue 4): median < 50 ms and p95 < 150 ms exec -> admitted; helper < 1% of one
// core with 1,000 processes. Figures only, never pass/fail. The sleeps are ended by PID.
//
//   node dist/bench/watcher.js [--starts N] [--idle-seconds S] [--procs N] [--list-reps N]
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import psList from 'ps-list';
import { createLabAndHelper, type LabAndHelper } from '../test/lab/fixture.js';

const BASH = realpathSync('/bin/bash');

function flag(argv: readonly string[], name: string, dflt: number): number {
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return dflt;
  const a = argv[i] as string;
  const v = Number(a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[i + 1]);
  return Number.isFinite(v) && v >= 0 ? v : dflt;
}

function quantile(xs: readonly number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}
const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (all threads), seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Start `n` idle processes (sleep), in a network namespace if given; returns their handles. */
async function startIdle(n: number, netns?: string): Promise<ChildProcess[]> {
  const out: ChildProcess[] = [];
  for (let i = 0; i < n; i++) {
    const p = netns
      ? spawn('nsenter', [`--net=${netns}`, '--', 'sleep', '3600'], { stdio: 'ignore' })
      : spawn('sleep', ['3600'], { stdio: 'ignore' });
    out.push(p);
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 300));
  return out;
}

/** End exactly these processes, by PID (through their handles), and wait for them. */
async function endIdle(ps: ChildProcess[]): Promise<void> {
  await Promise.all(ps.map((p) => new Promise<void>((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  })));
}

// ---- 1. listing processes --------------------------------------------------------------

/** What ps-list returns, read from /proc directly: pid, ppid, name, cmd, uid. */
async function procFull(): Promise<number> {
  let n = 0;
  const names = (await readdir('/proc')).filter((x) => x.charCodeAt(0) >= 48 && x.charCodeAt(0) <= 57);
  await Promise.all(names.map(async (pid) => {
    try {
      const [stat, cmd, status] = await Promise.all([
        readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/cmdline`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8'),
      ]);
      if (stat && status && cmd !== undefined) n++;
    } catch {
      /* gone */
    }
  }));
  return n;
}

/**
 * Calls `read(pid)` for every pid in /proc, synchronously; counts those it returned for (a
 * pid gone meanwhile, or a kernel thread without an exe link, makes it throw: not counted).
 */
function countPidsSync(read: (pid: string) => void): number {
  let n = 0;
  for (const pid of readdirSync('/proc')) {
    const c = pid.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    try {
      read(pid);
      n++;
    } catch {
      /* gone, or a kernel thread */
    }
  }
  return n;
}

/** The same fields, read synchronously (no thread-pool round trips). */
function procFullSync(): number {
  return countPidsSync((pid) => {
    readFileSync(`/proc/${pid}/stat`, 'latin1');
    readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    readFileSync(`/proc/${pid}/status`, 'latin1');
  });
}

/** The watcher's sweep: every pid and its exe link (synchronous, as exec-poll.ts does it). */
function procExeSync(): number {
  return countPidsSync((pid) => readlinkSync(`/proc/${pid}/exe`));
}

async function procExeAsync(): Promise<number> {
  const names = (await readdir('/proc')).filter((x) => x.charCodeAt(0) >= 48 && x.charCodeAt(0) <= 57);
  const r = await Promise.all(names.map((p) => readlink(`/proc/${p}/exe`).then(() => 1, () => 0)));
  return r.reduce<number>((a, b) => a + b, 0);
}

async function timeIt(reps: number, fn: () => unknown): Promise<number[]> {
  await fn(); // warm
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

async function benchListing(procs: number, reps: number): Promise<void> {
  console.log(`\n== 1. listing processes (${procs} extra idle processes of ours on the machine) ==`);
  const idle = await startIdle(procs);
  try {
    const total = readdirSync('/proc').filter((x) => /^\d+$/.test(x)).length;
    const loadFd = readFileSync; // one small read, as a tick does (exec-poll keeps the fd open)
    const rows: Array<[string, number[]]> = [
      ['ps-list (spawns ps 6x)', await timeIt(Math.max(3, Math.round(reps / 4)), () => psList())],
      ['/proc: pid, ppid, name, cmd, uid (async)', await timeIt(reps, procFull)],
      ['/proc: pid, ppid, name, cmd, uid (sync)', await timeIt(reps, procFullSync)],
      ['/proc: readdir + readlink exe (async)', await timeIt(reps, procExeAsync)],
      ['/proc: readdir + readlink exe (sync, the sweep)', await timeIt(reps, procExeSync)],
      ['/proc/loadavg last pid (the idle tick)', await timeIt(reps * 10, () => loadFd('/proc/loadavg', 'latin1'))],
    ];
    const base = quantile(rows[1]?.[1] ?? [], 0.5);
    console.log(`processes in /proc: ${total}; median of each; ratio against the direct /proc read of the same fields`);
    for (const [name, xs] of rows) {
      const med = quantile(xs, 0.5);
      console.log(`  ${name.padEnd(48)} median ${f(med, 3).padStart(9)} ms   p95 ${f(quantile(xs, 0.95), 3).padStart(9)} ms   ratio ${f(med / base, 3).padStart(8)}x`);
    }
    const ps = quantile(rows[0]?.[1] ?? [], 0.5);
    const sweep = quantile(rows[4]?.[1] ?? [], 0.5);
    const sync = quantile(rows[2]?.[1] ?? [], 0.5);
    console.log(`  ps-list / direct /proc, same fields: ${f(ps / base, 1)}x (async), ${f(ps / sync, 1)}x (sync); ps-list / sweep: ${f(ps / sweep, 1)}x`);
    console.log(`  chosen hot path: /proc/loadavg every 30 ms + readlink per new pid; sweep every 5 s (${f((sweep / 5000) * 100, 3)}% of a core)`);
  } finally {
    await endIdle(idle);
  }
  // What a poll tick cannot go below: a Node process that only wakes up on a timer.
  for (const every of [10, 30]) {
    const code = `const c=()=>{const u=process.cpuUsage();return (u.user+u.system)/1e6};setInterval(()=>{},${every});` +
      `setTimeout(()=>{const c0=c(),t0=Date.now();setTimeout(()=>{console.log(((c()-c0)/((Date.now()-t0)/1000)*100).toFixed(3));process.exit(0)},5000)},500)`;
    const pctCore = execFileSync(process.execPath, ['-e', code], { encoding: 'utf8' }).trim();
    console.log(`  a Node process doing nothing but a ${every} ms timer: ${pctCore}% of one core`);
  }
}

// ---- 2 and 3: in the lab, with the real helper ---------------------------------------

const LATENCY_SCRIPT = (fifo: string) => `
t0=$EPOCHREALTIME
exec 9<>${fifo}
while :; do
  while read -r l; do case $l in *net_cls*/*:app) echo "$t0 $EPOCHREALTIME"; exit 0;; esac; done < /proc/self/cgroup
  read -t 0.001 -u 9 _
done`;

async function benchLab(kind: 'proc-connector' | 'poll', starts: number, idleSeconds: number, procs: number): Promise<void> {
  console.log(`\n== 2/3. exec -> admitted, and the helper's CPU: event source ${kind} ==`);
  const prev = process.env.TUNNELGATE_WATCH;
  process.env.TUNNELGATE_WATCH = kind === 'poll' ? 'poll' : 'auto';
  let fx: LabAndHelper | undefined;
  let idle: ChildProcess[] = [];
  try {
    let app = '';
    let fifo = '';
    fx = await createLabAndHelper({
      prepare: ({ tmp, copyBinary }) => {
        app = copyBinary(BASH, 'bin/app');
        fifo = path.join(tmp, 'tick');
        execFileSync('mkfifo', [fifo]);
      },
      profiles: ({ lab }) => ({
        bench: {
          schema: 'tunnelgate/profile@1', id: 'bench', version: 1, mode: 'enforce', interfaces: [lab.wsIface], userPrompts: 'allow',
          rules: [{ id: 'app', binary: { path: app } }],
        },
      }),
    });
    const { lab: l, helper } = fx;
    const source = /watching processes by polling/.test(helper.output()) ? 'polling /proc' : 'proc connector';
    const lat: number[] = [];
    for (let i = 0; i < starts; i++) {
      const r = await l.exec('ws', app, ['-c', LATENCY_SCRIPT(fifo)], { reject: false, timeout: 10_000 });
      const [a, b] = String(r.stdout).trim().split(' ').map(Number);
      if (a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b)) lat.push((b - a) * 1000);
    }
    console.log(`source: ${source}; ${lat.length}/${starts} starts admitted`);
    console.log(`  exec -> admitted: median ${f(quantile(lat, 0.5))} ms, p95 ${f(quantile(lat, 0.95))} ms, max ${f(Math.max(...lat))} ms   (target: median < 50, p95 < 150)`);

    idle = await startIdle(procs, l.netnsPath('ws'));
    await new Promise((r) => setTimeout(r, 1_000));
    const c0 = cpuSeconds(helper.pid);
    const t0 = performance.now();
    const load0 = loadavg()[0] ?? 0;
    await new Promise((r) => setTimeout(r, idleSeconds * 1000));
    const used = cpuSeconds(helper.pid) - c0;
    const wall = (performance.now() - t0) / 1000;
    console.log(`  helper CPU with ${procs} idle processes (+ ${readdirSync('/proc').filter((x) => /^\d+$/.test(x)).length - procs} others) over ${f(wall, 1)} s: ${f((used / wall) * 100, 3)}% of one core (target < 1%); load average ${f(load0)} (the machine is shared)`);
  } finally {
    await endIdle(idle);
    const left = (await fx?.teardown()) ?? [];
    if (left.length) console.warn(`bench/watcher left behind:\n  ${left.join('\n  ')}`);
    if (prev === undefined) delete process.env.TUNNELGATE_WATCH;
    else process.env.TUNNELGATE_WATCH = prev;
  }
}

export async function main(argv: string[]): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/watcher needs root (network namespaces, nftables, cgroups)');
  const long = argv.includes('--long');
  const procs = flag(argv, 'procs', 1000);
  const starts = flag(argv, 'starts', long ? 300 : 100);
  const idleSeconds = flag(argv, 'idle-seconds', 10);
  const reps = flag(argv, 'list-reps', long ? 80 : 20);
  console.log(`# watcher (issue 4)   cpus ${readFileSync('/proc/cpuinfo', 'utf8').split('\nprocessor').length}, load ${loadavg().map((x) => f(x)).join(' ')}`);
  await benchListing(procs, reps);
  await benchLab('proc-connector', starts, idleSeconds, procs);
  await benchLab('poll', starts, idleSeconds, procs);
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exitCode = 1;
  });
}
