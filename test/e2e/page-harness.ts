// The tray page in Chromium as Electron would run it, but with the development bridge
// (test/lab/tray-bridge.ts) in place of Electron's main process: the BUILT preload
// (dist/main/preload.cjs) runs against a stand-in `electron` whose ipcRenderer forwards
// every call to the bridge (a Playwright binding: Node side, outside the page's CSP), and
// the bridge's notifications are delivered to the preload's listeners.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { INVOKE_CHANNELS, NOTIFY_CHANNELS } from '../../common/ipc.js';
import { createAppRequestHandler } from '../../main/app-protocol.js';
import { packageRoot } from '../lab/helper-proc.js';

export const ROOT = packageRoot();
export const RENDERER_DIR = path.join(ROOT, 'dist/renderer');
export const PRELOAD = path.join(ROOT, 'dist/main/preload.cjs');
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

interface StandInConfig {
  invokeChannels: Record<string, string>;
  notifyChannels: Record<string, string>;
}

/** Runs in the page first (serialized: no closures). `__bridgeInvoke` is the Playwright binding. */
function installStandIn(cfg: StandInConfig): void {
  type Listener = (event: unknown, payload: unknown) => void;
  const g = globalThis as unknown as Record<string, unknown> & { __bridgeInvoke(name: string, args: unknown[]): Promise<unknown> };
  const byChannel = new Map(Object.entries(cfg.invokeChannels).map(([name, channel]) => [channel, name]));
  const listeners = new Map<string, Set<Listener>>();
  const ipcRenderer = {
    invoke(channel: string, ...args: unknown[]): Promise<unknown> {
      const name = byChannel.get(channel);
      if (!name) return Promise.reject(new Error(`No handler registered for '${channel}'`));
      return g.__bridgeInvoke(name, args);
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
  g['__standIn'] = {
    electron: { ipcRenderer, contextBridge },
    emit(name: string, payload: unknown) {
      const event = { sender: ipcRenderer, senderId: 0, ports: [] };
      for (const fn of listeners.get(cfg.notifyChannels[name] ?? '') ?? []) fn(event, payload);
    },
  };
}

function preloadScript(): string {
  const source = readFileSync(PRELOAD, 'utf8');
  return `(function (require, exports, module) {\n${source}\n})(function (name) {
  if (name === 'electron') return globalThis.__standIn.electron;
  throw new Error('a sandboxed preload cannot require ' + name);
}, {}, { exports: {} });`;
}

/** Serves dist/renderer with the very handler (and CSP) Electron's app:// uses. */
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

export interface BridgeLink {
  invoke(name: string, args: unknown[]): Promise<unknown>;
}

/** A page of ours in `context`, wired to the bridge; returns it with the errors it logs. */
export async function openTrayPage(context: BrowserContext, url: string, bridge: BridgeLink): Promise<{ page: Page; errors: string[] }> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
  });
  await page.exposeFunction('__bridgeInvoke', (name: string, args: unknown[]) => bridge.invoke(name, args));
  await page.addInitScript(installStandIn, { invokeChannels: { ...INVOKE_CHANNELS }, notifyChannels: { ...NOTIFY_CHANNELS } });
  await page.addInitScript({ content: preloadScript() });
  const r = await page.goto(url);
  if (r?.status() !== 200) throw new Error(`${url}: HTTP ${r?.status()}`);
  return { page, errors };
}

/** Delivers a notification of the bridge to a page's preload listeners. */
export async function emitTo(page: Page, name: string, payload: unknown): Promise<void> {
  if (page.isClosed()) return;
  await page
    .evaluate(([n, p]) => (globalThis as unknown as { __standIn: { emit(n: string, p: unknown): void } }).__standIn.emit(n, p), [name, payload] as const)
    .catch(() => undefined);
}
