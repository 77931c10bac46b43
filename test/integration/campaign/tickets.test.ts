// Campaign rows of the exec hold's verdict tickets (issue 10, exec delay): after JS has
// admitted an exec of a file by a uid, the hold's reader thread admits the next execs of
// that file by that uid by itself, replaying the verdict. The kind: a ticket must never
// admit what JS would refuse. Each row first earns a ticket (an exec admitted in JS, then
// one admitted `at: 'ticket'`: the positive control), changes one fact the verdict rests
// on, and expects the next exec refused by packets (curl's own timeout). Real helper,
// real fanotify exec hold, real tunnel, in the lab's namespaces.
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { labAndHelper, expectDropped } from '../../lab/suite.js';
import { row } from '../../lab/campaign.js';
import { waitFor } from '../../lab/fixture.js';
import { buildRawexec } from '../../lab/rawexec.js';

const bin: Record<string, string> = {};

const fx = labAndHelper({
  prepare: ({ copyBinary }) => {
    for (const n of ['dir', 'env', 'removed', 'pinned', 'traced']) bin[n] = copyBinary(realpathSync('/usr/bin/curl'), `${n}/curl`);
    bin.other = copyBinary(realpathSync('/usr/bin/curl'), 'unnamed/curl');
    bin.confine = copyBinary(realpathSync('/bin/bash'), 'confine/bash');
  },
});

const URL = () => fx.lab.urls.corpV4;
const http = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--connect-timeout', '3', '-m', '5'];

async function enforce(rules: Array<Record<string, unknown>>): Promise<void> {
  const before = fx.events().filter((e) => e.type === 'policy.applied').length;
  fx.writeProfile('corp-tickets', fx.profile({ id: 'corp-tickets', rules }));
  await waitFor('the profile applied', () => (fx.events().filter((e) => e.type === 'policy.applied').length > before ? true : undefined));
}

/** Admissions of `file` since event index `from`, by how they were made. */
function admissions(file: string, from: number): Array<'exec' | 'ticket' | 'watcher'> {
  return fx.events().slice(from)
    .filter((e) => e.type === 'process.admitted' && (e as { path?: string }).path === file)
    .map((e) => (e as { at?: 'exec' | 'ticket' }).at ?? 'watcher');
}

/**
 * Runs `file` (curl) until an exec of it is admitted by a ticket, each run getting 200: the
 * first is admitted in JS at the hold (or later, when its hash was not known yet), and
 * earns the ticket. Fails if no ticket is used within 4 runs (then the row would prove
 * nothing about tickets).
 */
async function earnTicket(file: string): Promise<void> {
  const from = fx.events().length;
  for (let i = 0; i < 4 && !admissions(file, from).includes('ticket'); i++) {
    const r = await fx.run(file, [...http, URL()]);
    expect({ run: i, out: String(r.stdout) }).toEqual({ run: i, out: '200' });
    await waitFor(`admission ${i + 1} of ${file}`, () => (admissions(file, from).length > i ? true : undefined));
  }
  expect(admissions(file, from)).toContain('ticket');
}

/**
 * `file` run once more is refused by packets, and was never admitted at all: the watcher's
 * look after a ticket admission would release it a moment later, but a program that sends
 * and exits within that moment would have had the tunnel.
 */
async function refusedOutright(file: string, what: string, run: () => Promise<{ stdout: unknown; exitCode?: number }>): Promise<void> {
  const from = fx.events().length;
  expectDropped(await run() as { stdout: string; exitCode: number }, what);
  expect({ what, admitted: admissions(file, from) }).toEqual({ what, admitted: [] });
}

row('verdict tickets', 'a directory above the binary made writable by everyone after its ticket: the next exec is refused', async () => {
  await enforce([{ id: 'dir', binary: { path: bin.dir } }]);
  await earnTicket(String(bin.dir));
  const dir = path.dirname(String(bin.dir));
  const mode = statSync(dir).mode & 0o7777;
  chmodSync(dir, 0o777);
  try {
    await refusedOutright(String(bin.dir), 'the ticketed binary under a world-writable directory', () => fx.run(String(bin.dir), [...http, URL()]));
  } finally {
    chmodSync(dir, mode);
  }
  // The same exec with the directory back as it was: admitted again.
  expect(String((await fx.run(String(bin.dir), [...http, URL()])).stdout)).toBe('200');
}, 120_000);

