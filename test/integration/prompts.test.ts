// Prompts end to end, in a lab with a real wireguard-go tunnel and the real helper: a
// program no rule allows tries the tunnel, its dropped packets (NFLOG) become one prompt to
// the user who runs it, and the answer decides, with no restart of the program.
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PromptView } from '../../common/api.js';
import type { StampedEvent } from '../../common/events.js';
import { createLab } from '../lab/lab.js';
import type { Lab } from '../lab/lab.js';
import { packageRoot, startHelper } from '../lab/helper-proc.js';
import type { HelperHandle } from '../lab/helper-proc.js';

const CURL = realpathSync('/usr/bin/curl');
const NODE = realpathSync(process.execPath);
const CLIENT = path.join(packageRoot(), 'dist', 'common', 'node', 'client.js');
/** Users made up by this test: each scenario its own, so prompts do not mix. */
const ALICE = 4331;
const BOB = 4332;
const CAROL = 4333;
const DAVE = 4334;
const ERIN = 4335;
const TIMEOUT_S = 3;

let lab: Lab;
let helper: HelperHandle;
let tmp: string;

const asUser = (uid: number, cmd: string, args: string[]) => ['setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', cmd, ...args]] as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A copy of curl at a path of its own: a program no rule allows. */
function curlCopy(name: string): string {
  const file = path.join(tmp, name);
  copyFileSync(CURL, file);
  chmodSync(file, 0o755);
  return file;
}

