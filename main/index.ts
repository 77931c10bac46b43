// Start-up of the tray app's main process: only wiring. Each part is its own file;
// the ones with logic (helper-connection, invoke-handlers, ipc-main, app-protocol,
// tray-model, prompt-alerts, prompt-surface, preferences) have no Electron in them and
// are unit-tested.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, dialog, ipcMain, nativeTheme } from 'electron';
import type { PromptView } from '../common/api.js';
import { DEFAULT_RUN_DIR, HelperClient } from '../common/node/client.js';
import { PROMPT_URL } from './app-origin.js';
import { registerAppSchemePrivileges } from './app-scheme.js';
import { electronNotifier } from './desktop-notifier.js';
import { HelperConnection } from './helper-connection.js';
import { createInvokeHandlers } from './invoke-handlers.js';
import { forwardToRenderer, notifyRenderer, registerInvokeHandlers } from './ipc-main.js';
import { openPreferences } from './preference-store.js';
import { PromptAlerts } from './prompt-alerts.js';
import { notifyPrompts, promptWindowAction, trayShown } from './prompt-surface.js';
import { TrayController } from './tray-controller.js';
import { statusNotifierWatcherPresent } from './tray-presence.js';
import { PROMPT_WINDOW, WindowController } from './window-controller.js';
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

/** The background a window shows before its page paints (style.css's --bg). */
const background = (): string => (nativeTheme.shouldUseDarkColors ? '#16191d' : '#f6f7f9');

async function start(): Promise<void> {
  const preferences = openPreferences();
  nativeTheme.themeSource = preferences.ui.theme;
  const withTray = trayShown(process.env, await statusNotifierWatcherPresent());

  const connection = new HelperConnection({ connect: () => HelperClient.connect(runDir) });
  const common = { preloadPath: path.join(here, 'preload.cjs'), rendererDir: path.join(here, '..', 'renderer'), devTools: !app.isPackaged, backgroundColor: background };
  const windows = new WindowController({
    ...common,
    bounds: () => preferences.bounds('main'),
    saveBounds: (b) => preferences.saveBounds('main', b),
  });
  const promptWindow = new WindowController({
    ...common,
    ...PROMPT_WINDOW,
    url: PROMPT_URL,
    title: 'tunnelgate: a program asks for the tunnel',
    popup: true,
    bounds: () => preferences.bounds('prompt'),
    saveBounds: (b) => preferences.saveBounds('prompt', b),
  });
  const pages = () => [windows.webContents, promptWindow.webContents];

  const openWindow = (): void => {
    windows.show();
    void connection.refresh();
  };
  // A page that is still loading shows its prompts first anyway.
  const openPrompts = (): void => {
    windows.show();
    notifyRenderer(windows.webContents, 'revealSection', 'prompts');
  };
  const tray = withTray
    ? new TrayController({ openWindow, openPrompts, refresh: () => void connection.refresh(), quit: () => app.quit() })
    : undefined;
  const alerts = new PromptAlerts(electronNotifier, () => promptWindow.show(), {
    quiet: () => windows.focused || promptWindow.focused,
    enabled: () => notifyPrompts(preferences.ui.notifications, withTray),
  });
  const seenPrompts = new Set<string>();
  const followPrompts = (prompts: PromptView[]): void => {
    const action = promptWindowAction(prompts, seenPrompts, promptWindow.isOpen);
    for (const p of prompts) seenPrompts.add(p.id);
    if (action === 'open') promptWindow.show();
    if (action === 'close') promptWindow.close();
    alerts.update(prompts);
  };

  registerInvokeHandlers(
    ipcMain,
    createInvokeHandlers(connection, {
      pickProgram: async () => {
        const r = await dialog.showOpenDialog({ title: 'Choose a program', defaultPath: '/usr/bin', properties: ['openFile', 'dontAddToRecent'] });
        return r.canceled ? null : (r.filePaths[0] ?? null);
      },
      preferences,
    }),
  );
  preferences.onChange((ui) => {
    nativeTheme.themeSource = ui.theme;
    for (const page of pages()) notifyRenderer(page, 'preferencesChanged', ui);
  });
  connection.subscribe((change) => {
    if (change.name === 'promptsChanged') followPrompts(change.payload);
    if (change.name !== 'eventsAdded') tray?.update(connection.state);
    for (const page of pages()) forwardToRenderer(page, change);
  });

  app.on('second-instance', openWindow);
  app.on('before-quit', () => {
    connection.stop();
    alerts.clear();
    tray?.destroy();
  });

  tray?.update(connection.state);
  // Without a tray icon, the window is how the app is reached at all.
  if (!tray) windows.show();
  connection.start();
}
