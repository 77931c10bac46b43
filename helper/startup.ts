// Start-up of the privileged helper: ALL wiring of the helper in one place, and nothing
// else. runHelper builds the gate, the user side (audit trail, decisions, user rules,
// prompts; openUserSide), the evidence store, the profile sources, the watcher, the NFLOG
// reader and the API server with its handlers (helper/api/handlers/*) and feeds, and runs
// until SIGTERM/SIGINT. uninstallRules takes the kernel state away.
import { notifyReady, notifyStopping } from './kernel/sd-notify.js';
import { systemLogRoute } from './kernel/journal.js';
import { closeSync, promises as fs, watch as fsWatch } from 'node:fs';
import path from 'node:path';
import type { StatusReport } from '../common/api.js';
import { socketPathOf } from '../common/node/client.js';
import { peerCred, ptraceTracer, syslog } from './native/index.js';
import type { ExecTracer } from './native/index.js';
import { classidMajor, ensureNetClsMount, NetClsTree } from './kernel/netcls.js';
import type { NetClsChoice } from './kernel/netcls.js';
import { listeningPorts } from './kernel/sockets.js';
import { Nft } from './kernel/nft.js';
import { inspectListeners } from './kernel/sockets.js';
import { listLinks, startLinkMonitor } from './kernel/links.js';
import type { LinkMonitor } from './kernel/links.js';
import { startNftMonitor } from './kernel/nft-monitor.js';
import type { NftMonitor } from './kernel/nft-monitor.js';
import { LockHeld, takeRunLock } from './kernel/lock.js';
import { holderText, NetnsLockHeld, takeNetnsLock } from './kernel/netns-lock.js';
import type { NetnsLock } from './kernel/netns-lock.js';
import type { GatedIndex } from './ruleset/interfaces.js';
import type { GatePersistence } from './core/gate.js';
import { HashCache } from './kernel/proc.js';
import { run } from './kernel/run.js';
import { AttemptReader } from './kernel/nflog-reader.js';
import { attribute, closeAttribution, startSendTrace, unreportedDrops } from './identity/attribution.js';
import { LOG_PREFIX_AUDIT } from './ruleset/render.js';
import { mergePolicy } from './policy/merge.js';
import type { Policy } from '../common/policy.js';
import type { UserRule } from './policy/merge.js';
import { adminCheck, resolveAdminGroup } from './api/authorization.js';
import type { PeerCred } from './api/authorization.js';
import { SubscriberFeeds } from './api/feeds.js';
import { appsHandlers } from './api/handlers/apps.js';
import { eventHandlers } from './api/handlers/events.js';
import { evidenceHandlers } from './api/handlers/evidence.js';
import type { PolicyInputs } from './api/handlers/evidence.js';
import { explainHandlers } from './api/handlers/explain.js';
import { promptHandlers } from './api/handlers/prompts.js';
import { ruleHandlers } from './api/handlers/rules.js';
import { statusHandlers } from './api/handlers/status.js';
import { ApiServer } from './api/server.js';
import type { Feeds, Handlers } from './api/server.js';
import { AuditTrail, lastAuditSeq, stderrSyslog, syslogWithFallback } from './store/audit-trail.js';
import type { Syslog } from './store/audit-trail.js';
import { systemClock } from './core/clock.js';
import type { Clock } from './core/clock.js';
import { DecisionsStore } from './store/decisions.js';
import { reportDecisionWrites } from './store/state-writes.js';
import type { DecisionsPort } from './store/state-writes.js';
import { ResumingFile, removeInterruptedWrites, storageHealth } from './kernel/files.js';
import { EventLog } from './core/event-bus.js';
import { Gate } from './core/gate.js';
import { Launches } from './core/launches.js';
import { procPort, procProcesses } from './core/ports.js';
import type { ProcessPort, ProcPort } from './core/ports.js';
import { ProfileSources } from './core/profile-sources.js';
import { inspectAttempt, ProgramInfo } from './identity/program-info.js';
import { PromptManager } from './core/prompts.js';
import type { Admission } from './core/prompts.js';
import { loadSettings } from './settings.js';
import type { HelperSettings } from './settings.js';
import { UserRules } from './core/user-rules.js';
import type { GatePort } from './core/user-rules.js';
import { holdCovers, openExecSource, Watcher, type HeldAdmission } from './admission/watcher.js';
import { withProcessWatch } from './core/status.js';
import { ExecAdmission, type ExecHoldPort } from './admission/exec-admission.js';
import { ExecHold, FanotifyUnavailable } from './kernel/fanotify.js';
import type { ExecEvents } from './kernel/proc-events.js';
import { isRefusal } from './evidence/refusals.js';
import type { RefusalDeps } from './evidence/refusals.js';
import { EvidenceStore } from './evidence/store.js';
import type { Paths } from './config.js';
import { NFLOG_GROUP, profilesDir } from './config.js';
import { VERSION } from './version.js';
import { logError } from '../common/node/log.js';
import { LAST_GOOD_DIR } from './profile/store.js';

