// End to end (issue 12 part 6): the BUILT tray page in Debian's Chromium, its preload
// served by the development bridge (test/lab/tray-bridge.ts: main's own modules without
// Electron), talking to a REAL helper in a lab over its socket as an ordinary user made up
// here. Drives what an employee does, and saves screenshots of each view, light and dark,
// at 1024 and 400 px, under dist/e2e/; runs axe-core on each view.
//
// Stubbed: only the file dialog. "Add an app…" lists the helper's `apps` (the .desktop
// entries in the employee's ~/.local/share/applications; the helper finds the home from
// the uid in a passwd file this test writes, TUNNELGATE_PASSWD) and adds through
// `allow {app}`; an app an IT deny covers is refused, and the page says why.
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab } from '../lab/lab.js';
import type { Lab } from '../lab/lab.js';
import { startHelper } from '../lab/helper-proc.js';
import type { HelperHandle } from '../lab/helper-proc.js';
import { CHROMIUM, CHROMIUM_ARGS, ROOT, servePage } from '../lab/tray-page.js';
import { emitTo, openTrayPage } from './page-harness.js';

const OUT = path.join(ROOT, 'dist/e2e');
const BRIDGE = path.join(ROOT, 'dist/test/lab/tray-bridge.js');
const CURL = realpathSync('/usr/bin/curl');
const AXE = readFileSync(path.join(ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8');
/** The made-up employee. */
const USER = 4391;
const WIDTHS = [1024, 400] as const;
const THEMES = ['light', 'dark'] as const;

let lab: Lab;
let helper: HelperHandle;
let tmp: string;
let appsDir: string;
let browser: Browser;
let context: BrowserContext;
let server: Awaited<ReturnType<typeof servePage>>;
let bridge: ResultPromise;
const pages: Page[] = [];
const pending = new Map<number, (v: unknown) => void>();
let nextId = 1;
const bridgeLog: string[] = [];
const helperLog: string[] = [];
const figures: Record<string, number> = {};
const axeFindings: Record<string, Array<{ id: string; impact: string; nodes: number }>> = {};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const asUser = (cmd: string, args: string[]) => ['setpriv', [`--reuid=${USER}`, `--regid=${USER}`, '--clear-groups', cmd, ...args]] as const;

function copyOf(name: string, source = CURL): string {
  const file = path.join(tmp, name);
  copyFileSync(source, file);
  chmodSync(file, 0o755);
  return file;
}

const invoke = (name: string, args: unknown[]): Promise<unknown> =>
  new Promise((resolve) => {
    const id = nextId++;
    pending.set(id, resolve);
    bridge.stdin?.write(`${JSON.stringify({ id, name, args })}\n`);
  });

/** A long download at 50 kB/s through the tunnel, as the employee; ends when stalled 3 s. */
function slowDownload(bin: string) {
  const [cmd, args] = asUser(bin, [
    '-s', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', '--connect-timeout', '100',
    '--limit-rate', '50k', '--speed-limit', '1000', '--speed-time', '3', '-m', '110', `${lab.urls.corpV4}bytes/50000000`,
  ]);
  return lab.spawn('ws', cmd, args, { reject: false });
}

/** Screenshots of one view: light and dark, 1024 and 400 px wide; axe-core in each; no horizontal scroll. */
async function shoot(page: Page, view: string, height = 800, fullPage = true): Promise<void> {
  for (const theme of THEMES) {
    await page.emulateMedia({ colorScheme: theme });
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: width === 400 ? 600 : height });
      await page.waitForTimeout(50); // one frame for the layout; nothing is asserted on time
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, `${view} ${theme} ${width}: horizontal scroll`).toBeLessThanOrEqual(0);
      await page.screenshot({ path: path.join(OUT, `${view}-${theme}-${width}.png`), fullPage });
      const violations = (await page.evaluate(async (src) => {
        const g = globalThis as unknown as { axe?: { run(ctx: unknown, opts: unknown): Promise<{ violations: Array<{ id: string; impact: string; nodes: unknown[] }> }> } };
        if (!g.axe) (0, eval)(src);
        const r = await g.axe!.run(document, { resultTypes: ['violations'] });
        return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
      }, AXE)) as Array<{ id: string; impact: string; nodes: number }>;
      axeFindings[`${view}-${theme}-${width}`] = violations;
      expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical'), `${view} ${theme} ${width}`).toEqual([]);
    }
  }
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 1024, height });
}

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  lab = await createLab();
  tmp = mkdtempSync('/tmp/tg-e2e-');
  chmodSync(tmp, 0o755);
  // The employee's home, known to the helper only through the passwd file (by uid).
  const home = path.join(tmp, 'home');
  appsDir = path.join(home, '.local/share/applications');
  mkdirSync(appsDir, { recursive: true });
  for (const d of [home, path.join(home, '.local'), path.join(home, '.local/share'), appsDir]) chownSync(d, USER, USER);
  const passwd = path.join(tmp, 'passwd');
  writeFileSync(passwd, `${readFileSync('/etc/passwd', 'utf8')}employee:x:${USER}:${USER}:Employee:${home}:/bin/sh\n`);
  process.env['TUNNELGATE_PASSWD'] = passwd;
  helper = await startHelper(lab, {
    log: (l) => helperLog.push(l),
    profiles: {
      'corp-e2e': {
        schema: 'tunnelgate/profile@1',
        id: 'corp-e2e',
        version: 3,
        mode: 'enforce',
        interfaces: [lab.wsIface],
        userPrompts: 'allow',
        rules: [
          { id: 'ssh', binary: { path: '/usr/bin/ssh' } },
          { id: 'no-games', action: 'deny', binary: { path: '/usr/games/*' } },
          { id: 'no-unvetted', action: 'deny', binary: { path: `${tmp}/unvetted-*` } },
        ],
      },
    },
  });
  // Screenshots and axe take a while on a loaded machine: prompts wait 10 minutes here.
  writeFileSync(path.join(helper.etc, 'helper.json'), JSON.stringify({ promptTimeoutSeconds: 600 }));
  await helper.kill('SIGTERM');
  await helper.restart();
  // A removable user rule, added as the employee would from a terminal.
  const mine = copyOf('report-tool');
  const added = await helper.cli(['allow', mine], { uid: USER });
  expect({ code: added.exitCode, err: added.stderr }).toEqual({ code: 0, err: '' });

  bridge = execa('setpriv', [`--reuid=${USER}`, `--regid=${USER}`, '--clear-groups', process.execPath, BRIDGE, '--run', helper.run, '--pick', copyOf('picked-tool')], {
    stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', reject: false,
  });
  bridge.stderr?.on('data', (d: Buffer) => bridgeLog.push(d.toString()));
  const ready = new Promise<void>((resolve) => {
    createInterface({ input: bridge.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as { id?: number; result?: unknown; notify?: string; payload?: unknown };
      if (msg.id !== undefined) {
        pending.get(msg.id)?.(msg.result);
        pending.delete(msg.id);
      } else if (msg.notify === 'bridge.ready') {
        resolve();
      } else if (msg.notify) {
        for (const p of pages) void emitTo(p, msg.notify, msg.payload);
      }
    });
  });
  await ready;
  server = await servePage();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  context = await browser.newContext({ viewport: { width: 1024, height: 800 }, timezoneId: 'UTC', locale: 'en-GB' });
}, 180_000);

