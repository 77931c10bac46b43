// `tunnelgate status` after the helper was killed: the gate's table outlives the helper
// (fail-closed), and status says so from the kernel of the namespace it runs in; a new
// helper numbers its audit entries on from the last one (seq unique across starts).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StatusReport } from '../../common/api.js';
import type { StampedEvent } from '../../common/events.js';
import type { DownStatus } from '../../helper/cli/status-down.js';
import { jsonLines } from '../lab/fixture.js';
import { labAndHelper } from '../lab/suite.js';

const USER = 5000 + Math.floor(Math.random() * 1000);
const fx = labAndHelper({ profiles: ({ profile }) => ({ corp: profile() }) });

const downStatus = async (uid?: number): Promise<{ doc: DownStatus; code: number | undefined; text: string }> => {
  const r = await fx.cli(['status', '--json'], uid === undefined ? {} : { uid });
  const t = await fx.cli(['status'], uid === undefined ? {} : { uid });
  return { doc: JSON.parse(String(r.stdout)) as DownStatus, code: r.exitCode, text: String(t.stdout) };
};
const auditSeqs = () => jsonLines<StampedEvent>(readFileSync(path.join(fx.helper.state, 'audit.log'), 'utf8')).map((e) => e.seq);

describe('status with the helper down reads the kernel', () => {
  it('SIGKILLed helper: the table is still in force (fail-closed); no table: not gated; not root: cannot tell', async () => {
    expect((await fx.status()).state).toBe('enforcing');
    const before = auditSeqs();
    expect(before.length).toBeGreaterThan(0);

    await fx.helper.kill('SIGKILL');
    const killed = await downStatus();
    expect(killed.code).toBe(1);
    expect(killed.doc).toMatchObject({ state: 'down', table: 'in-force' });
    expect(killed.doc.problems).toContain("helper down; the gate's table is still in force (fail-closed): restart the helper");
    expect(killed.text).toMatch(/^gate: {7}down\ntable: {6}inet tunnelgate in force \(fail-closed\)/);
    // The kernel agrees: the table is there in the workstation namespace.
    expect((await fx.lab.exec('ws', 'nft', ['-t', 'list', 'table', 'inet', 'tunnelgate'], { reject: false })).exitCode).toBe(0);

    const user = await downStatus(USER);
    expect(user.doc).toMatchObject({ state: 'down', table: 'unknown' });
    expect(user.doc.problems.join('\n')).toMatch(/cannot tell whether the gate's table is still in force: reading nftables needs root/);

    await fx.lab.exec('ws', 'nft', ['delete', 'table', 'inet', 'tunnelgate']);
    const gone = await downStatus();
    expect(gone.doc).toMatchObject({ state: 'down', table: 'absent' });
    expect(gone.doc.problems).toContain('helper down, and no table: the tunnel is not gated');

    // A new helper on the same state dir: its entries number on from the last one.
    await fx.helper.restart();
    expect((await fx.status()).state).toBe('enforcing');
    const after = auditSeqs();
    const last = Math.max(...before);
    const added = after.slice(before.length);
    expect(added.length).toBeGreaterThan(0);
    expect(added.every((s) => s > last)).toBe(true);
    expect(new Set(after).size).toBe(after.length);
    const started = jsonLines<StampedEvent>(String((await fx.cli(['events', '--json'])).stdout)).filter((e) => e.type === 'helper.started');
    expect(started.at(-1)?.seq).toBeGreaterThan(last);
    expect((await fx.json<StatusReport>(['status'])).state).toBe('enforcing');
  });
});
