// Campaign rows (issue 9): faults of the kernel state behind a running helper, and two
// helpers on one run dir or in one network namespace. Each row acts as root in the lab's workstation namespace, then
// asserts with packets (a copy of curl no rule names: dropped, curl exit 28; curl, allowed:
// HTTP 200) and with `status --json` telling the truth. Waits are on events, never on time.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, statSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect } from 'vitest';
import type { StampedEvent } from '../../../common/events.js';
import type { StatusReport } from '../../../common/api.js';
import { row } from '../../lab/campaign.js';
import { NETNS_DIR, removeCgroupTree } from '../../lab/cleanup.js';
import { follow, waitFor } from '../../lab/fixture.js';
import { CLI } from '../../lab/helper-proc.js';
import { expectDropped, labAndHelper } from '../../lab/suite.js';

const CURL = realpathSync('/usr/bin/curl');
const PYTHON = realpathSync('/usr/bin/python3.11');
const UID = 4271;
let otherCurl: string;
let otherPython: string;

const fx = labAndHelper({
  prepare: ({ copyBinary }) => {
    otherCurl = copyBinary(CURL, 'other/curl');
    otherPython = copyBinary(PYTHON, 'other/python3');
  },
  profiles: ({ lab }) => ({
    'corp-test': {
      schema: 'tunnelgate/profile@1', id: 'corp-test', version: 1, mode: 'enforce', interfaces: [lab.wsIface], userPrompts: 'deny',
      rules: [{ id: 'curl', binary: { path: CURL } }, { id: 'python', binary: { path: PYTHON } }],
    },
  }),
});

const http = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '4'];
const LONG = 60_000;

/** Packets: the unnamed copy is dropped (exit 28), allowed curl gets 200 (admitted by the watcher; a few tries under load). */
async function gateHolds(): Promise<void> {
  expectDropped(await fx.run(otherCurl, [...http, fx.lab.urls.corpV4]), 'a copy of curl no rule names');
  await waitFor('allowed curl gets HTTP 200', async () => ((await fx.run(CURL, [...http, fx.lab.urls.corpV4])).stdout === '200' ? true : undefined), LONG, 200);
}

/** The next event of `type` after `from` events (and matching `pred`). */
function nextEvent<T extends StampedEvent['type']>(type: T, from: number, pred: (e: Extract<StampedEvent, { type: T }>) => boolean = () => true, ms = LONG) {
  return waitFor(`a ${type} event`, () => fx.events().slice(from).find((e): e is Extract<StampedEvent, { type: T }> => e.type === type && pred(e as Extract<StampedEvent, { type: T }>)), ms, 100);
}

const statusIs = (state: string) => waitFor(`status ${state}`, async () => {
  const s = await fx.status();
  return s.state === state ? s : undefined;
}, LONG, 200);

const nft = (args: string[]) => fx.lab.exec('ws', 'nft', args, { reject: false });
const tableText = async () => String((await nft(['list', 'table', 'inet', 'tunnelgate'])).stdout);
const helperFlags = () => ['--etc', fx.helper.etc, '--state', fx.helper.state, '--run', fx.helper.run, '--cgroup-root', fx.helper.cgroupRoot];

