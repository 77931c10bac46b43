// The gate: owns the table and the net_cls subtree, and admits processes into rules.
// Decisions come from helper/policy (pure), text from helper/ruleset (pure); this class
// sequences the I/O and keeps the last good state when anything fails.
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import type { Caller, ErrorCodeValue, LaunchBeginParams, LaunchBeginResult, LaunchConfirmResult, StatusReport } from '../../common/api.js';
import { ErrorCode } from '../../common/api.js';
import type { Policy } from '../../common/policy.js';
import { decide, describe, needsHash, packagesNamed } from '../policy/decide.js';
import { md5Of, verifiedPackages } from '../identity/package.js';
import { gatherIdentity } from '../identity/gather.js';
import type { ProcessIdentity, Verdict } from '../policy/decide.js';
import { processAllowRules, renderListeners, renderTable } from '../ruleset/render.js';
import type { NetClsTree } from '../kernel/netcls.js';
import { classid, ruleKeyOf } from '../kernel/netcls.js';
import type { Nft } from '../kernel/nft.js';
import type { HashCache } from '../kernel/proc.js';
import { readCmdline, readExe, readProc, startTimeOf } from '../kernel/proc.js';
import type { Listener } from '../kernel/sockets.js';
import type { ExecTracer } from '../native/index.js';
import { ApiError } from '../api/errors.js';
import type { EventSink } from './event-bus.js';

/** How long confirm waits for the launched process to exec its program. */
const EXEC_DEADLINE_MS = 5_000;

interface Launch {
  id: string;
  pid: number;
  startTime: string;
  uid: number;
  rule: string;
  stub: { exe: string; cmdline: string };
  state: 'pending' | 'admitted' | 'refused';
}

export interface GateDeps {
  nft: Nft;
  cgroups: NetClsTree;
  /** The major number of every classid we hand out. */
  classidMajor: number;
  /** NFLOG group of the refuse chain. */
  nflogGroup: number;
  hashes: HashCache;
  events: EventSink;
  /** Interfaces present in this namespace now. */
  listInterfaces: () => Promise<string[]>;
  /** Ports these processes listen on (helper/kernel/sockets.ts). */
  listeningPorts: (pids: readonly number[]) => Promise<Listener[]>;
  version: string;
  /**
   * Stops a launched program at its exec so it is verified before it runs. Without one
   * (ptrace forbidden on this machine) the program runs unadmitted while it is verified,
   * so its first packets are dropped and go through on retransmission.
   */
  tracer?: ExecTracer;
}

export class Gate {
  private policy: Policy | undefined;
  /** Classid of each rule cgroup, by rule key (the cgroup's name). */
  private readonly classids = new Map<string, number>();
  private listeners: Listener[] = [];
  private readonly launches = new Map<string, Launch>();
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
   * Put a policy in force: create the rule cgroups it needs, replace the table in one
   * transaction, then take processes out of rules that are gone. On failure the previous
   * table stays as it was and the error is reported; the gate never opens because a
   * policy could not be applied.
   */
  setPolicy(policy: Policy): Promise<void> {
    return this.serial(async () => {
      try {
        await this.ensureRuleCgroups(policy);
        await this.deps.nft.apply(renderTable({ policy, classids: this.classids, listeners: this.listeners, nflogGroup: this.deps.nflogGroup }));
        this.policy = policy;
        this.appliedAt = new Date();
        this.applyProblem = undefined;
        this.deps.events.emit({ type: 'policy.applied', rules: policy.rules.length, mode: policy.mode, problems: policy.problems });
      } catch (e) {
        this.applyProblem = `could not apply the policy, the previous rules stay in force: ${(e as Error).message}`;
        this.deps.events.emit({ type: 'policy.failed', reason: this.applyProblem });
        throw e;
      }
      // Revoked rules: the new table already refuses their classids; now give the
      // processes back (classid 0) and remove the cgroups.
      await this.retireRemovedRules(policy);
      for (const cb of this.policyListeners) cb(policy);
    });
  }

