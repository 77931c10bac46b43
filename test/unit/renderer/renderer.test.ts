// The BUILT renderer page (dist/renderer) in real headless Chromium, against the
// BUILT preload (dist/main/preload.cjs) and a stand-in main process with canned answers
// on the same IPC channels (common/ipc.ts), in Mullvad's manner (test/lab/tray-page.ts).
// The page is served over a local http server by the very handler that serves app:// in
// Electron (main/app-protocol.ts), so the CSP under test is the real one.
//
// Needs `npm run build` first, and Debian's chromium at /usr/bin/chromium; without
// either it fails and says so (CI installs chromium; this test is never skipped).

import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListResult } from '../../../common/api.js';
import { INVOKE_CHANNELS, NOTIFY_CHANNELS } from '../../../common/ipc.js';
import type {
  HelperUnavailableNotice,
  InvokeName,
  InvokeResult,
  IpcResult,
  NotifyName,
  NotifyPayload,
  TunnelgateApi,
} from '../../../common/ipc.js';
import { CONTENT_SECURITY_POLICY } from '../../../main/app-protocol.js';
import type { PromptView } from '../../../common/api.js';
import { COVERAGE_NOTE } from '../../../common/audit.js';
import type { StampedEvent } from '../../../common/events.js';
import { AUDIT_REPORT, RICH, SOME_EVENTS, decisionView, hostilePrompt, itRule, promptView, statusReport } from '../main/fixtures.js';
import { CHROMIUM, CHROMIUM_ARGS, PRELOAD, RENDERER_DIR, installStandIn, preloadScript, servePage } from '../../lab/tray-page.js';
import type { StandIn } from '../../lab/tray-page.js';

const SCREENSHOT = '/tmp/tunnelgate-renderer.png';

/** What the stand-in main process answers, per call, typed by the contract. */
type Answers = { [K in InvokeName]: IpcResult<InvokeResult<K>> };

interface PageGlobal {
  tunnelgate: TunnelgateApi;
  __standIn: StandIn;
  __pwned?: unknown;
}

const ok = <T,>(value: T): IpcResult<T> => ({ ok: true, value });

let browser: Browser;
let server: { base: string; close(): Promise<void> } | undefined;

/** Why this test cannot run here, if it cannot: then every test FAILS with it (never skips). */
function missingPrerequisite(): string | undefined {
  if (!existsSync(CHROMIUM)) {
    return `Chromium is not installed at ${CHROMIUM}: install Debian's package (apt-get install -y chromium). CI installs it; this test does not skip.`;
  }
  if (!existsSync(path.join(RENDERER_DIR, 'index.html')) || !existsSync(path.join(RENDERER_DIR, 'renderer/app.js')) || !existsSync(PRELOAD)) {
    return `The built renderer is missing (${RENDERER_DIR}, ${PRELOAD}): run \`npm run build\` first.`;
  }
  return undefined;
}
const missing = missingPrerequisite();

