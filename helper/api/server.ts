// The helper's local API: JSON-RPC 2.0 (json-rpc-2.0) over a unix socket, framed as
// one JSON document per line (split2, with a hard size limit).
//
// Who is calling comes from the kernel (SO_PEERCRED), never from the request; whether the
// caller is an admin is decided once, when the connection is accepted (admin.ts). Every
// method is declared in common/api.ts with its access level and a params schema; anything
// undeclared is refused, and every input is validated before a handler runs. Each refusal
// is a clear error and an `api.refused` event (the audit log), rate-limited per user.
//
// After `subscribe`, the server also sends notifications (ApiNotifications) on that
// connection, until it closes.
//
// One user cannot hurt the others, and root and the admin group are always served (issue
// 9.9): a non-admin connection is admitted at accept, when SO_PEERCRED names its user, only
// while that user holds fewer than `maxConnectionsPerUser` and all non-admins together fewer
// than `maxConnections` (admins have their own `maxAdminConnections`, so no number of
// ordinary users can take their place); a refused connection is closed at once and is an
// `api.refused` event. Requests of a connection are answered one at a time (a client that
// pipelines more than `maxQueued` stops being read until they are answered); a user's lines
// beyond `requestsPerSecond` (a token bucket of `requestBurst`) are refused and that
// connection is closed; a line longer than MAX_MESSAGE_BYTES or a client that does not read
// its replies closes that connection; a connection that completes no request for `idleMs`
// (bytes without a newline do not count: slowloris) is closed unless subscribed or busy.
// So memory is bounded by the connection limits times MAX_MESSAGE_BYTES plus maxUnreadBytes.
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { JSONRPCServer } from 'json-rpc-2.0';
import type { JSONRPCRequest, JSONRPCResponse } from 'json-rpc-2.0';
import split2 from 'split2';
import type { ApiNotifications, Caller, MethodName, NotificationName, Params, Result, SubscribeResult, Topic } from '../../common/api.js';
import { API, ErrorCode, MAX_MESSAGE_BYTES } from '../../common/api.js';
import type { PeerCred } from './authorization.js';
import { ApiError, CallerError } from '../../common/errors.js';
import type { EventSink } from '../core/event-bus.js';
import { logError } from '../../common/node/log.js';

export type HandledMethod = Exclude<MethodName, 'subscribe'>;
export type Handlers = { [M in HandledMethod]: (caller: Caller, params: Params<M>) => Promise<Result<M>> };

export type Notify = <N extends NotificationName>(method: N, params: ApiNotifications[N]) => void;

/** The subscription side: a snapshot for the subscriber, then notifications until cancel(). */
export interface Feeds {
  subscribe(caller: Caller, topics: Topic[], notify: Notify): Promise<{ result: SubscribeResult; cancel: () => void }>;
}

export interface ApiServerOptions {
  socketPath: string;
  handlers: Handlers;
  events: EventSink;
  peerCred: (fd: number) => PeerCred;
  /** Default: root only. */
  isAdmin?: (cred: PeerCred) => boolean;
  /** Without feeds, `subscribe` fails. */
  feeds?: Feeds;
  /** Non-admin connections (all users together) beyond this are closed at accept. Default 256. */
  maxConnections?: number;
  /** Connections of one non-admin user beyond this are closed at accept. Default 32. */
  maxConnectionsPerUser?: number;
  /** Admin connections beyond this are closed at accept (a bound on memory only). Default 256. */
  maxAdminConnections?: number;
  /** Sustained request lines per second of one non-admin user (all its connections). Default 50. */
  requestsPerSecond?: number;
  /** Request lines one non-admin user may send at once before the rate applies. Default 200. */
  requestBurst?: number;
  /** A connection that completes no request for this long is closed (subscribers and busy ones excepted). Default 60 s. */
  idleMs?: number;
  /** Requests read ahead of the one being answered. */
  maxQueued?: number;
  /** Replies and notifications a client leaves unread before it is cut off. */
  maxUnreadBytes?: number;
}

