// Admission at exec time (issue 10, part 1): the kernel holds each exec of an allowed
// binary (fanotify FAN_OPEN_EXEC_PERM, helper/kernel/fanotify.ts) while the helper decides
// on the exact exec and moves the process into its rule's cgroup; then the exec goes on,
// and the program's first packet already carries the rule's classid.
//
// Rules of this path:
// - It only ever ALLOWS the exec, and answers in every case (finally): a refusal, an error,
//   a process it cannot judge all end in allow() without admission, and the watcher
//   (helper/admission/watcher.ts) then decides after the exec as before (check-after-exec is the
//   fallback, and the only path that reports refusals, so nothing is said twice).
// - Identity comes from the event, never from /proc/PID/exe (which still names the OLD
//   program during the hold): exe = the file the kernel opened, its dev:ino checked against
//   the helper's view of the path, the hash of that inode, the NEW envp (every occurrence,
//   helper/identity/exec-env.ts), TracerPid, uid.
// - Not admitted here: a process with more than one thread (its other threads run during
//   the hold and would be admitted as the new program: the watcher admits it after the
//   exec), an unreadable or cut argv/envp, rules that need more than the file (scripts,
//   Flatpak, Snap, AppImage: the watcher), a process outside the helper's network namespace.
// - After the exec, the watcher's look at the exec event re-decides from the new image; a
//   held exec that then FAILED (execve returned an error) leaves the old program in the
//   rule cgroup: each admitted pid waits for its exec event, and a pid whose exe is not the
//   admitted inode when it is checked (exec event, or a short grace period) is released.
// - Marks follow the policy (marksOf): exact paths, the directory of a `dir/*` glob
//   (children mark), every executable file of a `package` rule's package, the interpreter
//   of a script rule; re-marked after every policy change and every overflow (refresh).
import { promises as fs, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import type { Policy } from '../../common/policy.js';
import type { HeldExec, MarkedFile } from '../kernel/fanotify.js';
import type { HashCache } from '../kernel/proc.js';
import { parseStat } from '../kernel/proc.js';
import { ruleKeyOf } from '../kernel/netcls.js';
import { refusedInExec } from '../identity/exec-env.js';
import { md5Of, verifiedPackages } from '../identity/package.js';
import { ancestry, pathWritableByNonRoot } from '../identity/writable.js';
import type { ProcessIdentity } from '../policy/decide.js';
import { candidateRules, decide, needsHash, packagesNamed } from '../policy/decide.js';
import { inForce } from '../policy/expiry.js';
import type { EventSink } from '../core/event-bus.js';
import type { WatcherGate } from './watcher.js';

/** What this module needs of helper/kernel/fanotify.ts ExecHold. */
export interface ExecHoldPort {
  onExec(cb: (e: HeldExec) => void): () => void;
  onOverflow(cb: () => void): () => void;
  onExpired(cb: (e: { id: number; tid: number }) => void): () => void;
  allow(id: number): boolean;
  mark(file: string, opts?: { children?: boolean }): MarkedFile;
  unmark(file: string): void;
  marked(): MarkedFile[];
  refresh(): void;
  close(): void;
}

export interface ExecAdmissionDeps {
  hold: ExecHoldPort;
  gate: WatcherGate;
  events: EventSink;
  hashes: HashCache;
  /** Executable files of a package (default: dpkg's file list). */
  packageFiles?: (pkg: string) => Promise<string[]>;
  selfPid?: number;
  log?: (line: string) => void;
  /** Every exec admitted at the hold (bench, tests). */
  onAdmitted?: (pid: number, rule: string) => void;
}

/** The marks a policy asks for (pure): files, and directories whose children are covered. */
export function marksOf(policy: Policy): { files: string[]; dirs: string[]; packages: string[] } {
  const files = new Set<string>();
  const dirs = new Set<string>();
  for (const r of policy.rules) {
    const b = r.binary;
    if (r.kernel || !b || r.action !== 'allow' || b.path === undefined) continue;
    if (!b.path.endsWith('*')) files.add(b.path);
    else {
      const prefix = b.path.slice(0, -1);
      dirs.add(prefix.endsWith('/') ? prefix.replace(/\/+$/, '') || '/' : path.dirname(prefix));
    }
  }
  return { files: [...files], dirs: [...dirs], packages: packagesNamed(policy) };
}

/** Executable regular files dpkg lists for a package (any architecture qualifier). */
async function dpkgExecutables(pkg: string): Promise<string[]> {
  const dir = '/var/lib/dpkg/info';
  const lists = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => n === `${pkg}.list` || (n.startsWith(`${pkg}:`) && n.endsWith('.list')));
  const out: string[] = [];
  for (const l of lists) {
    const text = await fs.readFile(path.join(dir, l), 'utf8').catch(() => '');
    for (const f of text.split('\n')) {
      if (!f.startsWith('/')) continue;
      const st = await fs.lstat(f).catch(() => undefined);
      if (st?.isFile() && (st.mode & 0o111) !== 0) out.push(f);
    }
  }
  return out;
}

