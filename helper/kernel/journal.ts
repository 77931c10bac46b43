// The journal sink: under systemd each event goes to journald ONCE, through its native
// protocol (one AF_UNIX datagram to /run/systemd/journal/socket, systemd.journal-fields(7)),
// with structured fields, so `journalctl -o json TUNNELGATE_EVENT=attempt.denied` filters
// without parsing MESSAGE. Outside systemd the helper keeps syslog(3) and stderr.
//
// Fields: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=tunnelgate, TUNNELGATE_EVENT (the event
// type), TUNNELGATE_SEQ, then one TUNNELGATE_<FIELD> per scalar field of the event (uid →
// TUNNELGATE_UID, exe → TUNNELGATE_EXE, profileId → TUNNELGATE_PROFILE_ID; a denied
// attempt's own fields are lifted: exe, uid, pid, iface, dst; an event's `path`, the
// program, is TUNNELGATE_EXE too), lists joined by ", ",
// and TUNNELGATE_JSON with the whole stamped event.
//
// Which way an event goes (systemLogRoute): where journald's socket exists, or systemd
// started us, the system log is this sink (syslog(3) only when a datagram is refused);
// the JSON line on stderr is dropped when stderr IS the journal (JOURNAL_STREAM names it),
// and kept when stderr is a terminal or a file. Without the socket: syslog(3) and stderr,
// as before. Either way an event reaches the journal once.
import { existsSync, fstatSync } from 'node:fs';
import { formatDestination } from '../../common/attempts.js';
import { logLine, safeJson, visible } from '../../common/format.js';
import type { StampedEvent } from '../../common/events.js';
import { unixDgramSend } from '../native/index.js';
import type { DatagramSender } from './sd-notify.js';

export const JOURNAL_SOCKET = '/run/systemd/journal/socket';
export const SYSLOG_IDENTIFIER = 'tunnelgate';

export type JournalFields = Record<string, string | number>;

/**
 * True when stderr is the journal's stream: JOURNAL_STREAM (`DEV:INODE`, systemd.exec(5))
 * names the file descriptor 2 is. STDERR_STAT gives stderr's device and inode.
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env, stderrStat: () => { dev: number; ino: number } | undefined = statStderr): boolean {
  const stream = env.JOURNAL_STREAM;
  if (!stream) return false;
  const [dev, ino] = stream.split(':').map(Number);
  const st = stderrStat();
  return st !== undefined && st.dev === dev && st.ino === ino;
}

function statStderr(): { dev: number; ino: number } | undefined {
  try {
    return fstatSync(2);
  } catch {
    return undefined;
  }
}

/**
 * True when this process runs as a systemd service whose stderr is the journal:
 * JOURNAL_STREAM (`DEV:INODE`) names the file stderr is (systemd.exec(5)), or, without it,
 * INVOCATION_ID is set (a unit started us). STDERR_STAT gives stderr's device and inode.
 */
