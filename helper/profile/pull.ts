// Remote pull: fetch a profile and its detached signature from an HTTPS server on an
// interval, with If-None-Match so an unchanged profile costs one 304. What the server
// sends is only a candidate: it is checked like any profiles.d file (signature mandatory,
// schema, rollback) by sources.ts, and becomes the cached copy (state dir, with its ETag)
// once it is in force. When the server is unreachable the cached copy stays in force.
//
// Transport rules: https only, also after a redirect (at most 3); bounded responses;
// a deadline on every request; the configured CA replaces the system's when given.
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { RemoteConfig } from './remote-config.js';
import { signatureUrl } from './remote-config.js';
import { MAX_PROFILE_BYTES } from './sources.js';

export const MAX_SIGNATURE_BYTES = 4096;
export const REQUEST_TIMEOUT_MS = 15_000;
const MAX_REDIRECTS = 3;
/** After a failure, try again sooner than the interval, but not hammering the server. */
const RETRY_AFTER_FAILURE_MS = 30_000;

export interface GetOptions {
  ca?: Buffer;
  etag?: string;
  maxBytes: number;
  timeoutMs?: number;
}

export type GetResult = { status: 'ok'; body: Buffer; etag?: string } | { status: 'not-modified' };

/** One GET over https, following https redirects only. Rejects with a one-line reason. */
export async function httpsGet(url: string, opts: GetOptions): Promise<GetResult> {
  let current = new URL(url);
  for (let hop = 0; ; hop++) {
    if (current.protocol !== 'https:') throw new Error(`refusing ${current.protocol.replace(':', '')}: only https is used`);
    const res = await request(current, opts);
    const status = res.statusCode ?? 0;
    if ([301, 302, 303, 307, 308].includes(status)) {
      res.resume();
      const location = res.headers.location;
      if (!location) throw new Error(`HTTP ${status} without a Location`);
      const next = new URL(location, current);
      if (next.protocol !== 'https:') throw new Error(`refusing a redirect to ${next.protocol.replace(':', '')} (${next.origin}): only https is followed`);
      if (hop >= MAX_REDIRECTS) throw new Error(`more than ${MAX_REDIRECTS} redirects`);
      current = next;
      continue;
    }
    if (status === 304) {
      res.resume();
      return { status: 'not-modified' };
    }
    if (status !== 200) {
      res.resume();
      throw new Error(`HTTP ${status} from ${current.href}`);
    }
    const body = await readBounded(res, opts.maxBytes, opts.timeoutMs ?? REQUEST_TIMEOUT_MS);
    const etag = res.headers.etag;
    return { status: 'ok', body, ...(etag ? { etag } : {}) };
  }
}

function request(url: URL, opts: GetOptions): Promise<IncomingMessage> {
  const timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const req = https.get(url, {
      headers: {
        accept: 'application/json, */*;q=0.5',
        'user-agent': 'tunnelgate-helper',
        ...(opts.etag ? { 'if-none-match': opts.etag } : {}),
      },
      ...(opts.ca ? { ca: opts.ca } : {}),
      timeout: timeoutMs,
      agent: false,
    });
    const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    req.once('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.once('error', (e) => {
      clearTimeout(deadline);
      reject(e);
    });
    req.once('response', (res) => {
      clearTimeout(deadline);
      resolve(res);
    });
  });
}

