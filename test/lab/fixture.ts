// One lab, one real helper in its workstation namespace, one scratch directory: the set-up
// every integration test file (and the watcher benchmark) stands on, and a teardown that
// always runs and then looks for what was left behind (namespaces, processes in them, the
// helper's cgroup subtree, directories, wireguard sockets).
// Vitest-free: test/lab/suite.ts binds it to beforeAll/afterAll.
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Result, ResultPromise } from 'execa';
import type { StatusReport } from '../../common/api.js';
import type { StampedEvent } from '../../common/events.js';
import { errMessage, netClsEntries, netnsInode, NETNS_DIR, pidsLeftInNetns, readComm } from './cleanup.js';
import { startHelper, type CliOptions, type HelperHandle } from './helper-proc.js';
import { createLab, type Lab, type LabOptions } from './lab.js';

/** What exists before the helper starts: the lab and the scratch directory. */
export interface SetupContext {
  readonly lab: Lab;
  /** A 0755 directory under /tmp of this fixture's own, removed by teardown(). */
  readonly tmp: string;
  /**
   * Copy `src` to `<tmp>/<name>` (creating parent directories 0755), mode 0755, owned by
   * `uid` (default root): a binary at a path of its own, for rules and denials by path.
   */
  copyBinary(src: string, name: string, uid?: number): string;
  /** A profile gating the lab's tunnel: id corp-test v1, enforce, userPrompts allow, no rules, then `over`. */
  profile(over?: Record<string, unknown>): Record<string, unknown>;
}

export interface FixtureOptions {
  /** Profiles in profiles.d when the helper starts; none by default (closed for every program). */
  profiles?: (ctx: SetupContext) => Record<string, unknown>;
  /** etc/helper.json when the helper starts. */
  helperJson?: Record<string, unknown>;
  /** Runs after the lab and tmp exist, before the helper starts (binaries, sysctls, foreign tables…). */
  prepare?: (ctx: SetupContext) => Promise<void> | void;
  /** Each chunk of the helper's output. */
  log?: (line: string) => void;
  /** Options of the lab (e.g. `secondTunnel`); default: one tunnel. */
  lab?: LabOptions;
}

/** Options of a program run in the workstation namespace. */
export interface RunOptions {
  /** Run as this uid and gid (setpriv, no supplementary groups): a user made up by the test. */
  uid?: number;
  env?: Record<string, string>;
  cwd?: string;
  timeout?: number;
}

export interface LabAndHelper extends SetupContext {
  readonly helper: HelperHandle;
  /** `tunnelgate ARGS…` in the workstation namespace (as root, or `opts.uid`); never rejects. */
  cli(args: readonly string[], opts?: CliOptions): Promise<Result>;
  /** `tunnelgate ARGS… --json` parsed; throws with the CLI's stderr on a non-zero exit. */
  json<T>(args: readonly string[], uid?: number): Promise<T>;
  /**
   * `tunnelgate status --json`, whatever its exit code (non-zero when the state is not
   * healthy); throws when it printed no JSON.
   */
  status(uid?: number): Promise<StatusReport>;
  /** The helper's event lines so far (its stdout), over every run of it; a half-written line is skipped. */
  events(): StampedEvent[];
  /** Write profiles.d/NAME.json by rename, as config management does. */
  writeProfile(name: string, profile: unknown): string;
  /** Run `prog ARGS` directly (not through `tunnelgate run`) in the workstation namespace; never rejects. */
  run(prog: string, args: readonly string[], opts?: RunOptions): Promise<Result>;
  /**
   * Like run(), for a program the test ends itself (or the lab at teardown); its stdin is a
   * pipe, stdout and stderr are read as they come; never rejects.
   */
  spawn(prog: string, args: readonly string[], opts?: RunOptions): ResultPromise<{ reject: false }>;
  /**
   * Tear down: the helper (its table and cgroups), the lab, the scratch directory; then
   * look for leftovers. Idempotent; never throws; returns one line per leftover.
   */
  teardown(): Promise<string[]>;
}

/** `[cmd, args]` running `cmd args` as `uid` (gid = uid, no supplementary groups). */
export function asUser(uid: number, cmd: string, args: readonly string[]): [string, string[]] {
  return ['setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', cmd, ...args]];
}

/** Poll `probe` (every `everyMs`) until it returns a value other than undefined; throws after `ms`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`not within ${ms / 1000} s: ${what}${last ? ` (last error: ${errMessage(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Parse JSON lines, skipping anything else (a line still being written, a log line). */
export function jsonLines<T>(text: string): T[] {
  return text.split('\n').flatMap((l) => {
    if (!l.startsWith('{')) return [];
    try {
      return [JSON.parse(l) as T];
    } catch {
      return [];
    }
  });
}

/**
 * Build a lab, a scratch directory and a helper (see FixtureOptions). On a failure halfway
 * it tears down what it built and rethrows.
 */
