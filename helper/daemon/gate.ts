// The gate: owns the table and the cgroup subtree, and admits processes into rules.
// Decisions come from helper/policy (pure), text from helper/ruleset (pure); this
// class sequences the I/O and keeps the last good state when anything fails.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Caller, LaunchBeginParams, LaunchBeginResult, LaunchConfirmResult, StatusReport } from '../../common/api.js';
import { ErrorCode } from '../../common/api.js';
import type { ErrorCodeValue } from '../../common/api.js';
import type { Policy } from '../../common/policy.js';
import { decide, describe, needsHash } from '../policy/decide.js';
import type { ProcessIdentity, Verdict } from '../policy/decide.js';
import { processAllowRules, renderPendingChange, renderTable } from '../ruleset/render.js';
import type { CgroupTree } from '../kernel/cgroup.js';
import { cgroupOfPid, moveToDir } from '../kernel/cgroup.js';
import type { Nft } from '../kernel/nft.js';
import type { HashCache } from '../kernel/proc.js';
import type { ExecTracer } from '../native/index.js';
import { readCmdline, readExe, readProc, startTimeOf } from '../kernel/proc.js';
import { ApiError } from './errors.js';
import type { EventSink } from './events.js';

const LAUNCH_PREFIX = 'l-';
/** How long confirm waits for the launched process to exec its program. */
const EXEC_DEADLINE_MS = 5_000;

interface Launch {
  id: string;
  pid: number;
  startTime: string;
  uid: number;
  rule: string;
  /** `<rule key>/l-<id>` inside the subtree. */
  rel: string;
  /** Where the process was before (absolute cgroup v2 dir), to return it on revocation. */
  origin?: string;
  stub: { exe: string; cmdline: string };
  state: 'pending' | 'admitted' | 'refused';
}

export interface GateDeps {
  nft: Nft;
  cgroups: CgroupTree;
  cgroupMount: string;
  hashes: HashCache;
  events: EventSink;
  /** Interfaces present in this namespace now. */
  listInterfaces: () => Promise<string[]>;
  version: string;
  /**
   * Stops a launched program at its exec so it is verified before it runs. Without one
   * (ptrace disabled on this machine) the program runs while it is verified, dropped,
   * so its first packets may be lost and retransmitted.
   */
  tracer?: ExecTracer;
}

export class Gate {
  private policy: Policy | undefined;
  private readonly launches = new Map<string, Launch>();
  private readonly confirming = new Set<string>();
  private readonly startedAt = new Date();
  private appliedAt: Date | undefined;
  private applyProblem: string | undefined;
  /** nft and cgroup changes are serialised: one transaction at a time, in order. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: GateDeps) {}

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  get current(): Policy | undefined {
    return this.policy;
  }

  /**
   * Put a policy in force: create the rule cgroups it needs, then replace the table in
   * one transaction. On failure the previous table stays as it was, and the error is
   * reported; the gate never opens because a policy could not be applied.
   */
  setPolicy(policy: Policy): Promise<void> {
    return this.serial(async () => {
      try {
        await this.deps.cgroups.ensure();
        for (const r of processAllowRules(policy)) await this.deps.cgroups.ensure(r.key);
        await this.deps.nft.apply(this.render(policy));
        this.policy = policy;
        this.appliedAt = new Date();
        this.applyProblem = undefined;
        this.deps.events.emit({ type: 'policy.applied', rules: policy.rules.length, mode: policy.mode, problems: policy.problems });
      } catch (e) {
        this.applyProblem = `could not apply the policy, the previous rules stay in force: ${(e as Error).message}`;
        this.deps.events.emit({ type: 'policy.failed', reason: this.applyProblem });
        throw e;
      }
    });
  }

  private render(policy: Policy): string {
    const pending = [...this.launches.values()].filter((l) => l.state !== 'admitted').map((l) => l.rel);
    return renderTable({ policy, cgroups: this.deps.cgroups.layout, pending });
  }