/** What the user side needs of the gate (helper/core/gate.ts). */
export interface UserApiGate extends GatePort {
  ruleOf(pid: number): Promise<string | undefined>;
  recentAdmission(pid: number): string | undefined;
  status(): Promise<StatusReport>;
}

export interface UserSideOptions {
  paths: Paths;
  gate: UserApiGate;
  events: EventLog;
  /** Rebuild the policy with the current user rules and put it in force; resolves when done. */
  applyPolicy: () => Promise<void>;
  /** The system log of audit-trail lines (default: syslog(3), else `<priority>` lines on stderr). */
  syslog?: Syslog;
  clock?: Clock;
  /** Processes of users, for user rules and prompts (default: /proc). */
  procs?: ProcessPort;
  /** /proc reads of explain (default: procPort over this side's hash cache). */
  proc?: ProcPort;
  programs?: ProgramInfo;
}

export type UserHandlers = Pick<Handlers, 'list' | 'prompts' | 'answer' | 'allow' | 'revoke' | 'decisions' | 'events' | 'explain'>;

/** The users' side of the helper: decisions, prompts, their API handlers and feeds. */
export interface UserSide {
  handlers: UserHandlers;
  feeds: Feeds;
  isAdmin: (cred: PeerCred) => boolean;
  /** For mergePolicy. */
  userRules: () => UserRule[];
  /** For the policy's problems (status): settings, a corrupt decisions file, … */
  problems: () => string[];
  prompts: PromptManager;
  rules: UserRules;
  /** helper.json as read at start-up (defaults where absent or invalid). */
  settings: HelperSettings;
  /** Start the timers that end user rules and forget exited processes (once the policy can be applied). */
  start(): void;
  close(): Promise<void>;
}

/** syslog(3) of the addon, else `<priority>` lines on stderr. */
function defaultSyslog(): Syslog {
  return syslogWithFallback({ log: syslog }, stderrSyslog(), (why) => console.error(`tunnelgate: syslog(3) failed (${why}); audit lines go to stderr`));
}

/** The audit trail sees every event, also those emitted before it was opened. Returns its closer. */
function openAuditTrail(paths: Paths, settings: HelperSettings, events: EventLog, sys: Syslog | undefined): () => Promise<void> {
  const log = sys ?? defaultSyslog();
  const trail = new AuditTrail({ dir: paths.state, ...settings.auditLog, syslog: log });
  for (const e of events.recent()) void trail.record(e);
  const off = events.subscribe((e) => void trail.record(e));
  return async () => {
    off();
    await trail.close();
  };
}

/** The decisions store; a corrupt file is moved aside, reported and emitted as decisions.corrupt; save failures show in status. */
async function openDecisions(paths: Paths, events: EventLog, problems: string[]): Promise<DecisionsPort> {
  const opened = await DecisionsStore.open(paths.state);
  problems.push(...opened.problems);
  for (const p of opened.problems) console.error(`tunnelgate: ${p}`);
  if (opened.corrupt) {
    events.emit({ type: 'decisions.corrupt', file: opened.corrupt.file, ...(opened.corrupt.movedTo ? { movedTo: opened.corrupt.movedTo } : {}), reason: opened.corrupt.reason });
  }
  return reportDecisionWrites(opened.store);
}

interface PromptWiring {
  o: UserSideOptions;
  clock: Clock;
  procs: ProcessPort;
  settings: HelperSettings;
  store: DecisionsPort;
  rules: UserRules;
  hashes: HashCache;
  feeds: SubscriberFeeds;
}

/** The prompt manager over the user rules, the decisions store and the gate. */
function buildPrompts(w: PromptWiring): PromptManager {
  const { o, clock, store, rules } = w;
  const programs = o.programs ?? new ProgramInfo();
  const admitIfAllowed = async (pid: number): Promise<Admission | undefined> => {
    const policy = o.gate.current;
    if (!policy) return undefined;
    const v = await o.gate.verdictFor(policy, pid);
    if (!v.allow) return undefined;
    if ((await o.gate.ruleOf(pid)) === v.rule.key) return { rule: v.rule, now: false };
    await o.gate.admit(pid, v.rule.key);
    return { rule: v.rule, now: true };
  };
  return new PromptManager({
    clock,
    events: o.events,
    policy: () => o.gate.current,
    inspect: (a) => inspectAttempt(a, programs, w.hashes),
    admitIfAllowed,
    recentAdmission: (pid) => {
      const key = o.gate.recentAdmission(pid);
      return key !== undefined ? o.gate.current?.rules.find((r) => r.key === key) : undefined;
    },
    decisions: {
      findDeny: (uid, exe, dst) => rules.findDeny(uid, exe, dst),
      seen: (exe) => store.current.seen[exe],
      recordSeen: (exe, sha256) => store.update((d) => void (d.seen[exe] = { sha256, since: new Date(clock.now()).toISOString() })),
      allow: (req) => rules.allow(req),
      denyAlways: (req) => rules.denyAlways(req),
    },
    procs: w.procs,
    hasViewer: (uid) => w.feeds.hasViewer(uid),
    timeoutMs: w.settings.promptTimeoutSeconds * 1000,
    pendingMaxMs: w.settings.promptPendingMaxSeconds * 1000,
  });
}