row('verdict tickets', 'LD_PRELOAD given to an exec of a ticketed binary: refused', async () => {
  await enforce([{ id: 'env', binary: { path: bin.env } }]);
  await earnTicket(String(bin.env));
  // A library that does not exist: ld.so says so and goes on, so only the gate refuses.
  await refusedOutright(String(bin.env), 'the ticketed binary with LD_PRELOAD', () => fx.run(String(bin.env), [...http, URL()], { env: { LD_PRELOAD: '/nonexistent/libevil.so' } }));
  // An empty LD_PRELOAD loads nothing (exec-env.ts): the thread leaves it to JS, which admits it.
  expect(String((await fx.run(String(bin.env), [...http, URL()], { env: { LD_PRELOAD: '' } })).stdout)).toBe('200');
}, 120_000);

row('verdict tickets', 'the rule removed after its ticket: the next exec gets nothing', async () => {
  await enforce([{ id: 'removed', binary: { path: bin.removed } }, { id: 'other-rule', binary: { path: bin.dir } }]);
  await earnTicket(String(bin.removed));
  await enforce([{ id: 'other-rule', binary: { path: bin.dir } }]);
  await refusedOutright(String(bin.removed), 'the binary of a removed rule', () => fx.run(String(bin.removed), [...http, URL()]));
}, 120_000);

row('verdict tickets', 'the bytes of a sha256-pinned binary changed in place after its ticket: refused', async () => {
  await enforce([{ id: 'pinned', binary: { path: bin.pinned, sha256: createHash('sha256').update(readFileSync(String(bin.pinned))).digest('hex') } }]);
  await earnTicket(String(bin.pinned));
  const ino = statSync(String(bin.pinned)).ino;
  appendFileSync(String(bin.pinned), Buffer.from([0])); // same inode, other bytes: still runs
  expect(statSync(String(bin.pinned)).ino).toBe(ino);
  await refusedOutright(String(bin.pinned), 'the pinned binary with other bytes', () => fx.run(String(bin.pinned), [...http, URL()]));
}, 120_000);

row('verdict tickets', 'a ticketed binary exec\'d under a tracer (strace): refused', async () => {
  await enforce([{ id: 'traced', binary: { path: bin.traced } }]);
  await earnTicket(String(bin.traced));
  await refusedOutright(String(bin.traced), 'the ticketed binary under strace', () => fx.run('strace', ['-f', '-q', '-o', '/dev/null', String(bin.traced), ...http, URL()]));
}, 120_000);

row('verdict tickets', 'a child that a ticket-admitted `children: confine` program forks at once and that execs a binary no rule allows loses the tunnel', async () => {
  await enforce([{ id: 'confine', binary: { path: bin.confine }, children: 'confine' }]);
  const from = fx.events().length;
  // The first run earns the ticket; the next ones are admitted by it, and each forks the
  // unnamed curl straight away, before the watcher may follow the shell.
  for (let i = 0; i < 4; i++) {
    const r = await fx.run(String(bin.confine), ['-c', `"${bin.other}" -s -o /dev/null -m 8 --limit-rate 50k "${URL()}bytes/100000000"; true`], { timeout: 30_000 });
    expect(r.exitCode).toBe(0);
  }
  expect(admissions(String(bin.confine), from).filter((a) => a === 'ticket').length).toBeGreaterThan(0);
  const released = fx.events().slice(from).filter((e) => e.type === 'process.released' && (e as { path?: string }).path === bin.other);
  expect(released.length).toBe(4);
  // And the shells themselves kept the tunnel: never released while their exec was under way.
  const shells = new Set(fx.events().slice(from).filter((e) => e.type === 'process.admitted' && (e as { path?: string }).path === bin.confine).map((e) => (e as { pid: number }).pid));
  expect(fx.events().slice(from).filter((e) => e.type === 'process.released' && shells.has((e as { pid: number }).pid))).toEqual([]);
  for (const e of released) expect((e as { reason?: string }).reason).toMatch(/confines children/);
}, 180_000);

