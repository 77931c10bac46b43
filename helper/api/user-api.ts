// The API of prompts and user decisions, and who may do what with it. Built once at start-up
// (openUserApi) and handed to the API server: its handlers, its subscription feeds and the
// admin test; the helper's policy takes its user rules from here.
//
// Authorization (each refusal is a Forbidden error, which the server records as api.refused):
// - root and the admin group see and do everything below, for every user;
// - a user sees their own prompts, decisions, user rules and events (and events about nobody);
// - a user answers only prompts about their own processes, adds rules only for themselves and
//   only where the policy allows user decisions, revokes only their own decisions;
// - nobody revokes an IT rule through the API: that is what the profile is for.
import { promises as fs } from 'node:fs';
import type { Stats } from 'node:fs';
import path from 'node:path';
import type { Caller, ExplainResult, StatusReport, SubscribeResult, Topic } from '../../common/api.js';
import { ErrorCode } from '../../common/api.js';
import type { GateEvent } from '../../common/events.js';
import { eventUid } from '../../common/events.js';
import type { Policy } from '../../common/policy.js';
import { describe, needsHash } from '../policy/decide.js';
import type { ProcessIdentity, Verdict } from '../policy/decide.js';
import type { UserRule } from '../policy/merge.js';
import { HashCache, readProc } from '../kernel/proc.js';
import type { PeerCred } from './authorization.js';
import { adminCheck, resolveAdminGroup } from './authorization.js';
import type { Feeds, Handlers, Notify } from './server.js';
import { syslog } from '../native/index.js';
import { AuditTrail, stderrSyslog, syslogWithFallback } from '../core/audit-trail.js';
import type { Syslog } from '../core/audit-trail.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import type { Paths } from '../config.js';
import { DecisionsStore } from '../core/decisions.js';
import { checkDestinations } from '../policy/destinations.js';
import { ApiError } from './errors.js';
import type { EventLog } from '../core/event-bus.js';
import { explain } from '../policy/explain.js';
import { inspectAttempt, ProgramInfo } from '../core/program-info.js';
import { PromptManager } from '../core/prompts.js';
import { loadSettings } from '../core/settings.js';
import { procProcesses, requestedLifetime, UserRules } from '../core/user-rules.js';
import type { GatePort, ProcessPort } from '../core/user-rules.js';

/** What this module needs of the gate (helper/daemon/gate.ts). */
export interface UserApiGate extends GatePort {
  ruleOf(pid: number): Promise<string | undefined>;
  status(): Promise<StatusReport>;
}

export interface UserApiOptions {
  paths: Paths;
  gate: UserApiGate;
  events: EventLog;
  /** Rebuild the policy with the current user rules and put it in force; resolves when done. */
  applyPolicy: () => Promise<void>;
  /** The system log of audit lines (default: syslog(3), else `<priority>` lines on stderr). */
  syslog?: Syslog;
  clock?: Clock;
  procs?: ProcessPort;
  programs?: ProgramInfo;
}

export type UserHandlers = Pick<Handlers, 'list' | 'prompts' | 'answer' | 'allow' | 'revoke' | 'decisions' | 'events' | 'explain'>;

export interface UserApi {
  handlers: UserHandlers;
  feeds: Feeds;
  isAdmin: (cred: PeerCred) => boolean;
  /** For mergePolicy. */
  userRules: () => UserRule[];
  /** For the policy's problems (status): settings, a corrupt decisions file, … */
  problems: () => string[];
  prompts: PromptManager;
  rules: UserRules;
  /** Start the timers that end user rules and forget exited processes (once the policy can be applied). */
  start(): void;
  close(): Promise<void>;
}

/** May this caller read the file (to hash it)? Owner, group and other bits; admins always. */
export function readableBy(st: Pick<Stats, 'uid' | 'gid' | 'mode'>, caller: Pick<Caller, 'uid' | 'gid' | 'admin'>): boolean {
  if (caller.admin) return true;
  if (st.uid === caller.uid) return (st.mode & 0o400) !== 0;
  if (st.gid === caller.gid) return (st.mode & 0o040) !== 0;
  return (st.mode & 0o004) !== 0;
}

/** Users are shown their own events and those about nobody; admins everything. */
export const visibleTo = (caller: Pick<Caller, 'uid' | 'admin'>, e: GateEvent): boolean => {
  if (caller.admin) return true;
  const uid = eventUid(e);
  return uid === undefined || uid === caller.uid;
};

