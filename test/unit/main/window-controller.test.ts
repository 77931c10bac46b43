// The Electron seam is mocked (vi.mock('electron')): these tests read what the window
// is created with and what its page is refused.
import { beforeEach, describe, expect, it, vi } from 'vitest';

interface Captured {
  windows: FakeWindow[];
  partitions: string[];
  protocolHandlers: Map<string, (req: Request) => Promise<Response> | Response>;
  permissionRequest?: (wc: unknown, permission: string, cb: (granted: boolean) => void) => void;
  permissionCheck?: () => boolean;
  devicePermission?: () => boolean;
  sessionEvents: Map<string, (e: { preventDefault(): void }) => void>;
}
const captured: Captured = { windows: [], partitions: [], protocolHandlers: new Map(), sessionEvents: new Map() };

class FakeContents {
  readonly events = new Map<string, (e: { preventDefault(): void }) => void>();
  openHandler?: (d: { url: string }) => { action: string };
  on(name: string, fn: (e: { preventDefault(): void }) => void): this {
    this.events.set(name, fn);
    return this;
  }
  setWindowOpenHandler(fn: (d: { url: string }) => { action: string }): void {
    this.openHandler = fn;
  }
}

class FakeWindow {
  readonly webContents = new FakeContents();
  readonly loaded: string[] = [];
  readonly once = vi.fn();
  readonly on = vi.fn();
  shown = 0;
  constructor(readonly options: { webPreferences: Record<string, unknown> }) {
    captured.windows.push(this);
  }
  loadURL(url: string): Promise<void> {
    this.loaded.push(url);
    return Promise.resolve();
  }
  isDestroyed(): boolean {
    return false;
  }
  isMinimized(): boolean {
    return false;
  }
  focusedNow = false;
  isFocused(): boolean {
    return this.focusedNow;
  }
  show(): void {
    this.shown += 1;
  }
  focus(): void {}
}

vi.mock('electron', () => ({
  BrowserWindow: FakeWindow,
  protocol: { registerSchemesAsPrivileged: vi.fn() },
  session: {
    fromPartition: (p: string) => {
      captured.partitions.push(p);
      return {
        protocol: { handle: (scheme: string, h: (req: Request) => Promise<Response>) => captured.protocolHandlers.set(scheme, h) },
        setPermissionRequestHandler: (h: Captured['permissionRequest']) => (captured.permissionRequest = h),
        setPermissionCheckHandler: (h: Captured['permissionCheck']) => (captured.permissionCheck = h),
        setDevicePermissionHandler: (h: Captured['devicePermission']) => (captured.devicePermission = h),
        on: (name: string, fn: (e: { preventDefault(): void }) => void) => captured.sessionEvents.set(name, fn),
      };
    },
  },
}));

const { WindowController, PARTITION } = await import('../../../main/window-controller.js');
const { registerAppSchemePrivileges } = await import('../../../main/app-scheme.js');
const electron = await import('electron');

beforeEach(() => {
  captured.windows.length = 0;
  captured.partitions.length = 0;
  captured.protocolHandlers.clear();
});

function open() {
  const wc = new WindowController({ preloadPath: '/opt/tunnelgate/dist/main/preload.cjs', rendererDir: '/opt/tunnelgate/dist/renderer', devTools: false });
  wc.show();
  const w = captured.windows[0];
  if (!w) throw new Error('no window created');
  return { wc, w };
}

const prevented = (fn: ((e: { preventDefault(): void }) => void) | undefined) => {
  const e = { preventDefault: vi.fn() };
  fn?.(e);
  return e.preventDefault.mock.calls.length === 1;
};

describe('WindowController', () => {
  it('creates the window sandboxed, isolated, without Node, with the preload, in its own in-memory session', () => {
    const { w } = open();
    expect(w.options.webPreferences).toMatchObject({
      preload: '/opt/tunnelgate/dist/main/preload.cjs',
      partition: PARTITION,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      devTools: false,
    });
    expect(PARTITION.startsWith('persist:')).toBe(false);
    expect(captured.partitions).toEqual([PARTITION]);
  });

  it('loads app://tunnelgate/index.html, served with the CSP by the session protocol handler', async () => {
    const { w } = open();
    expect(w.loaded).toEqual(['app://tunnelgate/index.html']);
    const handler = captured.protocolHandlers.get('app');
    expect(handler).toBeDefined();
    const r = await handler?.(new Request('app://tunnelgate/no-such-file.html'));
    expect(r?.status).toBe(404);
    expect(r?.headers.get('content-security-policy')).toMatch(/^default-src 'none'; script-src 'self';/);
  });

  it('blocks navigation, redirects, webviews and window.open', () => {
    const { w } = open();
    for (const ev of ['will-navigate', 'will-frame-navigate', 'will-redirect', 'will-attach-webview']) {
      expect(prevented(w.webContents.events.get(ev)), ev).toBe(true);
    }
    expect(w.webContents.openHandler?.({ url: 'https://example.com/' })).toEqual({ action: 'deny' });
  });

  it('denies every permission request and check, every device, every download', () => {
    open();
    const granted: boolean[] = [];
    for (const p of ['media', 'geolocation', 'notifications', 'openExternal', 'clipboard-read']) captured.permissionRequest?.({}, p, (g) => granted.push(g));
    expect(granted).toEqual([false, false, false, false, false]);
    expect(captured.permissionCheck?.()).toBe(false);
    expect(captured.devicePermission?.()).toBe(false);
    expect(prevented(captured.sessionEvents.get('will-download'))).toBe(true);
  });

  it('shows the window when its page is ready, and reuses it', () => {
    const { wc, w } = open();
    expect(w.shown).toBe(0);
    const [event, onReady] = w.once.mock.calls[0] as [string, () => void];
    expect(event).toBe('ready-to-show');
    onReady();
    expect(w.shown).toBe(1);
    wc.show();
    expect(captured.windows).toHaveLength(1);
    expect(w.shown).toBe(2);
  });

  it('knows whether its window has the focus (desktop notifications stay quiet then)', () => {
    const wc = new WindowController({ preloadPath: '/p.cjs', rendererDir: '/r', devTools: false });
    expect(wc.focused).toBe(false);
    wc.show();
    const w = captured.windows[0];
    expect(wc.focused).toBe(false);
    if (w) w.focusedNow = true;
    expect(wc.focused).toBe(true);
  });
});

describe('app:// scheme privileges', () => {
  it('standard and secure, CORS for module scripts; no CSP bypass, no fetch, no service workers', () => {
    registerAppSchemePrivileges();
    expect(electron.protocol.registerSchemesAsPrivileged).toHaveBeenCalledWith([
      { scheme: 'app', privileges: { standard: true, secure: true, corsEnabled: true } },
    ]);
  });
});
