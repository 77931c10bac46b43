// The renderer's pure parts, under Node: words for prompts and events, the audit
// summary, the event list. The DOM is tested in Chromium (renderer.test.ts).
import { describe, expect, it } from 'vitest';
import type { AuditReport } from '../../../common/audit.js';
import { COVERAGE_NOTE } from '../../../common/audit.js';
import type { StampedEvent } from '../../../common/events.js';
import { summarizeAudit } from '../../../renderer/audit-summary.js';
import { mergeEvents } from '../../../renderer/event-list.js';
import {
  describeDeadline,
  describeEvent,
  describeParents,
  formatCommandLine,
  formatRemaining,
  glyphLetter,
  visible,
} from '../../../renderer/format.js';
import { AUDIT_REPORT } from '../main/fixtures.js';

describe('text a program chose', () => {
  it.each([
    ['/usr/bin/curl', '/usr/bin/curl'],
    ['a\nb\tc\rd', 'a\\nb\\tc\\rd'],
    ['gpj.\u202eexe', 'gpj.\\u202eexe'],
    ['\u0000\u001b[31m\u2066x\u2069', '\\u0000\\u001b[31m\\u2066x\\u2069'],
    ['café ünïcode ✓', 'café ünïcode ✓'],
  ] as const)('visible(): line breaks, controls and direction overrides written out: %j → %j', (input, expected) => {
    expect(visible(input)).toBe(expected);
  });

  it('formatCommandLine(): quotes only where a shell would need it', () => {
    expect(formatCommandLine(['curl', '-sS', 'https://198.18.0.10/a?b=1'])).toBe("curl -sS 'https://198.18.0.10/a?b=1'");
    expect(formatCommandLine(['sh', '-c', "echo it's here", ''])).toBe("sh -c 'echo it'\\''s here' ''");
    expect(formatCommandLine(['x', 'line\nbreak'])).toBe("x 'line\\nbreak'");
  });

  it('describeParents(): nearest first', () => {
    expect(
      describeParents([
        { pid: 5100, exe: '/usr/bin/bash' },
        { pid: 1, exe: '/usr/lib/systemd/systemd' },
      ]),
    ).toBe('/usr/bin/bash (pid 5100) ← /usr/lib/systemd/systemd (pid 1)');
    expect(describeParents([])).toBe('no parent known');
  });

  it('glyphLetter(): a letter or digit of the name, else "?"', () => {
    expect(glyphLetter('firefox')).toBe('F');
    expect(glyphLetter('<b>Totally')).toBe('B');
    expect(glyphLetter('  ')).toBe('?');
  });
});

describe('time left to answer', () => {
  const now = Date.parse('2026-11-22T08:05:00.000Z');
  it.each([
    ['2026-11-22T08:05:30.000Z', 'Denied in 30 s without an answer.', false],
    ['2026-11-22T08:05:09.500Z', 'Denied in 10 s without an answer.', true],
    ['2026-11-22T08:07:05.000Z', 'Denied in 2 min 05 s without an answer.', false],
    ['2026-11-22T08:05:00.000Z', 'Time is up: no answer counts as deny.', true],
    [undefined, 'Waiting for an answer.', false],
    ['not a time', 'Waiting for an answer.', false],
  ])('%s', (deadline, text, urgent) => {
    expect(describeDeadline(deadline, now)).toEqual({ text, urgent });
  });
  it('formatRemaining rounds up', () => {
    expect(formatRemaining(1)).toBe('1 s');
    expect(formatRemaining(-5)).toBe('0 s');
  });
});

