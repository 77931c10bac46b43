// Loader for the N-API addon (native.c), built by `node-gyp rebuild` at install time.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface Native {
  peerCred(fd: number): { pid: number; uid: number; gid: number };
  ptraceSeize(pid: number): void;
  ptracePollExec(pid: number): 'exec' | 'exited' | 'running';
  ptraceDetach(pid: number): void;
}

function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('tunnelgate: cannot find the package root to load the native addon');
    dir = up;
  }
  return dir;
}

let loaded: Native | undefined;
function native(): Native {
  if (!loaded) {
    const file = path.join(packageRoot(), 'build', 'Release', 'tunnelgate_native.node');
    if (!existsSync(file)) throw new Error(`tunnelgate: native addon missing at ${file}; run npm ci (it builds it with node-gyp)`);
    loaded = createRequire(import.meta.url)(file) as Native;
  }
  return loaded;
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
}

export const ptraceTracer: ExecTracer = {
  seize: (pid) => native().ptraceSeize(pid),
  pollExec: (pid) => native().ptracePollExec(pid),
  detach: (pid) => native().ptraceDetach(pid),
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
  kind: 'exec' | 'expired' | 'overflow' | 'own-child' | 'error';
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
  error?: string;
}

export interface RawFanotifyGroup {
  respond(id: number, allow: boolean): boolean;
  mark(path: string, children?: boolean): { fd: number; dev: bigint; ino: bigint };
  unmark(fd: number): void;
  pending(): number;
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
