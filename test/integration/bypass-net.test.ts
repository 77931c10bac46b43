// Issue 9 items 2, 7, 8 and 13, in a lab: the rendered table (helper/ruleset/render.ts) is
// loaded with nft in the lab's workstation namespace, admitted processes live in a net_cls
// cgroup this file makes, and packets come from the corp end of a real wireguard-go
// tunnel. Each case is refused (curl exit 28 / no datagram) next to a positive control.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResultPromise } from 'execa';
import { createLab, LAB_CORP_V4 } from '../lab/lab.js';
import type { Lab } from '../lab/lab.js';
import { renderTable } from '../../helper/ruleset/render.js';
import { inspectListeners } from '../../helper/kernel/sockets.js';
import type { Listener } from '../../helper/kernel/sockets.js';
import { ensureNetClsMount, NetClsTree } from '../../helper/kernel/netcls.js';
import { run } from '../../helper/kernel/run.js';
import { listLinks, startLinkMonitor } from '../../helper/kernel/links.js';
import type { LinkEvent } from '../../helper/kernel/links.js';
import { startNftMonitor } from '../../helper/kernel/nft-monitor.js';
import type { RulesetChange } from '../../helper/kernel/nft-monitor.js';
import { interfaceProblems, nextGatedIndexes } from '../../helper/ruleset/interfaces.js';
import type { GatedIndex } from '../../helper/ruleset/interfaces.js';
import { policyOf, profile } from '../unit/policy/fixtures.js';
import type { Destination } from '../../common/profile.js';

const PY = '/usr/bin/python3';
const CLASSID = 0x7e570001;
const OTHER_UID = 4243 + Math.floor(Math.random() * 500);

/** Small socket programs, one per mode; every line they print is an event the test waits on. */
const AGENT = String.raw`
import socket, sys, select
mode = sys.argv[1]
def out(s):
    sys.stdout.write(s + "\n"); sys.stdout.flush()
def fam(a):
    return socket.AF_INET6 if ":" in a else socket.AF_INET
if mode == "udp-recv":             # ADDR PORT [reuseaddr|reuseport]
    a, p = sys.argv[2], int(sys.argv[3]); opt = sys.argv[4] if len(sys.argv) > 4 else ""
    s = socket.socket(fam(a), socket.SOCK_DGRAM)
    if opt == "reuseaddr": s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if opt == "reuseport": s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if opt == "v6only": s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((a, p)); out("ready")
    while True:
        m, _ = s.recvfrom(2000); out("got " + m.decode())
elif mode == "udp-connected":      # ADDR PORT PEER PEERPORT
    s = socket.socket(fam(sys.argv[2]), socket.SOCK_DGRAM)
    s.bind((sys.argv[2], int(sys.argv[3]))); s.connect((sys.argv[4], int(sys.argv[5]))); out("ready")
    while True:
        m = s.recv(2000); out("got " + m.decode())
elif mode == "udp-send":           # ADDR PORT, then stdin lines "HOST PORT MSG"
    s = socket.socket(fam(sys.argv[2]), socket.SOCK_DGRAM)
    s.bind((sys.argv[2], int(sys.argv[3]))); out("ready")
    for line in sys.stdin:
        h, p, m = line.split()
        s.sendto(m.encode(), (h, int(p))); out("sent " + m)
elif mode == "http":               # ADDR PORT: answers 200 to every connection
    a, p = sys.argv[2], int(sys.argv[3])
    s = socket.socket(fam(a), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a, p)); s.listen(16); out("ready")
    while True:
        c, _ = s.accept(); c.recv(4000)
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"); c.close(); out("served")
elif mode == "stream-server":      # ADDR PORT; one client; a chunk per stdin line
    s = socket.socket(fam(sys.argv[2]), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[2], int(sys.argv[3]))); s.listen(1); out("ready")
    c, _ = s.accept(); out("accepted")
    for line in sys.stdin:
        c.sendall(("chunk " + line.strip() + "\n").encode()); out("wrote " + line.strip())
elif mode == "stream-client":      # HOST PORT; prints every line it receives
    c = socket.create_connection((sys.argv[2], int(sys.argv[3]))); out("connected")
    f = c.makefile("r")
    for line in f:
        out(line.strip())
`;

