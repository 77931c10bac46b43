// The refused environment variables a process was started with (/proc/PID/environ). Pure.
//
// /proc/PID/environ is the initial environment the kernel copied at exec: what the dynamic
// loader and an interpreter read at start-up. A process can overwrite that memory later,
// but not before its loader ran, so it cannot hide a variable that already took effect.
// A variable set to the empty string is ignored by the loader and by interpreters; it is
// not counted.
import { INTERPRETER_ENV, LOADER_ENV } from '../../common/profile.js';
import type { RefusedEnv } from '../../common/profile.js';

/** NAME=VALUE entries of a NUL-separated environ block; the first of a repeated name wins (as getenv). */
export function parseEnviron(raw: string | Buffer): Map<string, string> {
  const text = typeof raw === 'string' ? raw : raw.toString('latin1');
  const out = new Map<string, string>();
  for (const entry of text.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const name = entry.slice(0, eq);
    if (!out.has(name)) out.set(name, entry.slice(eq + 1));
  }
  return out;
}

/** The refused variables present (non-empty): loader ones always, interpreter ones too when asked. */
export function refusedEnv(env: ReadonlyMap<string, string>, withInterpreter = true): RefusedEnv[] {
  const names: readonly RefusedEnv[] = withInterpreter ? [...LOADER_ENV, ...INTERPRETER_ENV] : LOADER_ENV;
  return names.filter((n) => (env.get(n) ?? '') !== '');
}
