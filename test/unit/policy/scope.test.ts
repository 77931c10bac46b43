// Issue 9, "a rule opens only the interfaces its own source names" (helper/policy/scope.ts,
// helper/ruleset/render.ts zonesOf): unit cases and a fast-check property over merged
// policies of several profiles and user rules.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EffectiveRule, Policy } from '../../../common/policy.js';
import type { Destination, Profile } from '../../../common/profile.js';
import { binaryMatches, decide, reach, refusal } from '../../../helper/policy/decide.js';
import type { ProcessIdentity } from '../../../helper/policy/decide.js';
import type { UserRule } from '../../../helper/policy/merge.js';
import { lockedReason } from '../../../helper/core/user-rules.js';
import { outcome } from '../../../helper/policy/replay.js';
import { admitsAllOf, auditOn, interfaceMatches, patternsOverlap, userRulesOn } from '../../../helper/policy/scope.js';
import { renderTable, zoneIndexes, zonesOf } from '../../../helper/ruleset/render.js';
import { policyOf, profile } from './fixtures.js';

const ids = (policy: Policy) => new Map(policy.rules.filter((r) => r.action === 'allow' && r.binary && !r.kernel).map((r, i) => [r.key, 0x74670001 + i]));
const who = (exe: string, uid = 1000): ProcessIdentity => ({ exe, exeDeleted: false, uid });
const open = (policy: Policy, exe: string, uid = 1000) => {
  const v = decide(policy, who(exe, uid));
  return v.allow ? reach(policy, v.rule).filter((x) => x.by).map((x) => x.pattern) : [];
};

