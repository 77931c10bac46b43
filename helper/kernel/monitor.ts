// Long-running kernel monitors (`nft monitor`, `ip monitor link`) as child processes: each
// line they print is an event. Never a shell, array arguments only; the process is ended
// by its own PID on stop(). Used by nft-monitor.ts and links.ts.
import { promises as fs } from 'node:fs';
import { execa } from 'execa';
import split2 from 'split2';
import { socketInodes } from './sockets.js';

export interface MonitorProcess {
  readonly pid: number;
  /** Resolves once the process's netlink socket has joined the multicast group (see waitSubscribed). */
  readonly ready: Promise<void>;
  /** Called for every line the monitor prints. */
  onLine(cb: (line: string) => void): () => void;
  /** Called once if the monitor exits by itself (not by stop()): the caller must treat its view as stale. */
  onExit(cb: (why: string) => void): () => void;
  stop(): Promise<void>;
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

/**
 * Start `file args` as a monitor. `ready` resolves when the kernel shows its socket of
 * `protocol` in `groupMask` (so an event after that cannot be missed), and rejects when the
 * process exits first or the deadline passes. Throws nothing itself.
 */
export function startMonitor(file: string, args: readonly string[], protocol: number, groupMask: number, opts: MonitorOptions = {}): MonitorProcess {
  const [cmd, argv] = opts.netns ? ['nsenter', [`--net=${opts.netns}`, '--', file, ...args]] : [file, [...args]];
  const child = execa(cmd, argv, { buffer: false, reject: false, stdin: 'ignore', stderr: 'pipe', env: { LC_ALL: 'C' }, cleanup: true });
  const lines = new Set<(line: string) => void>();
  const exits = new Set<(why: string) => void>();
  let stopping = false;
  let exited = false;
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  child.stdout?.pipe(split2()).on('data', (line: string) => {
    for (const cb of lines) cb(line);
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
    pid,
    ready,
    onLine(cb) {
      lines.add(cb);
      return () => lines.delete(cb);
    },
    onExit(cb) {
      exits.add(cb);
      return () => exits.delete(cb);
    },
    async stop() {
      stopping = true;
      if (!exited) child.kill('SIGTERM');
      await exitedP;
    },
  };
}
