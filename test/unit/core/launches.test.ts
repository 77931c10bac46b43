// The `tunnelgate run` protocol (helper/core/launches.ts) over a fake /proc port and gate:
// who may launch what, and what confirm checks against what the kernel runs.
import { describe, expect, it } from 'vitest';
import type { Caller } from '../../../common/api.js';
import { ErrorCode } from '../../../common/api.js';
import type { Policy } from '../../../common/policy.js';
import type { ProcInfo } from '../../../helper/kernel/proc.js';
import { Launches } from '../../../helper/core/launches.js';
import type { LaunchGate } from '../../../helper/core/launches.js';
import type { ProcPort } from '../../../helper/core/ports.js';
import { decide } from '../../../helper/policy/decide.js';
import type { GateEvent } from '../../../common/events.js';
import { policyOf, profile } from '../policy/fixtures.js';

const SSH = '/usr/bin/ssh';
const ALICE: Caller = { pid: 500, uid: 1000, gid: 1000, admin: false };

function world(policy: Policy | undefined) {
  const procs = new Map<number, ProcInfo>();
  const cmdlines = new Map<number, string[]>();
  const port: ProcPort = {
    process: async (pid) => {
      const p = procs.get(pid);
      if (!p) throw new Error('ENOENT');
      return p;
    },
    exe: async (pid) => ({ exe: procs.get(pid)?.exe ?? '?', deleted: false }),
    cmdline: async (pid) => cmdlines.get(pid) ?? [],
    startTime: async (pid) => procs.get(pid)?.startTime,
    cgroup: async () => '',
    identity: async (pid) => ({ exe: procs.get(pid)?.exe ?? '?', exeDeleted: false, uid: procs.get(pid)?.uid ?? -1 }),
    sha256: async () => 'x',
  };
  const admitted: Array<[number, string]> = [];
  const gate: LaunchGate = {
    current: policy,
    verdictFor: async (p, pid) => decide(p, await port.identity(pid, p)),
    admit: async (pid, key) => void admitted.push([pid, key]),
  };
  const events: GateEvent[] = [];
  const launches = new Launches({ gate, procs: port, events: { emit: (e) => events.push(e) } });
  const stub = (pid: number, over: Partial<ProcInfo> = {}) => {
    procs.set(pid, { pid, ppid: ALICE.pid, uid: ALICE.uid, euid: ALICE.uid, startTime: '77', exe: '/usr/bin/node', exeDeleted: false, ...over });
    cmdlines.set(pid, ['node', 'stub']);
  };
  const exec = (pid: number, exe: string) => {
    const p = procs.get(pid) as ProcInfo;
    procs.set(pid, { ...p, exe });
    cmdlines.set(pid, [exe]);
  };
  return { launches, stub, exec, admitted, events };
}

const allowSsh = () => policyOf([profile({ rules: [{ id: 'ssh', binary: { path: SSH } }] })]);
const code = (p: Promise<unknown>) => p.then(() => 'resolved', (e: { code?: number }) => e.code);

describe('Launches', () => {
  it('begin then confirm admits the caller\'s child into the rule of the program it execs', async () => {
    const w = world(allowSsh());
    w.stub(901);
    const { launchId, rule } = await w.launches.begin(ALICE, { pid: 901, path: SSH });
    w.exec(901, SSH);
    expect(await w.launches.confirm(ALICE, launchId)).toEqual({ rule, exe: SSH });
    expect(w.admitted).toEqual([[901, rule]]);
    expect(w.events.map((e) => e.type)).toEqual(['launch.admitted']);
  });

  it('refuses a path no rule allows, another user\'s process, and a process that is not the caller\'s child', async () => {
    const w = world(allowSsh());
    w.stub(902);
    expect(await code(w.launches.begin(ALICE, { pid: 902, path: '/usr/bin/curl' }))).toBe(ErrorCode.NotAllowed);
    w.stub(903, { uid: 1001, euid: 1001 });
    expect(await code(w.launches.begin(ALICE, { pid: 903, path: SSH }))).toBe(ErrorCode.Forbidden);
    w.stub(904, { ppid: 1 });
    expect(await code(w.launches.begin(ALICE, { pid: 904, path: SSH }))).toBe(ErrorCode.Forbidden);
    expect(await code(w.launches.begin(ALICE, { pid: 999, path: SSH }))).toBe(ErrorCode.NotFound);
    expect(w.events.map((e) => e.type)).toEqual(['launch.refused']);
  });

  it('a stub that execs another program than it asked for is not admitted', async () => {
    const w = world(allowSsh());
    w.stub(905);
    const { launchId } = await w.launches.begin(ALICE, { pid: 905, path: SSH });
    w.exec(905, '/usr/bin/curl');
    expect(await code(w.launches.confirm(ALICE, launchId))).toBe(ErrorCode.NotAllowed);
    expect(w.admitted).toEqual([]);
    expect(await code(w.launches.confirm(ALICE, launchId))).toBe(ErrorCode.NotFound);
  });

  it('no policy yet: Internal', async () => {
    const w = world(undefined);
    w.stub(906);
    expect(await code(w.launches.begin(ALICE, { pid: 906, path: SSH }))).toBe(ErrorCode.Internal);
  });
});
