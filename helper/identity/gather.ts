// A process's identity, from the kernel (/proc) and the files it names, for decide().
//
// Only what the policy can use is gathered: the rules the exe path may match
// (candidateRules) decide whether the hash, the script, the environment and the app
// identities are read at all. Every check reads through /proc/PID/… links that the kernel
// resolves (exe, cwd, root), and compares inodes with the helper's own view of the same
// path, so a process in a mount namespace of its own cannot make a path name another file.
import { promises as fs } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import type { Policy } from '../../common/policy.js';
import { md5Of, verifiedPackages } from './package.js';
import { candidateRules, needsHash } from '../policy/decide.js';
import type { ProcessIdentity } from '../policy/decide.js';
import type { HashCache } from '../kernel/proc.js';
import { parseStat } from '../kernel/proc.js';
import { interpreterFamily, resolveScript, scriptArgument } from './argv.js';
import { interpreterUnsafe } from './interpreters.js';
import {
  appImageMountOwner, flatpakHostPath, isSystemAppPath, isSystemRuntimePath, mountOf, parseFlatpakInfo, parseMountinfo,
  snapFromCgroup, snapFromExe,
} from './apps.js';
import { refusedInEnviron } from './exec-env.js';
import { ancestry, pathWritableByNonRoot, scriptUnsafe } from './writable.js';
import type { Cred, StatLike } from './writable.js';

const DELETED = ' (deleted)';

export interface TaskStatus {
  tgid: number;
  uid: number;
  euid: number;
  gids: number[];
  tracerPid: number;
}

