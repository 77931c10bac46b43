// Issue 12 parts 1, 2, 7 on the helper side: `explain` right for every matcher (the pure
// explain on the gate's identity, and the handler gathering a path's facts like the gate),
// `explain {rule}`, `allow` refused where an IT deny wins, `apps` from .desktop entries.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Caller } from '../../../common/api.js';
import type { Policy } from '../../../common/policy.js';
import { installedApps } from '../../../helper/api/handlers/apps.js';
import { explainHandlers } from '../../../helper/api/handlers/explain.js';
import { flatpakOfHostPath } from '../../../helper/api/handlers/path-identity.js';
import { ruleHandlers } from '../../../helper/api/handlers/rules.js';
import { desktopDirs, flatpakOfEntry, homeOfUid, parseDesktopEntry } from '../../../helper/identity/apps.js';
import { explain, explainRule } from '../../../helper/policy/explain.js';
import { policyOf, profile } from '../policy/fixtures.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tg-trayapi-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const me: Caller = { pid: 100, uid: os.userInfo().uid, gid: os.userInfo().gid, admin: false };
const ssh = { exe: '/usr/bin/ssh', exeDeleted: false, uid: 1000 };

const it1 = profile({
  rules: [
    { id: 'ssh-pkg', binary: { package: 'openssh-client' } },
    { id: 'pinned', binary: { path: '/opt/tool', sha256: 'a'.repeat(64) } },
    { id: 'py', binary: { path: '/usr/bin/python3.11', script: '/opt/sync.py' } },
    { id: 'maps', binary: { flatpak: 'org.gnome.Maps' } },
    { id: 'code', binary: { snap: 'code' } },
    { id: 'img', binary: { appimage: '/opt/Tool.AppImage' } },
    { id: 'nfs', kernel: true, destinations: [{ cidr: '198.18.0.0/24', ports: [2049], proto: 'tcp' }] },
    { id: 'try-curl', mode: 'audit', binary: { path: '/usr/bin/curl' } },
    { id: 'no-games', action: 'deny', binary: { path: '/usr/games/*' } },
  ],
});
const policy = policyOf([it1], [{ id: 'u1', uid: 1000, binary: { path: '/usr/games/foo' } }, { id: 'u2', uid: 1000, binary: { path: '/usr/bin/nano' } }]);

describe('explain, per matcher (the identity the gate gathers)', () => {
  it('package: ssh is allowed through openssh-client when the package vouches for it', () => {
    expect(explain({ policy, id: { ...ssh, packages: ['openssh-client'] } })).toMatchObject({ verdict: 'allow', rule: { key: 'corp-base:ssh-pkg' }, reason: 'allowed by rule ssh-pkg of profile corp-base' });
    expect(explain({ policy, id: ssh }).reason).toBe('no rule allows /usr/bin/ssh');
  });
  it('path + sha256: the pin decides', () => {
    expect(explain({ policy, id: { exe: '/opt/tool', exeDeleted: false, uid: 1000, sha256: 'a'.repeat(64) } }).verdict).toBe('allow');
    expect(explain({ policy, id: { exe: '/opt/tool', exeDeleted: false, uid: 1000, sha256: 'b'.repeat(64) } }).reason).toBe('/opt/tool does not match the sha256 pinned by rule pinned of profile corp-base');
  });
  it('script: the interpreter alone is not allowed, with its script it is', () => {
    const py = { exe: '/usr/bin/python3.11', exeDeleted: false, uid: 1000 };
    expect(explain({ policy, id: py }).verdict).toBe('deny');
    expect(explain({ policy, id: { ...py, script: '/opt/sync.py' } })).toMatchObject({ verdict: 'allow', rule: { key: 'corp-base:py' } });
  });
  it('flatpak, snap, appimage: by the verified app identity', () => {
    const app = { exe: '/app/bin/x', exeDeleted: false, uid: 1000 };
    expect(explain({ policy, id: { ...app, flatpak: 'org.gnome.Maps' } }).rule?.key).toBe('corp-base:maps');
    expect(explain({ policy, id: { ...app, snap: 'code' } }).rule?.key).toBe('corp-base:code');
    expect(explain({ policy, id: { ...app, appimage: '/opt/Tool.AppImage' } }).rule?.key).toBe('corp-base:img');
    expect(explain({ policy, id: app }).verdict).toBe('deny');
  });
  it('trial rule: reported, not enforced', () => {
    expect(explain({ policy, id: { exe: '/usr/bin/curl', exeDeleted: false, uid: 1000 } }).reason).toBe('no rule allows /usr/bin/curl (trial rule try-curl of profile corp-base would allow it)');
  });
  it('deny over allow: the IT deny wins over the user rule', () => {
    expect(explain({ policy, id: { exe: '/usr/games/foo', exeDeleted: false, uid: 1000 } })).toMatchObject({ verdict: 'deny', prompt: 'not-applicable', rule: { key: 'corp-base:no-games' } });
  });
  it('locked: userPrompts deny', () => {
    const locked = policyOf([profile({ userPrompts: 'deny' })]);
    expect(explain({ policy: locked, id: ssh })).toMatchObject({ verdict: 'deny', locked: true, prompt: 'locked' });
  });
});