describe('gate faults (issue 9: 0, 2, 7, 11, 12, 13; issue 11 saved ruleset)', () => {
  row('one helper per run dir (9.11)', 'a second helper on the same --run exits 1 naming the first and changes nothing', async () => {
    await statusIs('enforcing');
    const before = await tableText();
    const pid = fx.helper.pid;
    const r = await fx.cli(['helper', ...helperFlags()], { timeout: LONG });
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr)).toContain(`pid ${pid}`);
    const s = await fx.status();
    expect({ state: s.state, pid: s.helper.pid }).toEqual({ state: 'enforcing', pid });
    expect((await tableText()).replace(/packets \d+ bytes \d+/g, '')).toBe(before.replace(/packets \d+ bytes \d+/g, ''));
    await gateHolds();
  }, 180_000);

  /** `helper --uninstall-rules` with `run` as the run dir, while the helper runs: refused, nothing changed. */
  async function uninstallRefused(run: string): Promise<void> {
    await statusIs('enforcing');
    const before = await tableText();
    const pid = fx.helper.pid;
    const r = await fx.cli(['helper', '--uninstall-rules', '--etc', fx.helper.etc, '--state', fx.helper.state, '--run', run, '--cgroup-root', fx.helper.cgroupRoot], { timeout: LONG });
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr)).toMatch(new RegExp(`refusing to uninstall the rules: a tunnelgate helper runs on .* \\(pid ${pid} holds .*helper\\.lock\\)`));
    expect(String(r.stderr)).not.toContain('removed');
    expect((await tableText()).replace(/packets \d+ bytes \d+/g, '')).toBe(before.replace(/packets \d+ bytes \d+/g, ''));
    expect(existsSync(path.join(fx.helper.state, 'ruleset.nft'))).toBe(true);
    const s = await fx.status();
    expect({ state: s.state, pid: s.helper.pid }).toEqual({ state: 'enforcing', pid });
    await gateHolds();
  }

  row('one helper per run dir (9.11)', '`helper --uninstall-rules` on the same --run while the helper runs exits 1 naming it and changes nothing', async () => {
    await uninstallRefused(fx.helper.run);
  }, 180_000);

  row('one helper per run dir (9.11)', '`helper --uninstall-rules` on the run dir through a symlink: the same lock, refused', async () => {
    const link = path.join(fx.tmp, 'run-link');
    symlinkSync(fx.helper.run, link);
    await uninstallRefused(link);
  }, 180_000);

  /** Flags of a helper of the test's own beside the lab's: its own dirs (not made yet) under a new scratch dir, and its own cgroup subtree. */
  function ownHelper(): { dir: string; flags: string[]; cgroupRoot: string } {
    const dir = mkdtempSync(path.join(fx.tmp, 'second-'));
    const cgroupRoot = `${fx.helper.cgroupRoot}-2`;
    return { dir, cgroupRoot, flags: ['--etc', path.join(dir, 'etc'), '--state', path.join(dir, 'state'), '--run', path.join(dir, 'run'), '--cgroup-root', cgroupRoot] };
  }
  /**
   * Whatever a helper of our own left if it ran after all (the rows' failure, on code without
   * the namespace lock): its own net_cls mount and its cgroup subtree, by name.
   */
  function removeOwn(own: { dir: string; cgroupRoot: string }, netClsMount: string): void {
    const sub = path.join(netClsMount, own.cgroupRoot);
    if (existsSync(sub)) removeCgroupTree(sub);
    const mount = path.join(own.dir, 'run', 'net_cls');
    if (readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mount} `)) execFileSync('umount', ['-l', mount]);
  }
  const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

  row('one helper per network namespace (the table is the namespace\'s; 9.11)', 'a second helper with its own --run, --state and --etc in the same namespace exits 1 naming the first and changes nothing', async () => {
    const s0 = await statusIs('enforcing');
    const before = await tableText();
    const pid = fx.helper.pid;
    const second = ownHelper();
    try {
      const r = await fx.cli(['helper', ...second.flags], { timeout: LONG });
      expect(r.exitCode, String(r.stderr)).toBe(1);
      expect(String(r.stderr)).toMatch(new RegExp(`another tunnelgate helper runs in this network namespace \\(pid ${pid}, --run ${escaped(fx.helper.run)}\\)`));
      // Nothing changed: not its own dirs (never made), not a cgroup subtree, not the first's table.
      expect(readdirSync(second.dir)).toEqual([]);
      expect(existsSync(path.join(path.dirname(s0.cgroupDir), second.cgroupRoot))).toBe(false);
    } finally {
      removeOwn(second, path.dirname(s0.cgroupDir));
    }
    expect((await tableText()).replace(/packets \d+ bytes \d+/g, '')).toBe(before.replace(/packets \d+ bytes \d+/g, ''));
    const s = await fx.status();
    expect({ state: s.state, pid: s.helper.pid }).toEqual({ state: 'enforcing', pid });
    await gateHolds();
  }, 180_000);

  row('one helper per network namespace (the table is the namespace\'s; 9.11)', '`helper --uninstall-rules` with another --run while the helper runs exits 1 naming it and changes nothing', async () => {
    await statusIs('enforcing');
    const before = await tableText();
    const pid = fx.helper.pid;
    const other = ownHelper();
    const r = await fx.cli(['helper', '--uninstall-rules', ...other.flags.slice(0, -2), '--cgroup-root', fx.helper.cgroupRoot], { timeout: LONG });
    expect(r.exitCode, String(r.stderr)).toBe(1);
    expect(String(r.stderr)).toMatch(new RegExp(`refusing to uninstall the rules: a tunnelgate helper runs in this network namespace \\(pid ${pid}, --run ${escaped(fx.helper.run)}\\).*Nothing was changed`));
    expect((await tableText()).replace(/packets \d+ bytes \d+/g, '')).toBe(before.replace(/packets \d+ bytes \d+/g, ''));
    expect(existsSync(path.join(fx.helper.state, 'ruleset.nft'))).toBe(true);
    const s = await fx.status();
    expect({ state: s.state, pid: s.helper.pid }).toEqual({ state: 'enforcing', pid });
    await gateHolds();
  }, 180_000);

  row('one helper per network namespace (the table is the namespace\'s; 9.11)', 'control: a helper in another network namespace starts beside the lab\'s (the lock is per namespace)', async () => {
    const ns = `tg-ns2-${fx.lab.id}`;
    const netns = `--net=${path.join(NETNS_DIR, ns)}`;
    const other = ownHelper();
    execFileSync('ip', ['netns', 'add', ns]);
    const proc = execa('nsenter', [netns, '--', 'node', CLI, 'helper', ...other.flags], { all: true, reject: false });
    let out = '';
    proc.all?.on('data', (d: Buffer) => (out += d.toString()));
    const runDir = path.join(other.dir, 'run');
    try {
      const s = await waitFor('the helper in the other namespace answers', async () => {
        if (proc.exitCode !== null) throw new Error(`it exited ${proc.exitCode}: ${out.slice(-2000)}`);
        const r = await execa('node', [CLI, 'status', '--json', '--run', runDir], { reject: false });
        const st = r.stdout ? (JSON.parse(String(r.stdout)) as StatusReport) : undefined;
        return st && st.state !== 'down' ? st : undefined;
      }, LONG, 200).catch((e: unknown) => {
        throw new Error(`${(e as Error).message}\n${out.slice(-2000)}`);
      });
      expect(s.helper.pid).toBe(proc.pid);
      expect(out).not.toMatch(/another tunnelgate helper/);
      // Both run: the lab's helper is untouched.
      const mine = await fx.status();
      expect({ state: mine.state, pid: mine.helper.pid }).toEqual({ state: 'enforcing', pid: fx.helper.pid });
    } finally {
      if (proc.exitCode === null && proc.pid !== undefined) process.kill(proc.pid, 'SIGTERM');
      await proc;
      await execa('nsenter', [netns, '--', 'node', CLI, 'helper', '--uninstall-rules', ...other.flags], { reject: false });
      execFileSync('ip', ['netns', 'del', ns]);
    }
    await gateHolds();
  }, 180_000);

  row('the table removed by another tool (9.13)', '`nft flush ruleset` (Debian nftables.service): put back at once, reported', async () => {
    const from = fx.events().length;
    expect((await nft(['flush', 'ruleset'])).exitCode).toBe(0);
    const ev = await nextEvent('gate.restored', from, (e) => e.what.startsWith('table'));
    expect(ev.what).toBe('table deleted');
    expect(await tableText()).toContain('chain gate_out');
    await gateHolds();
    const s = await statusIs('enforcing');
    expect(s.problems.join('\n')).toMatch(/table was deleted by someone else .* put back/);
  }, 180_000);

  row('the table removed by another tool (9.13)', '`nft flush chain inet tunnelgate gate_out` (the table stays, open inside): put back', async () => {
    const from = fx.events().length;
    expect((await nft(['flush', 'chain', 'inet', 'tunnelgate', 'gate_out'])).exitCode).toBe(0);
    const ev = await nextEvent('gate.restored', from, (e) => e.what.startsWith('table'));
    expect(ev.what).toBe('table changed');
    expect(await tableText()).toMatch(/gate_out \{[\s\S]*goto refuse/);
    await gateHolds();
    const s = await statusIs('enforcing');
    expect(s.problems.join('\n')).toMatch(/table was changed by someone else/);
  }, 180_000);

  row('rule cgroups removed under a running helper (9.12)', 'rmdir of one rule cgroup: recreated, allowed curl admitted again', async () => {
    const s0 = await statusIs('enforcing');
    const dir = path.join(s0.cgroupDir, 'corp-test:curl');
    await waitFor('the curl cgroup is empty', () => (readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').trim() === '' ? true : undefined), LONG, 200);
    const from = fx.events().length;
    await fx.lab.exec('ws', 'rmdir', [dir]);
    await nextEvent('gate.restored', from, (e) => e.what.includes('cgroup'));
    expect(existsSync(path.join(dir, 'net_cls.classid'))).toBe(true);
    await gateHolds();
    const s = await statusIs('enforcing');
    expect(s.problems.join('\n')).toMatch(/rule cgroup\(s\) were removed by someone else/);
  }, 180_000);

  row('rule cgroups removed under a running helper (9.12)', 'rmdir of the whole subtree: recreated, allowed curl admitted again', async () => {
    const s0 = await statusIs('enforcing');
    const from = fx.events().length;
    const rules = ['corp-test:curl', 'corp-test:python'].map((k) => path.join(s0.cgroupDir, k));
    await waitFor('every rule cgroup is empty', () => (rules.every((d) => readFileSync(path.join(d, 'cgroup.procs'), 'utf8').trim() === '') ? true : undefined), LONG, 200);
    // One rmdir(1) of the rules and then the subtree itself, as `cgdelete -r` would.
    const r = await fx.lab.exec('ws', 'rmdir', [...rules, s0.cgroupDir], { reject: false });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    await nextEvent('gate.restored', from, (e) => e.what.includes('cgroup'));
    await waitFor('the subtree is back', () => (existsSync(path.join(s0.cgroupDir, 'corp-test:curl', 'net_cls.classid')) ? true : undefined), LONG, 200);
    await gateHolds();
    await statusIs('enforcing');
  }, 180_000);

  /**
   * With the workstation's tunnel renamed to `other` (`before` runs between the rename and
   * the check: a restart, say): a copy of curl is dropped over it, status is degraded naming
   * the new name; named back afterwards, enforcing again.
   */
  async function whileRenamed(other: string, why: string, before?: () => Promise<void>): Promise<void> {
    const r = await fx.lab.exec('ws', 'ip', ['link', 'set', 'dev', fx.lab.wsIface, 'name', other], { reject: false });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    try {
      await before?.();
      expectDropped(await fx.run(otherCurl, [...http, fx.lab.urls.corpV4]), why);
      const s = await statusIs('degraded');
      expect(s.problems.join('\n')).toContain(`now named ${other}`);
    } finally {
      await fx.lab.exec('ws', 'ip', ['link', 'set', 'dev', other, 'name', fx.lab.wsIface], { reject: false });
    }
    await statusIs('enforcing');
    await gateHolds();
  }

  row('an interface once gated stays gated under any name (9.2)', '`ip link set wgX name other` while the helper runs: dropped, status degraded', async () => {
    await whileRenamed(`tgr${fx.lab.id}`.slice(0, 15), 'a copy of curl over the renamed tunnel');
  }, 180_000);

  row('a stale lock and the saved ruleset (9.11, issue 11)', 'kill -9, `nft flush ruleset` as at boot, `nft -f STATE/ruleset.nft` shuts the gate, a new helper starts over the stale lock', async () => {
    const oldPid = fx.helper.pid;
    const saved = path.join(fx.helper.state, 'ruleset.nft');
    expect(statSync(saved).mode & 0o777).toBe(0o600);
    await fx.helper.kill('SIGKILL');
    expect(readFileSync(path.join(fx.helper.run, 'helper.lock'), 'utf8').trim()).toBe(String(oldPid));
    expect((await nft(['flush', 'ruleset'])).exitCode).toBe(0);
    const r = await nft(['-f', saved]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    // No helper runs: the restored table alone keeps the tunnel shut.
    expectDropped(await fx.run(otherCurl, [...http, fx.lab.urls.corpV4]), 'a copy of curl with only the saved ruleset');
    await fx.helper.restart();
    const s = await statusIs('enforcing');
    expect(s.helper.pid).not.toBe(oldPid);
    await gateHolds();
  }, 240_000);

  row('an interface once gated stays gated under any name (9.2)', 'renamed while no helper runs, then a restart: still gated by its saved index', async () => {
    await fx.helper.kill('SIGKILL');
    await whileRenamed(`tgs${fx.lab.id}`.slice(0, 15), 'a copy of curl over the tunnel renamed while no helper ran', () => fx.helper.restart());
  }, 240_000);

  /** A python listener: `kind` udp|tcp on 0.0.0.0:port with SO_REUSEADDR (udp) or SO_REUSEPORT (tcp); prints `ready`, then each datagram / `conn`. */
  const listener = (py: string, kind: 'udp' | 'tcp', port: number) => follow(fx.spawn(py, ['-u', '-c', `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if '${kind}' == 'udp' else socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR if '${kind}' == 'udp' else socket.SO_REUSEPORT, 1)
