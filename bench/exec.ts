// Issue 10: what holding execs (fanotify) and filtering the proc connector in the kernel
// cost, each against a baseline taken in the same run.
//   1. Exec delay added for a marked binary: a small C driver forks and execs a copy of
//      /bin/true N times and times each fork+exec+exit+wait (CLOCK_MONOTONIC, in the
//      driver). Baseline: the same for an unmarked copy. Then the marked copy with the
//      group open and JS answering FAN_ALLOW at once, and answering after the checks an
//      admission would do on the event itself (every env occurrence, refused variables,
//      one /proc read).
//   2. Helper-side CPU (process.cpuUsage of this process) per unrelated fork+exec+exit and
//      per thread created and ended, N of each made by a separate driver process:
//      no connector open (the floor), today's proc-events (every event of the machine to
//      JS, an async readlink per exec), the kernel filter (event_type + BPF: execs and
//      process exits only), and the kernel filter keeping only watched processes (setTgids:
//      unrelated processes never reach JS).
//   3. Idle: this process's CPU over S seconds with a hold group and a filtered connector open.
// Figures only, never pass/fail. Root (fanotify). Every process it starts is ended by PID.
//
//   node dist/bench/exec.js [--execs N] [--loops N] [--idle-seconds S]
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, promises as fs, readFileSync, realpathSync, rmSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { refusedInExec } from '../helper/identity/exec-env.js';
import { ExecHold } from '../helper/kernel/fanotify.js';
import type { HeldExec } from '../helper/kernel/fanotify.js';
import { NETLINK_CONNECTOR, parseExecEvent, parseMessages, PROC_CONNECTOR_GROUP, procConnectorListen } from '../helper/kernel/netlink.js';
import { openProcConnector } from '../helper/kernel/proc-events.js';
import { openNetlink } from '../helper/native/index.js';
import { flags } from './lib/args.js';
import { buildDriver } from './lib/driver.js';
import { num, table } from './lib/stats.js';


function quantile(xs: readonly number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

/** Runs the driver asynchronously (the event loop must stay free to answer the holds). */
function drive(driver: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(driver, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.once('error', reject);
    p.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`driver ${args.join(' ')} exited ${code}`))));
  });
}

const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

async function execDelay(driver: string, marked: string, unmarked: string, n: number): Promise<void> {
  console.log(`\n== 1. exec delay added by a hold: ${n} pairs of fork+exec+exit+wait (marked copy of /bin/true, then an unmarked copy), timed in the driver ==`);
  const pairs = async () =>
    (await drive(driver, ['pair', String(n), marked, unmarked])).trim().split('\n').map((l) => l.split(' ').map(Number) as [number, number]);
  await pairs(); // warm the page cache
  const rows: string[][] = [];
  const row = (name: string, ps: Array<[number, number]>) => {
    const diff = ps.map(([m, u]) => m - u);
    const col = (xs: number[]) => [num(quantile(xs, 0.5)), num(quantile(xs, 0.95))];
    rows.push([name, ...col(ps.map((p) => p[0])), ...col(ps.map((p) => p[1])), ...col(diff)]);
  };
  row('no group (baseline: the two copies alike)', await pairs());
  const hold = ExecHold.open({ deadlineMs: 1000 });
  let expired = 0;
  hold.onExpired(() => expired++);
  const heldMs: number[] = [];
  const answer = (e: HeldExec) => {
    hold.allow(e.id);
    heldMs.push(Number(process.hrtime.bigint() - e.readAtNs) / 1e6);
  };
  const helperSide: string[][] = [];
  try {
    hold.mark(marked);
    const off = hold.onExec(answer);
    row('marked held, allow at once', await pairs());
    helperSide.push(['allow at once', num(quantile(heldMs, 0.5)), num(quantile(heldMs, 0.95)), num(Math.max(...heldMs))]);
    off();
    heldMs.length = 0;
    hold.onExec((e) => {
      // What an admission can decide on the event alone, before answering.
      refusedInExec(e.envp ?? []);
      readFileSync(`/proc/${e.pid}/status`, 'latin1');
      answer(e);
    });
    row('marked held, env checks + /proc read, then allow', await pairs());
    helperSide.push(['env checks + /proc read', num(quantile(heldMs, 0.5)), num(quantile(heldMs, 0.95)), num(Math.max(...heldMs))]);
  } finally {
    hold.close();
  }
  console.log(table(['', 'marked p50 ms', 'p95', 'unmarked p50 ms', 'p95', 'paired diff p50 ms', 'p95'], rows));
  console.log('  helper side: from the reader thread reading the event to the answer (JS queue + callback), ms');
  console.log(table(['answer', 'p50', 'p95', 'max'], helperSide));
  console.log(`  deadline expiries: ${expired} (target: p95 added < 5 ms; the reader's argv/envp read comes before it and is in the paired diff)`);
}

