// `tunnelgate status` as a pure function of what the gate read (a snapshot): the state
// (down, degraded, audit, enforcing), the interfaces, the problems. Gate.status() gathers
// the snapshot (nft, interfaces, cgroups) and calls statusReport.
import type { StatusReport } from '../../common/api.js';
import type { Policy } from '../../common/policy.js';
import type { Link } from '../kernel/links.js';
import { interfaceProblems } from '../ruleset/interfaces.js';
import type { GatedIndex } from '../ruleset/interfaces.js';

/** What the gate knows and read at one moment; every field is a plain value. */
export interface StatusSnapshot {
  /** The policy in force, if any. */
  policy: Policy | undefined;
  /** Interface names present in this namespace now. */
  presentInterfaces: readonly string[];
  /** Why the last apply failed (the previous rules stay in force), if it did. */
  applyProblem: string | undefined;
  /** Whether the `inet tunnelgate` table exists now. */
  tableThere: boolean;
  /** Whether its content is what the helper applied (the kernel's listing, digested). Default: tableThere. */
  tableIntact?: boolean;
  /** The kernel differs from what is in force and could not be put back (table, rule cgroups). */
  kernelProblems?: readonly string[];
  /** Restorations and repairs done (the table put back, cgroups recreated): reported, not a fault now. */
  notes?: readonly string[];
  /** Listeners of admitted processes another process's socket shares: refused, not split (issue 9.7). */
  contested?: readonly string[];
  /** Links present now with their indexes, and the indexes gated (issue 9.2); absent: by name only. */
  links?: readonly Link[];
  gated?: readonly GatedIndex[];
  /**
   * Write failures of the state dir now (helper/kernel/files.ts StorageHealth.problems():
   * audit log, attempt records, decisions, saved ruleset, profile records): each one makes
   * the gate `degraded` until a later write works (issue 9.10).
   */
  storageProblems?: readonly string[];
  /** Whether launches are held by ptrace (else verified by polling). */
  hasTracer: boolean;
  /** The net_cls directory of the rule cgroups. */
  cgroupDir: string;
  /** Processes in rule cgroups now. */
  admittedProcesses: number;
  /** The dropped (enforce) or audited (audit mode) counter of the table: packets and bytes. */
  dropped: StatusReport['dropped'];
  helper: { pid: number; version: string; startedAt: Date; appliedAt?: Date | undefined; netns?: number };
}

const matches = (pattern: string, name: string) => (pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern);

/** The status report of a snapshot. Pure; never throws. */
export function statusReport(s: StatusSnapshot): StatusReport {
  const { policy } = s;
  const problems = [...(policy?.problems ?? [])];
  if (s.applyProblem) problems.unshift(s.applyProblem);
  if (!s.tableThere) problems.unshift('the tunnelgate table is missing from nftables');
  if (!s.hasTracer) problems.push('ptrace is not available: programs started with tunnelgate run lose their first packets while they are verified');
  const interfaces = (policy?.interfaces ?? []).map((pattern) => ({ pattern, present: s.presentInterfaces.filter((n) => matches(pattern, n)) }));
  let ifDegraded = false;
  if (s.links && s.gated) {
    const r = interfaceProblems(policy?.interfaces ?? [], s.links, s.gated);
    problems.push(...r.problems);
    ifDegraded = r.degraded;
  } else {
    for (const i of interfaces) if (!i.present.length) problems.push(`no interface matching ${i.pattern} exists now (it is gated as soon as it appears)`);
  }
  const intact = s.tableIntact ?? s.tableThere;
  if (s.tableThere && !intact) problems.unshift('the tunnelgate table in the kernel is not the one the helper applied');
  problems.unshift(...(s.kernelProblems ?? []));
  for (const c of s.contested ?? []) problems.push(`${c} of an admitted program is shared with another process's socket: new inbound flows to it are refused`);
  problems.push(...(s.storageProblems ?? []));
  problems.push(...(s.notes ?? []));
  const degraded = !intact || (s.storageProblems?.length ?? 0) > 0 || ifDegraded || (s.kernelProblems?.length ?? 0) > 0 || (s.contested?.length ?? 0) > 0 || s.applyProblem !== undefined || !policy?.sources.length || policy.sources.some((src) => src.state !== 'active');
  return {
    state: !policy || !s.tableThere ? 'down' : degraded ? 'degraded' : policy.mode === 'audit' ? 'audit' : 'enforcing',
    mode: policy?.mode ?? 'enforce',
    mechanism: 'net_cls',
    cgroupDir: s.cgroupDir,
    interfaces,
    ruleCount: policy?.rules.length ?? 0,
    admittedProcesses: s.admittedProcesses,
    dropped: s.dropped,
    sources: policy?.sources ?? [],
    problems,
    helper: {
      pid: s.helper.pid,
      version: s.helper.version,
      startedAt: s.helper.startedAt.toISOString(),
      ...(s.helper.appliedAt ? { appliedAt: s.helper.appliedAt.toISOString() } : {}),
      ...(s.helper.netns !== undefined ? { netns: s.helper.netns } : {}),
    },
  };
}

/** What the helper knows of how it watches processes (issue 10); plain values. */
export interface ProcessWatchFacts {
  /** Why the exec hold is off (fanotify permission events unavailable, or turned off); undefined: on. */
  execHoldOff: string | undefined;
  /** /proc/sys/kernel/yama/ptrace_scope (0-3); undefined: the kernel has no Yama. */
  yamaPtraceScope: number | undefined;
}

const YAMA: Record<number, string> = {
  0: 'Yama ptrace_scope 0 (classic): any process may ptrace the processes of its own user',
  1: 'Yama ptrace_scope 1 (restricted): a process may ptrace only its own descendants (or one that allowed it); root may ptrace any',
  2: 'Yama ptrace_scope 2 (admin-only): only processes with CAP_SYS_PTRACE may ptrace',
  3: 'Yama ptrace_scope 3 (no attach): no process may ptrace, not even root',
};

/** What Yama's ptrace_scope (undefined: no Yama) lets processes trace, in words. */
export function ptraceAllowed(scope: number | undefined): string {
  if (scope === undefined) return 'no Yama in this kernel: any process may ptrace the processes of its own user';
  return YAMA[scope] ?? `Yama ptrace_scope ${scope} (unknown value)`;
}

/**
 * The status report with how processes are watched (pure): the `processes` facts (the exec
 * hold, what Yama lets processes ptrace: a fact of the machine, not a fault, so not a problem
 * line: a traced process loses the tunnel at the attach whatever Yama allows), and a problem
 * line when the exec hold is off (programs started directly are admitted just after their
 * exec, so their first packets can be dropped), as for `run` without ptrace.
 */
export function withProcessWatch(r: StatusReport, f: ProcessWatchFacts): StatusReport {
  const ptrace = ptraceAllowed(f.yamaPtraceScope);
  const execHold = f.execHoldOff === undefined ? 'on: each exec of an allowed binary is held until its process is admitted' : `off: ${f.execHoldOff}`;
  const problems = [...r.problems];
  if (f.execHoldOff !== undefined) {
    problems.push(`exec hold off (${f.execHoldOff}): programs started directly are admitted by the watcher just after their exec, so their first packets may be dropped`);
  }
  return { ...r, problems, processes: { execHold, ptrace } };
}
