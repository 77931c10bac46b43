import { describe, expect, it } from 'vitest';
import { explain } from '../../../helper/policy/explain.js';
import { policyOf, profile } from './fixtures.js';

describe('explain: a child that inherited its rule', () => {
  const policy = policyOf([profile({ rules: [
    { id: 'app', binary: { path: '/opt/corp/app' } },
    { id: 'strict', binary: { path: '/opt/corp/strict' }, children: 'confine' },
  ] })]);
  const shell = { exe: '/usr/bin/bash', exeDeleted: false, uid: 1000 };

  it('says why a program no rule allows has the tunnel', () => {
    const r = explain({ policy, id: shell, pid: 4242, admittedUnder: 'corp-base:app' });
    expect(r.verdict).toBe('deny');
    expect(r.notes).toContain('process 4242 has the tunnel anyway: it inherited rule app of profile corp-base from its parent (the rule lets children inherit)');
  });

  it('under a confining rule, says it is about to be taken out', () => {
    const r = explain({ policy, id: shell, pid: 4243, admittedUnder: 'corp-base:strict' });
    expect(r.notes).toContain('process 4243 is still in corp-base:strict; the helper takes it out when it next looks');
  });
});
