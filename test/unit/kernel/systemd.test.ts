// sd_notify and the journal's native protocol (helper/kernel/sd-notify.ts, journal.ts, and
// the addon's unixDgramSend, which a python3 datagram socket receives for real here).
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StampedEvent } from '../../../common/events.js';
import { encodeJournalEntry, eventFields, fieldName, JournalSink, underSystemd } from '../../../helper/kernel/journal.js';
import { encodeNotify, notifyReady, notifySocket, sdNotify } from '../../../helper/kernel/sd-notify.js';
import { unixDgramSend } from '../../../helper/native/index.js';

/** Decodes the journal's native format (systemd.journal-fields(7), "binary safe" form too). */
function decodeJournal(b: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < b.length) {
    const nl = b.indexOf(0x0a, i);
    const line = b.subarray(i, nl).toString('utf8');
    const eq = line.indexOf('=');
    if (eq >= 0) {
      out[line.slice(0, eq)] = line.slice(eq + 1);
      i = nl + 1;
    } else {
      const len = Number(b.readBigUInt64LE(nl + 1));
      out[line] = b.subarray(nl + 9, nl + 9 + len).toString('utf8');
      expect(b[nl + 9 + len]).toBe(0x0a);
      i = nl + 10 + len;
    }
  }
  return out;
}

const denied: StampedEvent = {
  type: 'attempt.denied',
  seq: 12,
  time: '2026-11-30T06:00:00.000Z',
  attempt: { time: '2026-11-30T06:00:00.000Z', uid: 1000, pid: 4242, exe: '/usr/bin/curl', dst: { addr: '198.18.0.2', port: 443, proto: 'tcp' }, iface: 'wg0', mode: 'enforce' },
};

describe('sd_notify', () => {
  it('encodes KEY=VALUE lines and refuses what the protocol cannot carry', () => {
    expect(encodeNotify({ READY: 1, STATUS: 'gate in force' }).toString()).toBe('READY=1\nSTATUS=gate in force\n');
    expect(() => encodeNotify({ STATUS: 'two\nlines' })).toThrow(/newline/);
    expect(() => encodeNotify({ ready: 1 })).toThrow(/invalid key/);
  });

  it('is a no-op without NOTIFY_SOCKET, and sends to it with one', () => {
    const sent: [string, string][] = [];
    const send = (s: string, d: Buffer) => void sent.push([s, d.toString()]);
    expect(notifyReady('x', {}, send)).toBe(false);
    expect(notifySocket({ NOTIFY_SOCKET: 'relative' })).toBeUndefined();
    expect(notifyReady('gate in force', { NOTIFY_SOCKET: '@/org/freedesktop/systemd1/notify/1' }, send)).toBe(true);
    expect(sdNotify({ STOPPING: 1 }, { NOTIFY_SOCKET: '/run/systemd/notify' }, send)).toBe(true);
    expect(sent).toEqual([
      ['@/org/freedesktop/systemd1/notify/1', 'READY=1\nSTATUS=gate in force\n'],
      ['/run/systemd/notify', 'STOPPING=1\n'],
    ]);
  });
});