/** Today's proc-events.ts (before issue 10): every event to JS, an async readlink of ns/net per exec. */
function openToday(onExec: (pid: number) => void): () => void {
  const sock = openNetlink({ protocol: NETLINK_CONNECTOR, groups: PROC_CONNECTOR_GROUP, initNetns: false, dgram: true }, (b) => {
    for (const m of parseMessages(b)) {
      const pid = parseExecEvent(m);
      if (pid !== undefined) void fs.readlink(`/proc/${pid}/ns/net`).then(() => onExec(pid), () => undefined);
    }
  });
  sock.send(procConnectorListen());
  return () => sock.close();
}

async function connectorCpu(driver: string, target: string, loops: number): Promise<void> {
  console.log(`\n== 2. helper CPU per unrelated event: ${loops} fork+exec+exit of a copy of /bin/true, ${loops} threads, by another process ==`);
  const settle = () => new Promise((r) => setTimeout(r, 300));
  const measure = async (): Promise<[number, number]> => {
    await settle();
    const c0 = cpuUs();
    await drive(driver, ['exec', String(loops), target]);
    await settle(); // let queued events reach JS
    const execUs = (cpuUs() - c0) / loops;
    const c1 = cpuUs();
    await drive(driver, ['threads', String(loops)]);
    await settle();
    return [execUs, (cpuUs() - c1) / loops];
  };
  // The floor: this process with no connector open (the driver's spawn, timers, GC), taken
  // before and after the others; "added" is against their mean.
  const results: Array<{ name: string; us: [number, number]; events?: number }> = [];
  results.push({ name: 'no connector (floor, before)', us: await measure() });
  {
    let seen = 0;
    const close = openToday(() => seen++);
    try {
      results.push({ name: "today's proc-events (all events to JS)", us: await measure(), events: seen });
    } finally {
      close();
    }
  }
  const variants: Array<[string, { kinds: Array<'exec' | 'exit'>; tgids?: number[] }]> = [
    ['kernel filter: exec + leader exit', { kinds: ['exec', 'exit'] }],
    ['kernel filter: exec only', { kinds: ['exec'] }],
    ['kernel filter: watched processes only', { kinds: ['exec', 'exit'], tgids: [] }],
  ];
  for (const [name, opts] of variants) {
    const c = await openProcConnector(opts);
    if (!('events' in c)) throw new Error(c.error);
    let n = 0;
    c.events.onEvent(() => n++);
    c.events.onExec(() => undefined);
    try {
      results.push({ name, us: await measure(), events: n });
    } finally {
      c.events.close();
    }
  }
  results.push({ name: 'no connector (floor, after)', us: await measure() });
  const f0 = results[0]!.us;
  const f1 = results[results.length - 1]!.us;
  const floor = [(f0[0] + f1[0]) / 2, (f0[1] + f1[1]) / 2] as const;
  const rows = results.map((r) => [
    r.name, num(r.us[0]), num(r.us[1]),
    r.events === undefined ? '-' : num(r.us[0] - floor[0]), r.events === undefined ? '-' : num(r.us[1] - floor[1]),
    r.events === undefined ? '-' : String(r.events),
  ]);
  console.log(table(['proc connector', 'µs/exec (raw)', 'µs/thread (raw)', 'µs/exec added', 'µs/thread added', 'events to JS'], rows));
  console.log('  events to JS: every event of the kinds kept that any process on the machine made in the window (shared machine: other work counts too)');
  console.log('  (today, issue 10: ~250 µs per fork+exec+exit and ~75 µs per thread in the whole helper; target < 5 µs and ~0)');
}

async function idle(seconds: number): Promise<void> {
  console.log(`\n== 3. idle: this process over ${seconds} s with a hold group and a filtered connector open ==`);
  const hold = ExecHold.open();
  const c = await openProcConnector({ kinds: ['exec', 'exit'], tgids: [] });
  try {
    await new Promise((r) => setTimeout(r, 500));
    const c0 = cpuUs();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const pct = ((cpuUs() - c0) / 1000 / (performance.now() - t0)) * 100;
    console.log(`  ${num(pct)}% of one core (the Node process itself, timers of this bench included); RSS ${num(process.memoryUsage().rss / 2 ** 20)} MiB`);
  } finally {
    hold.close();
    if ('events' in c) c.events.close();
  }
}

export async function main(argv: string[]): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/exec needs root (fanotify permission events)');
  const f = flags(argv);
  const execs = Number(f.execs ?? 200);
  const loops = Number(f.loops ?? 2000);
  const idleSeconds = Number(f['idle-seconds'] ?? 5);
  console.log(`# exec hold and proc connector filter (issue 10)   kernel ${release()}, ${cpus().length} cpus (${cpus()[0]?.model ?? '?'}), load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const tmp = mkdtempSync('/tmp/tg-bench-exec-');
  try {
    chmodSync(tmp, 0o755);
    const driver = buildDriver(tmp);
    const marked = path.join(tmp, 'marked');
    const unmarked = path.join(tmp, 'unmarked');
    for (const p of [marked, unmarked]) {
      copyFileSync(realpathSync('/bin/true'), p);
      chmodSync(p, 0o755);
    }
    await execDelay(driver, marked, unmarked, execs);
    await connectorCpu(driver, unmarked, loops);
    await idle(idleSeconds);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exitCode = 1;
  });
}