let lab: Lab;
let tmp: string;
let agent: string;
let tree: NetClsTree;
let ownMount: { mount: string; own: boolean } | undefined;
const procs: ResultPromise[] = [];

const policyFor = (over: { alwaysAllow?: Destination[]; interfaces?: string[]; kernel?: Destination[] } = {}) =>
  policyOf([profile({
    id: 'bypass',
    interfaces: over.interfaces ?? [lab.wsIface],
    alwaysAllow: over.alwaysAllow ?? [],
    rules: [{ id: 'app', binary: { path: PY } }, ...(over.kernel ? [{ id: 'nfs', kernel: true, destinations: over.kernel }] : [])],
  })]);
const ruleKey = 'bypass:app';

async function load(opts: { listeners?: Listener[]; alwaysAllow?: Destination[]; kernel?: Destination[]; interfaceIndexes?: number[]; gatedIndexes?: GatedIndex[] } = {}): Promise<string> {
  const text = renderTable({
    policy: policyFor({ ...(opts.alwaysAllow ? { alwaysAllow: opts.alwaysAllow } : {}), ...(opts.kernel ? { kernel: opts.kernel } : {}) }),
    classids: new Map([[ruleKey, CLASSID]]),
    listeners: opts.listeners ?? [],
    nflogGroup: 7467,
    ...(opts.interfaceIndexes ? { interfaceIndexes: opts.interfaceIndexes } : {}),
    ...(opts.gatedIndexes ? { gatedIndexes: opts.gatedIndexes } : {}),
  });
  await lab.exec('ws', 'nft', ['-f', '-'], { input: text });
  return text;
}
const unload = () => lab.exec('ws', 'nft', ['delete', 'table', 'inet', 'tunnelgate'], { reject: false });
const dropped = async () => {
  const r = await lab.exec('ws', 'nft', ['-j', 'list', 'counter', 'inet', 'tunnelgate', 'dropped']);
  const doc = JSON.parse(String(r.stdout)) as { nftables: Array<{ counter?: { packets: number } }> };
  return doc.nftables.find((o) => o.counter)?.counter?.packets ?? 0;
};

/** A running agent: its process, the lines it printed so far, and a wait for a line matching `re`. */
interface Agent {
  p: ResultPromise;
  lines: string[];
  wait: (re: RegExp, ms?: number) => Promise<string>;
}