describe('scope: each profile opens its own interfaces', () => {
  const corp = profile({ id: 'corp', interfaces: ['wg0'], rules: [{ id: 'curl', binary: { path: '/usr/bin/curl' } }] });
  const lab = profile({ id: 'lab', interfaces: ['wg-lab'], rules: [{ id: 'wget', binary: { path: '/usr/bin/wget' } }] });

  it('a rule of one profile opens only that profile\'s interfaces', () => {
    const p = policyOf([corp, lab]);
    expect(open(p, '/usr/bin/curl')).toEqual(['wg0']);
    expect(open(p, '/usr/bin/wget')).toEqual(['wg-lab']);
    const z = zonesOf(p, ids(p));
    expect(z.map((x) => [x.patterns, [...x.whole]])).toEqual([[['wg-lab'], ['lab:wget']], [['wg0'], ['corp:curl']]]);
  });

  it('one program allowed by two profiles: admitted under one rule whose classid carries both grants', () => {
    const both = profile({ id: 'lab', interfaces: ['wg-lab'], rules: [{ id: 'curl', binary: { path: '/usr/bin/*' }, destinations: [{ cidr: '198.18.0.0/24', ports: [443], proto: 'tcp' }] }] });
    const p = policyOf([corp, both]);
    const v = decide(p, who('/usr/bin/curl'));
    expect(v.allow && v.rule.key).toBe('corp:curl');
    if (!v.allow) return;
    expect(reach(p, v.rule).map((x) => [x.pattern, x.by?.key])).toEqual([['wg-lab', 'lab:curl'], ['wg0', 'corp:curl']]);
    const z = zonesOf(p, ids(p));
    expect(z[0]?.scoped.get('corp:curl')).toEqual([{ cidr: '198.18.0.0/24', ports: [443], proto: 'tcp' }]);
    // The pattern rule does not admit only curl: its own classid gets nothing on wg0.
    expect(z[1]?.whole.has('lab:curl')).toBe(false);
  });

  it('audit mode of one profile makes only its own interfaces pass and record', () => {
    const p = policyOf([corp, { ...lab, mode: 'audit' }]);
    expect(auditOn(p, 'wg-lab')).toBe(true);
    expect(auditOn(p, 'wg0')).toBe(false);
    expect(p.mode).toBe('enforce');
    // Its rules are enforced rules of an audit profile, not trials.
    expect(open(p, '/usr/bin/wget')).toEqual(['wg-lab']);
    const overlapping = policyOf([profile({ id: 'all', interfaces: ['wg*'] }), { ...lab, mode: 'audit' }]);
    expect(auditOn(overlapping, 'wg-lab')).toBe(false);
  });

  it('user rules open only where a profile lets users decide, none locks, and none has a rule of its own for the program', () => {
    const u: UserRule[] = [{ id: 'u1', uid: 1000, binary: { path: '/usr/bin/nc' } }, { id: 'u2', uid: 1000, binary: { path: '/usr/bin/curl' } }];
    const p = policyOf([{ ...corp, userPrompts: 'deny' }, lab], u);
    expect(p.rules.find((r) => r.key === 'user.1000:u1')?.interfaces).toEqual(['wg-lab']);
    expect(open(p, '/usr/bin/nc')).toEqual(['wg-lab']);
    expect(userRulesOn(p, 'wg0')).toBe(false);
    expect(userRulesOn(p, 'wg-lab')).toBe(true);
    expect(p.userPrompts).toBe('allow');
    // corp has a rule for curl: a user rule for curl does not open wg0 even where corp lets users decide.
    const q = policyOf([corp, lab], u);
    expect(q.rules.find((r) => r.key === 'user.1000:u2')?.interfaces).toEqual(['wg-lab']);
    expect(open(q, '/usr/bin/curl')).toEqual(['wg-lab', 'wg0']);
    // A saved decision with interfaces never opens more; one that names none in force is out.
    const saved = policyOf([corp, lab], [{ ...u[0] as UserRule, interfaces: ['wg0'] }]);
    expect(saved.rules.find((r) => r.key === 'user.1000:u1')?.interfaces).toEqual(['wg0']);
    const gone = policyOf([corp, lab], [{ ...u[0] as UserRule, interfaces: ['wg-old'] }]);
    expect(gone.rules.some((r) => r.source.kind === 'user')).toBe(false);
    expect(gone.problems.join('\n')).toMatch(/user rule\(s\) not in force/);
    // A locking wildcard closes every pattern it could name.
    const wild = policyOf([profile({ id: 'lock', interfaces: ['wg*'], userPrompts: 'deny' }), lab], u);
    expect(wild.rules.some((r) => r.source.kind === 'user')).toBe(false);
    expect(wild.userPrompts).toBe('deny');
  });

  it('`allow` is refused up front where a user rule for the program would open no interface', () => {
    expect(lockedReason(policyOf([corp, lab]), '/usr/bin/curl')).toBeUndefined();
    expect(lockedReason(policyOf([corp]), '/usr/bin/curl')).toMatch(/^user decisions for \/usr\/bin\/curl are not allowed here: profile corp has a rule of its own for it/);
    expect(lockedReason(policyOf([corp]), '/usr/bin/nc')).toBeUndefined();
    expect(lockedReason(policyOf([]), '/usr/bin/nc')).toMatch(/no profile is in force/);
  });

  it('with no profile in force user rules open nothing: the default interface is closed to all', () => {
    const p = policyOf([], [{ id: 'u1', uid: 1000, binary: { path: '/usr/bin/nc' } }]);
    expect(p.interfaces).toEqual(['wg0']);
    expect(p.rules).toEqual([]);
    expect(p.userPrompts).toBe('deny');
    expect(zonesOf(p, ids(p))).toEqual([]);
  });

  it('profile test (replay): a program opened on one tunnel only is not read as admitted', () => {
    const p = policyOf([corp, lab]);
    const rec = (exe: string) => ({ mode: 'enforce' as const, uid: 1000, exe, dst: { addr: '198.18.0.2', port: 80, proto: 'tcp' as const }, count: 1, firstSeen: 't', lastSeen: 't' });
    const o = outcome(p, rec('/usr/bin/wget'));
    expect(o.outcome).toBe('drop');
    expect(o.reason).toMatch(/^on wg0: rule wget of profile lab applies on wg-lab only, not on wg0 \(admit on wg-lab\)$/);
    expect(outcome(policyOf([corp]), rec('/usr/bin/curl')).outcome).toBe('admit');
    expect(outcome(policyOf([corp, { ...lab, mode: 'audit' }]), rec('/usr/bin/nc')).reason).toMatch(/pass-audit on wg-lab/);
  });

  it('IT deny rules apply on every interface', () => {
    const p = policyOf([corp, profile({ id: 'lab', interfaces: ['wg-lab'], rules: [{ id: 'no', action: 'deny', binary: { path: '/usr/bin/curl' } }] })]);
    expect(decide(p, who('/usr/bin/curl')).allow).toBe(false);
  });

  it('patternsOverlap', () => {
    expect(patternsOverlap('wg0', 'wg0')).toBe(true);
    expect(patternsOverlap('wg*', 'wg0')).toBe(true);
    expect(patternsOverlap('wg0', 'wg-*')).toBe(false);
    expect(patternsOverlap('wg-*', 'wg*')).toBe(true);
    expect(patternsOverlap('a*', 'b*')).toBe(false);
  });

  it('admitsAllOf is conservative: uid, pins, scripts, allowEnv, confine, allow-once', () => {
    const r = (over: Partial<EffectiveRule>): EffectiveRule => ({ key: 'k', id: 'k', source: { kind: 'profile', profileId: 'p', version: 1, file: 'f' }, action: 'allow', binary: { path: '/usr/bin/curl' }, kernel: false, mode: 'enforce', locked: true, ...over });
    expect(admitsAllOf(r({ binary: { path: '/usr/*' } }), r({}))).toBe(true);
    expect(admitsAllOf(r({}), r({ binary: { path: '/usr/*' } }))).toBe(false);
    expect(admitsAllOf(r({ uid: 1 }), r({}))).toBe(false);
    expect(admitsAllOf(r({}), r({ uid: 1 }))).toBe(true);
    expect(admitsAllOf(r({}), r({ binary: { path: '/usr/bin/curl', sha256: 'a'.repeat(64) } }))).toBe(false);
    expect(admitsAllOf(r({ binary: { path: '/usr/bin/curl', script: '/x' } }), r({}))).toBe(false);
    expect(admitsAllOf(r({}), r({ allowEnv: ['LD_PRELOAD'] }))).toBe(false);
    expect(admitsAllOf(r({ children: 'confine' }), r({}))).toBe(false);
    expect(admitsAllOf(r({ processes: [{ pid: 1, startTime: '1' }] }), r({}))).toBe(false);
    expect(admitsAllOf(r({ binary: { package: 'curl' } }), r({}))).toBe(false);
    expect(admitsAllOf(r({ binary: { package: 'curl' } }), r({ binary: { package: 'curl' } }))).toBe(true);
  });
});

