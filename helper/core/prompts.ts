// Prompts: a denied attempt of a program that no rule allows becomes a question to the user
// who runs it, where the policy lets users decide (userPrompts "allow").
//
// - One pending prompt per (uid, binary): further attempts only count, add their process and
//   destination (a burst of 1,000 dropped packets is one prompt with count 1000).
// - Nothing here waits on a person: attempts are folded synchronously, and a pending prompt
//   holds back no other program. (The program itself stays dropped until an allow.)
// - Timeout: the clock starts when an app of that user shows the prompt (a `prompts`
//   subscriber of that uid); no answer by then counts as deny. Without any app, a prompt
//   waits (for `tunnelgate prompts` / `answer`) up to promptPendingMaxSeconds, then counts
//   as deny too.
// - deny (and a timeout) means "not these processes": they are not asked about again while
//   they run (for the chosen scope); a new process of the binary asks again. An attempt
//   without a pid is folded for a cool-down instead. deny-always is stored (decisions.ts).
// - An allow is saved, put in force and the prompt's live processes are admitted at once
//   (helper/core/user-rules.ts): their next retransmission passes.
// - Locked policy (userPrompts "deny"), audit mode, unattributed packets: no prompt; the
//   attempt.denied event is the record.
//
// Pure state machine apart from its injected collaborators: clock, /proc, the decisions.
import path from 'node:path';
import type { AnswerParams, AnswerResult, Caller, PromptScope, PromptView, UserDecisionView } from '../../common/api.js';
import { ErrorCode } from '../../common/api.js';
import type { AttemptDestination, DeniedAttempt } from '../../common/attempts.js';
import { formatDestination } from '../../common/attempts.js';
import type { PromptCloseReason } from '../../common/events.js';
import type { EffectiveRule, Policy } from '../../common/policy.js';
import type { Destination } from '../../common/profile.js';
import type { Clock } from './clock.js';
import type { SeenBinary, StoredDeny, StoredProcess } from '../store/decisions.js';
import { newId } from '../store/decisions.js';
import { covers, destinationOf, scopeCovers, unionDestinations } from '../policy/destinations.js';
import { userRulesOn } from '../policy/scope.js';
import { ApiError } from '../../common/errors.js';
import type { EventSink } from './event-bus.js';
import type { ProcessFacts } from '../identity/program-info.js';
import type { AllowRequest } from './user-rules.js';
import { lockedReason, requestedLifetime } from './user-rules.js';
import { logError } from '../../common/node/log.js';

export const MAX_PROMPTS = 512;
export const MAX_PROMPTS_PER_USER = 32;
const MAX_PIDS = 64;
const MAX_DESTINATIONS = 32;

/** What the prompt manager needs of the user decisions (user-rules.ts, decisions.ts). */
export interface PromptDecisionsPort {
  findDeny(uid: number, exe: string, dst: AttemptDestination): StoredDeny | undefined;
  seen(exe: string): SeenBinary | undefined;
  recordSeen(exe: string, sha256: string): Promise<void>;
  allow(req: AllowRequest): Promise<{ view: UserDecisionView; admitted: number[] }>;
  denyAlways(req: { uid: number; path: string; destinations?: Destination[]; by: number; via: 'prompt' }): Promise<UserDecisionView>;
}

export interface PromptDeps {
  clock: Clock;
  events: EventSink;
  policy: () => Policy | undefined;
  /** The process behind an attempt, from /proc (program-info.ts); undefined when nothing names it. */
  inspect: (a: DeniedAttempt) => Promise<ProcessFacts | undefined>;
  /**
   * The admission of a process that a rule allows: admitted now (no watcher had admitted it:
   * `now: true`) or already (`now: false`), under `rule`. Undefined when no rule allows the
   * process.
   */
  admitIfAllowed: (pid: number) => Promise<Admission | undefined>;
  /**
   * The rule a process was admitted under in the last minute, also if it has exited since
   * (helper/core/gate.ts recentAdmission); undefined if none.
   */
  recentAdmission: (pid: number) => Admission['rule'] | undefined;
  decisions: PromptDecisionsPort;
  procs: { alive(p: StoredProcess): Promise<boolean>; startTime(pid: number): Promise<string | undefined> };
  /** An app of this user is showing prompts now. */
  hasViewer: (uid: number) => boolean;
  timeoutMs: number;
  pendingMaxMs: number;
  /** After a deny, attempts of the binary that name no process are folded this long. */
  denyCooldownMs?: number;
  /** At most one `updated` notification per prompt per this long. */
  updateThrottleMs?: number;
}

