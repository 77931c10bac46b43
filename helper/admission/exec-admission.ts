// Admission at exec time (issue 10, part 1): the kernel holds each exec of an allowed
// binary (fanotify FAN_OPEN_EXEC_PERM, helper/kernel/fanotify.ts) while the helper decides
// on the exact exec and moves the process into its rule's cgroup; then the exec goes on,
// and the program's first packet already carries the rule's classid.
//
// Rules of this path:
// - It only ever ALLOWS the exec, and answers in every case (finally): a refusal, an error,
//   a process it cannot judge all end in allow() without admission, and the watcher
//   (helper/admission/watcher.ts) then decides after the exec as before (check-after-exec is the
//   fallback, and the only path that reports refusals, so nothing is said twice).
// - Identity comes from the event, never from /proc/PID/exe (which still names the OLD
//   program during the hold): exe = the file the kernel opened, its dev:ino checked against
//   the helper's view of the path, the hash of that inode, the NEW envp (every occurrence,
//   helper/identity/exec-env.ts), TracerPid, uid.
// - Not admitted here: a process with more than one thread (its other threads run during
//   the hold and would be admitted as the new program: the watcher admits it after the
//   exec), a process holding AF_INET/AF_INET6 sockets (moving it re-tags every socket in
//   its fd table, also close-on-exec ones shared with its parent: after the exec they are
//   closed), an unreadable or cut argv/envp, rules that need more than the file (scripts,
//   Flatpak, Snap, AppImage: the watcher), a process outside the helper's network namespace.
// - After the exec, the watcher's look at the exec event re-decides from the new image; a
//   held exec that then FAILED (execve returned an error) leaves the old program in the
//   rule cgroup: each admitted pid waits for its exec event (sent only for an exec that
//   succeeded; the watcher judges the program of that event), and a pid with no exec event
//   within a short grace period whose exe is not the admitted inode is released.
// - Speed (issue 10: exec delay p95 < 5 ms): the common case is decided in the tick the
//   event reaches JS, without an await (admitFast): the rules of each path are computed
//   once per policy (pathRulesOf), hashes are taken at mark time and found by the stat of
//   the inode (HashCache.peek), the /proc reads are synchronous, and the move writes
//   cgroup.procs at once (Gate.admitNow) instead of queueing behind the gate's serial work.
//   Events and bookkeeping come after the answer. TUNNELGATE_HOLD_TRACE=1 logs the spans.
// - Faster still, verdict tickets (offerTicket; native.c fan_try_ticket): after a fast-path
//   admission, the next execs of the same file by the same uid are admitted by the
//   reader thread itself when every input of that verdict is unchanged, and JS hears of
//   them afterwards (onTicketed: bookkeeping, and Watcher.adopt, since the process ran a
//   moment unfollowed). The thread evaluates no policy; it compares. JS drops every ticket
//   whenever the policy or the rules in force change. TUNNELGATE_EXEC_TICKETS=off: none.
// - Marks follow the policy (marksOf): exact paths, the directory of a `dir/*` glob
//   (children mark), every executable file of a `package` rule's package, the interpreter
//   of a script rule; re-marked after every policy change and every overflow (refresh).
import { promises as fs, readFileSync, readlinkSync, statSync, type BigIntStats } from 'node:fs';
import path from 'node:path';
import type { EffectiveRule, Policy } from '../../common/policy.js';
import type { AdmittedExec, HeldExec, MarkedFile, TicketSet, VerdictTicket } from '../kernel/fanotify.js';
import { REFUSED_ENV } from '../../common/profile.js';
import type { HashCache } from '../kernel/proc.js';
import { parseStat } from '../kernel/proc.js';
import { ruleKeyOf } from '../kernel/netcls.js';
import { refusedInExec } from '../identity/exec-env.js';
import { md5Of, verifiedPackages } from '../identity/package.js';
import { ancestry, pathWritableByNonRoot } from '../identity/writable.js';
import type { ProcessIdentity, Verdict } from '../policy/decide.js';
import { candidateRules, decide, needsHash, packagesNamed } from '../policy/decide.js';
import { inForce, nextExpiry } from '../policy/expiry.js';
import type { EventSink } from '../core/event-bus.js';
import type { HeldAdmission, WatcherGate } from './watcher.js';