s.bind(('0.0.0.0', ${port}))
if '${kind}' == 'tcp': s.listen(8)
print('ready', flush=True)
while True:
    if '${kind}' == 'udp': print('got', s.recv(100).decode(), flush=True)
    else: c, _ = s.accept(); print('conn', flush=True); c.close()
`], { uid: UID }));
  const fromCorp = (args: string[]) => fx.lab.exec('corp', args[0] as string, args.slice(1), { reject: false, timeout: 30_000 });
  const sendUdp = (port: number, text: string) => fromCorp([PYTHON, '-c', `import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); [s.sendto(b'${text}', ('${fx.lab.wsV4}', ${port})) for _ in range(3)]`]);

  row('an inbound packet reaches only a socket of an admitted process (9.7)', 'a second UDP socket sharing the admitted port (SO_REUSEADDR): refused, reported in status and as an event', async () => {
    const port = 9500;
    const admitted = listener(PYTHON, 'udp', port);
    await admitted.until('admitted listener ready', (l) => l.includes('ready'), LONG);
    // Positive control: the admitted listener receives from corp once the gate knows it.
    await waitFor('a datagram from corp reaches the admitted listener', async () => {
      await sendUdp(port, 'one');
      return admitted.lines().some((l) => l === 'got one') ? true : undefined;
    }, LONG, 500);
    const from = fx.events().length;
    const squatter = listener(otherPython, 'udp', port);
    await squatter.until('squatter ready', (l) => l.includes('ready'), LONG);
    const ev = await nextEvent('listeners.contested', from);
    expect(ev.listeners).toContain(`udp 0.0.0.0:${port}`);
    const s = await statusIs('degraded');
    expect(s.problems.join('\n')).toContain(`udp 0.0.0.0:${port} of an admitted program is shared`);
    await sendUdp(port, 'two');
    // A barrier, not a pause: a datagram to another admitted-free port is dropped too; then nothing arrived.
    expectDropped(await fromCorp(['curl', ...http, `http://${fx.lab.wsV4}:${port + 1}/`]), 'corp to a port nobody admitted');
    expect(squatter.lines().filter((l) => l.startsWith('got'))).toEqual([]);
  }, 180_000);

  row('an inbound packet reaches only a socket of an admitted process (9.7)', 'a second TCP listener in the admitted one\'s SO_REUSEPORT group: refused, reported', async () => {
    const port = 9600;
    const admitted = listener(PYTHON, 'tcp', port);
    await admitted.until('admitted listener ready', (l) => l.includes('ready'), LONG);
    const url = `http://${fx.lab.wsV4}:${port}/`;
    await waitFor('corp connects to the admitted listener', async () => {
      await fromCorp(['curl', ...http, url]);
      return admitted.lines().includes('conn') ? true : undefined;
    }, LONG, 500);
    const from = fx.events().length;
    const squatter = listener(otherPython, 'tcp', port);
    await squatter.until('squatter ready', (l) => l.includes('ready'), LONG);
    const ev = await nextEvent('listeners.contested', from, (e) => e.listeners.includes(`tcp 0.0.0.0:${port}`));
    expect(ev.listeners).toContain(`tcp 0.0.0.0:${port}`);
    const s = await statusIs('degraded');
    expect(s.problems.join('\n')).toContain(`tcp 0.0.0.0:${port} of an admitted program is shared`);
    expectDropped(await fromCorp(['curl', ...http, url]), 'corp to the contested TCP port');
    expect(squatter.lines().filter((l) => l === 'conn')).toEqual([]);
  }, 180_000);
});
