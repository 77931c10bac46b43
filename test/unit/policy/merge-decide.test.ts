import { describe, expect, it } from 'vitest';
import { decide, needsHash } from '../../../helper/policy/decide.js';
import type { ProcessIdentity } from '../../../helper/policy/decide.js';
import { mergePolicy } from '../../../helper/policy/merge.js';
import { policyOf, profile } from './fixtures.js';

const proc = (exe: string, over: Partial<ProcessIdentity> = {}): ProcessIdentity => ({ exe, exeDeleted: false, uid: 1000, ...over });
const HASH = 'a'.repeat(64);

describe('mergePolicy', () => {
  it('with no profile: enforce, default interface, no rules, and says so', () => {
    const p = policyOf([]);
    expect(p.mode).toBe('enforce');
    expect(p.interfaces).toEqual(['wg0']);
    expect(p.rules).toEqual([]);
    expect(p.problems).toContain('no profile in force: the tunnel is closed to every program');
  });

  it('keeps the interfaces gated before while degraded, and releases them only with every source valid', () => {
    const rejected = [{ file: '/etc/x.json', profileId: 'x', version: 1, state: 'rejected' as const, problems: ['bad signature'] }];
    const down = mergePolicy({ profiles: [], rejected, userRules: [], now: new Date(), gated: ['corpvpn'] });
    expect(down.interfaces).toEqual(['corpvpn', 'wg0']);
    expect(down.problems.at(-1)).toBe('degraded: profile x rejected: bad signature; corpvpn, wg0 stay gated with no profile rules (no program is allowed)');
    const partly = mergePolicy({ profiles: [{ file: '/etc/a.json', profile: profile({ interfaces: ['wg0'] }) }], rejected, userRules: [], now: new Date(), gated: ['corpvpn'] });
    expect(partly.interfaces).toEqual(['corpvpn', 'wg0']);
    const valid = mergePolicy({ profiles: [{ file: '/etc/a.json', profile: profile({ interfaces: ['wg0'] }) }], rejected: [], userRules: [], now: new Date(), gated: ['corpvpn'] });
    expect(valid.interfaces).toEqual(['wg0']);
  });

  it('merges interfaces, alwaysAllow and rules of several profiles; enforce wins over audit', () => {
    const p = policyOf([
      profile({ id: 'a', mode: 'audit', interfaces: ['wg0'], rules: [{ id: 'ssh', binary: { path: '/usr/bin/ssh' } }] }),
      profile({ id: 'b', interfaces: ['wg-corp*', 'wg0'], alwaysAllow: [{ cidr: '198.18.0.53/32' }], rules: [{ id: 'git', binary: { path: '/usr/bin/git' } }] }),
    ]);
    expect(p.mode).toBe('enforce');
    expect(p.interfaces).toEqual(['wg-corp*', 'wg0']);
    expect(p.rules.map((r) => r.key)).toEqual(['a:ssh', 'b:git']);
    expect(p.rules[0]?.mode).toBe('audit');
    expect(p.rules.every((r) => r.locked)).toBe(true);
    expect(p.alwaysAllow).toEqual([{ cidr: '198.18.0.53/32' }]);
  });

  it('all-audit profiles give audit mode', () => {
    expect(policyOf([profile({ mode: 'audit' })]).mode).toBe('audit');
  });

  it('an expired profile is out of force and reported, never silently', () => {
    const p = policyOf([profile({ expires: '2026-01-01T00:00:00Z', rules: [{ id: 'ssh', binary: { path: '/usr/bin/ssh' } }] })]);
    expect(p.rules).toEqual([]);
    expect(p.sources[0]?.state).toBe('expired');
    expect(p.problems.join('\n')).toMatch(/expired at 2026-01-01T00:00:00Z/);
  });

  it('a second profile with the same id is ignored and reported', () => {
    const p = policyOf([profile({ id: 'x' }), profile({ id: 'x', version: 9 })]);
    expect(p.sources.map((s) => s.state)).toEqual(['active', 'rejected']);
  });

  it('a locking profile keeps user rules out of force', () => {
    const user = [{ id: 'u1', uid: 1000, binary: { path: '/usr/bin/wget' } }];
    expect(policyOf([profile()], user).rules.map((r) => r.key)).toEqual(['user.1000:u1']);
    const locked = policyOf([profile(), profile({ id: 'lock', userPrompts: 'deny' })], user);
    expect(locked.rules).toEqual([]);
    expect(locked.userPrompts).toBe('deny');
    expect(locked.problems.join('\n')).toMatch(/user rule\(s\) not in force/);
  });

  it('reports rejected sources as problems', () => {
    const p = mergePolicy({ profiles: [], rejected: [{ file: '/x.json', state: 'rejected', problems: ['bad'] }], userRules: [], now: new Date() });
    expect(p.problems[0]).toBe('/x.json: rejected: bad');
  });
});