  /**
   * After a restart: rebuild what was admitted from the cgroups themselves. Each launch
   * cgroup is admitted again only if every process in it still runs a binary its rule
   * allows; anything else is rendered as pending (dropped). Runs before the first apply,
   * and the old table stays in force until then, so there is no open moment.
   */
  async adopt(policy: Policy): Promise<void> {
    for (const rule of await this.deps.cgroups.children()) {
      for (const child of await this.deps.cgroups.children(rule)) {
        if (!child.startsWith(LAUNCH_PREFIX)) continue;
        const rel = `${rule}/${child}`;
        const pids = await this.deps.cgroups.procs(rel);
        if (!pids.length) {
          await this.deps.cgroups.remove(rel);
          continue;
        }
        let ok = true;
        for (const pid of pids) {
          const v = await this.verdictFor(policy, pid).catch(() => undefined);
          if (!v?.allow || v.rule.key !== rule) ok = false;
        }
        const pid = pids[0] as number;
        this.launches.set(child.slice(LAUNCH_PREFIX.length), {
          id: child.slice(LAUNCH_PREFIX.length),
          pid,
          startTime: (await startTimeOf(pid)) ?? '',
          uid: -1,
          rule,
          rel,
          stub: { exe: '', cmdline: '' },
          state: ok ? 'admitted' : 'refused',
        });
      }
    }
    this.deps.events.emit({ type: 'gate.adopted', launches: this.launches.size });
  }

  async verdictFor(policy: Policy, pid: number): Promise<Verdict> {
    const p = await readProc(pid);
    const id: ProcessIdentity = { exe: p.exe, exeDeleted: p.exeDeleted, uid: p.uid };
    if (needsHash(policy, p.exe)) id.sha256 = await this.deps.hashes.sha256(`/proc/${pid}/exe`);
    return decide(policy, id);
  }

  private requirePolicy(): Policy {
    if (!this.policy) throw ApiError(ErrorCode.Internal, 'the helper has no policy in force yet');
    return this.policy;
  }

  /**
   * Step 1 of `tunnelgate run`: the caller's child, still a stub that has not exec'd
   * the program, is placed in a fresh launch cgroup under the rule its intended
   * program falls under. The launch cgroup is pending (dropped) until step 2 has seen
   * the program the kernel actually runs.
   */
  async launchBegin(caller: Caller, params: LaunchBeginParams): Promise<LaunchBeginResult> {
    const policy = this.requirePolicy();
    const proc = await readProc(params.pid).catch(() => {
      throw ApiError(ErrorCode.NotFound, `process ${params.pid} does not exist`);
    });
    if (caller.uid !== 0 && (proc.uid !== caller.uid || proc.euid !== caller.uid)) {
      throw ApiError(ErrorCode.Forbidden, `process ${params.pid} does not belong to uid ${caller.uid}`);
    }
    if (proc.ppid !== caller.pid) {
      throw ApiError(ErrorCode.Forbidden, `process ${params.pid} is not a child of the calling process ${caller.pid}`);
    }
    // The intended program picks the rule; it is verified against the kernel in step 2.
    const intended: ProcessIdentity = { exe: params.path, exeDeleted: false, uid: proc.uid };
    if (needsHash(policy, params.path)) {
      intended.sha256 = await this.deps.hashes.sha256(params.path).catch(() => undefined);
    }
    const verdict = decide(policy, intended);
    if (!verdict.allow) {
      this.deps.events.emit({ type: 'launch.refused', uid: proc.uid, path: params.path, reason: verdict.reason });
      throw ApiError(ErrorCode.NotAllowed, `${params.path} may not use the tunnel: ${verdict.reason}`);
    }
    const [stubCmdline, origin] = await Promise.all([readCmdline(params.pid), cgroupOfPid(params.pid, this.deps.cgroupMount)]);
    if (this.deps.tracer) {
      try {
        this.deps.tracer.seize(params.pid);
      } catch (e) {
        throw ApiError(ErrorCode.Forbidden, `cannot hold process ${params.pid} for verification (is it being traced?): ${(e as Error).message}`);
      }
    }
    const id = randomBytes(8).toString('hex');
    const launch: Launch = {
      id,
      pid: params.pid,
      startTime: proc.startTime,
      uid: proc.uid,
      rule: verdict.rule.key,
      rel: `${verdict.rule.key}/${LAUNCH_PREFIX}${id}`,
      ...(origin ? { origin } : {}),
      stub: { exe: proc.exe, cmdline: stubCmdline.join('\0') },
      state: 'pending',
    };
    try {
      await this.serial(async () => {
        const { cgroups, nft } = this.deps;
        await cgroups.ensure(launch.rel);
        // Pending in the table before the process is in the cgroup: nothing can slip through.
        await nft.apply(renderPendingChange('add', cgroups.layout.nftPath, [launch.rel]));
        this.launches.set(id, launch);
        await cgroups.move(params.pid, launch.rel);
      });
    } catch (e) {
      this.release(launch);
      throw e;
    }
    // A caller that never confirms does not leave its process held (or a zombie) behind.
    setTimeout(() => {
      if (launch.state !== 'pending' || this.confirming.has(launch.id)) return;
      launch.state = 'refused';
      if (this.deps.tracer?.pollExec(launch.pid) !== 'exited') this.release(launch);
    }, 2 * EXEC_DEADLINE_MS).unref();
    return { launchId: id, rule: launch.rule };
  }

