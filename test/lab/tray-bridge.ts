// The development bridge (issue 12 part 6): the tray app's main process without Electron.
// It implements the preload's typed API (common/ipc.ts) with main's own modules
// (HelperConnection, createInvokeHandlers, the guarded ipc-main handlers) over a REAL
// helper's socket, as whatever user runs it; the e2e test runs it as an ordinary user it
// made up (setpriv), so the helper's SO_PEERCRED checks apply as they do to a desktop user.
//
//   node dist/test/lab/tray-bridge.js --run DIR [--pick PATH]
//
// stdin, one JSON per line: {"id": N, "name": "<invoke name>", "args": [...]}
// stdout, one JSON per line: {"id": N, "result": IpcResult} | {"notify": name, "payload": …}
//
// The one stand-in: `--pick PATH` is what the file dialog answers. Installed apps, allow
// {app} and explain {rule} are the helper's own methods.

import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { NotifyName } from '../../common/ipc.js';
import { INVOKE_CHANNELS } from '../../common/ipc.js';
import { HelperClient } from '../../common/node/client.js';
import { HelperConnection } from '../../main/helper-connection.js';
import { createInvokeHandlers } from '../../main/invoke-handlers.js';
import type { InvokeListener } from '../../main/ipc-main.js';
import { registerInvokeHandlers } from '../../main/ipc-main.js';
import { Preferences } from '../../main/preferences.js';

/** The page's frame as Electron would report it: our app:// page, top frame. */
const PAGE_FRAME = { url: 'app://tunnelgate/index.html', parent: null };

function main(): void {
  const { values } = parseArgs({ options: { run: { type: 'string' }, pick: { type: 'string' } } });
  if (!values.run) throw new Error('--run DIR is required');
  const runDir = values.run;
  const write = (msg: unknown): void => void process.stdout.write(`${JSON.stringify(msg)}\n`);

  const connection = new HelperConnection({ connect: () => HelperClient.connect(runDir), retryMs: 200, maxRetryMs: 1000, pollMs: 5000 });
  const store = new Map<string, unknown>();
  const preferences = new Preferences({ get: (k) => store.get(k), set: (k, v) => void store.set(k, v) });
  const handlers = createInvokeHandlers(connection, {
    pickProgram: async () => values.pick ?? null,
    preferences,
  });
  const listeners = new Map<string, InvokeListener>();
  registerInvokeHandlers({ handle: (channel, l) => void listeners.set(channel, l), removeHandler: (c) => void listeners.delete(c) }, handlers);

  const notify = (name: NotifyName, payload: unknown): void => write({ notify: name, payload });
  connection.subscribe((change) => notify(change.name, change.payload));
  preferences.onChange((p) => notify('preferencesChanged', p));

  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const req = JSON.parse(line) as { id: number; name: keyof typeof INVOKE_CHANNELS; args: unknown[] };
    const listener = listeners.get(INVOKE_CHANNELS[req.name]);
    if (!listener) return write({ id: req.id, result: { ok: false, error: { kind: 'internal', message: `no handler for ${req.name}` } } });
    void listener({ senderFrame: PAGE_FRAME }, ...req.args).then((result) => write({ id: req.id, result }));
  });
  rl.on('close', () => {
    connection.stop();
    process.exit(0);
  });
  connection.start();
  write({ notify: 'bridge.ready', payload: { uid: process.getuid?.() } });
}

if (process.argv[1] && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href) main();
