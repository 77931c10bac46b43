// Global set-up and teardown of the integration project: a fresh campaign results file at the
// start, and the table `kind | case | held` of every row recorded at the end (issue 9).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { CAMPAIGN_RESULTS, type CampaignResult } from './campaign-results.js';

export function setup(): void {
  rmSync(CAMPAIGN_RESULTS, { force: true });
}

/** Prints the table; rows recorded twice (a retried file) show their last outcome. */
export function teardown(): void {
  if (!existsSync(CAMPAIGN_RESULTS)) return;
  const rows = new Map<string, CampaignResult>();
  for (const line of readFileSync(CAMPAIGN_RESULTS, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as CampaignResult;
    rows.set(`${r.kind}\0${r.case}`, r);
  }
  const list = [...rows.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.case.localeCompare(b.case));
  const w1 = Math.max(4, ...list.map((r) => r.kind.length));
  const w2 = Math.max(4, ...list.map((r) => r.case.length));
  const out = [`\nCampaign: ${list.filter((r) => r.held).length} of ${list.length} held`, `${'kind'.padEnd(w1)} | ${'case'.padEnd(w2)} | held`, `${'-'.repeat(w1)}-|-${'-'.repeat(w2)}-|-----`];
  for (const r of list) out.push(`${r.kind.padEnd(w1)} | ${r.case.padEnd(w2)} | ${r.held ? 'yes' : `NO: ${r.why ?? ''}`}`);
  console.log(out.join('\n'));
}
