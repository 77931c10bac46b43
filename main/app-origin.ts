// Where our own pages live: app://tunnelgate/… served by main/app-protocol.ts, never
// file://. IPC handlers answer only frames at this origin.

export const APP_SCHEME = 'app';
export const APP_HOST = 'tunnelgate';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
export const START_URL = `${APP_ORIGIN}/index.html`;
/** The small prompt window's page (400×600). */
export const PROMPT_URL = `${APP_ORIGIN}/prompt.html`;

/** True only for app://tunnelgate/… exactly: no other host, no port, no user info. */
export function isAppUrl(url: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  return u.protocol === `${APP_SCHEME}:` && u.host === APP_HOST && u.username === '' && u.password === '';
}