// ---- property ----
const IFACES = ['wg0', 'wg1', 'wg-lab', 'wg-lab*', 'tun*'];
const PATHS = ['/usr/bin/curl', '/usr/bin/wget', '/usr/bin/ssh', '/usr/bin/*', '/opt/x/*', '/opt/x/tool'];
const dest = fc.constantFrom<Destination[] | undefined>(undefined, [{ cidr: '198.18.0.0/24' }], [{ cidr: '198.18.0.5/32', ports: [443], proto: 'tcp' }]);
const rule = fc.record({
  id: fc.constantFrom('a', 'b', 'c', 'd'),
  path: fc.constantFrom(...PATHS),
  action: fc.constantFrom('allow', 'allow', 'allow', 'deny'),
  destinations: dest,
  mode: fc.constantFrom(undefined, undefined, 'audit'),
  kernel: fc.boolean(),
});
const prof = fc.record({
  interfaces: fc.uniqueArray(fc.constantFrom(...IFACES), { minLength: 1, maxLength: 3 }),
  mode: fc.constantFrom('enforce', 'enforce', 'audit'),
  userPrompts: fc.constantFrom('allow', 'deny'),
  rules: fc.uniqueArray(rule, { maxLength: 5, selector: (r) => r.id }),
  always: fc.boolean(),
});
const users = fc.uniqueArray(fc.record({ id: fc.constantFrom('u1', 'u2', 'u3'), path: fc.constantFrom(...PATHS.filter((p) => !p.endsWith('*'))) }), { maxLength: 3, selector: (u) => u.id });

type Prof = typeof prof extends fc.Arbitrary<infer T> ? T : never;

