import { describe, expect, it } from 'vitest';
import {
  appImageMountOwner, flatpakHostPath, isSystemAppPath, isSystemRuntimePath, mountOf, parseDesktopEntry, parseFlatpakInfo, execProgram, splitExec, parseMountinfo, snapFromCgroup, snapFromExe,
} from '../../../helper/identity/apps.js';

const INFO = `[Application]
name=org.example.Work
runtime=runtime/org.freedesktop.Platform/x86_64/23.08

[Instance]
instance-id=1234
app-path=/var/lib/flatpak/app/org.example.Work/x86_64/stable/0123abcd/files
runtime-path=/var/lib/flatpak/runtime/org.freedesktop.Platform/x86_64/23.08/4567ef/files
# a comment
name=not-this
`;

describe('flatpak', () => {
  it('parses .flatpak-info', () => {
    expect(parseFlatpakInfo(INFO)).toEqual({
      name: 'org.example.Work',
      appPath: '/var/lib/flatpak/app/org.example.Work/x86_64/stable/0123abcd/files',
      runtimePath: '/var/lib/flatpak/runtime/org.freedesktop.Platform/x86_64/23.08/4567ef/files',
    });
    expect(parseFlatpakInfo('[Application]\nname=not an id\n')).toBeUndefined();
    expect(parseFlatpakInfo('[Instance]\nname=org.x.Y\n')).toBeUndefined();
  });

  it('trusts only the system installation of that very app', () => {
    const info = parseFlatpakInfo(INFO);
    expect(isSystemAppPath(info?.appPath ?? '', 'org.example.Work')).toBe(true);
    expect(isSystemAppPath(info?.appPath ?? '', 'org.example.Other')).toBe(false);
    expect(isSystemAppPath('/home/u/.local/share/flatpak/app/org.example.Work/x86_64/stable/0123/files', 'org.example.Work')).toBe(false);
    expect(isSystemAppPath('/usr', 'org.example.Work')).toBe(false);
    expect(isSystemRuntimePath(info?.runtimePath ?? '')).toBe(true);
  });

  it('maps a sandboxed exe to its host file', () => {
    const info = parseFlatpakInfo(INFO);
    if (!info) throw new Error('unparsed');
    expect(flatpakHostPath('/app/bin/work', info)).toBe(`${info.appPath}/bin/work`);
    expect(flatpakHostPath('/usr/bin/python3', info)).toBe(`${info.runtimePath}/bin/python3`);
    expect(flatpakHostPath('/tmp/evil', info)).toBeUndefined();
  });
});

describe('snap', () => {
  it.each([
    ['0::/user.slice/user-1000.slice/user@1000.service/app.slice/snap.firefox.firefox-8a7b.scope\n', 'firefox'],
    ['12:pids:/x\n1:name=systemd:/system.slice/snap.lxd.daemon.service\n0::/system.slice/snap.lxd.daemon.service\n', 'lxd'],
    ['1:name=systemd:/user.slice/snap.code.code-1.scope\n', 'code'],
    ['0::/user.slice/user-1000.slice/session-2.scope\n', undefined],
    ['0::/snap.firefox.firefox.scope/child\n', undefined],
  ] as const)('reads the snap name from the unified cgroup path, or name=systemd on hybrid: %j → %s', (input, expected) => {
    expect(snapFromCgroup(input)).toBe(expected);
  });

  it('reads the snap name from /snap/<name>/<revision>/…', () => {
    expect(snapFromExe('/snap/firefox/4848/usr/lib/firefox/firefox')).toBe('firefox');
    expect(snapFromExe('/snap/bin/firefox')).toBeUndefined(); // a symlink to /usr/bin/snap, never an exe
    expect(snapFromExe('/usr/bin/firefox')).toBeUndefined();
    expect(snapFromExe('/snap/firefox')).toBeUndefined();
  });
});

const MOUNTINFO = [
  '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '40 22 0:35 / /tmp rw,nosuid shared:2 - tmpfs tmpfs rw',
  '90 40 0:60 / /tmp/.mount_WorkAbC123 ro,nosuid,nodev,relatime shared:50 - fuse.Work.AppImage Work.AppImage ro,user_id=1000,group_id=1000',
  '91 40 0:61 / /tmp/.mount_EvilXyz ro,nosuid,nodev shared:51 - fuse.evil /opt/apps/Work.AppImage ro,user_id=1001,group_id=1001',
  '92 40 0:62 / /tmp/with\\040space rw - tmpfs tmpfs rw',
].join('\n');

describe('appimage', () => {
  const mounts = parseMountinfo(MOUNTINFO);
  it('finds the mount of a path (longest mount point; escapes decoded)', () => {
    expect(mountOf(mounts, '/tmp/.mount_WorkAbC123/usr/bin/work')?.mountPoint).toBe('/tmp/.mount_WorkAbC123');
    expect(mountOf(mounts, '/tmp/other')?.mountPoint).toBe('/tmp');
    expect(mountOf(mounts, '/usr/bin/x')?.mountPoint).toBe('/');
    expect(mountOf(mounts, '/tmp/with space/x')?.mountPoint).toBe('/tmp/with space');
  });

  it('a read-only FUSE mount named after the image gives its owner', () => {
    const work = mountOf(mounts, '/tmp/.mount_WorkAbC123/AppRun');
    const evil = mountOf(mounts, '/tmp/.mount_EvilXyz/x');
    if (!work || !evil) throw new Error('no mount');
    expect(appImageMountOwner(work, '/opt/apps/Work.AppImage')).toBe(1000);
    expect(appImageMountOwner(work, '/opt/apps/Other.AppImage')).toBeUndefined();
    expect(appImageMountOwner(evil, '/opt/apps/Work.AppImage')).toBe(1001);
    expect(appImageMountOwner(mountOf(mounts, '/tmp/x') ?? work, '/opt/apps/Work.AppImage')).toBeUndefined();
  });
});

describe('.desktop entries (parseKeyFile)', () => {
  it('parses the [Desktop Entry] group, unlocalised keys, applications only', () => {
    const text = '[Desktop Entry]\nType=Application\nName=Firefox\nName[de]=Feuerfuchs\nIcon=firefox\nExec=firefox %u\n\n[Desktop Action new]\nName=New Window\nExec=firefox --new-window\n';
    expect(parseDesktopEntry(text)).toEqual({ name: 'Firefox', icon: 'firefox', exec: 'firefox %u', noDisplay: false });
    expect(parseDesktopEntry('[Desktop Entry]\nType=Link\nName=x\n')).toBeUndefined();
    expect(parseDesktopEntry('[Desktop Entry]\nName=x\nHidden=true\n')).toBeUndefined();
  });

  it('finds the program of an Exec= line: quoting, env, field codes', () => {
    expect(splitExec('"/opt/My App/run" --x "a \\"b\\"" %F')).toEqual(['/opt/My App/run', '--x', 'a "b"', '%F']);
    expect(execProgram('env GDK_BACKEND=x11 FOO=1 code --new %F')).toBe('code');
    expect(execProgram('"/opt/My App/run" %U')).toBe('/opt/My App/run');
    expect(execProgram('%U')).toBeUndefined();
  });
});
