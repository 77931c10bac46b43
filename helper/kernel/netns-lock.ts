// One helper per network namespace (issue 9.11's kind). The nftables table `inet tunnelgate`
// (and the NFLOG group) exist once per network namespace, so only one helper may run there,
// whatever its --run dir (RUN/helper.lock, lock.ts, covers one run dir only).
//
// The lock is an abstract AF_UNIX socket bound to a fixed name, held (listening) for the
// helper's life:
//  - abstract names are per network namespace: a helper in another namespace is not affected;
//  - there is no file: the kernel frees the name when its last descriptor closes, however the
//    helper dies (kill -9 included), so nothing stale ever blocks a start;
//  - the kernel names the holder: SO_PEERCRED on a connection to it gives the pid and uid of
//    the process that listens (when it does not listen, /proc/net/unix and /proc/PID/fd do).
// Abstract names have no permissions: any local user in the namespace can bind the name first.
// Only root runs a helper, so a holder that is not root is no helper; the helper then starts
// anyway (a user must not be able to keep the gate's helper from starting) and says so in
// status: a second helper in this namespace would not be refused while the name is taken.
import net from 'node:net';
import { readdir, readFile, readlink } from 'node:fs/promises';

/**
 * The abstract name (without its leading NUL; /proc/net/unix shows it as `@tunnelgate/helper`).
 * Node binds the whole sun_path, the name padded with NULs (shown as trailing @s): every
 * helper binds the same bytes; another program must pad it the same way to meet it.
 */
export const NETNS_LOCK_NAME = 'tunnelgate/helper';

/** Who holds the name: the kernel's pid and uid, and the holder's `--run` if its command line says. */
export interface NetnsHolder {
  pid?: number;
  uid?: number;
  run?: string;
}

/** `pid N, --run DIR` (what is known of a holder), for messages. */
export function holderText(h: NetnsHolder): string {
  const parts = [`pid ${h.pid ?? 'unknown'}`];
  if (h.uid !== undefined && h.uid !== 0) parts.push(`uid ${h.uid}`);
  if (h.run) parts.push(`--run ${h.run}`);
  return parts.join(', ');
}

/** Another helper (a root process) holds this network namespace's lock. */
export class NetnsLockHeld extends Error {
  constructor(readonly holder: NetnsHolder) {
    super(`another tunnelgate helper runs in this network namespace (${holderText(holder)}): the table inet tunnelgate is one per network namespace; this one changes nothing and exits`);
  }
}

/** The lock, held until close(). `problem` when the name was taken by a process that is not root (for status). */
export interface NetnsLock {
  readonly problem?: string;
  close(): Promise<void>;
}

export interface NetnsLockOptions {
  /** The abstract name (tests); default NETNS_LOCK_NAME. */
  name?: string;
  /** SO_PEERCRED of a connected unix socket's descriptor (the native addon's peerCred). */
  peerCred: (fd: number) => { pid: number; uid: number };
}

/**
 * Take this network namespace's helper lock (see above), without waiting.
 * @returns the lock; keep it for the life of the process
 * @throws NetnsLockHeld when a root process holds it (another helper); Error when the socket cannot be made
 */
export async function takeNetnsLock(o: NetnsLockOptions): Promise<NetnsLock> {
  const name = o.name ?? NETNS_LOCK_NAME;
  const server = net.createServer((c) => c.destroy()); // a connection only asks who holds it: SO_PEERCRED answers
  const bound = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    server.once('error', resolve);
    server.listen({ path: `\0${name}`, backlog: 8 }, () => resolve(undefined));
  });
  if (!bound) {
    server.unref(); // held, not waited on: the helper's own work keeps the process alive
    server.on('error', () => undefined);
    return { close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }
  if (bound.code !== 'EADDRINUSE') throw new Error(`cannot take the network namespace's helper lock (@${name}): ${bound.message}`);
  const holder = (await connectHolder(name, o.peerCred)) ?? (await findHolder(name));
  if (holder.uid === undefined || holder.uid === 0) throw new NetnsLockHeld(holder);
  const problem = `the helper lock of this network namespace (@${name}) is held by ${holderText(holder)}, which is not root and no helper: a second helper here would not be refused until that process ends`;
  return { problem, close: async () => undefined };
}

/** The listening holder, named by SO_PEERCRED; undefined when it does not accept connections. */
async function connectHolder(name: string, peerCred: NetnsLockOptions['peerCred']): Promise<NetnsHolder | undefined> {
  const cred = await new Promise<{ pid: number; uid: number } | undefined>((resolve) => {
    const c = net.connect({ path: `\0${name}` }, () => {
      try {
        const fd = (c as unknown as { _handle?: { fd?: number } })._handle?.fd;
        resolve(typeof fd === 'number' && fd >= 0 ? peerCred(fd) : undefined);
      } catch {
        resolve(undefined);
      } finally {
        c.destroy();
      }
    });
    c.once('error', () => resolve(undefined));
  });
  return cred && { pid: cred.pid, uid: cred.uid, ...(await runDirOf(cred.pid)) };
}

/** The holder of a bound but not listening name: its socket's inode in /proc/net/unix, then the process with it open. */
async function findHolder(name: string): Promise<NetnsHolder> {
  const table = await readFile('/proc/net/unix', 'utf8').catch(() => '');
  // Node binds the whole sun_path (the name padded with NULs), which /proc shows as trailing @s.
  const line = table.split('\n').find((l) => l.trim().split(/\s+/)[7]?.replace(/@+$/, '') === `@${name}`);
  const inode = line?.trim().split(/\s+/)[6];
  if (!inode) return {};
  for (const p of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(p)) continue;
    const fds = await readdir(`/proc/${p}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      if ((await readlink(`/proc/${p}/fd/${fd}`).catch(() => '')) !== `socket:[${inode}]`) continue;
      const status = await readFile(`/proc/${p}/status`, 'utf8').catch(() => '');
      const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
      return { pid: Number(p), ...(uid !== undefined ? { uid: Number(uid) } : {}), ...(await runDirOf(Number(p))) };
    }
  }
  return {};
}

/** `--run DIR` (or `--run=DIR`) from a process's command line, if it has one. */
async function runDirOf(pid: number): Promise<{ run?: string }> {
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  const i = argv.indexOf('--run');
  const run = i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith('--run='))?.slice('--run='.length);
  return run ? { run } : {};
}
