import { describe, expect, it } from 'vitest';
import { cgroupLayout, findCgroup2Mount } from '../../../helper/kernel/cgroup.js';
import { parseStat, parseStatusUids } from '../../../helper/kernel/proc.js';

const HYBRID = `25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const PURE = `35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

describe('cgroup v2 detection', () => {
  it('finds the hybrid and the pure v2 mount', () => {
    expect(findCgroup2Mount(HYBRID)).toBe('/sys/fs/cgroup/unified');
    expect(findCgroup2Mount(PURE)).toBe('/sys/fs/cgroup');
    expect(findCgroup2Mount('31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n')).toBeUndefined();
  });

  it('names the subtree as nft resolves it', () => {
    expect(cgroupLayout('/sys/fs/cgroup/unified', 'tunnelgate')).toEqual({
      dir: '/sys/fs/cgroup/unified/tunnelgate', nftPath: 'unified/tunnelgate', ruleLevel: 2,
    });
    expect(cgroupLayout('/sys/fs/cgroup', 'tunnelgate')).toEqual({ dir: '/sys/fs/cgroup/tunnelgate', nftPath: 'tunnelgate', ruleLevel: 2 });
    expect(cgroupLayout('/sys/fs/cgroup', 'corp/tg').ruleLevel).toBe(3);
  });

  it('refuses a mount nft cannot name and a root that escapes the subtree', () => {
    expect(() => cgroupLayout('/mnt/cg2', 'tunnelgate')).toThrow(/outside \/sys\/fs\/cgroup/);
    expect(() => cgroupLayout('/sys/fs/cgroup', '../x')).toThrow(/not a relative path/);
    expect(() => cgroupLayout('/sys/fs/cgroup', '/abs')).toThrow(/not a relative path/);
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
});
