// The watcher: a whitelisted program gets the tunnel however it was started, and loses it
// when no rule allows it any more.
//
// Design notes (issue 4):
// - Events: exec events (the proc connector, helper/kernel/proc-events.ts; or the polling
//   fallback, helper/identity/exec-poll.ts) name processes that just started a program.
//   Each is looked at cheaply first: one readlink of /proc/PID/exe, and the rules whose
//   path could match it (candidateRules). Only those get the full identity
//   (helper/identity/gather.ts: hash, environment, script, app identity, safety checks).
// - Admission moves the process into its rule's net_cls cgroup (gate.admit). net_cls
//   re-tags the sockets it already has, so a connection it is already attempting passes on
//   its next SYN retransmission (LAB-NOTES.md); the watcher needs no head start.
// - Children start in their parent's cgroup (fork inherits it). `children: inherit`
//   (default) leaves them there; `confine` takes out a descendant whose own program no rule
//   allows when the watcher sees its exec. Between that exec and the watcher's look the
//   child has the tunnel: microseconds to milliseconds with the proc connector, up to one
//   poll tick without. Closing that window needs a hook inside exec itself (BPF LSM).
// - Re-checks: after every policy change (gate.onPolicyChange) and at the next rule expiry,
//   every admitted process is decided again and taken out (gate.releasePid: back to the
//   top of the net_cls hierarchy, where it was) if no rule allows it now, or moved to the
//   rule that does; then all of /proc is scanned for processes a new rule allows. A rule
//   past its `expires` counts as gone here even before the next reload removes it.
//   Inheritance is judged by the parent: a process its own rule does not allow stays only
//   if its parent is in the same cgroup and that rule inherits. A process whose binary was
//   replaced after it was admitted (` (deleted)`: a package upgrade) stays under a path-only
//   rule that still names its path; under a sha256-pinned rule it goes.
// - Start: the first full scan admits everything eligible that already runs (the gate's
//   adopt() has already re-checked what a previous helper left in the rule cgroups).
import { existsSync, promises as fs, readFileSync, readlinkSync, statSync, type BigIntStats } from 'node:fs';
import type { EffectiveRule, Policy } from '../../common/policy.js';
import type { GatheredProcess } from '../identity/gather.js';
import { gatherIdentity, parseStatus } from '../identity/gather.js';
import type { HashCache } from '../kernel/proc.js';
import type { ExecEvents, WatchEvents } from '../kernel/proc-events.js';
import type { ProcEvent } from '../kernel/netlink.js';
import { ruleKeyOf } from '../kernel/netcls.js';
import { inForce, nextExpiry } from '../policy/expiry.js';
import { candidateRules, decide, describe, pathMatches } from '../policy/decide.js';
import { PollingExecEvents } from '../identity/exec-poll.js';
import type { EventSink } from '../core/event-bus.js';
import { refusedInEnviron } from '../identity/exec-env.js';

/** A process the exec hold admitted at its exec: the file it judged, the rule, and under which policy. */
export interface HeldAdmission {
  dev: bigint;
  ino: bigint;
  rule: string;
  /** The policy (the gate's object) the verdict was taken under, valid until `until` (ms since the epoch; a rule's expiry). */
  policy: Policy;
  until: number;
}

/** What the watcher needs of the gate (helper/core/gate.ts). */
export interface WatcherGate {
  readonly current: Policy | undefined;
  readonly cgroupRoot: string;
  admit(pid: number, ruleKey: string): Promise<void>;
  /** admit() in the calling tick, or false (nothing done): the exec hold's fast path (helper/core/gate.ts). */
  admitNow?(pid: number, ruleKey: string): boolean;
  /** Where the exec hold's reader thread may move a process for a rule by itself (helper/core/gate.ts). */
  ticketTarget?(ruleKey: string): string | undefined;
  /** Bookkeeping of a process the exec hold's reader thread admitted by itself (helper/core/gate.ts). */
  adoptAdmission?(pid: number, ruleKey: string): void;
  /** The processes in a rule's cgroup now. */
  procsOf?(ruleKey: string): Promise<number[]>;
  releasePid(pid: number): Promise<void>;
  admitted(): Promise<Map<string, number[]>>;
  onPolicyChange(cb: (policy: Policy) => void): () => void;
}