/**
 * Open the users' side: settings (helper.json), the admin group, the audit trail, the
 * decisions store and user rules (ended ones swept), the prompt manager, the feeds and the
 * handlers. Problems found on the way are reported by problems(), not thrown.
 */
export async function openUserSide(o: UserSideOptions): Promise<UserSide> {
  const clock = o.clock ?? systemClock;
  const procs = o.procs ?? procProcesses;
  const problems: string[] = [];
  const { settings, problems: settingsProblems } = await loadSettings(o.paths.etc);
  problems.push(...settingsProblems);
  const admin = resolveAdminGroup(settings.adminGroup);
  if (admin.problem) problems.push(admin.problem);
  const closeTrail = openAuditTrail(o.paths, settings, o.events, o.syslog);

  const store = await openDecisions(o.paths, o.events, problems);
  const hashes = new HashCache();
  const rules = new UserRules({ store, gate: o.gate, events: o.events, applyPolicy: o.applyPolicy, procs, hash: (f) => hashes.sha256(f), clock });
  // Allow-once rules of processes that ended while no helper ran, and durations that passed.
  // (Saved only: the first policy is built from what is left.)
  await rules.sweep({ apply: false }).catch((e: Error) => problems.push(`ending user rules: ${e.message}`));

  const feeds = new SubscriberFeeds({ clock, events: o.events, status: () => o.gate.status(), statusChanges: (fn) => storageHealth.onChange(fn) });
  const prompts = buildPrompts({ o, clock, procs, settings, store, rules, hashes, feeds });
  // Denied attempts arrive as events (startup's NFLOG reader emits attempt.denied).
  const offCore = o.events.subscribe((e) => {
    if (e.type === 'attempt.denied') prompts.attempt(e.attempt);
    if (e.type === 'policy.applied') prompts.policyChanged();
  });
  feeds.attach(prompts);

  const current = () => o.gate.current;
  const handlers: UserHandlers = {
    ...ruleHandlers({ current, rules, prompts, clock }),
    ...promptHandlers({ prompts }),
    ...eventHandlers({ recent: () => o.events.recent() }),
    ...explainHandlers({ current, gate: o.gate, procs: o.proc ?? procPort(hashes), rules }),
  };
  let sweepTimer: NodeJS.Timeout | undefined;
  return {
    handlers,
    feeds,
    isAdmin: adminCheck(admin.gid),
    userRules: () => rules.userRules(),
    problems: () => [...problems],
    prompts,
    rules,
    settings,
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
      offCore();
      feeds.close();
      clearInterval(sweepTimer);
      await rules.close();
      await closeTrail();
    },
  };
}

/** Where the helper's directories are: flags, environment, defaults (helper/config.ts). */
export interface HelperOptions {
  paths: Paths;
}

async function links(): Promise<Array<{ ifindex: number; ifname: string }>> {
  const r = await run('ip', ['-j', 'link', 'show']);
  return JSON.parse(r.stdout) as Array<{ ifindex: number; ifname: string }>;
}

async function listInterfaces(): Promise<string[]> {
  return (await links()).map((l) => l.ifname);
}

/** Interface names by index, looked up again when an index is new (interfaces come and go). */
function interfaceNames(): (index: number) => Promise<string> {
  let names = new Map<number, string>();
  return async (index) => {
    if (!names.has(index)) names = new Map((await links()).map((l) => [l.ifindex, l.ifname]));
    return names.get(index) ?? `if${index}`;
  };
}

/** Yama's ptrace_scope now (0-3), or undefined when the kernel has no Yama (for status). */
async function yamaScope(): Promise<number | undefined> {
  const text = await fs.readFile('/proc/sys/kernel/yama/ptrace_scope', 'utf8').catch(() => undefined);
  const n = text === undefined ? NaN : Number(text.trim());
  return Number.isInteger(n) ? n : undefined;
}