const SPECIAL = (p: Policy, exe: string) =>
  candidateRules(p, exe).some((r) => r.binary?.script !== undefined || r.binary?.flatpak !== undefined || r.binary?.snap !== undefined || r.binary?.appimage !== undefined);

export class ExecAdmission {
  private readonly unsubscribe: Array<() => void> = [];
  /** Admitted at the hold, waiting for their exec to be seen: pid → the admitted inode. */
  private readonly pending = new Map<number, { dev: bigint; ino: bigint; rule: string; timer: NodeJS.Timeout }>();
  private readonly ownNetns = readlinkSync('/proc/self/ns/net');
  private readonly selfPid: number;
  private remarking: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Execs admitted at the hold / let go without admission (status, bench). */
  readonly counts = { admitted: 0, passed: 0 };

  constructor(private readonly deps: ExecAdmissionDeps) {
    this.selfPid = deps.selfPid ?? process.pid;
  }

  /** Subscribe to held execs, policy changes and overflows; mark the current policy's binaries. */
  async start(): Promise<void> {
    const { hold, gate } = this.deps;
    this.unsubscribe.push(hold.onExec((e) => void this.onExec(e)));
    this.unsubscribe.push(hold.onOverflow(() => void this.remark()));
    this.unsubscribe.push(hold.onExpired((e) => this.deps.log?.(`exec hold: the exec of task ${e.tid} went on unanswered at the deadline`)));
    this.unsubscribe.push(gate.onPolicyChange(() => void this.remark()));
    await this.remark();
  }

  stop(): void {
    this.stopped = true;
    for (const u of this.unsubscribe.splice(0)) u();
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }

  /** The exec event of `pid` (proc connector): its held exec went through; check it ran what was admitted. */
  execSeen(pid: number): void {
    const p = this.pending.get(pid);
    if (p) void this.verify(pid);
  }

  /** Bring the marks in line with the policy in force (serialised). */
  remark(): Promise<void> {
    const run = async () => {
      const policy = this.deps.gate.current;
      if (!policy || this.stopped) return;
      const want = marksOf(policy);
      const files = new Set(want.files);
      for (const pkg of want.packages) for (const f of await (this.deps.packageFiles ?? dpkgExecutables)(pkg)) files.add(f);
      const wanted = new Map<string, boolean>([...[...files].map((f) => [f, false] as const), ...want.dirs.map((d) => [d, true] as const)]);
      for (const m of this.deps.hold.marked()) if (wanted.get(m.path) !== m.children) this.deps.hold.unmark(m.path);
      for (const [file, children] of wanted) {
        try {
          this.deps.hold.mark(file, { children });
        } catch (e) {
          this.deps.log?.(`exec hold: cannot mark ${file}: ${(e as Error).message}`);
        }
      }
      this.deps.hold.refresh();
    };
    this.remarking = this.remarking.then(run, run);
    return this.remarking;
  }

  /** One held exec: decide, admit if allowed, and always let it go on. */
  private async onExec(e: HeldExec): Promise<void> {
    let admitted: string | undefined;
    try {
      admitted = await this.admitHeld(e);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ESRCH') this.deps.log?.(`exec hold: process ${e.pid}: ${(err as Error).message}`);
    } finally {
      this.deps.hold.allow(e.id);
    }
    if (admitted === undefined) this.counts.passed++;
    else {
      this.counts.admitted++;
      // The exec may still fail: the exec event (or the grace period) verifies it.
      const timer = setTimeout(() => void this.verify(e.pid), 1_000);
      timer.unref();
      this.pending.set(e.pid, { dev: e.dev, ino: e.ino, rule: admitted, timer });
    }
  }

