// The one thing the preload (main/preload.cts) puts in the page.
import type { TunnelgateApi } from '../common/ipc.js';

declare global {
  interface Window {
    readonly tunnelgate: TunnelgateApi;
  }
}

export {};