/** A long-running agent in a namespace: admitted (in our rule cgroup from its first instruction), as another uid, or plain. */
function start(ns: 'ws' | 'corp', args: string[], as: 'admitted' | 'other' | 'root' = 'root'): Agent {
  const cmd = as === 'admitted'
    ? ['sh', ['-c', `echo $$ > ${path.join(tree.dir, 'app', 'cgroup.procs')} && exec "$@"`, 'sh', PY, '-u', agent, ...args]] as const
    : as === 'other'
      ? ['setpriv', [`--reuid=${OTHER_UID}`, `--regid=${OTHER_UID}`, '--clear-groups', PY, '-u', agent, ...args]] as const
      : [PY, ['-u', agent, ...args]] as const;
  const p = lab.spawn(ns, cmd[0], [...cmd[1]], { stdin: 'pipe', buffer: false }) as unknown as ResultPromise;
  procs.push(p);
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let err = '';
  p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  let partial = '';
  p.stdout?.on('data', (d: Buffer) => {
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const w of [...waiters]) w();
  });
  const wait = (re: RegExp, ms = 10_000) => new Promise<string>((resolve, reject) => {
    const check = () => {
      const hit = lines.find((l) => re.test(l));
      if (hit !== undefined) {
        waiters.delete(check);
        clearTimeout(t);
        resolve(hit);
      }
    };
    const t = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`no line ${re} from ${args.join(' ')} (${lines.join(' | ')}; stderr ${err.trim()})`));
    }, ms);
    waiters.add(check);
    check();
  });
  return { p, lines, wait };
}
const stop = async (...xs: Array<{ p: ResultPromise }>) => {
  for (const x of xs) if (x.p.pid && x.p.exitCode === null) x.p.kill('SIGTERM');
  await Promise.all(xs.map((x) => x.p.catch(() => undefined)));
};
/** Once every agent says `ready`, runs `body`; then, whatever happened, stops the agents and removes the table. */
async function whenReady(agents: Agent[], body: () => Promise<void>): Promise<void> {
  try {
    await Promise.all(agents.map((a) => a.wait(/ready/)));
    await body();
  } finally {
    await stop(...agents);
    await unload();
  }
}
/** Has a udp-send agent send `n` datagrams `stolen0`… to HOST PORT; resolves to the drop counter before them. */
async function sendStolen(sender: Agent, host: string, port: number, n = 5): Promise<number> {
  const before = await dropped();
  for (let i = 0; i < n; i++) sender.p.stdin?.write(`${host} ${port} stolen${i}\n`);
  return before;
}
/** The `n` datagrams sent since the counter read `before` were dropped (counted), and `thief` got none. */
async function expectRefused(before: number, n: number, thief: Agent): Promise<void> {
  expect(await dropped()).toBeGreaterThanOrEqual(before + n);
  expect(thief.lines.filter((l) => l.startsWith('got'))).toEqual([]);
}
const curlFromCorp = (url: string) => lab.exec('corp', 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '3', url], { reject: false, timeout: 10_000 });
const curlFromWs = (url: string, as: 'admitted' | 'other') => as === 'admitted'
  ? lab.exec('ws', 'sh', ['-c', `echo $$ > ${path.join(tree.dir, 'app', 'cgroup.procs')} && exec curl -s -o /dev/null -w %{http_code} -m 3 "$0"`, url], { reject: false, timeout: 10_000 })
  : lab.exec('ws', 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '3', url], { reject: false, timeout: 10_000 });
/** The admitted agents' sockets as the gate would see them (in the ws namespace). */
const listenersOf = async (...xs: Array<{ p: ResultPromise }>) => inspectListeners(xs.map((x) => x.p.pid as number), `/proc/${xs[0]?.p.pid}/net`,
  (file, args, o) => run('nsenter', [`--net=${lab.netnsPath('ws')}`, '--', file, ...args], o));

beforeAll(async () => {
  lab = await createLab();
  tmp = mkdtempSync('/tmp/tg-bypass-');
  chmodSync(tmp, 0o755);
  agent = path.join(tmp, 'agent.py');
  writeFileSync(agent, AGENT, { mode: 0o755 });
  ownMount = await ensureNetClsMount(run, path.join(tmp, 'net_cls'));
  tree = new NetClsTree(ownMount.mount, `tg-bypass-${lab.id}-${randomBytes(2).toString('hex')}`);
  await tree.ensure('app');
  await tree.writeClassid('app', CLASSID);
}, 120_000);

afterAll(async () => {
  await lab?.destroy();
  if (tree) {
    await tree.remove('app').catch(() => undefined);
    await tree.remove('').catch(() => undefined);
  }
  if (ownMount?.own) await execa('umount', [ownMount.mount], { reject: false });
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the rendered table in the kernel', () => {
  it('nft accepts every new construct (nft -c), with indexes of interfaces that do not exist', async () => {
    const text = renderTable({
      policy: policyFor({ interfaces: [lab.wsIface, 'wg-none*'] }),
      classids: new Map([[ruleKey, CLASSID]]),
      listeners: [{ proto: 'udp', port: 9500, addr: '127.0.0.1' }, { proto: 'tcp', port: 22, addr: '::' }, { proto: 'tcp', port: 80, addr: 'fd00:7467::1' }],
      nflogGroup: 7467,
      interfaceIndexes: [4242, 1],
    });
    const r = await lab.exec('ws', 'nft', ['-c', '-f', '-'], { input: text, reject: false });
    expect({ code: r.exitCode, err: r.stderr }).toEqual({ code: 0, err: '' });
  });
});

