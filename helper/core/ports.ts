// The core's view of processes: every /proc read of the gate, the launch protocol and the
// API's explain goes through ProcPort, those of user rules and prompts through ProcessPort, so unit tests can fake it. The real implementation
// (procPort) is a thin layer over helper/kernel/proc.ts and helper/identity/gather.ts.
import type { Policy } from '../../common/policy.js';
import { gatherIdentity } from '../identity/gather.js';
import type { HashCache, ProcInfo } from '../kernel/proc.js';
import { parseStatusUids, readCmdline, readExe, readProc, startTimeOf } from '../kernel/proc.js';
import { promises as fs } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { StoredProcess } from '../store/decisions.js';
import type { ProcessIdentity } from '../policy/decide.js';

/** What the core reads about live processes (the kernel's answer, never the process's claim). */
export interface ProcPort {
  /** stat + status + exe of a process (/proc/PID/…); throws if it is gone or unreadable. */
  process(pid: number): Promise<ProcInfo>;
  /** The target of /proc/PID/exe, " (deleted)" stripped into `deleted`; throws if the process is gone. */
  exe(pid: number): Promise<{ exe: string; deleted: boolean }>;
  /** argv from /proc/PID/cmdline; throws if the process is gone. */
  cmdline(pid: number): Promise<string[]>;
  /** Field 22 of /proc/PID/stat (clock ticks since boot), undefined if the process is gone. */
  startTime(pid: number): Promise<string | undefined>;
  /** The text of /proc/PID/cgroup, '' if the process is gone. */
  cgroup(pid: number): Promise<string>;
  /** The full identity the policy decides on (helper/identity/gather.ts); throws if the process is gone. */
  identity(pid: number, policy: Policy): Promise<ProcessIdentity>;
  /** sha256 (hex) of a file or of /proc/PID/exe, cached by inode; throws if unreadable. */
  sha256(file: string): Promise<string>;
}

/** The real port over /proc. `selfPid` is the helper's own pid (its ptrace hold is not "traced"). */
export function procPort(hashes: HashCache, selfPid: number = process.pid): ProcPort {
  return {
    process: readProc,
    exe: readExe,
    cmdline: readCmdline,
    startTime: startTimeOf,
    cgroup: (pid) => readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => ''),
    identity: async (pid, policy) => (await gatherIdentity(pid, policy, { hashes, selfPid })).identity,
    sha256: (file) => hashes.sha256(file),
  };
}

/** What user rules and prompts need to know about processes of users (from /proc). */
export interface ProcessPort {
  /** Live processes of `uid` whose executable is `exe`. */
  find(uid: number, exe: string): Promise<StoredProcess[]>;
  /** The process still runs (the same one: same start time). */
  alive(p: StoredProcess): Promise<boolean>;
  startTime(pid: number): Promise<string | undefined>;
  /** `uid` has any process at all. */
  hasProcesses(uid: number): Promise<boolean>;
}

/** ProcessPort over /proc: the kernel's view. */
export const procProcesses: ProcessPort = {
  async find(uid, exe) {
    const out: StoredProcess[] = [];
    for (const name of await fs.readdir('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      if ((await fs.readlink(`/proc/${name}/exe`).catch(() => '')) !== exe) continue;
      const pid = Number(name);
      const [owner, startTime] = await Promise.all([
        fs.readFile(`/proc/${pid}/status`, 'utf8').then(parseStatusUids, () => undefined),
        startTimeOf(pid),
      ]);
      if (owner?.uid === uid && startTime !== undefined) out.push({ pid, startTime });
    }
    return out;
  },
  async alive(p) {
    return (await startTimeOf(p.pid)) === p.startTime;
  },
  startTime: startTimeOf,
  async hasProcesses(uid) {
    for (const name of await fs.readdir('/proc')) {
      if (/^\d+$/.test(name) && (await fs.stat(`/proc/${name}`).catch(() => undefined))?.uid === uid) return true;
    }
    return false;
  },
};
