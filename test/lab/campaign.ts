// The standing campaign (issue 9): every attack and fault the gate must hold against is a
// row `kind | case`, run as a vitest test in the lab. Each row's outcome is appended to a
// results file; the integration project's global teardown (campaign-report.ts) prints the
// table `kind | case | held` after every file ran. A new case is one `row(...)` call.
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { it } from 'vitest';
import { CAMPAIGN_RESULTS, type CampaignResult } from './campaign-results.js';

export { CAMPAIGN_RESULTS, type CampaignResult };

function record(r: CampaignResult): void {
  mkdirSync(path.dirname(CAMPAIGN_RESULTS), { recursive: true });
  appendFileSync(CAMPAIGN_RESULTS, `${JSON.stringify(r)}\n`);
}

/**
 * Register one campaign row: `attack` must hold (resolve) for the row to count as held; it
 * throws (an expect failing) when the gate did not hold. The row is a vitest test named
 * `kind | case`, so a row that does not hold fails the run.
 * @param timeoutMs the test's timeout (default: the project's).
 */
export function row(kind: string, kase: string, attack: () => Promise<void>, timeoutMs?: number): void {
  it(`${kind} | ${kase}`, async () => {
    try {
      await attack();
      record({ kind, case: kase, held: true });
    } catch (e) {
      record({ kind, case: kase, held: false, why: String((e as Error)?.message ?? e).split('\n')[0] });
      throw e;
    }
  }, timeoutMs);
}
