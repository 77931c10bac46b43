// The core's view of processes: every /proc read of the gate, the launch protocol and the
// API's explain goes through this port, so unit tests can fake it. The real implementation
// (procPort) is a thin layer over helper/kernel/proc.ts and helper/identity/gather.ts.
import type { Policy } from '../../common/policy.js';
import { gatherIdentity } from '../identity/gather.js';
import type { HashCache, ProcInfo } from '../kernel/proc.js';
import { readCmdline, readExe, readProc, startTimeOf } from '../kernel/proc.js';
import { readFile } from 'node:fs/promises';
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
