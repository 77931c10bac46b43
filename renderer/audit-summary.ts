// The audit report (common/audit.ts: one record per program, user, destination and mode)
// summed up for the window: which programs and which destinations were refused (or, in
// audit mode, would have been) most, with first and last seen. Pure: no DOM.

import type { AttemptRecord, AuditReport } from '../common/audit.js';
import { formatDestination } from '../common/format.js';

export interface ProgramSummary {
  /** Absent: the process had exited before it could be named. */
  exe?: string;
  attempts: number;
  destinations: number;
  uids: number[];
  /** `enforce`: dropped; `audit`: passed, but enforcing would drop it. */
  modes: Array<AttemptRecord['mode']>;
  firstSeen: string;
  lastSeen: string;
}

export interface DestinationSummary {
  destination: string;
  attempts: number;
  programs: number;
  modes: Array<AttemptRecord['mode']>;
  firstSeen: string;
  lastSeen: string;
}

export interface AuditSummary {
  days: number;
  attempts: number;
  /** Attempts that passed only because of audit mode. */
  auditAttempts: number;
  programCount: number;
  destinationCount: number;
  /** The most refused first; at most `top`. */
  programs: ProgramSummary[];
  destinations: DestinationSummary[];
  /** The helper's note, verbatim. */
  coverage: string;
}

interface Acc {
  attempts: number;
  others: Set<string>;
  uids: Set<number>;
  modes: Set<AttemptRecord['mode']>;
  firstSeen: string;
  lastSeen: string;
}

export function summarizeAudit(report: AuditReport, top = 10): AuditSummary {
  const programs = new Map<string, Acc & { exe?: string }>();
  const destinations = new Map<string, Acc>();
  let attempts = 0;
  let auditAttempts = 0;
  for (const r of report.records) {
    const dst = formatDestination(r.dst);
    const prog = r.exe ?? '';
    attempts += r.count;
    if (r.mode === 'audit') auditAttempts += r.count;
    add(programs, prog, r, dst, r.exe !== undefined ? { exe: r.exe } : {});
    add(destinations, dst, r, prog, {});
  }
  const programList = [...programs.values()].sort(mostFirst).map((a) => ({
    ...(a.exe !== undefined ? { exe: a.exe } : {}),
    attempts: a.attempts,
    destinations: a.others.size,
    uids: [...a.uids].sort((x, y) => x - y),
    modes: sortedModes(a.modes),
    firstSeen: a.firstSeen,
    lastSeen: a.lastSeen,
  }));
  const destinationList = [...destinations.entries()]
    .map(([destination, a]) => ({ destination, ...a }))
    .sort(mostFirst)
    .map((a) => ({
      destination: a.destination,
      attempts: a.attempts,
      programs: a.others.size,
      modes: sortedModes(a.modes),
      firstSeen: a.firstSeen,
      lastSeen: a.lastSeen,
    }));
  return {
    days: report.days,
    attempts,
    auditAttempts,
    programCount: programList.length,
    destinationCount: destinationList.length,
    programs: programList.slice(0, top),
    destinations: destinationList.slice(0, top),
    coverage: report.coverage,
  };
}

function add<T extends object>(map: Map<string, Acc & T>, key: string, r: AttemptRecord, other: string, extra: T): void {
  let a = map.get(key);
  if (!a) {
    a = { attempts: 0, others: new Set(), uids: new Set(), modes: new Set(), firstSeen: r.firstSeen, lastSeen: r.lastSeen, ...extra };
    map.set(key, a);
  }
  a.attempts += r.count;
  a.others.add(other);
  a.uids.add(r.uid);
  a.modes.add(r.mode);
  if (r.firstSeen < a.firstSeen) a.firstSeen = r.firstSeen;
  if (r.lastSeen > a.lastSeen) a.lastSeen = r.lastSeen;
}

/** Most attempts first; then the most recent; then by name, for a stable order. */
function mostFirst(a: Acc & { exe?: string; destination?: string }, b: Acc & { exe?: string; destination?: string }): number {
  if (a.attempts !== b.attempts) return b.attempts - a.attempts;
  if (a.lastSeen !== b.lastSeen) return a.lastSeen < b.lastSeen ? 1 : -1;
  const ka = a.exe ?? a.destination ?? '';
  const kb = b.exe ?? b.destination ?? '';
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function sortedModes(m: Set<AttemptRecord['mode']>): Array<AttemptRecord['mode']> {
  return (['enforce', 'audit'] as const).filter((x) => m.has(x));
}