describe('describeEvent: prompts, decisions, blocked attempts', () => {
  const at = { seq: 1, time: '2026-11-22T08:05:00.000Z' };
  /** One event without its stamp (checked against the union by describeEvent's switch, not here). */
  const d = (e: { type: StampedEvent['type'] } & Record<string, unknown>) => describeEvent({ ...at, ...e } as unknown as StampedEvent);
  it('each kind in words, with its severity', () => {
    expect(
      d({
        type: 'attempt.denied',
        attempt: { time: at.time, uid: 1000, pid: 5150, exe: '/usr/bin/nc', dst: { addr: '198.18.0.10', port: 22, proto: 'tcp' }, iface: 'wg0', mode: 'enforce' },
      }),
    ).toEqual({ title: 'Blocked', detail: '/usr/bin/nc (pid 5150, uid 1000) → 198.18.0.10:22/tcp on wg0', severity: 'block' });
    expect(
      d({ type: 'attempt.denied', attempt: { time: at.time, uid: 1000, dst: { addr: 'fd00:7467::2', port: 53, proto: 'udp' }, iface: 'wg0', mode: 'audit' } }),
    ).toEqual({ title: 'Would be blocked', detail: '(process gone) (uid 1000) → [fd00:7467::2]:53/udp on wg0', severity: 'warn' });
    expect(
      d({ type: 'prompt.opened', id: 'a'.repeat(16), uid: 1000, pid: 5150, exe: '/usr/bin/curl', dst: '198.18.0.10:443/tcp', program: 'curl', warnings: [] }),
    ).toEqual({ title: 'Asked', detail: 'curl (/usr/bin/curl, uid 1000) wants 198.18.0.10:443/tcp', severity: 'info' });
    expect(
      d({ type: 'prompt.answered', id: 'a'.repeat(16), uid: 1000, exe: '/usr/bin/curl', decision: 'allow-once', scope: 'destination', by: 1000, count: 3 }),
    ).toEqual({ title: 'Answered', detail: '/usr/bin/curl: allowed once (only the destination it tried)', severity: 'info' });
    expect(d({ type: 'prompt.answered', id: 'a'.repeat(16), uid: 1000, exe: '/usr/bin/curl', decision: 'deny-always', scope: 'tunnel', by: 0, count: 3 })).toEqual({
      title: 'Answered',
      detail: '/usr/bin/curl: always denied, by uid 0',
      severity: 'warn',
    });
    expect(d({ type: 'prompt.closed', id: 'a'.repeat(16), uid: 1000, exe: '/usr/bin/curl', count: 3, reason: 'timeout' })).toEqual({
      title: 'Prompt closed',
      detail: '/usr/bin/curl (uid 1000): no answer in time, so denied',
      severity: 'warn',
    });
    expect(
      d({ type: 'rule.added', key: 'user.1000:x', uid: 1000, path: '/usr/bin/curl', by: 1000, lifetime: 'until 2026-11-22T09:05:00.000Z', destinations: ['198.18.0.10/32 tcp 443'], admitted: [5150] }),
    ).toEqual({ title: 'Rule added', detail: '/usr/bin/curl for uid 1000, until 2026-11-22T09:05:00.000Z, only 198.18.0.10/32 tcp 443', severity: 'info' });
    expect(d({ type: 'rule.removed', key: 'user.1000:x', uid: 1000, path: '/usr/bin/curl', reason: 'process-exited' })).toEqual({
      title: 'Rule removed',
      detail: '/usr/bin/curl (uid 1000): the process exited',
      severity: 'info',
    });
    expect(d({ type: 'binary.changed', uid: 1000, path: '/usr/bin/curl', previous: '0'.repeat(64), sha256: 'f'.repeat(64), since: '2026-11-01T00:00:00.000Z' }).severity).toBe('warn');
  });
  it('a path with a line break cannot forge a second event line', () => {
    expect(d({ type: 'launch.refused', uid: 1000, pid: 7, path: '/tmp/a\u202eb', reason: 'no rule allows /tmp/a\u202eb' }).detail).toBe(
      '/tmp/a\\u202eb (pid 7, uid 1000): no rule allows /tmp/a\\u202eb',
    );
    expect(d({ type: 'rule.removed', key: 'k', uid: 1, path: '/tmp/x\nBlocked /usr/bin/ssh', reason: 'revoked' }).detail).toBe('/tmp/x\\nBlocked /usr/bin/ssh (uid 1): revoked');
  });
});

