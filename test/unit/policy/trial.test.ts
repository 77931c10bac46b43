import { describe, expect, it } from 'vitest';
import { decide } from '../../../helper/policy/decide.js';
import { renderTable } from '../../../helper/ruleset/render.js';
import { policyOf, profile } from './fixtures.js';

const id = (exe: string) => ({ exe, exeDeleted: false, uid: 1000 });

describe('trial rules (per-rule audit inside an enforcing profile)', () => {
  const policy = policyOf([profile({ rules: [
    { id: 'ssh', binary: { path: '/usr/bin/ssh' } },
    { id: 'no-ssh', action: 'deny', mode: 'audit', binary: { path: '/usr/bin/ssh' } },
    { id: 'try-rsync', mode: 'audit', binary: { path: '/usr/bin/rsync' } },
  ] })]);

  it('a trial deny does not deny, and says it would', () => {
    const v = decide(policy, id('/usr/bin/ssh'));
    expect(v.allow).toBe(true);
    expect(v.reason).toBe('allowed by rule ssh of profile corp-base (trial rule no-ssh of profile corp-base would deny it)');
  });

  it('a trial allow does not admit, and says it would', () => {
    const v = decide(policy, id('/usr/bin/rsync'));
    expect(v.allow).toBe(false);
    expect(v.reason).toBe('no rule allows /usr/bin/rsync (trial rule try-rsync of profile corp-base would allow it)');
  });

  it('trial rules get no cgroup and no table entry', () => {
    const text = renderTable({
      policy,
      classids: new Map([['corp-base:ssh', 0x74670001], ['corp-base:try-rsync', 0x74670002]]),
      listeners: [],
      nflogGroup: 7467,
    });
    expect(text).toContain('0x74670001');
    expect(text).not.toContain('0x74670002');
  });

  it('in a policy that is in audit mode as a whole, rules act as usual', () => {
    const audit = policyOf([profile({ mode: 'audit', rules: [{ id: 'rsync', binary: { path: '/usr/bin/rsync' } }] })]);
    expect(decide(audit, id('/usr/bin/rsync')).allow).toBe(true);
  });
});

describe('allow-once rules', () => {
  it('admit only the processes they name', async () => {
    const { policyOf: of, profile: prof } = await import('./fixtures.js');
    const p = of([prof()], [{ id: 'once', uid: 1000, binary: { path: '/usr/bin/wget' }, processes: [{ pid: 42, startTime: '777' }] }]);
    expect(decide(p, { exe: '/usr/bin/wget', exeDeleted: false, uid: 1000, pid: 42, startTime: '777' }).allow).toBe(true);
    expect(decide(p, { exe: '/usr/bin/wget', exeDeleted: false, uid: 1000, pid: 42, startTime: '778' }).allow).toBe(false);
    expect(decide(p, { exe: '/usr/bin/wget', exeDeleted: false, uid: 1000, pid: 43, startTime: '777' }).allow).toBe(false);
    expect(decide(p, { exe: '/usr/bin/wget', exeDeleted: false, uid: 1000 }).allow).toBe(false);
  });
});
