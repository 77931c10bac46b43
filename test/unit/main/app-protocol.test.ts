import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAppUrl } from '../../../main/app-origin.js';
import { CONTENT_SECURITY_POLICY, createAppRequestHandler, resolveFile } from '../../../main/app-protocol.js';

let root: string;
let secret: string;
beforeAll(() => {
  const base = mkdtempSync(path.join(os.tmpdir(), 'tg-proto-'));
  root = path.join(base, 'renderer');
  mkdirSync(path.join(root, 'renderer'), { recursive: true });
  writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(path.join(root, 'style.css'), 'body{}');
  writeFileSync(path.join(root, 'renderer', 'app.js'), 'export {};');
  writeFileSync(path.join(root, 'renderer', 'app.js.map'), '{}');
  secret = path.join(base, 'secret.js');
  writeFileSync(secret, 'not for the page');
});
afterAll(() => rmSync(path.dirname(root), { recursive: true, force: true }));

const get = (url: string, method = 'GET') => createAppRequestHandler(root)({ url, method });

describe('app:// protocol handler', () => {
  it('serves our files with their type and the CSP on every response', async () => {
    for (const [url, type] of [
      ['app://tunnelgate/index.html', 'text/html; charset=utf-8'],
      ['app://tunnelgate/', 'text/html; charset=utf-8'],
      ['app://tunnelgate/style.css', 'text/css; charset=utf-8'],
      ['app://tunnelgate/renderer/app.js', 'text/javascript; charset=utf-8'],
    ] as const) {
      const r = await get(url);
      expect(r.status, url).toBe(200);
      expect(r.headers.get('content-type')).toBe(type);
      expect(r.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    }
    expect(await (await get('app://tunnelgate/renderer/app.js')).text()).toBe('export {};');
    const missing = await get('app://tunnelgate/nope.html');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
  });

  it('the CSP is the one the tray app promises', () => {
    expect(CONTENT_SECURITY_POLICY).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'none'; " +
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
  });

  it.each([
    'app://tunnelgate/../secret.js',
    'app://tunnelgate/%2e%2e/secret.js',
    'app://tunnelgate/renderer/%2e%2e%2f%2e%2e%2fsecret.js',
    'app://tunnelgate/..%5csecret.js',
    'app://tunnelgate/index.html%00.js',
    'app://tunnelgate/%E0%A4%A',
    'app://other/index.html',
    'file:///etc/passwd',
    'app://tunnelgate/renderer/app.js.map',
    'app://tunnelgate/renderer',
  ])('serves nothing for %s', async (url) => {
    const r = await get(url);
    expect(r.status).toBe(404);
    expect(await r.text()).toBe('not found');
  });

  it('never resolves outside the root', () => {
    expect(resolveFile(root, 'app://tunnelgate/%2e%2e/secret.js')).toBe(path.join(root, 'secret.js'));
    expect(resolveFile(root, 'app://tunnelgate/..%5csecret.js')).toBeUndefined();
  });

  it('only GET and HEAD', async () => {
    expect((await get('app://tunnelgate/index.html', 'POST')).status).toBe(405);
    const head = await get('app://tunnelgate/index.html', 'HEAD');
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });
});

describe('isAppUrl', () => {
  it('is app://tunnelgate and nothing else', () => {
    expect(isAppUrl('app://tunnelgate/index.html')).toBe(true);
    expect(isAppUrl('app://tunnelgate/')).toBe(true);
    for (const u of ['app://tunnelgate:1/', 'app://a@tunnelgate/', 'app://tunnelgatex/', 'http://tunnelgate/', 'not a url', '']) {
      expect(isAppUrl(u), u).toBe(false);
    }
  });
});
