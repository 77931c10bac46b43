// Events reach the journal once (issue 11, part 5): the helper's wiring of the event bus and
// the audit trail over systemLogRoute (helper/kernel/journal.ts), against a real AF_UNIX
// datagram socket that a python3 receiver binds in place of /run/systemd/journal/socket.
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditTrail } from '../../../helper/store/audit-trail.js';
import { EventLog } from '../../../helper/core/event-bus.js';
import { systemLogRoute } from '../../../helper/kernel/journal.js';
import type { SystemLog } from '../../../helper/kernel/journal.js';
import { unixDgramSend } from '../../../helper/native/index.js';

const END = Buffer.from('MESSAGE=end of test\n');

/** Binds SOCKET, prints 'ready', then every datagram as one hex line until END arrives. */
function journalReceiver(socket: string) {
  const py = `import socket,sys
s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print('ready',flush=True)
while True:
    d=s.recv(262144)
    if d==bytes.fromhex(sys.argv[2]): break
    print(d.hex(),flush=True)`;
  const rx = execa('python3', ['-c', py, socket, END.toString('hex')], { timeout: 20_000 });
  const ready = new Promise<void>((resolve) => rx.stdout?.once('data', () => resolve()));
  return {
    ready,
    /** The datagrams received before END, decoded (values without newlines: KEY=VALUE lines). */
    async entries(): Promise<Array<Record<string, string>>> {
      unixDgramSend(socket, END);
      const lines = String((await rx).stdout).split('\n').slice(1).filter(Boolean);
      return lines.map((hex) => Object.fromEntries(Buffer.from(hex, 'hex').toString('utf8').trimEnd().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])));
    },
  };
}

let dir: string;
let socket: string;
let fallback: Array<[number, string]>;
let stderr: string[];
const fallbackLog: SystemLog = { log: (p, m) => void fallback.push([p, m]) };

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tg-journal-'));
  socket = path.join(dir, 'journal.socket');
  fallback = [];
  stderr = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The helper's wiring (startup.ts: runHelper, openAuditTrail) over ROUTE. */
function wire(route: ReturnType<typeof systemLogRoute>) {
  const events = new EventLog(route.eventsToStderr ? (l) => void stderr.push(l) : () => undefined);
  const trail = new AuditTrail({ dir: path.join(dir, 'state'), maxBytes: 1 << 20, keep: 2, syslog: route.syslog });
  events.subscribe((e) => void trail.record(e));
  return { events, trail };
}

function emitThree(events: EventLog): void {
  events.emit({ type: 'attempt.denied', attempt: { time: 't', uid: 1000, pid: 4242, exe: '/usr/bin/curl', dst: { addr: '198.18.0.2', port: 443, proto: 'tcp' }, iface: 'wg0', mode: 'enforce' } });
  events.emit({ type: 'process.admitted', pid: 77, uid: 1001, path: '/usr/bin/ssh', rule: 'corp-base/ssh' });
  events.emit({ type: 'profile.rejected', file: '/etc/tunnelgate/profiles.d/a.json', problems: ['rules.0.id: missing'] });
}

describe('events under systemd (stderr is the journal)', () => {
  it('one native datagram per event with its fields; nothing on stderr, nothing through syslog(3)', async () => {
    const rx = journalReceiver(socket);
    await rx.ready;
    const route = systemLogRoute({ env: { JOURNAL_STREAM: '25:9', INVOCATION_ID: 'x' }, stderrStat: () => ({ dev: 25, ino: 9 }), socket, fallback: fallbackLog });
    expect(route).toMatchObject({ via: 'journal', eventsToStderr: false });
    const { events, trail } = wire(route);
    emitThree(events);
    await trail.close();
    const got = await rx.entries();
    expect(got.map((f) => f.TUNNELGATE_EVENT)).toEqual(['attempt.denied', 'process.admitted', 'profile.rejected']);
    expect(got[0]).toMatchObject({ PRIORITY: '6', SYSLOG_IDENTIFIER: 'tunnelgate', TUNNELGATE_EXE: '/usr/bin/curl', TUNNELGATE_UID: '1000', TUNNELGATE_PID: '4242', TUNNELGATE_DST: '198.18.0.2:443/tcp' });
    expect(got[0]?.MESSAGE).toBe('tunnelgate: attempt.denied uid=1000 pid=4242 exe=/usr/bin/curl iface=wg0 mode=enforce dst=198.18.0.2:443/tcp');
    expect(got[1]).toMatchObject({ PRIORITY: '5', TUNNELGATE_EXE: '/usr/bin/ssh', TUNNELGATE_PATH: '/usr/bin/ssh', TUNNELGATE_UID: '1001', TUNNELGATE_PID: '77', TUNNELGATE_RULE: 'corp-base/ssh' });
    expect(got[2]).toMatchObject({ PRIORITY: '4', TUNNELGATE_PROBLEMS: 'rules.0.id: missing' });
    expect(JSON.parse(got[1]?.TUNNELGATE_JSON ?? '')).toMatchObject({ type: 'process.admitted', seq: 2 });
    expect(stderr).toEqual([]);
    expect(fallback).toEqual([]);
  }, 30_000);

  it('a datagram journald refuses goes to syslog(3) instead, once', async () => {
    const route = systemLogRoute({ env: { INVOCATION_ID: 'x' }, socket: path.join(dir, 'nobody-listens'), socketExists: () => true, fallback: fallbackLog });
    const { events, trail } = wire(route);
    emitThree(events);
    await trail.close();
    expect(fallback.map(([p, m]) => [p, JSON.parse(m.replace('tunnelgate audit: ', '')).type])).toEqual([[6, 'attempt.denied'], [5, 'process.admitted'], [4, 'profile.rejected']]);
  });
});

describe('events outside systemd', () => {
  it('in a terminal on a systemd machine: the journal once, and the JSON lines on the terminal', async () => {
    const rx = journalReceiver(socket);
    await rx.ready;
    const route = systemLogRoute({ env: {}, socket, fallback: fallbackLog });
    expect(route).toMatchObject({ via: 'journal', eventsToStderr: true });
    const { events, trail } = wire(route);
    emitThree(events);
    await trail.close();
    expect((await rx.entries()).length).toBe(3);
    expect(stderr.length).toBe(3);
    expect(fallback).toEqual([]);
  }, 30_000);

  it('without journald: syslog(3) and stderr, as before', async () => {
    const route = systemLogRoute({ env: {}, socket: path.join(dir, 'absent'), fallback: fallbackLog });
    expect(route).toMatchObject({ via: 'syslog', eventsToStderr: true });
    const { events, trail } = wire(route);
    emitThree(events);
    await trail.close();
    expect(fallback.length).toBe(3);
    expect(fallback[0]?.[1]).toMatch(/^tunnelgate audit: \{"type":"attempt.denied"/);
    expect(stderr.length).toBe(3);
  });
});
