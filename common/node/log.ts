// The helper's text log: one line per message on stderr (the journal, under systemd).
// Every message may quote text a program or a file chose (paths, argv, profile ids), so
// it is written through common/format.ts `logLine`: escaped at the writer, never raw.
import { format } from 'node:util';
import { logLine } from '../format.js';

/** Write TEXT as one escaped line to stderr (or `write`). */
export function writeLog(text: string, write: (line: string) => void = (l) => process.stderr.write(l)): void {
  write(`${logLine(text)}\n`);
}

/** Write `tunnelgate: MESSAGE` as one escaped line to stderr (or `write`). */
export function logError(message: string, write: (line: string) => void = (l) => process.stderr.write(l)): void {
  writeLog(`tunnelgate: ${message}`, write);
}

/**
 * Route `console.error` (and warn) of this process through writeLog: the helper's messages
 * that are written with it (start-up notes, kernel faults quoting a profile or an interface
 * name) are escaped at the writer too. Called once by `tunnelgate helper`.
 */
export function escapeConsole(write: (line: string) => void = (l) => process.stderr.write(l)): void {
  const to = (...args: unknown[]) => writeLog(format(...args), write);
  console.error = to;
  console.warn = to;
}