  private async ensureRuleCgroups(policy: Policy): Promise<void> {
    const { cgroups, classidMajor } = this.deps;
    await cgroups.ensure();
    const used = new Set([...this.classids.values()].map((c) => c & 0xffff));
    const created: Array<[string, number]> = [];
    let minor = 1;
    for (const r of processAllowRules(policy)) {
      if (this.classids.has(r.key)) continue;
      while (used.has(minor)) minor++;
      if (minor > 0xffff) throw new Error('more than 65535 rule cgroups');
      used.add(minor);
      created.push([r.key, classid(classidMajor, minor)]);
    }
    // Independent directories: made a batch at a time (1,000 new rules one by one took ~300 ms).
    for (let i = 0; i < created.length; i += 64) {
      await Promise.all(
        created.slice(i, i + 64).map(async ([key, id]) => {
          await cgroups.ensure(key);
          await cgroups.writeClassid(key, id);
          this.classids.set(key, id);
        }),
      );
    }
  }

  private async retireRemovedRules(policy: Policy): Promise<void> {
    const keep = new Set(processAllowRules(policy).map((r) => r.key));
    for (const key of [...this.classids.keys()]) {
      if (keep.has(key)) continue;
      for (const pid of await this.deps.cgroups.procs(key)) await this.deps.cgroups.release(pid);
      if (await this.deps.cgroups.remove(key)) this.classids.delete(key);
    }
  }

  /**
   * After a restart: take over the rule cgroups a previous helper left, and re-check every
   * process in them against the policy about to be applied. A process its rule no longer
   * allows is given back at once (its sockets lose the classid). The previous table stays
   * in force until the first apply, so there is no open moment.
   */
  async adopt(policy: Policy): Promise<void> {
    let kept = 0;
    let released = 0;
    for (const key of await this.deps.cgroups.children()) {
      const id = await this.deps.cgroups.readClassid(key).catch(() => 0);
      if (id) this.classids.set(key, id);
      const pids = await this.deps.cgroups.procs(key);
      const keep = new Set<number>();
      const parent = new Map<number, number>();
      for (const pid of pids) {
        const v = await this.verdictFor(policy, pid).catch(() => undefined);
        if (v?.allow && v.rule.key === key) keep.add(pid);
        else {
          const ppid = await readProc(pid).then((p) => p.ppid, () => undefined);
          if (ppid !== undefined) parent.set(pid, ppid);
        }
      }
      // Children inherit their rule (unless it confines them): a process whose parent is
      // kept in the same cgroup stays, as it did before the restart.
      const rule = policy.rules.find((r) => r.key === key);
      if (rule && rule.children !== 'confine') {
        for (let grew = true; grew; ) {
          grew = false;
          for (const [pid, ppid] of parent) {
            if (keep.has(ppid)) {
              keep.add(pid);
              parent.delete(pid);
              grew = true;
            }
          }
        }
      }
      for (const pid of pids) {
        if (keep.has(pid)) continue;
        await this.deps.cgroups.release(pid);
        released++;
      }
      kept += keep.size;
      if (keep.size) this.populated.add(key);
    }
    this.deps.events.emit({ type: 'gate.adopted', kept, released });
  }


  /** The verdict on a live process, from its full identity (helper/identity/gather.ts). */
  async verdictFor(policy: Policy, pid: number): Promise<Verdict> {
    const { identity } = await gatherIdentity(pid, policy, { hashes: this.deps.hashes, selfPid: process.pid });
    return decide(policy, identity);
  }

  private readonly policyListeners = new Set<(policy: Policy) => void>();

  /** Called after each policy is in force (and removed rules are retired): the watcher re-checks then. */
  onPolicyChange(cb: (policy: Policy) => void): () => void {
    this.policyListeners.add(cb);
    return () => this.policyListeners.delete(cb);
  }

  /** The subtree's name: a process's net_cls path is /<cgroupRoot>/<rule key>. */
  get cgroupRoot(): string {
    return this.deps.cgroups.rootName;
  }

