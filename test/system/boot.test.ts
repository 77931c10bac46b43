// The package on a clean Debian 12 that boots: the .deb installs into a debootstrapped root
// with no Node; the root boots (systemd 252 as PID 1, systemd-nspawn) inside the lab's
// workstation namespace with a profile and a wg-quick@ tunnel (userspace wireguard-go) that
// comes up at boot, peering with the lab's corp end. Proves, at first boot, after a reboot,
// after an upgrade to a newer package, and after kill -9 of the helper: a program no rule
// names never gets anything through the tunnel, from the first moment the tunnel exists
// (a prober started before the network records every attempt), an allowed one gets HTTP
// 200, and tunnelgate.service was started before the tunnel (journal order); each event
// reaches the journal once with its TUNNELGATE_ fields. Then purge
// leaves no table and no cgroups.
//
// Needs: root, debootstrap, systemd-nspawn (systemd-container), the packages made by
// `npm run package` (npm run test:system builds them first).
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab } from '../lab/lab.js';
import { Container, rootDirFor, until } from './container.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const VERSION = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const DEB = path.join(REPO, 'dist/packages', `tunnelgate_${VERSION}_amd64.deb`);
const UPGRADE_VERSION = `${VERSION}+systest2`;
const IFACE = 'wgq';
const ALLOWED = '/usr/local/bin/allowed-curl';

/** The second package of the upgrade step: the built tree with a bumped version. */
function buildUpgradeDeb(prefix: string): string {
  const tree = `${prefix}.upgrade-tree`;
  cpSync(path.join(REPO, 'dist/packaging/deb'), tree, { recursive: true });
  const control = path.join(tree, 'DEBIAN/control');
  writeFileSync(control, readFileSync(control, 'utf8').replace(/^Version: .*$/m, `Version: ${UPGRADE_VERSION}`));
  const out = `${prefix}.upgrade.deb`;
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zzstd', '-z3', '--build', tree, out], { stdio: 'ignore' });
  rmSync(tree, { recursive: true });
  return out;
}

function write(root: string, file: string, text: string, mode = 0o644): void {
  const p = path.join(root, file);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, text);
  chmodSync(p, mode);
}

/** One line per attempt through the tunnel by /usr/bin/curl (named by no rule), from boot on. */
const PROBER = `#!/bin/sh
# Started before anything else (DefaultDependencies=no). Each time the tunnel interface
# exists: was the gate's table there, and what did an unnamed program get through it.
while :; do
  if ip link show dev ${IFACE} >/dev/null 2>&1; then
    t=0; nft list table inet tunnelgate >/dev/null 2>&1 && t=1
    code=$(/usr/bin/curl -s -o /dev/null -w '%{http_code}' --connect-timeout 1 --max-time 2 "$1")
    echo "link=1 table=$t code=$code" >> /run/prober.log
  else
    sleep 0.05
  fi
done
`;

