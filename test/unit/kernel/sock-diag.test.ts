import { describe, expect, it } from 'vitest';
import { parseMessages } from '../../../helper/kernel/netlink.js';
import { addrBytes, inetDiagDumpRequest, inetDiagExactRequest, parseInetDiagMsg, pickSocket, socketMatch } from '../../../helper/kernel/sock-diag.js';
import type { DiagSocket } from '../../../helper/kernel/sock-diag.js';

const b = (hex: string) => Buffer.from(hex.replace(/\s+/g, ''), 'hex');

/** One inet_diag_msg as the kernel sends it (family, state, ports, addresses, uid, inode, SKV6ONLY). */
function diagMsg(o: { family: 2 | 10; state: number; sport: number; dport: number; src: Buffer; dst: Buffer; uid: number; inode: number; v6only?: number }): Buffer {
  const body = Buffer.alloc(72 + (o.v6only === undefined ? 0 : 8));
  body.writeUInt8(o.family, 0);
  body.writeUInt8(o.state, 1);
  body.writeUInt16BE(o.sport, 4);
  body.writeUInt16BE(o.dport, 6);
  o.src.copy(body, 8);
  o.dst.copy(body, 24);
  body.writeUInt32LE(o.uid, 64);
  body.writeUInt32LE(o.inode, 68);
  if (o.v6only !== undefined) {
    body.writeUInt16LE(5, 72);
    body.writeUInt16LE(11, 74);
    body.writeUInt8(o.v6only, 76);
  }
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + body.length, 0);
  h.writeUInt16LE(20, 4);
  h.writeUInt16LE(2, 6);
  return Buffer.concat([h, body]);
}

const sock = (o: Partial<DiagSocket> & Pick<DiagSocket, 'src' | 'dst'>): DiagSocket => ({
  family: 4, proto: 'udp', state: 7, sport: 40000, dport: 0, uid: 1000, inode: 11, v6only: false, ...o,
});
const V4_ANY = addrBytes('0.0.0.0');
const V6_ANY = addrBytes('::');

