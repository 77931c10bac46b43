// Issue 10 part 4 in the lab: every denied attempt names its program. A dual-stack socket
// (AF_INET6 to ::ffff:<corp v4>, what Java does by default) sends IPv4 from a socket the
// kernel lists with the IPv6 ones; TCP and UDP. The attempt.denied event and the prompt
// name its pid and binary.
import { realpathSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { PromptView } from '../../common/api.js';
import type { StampedEvent } from '../../common/events.js';
import { follow, jsonLines, waitFor } from '../lab/fixture.js';
import { labAndHelper } from '../lab/suite.js';

const PYTHON = realpathSync('/usr/bin/python3');
const NODE = realpathSync(process.execPath);
/** Users made up by this test: each scenario its own, so prompts do not mix. */
const [TCP_USER, UDP_USER, BURST_USER, MARK_USER] = [4441, 4442, 4443, 4444];

const fx = labAndHelper({
  profiles: ({ lab }) => ({
    'corp-attr': { schema: 'tunnelgate/profile@1', id: 'corp-attr', version: 1, mode: 'enforce', interfaces: [lab.wsIface], userPrompts: 'allow', rules: [] },
  }),
});

async function promptsOf(uid: number): Promise<PromptView[]> {
  const r = await fx.cli(['prompts', '--json'], { uid });
  expect(r.exitCode).toBe(0);
  return JSON.parse(String(r.stdout)) as PromptView[];
}

async function events(uid?: number): Promise<StampedEvent[]> {
  const r = await fx.cli(['events', '--json'], uid === undefined ? {} : { uid });
  return jsonLines<StampedEvent>(String(r.stdout));
}

const deniedOf = async (uid: number, pid: number) => (await events(uid)).find((e) => e.type === 'attempt.denied' && e.attempt.pid === pid);

describe('attribution', () => {
  it('a dual-stack TCP socket (AF_INET6 to a v4-mapped address) is named: pid and binary, event and prompt', async () => {
    const mapped = `::ffff:${fx.lab.corpV4}`;
    // One socket, one connect: its SYN is retransmitted while the test looks.
    const prog = fx.spawn(PYTHON, ['-c', `
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.settimeout(25)
print('connecting', flush=True)
try:
    s.connect((${JSON.stringify(mapped)}, ${fx.lab.ports.http}))
    print('connected', flush=True)
except Exception as e:
    print('failed', e, flush=True)
`], { uid: TCP_USER });
    const out = follow(prog);
    try {
      await out.until('the connect to start', (l) => l.includes('connecting'));
      const ev = await waitFor('the attempt.denied event naming the program', () => deniedOf(TCP_USER, prog.pid as number), 30_000);
      expect(ev.type === 'attempt.denied' && ev.attempt).toMatchObject({
        pid: prog.pid, uid: TCP_USER, exe: PYTHON, mode: 'enforce', dst: { addr: fx.lab.corpV4, port: fx.lab.ports.http, proto: 'tcp' },
      });
      const p = await waitFor('a prompt for python', async () => (await promptsOf(TCP_USER)).find((x) => x.exe === PYTHON), 30_000);
      expect(p.pids).toEqual([prog.pid]);
      expect(p.destinations).toEqual([expect.objectContaining({ addr: fx.lab.corpV4, port: fx.lab.ports.http, proto: 'tcp' })]);
      const audit = JSON.parse(String((await fx.cli(['audit', '--json'])).stdout)) as { records: Array<{ uid: number; exe?: string }> };
      expect(audit.records.filter((r) => r.uid === TCP_USER).map((r) => r.exe)).toEqual([PYTHON]);
    } finally {
      process.kill(prog.pid as number, 'SIGTERM');
      await prog;
    }
  }, 60_000);

  it('a dual-stack UDP socket (udp6 to a v4-mapped address) is named: pid and binary, event and prompt', async () => {
    const mapped = `::ffff:${fx.lab.corpV4}`;
    const prog = fx.spawn(NODE, ['-e', `
const s = require('node:dgram').createSocket('udp6');
setInterval(() => s.send('x', ${fx.lab.ports.udpEcho}, ${JSON.stringify(mapped)}), 200);
console.log('sending');
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();`], { uid: UDP_USER });
    const out = follow(prog);
    try {
      await out.until('the sends to start', (l) => l.includes('sending'));
      const ev = await waitFor('the attempt.denied event naming the program', () => deniedOf(UDP_USER, prog.pid as number), 30_000);
      expect(ev.type === 'attempt.denied' && ev.attempt).toMatchObject({
        pid: prog.pid, uid: UDP_USER, exe: NODE, dst: { addr: fx.lab.corpV4, port: fx.lab.ports.udpEcho, proto: 'udp' },
      });
      const p = await waitFor('a prompt for node', async () => (await promptsOf(UDP_USER)).find((x) => x.exe === NODE), 30_000);
      expect(p.pids).toEqual([prog.pid]);
      // Every attempt of it was named: none went to the evidence as "(process gone)".
      const audit = JSON.parse(String((await fx.cli(['audit', '--json'])).stdout)) as { records: Array<{ uid: number; exe?: string }> };
      expect(audit.records.filter((r) => r.uid === UDP_USER).map((r) => r.exe)).toEqual([NODE]);
    } finally {
      prog.stdin?.end();
      await prog;
    }
  }, 60_000);

  it('a program that sends 1,000 datagrams and exits at once is one prompt naming it', async () => {
    const prog = await fx.run(PYTHON, ['-c', `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(1000):
    try:
        s.sendto(b'x', (${JSON.stringify(fx.lab.corpV4)}, ${fx.lab.ports.udpEcho}))
    except PermissionError:
        pass  # the gate's drop: sendto returns EPERM
`], { uid: BURST_USER });
    expect(prog.exitCode).toBe(0);
    // A barrier instead of a pause: another user's datagrams, sent after the burst, until they
    // make a prompt. The helper reads the log in order, so by then it has read the burst's.
    const marker = fx.spawn(NODE, ['-e', `
const s = require('node:dgram').createSocket('udp4');
setInterval(() => s.send('m', ${fx.lab.ports.udpEcho}, ${JSON.stringify(fx.lab.corpV4)}), 100);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();`], { uid: MARK_USER });
    try {
      await waitFor('the marker prompt', async () => (await promptsOf(MARK_USER)).find((x) => x.exe === NODE), 30_000);
    } finally {
      marker.stdin?.end();
      await marker;
    }
    const denied = (await events(BURST_USER)).filter((e) => e.type === 'attempt.denied');
    const named = denied.filter((e) => e.type === 'attempt.denied' && e.attempt.exe === PYTHON);
    console.log(`burst: ${denied.length} attempt.denied events, ${named.length} named`);
    const all = await promptsOf(BURST_USER);
    expect(all.map((p) => p.exe)).toEqual([PYTHON]);
    // One process, named by pid in every attempt (it has exited: the prompt lists no live one).
    expect(new Set(named.map((e) => e.type === 'attempt.denied' && e.attempt.pid)).size).toBe(1);
    expect(denied.length).toBeGreaterThan(0);
    expect(named).toHaveLength(denied.length);
    // The log shows at most 50 of the burst (20/s, burst 50); the kernel counted all 1,000,
    // and the rest is reported about a second later: the evidence counts the burst.
    type Audit = { records: Array<{ uid: number; exe?: string; count: number }> };
    const rec = await waitFor('the whole burst in the evidence', async () => {
      const r = (JSON.parse(String((await fx.cli(['audit', '--json'])).stdout)) as Audit).records.find((x) => x.uid === BURST_USER);
      return r && r.count >= 1000 ? r : undefined;
    }, 30_000);
    expect(rec).toMatchObject({ exe: PYTHON });
    expect(rec.count).toBeLessThanOrEqual(1050);
    const attempts = (await events(BURST_USER)).flatMap((e) => (e.type === 'attempt.denied' ? [e.attempt] : []));
    console.log(`burst: evidence count ${rec.count}; attempts ${attempts.length}, standing for ${attempts.reduce((n, a) => n + (a.repeats ?? 1), 0)} drops`);
  }, 60_000);
});
