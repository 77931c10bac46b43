import { describe, expect, it, vi } from 'vitest';
import { INVOKE_CHANNELS, NOTIFY_CHANNELS } from '../../../common/ipc.js';
import type { InvokeHandlers } from '../../../common/ipc.js';
import { forwardToRenderer, handlerName, notifyRenderer, registerInvokeHandlers } from '../../../main/ipc-main.js';
import type { InvokeEvent, InvokeListener, IpcMainSeam, NotifyTarget, SenderFrame } from '../../../main/ipc-main.js';
import { statusReport } from './fixtures.js';

/** The Electron seam: ipcMain as the code under test sees it. */
class FakeIpcMain implements IpcMainSeam {
  readonly handlers = new Map<string, InvokeListener>();
  handle(channel: string, listener: InvokeListener): void {
    if (this.handlers.has(channel)) throw new Error(`second handler for ${channel}`);
    this.handlers.set(channel, listener);
  }
  removeHandler(channel: string): void {
    this.handlers.delete(channel);
  }
  invoke(channel: string, event: InvokeEvent, ...args: unknown[]): Promise<unknown> {
    const h = this.handlers.get(channel);
    if (!h) throw new Error(`no handler for ${channel}`);
    return h(event, ...args);
  }
}

const frame = (url: string, parent: SenderFrame | null = null): SenderFrame => ({ url, parent });
const ours = { senderFrame: frame('app://tunnelgate/index.html') };

function setup() {
  const ipc = new FakeIpcMain();
  const status = statusReport();
  const handlers = {
    handleGetStatus: vi.fn(async () => ({ ok: true as const, value: status })),
    handleGetRules: vi.fn(async () => ({ ok: true as const, value: { rules: [], userPrompts: 'allow' as const } })),
    handleGetEvents: vi.fn(async () => ({ ok: true as const, value: [] })),
  } satisfies InvokeHandlers;
  const log: string[] = [];
  const undo = registerInvokeHandlers(ipc, handlers, { log: (m) => log.push(m) });
  return { ipc, handlers, status, log, undo };
}

