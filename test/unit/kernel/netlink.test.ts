import { describe, expect, it } from 'vitest';
import {
  errorOf, nflogConfigMessages, parseAttributes, parseExecEvent, parseMessages, parseNflog, parsePacket, procConnectorListen,
} from '../../../helper/kernel/netlink.js';

function msg(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + body.length, 0);
  h.writeUInt16LE(type, 4);
  const out = Buffer.concat([h, body]);
  return Buffer.concat([out, Buffer.alloc((4 - (out.length % 4)) % 4)]);
}
function attr(type: number, value: Buffer): Buffer {
  const b = Buffer.alloc((4 + value.length + 3) & ~3);
  b.writeUInt16LE(4 + value.length, 0);
  b.writeUInt16LE(type, 2);
  value.copy(b, 4);
  return b;
}
const be32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};

const IPV4_TCP_SYN = Buffer.from(
  '45000034abcd40004006000' + '0c6120001c6120002' + 'c35a1f90' + '00000000'.repeat(4),
  'hex',
);

describe('netlink framing', () => {
  it('splits datagrams into messages and ignores a truncated tail', () => {
    const two = Buffer.concat([msg(0x400, Buffer.from([1, 2, 3])), msg(2, Buffer.alloc(4))]);
    const ms = parseMessages(Buffer.concat([two, Buffer.from([9, 9, 9])]));
    expect(ms.map((m) => m.type)).toEqual([0x400, 2]);
    expect(ms[0]?.body).toEqual(Buffer.from([1, 2, 3]));
    expect(errorOf(ms[1]!)).toBe(-0);
    const err = Buffer.alloc(4);
    err.writeInt32LE(-16);
    expect(errorOf(parseMessages(msg(2, err))[0]!)).toBe(16);
  });

  it('reads attributes, masking the nested and byte-order flags', () => {
    const a = parseAttributes(Buffer.concat([attr(10 | 0x8000, Buffer.from('x\0')), attr(11, be32(1000))]));
    expect(a.get(10)?.toString()).toBe('x\0');
    expect(a.get(11)?.readUInt32BE(0)).toBe(1000);
  });
});

describe('NFLOG', () => {
  it('binds the group and asks for each packet at once', () => {
    const [bind, mode] = nflogConfigMessages(7467);
    expect(bind?.toString('hex')).toBe('1c00000001040500010000000000000000001d2b0500010001000000');
    expect(mode?.readUInt16LE(4)).toBe(0x0401);
    expect(mode?.includes(Buffer.from('0800050000000001', 'hex'))).toBe(true); // QTHRESH = 1
  });

  it('parses a packet record: prefix, uid, out interface and payload', () => {
    const body = Buffer.concat([
      Buffer.from([2, 0, 0x1d, 0x2b]),
      attr(10, Buffer.from('tunnelgate deny: \0')),
      attr(11, be32(1000)),
      attr(5, be32(7)),
      attr(9, IPV4_TCP_SYN),
    ]);
    const rec = parseNflog(parseMessages(msg(0x400, body))[0]!);
    expect(rec).toMatchObject({ prefix: 'tunnelgate deny: ', uid: 1000, outdev: 7 });
    expect(parsePacket(rec!.payload)).toEqual({
      family: 4, proto: 'tcp', protoNumber: 6, src: '198.18.0.1', dst: '198.18.0.2', sport: 50010, dport: 8080,
    });
    expect(parseNflog(parseMessages(msg(0x401, body))[0]!)).toBeUndefined();
  });

  it('parses IPv6 with RFC 5952 compression, and ICMP without ports', () => {
    const v6 = Buffer.alloc(48);
    v6.writeUInt8(0x60, 0);
    v6.writeUInt8(17, 6);
    Buffer.from('fd007467000000000000000000000001', 'hex').copy(v6, 8);
    Buffer.from('fd007467000000000000000000000002', 'hex').copy(v6, 24);
    v6.writeUInt16BE(5353, 40);
    v6.writeUInt16BE(7, 42);
    expect(parsePacket(v6)).toEqual({ family: 6, proto: 'udp', protoNumber: 17, src: 'fd00:7467::1', dst: 'fd00:7467::2', sport: 5353, dport: 7 });
    const icmp = Buffer.from(IPV4_TCP_SYN);
    icmp.writeUInt8(1, 9);
    expect(parsePacket(icmp)).toMatchObject({ proto: 'icmp', protoNumber: 1 });
    expect(parsePacket(icmp)?.sport).toBeUndefined();
    expect(parsePacket(Buffer.from([0x45]))).toBeUndefined();
  });
});

describe('proc connector', () => {
  it('subscribes with PROC_CN_MCAST_LISTEN and reads exec events', () => {
    expect(procConnectorListen().toString('hex')).toBe('28000000030000000000000000000000010000000100000000000000000000000400000001000000');
    const ev = Buffer.alloc(20 + 16 + 8);
    ev.writeUInt32LE(1, 0); // CN_IDX_PROC
    ev.writeUInt32LE(2, 20); // PROC_EVENT_EXEC
    ev.writeUInt32LE(4242, 36);
    ev.writeUInt32LE(4240, 40);
    expect(parseExecEvent(parseMessages(msg(3, ev))[0]!)).toBe(4240);
    ev.writeUInt32LE(1, 20); // PROC_EVENT_FORK
    expect(parseExecEvent(parseMessages(msg(3, ev))[0]!)).toBeUndefined();
  });
});