/** Fields of /proc/PID/status the identity needs. */
export function parseStatus(text: string): TaskStatus {
  const field = (name: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}:`));
    return (line ?? '').slice(name.length + 1).trim().split(/\s+/).filter(Boolean).map(Number);
  };
  const [uid, euid] = field('Uid');
  const [gid] = field('Gid');
  const groups = field('Groups');
  const [tgid] = field('Tgid');
  const [tracerPid] = field('TracerPid');
  if (uid === undefined || euid === undefined || gid === undefined || tgid === undefined || [uid, euid, gid, tgid].some(Number.isNaN)) {
    throw new Error('unreadable /proc/PID/status');
  }
  return { tgid, uid, euid, gids: [...new Set([gid, ...groups])], tracerPid: tracerPid ?? 0 };
}

export interface GatherDeps {
  hashes: HashCache;
  /** The helper's own pid: its ptrace hold of a launched program is not "being traced". */
  selfPid: number;
  /** Processes running this exact file now (AppImage runtimes); default: a scan of /proc. */
  pidsRunning?: (exe: string) => Promise<number[]>;
}

export interface GatheredProcess {
  identity: ProcessIdentity;
  /** pid + start time name a process uniquely. */
  startTime: string;
  ppid: number;
  tgid: number;
}

const sameFile = (a: BigIntStats, b: BigIntStats) => a.dev === b.dev && a.ino === b.ino;
const statLike = (s: BigIntStats): StatLike => ({ mode: Number(s.mode), uid: Number(s.uid), gid: Number(s.gid) });

async function statOrUndefined(p: string): Promise<BigIntStats | undefined> {
  return fs.stat(p, { bigint: true }).catch(() => undefined);
}

/** stat of a path and every directory above it, in the helper's view. */
async function chainOf(path: string): Promise<{ chain: StatLike[]; paths: string[] } | undefined> {
  const paths = ancestry(path);
  const stats = await Promise.all(paths.map((p) => statOrUndefined(p)));
  if (stats.some((s) => s === undefined)) return undefined;
  return { chain: stats.map((s) => statLike(s as BigIntStats)), paths };
}

/**
 * Why the file the process runs (statOfRunning, from /proc/PID/exe) cannot be vouched for
 * by `hostPath`: another file there on this system, or writable/replaceable by non-root.
 */
async function pathUnsafe(hostPath: string, running: BigIntStats, what: string): Promise<string | undefined> {
  const host = await statOrUndefined(hostPath);
  if (!host || !sameFile(host, running)) {
    return `${what} is not the file at ${hostPath} on this system (another mount namespace, or replaced)`;
  }
  const c = await chainOf(hostPath);
  if (!c) return `${hostPath} cannot be examined`;
  return pathWritableByNonRoot(c.chain, c.paths);
}

async function defaultPidsRunning(exe: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const link = await fs.readlink(`/proc/${name}/exe`).catch(() => '');
    if (link === exe) out.push(Number(name));
  }
  return out;
}

/** Everything decide() needs about a live process; throws if it is gone. */
export async function gatherIdentity(pid: number, policy: Policy, deps: GatherDeps): Promise<GatheredProcess> {
  const base = `/proc/${pid}`;
  const [statText, statusText, link] = await Promise.all([
    fs.readFile(`${base}/stat`, 'utf8'),
    fs.readFile(`${base}/status`, 'utf8'),
    fs.readlink(`${base}/exe`),
  ]);
  const { ppid, startTime } = parseStat(statText);
  const st = parseStatus(statusText);
  const deleted = link.endsWith(DELETED);
  const exe = deleted ? link.slice(0, -DELETED.length) : link;
  const id: ProcessIdentity = { exe, exeDeleted: deleted, uid: st.uid, pid, startTime };
  const out: GatheredProcess = { identity: id, startTime, ppid, tgid: st.tgid };
  if (st.tracerPid !== 0 && st.tracerPid !== deps.selfPid) id.traced = `it is being traced by process ${st.tracerPid}, which can change its code`;
  if (deleted) return out;

  let rules = candidateRules(policy, exe);
  const notes: string[] = [];
  const named = [...new Set(rules.flatMap((r) => (r.binary?.package !== undefined ? [r.binary.package] : [])))];
  if (named.length) {
    // Cheap first: the package database's file lists; the bytes only when a list has the file.
    const v = await verifiedPackages(named, exe, () => md5Of(`${base}/exe`));
    id.packages = v.packages;
    notes.push(...v.notes);
    rules = rules.filter((r) => r.binary?.package === undefined || v.packages.includes(r.binary.package));
  }
  if (!rules.length) {
    if (notes.length) id.notes = notes;
    return out;
  }
  const running = await fs.stat(`${base}/exe`, { bigint: true });

  if (rules.some((r) => r.binary?.path !== undefined || r.binary?.snap !== undefined)) {
    id.exeUnsafe = await pathUnsafe(exe, running, `${exe} of process ${pid}`);
  }
  if (needsHash(policy, exe)) id.sha256 = await deps.hashes.sha256(`${base}/exe`);

  const environ = await fs.readFile(`${base}/environ`).catch(() => undefined);
  if (environ === undefined) id.env = ['LD_PRELOAD']; // unreadable: assume the worst
  else {
    // Every occurrence of every refused variable, as ld.so and the interpreters read them.
    const env = refusedInEnviron(environ);
    if (env.length) id.env = env;
  }

  if (rules.some((r) => r.binary?.script !== undefined)) await gatherScript(pid, id, st, notes);
  if (rules.some((r) => r.binary?.flatpak !== undefined)) await gatherFlatpak(pid, id, running, notes);
  if (rules.some((r) => r.binary?.snap !== undefined)) await gatherSnap(pid, id, notes);
  const images = rules.flatMap((r) => (r.binary?.appimage !== undefined ? [r.binary.appimage] : []));
  if (images.length) await gatherAppImage(pid, id, images, deps, notes);
  if (notes.length) id.notes = notes;
  return out;
}

async function gatherScript(pid: number, id: ProcessIdentity, st: TaskStatus, notes: string[]): Promise<void> {
  const family = interpreterFamily(id.exe);
  if (!family) return;
  const argv = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').slice(0, -1);
  const arg = scriptArgument(family, argv);
  if (arg.kind === 'none') {
    notes.push(`no script file: ${arg.why}`);
    return;
  }
  const cwd = await fs.readlink(`/proc/${pid}/cwd`);
  const lexical = resolveScript(cwd, arg.path);
  // The file the process opened is the one at that path in its own namespace (through
  // /proc/PID/root); it must be the same inode as the helper's file at the real path.
  const inProc = await statOrUndefined(`/proc/${pid}/root${lexical}`);
  const real = await fs.realpath(lexical).catch(() => undefined);
  if (!inProc || !real) {
    notes.push(`its script ${lexical} cannot be found`);
    return;
  }
  id.script = real;
  const host = await statOrUndefined(real);
  if (!host || !sameFile(host, inProc)) {
    id.scriptUnsafe = `${lexical} in the process's namespace is not ${real} on this system`;
    return;
  }
  if (arg.loads.length) {
    id.scriptUnsafe = `it was started with ${arg.loads.join(', ')}, which loads code besides ${real}`;
    return;
  }
  const c = await chainOf(real);
  const who: Cred = { uid: st.uid, gids: st.gids };
  const why = (c ? scriptUnsafe(c.chain, c.paths, who) : `${real} cannot be examined`) ?? interpreterUnsafe(family, arg);
  if (why) id.scriptUnsafe = why;
}

