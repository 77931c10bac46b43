// Status says how processes are watched (issue 10): the exec hold on or off (and why), and
// what the machine's Yama setting lets processes ptrace.
import { describe, expect, it } from 'vitest';
import { ptraceAllowed, statusReport, withProcessWatch } from '../../../helper/core/status.js';
import { formatStatus } from '../../../helper/cli/format.js';
import { statusSnapshot } from './fakes.js';

const report = () => statusReport(statusSnapshot({ presentInterfaces: ['wg0'] }));

describe('withProcessWatch', () => {
  it('hold on: said in the facts, no problem line; the state is unchanged', () => {
    const r = withProcessWatch(report(), { execHoldOff: undefined, yamaPtraceScope: 1 });
    expect(r.state).toBe('enforcing');
    expect(r.problems).toEqual([]);
    expect(r.processes?.execHold).toMatch(/^on: /);
    expect(r.processes?.ptrace).toMatch(/ptrace_scope 1 \(restricted\)/);
  });

  it('hold off (fanotify unavailable): a problem line with the reason, as for run without ptrace', () => {
    const r = withProcessWatch(report(), { execHoldOff: 'fanotify permission events are not available (EPERM)', yamaPtraceScope: undefined });
    expect(r.processes?.execHold).toBe('off: fanotify permission events are not available (EPERM)');
    expect(r.problems).toEqual([
      'exec hold off (fanotify permission events are not available (EPERM)): programs started directly are admitted by the watcher just after their exec, so their first packets may be dropped',
    ]);
    expect(r.state).toBe('enforcing'); // admission still happens, later: not a degraded gate
  });

  it('what each Yama setting allows, and a kernel without Yama', () => {
    expect(ptraceAllowed(undefined)).toMatch(/^no Yama in this kernel: any process may ptrace the processes of its own user/);
    expect(ptraceAllowed(0)).toMatch(/classic/);
    expect(ptraceAllowed(2)).toMatch(/only processes with CAP_SYS_PTRACE/);
    expect(ptraceAllowed(3)).toMatch(/no process may ptrace, not even root/);
    expect(ptraceAllowed(7)).toMatch(/unknown/);
  });

  it('the CLI prints both lines', () => {
    const text = formatStatus(withProcessWatch(report(), { execHoldOff: 'TUNNELGATE_EXEC_HOLD=off', yamaPtraceScope: undefined }));
    expect(text).toMatch(/^exec hold: {2}off: TUNNELGATE_EXEC_HOLD=off$/m);
    expect(text).toMatch(/^ptrace: {5}no Yama in this kernel/m);
    expect(formatStatus(report())).not.toMatch(/exec hold:/);
  });
});
