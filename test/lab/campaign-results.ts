// Where the campaign's rows are recorded (no vitest here: the global teardown reads it too).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where rows are recorded: one JSON line `{kind, case, held, why?}` each. */
export const CAMPAIGN_RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'campaign', 'results.jsonl');

/** One recorded outcome. */
export interface CampaignResult {
  kind: string;
  case: string;
  held: boolean;
  why?: string;
}