describe('summarizeAudit', () => {
  it('programs and destinations, most attempts first, with first and last seen; the coverage note verbatim', () => {
    const s = summarizeAudit(AUDIT_REPORT);
    expect(s).toEqual({
      days: 30,
      attempts: 56,
      auditAttempts: 16,
      programCount: 3,
      destinationCount: 3,
      coverage: COVERAGE_NOTE,
      programs: [
        { exe: '/opt/corp/<b>report</b>', attempts: 40, destinations: 1, uids: [1001], modes: ['enforce'], firstSeen: '2026-11-10T08:00:00.000Z', lastSeen: '2026-11-21T08:00:00.000Z' },
        { exe: '/usr/bin/curl', attempts: 15, destinations: 2, uids: [1000], modes: ['audit'], firstSeen: '2026-11-02T09:00:00.000Z', lastSeen: '2026-11-20T17:30:00.000Z' },
        { attempts: 1, destinations: 1, uids: [1000], modes: ['audit'], firstSeen: '2026-11-15T12:00:00.000Z', lastSeen: '2026-11-15T12:00:00.000Z' },
      ],
      destinations: [
        { destination: '198.18.0.10:443/tcp', attempts: 52, programs: 2, modes: ['enforce', 'audit'], firstSeen: '2026-11-02T09:00:00.000Z', lastSeen: '2026-11-21T08:00:00.000Z' },
        { destination: '198.18.0.11:443/tcp', attempts: 3, programs: 1, modes: ['audit'], firstSeen: '2026-11-05T10:00:00.000Z', lastSeen: '2026-11-06T10:00:00.000Z' },
        { destination: '[fd00:7467::53]:53/udp', attempts: 1, programs: 1, modes: ['audit'], firstSeen: '2026-11-15T12:00:00.000Z', lastSeen: '2026-11-15T12:00:00.000Z' },
      ],
    });
  });

  it('only the top N rows, the totals over all', () => {
    const records = Array.from({ length: 25 }, (_, i) => ({
      mode: 'enforce' as const,
      uid: 1000,
      exe: `/usr/bin/p${String(i).padStart(2, '0')}`,
      dst: { addr: `198.18.0.${i + 1}`, port: 443, proto: 'tcp' as const },
      count: i + 1,
      firstSeen: '2026-11-01T00:00:00.000Z',
      lastSeen: '2026-11-02T00:00:00.000Z',
    }));
    const report: AuditReport = { days: 7, records, coverage: 'c' };
    const s = summarizeAudit(report, 10);
    expect(s.programs).toHaveLength(10);
    expect(s.programs[0]?.exe).toBe('/usr/bin/p24');
    expect(s.programCount).toBe(25);
    expect(s.attempts).toBe((25 * 26) / 2);
  });

  it('nothing recorded: zero, and still the note', () => {
    expect(summarizeAudit({ days: 30, records: [], coverage: COVERAGE_NOTE })).toMatchObject({ attempts: 0, programs: [], destinations: [], coverage: COVERAGE_NOTE });
  });
});

describe('mergeEvents', () => {
  const e = (seq: number, time = `2026-11-22T08:00:${String(seq).padStart(2, '0')}.000Z`): StampedEvent => ({ seq, time, type: 'helper.started', pid: 1, version: 'v' });
  it('appends, skips repeats, keeps the newest max, oldest first', () => {
    expect(mergeEvents([e(1), e(2)], { events: [e(2), e(3)], replace: false })).toEqual([e(1), e(2), e(3)]);
    expect(mergeEvents([e(3)], { events: [e(1), e(2)], replace: false })).toEqual([e(1), e(2), e(3)]); // an answer that crossed a notification
    expect(mergeEvents([e(1), e(2), e(3)], { events: [e(4)], replace: false }, 2)).toEqual([e(3), e(4)]);
  });
  it('a replace (reconnection) starts over; a restarted helper counting from 1 again is no repeat', () => {
    expect(mergeEvents([e(5), e(6)], { events: [e(1, '2026-11-22T09:00:00.000Z')], replace: true })).toEqual([e(1, '2026-11-22T09:00:00.000Z')]);
    expect(mergeEvents([e(1)], { events: [e(1, '2026-11-22T09:00:00.000Z')], replace: false })).toEqual([e(1), e(1, '2026-11-22T09:00:00.000Z')]);
  });
});
