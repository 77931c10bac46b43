// The layout of the exec hold's verdict tickets as the addon reads them (native.c
// fan_fast_parse): NUL-terminated tokens, in a fixed order. The addon itself is exercised
// end to end by test/integration/campaign/tickets.test.ts.
import { describe, expect, it } from 'vitest';
import { encodeTickets, type TicketSet } from '../../../helper/kernel/fanotify.js';

const set = (over: Partial<TicketSet> = {}): TicketSet => ({
  netns: { dev: 4n, ino: 4026531840n },
  userns: { dev: 4n, ino: 4026531837n },
  refusedEnv: ['LD_PRELOAD', 'LD_AUDIT'],
  tickets: [{
    path: '/usr/bin/curl', uid: 1000, procs: '/sys/fs/cgroup/net_cls/tunnelgate/corp:curl/cgroup.procs', rule: 'corp:curl',
    file: { dev: 2049n, ino: 131n, mode: 0o100755, uid: 0, gid: 0, size: 280_000n, ctimeNs: 1_700_000_000_123_456_789n },
    ancestors: [{ path: '/usr/bin', dev: 2049n, ino: 12n, mode: 0o40755, uid: 0, gid: 0 }, { path: '/usr', dev: 2049n, ino: 2n, mode: 0o40755, uid: 0, gid: 0 }],
    expiresNs: 99_000_000_000n,
  }],
  ...over,
});

describe('encodeTickets', () => {
  it('writes the header, the refused names, then each ticket with its ancestors, every token NUL-terminated', () => {
    const tokens = encodeTickets(set()).toString('utf8').split('\0');
    expect(tokens.pop()).toBe(''); // the last token's NUL
    expect(tokens).toEqual([
      '1', '4', '4026531840', '4', '4026531837', '2', 'LD_PRELOAD', 'LD_AUDIT', '1',
      '2049', '131', '1000', '/usr/bin/curl', String(0o100755), '0', '0', '280000', '1700000000', '123456789', '99000000000',
      '/sys/fs/cgroup/net_cls/tunnelgate/corp:curl/cgroup.procs', 'corp:curl', '2',
      '/usr/bin', '2049', '12', String(0o40755), '0', '0',
      '/usr', '2049', '2', String(0o40755), '0', '0',
    ]);
  });

  it('keeps a path\'s bytes as UTF-8 (the addon compares them with readlink of the event fd)', () => {
    const t = set().tickets[0]!;
    const buf = encodeTickets(set({ tickets: [{ ...t, path: '/opt/appé/bin' }] }));
    expect(buf.includes(Buffer.from('/opt/appé/bin\0', 'utf8'))).toBe(true);
  });

  it('refuses a field holding a NUL byte, which would shift every token after it', () => {
    const t = set().tickets[0]!;
    expect(() => encodeTickets(set({ tickets: [{ ...t, path: '/usr/bin/cu\0rl' }] }))).toThrow(/NUL/);
  });
});
