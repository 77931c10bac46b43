// `npm run bench`: runs every benchmark in bench/ and prints their figures.
//
// A benchmark is any bench/NAME.ts (compiled to dist/bench/NAME.js) other than this file;
// bench/lib/ holds shared code and workers, never run directly. Each benchmark runs in its
// own child process (its cleanup handlers and its failure stay its own) and is either
//  - a module exporting `main(argv: string[]): Promise<void>`, or
//  - a script that does its work when imported.
// Known ones run first in a fixed order (cheap before long), then any others by name.
//
//   npm run bench [-- [--only apply,throughput] [--list] [--long] [bench flags…]]
// Every flag other than --only/--list is passed to every benchmark; each ignores the
// flags it does not know. Benchmarks print figures; nothing fails on a time. The exit
// status is non-zero only if a benchmark could not run (crashed, missing tools, not root).
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawn } from 'node:child_process';

const ORDER = ['apply', 'throughput'];
const SELF = fileURLToPath(import.meta.url);
const DIR = path.dirname(SELF);

export function discover(dir = DIR): string[] {
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.js') && e.name !== path.basename(SELF))
    .map((e) => e.name.slice(0, -'.js'.length));
  const rank = (n: string) => (ORDER.includes(n) ? ORDER.indexOf(n) : ORDER.length);
  return names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** In the child: import the benchmark and call its main, if it has one. */
async function child(name: string, argv: string[]): Promise<void> {
  const mod = (await import(pathToFileURL(path.join(DIR, `${name}.js`)).href)) as { main?: unknown };
  if (typeof mod.main === 'function') await (mod.main as (a: string[]) => Promise<void>)(argv);
}

function runChild(name: string, argv: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [SELF, '--child', name, ...argv], { stdio: 'inherit' });
    // A TERM to us is passed on to the child, by its PID.
    const onTerm = () => p.kill('SIGTERM');
    process.on('SIGTERM', onTerm);
    p.once('error', reject);
    p.once('exit', (code, signal) => {
      process.off('SIGTERM', onTerm);
      resolve({ code, signal, ms: performance.now() - t0 });
    });
  });
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--child') {
    await child(argv[1] as string, argv.slice(2));
    return;
  }
  const rest: string[] = [];
  let only: string[] | undefined;
  let list = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--only') only = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (a.startsWith('--only=')) only = a.slice(7).split(',').filter(Boolean);
    else if (a === '--list') list = true;
    else rest.push(a);
  }
  const all = discover();
  if (list) {
    // Names only: importing a script-style benchmark would run it.
    console.log(all.join('\n'));
    return;
  }
  const unknown = (only ?? []).filter((n) => !all.includes(n));
  if (unknown.length) throw new Error(`no benchmark named ${unknown.join(', ')} (have: ${all.join(', ')})`);
  const chosen = only ? all.filter((n) => only.includes(n)) : all;
  // Ctrl-C reaches the running child through the terminal; we wait for it to clean up.
  process.on('SIGINT', () => undefined);
  const outcomes: string[] = [];
  let failed = false;
  for (const name of chosen) {
    const r = await runChild(name, rest);
    const ok = r.code === 0;
    failed ||= !ok;
    outcomes.push(`${name}: ${ok ? 'done' : `FAILED (${r.signal ?? `exit ${r.code}`})`} in ${(r.ms / 1000).toFixed(1)} s`);
  }
  console.log(`\nbenchmarks: ${outcomes.join('; ')}`);
  if (failed) process.exitCode = 1;
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exitCode = 1;
});