/** What this module needs of helper/kernel/fanotify.ts ExecHold. */
export interface ExecHoldPort {
  onExec(cb: (e: HeldExec) => void): () => void;
  /** A task whose held exec then closed the file: the exec failed (absent: after the grace period only). */
  onHeldClose?(cb: (e: { tid: number }) => void): () => void;
  /** Execs the reader thread admitted under a verdict ticket (absent: no tickets). */
  onAdmitted?(cb: (e: AdmittedExec) => void): () => void;
  /** Replace the verdict tickets (absent: no tickets). */
  setTickets?(set: TicketSet): void;
  onOverflow(cb: () => void): () => void;
  onExpired(cb: (e: { id: number; tid: number }) => void): () => void;
  allow(id: number): boolean;
  mark(file: string, opts?: { children?: boolean }): MarkedFile;
  unmark(file: string): void;
  marked(): MarkedFile[];
  refresh(): void;
  close(): void;
}

export interface ExecAdmissionDeps {
  hold: ExecHoldPort;
  gate: WatcherGate;
  events: EventSink;
  hashes: HashCache;
  /** Executable files of a package (default: dpkg's file list). */
  packageFiles?: (pkg: string) => Promise<string[]>;
  selfPid?: number;
  log?: (line: string) => void;
  /** Every exec admitted at the hold (bench, tests). */
  onAdmitted?: (pid: number, rule: string) => void;
  /** A process the reader thread admitted under a ticket: the watcher's catch-up (Watcher.adopt). */
  adopted?: (pid: number, rule: string, inode: { dev: bigint; ino: bigint }, caller: { dev: bigint; ino: bigint } | undefined) => void;
  /** Have the watcher decide what `pid` runs now (Watcher.examine). */
  look?: (pid: number) => void;
}

/** The marks a policy asks for (pure): files, and directories whose children are covered. */
export function marksOf(policy: Policy): { files: string[]; dirs: string[]; packages: string[] } {
  const files = new Set<string>();
  const dirs = new Set<string>();
  for (const r of policy.rules) {
    const b = r.binary;
    if (r.kernel || !b || r.action !== 'allow' || b.path === undefined) continue;
    if (!b.path.endsWith('*')) files.add(b.path);
    else {
      const prefix = b.path.slice(0, -1);
      dirs.add(prefix.endsWith('/') ? prefix.replace(/\/+$/, '') || '/' : path.dirname(prefix));
    }
  }
  return { files: [...files], dirs: [...dirs], packages: packagesNamed(policy) };
}

/** Executable regular files dpkg lists for a package (any architecture qualifier). */
async function dpkgExecutables(pkg: string): Promise<string[]> {
  const dir = '/var/lib/dpkg/info';
  const lists = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => n === `${pkg}.list` || (n.startsWith(`${pkg}:`) && n.endsWith('.list')));
  const out: string[] = [];
  for (const l of lists) {
    const text = await fs.readFile(path.join(dir, l), 'utf8').catch(() => '');
    for (const f of text.split('\n')) {
      if (!f.startsWith('/')) continue;
      const st = await fs.lstat(f).catch(() => undefined);
      if (st?.isFile() && (st.mode & 0o111) !== 0) out.push(f);
    }
  }
  return out;
}

/** An admission at the hold: the rule, the process's uid, and the policy (and its validity) it was decided under. */
interface Admitted {
  rule: string;
  uid: number;
  under: { policy: Policy; until: number };
}

/**
 * What the hold needs to know of one path under one policy, from the rules alone (pure):
 * computed once per path and policy, so a held exec does no rule matching of its own.
 */
export interface PathRules {
  /** Rules whose path could name this file (candidateRules). */
  candidates: EffectiveRule[];
  /** A candidate needs more than the file (script, Flatpak, Snap, AppImage): left to the watcher. */
  special: boolean;
  /** A candidate pins sha256. */
  hash: boolean;
  /** Packages the candidates name (a package rule: verified against dpkg's md5sums, off the fast path). */
  packages: string[];
}

