// Runs the real helper inside a lab's workstation namespace, with its own etc, state
// and run directories and its own cgroup subtree, and the real CLI against it.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Result, ResultPromise } from 'execa';
import { HELPER_NODE_OPTIONS } from '../../helper/config.js';
import { chooseNetClsMount, findNetClsMounts } from '../../helper/kernel/netcls.js';
import { onExitUndo, removeCgroupTree } from './cleanup.js';
import type { Lab } from './lab.js';

export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

/** The built CLI (`npm run build`); tests run the same file users run. */
export const CLI = path.join(packageRoot(), 'dist', 'helper', 'main.js');
/** The built API client module (`HelperClient`), for scripts that talk to the helper directly. */
export const CLIENT = path.join(packageRoot(), 'dist', 'common', 'node', 'client.js');

export interface CliOptions {
  /** Run as this uid/gid (setpriv), e.g. an unprivileged user made up by the test. */
  uid?: number;
  timeout?: number;
  input?: string;
}

export interface HelperHandle {
  readonly dir: string;
  readonly etc: string;
  readonly state: string;
  readonly run: string;
  readonly cgroupRoot: string;
  readonly pid: number;
  writeProfile(name: string, profile: unknown): string;
  /** `tunnelgate ARGS…` in the workstation namespace; never rejects. */
  cli(args: readonly string[], opts?: CliOptions): Promise<Result>;
  /** The helper's output so far (its event lines). */
  output(): string;
  /** Send a signal to the helper process (by its PID) and wait for it to end. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Start a helper again on the same directories (after kill). */
  restart(): Promise<void>;
  /** Stop the helper, remove its table and cgroups, and its directories. */
  cleanup(): Promise<void>;
}

export interface StartOptions {
  /** Profiles written to etc/profiles.d before the helper starts (name -> JSON value or text). */
  profiles?: Record<string, unknown>;
  /** etc/helper.json, written before the helper starts (it is read at start-up). */
  helperJson?: Record<string, unknown>;
  /** Each chunk of the helper's output, as it comes. */
  log?: (line: string) => void;
}

