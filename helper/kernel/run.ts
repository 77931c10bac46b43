// Every external command goes through here: execa's array form, never a shell,
// always a timeout, input (not argv) for anything secret or large.
import { execa, ExecaError } from 'execa';

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  /** Return the result instead of throwing when the command exits non-zero. */
  reject?: boolean;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export type Runner = (file: string, args: readonly string[], opts?: RunOptions) => Promise<RunResult>;

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | undefined,
    readonly stderr: string,
  ) {
    super(`${command} failed${exitCode === undefined ? '' : ` (exit ${exitCode})`}: ${stderr.trim() || 'no output'}`);
    this.name = 'CommandError';
  }
}

export const run: Runner = async (file, args, opts = {}) => {
  try {
    const r = await execa(file, [...args], {
      input: opts.input,
      timeout: opts.timeoutMs ?? 10_000,
      reject: opts.reject ?? true,
      stripFinalNewline: false,
      env: { LC_ALL: 'C' },
    });
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
  } catch (e) {
    if (e instanceof ExecaError) {
      const why = e.timedOut ? `timed out after ${opts.timeoutMs ?? 10_000} ms` : (e.stderr ?? e.shortMessage);
      throw new CommandError(`${file} ${args.join(' ')}`.slice(0, 200), e.exitCode, String(why));
    }
    throw e;
  }
};
