// What each call of the page does, in one place, for the Electron main process
// (main/index.ts) and for the development bridge that runs the same page against a real
// helper without Electron (test/lab/tray-bridge.ts). The page decides nothing: every call is
// passed on to the helper, which checks who asks (SO_PEERCRED) and what.
//
// Plain module: no Electron. The file dialog and the preferences come in as functions.

import type { InvokeHandlers, IpcResult, UiPreferences } from '../common/ipc.js';
import type { HelperConnection } from './helper-connection.js';

export interface HandlerDeps {
  /** Main's "choose a program" dialog: an absolute path, or null when cancelled. */
  pickProgram(): Promise<string | null>;
  preferences: { readonly ui: UiPreferences; update(changes: Partial<UiPreferences>): UiPreferences };
}

const ok = <T>(value: T): IpcResult<T> => ({ ok: true, value });

export function createInvokeHandlers(connection: HelperConnection, deps: HandlerDeps): InvokeHandlers {
  return {
    handleGetStatus: () => connection.status(),
    handleGetRules: () => connection.rules(),
    handleGetEvents: (query) => connection.recentEvents(query),
    handleGetPrompts: () => connection.pendingPrompts(),
    // The helper decides against this process's uid; the page only asks.
    handleAnswerPrompt: (id, decision, options) => connection.answer(id, decision, options),
    handleGetAudit: (query) => connection.audit(query),
    handleGetDecisions: () => connection.decisions(),
    handleRevoke: (target) => connection.revoke(target),
    handleAddApp: (request) => connection.addApp(request),
    handleExplain: (query) => connection.explain(query),
    handleGetApps: () => connection.apps(),
    handlePickProgram: async () => ok(await deps.pickProgram()),
    handleGetPreferences: async () => ok(deps.preferences.ui),
    handleSetPreferences: async (changes) => ok(deps.preferences.update(changes)),
  };
}
