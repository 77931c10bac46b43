// The status window: created when the tray asks for it, gone when closed (the tray
// stays). Its page is untrusted: sandboxed, context-isolated, no Node, served from
// app://tunnelgate in its own in-memory session, and refused everything it asks for.

import { BrowserWindow, session } from 'electron';
import type { Session, WebContents, WebPreferences } from 'electron';
import { START_URL } from './app-origin.js';
import { serveAppScheme } from './app-scheme.js';
import { hardenSession, hardenWebContents } from './web-security.js';

/** In memory (no `persist:` prefix): nothing of the page's is written to disk. */
export const PARTITION = 'tunnelgate-ui';

export interface WindowControllerOptions {
  /** dist/main/preload.cjs */
  preloadPath: string;
  /** dist/renderer, served as app://tunnelgate/ */
  rendererDir: string;
  devTools: boolean;
}

export function secureWebPreferences(preloadPath: string, devTools: boolean): WebPreferences {
  return {
    preload: preloadPath,
    partition: PARTITION,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    experimentalFeatures: false,
    webviewTag: false,
    navigateOnDragDrop: false,
    safeDialogs: true,
    spellcheck: false,
    devTools,
  };
}

export class WindowController {
  private window: BrowserWindow | undefined;
  private ses: Session | undefined;

  constructor(private readonly opts: WindowControllerOptions) {}

  /** The page's WebContents while the window exists, for notifications. */
  get webContents(): WebContents | undefined {
    const w = this.window;
    return w && !w.isDestroyed() ? w.webContents : undefined;
  }

  /** The window exists and has the keyboard focus. */
  get focused(): boolean {
    const w = this.window;
    return !!w && !w.isDestroyed() && w.isFocused();
  }

  show(): void {
    const w = this.window;
    if (!w || w.isDestroyed()) {
      this.create(); // shows itself once its page is ready
      return;
    }
    if (w.isMinimized()) w.restore();
    w.show();
    w.focus();
  }

  close(): void {
    if (this.window && !this.window.isDestroyed()) this.window.close();
  }

  private session(): Session {
    if (!this.ses) {
      this.ses = session.fromPartition(PARTITION);
      hardenSession(this.ses);
      serveAppScheme(this.ses, this.opts.rendererDir);
    }
    return this.ses;
  }

  private create(): void {
    this.session();
    const w = new BrowserWindow({
      title: 'tunnelgate',
      width: 820,
      height: 720,
      minWidth: 480,
      minHeight: 360,
      show: false,
      autoHideMenuBar: true,
      backgroundColor: '#f6f7f9',
      webPreferences: secureWebPreferences(this.opts.preloadPath, this.opts.devTools),
    });
    hardenWebContents(w.webContents);
    w.once('ready-to-show', () => {
      w.show();
      w.focus();
    });
    w.on('closed', () => {
      if (this.window === w) this.window = undefined;
    });
    this.window = w;
    w.loadURL(START_URL).catch((e: unknown) => console.error('tunnelgate: cannot load the window:', e));
  }
}
