// The preload of our window: exposes ONE object, `window.tunnelgate`, of named
// functions typed from common/ipc.ts. Never ipcRenderer itself, never an IPC event:
// listeners get the payload only and return their own unsubscribe function.
//
// Why a .cts file: the window is sandboxed, and a sandboxed preload runs as a single
// CommonJS script whose `require` knows only a few modules ('electron' among them). It
// cannot `import` ESM nor require our other files. tsc emits this file alone as
// dist/main/preload.cjs (CommonJS even though package.json says "type": "module").
// So it imports only types from common/ipc.ts, and builds the channel names itself;
// the template-literal types below make tsc check that they match the contract.

// A CommonJS file under verbatimModuleSyntax: this is how it imports a value.
// eslint-disable-next-line @typescript-eslint/no-require-imports
import electron = require('electron');
import type {
  API_GLOBAL,
  InvokeArgs,
  InvokeChannel,
  InvokeName,
  InvokeResult,
  IpcResult,
  NotifyChannel,
  NotifyName,
  NotifyPayload,
  TunnelgateApi,
  Unsubscribe,
} from '../common/ipc.js';

const { contextBridge, ipcRenderer } = electron;

const invokeChannel = <K extends InvokeName>(name: K): InvokeChannel<K> => `tunnelgate:invoke:${name}`;
const notifyChannel = <K extends NotifyName>(name: K): NotifyChannel<K> => `tunnelgate:notify:${name}`;

function invoke<K extends InvokeName>(name: K): (...args: InvokeArgs<K>) => Promise<IpcResult<InvokeResult<K>>> {
  const channel = invokeChannel(name);
  return async (...args) => {
    try {
      return (await ipcRenderer.invoke(channel, ...args)) as IpcResult<InvokeResult<K>>;
    } catch (e) {
      // Main answers with tagged results; this is only reached if it has no handler.
      return { ok: false, error: { kind: 'internal', message: `${name}: ${e instanceof Error ? e.message : String(e)}` } };
    }
  };
}

function listen<K extends NotifyName>(name: K): (listener: (payload: NotifyPayload<K>) => void) => Unsubscribe {
  const channel = notifyChannel(name);
  return (listener) => {
    if (typeof listener !== 'function') throw new TypeError(`${name}: the listener must be a function`);
    const relay = (_event: unknown, payload: NotifyPayload<K>): void => listener(payload);
    ipcRenderer.on(channel, relay);
    return () => {
      ipcRenderer.removeListener(channel, relay);
    };
  };
}

const api: TunnelgateApi = {
  getStatus: invoke('getStatus'),
  getRules: invoke('getRules'),
  getEvents: invoke('getEvents'),
  getPrompts: invoke('getPrompts'),
  answerPrompt: invoke('answerPrompt'),
  getAudit: invoke('getAudit'),
  getDecisions: invoke('getDecisions'),
  revoke: invoke('revoke'),
  addApp: invoke('addApp'),
  explain: invoke('explain'),
  getApps: invoke('getApps'),
  pickProgram: invoke('pickProgram'),
  getPreferences: invoke('getPreferences'),
  setPreferences: invoke('setPreferences'),
  onStatusChanged: listen('statusChanged'),
  onRulesChanged: listen('rulesChanged'),
  onHelperUnavailable: listen('helperUnavailable'),
  onPromptsChanged: listen('promptsChanged'),
  onEventsAdded: listen('eventsAdded'),
  onRevealSection: listen('revealSection'),
  onPreferencesChanged: listen('preferencesChanged'),
};

const globalName: typeof API_GLOBAL = 'tunnelgate';
contextBridge.exposeInMainWorld(globalName, api);
