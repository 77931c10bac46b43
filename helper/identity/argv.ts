// The script an interpreter was given, from its argv (/proc/PID/cmdline). Pure.
//
// `binary.script` rules match the program file the interpreter runs: the first argument
// that is not an interpreter option, resolved against the process's cwd by the caller.
// Options are skipped per interpreter family; an option that takes a value skips it too.
//
// Handled: python (-u -E -I -s -S -B -O -OO -b -d -q -v -x -P, -X opt, -W arg,
// --check-hash-based-pycs mode; -c / -m / - mean "no script file"), perl (-w -T -l …,
// -I/-M/-m/-x attached values; -e/-E mean no script), ruby (-w -v …, -I -r -C -E -x -e),
// node (--flags, --flag=value, the value-taking -r/--require, --import, --loader,
// --experimental-loader, -C/--conditions, --title, --input-type, --env-file; -e/-p mean
// no script), sh-family (bash/dash/zsh/ksh/sh: -e -x -u …, +o/-o opt, --norc,
// --noprofile, --posix, --rcfile/--init-file FILE; -c and -s mean no script), plus
// `--` ending the options everywhere.
// Not handled (the process gets no script, so a script rule does not match it): options we
// do not know that take a separate value (they would shift what we call the script), perl's
// `-x` scanning, and env-style wrappers (`env python3 x.py` runs python3 itself: its
// /proc/PID/exe is the interpreter, so this is not a gap).
//
// Options that load other code (node -r / --import / --loader, perl -M/-m/-I, ruby -r/-I,
// python -i and -X pycache_prefix (-X importtime is harmless), bash --rcfile) are reported
// as `loads`; python's -s / -I (no user site directory) as `noUserSite`: a script rule
// names one program, and a process that also loads code from elsewhere is not that program.

export type Family = 'python' | 'perl' | 'ruby' | 'node' | 'shell';

export function interpreterFamily(exe: string): Family | undefined {
  const base = exe.slice(exe.lastIndexOf('/') + 1);
  if (/^(?:python|pypy)[\d.]*$/.test(base)) return 'python';
  if (/^perl[\d.]*$/.test(base)) return 'perl';
  if (/^ruby[\d.]*$/.test(base)) return 'ruby';
  if (/^(?:node|nodejs)$/.test(base)) return 'node';
  if (/^(?:ba|da|z|k|mk)?sh$/.test(base)) return 'shell';
  return undefined;
}

export type ScriptArg =
  /** argv names a script file (maybe relative: resolve against the cwd). */
  | { kind: 'script'; path: string; loads: string[]; noUserSite?: true }
  /** The interpreter runs code that is not a file (-c, -e, -m, stdin, interactive). */
  | { kind: 'none'; why: string };

interface Table {
  /** Options whose value is the next argument (when not attached). */
  withValue: Set<string>;
  /** Options after which there is no script file. */
  noScript: Set<string>;
  /** Options that load other code. */
  loads: Set<string>;
  /** Single-letter flags may be bundled (-uE); for these letters the rest of the bundle is the value. */
  bundled: boolean;
  valueLetters: Set<string>;
  noScriptLetters: Set<string>;
  loadLetters: Set<string>;
}

const set = (...xs: string[]) => new Set(xs);

