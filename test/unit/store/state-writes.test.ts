// State-dir write failures (issue 9.10): each writer's failure shows in status at once
// (degraded, naming the file and the errno), and clears when a later write works — without
// a reload. The lab rows (test/integration/campaign/policy-faults.test.ts) fill a real tmpfs.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { statusReport } from '../../../helper/core/status.js';
import { DecisionsStore } from '../../../helper/store/decisions.js';
import { DECISIONS_KEY, reportDecisionWrites } from '../../../helper/store/state-writes.js';
import { ResumingFile, StorageHealth } from '../../../helper/kernel/files.js';
import { policyOf, profile } from '../policy/fixtures.js';
import { statusSnapshot } from '../core/fakes.js';

const snap = statusSnapshot;

/** The next change of `health` (a write failing or working again). */
const changed = (health: StorageHealth) =>
  new Promise<string[]>((resolve) => {
    const off = health.onChange(() => {
      off();
      resolve(health.problems());
    });
  });

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tg-state-writes-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('status and state-dir write failures', () => {
  it('a failing writer makes status degraded with its problem; the policy sources stay as they are', () => {
    const health = new StorageHealth();
    health.fail('audit log', 'the state directory /s is full (ENOSPC)', { file: '/s/audit.log', detail: () => '3 line(s) kept in memory' });
    const r = statusReport(snap({ storageProblems: health.problems() }));
    expect(r.state).toBe('degraded');
    expect(r.problems).toContain('cannot write the audit log (/s/audit.log): the state directory /s is full (ENOSPC); 3 line(s) kept in memory');
    expect(r.sources.every((s) => s.state === 'active')).toBe(true);
    health.ok('audit log');
    expect(statusReport(snap({ storageProblems: health.problems() })).state).toBe('enforcing');
  });

  it('in audit mode too: a write failure is degraded, not audit', () => {
    const r = statusReport(snap({ policy: policyOf([profile({ mode: 'audit' })]), storageProblems: ['cannot write the saved ruleset (/s/ruleset.nft): the state directory /s is full (ENOSPC)'] }));
    expect(r.state).toBe('degraded');
  });
});

/** A ResumingFile `name` (`what`) in a state dir that a plain file stands in for: its writes fail (ENOTDIR). */
function blockedFile(health: StorageHealth, name: string, what: string): { sub: string; f: ResumingFile } {
  const sub = path.join(dir, 'state');
  writeFileSync(sub, 'a file where the state directory should be');
  return { sub, f: new ResumingFile(path.join(sub, name), what, health) };
}

describe('ResumingFile (the saved ruleset, the gated interfaces)', () => {
  it('a failed save is shown naming the file and errno, never thrown, and retried with the latest data until it works', async () => {
    const health = new StorageHealth(10);
    const { sub, f } = blockedFile(health, 'ruleset.nft', 'saved ruleset');
    await f.write('table inet tunnelgate { # 1\n}\n');
    await f.write('table inet tunnelgate { # 2\n}\n');
    expect(f.pending).toBe(true);
    expect(health.problems()).toEqual([expect.stringMatching(/^cannot write the saved ruleset \(.*\/state\/ruleset\.nft\): the state directory .* cannot be written \(ENOTDIR/)]);
    const cleared = changed(health);
    rmSync(sub);
    // The retry cannot make the directory; a writer of the state dir would have: make it.
    mkdirSync(sub);
    expect(await cleared).toEqual([]);
    expect(readFileSync(path.join(sub, 'ruleset.nft'), 'utf8')).toBe('table inet tunnelgate { # 2\n}\n');
    expect(f.pending).toBe(false);
    health.close();
  });

  it('a later write that works clears the problem at once (no retry needed)', async () => {
    const health = new StorageHealth(60_000);
    const { sub, f } = blockedFile(health, 'gated-interfaces.json', 'gated interfaces');
    await f.write('[]\n');
    expect(health.isFailing('gated interfaces')).toBe(true);
    rmSync(sub);
    mkdirSync(sub);
    await f.write('[1]\n');
    expect(health.problems()).toEqual([]);
    health.close();
  });
});

describe('decisions save failures (reportDecisionWrites)', () => {
  it('a refused save keeps its clear error for the caller, shows in status naming decisions.json, and clears when a save works again', async () => {
    const health = new StorageHealth(10);
    const state = path.join(dir, 'state');
    mkdirSync(state);
    const { store } = await DecisionsStore.open(state);
    const port = reportDecisionWrites(store, health);
    // The directory goes away under the store: every save fails until it is back.
    rmSync(state, { recursive: true });
    writeFileSync(state, 'in the way');
    await expect(port.update((d) => void (d.seen['/usr/bin/x'] = { sha256: 'a', since: 'now' }))).rejects.toThrow(/^cannot save your rule: .*; nothing was changed$/);
    expect(health.problems()).toEqual([expect.stringMatching(new RegExp(`^cannot write the ${DECISIONS_KEY} \\(${state}/decisions\\.json\\): the state directory .* cannot be written \\(ENOTDIR`))]);
    expect(port.current.seen['/usr/bin/x']).toBeUndefined(); // nothing changed
    const cleared = changed(health);
    rmSync(state);
    mkdirSync(state);
    expect(await cleared).toEqual([]); // the probe saved the unchanged decisions
    expect(JSON.parse(readFileSync(path.join(state, 'decisions.json'), 'utf8')).seen).toEqual({});
    health.close();
  });
});
