// sd_notify(3) without libsystemd: the service manager's protocol is one AF_UNIX datagram of
// newline-separated KEY=VALUE assignments to $NOTIFY_SOCKET (a path, or '@name' for an
// abstract socket). tunnelgate.service is Type=notify: the helper says READY=1 once its first
// nftables transaction is in force, so network-pre.target (and every tunnel after it) waits
// for the gate. Outside systemd (no NOTIFY_SOCKET) every call is a no-op.
import { unixDgramSend } from '../native/index.js';

export type DatagramSender = (socketPath: string, data: Buffer) => void;

/** The notify socket systemd gave this process, or undefined (not a notify service). */
export function notifySocket(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const s = env.NOTIFY_SOCKET;
  return s && (s.startsWith('/') || s.startsWith('@')) ? s : undefined;
}

/**
 * The datagram for STATE: `KEY=VALUE\n` per entry, in order. Throws on a key that is not
 * upper-case letters, digits and '_', or a value with a newline (the protocol has no escaping).
 */
export function encodeNotify(state: Readonly<Record<string, string | number>>): Buffer {
  const lines = Object.entries(state).map(([k, v]) => {
    if (!/^[A-Z][A-Z0-9_]*$/.test(k)) throw new Error(`sd_notify: invalid key ${JSON.stringify(k)}`);
    const value = String(v);
    if (value.includes('\n')) throw new Error(`sd_notify: ${k} has a newline`);
    return `${k}=${value}\n`;
  });
  return Buffer.from(lines.join(''), 'utf8');
}

/**
 * Sends STATE to systemd. Returns false when not run as a notify service (nothing sent).
 * Throws the socket error (ENOENT, ECONNREFUSED...) if systemd's socket refuses it.
 */
export function sdNotify(state: Readonly<Record<string, string | number>>, env: NodeJS.ProcessEnv = process.env, send: DatagramSender = unixDgramSend): boolean {
  const socket = notifySocket(env);
  if (!socket) return false;
  send(socket, encodeNotify(state));
  return true;
}

/** READY=1 with a STATUS= line for `systemctl status`: the first transaction is in force. */
export const notifyReady = (status: string, env?: NodeJS.ProcessEnv, send?: DatagramSender): boolean => sdNotify({ READY: 1, STATUS: status }, env, send);

/** RELOADING=1 at SIGHUP, before re-reading the profiles (then notifyReady again). */
export const notifyReloading = (env?: NodeJS.ProcessEnv, send?: DatagramSender): boolean => sdNotify({ RELOADING: 1 }, env, send);

/** STOPPING=1 at SIGTERM. */
export const notifyStopping = (env?: NodeJS.ProcessEnv, send?: DatagramSender): boolean => sdNotify({ STOPPING: 1 }, env, send);