/** Refusal events per user per window; more are counted and summarised. */
const REFUSALS_PER_WINDOW = 20;
const REFUSAL_WINDOW_MS = 10_000;

interface Conn {
  caller: Caller;
  socket: net.Socket;
  cancel?: () => void;
}

const errorResponse = (id: JSONRPCRequest['id'] | null, code: number, message: string): JSONRPCResponse =>
  ({ jsonrpc: '2.0', id: id ?? null, error: { code, message } }) as JSONRPCResponse;

export class ApiServer {
  private readonly rpc = new JSONRPCServer<Conn>({ errorListener: () => undefined });
  private readonly server: net.Server;
  private readonly conns = new Set<Conn>();
  private readonly perUser = new Map<number, number>();
  private nonAdmin = 0;
  private admins = 0;
  private readonly buckets = new Map<number, { tokens: number; at: number }>();
  private readonly refusals = new Map<number, { start: number; n: number; suppressed: number }>();

  constructor(private readonly opts: ApiServerOptions) {
    const ajv = new Ajv({ allErrors: true, strict: true });
    for (const name of Object.keys(API) as MethodName[]) {
      const validate: ValidateFunction = ajv.compile(API[name].params);
      const handler = name === 'subscribe'
        ? (c: Caller, p: unknown, conn: Conn) => this.subscribe(conn, p as Params<'subscribe'>)
        : (opts.handlers[name] as (c: Caller, p: unknown) => Promise<unknown>);
      this.rpc.addMethod(name, async (params: unknown, conn: Conn) => {
        const { caller } = conn;
        if (API[name].access === 'admin' && !caller.admin) {
          this.refuse(caller, name, 'admins only');
          throw ApiError(ErrorCode.Forbidden, `${name} is only for root and the admin group`);
        }
        const p = params ?? {};
        if (!validate(p)) {
          const why = (validate.errors ?? []).map((e) => `${e.instancePath || 'params'} ${e.message ?? 'is invalid'}`).join('; ');
          throw ApiError(ErrorCode.InvalidParams, `invalid parameters for ${name}: ${why}`);
        }
        try {
          return await handler(caller, p, conn);
        } catch (e) {
          if (e instanceof CallerError && e.code === ErrorCode.Forbidden) this.refuse(caller, name, e.message);
          throw e;
        }
      });
    }
    // Unknown errors are logged and reported without internals.
    this.rpc.mapErrorToJSONRPCErrorResponse = (id, error: unknown) => {
      if (error instanceof CallerError) return { jsonrpc: '2.0', id, error: error.toObject() };
      logError(`internal error: ${(error as Error)?.stack ?? String(error)}`);
      return { jsonrpc: '2.0', id, error: { code: ErrorCode.Internal, message: `internal error: ${(error as Error)?.message ?? error}` } };
    };
    // No server.maxConnections: it would refuse before the peer's credentials are known,
    // root included; accept() applies the limits per kind of caller instead.
    this.server = net.createServer((s) => this.accept(s));
  }

