// The gate: owns the table and the net_cls subtree, and admits processes into rules;
// after a restart it adopts what a previous helper left; it keeps the listener set of the
// inbound rules current. Decisions come from helper/policy (pure), text from
// helper/ruleset (pure), /proc through a port (ports.ts); this class sequences the I/O and
// keeps the last good state when anything fails. The `run` protocol is launches.ts.
import { subscribe } from '../../common/listeners.js';
import { statSync } from 'node:fs';
import type { StatusReport } from '../../common/api.js';
import type { Policy } from '../../common/policy.js';
import { decide } from '../policy/decide.js';
import type { Verdict } from '../policy/decide.js';
import { processAllowRules, renderGatedIndexes, renderTable, renderZoneListeners, zoneKey, zonesOf } from '../ruleset/render.js';
import { nextGatedIndexes } from '../ruleset/interfaces.js';
import type { GatedIndex } from '../ruleset/interfaces.js';
import type { Link } from '../kernel/links.js';
import type { NetClsTree } from '../kernel/netcls.js';
import { classid, ruleKeyOf } from '../kernel/netcls.js';
import { tableDigest, tableOutline } from '../kernel/nft.js';
import type { Nft } from '../kernel/nft.js';
import type { HashCache } from '../kernel/proc.js';
import type { Listener } from '../kernel/sockets.js';
import type { ExecTracer } from '../native/index.js';
import type { EventSink } from './event-bus.js';
import { procPort } from './ports.js';
import type { ProcPort } from './ports.js';
import { statusReport } from './status.js';

export interface GateDeps {
  nft: Nft;
  cgroups: NetClsTree;
  /** The major number of every classid we hand out. */
  classidMajor: number;
  /** NFLOG group of the refuse chain. */
  nflogGroup: number;
  hashes: HashCache;
  /** /proc reads (default: procPort(hashes), the real /proc). */
  procs?: ProcPort;
  events: EventSink;
  /** Interfaces present in this namespace now. */
  listInterfaces: () => Promise<string[]>;
  /** Ports these processes listen on (helper/kernel/sockets.ts). */
  listeningPorts: (pids: readonly number[]) => Promise<Listener[]>;
  /** Listeners and contested ones (helper/kernel/sockets.ts inspectListeners); default: listeningPorts, none contested. */
  inspectListeners?: (pids: readonly number[]) => Promise<{ listeners: Listener[]; contested: Listener[] }>;
  /** Links of this namespace with their indexes (helper/kernel/links.ts); without it nothing is gated by index. */
  listLinks?: () => Promise<Link[]>;
  /** The gated indexes a previous helper saved (STATE/gated-interfaces.json). */
  gatedIndexes?: readonly GatedIndex[];
  /** Where what is in force is saved after each transaction (atomically, by startup). */
  persist?: GatePersistence;
  /** Write failures of the state dir now, read at every status (helper/kernel/files.ts storageHealth). */
  storageProblems?: () => readonly string[];
  version: string;
  /**
   * The tracer launches use (helper/core/launches.ts), here only for status: without one
   * (ptrace forbidden on this machine) a launched program runs unadmitted while it is
   * verified, so its first packets are dropped and go through on retransmission.
   */
  tracer?: ExecTracer;
}

/** Saving what is in force (STATE/gated-interfaces.json, STATE/ruleset.nft); errors are reported, never thrown on. */
export interface GatePersistence {
  gatedIndexes(gated: readonly GatedIndex[]): Promise<void>;
  /** The full ruleset text now in force, for an early boot unit to `nft -f` before the network (issue 11). */
  ruleset(text: string): Promise<void>;
}

/** What the last look at the kernel found (verify()). */
interface KernelView {
  /** Our table exists. */
  there: boolean;
  /** And is what the helper applied (tableDigest). */
  intact: boolean;
  /** Why it is not as it should be and could not be put back, if so. */
  problem?: string;
}

