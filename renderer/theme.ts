// Light and dark: the page follows prefers-color-scheme (which main sets from the
// preference through nativeTheme.themeSource); the preference is also written on the root
// element, so an override holds where the page runs outside Electron (the e2e browser).

import type { UiPreferences } from '../common/ipc.js';

export function applyTheme(prefs: Pick<UiPreferences, 'theme'>, root: HTMLElement = document.documentElement): void {
  root.dataset['theme'] = prefs.theme;
}
