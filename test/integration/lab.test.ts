// The lab itself: every integration test, benchmark and the demo stand on it, so prove
// that it gives a working tunnel (v4 + v6, TCP + UDP), a separate underlay, and that it
// leaves nothing behind, including after a createLab() that fails halfway.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { execa } from 'execa';
import { createLab, type Lab } from '../lab/lab.js';

/** A one-shot UDP client run inside a namespace: prints the echoed text, exits 1 on timeout. */
const UDP_CLIENT = `
import dgram from 'node:dgram';
const [host, port, text] = process.argv.slice(-3);
const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
const timer = setTimeout(() => { console.error('no echo from ' + host + ':' + port); process.exit(1); }, 3000);
sock.on('message', (msg) => { clearTimeout(timer); process.stdout.write(msg.toString()); sock.close(); });
sock.send(text, Number(port), host);
`;

async function namespaces(): Promise<string[]> {
  const r = await execa('ip', ['netns', 'list']);
  return r.stdout.split('\n').map((line) => line.split(' ')[0] ?? '').filter(Boolean);
}

function alive(pid: number): boolean {
  try {
    // A zombie is not alive: its /proc entry says state Z.
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** PIDs of wireguard-go processes whose command line names `iface`. */
function wireguardGoFor(iface: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('wireguard-go') && argv.includes(iface)) pids.push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

describe('test lab', () => {
  let lab: Lab | undefined;

  beforeAll(async () => {
    lab = await createLab();
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  const up = (): Lab => {
    if (!lab) throw new Error('lab was not created');
    return lab;
  };

  it('has unique, valid names and the documented addresses', () => {
    const l = up();
    expect(l.ws).toBe(`tg-ws-${l.id}`);
    expect(l.corp).toBe(`tg-corp-${l.id}`);
    for (const name of [l.wsIface, l.corpIface, l.wsVeth, l.corpVeth]) expect(name.length).toBeLessThanOrEqual(15);
    expect(l.wsIface).not.toBe(l.corpIface);
    expect([l.corpV4, l.corpV6, l.underlayCorp]).toEqual(['198.18.0.2', 'fd00:7467::2', '192.0.2.2']);
    expect(l.netnsPath('ws')).toBe(`/var/run/netns/${l.ws}`);
    expect(l.netnsPath(l.corp)).toBe(`/var/run/netns/${l.corp}`);
  });

  it('routes tunnel addresses over the ws wireguard interface and the underlay over veth', async () => {
    const l = up();
    const v4 = await l.exec('ws', 'ip', ['route', 'get', l.corpV4]);
    expect(v4.stdout).toContain(`dev ${l.wsIface}`);
    const v6 = await l.exec('ws', 'ip', ['-6', 'route', 'get', l.corpV6]);
    expect(v6.stdout).toContain(`dev ${l.wsIface}`);
    const under = await l.exec('ws', 'ip', ['route', 'get', l.underlayCorp]);
    expect(under.stdout).toContain(`dev ${l.wsVeth}`);
  });

  it('serves HTTP 200 through the tunnel over IPv4 and IPv6, on both ports', async () => {
    const l = up();
    for (const [url, label] of [
      ['http://198.18.0.2/', 'corp 198.18.0.2:80'],
      ['http://[fd00:7467::2]/', 'corp fd00:7467::2:80'],
      [l.urls.corpV4Alt, 'corp-alt 198.18.0.2:8080'],
      [l.urls.corpV6Alt, 'corp-alt fd00:7467::2:8080'],
    ] as const) {
      const ipFlag = url.includes('[') ? '-6' : '-4';
      const r = await l.exec('ws', 'curl', [ipFlag, '-sS', '--max-time', '5', '-w', '\n%{http_code}', url], { timeout: 10_000 });
      const lines = r.stdout.trim().split('\n');
      expect(lines.at(-1), url).toBe('200');
      expect(lines[0], url).toContain(label);
    }
  });

  it('echoes UDP through the tunnel over IPv4 and IPv6', async () => {
    const l = up();
    for (const host of [l.corpV4, l.corpV6]) {
      const text = `ping-${host}-${Date.now()}`;
      const r = await l.exec('ws', process.execPath, ['--input-type=module', '-e', UDP_CLIENT, '--', host, String(l.ports.udpEcho), text], { timeout: 10_000 });
      expect(r.stdout).toBe(text);
    }
  });

  it('serves HTTP 200 on the underlay address, outside the tunnel', async () => {
    const l = up();
    const r = await l.exec('ws', 'curl', ['-sS', '--max-time', '5', '-w', '\n%{http_code}', 'http://192.0.2.2/'], { timeout: 10_000 });
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('underlay 192.0.2.2:80 GET /');
    expect(lines.at(-1)).toBe('200');
  });

  it('keeps the host namespace untouched', async () => {
    const l = up();
    const links = await execa('ip', ['-o', 'link', 'show']);
    for (const name of [l.wsIface, l.corpIface, l.wsVeth, l.corpVeth]) expect(links.stdout).not.toMatch(new RegExp(`: ${name}[:@]`));
  });

  it('ends spawned processes and removes namespaces, sockets and wireguard-go on destroy', async () => {
    const l = up();
    const sleeper = l.spawn('corp', 'sleep', ['600']);
    expect(sleeper.pid).toBeTypeOf('number');
    // A grandchild the lab never saw: orphaned inside the ws namespace by a command that exited.
    const orphanMaker = `const c = require('node:child_process').spawn('sleep', ['600'], { stdio: 'ignore', detached: true }); c.unref(); console.log(c.pid);`;
    const orphan = Number((await l.exec('ws', process.execPath, ['-e', orphanMaker])).stdout);
    const own = [l.pids.wsWireguard, l.pids.corpWireguard, l.pids.services, sleeper.pid as number, orphan];
    for (const pid of own) expect(alive(pid), `pid ${pid} before destroy`).toBe(true);
    expect(readFileSync(`/proc/${l.pids.wsWireguard}/comm`, 'utf8').trim()).toBe('wireguard-go');

    const t0 = performance.now();
    await l.destroy();
    const destroyMs = performance.now() - t0;
    console.log(`lab ${l.id}: setup ${l.setupMs} ms, destroy ${Math.round(destroyMs)} ms`);
    await l.destroy(); // idempotent

    const left = await namespaces();
    expect(left).not.toContain(l.ws);
    expect(left).not.toContain(l.corp);
    for (const pid of own) expect(alive(pid), `pid ${pid} after destroy`).toBe(false);
    expect(wireguardGoFor(l.wsIface)).toEqual([]);
    expect(wireguardGoFor(l.corpIface)).toEqual([]);
    expect(existsSync(`/var/run/wireguard/${l.wsIface}.sock`)).toBe(false);
    expect(existsSync(`/var/run/wireguard/${l.corpIface}.sock`)).toBe(false);
    await expect(sleeper).rejects.toThrow();
    expect(() => l.exec('ws', 'true')).toThrow(/exec true after destroy/);
    expect(() => l.spawn('ws', 'sleep', ['1'])).toThrow(/spawn sleep after destroy/);
  });
});

describe('createLab failing halfway', () => {
  it('cleans up what it had built and names the failed step', async () => {
    // The UDP echo on the wireguard port collides with wireguard-go's socket, so the lab
    // fails after namespaces, veth and both wireguard-go processes exist.
    const id = Math.random().toString(36).slice(2, 8).padEnd(6, '0');
    await expect(createLab({ id, ports: { udpEcho: 51820 } })).rejects.toThrow(/lab: corp services .*udp echo 198\.18\.0\.2:51820/);
    const left = await namespaces();
    expect(left).not.toContain(`tg-ws-${id}`);
    expect(left).not.toContain(`tg-corp-${id}`);
    expect(wireguardGoFor(`wgw${id}`)).toEqual([]);
    expect(wireguardGoFor(`wgc${id}`)).toEqual([]);
    expect(existsSync(`/var/run/wireguard/wgw${id}.sock`)).toBe(false);
  });

  it('rejects bad names before touching anything', async () => {
    await expect(createLab({ wsIface: 'this-name-is-too-long' })).rejects.toThrow(/wsIface .* not a valid interface name/);
    await expect(createLab({ id: 'BAD!' })).rejects.toThrow(/id "BAD!"/);
  });
});
