// Users' decisions in force: adds and removes user rules (saved first, then applied), admits
// the live processes a new rule allows at once (net_cls re-tags their sockets, so a connection
// they are already attempting passes on its next retransmission), and ends rules whose
// lifetime is over (a duration, the processes of an allow-once, the user's session).
//
// Lifetimes:
// - always / until: by the binary (path, and the sha256 pinned by default);
// - process (allow-once): the rule lives while the listed processes (pid + start time) run,
//   and admits only them (the rule's `processes`, checked by decide()): another process of
//   the same user and binary is asked about again.
// - session ("until logout"): until the user has no process left. With a lingering
//   systemd --user manager that is never; use a duration there.
import type { AllowParams, RuleLifetime, UserDecisionView } from '../../common/api.js';
import { describeLifetime, ErrorCode } from '../../common/api.js';
import type { AttemptDestination } from '../../common/attempts.js';
import type { RuleRemovalReason } from '../../common/events.js';
import type { Policy } from '../../common/policy.js';
import type { Destination } from '../../common/profile.js';
import type { Verdict } from '../policy/decide.js';
import type { UserRule } from '../policy/merge.js';
import type { Clock } from './clock.js';
import type { StoredAllow, StoredDeny, StoredLifetime, StoredProcess } from '../store/decisions.js';
import type { DecisionsPort } from '../store/state-writes.js';
import { DecisionsNotSaved, newId } from '../store/decisions.js';
import { covers, formatRuleDestination, unionDestinations } from '../policy/destinations.js';
import { pathCovers, userRuleInterfaces } from '../policy/scope.js';
import { ApiError, CallerError } from '../../common/errors.js';
import type { EventSink } from './event-bus.js';
import type { ProcessPort } from './ports.js';
import { logError } from '../../common/node/log.js';

/** What this module needs of the gate. */
export interface GatePort {
  readonly current: Policy | undefined;
  admit(pid: number, ruleKey: string): Promise<void>;
  verdictFor(policy: Policy, pid: number): Promise<Verdict>;
  admitted(): Promise<Map<string, number[]>>;
}

export interface UserRulesDeps {
  store: DecisionsPort;
  gate: GatePort;
  events: EventSink;
  /** Rebuild the policy (profiles + user rules) and put it in force; resolves when done. */
  applyPolicy: () => Promise<void>;
  procs: ProcessPort;
  /** sha256 of a file's bytes. */
  hash: (file: string) => Promise<string>;
  clock: Clock;
  /** Period of the lifetime sweep. */
  sweepMs?: number;
}

export interface AllowRequest {
  uid: number;
  path: string;
  /** The hash to pin; with pin and no hash, the file at path is hashed. */
  sha256?: string;
  pin: boolean;
  destinations?: Destination[];
  lifetime: StoredLifetime;
  by: number;
  via: 'prompt' | 'api';
  /** Admit exactly these processes (allow-once); default: every live process of uid running path. */
  admit?: number[];
}

export const ruleKey = (r: { uid: number; id: string }) => `user.${r.uid}:${r.id}`;

export function lifetimeView(l: StoredLifetime): RuleLifetime {
  return l.kind === 'process' ? { kind: 'process', pids: l.processes.map((p) => p.pid) } : l;
}

export function allowView(r: StoredAllow): UserDecisionView {
  return {
    kind: 'allow',
    id: r.id,
    key: ruleKey(r),
    uid: r.uid,
    path: r.path,
    ...(r.sha256 ? { sha256: r.sha256 } : {}),
    ...(r.destinations ? { destinations: r.destinations } : {}),
    lifetime: lifetimeView(r.lifetime),
    createdAt: r.createdAt,
    createdBy: r.createdBy,
    via: r.via,
  };
}

export function denyView(d: StoredDeny): UserDecisionView {
  return {
    kind: 'deny',
    id: d.id,
    uid: d.uid,
    path: d.path,
    ...(d.destinations ? { destinations: d.destinations } : {}),
    lifetime: { kind: 'always' },
    createdAt: d.createdAt,
    createdBy: d.createdBy,
    via: d.via,
  };
}

