// Profile v1 extensions of issue 4 (children, allowEnv, flatpak/snap/appimage): strict and validated.
import { describe, expect, it } from 'vitest';
import { validateProfile } from '../../../helper/profile/validate.js';

const base = (rules: unknown[]) => JSON.stringify({
  schema: 'tunnelgate/profile@1', id: 'corp', version: 1, mode: 'enforce', interfaces: ['wg0'], userPrompts: 'allow', rules,
});
const problems = (rules: unknown[]) => {
  const r = validateProfile(base(rules), 'x.json');
  return r.ok ? [] : r.problems;
};

describe('profile extensions', () => {
  it('accepts the new matchers and rule fields', () => {
    const r = validateProfile(base([
      { id: 'a', binary: { flatpak: 'org.example.Work' }, children: 'confine' },
      { id: 'b', binary: { snap: 'firefox' }, allowEnv: ['LD_LIBRARY_PATH'] },
      { id: 'c', binary: { appimage: '/opt/apps/Work-1.2.AppImage' } },
      { id: 'd', binary: { path: '/usr/bin/python3', script: '/opt/x.py' }, allowEnv: ['PYTHONPATH', 'LD_PRELOAD'], children: 'inherit' },
    ]), 'x.json');
    expect(r).toMatchObject({ ok: true, warnings: [] });
  });

  it('rejects malformed names', () => {
    expect(problems([{ id: 'a', binary: { flatpak: 'work' } }])).toEqual([
      { path: 'rules[0].binary.flatpak', message: 'must be a Flatpak application id such as org.example.App' },
    ]);
    expect(problems([{ id: 'a', binary: { snap: 'Fire_fox' } }])).toEqual([
      { path: 'rules[0].binary.snap', message: 'must be a snap name (lower-case letters, digits and single hyphens)' },
    ]);
    expect(problems([{ id: 'a', binary: { appimage: 'Work.AppImage' } }])).toEqual([
      { path: 'rules[0].binary.appimage', message: "must be the absolute path of the .AppImage file, without '.' or '..' components" },
    ]);
  });

  it('one way of naming the program; sha256 and script only with path', () => {
    expect(problems([{ id: 'a', binary: { flatpak: 'org.x.Y', snap: 'y' } }])).toEqual([
      { path: 'rules[0].binary.snap', message: 'cannot be combined with flatpak: name the program one way (path, package, flatpak, snap or appimage)' },
    ]);
    expect(problems([{ id: 'a', binary: { path: '/usr/bin/x', appimage: '/opt/x.AppImage' } }])).toEqual([
      { path: 'rules[0].binary.appimage', message: 'cannot be combined with path: name the program one way (path, package, flatpak, snap or appimage)' },
    ]);
    expect(problems([{ id: 'a', binary: { snap: 'y', sha256: 'a'.repeat(64) } }])).toEqual([
      { path: 'rules[0].binary.sha256', message: 'only applies to a path' },
    ]);
    expect(problems([{ id: 'a', binary: {} }])).toEqual([
      { path: 'rules[0].binary', message: 'must name the program: path, package, flatpak, snap or appimage' },
    ]);
  });

  it('children and allowEnv: known values only, allow rules only, not on kernel rules', () => {
    expect(problems([{ id: 'a', binary: { path: '/usr/bin/x' }, children: 'free' }])).toEqual([
      { path: 'rules[0].children', message: 'must be "inherit" or "confine"' },
    ]);
    const env = problems([{ id: 'a', binary: { path: '/usr/bin/x' }, allowEnv: ['HOME'] }]);
    expect(env[0]?.path).toBe('rules[0].allowEnv[0]');
    expect(env[0]?.message).toMatch(/^must be "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", /);
    expect(problems([{ id: 'a', binary: { path: '/usr/bin/x' }, allowEnv: [] }])).toEqual([{ path: 'rules[0].allowEnv', message: 'must not be empty' }]);
    expect(problems([{ id: 'a', binary: { path: '/usr/bin/x' }, allowEnv: ['LD_AUDIT', 'LD_AUDIT'] }])).toEqual([
      { path: 'rules[0].allowEnv', message: 'lists "LD_AUDIT" more than once' },
    ]);
    expect(problems([{ id: 'a', action: 'deny', binary: { path: '/usr/bin/x' }, children: 'confine', allowEnv: ['LD_PRELOAD'] }])).toEqual([
      { path: 'rules[0].children', message: 'only applies to allow rules' },
      { path: 'rules[0].allowEnv', message: 'only applies to allow rules' },
    ]);
    expect(problems([{ id: 'k', kernel: true, children: 'confine' }])).toEqual([
      { path: 'rules[0].children', message: 'a kernel rule has no processes' },
    ]);
    expect(problems([{ id: 'a', binary: { path: '/usr/bin/x' }, bogus: 1 }])).toEqual([{ path: 'rules[0].bogus', message: 'unknown field' }]);
  });

  it('warns when an interpreter variable is relaxed on a rule that never refuses it', () => {
    const r = validateProfile(base([{ id: 'a', binary: { path: '/usr/bin/x' }, allowEnv: ['NODE_OPTIONS'] }]), 'x.json');
    expect(r).toMatchObject({ ok: true, warnings: ['rules[0].allowEnv[0]: NODE_OPTIONS is refused only for script rules; listing it here has no effect'] });
  });
});