/** Yama's ptrace_scope 3 forbids ptrace even to root; then launches are verified by polling. */
async function ptraceAvailable(): Promise<boolean> {
  return (await yamaScope()) !== 3;
}

async function buildGate(paths: Paths, events: EventLog, kept: KeptState = {}): Promise<{ gate: Gate; tracer?: ExecTracer; ownMount?: string; netCls: NetClsChoice }> {
  const ownMountPoint = path.join(paths.run, 'net_cls');
  // The system's net_cls mount where it can be written, else our own (read-only or absent).
  const netCls = await ensureNetClsMount(run, ownMountPoint);
  const { mount, own } = netCls;
  const tracer = (await ptraceAvailable()) ? ptraceTracer : undefined;
  const gate = new Gate({
    nft: new Nft(run),
    cgroups: new NetClsTree(mount, paths.cgroupRoot),
    classidMajor: classidMajor(paths.cgroupRoot),
    nflogGroup: NFLOG_GROUP,
    hashes: new HashCache(),
    events,
    listInterfaces,
    listeningPorts,
    inspectListeners: (pids) => inspectListeners(pids),
    listLinks: () => listLinks(run),
    ...kept,
    version: VERSION,
    ...(tracer ? { tracer } : {}),
  });
  return { gate, netCls, ...(tracer ? { tracer } : {}), ...(own ? { ownMount: mount } : {}) };
}

/**
 * The policy of the profiles and user rules now. What it was merged from is written to
 * `inputs` (where `profile test` puts a draft in place of a profile).
 */
async function currentPolicy(sources: ProfileSources, user: Pick<UserSide, 'userRules' | 'problems'>, inputs: PolicyInputs, extraProblems: readonly string[]) {
  const loaded = await sources.load();
  const userRules = user.userRules();
  const policy = mergePolicy({ ...loaded, userRules, now: new Date() });
  policy.problems.push(...loaded.notes, ...user.problems(), ...extraProblems);
  inputs.profiles = loaded.profiles;
  inputs.userRules = [...userRules];
  return policy;
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('the helper must run as root (it owns an nftables table and a cgroup subtree)');
}

/** This network namespace's helper lock (helper/kernel/netns-lock.ts), with the kernel's SO_PEERCRED. */
function netnsLock(): Promise<NetnsLock> {
  return takeNetnsLock({ peerCred });
}

/**
 * `tunnelgate helper --uninstall-rules`: our table and cgroups go; nothing else is touched.
 * Takes the run dir's lock and then this network namespace's helper lock (issue 9.11), and
 * holds both while it works: while a helper runs on this run dir, or with any run dir in this
 * network namespace (the table is the namespace's), nothing is changed.
 * @throws Error unless root; Error naming the running helper's pid when one holds either lock
 */
export async function uninstallRules(opts: HelperOptions): Promise<void> {
  requireRoot();
  await fs.mkdir(opts.paths.run, { recursive: true, mode: 0o755 });
  const refuse = (who: string) => new Error(`refusing to uninstall the rules: a tunnelgate helper runs ${who} and would put them back; stop it first (systemctl stop tunnelgate). Nothing was changed.`);
  const lock = await takeRunLock(path.join(opts.paths.run, 'helper.lock')).catch((e: unknown) => {
    if (!(e instanceof LockHeld)) throw e;
    throw refuse(`on ${opts.paths.run} (pid ${e.pid ?? 'unknown'} holds ${e.file})`);
  });
  try {
    const ns = await netnsLock().catch((e: unknown) => {
      if (!(e instanceof NetnsLockHeld)) throw e;
      throw refuse(`in this network namespace (${holderText(e.holder)})`);
    });
    try {
      await uninstallUnlocked(opts);
    } finally {
      await ns.close();
    }
  } finally {
    closeSync(lock);
  }
}

async function uninstallUnlocked(opts: HelperOptions): Promise<void> {
  const { gate, ownMount } = await buildGate(opts.paths, new EventLog(() => undefined));
  await gate.uninstall();
  // ---- faults: nothing left for an early boot unit or the next start to put back (issue 9.1, 11) ----
  for (const f of [RULESET_FILE, GATED_FILE]) await fs.rm(path.join(opts.paths.state, f), { force: true });
  // Our own mount of the net_cls hierarchy goes too; a system-wide one stays.
  if (ownMount) await run('umount', [ownMount]).catch(() => undefined);
}

async function refuseSecondHelper(pidFile: string): Promise<void> {
  const old = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!old || old === process.pid) return;
  const cmd = await fs.readFile(`/proc/${old}/cmdline`, 'utf8').catch(() => '');
  if (cmd.includes('tunnelgate') && cmd.includes('helper')) {
    throw new Error(`another helper is running (pid ${old}, ${pidFile})`);
  }
}