/** PathRules of `exe` under `policy` (pure). */
export function pathRulesOf(policy: Policy, exe: string): PathRules {
  const candidates = candidateRules(policy, exe);
  return {
    candidates,
    special: candidates.some((r) => r.binary?.script !== undefined || r.binary?.flatpak !== undefined || r.binary?.snap !== undefined || r.binary?.appimage !== undefined),
    hash: needsHash(policy, exe),
    packages: [...new Set(candidates.flatMap((r) => (r.binary?.package !== undefined ? [r.binary.package] : [])))],
  };
}

/** Spans of one held exec (TUNNELGATE_HOLD_TRACE=1, measurements): µs since the reader thread read it. */
const TRACE = process.env.TUNNELGATE_HOLD_TRACE === '1';
/** The key of a verdict ticket (ExecAdmission.tickets): the file's dev:ino and the uid. */
const ticketKey = (dev: bigint, ino: bigint, uid: number): string => `${dev}:${ino}:${uid}`;

/** TUNNELGATE_EXEC_TICKETS=off: every held exec is decided in JS (the bench's baseline for the tickets). */
const TICKETS_OFF = process.env.TUNNELGATE_EXEC_TICKETS === 'off';
const sinceUs = (e: HeldExec) => Number(process.hrtime.bigint() - e.readAtNs) / 1000;

export class ExecAdmission {
  private readonly unsubscribe: Array<() => void> = [];
  /** Admitted at the hold, waiting for their exec to be seen: pid → the admitted inode. */
  private readonly pending = new Map<number, { dev: bigint; ino: bigint; rule: string; timer: NodeJS.Timeout; ticket: boolean }>();
  private readonly ownNetns = readlinkSync('/proc/self/ns/net');
  private readonly selfPid: number;
  private remarking: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Processes admitted at the hold, newest last (bounded: HELD_KEPT): heldAt(). */
  private readonly held = new Map<number, HeldAdmission>();
  private static readonly HELD_KEPT = 4096;
  /** Verdict tickets in force in the reader thread, by dev:ino:uid (offerTicket). */
  private readonly tickets = new Map<string, VerdictTicket>();
  private readonly ownNs = {
    net: statSync('/proc/self/ns/net', { bigint: true }),
    user: statSync('/proc/self/ns/user', { bigint: true }),
  };

  constructor(private readonly deps: ExecAdmissionDeps) {
    this.selfPid = deps.selfPid ?? process.pid;
  }

  /** Subscribe to held execs, policy changes and overflows; mark the current policy's binaries. */
  async start(): Promise<void> {
    const { hold, gate } = this.deps;
    this.unsubscribe.push(hold.onExec((e) => void this.onExec(e)));
    if (hold.onAdmitted) this.unsubscribe.push(hold.onAdmitted((e) => this.onTicketed(e)));
    // A held exec that failed after it was admitted: the old program must not keep the
    // rule until the grace period ends (a fresh tester connected for ~1 s after an E2BIG).
    if (hold.onHeldClose) this.unsubscribe.push(hold.onHeldClose((e) => this.pending.has(e.tid) && void this.verify(e.tid)));
    this.unsubscribe.push(hold.onOverflow(() => void this.remark()));
    this.unsubscribe.push(hold.onExpired((e) => this.deps.log?.(`exec hold: the exec of task ${e.tid} went on unanswered at the deadline`)));
    this.unsubscribe.push(gate.onPolicyChange(() => {
      this.clearTickets(); // first, in this very tick: no exec is admitted by an old verdict from here on
      void this.remark();
    }));
    await this.remark();
  }

  stop(): void {
    this.clearTickets();
    this.stopped = true;
    for (const u of this.unsubscribe.splice(0)) u();
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }

  /**
   * The exec event of `pid` (proc connector): an exec of it succeeded, so nothing is left
   * to verify here. The kernel reports only execs that succeeded; if this one is not the
   * held exec (that failed, and another followed), the watcher, which follows the pid,
   * judges the program of this very event. Comparing /proc/PID/exe now instead would
   * mistake an exec the admitted program made since (at once: it runs as soon as it is
   * allowed) for a failed held exec.
   */
  execSeen(pid: number): void {
    const p = this.pending.get(pid);
    if (!p) return;
    this.pending.delete(pid);
    clearTimeout(p.timer);
  }

