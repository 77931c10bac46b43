// Prompts end to end, in a lab with a real wireguard-go tunnel and the real helper: a
// program no rule allows tries the tunnel, its dropped packets (NFLOG) become one prompt to
// the user who runs it, and the answer decides, with no restart of the program.
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PromptView } from '../../common/api.js';
import type { StampedEvent } from '../../common/events.js';
import { CLIENT } from '../lab/helper-proc.js';
import { follow, jsonLines, waitFor } from '../lab/fixture.js';
import { expectDropped, labAndHelper } from '../lab/suite.js';

const CURL = realpathSync('/usr/bin/curl');
const NODE = realpathSync(process.execPath);
/** Users made up by this test: each scenario its own, so prompts do not mix. */
const [ALICE, BOB, CAROL, DAVE, ERIN, FRANK] = [4331, 4332, 4333, 4334, 4335, 4336];
const TIMEOUT_S = 3;

const fx = labAndHelper({
  // A short answer clock for the timeout test; read at start-up.
  helperJson: { promptTimeoutSeconds: TIMEOUT_S },
  profiles: ({ profile }) => ({ 'corp-test': profile() }),
});

/** A copy of curl at a path of its own: a program no rule allows. */
const curlCopy = (name: string) => fx.copyBinary(CURL, name);