export interface WatcherDeps {
  gate: WatcherGate;
  events: EventSink;
  hashes: HashCache;
  /**
   * Exec events. A WatchEvents source (openWatchEvents) also reports the forks, exits and
   * ptrace attaches of the processes the watcher follows, filtered in the kernel; with a
   * plain ExecEvents source (polling) every exec costs a cgroup read, as before.
   */
  source: ExecEvents | WatchEvents;
  /**
   * Whether the exec hold (fanotify) holds every exec this policy could admit, so that the
   * execs of processes the watcher does not follow need not reach it. Absent: no hold.
   */
  holdCovers?: (policy: Policy) => boolean;
  /** Processes the exec hold admitted at their exec, with the file it judged (ExecAdmission.heldAt). */
  heldAt?: (pid: number) => HeldAdmission | undefined;
  /** Default: process.pid. */
  selfPid?: number;
  now?: () => number;
  /** Called with every admission, for measurements (bench). */
  onAdmitted?: (pid: number, rule: string) => void;
  log?: (line: string) => void;
}

const MAX_TIMER = 2 ** 31 - 1;

/**
 * Whether an exec hold with these marks holds every exec this policy could admit (pure but
 * for `inodeOf`): each allow rule names one exact path (no glob, script, package, app
 * identity: the hold leaves those to the watcher or cannot mark them all), and that path's
 * file now is the marked inode. False means the watcher must hear every exec.
 * `inodeOf`: the file's dev:ino now, undefined when absent (default: stat).
 */
export function holdCovers(
  policy: Policy,
  marks: ReadonlyArray<{ path: string; dev: bigint; ino: bigint; children: boolean }>,
  inodeOf: (file: string) => { dev: bigint; ino: bigint } | undefined = statInode,
): boolean {
  const byPath = new Map(marks.filter((m) => !m.children).map((m) => [m.path, m]));
  for (const r of policy.rules) {
    const b = r.binary;
    if (r.kernel || r.action !== 'allow') continue;
    if (!b || b.path === undefined || b.path.endsWith('*')) return false;
    if (b.script !== undefined || b.package !== undefined || b.flatpak !== undefined || b.snap !== undefined || b.appimage !== undefined) return false;
    const m = byPath.get(b.path);
    const now = m && inodeOf(b.path);
    if (!m || !now || now.dev !== m.dev || now.ino !== m.ino) return false;
  }
  return true;
}

