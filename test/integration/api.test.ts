// The helper's API in the lab, with the real helper and the real CLI run as users this test
// makes up (setpriv): who may do what, a socket that survives hostile clients, decisions that
// survive kill -9, and `allow` letting a program's next retransmission through.
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExplainResult, ListResult, UserDecisionView } from '../../common/api.js';
import type { StampedEvent } from '../../common/events.js';
import { createLab } from '../lab/lab.js';
import type { Lab } from '../lab/lab.js';
import { packageRoot, startHelper } from '../lab/helper-proc.js';
import type { HelperHandle } from '../lab/helper-proc.js';

const CURL = realpathSync('/usr/bin/curl');
const NODE = realpathSync(process.execPath);
const CLIENT = path.join(packageRoot(), 'dist', 'common', 'node', 'client.js');
const ALICE = 4321;
const BOB = 4322;
/** Admin group 4500 (helper.json); Carol's primary group is it (setpriv --regid=4500). */
const ADMIN_GID = 4500;
const CAROL = 4500;

let lab: Lab;
let helper: HelperHandle;
let tmp: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const asUser = (uid: number, cmd: string, args: string[]) => ['setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', cmd, ...args]] as const;
const json = <T>(r: { stdout: unknown }) => JSON.parse(String(r.stdout)) as T;

function copyOf(src: string, name: string): string {
  const file = path.join(tmp, name);
  copyFileSync(src, file);
  chmodSync(file, 0o755);
  return file;
}

/** Run a node script (ESM, with the built client at hand) in the workstation namespace. */
function script(name: string, source: string, uid?: number, args: string[] = []) {
  const file = path.join(tmp, `${name}.mjs`);
  writeFileSync(file, source);
  const [cmd, a] = uid === undefined ? [NODE, [file, ...args]] : asUser(uid, NODE, [file, ...args]);
  return lab.exec('ws', cmd, a, { reject: false, timeout: 60_000 });
}

async function status(uid?: number) {
  const r = await helper.cli(['status', '--json'], uid === undefined ? {} : { uid });
  return json<{ state: string }>(r);
}

beforeAll(async () => {
  lab = await createLab();
  tmp = mkdtempSync('/tmp/tg-api-');
  chmodSync(tmp, 0o755);
  helper = await startHelper(lab, {
    profiles: {
      'corp-test': {
        schema: 'tunnelgate/profile@1', id: 'corp-test', version: 1, mode: 'enforce', interfaces: [lab.wsIface], userPrompts: 'allow',
        rules: [{ id: 'ssh', binary: { path: '/usr/bin/ssh' } }],
      },
    },
  });
  writeFileSync(path.join(helper.etc, 'helper.json'), JSON.stringify({ adminGroup: ADMIN_GID }));
  await helper.kill('SIGTERM');
  await helper.restart();
}, 120_000);