describe('explain {rule}', () => {
  it('kernel rule, trial rule, IT deny, user rule, in explain\'s words', () => {
    const byKey = (k: string) => policy.rules.find((r) => r.key === k)!;
    expect(explainRule(policy, byKey('corp-base:nfs'), 1000).reason).toBe(
      'rule nfs of profile corp-base allows traffic of the kernel itself (no process: WireGuard keepalives, NFS, …), for processes of every user, on only 198.18.0.0/24:2049/tcp',
    );
    expect(explainRule(policy, byKey('corp-base:try-curl'), 1000)).toMatchObject({ enforced: false });
    expect(explainRule(policy, byKey('corp-base:no-games'), 1000).notes).toContain('an IT deny: it wins over every allow rule, user rules included');
    const u = explainRule(policy, byKey('user.1000:u2'), 1000);
    expect(u.reason).toBe('user rule u2 (uid 1000) allows /usr/bin/nano, for processes of uid 1000, on the whole tunnel');
    expect(u.notes).toContain('a user decision: uid 1000 (or an admin) may revoke it');
  });
});

const handlerDeps = (p: Policy, packages: string[] = []) => ({
  current: () => p,
  gate: { verdictFor: () => Promise.reject(new Error('n/a')), ruleOf: async () => undefined },
  procs: { process: () => Promise.reject(new Error('n/a')), sha256: async () => 'f'.repeat(64) },
  rules: { findDeny: () => undefined, views: () => [] },
  packages: async () => ({ packages, notes: [] }),
});

describe('the explain handler gathers a path like the gate', () => {
  const file = path.join(tmp, 'ssh');
  writeFileSync(file, 'binary');
  chmodSync(file, 0o755);
  const p = policyOf([profile({ rules: [{ id: 'ssh', binary: { package: 'openssh-client' } }] })]);
  it('a package rule admits the path the package vouches for (the `explain /usr/bin/ssh` bug)', async () => {
    const h = explainHandlers(handlerDeps(p, ['openssh-client']) as never);
    expect(await h.explain(me, { path: file })).toMatchObject({ verdict: 'allow', rule: { key: 'corp-base:ssh' } });
    const none = explainHandlers(handlerDeps(p, []) as never);
    expect((await none.explain(me, { path: file })).verdict).toBe('deny');
  });
  it('explain {rule}: by key, by the old `user UID:` spelling; others\' user rules are not found', async () => {
    const pu = policyOf([profile()], [{ id: 'r1', uid: me.uid, binary: { path: '/usr/bin/nano' } }, { id: 'r2', uid: me.uid + 1, binary: { path: '/usr/bin/vi' } }]);
    const h = explainHandlers(handlerDeps(pu) as never);
    expect((await h.explain(me, { rule: `user ${me.uid}:r1` })).rule?.key).toBe(`user.${me.uid}:r1`);
    await expect(h.explain(me, { rule: `user.${me.uid + 1}:r2` })).rejects.toThrow(/no rule/);
    await expect(h.explain(me, { rule: 'x', path: file })).rejects.toThrow(/exactly one/);
  });
  it('a host path of a system Flatpak app names the app', () => {
    expect(flatpakOfHostPath(`/var/lib/flatpak/app/org.gnome.Maps/x86_64/stable/${'ab12'.repeat(16)}/files/bin/gnome-maps`)).toBe('org.gnome.Maps');
    expect(flatpakOfHostPath('/home/u/.local/share/flatpak/app/org.x.Y/x86_64/stable/ab/files/bin/y')).toBeUndefined();
  });
});

