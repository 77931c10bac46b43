// The renderer is untrusted (Electron security checklist): whatever it asks for, the
// answer is no. No permissions, no devices, no downloads, no navigation away from our
// page, no new windows, no <webview>.
//
// Electron is imported for types only; the objects are passed in, so tests hand in
// stand-ins.

import type { Session, WebContents } from 'electron';

/** Session-wide refusals, for the session our window runs in. */
export function hardenSession(ses: Pick<Session, 'setPermissionRequestHandler' | 'setPermissionCheckHandler' | 'setDevicePermissionHandler' | 'on'>): void {
  ses.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  ses.setPermissionCheckHandler(() => false);
  ses.setDevicePermissionHandler(() => false);
  ses.on('will-download', (event) => event.preventDefault());
}

/** Per-page refusals; main/index.ts applies them to every WebContents Electron creates. */
export function hardenWebContents(contents: Pick<WebContents, 'on' | 'setWindowOpenHandler'>): void {
  // Our page never navigates; loadURL() from main does not raise these events.
  contents.on('will-navigate', (event) => event.preventDefault());
  contents.on('will-frame-navigate', (event) => event.preventDefault());
  contents.on('will-redirect', (event) => event.preventDefault());
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
}