export class Gate {
  private policy: Policy | undefined;
  /** Interfaces gated by index (issue 9.2): kept across renames, saved across restarts. */
  private gated: GatedIndex[];
  /** Digest of our table as the kernel listed it right after our last transaction. */
  private appliedDigest: string | undefined;
  private kernel: KernelView = { there: false, intact: false };
  /** Restorations and repairs done, newest last (a few): status reports them. */
  private readonly notes: string[] = [];
  private contested: Listener[] = [];
  /** Classid of each rule cgroup, by rule key (the cgroup's name). */
  private readonly classids = new Map<string, number>();
  private listeners: Listener[] = [];
  /** Listeners by zone (render.ts zoneKey): a zone's new inbound flows reach only its own. */
  private listenersByZone = new Map<string, Listener[]>();
  private readonly startedAt = new Date();
  private appliedAt: Date | undefined;
  private applyProblem: string | undefined;
  /** nft and cgroup changes are serialised: one transaction at a time, in order. */
  private queue: Promise<unknown> = Promise.resolve();

  private readonly procs: ProcPort;

  constructor(private readonly deps: GateDeps) {
    this.procs = deps.procs ?? procPort(deps.hashes);
    this.gated = [...(deps.gatedIndexes ?? [])];
  }

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
        // The first apply already carries the listeners of adopted processes (issue 9.8);
        // every apply puts each listener in the zones of the new policy only.
        await this.computeListeners(policy);
        this.gated = nextGatedIndexes(this.gated, await this.links(), policy.interfaces);
        const text = this.render(policy);
        await this.deps.nft.apply(text);
        this.policy = policy;
        this.appliedAt = new Date();
        this.applyProblem = undefined;
        // Only now, with nft returned: the kernel has it (issue 9.0).
        await this.inForce(text);
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
          const ppid = await this.procs.process(pid).then((p) => p.ppid, () => undefined);
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
    return decide(policy, await this.procs.identity(pid, policy));
  }

  private readonly policyListeners = new Set<(policy: Policy) => void>();

  /** Called after each policy is in force (and removed rules are retired): the watcher re-checks then. */
  onPolicyChange(cb: (policy: Policy) => void): () => void {
    return subscribe(this.policyListeners, cb);
  }

  private readonly admitListeners = new Set<(pid: number) => void>();

  /**
   * Called with each pid admit() is about to move, before the move, whoever admits it (the
   * exec hold, the watcher, `run`, a prompt answer): the watcher follows it from then on.
   */
  onAdmit(cb: (pid: number) => void): () => void {
    return subscribe(this.admitListeners, cb);
  }

  /** The net_cls directory of the rule cgroups (watched by startup for removals). */
  get cgroupDir(): string {
    return this.deps.cgroups.dir;
  }

  /** The subtree's name: a process's net_cls path is /<cgroupRoot>/<rule key>. */
  get cgroupRoot(): string {
    return this.deps.cgroups.rootName;
  }

  /**
   * Admit a live process into a rule's cgroup (the watcher, an answered prompt). Its
   * sockets take the rule's classid at once, so a connection it is already attempting
   * gets through on its next retransmission. The caller has verified the process. Throws
   * `missing()` (default: an Error) when the rule has no cgroup (not an allow rule in force).
   */
  admit(pid: number, ruleKey: string, missing?: () => Error): Promise<void> {
    for (const cb of this.admitListeners) cb(pid);
    return this.serial(async () => {
      if (!this.classids.has(ruleKey)) throw missing?.() ?? new Error(`rule ${ruleKey} has no cgroup (not an allow rule in force)`);
      await this.deps.cgroups.move(pid, ruleKey);
      this.noteAdmission(pid, ruleKey);
    });
  }

  /**
   * admit() at once, for the exec hold (issue 10: a held exec must not wait behind the
   * serial queue's listener refresh or nft verify). Synchronous, so no policy change can
   * interleave: false (nothing done; use admit()) unless `ruleKey` is an allow rule of the
   * policy in force whose cgroup exists, and on any error of the move. A policy change
   * already in flight that drops the rule releases the process with the rest of the
   * cgroup's (retireRemovedRules reads cgroup.procs after the new policy is current).
   */
  admitNow(pid: number, ruleKey: string): boolean {
    if (!this.inForceAllow(ruleKey)) return false;
    for (const cb of this.admitListeners) cb(pid);
    try {
      this.deps.cgroups.moveNow(pid, ruleKey);
    } catch {
      return false;
    }
    this.noteAdmission(pid, ruleKey);
    return true;
  }

  /** `ruleKey` is an allow rule of the policy in force, with its cgroup (a process may be moved into it). */
  private inForceAllow(ruleKey: string): boolean {
    return this.classids.has(ruleKey) && (this.policy?.rules.some((r) => r.key === ruleKey && r.action === 'allow') ?? false);
  }

  /**
   * Where the exec hold's reader thread may move a process for `ruleKey` by itself (a verdict
   * ticket, helper/kernel/fanotify.ts): the rule's cgroup.procs, or undefined when the rule
   * is not an allow rule of the policy in force or has no cgroup.
   */
  ticketTarget(ruleKey: string): string | undefined {
    if (!this.inForceAllow(ruleKey)) return undefined;
    return this.deps.cgroups.procsFile(ruleKey);
  }

  /**
   * A process the exec hold's reader thread moved into `ruleKey`'s cgroup by itself: what
   * admitNow() does around its move (the admit listeners follow it; recentAdmission knows
   * it), afterwards.
   */
  adoptAdmission(pid: number, ruleKey: string): void {
    for (const cb of this.admitListeners) cb(pid);
    this.noteAdmission(pid, ruleKey);
  }

  /** The processes in `ruleKey`'s cgroup now (cgroup.procs). */
  procsOf(ruleKey: string): Promise<number[]> {
    return this.deps.cgroups.procs(ruleKey);
  }

  private noteAdmission(pid: number, ruleKey: string): void {
    this.populated.add(ruleKey);
    this.recent.delete(pid);
    this.recent.set(pid, { key: ruleKey, at: this.now() });
    if (this.recent.size > Gate.RECENT_ADMISSIONS) this.recent.delete(this.recent.keys().next().value as number);
  }

  /**
   * The rule process `pid` was admitted under within the last minute (RECENT_ADMISSION_MS), also if
   * it has exited since: a packet it sent before that admission and read only now (its drop
   * is logged asynchronously) is not a refusal. Undefined when no such admission is known.
   */
  recentAdmission(pid: number): string | undefined {
    const r = this.recent.get(pid);
    return r && this.now() - r.at <= Gate.RECENT_ADMISSION_MS ? r.key : undefined;
  }

  /** How many admissions recentAdmission() remembers, and for how long (ms). */
  private static readonly RECENT_ADMISSIONS = 4096;
  private static readonly RECENT_ADMISSION_MS = 60_000;
  /** Admissions by pid, oldest first (bounded: RECENT_ADMISSIONS). */
  private readonly recent = new Map<number, { key: string; at: number }>();
  private readonly now = (): number => Date.now();

  /** Take a process out of whatever rule it is in (classid 0): its sockets lose access at once. */
  releasePid(pid: number): Promise<void> {
    return this.serial(() => this.deps.cgroups.release(pid));
  }

  /** The rule a process is admitted under, if any. */
  async ruleOf(pid: number): Promise<string | undefined> {
    const text = await this.procs.cgroup(pid);
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

  /** Pids in the rule cgroups (of the rules `only` names, if given). */
  private async admittedPids(only?: ReadonlySet<string>): Promise<number[]> {
    const out: number[] = [];
    for (const k of [...this.populated]) {
      if (!this.classids.has(k)) {
        this.populated.delete(k);
        continue;
      }
      if (only && !only.has(k)) continue;
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
      const before = JSON.stringify([...this.listenersByZone]);
      await this.computeListeners(this.policy);
      if (JSON.stringify([...this.listenersByZone]) === before) return;
      await this.deps.nft.apply(renderZoneListeners(this.policy, this.classids, this.listenersByZone));
      await this.inForce(this.render(this.policy));
    });
  }

  /**
   * Listeners of admitted processes now, per zone (those of the processes whose classid is
   * open to the zone's whole tunnel); a changed non-empty contested set is an event (issue 9.7).
   */
  private async computeListeners(policy: Policy): Promise<void> {
    const inspect = async (pids: number[]) => (this.deps.inspectListeners
      ? await this.deps.inspectListeners(pids)
      : { listeners: await this.deps.listeningPorts(pids), contested: [] });
    const byZone = new Map<string, Listener[]>();
    const listeners: Listener[] = [];
    const contested: Listener[] = [];
    for (const z of zonesOf(policy, this.classids)) {
      if (!z.whole.size) continue;
      const pids = await this.admittedPids(z.whole);
      if (!pids.length) continue;
      const found = await inspect(pids);
      byZone.set(zoneKey(z), found.listeners);
      listeners.push(...found.listeners);
      contested.push(...found.contested);
    }
    const found = { listeners, contested: [...new Map(contested.map((l) => [listenerText(l), l])).values()] };
    const was = JSON.stringify(this.contested);
    this.listenersByZone = byZone;
    this.listeners = found.listeners;
    this.contested = found.contested;
    if (found.contested.length && JSON.stringify(found.contested) !== was) {
      this.deps.events.emit({ type: 'listeners.contested', listeners: found.contested.map(listenerText) });
    }
  }

  private links(): Promise<Link[]> {
    return this.deps.listLinks ? this.deps.listLinks() : Promise.resolve([]);
  }

  /** The full table of a policy with everything the gate keeps now (cgroups, listeners, gated indexes). */
  private render(policy: Policy): string {
    return renderTable({
      policy,
      classids: this.classids,
      listeners: this.listeners,
      listenersByZone: this.listenersByZone,
      nflogGroup: this.deps.nflogGroup,
      gatedIndexes: this.gated,
    });
  }

  /**
   * After a transaction returned: remember the kernel's table (its digest) to notice changes
   * by anyone else, and save the full ruleset now in force and the gated indexes.
   */
  private async inForce(fullText: string): Promise<void> {
    const listing = await this.deps.nft.listTable();
    // Adopt the read-back only if it is the table just rendered: another writer between our
    // transaction and this listing (a second helper, found by a fresh tester) would
    // otherwise be taken for ours, and never be put back. Not ours: the next look (nft
    // monitor announces that writer's change, status looks too) puts ours back.
    const ours = listing !== undefined && tableOutline(listing) === tableOutline(fullText);
    this.appliedDigest = ours ? tableDigest(listing) : undefined;
    this.kernel = { there: listing !== undefined, intact: ours };
    const p = this.deps.persist;
    if (!p) return;
    await p.ruleset(fullText).catch((e: Error) => this.note(`could not save the ruleset in force: ${e.message}`));
    await p.gatedIndexes(this.gated).catch((e: Error) => this.note(`could not save the gated interfaces: ${e.message}`));
  }

  private note(line: string): void {
    this.notes.push(`${new Date().toISOString()}: ${line}`);
    if (this.notes.length > 5) this.notes.shift();
  }

  /**
   * A link appeared, changed or went (helper/kernel/links.ts): gate by index every interface
   * that now carries a gated name (issue 9.2). In the serial queue, one transaction.
   */
  linksChanged(): Promise<void> {
    return this.serial(async () => {
      const policy = this.policy;
      if (!policy) return;
      const next = nextGatedIndexes(this.gated, await this.links(), policy.interfaces);
      if (JSON.stringify(next) === JSON.stringify(this.gated)) return;
      await this.deps.nft.apply(renderGatedIndexes(policy, this.classids, next));
      this.gated = next;
      await this.inForce(this.render(policy));
    });
  }

  /**
   * Check the kernel against what is in force and put back what someone else changed
   * (issues 9.0, 9.12, 9.13): our table (deleted, or its content changed) is re-applied in
   * full, missing rule cgroups are recreated with their classids. `trigger` says what made
   * us look (`nft monitor: nft (pid 123)`, `cgroup watch`, `status`, `SIGHUP`, `timer`).
   * Each restoration is an event and a line of status. Never throws.
   */
  verify(trigger: string): Promise<void> {
    return this.serial(async () => {
      const policy = this.policy;
      if (!policy) return;
      await this.verifyTable(policy, trigger).catch((e: Error) => (this.kernel = { ...this.kernel, problem: `checking the table: ${e.message}` }));
      await this.repairCgroups(trigger).catch((e: Error) => (this.cgroupProblem = `rule cgroups could not be repaired: ${e.message}`));
    });
  }

  private cgroupProblem: string | undefined;

  private async verifyTable(policy: Policy, trigger: string): Promise<void> {
    const listing = await this.deps.nft.listTable();
    const intact = listing !== undefined && tableDigest(listing) === this.appliedDigest;
    this.kernel = { there: listing !== undefined, intact };
    if (intact) return;
    const what = listing === undefined ? 'deleted' : 'changed';
    try {
      const text = this.render(policy);
      await this.deps.nft.apply(text);
      await this.inForce(text);
      this.note(`the tunnelgate table was ${what} by someone else (seen by ${trigger}) and was put back`);
      this.deps.events.emit({ type: 'gate.restored', what: `table ${what}`, trigger });
    } catch (e) {
      this.kernel = { there: listing !== undefined, intact: false, problem: `the tunnelgate table was ${what} by someone else and could not be put back: ${(e as Error).message}` };
      this.deps.events.emit({ type: 'policy.failed', reason: this.kernel.problem as string });
    }
  }

  /** Rule cgroups removed under us (anything may rmdir an empty one, or the subtree): recreated with their classids. */
  private async repairCgroups(trigger: string): Promise<void> {
    const { cgroups } = this.deps;
    const present = new Set(await cgroups.children());
    const missing = [...this.classids].filter(([key]) => !present.has(key));
    this.cgroupProblem = undefined;
    if (!missing.length) return;
    await cgroups.ensure();
    for (const [key, id] of missing) {
      await cgroups.ensure(key);
      await cgroups.writeClassid(key, id);
    }
    this.note(`${missing.length} rule cgroup(s) were removed by someone else (seen by ${trigger}) and were recreated`);
    this.deps.events.emit({ type: 'gate.restored', what: `${missing.length} rule cgroup(s) removed`, trigger });
  }

  /** The status report (helper/core/status.ts) of what the kernel has now: looked at (and repaired) first. */
  async status(): Promise<StatusReport> {
    await this.verify('status');
    const policy = this.policy;
    const links = await this.links().catch(() => []);
    const presentInterfaces = this.deps.listLinks ? links.map((l) => l.name) : await this.deps.listInterfaces().catch(() => []);
    const admittedProcesses = (await this.admittedPids()).length;
    const dropped = await this.deps.nft.counter(policy?.mode === 'audit' ? 'audited' : 'dropped');
    return statusReport({
      policy,
      presentInterfaces,
      applyProblem: this.applyProblem,
      tableThere: this.kernel.there,
      tableIntact: this.kernel.intact,
      kernelProblems: [this.kernel.problem, this.cgroupProblem].filter((p): p is string => p !== undefined),
      notes: [...this.notes],
      storageProblems: this.deps.storageProblems?.() ?? [],
      contested: this.contested.map(listenerText),
      ...(this.deps.listLinks ? { links, gated: this.gated } : {}),
      hasTracer: this.deps.tracer !== undefined,
      cgroupDir: this.deps.cgroups.dir,
      admittedProcesses,
      dropped,
      helper: { pid: process.pid, version: this.deps.version, startedAt: this.startedAt, appliedAt: this.appliedAt, ...netnsOf() },
    });
  }

  /**
   * Take everything away: our table is deleted, processes go back to the top of the
   * net_cls hierarchy (where they were), the cgroups are removed. Nothing else.
   */
  async uninstall(): Promise<void> {
    await this.serial(async () => {
      const { cgroups, nft } = this.deps;
      this.policy = undefined;
      await nft.deleteTable();
      for (const key of await cgroups.children()) {
        for (const pid of await cgroups.procs(key)) await cgroups.release(pid);
        await cgroups.remove(key);
      }
      await cgroups.remove('');
    });
  }
}

/** `udp 127.0.0.1:9500`, `tcp [::]:22` */
function listenerText(l: Listener): string {
  const a = l.addr ?? '*';
  return `${l.proto} ${a.includes(':') ? `[${a}]` : a}:${l.port}`;
}

/** The inode of our network namespace (issue 9.0: a CLI in another namespace is told its state is not ours). */
function netnsOf(): { netns?: number } {
  try {
    return { netns: statSync('/proc/self/ns/net').ino };
  } catch {
    return {};
  }
}
