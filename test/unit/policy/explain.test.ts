import { describe, expect, it } from 'vitest';
import { explain } from '../../../helper/policy/explain.js';
import { policyOf, profile } from './fixtures.js';

const curl = { exe: '/usr/bin/curl', exeDeleted: false, uid: 1000 };
const base = profile({
  alwaysAllow: [{ cidr: '198.18.0.53/32', ports: [53], proto: 'udp' }],
  rules: [
    { id: 'curl', binary: { path: '/usr/bin/curl' }, destinations: [{ cidr: '198.18.0.0/24', ports: [443], proto: 'tcp' }] },
    { id: 'no-admin', action: 'deny', binary: { path: '/usr/bin/*' }, destinations: [{ cidr: '198.18.0.99/32' }] },
    { id: 'games', action: 'deny', binary: { path: '/usr/games/*' } },
  ],
});

describe('explain', () => {
  it('allow, by the rule whose scope includes the destination', () => {
    const r = explain({ policy: policyOf([base]), id: curl, dst: { addr: '198.18.0.2', port: 443, proto: 'tcp' } });
    expect(r).toMatchObject({ verdict: 'allow', enforced: true, prompt: 'not-applicable', locked: false, rule: { key: 'corp-base:curl', locked: true } });
    expect(r.reason).toBe('allowed by rule curl of profile corp-base, whose scope includes 198.18.0.2:443/tcp');
  });

  it("deny outside the rule's scope, and the user would be asked", () => {
    const r = explain({ policy: policyOf([base]), id: curl, dst: { addr: '198.18.0.2', port: 22, proto: 'tcp' } });
    expect(r).toMatchObject({ verdict: 'deny', prompt: 'would-ask' });
    expect(r.reason).toBe('rule curl of profile corp-base allows only 198.18.0.0/24:443/tcp, not 198.18.0.2:22/tcp');
  });

  it('an IT deny for a destination beats the allow; nobody is asked', () => {
    const r = explain({ policy: policyOf([base]), id: curl, dst: { addr: '198.18.0.99', port: 443, proto: 'tcp' } });
    expect(r).toMatchObject({ verdict: 'deny', prompt: 'not-applicable', rule: { key: 'corp-base:no-admin' } });
    expect(r.reason).toBe('denied for 198.18.0.99:443/tcp by rule no-admin of profile corp-base');
  });

  it('alwaysAllow destinations are open to every program', () => {
    const r = explain({ policy: policyOf([base]), id: { ...curl, exe: '/opt/x' }, dst: { addr: '198.18.0.53', port: 53, proto: 'udp' } });
    expect(r.verdict).toBe('allow');
    expect(r.reason).toMatch(/open to every program \(alwaysAllow 198.18.0.53\/32:53\/udp/);
  });

  it('an IT deny of the binary, a lock, a user deny-always, audit mode', () => {
    expect(explain({ policy: policyOf([base]), id: { ...curl, exe: '/usr/games/tetris' } })).toMatchObject({ verdict: 'deny', prompt: 'not-applicable', reason: 'denied by rule games of profile corp-base' });
    const locked = explain({ policy: policyOf([{ ...base, userPrompts: 'deny' }]), id: { ...curl, exe: '/opt/x' } });
    expect(locked).toMatchObject({ verdict: 'deny', locked: true, prompt: 'locked' });
    expect(locked.notes).toContain('a profile sets userPrompts to "deny": only IT profiles decide on this machine');
    expect(explain({ policy: policyOf([base]), id: { ...curl, exe: '/opt/x' }, userDeny: { id: 'd' } }).prompt).toBe('decided');
    const audit = explain({ policy: policyOf([{ ...base, mode: 'audit' }]), id: { ...curl, exe: '/opt/x' } });
    expect(audit).toMatchObject({ verdict: 'deny', enforced: false });
  });

  it("another user's pinned rule is not shown to this user", () => {
    const policy = policyOf([base], [{ id: 'r1', uid: 2000, binary: { path: '/opt/x', sha256: 'a'.repeat(64) } }]);
    const r = explain({ policy, id: { ...curl, exe: '/opt/x', sha256: 'b'.repeat(64) } });
    expect(r).toMatchObject({ verdict: 'deny', reason: 'no rule allows /opt/x' });
    expect(r.rule).toBeUndefined();
  });

  it('a process allowed but not admitted (yet) says so', () => {
    const r = explain({ policy: policyOf([base]), id: curl, pid: 77 });
    expect(r.notes[0]).toMatch(/process 77 is not admitted yet/);
    expect(explain({ policy: policyOf([base]), id: curl, pid: 77, admittedUnder: 'corp-base:curl' }).notes).toEqual([]);
  });
});
