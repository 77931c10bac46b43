import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GateEvent, StampedEvent } from '../../../common/events.js';
import { StorageHealth } from '../../../helper/kernel/files.js';
import { EventLog } from '../../../helper/core/event-bus.js';
import { AUDIT_FILE, auditFiles, AuditTrail, lastAuditSeq, lastSeqOf, LOG_ERR, LOG_NOTICE, LOG_WARNING, priorityOf, stderrSyslog, syslogWithFallback } from '../../../helper/store/audit-trail.js';

let dir: string;
let syslog: Array<[number, string]>;
/** Six digits throughout, so that every line of these tests has the same length. */
let seq = 100_000;

const stamp = (e: GateEvent): StampedEvent => ({ ...e, seq: ++seq, time: '2026-11-22T10:00:00.000Z' });
const refused = (n: number) => stamp({ type: 'api.refused', uid: 4321, pid: 100 + n, method: 'allow', reason: `refusal number ${String(n).padStart(4, '0')}` });
const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as StampedEvent);

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tg-audit-'));
  syslog = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const open = (maxBytes = 1 << 20, keep = 3) => new AuditTrail({ dir, maxBytes, keep, syslog: { log: (p, m) => syslog.push([p, m]) } });

describe('AuditTrail', () => {
  it('appends each event as one JSON line, on disk when record() resolves, and to the system log', async () => {
    const log = open();
    const e = stamp({ type: 'rule.added', key: 'user.1000:ab', uid: 1000, path: '/usr/bin/wget', by: 1000, lifetime: 'always', admitted: [] });
    await log.record(e);
    expect(lines(path.join(dir, AUDIT_FILE))).toEqual([e]);
    expect(syslog).toEqual([[LOG_NOTICE, `tunnelgate audit: ${JSON.stringify(e)}`]]);
    await log.close();
  });

  it('keeps what is already there (append, never truncate)', async () => {
    writeFileSync(path.join(dir, AUDIT_FILE), `${JSON.stringify(refused(0))}\n`);
    const log = open();
    await log.record(refused(1));
    expect(lines(path.join(dir, AUDIT_FILE)).map((e) => e.seq)).toEqual([seq - 1, seq]);
    await log.close();
  });

  it('many events at once: all written, in order', async () => {
    const log = open();
    const all = Array.from({ length: 500 }, (_, i) => refused(i));
    await Promise.all(all.map((e) => log.record(e)));
    expect(lines(path.join(dir, AUDIT_FILE)).map((e) => e.seq)).toEqual(all.map((e) => e.seq));
    await log.close();
  });

  it('rotates by size: audit.log -> .1 -> … -> .keep, never splitting a line, dropping the oldest', async () => {
    const one = Buffer.byteLength(`${JSON.stringify(refused(0))}\n`);
    const log = open(one * 10, 3);
    const all: StampedEvent[] = [];
    for (let i = 0; i < 55; i++) {
      const e = refused(i);
      all.push(e);
      await log.record(e);
    }
    await log.close();
    const files = await auditFiles(dir, 3);
    expect(files.map((f) => path.basename(f.file))).toEqual(['audit.log', 'audit.log.1', 'audit.log.2', 'audit.log.3']);
    for (const f of files) expect(f.size).toBeLessThanOrEqual(one * 10);
    // audit.log holds the last 5, each of the 3 rotated files 10 before those; the oldest 20 are gone.
    const kept = [...files].reverse().flatMap((f) => lines(f.file));
    expect(kept.map((e) => e.seq)).toEqual(all.slice(-35).map((e) => e.seq));
    expect(lines(path.join(dir, 'audit.log')).map((e) => e.seq)).toEqual(all.slice(-5).map((e) => e.seq));
  });

  it('rotates in the middle of a burst too', async () => {
    const one = Buffer.byteLength(`${JSON.stringify(refused(0))}\n`);
    const log = open(one * 4, 5);
    const all = Array.from({ length: 20 }, (_, i) => refused(i));
    await Promise.all(all.map((e) => log.record(e)));
    await log.close();
    const files = await auditFiles(dir, 5);
    expect(files).toHaveLength(5);
    expect([...files].reverse().flatMap((f) => lines(f.file)).map((e) => e.seq)).toEqual(all.map((e) => e.seq));
  });

  it('a write failure is reported once and shown as a storage problem; nothing is lost: the lines are written when it clears', async () => {
    const errors: string[] = [];
    const health = new StorageHealth();
    const log = new AuditTrail({ dir: path.join(dir, 'f', 'sub'), maxBytes: 1 << 20, keep: 2, syslog: { log: () => undefined }, onError: (m) => errors.push(m), health, retryMs: 60_000 });
    writeFileSync(path.join(dir, 'f'), 'a file where a directory should be');
    await log.record(refused(1));
    await log.record(refused(2));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/cannot write the audit log/);
    expect(health.problems()).toEqual([expect.stringMatching(/^cannot write the audit log \(.*audit\.log\): the state directory .* cannot be written .*; 2 line\(s\) kept in memory$/)]);
    rmSync(path.join(dir, 'f'));
    await log.record(refused(3));
    expect(lines(path.join(dir, 'f', 'sub', AUDIT_FILE)).map((e) => e.seq)).toEqual([seq - 2, seq - 1, seq]);
    expect(health.problems()).toEqual([]);
    await log.close();
  });

  it('keeps at most maxQueued lines while writes fail, counts the dropped ones, and resumes on its own', async () => {
    const health = new StorageHealth();
    const changes: string[][] = [];
    health.onChange(() => changes.push(health.problems()));
    const log = new AuditTrail({ dir: path.join(dir, 'f'), maxBytes: 1 << 20, keep: 2, syslog: { log: (p, m) => syslog.push([p, m]) }, onError: () => undefined, health, maxQueued: 3, retryMs: 10 });
    writeFileSync(path.join(dir, 'f'), 'in the way');
    for (let i = 0; i < 5; i++) await log.record(refused(i));
    expect(log.droppedLines).toBe(2);
    expect(health.problems()[0]).toMatch(/3 line\(s\) kept in memory, 2 dropped$/);
    rmSync(path.join(dir, 'f'));
    await new Promise<void>((resolve) => health.onChange(() => resolve()));
    expect(lines(path.join(dir, 'f', AUDIT_FILE)).map((e) => e.seq)).toEqual([seq - 2, seq - 1, seq]);
    expect(changes.at(-1)).toEqual([]);
    expect(syslog.at(-1)?.[1]).toMatch(/writing .* again; 2 line\(s\) were dropped meanwhile/);
    await log.close();
  });
});