function build(ps: Prof[], us: Array<{ id: string; path: string }>): Policy {
  const profiles: Profile[] = ps.map((p, i) => profile({
    id: `p${i}`,
    interfaces: p.interfaces,
    mode: p.mode as Profile['mode'],
    userPrompts: p.userPrompts as Profile['userPrompts'],
    ...(p.always ? { alwaysAllow: [{ cidr: `198.18.${i}.53/32`, ports: [53], proto: 'udp' as const }] } : {}),
    rules: p.rules.map((r) => r.kernel && r.action === 'allow'
      ? { id: r.id, kernel: true, ...(r.destinations ? { destinations: r.destinations } : {}) }
      : { id: r.id, binary: { path: r.path }, action: r.action as 'allow' | 'deny', ...(r.destinations ? { destinations: r.destinations } : {}), ...(r.mode ? { mode: r.mode as 'audit' } : {}) }),
  }));
  return policyOf(profiles, us.map((u) => ({ id: u.id, uid: 1000, binary: { path: u.path } })));
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

describe('property: no rule of a profile ever appears in a match for an interface outside that profile\'s interfaces', () => {
  it('every classid, alwaysAllow and kernel rule in a zone is put there by a rule of a source naming exactly that zone\'s interfaces, which admits every process of that classid', () => {
    fc.assert(
      fc.property(fc.array(prof, { minLength: 1, maxLength: 3 }), users, (ps, us) => {
        const policy = build(ps, us);
        const byKey = new Map(policy.rules.map((r) => [r.key, r]));
        const gated = policy.interfaces.map((p, i) => ({ index: i + 2, pattern: p, name: p.replace(/\*$/, '0') }));
        const text = renderTable({ policy, classids: ids(policy), listeners: [], listenersByZone: new Map(), gatedIndexes: gated, nflogGroup: 1 });
        for (const z of zonesOf(policy, ids(policy))) {
          // In the table, the zone's chains are reached only from its own interfaces: by name
          // pattern while an interface has no gated index yet, or by the indexes gated under
          // those patterns or whose name when gated matched one of them (never by a later name).
          const jumps = text.split('\n').filter((l) => new RegExp(`jump ${z.name}_(always_)?(out|in)$`).test(l));
          const names = `{ ${z.patterns.map((p) => `"${p}"`).join(', ')} }`;
          expect(jumps.every((l) => /ifname \{[^}]*\} meta [io]if != @gated_if jump/.test(l) ? l.includes(`ifname ${names} meta`) : l.includes(`@${z.name}_if jump`))).toBe(true);
          const own = gated.filter((g) => z.patterns.includes(g.pattern) || z.patterns.some((p) => interfaceMatches(g.name, p))).map((g) => g.index);
          expect(text).toContain(`\tset ${z.name}_if {\n\t\ttype iface_index\n${own.length ? `\t\telements = { ${own.join(', ')} }\n` : ''}\t}`);
          for (const key of [...z.whole, ...z.scoped.keys()]) {
            const owner = byKey.get(key) as EffectiveRule;
            // Some rule of this zone's own source admits whatever the owner admits.
            const by = policy.rules.filter((r) => r.interfaces && sameSet(r.interfaces, z.patterns) && admitsAllOf(r, owner));
            expect(by.length).toBeGreaterThan(0);
            // A concrete process of the owner: the grant's rule admits it too.
            const exe = (owner.binary?.path as string).replace(/\*$/, 'z');
            const id = who(exe, owner.uid ?? 1000);
            expect(by.some((r) => r.binary !== undefined && binaryMatches(r.binary, id) && refusal(r, id) === undefined && (r.uid === undefined || r.uid === id.uid))).toBe(true);
            // A profile rule outside its profile's zone only by another source's grant.
            if (owner.source.kind === 'profile') {
              const src = policy.scopes?.find((s) => s.profileId === (owner.source as { profileId: string }).profileId);
              if (!sameSet(src?.interfaces ?? [], z.patterns)) expect(by.every((r) => r !== owner)).toBe(true);
            }
          }
          for (const k of z.kernel) expect(sameSet(k.interfaces ?? [], z.patterns)).toBe(true);
          for (const d of z.always) {
            expect(policy.scopes?.some((s) => sameSet(s.interfaces, z.patterns) && s.alwaysAllow.some((x) => x.cidr === d.cidr))).toBe(true);
          }
        }
        // User rules never open an interface a locking profile names.
        for (const r of policy.rules.filter((x) => x.source.kind === 'user')) {
          for (const s of policy.scopes ?? []) if (s.userPrompts === 'deny') for (const p of r.interfaces ?? []) for (const q of s.interfaces) expect(patternsOverlap(p, q)).toBe(false);
        }
      }),
      { seed: 9009, numRuns: 2000 },
    );
  });
});

describe('zoneIndexes: a gated interface keeps the zones it had, whatever it is renamed to', () => {
  // Found by a fresh tester: the corporate tunnel renamed to a name the lab profile's pattern
  // covers entered the lab zone by name, and the lab's programs got 200 through it.
  const gated = [
    { index: 3, pattern: 'wgw1', name: 'wgw1' }, // corp's tunnel, now called wgx1z
    { index: 4, pattern: 'wg*', name: 'wg0' }, // gated under the wider pattern first
  ];
  it('by the pattern it was gated under and the name it had then, never by its present name', () => {
    expect(zoneIndexes(['wgx*'], gated)).toEqual([]);
    expect(zoneIndexes(['wgw1'], gated).map((g) => g.index)).toEqual([3]);
    expect(zoneIndexes(['wg0'], gated).map((g) => g.index)).toEqual([4]);
    expect(zoneIndexes(['wg*'], gated).map((g) => g.index)).toEqual([3, 4]); // wgw1 was a name wg* covers
  });
  it('the table reaches a zone by name only for an interface not gated by index yet', () => {
    const policy = policyOf([profile({ id: 'corp', interfaces: ['wgw1'], rules: [{ id: 'c', binary: { path: '/usr/bin/curl' } }] }), profile({ id: 'lab', interfaces: ['wgx*'], rules: [{ id: 'l', binary: { path: '/usr/bin/wget' } }] })]);
    const text = renderTable({ policy, classids: new Map(policy.rules.map((r, i) => [r.key, 0x74670001 + i])), listeners: [], listenersByZone: new Map(), gatedIndexes: gated.slice(0, 1), nflogGroup: 1 });
    const byName = text.split('\n').filter((l) => /ifname .* jump z\d_/.test(l));
    expect(byName.length).toBeGreaterThan(0);
    expect(byName.every((l) => /meta [io]if != @gated_if jump/.test(l))).toBe(true);
  });
});
