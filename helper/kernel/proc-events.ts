// Exec events from the kernel's proc connector, for the watcher. The connector exists
// only in the initial network namespace; a helper running elsewhere (the test lab) opens
// its socket there (helper/native) and keeps only processes of its own namespace.
import { promises as fs } from 'node:fs';
import { openNetlink } from '../native/index.js';
import type { NetlinkSocket } from '../native/index.js';
import { NETLINK_CONNECTOR, parseExecEvent, parseMessages, PROC_CONNECTOR_GROUP, procConnectorListen } from './netlink.js';

export interface ExecEvents {
  /** Called with the pid (tgid) of every process that has just exec'd. */
  onExec(cb: (pid: number) => void): () => void;
  /** Called when the kernel dropped events (socket overrun): the listener should rescan. */
  onOverrun(cb: () => void): () => void;
  close(): void;
}

/** The proc connector, or undefined (with the reason) where it cannot be had. */
export async function openProcConnector(): Promise<{ events: ExecEvents } | { error: string }> {
  const ownNetns = await fs.readlink('/proc/self/ns/net');
  const execs = new Set<(pid: number) => void>();
  const overruns = new Set<() => void>();
  const onDatagram = (b: Buffer) => {
    if (!b.length) {
      for (const cb of overruns) cb();
      return;
    }
    for (const m of parseMessages(b)) {
      const pid = parseExecEvent(m);
      if (pid === undefined) continue;
      // Processes of other network namespaces are not gated by this helper.
      void fs.readlink(`/proc/${pid}/ns/net`).then(
        (ns) => {
          if (ns === ownNetns) for (const cb of execs) cb(pid);
        },
        () => undefined,
      );
    }
  };
  let sock: NetlinkSocket | undefined;
  const errors: string[] = [];
  for (const initNetns of [false, true]) {
    try {
      sock = openNetlink({ protocol: NETLINK_CONNECTOR, groups: PROC_CONNECTOR_GROUP, initNetns, dgram: true }, onDatagram);
      sock.send(procConnectorListen());
      break;
    } catch (e) {
      sock?.close();
      sock = undefined;
      errors.push(`${initNetns ? 'initial' : 'own'} network namespace: ${(e as Error).message}`);
    }
  }
  if (!sock) return { error: `proc connector unavailable (${errors.join('; ')})` };
  const s = sock;
  return {
    events: {
      onExec(cb) {
        execs.add(cb);
        return () => execs.delete(cb);
      },
      onOverrun(cb) {
        overruns.add(cb);
        return () => overruns.delete(cb);
      },
      close: () => s.close(),
    },
  };
}