  async listen(): Promise<void> {
    await fs.mkdir(path.dirname(this.opts.socketPath), { recursive: true, mode: 0o755 });
    await fs.rm(this.opts.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      // A deep accept queue (the kernel caps it at net.core.somaxconn): a burst of connects
      // by one user must not leave root's connect with EAGAIN before accept() can refuse them.
      this.server.listen({ path: this.opts.socketPath, backlog: 4096 }, () => resolve());
    });
    // Any local user may connect; what each may do is decided per call from its credentials.
    await fs.chmod(this.opts.socketPath, 0o666);
  }

  /** An `api.refused` event, at most REFUSALS_PER_WINDOW per user per window (then a count). */
  private refuse(caller: Caller, method: string, reason: string): void {
    const now = Date.now();
    let r = this.refusals.get(caller.uid);
    if (!r || now - r.start > REFUSAL_WINDOW_MS) {
      if (r?.suppressed) {
        this.opts.events.emit({ type: 'api.refused', uid: caller.uid, pid: caller.pid, method: '*', reason: `${r.suppressed} more refusals in ${REFUSAL_WINDOW_MS / 1000} s, not recorded one by one` });
      }
      if (this.refusals.size > 10_000) this.refusals.clear();
      r = { start: now, n: 0, suppressed: 0 };
      this.refusals.set(caller.uid, r);
    }
    if (r.n++ < REFUSALS_PER_WINDOW) this.opts.events.emit({ type: 'api.refused', uid: caller.uid, pid: caller.pid, method, reason });
    else r.suppressed++;
  }

  /** The caller of a new connection, or undefined when it is refused (closed, and an event). */
  private admit(socket: net.Socket): Caller | undefined {
    let caller: Caller;
    try {
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (typeof fd !== 'number' || fd < 0) throw new Error('no fd');
      const cred = this.opts.peerCred(fd);
      caller = { ...cred, admin: (this.opts.isAdmin ?? ((c: PeerCred) => c.uid === 0))(cred) };
    } catch {
      socket.destroy();
      return undefined;
    }
    const why = admissionRefusal(caller, {
      mine: this.perUser.get(caller.uid) ?? 0, nonAdmin: this.nonAdmin, admins: this.admins,
      perUser: this.opts.maxConnectionsPerUser ?? 32, maxNonAdmin: this.opts.maxConnections ?? 256, maxAdmins: this.opts.maxAdminConnections ?? 256,
    });
    if (why) {
      socket.destroy();
      this.refuse(caller, '(connect)', why);
      return undefined;
    }
    this.perUser.set(caller.uid, (this.perUser.get(caller.uid) ?? 0) + 1);
    if (caller.admin) this.admins++;
    else this.nonAdmin++;
    socket.once('close', () => {
      const n = (this.perUser.get(caller.uid) ?? 1) - 1;
      if (n > 0) this.perUser.set(caller.uid, n);
      else this.perUser.delete(caller.uid);
      if (caller.admin) this.admins--;
      else this.nonAdmin--;
    });
    return caller;
  }

  /** Connections held now: by admins, and by everyone else together. */
  load(): { admins: number; nonAdmin: number } {
    return { admins: this.admins, nonAdmin: this.nonAdmin };
  }

  /** Take one request line of a non-admin user from its bucket; false when over its rate. */
  private takeToken(caller: Caller): boolean {
    if (caller.admin) return true;
    const rate = this.opts.requestsPerSecond ?? 50;
    const burst = this.opts.requestBurst ?? 200;
    const now = Date.now();
    if (this.buckets.size > 10_000) this.buckets.clear();
    const b = this.buckets.get(caller.uid) ?? { tokens: burst, at: now };
    const next = takeFromBucket(b, now, rate, burst);
    this.buckets.set(caller.uid, next.bucket);
    return next.ok;
  }

  private accept(socket: net.Socket): void {
    const caller = this.admit(socket);
    if (!caller) return;
    const conn: Conn = { caller, socket };
    this.conns.add(conn);
    socket.on('error', () => socket.destroy());
    const maxQueued = this.opts.maxQueued ?? 32;
    let queued = 0;
    // Idle = no complete request for idleMs: bytes trickled without a newline do not count.
    const idleMs = this.opts.idleMs ?? 60_000;
    let idle: NodeJS.Timeout | undefined;
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => (conn.cancel || queued > 0 ? armIdle() : socket.destroy()), idleMs);
    };
    armIdle();
    socket.on('close', () => {
      clearTimeout(idle);
      this.conns.delete(conn);
      conn.cancel?.();
    });

    // Requests of one connection are answered in order, one at a time.
    let chain: Promise<void> = Promise.resolve();
    const lines = socket.pipe(split2({ maxLength: MAX_MESSAGE_BYTES }));
    lines.on('error', () => socket.destroy());
    lines.on('data', (line: string) => {
      if (socket.destroyed || socket.writableEnded) return;
      armIdle();
      if (!this.takeToken(caller)) {
        this.refuse(caller, '(request)', 'too many requests: over the per-user rate, connection closed');
        this.send(conn, errorResponse(null, ErrorCode.Forbidden, 'too many requests from this user: connection closed'));
        socket.end(() => socket.destroy());
        return;
      }
      if (!line.trim()) return;
      if (++queued >= maxQueued) lines.pause();
      chain = chain
        .then(async () => {
          if (socket.destroyed) return;
          const response = await this.receive(line, conn);
          if (response) this.send(conn, response);
        })
        .catch((e: Error) => logError(`api: ${e.message}`))
        .finally(() => {
          if (--queued < maxQueued / 2 && lines.isPaused()) lines.resume();
        });
    });
  }

  /** One line from a client: a single request (batches are not supported), or an error reply. */
  private async receive(line: string, conn: Conn): Promise<JSONRPCResponse | null> {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return errorResponse(null, -32700, 'parse error: a request is one JSON object per line');
    }
    if (Array.isArray(msg)) return errorResponse(null, -32600, 'batch requests are not supported');
    if (typeof msg !== 'object' || msg === null || typeof (msg as { method?: unknown }).method !== 'string') {
      return errorResponse(null, -32600, 'invalid request: not a JSON-RPC 2.0 request object');
    }
    const method = (msg as { method: string }).method;
    if (!Object.hasOwn(API, method)) {
      this.refuse(conn.caller, method.slice(0, 64), 'no such method');
      const id = (msg as { id?: JSONRPCRequest['id'] }).id;
      return id === undefined ? null : errorResponse(id, ErrorCode.MethodNotFound, `no method ${JSON.stringify(method.slice(0, 64))}: refused`);
    }
    return this.rpc.receive(msg as JSONRPCRequest, conn);
  }

  /** Write to a client that reads; one that leaves too much unread is cut off. */
  private send(conn: Conn, message: unknown): void {
    const { socket } = conn;
    if (socket.destroyed || socket.writableEnded) return;
    if (socket.writableLength > (this.opts.maxUnreadBytes ?? 4 * 1024 * 1024)) {
      socket.destroy();
      return;
    }
    socket.write(`${JSON.stringify(message)}\n`);
  }

  private async subscribe(conn: Conn, params: Params<'subscribe'>): Promise<SubscribeResult> {
    if (!this.opts.feeds) throw ApiError(ErrorCode.Internal, 'this helper serves no subscriptions');
    conn.cancel?.();
    delete conn.cancel;
    const notify: Notify = (method, p) => this.send(conn, { jsonrpc: '2.0', method, params: p });
    const { result, cancel } = await this.opts.feeds.subscribe(conn.caller, params.topics, notify);
    if (conn.socket.destroyed) cancel();
    else conn.cancel = cancel;
    return result;
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await fs.rm(this.opts.socketPath, { force: true });
  }
}