describe('9.7 an inbound packet reaches only a socket of an admitted process', () => {
  /**
   * The agents of an inbound UDP case: the admitted program's socket on `own`:`port`, its
   * control socket on `tunnel`:`port`+1, another user's thief on `tunnel`:`port`, and corp's
   * sender (from `corp`:`senderPort`).
   */
  const udpAgents = (own: string, tunnel: string, corp: string, port: number, senderPort: number) => ({
    adm: start('ws', ['udp-recv', own, String(port)], 'admitted'),
    ctl: start('ws', ['udp-recv', tunnel, String(port + 1)], 'admitted'),
    thief: start('ws', ['udp-recv', tunnel, String(port)], 'other'),
    sender: start('corp', ['udp-send', corp, String(senderPort)]),
  });

  it('UDP: a socket of another user on the tunnel address gets nothing; the admitted one on its own address does', async () => {
    const { adm, ctl, thief, sender } = udpAgents('127.0.0.1', lab.wsV4, lab.corpV4, 9500, 9599);
    await whenReady([adm, ctl, thief, sender], async () => {
      const { listeners, contested } = await listenersOf(adm, ctl);
      expect(listeners).toEqual([{ proto: 'udp', port: 9500, addr: '127.0.0.1' }, { proto: 'udp', port: 9501, addr: lab.wsV4 }]);
      expect(contested).toEqual([]);
      await load({ listeners });
      const before = await sendStolen(sender, lab.wsV4, 9500);
      sender.p.stdin?.write(`${lab.wsV4} 9501 control\n`);
      await ctl.wait(/got control/);
      await sender.wait(/sent control/);
      // The five went before the control on the same path; each was counted as dropped.
      await expectRefused(before, 5, thief);
    });
  });

  it('UDP over IPv6: a socket of another user on the tunnel address gets nothing; the admitted one on ::1 is not reachable from the tunnel', async () => {
    const { adm, ctl, thief, sender } = udpAgents('::1', lab.wsV6, lab.corpV6, 9510, 9596);
    await whenReady([adm, ctl, thief, sender], async () => {
      const { listeners } = await listenersOf(adm, ctl);
      expect(listeners).toEqual([{ proto: 'udp', port: 9510, addr: '::1' }, { proto: 'udp', port: 9511, addr: lab.wsV6 }]);
      await load({ listeners });
      const before = await sendStolen(sender, lab.wsV6, 9510);
      sender.p.stdin?.write(`${lab.wsV6} 9511 control\n`);
      await ctl.wait(/got control/);
      await expectRefused(before, 5, thief);
    });
  });

  it('UDP: 0.0.0.0 of another user on the port of an admitted v6-only :: gets no IPv4; the admitted socket gets IPv6', async () => {
    const adm = start('ws', ['udp-recv', '::', '9512', 'v6only'], 'admitted');
    const thief = start('ws', ['udp-recv', '0.0.0.0', '9512'], 'other');
    const sender4 = start('corp', ['udp-send', lab.corpV4, '9595']);
    const sender6 = start('corp', ['udp-send', lab.corpV6, '9595']);
    await whenReady([adm, thief, sender4, sender6], async () => {
      const { listeners, contested } = await listenersOf(adm);
      expect({ listeners, contested }).toEqual({ listeners: [{ proto: 'udp', port: 9512, addr: '::', v6only: true }], contested: [] });
      await load({ listeners });
      const before = await sendStolen(sender4, lab.wsV4, 9512);
      await sender4.wait(/sent stolen4/);
      sender6.p.stdin?.write(`${lab.wsV6} 9512 control\n`);
      await adm.wait(/got control/);
      // IPv4 and IPv6 take the same tunnel; the five went first and were counted as dropped.
      await expectRefused(before, 5, thief);
    });
  });

  it('UDP: a more specific bind next to an admitted wildcard (SO_REUSEADDR on both, another user) gets nothing', async () => {
    const adm = start('ws', ['udp-recv', '0.0.0.0', '9502', 'reuseaddr'], 'admitted');
    const thief = start('ws', ['udp-recv', lab.wsV4, '9502', 'reuseaddr'], 'other');
    const sender = start('corp', ['udp-send', lab.corpV4, '9598']);
    await whenReady([adm, thief, sender], async () => {
      const { listeners, contested } = await listenersOf(adm);
      expect({ listeners, contested }).toEqual({ listeners: [{ proto: 'udp', port: 9502, addr: '0.0.0.0' }], contested: [] });
      await load({ listeners });
      const before = await sendStolen(sender, lab.wsV4, 9502);
      await sender.wait(/sent stolen4/);
      // The positive control: the admitted wildcard socket is reachable once the thief is gone.
      await stop(thief);
      sender.p.stdin?.write(`${lab.wsV4} 9502 control\n`);
      await adm.wait(/got control/);
      await expectRefused(before, 5, thief);
      expect(adm.lines.filter((l) => l.startsWith('got stolen'))).toEqual([]);
    });
  });

  it('UDP: an SO_REUSEPORT group shared with a process that is not admitted is contested and refused, not split', async () => {
    const adm = start('ws', ['udp-recv', '0.0.0.0', '9503', 'reuseport'], 'admitted');
    const ctl = start('ws', ['udp-recv', lab.wsV4, '9504'], 'admitted');
    const thief = start('ws', ['udp-recv', '0.0.0.0', '9503', 'reuseport']);
    const sender = start('corp', ['udp-send', lab.corpV4, '9597']);
    await whenReady([adm, ctl, thief, sender], async () => {
      const { listeners, contested } = await listenersOf(adm, ctl);
      expect({ listeners, contested }).toEqual({
        listeners: [{ proto: 'udp', port: 9504, addr: lab.wsV4 }],
        contested: [{ proto: 'udp', port: 9503, addr: '0.0.0.0' }],
      });
      await load({ listeners });
      const before = await sendStolen(sender, lab.wsV4, 9503, 8);
      sender.p.stdin?.write(`${lab.wsV4} 9504 control\n`);
      await ctl.wait(/got control/);
      await expectRefused(before, 8, thief);
      // Once the port is the admitted process's alone, it is admitted again.
      await stop(thief);
      await load({ listeners: (await listenersOf(adm, ctl)).listeners });
      sender.p.stdin?.write(`${lab.wsV4} 9503 again\n`);
      await adm.wait(/got again/);
    });
  });

  it('TCP: a listener of another user on the tunnel address is not reached even where its answer would pass (alwaysAllow)', async () => {
    const adm = start('ws', ['http', '127.0.0.1', '9600'], 'admitted');
    const ctl = start('ws', ['http', lab.wsV4, '9601'], 'admitted');
    const thief = start('ws', ['http', lab.wsV4, '9600'], 'other');
    await whenReady([adm, ctl, thief], async () => {
      // The listener exists and answers without the table.
      expect((await curlFromCorp(`http://${lab.wsV4}:9600/`)).stdout).toBe('200');
      const { listeners } = await listenersOf(adm, ctl);
      await load({ listeners, alwaysAllow: [{ cidr: `${lab.corpV4}/32` }] });
      expect((await curlFromCorp(`http://${lab.wsV4}:9601/`)).stdout).toBe('200');
      const r = await curlFromCorp(`http://${lab.wsV4}:9600/`);
      expect({ out: r.stdout, code: r.exitCode }).toEqual({ out: '000', code: 28 });
    });
  });
});

