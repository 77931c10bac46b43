import { describe, expect, it } from 'vitest';
import { interfaceProblems, nextGatedIndexes } from '../../../helper/ruleset/interfaces.js';
import { interfaceMatches } from '../../../helper/policy/scope.js';

describe('gated interface indexes (issue 9.2)', () => {
  it('matches names as nft does: exact, or a prefix for a trailing *', () => {
    expect(interfaceMatches('wg0', 'wg0')).toBe(true);
    expect(interfaceMatches('wg01', 'wg0')).toBe(false);
    expect(interfaceMatches('wg-corp7', 'wg-corp*')).toBe(true);
    expect(interfaceMatches('wg', 'wg-corp*')).toBe(false);
  });

  it('an index gated once stays gated under any later name, present or not', () => {
    const first = nextGatedIndexes([], [{ index: 1, name: 'lo' }, { index: 7, name: 'wgX' }, { index: 9, name: 'wg-c1' }], ['wgX', 'wg-c*']);
    expect(first).toEqual([{ index: 7, pattern: 'wgX', name: 'wgX' }, { index: 9, pattern: 'wg-c*', name: 'wg-c1' }]);
    // renamed to a name no pattern matches; the other one moved to another namespace
    const later = nextGatedIndexes(first, [{ index: 1, name: 'lo' }, { index: 7, name: 'other' }], ['wgX', 'wg-c*']);
    expect(later.map((g) => g.index)).toEqual([7, 9]);
    // a new interface matching a pattern joins
    expect(nextGatedIndexes(later, [{ index: 12, name: 'wg-c2' }], ['wgX', 'wg-c*']).map((g) => g.index)).toEqual([7, 9, 12]);
  });

  it('is given up only when the policy stops naming the pattern it was gated under', () => {
    const gated = [{ index: 7, pattern: 'wgX', name: 'wgX' }, { index: 9, pattern: 'wg-c*', name: 'wg-c1' }];
    expect(nextGatedIndexes(gated, [{ index: 7, name: 'other' }], ['wg-c*'])).toEqual([{ index: 9, pattern: 'wg-c*', name: 'wg-c1' }]);
  });

  it('status is degraded while a named interface is absent or a gated one carries another name', () => {
    const gated = [{ index: 7, pattern: 'wgX', name: 'wgX' }];
    expect(interfaceProblems(['wgX'], [{ index: 7, name: 'wgX' }], gated)).toEqual({ degraded: false, problems: [] });
    expect(interfaceProblems(['wgX'], [{ index: 7, name: 'other' }], gated)).toEqual({
      degraded: true,
      problems: ['interface wgX is now named other; it is still gated by its index 7'],
    });
    expect(interfaceProblems(['wgX'], [], gated)).toEqual({
      degraded: true,
      problems: ['no interface named wgX exists now (it is gated as soon as it appears)'],
    });
    // a wildcard with nothing present is a tunnel that is not up, not a fault
    expect(interfaceProblems(['wg-c*'], [], [])).toEqual({ degraded: false, problems: [] });
    expect(interfaceProblems(['wg-c*'], [{ index: 9, name: 'x' }], [{ index: 9, pattern: 'wg-c*', name: 'wg-c1' }]).problems).toEqual([
      'interface wg-c1 is now named x; it is still gated by its index 9',
    ]);
  });
});
