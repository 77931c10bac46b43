import { describe, expect, it, vi } from 'vitest';
import { INVOKE_CHANNELS, NOTIFY_CHANNELS } from '../../../common/ipc.js';
import type { InvokeHandlers } from '../../../common/ipc.js';
import { forwardToRenderer, handlerName, notifyRenderer, registerInvokeHandlers } from '../../../main/ipc-main.js';
import type { InvokeEvent, InvokeListener, IpcMainSeam, NotifyTarget, SenderFrame } from '../../../main/ipc-main.js';
import { AUDIT_REPORT, promptView, statusReport } from './fixtures.js';

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
    handleGetPrompts: vi.fn(async () => ({ ok: true as const, value: [promptView()] })),
    handleAnswerPrompt: vi.fn(async () => ({ ok: true as const, value: { decision: 'allow-once' as const, admitted: [5150] } })),
    handleGetAudit: vi.fn(async () => ({ ok: true as const, value: AUDIT_REPORT })),
    handleGetDecisions: vi.fn(async () => ({ ok: true as const, value: [] })),
    handleRevoke: vi.fn(async () => ({ ok: true as const, value: { removed: [], released: 1 } })),
    handleAddApp: vi.fn(async () => ({ ok: false as const, error: { kind: 'helper' as const, message: 'locked' } })),
    handleExplain: vi.fn(async () => ({ ok: false as const, error: { kind: 'helper' as const, message: 'no' } })),
    handleGetApps: vi.fn(async () => ({ ok: true as const, value: { apps: [] } })),
    handlePickProgram: vi.fn(async () => ({ ok: true as const, value: null })),
    handleGetPreferences: vi.fn(async () => ({ ok: true as const, value: { theme: 'dark' as const, notifications: 'auto' as const } })),
    handleSetPreferences: vi.fn(async () => ({ ok: true as const, value: { theme: 'dark' as const, notifications: 'auto' as const } })),
  } satisfies InvokeHandlers;
  const log: string[] = [];
  const undo = registerInvokeHandlers(ipc, handlers, { log: (m) => log.push(m) });
  return { ipc, handlers, status, log, undo };
}