describe('journal fields', () => {
  it('names fields as journald wants them', () => {
    expect(fieldName('profileId')).toBe('PROFILE_ID');
    expect(fieldName('exe')).toBe('EXE');
    expect(fieldName('previousVersion')).toBe('PREVIOUS_VERSION');
  });

  it('a denied attempt carries exe, uid, pid, dst and the event type as fields', () => {
    const f = eventFields(denied, 'tunnelgate audit: denied /usr/bin/curl', 4);
    expect(f).toMatchObject({
      MESSAGE: 'tunnelgate audit: denied /usr/bin/curl',
      PRIORITY: 4,
      SYSLOG_IDENTIFIER: 'tunnelgate',
      TUNNELGATE_EVENT: 'attempt.denied',
      TUNNELGATE_SEQ: 12,
      TUNNELGATE_EXE: '/usr/bin/curl',
      TUNNELGATE_UID: '1000',
      TUNNELGATE_PID: '4242',
      TUNNELGATE_DST: '198.18.0.2:443/tcp',
      TUNNELGATE_IFACE: 'wg0',
    });
    expect(JSON.parse(String(f.TUNNELGATE_JSON))).toEqual(denied);
  });

  it('other events: every scalar field, lists joined', () => {
    const e: StampedEvent = { type: 'profile.rejected', seq: 3, time: 't', file: '/etc/tunnelgate/profiles.d/a.json', profileId: 'corp', problems: ['a: bad', 'b: worse'] };
    expect(eventFields(e, 'm', 4)).toMatchObject({ TUNNELGATE_FILE: '/etc/tunnelgate/profiles.d/a.json', TUNNELGATE_PROFILE_ID: 'corp', TUNNELGATE_PROBLEMS: 'a: bad, b: worse' });
  });

  it('encodes a value with a newline in the binary-safe form', () => {
    const b = encodeJournalEntry({ MESSAGE: 'one\ntwo', PRIORITY: 6, TUNNELGATE_EVENT: 'x' });
    expect(decodeJournal(b)).toEqual({ MESSAGE: 'one\ntwo', PRIORITY: '6', TUNNELGATE_EVENT: 'x' });
    expect(() => encodeJournalEntry({ _PID: 1 })).toThrow(/invalid field/);
  });

  it('the sink writes each event once: journal, or the fallback when the journal refuses', () => {
    const journal: Buffer[] = [];
    const fallback: string[] = [];
    const ok = new JournalSink((_p, m) => fallback.push(m), (_s, d) => void journal.push(d));
    ok.log(denied, 'm1', 4);
    const broken = new JournalSink((_p, m) => fallback.push(m), () => {
      throw new Error('sendto: No such file or directory');
    });
    broken.log(denied, 'm2', 4);
    expect(journal.map((d) => decodeJournal(d).MESSAGE)).toEqual(['m1']);
    expect(fallback).toEqual(['m2']);
  });

  it('knows it runs under systemd by JOURNAL_STREAM naming stderr, or INVOCATION_ID', () => {
    const stat = () => ({ dev: 25, ino: 9 });
    expect(underSystemd({ JOURNAL_STREAM: '25:9' }, stat)).toBe(true);
    expect(underSystemd({ JOURNAL_STREAM: '25:10' }, stat)).toBe(false); // stderr was redirected
    expect(underSystemd({ INVOCATION_ID: 'abc' }, stat)).toBe(true);
    expect(underSystemd({}, stat)).toBe(false);
  });
});

describe('unixDgramSend (native, sd.c)', () => {
  /** A python3 AF_UNIX datagram receiver at ADDR; resolves with what it received. */
  async function roundTrip(addr: string, data: Buffer): Promise<Buffer> {
    const py = `import socket,sys
s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)
a=sys.argv[1]
s.bind('\\0'+a[1:] if a.startswith('@') else a)
print('ready',flush=True)
sys.stdout.buffer.write(s.recv(65536).hex().encode())`;
    const rx = execa('python3', ['-c', py, addr], { timeout: 10_000 });
    await new Promise<void>((resolve) => rx.stdout?.once('data', () => resolve()));
    unixDgramSend(addr, data);
    const out = String((await rx).stdout).split('\n')[1] ?? '';
    return Buffer.from(out, 'hex');
  }

  it('delivers one datagram to a path and to an abstract socket', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tg-sd-'));
    try {
      const entry = encodeJournalEntry({ MESSAGE: 'a\nb', TUNNELGATE_EVENT: 'x' });
      expect(await roundTrip(path.join(dir, 'sock'), entry)).toEqual(entry);
      expect((await roundTrip(`@tunnelgate-test-${process.pid}`, encodeNotify({ READY: 1 }))).toString()).toBe('READY=1\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('throws the errno text when nobody listens', () => {
    expect(() => unixDgramSend('/nonexistent/tunnelgate.sock', Buffer.from('x'))).toThrow(/sendto: No such file or directory/);
  });
});