/** One curl, one connection: its SYN is retransmitted (1 s, 3 s, 7 s, 15 s …) until it passes or gives up. */
function retryingCurl(uid: number, bin: string, seconds = 25) {
  const [cmd, args] = asUser(uid, bin, ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--connect-timeout', String(seconds), '-m', String(seconds + 5), lab.urls.corpV4]);
  return lab.spawn('ws', cmd, args, { reject: false });
}

async function promptsOf(uid: number): Promise<PromptView[]> {
  const r = await helper.cli(['prompts', '--json'], { uid });
  expect(r.exitCode).toBe(0);
  return JSON.parse(String(r.stdout)) as PromptView[];
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const promptFor = (uid: number, exe: string) => waitFor(`a prompt for ${exe}`, async () => (await promptsOf(uid)).find((p) => p.exe === exe));

async function events(uid?: number): Promise<StampedEvent[]> {
  const r = await helper.cli(['events', '--json'], uid === undefined ? {} : { uid });
  return String(r.stdout).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as StampedEvent);
}

beforeAll(async () => {
  lab = await createLab();
  tmp = mkdtempSync('/tmp/tg-prompts-');
  chmodSync(tmp, 0o755);
  helper = await startHelper(lab, {
    profiles: {
      'corp-test': { schema: 'tunnelgate/profile@1', id: 'corp-test', version: 1, mode: 'enforce', interfaces: [lab.wsIface], userPrompts: 'allow', rules: [] },
    },
  });
  // A short answer clock for the timeout test; read at start-up.
  writeFileSync(path.join(helper.etc, 'helper.json'), JSON.stringify({ promptTimeoutSeconds: TIMEOUT_S }));
  await helper.kill('SIGTERM');
  await helper.restart();
}, 120_000);

afterAll(async () => {
  await helper?.cleanup();
  await lab?.destroy();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('prompts', () => {
  it("a denied attempt is a prompt naming the binary, user, pid and destination; allow-always lets the program's next SYN through", async () => {
    const bin = curlCopy('alice-curl');
    const t0 = Date.now();
    const curl = retryingCurl(ALICE, bin);
    const p = await promptFor(ALICE, bin);
    expect(p).toMatchObject({ uid: ALICE, user: `uid ${ALICE}`, exe: bin, program: { name: 'alice-curl' } });
    expect(p.pids).toEqual([curl.pid]);
    expect(p.destinations).toEqual([expect.objectContaining({ addr: lab.corpV4, port: lab.ports.http, proto: 'tcp', iface: lab.wsIface })]);
    expect(p.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(p.cmdline?.[0]).toBe(bin);
    const opened = (await events(ALICE)).find((e) => e.type === 'prompt.opened' && e.id === p.id);
    expect(opened).toMatchObject({ uid: ALICE, pid: curl.pid, exe: bin, dst: `${lab.corpV4}:${lab.ports.http}/tcp` });

    const ans = await helper.cli(['answer', p.id, 'allow-always'], { uid: ALICE });
    expect({ code: ans.exitCode, err: ans.stderr }).toEqual({ code: 0, err: '' });
    expect(String(ans.stdout)).toContain(`admitted now: pid ${curl.pid}`);
    const r = await curl;
    expect(r.stdout).toBe('200');
    // One curl, one connection: it got through on a retransmission, well before its timeout.
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(await promptsOf(ALICE)).toEqual([]);
    // Pinned to the binary it runs, for Alice only.
    const list = JSON.parse(String((await helper.cli(['list', '--json'], { uid: ALICE })).stdout)) as { rules: Array<{ uid?: number; binary?: { path?: string; sha256?: string } }> };
    expect(list.rules).toEqual([expect.objectContaining({ uid: ALICE, binary: { path: bin, sha256: p.sha256 } })]);
    // A new run of the program is allowed too.
    const again = await retryingCurl(ALICE, bin, 10);
    expect(again.stdout).toBe('200');
  }, 60_000);

  it('deny keeps it dropped, and the process is not asked about again', async () => {
    const bin = curlCopy('bob-curl');
    const curl = retryingCurl(BOB, bin, 8);
    const p = await promptFor(BOB, bin);
    const ans = await helper.cli(['answer', p.id, 'deny'], { uid: BOB });
    expect(ans.exitCode).toBe(0);
    const r = await curl;
    expect(r.stdout).toBe('000');
    expect(r.exitCode).toBe(28);
    expect(await promptsOf(BOB)).toEqual([]);
    const mine = (await events(BOB)).filter((e) => e.type === 'prompt.opened' && e.exe === bin);
    expect(mine).toHaveLength(1);
  }, 60_000);

  it("no answer within the timeout, once the user's app shows the prompt, counts as deny", async () => {
    const bin = curlCopy('carol-curl');
    // Carol's "tray app": a subscriber of her prompts, printing what it hears.
    const app = path.join(tmp, 'app.mjs');
    writeFileSync(app, `
import { HelperClient } from ${JSON.stringify(CLIENT)};
const c = await HelperClient.connect(${JSON.stringify(helper.run)});
c.onNotification((n) => console.log(JSON.stringify(n)));
await c.subscribe(['prompts']);
console.log('"subscribed"');
await c.closed;
`);
    const [cmd, args] = asUser(CAROL, NODE, [app]);
    const ui = lab.spawn('ws', cmd, args, { reject: false });
    let heard = '';
    ui.stdout?.on('data', (d: Buffer) => (heard += d.toString()));
    await waitFor('the app to subscribe', async () => (heard.includes('subscribed') ? true : undefined));
    const curl = retryingCurl(CAROL, bin, 12);
    const p = await promptFor(CAROL, bin);
    expect(Date.parse(p.deadline as string) - Date.parse(p.firstSeen)).toBeLessThanOrEqual(TIMEOUT_S * 1000 + 1000);
    await sleep(TIMEOUT_S * 1000 + 500);
    expect(await promptsOf(CAROL)).toEqual([]);
    const closed = (await events(CAROL)).find((e) => e.type === 'prompt.closed' && e.id === p.id);
    expect(closed).toMatchObject({ reason: 'timeout' });
    const r = await curl;
    expect(r.stdout).toBe('000');
    const notes = heard.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { method: string; params: { change: string; prompt: PromptView } });
    expect(notes.map((n) => n.params.change)).toContain('opened');
    expect(notes.at(-1)?.params).toMatchObject({ change: 'closed', prompt: { id: p.id } });
    expect(notes.every((n) => n.params.prompt.uid === CAROL)).toBe(true);
    process.kill(ui.pid as number, 'SIGTERM');
    await ui;
  }, 60_000);

  it('1,000 dropped packets in a burst from one program are one prompt', async () => {
    // It stays alive (with its socket) a while: an attempt is attributed to a process by the
    // socket it came from, which must still exist when the helper looks.
    const burst = `
const s = require('node:dgram').createSocket('udp4');
let left = 1000;
const next = () => { if (left-- > 0) s.send('x', ${lab.ports.udpEcho}, ${JSON.stringify(lab.corpV4)}, next); else console.log('sent'); };
next();
setTimeout(() => s.close(), 5000);`;
    const [cmd, args] = asUser(DAVE, NODE, ['-e', burst]);
    const sender = lab.spawn('ws', cmd, args, { reject: false });
    const p = await promptFor(DAVE, NODE);
    expect((await sender).stdout).toBe('sent');
    await sleep(1500);
    const all = await promptsOf(DAVE);
    expect(all).toHaveLength(1);
    // The drop rule's log is rate-limited (20/s, burst 50): the count is what reached the helper.
    expect(all[0]?.count).toBeGreaterThanOrEqual(1);
    expect(all[0]?.destinations).toEqual([expect.objectContaining({ addr: lab.corpV4, port: lab.ports.udpEcho, proto: 'udp' })]);
    expect((await events(DAVE)).filter((e) => e.type === 'prompt.opened')).toHaveLength(1);
    expect(p.id).toBe(all[0]?.id);
  }, 30_000);

  it('allow-once admits that process only, for as long as it runs', async () => {
    const bin = curlCopy('erin-curl');
    const curl = retryingCurl(ERIN, bin);
    const p = await promptFor(ERIN, bin);
    const ans = await helper.cli(['answer', p.id, 'allow-once', '--json'], { uid: ERIN });
    expect(ans.stderr).toBe('');
    const res = JSON.parse(String(ans.stdout)) as { decisionRecord: { key: string; lifetime: unknown }; admitted: number[] };
    expect(res.decisionRecord.lifetime).toEqual({ kind: 'process', pids: [curl.pid] });
    expect((await curl).stdout).toBe('200');
    // The process exited: the rule goes (the sweep runs every 2 s).
    await waitFor('the allow-once rule to end', async () => {
      const d = JSON.parse(String((await helper.cli(['decisions', '--json'], { uid: ERIN })).stdout)) as unknown[];
      return d.length === 0 ? true : undefined;
    });
    expect((await events(ERIN)).find((e) => e.type === 'rule.removed' && e.key === res.decisionRecord.key)).toMatchObject({ reason: 'process-exited' });
  }, 60_000);

  it('where a profile locks user decisions there is no prompt, only the record; allow is refused', async () => {
    helper.writeProfile('corp-test', { schema: 'tunnelgate/profile@1', id: 'corp-test', version: 2, mode: 'enforce', interfaces: [lab.wsIface], userPrompts: 'deny', rules: [] });
    await waitFor('the locked policy', async () => {
      const l = JSON.parse(String((await helper.cli(['list', '--json'])).stdout)) as { userPrompts: string };
      return l.userPrompts === 'deny' ? true : undefined;
    });
    const bin = curlCopy('locked-curl');
    const r = await retryingCurl(ALICE, bin, 3);
    expect(r.stdout).toBe('000');
    expect(await promptsOf(ALICE)).toEqual([]);
    const seen = (await events(ALICE)).filter((e) => e.type === 'attempt.denied' && e.attempt.exe === bin);
    expect(seen.length).toBeGreaterThan(0);
    const allow = await helper.cli(['allow', bin], { uid: ALICE });
    expect(allow.exitCode).toBe(1);
    expect(allow.stderr).toContain('user decisions are not allowed here: a profile (corp-test) sets userPrompts to "deny", so only IT profiles decide');
    // Alice's earlier allow-always stays stored but is not in force.
    const list = JSON.parse(String((await helper.cli(['list', '--json'], { uid: ALICE })).stdout)) as { rules: unknown[] };
    expect(list.rules).toEqual([]);
    const audit = readFileSync(path.join(helper.state, 'audit.log'), 'utf8');
    expect(audit).toContain('"type":"api.refused"');
    expect(audit).toContain('"type":"prompt.answered"');
  }, 60_000);
});