/** The lifetime an allow asks for: a duration, until logout, or always. */
export function requestedLifetime(p: Pick<AllowParams, 'seconds' | 'untilLogout'>, now: number): StoredLifetime {
  if (p.seconds !== undefined && p.untilLogout) throw ApiError(ErrorCode.InvalidParams, 'give a duration or "until logout", not both');
  if (p.seconds !== undefined) return { kind: 'until', expires: new Date(now + p.seconds * 1000).toISOString() };
  if (p.untilLogout) return { kind: 'session' };
  return { kind: 'always' };
}

function sameLifetime(a: StoredLifetime, b: StoredLifetime): boolean {
  if (a.kind === 'until' && b.kind === 'until') return a.expires === b.expires;
  if (a.kind === 'process' && b.kind === 'process') {
    const k = (l: typeof a) => l.processes.map((p) => `${p.pid}:${p.startTime}`).sort().join(',');
    return k(a) === k(b);
  }
  return a.kind === b.kind;
}

/**
 * Is a policy locked against user decisions (for the program at `path`, if given: a user
 * rule for it would open no interface, helper/policy/scope.ts)? Then say so, clearly.
 */
export function lockedReason(policy: Policy | undefined, path?: string): string | undefined {
  if (!policy) return 'the helper has no policy in force yet';
  const scopes = policy.scopes;
  if (path !== undefined && scopes && policy.userPrompts === 'allow') {
    const rulesOf = (id: string) => policy.rules.filter((r) => r.source.kind === 'profile' && r.source.profileId === id);
    if (!userRuleInterfaces(scopes, rulesOf, path).length) {
      const by = scopes.filter((s) => rulesOf(s.profileId).some((r) => r.binary?.path !== undefined && pathCovers(r.binary.path, path))).map((s) => s.profileId);
      return `user decisions for ${path} are not allowed here: ${by.length ? `profile ${by.join(', ')} has a rule of its own for it on the interfaces where users may decide` : 'no interface is open to user decisions for it'}, so only IT profiles decide; ask your administrator`;
    }
  }
  if (policy.userPrompts === 'deny') {
    if (!policy.sources.some((s) => s.state === 'active')) return 'user decisions are not allowed here: no profile is in force, so the tunnel is closed to every program; ask your administrator';
    // Only the profiles that set the lock: one that merely allows prompts is not the reason.
    const by = policy.lockedBy ?? policy.scopes?.filter((s) => s.userPrompts === 'deny').map((s) => s.profileId) ?? [];
    const who = by.length === 0 ? 'a profile' : by.length === 1 ? `profile ${by[0]}` : `profiles ${by.join(', ')}`;
    return `user decisions are not allowed here: ${who} ${by.length > 1 ? 'set' : 'sets'} userPrompts to "deny", so only IT profiles decide; ask your administrator`;
  }
  return undefined;
}

export class UserRules {
  private sweepTimer: unknown;
  private expiryTimer: unknown;
  private lastSessionCheck = 0;
  private closed = false;
  /**
   * Allow rules whose end could not be saved (a full state dir; issue 9.10): out of force
   * anyway, so a rule never outlives its end because a file cannot be written. Kept until the
   * store no longer holds them (the sweep saves the removal once it can).
   */
  private readonly endedUnsaved = new Map<string, RuleRemovalReason>();

  constructor(private readonly deps: UserRulesDeps) {}

  /** User rules for mergePolicy: the stored allows whose lifetime is not over. */
  userRules(): UserRule[] {
    const now = this.deps.clock.now();
    const stored = this.deps.store.current.allows;
    for (const id of this.endedUnsaved.keys()) if (!stored.some((r) => r.id === id)) this.endedUnsaved.delete(id);
    return stored
      .filter((r) => !this.endedUnsaved.has(r.id))
      .filter((r) => r.lifetime.kind !== 'until' || Date.parse(r.lifetime.expires) > now)
      .map((r) => ({
        id: r.id,
        uid: r.uid,
        binary: { path: r.path, ...(r.sha256 ? { sha256: r.sha256 } : {}) },
        ...(r.destinations ? { destinations: r.destinations } : {}),
        ...(r.lifetime.kind === 'until' ? { expires: r.lifetime.expires } : {}),
        ...(r.lifetime.kind === 'process' ? { processes: r.lifetime.processes.map((p) => ({ pid: p.pid, startTime: p.startTime })) } : {}),
      }));
  }

