// Serves our pages at app://tunnelgate/… from one directory (dist/renderer), with the
// Content-Security-Policy on every response. Electron's protocol.handle('app', …)
// calls this (main/window-controller.ts); the renderer test serves the very same
// responses over a local http server.
//
// Plain module: no Electron. GET/HEAD only, no directory listings, nothing outside the
// root, only the file types a page of ours is made of.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isAppUrl } from './app-origin.js';

/** Nothing but our own files: no inline script or style, no network, no frames, no forms. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
};

export type ReadFile = (file: string) => Promise<Uint8Array<ArrayBuffer>>;

export type AppRequestHandler = (request: Pick<Request, 'url' | 'method'>) => Promise<Response>;

export function createAppRequestHandler(rootDir: string, readFile: ReadFile = async (f) => new Uint8Array(await fs.readFile(f))): AppRequestHandler {
  const root = path.resolve(rootDir);
  return async (request) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return plain(405, 'method not allowed');
    const file = resolveFile(root, request.url);
    if (!file) return plain(404, 'not found');
    const type = CONTENT_TYPES[path.extname(file)];
    if (!type) return plain(404, 'not found');
    let body: Uint8Array<ArrayBuffer>;
    try {
      body = await readFile(file);
    } catch {
      return plain(404, 'not found');
    }
    return new Response(request.method === 'HEAD' ? null : body, { status: 200, headers: headers(type) });
  };
}

/** The file a URL names under root, or undefined for anything else. */
export function resolveFile(root: string, url: string): string | undefined {
  if (!isAppUrl(url)) return undefined;
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(url).pathname);
  } catch {
    return undefined;
  }
  if (pathname.includes('\0') || pathname.includes('\\')) return undefined;
  if (pathname === '/' || pathname === '') pathname = '/index.html';
  const file = path.resolve(root, `.${path.posix.normalize(pathname)}`);
  return file.startsWith(root + path.sep) ? file : undefined;
}

function headers(contentType: string): Headers {
  return new Headers({
    'Content-Type': contentType,
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
  });
}

function plain(status: number, text: string): Response {
  return new Response(text, { status, headers: headers('text/plain; charset=utf-8') });
}
