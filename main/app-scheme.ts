// The app:// scheme in Electron: its privileges (before `ready`) and its handler (per
// session). What it serves is decided in main/app-protocol.ts.

import { protocol } from 'electron';
import type { Session } from 'electron';
import { APP_SCHEME } from './app-origin.js';
import { createAppRequestHandler } from './app-protocol.js';

/**
 * Must run before the app is ready, and only once for all schemes (a later call
 * replaces an earlier one).
 * - standard: real origin (app://tunnelgate), relative URLs resolve like http.
 * - secure: a secure context, like https.
 * - corsEnabled: `<script type="module">` is fetched in CORS mode; without it Chromium
 *   refuses module scripts from a custom scheme. Our responses send no
 *   Access-Control-Allow-Origin, so no other origin may read them.
 * Not granted: bypassCSP, supportFetchAPI (the CSP has connect-src 'none' anyway),
 * allowServiceWorkers, stream.
 */
export function registerAppSchemePrivileges(): void {
  protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, corsEnabled: true } }]);
}

/** Serves rootDir (dist/renderer) as app://tunnelgate/ in this session. */
export function serveAppScheme(ses: Session, rootDir: string): void {
  const handler = createAppRequestHandler(rootDir);
  ses.protocol.handle(APP_SCHEME, (request) => handler(request));
}
