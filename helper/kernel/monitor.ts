// Long-running kernel monitors (`nft monitor`, `ip monitor link`) as child processes: each
// line they print is parsed into an event. Never a shell, array arguments only; the process
// is ended by its own PID on close(). Used by nft-monitor.ts and links.ts.
import { subscribe } from '../../common/listeners.js';
import { promises as fs } from 'node:fs';
import { execa } from 'execa';
import split2 from 'split2';
import { socketInodes } from './sockets.js';

/** A running monitor whose lines are parsed into events of type E. */
export interface Monitor<E> {
  /** Resolves once the kernel has the monitor subscribed: no later change can be missed (see subscribedIn). */
  readonly ready: Promise<void>;
  /** Called for every event the monitor reports. */
  onEvent(cb: (event: E) => void): () => void;
  /** Called once if the monitor exits by itself (not by close()): changes may have been missed, so the caller must treat its view as stale. */
  onLost(cb: (why: string) => void): () => void;
  close(): Promise<void>;
}

export interface MonitorOptions {
  /** Run inside this network namespace (a path such as /var/run/netns/NAME, entered with nsenter). Default: the caller's. */
  netns?: string;
  /** How long to wait for the subscription before `ready` rejects. Default 10 s. */
  readyTimeoutMs?: number;
}

/**
 * Whether `pid` holds a netlink socket of `protocol` subscribed to `groupMask`, from
 * /proc/PID/net/netlink (columns: sk Eth Pid Groups … Inode; Groups is the first 32 group
 * bits in hex, group N is bit N-1) joined with the pid's socket inodes. Pure over the text.
 */
export function subscribedIn(netlinkTable: string, inodes: ReadonlySet<string>, protocol: number, groupMask: number): boolean {
  for (const line of netlinkTable.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    if (Number(f[1]) !== protocol || !inodes.has(f[9] as string)) continue;
    if ((parseInt(f[3] as string, 16) & groupMask) === groupMask) return true;
  }
  return false;
}

/** What to run and how to read it: `file args`, whose netlink socket of `protocol` joins `groupMask`. */
export interface MonitorCommand<E> {
  file: string;
  args: readonly string[];
  protocol: number;
  groupMask: number;
  /** One printed line to an event, or undefined for a line that is none (called in order, once a line). */
  parse(line: string): E | undefined;
}

/**
 * Start `monitor.file monitor.args` (in `opts.netns` if given). `ready` resolves when the
 * kernel shows its socket of `monitor.protocol` in `monitor.groupMask` (so an event after
 * that cannot be missed), and rejects when the process exits first or the deadline passes.
 * Throws nothing itself.
 */
export function startMonitor<E>(monitor: MonitorCommand<E>, opts: MonitorOptions = {}): Monitor<E> {
  const { file, args, protocol, groupMask, parse } = monitor;
  const [cmd, argv] = opts.netns ? ['nsenter', [`--net=${opts.netns}`, '--', file, ...args]] : [file, [...args]];
  const child = execa(cmd, argv, { buffer: false, reject: false, stdin: 'ignore', stderr: 'pipe', env: { LC_ALL: 'C' }, cleanup: true });
  const events = new Set<(event: E) => void>();
  const exits = new Set<(why: string) => void>();
  let stopping = false;
  let exited = false;
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  child.stdout?.pipe(split2()).on('data', (line: string) => {
    const event = parse(line);
    if (event !== undefined) for (const cb of events) cb(event);
  });
  const exitedP = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exitedP.then(() => {
    exited = true;
    if (!stopping) for (const cb of exits) cb(`${file} exited (${child.exitCode ?? child.signalCode}): ${stderr.trim() || 'no output'}`);
  });
  const pid = child.pid ?? -1;
  const ready = (async () => {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 10_000);
    for (;;) {
      if (exited || pid < 0) throw new Error(`${file} exited before it subscribed: ${stderr.trim() || 'no output'}`);
      const table = await fs.readFile(`/proc/${pid}/net/netlink`, 'utf8').catch(() => '');
      if (table && subscribedIn(table, await socketInodes(pid), protocol, groupMask)) return;
      if (Date.now() > deadline) throw new Error(`${file} did not subscribe to netlink within the deadline`);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  ready.catch(() => undefined);
  return {
    ready,
    onEvent: (cb) => subscribe(events, cb),
    onLost: (cb) => subscribe(exits, cb),
    async close() {
      stopping = true;
      if (!exited) child.kill('SIGTERM');
      await exitedP;
    },
  };
}
