// The helper's local API: JSON-RPC 2.0 (json-rpc-2.0) over a unix socket, framed as
// one JSON document per line (split2, with a hard size limit).
//
// Who is calling comes from the kernel (SO_PEERCRED), never from the request. Every
// method is declared in common/api.ts with its access level and a params schema;
// anything undeclared is refused, and every input is validated before a handler runs.
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { JSONRPCServer } from 'json-rpc-2.0';
import split2 from 'split2';
import type { Caller, MethodName, Params, Result } from '../../common/api.js';
import { API, ErrorCode, MAX_MESSAGE_BYTES } from '../../common/api.js';
import { ApiError, ApiErrorClass } from './errors.js';
import type { EventSink } from './events.js';

export type Handlers = { [M in MethodName]: (caller: Caller, params: Params<M>) => Promise<Result<M>> };

export interface ApiServerOptions {
  socketPath: string;
  handlers: Handlers;
  events: EventSink;
  peerCred: (fd: number) => Caller;
  /** Connections beyond this are closed at once. */
  maxConnections?: number;
  /** A connection that sends nothing for this long is closed. */
  idleMs?: number;
}

export class ApiServer {
  private readonly rpc = new JSONRPCServer<Caller>({ errorListener: () => undefined });
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly opts: ApiServerOptions) {
    const ajv = new Ajv({ allErrors: true, strict: true });
    for (const name of Object.keys(API) as MethodName[]) {
      const validate: ValidateFunction = ajv.compile(API[name].params);
      const handler = opts.handlers[name] as (c: Caller, p: unknown) => Promise<unknown>;
      this.rpc.addMethod(name, async (params: unknown, caller: Caller) => {
        if (API[name].access === 'admin' && caller.uid !== 0) {
          opts.events.emit({ type: 'api.refused', uid: caller.uid, pid: caller.pid, method: name, reason: 'root only' });
          throw ApiError(ErrorCode.Forbidden, `${name} is only for root`);
        }
        const p = params ?? {};
        if (!validate(p)) {
          const why = (validate.errors ?? []).map((e) => `${e.instancePath || 'params'} ${e.message ?? 'is invalid'}`).join('; ');
          throw ApiError(ErrorCode.InvalidParams, `invalid parameters for ${name}: ${why}`);
        }
        return handler(caller, p);
      });
    }
    // Unknown errors are logged and reported without internals.
    this.rpc.mapErrorToJSONRPCErrorResponse = (id, error: unknown) => {
      if (error instanceof ApiErrorClass) return { jsonrpc: '2.0', id, error: error.toObject() };
      console.error('tunnelgate: internal error:', error);
      return { jsonrpc: '2.0', id, error: { code: ErrorCode.Internal, message: `internal error: ${(error as Error)?.message ?? error}` } };
    };
    this.server = net.createServer((s) => this.accept(s));
    this.server.maxConnections = opts.maxConnections ?? 512;
  }

  async listen(): Promise<void> {
    await fs.mkdir(path.dirname(this.opts.socketPath), { recursive: true, mode: 0o755 });
    await fs.rm(this.opts.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.socketPath, () => resolve());
    });
    // Any local user may connect; what each may do is decided per call from its credentials.
    await fs.chmod(this.opts.socketPath, 0o666);
  }

  private accept(socket: net.Socket): void {
    let caller: Caller;
    try {
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (typeof fd !== 'number' || fd < 0) throw new Error('no fd');
      caller = this.opts.peerCred(fd);
    } catch {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(this.opts.idleMs ?? 120_000, () => socket.destroy());

    // Requests of one connection are answered in order, one at a time.
    let chain: Promise<void> = Promise.resolve();
    const lines = socket.pipe(split2({ maxLength: MAX_MESSAGE_BYTES }));
    lines.on('error', () => socket.destroy());
    lines.on('data', (line: string) => {
      if (!line.trim()) return;
      chain = chain.then(async () => {
        const response = await this.rpc.receiveJSON(line, caller);
        if (response && !socket.destroyed) socket.write(`${JSON.stringify(response)}\n`);
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await fs.rm(this.opts.socketPath, { force: true });
  }
}
