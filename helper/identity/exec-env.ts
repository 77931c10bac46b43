// The environment an exec'ing program is given, as each of its readers will see it. Pure.
//
// An envp may name a variable more than once (execve(2) copies the array as it is; the
// kernel neither sorts nor de-duplicates). Who reads which occurrence, measured with
// Debian 12's glibc 2.36 (test/integration/exec-hold.test.ts, "duplicate variables"):
// - ld.so walks envp from the start and keeps overwriting: LD_PRELOAD and LD_LIBRARY_PATH
//   take the LAST occurrence. LD_AUDIT is accumulated: EVERY occurrence is loaded.
// - getenv(3) (and so most programs and interpreters written in C) returns the FIRST.
// - dash (Debian's /bin/sh) imports them in order, a later one replacing an earlier one:
//   the LAST.
// So no single occurrence is "the" value: a check of the environment must look at every
// occurrence of each refused variable (refusedInExec), never at a Map that kept one.
import { INTERPRETER_ENV, LOADER_ENV } from '../../common/profile.js';
import type { RefusedEnv } from '../../common/profile.js';

/** Every value of every variable in envp, in envp order. Entries without '=' are ignored. */
export function envOccurrences(envp: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const entry of envp) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const name = entry.slice(0, eq);
    const list = out.get(name);
    if (list) list.push(entry.slice(eq + 1));
    else out.set(name, [entry.slice(eq + 1)]);
  }
  return out;
}

/** What glibc's ld.so uses of a loader variable: LD_AUDIT all occurrences, the others the last. */
export function loaderValues(occurrences: ReadonlyMap<string, readonly string[]>, name: 'LD_PRELOAD' | 'LD_LIBRARY_PATH' | 'LD_AUDIT'): string[] {
  const all = occurrences.get(name) ?? [];
  if (name === 'LD_AUDIT') return [...all];
  const last = all[all.length - 1];
  return last === undefined ? [] : [last];
}

/**
 * Variables whose consumer treats an empty value as unset, so an empty occurrence loads
 * nothing: ld.so skips an empty LD_PRELOAD / LD_LIBRARY_PATH / LD_AUDIT (elf/rtld.c,
 * `*llp != '\0'`), CPython reads an empty variable as unset (_Py_GetEnv), node skips an
 * empty NODE_OPTIONS and drops empty NODE_PATH entries. For every other refused variable
 * an empty value still counts (an empty SHELLOPTS, TZDIR or NLSPATH is still read).
 */
const EMPTY_IS_UNSET: ReadonlySet<string> = new Set([
  'LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT', 'NODE_OPTIONS', 'NODE_PATH',
  ...INTERPRETER_ENV.filter((n) => n.startsWith('PYTHON')),
]);

/**
 * The refused variables (common/profile.ts: LOADER_ENV, glibc's set-id list; INTERPRETER_ENV)
 * present in ANY occurrence (see the header: the loader, getenv and the shell disagree on
 * which occurrence counts), with any value, except an empty one where the consumer treats
 * empty as unset (EMPTY_IS_UNSET). Loader ones always, interpreter ones too when asked.
 * `envp` is the exec's envp, or /proc/PID/environ split at NUL.
 */
export function refusedInExec(envp: readonly string[], withInterpreter = true): RefusedEnv[] {
  const occ = envOccurrences(envp);
  const names: readonly RefusedEnv[] = withInterpreter ? [...LOADER_ENV, ...INTERPRETER_ENV] : LOADER_ENV;
  return names.filter((n) => (occ.get(n) ?? []).some((v) => v !== '' || !EMPTY_IS_UNSET.has(n)));
}

/** refusedInExec of a NUL-separated environ block (/proc/PID/environ). */
export function refusedInEnviron(raw: string | Buffer, withInterpreter = true): RefusedEnv[] {
  const text = typeof raw === 'string' ? raw : raw.toString('latin1');
  return refusedInExec(text.split('\0'), withInterpreter);
}
