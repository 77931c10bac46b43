// The status report's kernel facts (issues 9.0, 9.2, 9.7, 9.12, 9.13): a table that is not
// what was applied, interfaces renamed or absent, contested listeners, repairs done.
import { describe, expect, it } from 'vitest';
import { statusReport } from '../../../helper/core/status.js';
import type { StatusSnapshot } from '../../../helper/core/status.js';
import { statusSnapshot } from './fakes.js';

const snap = (over: Partial<StatusSnapshot> = {}): StatusSnapshot =>
  statusSnapshot({ tableIntact: true, links: [{ index: 1, name: 'lo' }, { index: 7, name: 'wg0' }], gated: [{ index: 7, pattern: 'wg0', name: 'wg0' }], ...over });

describe('statusReport and the kernel', () => {
  it('enforcing only while the table is there and is what was applied', () => {
    expect(statusReport(snap()).state).toBe('enforcing');
    const changed = statusReport(snap({ tableIntact: false }));
    expect(changed.state).toBe('degraded');
    expect(changed.problems[0]).toBe('the tunnelgate table in the kernel is not the one the helper applied');
    expect(statusReport(snap({ tableThere: false, tableIntact: false })).state).toBe('down');
  });

  it('degraded while a named interface is renamed (still gated by index) or absent', () => {
    const renamed = statusReport(snap({ links: [{ index: 1, name: 'lo' }, { index: 7, name: 'other' }], presentInterfaces: ['lo', 'other'] }));
    expect(renamed.state).toBe('degraded');
    expect(renamed.problems).toContain('interface wg0 is now named other; it is still gated by its index 7');
    const absent = statusReport(snap({ links: [{ index: 1, name: 'lo' }], presentInterfaces: ['lo'] }));
    expect(absent.state).toBe('degraded');
    expect(absent.problems).toContain('no interface named wg0 exists now (it is gated as soon as it appears)');
  });

  it('a kernel problem that could not be repaired, or a contested listener, degrades; a repair done is only reported', () => {
    const broken = statusReport(snap({ kernelProblems: ['rule cgroups could not be repaired: EACCES'] }));
    expect(broken.state).toBe('degraded');
    expect(broken.problems[0]).toBe('rule cgroups could not be repaired: EACCES');
    const contested = statusReport(snap({ contested: ['udp 0.0.0.0:9500'] }));
    expect(contested.state).toBe('degraded');
    expect(contested.problems).toContain("udp 0.0.0.0:9500 of an admitted program is shared with another process's socket: new inbound flows to it are refused");
    const repaired = statusReport(snap({ notes: ['2026-11-30T07:00:00.000Z: the tunnelgate table was deleted by someone else (seen by nft monitor: nft (pid 9)) and was put back'] }));
    expect(repaired.state).toBe('enforcing');
    expect(repaired.problems).toHaveLength(1);
  });
});