describe('the .deb on a booted Debian 12', () => {
  const id = randomBytes(3).toString('hex');
  let lab: Lab;
  let c: Container;
  let upgradeDeb: string;
  const phases: Record<string, number> = {};
  let t = performance.now();
  const phase = (name: string) => {
    phases[name] = Math.round(performance.now() - t);
    t = performance.now();
  };

  beforeAll(async () => {
    if (!existsSync(DEB)) throw new Error(`${DEB} is missing: run npm run package (npm run test:system does)`);
    // Asynchronous: debootstrap takes a minute or more on a fresh cache, and the test
    // worker must keep answering vitest meanwhile.
    const tarball = (await execa('bash', [path.join(REPO, 'test/system/debian-root.sh')], { stdin: 'ignore', stderr: 'inherit' })).stdout.trim();
    phase('debian root (debootstrap or cache)');
    lab = await createLab({ id, log: () => undefined });
    const root = rootDirFor(id);
    c = new Container(root, lab.netnsPath('ws'), `tgsys${id}`);
    await Container.unpack(tarball, root);
    upgradeDeb = buildUpgradeDeb(root);
    phase('lab, root unpacked, upgrade .deb');

    // The package, with nftables from the root's apt (Depends), as an admin would.
    copyFileSync(DEB, path.join(root, 'tmp/tunnelgate.deb'));
    await c.chroot('apt-get', ['install', '-y', '-q', '/tmp/tunnelgate.deb']);
    await c.chroot('rm', ['/tmp/tunnelgate.deb']);
    expect(existsSync(path.join(root, 'usr/bin/node')) || existsSync(path.join(root, 'usr/bin/nodejs'))).toBe(false);
    phase('apt-get install ./tunnelgate.deb');

    // The tunnel: the container replaces the lab's own workstation end (same address),
    // with a key of its own that the corp end is told about.
    await lab.exec('ws', 'ip', ['link', 'del', lab.wsIface]);
    const key = (await execa('wg', ['genkey'])).stdout.trim();
    const pub = (await execa('wg', ['pubkey'], { input: key })).stdout.trim();
    const corpPub = (await lab.exec('corp', 'wg', ['show', lab.corpIface, 'public-key'])).stdout.trim();
    for (const old of (await lab.exec('corp', 'wg', ['show', lab.corpIface, 'peers'])).stdout.split('\n').filter(Boolean)) {
      await lab.exec('corp', 'wg', ['set', lab.corpIface, 'peer', old, 'remove']);
    }
    await lab.exec('corp', 'wg', ['set', lab.corpIface, 'peer', pub, 'allowed-ips', `${lab.wsV4}/32`]);
    write(root, `etc/wireguard/${IFACE}.conf`, `[Interface]\nPrivateKey = ${key}\nAddress = ${lab.wsV4}/24\n\n[Peer]\nPublicKey = ${corpPub}\nEndpoint = ${lab.underlayCorp}:${lab.ports.wireguard}\nAllowedIPs = ${lab.tunnelV4Cidr}\n`, 0o600);
    write(root, 'etc/systemd/system/wg-quick@.service.d/userspace.conf', '[Service]\nEnvironment=WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go\n');
    mkdirSync(path.join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
    symlinkSync('/lib/systemd/system/wg-quick@.service', path.join(root, `etc/systemd/system/multi-user.target.wants/wg-quick@${IFACE}.service`));

    // The profile: only a copy of curl at ALLOWED may use the tunnel; users may not add rules.
    copyFileSync(path.join(root, 'usr/bin/curl'), path.join(root, ALLOWED.slice(1)));
    chmodSync(path.join(root, ALLOWED.slice(1)), 0o755);
    write(root, 'etc/tunnelgate/profiles.d/systest.json', JSON.stringify({
      schema: 'tunnelgate/profile@1', id: 'systest', version: 1, mode: 'enforce', interfaces: [IFACE], userPrompts: 'deny',
      rules: [{ id: 'allowed-curl', binary: { path: ALLOWED } }],
    }, null, 2));

    write(root, 'usr/local/sbin/prober', PROBER, 0o755);
    write(root, 'etc/systemd/system/prober.service', `[Unit]\nDescription=records what an unnamed program gets through the tunnel\nDefaultDependencies=no\n\n[Service]\nExecStart=/usr/local/sbin/prober ${lab.urls.corpV4}\n\n[Install]\nWantedBy=sysinit.target\n`);
    mkdirSync(path.join(root, 'etc/systemd/system/sysinit.target.wants'), { recursive: true });
    symlinkSync('/etc/systemd/system/prober.service', path.join(root, 'etc/systemd/system/sysinit.target.wants/prober.service'));

    // The packaged unit runs as it is: Type=notify, ready once the helper's first transaction is in force.
    phase('configure the root');
    await c.boot();
    phase('first boot');
  }, 1_200_000);

  afterAll(async () => {
    await c?.destroy();
    await lab?.destroy();
    if (upgradeDeb) rmSync(upgradeDeb, { force: true });
    console.log(`system test phases (ms): ${JSON.stringify(phases)}`);
  }, 180_000);

  /** What the boot's journal says about the order of the helper and the tunnel. */
  async function journalOrder(): Promise<{ helperStarted: number; tunnelStarting: number }> {
    const r = await c.exec('journalctl', ['-b', '-o', 'json', '--no-pager', `UNIT=tunnelgate.service`, '+', `UNIT=wg-quick@${IFACE}.service`]);
    const entries = String(r.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>);
    const helperStarted = entries.findIndex((e) => e.UNIT === 'tunnelgate.service' && e.JOB_TYPE === 'start' && e.JOB_RESULT === 'done');
    const tunnelStarting = entries.findIndex((e) => e.UNIT === `wg-quick@${IFACE}.service` && e.JOB_TYPE === 'start');
    return { helperStarted, tunnelStarting };
  }

  /** What the container says about the units under test, for a failure's message. */
  async function diagnose(): Promise<string> {
    const out: string[] = [];
    for (const [cmd, args] of [
      ['systemctl', ['status', '--no-pager', '-l', 'tunnelgate.service', 'tunnelgate-restore.service', `wg-quick@${IFACE}.service`]],
      ['journalctl', ['-b', '--no-pager', '-o', 'short-monotonic', '-u', 'tunnelgate.service', '-u', `wg-quick@${IFACE}.service`, '-u', 'tunnelgate-restore.service']],
      ['systemd-analyze', ['blame', '--no-pager']],
      ['cat', ['/run/prober.log']],
    ] as const) {
      const r = await c.exec(cmd, [...args], { reject: false });
      out.push(`$ ${cmd} ${args.join(' ')}`, String(r.stdout).split('\n').slice(-40).join('\n'), String(r.stderr));
    }
    return out.join('\n');
  }

  /** The gate as seen from inside: unnamed program never through, allowed one 200, order. */
  async function expectGated(what: string): Promise<void> {
    try {
      await checkGated(what);
    } catch (e) {
      console.error(`${what}: ${(e as Error).message}\n${await diagnose()}`);
      throw e;
    }
  }

  async function checkGated(what: string): Promise<void> {
    // The tunnel is up (wg-quick@ is active) and the prober has tried through it.
    await until(`${what}: wg-quick@${IFACE} active`, async () => ((await c.exec('systemctl', ['is-active', `wg-quick@${IFACE}`], { reject: false })).stdout === 'active' ? true : undefined), 120_000);
    const prober = await until(`${what}: prober attempts through the tunnel`, async () => {
      const text = String((await c.exec('cat', ['/run/prober.log'], { reject: false })).stdout);
      return text.split('\n').filter(Boolean).length >= 3 ? text.split('\n').filter(Boolean) : undefined;
    });
    expect(prober[0], `${what}: the gate's table existed when the tunnel first did`).toBe('link=1 table=1 code=000');
    expect(prober.filter((l) => !l.endsWith('code=000')), `${what}: an unnamed program got an answer through the tunnel`).toEqual([]);

    const allowed = await c.exec('tunnelgate', ['run', '--', ALLOWED, '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', lab.urls.corpV4], { reject: false });
    expect(`${allowed.exitCode} ${String(allowed.stdout)}`, `${what}: the allowed program`).toBe('0 200');
    const refused = await c.exec('tunnelgate', ['run', '--', '/usr/bin/curl', '-s', '--max-time', '3', lab.urls.corpV4], { reject: false });
    expect(refused.exitCode, `${what}: tunnelgate run of a program no rule names`).toBe(126);
    const direct = await c.exec('/usr/bin/curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', lab.urls.corpV4], { reject: false });
    expect(String(direct.stdout), `${what}: the unnamed program run directly`).toBe('000');

    const order = await journalOrder();
    expect(order.helperStarted, `${what}: tunnelgate.service started (journal)`).toBeGreaterThanOrEqual(0);
    expect(order.tunnelStarting, `${what}: wg-quick@${IFACE} starting (journal)`).toBeGreaterThan(order.helperStarted);
  }

  const helperPid = async () => Number((await c.exec('systemctl', ['show', '-p', 'MainPID', '--value', 'tunnelgate.service'])).stdout);

  it('the units pass systemd-analyze verify, and the service is hardened to exposure <= 5.5', async () => {
    const verify = await c.exec('systemd-analyze', ['verify', '--man=no', 'tunnelgate.service', 'tunnelgate-restore.service'], { reject: false });
    expect(`${verify.exitCode} ${String(verify.stdout)}${String(verify.stderr)}`.trim()).toBe('0');
    const security = await c.exec('systemd-analyze', ['security', '--no-pager', 'tunnelgate.service'], { reject: false });
    const exposure = Number(/Overall exposure level for tunnelgate\.service: ([\d.]+)/.exec(String(security.stdout))?.[1]);
    console.log(`systemd-analyze security tunnelgate.service: exposure ${exposure}`);
    expect(exposure).toBeLessThanOrEqual(5.5);
  });

  it('gates the tunnel from the first boot on', async () => {
    expect((await c.exec('systemctl', ['is-enabled', 'tunnelgate.service'])).stdout).toBe('enabled');
    await expectGated('first boot');
    phase('checks after first boot');
  }, 300_000);

  it('each event reaches the journal once, with its fields (native protocol, not stderr + syslog)', async () => {
    const pid = await helperPid();
    const entriesOf = async (...match: string[]) => String((await c.exec('journalctl', ['-b', '-o', 'json', '--no-pager', `_PID=${pid}`, ...match])).stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    // helper.started is the first event of this helper: one entry, by field; no copy of it as a line.
    const started = (await entriesOf()).filter((e) => e.TUNNELGATE_EVENT === 'helper.started' || String(e.MESSAGE).includes('"type":"helper.started"'));
    expect(started.map((e) => [e.TUNNELGATE_EVENT, e.TUNNELGATE_PID, e.SYSLOG_IDENTIFIER, e._SYSTEMD_UNIT])).toEqual([['helper.started', String(pid), 'tunnelgate', 'tunnelgate.service']]);
    // A refused launch (by the earlier checks): found by its fields alone.
    const refused = await entriesOf('TUNNELGATE_EVENT=launch.refused', 'TUNNELGATE_EXE=/usr/bin/curl');
    expect(refused.length, 'launch.refused entries of /usr/bin/curl').toBeGreaterThan(0);
    expect(refused[0]).toMatchObject({ TUNNELGATE_UID: '0', PRIORITY: '4' });
    // No event twice: each sequence number once.
    const seqs = (await entriesOf()).map((e) => e.TUNNELGATE_SEQ).filter((s) => s !== undefined);
    expect(seqs.length).toBeGreaterThan(1);
    expect(new Set(seqs).size, 'journal entries per event').toBe(seqs.length);
  });

  it('gates it again after a reboot, with the kernel state gone', async () => {
    // A real reboot empties the kernel; the lab namespace outlives the container, so the
    // test removes the table itself while the container is down.
    await c.reboot(async () => {
      await lab.exec('ws', 'nft', ['delete', 'table', 'inet', 'tunnelgate'], { reject: false });
    });
    await expectGated('after reboot');
    phase('reboot and checks');
  }, 400_000);

  it('upgrades to a newer package without an open moment', async () => {
    const before = await helperPid();
    // Not /tmp: nspawn mounts a tmpfs there.
    copyFileSync(upgradeDeb, path.join(c.root, 'var/tmp/upgrade.deb'));
    await c.exec('rm', ['-f', '/run/prober.log']);
    await c.exec('dpkg', ['-i', '/var/tmp/upgrade.deb'], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive' } });
    expect((await c.exec('dpkg-query', ['-W', '-f=${Version}', 'tunnelgate'])).stdout).toBe(UPGRADE_VERSION);
    const after = await until('the restarted helper', async () => {
      const pid = await helperPid();
      const active = (await c.exec('systemctl', ['is-active', 'tunnelgate.service'], { reject: false })).stdout;
      return pid && pid !== before && active === 'active' ? pid : undefined;
    });
    expect(after).not.toBe(before);
    await expectGated('after upgrade');
    phase('upgrade and checks');
  }, 300_000);

  it('comes back after kill -9 of the helper (Restart=always), gate shut meanwhile', async () => {
    const before = await helperPid();
    await c.exec('rm', ['-f', '/run/prober.log']);
    expect(before).toBeGreaterThan(0);
    await c.exec('sh', ['-c', `kill -9 ${before}`]);
    await until('systemd restarting the helper', async () => {
      const pid = await helperPid();
      const active = (await c.exec('systemctl', ['is-active', 'tunnelgate.service'], { reject: false })).stdout;
      return pid && pid !== before && active === 'active' ? pid : undefined;
    });
    await expectGated('after kill -9');
    phase('kill -9 and checks');
  }, 300_000);

  it('purge leaves no table, no cgroups, no state', async () => {
    await c.exec('dpkg', ['--purge', 'tunnelgate'], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive' } });
    const table = await lab.exec('ws', 'nft', ['list', 'table', 'inet', 'tunnelgate'], { reject: false });
    expect(table.exitCode, 'table inet tunnelgate after purge').not.toBe(0);
    // The net_cls hierarchy is one per machine: look at it through a private mount.
    const mnt = `/run/tunnelgate-systest-${id}`;
    mkdirSync(mnt, { recursive: true });
    await execa('mount', ['-t', 'cgroup', '-o', 'net_cls', `tunnelgate-systest-${id}`, mnt]);
    try {
      expect(readdirSync(mnt).includes('tunnelgate'), 'net_cls subtree tunnelgate after purge').toBe(false);
    } finally {
      await execa('umount', [mnt]);
      rmSync(mnt, { recursive: true });
    }
    expect(existsSync(path.join(c.root, 'var/lib/tunnelgate')), 'state dir after purge').toBe(false);
    // The package's conffiles go; the admin's own profile stays (dpkg never removes files it did not install).
    expect(existsSync(path.join(c.root, 'etc/tunnelgate/helper.json')), 'conffile after purge').toBe(false);
    expect(existsSync(path.join(c.root, 'etc/tunnelgate/profiles.d/systest.json')), 'the admin\'s profile after purge').toBe(true);
    phase('purge and checks');
  }, 300_000);
});