export function underSystemd(
  env: NodeJS.ProcessEnv = process.env,
  stderrStat: () => { dev: number; ino: number } | undefined = statStderr,
): boolean {
  if (env.JOURNAL_STREAM) return stderrIsJournal(env, stderrStat);
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

/** A field's value, program-chosen text escaped as in every log (common/format.ts: visible, safeJson): `journalctl -o verbose` shows fields too. */
function scalar(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return visible(String(v));
  if (Array.isArray(v)) return v.every((x) => typeof x !== 'object' || x === null) ? visible(v.join(', ')) : safeJson(v);
  return safeJson(v);
}

/**
 * A one-line MESSAGE for EVENT, for `journalctl` without `-o json`: the type, then
 * `key=value` for each TUNNELGATE_ field of FIELDS but the JSON and the sequence number,
 * program-chosen text escaped (common/format.ts: visible).
 */
export function eventMessage(fields: JournalFields): string {
  const parts = Object.entries(fields)
    .filter(([k]) => k.startsWith('TUNNELGATE_') && !['TUNNELGATE_EVENT', 'TUNNELGATE_SEQ', 'TUNNELGATE_JSON'].includes(k))
    .map(([k, v]) => `${k.slice('TUNNELGATE_'.length).toLowerCase()}=${visible(String(v))}`);
  return `tunnelgate: ${String(fields.TUNNELGATE_EVENT)}${parts.length ? ` ${parts.join(' ')}` : ''}`;
}

/** The journal fields of EVENT (see the header), with MESSAGE and PRIORITY given by the caller (MESSAGE '': eventMessage). */
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
  // The program is TUNNELGATE_EXE in every event, whatever the event calls it (launches,
  // processes and rules say `path`), so one filter finds all of a program's events.
  if (flat.exe === undefined && typeof flat.path === 'string') flat.exe = flat.path;
  for (const [k, v] of Object.entries(flat)) {
    const s = scalar(v);
    if (s !== undefined) fields[`TUNNELGATE_${fieldName(k)}`] = s;
  }
  if (!message) fields.MESSAGE = eventMessage(fields);
  fields.TUNNELGATE_JSON = safeJson(event);
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
 * the socket's size limit: entries are not passed as memfds) goes to FALLBACK instead, once:
 * never both.
 */
export class JournalSink {
  constructor(
    private readonly fallback: (priority: number, message: string) => void,
    private readonly send: DatagramSender = unixDgramSend,
    private readonly socket: string = JOURNAL_SOCKET,
  ) {}

  /** EVENT with its fields; MESSAGE '' makes a readable one from them (eventMessage). */
  log(event: StampedEvent, message: string, priority: number): void {
    const fields = eventFields(event, message, priority);
    this.sendOr(fields, priority, fallbackText(event, message));
  }

  /** A line that is no event (the audit log's own troubles): MESSAGE, PRIORITY, SYSLOG_IDENTIFIER. */
  line(priority: number, message: string): void {
    this.sendOr({ MESSAGE: logLine(message), PRIORITY: priority, SYSLOG_IDENTIFIER }, priority, message);
  }

  private sendOr(fields: JournalFields, priority: number, fallbackMessage: string): void {
    try {
      this.send(this.socket, encodeJournalEntry(fields));
    } catch {
      this.fallback(priority, fallbackMessage);
    }
  }
}

/** What the fallback (syslog(3) or stderr) gets for EVENT: the caller's message, else the JSON line. */
function fallbackText(event: StampedEvent, message: string): string {
  return message || `tunnelgate audit: ${safeJson(event)}`;
}

/** The audit trail's system log (helper/store/audit-trail.ts: Syslog), with the event when there is one. */
export interface SystemLog {
  log(priority: number, message: string, event?: StampedEvent): void;
}

/** Where events go besides the audit file (see the header). */
export interface LogRoute {
  /** The audit trail's system log. */
  syslog: SystemLog;
  /** Whether the event bus still writes each event as a JSON line to stderr. */
  eventsToStderr: boolean;
  /** 'journal' (native protocol) or 'syslog' (syslog(3), else stderr), for the start-up line. */
  via: 'journal' | 'syslog';
}

export interface LogRouteOptions {
  env?: NodeJS.ProcessEnv;
  /** journald's native socket (default JOURNAL_SOCKET). */
  socket?: string;
  /** Whether SOCKET exists (default: a stat of it). */
  socketExists?: (socket: string) => boolean;
  stderrStat?: () => { dev: number; ino: number } | undefined;
  send?: DatagramSender;
  /** The system log without the journal: syslog(3), falling back to stderr (start-up wiring). */
  fallback: SystemLog;
}

/**
 * The route of events (see the header): the journal sink when journald's socket exists or
 * systemd started us (then FALLBACK only for a refused datagram), else FALLBACK; the JSON
 * line on stderr only when stderr is not the journal.
 */
export function systemLogRoute(o: LogRouteOptions): LogRoute {
  const env = o.env ?? process.env;
  const socket = o.socket ?? JOURNAL_SOCKET;
  const toStderr = !stderrIsJournal(env, o.stderrStat);
  if (!(underSystemd(env, o.stderrStat) || (o.socketExists ?? existsSync)(socket))) {
    return { syslog: o.fallback, eventsToStderr: toStderr, via: 'syslog' };
  }
  const sink = new JournalSink((p, m) => o.fallback.log(p, m), o.send, socket);
  return {
    syslog: { log: (p, m, e) => (e ? sink.log(e, '', p) : sink.line(p, m)) },
    eventsToStderr: toStderr,
    via: 'journal',
  };
}