describe('sock_diag', () => {
  it('builds a dump request filtered by local port, every state, in the asked family', () => {
    expect(inetDiagDumpRequest(6, 'udp', 0x1234, 9).toString('hex')).toBe(
      '48000000' + '1400' + '0103' + '09000000' + '00000000' + '0a11' + '0000' + 'ffffffff' + '1234' + '0000' + '00'.repeat(44),
    );
  });

  it('builds an exact TCP lookup with the 4-tuple in network order and no cookie', () => {
    const r = inetDiagExactRequest(4, addrBytes('198.18.0.1'), 50000, addrBytes('198.18.0.2'), 80, 3);
    expect(r.readUInt16LE(6)).toBe(1); // NLM_F_REQUEST, no dump
    expect(r.subarray(16, 18).toString('hex')).toBe('0206');
    expect(r.subarray(24, 28).toString('hex')).toBe('c3500050');
    expect(r.subarray(28, 32).toString('hex')).toBe('c6120001');
    expect(r.subarray(44, 48).toString('hex')).toBe('c6120002');
    expect(r.subarray(64, 72).toString('hex')).toBe('ff'.repeat(8));
  });

  it('parses inet_diag_msg: addresses as 16 bytes (IPv4 v4-mapped), uid, inode, IPV6_V6ONLY', () => {
    const v4 = parseMessages(diagMsg({ family: 2, state: 2, sport: 50000, dport: 80, src: b('c6120001'), dst: b('c6120002'), uid: 1000, inode: 4242 }))[0]!;
    expect(parseInetDiagMsg(v4, 'tcp')).toEqual({
      family: 4, proto: 'tcp', state: 2, sport: 50000, dport: 80, src: addrBytes('198.18.0.1'), dst: addrBytes('198.18.0.2'), uid: 1000, inode: 4242, v6only: false,
    });
    const v6 = parseMessages(diagMsg({ family: 10, state: 7, sport: 53, dport: 0, src: Buffer.alloc(16), dst: Buffer.alloc(16), uid: 0, inode: 7, v6only: 1 }))[0]!;
    expect(parseInetDiagMsg(v6, 'udp')).toMatchObject({ family: 6, v6only: true, inode: 7 });
    expect(parseInetDiagMsg({ type: 3, flags: 2, seq: 0, body: Buffer.alloc(80) }, 'udp')).toBeUndefined();
  });

  it('reads addresses as parsePacket prints them', () => {
    expect(addrBytes('198.18.0.2').toString('hex')).toBe('00000000000000000000ffffc6120002');
    expect(addrBytes('fd00:7467::1').toString('hex')).toBe('fd007467000000000000000000000001');
    expect(addrBytes('::').toString('hex')).toBe('0'.repeat(32));
    expect(() => addrBytes('fd00::1::2')).toThrow();
    expect(() => addrBytes('1:2:3')).toThrow();
  });

  const pkt4 = { family: 4 as const, src: '198.18.0.1', dst: '198.18.0.2', dport: 7 };
  const pkt6 = { family: 6 as const, src: 'fd00:7467::1', dst: 'fd00:7467::2', dport: 7 };

  it('an IPv4 packet matches an AF_INET socket and a dual-stack AF_INET6 one, never a v6-only one', () => {
    expect(socketMatch(sock({ src: V4_ANY, dst: V4_ANY }), pkt4)).toBe('unconnected');
    expect(socketMatch(sock({ family: 6, src: V6_ANY, dst: V6_ANY }), pkt4)).toBe('unconnected');
    expect(socketMatch(sock({ family: 6, src: V6_ANY, dst: V6_ANY, v6only: true }), pkt4)).toBeUndefined();
    // connected to ::ffff:198.18.0.2 (what Java does)
    expect(socketMatch(sock({ family: 6, state: 1, src: addrBytes('198.18.0.1'), dst: addrBytes('198.18.0.2'), dport: 7 }), pkt4)).toBe('connected');
    expect(socketMatch(sock({ state: 1, src: V4_ANY, dst: addrBytes('198.18.0.9'), dport: 7 }), pkt4)).toBeUndefined();
    expect(socketMatch(sock({ src: addrBytes('10.0.0.1'), dst: V4_ANY }), pkt4)).toBeUndefined();
  });

  it('an IPv6 packet matches only AF_INET6 sockets', () => {
    expect(socketMatch(sock({ src: V4_ANY, dst: V4_ANY }), pkt6)).toBeUndefined();
    expect(socketMatch(sock({ family: 6, src: V6_ANY, dst: V6_ANY, v6only: true }), pkt6)).toBe('unconnected');
    expect(socketMatch(sock({ family: 6, state: 1, src: addrBytes('fd00:7467::1'), dst: addrBytes('fd00:7467::2'), dport: 7 }), pkt6)).toBe('connected');
  });

  it('picks the connected socket over unconnected ones, and names nothing when two are equally good', () => {
    const a = sock({ inode: 1, src: V4_ANY, dst: V4_ANY });
    const c = sock({ inode: 2, state: 1, src: addrBytes('198.18.0.1'), dst: addrBytes('198.18.0.2'), dport: 7 });
    expect(pickSocket([a, c], pkt4)?.inode).toBe(2);
    expect(pickSocket([a], pkt4)?.inode).toBe(1);
    // An SO_REUSEPORT group: the kernel's pick is not the sender's socket.
    expect(pickSocket([a, sock({ inode: 3, family: 6, src: V6_ANY, dst: V6_ANY })], pkt4)).toBeUndefined();
    expect(pickSocket([c, { ...c, inode: 4 }], pkt4)).toBeUndefined();
    // No inode: a TIME_WAIT or request socket, held by no process.
    expect(pickSocket([sock({ inode: 0, src: V4_ANY, dst: V4_ANY })], pkt4)).toBeUndefined();
    expect(pickSocket([], pkt4)).toBeUndefined();
  });
});
