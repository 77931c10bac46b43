// The evidence store (EvidenceStore): what was blocked (or, in audit mode, would have been): denied attempts aggregated per
// (mode, user, binary, destination) with a count and first/last seen, kept in the state dir.
// It is evidence for people to decide with; nothing here ever becomes a rule.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { DeniedAttempt } from '../../common/attempts.js';
import type { AttemptRecord } from '../../common/audit.js';
import { describeWriteError, storageHealth, writeFileAtomic } from '../kernel/files.js';
import type { StorageHealth } from '../kernel/files.js';
import { safeJson } from '../../common/format.js';

const HEALTH_KEY = 'attempt records';

export const ATTEMPTS_FILE = 'attempts.json';
const MAX_RECORDS = 10_000;

export function recordKey(a: Pick<AttemptRecord, 'mode' | 'uid' | 'exe' | 'dst'>): string {
  return JSON.stringify([a.mode, a.uid, a.exe ?? null, a.dst.addr, a.dst.proto, a.dst.port ?? null]);
}

/** Fold one attempt (and the drops it stands for, `repeats`) into the records (pure). Ephemeral source ports are not part of the key. */
export function fold(records: Map<string, AttemptRecord>, a: DeniedAttempt, max = MAX_RECORDS): void {
  const rec: AttemptRecord = {
    mode: a.mode,
    uid: a.uid,
    ...(a.exe !== undefined ? { exe: a.exe } : {}),
    dst: { ...a.dst },
    count: a.repeats ?? 1,
    firstSeen: a.time,
    lastSeen: a.time,
  };
  const key = recordKey(rec);
  const old = records.get(key);
  if (old) {
    old.count += a.repeats ?? 1;
    if (a.time > old.lastSeen) old.lastSeen = a.time;
    if (a.time < old.firstSeen) old.firstSeen = a.time;
    return;
  }
  records.set(key, rec);
  if (records.size > max) {
    // Forget what was seen longest ago first.
    const oldest = [...records.entries()].sort((x, y) => x[1].lastSeen.localeCompare(y[1].lastSeen))[0];
    if (oldest) records.delete(oldest[0]);
  }
}

/** Records last seen within `days` of `now` (pure). */
export function within(records: Iterable<AttemptRecord>, now: Date, days: number): AttemptRecord[] {
  const since = new Date(now.getTime() - days * 86_400_000).toISOString();
  return [...records].filter((r) => r.lastSeen >= since).sort((a, b) => b.count - a.count || a.lastSeen.localeCompare(b.lastSeen));
}

/**
 * The evidence store: attempt records kept in memory, written to STATE/attempts.json at most
 * every `flushMs` (milliseconds), atomically. Not the audit trail (helper/store/audit-trail.ts), and
 * not the policy's audit mode.
 */
export class EvidenceStore {
  private readonly records = new Map<string, AttemptRecord>();
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly file: string,
    private readonly flushMs: number,
    private readonly health: StorageHealth,
  ) {}

  /**
   * Read STATE/attempts.json (a corrupt one is set aside and reported as `problem`). Write
   * failures later keep the records in memory (they are bounded anyway), show in `health`
   * and are retried every `flushMs`.
   */
  static async open(stateDir: string, flushMs = 2_000, health: StorageHealth = storageHealth): Promise<{ log: EvidenceStore; problem?: string }> {
    const log = new EvidenceStore(path.join(stateDir, ATTEMPTS_FILE), flushMs, health);
    try {
      const parsed = JSON.parse(await fs.readFile(log.file, 'utf8')) as { records?: AttemptRecord[] };
      for (const r of parsed.records ?? []) log.records.set(recordKey(r), r);
      return { log };
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ENOENT') return { log };
      // Kept aside, not lost: a person may want what it held.
      await fs.rename(log.file, `${log.file}.corrupt-${Date.now()}`).catch(() => undefined);
      return { log, problem: `${log.file} was unreadable (${err.message}); set aside, recording starts anew` };
    }
  }

  add(a: DeniedAttempt): void {
    fold(this.records, a);
    this.dirty = true;
    this.schedule();
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch(() => this.schedule());
    }, this.flushMs);
  }

  report(now: Date, days: number): AttemptRecord[] {
    return within(this.records.values(), now, days);
  }

  /** Write the records if they changed; a failure keeps them dirty (and in memory), reports it and rethrows. */
  async flush(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    try {
      await writeFileAtomic(this.file, `${safeJson({ records: [...this.records.values()] })}\n`);
    } catch (e) {
      this.dirty = true;
      const reason = describeWriteError(e, path.dirname(this.file));
      this.health.fail(HEALTH_KEY, reason, { file: this.file, detail: () => `${this.records.size} record(s) kept in memory` });
      throw e;
    }
    this.health.ok(HEALTH_KEY);
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
