// Throwaway kernel state for a benchmark (network namespaces, a net_cls mount point,
// temp directories), undone in reverse order by destroy() in a finally, and by a
// synchronous last resort if the process exits or is signalled first. Nothing in the
// host's own network namespace is created or changed.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { OWN_MOUNT_SOURCE } from '../../helper/kernel/netcls.js';
import { deleteNetnsSync, onExitUndo, removeCgroupTree } from '../../test/lab/cleanup.js';

type Undo = { what: string; sync: () => void };

export class Scratch {
  readonly id = randomBytes(3).toString('hex');
  private readonly undo: Undo[] = [];
  /** The safety net of test/lab/cleanup.ts: destroySync() if the process dies first. */
  private readonly disarm = onExitUndo(() => this.destroySync());

  /** A new, empty network namespace `tg-bench-<id>-<n>` (lo up); removed by destroy(). */
  async netns(): Promise<string> {
    const name = `tg-bench-${this.id}-${this.undo.length}`;
    await execa('ip', ['netns', 'add', name]);
    this.undo.push({
      what: `ip netns del ${name}`,
      sync: () => deleteNetnsSync(name),
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
    this.disarm();
  }
}