/** RUN (0755) and STATE (0700) exist; a second helper is refused; our pid is written. Returns the pid file. */
async function prepareDirs(paths: Paths): Promise<string> {
  await fs.mkdir(paths.run, { recursive: true, mode: 0o755 });
  await fs.chmod(paths.run, 0o755);
  await fs.mkdir(paths.state, { recursive: true, mode: 0o700 });
  const pidFile = `${paths.run}/helper.pid`;
  // One helper per run dir (issue 9.11): the kernel releases this lock when we die.
  await takeRunLock(path.join(paths.run, 'helper.lock'));
  await refuseSecondHelper(pidFile);
  // A helper killed in the middle of an atomic save (decisions, attempts, gated interfaces,
  // versions, last good copies) leaves its temp file: the saved file is the old one.
  for (const dir of [paths.state, path.join(paths.state, LAST_GOOD_DIR)]) await removeInterruptedWrites(dir);
  await fs.writeFile(pidFile, `${process.pid}\n`);
  return pidFile;
}

/** One reload at a time: a profile's version is recorded only once its policy is in force. */
function reloader(build: () => ReturnType<typeof currentPolicy>, gate: Gate, sources: ProfileSources) {
  let reloading = Promise.resolve();
  let debounce: NodeJS.Timeout | undefined;
  const reload = () => {
    reloading = reloading.then(async () => {
      try {
        const next = await build();
        await gate.setPolicy(next);
        await sources.commit(next);
      } catch (e) {
        console.error(`tunnelgate: reload failed, previous policy stays in force: ${(e as Error).message}`);
      }
    });
    return reloading;
  };
  const schedule = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void reload(), 100);
  };
  return { reload, schedule, cancel: () => clearTimeout(debounce) };
}

/** Resolves with the signal's name at the first SIGTERM or SIGINT, after emitting helper.stopping. */
function stopSignal(events: EventLog): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      events.emit({ type: 'helper.stopping', signal });
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** Denied attempts: the refuse chain's NFLOG records, attributed, kept as evidence and emitted. */
function readAttempts(evidence: EvidenceStore, events: EventLog, refusals: RefusalDeps): AttemptReader {
  const attempts = new AttemptReader({
    group: NFLOG_GROUP,
    ifaceName: interfaceNames(),
    attribute,
    unreported: unreportedDrops,
    release: closeAttribution,
    auditPrefix: LOG_PREFIX_AUDIT,
    onAttempt: (attempt) => {
      // A drop of an allowed program before its admission is no refusal: no evidence row.
      void isRefusal(attempt, refusals).then((refused) => refused && evidence.add(attempt));
      events.emit({ type: 'attempt.denied', attempt });
    },
    onError: (message) => console.error(`tunnelgate: denied attempts: ${message}`),
  });
  attempts.start();
  return attempts;
}

