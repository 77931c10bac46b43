// Flag parsing shared by the benchmarks. Every bench receives the same argv from
// bench/run.ts, so unknown flags are ignored (they belong to another bench).
import { pathToFileURL } from 'node:url';

export type Flags = Record<string, string | boolean | undefined>;

/**
 * `--name value`, `--name=value`, or `--name` alone (true). No bench knows every flag, so
 * the rule is syntactic: a token after `--name` that does not start with `--` is its value.
 */
export function flags(argv: readonly string[]): Flags {
  const out: Flags = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('--') || a === '--') continue;
    const eq = a.indexOf('=');
    if (eq > 0) {
      out[a.slice(2, eq)] = a.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('--')) {
        out[a.slice(2)] = next;
        i++;
      } else {
        out[a.slice(2)] = true;
      }
    }
  }
  return out;
}

export function intFlag(f: Flags, name: string, dflt: number): number {
  const v = f[name];
  if (v === undefined || typeof v === 'boolean') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} wants a non-negative number, got ${JSON.stringify(v)}`);
  return n;
}

export function listFlag(f: Flags, name: string, dflt: readonly number[]): number[] {
  const v = f[name];
  if (v === undefined || typeof v === 'boolean') return [...dflt];
  return v.split(',').filter(Boolean).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} wants a comma-separated list of integers, got ${JSON.stringify(v)}`);
    return n;
  });
}

export const strFlag = (f: Flags, name: string, dflt: string): string => {
  const v = f[name];
  return typeof v === 'string' ? v : dflt;
};

/** Run `main` when this module is the program (`node dist/bench/NAME.js`), not when imported by run.ts. */
export function runIfMain(moduleUrl: string, main: (argv: string[]) => Promise<void>): void {
  const entry = process.argv[1];
  if (!entry || pathToFileURL(entry).href !== moduleUrl) return;
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exitCode = 1;
  });
}

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new Error(`${what} needs root (network namespaces, nftables, cgroups)`);
}
