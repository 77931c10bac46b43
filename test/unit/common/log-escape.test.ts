// Text an attacker controls (program paths, argv, script names, interface names, profile
// ids) never reaches a human-read log raw: every writer of the helper's logs and state
// files escapes it (common/format.ts logLine / safeJson), and the JSON ones stay valid
// JSON that gives back the exact original.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GateEvent, StampedEvent } from '../../../common/events.js';
import { logLine, safeJson, safeJsonIndented } from '../../../common/format.js';
import { escapeConsole, logError } from '../../../common/node/log.js';
import { EventLog } from '../../../helper/core/event-bus.js';
import { eventFields } from '../../../helper/kernel/journal.js';
import { AUDIT_FILE, AuditTrail, stderrSyslog } from '../../../helper/store/audit-trail.js';
import { DecisionsStore } from '../../../helper/store/decisions.js';

/** What must never stand raw in a log: C0 (but the line ends a writer puts itself), DEL, C1, bidi marks and overrides, U+2028/9. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const RAW_OR_NEWLINE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** Examples of each member of the kind: a right-to-left override, an isolate, ESC, the 8-bit CSI, a forged line, DEL, a line separator. */
const HOSTILE = [
  '/home/eve/\u202egpj.exe',
  '/tmp/\u2066x\u2069/curl',
  '/tmp/\u001b[2J\u001b[1;1Hclean',
  '/tmp/\u009b31mred',
  '/tmp/a\ntunnelgate: helper.started forged',
  '/tmp/del\u007f',
  '/tmp/ls\u2028sep\u2029',
  '/tmp/\u200fmark\u061c',
];
const hostileText = fc.stringMatching(/^[a-z/]{0,8}$/).chain((a) =>
  fc.tuple(fc.constant(a), fc.constantFrom(...[...'\u202e\u2066\u001b\u009b\n\r\t\u007f\u2028\u200f\u061c\u0000']), fc.stringMatching(/^[a-z.]{0,8}$/)).map(([x, c, y]) => `${x}${c}${y}`),
);

const attempt = (exe: string): StampedEvent => ({
  type: 'attempt.denied',
  attempt: { uid: 1000, pid: 4242, exe, dst: { addr: '198.18.0.2', port: 443, proto: 'tcp' }, iface: `wg\u202e0`, mode: 'enforce', cmdline: [exe, '--flag\u202e'] },
  seq: 1,
  time: '2026-11-30T12:00:00.000Z',
} as unknown as StampedEvent);
const ruleAdded = (p: string): GateEvent => ({ type: 'rule.added', key: 'user.1000:ab', uid: 1000, path: p, by: 1000, lifetime: 'always', admitted: [] });

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tg-logesc-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('the escape of log writers (common/format.ts)', () => {
  it('safeJson: valid JSON, nothing raw, the same value back; indented too', () => {
    fc.assert(
      fc.property(hostileText, (s) => {
        for (const out of [safeJson({ exe: s }), safeJsonIndented({ exe: s, list: [s] })]) {
          expect(out.split('\n').some((l) => RAW.test(l))).toBe(false);
          expect(JSON.parse(out).exe).toBe(s);
        }
      }),
      { seed: 7467, numRuns: 300 },
    );
  });

  it('events --json: one line per event (list.map(safeJson) never indents)', () => {
    const lines = [{ a: 1, b: ['x'] }, { c: '\u202e' }, { d: 2 }].map(safeJson);
    expect(lines.every((l) => !l.includes('\n'))).toBe(true);
  });

  it('logLine: one line, nothing raw', () => {
    fc.assert(
      fc.property(hostileText, (s) => {
        expect(RAW_OR_NEWLINE.test(logLine(`cannot mark ${s}`))).toBe(false);
      }),
      { seed: 7467, numRuns: 300 },
    );
  });
});

describe('every writer of a human-read log escapes at the writer', () => {
  it.each(HOSTILE)('audit.log and its system-log copy: %j', async (exe) => {
    const syslog: string[] = [];
    const trail = new AuditTrail({ dir, maxBytes: 1 << 20, keep: 1, syslog: { log: (_p, m) => syslog.push(m) } });
    const e = attempt(exe);
    await trail.record(e);
    await trail.close();
    const text = readFileSync(path.join(dir, AUDIT_FILE), 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.slice(0, -1).split('\n');
    expect(lines).toHaveLength(1);
    expect(RAW.test(lines[0] as string)).toBe(false);
    expect(JSON.parse(lines[0] as string)).toEqual(e);
    expect(syslog).toHaveLength(1);
    expect(RAW_OR_NEWLINE.test(syslog[0] as string)).toBe(false);
  });

  it.each(HOSTILE)('stderr: the syslog fallback, events and error lines: %j', (exe) => {
    const out: string[] = [];
    stderrSyslog((l) => out.push(l)).log(4, `tunnelgate: exec hold: cannot mark ${exe}`);
    new EventLog((l) => out.push(l)).emit(ruleAdded(exe));
    logError(`prompt for ${exe}: gone`, (l) => out.push(l));
    expect(out).toHaveLength(3);
    for (const l of out) {
      expect(l.endsWith('\n')).toBe(true);
      expect(RAW_OR_NEWLINE.test(l.slice(0, -1)), JSON.stringify(l)).toBe(false);
    }
    expect((JSON.parse(out[1] as string) as { path: string }).path).toBe(exe);
  });

  it.each(HOSTILE)('the journal: MESSAGE and TUNNELGATE_JSON: %j', (exe) => {
    const f = eventFields(attempt(exe), '', 6);
    expect(RAW_OR_NEWLINE.test(String(f.MESSAGE))).toBe(false);
    expect(RAW_OR_NEWLINE.test(String(f.TUNNELGATE_JSON))).toBe(false);
    expect(JSON.parse(String(f.TUNNELGATE_JSON))).toEqual(attempt(exe));
  });

  it.each(HOSTILE)('decisions.json (read by admins with cat and jq): %j', async (p) => {
    const { store } = await DecisionsStore.open(dir);
    await store.update((doc) => {
      doc.allows.push({ id: '0123456789abcdef', uid: 1000, path: p, lifetime: { kind: 'always' }, createdAt: '2026-11-30T12:00:00.000Z', createdBy: 1000, via: 'api' });
    });
    const text = readFileSync(store.file, 'utf8');
    expect(text.split('\n').some((l) => RAW.test(l))).toBe(false);
    expect((JSON.parse(text) as { allows: Array<{ path: string }> }).allows[0]?.path).toBe(p);
    const again = await DecisionsStore.open(dir);
    expect(again.store.current.allows[0]?.path).toBe(p);
  });
});

describe('the helper process: console.error and the journal fields', () => {
  it.each(HOSTILE)('console.error after escapeConsole (start-up notes, faults): %j', (name) => {
    const out: string[] = [];
    const saved = [console.error, console.warn];
    try {
      escapeConsole((l) => out.push(l));
      console.error(`tunnelgate: interfaces: ${name} went away`);
      console.warn('tunnelgate: reload failed:', new Error(`profile ${name}`).message);
    } finally {
      [console.error, console.warn] = saved as [typeof console.error, typeof console.warn];
    }
    expect(out).toHaveLength(2);
    for (const l of out) expect(RAW_OR_NEWLINE.test(l.slice(0, -1)), JSON.stringify(l)).toBe(false);
  });

  it.each(HOSTILE)('every TUNNELGATE_ field: %j', (exe) => {
    const f = eventFields(attempt(exe), '', 6);
    for (const [k, v] of Object.entries(f)) expect(RAW_OR_NEWLINE.test(String(v)), k).toBe(false);
  });
});
