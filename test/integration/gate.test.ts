// The gate on a real WireGuard tunnel (wireguard-go), real nftables, real cgroups:
// issue 2's "done when", in a lab of two namespaces made and removed by this file.
import { copyFileSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusReport } from '../../common/api.js';
import { createLab } from '../lab/lab.js';
import type { Lab } from '../lab/lab.js';
import { packageRoot, startHelper } from '../lab/helper-proc.js';
import type { HelperHandle } from '../lab/helper-proc.js';

const NODE = realpathSync(process.execPath);
const CURL = realpathSync('/usr/bin/curl');
const FOREIGN = `table ip foreign_fw {
	chain out {
		type filter hook output priority 10; policy accept;
		ip daddr 203.0.113.7 tcp dport 9 drop
	}
}
`;

let lab: Lab;
let helper: HelperHandle;
let tmp: string;
let scopedCurl: string;
let otherCurl: string;
/** A copy of node that no rule allows: with the watcher (issue 4), programs of allowed binaries started directly get the tunnel. */
let otherNode: string;
/** The foreign table as nft lists it before the helper ever ran. */
let foreignBefore: string;

const http = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '3'];
/** `curl` (any copy) run directly, not through `tunnelgate run`. */
const direct = (curl: string, url: string) => lab.exec('ws', curl, [...http, url], { reject: false, timeout: 10_000 });
const viaRun = (bin: string, args: string[], uid?: number) => helper.cli(['run', '--', bin, ...args], uid === undefined ? {} : { uid });
const status = async (): Promise<StatusReport> => JSON.parse(String((await helper.cli(['status', '--json'])).stdout)) as StatusReport;
const foreignTable = async () => String((await lab.exec('ws', 'nft', ['list', 'table', 'ip', 'foreign_fw'])).stdout);

const udpEcho = (host: string, port: number) => `
const s = require('node:dgram').createSocket(${JSON.stringify(host.includes(':') ? 'udp6' : 'udp4')});
const t = setTimeout(() => { console.log('NO-ECHO'); process.exit(3); }, 2000);
s.on('message', (m) => { console.log(String(m)); clearTimeout(t); s.close(); });
s.send('ping-through-tunnel', ${port}, ${JSON.stringify(host)});`;

function profile(rules: unknown[]) {
  return {
    schema: 'tunnelgate/profile@1',
    id: 'corp-test',
    version: 1,
    mode: 'enforce',
    interfaces: [lab.wsIface],
    userPrompts: 'allow',
    rules,
  };
}

beforeAll(async () => {
  lab = await createLab();
  tmp = mkdtempSync('/tmp/tg-gate-');
  chmodSync(tmp, 0o755);
  for (const d of ['scoped', 'other']) mkdirSync(path.join(tmp, d), { mode: 0o755 });
  scopedCurl = path.join(tmp, 'scoped', 'curl');
  otherCurl = path.join(tmp, 'other', 'curl');
  copyFileSync(CURL, scopedCurl);
  copyFileSync(CURL, otherCurl);
  chmodSync(scopedCurl, 0o755);
  chmodSync(otherCurl, 0o755);
  otherNode = path.join(tmp, 'other', 'node');
  copyFileSync(NODE, otherNode);
  chmodSync(otherNode, 0o755);
  await lab.exec('ws', 'nft', ['-f', '-'], { input: FOREIGN });
  foreignBefore = await foreignTable();
  helper = await startHelper(lab, {
    profiles: {
      'corp-test': profile([
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
      ]),
    },
  });
}, 120_000);

