// Where campaign rows are recorded, vitest-free: the integration project's global set-up
// (campaign-report.ts) runs outside vitest's workers and cannot import `it`.
import path from 'node:path';
import { packageRoot } from './helper-proc.js';

/** Where rows are recorded: one JSON line `{kind, case, held, why?}` each. */
export const CAMPAIGN_RESULTS = path.join(packageRoot(), 'dist', 'campaign', 'results.jsonl');

/** One recorded outcome. */
export interface CampaignResult {
  kind: string;
  case: string;
  held: boolean;
  why?: string;
}
