// Teardown primitives shared by the lab (lab.ts), the integration-test fixture
// (fixture.ts) and the benchmarks' scratch state (bench/lib/scratch.ts):
//  - one safety net: synchronous undo steps run when the process exits or is signalled
//    with kernel state still up (an `afterAll`/`finally` that never ran);
//  - ending the processes left in a network namespace we created, and deleting it;
//  - removing a cgroup subtree we created, deepest first;
//  - finding what a test left behind (namespaces, cgroups, processes) afterwards.
// Everything here acts only on names and PIDs the caller created; nothing walks the
// host's state looking for "empty" or "stale" things to remove.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import path from 'node:path';

export const NETNS_DIR = '/var/run/netns';

// ---------------------------------------------------------------------------------------
// The safety net

type SyncUndo = () => void;

const pending = new Set<SyncUndo>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let installed = false;

function runPending(): void {
  for (const undo of [...pending]) {
    pending.delete(undo);
    try {
      undo();
    } catch (err) {
      console.warn(`teardown on exit: ${errMessage(err)}`);
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runPending();
  uninstall();
  // Our listener replaced Node's default "die on this signal"; restore it unless someone
  // else handles the signal.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runPending);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off('exit', runPending);
  for (const s of SIGNALS) process.off(s, onSignal);
}

/**
 * Run `undo` (synchronous, best effort, must not throw) if this process exits or gets
 * SIGINT/SIGTERM/SIGHUP before the returned `disarm()` is called. Steps run newest last,
 * in registration order. Call `disarm()` once the orderly teardown has run.
 */
export function onExitUndo(undo: SyncUndo): () => void {
  pending.add(undo);
  install();
  return () => {
    pending.delete(undo);
    if (pending.size === 0) uninstall();
  };
}

// ---------------------------------------------------------------------------------------
// Namespaces, processes, cgroups

export function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** PIDs in a `ip netns pids` text, without this process. */
export function parsePids(text: string): number[] {
  return text
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

/** PIDs of processes in the named network namespace (`ip netns pids`); [] if it is gone. */
export function netnsPidsSync(ns: string): number[] {
  if (!existsSync(`${NETNS_DIR}/${ns}`)) return [];
  try {
    return parsePids(execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'ignore'] }));
  } catch {
    return [];
  }
}

/** Signal each PID; a PID already gone is skipped. */
export function signalPids(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      /* gone */
    }
  }
}

/**
 * Last resort for a namespace this process created: SIGKILL what is still in it (only
 * processes we started can be there), then `ip netns del`. Synchronous, never throws.
 */
export function deleteNetnsSync(ns: string): void {
  if (!existsSync(`${NETNS_DIR}/${ns}`)) return;
  signalPids(netnsPidsSync(ns), 'SIGKILL');
  try {
    execFileSync('ip', ['netns', 'del', ns], { timeout: 10_000, stdio: 'ignore' });
  } catch {
    /* reported by whoever looks for leftovers */
  }
}

/** `comm` of a PID, or '?' once it is gone. */
export function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** rmdir a cgroup subtree, deepest first (cgroup directories are removed with rmdir only). */
export function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir)) {
    const p = path.join(dir, e);
    if (statSync(p).isDirectory()) removeCgroupTree(p);
  }
  rmdirSync(dir);
}

/**
 * Top-level entries of the machine's net_cls (cgroup v1) hierarchy whose name starts with
 * `prefix`. The hierarchy is one per machine and outlives its mounts, so it is looked at
 * through a mount of its own in a private mount namespace (`unshare -m`): the host's
 * mounts are not changed. [] when net_cls cannot be mounted at all.
 */
export function netClsEntries(prefix: string): string[] {
  try {
    const out = execFileSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t cgroup -o net_cls tunnelgate-check /mnt && ls -1 /mnt'], {
      encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out.split('\n').filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
}

/** The inode of a network namespace file (`/var/run/netns/NAME`), to recognise its processes later. */
export function netnsInode(ns: string): number | undefined {
  try {
    return statSync(`${NETNS_DIR}/${ns}`).ino;
  } catch {
    return undefined;
  }
}

/** PIDs of processes whose network namespace has one of these inodes (from /proc/PID/ns/net). */
/**
 * The processes still in these network namespaces once each has had up to `ms` to end by
 * itself (checked every 50 ms). For short-lived children of a helper the test stopped (an
 * `nft -f` that a kill -9 left to finish its transaction): they are not the test's to kill,
 * and on a loaded machine they take a while to end. Nothing is signalled here.
 */
export async function pidsLeftInNetns(inodes: ReadonlySet<number>, ms = 15_000): Promise<number[]> {
  const until = Date.now() + ms;
  let pids = pidsInNetns(inodes);
  while (pids.length && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    pids = pidsInNetns(inodes);
  }
  return pids;
}

export function pidsInNetns(inodes: ReadonlySet<number>): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (inodes.has(statSync(`/proc/${entry}/ns/net`).ino)) found.push(Number(entry));
    } catch {
      /* exited meanwhile, or a kernel thread */
    }
  }
  return found.filter((pid) => pid !== process.pid);
}
