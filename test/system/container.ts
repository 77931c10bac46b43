// A Debian 12 root booted with systemd-nspawn inside a lab namespace, for the system test.
// The root comes from debian-root.sh (cached debootstrap), is unpacked fresh per run under
// /var/tmp, and is removed by destroy(). Commands enter the booted container's namespaces
// with nsenter (mount, uts, ipc, net, pid) by the PID of its init.
import { execa, type Options, type ResultPromise } from 'execa';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

/** Polls CHECK until it returns a value or DEADLINE_MS passes; throws WHAT on timeout. */
export async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, deadlineMs = 60_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`system test: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The PIDs of the descendants of PID (via /proc/PID/task/T/children). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const t of tasks) {
      let kids: number[] = [];
      try {
        kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      } catch {
        continue;
      }
      for (const k of kids) {
        out.push(k);
        walk(k);
      }
    }
  };
  walk(pid);
  return out;
}

/** PID 1 of the container that nspawn NSPAWN runs: the descendant whose innermost pid is 1. */
function containerInit(nspawnPid: number): number | undefined {
  for (const p of descendants(nspawnPid)) {
    const status = readFileSync(`/proc/${p}/status`, 'utf8');
    const nspid = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
    if (nspid && nspid.length > 1 && nspid.at(-1) === '1') return p;
  }
  return undefined;
}

export class Container {
  private nspawn: ResultPromise<Options> | undefined;
  private init: number | undefined;
  readonly log: string;

  constructor(readonly root: string, readonly netnsPath: string, readonly name: string) {
    this.log = `${root}.console.log`;
  }

  /** Unpacks TARBALL into a new root at DIR. */
  static async unpack(tarball: string, dir: string): Promise<void> {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    await execa('tar', ['-C', dir, '-xf', tarball]);
  }

  /** Runs CMD in the (not booted) root with chroot, as the package install would on a build host. */
  chroot(cmd: string, args: readonly string[], opts: Options = {}) {
    return execa('chroot', [this.root, cmd, ...args], { env: { DEBIAN_FRONTEND: 'noninteractive', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, ...opts });
  }

  /** Boots the root (systemd as PID 1) in the lab namespace; resolves when boot is finished. */
  async boot(): Promise<void> {
    if (this.nspawn) throw new Error('already booted');
    this.nspawn = execa(
      'systemd-nspawn',
      [
        '-D', this.root, '--boot', '--register=no', '--keep-unit', `--machine=${this.name}`,
        `--network-namespace-path=${this.netnsPath}`,
        // wireguard-go (userspace WireGuard) needs the TUN device.
        '--bind=/dev/net/tun',
        // nspawn grants CAP_NET_ADMIN only with a private network; this namespace is the
        // lab's own, and the helper (nft) and wg-quick need it there.
        '--capability=CAP_NET_ADMIN',
        '--console=read-only',
      ],
      // The container sees a pure cgroup v2 machine, as a Debian 12 workstation is (else
      // nspawn bind-mounts the host's v1 hierarchies read-only, net_cls among them).
      { env: { SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1' }, stdin: 'ignore', stdout: { file: this.log, append: true }, stderr: { file: this.log, append: true }, reject: false },
    );
    const pid = this.nspawn.pid;
    if (pid === undefined) throw new Error('systemd-nspawn did not start');
    this.init = await until('the container init', () => (this.nspawn?.exitCode != null ? Promise.reject(new Error(`systemd-nspawn exited: ${this.consoleTail()}`)) : containerInit(pid)));
    // systemd's private socket first (systemctl talks to it), then its own wait for the
    // end of boot ("running" or "degraded").
    const init = this.init;
    await until('systemd\'s control socket in the container', () => (existsSync(`/proc/${init}/root/run/systemd/private`) ? true : undefined), 120_000);
    const r = await this.exec('systemctl', ['is-system-running', '--wait'], { reject: false, timeout: 180_000 });
    if (!/^(running|degraded)$/m.test(String(r.stdout))) throw new Error(`boot did not finish: ${String(r.stdout)} ${String(r.stderr)}\n${this.consoleTail()}`);
  }

  /** Runs CMD inside the booted container. */
  exec<O extends Options = Record<never, never>>(cmd: string, args: readonly string[] = [], opts?: O) {
    if (this.init === undefined) throw new Error('container not booted');
    return execa('nsenter', ['-t', String(this.init), '-m', '-u', '-i', '-n', '-p', '--', cmd, ...args], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, ...opts } as O);
  }

  /** `systemctl reboot` inside; nspawn then exits (133), and this boots the root again. */
  async reboot(beforeBoot: () => Promise<void> = async () => undefined): Promise<void> {
    await this.exec('systemctl', ['reboot'], { reject: false });
    await this.waitExit();
    await beforeBoot();
    await this.boot();
  }

  /** Powers off (if booted) and waits for nspawn to exit. */
  async poweroff(): Promise<void> {
    if (!this.nspawn) return;
    await this.exec('systemctl', ['poweroff'], { reject: false });
    await this.waitExit();
  }

  private async waitExit(): Promise<void> {
    const child = this.nspawn;
    if (!child) return;
    const t = setTimeout(() => child.kill('SIGKILL'), 120_000);
    await child;
    clearTimeout(t);
    this.nspawn = undefined;
    this.init = undefined;
  }

  consoleTail(lines = 40): string {
    return existsSync(this.log) ? readFileSync(this.log, 'utf8').split('\n').slice(-lines).join('\n') : '';
  }

  /** Stops the container (SIGKILL to nspawn, which it started, if poweroff hangs) and removes the root. */
  async destroy(): Promise<void> {
    try {
      if (this.nspawn) {
        const child = this.nspawn;
        const init = this.init;
        await Promise.race([this.poweroff(), new Promise((r) => setTimeout(r, 60_000))]);
        if (child.exitCode === null) {
          // The container's init ends its whole PID namespace; then nspawn itself.
          if (init !== undefined) killQuietly(init);
          child.kill('SIGKILL');
          await child;
        }
      }
    } finally {
      this.nspawn = undefined;
      if (this.root.startsWith('/var/tmp/tunnelgate-system-') && existsSync(this.root)) rmSync(this.root, { recursive: true, force: true });
      rmSync(this.log, { force: true });
    }
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export const rootDirFor = (id: string) => path.join('/var/tmp', `tunnelgate-system-${id}`);
