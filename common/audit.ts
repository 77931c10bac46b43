// Audit evidence: what the gate refused (or would refuse), aggregated. Shown by
// `tunnelgate audit` and the tray app, replayed by `tunnelgate profile test`.

export interface AttemptRecord {
  mode: 'enforce' | 'audit';
  uid: number;
  /** Absent when the sending process could not be found (it had exited). */
  exe?: string;
  dst: { addr: string; port?: number; proto: 'tcp' | 'udp' | 'icmp' | 'other' };
  count: number;
  firstSeen: string;
  lastSeen: string;
}

export interface AuditReport {
  days: number;
  records: AttemptRecord[];
  /** Said every time: evidence covers only what happened while it was recorded. */
  coverage: string;
}

export const COVERAGE_NOTE =
  'This shows only what was attempted while it was recorded. Paths not used in that window ' +
  '(failover to another replica, quarter-end or yearly jobs, disaster recovery) are not covered: ' +
  'decide rules per program, not from this list alone. Nothing here is turned into a rule automatically.';

export type ReplayOutcome = 'admit' | 'pass-audit' | 'drop';

export interface ReplayLine {
  record: AttemptRecord;
  before: ReplayOutcome;
  after: ReplayOutcome;
  /** Why the draft decides as it does. */
  reason: string;
}

export interface ProfileTestResult {
  draft: { id: string; version: number; file: string };
  days: number;
  recordsReplayed: number;
  newlyDropped: ReplayLine[];
  newlyAdmitted: ReplayLine[];
  coverage: string;
}