describe('9.8 connections of admitted processes that predate the table survive it; new inbound ones are refused', () => {
  const corpStream: Destination[] = [{ cidr: `${LAB_CORP_V4}/32`, proto: 'tcp', ports: [9802] }];
  it.each([
    ['a process of an allow rule', 'admitted', {}],
    ['any process, to an alwaysAllow destination', 'other', { alwaysAllow: corpStream }],
    ['a root socket outside every rule, by a kernel rule (NFS)', 'root', { kernel: corpStream }],
  ] as const)('TCP: a stream from corp to %s, started before the table, goes on after it appears', async (_what, as, extra) => {
    const server = start('corp', ['stream-server', lab.corpV4, '9802']);
    await server.wait(/ready/);
    const client = start('ws', ['stream-client', lab.corpV4, '9802'], as);
    const plain = start('ws', ['http', '0.0.0.0', '9700']);
    try {
      await Promise.all([client.wait(/connected/), server.wait(/accepted/), plain.wait(/ready/)]);
      expect((await curlFromCorp(`http://${lab.wsV4}:9700/`)).stdout).toBe('200');
      server.p.stdin?.write('1\n');
      await client.wait(/chunk 1/);
      // Everything the client owes is acknowledged, so the next packet of the flow after the
      // table appears is corp's (inbound): conntrack picks the flow up mid-stream as new.
      const deadline = Date.now() + 5_000;
      for (;;) {
        const ss = await lab.exec('corp', 'ss', ['-tinH', 'state', 'established', '( sport = :9802 )']);
        if (String(ss.stdout).trim() && !/unacked:/.test(String(ss.stdout))) break;
        if (Date.now() > deadline) throw new Error(`corp's chunk was never acknowledged: ${ss.stdout}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      await load(extra);
      server.p.stdin?.write('2\n');
      await client.wait(/chunk 2/, 8_000);
      server.p.stdin?.write('3\n');
      await client.wait(/chunk 3/, 8_000);
      // A new inbound connection to a listener outside every rule is still refused.
      const r = await curlFromCorp(`http://${lab.wsV4}:9700/`);
      expect({ out: r.stdout, code: r.exitCode }).toEqual({ out: '000', code: 28 });
    } finally {
      await stop(server, client, plain);
      await unload();
    }
  });

  it('UDP: datagrams to an admitted connected socket that predates the table still arrive; an unconnected outsider gets none', async () => {
    const sender = start('corp', ['udp-send', lab.corpV4, '9801']);
    const conn = start('ws', ['udp-connected', lab.wsV4, '9800', lab.corpV4, '9801'], 'admitted');
    const outsider = start('ws', ['udp-recv', '0.0.0.0', '9804']);
    await whenReady([sender, conn, outsider], async () => {
      sender.p.stdin?.write(`${lab.wsV4} 9800 before\n`);
      await conn.wait(/got before/);
      // No listener set at all: only the socket the packet is early-demuxed to admits it.
      await load({ listeners: [] });
      sender.p.stdin?.write(`${lab.wsV4} 9804 stolen\n`);
      sender.p.stdin?.write(`${lab.wsV4} 9800 after\n`);
      await conn.wait(/got after/, 8_000);
      await sender.wait(/sent after/);
      expect(outsider.lines.filter((l) => l.startsWith('got'))).toEqual([]);
    });
  });
});

describe('9.2 an interface once gated stays gated under any name', () => {
  it('renamed in place, then moved to another namespace, renamed there and moved back: still gated, and the link monitor saw it all', async () => {
    const links = async () => listLinks((file, args, o) => run('nsenter', [`--net=${lab.netnsPath('ws')}`, '--', file, ...args], o));
    const first = await links();
    const patterns = [lab.wsIface];
    let gated = nextGatedIndexes([], first, patterns);
    const index = first.find((l) => l.name === lab.wsIface)?.index as number;
    expect(gated.map((g) => g.index)).toEqual([index]);
    const monitor = startLinkMonitor({ netns: lab.netnsPath('ws') });
    const events: LinkEvent[] = [];
    monitor.onEvent((e) => events.push(e));
    await monitor.ready;
    const closedAndOpen = async (what: string) => {
      const no = await curlFromWs(lab.urls.corpV4, 'other');
      const yes = await curlFromWs(lab.urls.corpV4, 'admitted');
      expect({ what, other: [no.stdout, no.exitCode], admitted: yes.stdout }).toEqual({ what, other: ['000', 28], admitted: '200' });
    };
    const readdress = async (name: string) => {
      await lab.exec('ws', 'ip', ['addr', 'replace', `${lab.wsV4}/24`, 'dev', name]);
      await lab.exec('ws', 'ip', ['link', 'set', name, 'up']);
    };
    const tmpNs = `tg-tmp-${lab.id}`;
    try {
      // With the pattern each index was gated under (as the gate renders it): the renamed
      // interface keeps its profile's rules, not only the gate.
      await load({ gatedIndexes: gated });
      await closedAndOpen('before');

      const renamed = `tgr${lab.id}`;
      await lab.exec('ws', 'ip', ['link', 'set', lab.wsIface, 'down']);
      await lab.exec('ws', 'ip', ['link', 'set', lab.wsIface, 'name', renamed]);
      await readdress(renamed);
      await closedAndOpen('renamed');
      gated = nextGatedIndexes(gated, await links(), patterns);
      expect(gated.map((g) => g.index)).toEqual([index]);
      expect(interfaceProblems(patterns, await links(), gated)).toEqual({
        degraded: true, problems: [`interface ${lab.wsIface} is now named ${renamed}; it is still gated by its index ${index}`],
      });

      const away = `tgq${lab.id}`;
      await execa('ip', ['netns', 'add', tmpNs]);
      await lab.exec('ws', 'ip', ['link', 'set', renamed, 'netns', tmpNs]);
      await execa('ip', ['-n', tmpNs, 'link', 'set', renamed, 'name', away]);
      await execa('ip', ['-n', tmpNs, 'link', 'set', away, 'netns', lab.ws]);
      await readdress(away);
      const back = (await links()).find((l) => l.name === away);
      // The kernel kept the index (it was free here): the mechanism rests on that.
      expect(back?.index).toBe(index);
      await closedAndOpen('moved out and back under another name');
      expect(events).toEqual(expect.arrayContaining([
        { deleted: false, index, name: renamed },
        { deleted: true, index, name: renamed },
        { deleted: false, index, name: away },
      ]));
    } finally {
      await monitor.close();
      await execa('ip', ['netns', 'del', tmpNs], { reject: false });
      await unload();
    }
  });
});

describe('9.13 a change of the table by anyone else is noticed at once', () => {
  it('nft flush ruleset inside the lab namespace is reported as the table deleted, by that process', async () => {
    const monitor = startNftMonitor({ netns: lab.netnsPath('ws') });
    const changes: RulesetChange[] = [];
    const waiters = new Set<() => void>();
    monitor.onChange((c) => {
      changes.push(c);
      for (const w of [...waiters]) w();
    });
    const next = (pred: (c: RulesetChange) => boolean) => new Promise<RulesetChange>((resolve, reject) => {
      const check = () => {
        const hit = changes.find(pred);
        if (hit) {
          waiters.delete(check);
          clearTimeout(t);
          resolve(hit);
        }
      };
      const t = setTimeout(() => reject(new Error(`no such change: ${JSON.stringify(changes)}`)), 10_000);
      waiters.add(check);
      check();
    });
    try {
      await monitor.ready;
      await load();
      const own = await next((c) => c.touchesTable);
      expect(own.tableDeleted).toBe(false);
      // Another table's change is seen, and is not ours.
      await lab.exec('ws', 'nft', ['add', 'table', 'ip', 'someone_else']);
      expect(await next((c) => c.lines.includes('add table ip someone_else'))).toMatchObject({ touchesTable: false, tableDeleted: false });
      // A chain of ours flushed by someone else: touched, not deleted.
      const flushChain = lab.exec('ws', 'nft', ['flush', 'chain', 'inet', 'tunnelgate', 'gate_out']);
      const flushPid = flushChain.pid;
      await flushChain;
      expect(await next((c) => c.pid === flushPid)).toMatchObject({ touchesTable: true, tableDeleted: false, comm: 'nft' });
      // What Debian's nftables.service does on every start or reload.
      const flush = lab.exec('ws', 'nft', ['flush', 'ruleset']);
      const pid = flush.pid;
      await flush;
      expect(await next((c) => c.tableDeleted)).toMatchObject({ pid, comm: 'nft', touchesTable: true });
    } finally {
      await monitor.close();
      await unload();
    }
  });
});