  /** Bring the marks in line with the policy in force (serialised). */
  remark(): Promise<void> {
    const run = async () => {
      const policy = this.deps.gate.current;
      if (!policy || this.stopped) return;
      const want = marksOf(policy);
      const files = new Set(want.files);
      for (const pkg of want.packages) for (const f of await (this.deps.packageFiles ?? dpkgExecutables)(pkg)) files.add(f);
      const wanted = new Map<string, boolean>([...[...files].map((f) => [f, false] as const), ...want.dirs.map((d) => [d, true] as const)]);
      for (const m of this.deps.hold.marked()) if (wanted.get(m.path) !== m.children) this.deps.hold.unmark(m.path);
      for (const [file, children] of wanted) {
        try {
          this.deps.hold.mark(file, { children });
        } catch (e) {
          this.deps.log?.(`exec hold: cannot mark ${file}: ${(e as Error).message}`);
        }
      }
      this.deps.hold.refresh();
      // Hash pinned binaries now, at mark time, so their held execs find the digest cached
      // (a held exec never hashes on the fast path). Replaced files are hashed at their
      // first exec (the slower path), then cached again.
      const live = inForce(policy, Date.now());
      for (const file of files) if (needsHash(live, file)) void this.deps.hashes.sha256(file).catch(() => undefined);
    };
    this.remarking = this.remarking.then(run, run);
    return this.remarking;
  }

  /**
   * One held exec: decide, admit if allowed, and always let it go on. The common case (a
   * plain path rule, the file's hash already known) is decided and admitted in this very
   * tick, without one await: a few /proc reads and stats, the rule lookups of this path
   * computed once per policy, and one write to cgroup.procs (Gate.admitNow), so the exec
   * waits for neither libuv's thread pool nor the gate's serial queue (a listener refresh,
   * an nft verify). Anything else (a hash not cached yet, a package rule, a policy change
   * in flight) takes the slower path below, still within the deadline.
   */
  private async onExec(e: HeldExec): Promise<void> {
    const t0 = TRACE ? sinceUs(e) : 0;
    let admitted: Admitted | undefined;
    let how = 'fast';
    try {
      const fast = this.admitFast(e);
      if (fast === 'slow') {
        how = 'slow';
        admitted = await this.admitHeld(e);
      } else admitted = fast;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ESRCH') this.deps.log?.(`exec hold: process ${e.pid}: ${(err as Error).message}`);
    } finally {
      this.deps.hold.allow(e.id);
    }
    if (TRACE) this.deps.log?.(`exec hold trace: pid ${e.pid} ${how} ${admitted ? 'admitted' : 'passed'}: in JS at ${t0.toFixed(0)} µs, answered at ${sinceUs(e).toFixed(0)} µs`);
    if (admitted === undefined) return;
    // Said after the answer: nothing of this is needed for the exec to go on.
    this.deps.events.emit({ type: 'process.admitted', pid: e.pid, uid: admitted.uid, path: e.path, rule: admitted.rule, at: 'exec' });
    this.deps.onAdmitted?.(e.pid, admitted.rule);
    this.awaitExec(e, admitted.rule, false, admitted.under);
  }

  /**
   * The process `pid` was admitted at the hold into `rule`, having exec'd the file dev:ino
   * (the watcher then checks only what can change after the hold: Watcher.heldStillHolds).
   * Undefined when unknown; a reused pid is caught by that check (another file, or rule).
   */
  heldAt(pid: number): HeldAdmission | undefined {
    return this.held.get(pid);
  }

  /**
   * The exec may still fail: without an exec event within the grace period, verify().
   * `under`: the policy the verdict was taken under (a ticket's: the one in force while its
   * ticket still is; tickets end with it).
   */
  private awaitExec(e: HeldExec, rule: string, ticket: boolean, under: { policy: Policy; until: number } | undefined): void {
    this.held.delete(e.pid);
    if (under !== undefined) {
      this.held.set(e.pid, { dev: e.dev, ino: e.ino, rule, ...under });
      if (this.held.size > ExecAdmission.HELD_KEPT) this.held.delete(this.held.keys().next().value as number);
    }
    const timer = setTimeout(() => void this.verify(e.pid), 1_000);
    timer.unref();
    this.pending.set(e.pid, { dev: e.dev, ino: e.ino, rule, timer, ticket });
  }

  /** The in-force policy and each path's rules in it, recomputed when the policy object or the next expiry changes. */
  private table: { full: Policy; policy: Policy; until: number; paths: Map<string, PathRules> } | undefined;

