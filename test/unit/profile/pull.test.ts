import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GetOptions, GetResult, PullerDeps } from '../../../helper/profile/pull.js';
import { httpsGet, RemotePuller } from '../../../helper/profile/pull.js';

const URL_ = 'https://p.example/corp.json';
const cfg = { url: URL_, intervalSeconds: 300 };

/** A fake server: answers by URL, records what was asked. */
function fakeGet(routes: Record<string, () => GetResult | Error>) {
  const calls: Array<{ url: string; etag?: string }> = [];
  const get = async (url: string, o: GetOptions): Promise<GetResult> => {
    calls.push({ url, ...(o.etag ? { etag: o.etag } : {}) });
    const r = routes[url]?.() ?? new Error('HTTP 404');
    if (r instanceof Error) throw r;
    return r;
  };
  return { get, calls };
}

function puller(get: PullerDeps['get'], cached?: ReturnType<PullerDeps['cached']>) {
  const changes: string[] = [];
  const results: string[] = [];
  const p = new RemotePuller({ get, cached: () => cached, onChange: (w) => changes.push(w), onResult: (r) => results.push(r.result) });
  p.configure(cfg);
  return { p, changes, results };
}

describe('RemotePuller', () => {
  const body = Buffer.from('{"profile":1}');
  const sig = Buffer.from('c2ln');

  it('fetches the profile and URL.sig, then offers them as the latest copy', async () => {
    const { get, calls } = fakeGet({ [URL_]: () => ({ status: 'ok', body, etag: '"e1"' }), [`${URL_}.sig`]: () => ({ status: 'ok', body: sig }) });
    const { p, changes, results } = puller(get);
    await p.poll();
    expect(calls).toEqual([{ url: URL_ }, { url: `${URL_}.sig` }]);
    expect(p.view().latest).toMatchObject({ url: URL_, bytes: body, sig, etag: '"e1"' });
    expect(changes).toHaveLength(1);
    expect(results).toEqual(['updated']);
  });

  it('sends the cached copy\'s ETag; a 304 means the cached copy is current', async () => {
    const { get, calls } = fakeGet({ [URL_]: () => ({ status: 'not-modified' }) });
    const { p } = puller(get, { url: URL_, bytes: body, sig, etag: '"e1"' });
    await p.poll();
    expect(calls).toEqual([{ url: URL_, etag: '"e1"' }]);
    expect(p.view()).toMatchObject({ polled: true });
    expect(p.view().latest).toBeUndefined();
    expect(p.view().error).toBeUndefined();
  });

  it('does not send an ETag cached for another URL', async () => {
    const { get, calls } = fakeGet({ [URL_]: () => ({ status: 'not-modified' }) });
    const { p } = puller(get, { url: 'https://old.example/x.json', bytes: body, etag: '"e1"' });
    await p.poll();
    expect(calls).toEqual([{ url: URL_ }]);
  });

  it('a 200 with the cached bytes is not news', async () => {
    const { get } = fakeGet({ [URL_]: () => ({ status: 'ok', body }), [`${URL_}.sig`]: () => ({ status: 'ok', body: sig }) });
    const { p, changes } = puller(get, { url: URL_, bytes: body, sig });
    await p.poll();
    await p.poll();
    expect(p.view().latest).toBeUndefined();
    expect(changes).toHaveLength(1); // the first poll only
  });

  it('once the fetched copy is cached (in force), the 304 that follows is not news', async () => {
    let served: GetResult = { status: 'ok', body, etag: '"e1"' };
    const { get, calls } = fakeGet({ [URL_]: () => served, [`${URL_}.sig`]: () => ({ status: 'ok', body: sig }) });
    const store: { cached?: ReturnType<PullerDeps['cached']> } = {};
    const changes: string[] = [];
    const results: string[] = [];
    const p = new RemotePuller({ get, cached: () => store.cached, onChange: (w) => changes.push(w), onResult: (r) => results.push(r.result) });
    p.configure(cfg);
    await p.poll();
    store.cached = { url: URL_, bytes: body, sig, etag: '"e1"' }; // what commit() does once it is in force
    served = { status: 'not-modified' };
    await p.poll();
    expect(calls.at(-1)).toEqual({ url: URL_, etag: '"e1"' });
    expect(changes).toHaveLength(1);
    expect(results).toEqual(['updated', 'not-modified']);
  });

  it('a missing signature is carried along as the reason (sources.ts refuses the copy)', async () => {
    const { get } = fakeGet({ [URL_]: () => ({ status: 'ok', body }) });
    const { p } = puller(get);
    await p.poll();
    expect(p.view().latest?.sigError).toBe(`cannot fetch ${URL_}.sig: HTTP 404`);
  });

  it('records an unreachable server once, keeps the time it started, and clears on success', async () => {
    let up = false;
    const { get } = fakeGet({ [URL_]: () => (up ? { status: 'not-modified' } : new Error('connect ECONNREFUSED 192.0.2.2:443')) });
    const { p, changes, results } = puller(get, { url: URL_, bytes: body, etag: '"e1"' });
    await p.poll();
    const since = p.view().error?.since;
    await p.poll();
    expect(p.view().error).toEqual({ message: 'connect ECONNREFUSED 192.0.2.2:443', since });
    expect(results).toEqual(['failed']);
    expect(changes).toHaveLength(1);
    up = true;
    await p.poll();
    expect(p.view().error).toBeUndefined();
    expect(changes).toHaveLength(2);
  });

  it('reconfiguring forgets what the old URL served', async () => {
    const { get } = fakeGet({ [URL_]: () => ({ status: 'ok', body }), [`${URL_}.sig`]: () => ({ status: 'ok', body: sig }) });
    const { p } = puller(get);
    await p.poll();
    p.configure({ url: 'https://q.example/other.json', intervalSeconds: 60 });
    expect(p.view()).toEqual({ config: { url: 'https://q.example/other.json', intervalSeconds: 60 }, polled: false });
  });
});

