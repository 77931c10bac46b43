// decide() with the identity checks of issue 4: app matchers, safety refusals, per-user scope.
import { describe, expect, it } from 'vitest';
import { candidateRules, decide, refusal } from '../../../helper/policy/decide.js';
import type { ProcessIdentity } from '../../../helper/policy/decide.js';
import { policyOf, profile } from './fixtures.js';

const proc = (exe: string, over: Partial<ProcessIdentity> = {}): ProcessIdentity => ({ exe, exeDeleted: false, uid: 1000, ...over });
const HASH = 'c'.repeat(64);

const policy = policyOf([
  profile({
    rules: [
      { id: 'curl', binary: { path: '/usr/bin/curl' } },
      { id: 'pinned', binary: { path: '/opt/tool/bin/tool', sha256: HASH } },
      { id: 'java', binary: { path: '/usr/lib/jvm/bin/java' }, allowEnv: ['LD_LIBRARY_PATH'], children: 'confine' },
      { id: 'deploy', binary: { path: '/usr/bin/python3.11', script: '/opt/corp/deploy.py' } },
      { id: 'deploy-pp', binary: { path: '/usr/bin/python3.11', script: '/opt/corp/pp.py' }, allowEnv: ['PYTHONPATH'] },
      { id: 'work', binary: { flatpak: 'org.example.Work' } },
      { id: 'ff', binary: { snap: 'firefox' } },
      { id: 'img', binary: { appimage: '/opt/apps/Work.AppImage' } },
    ],
  }),
], [
  { id: 'mine', uid: 1000, binary: { path: '/usr/bin/wget' } },
]);

describe('decide: safety checks', () => {
  it('a clean process of an allowed path is allowed', () => {
    expect(decide(policy, proc('/usr/bin/curl'))).toMatchObject({ allow: true, rule: { key: 'corp-base:curl' } });
  });

  it('LD_PRELOAD / LD_LIBRARY_PATH / LD_AUDIT refuse, with the rule and the reason', () => {
    const v = decide(policy, proc('/usr/bin/curl', { env: ['LD_PRELOAD'] }));
    expect(v).toMatchObject({ allow: false, rule: { key: 'corp-base:curl' } });
    expect(v.reason).toBe('/usr/bin/curl matches rule curl of profile corp-base, but it was started with LD_PRELOAD in its environment, which loads code rule curl of profile corp-base does not name (a profile may list it in allowEnv)');
    expect(decide(policy, proc('/usr/bin/curl', { env: ['LD_AUDIT', 'LD_LIBRARY_PATH'] })).reason).toMatch(/started with LD_AUDIT, LD_LIBRARY_PATH/);
  });

  it('allowEnv relaxes only the names it lists', () => {
    expect(decide(policy, proc('/usr/lib/jvm/bin/java', { env: ['LD_LIBRARY_PATH'] })).allow).toBe(true);
    expect(decide(policy, proc('/usr/lib/jvm/bin/java', { env: ['LD_LIBRARY_PATH', 'LD_PRELOAD'] })).reason).toMatch(/started with LD_PRELOAD in/);
  });

  it('interpreter variables matter to script rules only', () => {
    expect(decide(policy, proc('/usr/bin/curl', { env: ['PYTHONPATH', 'NODE_OPTIONS'] })).allow).toBe(true);
    const py = (script: string, env: ProcessIdentity['env']) => proc('/usr/bin/python3.11', { script, env });
    expect(decide(policy, py('/opt/corp/deploy.py', ['PYTHONPATH'])).reason).toMatch(/started with PYTHONPATH/);
    expect(decide(policy, py('/opt/corp/pp.py', ['PYTHONPATH'])).allow).toBe(true);
  });

  it('a writable binary is refused for a path-only rule; a sha256-pinned rule checks the bytes instead', () => {
    const unsafe = '/usr/bin/curl is owned by uid 1000';
    expect(decide(policy, proc('/usr/bin/curl', { exeUnsafe: unsafe })).reason)
      .toBe(`/usr/bin/curl matches rule curl of profile corp-base, but ${unsafe}; only a rule that pins its sha256 can allow it`);
    expect(decide(policy, proc('/opt/tool/bin/tool', { exeUnsafe: 'owned by uid 1000', sha256: HASH })).allow).toBe(true);
    expect(decide(policy, proc('/opt/tool/bin/tool', { exeUnsafe: 'owned by uid 1000', sha256: 'd'.repeat(64) })).reason).toMatch(/does not match the sha256/);
  });

  it('an unsafe script is refused with its reason', () => {
    const v = decide(policy, proc('/usr/bin/python3.11', { script: '/opt/corp/deploy.py', scriptUnsafe: '/opt/corp/deploy.py is owned by uid 1000' }));
    expect(v.allow).toBe(false);
    expect(v.reason).toMatch(/its script cannot be trusted: \/opt\/corp\/deploy.py is owned by uid 1000$/);
  });

  it('a traced process is refused', () => {
    expect(decide(policy, proc('/usr/bin/curl', { traced: 'it is being traced by process 42, which can change its code' })).reason)
      .toMatch(/but it is being traced by process 42/);
  });

  it('a deny rule still denies a process that fails the checks', () => {
    const p = policyOf([profile({ rules: [{ id: 'no', action: 'deny', binary: { path: '/usr/bin/nc' } }] })]);
    expect(decide(p, proc('/usr/bin/nc', { env: ['LD_PRELOAD'] })).reason).toBe('denied by rule no of profile corp-base');
  });

  it('refusal() alone, for explain', () => {
    const curl = policy.rules.find((r) => r.id === 'curl');
    if (!curl) throw new Error('no rule');
    expect(refusal(curl, proc('/usr/bin/curl'))).toBeUndefined();
    expect(refusal(curl, proc('/usr/bin/curl', { env: ['LD_PRELOAD'] }))).toMatch(/LD_PRELOAD/);
  });
});