const TABLES: Record<Family, Table> = {
  python: {
    withValue: set('--check-hash-based-pycs'),
    noScript: set('--help', '--version'),
    loads: set(),
    bundled: true,
    valueLetters: set('X', 'W'),
    noScriptLetters: set('c', 'm', 'h', 'V'),
    // -i: after the script, an interactive prompt reading code from stdin.
    loadLetters: set('i'),
  },
  perl: {
    withValue: set(),
    noScript: set('--help', '--version'),
    loads: set(),
    bundled: true,
    // perl takes -I, -M, -m, -x, -i, -0, -l, -F, -C, -D values attached; a lone -I takes the next arg.
    valueLetters: set('I', 'M', 'm', 'x', 'i', '0', 'l', 'F', 'C', 'D', 'd'),
    noScriptLetters: set('e', 'E', 'v', 'V', 'h'),
    loadLetters: set('I', 'M', 'm', 'd'),
  },
  ruby: {
    withValue: set('--encoding', '--external-encoding', '--internal-encoding', '--enable', '--disable'),
    noScript: set('--help', '--version', '--copyright'),
    loads: set(),
    bundled: true,
    valueLetters: set('I', 'r', 'C', 'E', 'x', 'K', 'F', 'i', '0', 'W', 'T'),
    noScriptLetters: set('e', 'v', 'h'),
    loadLetters: set('I', 'r'),
  },
  node: {
    withValue: set('-r', '--require', '--import', '--loader', '--experimental-loader', '-C', '--conditions', '--title', '--input-type', '--env-file', '--inspect-port', '--stack-size', '--max-old-space-size', '--openssl-config', '--icu-data-dir', '--redirect-warnings', '--diagnostic-dir', '--report-dir', '--cpu-prof-dir', '--heap-prof-dir'),
    noScript: set('-e', '--eval', '-p', '--print', '-i', '--interactive', '-c', '--check', '-h', '--help', '-v', '--version', '--test', '--run'),
    loads: set('-r', '--require', '--import', '--loader', '--experimental-loader'),
    bundled: false,
    valueLetters: set(),
    noScriptLetters: set(),
    loadLetters: set(),
  },
  shell: {
    withValue: set('-o', '+o', '-O', '+O', '--rcfile', '--init-file'),
    noScript: set('--help', '--version'),
    loads: set('--rcfile', '--init-file'),
    bundled: true,
    valueLetters: set(),
    noScriptLetters: set('c', 's', 'i'),
    loadLetters: set(),
  },
};

/** argv is the whole command line (argv[0] is the interpreter as invoked). */
export function scriptArgument(family: Family, argv: readonly string[]): ScriptArg {
  const t = TABLES[family];
  const loads: string[] = [];
  let noUserSite = false;
  const found = (path: string): ScriptArg => ({ kind: 'script', path, loads, ...(noUserSite ? { noUserSite: true as const } : {}) });
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      const next = argv[i + 1];
      return next === undefined || next === '-' ? { kind: 'none', why: 'no script after --' } : found(next);
    }
    if (a === '-') return { kind: 'none', why: 'the program is read from standard input' };
    const isOption = a.startsWith('-') || (family === 'shell' && a.startsWith('+'));
    if (!isOption) return found(a);
    if (a.startsWith('--') || family === 'node' || (family === 'shell' && (a === '+o' || a === '-o' || a === '+O' || a === '-O'))) {
      const name = a.includes('=') ? a.slice(0, a.indexOf('=')) : a;
      if (t.noScript.has(name)) return { kind: 'none', why: `started with ${name}` };
      if (t.loads.has(name)) loads.push(name);
      if (t.withValue.has(name) && !a.includes('=')) i++;
      continue;
    }
    // A bundle of single-letter flags: -uE, -W error, -Xdev, -I/lib, -Mstrict
    const letters = a.slice(1);
    for (let j = 0; j < letters.length; j++) {
      const l = letters[j] as string;
      if (t.noScriptLetters.has(l)) return { kind: 'none', why: `started with -${l}` };
      if (t.loadLetters.has(l)) loads.push(`-${l}`);
      if (family === 'python' && (l === 's' || l === 'I')) noUserSite = true;
      if (t.valueLetters.has(l)) {
        const value = j === letters.length - 1 ? argv[i + 1] : letters.slice(j + 1);
        // python -X pycache_prefix=DIR reads compiled modules from DIR.
        if (family === 'python' && l === 'X' && value?.startsWith('pycache_prefix')) loads.push('-X pycache_prefix');
        if (j === letters.length - 1 && needsSeparateValue(family, l)) i++;
        break; // the rest of the bundle is the value
      }
      if (!t.bundled) break;
    }
  }
  return { kind: 'none', why: 'no script on the command line (interactive)' };
}

/** Which value letters take the next argument when nothing is attached. */
function needsSeparateValue(family: Family, letter: string): boolean {
  if (family === 'python') return true; // -X opt, -W arg
  if (family === 'ruby') return 'IrCEW'.includes(letter) && letter !== 'W';
  if (family === 'perl') return letter === 'I';
  return false;
}

/** POSIX join and normalisation of a relative script path against the process's cwd. */
export function resolveScript(cwd: string, script: string): string {
  const parts = (script.startsWith('/') ? script : `${cwd}/${script}`).split('/');
  const out: string[] = [];
  for (const p of parts) {
    if (p === '' || p === '.') continue;
    if (p === '..') out.pop();
    else out.push(p);
  }
  return `/${out.join('/')}`;
}
