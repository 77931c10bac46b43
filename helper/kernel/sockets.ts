// Which local ports admitted processes listen on, from /proc: the kernel's socket tables
// (/proc/net/tcp, tcp6, udp, udp6 of the helper's network namespace) joined with the
// socket inodes each process holds (/proc/PID/fd).
import { promises as fs } from 'node:fs';

export interface Listener {
  proto: 'tcp' | 'udp';
  port: number;
}

const TCP_LISTEN = '0A';
const UDP_UNCONNECTED = '07';

/** Rows of a /proc/net/{tcp,udp}[6] table: local port, state and socket inode. */
export function parseProcNet(text: string): Array<{ port: number; state: string; inode: string }> {
  const rows = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = f[1] as string;
    const port = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    rows.push({ port, state: f[3] as string, inode: f[9] as string });
  }
  return rows;
}

export async function socketInodes(pid: number): Promise<Set<string>> {
  const out = new Set<string>();
  const fds = await fs.readdir(`/proc/${pid}/fd`).catch(() => []);
  await Promise.all(
    fds.map(async (fd) => {
      const link = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m) out.add(m[1] as string);
    }),
  );
  return out;
}

/** Ports on which these processes accept new connections (TCP listeners, bound UDP sockets). */
export async function listeningPorts(pids: readonly number[]): Promise<Listener[]> {
  if (!pids.length) return [];
  const inodes = new Set<string>();
  for (const pid of pids) for (const i of await socketInodes(pid)) inodes.add(i);
  const out = new Map<string, Listener>();
  for (const [file, proto, state] of [
    ['tcp', 'tcp', TCP_LISTEN],
    ['tcp6', 'tcp', TCP_LISTEN],
    ['udp', 'udp', UDP_UNCONNECTED],
    ['udp6', 'udp', UDP_UNCONNECTED],
  ] as const) {
    const text = await fs.readFile(`/proc/net/${file}`, 'utf8').catch(() => '');
    for (const row of parseProcNet(text)) {
      if (row.state === state && row.port > 0 && inodes.has(row.inode)) out.set(`${proto}/${row.port}`, { proto, port: row.port });
    }
  }
  return [...out.values()].sort((a, b) => a.proto.localeCompare(b.proto) || a.port - b.port);
}
