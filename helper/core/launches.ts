// `tunnelgate run`, the launch protocol on top of the gate: the CLI forks a stub, asks the
// helper to hold it (begin), then lets it exec the program and asks the helper to verify
// what the kernel runs and admit it (confirm). With a tracer (ptrace) the stub is stopped
// right after its exec, before the program runs; without one it is verified by polling.
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import type { Caller, ErrorCodeValue, LaunchBeginParams, LaunchBeginResult, LaunchConfirmResult } from '../../common/api.js';
import { ErrorCode } from '../../common/api.js';
import type { Policy } from '../../common/policy.js';
import { decide, describe, needsHash, packagesNamed } from '../policy/decide.js';
import type { ProcessIdentity, Verdict } from '../policy/decide.js';
import { md5Of, verifiedPackages } from '../identity/package.js';
import type { ExecTracer } from '../native/index.js';
import { ApiError } from './errors.js';
import type { EventSink } from './event-bus.js';
import type { ProcPort } from './ports.js';

/** How long confirm waits for the launched process to exec its program (milliseconds). */
export const EXEC_DEADLINE_MS = 5_000;

interface Launch {
  id: string;
  pid: number;
  startTime: string;
  uid: number;
  rule: string;
  stub: { exe: string; cmdline: string };
  state: 'pending' | 'admitted' | 'refused';
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
  /** Stops a launched program at its exec (ptrace); without one, /proc is polled. */
  tracer?: ExecTracer;
}

/** The pending launches of `tunnelgate run` and the two API steps on them. */
export class Launches {
  private readonly launches = new Map<string, Launch>();
  private readonly confirming = new Set<string>();

  constructor(private readonly deps: LaunchesDeps) {}

  private requirePolicy(): Policy {
    const policy = this.deps.gate.current;
    if (!policy) throw ApiError(ErrorCode.Internal, 'the helper has no policy in force yet');
    return policy;
  }

  /**
   * Step 1 of `tunnelgate run`: the caller's child, a stub that has not exec'd the
   * program yet, is held (ptrace) so that its exec can be verified before the program
   * runs. Nothing is admitted here. Throws ApiError NotFound (no such process), Forbidden
   * (not the caller's child, or cannot be held), NotAllowed (no rule allows the path).
   */
  async begin(caller: Caller, params: LaunchBeginParams): Promise<LaunchBeginResult> {
    const policy = this.requirePolicy();
    const proc = await this.deps.procs.process(params.pid).catch(() => {
      throw ApiError(ErrorCode.NotFound, `process ${params.pid} does not exist`);
    });
    if (caller.uid !== 0 && (proc.uid !== caller.uid || proc.euid !== caller.uid)) {
      throw ApiError(ErrorCode.Forbidden, `process ${params.pid} does not belong to uid ${caller.uid}`);
    }
    if (proc.ppid !== caller.pid) {
      throw ApiError(ErrorCode.Forbidden, `process ${params.pid} is not a child of the calling process ${caller.pid}`);
    }
    const verdict = await this.intendedVerdict(policy, params.path, proc.uid);
    if (!verdict.allow) {
      this.deps.events.emit({ type: 'launch.refused', uid: proc.uid, path: params.path, reason: verdict.reason });
      throw ApiError(ErrorCode.NotAllowed, `${params.path} may not use the tunnel: ${verdict.reason}`);
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
      rule: verdict.rule.key,
      stub: { exe: proc.exe, cmdline: stubCmdline.join('\0') },
      state: 'pending',
    };
    this.launches.set(launch.id, launch);
    this.expireUnconfirmed(launch);
    return { launchId: launch.id, rule: launch.rule };
  }

  /** The intended program picks the rule; step 2 checks it against what the kernel runs. */
  private async intendedVerdict(policy: Policy, file: string, uid: number): Promise<Verdict> {
    const intended: ProcessIdentity = { exe: file, exeDeleted: false, uid };
    if (needsHash(policy, file)) intended.sha256 = await this.deps.procs.sha256(file).catch(() => undefined);
    const named = packagesNamed(policy);
    if (named.length) intended.packages = (await verifiedPackages(named, file, () => md5Of(file))).packages;
    return decide(policy, intended);
  }

