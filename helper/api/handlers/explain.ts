// `explain`: the subject (a live process through the /proc port, or a path for a user) is
// gathered here; the verdict and its reasons are the pure helper/policy/explain.ts.
import fsSync, { promises as fs } from 'node:fs';
import type { Caller, ExplainParams, ExplainResult } from '../../../common/api.js';
import { ErrorCode } from '../../../common/api.js';
import { normalRuleKey } from '../../../common/format.js';
import type { EffectiveRule, Policy } from '../../../common/policy.js';
import type { ProcPort } from '../../core/ports.js';
import type { UserRules } from '../../core/user-rules.js';
import { needsHash } from '../../policy/decide.js';
import type { ProcessIdentity, Verdict } from '../../policy/decide.js';
import { explain, explainRule } from '../../policy/explain.js';
import { ancestry, pathWritableByNonRoot } from '../../identity/writable.js';
import { requireOwn } from '../authorization.js';
import { ApiError } from '../../../common/errors.js';
import type { Handlers } from '../server.js';
import { pathIdentity } from './path-identity.js';
import type { PathFactsDeps } from './path-identity.js';

/** What explain reads: the policy, the gate's view of a process, /proc, the user decisions. */
export interface ExplainDeps {
  current: () => Policy | undefined;
  gate: { verdictFor(policy: Policy, pid: number): Promise<Verdict>; ruleOf(pid: number): Promise<string | undefined> };
  procs: Pick<ProcPort, 'process' | 'sha256'>;
  rules: Pick<UserRules, 'findDeny' | 'views'>;
  /** The package check for a path (default: dpkg's lists and md5sums). */
  packages?: PathFactsDeps['packages'];
}

interface Subject {
  id: ProcessIdentity;
  verdict?: Verdict;
  admittedUnder?: string;
  notes: string[];
}

/**
 * Why /proc/PID could not be read, told apart: no such process (ENOENT, ESRCH: NotFound);
 * a process without an executable (a kernel thread: /proc/PID exists, its exe link does
 * not); anything else (EACCES under hidepid, …): Internal with the errno, never "no process".
 */
export function processError(pid: number, e: NodeJS.ErrnoException, exists = () => fsSync.existsSync(`/proc/${pid}`)): Error {
  if (e.code === 'ENOENT' || e.code === 'ESRCH') {
    return exists()
      ? ApiError(ErrorCode.NotFound, `process ${pid} has no program to explain (a kernel thread, or it is exiting): the gate decides by a process's executable`)
      : ApiError(ErrorCode.NotFound, `no process ${pid}`);
  }
  return ApiError(ErrorCode.Internal, `cannot read process ${pid}: ${e.code ?? e.message}`);
}

/** A live process: its identity from /proc (the caller's own, or any for admins). */
async function processSubject(d: ExplainDeps, policy: Policy, caller: Caller, pid: number): Promise<Subject> {
  const proc = await d.procs.process(pid).catch((e: NodeJS.ErrnoException) => {
    throw processError(pid, e);
  });
  requireOwn(caller, proc.uid, 'explain processes');
  const id: ProcessIdentity = { exe: proc.exe, exeDeleted: proc.exeDeleted, uid: proc.uid };
  if (needsHash(policy, proc.exe)) id.sha256 = await d.procs.sha256(`/proc/${pid}/exe`).catch(() => undefined);
  const verdict = await d.gate.verdictFor(policy, pid).catch(() => undefined);
  const admittedUnder = await d.gate.ruleOf(pid);
  return { id, ...(verdict ? { verdict } : {}), ...(admittedUnder ? { admittedUnder } : {}), notes: [] };
}

/**
 * Notes for `explain FILE` where FILE is the script of interpreter rules (`{path: python3,
 * script: FILE}`): a script is never a process's program (the kernel reports the
 * interpreter, also for a `#!` script run directly), so the path's own verdict is not the
 * script's; these say which rule would admit (or refuse) it when run by which interpreter,
 * and why that would fail where the script is writable by a non-root user. Pure.
 * @param shebang the interpreter named on FILE's `#!` line, if any
 * @param unsafe why FILE cannot be trusted as a script (identity/writable.ts), if it cannot
 */
export function scriptNotes(policy: Policy, file: string, shebang?: string, unsafe?: string): string[] {
  const rules = policy.rules.filter((r) => r.binary?.script === file && r.binary.path !== undefined);
  if (!rules.length) return [];
  const notes = rules.map((r) => {
    const interp = r.binary?.path ?? '?';
    const what = r.action === 'allow' ? 'admits' : 'refuses';
    return `${file} is a script: rule ${r.key} ${what} it when run by ${interp} (\`${interp.replace(/\*$/, '…')} ${file}\`, with no option that runs other code); explain the interpreter's process (explain PID) for a running one`;
  });
  if (shebang) notes.push(`run directly, ${file} runs as ${shebang} (its #! line): the gate judges that process as ${shebang} with this script`);
  if (unsafe && rules.some((r) => r.action === 'allow')) notes.push(`but the rule would not admit it now: ${unsafe} (a script rule needs a script no non-root user can change)`);
  return notes;
}