  private requirePolicy(): Policy {
    if (!this.policy) throw ApiError(ErrorCode.Internal, 'the helper has no policy in force yet');
    return this.policy;
  }

  /**
   * Step 1 of `tunnelgate run`: the caller's child, a stub that has not exec'd the
   * program yet, is held (ptrace) so that its exec can be verified before the program
   * runs. Nothing is admitted here.
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
    // The intended program picks the rule; step 2 checks it against what the kernel runs.
    const intended: ProcessIdentity = { exe: params.path, exeDeleted: false, uid: proc.uid };
    if (needsHash(policy, params.path)) intended.sha256 = await this.deps.hashes.sha256(params.path).catch(() => undefined);
    const named = packagesNamed(policy);
    if (named.length) intended.packages = (await verifiedPackages(named, params.path, () => md5Of(params.path))).packages;
    const verdict = decide(policy, intended);
    if (!verdict.allow) {
      this.deps.events.emit({ type: 'launch.refused', uid: proc.uid, path: params.path, reason: verdict.reason });
      throw ApiError(ErrorCode.NotAllowed, `${params.path} may not use the tunnel: ${verdict.reason}`);
    }
    const stubCmdline = await readCmdline(params.pid);
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
    // A caller that never confirms leaves nothing held behind.
    setTimeout(() => {
      if (launch.state === 'pending' && !this.confirming.has(launch.id)) {
        launch.state = 'refused';
        if (this.deps.tracer?.pollExec(launch.pid) !== 'exited') this.release(launch);
      }
      this.launches.delete(launch.id);
    }, 2 * EXEC_DEADLINE_MS).unref();
    return { launchId: launch.id, rule: launch.rule };
  }

  private readonly confirming = new Set<string>();

  /**
   * Step 2: the stub execs; the kernel stops it right after (ptrace), before the program
   * runs. Only if /proc/PID/exe is allowed by the rule is the process moved into the
   * rule's cgroup; then it is let go.
   */
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
      let reason: string | undefined;
      if (!verdict.allow) reason = verdict.reason;
      else if (verdict.rule.key !== launch.rule) reason = `it is allowed by ${describe(verdict.rule)}, not by the rule it was launched for`;
      if (reason !== undefined) {
        launch.state = 'refused';
        this.deps.events.emit({ type: 'launch.refused', uid: launch.uid, pid: launch.pid, path: exe, reason });
        throw ApiError(ErrorCode.NotAllowed, `${exe} may not use the tunnel: ${reason}`);
      }
      await this.serial(async () => {
        if (!this.classids.has(launch.rule)) throw ApiError(ErrorCode.NotAllowed, `rule ${launch.rule} was revoked meanwhile`);
        await this.deps.cgroups.move(launch.pid, launch.rule);
        this.populated.add(launch.rule);
      });
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

  /** Let a held process go on (admitted or not: a refused one was never admitted). */
  private release(launch: Launch): void {
    try {
      this.deps.tracer?.detach(launch.pid);
    } catch {
      // already gone
    }
  }

  /**
   * Admit a live process into a rule's cgroup (the watcher, an answered prompt). Its
   * sockets take the rule's classid at once, so a connection it is already attempting
   * gets through on its next retransmission. The caller has verified the process.
   */
  admit(pid: number, ruleKey: string): Promise<void> {
    return this.serial(async () => {
      if (!this.classids.has(ruleKey)) throw new Error(`rule ${ruleKey} has no cgroup (not an allow rule in force)`);
      await this.deps.cgroups.move(pid, ruleKey);
      this.populated.add(ruleKey);
    });
  }

  /** Take a process out of whatever rule it is in (classid 0): its sockets lose access at once. */
  releasePid(pid: number): Promise<void> {
    return this.serial(() => this.deps.cgroups.release(pid));
  }

  /** The rule a process is admitted under, if any. */
  async ruleOf(pid: number): Promise<string | undefined> {
    const text = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
    const key = ruleKeyOf(text, this.deps.cgroups.rootName);
    return key !== undefined && this.classids.has(key) ? key : undefined;
  }