function readBounded(res: IncomingMessage, maxBytes: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      res.destroy();
      reject(new Error(`response of ${declared} bytes is larger than ${maxBytes}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const deadline = setTimeout(() => res.destroy(new Error(`body not received within ${timeoutMs / 1000} s`)), timeoutMs);
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) res.destroy(new Error(`response is larger than ${maxBytes} bytes`));
      else chunks.push(c);
    });
    res.once('error', (e) => {
      clearTimeout(deadline);
      reject(e);
    });
    res.once('end', () => {
      clearTimeout(deadline);
      resolve(Buffer.concat(chunks));
    });
    res.once('close', () => {
      clearTimeout(deadline);
      if (!res.complete) reject(new Error('connection closed before the whole response arrived'));
    });
  });
}

/** What the server served last, with its signature (or why there is none). */
export interface PulledCopy {
  url: string;
  bytes: Buffer;
  sig?: Buffer;
  sigError?: string;
  etag?: string;
  fetchedAt: string;
}

export interface PullerDeps {
  get?: typeof httpsGet;
  readCa?: (path: string) => Promise<Buffer>;
  /** The copy in force (cached in the state dir), whose ETag is sent as If-None-Match. */
  cached: () => { url?: string; bytes: Buffer; sig?: Buffer; etag?: string } | undefined;
  /** Something new to look at: a new copy, a copy gone back to the cached one, or a new failure. */
  onChange: (why: string) => void;
  onResult?: (r: { url: string; result: 'updated' | 'not-modified' | 'failed'; detail?: string }) => void;
  now?: () => Date;
}

export interface PullerView {
  config?: RemoteConfig;
  /** Newer than the cached copy (not yet in force, maybe never). */
  latest?: PulledCopy;
  error?: { message: string; since: string };
  polled: boolean;
}

/** Polls one URL on its interval. Never throws; failures are reported through view(). */
export class RemotePuller {
  private config: RemoteConfig | undefined;
  private latest: PulledCopy | undefined;
  private error: { message: string; since: string } | undefined;
  private polled = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private started = false;
  private generation = 0;

  constructor(private readonly deps: PullerDeps) {}

  view(): PullerView {
    return {
      ...(this.config ? { config: this.config } : {}),
      ...(this.latest ? { latest: this.latest } : {}),
      ...(this.error ? { error: this.error } : {}),
      polled: this.polled,
    };
  }

  /** New or changed configuration (undefined: no remote pull); polls at once when started. */
  configure(config: RemoteConfig | undefined): void {
    if (JSON.stringify(config) === JSON.stringify(this.config)) return;
    this.config = config;
    this.generation++;
    this.latest = undefined;
    this.error = undefined;
    this.polled = false;
    if (this.started) this.schedule(0);
  }

  start(): void {
    this.started = true;
    this.schedule(0);
  }

  stop(): void {
    this.started = false;
    clearTimeout(this.timer);
  }

  /** Poll now (also what the interval timer does). Concurrent calls share one poll. */
  poll(): Promise<void> {
    this.running ??= this.pollOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (!this.started || !this.config) return;
    this.timer = setTimeout(() => {
      void this.poll().then(() => {
        const cfg = this.config;
        if (cfg) this.schedule(this.error ? Math.min(cfg.intervalSeconds * 1000, RETRY_AFTER_FAILURE_MS) : cfg.intervalSeconds * 1000);
      });
    }, ms);
    this.timer.unref?.();
  }

  private async pollOnce(): Promise<void> {
    const cfg = this.config;
    if (!cfg) return;
    const gen = this.generation;
    const get = this.deps.get ?? httpsGet;
    const now = () => (this.deps.now?.() ?? new Date()).toISOString();
    const cached = this.deps.cached();
    const sameUrl = cached?.url === cfg.url;
    const before = this.candidateKey(cached);
    try {
      const ca = cfg.ca ? await (this.deps.readCa ?? readFile)(cfg.ca).catch((e: Error) => {
        throw new Error(`cannot read the CA file ${cfg.ca}: ${e.message}`);
      }) : undefined;
      const r = await get(cfg.url, { ...(ca ? { ca } : {}), ...(sameUrl && cached?.etag ? { etag: cached.etag } : {}), maxBytes: MAX_PROFILE_BYTES });
      if (gen !== this.generation) return;
      if (r.status === 'not-modified') {
        this.latest = undefined; // the server still serves the cached copy
      } else {
        let sig: Buffer | undefined;
        let sigError: string | undefined;
        try {
          const s = await get(signatureUrl(cfg.url), { ...(ca ? { ca } : {}), maxBytes: MAX_SIGNATURE_BYTES });
          if (s.status === 'ok') sig = s.body;
          else sigError = 'the server answered 304 without having been asked';
        } catch (e) {
          sigError = `cannot fetch ${signatureUrl(cfg.url)}: ${(e as Error).message}`;
        }
        if (gen !== this.generation) return;
        const same = sameUrl && cached !== undefined && cached.bytes.equals(r.body) && sig !== undefined && cached.sig?.equals(sig) === true;
        this.latest = same
          ? undefined
          : { url: cfg.url, bytes: r.body, ...(sig ? { sig } : {}), ...(sigError ? { sigError } : {}), ...(r.etag ? { etag: r.etag } : {}), fetchedAt: now() };
      }
      const hadError = this.error !== undefined;
      this.error = undefined;
      const first = !this.polled;
      this.polled = true;
      const result = this.candidateKey(cached) !== before ? 'updated' : 'not-modified';
      this.deps.onResult?.({ url: cfg.url, result });
      if (first || hadError || result === 'updated') this.deps.onChange(`pulled ${cfg.url} (${result})`);
    } catch (e) {
      if (gen !== this.generation) return;
      const message = (e as Error).message;
      const fresh = this.error?.message !== message;
      this.error = { message, since: this.error?.since ?? now() };
      this.polled = true;
      if (fresh) {
        this.deps.onResult?.({ url: cfg.url, result: 'failed', detail: message });
        this.deps.onChange(`pull of ${cfg.url} failed`);
      }
    }
  }

  /** What sources.ts would be offered: the latest copy, or else the cached one. */
  private candidateKey(cached: ReturnType<PullerDeps['cached']>): string {
    const c = this.latest ?? cached;
    return c ? `${c.bytes.toString('base64')}|${c.sig?.toString('base64') ?? this.latest?.sigError ?? ''}` : '';
  }
}