row('verdict tickets', 'a launcher admitted by its ticket that at once execs a program no rule allows: that program gets nothing', async () => {
  // A static rawexec execs its argument at once (test/lab/rawexec.ts): on the ticket path
  // both exec events come before the watcher follows the process, and are dropped.
  const launcher = buildRawexec(fx.tmp, { static: true });
  await enforce([{ id: 'launcher', binary: { path: launcher } }]);
  const from = fx.events().length;
  for (let i = 0; i < 4 && !admissions(launcher, from).includes('ticket'); i++) {
    expect((await fx.run(launcher, ['/bin/true'])).exitCode).toBe(0);
    await waitFor(`admission ${i + 1} of the launcher`, () => (admissions(launcher, from).length > i ? true : undefined));
  }
  expect(admissions(launcher, from)).toContain('ticket');
  // The program it becomes connects only a moment later: what is tested is that it does not
  // keep the launcher's rule, not who wins a race with its first packet.
  const connect = `import socket, time\ntime.sleep(0.3)\ntry:\n  socket.create_connection(('${fx.lab.corpV4}', 80), 3)\n  print('CONNECTED')\nexcept OSError as e:\n  print('REFUSED', e)`;
  for (let i = 0; i < 5; i++) {
    const since = fx.events().length;
    const r = await fx.run(launcher, ['/usr/bin/python3', '-c', connect, '--', 'PATH=/usr/bin:/bin']);
    expect({ run: i, out: String(r.stdout).split(' ')[0]?.trim() }).toEqual({ run: i, out: 'REFUSED' });
    expect(fx.events().slice(since).filter((e) => e.type === 'process.admitted').map((e) => (e as { at?: string }).at)).toEqual(['ticket']);
  }
}, 180_000);

row('exec-time admission', 'a parent that no rule names shares a close-on-exec UDP socket with a child that execs an allowed curl: the parent gets no echo, before or after', async () => {
  await enforce([{ id: 'dir', binary: { path: bin.dir } }]);
  // Python's sockets are close-on-exec: still in the child's fd table while its exec is
  // held, gone after it. Moving the child at the hold would re-tag the shared socket.
  const parent = `import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
def echo(tag):
    try:
        s.sendto(b'x', ('${fx.lab.corpV4}', 7))
        s.recvfrom(16); print(tag, 'ECHOED')
    except OSError:
        print(tag, 'DROPPED')
echo('BEFORE')
pid = os.fork()
if pid == 0:
    os.execv('${bin.dir}', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}\\n', '-m', '5', '${URL()}'])
os.waitpid(pid, 0)
echo('AFTER')
`;
  for (let i = 0; i < 3; i++) {
    const r = await fx.run('/usr/bin/python3', ['-c', parent], { timeout: 30_000 });
    expect({ run: i, out: String(r.stdout).trim().split('\n') }).toEqual({ run: i, out: ['BEFORE DROPPED', '200', 'AFTER DROPPED'] });
  }
}, 120_000);

row('exec-time admission', 'an exec of an allowed curl that fails after the hold (E2BIG): the program that called it gets nothing afterwards', async () => {
  await enforce([{ id: 'dir', binary: { path: bin.dir } }]);
  // execve opens the file (held, admitted) before it copies argv: one argument over
  // MAX_ARG_STRLEN (128 KiB) fails it after the hold, and python goes on as it was.
  const script = `import os, socket, time
try:
    os.execv('${bin.dir}', ['curl', 'x' * 200000])
except OSError as e:
    print('EXEC', e.errno)
time.sleep(0.6)
try:
    socket.create_connection(('${fx.lab.corpV4}', 80), 2)
    print('CONNECTED')
except OSError:
    print('REFUSED')
`;
  for (let i = 0; i < 3; i++) {
    const since = fx.events().length;
    const r = await fx.run('/usr/bin/python3', ['-c', script], { timeout: 30_000 });
    expect({ run: i, out: String(r.stdout).trim().split('\n') }).toEqual({ run: i, out: ['EXEC 7', 'REFUSED'] });
    // It was admitted at the hold (else this row proves nothing) and released after.
    expect(fx.events().slice(since).filter((e) => e.type === 'process.admitted').length).toBe(1);
  }
}, 120_000);