  /** The stored decisions, of one user or of all. */
  views(uid?: number): UserDecisionView[] {
    const { allows, denies } = this.deps.store.current;
    return [...allows.map(allowView), ...denies.map(denyView)].filter((v) => uid === undefined || v.uid === uid);
  }

  /** A deny-always of `uid` that covers this attempt of `exe`. */
  findDeny(uid: number, exe: string, dst: AttemptDestination): StoredDeny | undefined {
    return this.deps.store.current.denies.find(
      (d) => d.uid === uid && d.path === exe && (!d.destinations || d.destinations.some((x) => covers(x, dst))),
    );
  }

  /**
   * Add (or widen) a user allow rule: saved durably, put in force, then the live processes it
   * allows are admitted. Throws a clear error where the policy is locked.
   */
  async allow(req: AllowRequest): Promise<{ view: UserDecisionView; admitted: number[] }> {
    const locked = lockedReason(this.deps.gate.current, req.path);
    if (locked) throw ApiError(ErrorCode.Forbidden, locked);
    let sha256 = req.pin ? req.sha256 : undefined;
    if (req.pin && !sha256) {
      sha256 = await this.deps.hash(req.path).catch((e: Error) => {
        throw ApiError(ErrorCode.NotFound, `cannot pin ${req.path}: ${e.message} (allow it without a pin to name a path that does not exist yet)`);
      });
    }
    const now = new Date(this.deps.clock.now()).toISOString();
    const replacedDenies: StoredDeny[] = [];
    const rule = await this.deps.store.update((doc) => {
      let r = doc.allows.find(
        (a) => a.uid === req.uid && a.path === req.path && a.sha256 === sha256 && sameLifetime(a.lifetime, req.lifetime),
      );
      if (r) {
        if (!req.destinations) delete r.destinations;
        else if (r.destinations) r.destinations = unionDestinations(r.destinations, req.destinations);
      } else {
        r = {
          id: newId(),
          uid: req.uid,
          path: req.path,
          ...(sha256 ? { sha256 } : {}),
          ...(req.destinations ? { destinations: req.destinations } : {}),
          lifetime: req.lifetime,
          createdAt: now,
          createdBy: req.by,
          via: req.via,
        };
        doc.allows.push(r);
      }
      // An explicit allow overrides the user's own deny-always where they meet.
      const conflicts = (d: StoredDeny) =>
        d.uid === req.uid && d.path === req.path &&
        (!d.destinations || !req.destinations || d.destinations.some((x) => req.destinations?.some((y) => JSON.stringify(x) === JSON.stringify(y))));
      replacedDenies.push(...doc.denies.filter(conflicts));
      doc.denies = doc.denies.filter((d) => !conflicts(d));
      return structuredClone(r);
    });
    for (const d of replacedDenies) {
      this.deps.events.emit({ type: 'deny.removed', id: d.id, uid: d.uid, path: d.path, by: req.by, reason: 'replaced' });
    }
    const key = ruleKey(rule);
    await this.deps.applyPolicy();
    const policy = this.deps.gate.current;
    if (!policy?.rules.some((r) => r.key === key)) {
      throw ApiError(ErrorCode.Internal, `rule ${key} is saved but could not be put in force: ${lockedReason(policy) ?? (policy?.problems.join('; ') || 'see tunnelgate status')}`);
    }
    const admitted = await this.admitLive(policy, key, req.admit ?? (await this.deps.procs.find(req.uid, req.path)).map((p) => p.pid));
    this.deps.events.emit({
      type: 'rule.added',
      key,
      uid: rule.uid,
      path: rule.path,
      by: req.by,
      lifetime: describeLifetime(lifetimeView(rule.lifetime)),
      ...(rule.sha256 ? { sha256: rule.sha256 } : {}),
      ...(rule.destinations ? { destinations: rule.destinations.map(formatRuleDestination) } : {}),
      admitted,
    });
    this.scheduleExpiry();
    return { view: allowView(rule), admitted };
  }

