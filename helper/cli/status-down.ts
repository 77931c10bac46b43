// `tunnelgate status` with no helper answering: the gate's nftables table outlives the
// helper (fail-closed), so "down" alone would hide whether the tunnel is still shut. The
// CLI reads the kernel of its own network namespace: is `inet tunnelgate` there?
// `nft list table` needs root (CAP_NET_ADMIN); as anyone else it cannot tell, and says so.
import type { Runner } from '../kernel/run.js';
import { FAMILY, TABLE } from '../kernel/nft.js';

/** What the kernel of this network namespace says about the gate's table. */
export type TableState = { state: 'in-force' } | { state: 'absent' } | { state: 'unknown'; why: string };

/**
 * Whether `inet tunnelgate` exists in the caller's network namespace: `nft -t list table`
 * (exit 0: there; "No such file or directory": not there). Not root: unknown without asking.
 * Never throws.
 */
export async function probeTable(run: Runner, euid: number): Promise<TableState> {
  if (euid !== 0) return { state: 'unknown', why: 'reading nftables needs root: run tunnelgate status as root to tell whether the table is still in force' };
  try {
    const r = await run('nft', ['-t', 'list', 'table', FAMILY, TABLE], { reject: false, timeoutMs: 10_000 });
    if (r.exitCode === 0) return { state: 'in-force' };
    if (/No such file or directory/i.test(r.stderr)) return { state: 'absent' };
    return { state: 'unknown', why: `nft could not list the table: ${r.stderr.trim().split('\n')[0] ?? `exit ${r.exitCode}`}` };
  } catch (e) {
    return { state: 'unknown', why: `nft cannot run: ${(e as Error).message}` };
  }
}

/** What `status --json` prints when no helper answers (one document). */
export interface DownStatus {
  state: 'down';
  /** The gate's table in this network namespace: in-force (the tunnel stays shut), absent (not gated), unknown (see problems). */
  table: TableState['state'];
  problems: string[];
}

/** The sentence for each table state. Pure. */
export function tableSentence(t: TableState): string {
  switch (t.state) {
    case 'in-force':
      return "helper down; the gate's table is still in force (fail-closed): restart the helper";
    case 'absent':
      return 'helper down, and no table: the tunnel is not gated';
    case 'unknown':
      return `helper down; cannot tell whether the gate's table is still in force: ${t.why}`;
  }
}

/** `status` with the helper down: the client's error MESSAGE and what the kernel said. Pure. */
export function downStatus(message: string, t: TableState): { value: DownStatus; text: string } {
  const problems = [message, tableSentence(t)];
  const table = { 'in-force': `inet ${TABLE} in force (fail-closed)`, absent: 'none', unknown: 'unknown' }[t.state];
  return {
    value: { state: 'down', table: t.state, problems },
    text: [`gate:       down`, `table:      ${table}`, 'problems:', ...problems.map((p) => `  - ${p}`)].join('\n'),
  };
}
