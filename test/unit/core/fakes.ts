// Test doubles for the prompt manager and user rules: a clock driven by the test, and small
// in-memory stand-ins for the gate and /proc.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { StatusReport } from '../../../common/api.js';
import type { Policy } from '../../../common/policy.js';
import type { DeniedAttempt } from '../../../common/attempts.js';
import { decide } from '../../../helper/policy/decide.js';
import type { Clock } from '../../../helper/core/clock.js';
import type { StoredProcess } from '../../../helper/store/decisions.js';
import type { ProcessPort } from '../../../helper/core/ports.js';
import type { UserApiGate } from '../../../helper/startup.js';
import type { StatusSnapshot } from '../../../helper/core/status.js';
import { policyOf, profile } from '../policy/fixtures.js';

export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = Date.parse('2026-11-22T10:00:00Z')) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }

  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }

  /** Move time on, running each timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (let next = takeDue(this.timers, end); next; next = takeDue(this.timers, end)) {
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }

  get pending(): number {
    return this.timers.size;
  }
}

/** Let queued promise callbacks (and a few rounds of their own) run. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

export interface FakeProc {
  uid: number;
  exe: string;
  startTime: string;
}

/** A process table for the gate and ProcessPort doubles. */
export class FakeProcs implements ProcessPort {
  readonly table = new Map<number, FakeProc>();

  add(pid: number, uid: number, exe: string, startTime = String(1000 + pid)): this {
    this.table.set(pid, { uid, exe, startTime });
    return this;
  }

  kill(pid: number): void {
    this.table.delete(pid);
  }

  async find(uid: number, exe: string): Promise<StoredProcess[]> {
    return [...this.table].filter(([, p]) => p.uid === uid && p.exe === exe).map(([pid, p]) => ({ pid, startTime: p.startTime }));
  }

  async alive(p: StoredProcess): Promise<boolean> {
    return this.table.get(p.pid)?.startTime === p.startTime;
  }

  async startTime(pid: number): Promise<string | undefined> {
    return this.table.get(pid)?.startTime;
  }

  async hasProcesses(uid: number): Promise<boolean> {
    return [...this.table.values()].some((p) => p.uid === uid);
  }
}

export class FakeGate implements UserApiGate {
  current: Policy | undefined;
  /** pid -> rule key it is admitted under. */
  readonly admittedPids = new Map<number, string>();

  constructor(readonly procs: FakeProcs) {}

  /** pid -> the last rule it was admitted under, also after it exited (Gate.recentAdmission). */
  readonly recent = new Map<number, string>();

  async admit(pid: number, ruleKey: string): Promise<void> {
    if (!this.current?.rules.some((r) => r.key === ruleKey)) throw new Error(`rule ${ruleKey} has no cgroup`);
    this.admittedPids.set(pid, ruleKey);
    this.recent.set(pid, ruleKey);
  }

  recentAdmission(pid: number): string | undefined {
    return this.recent.get(pid);
  }

  async verdictFor(policy: Policy, pid: number) {
    const p = this.procs.table.get(pid);
    if (!p) throw new Error(`no process ${pid}`);
    return decide(policy, { exe: p.exe, exeDeleted: false, uid: p.uid, sha256: shaOf(p.exe) });
  }

  async ruleOf(pid: number): Promise<string | undefined> {
    return this.admittedPids.get(pid);
  }

  async admitted(): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    for (const [pid, key] of this.admittedPids) out.set(key, [...(out.get(key) ?? []), pid]);
    return out;
  }

  /** After a policy change: processes whose rule is gone lose it (as Gate.setPolicy does). */
  retire(): void {
    for (const [pid, key] of [...this.admittedPids]) if (!this.current?.rules.some((r) => r.key === key)) this.admittedPids.delete(pid);
  }

  async status(): Promise<StatusReport> {
    return {
      state: 'enforcing',
      mode: 'enforce',
      mechanism: 'net_cls',
      cgroupDir: '/sys/fs/cgroup/net_cls/test',
      interfaces: [],
      ruleCount: this.current?.rules.length ?? 0,
      admittedProcesses: this.admittedPids.size,
      dropped: { packets: 0, bytes: 0 },
      sources: [],
      problems: [],
      helper: { pid: 1, version: 'test', startedAt: '2026-11-22T10:00:00.000Z' },
    };
  }
}

/** sha256 of a binary: of the file where it exists, else a stand-in stable per path. */
export function shaOf(exe: string): string {
  if (existsSync(exe)) return createHash('sha256').update(readFileSync(exe)).digest('hex');
  let h = 0;
  for (const c of exe) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h.toString(16).padStart(8, '0').repeat(8);
}

export function attempt(over: Partial<DeniedAttempt> = {}): DeniedAttempt {
  return {
    time: '2026-11-22T10:00:00.000Z',
    uid: 1000,
    pid: 4242,
    exe: '/usr/bin/wget',
    dst: { addr: '198.18.0.2', port: 443, proto: 'tcp' },
    iface: 'wg0',
    mode: 'enforce',
    ...over,
  };
}

/** The earliest timer due at or before `end`, removed from `timers`; undefined when none is. */
export function takeDue(timers: Map<number, { at: number; fn: () => void }>, end: number): { at: number; fn: () => void } | undefined {
  const due = [...timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
  if (!due) return undefined;
  timers.delete(due[0]);
  return due[1];
}

/** The snapshot of a healthy helper gating wg0 with one ssh rule (helper/core/status.ts); `over` replaces fields. */
export const statusSnapshot = (over: Partial<StatusSnapshot> = {}): StatusSnapshot => ({
  policy: policyOf([profile({ interfaces: ['wg0'], rules: [{ id: 'ssh', binary: { path: '/usr/bin/ssh' } }] })]),
  presentInterfaces: ['lo', 'wg0'],
  applyProblem: undefined,
  tableThere: true,
  hasTracer: true,
  cgroupDir: '/sys/fs/cgroup/net_cls/tunnelgate',
  admittedProcesses: 0,
  dropped: { packets: 0, bytes: 0 },
  helper: { pid: 42, version: '0.1.0', startedAt: new Date('2026-11-22T10:00:00Z') },
  ...over,
});