  /** A caller that never confirms leaves nothing held behind. */
  private expireUnconfirmed(launch: Launch): void {
    setTimeout(() => {
      if (launch.state === 'pending' && !this.confirming.has(launch.id)) {
        launch.state = 'refused';
        if (this.deps.tracer?.pollExec(launch.pid) !== 'exited') this.release(launch);
      }
      this.launches.delete(launch.id);
    }, 2 * EXEC_DEADLINE_MS).unref();
  }

  /**
   * Step 2: the stub execs; the kernel stops it right after (ptrace), before the program
   * runs. Only if /proc/PID/exe is allowed by the rule is the process moved into the
   * rule's cgroup; then it is let go. Throws ApiError NotFound (no such launch of this
   * user, or the process exited), Forbidden (confirmed twice), NotAllowed (refused).
   */
  async confirm(caller: Caller, launchId: string): Promise<LaunchConfirmResult> {
    const policy = this.requirePolicy();
    const launch = this.launches.get(launchId);
    if (!launch || (caller.uid !== 0 && launch.uid !== caller.uid)) {
      throw ApiError(ErrorCode.NotFound, `no launch ${launchId} of this user`);
    }
    if (launch.state !== 'pending' || this.confirming.has(launchId)) {
      throw ApiError(ErrorCode.Forbidden, `launch ${launchId} is already ${launch.state === 'pending' ? 'being confirmed' : launch.state}`);
    }
    this.confirming.add(launchId);
    try {
      const exe = await this.waitForExec(launch);
      const verdict = await this.deps.gate.verdictFor(policy, launch.pid).catch((e: Error) => ({ allow: false as const, reason: e.message }));
      let reason: string | undefined;
      if (!verdict.allow) reason = verdict.reason;
      else if (verdict.rule.key !== launch.rule) reason = `it is allowed by ${describe(verdict.rule)}, not by the rule it was launched for`;
      if (reason !== undefined) {
        launch.state = 'refused';
        this.deps.events.emit({ type: 'launch.refused', uid: launch.uid, pid: launch.pid, path: exe, reason });
        throw ApiError(ErrorCode.NotAllowed, `${exe} may not use the tunnel: ${reason}`);
      }
      await this.deps.gate.admit(launch.pid, launch.rule, () => ApiError(ErrorCode.NotAllowed, `rule ${launch.rule} was revoked meanwhile`));
      launch.state = 'admitted';
      this.deps.events.emit({ type: 'launch.admitted', uid: launch.uid, pid: launch.pid, path: exe, rule: launch.rule });
      return { rule: launch.rule, exe };
    } finally {
      this.confirming.delete(launchId);
      this.release(launch);
      this.launches.delete(launchId);
    }
  }

  /**
   * The program the launched process runs after its exec. With a tracer the process is
   * stopped there until release(); without one, /proc is polled until exe or cmdline change.
   */
  private async waitForExec(launch: Launch): Promise<string> {
    const { procs, tracer } = this.deps;
    const deadline = Date.now() + EXEC_DEADLINE_MS;
    const refuse = (code: ErrorCodeValue, why: string): never => {
      launch.state = 'refused';
      throw ApiError(code, why);
    };
    for (;;) {
      if ((await procs.startTime(launch.pid)) !== launch.startTime) refuse(ErrorCode.NotFound, `process ${launch.pid} exited before it was admitted`);
      if (tracer) {
        const s = tracer.pollExec(launch.pid);
        if (s === 'exited') refuse(ErrorCode.NotFound, `process ${launch.pid} exited before it was admitted`);
        if (s === 'exec') return (await procs.exe(launch.pid)).exe;
      } else {
        const now = await procs.exe(launch.pid).catch(() => undefined);
        const cmdline = (await procs.cmdline(launch.pid).catch(() => [])).join('\0');
        if (now && (now.exe !== launch.stub.exe || cmdline !== launch.stub.cmdline)) return now.exe;
      }
      if (Date.now() > deadline) refuse(ErrorCode.NotAllowed, `process ${launch.pid} did not start its program within ${EXEC_DEADLINE_MS} ms`);
      await sleep(1);
    }
  }

  /** Let a held process go on (admitted or not: a refused one was never admitted). */
  private release(launch: Launch): void {
    try {
      this.deps.tracer?.detach(launch.pid);
    } catch {
      // already gone
    }
  }
}