describe('allow', () => {
  const tool = path.join(tmp, 'games-tool');
  writeFileSync(tool, 'binary');
  chmodSync(tool, 0o755);
  const p = policyOf([profile({ rules: [{ id: 'no-tools', action: 'deny', binary: { path: `${tmp}/games-*` } }] })]);
  const added: string[] = [];
  const h = ruleHandlers({
    current: () => p,
    rules: { allow: async (r: { path: string }) => (added.push(r.path), { view: {} as never, admitted: [] }), resolve: () => ({ allows: [], denies: [] }), remove: async () => ({ removed: [], released: 0 }), views: () => [] } as never,
    prompts: { ruleAdded: () => undefined },
    clock: { now: () => 0 } as never,
    facts: { sha256: async () => 'f'.repeat(64), packages: async () => ({ packages: [], notes: [] }) },
  });
  it('refused with the reason where an IT deny overrides the path (decide, as the gate)', async () => {
    await expect(h.allow(me, { path: tool })).rejects.toMatchObject({ message: `${tool} stays denied: denied by rule no-tools of profile corp-base, and an IT deny wins over user rules; ask your administrator` });
    expect(added).toEqual([]);
  });
  it('exactly one of path and app', async () => {
    await expect(h.allow(me, {})).rejects.toThrow(/exactly one/);
    await expect(h.allow(me, { path: tool, app: '/x/y.desktop' })).rejects.toThrow(/exactly one/);
  });
});

describe('apps', () => {
  it('entries of the caller\'s home (from the uid) and system dirs: NoDisplay, Hidden left out, first id wins, sorted, Flatpak by app id', async () => {
    const home = path.join(tmp, 'home');
    const userDir = path.join(home, '.local/share/applications');
    const sysDir = path.join(tmp, 'sys');
    const fpDir = path.join(tmp, 'flatpak');
    for (const d of [userDir, sysDir, fpDir]) mkdirSync(d, { recursive: true });
    const exe = path.join(tmp, 'zed');
    writeFileSync(exe, '#!/bin/sh\n');
    chmodSync(exe, 0o755);
    writeFileSync(path.join(userDir, 'zed.desktop'), `[Desktop Entry]\nType=Application\nName=Zed\nIcon=zed\nExec=${exe} %F\nComment=Editor\n`);
    writeFileSync(path.join(userDir, 'hidden.desktop'), '[Desktop Entry]\nType=Application\nName=Hidden\nHidden=true\n');
    writeFileSync(path.join(sysDir, 'hidden.desktop'), `[Desktop Entry]\nType=Application\nName=Shadowed\nExec=${exe}\n`);
    writeFileSync(path.join(sysDir, 'nodisplay.desktop'), `[Desktop Entry]\nType=Application\nName=Helper\nNoDisplay=true\nExec=${exe}\n`);
    writeFileSync(path.join(sysDir, 'link.desktop'), '[Desktop Link]\nType=Link\nName=Link\n');
    writeFileSync(path.join(fpDir, 'org.gnome.Maps.desktop'), '[Desktop Entry]\nType=Application\nName=Maps\nExec=/usr/bin/flatpak run --branch=stable --command=gnome-maps org.gnome.Maps @@u %U @@\nX-Flatpak=org.gnome.Maps\n');
    const employee: Caller = { pid: 100, uid: 4242, gid: 4242, admin: false };
    const passwd = async () => `root:x:0:0::/root:/bin/sh\nme:x:4242:4242::${home}:/bin/sh\n`;
    const seen: Array<string | undefined> = [];
    const apps = await installedApps(employee, { passwd, systemRoots: [sysDir, fpDir], dirs: (h) => (seen.push(h), h ? [path.join(h, '.local/share/applications'), sysDir, fpDir] : []) });
    expect(seen).toEqual([home]);
    expect(apps.map((a) => a.name)).toEqual(['Maps', 'Zed']);
    expect(apps[0]).toEqual({ desktopEntry: path.join(fpDir, 'org.gnome.Maps.desktop'), name: 'Maps', flatpak: 'org.gnome.Maps' });
    expect(apps[1]).toEqual({ desktopEntry: path.join(userDir, 'zed.desktop'), name: 'Zed', icon: 'zed', exe, comment: 'Editor' });
    // Outside the home and the system roots (a symlink could point anywhere): not read.
    expect(await installedApps(employee, { passwd, dirs: () => [sysDir, fpDir] })).toEqual([]);
  });
  it('the parsers: home by uid, Flatpak id from Exec=, the directories', () => {
    expect(homeOfUid('a:x:1000:1000::/home/a:/bin/sh\nb:x:1001:1001::/home/b:/bin/sh\n', 1001)).toBe('/home/b');
    expect(homeOfUid('a:x:1000:1000::/home/a:/bin/sh\n', 7)).toBeUndefined();
    expect(flatpakOfEntry(parseDesktopEntry('[Desktop Entry]\nName=M\nExec=flatpak run --branch=stable org.gnome.Maps %U\n')!)).toBe('org.gnome.Maps');
    expect(desktopDirs('/home/a')).toEqual([
      '/home/a/.local/share/applications', '/usr/local/share/applications', '/usr/share/applications',
      '/home/a/.local/share/flatpak/exports/share/applications', '/var/lib/flatpak/exports/share/applications', '/var/lib/snapd/desktop/applications',
    ]);
  });
});
