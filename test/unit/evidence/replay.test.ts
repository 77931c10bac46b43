import { describe, expect, it } from 'vitest';
import type { DeniedAttempt } from '../../../common/attempts.js';
import type { AttemptRecord } from '../../../common/audit.js';
import { fold, within } from '../../../helper/evidence/store.js';
import { destinationCovers, outcome, replay } from '../../../helper/policy/replay.js';
import { policyOf, profile } from '../policy/fixtures.js';

const attempt = (over: Partial<DeniedAttempt> = {}): DeniedAttempt => ({
  time: '2026-11-20T10:00:00.000Z',
  uid: 1000,
  pid: 4242,
  exe: '/usr/bin/rsync',
  dst: { addr: '198.18.0.2', port: 873, proto: 'tcp' },
  iface: 'wg0',
  mode: 'audit',
  ...over,
});

describe('attempt records', () => {
  it('fold counts repeats and keeps first and last seen; ports of the sender do not split records', () => {
    const m = new Map<string, AttemptRecord>();
    fold(m, attempt());
    fold(m, attempt({ time: '2026-11-21T10:00:00.000Z', pid: 5555 }));
    fold(m, attempt({ time: '2026-11-19T10:00:00.000Z' }));
    fold(m, attempt({ dst: { addr: '198.18.0.2', port: 22, proto: 'tcp' } }));
    expect(m.size).toBe(2);
    const r = [...m.values()].find((x) => x.dst.port === 873);
    expect(r).toEqual({
      mode: 'audit', uid: 1000, exe: '/usr/bin/rsync', dst: { addr: '198.18.0.2', port: 873, proto: 'tcp' },
      count: 3, firstSeen: '2026-11-19T10:00:00.000Z', lastSeen: '2026-11-21T10:00:00.000Z',
    });
  });

  it('1,000 attempts of one program are one record with count 1000; the table is bounded', () => {
    const m = new Map<string, AttemptRecord>();
    for (let i = 0; i < 1000; i++) fold(m, attempt());
    expect([...m.values()][0]?.count).toBe(1000);
    for (let i = 0; i < 50; i++) fold(m, attempt({ exe: `/bin/p${i}`, time: `2026-11-21T10:00:${String(i).padStart(2, '0')}.000Z` }), 10);
    expect(m.size).toBe(10);
    expect([...m.values()].some((r) => r.exe === '/bin/p49')).toBe(true);
  });

  it('within keeps the last N days, most frequent first', () => {
    const m = new Map<string, AttemptRecord>();
    fold(m, attempt({ time: '2026-10-01T00:00:00.000Z', exe: '/old' }));
    fold(m, attempt());
    fold(m, attempt());
    fold(m, attempt({ exe: '/once' }));
    const r = within(m.values(), new Date('2026-11-22T00:00:00Z'), 7);
    expect(r.map((x) => x.exe)).toEqual(['/usr/bin/rsync', '/once']);
  });
});

describe('replay', () => {
  const rec = (over: Partial<AttemptRecord> = {}): AttemptRecord => ({
    mode: 'audit', uid: 1000, exe: '/usr/bin/rsync', dst: { addr: '198.18.0.2', port: 873, proto: 'tcp' },
    count: 3, firstSeen: '2026-11-20T10:00:00.000Z', lastSeen: '2026-11-21T10:00:00.000Z', ...over,
  });

  it('destination scopes: cidr, protocol and ports', () => {
    const dst = { addr: '198.18.0.2', port: 873, proto: 'tcp' as const };
    expect(destinationCovers({ cidr: '198.18.0.0/24' }, dst)).toBe(true);
    expect(destinationCovers({ cidr: '198.18.1.0/24' }, dst)).toBe(false);
    expect(destinationCovers({ cidr: '198.18.0.0/24', proto: 'udp' }, dst)).toBe(false);
    expect(destinationCovers({ cidr: '198.18.0.0/24', ports: [22, 873] }, dst)).toBe(true);
    expect(destinationCovers({ cidr: '198.18.0.0/24', ports: [22] }, dst)).toBe(false);
    expect(destinationCovers({ cidr: 'fd00:7467::/64' }, { addr: 'fd00:7467::2', proto: 'udp', port: 7 })).toBe(true);
  });

  it('an attempt that passes in audit mode is newly dropped by an enforcing draft that does not allow it', () => {
    const current = policyOf([profile({ mode: 'audit', rules: [{ id: 'ssh', binary: { path: '/usr/bin/ssh' } }] })]);
    const draft = policyOf([profile({ version: 8, rules: [{ id: 'ssh', binary: { path: '/usr/bin/ssh' } }] })]);
    expect(outcome(current, rec()).outcome).toBe('pass-audit');
    const r = replay(current, draft, [rec(), rec({ exe: '/usr/bin/ssh' })]);
    expect(r.newlyDropped.map((l) => l.record.exe)).toEqual(['/usr/bin/rsync']);
    expect(r.newlyDropped[0]?.reason).toBe('no rule allows /usr/bin/rsync');
    expect(r.newlyAdmitted).toEqual([]);
  });

  it('a draft that allows the program, but to another port, still drops it; to this port, admits it', () => {
    const current = policyOf([profile()]);
    const narrow = policyOf([profile({ rules: [{ id: 'rsync', binary: { path: '/usr/bin/rsync' }, destinations: [{ cidr: '198.18.0.2/32', ports: [22], proto: 'tcp' }] }] })]);
    const right = policyOf([profile({ rules: [{ id: 'rsync', binary: { path: '/usr/bin/rsync' }, destinations: [{ cidr: '198.18.0.0/24', ports: [873], proto: 'tcp' }] }] })]);
    const r = rec({ mode: 'enforce' });
    expect(replay(current, narrow, [r]).newlyAdmitted).toEqual([]);
    expect(outcome(narrow, r).reason).toMatch(/does not cover 198\.18\.0\.2:873\/tcp/);
    expect(replay(current, right, [r]).newlyAdmitted.map((l) => l.after)).toEqual(['admit']);
  });

  it('alwaysAllow, unknown processes and scoped denies', () => {
    const p = policyOf([profile({
      alwaysAllow: [{ cidr: '198.18.0.53/32', ports: [53], proto: 'udp' }],
      rules: [
        { id: 'rsync', binary: { path: '/usr/bin/rsync' } },
        { id: 'no-backup', action: 'deny', binary: { path: '/usr/bin/rsync' }, destinations: [{ cidr: '198.18.0.9/32' }] },
      ],
    })]);
    expect(outcome(p, rec({ exe: undefined, dst: { addr: '198.18.0.53', port: 53, proto: 'udp' } })).outcome).toBe('admit');
    expect(outcome(p, rec({ exe: undefined })).outcome).toBe('drop');
    expect(outcome(p, rec()).outcome).toBe('admit');
    expect(outcome(p, rec({ dst: { addr: '198.18.0.9', port: 873, proto: 'tcp' } })).reason).toBe('denied to this destination by rule no-backup of profile corp-base');
  });
});