export async function createLabAndHelper(opts: FixtureOptions = {}): Promise<LabAndHelper> {
  const lab = await createLab(opts.lab);
  const inodes = new Set([lab.ws, lab.corp].map(netnsInode).filter((i): i is number => i !== undefined));
  const tmp = mkdtempSync('/tmp/tg-test-');
  chmodSync(tmp, 0o755);
  let helper: HelperHandle | undefined;
  let done: Promise<string[]> | undefined;

  const copyBinary = (src: string, name: string, uid = 0): string => {
    const file = path.join(tmp, name);
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    copyFileSync(src, file);
    chmodSync(file, 0o755);
    if (uid) chownSync(file, uid, uid);
    return file;
  };

  const teardown = (): Promise<string[]> => {
    done ??= (async () => {
      const left: string[] = [];
      const root = helper?.cgroupRoot;
      const dir = helper?.dir;
      if (helper) await helper.cleanup().catch((e: unknown) => left.push(`helper cleanup failed: ${errMessage(e)}`));
      await lab.destroy();
      rmSync(tmp, { recursive: true, force: true });
      for (const ns of [lab.ws, lab.corp]) if (existsSync(`${NETNS_DIR}/${ns}`)) left.push(`namespace ${ns}`);
      for (const pid of await pidsLeftInNetns(inodes)) left.push(`process ${pid} (${readComm(pid)}) in a lab namespace`);
      for (const iface of [lab.wsIface, lab.corpIface, ...(lab.second ? [lab.second.wsIface, lab.second.corpIface] : [])]) if (existsSync(`/var/run/wireguard/${iface}.sock`)) left.push(`/var/run/wireguard/${iface}.sock`);
      if (root) for (const name of netClsEntries(root)) left.push(`net_cls cgroup ${name}`);
      for (const d of [dir, tmp]) if (d && existsSync(d)) left.push(`directory ${d}`);
      return left;
    })();
    return done;
  };

  const profile = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    schema: 'tunnelgate/profile@1', id: 'corp-test', version: 1, mode: 'enforce', interfaces: [lab.wsIface], userPrompts: 'allow', rules: [], ...over,
  });
  const ctx: SetupContext = { lab, tmp, copyBinary, profile };
  try {
    await opts.prepare?.(ctx);
    helper = await startHelper(lab, {
      ...(opts.profiles ? { profiles: opts.profiles(ctx) } : {}),
      ...(opts.helperJson ? { helperJson: opts.helperJson } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
  } catch (err) {
    const left = await teardown();
    if (left.length) console.warn(`fixture: left behind after a failed set-up:\n  ${left.join('\n  ')}`);
    throw err;
  }
  const h = helper;

  const cli = (args: readonly string[], o?: CliOptions): Promise<Result> => h.cli(args, o);
  const json = async <T>(args: readonly string[], uid?: number): Promise<T> => {
    const r = await cli([...args, '--json'], uid === undefined ? {} : { uid });
    if (r.exitCode !== 0) throw new Error(`tunnelgate ${args.join(' ')}: exit ${r.exitCode}: ${String(r.stderr).trim()}`);
    return JSON.parse(String(r.stdout)) as T;
  };
  const command = (prog: string, args: readonly string[], o: RunOptions): [string, string[]] =>
    o.uid === undefined ? [prog, [...args]] : asUser(o.uid, prog, args);
  const execOpts = (o: RunOptions) => ({
    reject: false as const,
    ...(o.env ? { env: o.env } : {}),
    ...(o.cwd ? { cwd: o.cwd } : {}),
  });

  return {
    lab,
    tmp,
    helper: h,
    copyBinary,
    cli,
    json,
    status: async (uid?: number) => {
      const r = await cli(['status', '--json'], uid === undefined ? {} : { uid });
      try {
        return JSON.parse(String(r.stdout)) as StatusReport;
      } catch {
        throw new Error(`tunnelgate status: exit ${r.exitCode}, no JSON: ${String(r.stdout).slice(0, 200)} ${String(r.stderr).trim()}`);
      }
    },
    events: () => jsonLines<StampedEvent>(h.output()),
    writeProfile: (name, profile) => h.writeProfile(name, profile),
    profile,
    run: async (prog, args, o = {}) => {
      const [cmd, a] = command(prog, args, o);
      return (await lab.exec('ws', cmd, a, { ...execOpts(o), timeout: o.timeout ?? 30_000 })) as Result;
    },
    spawn: (prog, args, o = {}) => {
      const [cmd, a] = command(prog, args, o);
      return lab.spawn('ws', cmd, a, { ...execOpts(o), ...(o.timeout ? { timeout: o.timeout } : {}) }) as ResultPromise<{ reject: false }>;
    },
    teardown,
  };
}

/** The lines a running program has printed so far, read as they come, and a way to wait for more. */
export interface LiveLines {
  /** Every complete line so far. */
  lines(): string[];
  /** The complete lines that parse as JSON objects so far. */
  json<T>(): T[];
  /** Wait until `pred(lines)` holds; throws after `ms`, or at once if the program exited without it. */
  until(what: string, pred: (lines: string[]) => boolean, ms?: number): Promise<string[]>;
}

/** Follow a child's stdout line by line (see LiveLines). */
export function follow(child: ResultPromise<{ reject: false }>): LiveLines {
  let text = '';
  let err = '';
  let exited = false;
  child.stdout?.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  child.once('exit', () => (exited = true));
  const lines = () => text.split('\n').slice(0, -1);
  return {
    lines,
    json: <T>() => jsonLines<T>(lines().join('\n')),
    until: (what, pred, ms = 15_000) =>
      waitFor(what, () => {
        if (pred(lines())) return lines();
        if (exited) throw new Error(`the program exited (code ${child.exitCode}); it printed:\n${text.slice(-2000)}`);
        return undefined;
      }, ms, 10).catch((e: unknown) => {
        throw new Error(`${errMessage(e)}\nlines so far:\n${text.slice(-2000)}${err ? `\nits stderr so far:\n${err.slice(-2000)}` : ''}`);
      }),
  };
}