describe('registerInvokeHandlers', () => {
  it('registers exactly one guarded handler per call of the contract, on its channel', () => {
    const { ipc, undo } = setup();
    expect([...ipc.handlers.keys()].sort()).toEqual([
      'tunnelgate:invoke:addApp',
      'tunnelgate:invoke:answerPrompt',
      'tunnelgate:invoke:explain',
      'tunnelgate:invoke:getApps',
      'tunnelgate:invoke:getAudit',
      'tunnelgate:invoke:getDecisions',
      'tunnelgate:invoke:getEvents',
      'tunnelgate:invoke:getPreferences',
      'tunnelgate:invoke:getPrompts',
      'tunnelgate:invoke:getRules',
      'tunnelgate:invoke:getStatus',
      'tunnelgate:invoke:pickProgram',
      'tunnelgate:invoke:revoke',
      'tunnelgate:invoke:setPreferences',
    ]);
    undo();
    expect(ipc.handlers.size).toBe(0);
  });

  it('derives handler names from call names', () => {
    expect(handlerName('getStatus')).toBe('handleGetStatus');
    expect(handlerName('getEvents')).toBe('handleGetEvents');
    expect(handlerName('answerPrompt')).toBe('handleAnswerPrompt');
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
    for (const h of Object.values(handlers)) expect(h).not.toHaveBeenCalled();
    expect(log).toHaveLength(Object.keys(INVOKE_CHANNELS).length);
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
    ['getPrompts with an argument', INVOKE_CHANNELS.getPrompts, [{ all: true }]],
    ['getAudit with 0 days', INVOKE_CHANNELS.getAudit, [{ days: 0 }]],
    ['getAudit with 367 days', INVOKE_CHANNELS.getAudit, [{ days: 367 }]],
    ['getAudit with an unknown key', INVOKE_CHANNELS.getAudit, [{ days: 7, uid: 0 }]],
    ['getAudit with two arguments', INVOKE_CHANNELS.getAudit, [{}, {}]],
  ])('refuses %s from our own page', async (_what, channel, args) => {
    const { ipc, handlers } = setup();
    expect(await ipc.invoke(channel, ours, ...args)).toEqual({
      ok: false,
      error: { kind: 'bad-request', message: expect.stringMatching(/invalid arguments$/) as unknown },
    });
    for (const h of Object.values(handlers)) expect(h).not.toHaveBeenCalled();
  });

  it('getPrompts and getAudit answer our own page', async () => {
    const { ipc, handlers } = setup();
    expect(await ipc.invoke(INVOKE_CHANNELS.getPrompts, ours)).toEqual({ ok: true, value: [promptView()] });
    expect(await ipc.invoke(INVOKE_CHANNELS.getAudit, ours, { days: 7 })).toEqual({ ok: true, value: AUDIT_REPORT });
    expect(await ipc.invoke(INVOKE_CHANNELS.getAudit, ours)).toEqual({ ok: true, value: AUDIT_REPORT });
    expect(handlers.handleGetAudit.mock.calls).toEqual([[{ days: 7 }], []]);
  });

  const ID = '0123456789abcdef';

  it.each([
    ['allow once, whole tunnel', [ID, 'allow-once', { scope: 'tunnel' }]],
    ['allow once, no options', [ID, 'allow-once']],
    ['allow for an hour, this destination', [ID, 'allow-for', { seconds: 3600, scope: 'destination' }]],
    ['allow until logout', [ID, 'allow-for', { untilLogout: true }]],
    ['allow for the longest time there is', [ID, 'allow-for', { seconds: 10 * 366 * 86400 }]],
    ['always allow', [ID, 'allow-always', {}]],
    ['deny this destination', [ID, 'deny', { scope: 'destination' }]],
    ['always deny', [ID, 'deny-always', { scope: 'tunnel' }]],
  ])('answerPrompt passes on a valid answer: %s', async (_what, args) => {
    const { ipc, handlers } = setup();
    expect(await ipc.invoke(INVOKE_CHANNELS.answerPrompt, ours, ...args)).toEqual({ ok: true, value: { decision: 'allow-once', admitted: [5150] } });
    expect(handlers.handleAnswerPrompt.mock.calls).toEqual([args]);
  });

  it.each([
    ['no arguments', []],
    ['an id only', [ID]],
    ['an unknown decision', [ID, 'allow-forever']],
    ['a decision in capitals', [ID, 'ALLOW-ONCE']],
    ['a decision that is not a string', [ID, 1]],
    ['a decision object', [ID, { decision: 'allow-once' }]],
    ['an id that is too short', ['0123456789abcde', 'deny']],
    ['an id in capitals', ['0123456789ABCDEF', 'deny']],
    ['an id with a newline', ['0123456789abcdef\n', 'deny']],
    ['an id that is a path', ['../../etc/passwd', 'deny']],
    ['an id that is a number', [123456789, 'deny']],
    ['an extra field in the options', [ID, 'allow-once', { scope: 'tunnel', uid: 0 }]],
    ['destinations in the options', [ID, 'deny', { scope: 'destination', destinations: [{ cidr: '0.0.0.0/0' }] }]],
    ['an unknown scope', [ID, 'allow-once', { scope: 'everywhere' }]],
    ['a fourth argument', [ID, 'allow-once', {}, {}]],
    ['options that are an array', [ID, 'allow-once', []]],
    ['options that are null', [ID, 'allow-once', null]],
    ['options that are a class instance', [ID, 'allow-once', new Date()]],
    ['allow-for without a duration', [ID, 'allow-for']],
    ['allow-for with empty options', [ID, 'allow-for', {}]],
    ['allow-for with both a duration and until logout', [ID, 'allow-for', { seconds: 60, untilLogout: true }]],
    ['allow-for with untilLogout false', [ID, 'allow-for', { untilLogout: false }]],
    ['allow-for with 0 seconds', [ID, 'allow-for', { seconds: 0 }]],
    ['allow-for with fractional seconds', [ID, 'allow-for', { seconds: 1.5 }]],
    ['allow-for with seconds as a string', [ID, 'allow-for', { seconds: '3600' }]],
    ['allow-for over ten years', [ID, 'allow-for', { seconds: 10 * 366 * 86400 + 1 }]],
    ['a duration with allow-once', [ID, 'allow-once', { seconds: 3600 }]],
    ['until logout with deny', [ID, 'deny', { untilLogout: true }]],
  ])('answerPrompt refuses %s, and never asks the helper', async (_what, args) => {
    const { ipc, handlers, log } = setup();
    expect(await ipc.invoke(INVOKE_CHANNELS.answerPrompt, ours, ...args)).toEqual({
      ok: false,
      error: { kind: 'bad-request', message: 'answerPrompt: invalid arguments' },
    });
    expect(handlers.handleAnswerPrompt).not.toHaveBeenCalled();
    expect(log).toEqual(['refused answerPrompt: arguments do not match the contract']);
  });

  it.each([
    ['another site', frame('https://evil.example/')],
    ['a subframe of our page', frame('app://tunnelgate/x.html', frame('app://tunnelgate/index.html'))],
    ['a frame that is gone', null],
  ])('answerPrompt from %s is forbidden, even with valid arguments', async (_what, senderFrame) => {
    const { ipc, handlers } = setup();
    expect(await ipc.invoke(INVOKE_CHANNELS.answerPrompt, { senderFrame }, ID, 'allow-always')).toEqual({
      ok: false,
      error: { kind: 'forbidden', message: 'answerPrompt: not allowed from this page' },
    });
    expect(handlers.handleAnswerPrompt).not.toHaveBeenCalled();
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
    expect(forwardToRenderer(c, { name: 'promptsChanged', payload: [promptView()] })).toBe(true);
    expect(notifyRenderer(c, 'revealSection', 'prompts')).toBe(true);
    expect(c.sent).toEqual([
      [NOTIFY_CHANNELS.statusChanged, s],
      ['tunnelgate:notify:helperUnavailable', { message: 'gone', retryInMs: 1000 }],
      ['tunnelgate:notify:promptsChanged', [promptView()]],
      ['tunnelgate:notify:revealSection', 'prompts'],
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
