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
