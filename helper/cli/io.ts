// What the CLI's commands share: the connection to the helper, the one way they write to
// the terminal, and the exit code they end with.
//
// Everything the CLI writes goes through `say` / `complain` (text: each line made visible
// by common/format.ts, so an escape sequence or a direction override a program put in its
// argv or path is shown escaped, never interpreted) or `print` (`--json`: safeJson).
import { lookup } from 'node:dns/promises';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { safeJson, visibleLines } from '../../common/format.js';
import type { Destination } from '../../common/profile.js';
import { HelperClient } from '../../common/node/client.js';
import { resolvePaths } from '../config.js';
import { parseDstSpec, parseDuration, toDestinations } from './args.js';
import type { Resolver } from './args.js';

/** Thrown by a command to end with this exit code (its message is not shown). */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** Text for the terminal (stdout), one line per line, every line made visible. */
export function say(text: string): void {
  process.stdout.write(`${visibleLines(text)}\n`);
}

/** A message for the terminal (stderr), made visible like `say`. */
export function complain(text: string): void {
  process.stderr.write(`${visibleLines(text)}\n`);
}

/** A result: as one JSON document with `--json`, else as the text `human` makes. */
export function print(json: boolean | undefined, value: unknown, human: () => string): void {
  if (json) process.stdout.write(`${safeJson(value)}\n`);
  else say(human());
}

/** The helper's runtime dir: `--run`, else $TUNNELGATE_RUN, else the default. */
export const runDirOf = (run: string | undefined): string => resolvePaths({ run: run ?? '' }).run;

/** Connects to the helper, runs `fn`, and closes the connection whatever happens. */
export async function withClient<T>(runDir: string | undefined, fn: (c: HelperClient) => Promise<T>): Promise<T> {
  const client = await HelperClient.connect(runDirOf(runDir));
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

export const resolveHost: Resolver = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

/** The rule destinations of repeated `--dst SPEC` options; undefined without any. */
export async function destinationsOf(specs: string[] | undefined): Promise<Destination[] | undefined> {
  if (!specs?.length) return undefined;
  const out: Destination[] = [];
  for (const s of specs) out.push(...(await toDestinations(parseDstSpec(s), resolveHost)));
  return out;
}

/** `--for DURATION` as API params: `{ seconds }`, `{ untilLogout }`, or nothing. */
export function durationParams(text: string | undefined): { seconds?: number; untilLogout?: boolean } {
  return text === undefined ? {} : parseDuration(text);
}

/** The program a PATH names as the kernel reports it: absolute, symbolic links resolved. */
export async function programPath(p: string): Promise<string> {
  const abs = path.resolve(p);
  return realpath(abs).catch(() => abs);
}
