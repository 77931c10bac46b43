// `tunnelgate`: the helper itself (`tunnelgate helper`) and its client commands.
// Exit codes: 0 ok, 1 failure or deny, 2 usage error, 126 not allowed to use the tunnel.
//
// `buildProgram()` is the whole command tree (commander), without running anything: the
// process entry (helper/main.ts) parses argv with it, and packaging generates the man page
// and shell completion from it.
//
// With `--json`, a command that fails after its arguments were parsed (the helper is down,
// refused the call, a file cannot be read) prints one JSON document on stdout instead of a
// text message, `{"error": {"kind", "message", "code"?}}`, and exits as it would without
// (1, 2 for a usage error, 126 not allowed). A mistake commander itself finds in the command
// line (an unknown option) is text on stderr and exit 2: no command ran.
import { Command, CommanderError } from 'commander';
import { ErrorCode } from '../../common/errors.js';
import { HelperError, HelperUnavailable } from '../../common/node/client.js';
import { VERSION } from '../version.js';
import { UsageError } from './args.js';
import { addAllowCommand, addAnswerCommand, addRevokeCommand, addRunCommand } from './commands/client.js';
import { addHelperCommand } from './commands/helper.js';
import { addProfileCommands, InvalidProfile } from './commands/profile.js';
import { addQueryCommand } from './commands/queries.js';
import { complain, ExitCode, print } from './io.js';
import { LaunchError } from './launch.js';

/** What `--json` prints when a command fails (see the header). */
export interface JsonError {
  error: {
    /** helper-unavailable, helper-error (the helper answered with an error), usage, not-allowed, invalid-profile, failure. */
    kind: 'helper-unavailable' | 'helper-error' | 'usage' | 'not-allowed' | 'invalid-profile' | 'failure';
    message: string;
    /** invalid-profile: every problem, as `FILE: path.to.field: message`. */
    problems?: string[];
    /** The helper's error code (common/errors.ts), for helper-error. */
    code?: number;
  };
}

/** The command tree. Parsing throws (exitOverride) instead of exiting the process. */
export function buildProgram(): Command {
  const program = new Command('tunnelgate')
    .description("per-application gatekeeper for a workstation's VPN tunnel")
    .version(VERSION)
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError();
  addHelperCommand(program);
  addQueryCommand(program, 'status');
  addQueryCommand(program, 'list');
  addRunCommand(program);
  addQueryCommand(program, 'prompts');
  addAnswerCommand(program);
  addAllowCommand(program);
  addRevokeCommand(program);
  addQueryCommand(program, 'decisions');
  addQueryCommand(program, 'events');
  addQueryCommand(program, 'explain');
  addQueryCommand(program, 'audit');
  addProfileCommands(program);
  return program;
}

/** The --json form of an error a command threw, and its exit code. */
export function jsonError(e: unknown): { doc: JsonError; exit: number } {
  const message = (e as Error).message ?? String(e);
  if (e instanceof UsageError || (e instanceof HelperError && e.code === ErrorCode.InvalidParams)) return { doc: { error: { kind: 'usage', message } }, exit: 2 };
  if (e instanceof LaunchError) return { doc: { error: { kind: e.exitCode === 126 ? 'not-allowed' : 'failure', message } }, exit: e.exitCode };
  if (e instanceof HelperUnavailable) return { doc: { error: { kind: 'helper-unavailable', message } }, exit: 1 };
  if (e instanceof InvalidProfile) return { doc: { error: { kind: 'invalid-profile', message, problems: e.problems } }, exit: 1 };
  if (e instanceof HelperError) return { doc: { error: { kind: 'helper-error', message, code: e.code } }, exit: 1 };
  return { doc: { error: { kind: 'failure', message } }, exit: 1 };
}

/** The exit code an error thrown by a command means, after saying what it is on stderr (--json: on stdout, as JSON). */
function exitCodeOf(e: unknown, json: boolean): number {
  if (e instanceof ExitCode) return e.code;
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
  if (json) {
    const { doc, exit } = jsonError(e);
    print(true, doc, () => '');
    return exit;
  }
  if (e instanceof UsageError || (e instanceof HelperError && e.code === ErrorCode.InvalidParams)) {
    complain(`tunnelgate: ${e.message}`);
    return 2;
  }
  if (e instanceof LaunchError) {
    complain(e.message);
    return e.exitCode;
  }
  if (e instanceof InvalidProfile) {
    complain(e.message);
    return 1;
  }
  if (e instanceof HelperUnavailable || e instanceof HelperError) {
    complain(`tunnelgate: ${e.message}`);
    return 1;
  }
  complain(`tunnelgate: ${(e as Error).message ?? e}`);
  return 1;
}

/** Runs the CLI on `argv` (process.argv: node, script, args…) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  let json = false;
  const program = buildProgram().hook('preAction', (_program, command) => {
    json = command.opts<{ json?: boolean }>().json === true;
  });
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    return exitCodeOf(e, json);
  }
}