/** Connection counts and limits at accept time. */
export interface AdmissionCounts {
  mine: number;
  nonAdmin: number;
  admins: number;
  perUser: number;
  maxNonAdmin: number;
  maxAdmins: number;
}

/**
 * Why a new connection of `caller` is refused, or undefined. Pure. Admins are counted apart
 * from everyone else, so ordinary users, however many, never take an admin's place.
 */
export function admissionRefusal(caller: Pick<Caller, 'uid' | 'admin'>, c: AdmissionCounts): string | undefined {
  if (caller.admin) return c.admins >= c.maxAdmins ? `too many admin connections (${c.maxAdmins})` : undefined;
  if (c.mine >= c.perUser) return `too many connections from uid ${caller.uid} (at most ${c.perUser} per user)`;
  if (c.nonAdmin >= c.maxNonAdmin) return `too many connections from ordinary users (at most ${c.maxNonAdmin}; root and the admin group are still served)`;
  return undefined;
}

/**
 * A token bucket: `rate` tokens per second up to `burst`; take one. Pure: returns the
 * bucket after `now` (ms) and whether a token was there.
 */
export function takeFromBucket(b: { tokens: number; at: number }, now: number, rate: number, burst: number): { ok: boolean; bucket: { tokens: number; at: number } } {
  const tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.at) / 1000) * rate);
  return tokens >= 1 ? { ok: true, bucket: { tokens: tokens - 1, at: now } } : { ok: false, bucket: { tokens, at: now } };
}