/** Events that change what `status` says. */
const STATUS_EVENTS = new Set<GateEvent['type']>(['policy.applied', 'policy.failed', 'gate.adopted', 'rule.added', 'rule.removed', 'profile.loaded', 'profile.rejected', 'profile.removed']);

function requireOwn(caller: Caller, uid: number, what: string): void {
  if (uid !== caller.uid && !caller.admin) throw ApiError(ErrorCode.Forbidden, `only an admin may ${what} of another user (uid ${uid})`);
}

/** A path a rule can name: absolute, normalised, and not a symbolic link (the kernel reports the target). */
async function checkProgramPath(p: string): Promise<Stats | undefined> {
  if (path.normalize(p) !== p || p.endsWith('/')) throw ApiError(ErrorCode.InvalidParams, `${p} is not a normalised absolute path`);
  const st = await fs.lstat(p).catch(() => undefined);
  if (st?.isSymbolicLink()) {
    const real = await fs.realpath(p).catch(() => undefined);
    throw ApiError(ErrorCode.InvalidParams, `${p} is a symbolic link${real ? ` to ${real}` : ''}: rules name the program the kernel runs${real ? `; use ${real}` : ''}`);
  }
  if (st && !st.isFile()) throw ApiError(ErrorCode.InvalidParams, `${p} is not a regular file`);
  return st;
}

