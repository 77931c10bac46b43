import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chooseNetClsMount, classid, classidMajor, ensureNetClsMount, findNetClsMounts, formatClassid, NetClsTree } from '../../../helper/kernel/netcls.js';
import { parseStat, parseStatusUids } from '../../../helper/kernel/proc.js';
import { parseProcNet } from '../../../helper/kernel/sockets.js';

const HYBRID = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const WITH_NETCLS = `${HYBRID}44 31 0:40 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid - cgroup cgroup rw,net_cls,net_prio
`;
const READ_ONLY = `${HYBRID}44 31 0:40 / /sys/fs/cgroup/net_cls ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,net_cls
`;
const OURS = `35 24 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate
90 26 0:50 / /run/tunnelgate/net_cls rw,relatime - cgroup tunnelgate-net_cls rw,net_cls
`;

describe('net_cls hierarchy', () => {
  it('finds a system mount (also co-mounted with net_prio) or ours, and nothing on a bare machine', () => {
    expect(findNetClsMounts(WITH_NETCLS)).toEqual([{ mountPoint: '/sys/fs/cgroup/net_cls,net_prio', source: 'cgroup', readOnly: false }]);
    expect(findNetClsMounts(OURS)).toEqual([{ mountPoint: '/run/tunnelgate/net_cls', source: 'tunnelgate-net_cls', readOnly: false }]);
    expect(findNetClsMounts(HYBRID)).toEqual([]);
    expect(findNetClsMounts(READ_ONLY)).toEqual([{ mountPoint: '/sys/fs/cgroup/net_cls', source: 'cgroup', readOnly: true }]);
  });

  it("uses the system's mount or its own, never another helper's", () => {
    const system = { mountPoint: '/sys/fs/cgroup/net_cls', source: 'cgroup', readOnly: false };
    const other = { mountPoint: '/tmp/tg-helper-x/run/net_cls', source: 'tunnelgate-net_cls', readOnly: false };
    const mine = { mountPoint: '/run/tunnelgate/net_cls', source: 'tunnelgate-net_cls', readOnly: false };
    expect(chooseNetClsMount([other, system], mine.mountPoint)).toEqual({ mount: system.mountPoint, own: false, reason: "the system's net_cls mount" });
    expect(chooseNetClsMount([other, mine], mine.mountPoint)).toMatchObject({ mount: mine.mountPoint, own: true });
    expect(chooseNetClsMount([other], mine.mountPoint)).toBeUndefined();
  });

  it("passes over a read-only system mount: its own, and says why", () => {
    const ro = { mountPoint: '/sys/fs/cgroup/net_cls', source: 'cgroup', readOnly: true };
    const mine = { mountPoint: '/run/tunnelgate/net_cls', source: 'tunnelgate-net_cls', readOnly: false };
    expect(chooseNetClsMount([ro], mine.mountPoint)).toBeUndefined();
    expect(chooseNetClsMount([ro, mine], mine.mountPoint)).toEqual({ mount: mine.mountPoint, own: true, reason: "the helper's own net_cls mount: the system's /sys/fs/cgroup/net_cls is read-only" });
    expect(chooseNetClsMount([mine], mine.mountPoint)?.reason).toBe("the helper's own net_cls mount: the system mounts no net_cls hierarchy");
  });

  describe('ensureNetClsMount', () => {
    const own = '/run/tg-unit-test-never-mounted/net_cls';
    const mounted: string[][] = [];
    const run = async (file: string, args: readonly string[]) => {
      mounted.push([file, ...args]);
      return { stdout: '', stderr: '', exitCode: 0 };
    };
    const noMkdir = { own: path.join(tmpdir(), `tg-netcls-${process.pid}`) };
    afterAll(() => rmSync(noMkdir.own, { recursive: true, force: true }));

    it('a system mount it can write: used as it is', async () => {
      mounted.length = 0;
      const c = await ensureNetClsMount(run, own, async () => undefined, async () => WITH_NETCLS);
      expect(c).toEqual({ mount: '/sys/fs/cgroup/net_cls,net_prio', own: false, reason: "the system's net_cls mount" });
      expect(mounted).toEqual([]);
    });

    it('read-only, refused by access(2), or absent: mounts its own', async () => {
      for (const [info, writable, reason] of [
        [READ_ONLY, async () => undefined, "the helper's own net_cls mount: the system's /sys/fs/cgroup/net_cls is read-only"],
        [WITH_NETCLS, async () => {
          throw new Error('EROFS: read-only file system');
        }, "the helper's own net_cls mount: the system's /sys/fs/cgroup/net_cls,net_prio cannot be written (EROFS: read-only file system)"],
        [HYBRID, async () => undefined, "the helper's own net_cls mount: the system mounts no net_cls hierarchy"],
      ] as const) {
        mounted.length = 0;
        const c = await ensureNetClsMount(run, noMkdir.own, writable, async () => info);
        expect(c).toEqual({ mount: noMkdir.own, own: true, reason });
        expect(mounted).toEqual([['mount', '-t', 'cgroup', '-o', 'net_cls', 'tunnelgate-net_cls', noMkdir.own]]);
      }
    });
  });

  it('derives a major per subtree name and packs classids', () => {
    const m = classidMajor('tunnelgate');
    expect(m).toBeGreaterThanOrEqual(0x1000);
    expect(m).toBeLessThan(0xf000);
    expect(classidMajor('tunnelgate')).toBe(m);
    expect(classidMajor('tg-test-abc')).not.toBe(m);
    expect(classid(0x7467, 1)).toBe(0x74670001);
    expect(classid(0xf000, 0xffff)).toBe(0xf000ffff);
    expect(formatClassid(0x74670001)).toBe('7467:1');
  });

  it('refuses a subtree name that escapes', () => {
    expect(() => new NetClsTree('/m', '../x')).toThrow(/not a relative path/);
    expect(() => new NetClsTree('/m', '/abs')).toThrow(/not a relative path/);
    expect(new NetClsTree('/m', 'a/b').dir).toBe('/m/a/b');
  });
});