/** The interpreter on FILE's `#!` line (the first word after it), if it has one. */
async function shebangOf(file: string): Promise<string | undefined> {
  const fh = await fs.open(file, 'r').catch(() => undefined);
  if (!fh) return undefined;
  try {
    const buf = Buffer.alloc(256);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const m = /^#!\s*(\S+)/.exec(buf.subarray(0, bytesRead).toString('utf8'));
    return m?.[1];
  } finally {
    await fh.close();
  }
}

/** Why a script file cannot be trusted (it or a directory above it writable by a non-root user), or undefined. */
async function scriptUnsafeOf(file: string): Promise<string | undefined> {
  const paths = ancestry(file);
  const stats = await Promise.all(paths.map((p) => fs.stat(p).catch(() => undefined)));
  if (stats.some((st) => st === undefined)) return `${file} cannot be examined`;
  return pathWritableByNonRoot(stats as NonNullable<(typeof stats)[number]>[], paths);
}

/** A binary by path for a user: what a process of it would get (the gate's facts, read from the file). */
async function pathSubject(d: ExplainDeps, policy: Policy, caller: Caller, file: string, uid: number): Promise<Subject> {
  requireOwn(caller, uid, 'explain rules');
  const notes: string[] = [];
  const st = await fs.lstat(file).catch(() => undefined);
  if (st?.isSymbolicLink()) {
    notes.push(`${file} is a symbolic link to ${await fs.realpath(file).catch(() => '?')}: processes run as the target, and rules must name it`);
  } else if (!st) {
    notes.push(`${file} does not exist`);
  }
  const facts = await pathIdentity(policy, file, st, uid, caller, { sha256: (f) => d.procs.sha256(f), ...(d.packages ? { packages: d.packages } : {}) });
  if (st?.isFile() && policy.rules.some((r) => r.binary?.script === file)) {
    notes.push(...scriptNotes(policy, file, await shebangOf(file), await scriptUnsafeOf(file)));
  }
  return { id: facts.id, notes: [...notes, ...facts.notes] };
}

/** A rule of the whitelist by key (or a profile rule's id): the caller's own user rules, every IT rule; admins all. */
export function findRule(policy: Policy, caller: Caller, key: string): EffectiveRule {
  const k = normalRuleKey(key);
  const r = policy.rules.find((x) => x.key === k) ?? policy.rules.find((x) => x.source.kind === 'profile' && x.id === k);
  if (!r || (r.source.kind === 'user' && r.source.uid !== caller.uid && !caller.admin)) throw ApiError(ErrorCode.NotFound, `no rule ${key} in force`);
  return r;
}

/** The explain handler. Throws ApiError InvalidParams (not exactly one of pid, path and rule), NotFound, Forbidden, Internal (no policy yet). */
export function explainHandlers(d: ExplainDeps): Pick<Handlers, 'explain'> {
  return {
    async explain(caller, p: ExplainParams): Promise<ExplainResult> {
      const subjects = [p.pid, p.path, p.rule].filter((x) => x !== undefined).length;
      if (subjects !== 1) throw ApiError(ErrorCode.InvalidParams, 'explain needs exactly one of a PID, a PATH and a rule');
      const policy = d.current();
      if (!policy) throw ApiError(ErrorCode.Internal, 'the helper has no policy in force yet');
      if (p.rule !== undefined) {
        if (p.uid !== undefined || p.dst !== undefined) throw ApiError(ErrorCode.InvalidParams, 'a rule is explained on its own: no uid, no destination');
        return explainRule(policy, findRule(policy, caller, p.rule), caller.uid);
      }
      if (p.pid !== undefined && p.uid !== undefined) throw ApiError(ErrorCode.InvalidParams, 'uid goes with a path; a process has its own');
      const s = p.pid !== undefined ? await processSubject(d, policy, caller, p.pid) : await pathSubject(d, policy, caller, p.path as string, p.uid ?? caller.uid);
      const { id } = s;
      const userDeny = p.dst
        ? d.rules.findDeny(id.uid, id.exe, { addr: p.dst.addr, ...(p.dst.port !== undefined ? { port: p.dst.port } : {}), proto: p.dst.proto ?? 'tcp' })
        : d.rules.views(id.uid).find((v) => v.kind === 'deny' && v.path === id.exe && !v.destinations);
      if (userDeny) s.notes.push(`deny-always decision ${userDeny.id} of uid ${id.uid}: its attempts are not asked about`);
      return explain({
        policy,
        id,
        ...(p.pid !== undefined ? { pid: p.pid } : {}),
        ...(p.dst ? { dst: p.dst } : {}),
        ...(s.verdict ? { verdict: s.verdict } : {}),
        ...(userDeny ? { userDeny } : {}),
        ...(s.admittedUnder ? { admittedUnder: s.admittedUnder } : {}),
        notes: s.notes,
      });
    },
  };
}