/** Run the helper in the foreground until SIGTERM/SIGINT. Throws unless root, or if another helper runs. */
export async function runHelper(opts: HelperOptions): Promise<void> {
  requireRoot();
  const { paths } = opts;
  // One helper per network namespace (the table is the namespace's), before anything is
  // touched, not even the run dir: a second helper changes nothing and exits (issue 9.11).
  const nsLock = await netnsLock();
  if (nsLock.problem) console.error(`tunnelgate: ${nsLock.problem}`);
  const pidFile = await prepareDirs(paths);
  // Each event reaches the journal once: the native protocol where journald is, and the
  // JSON line on stderr only when stderr is not the journal (helper/kernel/journal.ts).
  const logs = systemLogRoute({ fallback: defaultSyslog() });
  // seq goes on from the audit trail's last line: unique across helper starts (README).
  const after = await lastAuditSeq(paths.state);
  const events = logs.eventsToStderr ? new EventLog(undefined, undefined, after) : new EventLog(() => undefined, undefined, after);
  events.emit({ type: 'helper.started', pid: process.pid, version: VERSION });
  // ---- faults (issue 9.0/9.2/9.12/9.13, issue 11): kernel state kept, watched, restored ----
  const nft = new Nft(run);
  await adoptSavedRuleset(paths.state, nft);
  const { gate, tracer, netCls } = await buildGate(paths, events, { gatedIndexes: await loadGatedIndexes(paths.state), persist: gatePersistence(paths.state), storageProblems: () => storageHealth.problems() });
  console.error(`tunnelgate: net_cls: ${netCls.reason} (${netCls.mount})`);
  const kernelWatch = await watchKernel(gate);
  // ---- end faults ----
  // Users' decisions, prompts and the audit trail: the policy's user rules come from here.
  const user = await openUserSide({ paths, gate, events, applyPolicy: () => reloads.reload(), syslog: logs.syslog });
  // What was refused (or would be, in audit mode), kept as evidence for people to decide with.
  const { log: evidence, problem: evidenceProblem } = await EvidenceStore.open(paths.state);
  const evidenceProblems = evidenceProblem ? [evidenceProblem] : [];
  if (nsLock.problem) evidenceProblems.push(nsLock.problem);
  // Who sent each dropped packet, recorded by the kernel (eBPF); without it, from sockets (said in status).
  const traceProblem = startSendTrace();
  if (traceProblem) evidenceProblems.push(traceProblem);
  const inputs: PolicyInputs = { profiles: [], userRules: [] };

  // Adopt what a previous helper left, then put the policy in force in one transaction.
  const sources = await ProfileSources.open(paths, events);
  const build = () => currentPolicy(sources, user, inputs, evidenceProblems);
  const policy = await build();
  await gate.adopt(policy);
  await gate.setPolicy(policy);
  await sources.commit(policy);
  kernelWatch.watchCgroups(gate.cgroupDir);
  const reloads = reloader(build, gate, sources);
  await fs.mkdir(profilesDir(paths), { recursive: true });
  // profiles.d (profiles and .sig files), trusted-keys/, remote.json, and the remote pull.
  const watcher = sources.start(reloads.schedule);
  process.on('SIGHUP', reloads.schedule);
  process.on('SIGHUP', () => void gate.verify('SIGHUP'));
  const attempts = readAttempts(evidence, events, { policy: () => gate.current, verdictFor: (p, pid) => gate.verdictFor(p, pid) });

  // Processes started any way get their rule's cgroup, and lose it when no rule allows them.
  const exec = await openExecSource();
  if (exec.note) console.error(`tunnelgate: ${exec.note}`);
  const hold: { covers?: (p: Policy) => boolean; heldAt?: (pid: number) => HeldAdmission | undefined } = {};
  const processes = new Watcher({ gate, events, hashes: new HashCache(), source: exec.source, holdCovers: (p) => hold.covers?.(p) ?? false, heldAt: (pid) => hold.heldAt?.(pid) });
  // The watcher follows every admitted process in the kernel filter (issue 10.6) from
  // BEFORE its move, whoever admits it (hold, watcher, run, a prompt answer): a child it
  // forks from then on is reported.
  gate.onAdmit((pid) => processes.track(pid));
  await processes.start();
  const held = await openExecAdmission({ gate, events, source: exec.source, deadlineMs: user.settings.execHoldDeadlineMs, follow: (pid) => processes.track(pid), letGo: (tid) => processes.execLetGo(tid), adopt: (pid, rule, inode, caller) => void processes.adopt(pid, rule, inode, caller), look: (pid) => processes.examine(pid) });
  if (held.covers) hold.covers = held.covers;
  if (held.heldAt) hold.heldAt = held.heldAt;
  processes.hearExecs();

  const launches = new Launches({ gate, procs: procPort(new HashCache()), events, ...(tracer ? { tracer } : {}) });
  const server = new ApiServer({
    socketPath: socketPathOf(paths.run),
    events,
    peerCred,
    isAdmin: user.isAdmin,
    feeds: user.feeds,
    handlers: {
      ...statusHandlers({ status: async () => withProcessWatch({ ...(await gate.status()), netCls }, { execHoldOff: held.off, yamaPtraceScope: await yamaScope() }), launches }),
      ...user.handlers,
      ...evidenceHandlers({ evidence, current: () => gate.current, inputs }),
      ...appsHandlers(),
    },
  });
  await server.listen();
  user.start();
  // systemd (Type=notify): ready only now that the first transaction is in force and the API
  // answers, so units ordered after tunnelgate.service start with the gate shut (issues 9.0, 11).
  notifyReady(`gate ${(await gate.status()).state}`);
  // Listeners of admitted processes (no kernel notification for listen()): looked for only
  // while some process is followed, i.e. may be admitted (issue 10.6: nothing at idle); one
  // more look after the last one went empties the set.
  let listening = true;
  const sweeper = setInterval(() => {
    const any = exec.kind !== 'proc-connector' || processes.following > 0;
    if (!any && !listening) return;
    listening = any;
    void gate.refreshListeners().catch((e: Error) => console.error(`tunnelgate: listeners: ${e.message}`));
  }, 2_000);

  await stopSignal(events);
  notifyStopping();
  // Kernel state stays: the gate remains shut without the helper (fail-closed).
  clearInterval(sweeper);
  await kernelWatch.close();
  reloads.cancel();
  watcher.close();
  attempts.stop();
  processes.stop();
  held.stop();
  exec.source.close();
  await server.close();
  await user.close();
  await evidence.close().catch(() => undefined);
  storageHealth.close();
  await fs.rm(pidFile, { force: true });
  await nsLock.close();
}