export async function startHelper(lab: Lab, opts: StartOptions = {}): Promise<HelperHandle> {
  const dir = mkdtempSync('/tmp/tg-helper-');
  chmodSync(dir, 0o755);
  const etc = path.join(dir, 'etc');
  const state = path.join(dir, 'state');
  const run = path.join(dir, 'run');
  mkdirSync(path.join(etc, 'profiles.d'), { recursive: true });
  const cgroupRoot = `tg-test-${lab.id}-${randomBytes(2).toString('hex')}`;
  const flags = ['--etc', etc, '--state', state, '--run', run, '--cgroup-root', cgroupRoot];

  const writeProfile = (name: string, profile: unknown) => {
    const file = path.join(etc, 'profiles.d', name.endsWith('.json') ? name : `${name}.json`);
    // Written aside and renamed, as config management does: the helper never reads half a file.
    const tmp = path.join(dir, `.${path.basename(file)}.tmp`);
    writeFileSync(tmp, typeof profile === 'string' ? profile : `${JSON.stringify(profile, null, 2)}\n`);
    renameSync(tmp, file);
    return file;
  };
  for (const [name, p] of Object.entries(opts.profiles ?? {})) writeProfile(name, p);
  if (opts.helperJson) writeFileSync(path.join(etc, 'helper.json'), JSON.stringify(opts.helperJson));

  let out = '';
  let proc: ResultPromise<{ all: true; reject: false }> | undefined;

  const cli = async (args: readonly string[], o: CliOptions = {}): Promise<Result> => {
    const base = ['node', CLI, ...args];
    const cmd = o.uid === undefined ? base : ['setpriv', `--reuid=${o.uid}`, `--regid=${o.uid}`, '--clear-groups', ...base];
    const withRun = args[0] === 'helper' ? cmd : injectRun(cmd, run);
    return (await lab.exec('ws', withRun[0] as string, withRun.slice(1), {
      reject: false,
      timeout: o.timeout ?? 20_000,
      ...(o.input !== undefined ? { input: o.input } : {}),
    })) as Result;
  };

  const start = async () => {
    // Run as the service runs it (tunnelgate.service: Environment=NODE_OPTIONS=...).
    proc = lab.spawn('ws', 'node', [CLI, 'helper', ...flags], { all: true, reject: false, env: { NODE_OPTIONS: HELPER_NODE_OPTIONS } });
    proc.all?.on('data', (d: Buffer) => {
      out += d.toString();
      opts.log?.(d.toString().trimEnd());
    });
    // A deadline, not a pause: on a loaded 2-core machine a start with a flood of dropped
    // packets to attribute has taken over 15 s.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await cli(['status', '--json']);
      if (r.stdout && JSON.parse(String(r.stdout)).state !== 'down') return;
      if (proc.exitCode !== null || Date.now() > deadline) {
        throw new Error(`helper did not come up: exit ${proc.exitCode}\n${out}\n${String(r.stdout)} ${String(r.stderr)}`);
      }
      await new Promise((res) => setTimeout(res, 100));
    }
  };

  const kill = async (signal: NodeJS.Signals) => {
    if (!proc || proc.pid === undefined || proc.exitCode !== null) return;
    process.kill(proc.pid, signal);
    await proc;
  };

  // If this process dies before cleanup(): what the lab's own last resort leaves.
  const disarm = onExitUndo(() => helperLeftovers({ pid: proc?.pid, dir, run, cgroupRoot }));

  await start().catch(async (e) => {
    await kill('SIGKILL').catch(() => undefined);
    await cli(['helper', '--uninstall-rules', ...flags]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    disarm();
    throw e;
  });

  return {
    dir, etc, state, run, cgroupRoot,
    get pid() {
      return proc?.pid ?? -1;
    },
    writeProfile,
    cli,
    output: () => out,
    kill,
    restart: start,
    async cleanup() {
      await kill('SIGTERM').catch(() => undefined);
      await cli(['helper', '--uninstall-rules', ...flags]);
      rmSync(dir, { recursive: true, force: true });
      disarm();
    },
  };
}

/** Put `--run DIR` right after the subcommand (and its sub-subcommand for `profile …`). */
function injectRun(cmd: string[], run: string): string[] {
  const i = cmd.findIndex((a) => a.endsWith('main.js'));
  const sub = cmd[i + 1];
  if (sub === undefined) return cmd;
  // `profile test` talks to the helper; the other `profile` commands are local.
  const at = sub === 'profile' ? (cmd[i + 2] === 'test' ? i + 3 : -1) : i + 2;
  return at < 0 ? cmd : [...cmd.slice(0, at), '--run', run, ...cmd.slice(at)];
}

/**
 * Last resort (Ctrl-C, crash) when cleanup() could not run: the lab's own last resort has
 * ended the helper and its namespace (and with it the table); what is left outside the
 * namespace is the helper's cgroup subtree, its own net_cls mount if it made one, and its
 * directory. Never `helper --uninstall-rules` here: outside the namespace it would touch
 * the host's table. Synchronous, best effort.
 */
function helperLeftovers(h: { pid: number | undefined; dir: string; run: string; cgroupRoot: string }): void {
  if (h.pid !== undefined) {
    try {
      process.kill(h.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  const own = path.join(h.run, 'net_cls');
  const chosen = chooseNetClsMount(findNetClsMounts(readFileSync('/proc/self/mountinfo', 'utf8')), own);
  if (chosen) {
    // Processes killed a moment ago may still be leaving their cgroups.
    for (let i = 0; i <= 20; i++) {
      try {
        removeCgroupTree(path.join(chosen.mount, h.cgroupRoot));
        break;
      } catch {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      }
    }
    if (chosen.own) {
      try {
        execFileSync('umount', [own], { stdio: 'ignore', timeout: 10_000 });
      } catch {
        /* reported by whoever looks for leftovers */
      }
    }
  }
  if (existsSync(h.dir)) rmSync(h.dir, { recursive: true, force: true });
}