  private rulesOf(full: Policy, exe: string, now: number): { policy: Policy; rules: PathRules; under: { policy: Policy; until: number } } {
    if (this.table?.full !== full || now >= this.table.until) {
      this.clearTickets();
      const next = nextExpiry(full, now);
      this.table = { full, policy: inForce(full, now), until: next === undefined ? Infinity : now + next, paths: new Map() };
    }
    let rules = this.table.paths.get(exe);
    if (!rules) {
      rules = pathRulesOf(this.table.policy, exe);
      if (this.table.paths.size >= 4096) this.table.paths.clear();
      this.table.paths.set(exe, rules);
    }
    return { policy: this.table.policy, rules, under: { policy: full, until: this.table.until } };
  }

  /** Checks every held exec passes before it is judged; false: let it go unadmitted. */
  private judgeable(e: HeldExec): boolean {
    if (this.stopped || e.pid <= 0 || e.pid === this.selfPid) return false;
    if (e.threads !== 1 || e.argv === undefined || e.envp === undefined || e.truncated) return false;
    // Its sockets (close-on-exec ones too, still open at the hold) would take the rule's
    // classid with it, shared ones included: admitted after the exec instead (the watcher).
    if (e.inetSockets !== 0) return false;
    return readlinkSync(`/proc/${e.pid}/ns/net`) === this.ownNetns;
  }

  /**
   * The held exec decided and admitted without leaving this tick: the admitted rule and uid,
   * undefined (let go unadmitted: the watcher decides after the exec), or 'slow' when it
   * needs I/O that must not be done synchronously (a hash not cached, a package rule, a
   * move the gate cannot do at once).
   */
  private admitFast(e: HeldExec): Admitted | undefined | 'slow' {
    const full = this.deps.gate.current;
    if (!full || !this.judgeable(e)) return undefined;
    const { policy, rules, under } = this.rulesOf(full, e.path, Date.now());
    if (!rules.candidates.length || rules.special) return undefined;
    if (rules.packages.length || !this.deps.gate.admitNow) return 'slow';
    // The path must name the inode being executed; the same inode has the same stat, so
    // this stat also keys the cached hash of the bytes being executed.
    const st = statSync(e.path, { bigint: true, throwIfNoEntry: false });
    if (!st || st.dev !== e.dev || st.ino !== e.ino) return undefined;
    let sha256: string | undefined;
    if (rules.hash && (sha256 = this.deps.hashes.peek(st)) === undefined) return 'slow';
    const id = this.baseIdentity(e, readFileSync(`/proc/${e.pid}/stat`, 'latin1'), readFileSync(`/proc/${e.pid}/status`, 'latin1'));
    const paths = ancestry(e.path);
    const above = paths.slice(1).map((p) => statSync(p, { bigint: true }));
    id.exeUnsafe = pathWritableByNonRoot([st, ...above].map((s) => ({ mode: Number(s.mode), uid: Number(s.uid), gid: Number(s.gid) })), paths);
    if (sha256 !== undefined) id.sha256 = sha256;
    const verdict = decide(policy, id);
    if (!verdict.allow) return undefined; // the watcher reports it after the exec
    const m0 = TRACE ? sinceUs(e) : 0;
    if (!this.moveNow(e.pid, verdict)) return 'slow';
    if (TRACE) this.deps.log?.(`exec hold trace: pid ${e.pid} decided at ${m0.toFixed(0)} µs, moved at ${sinceUs(e).toFixed(0)} µs`);
    this.offerTicket(e, id, verdict, rules, st, paths.slice(1).map((p, i) => ({ path: p, st: above[i] as BigIntStats })));
    return { rule: verdict.rule.key, uid: id.uid, under };
  }

  /** Into the verdict's cgroup at once (unless there already); false when the gate cannot now. */
  private moveNow(pid: number, verdict: Extract<Verdict, { allow: true }>): boolean {
    const current = ruleKeyOf(readFileSync(`/proc/${pid}/cgroup`, 'latin1'), this.deps.gate.cgroupRoot);
    return current === verdict.rule.key || (this.deps.gate.admitNow?.(pid, verdict.rule.key) ?? false);
  }