function statInode(file: string): { dev: bigint; ino: bigint } | undefined {
  try {
    const st = statSync(file, { bigint: true });
    return { dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

/** Whether any rule could name a program by its path: the first look at every exec. */
export interface RuleNames {
  mayName(exe: string): boolean;
}

/**
 * The names the rules of a policy use, for a look that costs one hash lookup per exec
 * (pure). True is "maybe" (candidateRules then says which rules); false is "no rule
 * names this path". Rules past their expiry are kept: a superset is still exact for "no".
 */
export function ruleNames(policy: Policy): RuleNames {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  let any = false; // a rule that may name any path (package, flatpak: candidateRules decides)
  for (const r of policy.rules) {
    const b = r.binary;
    if (r.kernel || !b) continue;
    if (b.path !== undefined) {
      if (b.path.endsWith('*')) prefixes.push(b.path.slice(0, -1));
      else exact.add(b.path);
    } else if (b.snap !== undefined) prefixes.push(`/snap/${b.snap}/`);
    else if (b.package !== undefined || b.appimage !== undefined || b.flatpak !== undefined) any = true;
  }
  if (any) return { mayName: () => true };
  return { mayName: (exe) => exact.has(exe) || prefixes.some((p) => exe.startsWith(p)) };
}

export class Watcher {
  private readonly unsubscribe: Array<() => void> = [];
  /** One examination per pid at a time; a request meanwhile runs once more after it. */
  private readonly busy = new Map<number, boolean>();
  private readonly forced = new Set<number>();
  /** Refusals already reported, by pid:starttime, so a re-check does not repeat them. */
  private readonly reported = new Map<string, true>();
  private expiryTimer: NodeJS.Timeout | undefined;
  private rechecking: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly selfPid: number;
  private readonly now: () => number;
  /**
   * Followed processes (tgids): every process in a rule cgroup, the children they forked
   * since, and processes about to be admitted or judged (track()). Only with a WatchEvents
   * source, whose kernel filter passes exactly their forks, exits, execs and ptrace events;
   * an exec of anything else is dismissed without a cgroup read unless a rule names it.
   */
  private readonly followed = new Set<number>();
  private readonly watch: WatchEvents | undefined;
  /** The cheap first look of the current policy (by identity of the policy object). */
  private index: { policy: Policy; names: RuleNames } | undefined;

  constructor(private readonly deps: WatcherDeps) {
    this.selfPid = deps.selfPid ?? process.pid;
    this.now = deps.now ?? Date.now;
    this.watch = 'setWatched' in deps.source ? deps.source : undefined;
  }

  /** Subscribe, then admit everything eligible that already runs. */
  async start(): Promise<void> {
    const { source, gate } = this.deps;
    this.unsubscribe.push(source.onExec((pid) => this.examine(pid)));
    if (this.watch) this.unsubscribe.push(this.watch.onEvent((e) => this.onEvent(e)));
    else if ('onEvent' in source) {
      // A ptrace attach to any process (a source without follow-up: every event): as below.
      const withEvents = source as ExecEvents & { onEvent(cb: (e: ProcEvent) => void): () => void };
      this.unsubscribe.push(withEvents.onEvent((e) => e.kind === 'ptrace' && e.tracerTgid !== 0 && e.tracerTgid !== this.selfPid && void this.examineNow(e.tgid, true)));
    }
    this.unsubscribe.push(source.onOverrun(() => void this.recheck('events were lost')));
    this.unsubscribe.push(gate.onPolicyChange(() => {
      // Every exec is heard again until the hold is known to cover the new policy (recheck).
      this.watch?.setAllExecs(true);
      void this.recheck('policy changed');
    }));
    await this.recheck('helper started');
  }

  /**
   * Follow `pid` from now on (its forks, execs, exit, ptrace), before it is moved into a
   * rule cgroup or while its held exec is judged. Call it BEFORE the move: a child forked
   * after this returns is reported by the kernel. Synchronous. It is followed until it exits.
   */
  track(pid: number): void {
    if (!this.watch || this.followed.has(pid)) return;
    this.followed.add(pid);
    this.flushUntracked();
  }

  /**
   * A held exec that the hold let go at its deadline, unanswered (task `tid`): the exec may
   * have run before the watcher followed its process, so its exec event may have been
   * dropped in the kernel. Follow the process now, then look at it once.
   */
  execLetGo(tid: number): void {
    let tgid = tid;
    try {
      tgid = Number(/^Tgid:\s*(\d+)/m.exec(readFileSync(`/proc/${tid}/status`, 'latin1'))?.[1] ?? tid);
    } catch {
      /* the exec is done: the thread is the process now */
    }
    this.track(tgid);
    this.examine(tgid);
  }

  /**
   * A process the exec hold's reader thread admitted into `rule` by itself (a verdict
   * ticket): it ran a moment before the watcher followed it (the gate's admit listeners
   * follow it now), so the kernel filter may have dropped its exec event and its first
   * forks. Once its exec is done (/proc/PID/exe is the admitted inode: trustworthy, the
   * reader thread admits only processes of the initial user namespace) it is looked at as
   * on its exec event; so is a process that runs neither the admitted file nor `caller`
   * (the program that called execve): it exec'd again at once, and those exec events were
   * dropped (a launcher that execs a program no rule allows: a fresh tester's case). While
   * exe still names `caller` (a running task's /proc/PID/syscall says only "running", so
   * an exec under way cannot be told from one that failed), its exec event is still to
   * come, and exec-admission looks again when the exec turns out to have failed (the
   * file's close) or after a grace period. Whatever entered the rule's cgroup unfollowed
   * meanwhile (children forked in that moment) is followed, then looked at, until nothing
   * new is found: a child forked after its parent was followed is reported by the kernel.
   */
  async adopt(pid: number, rule: string, inode: { dev: bigint; ino: bigint }, caller?: { dev: bigint; ino: bigint }): Promise<void> {
    this.track(pid);
    let st: BigIntStats | undefined;
    try {
      st = statSync(`/proc/${pid}/exe`, { bigint: true });
    } catch {
      st = undefined;
    }
    const is = (f: { dev: bigint; ino: bigint } | undefined) => f !== undefined && st?.dev === f.dev && st.ino === f.ino;
    if (st === undefined && !existsSync(`/proc/${pid}`)) this.untrack(pid);
    // Still the program that called execve: the exec is under way (its exec event is still
    // to come) or failed (exec-admission looks again). Else the exec is done, and maybe
    // another after it whose exec event the filter dropped: decided now, on what it runs.
    else if (st !== undefined && (is(inode) || (caller !== undefined && !is(caller)))) void this.examineNow(pid, true);
    if (!this.watch || !this.deps.gate.procsOf) return;
    for (let round = 0; round < Watcher.ADOPT_ROUNDS; round++) {
      const inside = await this.deps.gate.procsOf(rule).catch(() => [] as number[]);
      const fresh = inside.filter((p) => !this.followed.has(p));
      if (!fresh.length) return;
      for (const p of fresh) this.followed.add(p);
      this.flushUntracked();
      for (const p of fresh) void this.examineNow(p, true);
    }
    // Still new ones after that many rounds (a fork storm): the full re-check follows and
    // decides everything in the rule cgroups.
    void this.recheck('a fork storm right after an exec admitted at the hold');
  }

  private static readonly ADOPT_ROUNDS = 8;

  /**
   * An exited process leaves the kernel filter with the next change of it, or within
   * UNTRACK_MS: each replacement of the filter costs a program load in the kernel (~0.5 ms
   * on a loaded machine), and a pid that has exited sends no more events (a reused pid
   * followed for that moment costs only its events).
   */
  private untrack(pid: number): void {
    if (!this.watch || !this.followed.delete(pid)) return;
    this.untrackTimer ??= setTimeout(() => this.flushUntracked(), Watcher.UNTRACK_MS).unref();
  }

  private static readonly UNTRACK_MS = 1_000;
  private untrackTimer: NodeJS.Timeout | undefined;

  /** Put the followed set in force in the kernel filter now. */
  private flushUntracked(): void {
    clearTimeout(this.untrackTimer);
    this.untrackTimer = undefined;
    this.watch?.setWatched(this.followed);
  }

  /** Processes followed now (tests, bench). */
  get following(): number {
    return this.followed.size;
  }

  /** A fork, exec, exit or ptrace event of a followed process (the kernel filtered the rest). */
  private onEvent(e: ProcEvent): void {
    switch (e.kind) {
      case 'fork':
        if (e.childPid !== e.childTgid || !this.followed.has(e.parentTgid)) return;
        // The child may have exec'd before the filter knew it (its exec event was dropped):
        // one look after the filter is updated covers that; later execs are reported.
        this.track(e.childTgid);
        void this.examineNow(e.childTgid, true);
        return;
      case 'exit':
        if (e.pid === e.tgid) this.untrack(e.tgid);
        return;
      case 'ptrace':
        // A ptrace attach (tracer != 0): decide it again at once; a traced process loses
        // the tunnel whatever its rule or parent (gather reports TracerPid).
        if (e.tracerTgid !== 0 && e.tracerTgid !== this.selfPid) void this.examineNow(e.tgid, true);
        return;
      default:
        return;
    }
  }

  stop(): void {
    this.stopped = true;
    for (const u of this.unsubscribe.splice(0)) u();
    clearTimeout(this.expiryTimer);
    clearTimeout(this.untrackTimer);
  }

  /** Re-decide every admitted process, then scan /proc for newly allowed ones. Serialised. */
  recheck(why: string): Promise<void> {
    const run = async () => {
      if (this.stopped) return;
      const t0 = performance.now();
      const admitted = await this.deps.gate.admitted().catch(() => new Map<string, number[]>());
      const admittedPids = [...admitted.values()].flat();
      if (this.watch) {
        // What is in the rule cgroups now is followed. A followed process stops being
        // followed only when it exits (its exit event; here, after lost events, when it is
        // gone): never on a look that found it outside, which may race its admission.
        for (const pid of admittedPids) this.followed.add(pid);
        for (const pid of this.followed) if (!existsSync(`/proc/${pid}`)) this.followed.delete(pid);
        this.watch.setWatched(this.followed);
      }
      await Promise.all(admittedPids.map((pid) => this.examineNow(pid, true)));
      const pids = (await fs.readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number);
      // In batches: a machine has thousands of processes, and most are dismissed by one readlink.
      for (let i = 0; i < pids.length; i += 64) await Promise.all(pids.slice(i, i + 64).map((pid) => this.examineNow(pid, false)));
      this.armExpiry();
      this.hearExecs();
      this.deps.log?.(`watcher: re-checked ${admittedPids.length} admitted and ${pids.length} processes (${why}) in ${Math.round(performance.now() - t0)} ms`);
    };
    this.rechecking = this.rechecking.then(run, run);
    return this.rechecking;
  }

  /**
   * Execs of processes the watcher does not follow reach it only while something could be
   * missed: no exec hold, or a policy with a rule the hold does not cover (scripts,
   * packages, app identities, globs, a binary not marked yet). Only with the kernel filter.
   * Called after every re-check, and by startup once the hold's marks are placed.
   */
  hearExecs(): void {
    const policy = this.deps.gate.current;
    if (!this.watch || this.watch.filter !== 'kernel' || !policy) return;
    this.watch.setAllExecs(!(this.deps.holdCovers?.(policy) ?? false));
  }

  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    const policy = this.deps.gate.current;
    const ms = policy ? nextExpiry(policy, this.now()) : undefined;
    if (ms === undefined || this.stopped) return;
    this.expiryTimer = setTimeout(() => void this.recheck('a rule expired'), Math.min(ms + 5, MAX_TIMER));
    this.expiryTimer.unref();
  }

  /** An exec event: look at the process (never throws). */
  examine(pid: number): void {
    void this.examineNow(pid, false);
  }

  /**
   * `force`: read the process's cgroup even when no rule names its program (a re-check of
   * an admitted process). One look per pid at a time; a request meanwhile runs once after.
   */
  private async examineNow(pid: number, force: boolean): Promise<void> {
    if (this.busy.has(pid)) {
      this.busy.set(pid, true);
      if (force) this.forced.add(pid);
      return;
    }
    try {
      let again = true;
      while (again && !this.stopped) {
        this.busy.set(pid, false);
        const f = force || this.forced.delete(pid);
        await this.look(pid, f).catch((e: NodeJS.ErrnoException) => {
          // A process that exits while it is looked at is not an error.
          if (e.code !== 'ENOENT' && e.code !== 'ESRCH' && e.code !== 'EINVAL') this.deps.log?.(`watcher: process ${pid}: ${e.message}`);
        });
        again = this.busy.get(pid) === true;
        force = false;
      }
    } finally {
      this.busy.delete(pid);
      this.forced.delete(pid);
    }
  }

  /** Look at one process and put it where its verdict says. */
  private async look(pid: number, force: boolean): Promise<void> {
    const full = this.deps.gate.current;
    if (!full || pid === this.selfPid) return;
    // Hot path: one readlink, then a lookup of the path among the names the rules use.
    let link: string;
    try {
      link = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      return; // gone, or a kernel thread
    }
    const exe = link.endsWith(' (deleted)') ? link.slice(0, -' (deleted)'.length) : link;
    const named = this.namesOf(full).mayName(exe);
    // A program no rule names matters only inside a rule cgroup (one verdict whenever it is
    // taken: an admitted process that execs such a program is decided again at that exec,
    // not at the next re-check). Following in the kernel, the watcher knows which processes
    // may be inside without reading their cgroup; without it, a cgroup read says.
    if (!named && !force) {
      if (this.watch ? !this.followed.has(pid) : !full.rules.some((r) => r.action === 'allow')) return;
    }
    const policy = inForce(full, this.now());
    const candidates = named ? candidateRules(policy, exe) : [];
    if (!this.inOwnNetns(pid)) return;
    const current = this.currentRule(pid);
    if (current !== undefined && this.heldStillHolds(pid, current)) return;
    if (!candidates.length && !force && current === undefined) return;
    if (!candidates.length) {
      if (current === undefined) return;
      const tracer = await this.tracerOf(pid);
      if (tracer !== undefined) {
        await this.deps.gate.releasePid(pid);
        this.deps.events.emit({ type: 'process.released', pid, path: exe, rule: current, reason: `it is being traced by process ${tracer}, which can change its code` });
        return;
      }
      await this.settle(pid, exe, policy, current, undefined);
      return;
    }
    const gathered = await gatherIdentity(pid, policy, { hashes: this.deps.hashes, selfPid: this.selfPid });
    if (gathered.tgid !== pid) return; // a thread: its process is looked at on its own
    if (this.execedSince(pid, link)) {
      // It exec'd another program while it was looked at (the exec hold lets an admitted
      // program run at once): what was gathered mixes two images. Look again (examineNow).
      this.busy.set(pid, true);
      return;
    }
    await this.settle(pid, exe, policy, current, gathered);
  }

  /**
   * Admitted at its exec by the hold into `current`, under the policy in force now, which
   * judged the very file the kernel opened (path, its directories, hash or package
   * digest): after the exec only what can change during and after the hold is looked at
   * again. The exec ran that file
   * (/proc/PID/exe; trustworthy in the initial user namespace, else this says false), no
   * tracer, and no refused variable in the environment the new image got (a CLONE_VM
   * sibling could rewrite envp between the hold's read and the kernel's copy). True: it
   * stays where it is; false: it is decided in full. A few synchronous /proc reads instead
   * of a full gather for every admitted exec (issue 10, part 6).
   */
  private heldStillHolds(pid: number, current: string): boolean {
    const held = this.deps.heldAt?.(pid);
    if (held === undefined || held.rule !== current || held.policy !== this.deps.gate.current || this.now() >= held.until) return false;
    try {
      const exe = statSync(`/proc/${pid}/exe`, { bigint: true });
      if (exe.dev !== held.dev || exe.ino !== held.ino || !this.inInitialUserns(pid)) return false;
      const { tgid, tracerPid } = parseStatus(readFileSync(`/proc/${pid}/status`, 'latin1'));
      if (tgid !== pid || (tracerPid !== 0 && tracerPid !== this.selfPid)) return false;
      return refusedInEnviron(readFileSync(`/proc/${pid}/environ`)).length === 0;
    } catch {
      return false;
    }
  }

  /** /proc/PID/exe no longer reads `link` (an exec since, or gone). */
  private execedSince(pid: number, link: string): boolean {
    try {
      return readlinkSync(`/proc/${pid}/exe`) !== link;
    } catch {
      return true;
    }
  }

  private namesOf(policy: Policy): RuleNames {
    if (this.index?.policy !== policy) this.index = { policy, names: ruleNames(policy) };
    return this.index.names;
  }

  private readonly ownNetns = readlinkSync('/proc/self/ns/net');
  private readonly initUserns = readlinkSync('/proc/self/ns/user');

  /** In the helper's (initial) user namespace; false when unreadable (gone). */
  private inInitialUserns(pid: number): boolean {
    try {
      return readlinkSync(`/proc/${pid}/ns/user`) === this.initUserns;
    } catch {
      return false;
    }
  }

  /**
   * Only processes of the helper's own network namespace are gated by it; the pid
   * namespace is wider (another helper's lab, the host), and their cgroups are not ours
   * to touch.
   */
  private inOwnNetns(pid: number): boolean {
    try {
      return readlinkSync(`/proc/${pid}/ns/net`) === this.ownNetns;
    } catch {
      return false;
    }
  }

  /** The rule cgroup a process is in now (by its net_cls path), if any. */
  private currentRule(pid: number): string | undefined {
    try {
      return ruleKeyOf(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), this.deps.gate.cgroupRoot);
    } catch {
      return undefined;
    }
  }

  /** Put the process where its verdict says: its rule's cgroup, left as inherited, or out. */
  private async settle(pid: number, exe: string, policy: Policy, current: string | undefined, g: GatheredProcess | undefined): Promise<void> {
    const { gate, events } = this.deps;
    let verdict = g ? decide(policy, g.identity) : undefined;
    const uid = g?.identity.uid;
    if (verdict?.allow && current !== verdict.rule.key && !this.inInitialUserns(pid)) {
      // /proc/PID/exe is not proof here: with CAP_SYS_RESOURCE in its own user namespace a
      // process can point it at another file (prctl PR_SET_MM_EXE_FILE). Only the exec hold,
      // which judges the file the kernel opened, admits such a process.
      verdict = { allow: false, rule: verdict.rule, reason: `it runs in a user namespace of its own, where /proc/${pid}/exe can be re-pointed (PR_SET_MM): admitted only at its exec, by the exec hold` };
    }
    if (verdict?.allow) {
      if (current === verdict.rule.key) return;
      this.track(pid); // before the move: its forks from then on are reported
      await gate.admit(pid, verdict.rule.key);
      events.emit({ type: 'process.admitted', pid, uid: uid as number, path: exe, rule: verdict.rule.key });
      this.deps.onAdmitted?.(pid, verdict.rule.key);
      // Children it forked before it was admitted stay outside: a child forked before the
      // allowed exec (`sh -c 'evil & exec curl'`) is not a descendant of the allowed program,
      // and from here the two cannot be told apart (issue 10, part 3). The exec hold admits
      // before the exec, so only the fallback loses children forked in between.
      return;
    }
    if (current === undefined) {
      // A rule names the program but a check failed: say so once per process.
      if (verdict?.rule && g) {
        const key = `${pid}:${g.startTime}`;
        if (!this.reported.has(key)) {
          this.reported.set(key, true);
          if (this.reported.size > 4096) this.reported.delete(this.reported.keys().next().value as string);
          events.emit({ type: 'process.refused', pid, uid: uid as number, path: exe, reason: verdict.reason, rule: verdict.rule.key });
        }
      }
      return;
    }
    const rule: EffectiveRule | undefined = policy.rules.find((r) => r.key === current);
    // Admitted earlier, and its binary has been replaced since (an upgrade): a path-only rule
    // that still names the path keeps it; the bytes it runs were checked when it was admitted.
    // A sha256-pinned rule does not (issue 4): the pin is about the file, which is gone.
    const b = rule?.binary;
    if (g?.identity.exeDeleted && b?.path !== undefined && b.sha256 === undefined && b.script === undefined && pathMatches(b.path, exe) && !g.identity.traced) return;
    // In a rule's cgroup without being allowed on its own: inherited from its parent? Never
    // for a traced process: its tracer can run any code in it (issue 10, part 3).
    if (rule && rule.children !== 'confine' && !g?.identity.traced) {
      const ppid = g?.ppid ?? (await this.parentOf(pid));
      if (ppid !== undefined && this.currentRule(ppid) === current) return; // inherited, and the rule allows that
    }
    if (g === undefined && !(await this.isProcess(pid))) return;
    const reason = !rule
      ? `rule ${current} is no longer in force`
      : rule.children === 'confine' && verdict === undefined
        ? `${describe(rule)} confines children, and no rule allows ${exe}`
        : rule.children === 'confine'
          ? `${describe(rule)} confines children: ${verdict?.reason ?? `no rule allows ${exe}`}`
          : (verdict?.reason ?? `no rule allows ${exe}`);
    await gate.releasePid(pid);
    events.emit({ type: 'process.released', pid, ...(uid !== undefined ? { uid } : {}), path: exe, rule: current, reason });
    return;
  }

  /** The process tracing `pid` (ptrace), unless none or the helper itself. */
  private async tracerOf(pid: number): Promise<number | undefined> {
    const status = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const t = Number(/^TracerPid:\s*(\d+)/m.exec(status)?.[1] ?? '0');
    return t !== 0 && t !== this.selfPid ? t : undefined;
  }

  private async parentOf(pid: number): Promise<number | undefined> {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    if (!stat) return undefined;
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  }

  /** A thread group leader (writing a thread id to cgroup.procs would move its whole process). */
  private async isProcess(pid: number): Promise<boolean> {
    const status = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const m = /^Tgid:\s*(\d+)/m.exec(status);
    return m !== null && Number(m[1]) === pid;
  }
}

/**
 * Where exec events come from: the proc connector (openWatchEvents: filtered in the kernel),
 * else polling /proc. TUNNELGATE_WATCH=poll forces polling (measurements, machines where the
 * connector misbehaves); TUNNELGATE_WATCH_FILTER=none turns the kernel filter off, so every
 * event of the machine reaches JS (the bench's baseline: the watcher before issue 10).
 */
export async function openExecSource(
  mode = process.env.TUNNELGATE_WATCH ?? 'auto',
  filter = process.env.TUNNELGATE_WATCH_FILTER === 'none' ? ('none' as const) : ('kernel' as const),
): Promise<{ source: ExecEvents | WatchEvents; kind: 'proc-connector' | 'poll'; note?: string }> {
  if (mode !== 'poll') {
    const { openWatchEvents } = await import('../kernel/proc-events.js');
    const r = await openWatchEvents({ filter }).catch((e: Error) => ({ error: e.message }));
    if ('events' in r) return { source: r.events, kind: 'proc-connector', ...(filter === 'none' ? { note: 'process events are not filtered in the kernel (TUNNELGATE_WATCH_FILTER=none)' } : {}) };
    return { source: new PollingExecEvents(), kind: 'poll', note: `${r.error}; watching processes by polling /proc` };
  }
  return { source: new PollingExecEvents(), kind: 'poll', note: 'watching processes by polling /proc (TUNNELGATE_WATCH=poll)' };
}
