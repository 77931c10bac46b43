// The preferences card: theme (system, light, dark) and desktop notifications (auto: only
// where no tray icon is shown; always; never). Kept by main in electron-store.

import type { IpcResult, UiPreferences } from '../common/ipc.js';

export interface PreferencesApi {
  setPreferences(changes: Partial<UiPreferences>): Promise<IpcResult<UiPreferences>>;
}

export class PreferencesView {
  constructor(
    private readonly form: HTMLElement,
    private readonly status: HTMLElement,
    private readonly api: PreferencesApi,
    private readonly applied: (p: UiPreferences) => void,
  ) {
    for (const input of form.querySelectorAll<HTMLInputElement>('input[type="radio"]')) {
      input.addEventListener('change', () => {
        if (!input.checked) return;
        const change: Partial<UiPreferences> =
          input.name === 'pref-theme' ? { theme: input.value as UiPreferences['theme'] } : { notifications: input.value as UiPreferences['notifications'] };
        void this.api.setPreferences(change).then((r) => {
          if (r.ok) {
            this.status.textContent = 'Saved.';
            this.show(r.value);
            this.applied(r.value);
          } else {
            this.status.textContent = `Not saved: ${r.error.message}`;
          }
        });
      });
    }
  }

  show(p: UiPreferences): void {
    for (const input of this.form.querySelectorAll<HTMLInputElement>('input[type="radio"]')) {
      input.checked = input.name === 'pref-theme' ? input.value === p.theme : input.value === p.notifications;
    }
  }
}