  /** Step 2: wait for the exec, then admit only if the kernel's view of the binary is allowed by that rule. */
  async launchConfirm(caller: Caller, launchId: string): Promise<LaunchConfirmResult> {
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
      const verdict = await this.verdictFor(policy, launch.pid).catch((e: Error) => ({ allow: false as const, reason: e.message }));
      const others = (await this.deps.cgroups.procs(launch.rel)).filter((p) => p !== launch.pid);
      let reason: string | undefined;
      if (!verdict.allow) reason = verdict.reason;
      else if (verdict.rule.key !== launch.rule) reason = `it is allowed by ${describe(verdict.rule)}, not by the rule it was launched for`;
      else if (others.length) reason = `the launch started other processes before its program (${others.join(', ')})`;
      if (reason !== undefined) {
        launch.state = 'refused';
        this.deps.events.emit({ type: 'launch.refused', uid: launch.uid, pid: launch.pid, path: exe, reason });
        throw ApiError(ErrorCode.NotAllowed, `${exe} may not use the tunnel: ${reason}`);
      }
      await this.serial(async () => {
        await this.deps.nft.apply(renderPendingChange('delete', this.deps.cgroups.layout.nftPath, [launch.rel]));
        launch.state = 'admitted';
      });
      this.deps.events.emit({ type: 'launch.admitted', uid: launch.uid, pid: launch.pid, path: exe, rule: launch.rule });
      return { rule: launch.rule, exe };
    } finally {
      this.confirming.delete(launchId);
      this.release(launch);
    }
  }

  /**
   * The program the launched process runs after its exec. With a tracer the process is
   * stopped there until release(); without one, /proc is polled until exe or cmdline change.
   */
  private async waitForExec(launch: Launch): Promise<string> {
    const deadline = Date.now() + EXEC_DEADLINE_MS;
    const refuse = (code: ErrorCodeValue, why: string): never => {
      launch.state = 'refused';
      throw ApiError(code, why);
    };
    for (;;) {
      if ((await startTimeOf(launch.pid)) !== launch.startTime) refuse(ErrorCode.NotFound, `process ${launch.pid} exited before it was admitted`);
      if (this.deps.tracer) {
        const s = this.deps.tracer.pollExec(launch.pid);
        if (s === 'exited') refuse(ErrorCode.NotFound, `process ${launch.pid} exited before it was admitted`);
        if (s === 'exec') return (await readExe(launch.pid)).exe;
      } else {
        const now = await readExe(launch.pid).catch(() => undefined);
        const cmdline = (await readCmdline(launch.pid).catch(() => [])).join('\0');
        if (now && (now.exe !== launch.stub.exe || cmdline !== launch.stub.cmdline)) return now.exe;
      }
      if (Date.now() > deadline) refuse(ErrorCode.NotAllowed, `process ${launch.pid} did not start its program within ${EXEC_DEADLINE_MS} ms`);
      await sleep(1);
    }
  }

  /** Let a held process go on (admitted or not: a refused one stays dropped). */
  private release(launch: Launch): void {
    if (!this.deps.tracer) return;
    try {
      this.deps.tracer.detach(launch.pid);
    } catch {
      // already gone
    }
  }

  /** Forget launches whose processes are gone, and remove their empty cgroups. */
  sweep(): Promise<void> {
    return this.serial(async () => {
      const { cgroups, nft } = this.deps;
      const gone: Launch[] = [];
      for (const l of this.launches.values()) {
        if (!(await cgroups.procs(l.rel)).length && (await cgroups.remove(l.rel))) gone.push(l);
      }
      const stillPending = gone.filter((l) => l.state !== 'admitted').map((l) => l.rel);
      for (const l of gone) this.launches.delete(l.id);
      // A removed cgroup's element is harmless but would grow the set; drop it.
      if (stillPending.length) {
        await nft.apply(renderPendingChange('delete', cgroups.layout.nftPath, stillPending)).catch(() => undefined);
      }
      const inForce = new Set(this.policy ? processAllowRules(this.policy).map((r) => r.key) : []);
      for (const rule of await cgroups.children()) {
        if (!inForce.has(rule) && !(await cgroups.children(rule)).length) await cgroups.remove(rule);
      }
    });
  }

  async admittedProcesses(): Promise<number> {
    let n = 0;
    for (const l of this.launches.values()) if (l.state === 'admitted') n += (await this.deps.cgroups.procs(l.rel)).length;
    return n;
  }

  async status(): Promise<StatusReport> {
    const policy = this.policy;
    const present = await this.deps.listInterfaces().catch(() => []);
    const problems = [...(policy?.problems ?? [])];
    if (this.applyProblem) problems.unshift(this.applyProblem);
    const tableThere = await this.deps.nft.tableExists().catch(() => false);
    if (!tableThere) problems.unshift('the tunnelgate table is missing from nftables');
    const interfaces = (policy?.interfaces ?? []).map((pattern) => ({
      pattern,
      present: present.filter((n) => (pattern.endsWith('*') ? n.startsWith(pattern.slice(0, -1)) : n === pattern)),
    }));
    for (const i of interfaces) if (!i.present.length) problems.push(`no interface matching ${i.pattern} exists now (it is gated as soon as it appears)`);
    const degraded = !tableThere || this.applyProblem !== undefined || (policy?.sources.some((s) => s.state !== 'active') ?? true) ||
      !policy?.sources.length;
    const dropped = await this.deps.nft.counter(policy?.mode === 'audit' ? 'audited' : 'dropped');
    return {
      state: !policy || !tableThere ? 'down' : degraded ? 'degraded' : policy.mode === 'audit' ? 'audit' : 'enforcing',
      mode: policy?.mode ?? 'enforce',
      mechanism: 'cgroup2',
      cgroupDir: this.deps.cgroups.layout.dir,
      interfaces,
      ruleCount: policy?.rules.length ?? 0,
      admittedProcesses: await this.admittedProcesses(),
      dropped,
      sources: policy?.sources ?? [],
      problems,
      helper: {
        pid: process.pid,
        version: this.deps.version,
        startedAt: this.startedAt.toISOString(),
        ...(this.appliedAt ? { appliedAt: this.appliedAt.toISOString() } : {}),
      },
    };
  }

  /**
   * Take everything away: processes go back where they came from (or to the top of the
   * hierarchy), the cgroups are removed, and our table is deleted. Nothing else.
   */
  async uninstall(): Promise<void> {
    await this.serial(async () => {
      const { cgroups, nft } = this.deps;
      await nft.deleteTable();
      await removeTree(cgroups, '', this.deps.cgroupMount, this.launches);
    });
  }
}

async function removeTree(cgroups: CgroupTree, rel: string, mount: string, launches: Map<string, Launch>): Promise<void> {
  for (const child of await cgroups.children(rel)) await removeTree(cgroups, rel ? `${rel}/${child}` : child, mount, launches);
  if (rel !== '') {
    const origin = [...launches.values()].find((l) => l.rel === rel)?.origin;
    for (const pid of await cgroups.procs(rel)) {
      // Back where it came from if that cgroup still exists, else the top of the hierarchy.
      await moveToDir(pid, origin ?? mount).catch(() => moveToDir(pid, mount)).catch(() => undefined);
    }
  }
  await cgroups.remove(rel);
}
