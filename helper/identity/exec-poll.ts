// Exec events by polling /proc: the fallback where the proc connector cannot be opened
// (helper/kernel/proc-events.ts). Same interface, coarser: it reports new processes and
// processes whose executable changed.
//
// The hot path is chosen by measurement (bench/watcher.ts, figures in its output):
// - ps-list runs `ps` six times per call: tens of milliseconds for 1,000 processes,
//   hundreds of times a direct read of /proc. It never runs here.
// - Listing /proc (readdir + one readlink per process) is O(processes) per tick.
// - The last pid the kernel handed out is the last field of /proc/loadavg: one small read
//   per tick says whether any process (or thread) was created since the last tick, and
//   which pids are new: only those are looked at (one readlink of /proc/PID/exe each).
//   That is O(new processes), and about nothing on an idle machine.
// - What remains is the timer itself: a Node timer waking every 10 ms cost ~1% of a core
//   on the (shared, loaded) development machine, so the tick is 30 ms: ~15 ms median added
//   latency, well inside the 50 ms, at about a third of that cost.
// Exec without fork (a shell's last command, `exec prog`) keeps the pid: new pids are
// re-read during their first second with a doubling gap (a fork is usually followed by an
// exec at once; about eight reads per process), and a sweep over all of /proc every few
// seconds catches the rest. The proc connector needs
// none of this: it reports every exec as it happens.
import { subscribe } from '../../common/listeners.js';
import { closeSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import type { ExecEvents } from '../kernel/proc-events.js';

/** The last field of /proc/loadavg: `0.00 0.01 0.05 1/123 4567` -> 4567. */
export function parseLastPid(loadavg: string): number | undefined {
  const last = loadavg.trim().split(/\s+/).pop();
  const n = Number(last);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * Pids handed out after `prev` up to `now`, with wrap-around at pid_max (pids start again
 * above 300 after a wrap). Undefined when too many to probe one by one: list /proc instead.
 */
export function newPidRange(prev: number, now: number, pidMax: number, limit = 4096): number[] | undefined {
  if (now === prev) return [];
  const out: number[] = [];
  const push = (from: number, to: number) => {
    for (let p = from; p <= to; p++) {
      out.push(p);
      if (out.length > limit) return false;
    }
    return true;
  };
  if (now > prev) return push(prev + 1, now) ? out : undefined;
  return push(prev + 1, pidMax) && push(1, now) ? out : undefined;
}

export interface PollOptions {
  /** Tick interval; default 30 ms. */
  intervalMs?: number;
  /** How long a new pid's exe is re-read each tick; default 1,000 ms. */
  youngMs?: number;
  /** Full /proc sweep interval; default 5,000 ms. */
  sweepMs?: number;
}

const readExe = (pid: number): string | undefined => {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
};

export class PollingExecEvents implements ExecEvents {
  private readonly execs = new Set<(pid: number) => void>();
  private readonly overruns = new Set<() => void>();
  /** exe of every process seen, to notice an exec that kept the pid. */
  private readonly known = new Map<number, string>();
  /** New pids whose exe is re-read for a while: pid -> [first seen, next re-read]. */
  private readonly young = new Map<number, [number, number]>();
  private readonly fd: number;
  private readonly buf = Buffer.alloc(128);
  private readonly pidMax: number;
  private lastPid: number;
  private lastSweep = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly intervalMs: number;
  private readonly youngMs: number;
  private readonly sweepMs: number;

  constructor(opts: PollOptions = {}) {
    this.intervalMs = opts.intervalMs ?? 30;
    this.youngMs = opts.youngMs ?? 1_000;
    this.sweepMs = opts.sweepMs ?? 5_000;
    this.fd = openSync('/proc/loadavg', 'r');
    const max = Number(readFileText('/proc/sys/kernel/pid_max'));
    this.pidMax = Number.isInteger(max) && max > 0 ? max : 4_194_304;
    this.lastPid = this.readLastPid() ?? 0;
    this.sweep(false);
    this.timer = setInterval(() => this.tick(), this.intervalMs);
  }

  onExec(cb: (pid: number) => void): () => void {
    return subscribe(this.execs, cb);
  }

  onOverrun(cb: () => void): () => void {
    return subscribe(this.overruns, cb);
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    closeSync(this.fd);
  }

  private emit(pid: number): void {
    for (const cb of this.execs) cb(pid);
  }

  private readLastPid(): number | undefined {
    const n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
    return parseLastPid(this.buf.toString('latin1', 0, n));
  }

  /** One tick: new pids since the last one, young pids that exec'd, and now and then a sweep. */
  tick(): void {
    const now = Date.now();
    const last = this.readLastPid();
    if (last !== undefined && last !== this.lastPid) {
      const range = newPidRange(this.lastPid, last, this.pidMax);
      this.lastPid = last;
      if (range === undefined) this.sweep(true);
      else {
        for (const pid of range) {
          const exe = readExe(pid);
          if (exe === undefined) continue;
          this.known.set(pid, exe);
          this.young.set(pid, [now, now + this.intervalMs]);
          this.emit(pid);
        }
      }
    }
    // Re-read young pids with a doubling gap (1, 2, 4 … ticks): an exec right after the fork
    // is seen at once, a late one within twice its age, at a handful of reads per process.
    for (const [pid, [born, next]] of this.young) {
      if (now < next) continue;
      const exe = readExe(pid);
      const age = now - born;
      if (exe === undefined || age > this.youngMs) this.young.delete(pid);
      else this.young.set(pid, [born, now + Math.max(this.intervalMs, age)]);
      if (exe === undefined) {
        this.known.delete(pid);
        continue;
      }
      if (exe !== this.known.get(pid)) {
        this.known.set(pid, exe);
        this.emit(pid);
      }
    }
    if (now - this.lastSweep >= this.sweepMs) this.sweep(true);
  }

  /** Every process in /proc: new ones and changed executables are reported. */
  private sweep(report: boolean): void {
    this.lastSweep = Date.now();
    const seen = new Set<number>();
    for (const name of readdirSync('/proc')) {
      const c = name.charCodeAt(0);
      if (c < 48 || c > 57) continue;
      const pid = Number(name);
      const exe = readExe(pid);
      if (exe === undefined) continue;
      seen.add(pid);
      if (this.known.get(pid) !== exe) {
        this.known.set(pid, exe);
        if (report) this.emit(pid);
      }
    }
    for (const pid of this.known.keys()) if (!seen.has(pid) && !this.young.has(pid)) this.known.delete(pid);
  }
}

function readFileText(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(64);
    return b.toString('latin1', 0, readSync(fd, b, 0, b.length, 0)).trim();
  } finally {
    closeSync(fd);
  }
}