  /** Longest life of a verdict ticket (ms), whatever the policy's next expiry. */
  private static readonly TICKET_MS = 10 * 60_000;
  /** Most tickets in force at once (the oldest goes first). */
  private static readonly TICKETS = 256;

  /**
   * After an admission at the hold decided in JS: hand the reader thread a ticket to admit
   * the next execs of the same file by the same uid by itself (helper/kernel/fanotify.ts
   * VerdictTicket), when the verdict depended on nothing but what the ticket pins and the
   * thread checks: not for rules of single processes (allow once), nor when the exec had
   * a refused variable or a tracer. The ticket lives until the policy changes or a rule of
   * it expires (clearTickets), TICKET_MS at most. Never throws: without a ticket, JS decides.
   */
  private offerTicket(e: HeldExec, id: ProcessIdentity, verdict: Extract<Verdict, { allow: true }>, rules: PathRules, st: BigIntStats, above: Array<{ path: string; st: BigIntStats }>): void {
    const { hold, gate } = this.deps;
    if (!hold.setTickets || !gate.ticketTarget || this.table === undefined || TICKETS_OFF) return;
    if (id.env !== undefined || id.traced !== undefined || id.uid !== e.uid || rules.candidates.some((r) => r.processes !== undefined)) return;
    const procs = gate.ticketTarget(verdict.rule.key);
    if (procs === undefined) return;
    const key = ticketKey(e.dev, e.ino, id.uid);
    if (this.tickets.has(key)) return;
    const ms = Math.min(ExecAdmission.TICKET_MS, this.table.until - Date.now());
    if (!(ms > 0)) return;
    const snap = (s: BigIntStats) => ({ dev: s.dev, ino: s.ino, mode: Number(s.mode), uid: Number(s.uid), gid: Number(s.gid) });
    this.tickets.set(key, {
      path: e.path, uid: id.uid, procs, rule: verdict.rule.key,
      file: { ...snap(st), size: st.size, ctimeNs: st.ctimeNs },
      ancestors: above.map((a) => ({ path: a.path, ...snap(a.st) })),
      expiresNs: process.hrtime.bigint() + BigInt(Math.floor(ms)) * 1_000_000n,
    });
    if (this.tickets.size > ExecAdmission.TICKETS) this.tickets.delete(this.tickets.keys().next().value as string);
    this.pushTickets();
  }

  /** Drop every ticket, in the reader thread too (synchronous). */
  private clearTickets(): void {
    if (!this.tickets.size) return;
    this.tickets.clear();
    this.pushTickets();
  }

  private pushTickets(): void {
    try {
      this.deps.hold.setTickets?.({
        netns: { dev: this.ownNs.net.dev, ino: this.ownNs.net.ino },
        userns: { dev: this.ownNs.user.dev, ino: this.ownNs.user.ino },
        refusedEnv: REFUSED_ENV,
        tickets: [...this.tickets.values()],
      });
    } catch (err) {
      // No ticket is in force then (setTickets dropped them): every exec goes through JS.
      this.tickets.clear();
      this.deps.log?.(`exec hold: verdict tickets dropped: ${(err as Error).message}`);
    }
  }

  /**
   * An exec the reader thread admitted under a ticket, already answered: what onExec does
   * after its answer, and the watcher's catch-up (the process ran a moment unfollowed).
   */
  private onTicketed(e: AdmittedExec): void {
    if (this.stopped) return;
    if (TRACE) this.deps.log?.(`exec hold trace: pid ${e.pid} ticket admitted: in JS at ${sinceUs(e).toFixed(0)} µs, answered at ${(Number(e.answeredAtNs - e.readAtNs) / 1000).toFixed(0)} µs`);
    this.deps.gate.adoptAdmission?.(e.pid, e.rule);
    this.deps.events.emit({ type: 'process.admitted', pid: e.pid, uid: e.uid, path: e.path, rule: e.rule, at: 'ticket' });
    this.deps.onAdmitted?.(e.pid, e.rule);
    const t = this.table;
    this.awaitExec(e, e.rule, true, t !== undefined && this.tickets.has(ticketKey(e.dev, e.ino, e.uid)) ? { policy: t.full, until: t.until } : undefined);
    this.deps.adopted?.(e.pid, e.rule, { dev: e.dev, ino: e.ino }, e.caller);
  }