describe('decide', () => {
  const policy = policyOf([
    profile({
      rules: [
        { id: 'ssh', binary: { path: '/usr/bin/ssh' } },
        { id: 'git', binary: { path: '/usr/bin/git', sha256: HASH } },
        { id: 'opt', binary: { path: '/opt/corp/*' } },
        { id: 'no-evil', action: 'deny', binary: { path: '/opt/corp/evil' } },
        { id: 'py', binary: { path: '/usr/bin/python3.11', script: '/opt/deploy.py' } },
      ],
    }),
  ], [{ id: 'mine', uid: 1000, binary: { path: '/usr/bin/wget' } }]);

  it('allows an exact path and names the rule', () => {
    const v = decide(policy, proc('/usr/bin/ssh'));
    expect(v).toMatchObject({ allow: true, rule: { key: 'corp-base:ssh' } });
    expect(v.reason).toBe('allowed by rule ssh of profile corp-base');
  });

  it('a copy at another path is not the whitelisted binary', () => {
    expect(decide(policy, proc('/tmp/ssh')).allow).toBe(false);
  });

  it('IT deny beats IT allow', () => {
    expect(decide(policy, proc('/opt/corp/tool')).allow).toBe(true);
    expect(decide(policy, proc('/opt/corp/evil'))).toMatchObject({ allow: false, reason: 'denied by rule no-evil of profile corp-base' });
  });

  it('hash pins: match, mismatch, missing hash', () => {
    expect(needsHash(policy, '/usr/bin/git')).toBe(true);
    expect(needsHash(policy, '/usr/bin/ssh')).toBe(false);
    expect(decide(policy, proc('/usr/bin/git', { sha256: HASH })).allow).toBe(true);
    expect(decide(policy, proc('/usr/bin/git', { sha256: 'b'.repeat(64) })).reason).toMatch(/does not match the sha256 pinned/);
    expect(decide(policy, proc('/usr/bin/git')).allow).toBe(false);
  });

  it('a deleted or replaced executable matches nothing', () => {
    expect(decide(policy, proc('/usr/bin/ssh', { exeDeleted: true })).allow).toBe(false);
  });

  it('script rules need the script', () => {
    expect(decide(policy, proc('/usr/bin/python3.11')).allow).toBe(false);
    expect(decide(policy, proc('/usr/bin/python3.11', { script: '/opt/deploy.py' })).allow).toBe(true);
  });

  it("a user's rule admits only that user's processes", () => {
    expect(decide(policy, proc('/usr/bin/wget', { uid: 1000 })).allow).toBe(true);
    expect(decide(policy, proc('/usr/bin/wget', { uid: 1001 })).allow).toBe(false);
  });

  it('nothing matches: denied with a reason', () => {
    expect(decide(policy, proc('/usr/bin/nc'))).toEqual({ allow: false, reason: 'no rule allows /usr/bin/nc' });
  });
});
