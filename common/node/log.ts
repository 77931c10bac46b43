// The helper's text log: one line per message on stderr (the journal, under systemd).
// Every message may quote text a program or a file chose (paths, argv, profile ids), so
// it is written through common/format.ts `logLine`: escaped at the writer, never raw.
import { logLine } from '../format.js';

/** Write `tunnelgate: MESSAGE` as one escaped line to stderr (or `write`). */
export function logError(message: string, write: (line: string) => void = (l) => process.stderr.write(l)): void {
  write(`${logLine(`tunnelgate: ${message}`)}\n`);
}
