// Throwaway kernel state for a benchmark (network namespaces, a net_cls mount point,
// temp directories), undone in reverse order by destroy() in a finally, and by a
// synchronous last resort if the process exits or is signalled first. Nothing in the
// host's own network namespace is created or changed.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { OWN_MOUNT_SOURCE } from '../../helper/kernel/netcls.js';

type Undo = { what: string; sync: () => void };

const live = new Set<Scratch>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let installed = false;

function onExit(): void {
  for (const s of [...live]) s.destroySync();
}
function onSignal(signal: NodeJS.Signals): void {
  onExit();
  uninstall();
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}
function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', onExit);
  for (const s of SIGNALS) process.on(s, onSignal);
}
function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off('exit', onExit);
  for (const s of SIGNALS) process.off(s, onSignal);
}

export class Scratch {
  readonly id = randomBytes(3).toString('hex');
  private readonly undo: Undo[] = [];

  constructor() {
    live.add(this);
    install();
  }

  /** A new, empty network namespace `tg-bench-<id>-<n>` (lo up); removed by destroy(). */
  async netns(): Promise<string> {
    const name = `tg-bench-${this.id}-${this.undo.length}`;
    await execa('ip', ['netns', 'add', name]);
    this.undo.push({
      what: `ip netns del ${name}`,
      sync: () => {
        if (!existsSync(`/var/run/netns/${name}`)) return;
        killNetnsPids(name);
        execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: 10_000 });
      },
    });
    await execa('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** A private temp directory; removed by destroy(). */
  tempDir(): string {
    const dir = mkdtempSync(`/tmp/tg-bench-${this.id}-`);
    this.undo.push({ what: `rm -r ${dir}`, sync: () => rmSync(dir, { recursive: true, force: true }) });
    return dir;
  }

  /**
   * A mount point of the net_cls (cgroup v1) hierarchy that is ours alone: the same
   * hierarchy as the system's if one is mounted (v1 shares it), else a new one. Our own
   * subtree under it, `root`, is removed before the unmount. Mounted with tunnelgate's own
   * source name, so a helper starting meanwhile never borrows it as "the system's" mount.
   */
  async netClsMount(root: string): Promise<string> {
    const dir = path.join(this.tempDir(), 'net_cls');
    execFileSync('mkdir', [dir]);
    await execa('mount', ['-t', 'cgroup', '-o', 'net_cls', OWN_MOUNT_SOURCE, dir]);
    this.undo.push({
      what: `umount ${dir}`,
      sync: () => {
        removeCgroupTree(path.join(dir, root));
        execFileSync('umount', [dir], { stdio: 'ignore', timeout: 10_000 });
      },
    });
    return dir;
  }

  /** A synchronous undo step of the caller's; returns a function that drops it once undone the normal way. */
  add(what: string, sync: () => void): () => void {
    const u: Undo = { what, sync };
    this.undo.push(u);
    return () => {
      const i = this.undo.indexOf(u);
      if (i >= 0) this.undo.splice(i, 1);
    };
  }

  async destroy(): Promise<void> {
    this.destroySync();
  }

  /** Undo everything, newest first; problems are reported, never thrown. */
  destroySync(): void {
    while (this.undo.length) {
      const u = this.undo.pop() as Undo;
      try {
        u.sync();
      } catch (e) {
        console.warn(`bench cleanup: ${u.what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    live.delete(this);
    if (!live.size) uninstall();
  }
}

/** End processes left in a namespace we created (only ours can be there), by PID. */
function killNetnsPids(name: string): void {
  const out = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8', timeout: 5_000 });
  for (const pid of out.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number)) {
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
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