beforeAll(async () => {
  if (missing) return;
  server = await servePage();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

interface Opened {
  page: Page;
  errors: string[];
  emit<K extends NotifyName>(name: K, payload: NotifyPayload<K>): Promise<void>;
  standIn(): Promise<Pick<StandIn, 'calls' | 'violations'>>;
  close(): Promise<void>;
}

async function openPage(answers: Answers, expectState: string): Promise<Opened> {
  if (missing) throw new Error(missing);
  const context = await browser.newContext({ viewport: { width: 820, height: 720 }, timezoneId: 'UTC', locale: 'en-GB' });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(`console.${m.type()}: ${m.text()} (${m.location().url})`);
  });
  await page.addInitScript(installStandIn, { invokeChannels: { ...INVOKE_CHANNELS }, notifyChannels: { ...NOTIFY_CHANNELS }, answers });
  await page.addInitScript({ content: preloadScript() });
  const response = await page.goto(`${server?.base}/index.html`);
  expect(response?.status()).toBe(200);
  expect(response?.headers()['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
  await page.locator(`#gate[data-state="${expectState}"]`).waitFor({ timeout: 10_000 });
  return {
    page,
    errors,
    emit: async (name, payload) => {
      await page.evaluate(([n, p]) => (globalThis as unknown as PageGlobal).__standIn.emit(n, p), [name, payload] as const);
    },
    standIn: () =>
      page.evaluate(() => {
        const s = (globalThis as unknown as PageGlobal).__standIn;
        return { calls: s.calls, violations: s.violations };
      }),
    close: () => context.close(),
  };
}

const richAnswers: Answers = {
  getStatus: ok(RICH.status),
  getRules: ok(RICH.rules),
  getEvents: ok([]),
  getPrompts: ok([]),
  answerPrompt: ok({ decision: 'allow-once', admitted: [5150] }),
  getAudit: ok(AUDIT_REPORT),
  getDecisions: ok([]),
  revoke: ok({ removed: [], released: 0 }),
  addApp: { ok: false, error: { kind: 'helper', message: 'not in this test' } },
  explain: ok({ verdict: 'deny', enforced: true, reason: 'no rule allows it', subject: { exe: '/usr/bin/nc', uid: 1000 }, locked: false, prompt: 'would-ask', notes: [] }),
  getApps: ok({ apps: [] }),
  pickProgram: ok(null),
  getPreferences: ok({ theme: 'system', notifications: 'auto' }),
  setPreferences: ok({ theme: 'system', notifications: 'auto' }),
};

/** A rule row's cells as shown, without the "Why?" disclosure (its text comes from the helper). */
async function rowCells(page: Page, key: string): Promise<string[]> {
  return page.locator(`tr.rule[data-key="${key}"] > td`).evaluateAll((tds) =>
    tds.map((td) => {
      const c = td.cloneNode(true) as HTMLElement;
      c.querySelectorAll('details').forEach((d) => d.remove());
      document.body.append(c);
      const text = c.innerText;
      c.remove();
      return text.trim();
    }),
  );
}

describe('renderer in Chromium', () => {
  it('shows the gate state, its problems, interfaces, the whitelist with sources and locks, profile sources, empty events', { timeout: 30_000 }, async () => {
    const { page, errors, standIn, close } = await openPage(richAnswers, 'degraded');
    try {
      await expect(page.locator('#gate .gate-title').innerText()).resolves.toBe('Degraded');
      const summary = await page.locator('#gate .gate-summary').innerText();
      expect(summary).toMatch(/^mode enforce · net_cls · 8 rules · 3 admitted processes · 1\u202f234 packets dropped$/);

      expect(await page.locator('#problems-section').isVisible()).toBe(true);
      expect(await page.locator('#problems li').allInnerTexts()).toEqual(RICH.status.problems);

      expect(await page.locator('#interfaces li').allInnerTexts()).toEqual(['wg0\twg0', 'wg-corp*\tnot present'].map((s) => s.replace('\t', '\n')));

      expect(await page.locator('#rules-note').innerText()).toBe('Users may be asked, and may add their own rules where no IT rule decides.');
      expect(await page.locator('tr.rule').count()).toBe(RICH.rules.rules.length);
      expect(await rowCells(page, 'corp-base:ssh')).toEqual(['allow', '/usr/bin/ssh\nssh', 'whole tunnel', 'profile corp-base v7', 'locked']);
      expect(await rowCells(page, 'corp-base:git')).toEqual([
        'allow',
        '/usr/bin/git\nsha256 9f86d081884c…\ngit',
        '198.18.0.0/24 tcp ports 22, 443',
        'profile corp-base v7',
        'locked',
      ]);
      expect(await rowCells(page, 'corp-base:deploy-tool')).toEqual([
        'allow',
        '/usr/bin/python3\nscript /opt/corp/deploy.py\ndeploy-tool',
        'whole tunnel\naudit',
        'profile corp-base v7',
        'locked',
      ]);
      expect((await rowCells(page, 'corp-base:ssh-client'))[1]).toBe('package openssh-client\nssh-client');
      expect((await rowCells(page, 'corp-base:nfs')).slice(1, 3)).toEqual(['kernel traffic (no process)\nnfs', '198.18.0.20/32 tcp port 2049']);
      expect((await rowCells(page, 'corp-base:no-games')).slice(0, 2)).toEqual(['deny', '/usr/games/*\nno-games']);
      expect(await rowCells(page, 'user.1000:curl')).toEqual([
        'allow',
        '/usr/bin/curl\ncurl',
        '198.18.0.80/32 tcp port 80\nuntil 2026-11-22 18:00:00',
        'user 1000',
        'revocable',
      ]);

      // Data is text, never markup.
      expect(await page.locator('tr.rule[data-key="user.1000:odd"] .program').innerText()).toBe('/tmp/<img src=x onerror="window.__pwned=1">');
      expect(await page.locator('img').count()).toBe(0);

      const sources = page.locator('#sources-body tr');
      expect(await sources.count()).toBe(2);
      expect(await sources.nth(0).locator('td').allInnerTexts()).toEqual(['active', 'corp-base v7', '/etc/tunnelgate/profiles.d/corp-base.json', '—']);
      expect(await sources.nth(1).locator('td').allInnerTexts()).toEqual([
        'rejected',
        'legacy v2',
        '/etc/tunnelgate/profiles.d/legacy.json',
        'legacy.json: signature: no valid signature by a trusted key',
      ]);

      expect(await page.locator('#events li').allInnerTexts()).toEqual([
        'No events yet. Blocked attempts, prompts, decisions and policy changes will appear here.',
      ]);
      expect(await page.locator('#helper-info').innerText()).toContain('Helper pid 4242, version 0.1.0');

      // The preload exposed one object of named functions, nothing else.
      const keys = await page.evaluate(() => Object.keys((globalThis as unknown as PageGlobal).tunnelgate).sort());
      expect(keys).toEqual([
        'addApp',
        'answerPrompt',
        'explain',
        'getApps',
        'getAudit',
        'getDecisions',
        'getEvents',
        'getPreferences',
        'getPrompts',
        'getRules',
        'getStatus',
        'onEventsAdded',
        'onHelperUnavailable',
        'onPreferencesChanged',
        'onPromptsChanged',
        'onRevealSection',
        'onRulesChanged',
        'onStatusChanged',
        'pickProgram',
        'revoke',
        'setPreferences',
      ]);
      expect(await page.evaluate(() => 'ipcRenderer' in globalThis || 'require' in globalThis || 'process' in globalThis)).toBe(false);

      await page.screenshot({ path: SCREENSHOT, fullPage: true });

      const s = await standIn();
      expect(s.calls).toEqual([
        { name: 'getPreferences', args: [] },
        { name: 'getAudit', args: [] },
        { name: 'getDecisions', args: [] },
        { name: 'getStatus', args: [] },
        { name: 'getRules', args: [] },
        { name: 'getEvents', args: [] },
        { name: 'getPrompts', args: [] },
      ]);
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobal).__pwned)).toBeUndefined();
      expect(s.violations).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('follows statusChanged, rulesChanged and helperUnavailable from main', { timeout: 30_000 }, async () => {
    const { page, errors, emit, standIn, close } = await openPage(richAnswers, 'degraded');
    try {
      await emit('statusChanged', statusReport({ state: 'enforcing', problems: [] }));
      await page.locator('#gate[data-state="enforcing"]').waitFor();
      expect(await page.locator('#gate .gate-title').innerText()).toBe('Enforcing');
      expect(await page.locator('#gate .gate-meaning').innerText()).toBe('Only whitelisted programs can reach the tunnel.');
      expect(await page.locator('#problems-section').isHidden()).toBe(true);

      const locked: ListResult = { userPrompts: 'deny', rules: [itRule('ssh', { binary: { path: '/usr/bin/ssh' } })] };
      await emit('rulesChanged', locked);
      expect(await page.locator('tr.rule').count()).toBe(1);
      expect(await page.locator('#rules-note').innerText()).toBe('Locked by IT: only the profiles decide; users cannot add rules.');

      const notice: HelperUnavailableNotice = { message: 'the helper is not running (no /run/tunnelgate/api.sock)', retryInMs: 4000 };
      await emit('helperUnavailable', notice);
      await page.locator('#gate[data-state="unknown"]').waitFor();
      expect(await page.locator('#gate').innerText()).toBe(
        'Helper unavailable\nthe helper is not running (no /run/tunnelgate/api.sock)\n' +
          'Last known state: Enforcing. Rules already in the kernel stay in force without the helper. Retrying in 4 s.',
      );
      expect(await page.locator('body').getAttribute('class')).toBe('stale');

      await emit('statusChanged', statusReport({ state: 'audit', mode: 'audit' }));
      await page.locator('#gate[data-state="audit"]').waitFor();
      expect(await page.locator('body').getAttribute('class')).toBe('');

      // A page listener gets the payload alone, and can unsubscribe.
      const seen = await page.evaluate(async () => {
        const g = globalThis as unknown as PageGlobal;
        const before = g.__standIn.listenerCount('rulesChanged');
        const got: unknown[][] = [];
        const off = g.tunnelgate.onRulesChanged((...args: unknown[]) => void got.push(args));
        const during = g.__standIn.listenerCount('rulesChanged');
        g.__standIn.emit('rulesChanged', { rules: [], userPrompts: 'allow' });
        off();
        g.__standIn.emit('rulesChanged', { rules: [], userPrompts: 'allow' });
        return { got, before, during, after: g.__standIn.listenerCount('rulesChanged') };
      });
      expect(seen).toEqual({ got: [[{ rules: [], userPrompts: 'allow' }]], before: 1, during: 2, after: 1 });

      expect((await standIn()).violations).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('no helper from the start: says so, and why', { timeout: 30_000 }, async () => {
    const down = { ok: false, error: { kind: 'unavailable', message: 'refusing /run/tunnelgate/api.sock: it is not a socket owned by root' } } as const;
    const { page, errors, close } = await openPage(
      { ...richAnswers, getStatus: down, getRules: down, getEvents: down, getPrompts: down, answerPrompt: down, getAudit: down, getDecisions: down },
      'unknown',
    );
    try {
      expect(await page.locator('#gate').innerText()).toBe(
        'Helper unavailable\nrefusing /run/tunnelgate/api.sock: it is not a socket owned by root\n' +
          'Rules already in the kernel stay in force without the helper. The tray app keeps trying.',
      );
      expect(await page.locator('#rules-note').innerText()).toBe(
        'The whitelist cannot be shown: refusing /run/tunnelgate/api.sock: it is not a socket owned by root',
      );
      await page.screenshot({ path: '/tmp/tunnelgate-renderer-unavailable.png', fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('lists events newest first, blocked attempts marked', { timeout: 30_000 }, async () => {
    const { page, errors, close } = await openPage({ ...richAnswers, getEvents: ok(SOME_EVENTS) }, 'degraded');
    try {
      await page.locator('#events li.event').first().waitFor();
      expect(await page.locator('#events li').allInnerTexts()).toEqual([
        '2026-11-22 08:05:00\nBlocked\n/usr/bin/nc (pid 5150, uid 1000): no rule allows /usr/bin/nc',
        '2026-11-22 08:00:01\nPolicy applied\n8 rules, mode enforce',
        '2026-11-22 08:00:00\nHelper started\npid 4242, version 0.1.0',
      ]);
      expect(await page.locator('#events li.event-block').count()).toBe(1);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('the CSP from the protocol handler is in force: no inline script runs', { timeout: 30_000 }, async () => {
    const { page, errors, standIn, close } = await openPage(richAnswers, 'degraded');
    try {
      await page.evaluate(
        'const s = document.createElement("script"); s.textContent = "window.__pwned = 1"; document.body.append(s);' +
          'const i = document.createElement("img"); i.src = "https://example.invalid/x.png"; document.body.append(i);',
      );
      await page.waitForFunction(() => (globalThis as unknown as PageGlobal).__standIn.violations.length >= 2);
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobal).__pwned)).toBeUndefined();
      expect((await standIn()).violations.sort()).toEqual(['img-src https://example.invalid/x.png', 'script-src-elem inline']);
      // Chromium reports each refusal on the console too: those are the only errors.
      expect(errors.every((e) => e.includes('Content Security Policy'))).toBe(true);
    } finally {
      await close();
    }
  });
});

/** Prompts whose answer time runs from now, as the helper sets it once an app shows them. */
function livePrompts(): { curl: PromptView; hostile: PromptView } {
  const deadline = new Date(Date.now() + 30_000).toISOString();
  return {
    curl: promptView({ deadline }),
    hostile: hostilePrompt({ deadline, firstSeen: '2026-11-22T08:06:00.000Z', lastSeen: '2026-11-22T08:06:09.000Z' }),
  };
}

const card = (page: Page, id: string) => page.locator(`article.prompt[data-id="${id}"]`);
const fact = (page: Page, id: string, key: string) => card(page, id).locator(`dd.fact-${key}`).innerText();

describe('prompts in Chromium', () => {
  it('each pending prompt shows what a person needs to decide; hostile strings stay text', { timeout: 30_000 }, async () => {
    const { curl, hostile } = livePrompts();
    const { page, errors, standIn, close } = await openPage({ ...richAnswers, getPrompts: ok([curl, hostile]) }, 'degraded');
    try {
      await card(page, curl.id).waitFor();
      expect(await page.locator('#prompts-section').isVisible()).toBe(true);
      expect(await page.locator('#prompts-title').innerText()).toBe('2 programs ask for the tunnel');
      expect(await page.title()).toBe('(2) tunnelgate');
      // The prompts come first on the page, right under the gate state.
      expect(await page.evaluate(() => document.querySelector('main')?.firstElementChild?.id)).toBe('prompts-section');

      // An ordinary prompt.
      expect(await card(page, curl.id).locator('.prompt-program').innerText()).toBe('curl');
      expect(await card(page, curl.id).locator('.prompt-glyph').innerText()).toBe('C');
      expect(await card(page, curl.id).locator('.prompt-icon-name').count()).toBe(0);
      expect(await fact(page, curl.id, 'path')).toBe('/usr/bin/curl');
      expect(await fact(page, curl.id, 'cmdline')).toBe('curl -sS https://198.18.0.10/');
      expect(await fact(page, curl.id, 'parents')).toBe('/usr/bin/bash (pid 5100) ← /usr/bin/gnome-terminal-server (pid 4000)');
      expect(await fact(page, curl.id, 'user')).toBe('alice (uid 1000)');
      expect(await fact(page, curl.id, 'destinations')).toBe('198.18.0.10:443/tcp on wg0 · 3 attempts');
      expect(await fact(page, curl.id, 'attempts')).toBe('3 attempts, first 2026-11-22 08:05:00, last 2026-11-22 08:05:02; process 5150');
      expect(await fact(page, curl.id, 'sha256')).toBe(curl.sha256);
      expect(await card(page, curl.id).locator('.prompt-warnings').count()).toBe(0);
      // The seconds left depend on how long the page took to come up: only their form and bound are fixed.
      const timer = /^Denied in (\d+) s without an answer\.$/.exec(await card(page, curl.id).locator('.prompt-timer').innerText());
      expect(Number(timer?.[1])).toBeGreaterThan(0);
      expect(Number(timer?.[1])).toBeLessThanOrEqual(30);
      expect(await card(page, curl.id).locator('button').allInnerTexts()).toEqual(['Allow once', 'Allow for 1 hour', 'Always allow', 'Deny', 'Always deny']);
      expect((await card(page, curl.id).locator('fieldset label').allInnerTexts()).map((t) => t.trim())).toEqual(['the whole tunnel', 'only 198.18.0.10:443/tcp']);
      expect(await card(page, curl.id).locator('input[value="tunnel"]').isChecked()).toBe(true);

      // A prompt whose program chose every string to mislead.
      const h = card(page, hostile.id);
      expect(await h.locator('.prompt-program').innerText()).toBe('<b>Totally Safe</b> & "Trusted"');
      expect(await h.locator('.prompt-icon-name').innerText()).toBe('icon: <svg onload=alert(1)>');
      expect(await fact(page, hostile.id, 'path')).toBe('/home/alice/.local/bin/<img src=x onerror="window.__pwned=1">');
      expect(await fact(page, hostile.id, 'cmdline')).toBe("'<script>window.__pwned=2</script>' 'line\\nbreak' 'gpj.\\u202eexe'");
      expect(await fact(page, hostile.id, 'parents')).toBe('/usr/bin/<i>bash</i> (pid 5100)');
      expect(await fact(page, hostile.id, 'desktop')).toBe('/home/alice/.local/share/applications/evil.desktop');
      expect(await fact(page, hostile.id, 'destinations')).toBe('198.18.0.10:443/tcp on wg0 · 40 attempts\n[fd00:7467::2]:53/udp on wg0 · 2 attempts');
      expect((await h.locator('fieldset label').nth(1).innerText()).trim()).toBe('only these 2 destinations');
      // The hash changed: a warning anyone sees.
      const warning = h.locator('.prompt-warning');
      expect(await warning.count()).toBe(1);
      expect(await warning.isVisible()).toBe(true);
      expect(await warning.innerText()).toBe(`Warning: ${hostile.warnings[0] ?? ''}`);
      expect(await page.locator('img, svg, script:not([src]), b, i').count()).toBe(0);

      await page.locator('#prompts-section').screenshot({ path: '/tmp/tunnelgate-prompts.png' });
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobal).__pwned)).toBeUndefined();
      expect((await standIn()).violations).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('clicking "Allow once" asks main to answer with the right arguments; promptsChanged then removes the prompt', { timeout: 30_000 }, async () => {
    const { curl, hostile } = livePrompts();
    const { page, errors, emit, standIn, close } = await openPage({ ...richAnswers, getPrompts: ok([curl, hostile]) }, 'degraded');
    try {
      await card(page, curl.id).locator('button[data-decision="allow-once"]').click();
      await card(page, curl.id).locator('.prompt-status', { hasText: 'Allowed once.' }).waitFor();
      expect(await card(page, curl.id).locator('.prompt-status').innerText()).toBe('Allowed once. Admitted: pid 5150.');
      // Answered once: no second answer while the helper closes it.
      expect(await card(page, curl.id).locator('button:disabled').count()).toBe(5);

      // The other prompt: only the destinations it tried, for an hour.
      await card(page, hostile.id).locator('input[value="destination"]').check();
      await card(page, hostile.id).locator('button[data-decision="allow-for"]').click();
      await card(page, hostile.id).locator('.prompt-status', { hasText: 'Allowed' }).waitFor();

      const answers = (await standIn()).calls.filter((c) => c.name === 'answerPrompt');
      expect(answers).toEqual([
        { name: 'answerPrompt', args: ['0123456789abcdef', 'allow-once', { scope: 'tunnel' }] },
        { name: 'answerPrompt', args: ['fedcba9876543210', 'allow-for', { scope: 'destination', seconds: 3600 }] },
      ]);

      // The helper closed the first prompt.
      await emit('promptsChanged', [hostile]);
      await card(page, curl.id).waitFor({ state: 'detached' });
      expect(await page.locator('article.prompt').count()).toBe(1);
      expect(await page.locator('#prompts-title').innerText()).toBe('1 program asks for the tunnel');
      await emit('promptsChanged', []);
      await page.locator('#prompts-section').waitFor({ state: 'hidden' });
      expect(await page.title()).toBe('tunnelgate');
      expect((await standIn()).violations).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('an answer the helper refuses says why, and the buttons work again', { timeout: 30_000 }, async () => {
    const { curl } = livePrompts();
    const refused = {
      ok: false,
      error: { kind: 'helper', message: 'prompt 0123456789abcdef is about a process of another user: only that user or an admin may answer it' },
    } as const;
    const { page, errors, close } = await openPage({ ...richAnswers, getPrompts: ok([curl]), answerPrompt: refused }, 'degraded');
    try {
      await card(page, curl.id).locator('button[data-decision="deny-always"]').click();
      const status = card(page, curl.id).locator('.prompt-status.prompt-error');
      await status.waitFor();
      expect(await status.innerText()).toBe(`Not answered: ${refused.error.message}`);
      expect(await card(page, curl.id).locator('button:disabled').count()).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('prompts pushed by main appear; an update keeps the chosen scope; revealSection focuses them', { timeout: 30_000 }, async () => {
    const { curl } = livePrompts();
    const { page, errors, emit, close } = await openPage(richAnswers, 'degraded');
    try {
      expect(await page.locator('#prompts-section').isHidden()).toBe(true);
      await emit('promptsChanged', [curl]);
      await card(page, curl.id).waitFor();
      await card(page, curl.id).locator('input[value="destination"]').check();
      await emit('promptsChanged', [{ ...curl, count: 9, pids: [5150, 5151], deadline: undefined }]);
      await card(page, curl.id).locator('dd.fact-attempts', { hasText: '9 attempts' }).waitFor();
      expect(await fact(page, curl.id, 'attempts')).toBe('9 attempts, first 2026-11-22 08:05:00, last 2026-11-22 08:05:02; processes 5150, 5151');
      expect(await card(page, curl.id).locator('input[value="destination"]').isChecked()).toBe(true);
      expect(await card(page, curl.id).locator('.prompt-timer').innerText()).toBe('Waiting for an answer.');

      await emit('revealSection', 'prompts');
      expect(await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset['id'])).toBe(curl.id);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });
});

describe('events and audit in Chromium', () => {
  it('the audit summary: top programs and destinations with counts and first/last seen, the coverage note verbatim', { timeout: 30_000 }, async () => {
    const { page, errors, standIn, close } = await openPage(richAnswers, 'degraded');
    try {
      const note = page.locator('#audit-coverage');
      await note.waitFor();
      expect(await note.locator('.coverage-title').innerText()).toBe('What this does not show');
      expect(await note.locator('.coverage-text').innerText()).toBe(COVERAGE_NOTE);
      expect(await page.locator('#audit-period').innerText()).toBe('last 30 days');
      expect(await page.locator('#audit-totals').innerText()).toBe(
        '56 attempts by 3 programs to 3 destinations; 16 passed only because of audit mode.',
      );
      const programs = page.locator('#audit-programs-body tr');
      expect(await programs.count()).toBe(3);
      expect(await programs.nth(0).locator('td').allInnerTexts()).toEqual([
        '/opt/corp/<b>report</b>\nblocked',
        '40',
        '1',
        'uid 1001',
        '2026-11-10 08:00:00',
        '2026-11-21 08:00:00',
      ]);
      expect(await programs.nth(1).locator('td').allInnerTexts()).toEqual([
        '/usr/bin/curl\nwould be blocked',
        '15',
        '2',
        'uid 1000',
        '2026-11-02 09:00:00',
        '2026-11-20 17:30:00',
      ]);
      expect((await programs.nth(2).locator('td').allInnerTexts())[0]).toBe('(process gone before it was named)\nwould be blocked');
      const destinations = page.locator('#audit-destinations-body tr');
      expect(await destinations.locator('td:first-child').allInnerTexts()).toEqual([
        '198.18.0.10:443/tcp\nblocked would be blocked',
        '198.18.0.11:443/tcp\nwould be blocked',
        '[fd00:7467::53]:53/udp\nwould be blocked',
      ]);
      expect(await destinations.nth(0).locator('td').allInnerTexts()).toEqual([
        '198.18.0.10:443/tcp\nblocked would be blocked',
        '52',
        '2',
        '2026-11-02 09:00:00',
        '2026-11-21 08:00:00',
      ]);
      expect(await page.locator('b').count()).toBe(0);

      await page.locator('#audit-section').scrollIntoViewIfNeeded();
      await page.locator('#audit-section').screenshot({ path: '/tmp/tunnelgate-audit.png' });
      await page.locator('#audit-refresh').click();
      await page.waitForFunction(() => (globalThis as unknown as PageGlobal).__standIn.calls.filter((c) => c.name === 'getAudit').length === 2);
      expect((await standIn()).violations).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('nothing refused: says so, and still shows the coverage note; no helper: says why', { timeout: 30_000 }, async () => {
    const empty = await openPage({ ...richAnswers, getAudit: ok({ days: 30, records: [], coverage: COVERAGE_NOTE }) }, 'degraded');
    try {
      await empty.page.locator('#audit-coverage .coverage-text').waitFor();
      expect(await empty.page.locator('#audit-coverage .coverage-text').innerText()).toBe(COVERAGE_NOTE);
      expect(await empty.page.locator('#audit-totals').innerText()).toBe('Nothing was refused in the last 30 days.');
      expect(empty.errors).toEqual([]);
    } finally {
      await empty.close();
    }
    const down = { ok: false, error: { kind: 'unavailable', message: 'the helper is not running (no /run/tunnelgate/api.sock)' } } as const;
    const gone = await openPage({ ...richAnswers, getAudit: down }, 'degraded');
    try {
      await gone.page.locator('#audit-totals', { hasText: 'cannot' }).waitFor();
      expect(await gone.page.locator('#audit-totals').innerText()).toBe(
        'The audit summary cannot be shown: the helper is not running (no /run/tunnelgate/api.sock)',
      );
      expect(await gone.page.locator('#audit-coverage').isHidden()).toBe(true);
    } finally {
      await gone.close();
    }
  });

  it('events pushed by main: newest first, bounded, replaced after a reconnection', { timeout: 30_000 }, async () => {
    const { page, errors, emit, close } = await openPage({ ...richAnswers, getEvents: ok(SOME_EVENTS) }, 'degraded');
    try {
      await page.locator('#events li.event').first().waitFor();
      const denied: StampedEvent = {
        seq: 4,
        time: '2026-11-22T08:06:00.000Z',
        type: 'attempt.denied',
        attempt: { time: '2026-11-22T08:06:00.000Z', uid: 1000, pid: 5150, exe: '/usr/bin/curl', dst: { addr: '198.18.0.10', port: 443, proto: 'tcp' }, iface: 'wg0', mode: 'enforce' },
      };
      await emit('eventsAdded', { events: [denied], replace: false });
      await page.locator('#events li').nth(3).waitFor();
      expect(await page.locator('#events li').first().innerText()).toBe('2026-11-22 08:06:00\nBlocked\n/usr/bin/curl (pid 5150, uid 1000) → 198.18.0.10:443/tcp on wg0');
      expect(await page.locator('#events li.event-block').count()).toBe(2);

      const many: StampedEvent[] = Array.from({ length: 250 }, (_, i) => ({
        seq: 10 + i,
        time: new Date(Date.parse('2026-11-22T09:00:00.000Z') + i * 1000).toISOString(),
        type: 'prompt.closed',
        id: 'a'.repeat(16),
        uid: 1000,
        exe: `/usr/bin/p${i}`,
        count: 1,
        reason: 'timeout',
      }));
      await emit('eventsAdded', { events: many, replace: false });
      await page.locator('#events li', { hasText: '/usr/bin/p249' }).waitFor();
      expect(await page.locator('#events li').count()).toBe(200);
      expect(await page.locator('#events li').first().innerText()).toBe('2026-11-22 09:04:09\nPrompt closed\n/usr/bin/p249 (uid 1000): no answer in time, so denied');

      await emit('eventsAdded', { events: [SOME_EVENTS[0] as StampedEvent], replace: true });
      await page.locator('#events li', { hasText: 'Helper started' }).waitFor();
      expect(await page.locator('#events li').count()).toBe(1);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });
});

describe('managing my rules in Chromium', () => {
  const mine = decisionView({ sha256: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' });
  const never = { ...mine, kind: 'deny' as const, id: 'ffeeddccbbaa9988', key: undefined, sha256: undefined, path: '/usr/bin/nc', destinations: [{ cidr: '198.18.0.0/24', ports: [443], proto: 'tcp' as const }] };

  it('lists my rules and deny-always answers; a refused revoke shows the helper’s words; "Why?" asks the helper', { timeout: 30_000 }, async () => {
    const refused = { ok: false, error: { kind: 'helper', message: 'user decisions are not allowed here: a profile (corp-base) sets userPrompts to "deny"' } } as const;
    const { page, errors, standIn, close } = await openPage({ ...richAnswers, getDecisions: ok([mine, never]), revoke: refused }, 'degraded');
    try {
      const allow = page.locator(`li.decision[data-id="${mine.id}"]`);
      await allow.waitFor();
      expect(await allow.locator('.decision-head').innerText()).toMatch(/^Allowed\s+\/usr\/bin\/curl\s+Revoke$/);
      expect(await allow.locator('.decision-facts').innerText()).toBe('the whole tunnel · always · answered in a prompt 2026-11-22 08:00:00 · pinned to sha256 9f86d081884c…');
      const deny = page.locator(`li.decision[data-id="${never.id}"]`);
      expect(await deny.locator('button').innerText()).toBe('Undo');
      expect(await deny.locator('.decision-facts').innerText()).toMatch(/^only 198\.18\.0\.0\/24 tcp port 443 · always/);

      await deny.locator('button').click();
      await deny.locator('.decision-error').waitFor();
      expect(await deny.locator('.decision-error').innerText()).toBe(`Not done: ${refused.error.message}`);
      expect(await deny.locator('button').isDisabled()).toBe(false);

      await allow.locator('summary').click();
      await allow.locator('.why-reason').waitFor();
      expect(await allow.locator('.why-reason').innerText()).toBe('Denied: no rule allows it');
      const s = await standIn();
      expect(s.calls.filter((c) => c.name === 'revoke' || c.name === 'explain')).toEqual([
        { name: 'revoke', args: [never.id] },
        { name: 'explain', args: [{ path: '/usr/bin/curl' }] },
      ]);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('where IT locks the machine the controls say so instead of failing', { timeout: 30_000 }, async () => {
    const locked: ListResult = { userPrompts: 'deny', rules: [itRule('ssh', { binary: { path: '/usr/bin/ssh' } })] };
    const { page, errors, close } = await openPage({ ...richAnswers, getRules: ok(locked) }, 'degraded');
    try {
      await page.locator('#lock-note').waitFor();
      expect(await page.locator('#lock-note').innerText()).toBe(
        'IT has locked this machine: only the IT profiles decide, so you cannot add apps or answer prompts here.',
      );
      expect(await page.locator('#add-app').isDisabled()).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('no horizontal scroll at 400 px, with prompts and every table', { timeout: 30_000 }, async () => {
    const { curl, hostile } = livePrompts();
    const { page, errors, close } = await openPage({ ...richAnswers, getPrompts: ok([curl, hostile]), getEvents: ok(SOME_EVENTS), getDecisions: ok([mine, never]) }, 'degraded');
    try {
      await card(page, curl.id).waitFor();
      await page.setViewportSize({ width: 400, height: 600 });
      expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(0);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });
});
