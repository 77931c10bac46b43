// The service runs the helper with the V8 options the lab and the bench use (helper/config.ts
// HELPER_NODE_OPTIONS): the memory figures in bench/RESULTS.md are those of the shipped unit.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { HELPER_NODE_OPTIONS } from '../../../helper/config.js';

it('tunnelgate.service sets NODE_OPTIONS to HELPER_NODE_OPTIONS, once', () => {
  const unit = readFileSync(new URL('../../../packaging/systemd/tunnelgate.service', import.meta.url), 'utf8');
  const lines = unit.split('\n').filter((l) => /^Environment=.*NODE_OPTIONS=/.test(l));
  expect(lines).toEqual([`Environment="NODE_OPTIONS=${HELPER_NODE_OPTIONS}"`]);
});
