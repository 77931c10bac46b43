// The .rpm, which no machine here can boot (Debian), checked with rpm itself: its file
// list, its %config(noreplace) files, its scriptlets, and an install, an upgrade and an
// erase in a scratch root (`rpm --root DIR`). The root has a shell (busybox and the
// libraries it links, copied from this machine), /run/systemd/system (so the scriptlets
// believe systemd runs) and a stand-in `systemctl` that records each call: what the
// scriptlets ask of systemd is asserted call by call.
//
// Needs: root, rpm and rpmbuild (Debian's `rpm`), busybox, and the packages made by
// `npm run package` (npm run test:system builds them first).
import { execa } from 'execa';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '../..');
const VERSION = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version.replace(/-/g, '_');
const RPM = path.join(REPO, 'dist/packages', `tunnelgate-${VERSION}-1.x86_64.rpm`);
const UPGRADE_VERSION = `${VERSION}.1`;

const rpm = async (...args: string[]) => (await execa('rpm', args, { env: { LC_ALL: 'C' } })).stdout;

/** The second package of the upgrade: the staged tree with another version and another default helper.json. */
async function buildUpgradeRpm(dir: string): Promise<string> {
  const top = path.join(dir, 'rpmbuild');
  const tree = path.join(top, 'tree');
  cpSync(path.join(REPO, 'dist/packaging/rpm/tree'), tree, { recursive: true });
  writeFileSync(path.join(tree, 'etc/tunnelgate/helper.json'), '{ "promptTimeoutSeconds": 45 }\n');
  mkdirSync(path.join(top, 'SPECS'), { recursive: true });
  const spec = readFileSync(path.join(REPO, 'dist/packaging/rpm/SPECS/tunnelgate.spec'), 'utf8').replace(/^Version:.*$/m, `Version: ${UPGRADE_VERSION}`);
  writeFileSync(path.join(top, 'SPECS/tunnelgate.spec'), spec);
  // As packaging/build.sh calls it.
  await execa('rpmbuild', [
    '-bb', '--quiet', '--target', 'x86_64', '--define', `_topdir ${top}`, '--define', `_tree ${tree}`,
    '--define', '__os_install_post %{nil}', '--define', '_build_id_links none', '--define', 'debug_package %{nil}',
    '--define', '_binary_payload w9.zstdio', path.join(top, 'SPECS/tunnelgate.spec'),
  ]);
  return path.join(top, 'RPMS/x86_64', `tunnelgate-${UPGRADE_VERSION}-1.x86_64.rpm`);
}

