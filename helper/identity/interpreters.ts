// What a script rule needs of each interpreter so that nothing but the named script (and
// root-owned code) runs in the process (issue 9.5). Pure: the caller passes what argv.ts
// read from /proc/PID/cmdline; the environment is checked apart (exec-env.ts, the
// INTERPRETER_ENV list), the script's own file and directories by writable.ts.
//
// python: no -c / -m / stdin / -i (argv.ts); no PYTHONPATH, PYTHONHOME, PYTHONSTARTUP,
//   PYTHONINSPECT, PYTHONUSERBASE, PYTHONPYCACHEPREFIX, … (INTERPRETER_ENV); no
//   -X pycache_prefix; and -s or -I on the command line (a shebang `#!/usr/bin/python3 -I`
//   puts it there), because without it Python imports usercustomize.py and runs the .pth
//   files of the user's own site-packages (~/.local/lib/pythonX.Y/site-packages, where ~ is
//   the $HOME the user chose). Checking that directory instead cannot work: the user can
//   create the file after any check and before the interpreter looks. sys.path[0] is the
//   script's directory (not the cwd) when a script file is run, and the script's directories
//   must be writable by root only (writable.ts), so the rest of sys.path is root's.
// perl: no -e / -E (no script), no -I / -M / -m / -d (loads), no PERL5LIB, PERLLIB,
//   PERL5OPT, PERL5DB; @INC has no "." since perl 5.26 and Debian's perl is built without
//   sitecustomize, so the rest of @INC is root's.
// node, ruby and the shells are refused (reasons below): each reads code from places its
// user controls that no option turns off.
import { interpreterFamily, scriptArgument } from './argv.js';
import type { Family, ScriptArg } from './argv.js';

/** Why an interpreter can run code besides the script on this command line; undefined when it cannot. */
export function interpreterUnsafe(family: Family, arg: Extract<ScriptArg, { kind: 'script' }>): string | undefined {
  switch (family) {
    case 'python':
      return arg.noUserSite ? undefined
        : 'python was started without -s or -I, so it runs usercustomize.py and .pth files from the user\'s own site-packages (start it as `python3 -I script`, or with `#!/usr/bin/python3 -I`)';
    case 'perl':
      return undefined;
    case 'node':
      return 'node script rules are not supported: node loads modules from $HOME/.node_modules and $HOME/.node_libraries, which its user controls, and no option turns that off';
    case 'ruby':
      return 'ruby script rules are not supported: rubygems loads code from the user\'s gem directories (GEM_HOME, GEM_PATH, ~/.gem) and no option turns that off';
    case 'shell':
      return 'shell script rules are not supported: a shell imports functions (BASH_FUNC_*), PATH and IFS from its user\'s environment, so the commands a script runs are the user\'s choice; allow the programs the script runs instead';
  }
}

/**
 * Launchers: the programs `tunnelgate run` follows through (issue 10, part 5). A process
 * that runs one of these, and that no rule allows, is let go on without the tunnel, and
 * its next exec is decided again; any other program no rule allows ends the chain.
 * - shells (sh, dash, bash, …): the wrappers distributions ship for big programs are shell
 *   scripts that end in `exec` (Debian's /usr/bin/chromium execs /usr/lib/chromium/chromium;
 *   firefox, VS Code's `code`, Electron apps). A shell can never be allowed by a script rule
 *   (interpreterUnsafe refuses them), so for a shell `run` can only mean what it execs.
 * - env: `#!/usr/bin/env bash` wrappers, and `exec env VAR=value program`.
 * Other interpreters (python, perl, …) are programs in their own right here: `run -- python3
 * other.py` that no rule allows is refused before it runs, like any binary. Named by the
 * file the kernel runs (basename); following a process gives it nothing, so a user's own
 * file named `sh` that is followed gains nothing but a look at its next exec.
 * Returns the kind, or undefined for a program that is not a launcher.
 */
export function launcherKind(exe: string): 'shell' | 'env' | undefined {
  if (interpreterFamily(exe) === 'shell') return 'shell';
  return exe.slice(exe.lastIndexOf('/') + 1) === 'env' ? 'env' : undefined;
}

/**
 * One step of an exec chain as the user would recognise it: the program, and for an
 * interpreter the script file it was given (`/usr/bin/dash /usr/bin/chromium`). `argv` is
 * /proc/PID/cmdline after the exec (the kernel puts a `#!` script's path there).
 */
export function chainStep(exe: string, argv: readonly string[]): string {
  const family = interpreterFamily(exe);
  if (!family) return exe;
  const arg = scriptArgument(family, argv);
  return arg.kind === 'script' ? `${exe} ${arg.path}` : exe;
}
