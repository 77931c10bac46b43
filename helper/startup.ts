// Start-up of the privileged helper: wires the pieces together and nothing else.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { peerCred, ptraceTracer } from './native/index.js';
import { classidMajor, ensureNetClsMount, NetClsTree } from './kernel/netcls.js';
import { listeningPorts } from './kernel/sockets.js';
import { Nft } from './kernel/nft.js';
import { HashCache } from './kernel/proc.js';
import { run } from './kernel/run.js';
import { mergePolicy } from './policy/merge.js';
import type { UserRule } from './policy/merge.js';
import type { LoadedProfile } from './profile/loaded.js';
import { socketPathOf } from '../common/node/client.js';
import { ApiServer } from './api/server.js';
import type { Paths } from './config.js';
import { NFLOG_GROUP, profilesDir } from './config.js';
import { EventLog } from './core/event-bus.js';
import { AttemptReader } from './core/attempts.js';
import { openAuditApi } from './api/handlers/evidence.js';
import { Gate } from './core/gate.js';
import { openUserApi } from './api/user-api.js';
import type { UserApi } from './api/user-api.js';
import { openExecSource, Watcher } from './core/watcher.js';
import { ProfileSources } from './core/profile-sources.js';
import { VERSION } from './version.js';

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

/** Yama's ptrace_scope 3 forbids ptrace even to root; then launches are verified by polling. */
async function ptraceAvailable(): Promise<boolean> {
  const scope = (await fs.readFile('/proc/sys/kernel/yama/ptrace_scope', 'utf8').catch(() => '0')).trim();
  return scope !== '3';
}

async function buildGate(paths: Paths, events: EventLog): Promise<{ gate: Gate; ownMount?: string }> {
  const ownMountPoint = path.join(paths.run, 'net_cls');
  const { mount, own } = await ensureNetClsMount(run, ownMountPoint);
  const gate = new Gate({
    nft: new Nft(run),
    cgroups: new NetClsTree(mount, paths.cgroupRoot),
    classidMajor: classidMajor(paths.cgroupRoot),
    nflogGroup: NFLOG_GROUP,
    hashes: new HashCache(),
    events,
    listInterfaces,
    listeningPorts,
    version: VERSION,
    ...((await ptraceAvailable()) ? { tracer: ptraceTracer } : {}),
  });
  return own ? { gate, ownMount: mount } : { gate };
}

/** What the last policy was merged from: `profile test` puts a draft in its place. */
const lastInputs: { profiles: LoadedProfile[]; userRules: UserRule[] } = { profiles: [], userRules: [] };

async function currentPolicy(sources: ProfileSources, user: Pick<UserApi, 'userRules' | 'problems'>, extraProblems: readonly string[] = []) {
  const loaded = await sources.load();
  const userRules = user.userRules();
  const policy = mergePolicy({ ...loaded, userRules, now: new Date() });
  policy.problems.push(...loaded.notes, ...user.problems(), ...extraProblems);
  lastInputs.profiles = loaded.profiles;
  lastInputs.userRules = [...userRules];
  return policy;
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('the helper must run as root (it owns an nftables table and a cgroup subtree)');
}

/** `tunnelgate helper --uninstall-rules`: our table and cgroups go; nothing else is touched. */
export async function uninstallRules(opts: HelperOptions): Promise<void> {
  requireRoot();
  const { gate, ownMount } = await buildGate(opts.paths, new EventLog(() => undefined));
  await gate.uninstall();
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

/** Run the helper in the foreground until SIGTERM/SIGINT. */
export async function runHelper(opts: HelperOptions): Promise<void> {
  requireRoot();
  const { paths } = opts;
  await fs.mkdir(paths.run, { recursive: true, mode: 0o755 });
  await fs.chmod(paths.run, 0o755);
  await fs.mkdir(paths.state, { recursive: true, mode: 0o700 });
  const pidFile = `${paths.run}/helper.pid`;
  await refuseSecondHelper(pidFile);
  await fs.writeFile(pidFile, `${process.pid}\n`);

  const events = new EventLog();
  events.emit({ type: 'helper.started', pid: process.pid, version: VERSION });
  const { gate } = await buildGate(paths, events);
  // Users' decisions, prompts and the audit log: the policy's user rules come from here.
  const user = await openUserApi({ paths, gate, events, applyPolicy: () => reload() });

  // What was refused (or would be, in audit mode), kept as evidence for people to decide with.
  const audit = await openAuditApi({ stateDir: paths.state, current: () => gate.current, inputs: () => lastInputs });

  // Adopt what a previous helper left, then put the policy in force in one transaction.
  const sources = await ProfileSources.open(paths, events);
  const policy = await currentPolicy(sources, user, audit.problems);
  await gate.adopt(policy);
  await gate.setPolicy(policy);
  await sources.commit(policy);

  // One reload at a time: a profile's version is recorded only once its policy is in force.
  let reloading = Promise.resolve();
  const reload = () => {
    reloading = reloading.then(async () => {
      try {
        const next = await currentPolicy(sources, user, audit.problems);
        await gate.setPolicy(next);
        await sources.commit(next);
      } catch (e) {
        console.error(`tunnelgate: reload failed, previous policy stays in force: ${(e as Error).message}`);
      }
    });
    return reloading;
  };
  let debounce: NodeJS.Timeout | undefined;
  const scheduleReload = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void reload(), 100);
  };
  const dir = profilesDir(paths);
  await fs.mkdir(dir, { recursive: true });
  // profiles.d (profiles and .sig files), trusted-keys/, remote.json, and the remote pull.
  const watcher = sources.start(scheduleReload);
  process.on('SIGHUP', scheduleReload);

  // Denied attempts: the refuse chain's NFLOG records, attributed to their processes.
  const attempts = new AttemptReader({
    group: NFLOG_GROUP,
    ifaceName: interfaceNames(),
    onAttempt: (attempt) => {
      audit.record(attempt);
      events.emit({ type: 'attempt.denied', attempt });
    },
    onError: (message) => console.error(`tunnelgate: denied attempts: ${message}`),
  });
  attempts.start();

  // Processes started any way get their rule's cgroup, and lose it when no rule allows them.
  const exec = await openExecSource();
  if (exec.note) console.error(`tunnelgate: ${exec.note}`);
  const processes = new Watcher({ gate, events, hashes: new HashCache(), source: exec.source });
  await processes.start();

  const server = new ApiServer({
    socketPath: socketPathOf(paths.run),
    events,
    peerCred,
    isAdmin: user.isAdmin,
    feeds: user.feeds,
    handlers: {
      status: async () => gate.status(),
      'launch.begin': (caller, p) => gate.launchBegin(caller, p),
      'launch.confirm': (caller, p) => gate.launchConfirm(caller, p.launchId),
      ...user.handlers,
      ...audit.handlers,
    },
  });
  await server.listen();
  user.start();
  const sweeper = setInterval(
    () => void gate.refreshListeners().catch((e: Error) => console.error(`tunnelgate: listeners: ${e.message}`)),
    2_000,
  );

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      events.emit({ type: 'helper.stopping', signal });
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  // Kernel state stays: the gate remains shut without the helper (fail-closed).
  clearInterval(sweeper);
  clearTimeout(debounce);
  watcher.close();
  attempts.stop();
  processes.stop();
  exec.source.close();
  await server.close();
  await user.close();
  await audit.close();
  await fs.rm(pidFile, { force: true });
}