afterAll(async () => {
  writeFileSync(path.join(OUT, 'figures.json'), `${JSON.stringify({ figures, axe: axeFindings }, null, 2)}\n`);
  await browser?.close();
  await server?.close();
  bridge?.stdin?.end();
  await bridge;
  await helper?.cleanup().catch((e: unknown) => console.warn('e2e: helper cleanup:', e));
  await lab?.destroy();
  if (process.env.E2E_VERBOSE) console.warn(`helper output:\n${helperLog.join('\n')}`);
  if (bridgeLog.length) console.warn(`bridge stderr:\n${bridgeLog.join('')}`);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}, 120_000);

async function open(file: string): Promise<{ page: Page; errors: string[] }> {
  const o = await openTrayPage(context, `${server.base}/${file}`, { invoke });
  pages.push(o.page);
  return o;
}

describe('the tray page against a real helper', () => {
  let main: { page: Page; errors: string[] };
  let prompt: { page: Page; errors: string[] };
  let promptedBin: string;
  let download: ReturnType<typeof slowDownload>;

  it('status and whitelist: a locked IT rule, a removable user rule', async () => {
    main = await open('index.html');
    const { page } = main;
    await page.locator('#gate[data-state="enforcing"]').waitFor();
    const ssh = page.locator('tr.rule[data-key="corp-e2e:ssh"]');
    await ssh.waitFor();
    expect(await ssh.locator('.lock').innerText()).toBe('locked');
    const user = page.locator(`tr.rule[data-key^="user.${USER}:"]`);
    await user.waitFor();
    expect(await user.locator('.lock').innerText()).toBe('revocable');
    expect(await user.locator('.program').innerText()).toBe(path.join(tmp, 'report-tool'));
    // My rules: the same rule, with Revoke.
    const decision = page.locator('li.decision-allow', { hasText: 'report-tool' });
    await decision.waitFor();
    expect(await decision.locator('button').innerText()).toBe('Revoke');
    // Why, for an IT rule: the helper's words (by path, until the helper explains rules by key).
    await ssh.locator('summary').click();
    await ssh.locator('.why-reason').waitFor();
    expect(await ssh.locator('.why-reason').innerText()).toMatch(/^Allowed: .*ssh/);
    expect(await page.locator('#add-app').isDisabled()).toBe(false);
    await shoot(page, 'status');
    expect(main.errors).toEqual([]);
  });

  it('a blocked attempt appears, with the helper’s explanation', async () => {
    promptedBin = copyOf('corp-sync');
    const t0 = Date.now();
    download = slowDownload(promptedBin);
    const row = main.page.locator(`#blocked li[data-exe="${promptedBin}"]`);
    await row.waitFor({ timeout: 15_000 });
    figures.blockedAttemptShownMs = Date.now() - t0;
    await row.locator('.why-reason').waitFor();
    expect(await row.locator('.why-reason').innerText()).toMatch(/^Denied: .*no rule allows/);
  });

  it('the prompt window: Deny focused; "Always allow" lets the next retransmission through', async () => {
    prompt = await open('prompt.html');
    const { page } = prompt;
    await page.setViewportSize({ width: 400, height: 600 });
    const card = page.locator('article.prompt', { hasText: 'corp-sync' });
    await card.waitFor({ timeout: 15_000 });
    await page.waitForFunction(() => (document.activeElement as HTMLElement | null)?.dataset['decision'] === 'deny');
    expect(await card.locator('.prompt-timer').innerText()).toMatch(/^Denied in \d+ min \d+ s without an answer\.$/);
    const t0 = Date.now();
    await card.locator('button[data-decision="allow-always"]').click();
    // The helper closes the prompt: the window has nothing left to answer.
    await page.locator('#prompts-empty').waitFor({ state: 'visible' });
    // Its rule is mine now, pinned.
    const decision = main.page.locator('li.decision-allow', { hasText: 'corp-sync' });
    await decision.waitFor();
    expect(await decision.innerText()).toContain('pinned to sha256');
    // The program, still running, gets through on its next retransmission: its connection is established.
    await waitUntil('the connection to be established', () => connectedToCorp(), 100_000);
    figures.allowToTrafficMs = Date.now() - t0;
    expect(prompt.errors).toEqual([]);
  });

  it('revoke in the page: its connection is cut', async () => {
    const decision = main.page.locator('li.decision-allow', { hasText: 'corp-sync' });
    await decision.locator('button', { hasText: 'Revoke' }).click();
    await decision.waitFor({ state: 'detached' });
    const r = await download;
    const [code, size] = String(r.stdout).split(' ');
    // It had started (HTTP 200, some bytes), then stalled once out of the rule: curl gave up (28).
    expect({ code, exit: r.exitCode }).toEqual({ code: '200', exit: 28 });
    expect(Number(size)).toBeGreaterThan(0);
    expect(Number(size)).toBeLessThan(50_000_000);
  });

  it('a pending prompt, seen in both windows (screenshots); Escape denies it', async () => {
    const bin = copyOf('corp-backup');
    const curl = slowDownload(bin);
    const card = prompt.page.locator('article.prompt', { hasText: 'corp-backup' });
    await card.waitFor({ timeout: 15_000 });
    await prompt.page.waitForFunction(() => (document.activeElement as HTMLElement | null)?.dataset['decision'] === 'deny');
    await card.locator('details.why summary').click();
    await card.locator('.why-reason').waitFor();
    expect(await card.locator('.why-reason').innerText()).toMatch(/^Denied: /);
    await card.locator('button[data-decision="deny"]').focus();
    await shoot(prompt.page, 'prompt', 600);
    await main.page.locator(`#blocked li[data-exe="${bin}"] .why-reason`).waitFor();
    await main.page.locator('#prompts-section article.prompt').first().waitFor();
    await shoot(main.page, 'blocked');
    // Keyboard: Deny has the focus (shoot() kept it); Escape denies.
    await card.locator('button[data-decision="deny"]').focus();
    await prompt.page.keyboard.press('Escape');
    await prompt.page.locator('#prompts-empty').waitFor({ state: 'visible' });
    // Denied: no connection; the test ends its download (it would retry for 100 s).
    expect(await connectedToCorp()).toBe(false);
    process.kill(curl.pid as number, 'SIGTERM');
    await curl;
    expect(prompt.errors).toEqual([]);
  });

  it('"Add an app…" from an installed application, for one hour', async () => {
    const exe = copyOf('corp-chat');
    writeFileSync(path.join(appsDir, 'corp-chat.desktop'), `[Desktop Entry]\nType=Application\nName=Corp Chat\nIcon=corp-chat\nExec=${exe} %U\nComment=Chat with colleagues\n`);
    const { page } = main;
    await page.locator('#add-app').click();
    const dialog = page.locator('#add-app-dialog');
    await dialog.locator('button.app', { hasText: 'Corp Chat' }).click();
    expect(await dialog.locator('#add-app-chosen').innerText()).toBe(`Chosen: Corp Chat — ${exe}`);
    await dialog.locator('#add-app-duration').selectOption('3600');
    await shoot(page, 'add-app', 800, false);
    await dialog.locator('#add-app-submit').click();
    await dialog.waitFor({ state: 'hidden' });
    const decision = page.locator('li.decision-allow', { hasText: 'corp-chat' });
    await decision.waitFor();
    expect(await decision.locator('.decision-facts').innerText()).toMatch(/^the whole tunnel · until \d{4}-/);
    // The helper has it as this user's rule.
    const list = JSON.parse(String((await helper.cli(['list', '--json'], { uid: USER })).stdout)) as { rules: Array<{ uid?: number; binary?: { path?: string } }> };
    expect(list.rules.some((r) => r.uid === USER && r.binary?.path === exe)).toBe(true);
    expect(main.errors).toEqual([]);
  });

  it('"Add an app…" refused where an IT deny covers the app: the page says why, as the CLI does', async () => {
    const exe = copyOf('unvetted-tool');
    writeFileSync(path.join(appsDir, 'unvetted.desktop'), `[Desktop Entry]\nType=Application\nName=Unvetted Tool\nExec=${exe}\n`);
    const { page } = main;
    await page.locator('#add-app').click();
    const dialog = page.locator('#add-app-dialog');
    await dialog.locator('button.app', { hasText: 'Unvetted Tool' }).click();
    await dialog.locator('#add-app-submit').click();
    const status = dialog.locator('#add-app-status.prompt-error');
    await status.waitFor();
    expect(await status.innerText()).toBe(
      `Not added: ${exe} stays denied: denied by rule no-unvetted of profile corp-e2e, and an IT deny wins over user rules; ask your administrator`,
    );
    await shoot(page, 'add-app-refused', 800, false);
    // In a tray pop-up (400×600) the answer is in view without scrolling, as are the buttons.
    await page.setViewportSize({ width: 400, height: 600 });
    const inView = async (sel: string) => dialog.locator(sel).evaluate((el) => {
      const r = el.getBoundingClientRect();
      return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0;
    });
    expect({ status: await inView('#add-app-status'), add: await inView('#add-app-submit') }).toEqual({ status: true, add: true });
    await page.setViewportSize({ width: 1024, height: 800 });
    await dialog.locator('#add-app-cancel').click();
    await dialog.waitFor({ state: 'hidden' });
    // The CLI refuses it with the same words, exit 1.
    const cli = await helper.cli(['allow', exe], { uid: USER });
    expect({ code: cli.exitCode, err: String(cli.stderr).trim() }).toEqual({ code: 1, err: `tunnelgate: ${exe} stays denied: denied by rule no-unvetted of profile corp-e2e, and an IT deny wins over user rules; ask your administrator` });
    expect(main.errors).toEqual([]);
  });

  it('the theme follows the preference', async () => {
    const { page } = main;
    await page.locator('input[name="pref-theme"][value="dark"]').check();
    await page.locator('html[data-theme="dark"]').waitFor();
    await page.emulateMedia({ colorScheme: 'light' });
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).toBe('rgb(22, 25, 29)');
    await page.locator('input[name="pref-theme"][value="system"]').check();
    await page.locator('html[data-theme="system"]').waitFor();
  });

  it('the helper stopped: "helper unavailable"; started: recovered', async () => {
    const { page } = main;
    await helper.kill('SIGTERM');
    await page.locator('#gate[data-state="unknown"]').waitFor();
    expect(await page.locator('#gate .gate-title').innerText()).toBe('Helper unavailable');
    expect(await page.locator('#add-app').isDisabled()).toBe(true);
    await shoot(page, 'unavailable');
    await helper.restart();
    await page.locator('#gate[data-state="enforcing"]').waitFor({ timeout: 30_000 });
    await page.locator('li.decision-allow', { hasText: 'corp-chat' }).waitFor();
    expect(main.errors).toEqual([]);
  });
});

/** A TCP connection from the workstation to the corp service is established (the kernel's socket table). */
async function connectedToCorp(): Promise<boolean> {
  const r = await lab.exec('ws', 'ss', ['-Htn', 'state', 'established', 'dst', lab.corpV4], { reject: false });
  return String(r.stdout).trim().length > 0;
}

async function waitUntil(what: string, probe: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}
