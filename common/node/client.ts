// The helper's client, used by the CLI and the tray app's main process. It refuses a
// helper socket that root does not own, so no user process can pose as the helper.
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { JSONRPCClient, JSONRPCErrorException } from 'json-rpc-2.0';
import split2 from 'split2';
import type { ApiNotification, MethodName, Params, Result, SubscribeResult, Topic } from '../api.js';
import { API_SOCKET_NAME, MAX_MESSAGE_BYTES, NOTIFICATION_NAMES } from '../api.js';

export class HelperError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
    this.name = 'HelperError';
  }
}

/** Raised when there is no trustworthy helper to talk to. */
export class HelperUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HelperUnavailable';
  }
}

export const DEFAULT_RUN_DIR = '/run/tunnelgate';

export function socketPathOf(runDir: string): string {
  return path.join(runDir, API_SOCKET_NAME);
}

/** The socket and the directory holding it must be root's and not writable by others. */
export async function checkHelperSocket(socketPath: string): Promise<void> {
  const dir = path.dirname(socketPath);
  const [dst, sst] = await Promise.all([fs.stat(dir), fs.lstat(socketPath)]).catch((e: NodeJS.ErrnoException) => {
    throw new HelperUnavailable(
      e.code === 'ENOENT' ? `the helper is not running (no ${socketPath})` : `cannot reach the helper at ${socketPath}: ${e.message}`,
    );
  });
  if (dst.uid !== 0 || (dst.mode & 0o022) !== 0) {
    throw new HelperUnavailable(`refusing ${dir}: it must be owned by root and writable only by root`);
  }
  if (!sst.isSocket() || sst.uid !== 0) throw new HelperUnavailable(`refusing ${socketPath}: it is not a socket owned by root`);
}

export class HelperClient {
  private readonly rpc: JSONRPCClient;
  private readonly listeners = new Set<(n: ApiNotification) => void>();
  /** Resolves when the connection is closed, by either side. */
  readonly closed: Promise<void>;

  private constructor(private readonly socket: net.Socket) {
    this.rpc = new JSONRPCClient((req) => {
      socket.write(`${JSON.stringify(req)}\n`);
    });
    const lines = socket.pipe(split2({ maxLength: MAX_MESSAGE_BYTES }));
    lines.on('data', (line: string) => {
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        socket.destroy(new Error('the helper sent a malformed reply'));
        return;
      }
      // A notification (after subscribe) has a method and no id; anything else is a reply.
      const n = msg as { method?: unknown; id?: unknown; params?: unknown };
      if (typeof n.method === 'string' && n.id === undefined) {
        if ((NOTIFICATION_NAMES as readonly string[]).includes(n.method)) {
          for (const l of this.listeners) l(n as ApiNotification);
        }
        return;
      }
      this.rpc.receive(msg as Parameters<JSONRPCClient['receive']>[0]);
    });
    const fail = (why: string) => this.rpc.rejectAllPendingRequests(why);
    lines.on('error', () => socket.destroy(new Error('the helper sent an oversized reply')));
    socket.on('error', (e) => fail(`connection to the helper failed: ${e.message}`));
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        fail('the helper closed the connection');
        resolve();
      });
    });
  }

  /** Notifications the helper sends after subscribe(). Returns the function that stops listening. */
  onNotification(fn: (n: ApiNotification) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Subscribe this connection to topics: the result is the current state, and notifications
   * follow. One may arrive just before the result: events carry `seq` and prompts an `id`, so
   * a reader merges rather than assumes the order.
   */
  subscribe(topics: Topic[]): Promise<SubscribeResult> {
    return this.call('subscribe', { topics });
  }

  static async connect(runDir = DEFAULT_RUN_DIR): Promise<HelperClient> {
    const socketPath = socketPathOf(runDir);
    await checkHelperSocket(socketPath);
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(socketPath, () => resolve(s));
      s.once('error', (e: NodeJS.ErrnoException) =>
        reject(new HelperUnavailable(e.code === 'ECONNREFUSED' ? `the helper is not running (${socketPath} refuses connections)` : e.message)),
      );
    });
    return new HelperClient(socket);
  }

  async call<M extends MethodName>(method: M, params: Params<M>): Promise<Result<M>> {
    try {
      return (await this.rpc.request(method, params)) as Result<M>;
    } catch (e) {
      if (e instanceof JSONRPCErrorException) throw new HelperError(e.message, e.code);
      throw e;
    }
  }

  close(): void {
    this.socket.end();
  }
}