async function gatherFlatpak(pid: number, id: ProcessIdentity, running: BigIntStats, notes: string[]): Promise<void> {
  const text = await fs.readFile(`/proc/${pid}/root/.flatpak-info`, 'utf8').catch(() => undefined);
  if (text === undefined) return; // not in a flatpak sandbox
  const info = parseFlatpakInfo(text);
  if (!info) {
    notes.push('its /.flatpak-info names no application');
    return;
  }
  if (info.appPath === undefined || !isSystemAppPath(info.appPath, info.name)) {
    notes.push(`flatpak ${info.name} is not a system-wide installation (${info.appPath ?? 'no app-path'})`);
    return;
  }
  if (id.exe.startsWith('/usr/') && (info.runtimePath === undefined || !isSystemRuntimePath(info.runtimePath))) {
    notes.push(`flatpak ${info.name}: its runtime is not a system-wide installation`);
    return;
  }
  const host = flatpakHostPath(id.exe, info);
  if (!host) {
    notes.push(`flatpak ${info.name}: ${id.exe} is neither in the app nor in its runtime`);
    return;
  }
  const why = await pathUnsafe(host, running, `${id.exe} of flatpak ${info.name}`);
  if (why) notes.push(why);
  else id.flatpak = info.name;
}

async function gatherSnap(pid: number, id: ProcessIdentity, notes: string[]): Promise<void> {
  const fromExe = snapFromExe(id.exe);
  if (!fromExe) return;
  const cgroup = await fs.readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
  const fromCgroup = snapFromCgroup(cgroup);
  if (fromCgroup !== fromExe) {
    notes.push(`${id.exe} is in snap ${fromExe}, but the process is not in a cgroup of that snap`);
    return;
  }
  if (id.exeUnsafe) notes.push(id.exeUnsafe);
  else id.snap = fromExe;
}

async function gatherAppImage(pid: number, id: ProcessIdentity, images: string[], deps: GatherDeps, notes: string[]): Promise<void> {
  const mountinfo = await fs.readFile(`/proc/${pid}/mountinfo`, 'utf8').catch(() => '');
  const mount = mountOf(parseMountinfo(mountinfo), id.exe);
  if (!mount) return;
  for (const image of images) {
    const owner = appImageMountOwner(mount, image);
    if (owner === undefined) continue;
    if (owner !== id.uid) {
      notes.push(`${mount.mountPoint} is mounted by uid ${owner}, not by the process's user`);
      continue;
    }
    const c = await chainOf(image);
    const unsafe = c ? pathWritableByNonRoot(c.chain, c.paths) : `${image} cannot be examined`;
    if (unsafe) {
      notes.push(unsafe);
      continue;
    }
    const runtimes = await (deps.pidsRunning ?? defaultPidsRunning)(image);
    const owned = [];
    for (const q of runtimes) {
      const s = await fs.readFile(`/proc/${q}/status`, 'utf8').then(parseStatus).catch(() => undefined);
      if (s?.uid === id.uid) owned.push(q);
    }
    if (!owned.length) {
      notes.push(`no process of uid ${id.uid} runs ${image} (the AppImage runtime serving ${mount.mountPoint})`);
      continue;
    }
    id.appimage = image;
    return;
  }
}