afterAll(async () => {
  await helper?.cleanup();
  await lab?.destroy();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the gate', () => {
  it('is enforcing with the profile in force', async () => {
    const s = await status();
    expect(s.state).toBe('enforcing');
    expect(s.interfaces).toEqual([{ pattern: lab.wsIface, present: [lab.wsIface] }]);
    expect(s.ruleCount).toBe(3);
    expect(await foreignTable()).toBe(foreignBefore);
  });

  it('an allowed binary started with `tunnelgate run` gets HTTP 200 over IPv4 and IPv6', async () => {
    const v4 = await viaRun(CURL, [...http, lab.urls.corpV4]);
    expect({ out: v4.stdout, err: v4.stderr, code: v4.exitCode }).toEqual({ out: '200', err: '', code: 0 });
    const v6 = await viaRun(CURL, [...http, lab.urls.corpV6]);
    expect(v6.stdout).toBe('200');
  });

  it('an allowed binary gets a UDP echo back through the tunnel (IPv4 and IPv6)', async () => {
    for (const host of [lab.corpV4, lab.corpV6]) {
      const r = await viaRun(NODE, ['-e', udpEcho(host, lab.ports.udpEcho)]);
      expect(String(r.stdout).trim()).toBe('ping-through-tunnel');
    }
  });

  it('the same request from a program that is not allowed gets nothing, and is counted', async () => {
    const before = (await status()).dropped.packets;
    const plain = await direct(otherCurl, lab.urls.corpV4);
    expect(plain.stdout).toBe('000');
    expect(plain.exitCode).toBe(28); // curl: operation timed out — packets were dropped, not refused
    const v6 = await direct(otherCurl, lab.urls.corpV6);
    expect(v6.stdout).toBe('000');
    const udp = await lab.exec('ws', otherNode, ['-e', udpEcho(lab.corpV4, lab.ports.udpEcho)], { reject: false });
    expect(String(udp.stdout).trim()).toBe('NO-ECHO');
    expect((await status()).dropped.packets).toBeGreaterThan(before);
  });

  it('a dropped attempt is reported with its process, user, destination and interface', async () => {
    const started = Date.now();
    const attempt = lab.exec('ws', otherCurl, [...http, lab.urls.corpV4Alt], { reject: false, timeout: 10_000 });
    const pid = attempt.pid as number;
    type Ev = { type: string; time: string; attempt?: { pid?: number; uid: number; exe?: string; dst: unknown; iface: string; mode: string } };
    const find = () => helper.output().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Ev)
      .find((e) => e.type === 'attempt.denied' && e.attempt?.pid === pid);
    let ev = find();
    while (!ev && Date.now() - started < 5_000) {
      await new Promise((r) => setTimeout(r, 20));
      ev = find();
    }
    await attempt;
    expect(ev?.attempt).toMatchObject({
      pid, uid: 0, exe: otherCurl, iface: lab.wsIface, mode: 'enforce',
      dst: { addr: lab.corpV4, port: lab.ports.httpAlt, proto: 'tcp' },
    });
    console.log(`denied attempt reported ${Date.parse(ev?.time ?? '') - started} ms after the program started`);
  });

  it('`tunnelgate run` of a binary that is not allowed: a clear error and exit 126', async () => {
    const r = await viaRun(otherCurl, [...http, lab.urls.corpV4]);
    expect(r.exitCode).toBe(126);
    expect(r.stderr).toContain(`${otherCurl} may not use the tunnel: no rule allows ${otherCurl}`);
    expect(r.stdout).toBe('');
  });

  it('two copies of one executable: only the whitelisted path passes', async () => {
    expect((await direct(otherCurl, lab.urls.corpV4)).stdout).toBe('000');
    expect((await viaRun(scopedCurl, [...http, lab.urls.corpV4])).stdout).toBe('200');
  });

  it('a destination-scoped rule passes to its scope and not to another port of the same host', async () => {
    expect((await viaRun(scopedCurl, [...http, lab.urls.corpV4])).stdout).toBe('200');
    expect((await viaRun(scopedCurl, [...http, lab.urls.corpV6])).stdout).toBe('200');
    const alt = await viaRun(scopedCurl, [...http, lab.urls.corpV4Alt]);
    expect({ out: alt.stdout, code: alt.exitCode }).toEqual({ out: '000', code: 28 });
    expect((await viaRun(scopedCurl, [...http, lab.urls.corpV6Alt])).stdout).toBe('000');
    // the unscoped rule reaches the other port
    expect((await viaRun(CURL, [...http, lab.urls.corpV4Alt])).stdout).toBe('200');
  });

  it('programs that are not allowed still reach the underlay normally', async () => {
    expect((await direct(otherCurl, lab.urls.underlay)).stdout).toBe('200');
    expect((await direct(CURL, lab.urls.underlay)).stdout).toBe('200');
  });

  it('a client that asks for an allowed binary and then execs another is not admitted', async () => {
    const script = path.join(tmp, 'liar.mjs');
    const client = path.join(packageRoot(), 'dist', 'common', 'node', 'client.js');
    writeFileSync(script, `
import { spawn } from 'node:child_process';
import { HelperClient } from ${JSON.stringify(client)};
const c = await HelperClient.connect(${JSON.stringify(helper.run)});
const child = spawn('/bin/sh', ['-c', 'read -r _ <&3; exec "$@"', 'liar', ${JSON.stringify(otherCurl)}, ${http.map((a) => JSON.stringify(a)).join(', ')}, ${JSON.stringify(lab.urls.corpV4)}],
  { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
let out = '';
child.stdout.on('data', (d) => (out += d));
const exited = new Promise((r) => child.on('exit', r));
const { launchId } = await c.call('launch.begin', { pid: child.pid, path: ${JSON.stringify(CURL)} });
const verdict = c.call('launch.confirm', { launchId }).then(() => 'admitted', (e) => 'refused: ' + e.message);
child.stdio[3].end('go\\n');
console.log(JSON.stringify({ verdict: await verdict, exit: await exited, http: out }));
c.close();
`);
    // Run by a node no rule allows: a child of an admitted program would inherit its cgroup.
    const r = await lab.exec('ws', otherNode, [script], { reject: false, timeout: 20_000 });
    const res = JSON.parse(String(r.stdout)) as { verdict: string; exit: number; http: string };
    expect(res.verdict).toBe(`refused: ${otherCurl} may not use the tunnel: no rule allows ${otherCurl}`);
    expect(res.http).toBe('000');
    expect(res.exit).toBe(28);
  });

  it('any local user may use run, status and list; the run is theirs', async () => {
    const uid = 4242 + Math.floor(Math.random() * 1000);
    const r = await viaRun(CURL, [...http, lab.urls.corpV4], uid);
    expect({ out: r.stdout, err: r.stderr }).toEqual({ out: '200', err: '' });
    expect((await helper.cli(['status'], { uid })).exitCode).toBe(0);
    const list = await helper.cli(['list', '--json'], { uid });
    expect(JSON.parse(String(list.stdout)).rules.map((x: { key: string }) => x.key)).toEqual(['corp-test:curl', 'corp-test:node', 'corp-test:scoped-curl']);
    const denied = await viaRun(otherCurl, [...http, lab.urls.corpV4], uid);
    expect(denied.exitCode).toBe(126);
  });

  it('new inbound connections from the tunnel reach only listeners of allowed programs', async () => {
    const server = (port: number) => `require('node:http').createServer((q, r) => r.end('ws ${port}')).listen(${port}, '::');`;
    const allowed = lab.spawn('ws', 'node', [
      path.join(packageRoot(), 'dist', 'helper', 'cli', 'main.js'), 'run', '--run', helper.run, '--', NODE, '-e', server(9000),
    ], { reject: false });
    const other = lab.spawn('ws', otherNode, ['-e', server(9001)], { reject: false });
    const fromCorp = (port: number, host = lab.wsV4) =>
      lab.exec('corp', 'curl', [...http, `http://${host.includes(':') ? `[${host}]` : host}:${port}/`], { reject: false, timeout: 10_000 });
    try {
      // The helper refreshes the listener set every 2 s.
      const deadline = Date.now() + 8_000;
      let code = '';
      while (code !== '200' && Date.now() < deadline) code = String((await fromCorp(9000)).stdout);
      expect(code).toBe('200');
      expect((await fromCorp(9000, lab.wsV6)).stdout).toBe('200');
      expect((await fromCorp(9001)).stdout).toBe('000');
    } finally {
      for (const p of [allowed, other]) if (p.pid && p.exitCode === null) process.kill(p.pid, 'SIGTERM');
      await Promise.all([allowed, other]);
    }
  });

  it('a reload applies the new policy atomically; the foreign table is untouched', async () => {
    helper.writeProfile('corp-test', {
      ...profile([
        { id: 'curl', binary: { path: CURL } },
        // Kernel traffic (NFS…) has no process: uid 0 sockets outside every rule cgroup.
        { id: 'kernel-echo', kernel: true, destinations: [{ cidr: 'fd00:7467::2/128', ports: [lab.ports.udpEcho], proto: 'udp' }] },
      ]),
      version: 2,
    });
    const deadline = Date.now() + 10_000;
    while ((await status()).ruleCount !== 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await status()).ruleCount).toBe(2);
    expect((await viaRun(scopedCurl, [...http, lab.urls.corpV4])).exitCode).toBe(126);
    expect((await viaRun(CURL, [...http, lab.urls.corpV4])).stdout).toBe('200');
    expect(await foreignTable()).toBe(foreignBefore);
    // The kernel rule: a uid-0 socket outside every cgroup reaches its destination, a user's does not.
    const asRoot = await lab.exec('ws', NODE, ['-e', udpEcho(lab.corpV6, lab.ports.udpEcho)], { reject: false });
    expect(String(asRoot.stdout).trim()).toBe('ping-through-tunnel');
    const asUser = await lab.exec('ws', 'setpriv', ['--reuid=4242', '--regid=4242', '--clear-groups', NODE, '-e', udpEcho(lab.corpV6, lab.ports.udpEcho)], { reject: false });
    expect(String(asUser.stdout).trim()).toBe('NO-ECHO');
  });

  it('kill -9 of the helper changes nothing; a restarted helper converges with no open moment', async () => {
    const seconds = 6;
    // An admitted program that keeps connecting, and a denied one that keeps sending.
    // curl -m 1 per request: a first SYN dropped while the launch is verified would need
    // the 1 s retransmission and fail, so the first 200 proves "from its first packet".
    const fetches = Array.from({ length: seconds * 5 }, () => ['-s', '-o', '/dev/null', '-w', '%{http_code}\\n', '-m', '1', lab.urls.corpV4]);
    const admitted = lab.spawn('ws', 'node', [
      path.join(packageRoot(), 'dist', 'helper', 'cli', 'main.js'), 'run', '--run', helper.run, '--', CURL,
      ...fetches.flatMap((f, i) => (i === 0 ? f : ['--next', ...f])),
    ], { reject: false });
    const denied = lab.spawn('ws', otherNode, ['-e', `
const s = require('node:dgram').createSocket('udp4'); let replies = 0, sent = 0;
s.on('message', () => replies++);
const t = setInterval(() => { s.send('x', ${lab.ports.udpEcho}, ${JSON.stringify(lab.corpV4)}); sent++; }, 10);
setTimeout(() => { clearInterval(t); setTimeout(() => { console.log(JSON.stringify({ sent, replies })); process.exit(0); }, 300); }, ${seconds * 1000});
`], { reject: false });
    // The helper dies only once the admitted prober has its first answer.
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the admitted prober got no first answer within 15 s')), 15_000);
      admitted.stdout?.once('data', () => {
        clearTimeout(t);
        resolve();
      });
    });
    await helper.kill('SIGKILL');
    expect(await lab.exec('ws', 'nft', ['list', 'table', 'inet', 'tunnelgate'], { reject: false }).then((r) => r.exitCode)).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    await helper.restart();
    const [a, d] = await Promise.all([admitted, denied]);
    const codes = String(a.stdout).trim().split('\n');
    expect(codes.length).toBeGreaterThanOrEqual(seconds * 2);
    expect(codes.every((c) => c === '200')).toBe(true);
    const dr = JSON.parse(String(d.stdout)) as { sent: number; replies: number };
    expect(dr.sent).toBeGreaterThan(seconds * 50);
    expect(dr.replies).toBe(0);
    const s = await status();
    expect(s.state).toBe('enforcing');
    expect(await foreignTable()).toBe(foreignBefore);
  }, 60_000);

  it('--uninstall-rules removes exactly its table and cgroups', async () => {
    const { cgroupDir } = await status();
    expect(existsSync(cgroupDir)).toBe(true);
    await helper.kill('SIGTERM');
    // The gate outlives the helper: still shut after a clean stop.
    expect((await direct(otherCurl, lab.urls.corpV4)).stdout).toBe('000');
    const r = await helper.cli(['helper', '--uninstall-rules', '--cgroup-root', helper.cgroupRoot, '--run', helper.run]);
    expect(r.exitCode).toBe(0);
    expect((await lab.exec('ws', 'nft', ['list', 'table', 'inet', 'tunnelgate'], { reject: false })).exitCode).not.toBe(0);
    expect(existsSync(cgroupDir)).toBe(false);
    expect(existsSync(path.join(helper.run, 'net_cls', 'cgroup.procs'))).toBe(false);
    expect(await foreignTable()).toBe(foreignBefore);
    // Without the table the tunnel is open again: uninstall really is uninstall.
    expect((await direct(otherCurl, lab.urls.corpV4)).stdout).toBe('200');
  });
});
