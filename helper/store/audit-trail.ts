// The audit trail (AuditTrail): every event the helper emits (decisions, policy changes, refusals, denied
// attempts) appended as one JSON line to STATE/audit.log, fsync'd before the next batch,
// rotated by size (audit.log -> audit.log.1 -> … -> audit.log.KEEP, the oldest dropped);
// and each line also goes to the system log so a fleet collects it with its existing pipeline.
//
// The system log is an interface: the native addon's syslog(3) where it exists, else
// stderrSyslog, which writes `<priority>` prefixed lines to stderr; under systemd the helper's
// stderr is the journal, and journald reads that prefix as the line's priority. Under
// systemd (or wherever journald's socket is) start-up passes the journal sink instead
// (helper/kernel/journal.ts: systemLogRoute), which takes the event itself for its fields.
import { mkdir, open, rename, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { GateEvent, StampedEvent } from '../../common/events.js';
import { describeWriteError, storageHealth, syncDir } from '../kernel/files.js';
import type { StorageHealth } from '../kernel/files.js';
import { logLine, safeJson } from '../../common/format.js';

export const AUDIT_FILE = 'audit.log';

/** syslog(3) priorities used here. */
export const LOG_ERR = 3;
export const LOG_WARNING = 4;
export const LOG_NOTICE = 5;
export const LOG_INFO = 6;

export interface Syslog {
  /** MESSAGE at PRIORITY; EVENT when the line is one (a structured log keeps its fields). */
  log(priority: number, message: string, event?: StampedEvent): void;
}

export const stderrSyslog = (write: (line: string) => void = (l) => process.stderr.write(l)): Syslog => ({
  log: (priority, message) => write(`<${priority}>${logLine(message)}\n`),
});

/** `primary` (syslog(3) of the addon) until it fails once, then `fallback` for good. */
export function syslogWithFallback(primary: Syslog, fallback: Syslog, onSwitch: (why: string) => void = () => undefined): Syslog {
  let use = primary;
  return {
    log: (priority, message) => {
      try {
        use.log(priority, message);
      } catch (e) {
        if (use === fallback) return;
        use = fallback;
        onSwitch((e as Error).message);
        fallback.log(priority, message);
      }
    },
  };
}

/** How loud an event is in the system log. */
export function priorityOf(e: GateEvent): number {
  switch (e.type) {
    case 'policy.failed':
    case 'decisions.corrupt':
      return LOG_ERR;
    case 'api.refused':
    case 'launch.refused':
    case 'profile.rejected':
    case 'binary.changed':
      return LOG_WARNING;
    case 'attempt.denied':
    case 'helper.started':
    case 'helper.stopping':
    case 'gate.adopted':
      return LOG_INFO;
    default:
      return LOG_NOTICE;
  }
}

export interface AuditTrailOptions {
  dir: string;
  maxBytes: number;
  /** Rotated files kept besides audit.log. */
  keep: number;
  syslog: Syslog;
  /** Where a failure to write is reported (once per kind of failure). */
  onError?: (message: string) => void;
  /** Lines kept in memory while the file cannot be written (default 10,000); more are counted and dropped. */
  maxQueued?: number;
  /** How long to wait before trying a failed write again, in ms (default 2,000). */
  retryMs?: number;
  /** Where write failures are shown (default: the helper's storageHealth). */
  health?: StorageHealth;
}

const HEALTH_KEY = 'audit log';

export class AuditTrail {
  private fh: FileHandle | undefined;
  private size = 0;
  private pending: string[] = [];
  private flushing: Promise<void> | undefined;
  private lastError = '';
  /** Lines that could not be kept in memory while writes failed (see maxQueued). */
  private dropped = 0;
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly opts: AuditTrailOptions) {}

  get file(): string {
    return path.join(this.opts.dir, AUDIT_FILE);
  }

  private get health(): StorageHealth {
    return this.opts.health ?? storageHealth;
  }

  /** Lines dropped so far because writes failed for longer than the memory queue holds. */
  get droppedLines(): number {
    return this.dropped;
  }

  /**
   * Queue an event; it is on disk when the returned promise resolves (also for the events
   * queued with it), unless the file cannot be written: then it stays queued in memory (up to
   * maxQueued lines), the failure shows in storageHealth, and it is written when a retry works.
   */
  record(e: StampedEvent): Promise<void> {
    // Escaped at the writer (common/format.ts): valid JSON, no raw bidi or C1 control.
    const line = safeJson(e);
    this.opts.syslog.log(priorityOf(e), `tunnelgate audit: ${line}`, e);
    this.pending.push(`${line}\n`);
    this.bound();
    return this.flush();
  }

  /** Keep at most maxQueued lines in memory: the oldest beyond are counted as dropped. */
  private bound(): void {
    const max = this.opts.maxQueued ?? 10_000;
    if (this.pending.length <= max) return;
    const n = this.pending.length - max;
    this.pending.splice(0, n);
    this.dropped += n;
  }

  /** Write what is queued: one write and one fsync per batch, batches one after another. */
  flush(): Promise<void> {
    this.flushing ??= (async () => {
      try {
        while (this.pending.length) {
          const batch = this.pending;
          this.pending = [];
          if (!(await this.append(batch))) {
            // Not written: back to the front of the queue, tried again later.
            this.pending = [...batch, ...this.pending];
            this.bound();
            this.retry ??= setTimeout(() => {
              this.retry = undefined;
              void this.flush();
            }, this.opts.retryMs ?? 2_000);
            this.retry.unref?.();
            break;
          }
        }
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  /** Write `lines`; false when they could not all be written (none of the unwritten ones is lost: the caller re-queues). */
  private async append(lines: string[]): Promise<boolean> {
    let written = 0;
    try {
      for (const chunk of this.chunks(lines)) {
        const bytes = Buffer.byteLength(chunk);
        await this.handle();
        if (this.size > 0 && this.size + bytes > this.opts.maxBytes) await this.rotate();
        const fh = await this.handle();
        await this.writeChunk(fh, chunk);
        this.size += bytes;
        written += chunk.split('\n').length - 1;
      }
    } catch (e) {
      lines.splice(0, written);
      const reason = describeWriteError(e, this.opts.dir);
      const msg = `tunnelgate: cannot write the audit log ${this.file}: ${reason}; keeping its lines in memory until it can`;
      if (msg !== this.lastError) (this.opts.onError ?? ((m) => process.stderr.write(`${logLine(m)}\n`)))(msg);
      this.lastError = msg;
      this.health.fail(HEALTH_KEY, reason, { file: this.file, detail: () => `${this.pending.length} line(s) kept in memory${this.dropped ? `, ${this.dropped} dropped` : ''}` });
      await this.fh?.close().catch(() => undefined);
      this.fh = undefined;
      return false;
    }
    if (this.lastError) {
      this.lastError = '';
      const lost = this.dropped ? `; ${this.dropped} line(s) were dropped meanwhile (they are in the system log)` : '';
      this.opts.syslog.log(LOG_ERR, `tunnelgate audit: writing ${this.file} again${lost}`);
      this.health.ok(HEALTH_KEY);
    }
    return true;
  }

  /**
   * Append one chunk. write(2) on a nearly full file system writes what fits and returns
   * the count (a short write, no error): the rest is written again, and then fails with the
   * real errno (ENOSPC). A failed write leaves part of a line at the end: cut back to the
   * size before it, so that a retry does not write a line twice or half.
   */
  private async writeChunk(fh: FileHandle, chunk: string): Promise<void> {
    try {
      const buf = Buffer.from(chunk);
      for (let off = 0; off < buf.length; ) {
        const { bytesWritten } = await fh.write(buf, off, buf.length - off);
        if (bytesWritten <= 0) throw Object.assign(new Error(`no progress writing ${this.file}`), { code: 'ENOSPC' });
        off += bytesWritten;
      }
      await fh.datasync();
    } catch (e) {
      await fh.truncate(this.size).catch(() => undefined);
      throw e;
    }
  }

  /** A batch split so that a rotation can fall between lines, never inside one. */
  private *chunks(lines: string[]): Generator<string> {
    let cur = '';
    let curBytes = 0;
    for (const l of lines) {
      const n = Buffer.byteLength(l);
      if (cur && curBytes + n > Math.max(1, this.opts.maxBytes - this.size)) {
        yield cur;
        cur = '';
        curBytes = 0;
      }
      cur += l;
      curBytes += n;
    }
    if (cur) yield cur;
  }

  private async handle(): Promise<FileHandle> {
    if (!this.fh) {
      await mkdir(this.opts.dir, { recursive: true, mode: 0o700 });
      const fh = await open(this.file, 'a+', 0o600);
      this.size = (await fh.stat()).size;
      // A torn last line (a crash mid-write): end it, so the next line starts on its own.
      if (this.size > 0) {
        const last = Buffer.alloc(1);
        await fh.read(last, 0, 1, this.size - 1);
        if (last[0] !== 0x0a) {
          await fh.write('\n');
          this.size += 1;
        }
      }
      this.fh = fh;
    }
    return this.fh;
  }

  /** audit.log.(k-1) -> audit.log.k, …, audit.log -> audit.log.1; the oldest is overwritten. */
  private async rotate(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
    const name = (i: number) => (i === 0 ? this.file : `${this.file}.${i}`);
    for (let i = this.opts.keep - 1; i >= 0; i--) {
      await rename(name(i), name(i + 1)).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
    }
    await syncDir(this.opts.dir);
    this.size = 0;
  }

  async close(): Promise<void> {
    clearTimeout(this.retry);
    this.retry = undefined;
    await this.flush();
    await this.fh?.close().catch(() => undefined);
    this.fh = undefined;
  }
}

/** Sizes of the audit files, newest first (for tests and `status`). */
export async function auditFiles(dir: string, keep: number): Promise<Array<{ file: string; size: number }>> {
  const out = [];
  for (let i = 0; i <= keep; i++) {
    const file = path.join(dir, i === 0 ? AUDIT_FILE : `${AUDIT_FILE}.${i}`);
    const s = await stat(file).catch(() => undefined);
    if (s) out.push({ file, size: s.size });
  }
  return out;
}

/** How much of the end of a file lastAuditSeq reads: far more than one line (events are a few hundred bytes). */
const TAIL_BYTES = 256 * 1024;

/** The highest `seq` among the complete JSON lines of TEXT, 0 when none (a torn or foreign line is skipped). Pure. */
export function lastSeqOf(text: string): number {
  let max = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const seq = (JSON.parse(line) as { seq?: unknown }).seq;
      if (typeof seq === 'number' && Number.isSafeInteger(seq) && seq > max) max = seq;
    } catch {
      // a torn line: a crash mid-write, or the tail cut into a line
    }
  }
  return max;
}

/**
 * The sequence number the audit trail in DIR ended with: the highest `seq` in the last
 * TAIL_BYTES of audit.log, else of audit.log.1 (just rotated), else 0. The helper numbers
 * its events on from there, so `seq` is unique across helper starts within the kept audit
 * files (README: audit trail). Never throws: an unreadable file counts as none.
 */
export async function lastAuditSeq(dir: string): Promise<number> {
  for (const name of [AUDIT_FILE, `${AUDIT_FILE}.1`]) {
    const file = path.join(dir, name);
    const text = await readTail(file).catch(() => '');
    const seq = lastSeqOf(text);
    if (seq > 0) return seq;
  }
  return 0;
}

async function readTail(file: string): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const start = Math.max(0, size - TAIL_BYTES);
    const buf = Buffer.alloc(size - start);
    await fh.read(buf, 0, buf.length, start);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}