  /** Move each process the policy now allows under `key` into that rule. */
  async admitLive(policy: Policy, key: string, pids: readonly number[]): Promise<number[]> {
    const admitted: number[] = [];
    for (const pid of new Set(pids)) {
      const v = await this.deps.gate.verdictFor(policy, pid).catch(() => undefined);
      if (!v?.allow || v.rule.key !== key) continue;
      try {
        await this.deps.gate.admit(pid, key);
        admitted.push(pid);
      } catch {
        /* gone meanwhile */
      }
    }
    return admitted;
  }

  /** Record a deny-always (widening one that exists for the same binary). */
  async denyAlways(req: { uid: number; path: string; destinations?: Destination[]; by: number; via: 'prompt' | 'api' }): Promise<UserDecisionView> {
    const now = new Date(this.deps.clock.now()).toISOString();
    const deny = await this.deps.store.update((doc) => {
      let d = doc.denies.find((x) => x.uid === req.uid && x.path === req.path);
      if (d) {
        if (!req.destinations) delete d.destinations;
        else if (d.destinations) d.destinations = unionDestinations(d.destinations, req.destinations);
      } else {
        d = { id: newId(), uid: req.uid, path: req.path, ...(req.destinations ? { destinations: req.destinations } : {}), createdAt: now, createdBy: req.by, via: req.via };
        doc.denies.push(d);
      }
      return structuredClone(d);
    });
    this.deps.events.emit({
      type: 'deny.added',
      id: deny.id,
      uid: deny.uid,
      path: deny.path,
      by: req.by,
      ...(deny.destinations ? { destinations: deny.destinations.map(formatRuleDestination) } : {}),
    });
    return denyView(deny);
  }

  /** Decisions a target names: a rule key, a decision id, or a path (of `uid`'s decisions). */
  resolve(target: string, uid: number): { allows: StoredAllow[]; denies: StoredDeny[] } {
    const { allows, denies } = this.deps.store.current;
    if (target.startsWith('/')) {
      return { allows: allows.filter((r) => r.uid === uid && r.path === target), denies: denies.filter((d) => d.uid === uid && d.path === target) };
    }
    return {
      allows: allows.filter((r) => r.id === target || ruleKey(r) === target),
      denies: denies.filter((d) => d.id === target),
    };
  }

  /**
   * Remove decisions (already authorised by the caller): saved, then the new policy is applied,
   * which takes the removed rules' processes off the tunnel at once.
   */
  async remove(
    ids: ReadonlySet<string>,
    by: number | undefined,
    reason: RuleRemovalReason,
    opts: { apply?: boolean } = {},
  ): Promise<{ removed: UserDecisionView[]; released: number }> {
    const before = await this.deps.gate.admitted().catch(() => new Map<string, number[]>());
    const { allows, denies } = await this.deps.store
      .update((doc) => {
        const out = { allows: doc.allows.filter((r) => ids.has(r.id)), denies: doc.denies.filter((d) => ids.has(d.id)) };
        doc.allows = doc.allows.filter((r) => !ids.has(r.id));
        doc.denies = doc.denies.filter((d) => !ids.has(d.id));
        return out;
      })
      .catch(async (e: unknown) => {
        // Not saved (the caller is told): the allow rules end in force all the same (fail closed).
        const ending = this.deps.store.current.allows.filter((r) => ids.has(r.id) && !this.endedUnsaved.has(r.id));
        for (const r of ending) this.endedUnsaved.set(r.id, reason);
        if (ending.length && opts.apply !== false) await this.deps.applyPolicy().catch(() => undefined);
        if (ending.length && e instanceof DecisionsNotSaved) {
          const n = ending.length === 1 ? 'the rule has' : `${ending.length} rules have`;
          throw new CallerError(e.code, `cannot save the removal: ${e.detail}; ${n} ended in force all the same, and the removal is saved once the state directory can be written`);
        }
        throw e;
      });
    if (allows.length && opts.apply !== false) await this.deps.applyPolicy();
    let released = 0;
    for (const r of allows) {
      const n = before.get(ruleKey(r))?.length ?? 0;
      released += n;
      this.deps.events.emit({ type: 'rule.removed', key: ruleKey(r), uid: r.uid, path: r.path, ...(by !== undefined ? { by } : {}), reason, released: n });
    }
    for (const d of denies) {
      this.deps.events.emit({ type: 'deny.removed', id: d.id, uid: d.uid, path: d.path, ...(by !== undefined ? { by } : {}), reason: 'revoked' });
    }
    this.scheduleExpiry();
    return { removed: [...allows.map(allowView), ...denies.map(denyView)], released };
  }

