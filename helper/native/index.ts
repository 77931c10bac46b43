// Loader for the N-API addon (native.c), built by `node-gyp rebuild` at install time.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface Native {
  peerCred(fd: number): { pid: number; uid: number; gid: number };
  ptraceSeize(pid: number): void;
  ptracePollExec(pid: number): 'exec' | 'exited' | 'running';
  ptraceDetach(pid: number): void;
  ptraceResume(pid: number): void;
}

function packageRoot(here: string): string {
  let dir = path.dirname(fileURLToPath(here));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('tunnelgate: cannot find the package root to load the native addon');
    dir = up;
  }
  return dir;
}

/** Where the installed package puts the addons (packaging/): beside the executable, or here. */
export const INSTALLED_ADDON_DIR = '/usr/lib/tunnelgate';

/**
 * The file of addon NAME (`tunnelgate_native`, `tunnelgate_sd`). From a source checkout:
 * build/Release/ of the package root. In the packaged single executable (a CommonJS bundle,
 * where import.meta.url is undefined): beside the executable, else /usr/lib/tunnelgate/.
 */
function addonFile(name: string): string {
  const file = `${name}.node`;
  const here = (import.meta as { url?: string }).url;
  const candidates = here
    ? [path.join(packageRoot(here), 'build', 'Release', file)]
    : [path.join(path.dirname(process.execPath), file), path.join(INSTALLED_ADDON_DIR, file)];
  const found = candidates.find((f) => existsSync(f));
  if (!found) throw new Error(`tunnelgate: native addon missing at ${candidates.join(' or ')}; run npm ci (it builds it with node-gyp)`);
  return found;
}

/** dlopen(3)s an addon; works in a single executable application too, where require() cannot. */
function loadAddon<T>(name: string): T {
  const m = { exports: {} as T };
  process.dlopen(m, addonFile(name));
  return m.exports;
}

let loaded: Native | undefined;
function native(): Native {
  loaded ??= loadAddon<Native>('tunnelgate_native');
  return loaded;
}

interface NativeSd {
  unixDgramSend(path: string, data: Buffer): void;
}
let sd: NativeSd | undefined;

/**
 * Sends one datagram to the AF_UNIX socket PATH ('@name': an abstract socket), as sd_notify(3)
 * and the journal's native protocol need (sd.c). Throws the errno text (ENOENT, EMSGSIZE…).
 */
export function unixDgramSend(socketPath: string, data: Buffer): void {
  const addon = (sd ??= loadAddon<NativeSd>('tunnelgate_sd'));
  addon.unixDgramSend(socketPath, data);
}

/** The kernel's record of who connected to a unix socket (SO_PEERCRED). */
export function peerCred(fd: number): { pid: number; uid: number; gid: number } {
  return native().peerCred(fd);
}

/** Holds a launched program at its exec until it is verified (see native.c). */
export interface ExecTracer {
  seize(pid: number): void;
  pollExec(pid: number): 'exec' | 'exited' | 'running';
  detach(pid: number): void;
  /** Let a process stopped at its exec go on, still traced: its next exec stops it again. */
  resume(pid: number): void;
}

export const ptraceTracer: ExecTracer = {
  seize: (pid) => native().ptraceSeize(pid),
  pollExec: (pid) => native().ptracePollExec(pid),
  detach: (pid) => native().ptraceDetach(pid),
  resume: (pid) => native().ptraceResume(pid),
};

interface NativeNetlink {
  netlinkOpen(protocol: number, groups: number, initNetns: boolean, dgram: boolean): number;
  netlinkSend(fd: number, msg: Buffer): void;
  netlinkListen(fd: number, onDatagram: (b: Buffer) => void): () => void;
  syslog(priority: number, message: string): void;
}

const nl = () => native() as unknown as NativeNetlink;

/** A netlink socket read on a thread of the addon; each datagram arrives as a Buffer (empty: the kernel dropped some). */
export interface NetlinkSocket {
  send(msg: Buffer): void;
  close(): void;
}

export function openNetlink(
  opts: { protocol: number; groups?: number; initNetns?: boolean; dgram?: boolean },
  onDatagram: (b: Buffer) => void,
): NetlinkSocket {
  const fd = nl().netlinkOpen(opts.protocol, opts.groups ?? 0, opts.initNetns ?? false, opts.dgram ?? false);
  const stop = nl().netlinkListen(fd, onDatagram);
  return { send: (m) => nl().netlinkSend(fd, m), close: stop };
}

/** syslog(3) priorities used by the audit log. */
export const LOG_WARNING = 4;
export const LOG_NOTICE = 5;
export const LOG_INFO = 6;

export function syslog(priority: number, message: string): void {
  nl().syslog(priority, message);
}

