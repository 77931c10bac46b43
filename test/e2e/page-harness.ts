// The tray page in Chromium as Electron would run it (test/lab/tray-page.ts), but with the
// development bridge (test/lab/tray-bridge.ts) in place of Electron's main process: the
// stand-in `electron`'s ipcRenderer forwards every call to the bridge (a Playwright
// binding: Node side, outside the page's CSP), and the bridge's notifications are
// delivered to the preload's listeners.
import type { BrowserContext, Page } from 'playwright-core';
import { INVOKE_CHANNELS, NOTIFY_CHANNELS } from '../../common/ipc.js';
import { installStandIn, preloadScript } from '../lab/tray-page.js';
import type { StandIn } from '../lab/tray-page.js';

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
    .evaluate(([n, p]) => (globalThis as unknown as { __standIn: StandIn }).__standIn.emit(n, p), [name, payload] as const)
    .catch(() => undefined);
}
