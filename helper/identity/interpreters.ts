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