describe('registerInvokeHandlers', () => {
  it('registers exactly one guarded handler per call of the contract, on its channel', () => {
    const { ipc, undo } = setup();
    expect([...ipc.handlers.keys()].sort()).toEqual(['tunnelgate:invoke:getEvents', 'tunnelgate:invoke:getRules', 'tunnelgate:invoke:getStatus']);
    undo();
    expect(ipc.handlers.size).toBe(0);
  });

  it('derives handler names from call names', () => {
    expect(handlerName('getStatus')).toBe('handleGetStatus');
    expect(handlerName('getEvents')).toBe('handleGetEvents');
  });

  it('answers our own page with the handler result', async () => {
    const { ipc, handlers, status } = setup();
    expect(await ipc.invoke(INVOKE_CHANNELS.getStatus, ours)).toEqual({ ok: true, value: status });
    expect(await ipc.invoke(INVOKE_CHANNELS.getEvents, ours, { afterSeq: 3, limit: 50 })).toEqual({ ok: true, value: [] });
    expect(handlers.handleGetEvents).toHaveBeenCalledWith({ afterSeq: 3, limit: 50 });
    expect(await ipc.invoke(INVOKE_CHANNELS.getEvents, ours)).toEqual({ ok: true, value: [] });
  });

  it.each([
    ['another site', frame('https://evil.example/index.html')],
    ['a file:// page', frame('file:///usr/lib/tunnelgate/resources/app.asar/dist/renderer/index.html')],
    ['another app:// host', frame('app://evil/index.html')],
    ['our host with a port', frame('app://tunnelgate:8080/index.html')],
    ['our host behind user info', frame('app://x@tunnelgate/index.html')],
    ['a look-alike host', frame('app://tunnelgate.evil/index.html')],
    ['about:blank', frame('about:blank')],
    ['a subframe inside our page', frame('app://tunnelgate/frame.html', frame('app://tunnelgate/index.html'))],
    ['no frame (navigated away or gone)', null],
  ])('refuses %s, and never calls the handler', async (_what, senderFrame) => {
    const { ipc, handlers, log } = setup();
    for (const channel of Object.values(INVOKE_CHANNELS)) {
      expect(await ipc.invoke(channel, { senderFrame })).toEqual({
        ok: false,
        error: { kind: 'forbidden', message: expect.stringMatching(/not allowed from this page$/) as unknown },
      });
    }
    expect(handlers.handleGetStatus).not.toHaveBeenCalled();
    expect(handlers.handleGetRules).not.toHaveBeenCalled();
    expect(handlers.handleGetEvents).not.toHaveBeenCalled();
    expect(log).toHaveLength(3);
  });

  it.each([
    ['getStatus with an argument', INVOKE_CHANNELS.getStatus, [1]],
    ['getRules with an argument', INVOKE_CHANNELS.getRules, [{}]],
    ['getEvents with two arguments', INVOKE_CHANNELS.getEvents, [{}, {}]],
    ['getEvents with an array', INVOKE_CHANNELS.getEvents, [[]]],
    ['getEvents with null', INVOKE_CHANNELS.getEvents, [null]],
    ['getEvents with a string', INVOKE_CHANNELS.getEvents, ['{"limit":5}']],
    ['getEvents with an unknown key', INVOKE_CHANNELS.getEvents, [{ limit: 5, all: true }]],
    ['getEvents with a limit of 0', INVOKE_CHANNELS.getEvents, [{ limit: 0 }]],
    ['getEvents with a limit over 1000', INVOKE_CHANNELS.getEvents, [{ limit: 1001 }]],
    ['getEvents with a fractional limit', INVOKE_CHANNELS.getEvents, [{ limit: 2.5 }]],
    ['getEvents with a string limit', INVOKE_CHANNELS.getEvents, [{ limit: '5' }]],
    ['getEvents with a negative afterSeq', INVOKE_CHANNELS.getEvents, [{ afterSeq: -1 }]],
    ['getEvents with a class instance', INVOKE_CHANNELS.getEvents, [new Date()]],
  ])('refuses %s from our own page', async (_what, channel, args) => {
    const { ipc, handlers } = setup();
    expect(await ipc.invoke(channel, ours, ...args)).toEqual({
      ok: false,
      error: { kind: 'bad-request', message: expect.stringMatching(/invalid arguments$/) as unknown },
    });
    expect(handlers.handleGetStatus).not.toHaveBeenCalled();
    expect(handlers.handleGetRules).not.toHaveBeenCalled();
    expect(handlers.handleGetEvents).not.toHaveBeenCalled();
  });

  it('a handler that throws becomes an "internal" result, never a thrown error', async () => {
    const { ipc, handlers } = setup();
    handlers.handleGetRules.mockRejectedValueOnce(new Error('bug'));
    const spy = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      expect(await ipc.invoke(INVOKE_CHANNELS.getRules, ours)).toEqual({ ok: false, error: { kind: 'internal', message: 'getRules failed: bug' } });
    } finally {
      spy.mockRestore();
    }
  });
});

class FakeContents implements NotifyTarget {
  sent: unknown[][] = [];
  destroyed = false;
  constructor(public url = 'app://tunnelgate/index.html') {}
  send(channel: string, ...args: unknown[]): void {
    this.sent.push([channel, ...args]);
  }
  getURL(): string {
    return this.url;
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
}

describe('notifyRenderer', () => {
  it('sends the payload on the notification channel of our page', () => {
    const c = new FakeContents();
    const s = statusReport();
    expect(notifyRenderer(c, 'statusChanged', s)).toBe(true);
    expect(forwardToRenderer(c, { name: 'helperUnavailable', payload: { message: 'gone', retryInMs: 1000 } })).toBe(true);
    expect(c.sent).toEqual([
      [NOTIFY_CHANNELS.statusChanged, s],
      ['tunnelgate:notify:helperUnavailable', { message: 'gone', retryInMs: 1000 }],
    ]);
  });

  it('sends nothing to a page that is not ours, or to no page', () => {
    const foreign = new FakeContents('https://evil.example/');
    const gone = new FakeContents();
    gone.destroyed = true;
    expect(notifyRenderer(foreign, 'rulesChanged', { rules: [], userPrompts: 'deny' })).toBe(false);
    expect(notifyRenderer(gone, 'rulesChanged', { rules: [], userPrompts: 'deny' })).toBe(false);
    expect(notifyRenderer(undefined, 'rulesChanged', { rules: [], userPrompts: 'deny' })).toBe(false);
    expect(foreign.sent).toEqual([]);
    expect(gone.sent).toEqual([]);
  });
});