/** A root the scriptlets can run in: busybox as /bin/sh, a recording systemctl, /dev/null, /run/systemd/system. */
async function scratchRoot(root: string): Promise<void> {
  for (const d of ['bin', 'usr/bin', 'var/tmp', 'var/log', 'run/systemd/system', 'dev', 'tmp']) mkdirSync(path.join(root, d), { recursive: true });
  const busybox = (await execa('sh', ['-c', 'command -v busybox'])).stdout.trim();
  const libs = (await execa('ldd', [busybox])).stdout.split('\n').flatMap((l) => /(\/\S+) \(0x/.exec(l)?.[1] ?? []);
  for (const f of [busybox, ...libs]) {
    mkdirSync(path.join(root, path.dirname(f)), { recursive: true });
    copyFileSync(f, path.join(root, f));
    chmodSync(path.join(root, f), 0o755);
  }
  symlinkSync(busybox, path.join(root, 'bin/sh'));
  writeFileSync(path.join(root, 'usr/bin/systemctl'), '#!/bin/sh\necho "$*" >> /var/log/systemctl.calls\n');
  chmodSync(path.join(root, 'usr/bin/systemctl'), 0o755);
  await execa('mknod', ['-m', '0666', path.join(root, 'dev/null'), 'c', '1', '3']);
  await execa('rpm', ['--root', root, '--initdb']);
}

describe('the .rpm, with rpm', () => {
  let dir: string;
  let root: string;
  let upgrade: string;
  /** The systemctl calls the scriptlets made since the last look. */
  const calls = () => {
    const f = path.join(root, 'var/log/systemctl.calls');
    const text = existsSync(f) ? readFileSync(f, 'utf8') : '';
    rmSync(f, { force: true });
    return text.split('\n').filter(Boolean);
  };
  const inRoot = (f: string) => path.join(root, f);

  beforeAll(async () => {
    if (!existsSync(RPM)) throw new Error(`${RPM} is missing: run npm run package (npm run test:system does)`);
    dir = mkdtempSync('/var/tmp/tg-rpm-');
    root = path.join(dir, 'root');
    await scratchRoot(root);
    upgrade = await buildUpgradeRpm(dir);
  }, 120_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lists the CLI, both units, the drop-in, man pages, completion and the schema', async () => {
    const files = (await rpm('-qpl', RPM)).split('\n');
    for (const f of [
      '/usr/bin/tunnelgate', '/usr/lib/systemd/system/tunnelgate.service', '/usr/lib/systemd/system/tunnelgate-restore.service',
      '/usr/lib/systemd/system/wg-quick@.service.d/tunnelgate.conf', '/usr/lib/tunnelgate/tunnelgate_native.node', '/usr/lib/tunnelgate/tunnelgate_sd.node',
      '/usr/share/man/man8/tunnelgate.8.gz', '/usr/share/man/man5/tunnelgate-profile.5.gz', '/usr/share/bash-completion/completions/tunnelgate',
      '/usr/share/fish/vendor_completions.d/tunnelgate.fish', '/usr/share/tunnelgate/profile-v1.schema.json', '/etc/tunnelgate/helper.json',
    ]) expect(files).toContain(f);
  });

  it('every file under /etc/tunnelgate is %config(noreplace), and nothing else is config', async () => {
    const flags = (await rpm('-qp', '--qf', '[%{FILENAMES}\\t%{FILEFLAGS:fflags}\\t%{FILEMODES:perms}\\n]', RPM)).split('\n').map((l) => l.split('\t'));
    const config = flags.filter(([, f]) => f?.includes('c')).map(([n, f]) => [n, f]);
    expect(config).toEqual([['/etc/tunnelgate/helper.json', 'cn']]);
    const etcFiles = flags.filter(([n, , m]) => n?.startsWith('/etc/') && m?.startsWith('-')).map(([n]) => n);
    expect(etcFiles).toEqual(['/etc/tunnelgate/helper.json']);
    expect(flags.find(([n]) => n === '/usr/bin/tunnelgate')?.[2]).toBe('-rwxr-xr-x');
  });

  it('has the scriptlets that enable, start, restart and stop the helper', async () => {
    const scripts = await rpm('-qp', '--scripts', RPM);
    expect(scripts).toMatch(/^postinstall scriptlet \(using \/bin\/sh\):$/m);
    expect(scripts).toMatch(/^preuninstall scriptlet \(using \/bin\/sh\):$/m);
    expect(scripts).toMatch(/^postuninstall scriptlet \(using \/bin\/sh\):$/m);
    expect(scripts).toContain('systemctl enable tunnelgate.service tunnelgate-restore.service');
    expect(scripts).toContain('systemctl try-restart tunnelgate.service');
  });

  it('installs into a scratch root: files in place, verified by rpm, the units enabled and the helper started', async () => {
    await rpm('--root', root, '--nodeps', '-i', RPM);
    expect(await rpm('--root', root, '-q', 'tunnelgate')).toBe(`tunnelgate-${VERSION}-1.x86_64`);
    expect(statSync(inRoot('usr/bin/tunnelgate')).mode & 0o7777).toBe(0o755);
    expect(existsSync(inRoot('usr/lib/systemd/system/tunnelgate.service'))).toBe(true);
    // rpm -V: every file as the package says (size, digest, mode, owner; not the dependencies, which this root lacks).
    expect(await rpm('--root', root, '-V', '--nodeps', 'tunnelgate')).toBe('');
    expect(calls()).toEqual(['daemon-reload', 'enable tunnelgate.service tunnelgate-restore.service', 'start tunnelgate.service']);
  });

  it("upgrades: the admin's helper.json stays (the new default beside it as .rpmnew), the helper is restarted after the old files go", async () => {
    const edited = '{ "promptTimeoutSeconds": 10, "adminGroup": "netadmin" }\n';
    writeFileSync(inRoot('etc/tunnelgate/helper.json'), edited);
    await rpm('--root', root, '--nodeps', '-U', upgrade);
    expect(await rpm('--root', root, '-q', 'tunnelgate')).toBe(`tunnelgate-${UPGRADE_VERSION}-1.x86_64`);
    expect(readFileSync(inRoot('etc/tunnelgate/helper.json'), 'utf8')).toBe(edited);
    expect(readFileSync(inRoot('etc/tunnelgate/helper.json.rpmnew'), 'utf8')).toBe('{ "promptTimeoutSeconds": 45 }\n');
    // New %post (no second enable, no start), old %preun (nothing: not an erase), old %postun.
    expect(calls()).toEqual(['daemon-reload', 'daemon-reload', 'try-restart tunnelgate.service']);
  });

  it("erases: units disabled and stopped, the package's files gone, the admin's edit kept as .rpmsave and the admin's profiles untouched", async () => {
    writeFileSync(inRoot('etc/tunnelgate/profiles.d/corp.json'), '{}\n');
    await rpm('--root', root, '--nodeps', '-e', 'tunnelgate');
    expect(calls()).toEqual(['disable --now tunnelgate.service tunnelgate-restore.service', 'daemon-reload']);
    for (const f of ['usr/bin/tunnelgate', 'usr/lib/systemd/system/tunnelgate.service', 'usr/lib/tunnelgate', 'usr/share/tunnelgate', 'etc/tunnelgate/helper.json']) {
      expect(existsSync(inRoot(f)), f).toBe(false);
    }
    expect(readFileSync(inRoot('etc/tunnelgate/helper.json.rpmsave'), 'utf8')).toContain('netadmin');
    expect(existsSync(inRoot('etc/tunnelgate/profiles.d/corp.json'))).toBe(true);
  });
});
