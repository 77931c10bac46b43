import { describe, expect, it } from 'vitest';
import type { EffectiveRule, Policy } from '../../../common/policy.js';
import type { BinaryMatcher } from '../../../common/profile.js';
import { marksOf, pathRulesOf } from '../../../helper/admission/exec-admission.js';

const rule = (id: string, binary: BinaryMatcher, over: Partial<EffectiveRule> = {}): EffectiveRule => ({
  key: `p:${id}`, id, source: { kind: 'profile', profileId: 'p', version: 1, file: '/x' }, action: 'allow', binary, kernel: false, mode: 'enforce', locked: true, ...over,
});
const policy = (rules: EffectiveRule[]) => ({ rules, mode: 'enforce' }) as unknown as Policy;

describe('marksOf: which inodes the exec hold marks for a policy', () => {
  it('marks exact paths (pinned or not), the directory of a dir/* glob, and names packages', () => {
    const m = marksOf(policy([
      rule('a', { path: '/usr/bin/curl' }),
      rule('b', { path: '/opt/x/bin/tool', sha256: 'ab'.repeat(32) }),
      rule('c', { path: '/opt/app/bin/*' }),
      rule('d', { path: '/opt/pre/fix-*' }),
      rule('e', { package: 'git' }),
      rule('f', { path: '/usr/bin/python3.11', script: '/opt/corp/deploy.py' }),
    ]));
    expect(m.files.sort()).toEqual(['/opt/x/bin/tool', '/usr/bin/curl', '/usr/bin/python3.11']);
    expect(m.dirs.sort()).toEqual(['/opt/app/bin', '/opt/pre']);
    expect(m.packages).toEqual(['git']);
  });

  it('never marks for deny rules or kernel rules: their execs never wait', () => {
    const m = marksOf(policy([rule('a', { path: '/usr/bin/nc' }, { action: 'deny' }), rule('k', { path: '/x' }, { kernel: true })]));
    expect(m).toEqual({ files: [], dirs: [], packages: [] });
  });
});

describe('pathRulesOf: what a held exec of a path needs, computed once per policy', () => {
  it('names the candidate rules and whether a hash, a package check or the watcher is needed', () => {
    const p = policy([
      rule('a', { path: '/usr/bin/curl' }),
      rule('b', { path: '/usr/bin/curl', sha256: 'ab'.repeat(32) }),
      rule('s', { path: '/usr/bin/python3.11', script: '/opt/corp/deploy.py' }),
      rule('g', { package: 'git' }),
    ]);
    const curl = pathRulesOf(p, '/usr/bin/curl');
    expect(curl.candidates.map((r) => r.id)).toEqual(['a', 'b', 'g']);
    expect(curl).toMatchObject({ special: false, hash: true, packages: ['git'] });
    expect(pathRulesOf(p, '/usr/bin/python3.11')).toMatchObject({ special: true });
    const plain = pathRulesOf(policy([rule('a', { path: '/usr/bin/curl' })]), '/usr/bin/curl');
    expect(plain).toMatchObject({ special: false, hash: false, packages: [] });
    expect(pathRulesOf(policy([rule('a', { path: '/usr/bin/curl' })]), '/usr/bin/wget').candidates).toEqual([]);
  });
});
