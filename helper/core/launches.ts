// `tunnelgate run`, the launch protocol on top of the gate: the CLI forks a stub, asks the
// helper to hold it (begin), then lets it exec the program and asks the helper to decide
// at each exec what the process has become (confirm). With a tracer (ptrace) the process
// is stopped right after each exec, before that program runs; without one it is polled.
//
// What run decides on (issue 9.6, issue 10 part 5): what the program becomes, not the
// first file it execs.
// - Each exec of the launched process is decided by the verdict a direct start gets: the
//   gate's verdictFor (helper/identity/gather.ts + decide: the kernel-resolved binary, the
//   script an interpreter was given, environment, hash, package) on the policy in force
//   (expired rules out), so `run -- python3 -I /opt/corp/deploy.py` is admitted exactly
//   when the same command started directly is, and refused with the same reason.
// - Allowed: the process is moved into the rule's cgroup while it is stopped at that exec,
//   then let go. Its first instruction already has the tunnel.
// - Not allowed, and a launcher (helper/identity/interpreters.ts launcherKind: a shell
//   running a wrapper script such as Debian's /usr/bin/chromium, or env): it goes on
//   without the tunnel, still traced, and its next exec is decided again. So the wrapper
//   never gets the tunnel; the program it execs does if a rule allows it.
// - Not allowed and not a launcher, a launcher that exits, one that has not exec'd within
//   LAUNCHER_DEADLINE_MS, or the MAX_EXECS-th exec: the launch is refused with the exec
//   chain in the message; a traced process is killed where it stands (a refused program
//   never runs an instruction), and the CLI exits 126.
// - Only the launched process itself is followed (PTRACE_O_TRACEEXEC, no TRACEFORK), never
//   its children: a child a launcher forks before it execs the allowed program is not that
//   program's descendant (`evil & exec /usr/lib/chromium/chromium`: evil stays outside, as
//   for a direct start), and a child that execs an allowed program is admitted, or not, by
//   the direct-start path (exec hold, watcher) like any other process.
// - Without a tracer (Yama ptrace_scope 3) execs are noticed by polling /proc, after the
//   program started; a process in a user namespace of its own is then not admitted (its
//   /proc/PID/exe can be re-pointed, as the watcher says). At a ptrace exec stop the exe
//   link is the file the kernel just executed, whatever the namespace.
import { readlink } from 'node:fs/promises';
import { readlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import type { Caller, ErrorCodeValue, LaunchBeginParams, LaunchBeginResult, LaunchConfirmResult } from '../../common/api.js';
import { ErrorCode } from '../../common/api.js';
import type { Policy } from '../../common/policy.js';
import type { Verdict } from '../policy/decide.js';
import { inForce } from '../policy/expiry.js';
import { chainStep, launcherKind } from '../identity/interpreters.js';
import type { ExecTracer } from '../native/index.js';
import { ApiError } from '../../common/errors.js';
import type { EventSink } from './event-bus.js';
import type { ProcPort } from './ports.js';

/** How long confirm waits for the launched stub to exec its program (milliseconds). */
export const EXEC_DEADLINE_MS = 5_000;
/** How long a launcher (a wrapper script, env) may run before its next exec (milliseconds). */
export const LAUNCHER_DEADLINE_MS = 30_000;
/** Execs of one launch followed at most: the launchers and the program they end in. */
export const MAX_EXECS = 8;

interface Launch {
  id: string;
  pid: number;
  startTime: string;
  uid: number;
  /** What the caller said it would exec (messages only). */
  path: string;
  /** The last image seen (the stub, then each exec), for the polling fallback. */
  seen: { exe: string; cmdline: string };
  state: 'pending' | 'admitted' | 'refused';
  /** Its exit was seen (and reaped by the tracer): the pid may name another process now. */
  gone?: boolean;
}

/** What launches need of the gate (helper/core/gate.ts). */
export interface LaunchGate {
  readonly current: Policy | undefined;
  verdictFor(policy: Policy, pid: number): Promise<Verdict>;
  /** Move a verified process into its rule's cgroup; `missing` is thrown when the rule has none. */
  admit(pid: number, ruleKey: string, missing?: () => Error): Promise<void>;
}

export interface LaunchesDeps {
  gate: LaunchGate;
  procs: ProcPort;
  events: EventSink;
  /** Stops a launched program at each exec (ptrace); without one, /proc is polled. */
  tracer?: ExecTracer;
  /** Is the process in the helper's user namespace (polling fallback only)? Default: /proc/PID/ns/user. */
  inInitialUserns?: (pid: number) => Promise<boolean>;
  /** Default: Date.now. */
  now?: () => number;
  /** Ends a held process that was refused (default: SIGKILL). */
  kill?: (pid: number) => void;
  /** Overrides of LAUNCHER_DEADLINE_MS and EXEC_DEADLINE_MS (tests). */
  launcherDeadlineMs?: number;
  execDeadlineMs?: number;
}

/** What run does at one exec of the launched process. */
export type LaunchStep =
  | { kind: 'admit'; rule: string }
  | { kind: 'follow' }
  | { kind: 'refuse'; reason: string };

/**
 * The decision at the `execs`-th exec (1-based) of a launched process running `exe`, whose
 * verdict (the direct-start verdict) is given. Pure. Admit what a rule allows; follow a
 * launcher no rule allows, up to MAX_EXECS; refuse anything else, with the verdict's reason.
 */
export function launchStep(verdict: Verdict, exe: string, execs: number): LaunchStep {
  if (verdict.allow) return { kind: 'admit', rule: verdict.rule.key };
  if (launcherKind(exe) === undefined) return { kind: 'refuse', reason: verdict.reason };
  if (execs >= MAX_EXECS) return { kind: 'refuse', reason: `${verdict.reason}; run follows a launcher's execs ${MAX_EXECS} deep at most` };
  return { kind: 'follow' };
}

/** ` (exec chain: a → b → c)` when more than one program was exec'd; '' otherwise. */
export function chainNote(chain: readonly string[]): string {
  return chain.length > 1 ? ` (exec chain: ${chain.join(' → ')})` : '';
}

async function defaultInInitialUserns(pid: number): Promise<boolean> {
  return (await readlink(`/proc/${pid}/ns/user`).catch(() => '')) === readlinkSync('/proc/self/ns/user');
}

/** The pending launches of `tunnelgate run` and the two API steps on them. */
export class Launches {
  private readonly launches = new Map<string, Launch>();
  private readonly confirming = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly deps: LaunchesDeps) {
    this.now = deps.now ?? Date.now;
  }

  private requirePolicy(): Policy {
    const policy = this.deps.gate.current;
    if (!policy) throw ApiError(ErrorCode.Internal, 'the helper has no policy in force yet');
    return policy;
  }

  /**
   * Step 1 of `tunnelgate run`: the caller's child, a stub that has not exec'd the
   * program yet, is held (ptrace) so that each of its execs is decided before that
   * program runs. Nothing is decided or admitted here: the path is what the caller says it
   * will exec, which only the kernel can confirm. Throws ApiError NotFound (no such
   * process), Forbidden (not the caller's child, or cannot be held), Internal (no policy yet).
   */
  async begin(caller: Caller, params: LaunchBeginParams): Promise<LaunchBeginResult> {
    this.requirePolicy();
    const proc = await this.deps.procs.process(params.pid).catch(() => {
      throw ApiError(ErrorCode.NotFound, `process ${params.pid} does not exist`);
    });
    if (caller.uid !== 0 && (proc.uid !== caller.uid || proc.euid !== caller.uid)) {
      throw ApiError(ErrorCode.Forbidden, `process ${params.pid} does not belong to uid ${caller.uid}`);
    }
    if (proc.ppid !== caller.pid) {
      throw ApiError(ErrorCode.Forbidden, `process ${params.pid} is not a child of the calling process ${caller.pid}`);
    }
    const stubCmdline = await this.deps.procs.cmdline(params.pid);
    if (this.deps.tracer) {
      try {
        this.deps.tracer.seize(params.pid);
      } catch (e) {
        throw ApiError(ErrorCode.Forbidden, `cannot hold process ${params.pid} for verification (is it being traced?): ${(e as Error).message}`);
      }
    }
    const launch: Launch = {
      id: randomBytes(8).toString('hex'),
      pid: params.pid,
      startTime: proc.startTime,
      uid: proc.uid,
      path: params.path,
      seen: { exe: proc.exe, cmdline: stubCmdline.join('\0') },
      state: 'pending',
    };
    this.launches.set(launch.id, launch);
    this.expireUnconfirmed(launch);
    return { launchId: launch.id };
  }

  /** A caller that never confirms leaves nothing held behind (its stub is ended). */
  private expireUnconfirmed(launch: Launch): void {
    setTimeout(() => {
      if (launch.state === 'pending' && !this.confirming.has(launch.id)) {
        launch.state = 'refused';
        void this.end(launch, false);
      }
      if (!this.confirming.has(launch.id)) this.launches.delete(launch.id);
    }, 2 * (this.deps.execDeadlineMs ?? EXEC_DEADLINE_MS)).unref();
  }

  /**
   * Step 2: the stub execs; each exec of the process stops it (ptrace) before that program
   * runs and is decided (launchStep): admitted into the rule's cgroup and let go, followed
   * (a launcher), or refused. Resolves with the rule, the admitted exe and the exec chain.
   * Throws ApiError NotFound (no such launch of this user, or the stub exited before any
   * exec), Forbidden (confirmed twice), NotAllowed (refused: the message names the chain).
   */
  async confirm(caller: Caller, launchId: string): Promise<LaunchConfirmResult> {
    this.requirePolicy();
    const launch = this.launches.get(launchId);
    if (!launch || (caller.uid !== 0 && launch.uid !== caller.uid)) {
      throw ApiError(ErrorCode.NotFound, `no launch ${launchId} of this user`);
    }
    if (launch.state !== 'pending' || this.confirming.has(launchId)) {
      throw ApiError(ErrorCode.Forbidden, `launch ${launchId} is already ${launch.state === 'pending' ? 'being confirmed' : launch.state}`);
    }
    this.confirming.add(launchId);
    const chain: string[] = [];
    const exes: string[] = [];
    const refused = (path: string, code: ErrorCodeValue, message: string): Error => {
      launch.state = 'refused';
      this.deps.events.emit({ type: 'launch.refused', uid: launch.uid, pid: launch.pid, path, reason: message });
      return ApiError(code, message);
    };
    try {
      for (;;) {
        const deadlineMs = chain.length === 0 ? (this.deps.execDeadlineMs ?? EXEC_DEADLINE_MS) : (this.deps.launcherDeadlineMs ?? LAUNCHER_DEADLINE_MS);
        const exec = await this.waitForExec(launch, deadlineMs);
        // The program that ran last (a path, for the event) and how the user would name it.
        const lastExe = exes.at(-1) ?? launch.path;
        const last = chain.at(-1) ?? launch.path;
        if (exec === 'exited') {
          if (!chain.length) throw refused(launch.path, ErrorCode.NotFound, `process ${launch.pid} exited before it was admitted`);
          throw refused(lastExe, ErrorCode.NotAllowed, `${last} exited without starting a program a rule allows${chainNote([...chain, '(exit)'])}`);
        }
        if (exec === 'deadline') {
          throw refused(lastExe, ErrorCode.NotAllowed, chain.length
            ? `${last} did not start another program within ${deadlineMs / 1000} s; it was stopped${chainNote([...chain, '…'])}`
            : `process ${launch.pid} did not start its program within ${deadlineMs} ms`);
        }
        const { exe, argv } = exec;
        exes.push(exe);
        chain.push(chainStep(exe, argv));
        const policy = inForce(this.requirePolicy(), this.now());
        let verdict: Verdict = await this.deps.gate.verdictFor(policy, launch.pid).catch((e: Error) => ({ allow: false as const, reason: e.message }));
        if (verdict.allow && !this.deps.tracer && !(await (this.deps.inInitialUserns ?? defaultInInitialUserns)(launch.pid))) {
          verdict = { allow: false, rule: verdict.rule, reason: `it runs in a user namespace of its own, where /proc/${launch.pid}/exe can be re-pointed (PR_SET_MM), and without ptrace it cannot be stopped at its exec` };
        }
        const step = launchStep(verdict, exe, chain.length);
        if (step.kind === 'refuse') throw refused(exe, ErrorCode.NotAllowed, `${exe} may not use the tunnel: ${step.reason}${chainNote(chain)}`);
        if (step.kind === 'admit') {
          await this.deps.gate.admit(launch.pid, step.rule, () => ApiError(ErrorCode.NotAllowed, `rule ${step.rule} was revoked meanwhile`)).catch((e: Error) => {
            throw refused(exe, ErrorCode.NotAllowed, `${exe} may not use the tunnel: ${e.message}${chainNote(chain)}`);
          });
          launch.state = 'admitted';
          this.deps.events.emit({ type: 'launch.admitted', uid: launch.uid, pid: launch.pid, path: exe, rule: step.rule });
          return { rule: step.rule, exe, chain };
        }
        // A launcher: on without the tunnel, still traced; its next exec stops it again.
        this.deps.tracer?.resume(launch.pid);
      }
    } finally {
      this.confirming.delete(launchId);
      this.launches.delete(launchId);
      await this.end(launch, launch.state === 'admitted');
    }
  }

  /**
   * The next exec of the launched process: its new exe and argv, 'exited', or 'deadline'.
   * With a tracer the process is then stopped at that exec until resume/detach/kill;
   * without one, /proc is polled until exe or cmdline change.
   */
  private async waitForExec(launch: Launch, deadlineMs: number): Promise<{ exe: string; argv: string[] } | 'exited' | 'deadline'> {
    const { procs, tracer } = this.deps;
    const started = this.now();
    for (let round = 0; ; round++) {
      // A traced process keeps its pid until the tracer reaps it (pollExec says 'exited').
      if (!tracer && (await procs.startTime(launch.pid)) !== launch.startTime) {
        launch.gone = true;
        return 'exited';
      }
      if (tracer) {
        const s = tracer.pollExec(launch.pid);
        if (s === 'exited') {
          launch.gone = true;
          return 'exited';
        }
        if (s === 'exec') return { exe: (await procs.exe(launch.pid)).exe, argv: await procs.cmdline(launch.pid) };
      } else {
        const now = await procs.exe(launch.pid).catch(() => undefined);
        const argv = await procs.cmdline(launch.pid).catch(() => [] as string[]);
        if (now && (now.exe !== launch.seen.exe || argv.join('\0') !== launch.seen.cmdline)) {
          launch.seen = { exe: now.exe, cmdline: argv.join('\0') };
          return { exe: now.exe, argv };
        }
      }
      if (this.now() - started > deadlineMs) return 'deadline';
      // A stub execs at once; a launcher script takes a while: look often at first, then less.
      await sleep(round < 200 ? 1 : 10);
    }
  }

  /**
   * Let the process go: detached at its exec stop when admitted; otherwise, if it is held
   * (traced), killed where it stands and reaped, so that nothing refused runs on. Without a
   * tracer a refused process is the caller's to end (the CLI kills it).
   */
  private async end(launch: Launch, admitted: boolean): Promise<void> {
    const { tracer } = this.deps;
    if (!tracer || launch.gone) return;
    if (admitted) {
      try {
        tracer.detach(launch.pid);
      } catch {
        // already gone
      }
      return;
    }
    try {
      (this.deps.kill ?? ((pid: number) => process.kill(pid, 'SIGKILL')))(launch.pid);
    } catch {
      return; // gone (and reaped)
    }
    // A traced process's exit is reported to its tracer first: reap it so its parent sees it.
    const until = this.now() + 2_000;
    for (;;) {
      let s: string;
      try {
        s = tracer.pollExec(launch.pid);
      } catch {
        return;
      }
      if (s === 'exited' || this.now() > until) return;
      await sleep(1);
    }
  }
}