/** One curl, one connection: its SYN is retransmitted (1 s, 3 s, 7 s, 15 s …) until it passes or gives up. */
function retryingCurl(uid: number, bin: string, seconds = 25) {
  return fx.spawn(bin, ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--connect-timeout', String(seconds), '-m', String(seconds + 5), fx.lab.urls.corpV4], { uid });
}

async function promptsOf(uid: number): Promise<PromptView[]> {
  const r = await fx.cli(['prompts', '--json'], { uid });
  expect(r.exitCode).toBe(0);
  return JSON.parse(String(r.stdout)) as PromptView[];
}

/** A deadline, not a pause: under load 20 on two cores a prompt has taken over 10 s to appear. */
const promptFor = (uid: number, exe: string) => waitFor(`a prompt for ${exe}`, async () => (await promptsOf(uid)).find((p) => p.exe === exe), 30_000);

async function events(uid?: number): Promise<StampedEvent[]> {
  const r = await fx.cli(['events', '--json'], uid === undefined ? {} : { uid });
  return jsonLines<StampedEvent>(String(r.stdout));
}

describe('prompts', () => {
  it("a denied attempt is a prompt naming the binary, user, pid and destination; allow-always lets the program's next SYN through", async () => {
    const bin = curlCopy('alice-curl');
    const t0 = Date.now();
    const curl = retryingCurl(ALICE, bin);
    const p = await promptFor(ALICE, bin);
    expect(p).toMatchObject({ uid: ALICE, user: `uid ${ALICE}`, exe: bin, program: { name: 'alice-curl' } });
    expect(p.pids).toEqual([curl.pid]);
    expect(p.destinations).toEqual([expect.objectContaining({ addr: fx.lab.corpV4, port: fx.lab.ports.http, proto: 'tcp', iface: fx.lab.wsIface })]);
    expect(p.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(p.cmdline?.[0]).toBe(bin);
    const opened = (await events(ALICE)).find((e) => e.type === 'prompt.opened' && e.id === p.id);
    expect(opened).toMatchObject({ uid: ALICE, pid: curl.pid, exe: bin, dst: `${fx.lab.corpV4}:${fx.lab.ports.http}/tcp` });

    const ans = await fx.helper.cli(['answer', p.id, 'allow-always'], { uid: ALICE });
    expect({ code: ans.exitCode, err: ans.stderr }).toEqual({ code: 0, err: '' });
    expect(String(ans.stdout)).toContain(`admitted now: pid ${curl.pid}`);
    const r = await curl;
    // One curl, one connection: it got through on a retransmission of its SYN.
    expect(r.stdout).toBe('200');
    console.log(`allow-always: the waiting curl got HTTP 200 ${Date.now() - t0} ms after it started`);
    expect(await promptsOf(ALICE)).toEqual([]);
    // Pinned to the binary it runs, for Alice only.
    const list = JSON.parse(String((await fx.helper.cli(['list', '--json'], { uid: ALICE })).stdout)) as { rules: Array<{ uid?: number; binary?: { path?: string; sha256?: string } }> };
    expect(list.rules).toEqual([expect.objectContaining({ uid: ALICE, binary: { path: bin, sha256: p.sha256 } })]);
    // A new run of the program is allowed too.
    const again = await retryingCurl(ALICE, bin, 10);
    expect(again.stdout).toBe('200');
  }, 60_000);

  it('deny keeps it dropped, and the process is not asked about again', async () => {
    const bin = curlCopy('bob-curl');
    const curl = retryingCurl(BOB, bin, 8);
    const p = await promptFor(BOB, bin);
    const ans = await fx.helper.cli(['answer', p.id, 'deny'], { uid: BOB });
    expect(ans.exitCode).toBe(0);
    expectDropped(await curl);
    expect(await promptsOf(BOB)).toEqual([]);
    const mine = (await events(BOB)).filter((e) => e.type === 'prompt.opened' && e.exe === bin);
    expect(mine).toHaveLength(1);
  }, 60_000);

  it("no answer within the timeout, once the user's app shows the prompt, counts as deny", async () => {
    const bin = curlCopy('carol-curl');
    // Carol's "tray app": a subscriber of her prompts, printing what it hears.
    const app = path.join(fx.tmp, 'app.mjs');
    writeFileSync(app, `
import { HelperClient } from ${JSON.stringify(CLIENT)};
const c = await HelperClient.connect(${JSON.stringify(fx.helper.run)});
c.onNotification((n) => console.log(JSON.stringify(n)));
await c.subscribe(['prompts']);
console.log('"subscribed"');
await c.closed;
`);
    const ui = fx.spawn(NODE, [app], { uid: CAROL });
    const heard = follow(ui);
    await heard.until('the app to subscribe', (l) => l.includes('"subscribed"'));
    const curl = retryingCurl(CAROL, bin, 12);
    const p = await promptFor(CAROL, bin);
    expect(Date.parse(p.deadline as string) - Date.parse(p.firstSeen)).toBeLessThanOrEqual(TIMEOUT_S * 1000 + 1000);
    type Note = { method: string; params: { change: string; prompt: PromptView } };
    // Nobody answers: the app hears the prompt close.
    await heard.until('the prompt to close', () => heard.json<Note>().some((n) => n.params.change === 'closed' && n.params.prompt.id === p.id), (TIMEOUT_S + 10) * 1000);
    expect(await promptsOf(CAROL)).toEqual([]);
    const closed = (await events(CAROL)).find((e) => e.type === 'prompt.closed' && e.id === p.id);
    expect(closed).toMatchObject({ reason: 'timeout' });
    expectDropped(await curl);
    const notes = heard.json<Note>();
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
const next = () => { if (left-- > 0) s.send('x', ${fx.lab.ports.udpEcho}, ${JSON.stringify(fx.lab.corpV4)}, next); else console.log('sent'); };
next();
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();`;
    const sender = fx.spawn(NODE, ['-e', burst], { uid: DAVE });
    const said = follow(sender);
    const p = await promptFor(DAVE, NODE);
    await said.until('the burst sent', (l) => l.includes('sent'), 30_000);
    // A barrier instead of a pause: another user's datagrams, sent after the burst, every
    // 100 ms until they make a prompt (the log is rate-limited, 20/s burst 50). The helper
    // reads the log in order, so by Frank's prompt it has read every packet of the burst.
    const marker = fx.spawn(NODE, ['-e', `
const s = require('node:dgram').createSocket('udp4');
setInterval(() => s.send('m', ${fx.lab.ports.udpEcho}, ${JSON.stringify(fx.lab.corpV4)}), 100);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();`], { uid: FRANK });
    try {
      await promptFor(FRANK, NODE);
    } finally {
      for (const c of [marker, sender]) c.stdin?.end();
      await Promise.all([marker, sender]);
    }
    const all = await promptsOf(DAVE);
    expect(all).toHaveLength(1);
    // The drop rule's log is rate-limited (20/s, burst 50): the count is what reached the helper.
    expect(all[0]?.count).toBeGreaterThanOrEqual(1);
    expect(all[0]?.destinations).toEqual([expect.objectContaining({ addr: fx.lab.corpV4, port: fx.lab.ports.udpEcho, proto: 'udp' })]);
    expect((await events(DAVE)).filter((e) => e.type === 'prompt.opened')).toHaveLength(1);
    expect(p.id).toBe(all[0]?.id);
  }, 90_000);

  it('allow-once admits that process only, for as long as it runs', async () => {
    const bin = curlCopy('erin-curl');
    const curl = retryingCurl(ERIN, bin);
    const p = await promptFor(ERIN, bin);
    const ans = await fx.helper.cli(['answer', p.id, 'allow-once', '--json'], { uid: ERIN });
    expect(ans.stderr).toBe('');
    const res = JSON.parse(String(ans.stdout)) as { decisionRecord: { key: string; lifetime: unknown }; admitted: number[] };
    expect(res.decisionRecord.lifetime).toEqual({ kind: 'process', pids: [curl.pid] });
    expect((await curl).stdout).toBe('200');
    // The process exited: the rule goes (the sweep runs every 2 s).
    await waitFor('the allow-once rule to end', async () => {
      const d = JSON.parse(String((await fx.helper.cli(['decisions', '--json'], { uid: ERIN })).stdout)) as unknown[];
      return d.length === 0 ? true : undefined;
    });
    expect((await events(ERIN)).find((e) => e.type === 'rule.removed' && e.key === res.decisionRecord.key)).toMatchObject({ reason: 'process-exited' });
  }, 60_000);

  it('where a profile locks user decisions there is no prompt, only the record; allow is refused', async () => {
    fx.helper.writeProfile('corp-test', fx.profile({ version: 2, userPrompts: 'deny' }));
    await waitFor('the locked policy', async () => {
      const l = JSON.parse(String((await fx.helper.cli(['list', '--json'])).stdout)) as { userPrompts: string };
      return l.userPrompts === 'deny' ? true : undefined;
    });
    const bin = curlCopy('locked-curl');
    expectDropped(await retryingCurl(ALICE, bin, 3));
    expect(await promptsOf(ALICE)).toEqual([]);
    const seen = (await events(ALICE)).filter((e) => e.type === 'attempt.denied' && e.attempt.exe === bin);
    expect(seen.length).toBeGreaterThan(0);
    const allow = await fx.helper.cli(['allow', bin], { uid: ALICE });
    expect(allow.exitCode).toBe(1);
    expect(allow.stderr).toContain('user decisions are not allowed here: profile corp-test sets userPrompts to "deny", so only IT profiles decide');
    // Alice's earlier allow-always stays stored but is not in force.
    const list = JSON.parse(String((await fx.helper.cli(['list', '--json'], { uid: ALICE })).stdout)) as { rules: unknown[] };
    expect(list.rules).toEqual([]);
    const audit = readFileSync(path.join(fx.helper.state, 'audit.log'), 'utf8');
    expect(audit).toContain('"type":"api.refused"');
    expect(audit).toContain('"type":"prompt.answered"');
  }, 60_000);
});
