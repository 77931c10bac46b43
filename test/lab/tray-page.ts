// The tray page in Chromium as Electron would run it, for the renderer's unit test (a
// stand-in main process with canned answers) and the e2e test (the development bridge,
// test/lab/tray-bridge.ts, in place of the main process). Both run the BUILT preload
// (dist/main/preload.cjs) against a stand-in `electron` on the IPC channels of
// common/ipc.ts, and serve the BUILT page (dist/renderer) with the very handler, and so
// the CSP, that serves app:// in Electron (main/app-protocol.ts).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createAppRequestHandler } from '../../main/app-protocol.js';
import { packageRoot } from './helper-proc.js';

export const ROOT = packageRoot();
export const RENDERER_DIR = path.join(ROOT, 'dist/renderer');
export const PRELOAD = path.join(ROOT, 'dist/main/preload.cjs');
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

export interface StandInConfig {
  invokeChannels: Record<string, string>;
  notifyChannels: Record<string, string>;
  /**
   * What invoke() answers, per call name. Absent: every call goes to the page's
   * `__bridgeInvoke(name, args)` (a Playwright binding to the bridge, outside the page's CSP).
   */
  answers?: Record<string, unknown>;
}

/** What the stand-in leaves in the page (`globalThis.__standIn`) for a test to drive and read. */
export interface StandIn {
  electron: unknown;
  /** Every invoke() of the preload, by call name, arguments cloned. */
  calls: { name: string; args: unknown[] }[];
  /** `DIRECTIVE BLOCKED-URI` of every securitypolicyviolation the page raised. */
  violations: string[];
  /** Delivers a notification to the preload's listeners of its channel. */
  emit(name: string, payload: unknown): void;
  listenerCount(name: string): number;
}

/**
 * Runs in the page before anything else (`page.addInitScript(installStandIn, cfg)`:
 * serialized by Playwright, so no closures). Plays Electron for the preload: an
 * ipcRenderer whose invoke() answers like our main process on its channels, and a
 * contextBridge that puts the API on the window.
 */
export function installStandIn(cfg: StandInConfig): void {
  type Listener = (event: unknown, payload: unknown) => void;
  const g = globalThis as unknown as Record<string, unknown> & {
    __bridgeInvoke(name: string, args: unknown[]): Promise<unknown>;
    addEventListener(type: string, fn: (e: { violatedDirective: string; blockedURI: string }) => void): void;
  };
  const byChannel = new Map(Object.entries(cfg.invokeChannels).map(([name, channel]) => [channel, name]));
  const listeners = new Map<string, Set<Listener>>();
  const calls: StandIn['calls'] = [];
  const violations: string[] = [];
  g.addEventListener('securitypolicyviolation', (e) => violations.push(`${e.violatedDirective} ${e.blockedURI}`));
  const ipcRenderer = {
    invoke(channel: string, ...args: unknown[]): Promise<unknown> {
      const name = byChannel.get(channel);
      if (!name) return Promise.reject(new Error(`No handler registered for '${channel}'`));
      calls.push({ name, args: structuredClone(args) });
      return cfg.answers ? Promise.resolve(structuredClone(cfg.answers[name])) : g.__bridgeInvoke(name, args);
    },
    on(channel: string, fn: Listener): void {
      let set = listeners.get(channel);
      if (!set) listeners.set(channel, (set = new Set()));
      set.add(fn);
    },
    removeListener(channel: string, fn: Listener): void {
      listeners.get(channel)?.delete(fn);
    },
  };
  const contextBridge = {
    exposeInMainWorld(key: string, api: Record<string, unknown>): void {
      Object.defineProperty(g, key, { value: Object.freeze({ ...api }), writable: false, configurable: false, enumerable: true });
    },
  };
  const standIn: StandIn = {
    electron: { ipcRenderer, contextBridge },
    calls,
    violations,
    emit(name, payload) {
      // What Electron hands a listener first: an IpcRendererEvent. It must not reach the page.
      const event = { sender: ipcRenderer, senderId: 0, ports: [] };
      for (const fn of listeners.get(cfg.notifyChannels[name] ?? '') ?? []) fn(event, structuredClone(payload));
    },
    listenerCount(name) {
      return listeners.get(cfg.notifyChannels[name] ?? '')?.size ?? 0;
    },
  };
  g['__standIn'] = standIn;
}

/** The built preload, run as Electron runs a sandboxed preload: CommonJS with a `require` that knows 'electron'. */
export function preloadScript(): string {
  const source = readFileSync(PRELOAD, 'utf8');
  return `(function (require, exports, module) {\n${source}\n})(function (name) {
  if (name === 'electron') return globalThis.__standIn.electron;
  throw new Error('a sandboxed preload cannot require ' + name);
}, {}, { exports: {} });`;
}

/** Serves dist/renderer on 127.0.0.1 (a free port) with the very handler (and CSP) Electron's app:// uses. */
export async function servePage(): Promise<{ base: string; close(): Promise<void> }> {
  const handle = createAppRequestHandler(RENDERER_DIR);
  const server = http.createServer((req, res) => {
    void handle({ url: `app://tunnelgate${req.url ?? '/'}`, method: req.method ?? 'GET' }).then(async (r) => {
      res.writeHead(r.status, Object.fromEntries(r.headers));
      res.end(Buffer.from(await r.arrayBuffer()));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