export type PromptChange = 'opened' | 'updated' | 'closed';

/** What PromptDeps.admitIfAllowed found: the rule that allows the process, and whether it was admitted just now. */
export interface Admission {
  rule: Pick<EffectiveRule, 'key' | 'destinations'>;
  now: boolean;
}

interface Prompt {
  id: string;
  key: string;
  uid: number;
  exe: string;
  state: 'opening' | 'pending' | 'answering' | 'closed';
  /** pid -> start time (when known). */
  processes: Map<number, string | undefined>;
  /** Attempts that named no process. */
  anonymous: number;
  facts?: ProcessFacts;
  destinations: Map<string, { dst: AttemptDestination; iface: string; count: number }>;
  count: number;
  firstSeen: number;
  lastSeen: number;
  warnings: string[];
  deadline?: number;
  timer?: unknown;
  updateTimer?: unknown;
}

interface DeniedProcess {
  startTime?: string;
  /** Undefined: the whole tunnel. */
  scope?: Destination[];
}
interface DeniedEntry {
  procs: Map<number, DeniedProcess>;
  cooldownUntil: number;
  cooldownScope?: Destination[];
  count: number;
}

const keyOf = (uid: number, exe: string) => `${uid}\0${exe}`;

export class PromptManager {
  private readonly prompts = new Map<string, Prompt>();
  private readonly byKey = new Map<string, Prompt>();
  private readonly denied = new Map<string, DeniedEntry>();
  private readonly listeners = new Set<(change: PromptChange, prompt: PromptView) => void>();

  constructor(private readonly deps: PromptDeps) {}

