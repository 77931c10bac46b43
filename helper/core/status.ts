// `tunnelgate status` as a pure function of what the gate read (a snapshot): the state
// (down, degraded, audit, enforcing), the interfaces, the problems. Gate.status() gathers
// the snapshot (nft, interfaces, cgroups) and calls statusReport.
import type { StatusReport } from '../../common/api.js';
import type { Policy } from '../../common/policy.js';

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
  /** Whether launches are held by ptrace (else verified by polling). */
  hasTracer: boolean;
  /** The net_cls directory of the rule cgroups. */
  cgroupDir: string;
  /** Processes in rule cgroups now. */
  admittedProcesses: number;
  /** The dropped (enforce) or audited (audit mode) counter of the table: packets and bytes. */
  dropped: StatusReport['dropped'];
  helper: { pid: number; version: string; startedAt: Date; appliedAt?: Date | undefined };
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
  for (const i of interfaces) if (!i.present.length) problems.push(`no interface matching ${i.pattern} exists now (it is gated as soon as it appears)`);
  const degraded = !s.tableThere || s.applyProblem !== undefined || !policy?.sources.length || policy.sources.some((src) => src.state !== 'active');
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
    },
  };
}