describe('decide: version-independent app matchers', () => {
  it('flatpak, snap and appimage match only a verified identity', () => {
    expect(decide(policy, proc('/app/bin/work', { flatpak: 'org.example.Work' }))).toMatchObject({ allow: true, rule: { id: 'work' } });
    expect(decide(policy, proc('/app/bin/work', { flatpak: 'org.example.Other' })).allow).toBe(false);
    expect(decide(policy, proc('/snap/firefox/4848/usr/lib/firefox/firefox', { snap: 'firefox' }))).toMatchObject({ allow: true, rule: { id: 'ff' } });
    expect(decide(policy, proc('/snap/firefox/4848/usr/lib/firefox/firefox')).allow).toBe(false);
    expect(decide(policy, proc('/tmp/.mount_WorkAb/usr/bin/work', { appimage: '/opt/apps/Work.AppImage' }))).toMatchObject({ allow: true, rule: { id: 'img' } });
    expect(decide(policy, proc('/tmp/.mount_WorkAb/usr/bin/work', { appimage: '/opt/apps/Work.AppImage', exeDeleted: true })).allow).toBe(false);
  });

  it('an app identity that could not be established shows why', () => {
    const v = decide(policy, proc('/app/bin/work', { notes: ['flatpak org.example.Work is not a system-wide installation (/home/u/…)'] }));
    expect(v.reason).toBe('no rule allows /app/bin/work (flatpak org.example.Work is not a system-wide installation (/home/u/…))');
  });

  it('candidateRules: the cheap first look from the exe path alone', () => {
    const ids = (exe: string) => candidateRules(policy, exe).map((r) => r.id);
    expect(ids('/usr/bin/curl')).toEqual(['curl', 'work']);
    expect(ids('/usr/bin/python3.11')).toEqual(['deploy', 'deploy-pp', 'work']);
    expect(ids('/snap/firefox/1/firefox')).toEqual(['ff']);
    expect(ids('/tmp/.mount_WorkAb/AppRun')).toEqual(['img']);
    expect(ids('/app/bin/work')).toEqual(['work']);
    expect(ids('/home/u/bin/x')).toEqual([]);
    expect(ids('/usr/bin/wget')).toEqual(['work', 'mine']);
  });
});

describe('decide: per-user scope', () => {
  // User rules come from the decisions store (issue 5); the uid is the kernel's (/proc/PID/status).
  it("a user's own rule admits only that user's processes of the same binary", () => {
    expect(decide(policy, proc('/usr/bin/wget', { uid: 1000 }))).toMatchObject({ allow: true, rule: { key: 'user.1000:mine' } });
    expect(decide(policy, proc('/usr/bin/wget', { uid: 0 }))).toEqual({ allow: false, reason: 'no rule allows /usr/bin/wget' });
    expect(decide(policy, proc('/usr/bin/wget', { uid: 1001 })).allow).toBe(false);
  });

  it('the same safety checks apply to user rules', () => {
    expect(decide(policy, proc('/usr/bin/wget', { uid: 1000, env: ['LD_PRELOAD'] })).reason).toMatch(/user rule mine \(uid 1000\)/);
  });
});

describe('mergePolicy carries children and allowEnv', () => {
  it('onto the effective rules', () => {
    const java = policy.rules.find((r) => r.id === 'java');
    expect(java).toMatchObject({ children: 'confine', allowEnv: ['LD_LIBRARY_PATH'] });
    expect(policy.rules.find((r) => r.id === 'curl')?.children).toBeUndefined();
  });
});
