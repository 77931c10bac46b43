// Pure parts of helper/kernel/{sockets,monitor,nft-monitor,links}.ts, on text the kernel
// and the tools printed in the lab.
import { describe, expect, it } from 'vitest';
import { classifyListeners, decodeProcAddr, parseSocketTable, v6onlyInodes } from '../../../helper/kernel/sockets.js';
import type { SocketRow } from '../../../helper/kernel/sockets.js';
import { subscribedIn } from '../../../helper/kernel/monitor.js';
import { ChangeAssembler } from '../../../helper/kernel/nft-monitor.js';
import { parseLinkEvent, parseLinks } from '../../../helper/kernel/links.js';

describe('socket tables', () => {
  it.each([
    ['0100007F', '127.0.0.1'],
    ['00000000', '0.0.0.0'],
    ['677400FD000000000000000001000000', 'fd00:7467::1'],
    ['00000000000000000000000000000000', '::'],
    ['0000000000000000FFFF00000100007F', '::ffff:127.0.0.1'],
    ['000080FE00000000FF020000010000FE', 'fe80::2ff:fe00:1'],
    ['000080FE00000000FF020000FE000000', 'fe80::2ff:0:fe'],
  ] as const)('decodes the local addresses /proc/net prints: %s is %s', (input, expected) => {
    expect(decodeProcAddr(input)).toBe(expected);
  });

  it('reads rows of udp6 and udp (text from a lab namespace)', () => {
    const udp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 8061: 677400FD000000000000000001000000:251C 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 161693 2 0000000089c50785 0
 8062: 00000000000000000000000000000000:251D 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 161694 2 00000000137a8fc9 0
`;
    expect(parseSocketTable(udp6, 'udp')).toEqual([
      { proto: 'udp', addr: 'fd00:7467::1', port: 9500, state: '07', inode: '161693' },
      { proto: 'udp', addr: '::', port: 9501, state: '07', inode: '161694' },
    ]);
  });

  const row = (proto: 'tcp' | 'udp', addr: string, port: number, inode: string, state = proto === 'tcp' ? '0A' : '07'): SocketRow => ({ proto, addr, port, state, inode });

  it('admits listeners by bound address; another socket on another address of the same port is no contest', () => {
    const r = classifyListeners([row('udp', '127.0.0.1', 9500, '1'), row('udp', '198.18.0.1', 9500, '2'), row('tcp', '0.0.0.0', 22, '3'), row('tcp', '198.18.0.1', 22, '4')], new Set(['1', '3']));
    expect(r).toEqual({ listeners: [{ proto: 'tcp', port: 22, addr: '0.0.0.0' }, { proto: 'udp', port: 9500, addr: '127.0.0.1' }], contested: [] });
  });

  it('a listener sharing its exact element with another process (SO_REUSEADDR / SO_REUSEPORT) is left out and reported', () => {
    const r = classifyListeners([row('udp', '198.18.0.1', 9500, '1'), row('udp', '::ffff:198.18.0.1', 9500, '2'), row('udp', '::', 53, '3'), row('udp', '0.0.0.0', 53, '4'), row('tcp', '::', 80, '5')], new Set(['1', '3', '5']));
    expect(r.listeners).toEqual([{ proto: 'tcp', port: 80, addr: '::' }]);
    expect(r.contested).toEqual([{ proto: 'udp', port: 53, addr: '::' }, { proto: 'udp', port: 9500, addr: '198.18.0.1' }]);
  });

  it('a v6-only :: admits no IPv4, so another process\'s 0.0.0.0 on its port contests nothing', () => {
    const v6only = { ...row('udp', '::', 9510, '1'), v6only: true };
    expect(classifyListeners([v6only, row('udp', '0.0.0.0', 9510, '2')], new Set(['1']))).toEqual({
      listeners: [{ proto: 'udp', port: 9510, addr: '::', v6only: true }], contested: [],
    });
    // Dual-stack: the same pair is contested (both wildcards of IPv4).
    expect(classifyListeners([row('udp', '::', 9510, '1'), row('udp', '0.0.0.0', 9510, '2')], new Set(['1'])).contested).toHaveLength(1);
    expect(v6onlyInodes('udp UNCONN 0 0 [::]:9601 [::]:* ino:501283 sk:4 cgroup:/ v6only:1 <->\ntcp LISTEN 0 128 [::]:9600 [::]:* ino:501281 sk:6 cgroup:/ v6only:0 <->\n'))
      .toEqual(new Set(['501283']));
  });

  it('a TCP socket that is not listening contests nothing and admits nothing', () => {
    const r = classifyListeners([row('tcp', '0.0.0.0', 22, '1'), row('tcp', '0.0.0.0', 22, '2', '01'), row('tcp', '0.0.0.0', 23, '3', '01')], new Set(['1', '3']));
    expect(r).toEqual({ listeners: [{ proto: 'tcp', port: 22, addr: '0.0.0.0' }], contested: [] });
  });
});

describe('monitors', () => {
  const table = `sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode
000000003d90d789 0   22610      00000001 0        0        0     2        0        141529
00000000df0e6d11 12  22604      00000140 0        0        0     2        0        140473
`;
  it('sees a netlink subscription in /proc/PID/net/netlink by the process\'s socket inodes', () => {
    expect(subscribedIn(table, new Set(['140473']), 12, 0x40)).toBe(true);
    expect(subscribedIn(table, new Set(['141529']), 0, 1)).toBe(true);
    expect(subscribedIn(table, new Set(['141529']), 12, 0x40)).toBe(false);
    expect(subscribedIn(table, new Set(['999']), 12, 0x40)).toBe(false);
  });

  it('groups nft monitor lines into transactions and tells when our table went', () => {
    const a = new ChangeAssembler();
    expect(a.push('add element inet tunnelgate listen4 { 1.2.3.4 . udp . 5 }')).toBeUndefined();
    expect(a.push('# new generation 3 by process 22665 (nft)')).toEqual({
      generation: 3, pid: 22665, comm: 'nft', lines: ['add element inet tunnelgate listen4 { 1.2.3.4 . udp . 5 }'], touchesTable: true, tableDeleted: false,
    });
    for (const l of ['delete rule inet tunnelgate output handle 30', 'delete chain inet tunnelgate refuse', 'delete table inet tunnelgate', 'delete table ip foreign_fw']) a.push(l);
    expect(a.push('# new generation 4 by process 22668 (nft)')).toMatchObject({ generation: 4, touchesTable: true, tableDeleted: true });
    // The helper's own atomic replacement: create, delete, create in one transaction.
    for (const l of ['add table inet tunnelgate', 'delete table inet tunnelgate', 'add table inet tunnelgate { comment "x" }', 'add chain inet tunnelgate output']) a.push(l);
    expect(a.push('# new generation 5 by process 9 (nft)')).toMatchObject({ touchesTable: true, tableDeleted: false });
    a.push('add table inet tunnelgate2');
    a.push('delete table inet tunnelgate-x');
    expect(a.push('# new generation 6 by process 1 (x)')).toMatchObject({ touchesTable: false, tableDeleted: false });
  });

  it('reads link events and listings', () => {
    expect(parseLinkEvent('7: other: <POINTOPOINT,NOARP> mtu 1420 qdisc noop state DOWN \\    link/none')).toEqual({ deleted: false, index: 7, name: 'other' });
    expect(parseLinkEvent('Deleted 7: wgX: <POINTOPOINT> mtu 1420')).toEqual({ deleted: true, index: 7, name: 'wgX' });
    expect(parseLinkEvent('9: vw1@if8: <BROADCAST> mtu 1500')).toEqual({ deleted: false, index: 9, name: 'vw1' });
    expect(parseLinkEvent('garbage')).toBeUndefined();
    expect(parseLinks('[{"ifindex":3,"ifname":"wg0"},{"ifindex":1,"ifname":"lo"}]')).toEqual([{ index: 1, name: 'lo' }, { index: 3, name: 'wg0' }]);
  });
});
