// Pure parts of the watcher and its polling source.
import { describe, expect, it } from 'vitest';
import { newPidRange, parseLastPid } from '../../../helper/identity/exec-poll.js';
import { netClsPath, ruleKeyOfPath as ruleKeyOf } from '../../../helper/kernel/netcls.js';
import { inForce, nextExpiry } from '../../../helper/policy/expiry.js';
import { policyOf, profile } from '../policy/fixtures.js';

describe('polling source', () => {
  it('reads the last pid from /proc/loadavg', () => {
    expect(parseLastPid('0.08 0.03 0.01 1/187 48213\n')).toBe(48213);
    expect(parseLastPid('')).toBeUndefined();
    expect(parseLastPid('0.08 0.03 0.01 1/187 x')).toBeUndefined();
  });

  it('new pids since the last tick, across the wrap at pid_max, or undefined when too many', () => {
    expect(newPidRange(100, 100, 4_194_304)).toEqual([]);
    expect(newPidRange(100, 103, 4_194_304)).toEqual([101, 102, 103]);
    expect(newPidRange(32_766, 2, 32_768)).toEqual([32_767, 32_768, 1, 2]);
    expect(newPidRange(1, 10_000, 4_194_304)).toBeUndefined();
    expect(newPidRange(1, 10, 4_194_304, 5)).toBeUndefined();
  });
});

describe('watcher', () => {
  it('finds the net_cls path in /proc/PID/cgroup, with or without net_prio', () => {
    expect(netClsPath('12:net_cls,net_prio:/tunnelgate/corp:curl\n0::/user.slice\n')).toBe('/tunnelgate/corp:curl');
    expect(netClsPath('13:net_cls:/tg-test-ab12/corp-test:curl\n0::/\n')).toBe('/tg-test-ab12/corp-test:curl');
    expect(netClsPath('0::/user.slice\n')).toBeUndefined();
  });

  it('maps a net_cls path to a rule key of our subtree only', () => {
    expect(ruleKeyOf('/tunnelgate/corp:curl', 'tunnelgate')).toBe('corp:curl');
    expect(ruleKeyOf('/tunnelgate', 'tunnelgate')).toBeUndefined();
    expect(ruleKeyOf('/', 'tunnelgate')).toBeUndefined();
    expect(ruleKeyOf('/other/corp:curl', 'tunnelgate')).toBeUndefined();
    expect(ruleKeyOf('/tunnelgate/a/b', 'tunnelgate')).toBeUndefined();
    expect(ruleKeyOf(undefined, 'tunnelgate')).toBeUndefined();
  });

  it('rules past their expiry are out of force; the next expiry is known', () => {
    const now = Date.parse('2026-11-22T00:00:00Z');
    const p = policyOf([profile({ rules: [{ id: 'a', binary: { path: '/usr/bin/a' } }] })], [
      { id: 'soon', uid: 1000, binary: { path: '/usr/bin/b' }, expires: '2026-11-22T00:00:30Z' },
      { id: 'later', uid: 1000, binary: { path: '/usr/bin/c' }, expires: '2026-11-22T01:00:00Z' },
    ], new Date(now));
    expect(inForce(p, now)).toBe(p);
    expect(inForce(p, now + 31_000).rules.map((r) => r.id)).toEqual(['a', 'later']);
    expect(nextExpiry(p, now)).toBe(30_000);
    expect(nextExpiry(p, now + 31_000)).toBe(3_600_000 - 31_000);
    expect(nextExpiry(p, now + 4_000_000)).toBeUndefined();
  });
});