// ---- fanotify exec hold and filtered netlink (native.c; wrapped by helper/kernel/fanotify.ts, proc-events.ts) ----

/** One message of the fanotify reader thread (see native.c: fanotify). */
export interface RawFanotifyEvent {
  kind: 'exec' | 'expired' | 'overflow' | 'own-child' | 'error' | 'admitted' | 'held-close';
  id: number;
  tid?: number;
  tgid?: number;
  ppid?: number;
  uid?: number;
  threads?: number;
  path?: string;
  dev?: bigint;
  ino?: bigint;
  syscall?: number;
  argv?: string[];
  envp?: string[];
  truncated?: boolean;
  /** CLOCK_MONOTONIC ns at which the reader thread read the event (comparable with process.hrtime.bigint()). */
  readAtNs?: bigint;
  /** AF_INET/AF_INET6 socket fds the exec'ing task held at the event (-1: could not tell). */
  inetSockets?: number;
  /** The program calling execve (/proc/TID/exe at the event), when it could be read. */
  callerDev?: bigint;
  callerIno?: bigint;
  /** 'admitted' (a verdict ticket held): the ticket's rule, and when the reader thread answered (CLOCK_MONOTONIC ns). */
  rule?: string;
  answeredAtNs?: bigint;
  error?: string;
}

export interface RawFanotifyGroup {
  respond(id: number, allow: boolean): boolean;
  mark(path: string, children?: boolean): { fd: number; dev: bigint; ino: bigint };
  unmark(fd: number): void;
  pending(): number;
  /** Replace every verdict ticket (helper/kernel/fanotify.ts encodeTickets; empty: none). Throws. */
  setTickets(buffer: Buffer): void;
  close(): void;
}

interface NativeExec {
  fanotifyOpen(onEvent: (e: RawFanotifyEvent) => void, deadlineMs: number, passOwnChildren: boolean): RawFanotifyGroup;
  netlinkSetFilter(fd: number, program: Buffer, drain: boolean): void;
  netlinkListen(fd: number, onDatagram: (b: Buffer) => void, batch: boolean): () => void;
}

const nx = () => native() as unknown as NativeExec;

/** A fanotify FAN_CLASS_CONTENT group with its reader thread (native.c). Throws the errno text of fanotify_init. */
export function openFanotifyGroup(onEvent: (e: RawFanotifyEvent) => void, deadlineMs: number, passOwnChildren: boolean): RawFanotifyGroup {
  return nx().fanotifyOpen(onEvent, deadlineMs, passOwnChildren);
}

/**
 * openNetlink with a classic BPF socket filter attached before anything is read, and a
 * reader that hands JS every datagram already queued at once (`batch`: the buffer may hold
 * several datagrams' messages; parseMessages splits them).
 */
export function openNetlinkFiltered(
  opts: { protocol: number; groups?: number; initNetns?: boolean; dgram?: boolean; filter?: Buffer; batch?: boolean },
  onDatagram: (b: Buffer) => void,
): NetlinkSocket & { setFilter(program: Buffer): void } {
  const fd = nl().netlinkOpen(opts.protocol, opts.groups ?? 0, opts.initNetns ?? false, opts.dgram ?? false);
  try {
    if (opts.filter) nx().netlinkSetFilter(fd, opts.filter, true);
  } catch (e) {
    // The reader owns the fd once it listens; here nobody does yet.
    nx().netlinkListen(fd, () => undefined, false)();
    throw e;
  }
  const stop = nx().netlinkListen(fd, onDatagram, opts.batch ?? false);
  let open = true;
  return {
    send: (m) => nl().netlinkSend(fd, m),
    // Replacing a socket filter is atomic in the kernel (SO_ATTACH_FILTER again).
    setFilter: (p) => {
      if (!open) throw new Error('netlink socket is closed');
      nx().netlinkSetFilter(fd, p, false);
    },
    close: () => {
      open = false;
      stop();
    },
  };
}

// ---- bpf(2) (native bpf.c; used by helper/kernel/send-trace.ts) ----

/** The bpf(2) commands the helper uses; each throws an Error with `errno` (and the verifier's log for a load). */
export interface NativeBpf {
  bpfMapCreate(type: number, keySize: number, valueSize: number, maxEntries: number, flags: number, name: string): number;
  bpfProgLoad(type: number, expectedAttachType: number, attachBtfId: number, insns: Buffer, name: string): number;
  bpfRawTracepointOpen(name: string | null, progFd: number): number;
  bpfMapLookup(mapFd: number, key: Buffer, valueSize: number): Buffer | null;
  bpfClose(fd: number): void;
}

/** The addon's bpf(2) functions. Throws when the addon cannot be loaded. */
export function nativeBpf(): NativeBpf {
  return native() as unknown as NativeBpf;
}
