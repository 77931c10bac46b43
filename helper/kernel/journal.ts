// The journal sink: under systemd each event goes to journald ONCE, through its native
// protocol (one AF_UNIX datagram to /run/systemd/journal/socket, systemd.journal-fields(7)),
// with structured fields, so `journalctl -o json TUNNELGATE_EVENT=attempt.denied` filters
// without parsing MESSAGE. Outside systemd the helper keeps syslog(3) and stderr.
//
// Fields: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=tunnelgate, TUNNELGATE_EVENT (the event
// type), TUNNELGATE_SEQ, then one TUNNELGATE_<FIELD> per scalar field of the event (uid →
// TUNNELGATE_UID, exe → TUNNELGATE_EXE, profileId → TUNNELGATE_PROFILE_ID; a denied
// attempt's own fields are lifted: exe, uid, pid, iface, dst), lists joined by ", ",
// and TUNNELGATE_JSON with the whole stamped event.
import { fstatSync } from 'node:fs';
import { formatDestination } from '../../common/attempts.js';
import type { StampedEvent } from '../../common/events.js';
import { unixDgramSend } from '../native/index.js';
import type { DatagramSender } from './sd-notify.js';

export const JOURNAL_SOCKET = '/run/systemd/journal/socket';
export const SYSLOG_IDENTIFIER = 'tunnelgate';

export type JournalFields = Record<string, string | number>;

/**
 * True when this process runs as a systemd service whose stderr is the journal:
 * JOURNAL_STREAM (`DEV:INODE`) names the file stderr is (systemd.exec(5)), or, without it,
 * INVOCATION_ID is set (a unit started us). STDERR_STAT gives stderr's device and inode.
 */
export function underSystemd(
  env: NodeJS.ProcessEnv = process.env,
  stderrStat: () => { dev: number; ino: number } | undefined = () => {
    try {
      return fstatSync(2);
    } catch {
      return undefined;
    }
  },
): boolean {
  const stream = env.JOURNAL_STREAM;
  if (stream) {
    const [dev, ino] = stream.split(':').map(Number);
    const st = stderrStat();
    return st !== undefined && st.dev === dev && st.ino === ino;
  }
  return !!env.INVOCATION_ID;
}

/** `profileId` → `PROFILE_ID`: a journal field name (A-Z, 0-9, '_', not starting with '_'). */
export function fieldName(key: string): string {
  const name = key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .toUpperCase();
  return name || 'FIELD';
}

function scalar(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.every((x) => typeof x !== 'object' || x === null) ? v.join(', ') : JSON.stringify(v);
  return JSON.stringify(v);
}

/** The journal fields of EVENT (see the header), with MESSAGE and PRIORITY given by the caller. */
export function eventFields(event: StampedEvent, message: string, priority: number): JournalFields {
  const fields: JournalFields = {
    MESSAGE: message,
    PRIORITY: priority,
    SYSLOG_IDENTIFIER,
    TUNNELGATE_EVENT: event.type,
    TUNNELGATE_SEQ: event.seq,
  };
  const { type: _t, seq: _s, time: _time, ...rest } = event as StampedEvent & Record<string, unknown>;
  const flat: Record<string, unknown> = { ...rest };
  // A denied attempt carries its facts one level down: lift them, as the other events have them.
  if (event.type === 'attempt.denied') {
    delete flat.attempt;
    const a = event.attempt;
    Object.assign(flat, { uid: a.uid, pid: a.pid, exe: a.exe, iface: a.iface, mode: a.mode, dst: formatDestination(a.dst) });
  }
  for (const [k, v] of Object.entries(flat)) {
    const s = scalar(v);
    if (s !== undefined) fields[`TUNNELGATE_${fieldName(k)}`] = s;
  }
  fields.TUNNELGATE_JSON = JSON.stringify(event);
  return fields;
}

/**
 * One native-protocol datagram: `KEY=VALUE\n` per field, or, for a value with a newline,
 * `KEY\n` + its byte length as 64-bit little endian + the bytes + `\n`.
 */
export function encodeJournalEntry(fields: JournalFields): Buffer {
  const parts: Buffer[] = [];
  for (const [k, raw] of Object.entries(fields)) {
    if (!/^[A-Z0-9][A-Z0-9_]{0,63}$/.test(k)) throw new Error(`journal: invalid field name ${JSON.stringify(k)}`);
    const value = Buffer.from(String(raw), 'utf8');
    if (!value.includes(0x0a)) {
      parts.push(Buffer.from(`${k}=`), value, Buffer.from('\n'));
    } else {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(value.length));
      parts.push(Buffer.from(`${k}\n`), len, value, Buffer.from('\n'));
    }
  }
  return Buffer.concat(parts);
}

/**
 * Writes events to the journal. A datagram the socket refuses (journald down, an entry over
 * the socket's size limit) goes to FALLBACK instead, once: never both.
 */
export class JournalSink {
  constructor(
    private readonly fallback: (priority: number, message: string) => void,
    private readonly send: DatagramSender = unixDgramSend,
    private readonly socket: string = JOURNAL_SOCKET,
  ) {}

  log(event: StampedEvent, message: string, priority: number): void {
    try {
      this.send(this.socket, encodeJournalEntry(eventFields(event, message, priority)));
    } catch {
      this.fallback(priority, message);
    }
  }
}