  onChange(fn: (change: PromptChange, prompt: PromptView) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** A denied attempt. Never waits: whatever needs /proc runs on its own. */
  attempt(a: DeniedAttempt): void {
    if (a.mode === 'audit' || a.uid < 0) return;
    const policy = this.deps.policy();
    // Only where a user rule could open the interface it tried (helper/policy/scope.ts).
    if (!policy || policy.userPrompts === 'deny' || !userRulesOn(policy, a.iface)) return;
    if (a.exe !== undefined && this.fold(a, a.exe)) return;
    if (a.exe === undefined) {
      if (a.pid === undefined) return;
      const p = this.promptOfPid(a.uid, a.pid);
      if (p) return this.add(p, a);
    }
    void this.open(a).catch((e: Error) => logError(`prompt for ${a.exe ?? `pid ${a.pid}`}: ${e.message}`));
  }

  /** Pending prompts: the caller's own, or every one for an admin. */
  list(caller: Pick<Caller, 'uid' | 'admin'>): PromptView[] {
    return [...this.prompts.values()]
      .filter((p) => (p.state === 'pending' || p.state === 'answering') && (caller.admin || p.uid === caller.uid))
      .map((p) => this.view(p));
  }

  /** An app of `uid` now shows prompts: their answer clocks start. */
  viewerArrived(uid: number): void {
    for (const p of this.prompts.values()) {
      if (p.uid === uid && p.state === 'pending' && p.deadline === undefined) {
        this.startDeadline(p);
        this.notify('updated', p);
      }
    }
  }

  /** The policy changed: where users may no longer decide, pending prompts close. */
  policyChanged(): void {
    if (this.deps.policy()?.userPrompts !== 'deny') return;
    for (const p of [...this.prompts.values()]) if (p.state === 'pending' || p.state === 'opening') this.close(p, { reason: 'locked' });
  }

  /** A user rule was added outside a prompt (`tunnelgate allow`): prompts it answers close. */
  ruleAdded(uid: number, exe: string, destinations: readonly Destination[] | undefined): void {
    const p = this.byKey.get(keyOf(uid, exe));
    if (!p || p.state !== 'pending') return;
    if (destinations && ![...p.destinations.values()].every((d) => destinations.some((x) => covers(x, d.dst)))) return;
    this.close(p, { reason: 'allowed' });
  }

  async answer(by: Pick<Caller, 'uid' | 'admin'>, params: AnswerParams): Promise<AnswerResult> {
    const p = this.prompts.get(params.id);
    if (!p || p.state === 'opening' || p.state === 'closed') throw ApiError(ErrorCode.NotFound, `no pending prompt ${params.id}`);
    if (!by.admin && by.uid !== p.uid) {
      throw ApiError(ErrorCode.Forbidden, `prompt ${params.id} is about a process of another user: only that user or an admin may answer it`);
    }
    if (p.state === 'answering') throw ApiError(ErrorCode.Conflict, `prompt ${params.id} is being answered`);
    const { decision } = params;
    const timed = params.seconds !== undefined || params.untilLogout === true;
    if (decision === 'allow-for' && !timed) throw ApiError(ErrorCode.InvalidParams, 'allow-for needs a duration (seconds) or until logout');
    if (decision !== 'allow-for' && timed) throw ApiError(ErrorCode.InvalidParams, `${decision} takes no duration (did you mean allow-for?)`);
    if (params.scope === 'tunnel' && params.destinations) throw ApiError(ErrorCode.InvalidParams, 'destinations go with scope "destination"');
    const locked = lockedReason(this.deps.policy());
    if (locked) {
      this.close(p, { reason: 'locked' });
      throw ApiError(ErrorCode.Forbidden, locked);
    }
    const scope: PromptScope = params.scope ?? (params.destinations ? 'destination' : 'tunnel');
    const destinations = scope === 'destination'
      ? unionDestinations([], params.destinations ?? [...p.destinations.values()].map((d) => destinationOf(d.dst)))
      : undefined;
    if (destinations && !destinations.length) throw ApiError(ErrorCode.InvalidParams, `prompt ${p.id} has no destination to scope to`);

    p.state = 'answering';
    this.deps.clock.clearTimeout(p.timer);
    let record: UserDecisionView | undefined;
    let admitted: number[] = [];
    try {
      const base = { uid: p.uid, path: p.exe, pin: true, ...(p.facts?.sha256 ? { sha256: p.facts.sha256 } : {}), ...(destinations ? { destinations } : {}), by: by.uid, via: 'prompt' as const };
      switch (decision) {
        case 'allow-once': {
          const processes = await this.liveProcesses(p);
          if (!processes.length) {
            throw ApiError(ErrorCode.Conflict, `the processes of prompt ${p.id} have exited: nothing to allow once (allow-for or allow-always allow the program)`);
          }
          ({ view: record, admitted } = await this.deps.decisions.allow({ ...base, lifetime: { kind: 'process', processes }, admit: processes.map((x) => x.pid) }));
          break;
        }
        case 'allow-for':
          ({ view: record, admitted } = await this.deps.decisions.allow({ ...base, lifetime: requestedLifetime(params, this.deps.clock.now()) }));
          break;
        case 'allow-always':
          ({ view: record, admitted } = await this.deps.decisions.allow({ ...base, lifetime: { kind: 'always' } }));
          break;
        case 'deny':
          this.deny(p, destinations);
          break;
        case 'deny-always':
          record = await this.deps.decisions.denyAlways({ uid: p.uid, path: p.exe, ...(destinations ? { destinations } : {}), by: by.uid, via: 'prompt' });
          break;
      }
    } catch (e) {
      if (p.state === 'answering') {
        p.state = 'pending';
        this.arm(p);
      }
      throw e;
    }
    // Processes that tried while the answer was being applied.
    if (decision.startsWith('allow')) {
      for (const pid of p.processes.keys()) {
        if (admitted.includes(pid)) continue;
        if ((await this.deps.admitIfAllowed(pid).catch(() => undefined))?.now) admitted.push(pid);
      }
    }
    this.close(p, { answered: { decision, scope, by: by.uid, ...(record?.key ? { rule: record.key } : {}) } });
    return { decision, ...(record ? { decisionRecord: record } : {}), admitted };
  }

  /** Forget processes that exited (denied ones, and those listed in prompts). */
  async sweep(): Promise<void> {
    const now = this.deps.clock.now();
    for (const [key, d] of [...this.denied]) {
      for (const [pid, e] of [...d.procs]) if (!(await this.isLive(pid, e.startTime))) d.procs.delete(pid);
      if (!d.procs.size && now >= d.cooldownUntil) this.denied.delete(key);
    }
    for (const p of this.prompts.values()) {
      if (p.state !== 'pending') continue;
      let changed = false;
      for (const [pid, st] of [...p.processes]) {
        if (await this.isLive(pid, st)) continue;
        p.processes.delete(pid);
        changed = true;
      }
      if (changed) this.notify('updated', p);
    }
  }

  // ---- internals ------------------------------------------------------------------

  /**
   * A process that has exited, admitted shortly before (the watcher after an exec hold's
   * deadline passed, say): its drop, read only now, came from before that admission.
   */
  private async admittedBeforeExit(pid: number): Promise<Admission | undefined> {
    if ((await this.deps.procs.startTime(pid)) !== undefined) return undefined;
    const rule = this.deps.recentAdmission(pid);
    return rule ? { rule, now: false } : undefined;
  }

  private async isLive(pid: number, startTime: string | undefined): Promise<boolean> {
    return startTime !== undefined ? this.deps.procs.alive({ pid, startTime }) : (await this.deps.procs.startTime(pid)) !== undefined;
  }

  private async liveProcesses(p: Prompt): Promise<StoredProcess[]> {
    const out: StoredProcess[] = [];
    for (const [pid, known] of p.processes) {
      const startTime = known ?? (await this.deps.procs.startTime(pid));
      if (startTime !== undefined && (await this.deps.procs.alive({ pid, startTime }))) out.push({ pid, startTime });
    }
    return out;
  }

  /** Folded into what exists: a denied process, a deny-always, or a pending prompt. */
  private fold(a: DeniedAttempt, exe: string): boolean {
    const key = keyOf(a.uid, exe);
    const d = this.denied.get(key);
    if (d && this.suppressed(d, a)) {
      d.count++;
      return true;
    }
    if (this.deps.decisions.findDeny(a.uid, exe, a.dst)) return true;
    const p = this.byKey.get(key);
    if (p) {
      this.add(p, a);
      return true;
    }
    return false;
  }

  private suppressed(d: DeniedEntry, a: DeniedAttempt): boolean {
    if (a.pid !== undefined) {
      const e = d.procs.get(a.pid);
      return e !== undefined && scopeCovers(e.scope, a.dst);
    }
    return this.deps.clock.now() < d.cooldownUntil && scopeCovers(d.cooldownScope, a.dst);
  }

  private promptOfPid(uid: number, pid: number): Prompt | undefined {
    for (const p of this.prompts.values()) if (p.uid === uid && p.state !== 'closed' && p.processes.has(pid)) return p;
    return undefined;
  }

  private timeOf(a: DeniedAttempt): number {
    const t = Date.parse(a.time);
    return Number.isFinite(t) ? t : this.deps.clock.now();
  }

  private add(p: Prompt, a: DeniedAttempt): void {
    // A burst the log showed only part of carries the drops the kernel counted (repeats).
    p.count += a.repeats ?? 1;
    p.lastSeen = Math.max(p.lastSeen, this.timeOf(a));
    if (a.pid !== undefined) {
      if (!p.processes.has(a.pid) && p.processes.size < MAX_PIDS) p.processes.set(a.pid, undefined);
    } else {
      p.anonymous++;
    }
    const dk = `${formatDestination(a.dst)}@${a.iface}`;
    const d = p.destinations.get(dk);
    if (d) d.count++;
    else if (p.destinations.size < MAX_DESTINATIONS) p.destinations.set(dk, { dst: { ...a.dst }, iface: a.iface, count: 1 });
    if (p.state === 'pending' && p.updateTimer === undefined) {
      p.updateTimer = this.deps.clock.setTimeout(() => {
        p.updateTimer = undefined;
        if (p.state === 'pending') this.notify('updated', p);
      }, this.deps.updateThrottleMs ?? 1_000);
    }
  }

  private canOpen(uid: number): boolean {
    if (this.prompts.size >= MAX_PROMPTS) return false;
    let mine = 0;
    for (const p of this.prompts.values()) if (p.uid === uid) mine++;
    return mine < MAX_PROMPTS_PER_USER;
  }

  private create(a: DeniedAttempt, exe: string): Prompt {
    const t = this.timeOf(a);
    const p: Prompt = {
      id: newId(),
      key: keyOf(a.uid, exe),
      uid: a.uid,
      exe,
      state: 'opening',
      processes: new Map(),
      anonymous: 0,
      destinations: new Map(),
      count: 0,
      firstSeen: t,
      lastSeen: t,
      warnings: [],
    };
    this.prompts.set(p.id, p);
    this.byKey.set(p.key, p);
    this.add(p, a);
    return p;
  }

  private async open(a: DeniedAttempt): Promise<void> {
    let p: Prompt | undefined;
    if (a.exe !== undefined) {
      if (!this.canOpen(a.uid)) return;
      p = this.create(a, a.exe);
    }
    const facts = await this.deps.inspect(a).catch(() => undefined);
    if (!p) {
      if (!facts) return;
      if (this.fold(a, facts.exe)) return;
      if (!this.canOpen(a.uid)) return;
      p = this.create(a, facts.exe);
    }
    if (p.state !== 'opening') return;
    if (facts) {
      p.facts = facts;
      if (facts.pid !== undefined && p.processes.has(facts.pid)) p.processes.set(facts.pid, facts.startTime);
    }

    // Allowed already (a rule added since the process started, and no watcher admitted it)?
    // Then admit it rather than ask. Admitted already under a rule that covers the
    // destination? Then the attempt is a packet dropped before that admission (an answer or
    // an allow raced its retransmission): nothing to ask.
    for (const pid of [...p.processes.keys()]) {
      const found = (await this.deps.admitIfAllowed(pid).catch(() => undefined)) ?? (await this.admittedBeforeExit(pid));
      if (!found) continue;
      if (found.now) this.deps.events.emit({ type: 'attempt.admitted', uid: p.uid, pid, exe: p.exe, rule: found.rule.key });
      if (scopeCovers(found.rule.destinations, a.dst)) p.processes.delete(pid);
    }
    if (p.state !== 'opening') return;
    // (A prompt closed before it was shown leaves no trace but the attempt events.)
    if (!p.processes.size && !p.anonymous) return this.close(p, { reason: 'allowed' });
    if (this.deps.policy()?.userPrompts !== 'allow') return this.close(p, { reason: 'locked' });

    const sha = facts?.sha256;
    if (sha) {
      const seen = this.deps.decisions.seen(p.exe);
      if (seen && seen.sha256 !== sha) {
        p.warnings.push(
          `${p.exe} is not the program seen before at this path: its sha256 was ${seen.sha256.slice(0, 16)}… (since ${seen.since}) and is now ${sha.slice(0, 16)}…`,
        );
        this.deps.events.emit({ type: 'binary.changed', uid: p.uid, path: p.exe, previous: seen.sha256, sha256: sha, since: seen.since });
      }
      if (seen?.sha256 !== sha) {
        void this.deps.decisions.recordSeen(p.exe, sha).catch((e: Error) => logError(`remembering the hash of ${p?.exe}: ${e.message}`));
      }
    }

    p.state = 'pending';
    const first = [...p.destinations.values()][0];
    this.deps.events.emit({
      type: 'prompt.opened',
      id: p.id,
      uid: p.uid,
      ...(facts?.pid !== undefined ? { pid: facts.pid } : a.pid !== undefined ? { pid: a.pid } : {}),
      exe: p.exe,
      dst: first ? formatDestination(first.dst) : '?',
      program: facts?.program.name ?? path.basename(p.exe),
      warnings: [...p.warnings],
    });
    this.arm(p);
    this.notify('opened', p);
  }

  private arm(p: Prompt): void {
    this.deps.clock.clearTimeout(p.timer);
    if (p.deadline !== undefined || this.deps.hasViewer(p.uid)) {
      this.startDeadline(p);
    } else {
      p.timer = this.deps.clock.setTimeout(() => this.expire(p, 'unanswered'), this.deps.pendingMaxMs);
    }
  }

  private startDeadline(p: Prompt): void {
    this.deps.clock.clearTimeout(p.timer);
    p.deadline = this.deps.clock.now() + this.deps.timeoutMs;
    p.timer = this.deps.clock.setTimeout(() => this.expire(p, 'timeout'), this.deps.timeoutMs);
  }

  private expire(p: Prompt, reason: 'timeout' | 'unanswered'): void {
    if (p.state !== 'pending') return;
    this.deny(p, undefined);
    this.close(p, { reason });
  }

  /** Not these processes (in this scope), and attempts naming no process for a cool-down. */
  private deny(p: Prompt, scope: Destination[] | undefined): void {
    const d = this.denied.get(p.key) ?? { procs: new Map<number, DeniedProcess>(), cooldownUntil: 0, count: 0 };
    for (const [pid, startTime] of p.processes) {
      d.procs.set(pid, { ...(startTime !== undefined ? { startTime } : {}), ...(scope ? { scope } : {}) });
    }
    d.cooldownUntil = this.deps.clock.now() + (this.deps.denyCooldownMs ?? 5 * 60_000);
    if (scope) d.cooldownScope = scope;
    else delete d.cooldownScope;
    this.denied.set(p.key, d);
  }

  private close(
    p: Prompt,
    how: { reason: PromptCloseReason } | { answered: { decision: AnswerParams['decision']; scope: PromptScope; by: number; rule?: string } },
  ): void {
    const wasShown = p.state === 'pending' || p.state === 'answering';
    p.state = 'closed';
    this.deps.clock.clearTimeout(p.timer);
    this.deps.clock.clearTimeout(p.updateTimer);
    this.prompts.delete(p.id);
    if (this.byKey.get(p.key) === p) this.byKey.delete(p.key);
    if ('answered' in how) {
      this.deps.events.emit({ type: 'prompt.answered', id: p.id, uid: p.uid, exe: p.exe, count: p.count, ...how.answered });
    } else if (wasShown) {
      this.deps.events.emit({ type: 'prompt.closed', id: p.id, uid: p.uid, exe: p.exe, count: p.count, reason: how.reason });
    }
    if (wasShown) this.notify('closed', p);
  }

  private notify(change: PromptChange, p: Prompt): void {
    if (!this.listeners.size) return;
    const v = this.view(p);
    for (const l of this.listeners) l(change, v);
  }

  private view(p: Prompt): PromptView {
    const f = p.facts;
    return {
      id: p.id,
      uid: p.uid,
      user: f?.user ?? `uid ${p.uid}`,
      exe: p.exe,
      program: f?.program ?? { name: path.basename(p.exe) },
      pids: [...p.processes.keys()],
      ...(f?.cmdline ? { cmdline: f.cmdline } : {}),
      parents: f?.parents ?? [],
      destinations: [...p.destinations.values()].map((d) => ({ ...d.dst, iface: d.iface, count: d.count })),
      count: p.count,
      firstSeen: new Date(p.firstSeen).toISOString(),
      lastSeen: new Date(p.lastSeen).toISOString(),
      ...(f?.sha256 ? { sha256: f.sha256 } : {}),
      warnings: [...p.warnings],
      ...(p.deadline !== undefined ? { deadline: new Date(p.deadline).toISOString() } : {}),
    };
  }
}
