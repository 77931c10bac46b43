// electron-store behind main/preferences.ts: one JSON file, `ui-preferences.json`, in the
// user's config dir (app.getPath('userData')), written atomically. Values are checked on
// the way in by ipc-main.ts and on the way out by sanitizePreferences.

import Store from 'electron-store';
import { DEFAULT_PREFERENCES, Preferences } from './preferences.js';

export function openPreferences(): Preferences {
  const store = new Store<Record<string, unknown>>({
    name: 'ui-preferences',
    defaults: { theme: DEFAULT_PREFERENCES.theme, notifications: DEFAULT_PREFERENCES.notifications, windows: {} },
    // A broken file (hand-edited) starts over from the defaults rather than stopping the app.
    clearInvalidConfig: true,
  });
  return new Preferences(store);
}
