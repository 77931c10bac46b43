// `tunnelgate`: the helper itself (`tunnelgate helper`) and its client commands.
// Exit codes: 0 ok, 1 failure or deny, 2 usage error, 126 not allowed to use the tunnel.
//
// `buildProgram()` is the whole command tree (commander), without running anything: the
// process entry (helper/main.ts) parses argv with it, and packaging generates the man page
// and shell completion from it.
import { Command, CommanderError } from 'commander';
import { ErrorCode } from '../../common/errors.js';
import { HelperError, HelperUnavailable } from '../../common/node/client.js';
import { VERSION } from '../version.js';
import { UsageError } from './args.js';
import { addAllowCommand, addAnswerCommand, addRevokeCommand, addRunCommand } from './commands/client.js';
import { addHelperCommand } from './commands/helper.js';
import { addProfileCommands } from './commands/profile.js';
import { addQueryCommand } from './commands/queries.js';
import { complain, ExitCode } from './io.js';
import { LaunchError } from './launch.js';

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

/** The exit code an error thrown by a command means, after saying what it is on stderr. */
function exitCodeOf(e: unknown): number {
  if (e instanceof ExitCode) return e.code;
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
  if (e instanceof UsageError || (e instanceof HelperError && e.code === ErrorCode.InvalidParams)) {
    complain(`tunnelgate: ${e.message}`);
    return 2;
  }
  if (e instanceof LaunchError) {
    complain(e.message);
    return e.exitCode;
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
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    return exitCodeOf(e);
  }
}
