// Whether the desktop has a StatusNotifier host (main/prompt-surface.ts trayShown): one
// `gdbus call` to the session bus's NameHasOwner, with a timeout. No answer (no gdbus, no
// session bus) is `undefined`, not "no tray".

import { execFile } from 'node:child_process';

export const STATUS_NOTIFIER_WATCHER = 'org.kde.StatusNotifierWatcher';

/** `(true,)` → true, `(false,)` → false, anything else → undefined. */
export function parseNameHasOwner(stdout: string): boolean | undefined {
  const m = /^\((true|false),\)\s*$/.exec(stdout.trim());
  return m ? m[1] === 'true' : undefined;
}

export function statusNotifierWatcherPresent(timeoutMs = 2000): Promise<boolean | undefined> {
  const args = [
    'call', '--session', '--dest', 'org.freedesktop.DBus', '--object-path', '/org/freedesktop/DBus',
    '--method', 'org.freedesktop.DBus.NameHasOwner', STATUS_NOTIFIER_WATCHER,
  ];
  return new Promise((resolve) => {
    execFile('gdbus', args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout) => resolve(err ? undefined : parseNameHasOwner(stdout)));
  });
}