describe('httpsGet against a local HTTPS server', () => {
  let dir: string;
  let ca: Buffer;
  let server: https.Server;
  let plain: http.Server;
  let base: string;
  const seen: Array<{ url: string; inm?: string }> = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tunnelgate-tls-'));
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=tunnelgate test CA');
    ssl('req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    ssl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'san.ext');
    ca = readFileSync(join(dir, 'ca.pem'));
    plain = http.createServer((_q, s) => s.end('plain'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    const plainPort = (plain.address() as AddressInfo).port;
    server = https.createServer({ key: readFileSync(join(dir, 'srv.key')), cert: readFileSync(join(dir, 'srv.pem')) }, (req, res) => {
      seen.push({ url: req.url ?? '', ...(req.headers['if-none-match'] ? { inm: String(req.headers['if-none-match']) } : {}) });
      if (req.url === '/p.json') {
        if (req.headers['if-none-match'] === '"v1"') return void res.writeHead(304).end();
        return void res.writeHead(200, { etag: '"v1"' }).end('{"ok":true}');
      }
      if (req.url === '/to-https') return void res.writeHead(302, { location: '/p.json' }).end();
      if (req.url === '/to-http') return void res.writeHead(302, { location: `http://127.0.0.1:${plainPort}/p.json` }).end();
      if (req.url === '/big') return void res.writeHead(200).end(Buffer.alloc(5000, 'x'));
      if (req.url === '/slow') return; // never answers
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await new Promise((r) => plain?.close(r));
  });

  it('GETs with the given CA, returns the ETag, and gets a 304 for If-None-Match', async () => {
    expect(await httpsGet(`${base}/p.json`, { ca, maxBytes: 1000 })).toEqual({ status: 'ok', body: Buffer.from('{"ok":true}'), etag: '"v1"' });
    expect(await httpsGet(`${base}/p.json`, { ca, etag: '"v1"', maxBytes: 1000 })).toEqual({ status: 'not-modified' });
    expect(seen.slice(-1)).toEqual([{ url: '/p.json', inm: '"v1"' }]);
  });

  it('refuses a server its CA did not sign (the system roots do not know the test CA)', async () => {
    await expect(httpsGet(`${base}/p.json`, { maxBytes: 1000 })).rejects.toThrow(/self-signed|unable to (get|verify)/i);
  });

  it('follows a redirect to https, never to http', async () => {
    expect((await httpsGet(`${base}/to-https`, { ca, maxBytes: 1000 })).status).toBe('ok');
    await expect(httpsGet(`${base}/to-http`, { ca, maxBytes: 1000 })).rejects.toThrow(/refusing a redirect to http/);
    await expect(httpsGet('http://127.0.0.1/p.json', { maxBytes: 1000 })).rejects.toThrow(/only https/);
  });

  it('bounds the response size, fails on other statuses, and gives up after its timeout', async () => {
    await expect(httpsGet(`${base}/big`, { ca, maxBytes: 1000 })).rejects.toThrow(/larger than 1000/);
    await expect(httpsGet(`${base}/nope`, { ca, maxBytes: 1000 })).rejects.toThrow(/HTTP 404/);
    await expect(httpsGet(`${base}/slow`, { ca, maxBytes: 1000, timeoutMs: 300 })).rejects.toThrow(/no answer within 0.3 s/);
  });
});
