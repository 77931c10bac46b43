// The status report as a pure function of a snapshot (helper/core/status.ts).
import { describe, expect, it } from 'vitest';
import { statusReport } from '../../../helper/core/status.js';
import type { StatusSnapshot } from '../../../helper/core/status.js';
import { policyOf, profile } from '../policy/fixtures.js';

const snap = (over: Partial<StatusSnapshot> = {}): StatusSnapshot => ({
  policy: policyOf([profile({ interfaces: ['wg0', 'wg-corp*'], rules: [{ id: 'ssh', binary: { path: '/usr/bin/ssh' } }] })]),
  presentInterfaces: ['lo', 'wg0', 'wg-corp1'],
  applyProblem: undefined,
  tableThere: true,
  hasTracer: true,
  cgroupDir: '/sys/fs/cgroup/net_cls/tunnelgate',
  admittedProcesses: 2,
  dropped: { packets: 3, bytes: 180 },
  helper: { pid: 42, version: '0.1.0', startedAt: new Date('2026-11-22T10:00:00Z'), appliedAt: new Date('2026-11-22T10:00:01Z') },
  ...over,
});

describe('statusReport', () => {
  it('enforcing with the policy in force: interfaces by pattern, counters, helper facts', () => {
    const r = statusReport(snap());
    expect(r).toMatchObject({
      state: 'enforcing',
      mode: 'enforce',
      mechanism: 'net_cls',
      ruleCount: 1,
      admittedProcesses: 2,
      dropped: { packets: 3, bytes: 180 },
      interfaces: [{ pattern: 'wg-corp*', present: ['wg-corp1'] }, { pattern: 'wg0', present: ['wg0'] }],
      helper: { pid: 42, version: '0.1.0', startedAt: '2026-11-22T10:00:00.000Z', appliedAt: '2026-11-22T10:00:01.000Z' },
    });
    expect(r.problems).toEqual([]);
  });

  it('down without a policy or without the table; degraded after a failed apply', () => {
    expect(statusReport(snap({ policy: undefined })).state).toBe('down');
    const noTable = statusReport(snap({ tableThere: false }));
    expect(noTable.state).toBe('down');
    expect(noTable.problems[0]).toBe('the tunnelgate table is missing from nftables');
    const failed = statusReport(snap({ applyProblem: 'could not apply the policy' }));
    expect(failed.state).toBe('degraded');
    expect(failed.problems[0]).toBe('could not apply the policy');
  });

  it('audit mode, a missing interface and no ptrace are said', () => {
    const r = statusReport(snap({ policy: policyOf([profile({ mode: 'audit' })]), presentInterfaces: [], hasTracer: false }));
    expect(r.state).toBe('audit');
    expect(r.problems).toContain('no interface matching wg0 exists now (it is gated as soon as it appears)');
    expect(r.problems.some((p) => p.startsWith('ptrace is not available'))).toBe(true);
  });
});
