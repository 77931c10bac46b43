// `status` with the helper down says whether the gate's table is still in the kernel.
import { describe, expect, it } from 'vitest';
import { downStatus, probeTable } from '../../../helper/cli/status-down.js';
import type { Runner } from '../../../helper/kernel/run.js';

const runner = (exitCode: number, stderr = ''): Runner & { calls: string[][] } => {
  const calls: string[][] = [];
  const f = (async (file: string, args: readonly string[]) => {
    calls.push([file, ...args]);
    return { stdout: '', stderr, exitCode };
  }) as Runner & { calls: string[][] };
  f.calls = calls;
  return f;
};

describe('probeTable', () => {
  it('root: nft lists the table (in force) or finds none (absent)', async () => {
    const there = runner(0);
    expect(await probeTable(there, 0)).toEqual({ state: 'in-force' });
    expect(there.calls).toEqual([['nft', '-t', 'list', 'table', 'inet', 'tunnelgate']]);
    expect(await probeTable(runner(1, 'Error: No such file or directory\nlist table inet tunnelgate\n'), 0)).toEqual({ state: 'absent' });
  });

  it('not root: cannot tell, and nft is not even asked', async () => {
    const r = runner(0);
    expect(await probeTable(r, 1000)).toMatchObject({ state: 'unknown', why: expect.stringMatching(/needs root/) });
    expect(r.calls).toEqual([]);
  });

  it('nft fails otherwise, or cannot run: unknown with the reason, never absent', async () => {
    expect(await probeTable(runner(1, 'Error: Operation not permitted\n'), 0)).toEqual({ state: 'unknown', why: 'nft could not list the table: Error: Operation not permitted' });
    const missing: Runner = async () => {
      throw new Error('spawn nft ENOENT');
    };
    expect(await probeTable(missing, 0)).toEqual({ state: 'unknown', why: 'nft cannot run: spawn nft ENOENT' });
  });
});

describe('downStatus', () => {
  it('the table in force: fail-closed, restart the helper', () => {
    const d = downStatus('cannot reach the helper', { state: 'in-force' });
    expect(d.value).toEqual({ state: 'down', table: 'in-force', problems: ['cannot reach the helper', "helper down; the gate's table is still in force (fail-closed): restart the helper"] });
    expect(d.text).toMatch(/^gate: {7}down\ntable: {6}inet tunnelgate in force \(fail-closed\)\n/);
  });

  it('no table: not gated; unknown: says why', () => {
    expect(downStatus('x', { state: 'absent' }).value).toMatchObject({ table: 'absent', problems: ['x', 'helper down, and no table: the tunnel is not gated'] });
    expect(downStatus('x', { state: 'unknown', why: 'reading nftables needs root' }).text).toContain("cannot tell whether the gate's table is still in force: reading nftables needs root");
  });
});