// ---- faults (issue 9.0/9.2/9.12/9.13, issue 11): what is in force is saved, adopted at start, and watched ----

/** What a restarted helper keeps: the gated indexes and where to save what is in force. */
interface KeptState {
  gatedIndexes?: readonly GatedIndex[];
  persist?: GatePersistence;
  storageProblems?: () => readonly string[];
}

const GATED_FILE = 'gated-interfaces.json';
/** The last ruleset in force, for an early boot unit (`nft -f STATE/ruleset.nft` before the network; issue 11). */
export const RULESET_FILE = 'ruleset.nft';

/** Saved whole (writeFileAtomic); a failed save shows in status and is retried with the latest until it works (issue 9.10). */
function gatePersistence(state: string): GatePersistence {
  const gated = new ResumingFile(path.join(state, GATED_FILE), 'gated interfaces');
  const ruleset = new ResumingFile(path.join(state, RULESET_FILE), 'saved ruleset');
  return {
    gatedIndexes: (g) => gated.write(`${JSON.stringify(g, null, 2)}\n`),
    ruleset: (text) => ruleset.write(text),
  };
}

/** The gated indexes a previous helper saved; none when the file is absent or not what we write. */
async function loadGatedIndexes(state: string): Promise<GatedIndex[]> {
  const text = await fs.readFile(path.join(state, GATED_FILE), 'utf8').catch(() => '[]');
  try {
    const doc = JSON.parse(text) as unknown;
    if (!Array.isArray(doc)) return [];
    return doc.filter((g): g is GatedIndex => typeof g === 'object' && g !== null && Number.isInteger((g as GatedIndex).index) && (g as GatedIndex).index > 0 && typeof (g as GatedIndex).pattern === 'string' && typeof (g as GatedIndex).name === 'string');
  } catch {
    console.error(`tunnelgate: ${GATED_FILE} is not JSON; starting with no interfaces gated by index`);
    return [];
  }
}

/**
 * At start, before anything else changes: where there is no table (a boot without the early
 * unit, a flush while no helper ran) but a saved ruleset, put it in force, so the last gated
 * interfaces are shut while the helper starts; the first apply then replaces it atomically.
 */
async function adoptSavedRuleset(state: string, nft: Nft): Promise<void> {
  if (await nft.tableExists()) return;
  const text = await fs.readFile(path.join(state, RULESET_FILE), 'utf8').catch(() => undefined);
  if (text === undefined) return;
  await nft.apply(text).catch((e: Error) => console.error(`tunnelgate: the saved ruleset could not be restored: ${e.message}`));
}

interface KernelWatch {
  /** Start watching the rule cgroups (once the first apply made them). */
  watchCgroups(dir: string): void;
  close(): Promise<void>;
}

/**
 * Watch the kernel behind the gate's back, started and subscribed BEFORE the first apply so
 * no change is missed: `nft monitor` (our table touched or deleted: verify and restore at
 * once), `ip monitor link` (renames, new links: gate by index), inotify on the rule cgroups
 * (rmdir by anyone: recreate) and a low-rate timer for what no monitor announces.
 */
/** How often the gate looks at the kernel with no monitor having announced a change (ms). */
const SAFETY_NET_MS = 300_000;

