// `tunnelgate run -- CMD…`: start CMD with tunnel access from its first packet.
//
// Node cannot exec in place, so a stub (/bin/sh) is started first and waits on a pipe.
// The helper holds the stub (ptrace) before it execs CMD; each exec of the process is then
// decided by the helper on what the kernel runs, before that program runs (helper/core/
// launches.ts): admitted when a rule allows it; a launcher (a wrapper shell script such as
// Debian's /usr/bin/chromium, or env) goes on without the tunnel until it execs the real
// program; anything else is refused, the process ended, and run exits 126 naming the
// chain of programs it went through.
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { ErrorCode } from '../../common/api.js';
import { HelperClient, HelperError } from '../../common/node/client.js';

export const EXIT_NOT_ALLOWED = 126;
const EXIT_NOT_FOUND = 127;

// read waits for the go-ahead; exec replaces the shell with the program.
const STUB = 'read -r _ <&3 || exit 125; exec 3<&-; exec "$@"';

export class LaunchError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/**
 * execvp's lookup: a name with a slash is a path, anything else is searched in PATH. The
 * absolute path found, symbolic links kept (argv[0] is what the user named, as a shell
 * would start it; the helper decides on the file the kernel executes).
 * Throws LaunchError (exit 127) when nothing executable is found.
 */
export function resolveCommand(cmd: string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  const isExec = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (cmd.includes('/')) {
    const p = path.resolve(cwd, cmd);
    if (!isExec(p)) throw new LaunchError(`${cmd}: no such executable file`, EXIT_NOT_FOUND);
    return p;
  }
  for (const dir of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    const p = path.resolve(cwd, dir || '.', cmd);
    if (isExec(p)) return p;
  }
  throw new LaunchError(`${cmd}: command not found in PATH`, EXIT_NOT_FOUND);
}

/** Start the command, wait for it, and return its exit code (128+N if killed by signal N). */
export async function runWithTunnel(runDir: string, argv: readonly string[]): Promise<number> {
  const [cmd, ...args] = argv;
  if (!cmd) throw new LaunchError('usage: tunnelgate run -- CMD [ARGS…]', 2);
  const exe = resolveCommand(cmd);
  const client = await HelperClient.connect(runDir);
  const child = spawn('/bin/sh', ['-c', STUB, 'tunnelgate-run', exe, ...args], {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
  });
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0)));
  });
  // The terminal sends SIGINT/SIGQUIT to the child itself; signals aimed at us are passed on.
  // From here on: a launcher the helper follows may run a while before its program starts.
  process.on('SIGINT', () => undefined);
  process.on('SIGQUIT', () => undefined);
  for (const s of ['SIGTERM', 'SIGHUP'] as const) process.on(s, () => child.kill(s));
  try {
    if (child.pid === undefined) throw new LaunchError('could not start /bin/sh for the launch', 1);
    const { launchId } = await client.call('launch.begin', { pid: child.pid, path: exe });
    // The helper starts watching for the exec as soon as it reads this request; it answers
    // when a program of the exec chain is admitted, or the chain is refused.
    const confirmed = client.call('launch.confirm', { launchId });
    (child.stdio[3] as Writable).end('go\n');
    await confirmed;
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    if (e instanceof HelperError) {
      throw new LaunchError(`tunnelgate: ${e.message}`, e.code === ErrorCode.NotAllowed ? EXIT_NOT_ALLOWED : 1);
    }
    throw e;
  } finally {
    client.close();
  }
  return exited;
}
