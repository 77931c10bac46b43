// Electron's Notification behind main/prompt-alerts.ts's DesktopNotifier. The handle keeps
// the Notification referenced until the prompt closes (an object collected early loses
// its click handler).

import { Notification } from 'electron';
import type { DesktopNotifier } from './prompt-alerts.js';

export const electronNotifier: DesktopNotifier = {
  isSupported: () => Notification.isSupported(),
  show(note) {
    // Critical: a prompt times out, so the notice stays until it is answered or closes.
    const n = new Notification({ title: note.title, body: note.body, urgency: 'critical', timeoutType: 'never', silent: false });
    n.on('click', () => note.onClick());
    n.show();
    return { close: () => n.close() };
  },
};
