// A window of ours: the status window (created when the tray asks for it, gone when
// closed; the tray stays) and the small prompt window. Its page is untrusted: sandboxed, context-isolated, no Node, served from
// app://tunnelgate in its own in-memory session, and refused everything it asks for.

import { BrowserWindow, session } from 'electron';
import type { Session, WebContents, WebPreferences } from 'electron';
import { START_URL } from './app-origin.js';
import type { Bounds } from './preferences.js';
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
  /** The page (default START_URL). */
  url?: string;
  title?: string;
  /** Default size, and the smallest (the prompt window is a fixed 400×600 tray pop-up). */
  width?: number;
  height?: number;
  minWidth?: number;
  minHeight?: number;
  /** A prompt: above other windows, not in the task bar. */
  popup?: boolean;
  /** Where it was last (electron-store), and where to save it when moved or resized. */
  bounds?: () => Bounds | undefined;
  saveBounds?: (b: Bounds) => void;
  /** Shown before the page paints: the theme's background, so dark does not flash white. */
  backgroundColor?: () => string;
}

/** The window sizes of issue 12: the prompt pop-up is 400×600. */
export const MAIN_WINDOW = { width: 1024, height: 720, minWidth: 400, minHeight: 360 } as const;
export const PROMPT_WINDOW = { width: 400, height: 600, minWidth: 360, minHeight: 420 } as const;

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

  get isOpen(): boolean {
    return !!this.window && !this.window.isDestroyed();
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
    const o = this.opts;
    const saved = o.bounds?.();
    const w = new BrowserWindow({
      title: o.title ?? 'tunnelgate',
      width: saved?.width ?? o.width ?? MAIN_WINDOW.width,
      height: saved?.height ?? o.height ?? MAIN_WINDOW.height,
      ...(saved ? { x: saved.x, y: saved.y } : {}),
      minWidth: o.minWidth ?? MAIN_WINDOW.minWidth,
      minHeight: o.minHeight ?? MAIN_WINDOW.minHeight,
      show: false,
      autoHideMenuBar: true,
      alwaysOnTop: o.popup ?? false,
      skipTaskbar: o.popup ?? false,
      backgroundColor: o.backgroundColor?.() ?? '#f6f7f9',
      webPreferences: secureWebPreferences(o.preloadPath, o.devTools),
    });
    hardenWebContents(w.webContents);
    if (o.saveBounds) {
      const save = o.saveBounds;
      const remember = (): void => {
        if (!w.isDestroyed() && !w.isMinimized() && !w.isMaximized()) save(w.getBounds());
      };
      w.on('moved', remember);
      w.on('resized', remember);
      w.on('close', remember);
    }
    w.once('ready-to-show', () => {
      w.show();
      w.focus();
    });
    w.on('closed', () => {
      if (this.window === w) this.window = undefined;
    });
    this.window = w;
    w.loadURL(o.url ?? START_URL).catch((e: unknown) => console.error('tunnelgate: cannot load the window:', e));
  }
}