  /** The rule key the held exec was admitted under, or undefined (left to the watcher). */
  private async admitHeld(e: HeldExec): Promise<string | undefined> {
    const full = this.deps.gate.current;
    if (!full || this.stopped || e.pid <= 0 || e.pid === this.selfPid) return undefined;
    if (e.threads !== 1 || e.argv === undefined || e.envp === undefined || e.truncated) return undefined;
    if (readlinkSync(`/proc/${e.pid}/ns/net`) !== this.ownNetns) return undefined;
    const policy = inForce(full, Date.now());
    if (!candidateRules(policy, e.path).length || SPECIAL(policy, e.path)) return undefined;
    const id = await this.identityOf(e, policy);
    if (!id) return undefined;
    const verdict = decide(policy, id);
    if (!verdict.allow) return undefined; // the watcher reports it after the exec
    const current = ruleKeyOf(readFileSync(`/proc/${e.pid}/cgroup`, 'utf8'), this.deps.gate.cgroupRoot);
    if (current !== verdict.rule.key) await this.deps.gate.admit(e.pid, verdict.rule.key);
    this.deps.events.emit({ type: 'process.admitted', pid: e.pid, uid: id.uid, path: e.path, rule: verdict.rule.key });
    this.deps.onAdmitted?.(e.pid, verdict.rule.key);
    return verdict.rule.key;
  }

  /** What decide() needs, from the event and the file the kernel opened; undefined if the file moved. */
  private async identityOf(e: HeldExec, policy: Policy): Promise<ProcessIdentity | undefined> {
    const [statText, statusText] = await Promise.all([fs.readFile(`/proc/${e.pid}/stat`, 'utf8'), fs.readFile(`/proc/${e.pid}/status`, 'utf8')]);
    const { startTime } = parseStat(statText);
    const tracer = Number(/^TracerPid:\s*(\d+)/m.exec(statusText)?.[1] ?? '0');
    const uid = Number(/^Uid:\s*(\d+)/m.exec(statusText)?.[1] ?? String(e.uid));
    const same = async () => {
      const st = await fs.stat(e.path, { bigint: true }).catch(() => undefined);
      return st !== undefined && st.dev === e.dev && st.ino === e.ino;
    };
    // The path must still name the inode being executed, before and after it is examined.
    if (!(await same())) return undefined;
    const id: ProcessIdentity = { exe: e.path, exeDeleted: false, uid, pid: e.pid, startTime };
    if (tracer !== 0 && tracer !== this.selfPid) id.traced = `it is being traced by process ${tracer}, which can change its code`;
    const env = refusedInExec(e.envp ?? []);
    if (env.length) id.env = env;
    const paths = ancestry(e.path);
    const chain = await Promise.all(paths.map((p) => fs.stat(p)));
    id.exeUnsafe = pathWritableByNonRoot(chain.map((s) => ({ mode: s.mode, uid: s.uid, gid: s.gid })), paths);
    if (needsHash(policy, e.path)) id.sha256 = await this.deps.hashes.sha256(e.path);
    const named = [...new Set(candidateRules(policy, e.path).flatMap((r) => (r.binary?.package !== undefined ? [r.binary.package] : [])))];
    if (named.length) {
      const v = await verifiedPackages(named, e.path, () => md5Of(e.path));
      id.packages = v.packages;
      if (v.notes.length) id.notes = v.notes;
    }
    return (await same()) ? id : undefined;
  }

  /** A process admitted at the hold runs the admitted inode now, or is released. */
  private async verify(pid: number): Promise<void> {
    const p = this.pending.get(pid);
    if (!p) return;
    this.pending.delete(pid);
    clearTimeout(p.timer);
    const st = await fs.stat(`/proc/${pid}/exe`, { bigint: true }).catch(() => undefined);
    if (!st) return; // gone: its cgroup membership went with it
    if (st.dev === p.dev && st.ino === p.ino) return;
    const current = ruleKeyOf(await fs.readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => ''), this.deps.gate.cgroupRoot);
    if (current !== p.rule) return; // moved since by someone who decided again
    await this.deps.gate.releasePid(pid).catch(() => undefined);
    const exe = await fs.readlink(`/proc/${pid}/exe`).catch(() => '(process gone)');
    this.deps.events.emit({ type: 'process.released', pid, path: exe, rule: p.rule, reason: 'its held exec did not run the admitted program (the exec failed)' });
  }
}