  /**
   * End the rules whose lifetime is over: durations that passed, allow-once rules whose
   * processes all exited, session rules of users with no process left.
   */
  async sweep(opts: { apply?: boolean } = {}): Promise<void> {
    const now = this.deps.clock.now();
    const checkSessions = now - this.lastSessionCheck >= 10_000;
    if (checkSessions) this.lastSessionCheck = now;
    const ended = new Map<string, RuleRemovalReason>();
    const shrunk = new Map<string, StoredProcess[]>();
    const sessionAlive = new Map<number, boolean>();
    for (const r of this.deps.store.current.allows) {
      const l = r.lifetime;
      if (l.kind === 'until' && Date.parse(l.expires) <= now) ended.set(r.id, 'expired');
      if (l.kind === 'process') {
        const live: StoredProcess[] = [];
        for (const p of l.processes) if (await this.deps.procs.alive(p)) live.push(p);
        if (!live.length) ended.set(r.id, 'process-exited');
        else if (live.length !== l.processes.length) shrunk.set(r.id, live);
      }
      if (l.kind === 'session' && checkSessions) {
        if (!sessionAlive.has(r.uid)) sessionAlive.set(r.uid, await this.deps.procs.hasProcesses(r.uid));
        if (!sessionAlive.get(r.uid)) ended.set(r.id, 'session-ended');
      }
    }
    // Rules that ended before but whose end could not be saved: saved now, for the same reason.
    for (const [id, reason] of this.endedUnsaved) if (!ended.has(id)) ended.set(id, reason);
    // Every ending is tried (and in force) even when an earlier save fails; the first failure is thrown.
    const failures: unknown[] = [];
    for (const reason of new Set(ended.values())) {
      const ids = new Set([...ended].filter(([, why]) => why === reason).map(([id]) => id));
      await this.remove(ids, undefined, reason, opts).catch((e: unknown) => failures.push(e));
    }
    if (shrunk.size) {
      await this.deps.store
        .update((doc) => {
          for (const r of doc.allows) {
            const live = shrunk.get(r.id);
            if (live && r.lifetime.kind === 'process') r.lifetime = { kind: 'process', processes: live };
          }
        })
        .catch((e: unknown) => failures.push(e));
    }
    if (failures.length) throw failures[0];
  }

  /** Start the periodic sweep and the timer of the next expiry. */
  start(): void {
    const tick = () => {
      if (this.closed) return;
      void this.sweep()
        .catch((e: Error) => logError(`ending user rules: ${e.message}`))
        .finally(() => {
          if (!this.closed) this.sweepTimer = this.deps.clock.setTimeout(tick, this.deps.sweepMs ?? 2_000);
        });
    };
    this.sweepTimer = this.deps.clock.setTimeout(tick, this.deps.sweepMs ?? 2_000);
    this.scheduleExpiry();
  }

  /** A duration ends on time, not at the next sweep. */
  private scheduleExpiry(): void {
    if (this.closed) return;
    this.deps.clock.clearTimeout(this.expiryTimer);
    const next = Math.min(
      ...this.deps.store.current.allows.flatMap((r) => (r.lifetime.kind === 'until' ? [Date.parse(r.lifetime.expires)] : [])),
    );
    if (!Number.isFinite(next)) return;
    this.expiryTimer = this.deps.clock.setTimeout(() => {
      this.inFlight = this.sweep().catch((e: Error) => logError(`ending user rules: ${e.message}`));
    }, Math.max(0, next - this.deps.clock.now()));
  }

  /** An expiry already started when close() came: finished before close() resolves. */
  private inFlight: Promise<void> = Promise.resolve();

  async close(): Promise<void> {
    this.closed = true;
    this.deps.clock.clearTimeout(this.sweepTimer);
    this.deps.clock.clearTimeout(this.expiryTimer);
    await this.inFlight;
  }
}