  /** Processes admitted now, by rule key. */
  async admitted(): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    for (const key of [...this.populated]) {
      const pids = await this.deps.cgroups.procs(key);
      if (pids.length) out.set(key, pids);
      else this.populated.delete(key);
    }
    return out;
  }

  /**
   * Rule cgroups that may hold processes. A process enters one only when the helper moves
   * it there (or is forked by one already inside), so reading just these is complete; an
   * empty one drops out. Reading every rule's cgroup.procs every 2 s cost 9% of a core
   * with 1,000 rules (bench).
   */
  private readonly populated = new Set<string>();

  private async admittedPids(unscopedOnly = false): Promise<number[]> {
    const unscoped = unscopedOnly && this.policy
      ? new Set(processAllowRules(this.policy).filter((r) => !r.destinations?.length).map((r) => r.key))
      : undefined;
    const out: number[] = [];
    for (const k of [...this.populated]) {
      if (!this.classids.has(k)) {
        this.populated.delete(k);
        continue;
      }
      if (unscoped && !unscoped.has(k)) continue;
      const pids = await this.deps.cgroups.procs(k);
      if (!pids.length) this.populated.delete(k);
      out.push(...pids);
    }
    return out;
  }

  /**
   * Periodic upkeep: the set of ports admitted processes (of whole-tunnel rules) listen on,
   * so new inbound connections from the tunnel reach only them.
   */
  refreshListeners(): Promise<void> {
    return this.serial(async () => {
      if (!this.policy) return;
      const now = await this.deps.listeningPorts(await this.admittedPids(true));
      if (JSON.stringify(now) === JSON.stringify(this.listeners)) return;
      await this.deps.nft.apply(renderListeners(now));
      this.listeners = now;
    });
  }

  async status(): Promise<StatusReport> {
    const policy = this.policy;
    const present = await this.deps.listInterfaces().catch(() => []);
    const problems = [...(policy?.problems ?? [])];
    if (this.applyProblem) problems.unshift(this.applyProblem);
    const tableThere = await this.deps.nft.tableExists().catch(() => false);
    if (!tableThere) problems.unshift('the tunnelgate table is missing from nftables');
    if (!this.deps.tracer) problems.push('ptrace is not available: programs started with tunnelgate run lose their first packets while they are verified');
    const interfaces = (policy?.interfaces ?? []).map((pattern) => ({
      pattern,
      present: present.filter((n) => (pattern.endsWith('*') ? n.startsWith(pattern.slice(0, -1)) : n === pattern)),
    }));
    for (const i of interfaces) if (!i.present.length) problems.push(`no interface matching ${i.pattern} exists now (it is gated as soon as it appears)`);
    const degraded = !tableThere || this.applyProblem !== undefined || !policy?.sources.length ||
      policy.sources.some((s) => s.state !== 'active');
    return {
      state: !policy || !tableThere ? 'down' : degraded ? 'degraded' : policy.mode === 'audit' ? 'audit' : 'enforcing',
      mode: policy?.mode ?? 'enforce',
      mechanism: 'net_cls',
      cgroupDir: this.deps.cgroups.dir,
      interfaces,
      ruleCount: policy?.rules.length ?? 0,
      admittedProcesses: (await this.admittedPids()).length,
      dropped: await this.deps.nft.counter(policy?.mode === 'audit' ? 'audited' : 'dropped'),
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
   * Take everything away: our table is deleted, processes go back to the top of the
   * net_cls hierarchy (where they were), the cgroups are removed. Nothing else.
   */
  async uninstall(): Promise<void> {
    await this.serial(async () => {
      const { cgroups, nft } = this.deps;
      await nft.deleteTable();
      for (const key of await cgroups.children()) {
        for (const pid of await cgroups.procs(key)) await cgroups.release(pid);
        await cgroups.remove(key);
      }
      await cgroups.remove('');
    });
  }
}
