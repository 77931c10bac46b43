// Start-up of the privileged helper: wires the pieces together and nothing else.
import { watch, promises as fs } from 'node:fs';
import { peerCred } from '../native/index.js';
import { CgroupTree, detectCgroup2, findCgroup2Mount } from '../kernel/cgroup.js';
import { Nft } from '../kernel/nft.js';
import { HashCache } from '../kernel/proc.js';
import { run } from '../kernel/run.js';
import { mergePolicy } from '../policy/merge.js';
import { socketPathOf } from '../../common/node/client.js';
import { ApiServer } from './api-server.js';
import type { Paths } from './config.js';
import { profilesDir } from './config.js';
import { EventLog } from './events.js';
import { Gate } from './gate.js';
import { loadProfiles } from './profiles.js';
import { VERSION } from './version.js';

export interface HelperOptions {
  paths: Paths;
}

async function listInterfaces(): Promise<string[]> {
  const r = await run('ip', ['-j', 'link', 'show']);
  return (JSON.parse(r.stdout) as Array<{ ifname: string }>).map((l) => l.ifname);
}

async function buildGate(paths: Paths, events: EventLog): Promise<Gate> {
  const layout = await detectCgroup2(paths.cgroupRoot);
  const mount = findCgroup2Mount(await fs.readFile('/proc/self/mountinfo', 'utf8')) as string;
  return new Gate({
    nft: new Nft(run),
    cgroups: new CgroupTree(layout),
    cgroupMount: mount,
    hashes: new HashCache(),
    events,
    listInterfaces,
    version: VERSION,
  });
}

async function currentPolicy(paths: Paths) {
  const loaded = await loadProfiles(profilesDir(paths));
  return mergePolicy({ ...loaded, userRules: [], now: new Date() });
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('the helper must run as root (it owns an nftables table and a cgroup subtree)');
}

/** `tunnelgate helper --uninstall-rules`: our table and cgroups go; nothing else is touched. */
export async function uninstallRules(opts: HelperOptions): Promise<void> {
  requireRoot();
  const gate = await buildGate(opts.paths, new EventLog(() => undefined));
  await gate.uninstall();
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
  const gate = await buildGate(paths, events);

  // Adopt what a previous helper left, then put the policy in force in one transaction.
  const policy = await currentPolicy(paths);
  await gate.adopt(policy);
  await gate.setPolicy(policy);

  const reload = async () => {
    try {
      await gate.setPolicy(await currentPolicy(paths));
    } catch (e) {
      console.error(`tunnelgate: reload failed, previous policy stays in force: ${(e as Error).message}`);
    }
  };
  let debounce: NodeJS.Timeout | undefined;
  const scheduleReload = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void reload(), 100);
  };
  const dir = profilesDir(paths);
  await fs.mkdir(dir, { recursive: true });
  const watcher = watch(dir, scheduleReload);
  process.on('SIGHUP', scheduleReload);

  const server = new ApiServer({
    socketPath: socketPathOf(paths.run),
    events,
    peerCred,
    handlers: {
      status: async () => gate.status(),
      list: async () => ({ rules: gate.current?.rules ?? [], userPrompts: gate.current?.userPrompts ?? 'deny' }),
      'launch.begin': (caller, p) => gate.launchBegin(caller, p),
      'launch.confirm': (caller, p) => gate.launchConfirm(caller, p.launchId),
    },
  });
  await server.listen();
  const sweeper = setInterval(() => void gate.sweep().catch((e: Error) => console.error(`tunnelgate: sweep: ${e.message}`)), 2_000);

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
  await server.close();
  await fs.rm(pidFile, { force: true });
}