describe('system log', () => {
  it('priorities: failures err, refusals warning, decisions notice', () => {
    expect(priorityOf({ type: 'policy.failed', reason: 'x' })).toBe(LOG_ERR);
    expect(priorityOf({ type: 'decisions.corrupt', file: 'f', reason: 'x' })).toBe(LOG_ERR);
    expect(priorityOf({ type: 'api.refused', uid: 1, pid: 2, method: 'm', reason: 'r' })).toBe(LOG_WARNING);
    expect(priorityOf({ type: 'prompt.answered', id: 'i', uid: 1, exe: '/x', decision: 'deny', scope: 'tunnel', by: 1, count: 1 })).toBe(LOG_NOTICE);
  });

  it('the stderr fallback writes <priority> lines, which journald reads as the priority', () => {
    const out: string[] = [];
    stderrSyslog((l) => out.push(l)).log(LOG_WARNING, 'tunnelgate audit: {"type":"api.refused"}');
    expect(out).toEqual(['<4>tunnelgate audit: {"type":"api.refused"}\n']);
  });
});

describe('syslog fallback', () => {
  it('uses syslog(3) until it fails, then stderr for good', () => {
    const got: string[] = [];
    let fail = false;
    const switched: string[] = [];
    const primary = {
      log: (_p: number, m: string) => {
        if (fail) throw new Error('no addon');
        got.push(`sys ${m}`);
      },
    };
    const s = syslogWithFallback(primary, { log: (_p, m) => got.push(`err ${m}`) }, (w) => switched.push(w));
    s.log(5, 'a');
    fail = true;
    s.log(5, 'b');
    fail = false;
    s.log(5, 'c');
    expect(got).toEqual(['sys a', 'err b', 'err c']);
    expect(switched).toEqual(['no addon']);
  });
});

describe('seq across helper starts (lastAuditSeq)', () => {
  const file = () => path.join(dir, AUDIT_FILE);

  it('numbering goes on from the last line of audit.log: a second helper start does not begin at 1 again', async () => {
    // First start: three events.
    const first = new EventLog(() => undefined, 1000, await lastAuditSeq(dir));
    const t1 = open();
    const off1 = first.subscribe((e) => void t1.record(e));
    for (let i = 0; i < 3; i++) first.emit({ type: 'helper.started', pid: 100 + i, version: 't' });
    off1();
    await t1.close();
    // Second start on the same state dir.
    const second = new EventLog(() => undefined, 1000, await lastAuditSeq(dir));
    const t2 = open();
    const off2 = second.subscribe((e) => void t2.record(e));
    second.emit({ type: 'helper.started', pid: 200, version: 't' });
    off2();
    await t2.close();
    const seqs = lines(file()).map((e) => e.seq);
    expect(seqs).toEqual([1, 2, 3, 4]);
  });

  it('a torn last line (a crash mid-write) is skipped, and the next line starts on its own', async () => {
    writeFileSync(file(), `${JSON.stringify(refused(0))}\n${JSON.stringify(refused(1))}\n{"type":"api.refused","seq":9999`);
    expect(await lastAuditSeq(dir)).toBe(seq);
    const log = open();
    await log.record(stamp({ type: 'helper.started', pid: 1, version: 't' }));
    await log.close();
    const text = readFileSync(file(), 'utf8').split('\n');
    expect(text.at(-2)).toMatch(/^\{"type":"helper\.started"/);
    expect(JSON.parse(text.at(-2) as string).seq).toBe(seq);
  });

  it('just rotated: the last seq of audit.log.1; no file or garbage: 0', async () => {
    expect(await lastAuditSeq(dir)).toBe(0);
    writeFileSync(`${file()}.1`, `${JSON.stringify(refused(7))}\n`);
    writeFileSync(file(), '');
    expect(await lastAuditSeq(dir)).toBe(seq);
    writeFileSync(file(), 'not json\n{"seq": "x"}\n');
    expect(lastSeqOf('not json\n{"seq": "x"}\n{"seq": 1e400}\n')).toBe(0);
  });
});
