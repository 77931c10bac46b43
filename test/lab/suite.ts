// The integration tests' fixture bound to vitest: `labAndHelper(opts)` builds one lab +
// helper + scratch directory in beforeAll and tears it down in afterAll, which fails the
// file when anything was left behind. Also the assertions every file shares.
import type { Result } from 'execa';
import { afterAll, beforeAll, expect } from 'vitest';
import { createLabAndHelper, type FixtureOptions, type LabAndHelper } from './fixture.js';

/**
 * Register the fixture's set-up and teardown for the calling test file and return it; its
 * members are usable inside tests and hooks (reading one before beforeAll ran throws).
 */
export function labAndHelper(opts: FixtureOptions = {}): LabAndHelper {
  let fx: LabAndHelper | undefined;
  beforeAll(async () => {
    fx = await createLabAndHelper(opts);
  }, 180_000);
  afterAll(async () => {
    const left = (await fx?.teardown()) ?? [];
    if (left.length) throw new Error(`the test left behind:\n  ${left.join('\n  ')}`);
  }, 120_000);
  return new Proxy({} as LabAndHelper, {
    get(_target, key) {
      if (!fx) throw new Error(`the lab fixture is not set up (yet): cannot read ${String(key)}`);
      const v = fx[key as keyof LabAndHelper];
      return typeof v === 'function' ? v.bind(fx) : v;
    },
  });
}

/**
 * A curl (`-w %{http_code}`, with `-m` or `--connect-timeout`) whose packets were dropped:
 * no HTTP code and curl's own timeout (exit 28). A refused connection (exit 7), a missing
 * route or a crash give 000 as well, but not exit 28.
 */
export function expectDropped(r: Pick<Result, 'stdout' | 'exitCode'>, what = 'curl'): void {
  expect({ what, out: String(r.stdout).split(' ')[0], exit: r.exitCode }).toEqual({ what, out: '000', exit: 28 });
}