export async function openUserApi(o: UserApiOptions): Promise<UserApi> {
  const clock = o.clock ?? systemClock;
  const procs = o.procs ?? procProcesses;
  const problems: string[] = [];
  const { settings, problems: settingsProblems } = await loadSettings(o.paths.etc);
  problems.push(...settingsProblems);
  const admin = resolveAdminGroup(settings.adminGroup);
  if (admin.problem) problems.push(admin.problem);

  // The audit log sees every event, also those emitted before it was opened.
  const sys = o.syslog ?? syslogWithFallback({ log: syslog }, stderrSyslog(), (why) => console.error(`tunnelgate: syslog(3) failed (${why}); audit lines go to stderr`));
  const audit = new AuditTrail({ dir: o.paths.state, ...settings.auditLog, syslog: sys });
  for (const e of o.events.recent()) void audit.record(e);
  const offAudit = o.events.subscribe((e) => void audit.record(e));

  const opened = await DecisionsStore.open(o.paths.state);
  problems.push(...opened.problems);
  for (const p of opened.problems) console.error(`tunnelgate: ${p}`);
  if (opened.corrupt) {
    o.events.emit({ type: 'decisions.corrupt', file: opened.corrupt.file, ...(opened.corrupt.movedTo ? { movedTo: opened.corrupt.movedTo } : {}), reason: opened.corrupt.reason });
  }
  const store = opened.store;
  const hashes = new HashCache();
  const hash = (f: string) => hashes.sha256(f);
  const rules = new UserRules({ store, gate: o.gate, events: o.events, applyPolicy: o.applyPolicy, procs, hash, clock });
  // Allow-once rules of processes that ended while no helper ran, and durations that passed.
  // (Saved only: the first policy is built from what is left.)
  await rules.sweep({ apply: false }).catch((e: Error) => problems.push(`ending user rules: ${e.message}`));

  const programs = o.programs ?? new ProgramInfo();
  const subscribers = new Set<{ caller: Caller; topics: Set<Topic>; notify: Notify }>();

  const admitIfAllowed = async (pid: number): Promise<string | undefined> => {
    const policy = o.gate.current;
    if (!policy) return undefined;
    const v = await o.gate.verdictFor(policy, pid);
    if (!v.allow || (await o.gate.ruleOf(pid)) === v.rule.key) return undefined;
    await o.gate.admit(pid, v.rule.key);
    return v.rule.key;
  };

  const prompts = new PromptManager({
    clock,
    events: o.events,
    policy: () => o.gate.current,
    inspect: (a) => inspectAttempt(a, programs, hashes),
    admitIfAllowed,
    decisions: {
      findDeny: (uid, exe, dst) => rules.findDeny(uid, exe, dst),
      seen: (exe) => store.current.seen[exe],
      recordSeen: (exe, sha256) => store.update((d) => void (d.seen[exe] = { sha256, since: new Date(clock.now()).toISOString() })),
      allow: (req) => rules.allow(req),
      denyAlways: (req) => rules.denyAlways(req),
    },
    procs,
    hasViewer: (uid) => [...subscribers].some((s) => s.caller.uid === uid && s.topics.has('prompts')),
    timeoutMs: settings.promptTimeoutSeconds * 1000,
    pendingMaxMs: settings.promptPendingMaxSeconds * 1000,
  });

  // Denied attempts arrive as events (helper/daemon/attempts.ts emits attempt.denied).
  let statusTimer: unknown;
  const offEvents = o.events.subscribe((e) => {
    if (e.type === 'attempt.denied') prompts.attempt(e.attempt);
    if (e.type === 'policy.applied') prompts.policyChanged();
    for (const s of subscribers) if (s.topics.has('events') && visibleTo(s.caller, e)) s.notify('event', e);
    if (STATUS_EVENTS.has(e.type) && [...subscribers].some((s) => s.topics.has('status'))) {
      clock.clearTimeout(statusTimer);
      statusTimer = clock.setTimeout(() => {
        void o.gate.status().then((st) => {
          for (const s of subscribers) if (s.topics.has('status')) s.notify('status', st);
        }, () => undefined);
      }, 250);
    }
  });
  const offPrompts = prompts.onChange((change, prompt) => {
    for (const s of subscribers) {
      if (s.topics.has('prompts') && (s.caller.admin || s.caller.uid === prompt.uid)) s.notify('prompt', { change, prompt });
    }
  });

  let sweepTimer: NodeJS.Timeout | undefined;

  const feeds: Feeds = {
    async subscribe(caller, topics, notify) {
      const result: SubscribeResult = { topics };
      if (topics.includes('events')) result.events = o.events.recent().filter((e) => visibleTo(caller, e));
      if (topics.includes('prompts')) result.prompts = prompts.list(caller);
      if (topics.includes('status')) result.status = await o.gate.status();
      const sub = { caller, topics: new Set(topics), notify };
      subscribers.add(sub);
      if (topics.includes('prompts')) prompts.viewerArrived(caller.uid);
      return { result, cancel: () => subscribers.delete(sub) };
    },
  };

  const requirePolicy = (): Policy => {
    const p = o.gate.current;
    if (!p) throw ApiError(ErrorCode.Internal, 'the helper has no policy in force yet');
    return p;
  };

  const handlers: UserHandlers = {
    async list(caller) {
      const policy = o.gate.current;
      const rules = (policy?.rules ?? []).filter((r) => caller.admin || r.source.kind === 'profile' || r.uid === caller.uid);
      return { rules, userPrompts: policy?.userPrompts ?? 'deny' };
    },

    async prompts(caller) {
      return prompts.list(caller);
    },

    async answer(caller, p) {
      if (p.destinations) {
        const bad = checkDestinations(p.destinations);
        if (bad) throw ApiError(ErrorCode.InvalidParams, bad);
      }
      return prompts.answer(caller, p);
    },

    async allow(caller, p) {
      const uid = p.uid ?? caller.uid;
      requireOwn(caller, uid, 'add rules');
      const st = await checkProgramPath(p.path);
      if (p.destinations) {
        const bad = checkDestinations(p.destinations);
        if (bad) throw ApiError(ErrorCode.InvalidParams, bad);
      }
      const pin = p.pin ?? true;
      if (pin) {
        if (!st) throw ApiError(ErrorCode.NotFound, `${p.path} does not exist, so its hash cannot be pinned (allow it without a pin to name a program not installed yet)`);
        if (!readableBy(st, caller)) throw ApiError(ErrorCode.Forbidden, `${p.path} is not readable by uid ${caller.uid}, so its hash cannot be pinned for you`);
      }
      const lifetime = requestedLifetime(p, clock.now());
      const r = await rules.allow({ uid, path: p.path, pin, ...(p.destinations ? { destinations: p.destinations } : {}), lifetime, by: caller.uid, via: 'api' });
      prompts.ruleAdded(uid, p.path, p.destinations);
      return { rule: r.view, admitted: r.admitted };
    },

    async revoke(caller, p) {
      const uid = p.uid ?? caller.uid;
      requireOwn(caller, uid, 'revoke decisions');
      const isPath = p.target.startsWith('/');
      if (p.uid !== undefined && !isPath) throw ApiError(ErrorCode.InvalidParams, 'uid goes with a path; a rule key or id names its user already');
      const found = rules.resolve(p.target, uid);
      const all = [...found.allows, ...found.denies];
      if (!all.length) {
        const it = o.gate.current?.rules.find((r) => r.source.kind === 'profile' && (isPath ? r.binary?.path === p.target : r.key === p.target || r.id === p.target));
        if (it) throw ApiError(ErrorCode.Forbidden, `${p.target} is ${isPath ? 'allowed or denied by ' : ''}${describe(it)}: IT rules cannot be revoked here, only by changing the profile`);
        throw ApiError(ErrorCode.NotFound, `no user decision ${isPath ? `for ${p.target} of uid ${uid}` : p.target}`);
      }
      for (const d of all) requireOwn(caller, d.uid, 'revoke decisions');
      return rules.remove(new Set(all.map((d) => d.id)), caller.uid, 'revoked');
    },

    async decisions(caller) {
      return rules.views(caller.admin ? undefined : caller.uid);
    },

    async events(caller, p) {
      const list = o.events.recent().filter((e) => e.seq > (p.afterSeq ?? 0) && visibleTo(caller, e));
      return p.limit !== undefined ? list.slice(-p.limit) : list;
    },

    async explain(caller, p): Promise<ExplainResult> {
      if ((p.pid === undefined) === (p.path === undefined)) throw ApiError(ErrorCode.InvalidParams, 'explain needs a PID or a PATH');
      const policy = requirePolicy();
      const notes: string[] = [];
      let id: ProcessIdentity;
      let verdict: Verdict | undefined;
      let admittedUnder: string | undefined;
      if (p.pid !== undefined) {
        if (p.uid !== undefined) throw ApiError(ErrorCode.InvalidParams, 'uid goes with a path; a process has its own');
        const proc = await readProc(p.pid).catch(() => {
          throw ApiError(ErrorCode.NotFound, `no process ${p.pid}`);
        });
        requireOwn(caller, proc.uid, 'explain processes');
        id = { exe: proc.exe, exeDeleted: proc.exeDeleted, uid: proc.uid };
        if (needsHash(policy, proc.exe)) id.sha256 = await hash(`/proc/${p.pid}/exe`).catch(() => undefined);
        verdict = await o.gate.verdictFor(policy, p.pid).catch(() => undefined);
        admittedUnder = await o.gate.ruleOf(p.pid);
      } else {
        const file = p.path as string;
        const uid = p.uid ?? caller.uid;
        requireOwn(caller, uid, 'explain rules');
        const st = await fs.lstat(file).catch(() => undefined);
        if (st?.isSymbolicLink()) {
          notes.push(`${file} is a symbolic link to ${await fs.realpath(file).catch(() => '?')}: processes run as the target, and rules must name it`);
        } else if (!st) {
          notes.push(`${file} does not exist`);
        }
        id = { exe: file, exeDeleted: false, uid };
        if (needsHash(policy, file) && st?.isFile()) {
          if (readableBy(st, caller)) id.sha256 = await hash(file).catch(() => undefined);
          else notes.push(`${file} is not readable by uid ${caller.uid}: rules that pin its hash cannot be checked`);
        }
      }
      const userDeny = p.dst ? rules.findDeny(id.uid, id.exe, { addr: p.dst.addr, ...(p.dst.port !== undefined ? { port: p.dst.port } : {}), proto: p.dst.proto ?? 'tcp' }) : rules.views(id.uid).find((v) => v.kind === 'deny' && v.path === id.exe && !v.destinations);
      if (userDeny) notes.push(`deny-always decision ${userDeny.id} of uid ${id.uid}: its attempts are not asked about`);
      return explain({
        policy,
        id,
        ...(p.pid !== undefined ? { pid: p.pid } : {}),
        ...(p.dst ? { dst: p.dst } : {}),
        ...(verdict ? { verdict } : {}),
        ...(userDeny ? { userDeny } : {}),
        ...(admittedUnder ? { admittedUnder } : {}),
        notes,
      });
    },
  };

  return {
    handlers,
    feeds,
    isAdmin: adminCheck(admin.gid),
    userRules: () => rules.userRules(),
    problems: () => [...problems],
    prompts,
    rules,
    start() {
      let sweeping = false;
      sweepTimer = setInterval(() => {
        if (sweeping) return;
        sweeping = true;
        void prompts.sweep().catch(() => undefined).finally(() => (sweeping = false));
      }, 2_000);
      sweepTimer.unref();
      rules.start();
    },
    async close() {
      offEvents();
      offPrompts();
      clearInterval(sweepTimer);
      clock.clearTimeout(statusTimer);
      await rules.close();
      offAudit();
      await audit.close();
    },
  };
}