afterAll(async () => {
  await helper?.cleanup();
  await lab?.destroy();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('who may do what', () => {
  let bobRule: string;
  let bobTool: string;

  beforeAll(async () => {
    bobTool = copyOf(CURL, 'bob-tool');
    const r = await helper.cli(['allow', bobTool, '--uid', String(BOB), '--json']);
    expect(r.exitCode).toBe(0);
    bobRule = json<{ rule: UserDecisionView }>(r).rule.key as string;
  });

  it("a user cannot read another user's rules; root and the admin group can", async () => {
    const keys = async (uid?: number) => json<ListResult>(await helper.cli(['list', '--json'], uid === undefined ? {} : { uid })).rules.map((r) => r.key);
    expect(await keys(ALICE)).toEqual(['corp-test:ssh']);
    expect(await keys(BOB)).toEqual(['corp-test:ssh', bobRule]);
    expect(await keys()).toEqual(['corp-test:ssh', bobRule]);
    expect(await keys(CAROL)).toEqual(['corp-test:ssh', bobRule]);
    const decisions = async (uid?: number) => json<UserDecisionView[]>(await helper.cli(['decisions', '--json'], uid === undefined ? {} : { uid })).map((d) => d.key);
    expect(await decisions(ALICE)).toEqual([]);
    expect(await decisions(BOB)).toEqual([bobRule]);
    expect(await decisions()).toEqual([bobRule]);
  });

  it('a user cannot change policy: no rules for others, no revoking theirs or IT rules; each refusal is audited', async () => {
    const forBob = await helper.cli(['allow', CURL, '--uid', String(BOB)], { uid: ALICE });
    expect({ code: forBob.exitCode, err: String(forBob.stderr).trim() }).toEqual({ code: 1, err: `tunnelgate: only an admin may add rules of another user (uid ${BOB})` });
    const revoke = await helper.cli(['revoke', bobRule], { uid: ALICE });
    expect({ code: revoke.exitCode, err: String(revoke.stderr).trim() }).toEqual({ code: 1, err: `tunnelgate: only an admin may revoke decisions of another user (uid ${BOB})` });
    for (const uid of [ALICE, 0]) {
      const it = await helper.cli(['revoke', 'corp-test:ssh'], { uid });
      expect(it.exitCode).toBe(1);
      expect(it.stderr).toContain('corp-test:ssh is rule ssh of profile corp-test: IT rules cannot be revoked here, only by changing the profile');
    }
    const explainOther = await helper.cli(['explain', String(lab.pids.services)], { uid: ALICE });
    expect(explainOther.exitCode).toBe(1);
    expect(explainOther.stderr).toContain('only an admin may explain processes of another user (uid 0)');
    // Alice's own rule is hers to add.
    expect((await helper.cli(['allow', copyOf(CURL, 'alice-tool')], { uid: ALICE })).exitCode).toBe(0);

    const refused = (await helper.cli(['events', '--json'])).stdout;
    const lines = String(refused).trim().split('\n').map((l) => JSON.parse(l) as StampedEvent).filter((e) => e.type === 'api.refused' && e.uid === ALICE);
    expect(lines.map((e) => e.type === 'api.refused' && e.method)).toEqual(['allow', 'revoke', 'revoke', 'explain']);
    const audit = readFileSync(path.join(helper.state, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as StampedEvent);
    expect(audit.filter((e) => e.type === 'api.refused' && e.uid === ALICE)).toHaveLength(4);
    // Alice's view of the events holds none of Bob's.
    const mine = String((await helper.cli(['events', '--json'], { uid: ALICE })).stdout).trim().split('\n').map((l) => JSON.parse(l) as StampedEvent);
    expect(mine.some((e) => 'uid' in e && e.uid === BOB)).toBe(false);
    expect(mine.some((e) => e.type === 'api.refused' && e.uid === ALICE)).toBe(true);
  });

  it('the admin group (from the kernel: the connecting process\'s groups) may act for others; root may', async () => {
    const carol = await helper.cli(['allow', copyOf(CURL, 'for-alice'), '--uid', String(ALICE), '--for', '1h', '--json'], { uid: CAROL });
    expect(carol.exitCode).toBe(0);
    expect(json<{ rule: UserDecisionView }>(carol).rule).toMatchObject({ uid: ALICE, createdBy: CAROL, lifetime: { kind: 'until' } });
    const r = await helper.cli(['revoke', bobRule, '--json'], { uid: CAROL });
    expect(r.exitCode).toBe(0);
    expect(json<{ removed: UserDecisionView[] }>(r).removed.map((d) => d.key)).toEqual([bobRule]);
    // Another uid with the same groups but not the admin gid: not an admin.
    const dave = await helper.cli(['allow', CURL, '--uid', String(BOB)], { uid: 4501 });
    expect(dave.exitCode).toBe(1);
  });

  it("nobody may answer another user's prompt; unknown prompts are not found", async () => {
    const none = await helper.cli(['answer', '0123456789abcdef', 'allow-always'], { uid: ALICE });
    expect({ code: none.exitCode, err: String(none.stderr).trim() }).toEqual({ code: 1, err: 'tunnelgate: no pending prompt 0123456789abcdef' });
    // A prompt of Bob's: his program tries the tunnel.
    const bobCurl = copyOf(CURL, 'bob-curl');
    const [cmd, args] = asUser(BOB, bobCurl, ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--connect-timeout', '8', lab.urls.corpV4]);
    const curl = lab.spawn('ws', cmd, args, { reject: false });
    let id = '';
    for (let i = 0; i < 50 && !id; i++) {
      await sleep(100);
      id = json<Array<{ id: string; exe: string }>>(await helper.cli(['prompts', '--json'])).find((p) => p.exe === bobCurl)?.id ?? '';
    }
    expect(id).not.toBe('');
    expect(json<unknown[]>(await helper.cli(['prompts', '--json'], { uid: ALICE }))).toEqual([]);
    const steal = await helper.cli(['answer', id, 'allow-always'], { uid: ALICE });
    expect(steal.exitCode).toBe(1);
    expect(steal.stderr).toContain(`prompt ${id} is about a process of another user: only that user or an admin may answer it`);
    const byRoot = await helper.cli(['answer', id, 'deny']);
    expect(byRoot.exitCode).toBe(0);
    expect((await curl).stdout).toBe('000');
  }, 30_000);

  it('usage mistakes exit 2', async () => {
    expect((await helper.cli(['answer', '0123456789abcdef', 'maybe'])).exitCode).toBe(2);
    expect((await helper.cli(['answer', '0123456789abcdef', 'allow-for'])).exitCode).toBe(2);
    expect((await helper.cli(['allow', CURL, '--for', 'soon'])).exitCode).toBe(2);
    expect((await helper.cli(['allow', CURL, '--dst', '198.18.0.1/24'])).exitCode).toBe(2);
  });
});

describe('allow and explain on a running program', () => {
  it('a program retrying its connection gets through after `tunnelgate allow`, without a restart', async () => {
    const tool = copyOf(CURL, 'retrying-tool');
    const t0 = Date.now();
    const [cmd, args] = asUser(ALICE, tool, ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--connect-timeout', '25', lab.urls.corpV4]);
    const curl = lab.spawn('ws', cmd, args, { reject: false });
    await sleep(1500);
    const before = await helper.cli(['explain', String(curl.pid), '--dst', `${lab.corpV4}:${lab.ports.http}`], { uid: ALICE });
    expect(before.exitCode).toBe(1);
    expect(before.stdout).toContain(`deny: no rule allows ${tool}`);
    const allow = await helper.cli(['allow', tool, '--dst', `${lab.corpV4}:${lab.ports.http}/tcp`], { uid: ALICE });
    expect(allow.exitCode).toBe(0);
    expect(allow.stdout).toContain(`admitted now: pid ${curl.pid}`);
    const afterRun = await helper.cli(['explain', String(curl.pid), '--dst', `${lab.corpV4}:${lab.ports.http}`, '--json'], { uid: ALICE });
    expect(afterRun.stderr).toBe('');
    const after = json<ExplainResult>(afterRun);
    expect(after).toMatchObject({ verdict: 'allow', subject: { pid: curl.pid, exe: tool, uid: ALICE } });
    expect(after.admittedUnder).toBe(after.rule?.key);
    const r = await curl;
    expect(r.stdout).toBe('200');
    expect(Date.now() - t0).toBeLessThan(20_000);
    // Scoped to that destination: the other port stays closed to it.
    const [c2, a2] = asUser(ALICE, tool, ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '3', lab.urls.corpV4Alt]);
    expect((await lab.exec('ws', c2, a2, { reject: false })).stdout).toBe('000');
    const alt = await helper.cli(['explain', tool, '--dst', `${lab.corpV4}:${lab.ports.httpAlt}`], { uid: ALICE });
    expect(alt.exitCode).toBe(1);
    // Revoked: gone at once.
    const rv = await helper.cli(['revoke', tool], { uid: ALICE });
    expect(rv.exitCode).toBe(0);
    expect((await helper.cli(['explain', tool], { uid: ALICE })).exitCode).toBe(1);
  }, 60_000);
});

describe('a socket that survives hostile clients', () => {
  it('random bytes, huge lines, half-open connections; meanwhile 200 concurrent clients of another user are all served', async () => {
    // Bob's hostile client holds its connections open while Alice's 200 clients work.
    writeFileSync(path.join(tmp, 'hostile.mjs'), `
import net from 'node:net';
import { randomBytes } from 'node:crypto';
const sock = ${JSON.stringify(path.join(helper.run, 'api.sock'))};
const raw = () => new Promise((res, rej) => { const s = net.connect(sock, () => res(s)); s.on('error', () => {}); s.once('error', rej); });
// Random bytes, with and without newlines.
const junk = await Promise.all(Array.from({ length: 20 }, async () => { const s = await raw(); for (let i = 0; i < 20; i++) s.write(randomBytes(512)); s.write('\\n'); return s; }));
// Lines far over the limit.
const huge = await Promise.all(Array.from({ length: 5 }, async () => { const s = await raw(); s.write('{"jsonrpc":"2.0","id":1,"method":"status","params":"' + 'x'.repeat(2 * 1024 * 1024)); return s; }));
// Half-open: a partial request, then silence.
const half = await Promise.all(Array.from({ length: 100 }, async () => { const s = await raw(); s.write('{"jsonrpc":"2.0","id":1,"meth'); return s; }));
await new Promise((r) => setTimeout(r, 500));
console.log(JSON.stringify({ holding: junk.length + half.length, hugeClosed: huge.filter((s) => s.destroyed || s.readableEnded).length }));
process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
`);
    const [hc, ha] = asUser(BOB, NODE, [path.join(tmp, 'hostile.mjs')]);
    const hostile = lab.spawn('ws', hc, ha, { reject: false, stdin: 'pipe' });
    let said = '';
    hostile.stdout?.on('data', (d: Buffer) => (said += d.toString()));
    for (let i = 0; i < 100 && !said.includes('holding'); i++) await sleep(100);
    const held = JSON.parse(said) as { holding: number; hugeClosed: number };
    expect(held.hugeClosed).toBe(5);
    try {
      const r = await script('concurrent', `
import { HelperClient } from ${JSON.stringify(CLIENT)};
const t0 = Date.now();
const clients = await Promise.all(Array.from({ length: 200 }, () => HelperClient.connect(${JSON.stringify(helper.run)})));
const answers = await Promise.all(clients.map(async (c) => [(await c.call('status', {})).state, (await c.call('prompts', {})).length]));
for (const c of clients) c.close();
console.log(JSON.stringify({ answered: answers.length, states: [...new Set(answers.map((a) => a[0]))], ms: Date.now() - t0 }));
`, ALICE);
      expect(r.stderr).toBe('');
      const out = JSON.parse(String(r.stdout)) as { answered: number; states: string[]; ms: number };
      expect(out).toMatchObject({ answered: 200, states: ['enforcing'] });
      expect(out.ms).toBeLessThan(15_000);
      expect((await status(BOB)).state).toBe('enforcing');
    } finally {
      hostile.stdin?.end();
      await hostile;
    }
    expect(helper.output()).not.toContain('internal error');
    expect((await status()).state).toBe('enforcing');
  }, 90_000);
});

describe('decisions survive kill -9', () => {
  it('killing the helper while it saves decisions loses nothing that was confirmed, and the file parses', async () => {
    // Four clients add rules as fast as the helper confirms them, each printing a path once
    // its allow has been answered; the helper is killed in the middle.
    writeFileSync(path.join(tmp, 'saver.mjs'), `
import { HelperClient } from ${JSON.stringify(CLIENT)};
let n = 0;
const worker = async (w) => {
  const c = await HelperClient.connect(${JSON.stringify(helper.run)});
  for (;;) {
    const p = ${JSON.stringify(path.join(tmp, 'never'))} + '-' + w + '-' + n++;
    try { await c.call('allow', { path: p, pin: false, uid: 4400 + w }); } catch { return; }
    process.stdout.write(p + '\\n');
  }
};
await Promise.all([0, 1, 2, 3].map(worker));
`);
    const run = lab.spawn('ws', NODE, [path.join(tmp, 'saver.mjs')], { reject: false });
    let confirmed = '';
    run.stdout?.on('data', (d: Buffer) => (confirmed += d.toString()));
    await sleep(2500);
    await helper.kill('SIGKILL');
    await run;
    const paths = confirmed.trim().split('\n').filter(Boolean);
    expect(paths.length).toBeGreaterThan(10);
    const doc = JSON.parse(readFileSync(path.join(helper.state, 'decisions.json'), 'utf8')) as { allows: Array<{ path: string }> };
    const saved = new Set(doc.allows.map((a) => a.path));
    expect(paths.filter((p) => !saved.has(p))).toEqual([]);
    await helper.restart();
    const all = json<UserDecisionView[]>(await helper.cli(['decisions', '--json']));
    const back = new Set(all.map((d) => d.path));
    expect(paths.filter((p) => !back.has(p))).toEqual([]);
    expect(readdirSync(helper.state).filter((n) => n.includes('corrupt') || n.endsWith('.tmp'))).toEqual([]);
    expect((await status()).state).toBe('enforcing');
  }, 90_000);

  it('a corrupt decisions file is set aside and reported; the gate stays shut', async () => {
    await helper.kill('SIGKILL');
    writeFileSync(path.join(helper.state, 'decisions.json'), '{"format":1,"allows":[{"id":"');
    await helper.restart();
    const s = json<{ problems: string[] }>(await helper.cli(['status', '--json']));
    expect(s.problems.some((p) => p.includes('decisions.json is corrupt') && p.includes('set aside as'))).toBe(true);
    const aside = readdirSync(helper.state).filter((n) => n.startsWith('decisions.json.corrupt-'));
    expect(aside).toHaveLength(1);
    expect(existsSync(path.join(helper.state, aside[0] as string))).toBe(true);
    expect(json<ListResult>(await helper.cli(['list', '--json'])).rules.map((r) => r.key)).toEqual(['corp-test:ssh']);
    const ev = String((await helper.cli(['events', '--json'])).stdout);
    expect(ev).toContain('"type":"decisions.corrupt"');
  }, 60_000);
});