  /** What every identity of a held exec has: the event's file, uid, start time, tracer, the NEW envp. */
  private baseIdentity(e: HeldExec, statText: string, statusText: string): ProcessIdentity {
    const { startTime } = parseStat(statText);
    const tracer = Number(/^TracerPid:\s*(\d+)/m.exec(statusText)?.[1] ?? '0');
    const uid = Number(/^Uid:\s*(\d+)/m.exec(statusText)?.[1] ?? String(e.uid));
    const id: ProcessIdentity = { exe: e.path, exeDeleted: false, uid, pid: e.pid, startTime };
    if (tracer !== 0 && tracer !== this.selfPid) id.traced = `it is being traced by process ${tracer}, which can change its code`;
    const env = refusedInExec(e.envp ?? []);
    if (env.length) id.env = env;
    return id;
  }

  /** The slower path of a held exec (with awaits): the rule key and uid it was admitted under, or undefined. */
  private async admitHeld(e: HeldExec): Promise<Admitted | undefined> {
    const full = this.deps.gate.current;
    if (!full || !this.judgeable(e)) return undefined;
    const { policy, rules, under } = this.rulesOf(full, e.path, Date.now());
    if (!rules.candidates.length || rules.special) return undefined;
    const id = await this.identityOf(e, rules);
    if (!id) return undefined;
    const verdict = decide(policy, id);
    if (!verdict.allow) return undefined; // the watcher reports it after the exec
    if (!this.moveNow(e.pid, verdict)) await this.deps.gate.admit(e.pid, verdict.rule.key);
    return { rule: verdict.rule.key, uid: id.uid, under };
  }

  /** What decide() needs, from the event and the file the kernel opened; undefined if the file moved. */
  private async identityOf(e: HeldExec, rules: PathRules): Promise<ProcessIdentity | undefined> {
    const [statText, statusText] = await Promise.all([fs.readFile(`/proc/${e.pid}/stat`, 'latin1'), fs.readFile(`/proc/${e.pid}/status`, 'latin1')]);
    const same = async () => {
      const st = await fs.stat(e.path, { bigint: true }).catch(() => undefined);
      return st !== undefined && st.dev === e.dev && st.ino === e.ino;
    };
    // The path must still name the inode being executed, before and after it is examined.
    if (!(await same())) return undefined;
    const id = this.baseIdentity(e, statText, statusText);
    const paths = ancestry(e.path);
    const chain = await Promise.all(paths.map((p) => fs.stat(p)));
    id.exeUnsafe = pathWritableByNonRoot(chain.map((s) => ({ mode: s.mode, uid: s.uid, gid: s.gid })), paths);
    if (rules.hash) id.sha256 = await this.deps.hashes.sha256(e.path);
    if (rules.packages.length) {
      const v = await verifiedPackages(rules.packages, e.path, () => md5Of(e.path));
      id.packages = v.packages;
      if (v.notes.length) id.notes = v.notes;
    }
    return (await same()) ? id : undefined;
  }

  /** No exec event within the grace period: a process admitted at the hold runs the admitted inode now, or is released. */
  private async verify(pid: number): Promise<void> {
    const p = this.pending.get(pid);
    if (!p) return;
    this.pending.delete(pid);
    clearTimeout(p.timer);
    const st = await fs.stat(`/proc/${pid}/exe`, { bigint: true }).catch(() => undefined);
    if (!st) return; // gone: its cgroup membership went with it
    if (st.dev === p.dev && st.ino === p.ino) return;
    const current = ruleKeyOf(await fs.readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => ''), this.deps.gate.cgroupRoot);
    if (current !== p.rule) return; // moved since by someone who decided again
    if (p.ticket && this.deps.look) {
      // Admitted by a ticket, before the watcher followed it: its exec event was not seen
      // because the exec failed, or because it was done, and another after it, before the
      // watcher followed the process. The watcher tells the two apart by what runs now.
      this.deps.look(pid);
      return;
    }
    await this.deps.gate.releasePid(pid).catch(() => undefined);
    const exe = await fs.readlink(`/proc/${pid}/exe`).catch(() => '(process gone)');
    this.deps.events.emit({ type: 'process.released', pid, path: exe, rule: p.rule, reason: 'its held exec did not run the admitted program (the exec failed)' });
  }
}