describe('/proc parsing', () => {
  it('reads ppid and start time past a comm with spaces and parentheses', () => {
    const stat = '4242 (evil) (name) S 77 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10';
    expect(parseStat(stat)).toEqual({ ppid: 77, startTime: '123456' });
  });
  it('reads real and effective uid', () => {
    expect(parseStatusUids('Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t1\t1\t1\t1\n')).toEqual({ uid: 1000, euid: 0 });
  });
  it('reads port, state and inode from /proc/net/tcp', () => {
    const text = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21503 1 0000000000000000 100 0 0 10 0
   1: 0100007F:9C40 0100007F:0016 01 00000000:00000000 00:00000000 00000000  1000        0 88812 1 0000000000000000 20 4 30 10 -1
`;
    expect(parseProcNet(text)).toEqual([
      { port: 22, state: '0A', inode: '21503' },
      { port: 40000, state: '01', inode: '88812' },
    ]);
  });
});

describe('ruleKeyOf', () => {
  it('reads the rule from the net_cls line of /proc/PID/cgroup', async () => {
    const { ruleKeyOf } = await import('../../../helper/kernel/netcls.js');
    const text = '12:pids:/user.slice\n7:net_cls,net_prio:/tunnelgate/corp-base:ssh\n0::/user.slice/user-1000.slice\n';
    expect(ruleKeyOf(text, 'tunnelgate')).toBe('corp-base:ssh');
    expect(ruleKeyOf(text, 'other')).toBeUndefined();
    expect(ruleKeyOf('7:net_cls:/\n', 'tunnelgate')).toBeUndefined();
    expect(ruleKeyOf('7:net_cls:/tunnelgate/a/b\n', 'tunnelgate')).toBeUndefined();
    expect(ruleKeyOf('0::/x\n', 'tunnelgate')).toBeUndefined();
  });
});