async function watchKernel(gate: Gate): Promise<KernelWatch> {
  let nftMon: NftMonitor | undefined;
  let linkMon: LinkMonitor | undefined;
  let closed = false;
  const startNft = async (): Promise<void> => {
    const m = startNftMonitor();
    m.onChange((c) => {
      if (c.touchesTable) void gate.verify(`nft monitor: ${c.comm ?? 'a process'}${c.pid ? ` (pid ${c.pid})` : ''}`);
    });
    m.onLost((why) => {
      if (closed) return;
      console.error(`tunnelgate: nft monitor lost (${why}); restarting it`);
      void startNft().then(() => gate.verify('nft monitor restarted'), () => undefined);
    });
    nftMon = m;
    await m.ready;
  };
  const startLinks = async (): Promise<void> => {
    const m = startLinkMonitor();
    m.onEvent(() => void gate.linksChanged().catch((e: Error) => console.error(`tunnelgate: interfaces: ${e.message}`)));
    m.onLost((why) => {
      if (closed) return;
      console.error(`tunnelgate: link monitor lost (${why}); restarting it`);
      void startLinks().then(() => gate.linksChanged(), () => undefined);
    });
    linkMon = m;
    await m.ready;
  };
  await Promise.all([startNft(), startLinks()]);
  const watchers: Array<{ close(): void }> = [];
  // A safety net only: nft monitor and the cgroup watches announce every change at once (a
  // lost monitor is restarted and followed by a look), and each look spawns nft: 20-70 ms of
  // the event loop on a loaded machine, most of the idle helper's CPU at one look a minute
  // (bench helper-cost; issue 10.6). Every 5 minutes.
  const timer = setInterval(() => void gate.verify('timer'), SAFETY_NET_MS);
  timer.unref();
  let fast: NodeJS.Timeout | undefined;
  return {
    watchCgroups(dir) {
      // A removed directory's watch is dead: after each look, watch the (recreated) one again.
      // `only`: in the parent (the hierarchy's root, shared with every other user of
      // net_cls), only our subtree's entry matters.
      const arm = (d: string, only?: string): void => {
        try {
          const w = fsWatch(d, (type, name) => {
            // Only entries made or removed ('rename'): each process moved in or out
            // changes a rule cgroup's attributes ('change'), and a look spawns nft.
            if (type !== 'rename' || (only !== undefined && name !== null && name !== only)) return;
            w.close();
            void gate.verify('cgroup watch').finally(() => !closed && arm(d, only));
          });
          w.on('error', () => undefined);
          watchers.push(w);
        } catch (e) {
          console.error(`tunnelgate: cannot watch ${d} (${(e as Error).message}); rule cgroups are checked every 5 s`);
          fast ??= setInterval(() => void gate.verify('timer'), 5_000);
          fast.unref();
        }
      };
      arm(dir);
      arm(path.dirname(dir), path.basename(dir));
    },
    async close() {
      closed = true;
      clearInterval(timer);
      clearInterval(fast);
      for (const w of watchers) w.close();
      await Promise.all([nftMon?.close(), linkMon?.close()]);
    },
  };
}

// ---- Exec-time admission (issue 10, part 1; owned by the `admit` branch) ----
/**
 * Hold each exec of an allowed binary until its process is admitted (fanotify permission
 * events). Where the kernel refuses them the watcher alone admits, after the exec, as
 * before: said on stderr ("exec hold off: reason"). TUNNELGATE_EXEC_HOLD=off turns it off
 * (measurements against the watcher alone). Returns stop().
 */
async function openExecAdmission(o: {
  gate: Gate;
  events: EventLog;
  source: ExecEvents;
  deadlineMs: number;
  follow: (pid: number) => void;
  letGo: (tid: number) => void;
  adopt: (pid: number, rule: string, inode: { dev: bigint; ino: bigint }, caller: { dev: bigint; ino: bigint } | undefined) => void;
  look: (pid: number) => void;
}): Promise<{ stop: () => void; note?: string; off?: string; covers?: (p: Policy) => boolean; heldAt?: (pid: number) => HeldAdmission | undefined }> {
  let hold: ExecHold;
  try {
    if (process.env.TUNNELGATE_EXEC_HOLD === 'off') throw new Error('TUNNELGATE_EXEC_HOLD=off');
    hold = ExecHold.open({ deadlineMs: o.deadlineMs });
  } catch (e) {
    const off = e instanceof FanotifyUnavailable ? e.message : e instanceof Error ? e.message : String(e);
    const note = `exec hold off: ${off}; programs are admitted just after their exec`;
    console.error(`tunnelgate: ${note}`);
    return { stop: () => undefined, note, off };
  }
  // Each held process is followed by the watcher before it is judged, so its exec event
  // reaches the watcher even when unrelated execs are filtered out in the kernel; one let go
  // at the deadline (maybe before that) is followed and looked at then.
  const followed: ExecHoldPort = {
    onExec: (cb) => hold.onExec((e) => (o.follow(e.pid), cb(e))),
    onAdmitted: (cb) => hold.onAdmitted(cb),
    onHeldClose: (cb) => hold.onHeldClose(cb),
    setTickets: (set) => hold.setTickets(set),
    onOverflow: (cb) => hold.onOverflow(cb),
    onExpired: (cb) => hold.onExpired((e) => (o.letGo(e.tid), cb(e))),
    allow: (id) => hold.allow(id),
    mark: (file, opts) => hold.mark(file, opts),
    unmark: (file) => hold.unmark(file),
    marked: () => hold.marked(),
    refresh: () => hold.refresh(),
    close: () => hold.close(),
  };
  const admission = new ExecAdmission({ hold: followed, gate: o.gate, events: o.events, hashes: new HashCache(), log: (l) => logError(l), adopted: o.adopt, look: o.look });
  const off = o.source.onExec((pid) => admission.execSeen(pid));
  await admission.start();
  return {
    covers: (p) => holdCovers(p, hold.marked()),
    heldAt: (pid) => admission.heldAt(pid),
    stop: () => {
      off();
      admission.stop();
      hold.close();
    },
  };
}
