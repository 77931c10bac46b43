// The gate on a real WireGuard tunnel (wireguard-go), real nftables, real cgroups:
// issue 2's "done when", in a lab of two namespaces made and removed by this file.
import { existsSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Lab } from '../lab/lab.js';
import { CLI, CLIENT } from '../lab/helper-proc.js';
import { follow, waitFor } from '../lab/fixture.js';
import { expectDropped, labAndHelper } from '../lab/suite.js';

const NODE = realpathSync(process.execPath);
const CURL = realpathSync('/usr/bin/curl');
const FOREIGN = `table ip foreign_fw {
	chain out {
		type filter hook output priority 10; policy accept;
		ip daddr 203.0.113.7 tcp dport 9 drop
	}
}
`;

let scopedCurl: string;
let otherCurl: string;
/** A copy of node that no rule allows: with the watcher (issue 4), programs of allowed binaries started directly get the tunnel. */
let otherNode: string;
/** The foreign table as nft lists it before the helper ever ran. */
let foreignBefore: string;

const foreignTable = async (lab: Lab = fx.lab) => String((await lab.exec('ws', 'nft', ['list', 'table', 'ip', 'foreign_fw'])).stdout);
const profile = (rules: unknown[], over: Record<string, unknown> = {}) => fx.profile({ rules, ...over });

const fx = labAndHelper({
  prepare: async ({ lab, copyBinary }) => {
    scopedCurl = copyBinary(CURL, 'scoped/curl');
    otherCurl = copyBinary(CURL, 'other/curl');
    otherNode = copyBinary(NODE, 'other/node');
    await lab.exec('ws', 'nft', ['-f', '-'], { input: FOREIGN });
    foreignBefore = await foreignTable(lab);
  },
  profiles: ({ lab }) => ({
    'corp-test': {
      schema: 'tunnelgate/profile@1', id: 'corp-test', version: 1, mode: 'enforce', interfaces: [lab.wsIface], userPrompts: 'allow',
      rules: [
        { id: 'curl', binary: { path: CURL } },
        { id: 'node', binary: { path: NODE } },
        {
          id: 'scoped-curl',
          binary: { path: scopedCurl },
          destinations: [
            { cidr: '198.18.0.2/32', ports: [lab.ports.http], proto: 'tcp' },
            { cidr: 'fd00:7467::2/128', ports: [lab.ports.http], proto: 'tcp' },
          ],
        },
      ],
    },
  }),
});

const http = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '3'];
/** `curl` (any copy) run directly, not through `tunnelgate run`. */
const direct = (curl: string, url: string) => fx.run(curl, [...http, url]);
const viaRun = (bin: string, args: string[], uid?: number) => fx.cli(['run', '--', bin, ...args], uid === undefined ? {} : { uid });
const status = () => fx.status();

const udpEcho = (host: string, port: number) => `
const s = require('node:dgram').createSocket(${JSON.stringify(host.includes(':') ? 'udp6' : 'udp4')});
const t = setTimeout(() => { console.log('NO-ECHO'); process.exit(3); }, 2000);
s.on('message', (m) => { console.log(String(m)); clearTimeout(t); s.close(); });
s.send('ping-through-tunnel', ${port}, ${JSON.stringify(host)});`;

