// Start-up of the tray app's main process: only wiring. Each part is its own file;
// the ones with logic (helper-connection, ipc-main, app-protocol, tray-model,
// prompt-alerts) have no Electron in them and are unit-tested.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, ipcMain } from 'electron';
import { DEFAULT_RUN_DIR, HelperClient } from '../common/node/client.js';
import { registerAppSchemePrivileges } from './app-scheme.js';
import { electronNotifier } from './desktop-notifier.js';
import { HelperConnection } from './helper-connection.js';
import { forwardToRenderer, notifyRenderer, registerInvokeHandlers } from './ipc-main.js';
import { PromptAlerts } from './prompt-alerts.js';
import { TrayController } from './tray-controller.js';
import { WindowController } from './window-controller.js';
import { hardenWebContents } from './web-security.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/main
const runDir = process.env.TUNNELGATE_RUN || DEFAULT_RUN_DIR;

// Before `ready`: scheme privileges, sandbox for every renderer, one instance only.
registerAppSchemePrivileges();
app.enableSandbox();
if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('web-contents-created', (_event, contents) => hardenWebContents(contents));
  // A tray app: closing the window does not quit it.
  app.on('window-all-closed', () => undefined);

  // Not `await app.whenReady()`: Electron emits `ready` only after the ESM entry point
  // has finished evaluating, so a top-level await on it would never return.
  app.whenReady().then(start).catch((e: unknown) => {
    console.error('tunnelgate: cannot start:', e);
    app.exit(1);
  });
}

function start(): void {
  const connection = new HelperConnection({ connect: () => HelperClient.connect(runDir) });
  const windows = new WindowController({
    preloadPath: path.join(here, 'preload.cjs'),
    rendererDir: path.join(here, '..', 'renderer'),
    devTools: !app.isPackaged,
  });
  const openWindow = (): void => {
    windows.show();
    void connection.refresh();
  };
  // A page that is still loading shows its prompts first anyway.
  const openPrompts = (): void => {
    windows.show();
    notifyRenderer(windows.webContents, 'revealSection', 'prompts');
  };
  const tray = new TrayController({ openWindow, openPrompts, refresh: () => void connection.refresh(), quit: () => app.quit() });
  const alerts = new PromptAlerts(electronNotifier, openPrompts, { quiet: () => windows.focused });

  registerInvokeHandlers(ipcMain, {
    handleGetStatus: () => connection.status(),
    handleGetRules: () => connection.rules(),
    handleGetEvents: (query) => connection.recentEvents(query),
    handleGetPrompts: () => connection.pendingPrompts(),
    // The helper decides against this process's uid; the page only asks.
    handleAnswerPrompt: (id, decision, options) => connection.answer(id, decision, options),
    handleGetAudit: (query) => connection.audit(query),
  });
  connection.subscribe((change) => {
    if (change.name === 'promptsChanged') alerts.update(change.payload);
    if (change.name !== 'eventsAdded') tray.update(connection.state);
    forwardToRenderer(windows.webContents, change);
  });

  app.on('second-instance', openWindow);
  app.on('before-quit', () => {
    connection.stop();
    alerts.clear();
    tray.destroy();
  });

  tray.update(connection.state);
  connection.start();
}