describe('the gate', () => {
  it('is enforcing with the profile in force', async () => {
    const s = await status();
    expect(s.state).toBe('enforcing');
    expect(s.interfaces).toEqual([{ pattern: fx.lab.wsIface, present: [fx.lab.wsIface] }]);
    expect(s.ruleCount).toBe(3);
    expect(await foreignTable()).toBe(foreignBefore);
  });

  it('an allowed binary started with `tunnelgate run` gets HTTP 200 over IPv4 and IPv6', async () => {
    const v4 = await viaRun(CURL, [...http, fx.lab.urls.corpV4]);
    expect({ out: v4.stdout, err: v4.stderr, code: v4.exitCode }).toEqual({ out: '200', err: '', code: 0 });
    const v6 = await viaRun(CURL, [...http, fx.lab.urls.corpV6]);
    expect(v6.stdout).toBe('200');
  });

  it('an allowed binary gets a UDP echo back through the tunnel (IPv4 and IPv6)', async () => {
    for (const host of [fx.lab.corpV4, fx.lab.corpV6]) {
      const r = await viaRun(NODE, ['-e', udpEcho(host, fx.lab.ports.udpEcho)]);
      expect(String(r.stdout).trim()).toBe('ping-through-tunnel');
    }
  });

  it('the same request from a program that is not allowed gets nothing, and is counted', async () => {
    const before = (await status()).dropped.packets;
    // curl: operation timed out (28) — packets were dropped, not refused
    expectDropped(await direct(otherCurl, fx.lab.urls.corpV4), 'v4');
    expectDropped(await direct(otherCurl, fx.lab.urls.corpV6), 'v6');
    const udp = await fx.run(otherNode, ['-e', udpEcho(fx.lab.corpV4, fx.lab.ports.udpEcho)]);
    expect(String(udp.stdout).trim()).toBe('NO-ECHO');
    expect((await status()).dropped.packets).toBeGreaterThan(before);
  });

  it('a dropped attempt is reported with its process, user, destination and interface', async () => {
    const started = Date.now();
    const attempt = fx.spawn(otherCurl, [...http, fx.lab.urls.corpV4Alt]);
    const pid = attempt.pid as number;
    const ev = await waitFor('the attempt.denied event of the curl', () =>
      fx.events().find((e) => e.type === 'attempt.denied' && e.attempt.pid === pid));
    expectDropped(await attempt);
    expect(ev.type === 'attempt.denied' && ev.attempt).toMatchObject({
      pid, uid: 0, exe: otherCurl, iface: fx.lab.wsIface, mode: 'enforce',
      dst: { addr: fx.lab.corpV4, port: fx.lab.ports.httpAlt, proto: 'tcp' },
    });
    console.log(`denied attempt reported ${Date.parse(ev.time) - started} ms after the program started`);
  });

  it('`tunnelgate run` of a binary that is not allowed: a clear error and exit 126', async () => {
    const r = await viaRun(otherCurl, [...http, fx.lab.urls.corpV4]);
    expect(r.exitCode).toBe(126);
    expect(r.stderr).toContain(`${otherCurl} may not use the tunnel: no rule allows ${otherCurl}`);
    expect(r.stdout).toBe('');
  });

  it('two copies of one executable: only the whitelisted path passes', async () => {
    expectDropped(await direct(otherCurl, fx.lab.urls.corpV4));
    expect((await viaRun(scopedCurl, [...http, fx.lab.urls.corpV4])).stdout).toBe('200');
  });

  it('a destination-scoped rule passes to its scope and not to another port of the same host', async () => {
    expect((await viaRun(scopedCurl, [...http, fx.lab.urls.corpV4])).stdout).toBe('200');
    expect((await viaRun(scopedCurl, [...http, fx.lab.urls.corpV6])).stdout).toBe('200');
    expectDropped(await viaRun(scopedCurl, [...http, fx.lab.urls.corpV4Alt]), 'v4 alt');
    expectDropped(await viaRun(scopedCurl, [...http, fx.lab.urls.corpV6Alt]), 'v6 alt');
    // the unscoped rule reaches the other port
    expect((await viaRun(CURL, [...http, fx.lab.urls.corpV4Alt])).stdout).toBe('200');
  });

  it('programs that are not allowed still reach the underlay normally', async () => {
    expect((await direct(otherCurl, fx.lab.urls.underlay)).stdout).toBe('200');
    expect((await direct(CURL, fx.lab.urls.underlay)).stdout).toBe('200');
  });

  it('a client that asks for an allowed binary and then execs another is not admitted', async () => {
    const script = path.join(fx.tmp, 'liar.mjs');
    writeFileSync(script, `
import { spawn } from 'node:child_process';
import { HelperClient } from ${JSON.stringify(CLIENT)};
const c = await HelperClient.connect(${JSON.stringify(fx.helper.run)});
const child = spawn('/bin/sh', ['-c', 'read -r _ <&3; exec "$@"', 'liar', ${JSON.stringify(otherCurl)}, ${http.map((a) => JSON.stringify(a)).join(', ')}, ${JSON.stringify(fx.lab.urls.corpV4)}],
  { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
let out = '';
child.stdout.on('data', (d) => (out += d));
const exited = new Promise((r) => child.on('exit', (code, signal) => r(signal ?? code)));
const { launchId } = await c.call('launch.begin', { pid: child.pid, path: ${JSON.stringify(CURL)} });
const verdict = c.call('launch.confirm', { launchId }).then(() => 'admitted', (e) => 'refused: ' + e.message);
child.stdio[3].end('go\\n');
console.log(JSON.stringify({ verdict: await verdict, exit: await exited, http: out }));
c.close();
`);
    // Run by a node no rule allows: a child of an admitted program would inherit its cgroup.
    const r = await fx.run(otherNode, [script]);
    const res = JSON.parse(String(r.stdout)) as { verdict: string; exit: number | string; http: string };
    expect(res.verdict).toBe(`refused: ${otherCurl} may not use the tunnel: no rule allows ${otherCurl}`);
    // Ended by the helper where it stood, at its exec: the refused curl never ran (no -w output).
    expect(res.http).toBe('');
    expect(res.exit).toBe('SIGKILL');
  });

  it('any local user may use run, status and list; the run is theirs', async () => {
    const uid = 4242 + Math.floor(Math.random() * 1000);
    const r = await viaRun(CURL, [...http, fx.lab.urls.corpV4], uid);
    expect({ out: r.stdout, err: r.stderr }).toEqual({ out: '200', err: '' });
    expect((await fx.helper.cli(['status'], { uid })).exitCode).toBe(0);
    const list = await fx.helper.cli(['list', '--json'], { uid });
    expect(JSON.parse(String(list.stdout)).rules.map((x: { key: string }) => x.key)).toEqual(['corp-test:curl', 'corp-test:node', 'corp-test:scoped-curl']);
    const denied = await viaRun(otherCurl, [...http, fx.lab.urls.corpV4], uid);
    expect(denied.exitCode).toBe(126);
  });

  it('new inbound connections from the tunnel reach only listeners of allowed programs', async () => {
    const server = (port: number) => `require('node:http').createServer((q, r) => r.end('ws ${port}')).listen(${port}, '::', () => console.log('listening'));`;
    const allowed = fx.spawn('node', [CLI, 'run', '--run', fx.helper.run, '--', NODE, '-e', server(9000)]);
    const other = fx.spawn(otherNode, ['-e', server(9001)]);
    const fromCorp = (port: number, host = fx.lab.wsV4) =>
      fx.lab.exec('corp', 'curl', [...http, `http://${host.includes(':') ? `[${host}]` : host}:${port}/`], { reject: false, timeout: 10_000 });
    try {
      await Promise.all([allowed, other].map((p) => follow(p).until('the server to listen', (l) => l.includes('listening'))));
      // The helper refreshes the listener set every 2 s: wait for the allowed listener to open.
      await waitFor('the allowed listener to answer from corp', async () => (String((await fromCorp(9000)).stdout) === '200' ? true : undefined));
      expect((await fromCorp(9000, fx.lab.wsV6)).stdout).toBe('200');
      // The other listener exists and answers where the gate is not (from the workstation itself)...
      const local = await fx.run('curl', ['-s', '-m', '3', `http://${fx.lab.wsV4}:9001/`]);
      expect(local.stdout).toBe('ws 9001');
      // ...while its SYNs from the tunnel are dropped (curl times out), not refused.
      expectDropped(await fromCorp(9001), 'v4');
      expectDropped(await fromCorp(9001, fx.lab.wsV6), 'v6');
    } finally {
      for (const p of [allowed, other]) if (p.pid && p.exitCode === null) process.kill(p.pid, 'SIGTERM');
      await Promise.all([allowed, other]);
    }
  });

  it('a reload applies the new policy atomically; the foreign table is untouched', async () => {
    fx.helper.writeProfile('corp-test', {
      ...profile([
        { id: 'curl', binary: { path: CURL } },
        // Kernel traffic (NFS…) has no process: uid 0 sockets outside every rule cgroup.
        { id: 'kernel-echo', kernel: true, destinations: [{ cidr: 'fd00:7467::2/128', ports: [fx.lab.ports.udpEcho], proto: 'udp' }] },
      ]),
      version: 2,
    });
    await waitFor('the reloaded policy (2 rules)', async () => ((await status()).ruleCount === 2 ? true : undefined));
    expect((await viaRun(scopedCurl, [...http, fx.lab.urls.corpV4])).exitCode).toBe(126);
    expect((await viaRun(CURL, [...http, fx.lab.urls.corpV4])).stdout).toBe('200');
    expect(await foreignTable()).toBe(foreignBefore);
    // The kernel rule: a uid-0 socket outside every cgroup reaches its destination, a user's does not.
    const asRoot = await fx.run(NODE, ['-e', udpEcho(fx.lab.corpV6, fx.lab.ports.udpEcho)]);
    expect(String(asRoot.stdout).trim()).toBe('ping-through-tunnel');
    const asUser = await fx.run(NODE, ['-e', udpEcho(fx.lab.corpV6, fx.lab.ports.udpEcho)], { uid: 4242 });
    expect(String(asUser.stdout).trim()).toBe('NO-ECHO');
  });

  it('kill -9 of the helper changes nothing; a restarted helper converges with no open moment', async () => {
    // Two paced probers that print each result the moment they have it, read live by the
    // test, running before, during and after the helper is dead:
    // - admitted (started with `tunnelgate run`): a new TCP connection + GET every 100 ms,
    //   each given 1 s: a SYN dropped for a moment would need the 1 s retransmission, so
    //   each `200` says "passed from its first packet";
    // - denied (a node no rule allows): a UDP datagram to the echo service every 10 ms; it
    //   prints how many it sent, and any reply at once.
    type Probe = { t: number; r: string };
    const admittedSrc = `
const http = require('node:http');
const one = () => {
  let done = false;
  const out = (r) => { if (!done) { done = true; process.stdout.write(JSON.stringify({ t: Date.now(), r }) + '\\n'); } };
  const req = http.get(${JSON.stringify(fx.lab.urls.corpV4)}, { agent: false, timeout: 1000 }, (res) => { res.resume(); res.on('end', () => out(String(res.statusCode))); });
  req.on('timeout', () => req.destroy(new Error('no answer within 1 s')));
  req.on('error', (e) => out('error: ' + e.message));
};
setInterval(one, 100);
one();
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();`;
    const deniedSrc = `
const s = require('node:dgram').createSocket('udp4');
let sent = 0;
s.on('message', () => process.stdout.write(JSON.stringify({ t: Date.now(), r: 'REPLY' }) + '\\n'));
setInterval(() => s.send('x', ${fx.lab.ports.udpEcho}, ${JSON.stringify(fx.lab.corpV4)}, () => sent++), 10);
setInterval(() => process.stdout.write(JSON.stringify({ t: Date.now(), r: 'sent ' + sent }) + '\\n'), 100);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();`;
    // node is allowed again (the reload above left only curl).
    fx.writeProfile('corp-test', profile([{ id: 'curl', binary: { path: CURL } }, { id: 'node', binary: { path: NODE } }], { version: 3 }));
    await waitFor('profile version 3 in force', async () => ((await status()).sources.some((x) => x.version === 3 && x.state === 'active') ? true : undefined));
    const admitted = fx.spawn('node', [CLI, 'run', '--run', fx.helper.run, '--', NODE, '-e', admittedSrc]);
    const denied = fx.spawn(otherNode, ['-e', deniedSrc]);
    const a = follow(admitted);
    const d = follow(denied);
    const results = (from: number, to = Infinity) => a.json<Probe>().filter((p) => p.t > from && p.t < to);
    const sentBy = (t: number) => Math.max(0, ...d.json<Probe>().filter((p) => p.t <= t && p.r.startsWith('sent ')).map((p) => Number(p.r.slice(5))));
    try {
      // Deadlines, not pauses: under load 20, `tunnelgate run` of node took over 15 s.
      await a.until('a first answer of the admitted prober', (l) => l.length > 0, 60_000);
      await d.until('the denied prober sending', (l) => l.length > 0, 60_000);
      await fx.helper.kill('SIGKILL');
      const deadAt = Date.now();
      expect((await fx.lab.exec('ws', 'nft', ['list', 'table', 'inet', 'tunnelgate'], { reject: false })).exitCode).toBe(0);
      // While no helper runs: the admitted prober gets answers, the denied one keeps sending.
      await a.until('5 answers while the helper is dead', () => results(deadAt).length >= 5);
      await d.until('100 datagrams while the helper is dead', () => sentBy(Date.now()) >= sentBy(deadAt) + 100);
      const restartAt = Date.now();
      const whileDead = results(deadAt, restartAt);
      await fx.helper.restart();
      const upAt = Date.now();
      await a.until('5 answers after the restart', () => results(upAt).length >= 5);
      await d.until('100 datagrams after the restart', () => sentBy(Date.now()) >= sentBy(upAt) + 100);
      const all = a.json<Probe>();
      console.log(`kill -9: ${all.length} admitted requests (${whileDead.length} while the helper was dead), ${sentBy(Date.now())} denied datagrams`);
      expect(whileDead.length).toBeGreaterThanOrEqual(5);
      expect(all.filter((p) => p.r !== '200')).toEqual([]);
      expect(d.json<Probe>().filter((p) => p.r === 'REPLY')).toEqual([]);
    } finally {
      for (const p of [admitted, denied]) p.stdin?.end();
      await Promise.all([admitted, denied]);
    }
    expect(d.json<Probe>().filter((p) => p.r === 'REPLY')).toEqual([]);
    const s = await status();
    expect(s.state).toBe('enforcing');
    expect(await foreignTable()).toBe(foreignBefore);
  }, 180_000);

  it('--uninstall-rules removes exactly its table and cgroups', async () => {
    const { cgroupDir } = await status();
    expect(existsSync(cgroupDir)).toBe(true);
    await fx.helper.kill('SIGTERM');
    // The gate outlives the helper: still shut after a clean stop.
    expectDropped(await direct(otherCurl, fx.lab.urls.corpV4));
    const r = await fx.helper.cli(['helper', '--uninstall-rules', '--cgroup-root', fx.helper.cgroupRoot, '--run', fx.helper.run]);
    expect(r.exitCode).toBe(0);
    expect((await fx.lab.exec('ws', 'nft', ['list', 'table', 'inet', 'tunnelgate'], { reject: false })).exitCode).not.toBe(0);
    expect(existsSync(cgroupDir)).toBe(false);
    expect(existsSync(path.join(fx.helper.run, 'net_cls', 'cgroup.procs'))).toBe(false);
    expect(await foreignTable()).toBe(foreignBefore);
    // Without the table the tunnel is open again: uninstall really is uninstall.
    expect((await direct(otherCurl, fx.lab.urls.corpV4)).stdout).toBe('200');
  });
});
