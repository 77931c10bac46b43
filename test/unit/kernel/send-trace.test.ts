import { describe, expect, it } from 'vitest';
import { asm, assemble, PSEUDO_MAP_FD } from '../../../helper/kernel/bpf-asm.js';
import { Btf } from '../../../helper/kernel/btf.js';
import { dropKey, dropProgram, KEY_BYTES, NAME_BYTES, parseSendRecord, VALUE_BYTES } from '../../../helper/kernel/send-trace.js';
import type { KernelLayout } from '../../../helper/kernel/send-trace.js';
import { recordNames } from '../../../helper/identity/attribution.js';

describe('eBPF assembler', () => {
  it('encodes instructions as struct bpf_insn, with labels and two-slot ld_imm64', () => {
    const b = assemble([
      asm.movK(0, 0),
      asm.jK('jeq', 1, 7, 'end'),
      asm.ldImm64(1, 42, PSEUDO_MAP_FD),
      asm.stx(4, 10, -8, 1),
      asm.label('end', asm.exit()),
    ]);
    expect(b.toString('hex')).toBe([
      'b700000000000000', // mov64 r0, 0
      '1501030007000000', // jeq r1, 7, +3 (over the two ld_imm64 slots and the stx)
      '18110000' + '2a000000', '0000000000000000', // ld_imm64 r1, map fd 42
      '631af8ff00000000', // stxw [r10-8], r1
      '9500000000000000', // exit
    ].join(''));
  });

  it('refuses unknown labels and labels used twice', () => {
    expect(() => assemble([asm.ja('nowhere')])).toThrow(/no label nowhere/);
    expect(() => assemble([asm.label('a', asm.exit()), asm.label('a', asm.exit())])).toThrow(/twice/);
  });
});

/** A BTF blob with: int, struct s { int a; struct { int b; } ; int c[...] at 8 }, enum e { E1 = 5 }, func f, var v. */
function tinyBtf(): Buffer {
  const strs = ['', 'int', 's', 'a', 'b', 'c', 'e', 'E1', 'f', 'v'];
  const off = new Map<string, number>();
  let n = 0;
  for (const s of strs) {
    off.set(s, n);
    n += Buffer.byteLength(s) + 1;
  }
  const strBuf = Buffer.concat(strs.map((s) => Buffer.from(`${s}\0`)));
  const w = (...v: number[]) => {
    const b = Buffer.alloc(v.length * 4);
    v.forEach((x, i) => b.writeUInt32LE(x >>> 0, i * 4));
    return b;
  };
  const info = (kind: number, vlen: number) => (kind << 24) | vlen;
  const types = Buffer.concat([
    w(off.get('int')!, info(1, 0), 4, 32), // 1: int
    w(0, info(4, 1), 4, off.get('b')!, 1, 0), // 2: anonymous struct { int b; }
    w(off.get('s')!, info(4, 3), 16, off.get('a')!, 1, 0, 0, 2, 32, off.get('c')!, 1, 64), // 3: struct s
    w(off.get('e')!, info(6, 1), 4, off.get('E1')!, 5), // 4: enum e
    w(off.get('f')!, info(12, 0), 0), // 5: func f
    w(off.get('v')!, info(14, 0), 1, 0), // 6: var v
  ]);
  const hdr = Buffer.alloc(24);
  hdr.writeUInt16LE(0xeb9f, 0);
  hdr.writeUInt8(1, 2);
  hdr.writeUInt32LE(24, 4);
  hdr.writeUInt32LE(0, 8);
  hdr.writeUInt32LE(types.length, 12);
  hdr.writeUInt32LE(types.length, 16);
  hdr.writeUInt32LE(strBuf.length, 20);
  return Buffer.concat([hdr, types, strBuf]);
}

describe('BTF', () => {
  it('finds member offsets (through anonymous structs), enum values, functions and variables', () => {
    const btf = new Btf(tinyBtf());
    expect(btf.offsetOf('s', 'a')).toBe(0);
    expect(btf.offsetOf('s', 'b')).toBe(4);
    expect(btf.offsetOf('s', 'c')).toBe(8);
    expect(btf.sizeOfMember('s', 'c')).toBe(4);
    expect(btf.enumValue('E1')).toBe(5);
    expect(btf.funcId('f')).toBe(5);
    expect(btf.varId('v')).toBe(6);
    expect(() => btf.offsetOf('s', 'zz')).toThrow(/no member zz/);
    expect(() => btf.funcId('g')).toThrow(/no function g/);
    expect(() => new Btf(Buffer.alloc(24))).toThrow(/magic/);
  });
});

const layout: KernelLayout = {
  skbSk: 24, skbHead: 192, skbNetworkHeader: 180, taskGroupLeader: 1328, taskStartBoottime: 1560, taskMm: 1000, mmExeFile: 900,
  fileMnt: 64, fileDentry: 72, vfsmountRoot: 0, mountMnt: 32, mountParent: 16, mountMountpoint: 24, dentryParent: 24, dentryName: 40,
  taskStack: 32, ptRegsFromStack: 16384 - 168, ptRegsArg0: 112, taskFiles: 1900, filesFdt: 32, fdtMaxFds: 0, fdtFd: 8, filePrivateData: 200, socketSk: 24,
  netfilterDropReason: 12,
};

describe('send-trace', () => {
  it('assembles its programs (the kernel verifier judges them in the lab)', () => {
    const drop = assemble(dropProgram(layout, 3, 4));
    expect(drop.length / 8).toBeLessThan(4096);
    // It starts by checking the drop reason: args[2] against SKB_DROP_REASON_NETFILTER_DROP.
    expect(drop.subarray(8, 16).toString('hex')).toBe('7962100000000000');
    expect(drop.readInt32LE(20)).toBe(12);
  });

  it('keys a packet by family, protocol, ports and addresses, as the program does', () => {
    const k = dropKey({ family: 4, protoNumber: 17, src: '198.18.0.1', dst: '198.18.0.2', sport: 40000, dport: 7 });
    expect(k.length).toBe(KEY_BYTES);
    expect(k.toString('hex')).toBe('0411' + '9c40' + '0007' + '0000' + 'c6120001' + '00'.repeat(12) + 'c6120002' + '00'.repeat(12));
    const k6 = dropKey({ family: 6, protoNumber: 58, src: 'fd00:7467::1', dst: 'fd00:7467::2' });
    expect(k6.subarray(0, 8).toString('hex')).toBe('063a000000000000');
    expect(k6.subarray(8, 24).toString('hex')).toBe('fd007467000000000000000000000001');
  });

  const value = (o: { tgid?: number; flags?: number; depth?: number; state?: number; parts?: string[]; lastNs?: bigint }) => {
    const v = Buffer.alloc(VALUE_BYTES);
    v.writeUInt32LE(o.tgid ?? 77, 0);
    v.writeUInt32LE(78, 4);
    v.writeUInt32LE(1000, 8);
    v.writeUInt32LE(o.flags ?? 0, 12);
    v.writeBigUInt64LE(1000n, 16);
    v.writeBigUInt64LE(5n, 24);
    v.writeBigUInt64LE(o.lastNs ?? 9n, 32);
    v.writeBigUInt64LE(123_456_789_000n, 40);
    v.write('python3', 48);
    const parts = o.parts ?? ['python3.11', 'bin', 'usr'];
    v.writeUInt32LE(o.depth ?? parts.length, 64);
    v.writeUInt32LE(o.state ?? 1, 68);
    parts.forEach((p, i) => v.write(`${p}\0`, 72 + i * NAME_BYTES));
    return v;
  };

  it('reads a record: the exe path from its components, only when complete', () => {
    expect(parseSendRecord(value({}))).toEqual({
      tgid: 77, tid: 78, uid: 1000, shared: false, count: 1000, firstNs: 5n, lastNs: 9n, startNs: 123_456_789_000n, comm: 'python3', exe: '/usr/bin/python3.11',
    });
    expect(parseSendRecord(value({ state: 2 })).exe).toBeUndefined();
    expect(parseSendRecord(value({ parts: [] })).exe).toBeUndefined();
    expect(parseSendRecord(value({ flags: 1 })).shared).toBe(true);
  });

  it('names a sender only from a recent, unshared, complete record of the same uid', () => {
    const r = parseSendRecord(value({ lastNs: 10_000_000_000n }));
    expect(recordNames(r, 1000, 11_000_000_000n)).toBe(true);
    expect(recordNames(r, undefined, 11_000_000_000n)).toBe(true);
    expect(recordNames(r, 1001, 11_000_000_000n)).toBe(false);
    expect(recordNames(r, 1000, 13_000_000_000n)).toBe(false);
    expect(recordNames(parseSendRecord(value({ flags: 1, lastNs: 10_000_000_000n })), 1000, 11_000_000_000n)).toBe(false);
    expect(recordNames(parseSendRecord(value({ state: 2, lastNs: 10_000_000_000n })), 1000, 11_000_000_000n)).toBe(false);
  });
});

describe('what an attempt stands for', () => {
  it('a flow\'s attempts stand for max(the kernel\'s count, the attempts): a burst once, retransmissions each', async () => {
    const { repeatsOf } = await import('../../../helper/identity/attribution.js');
    const seen = new Map<string, { firstNs: bigint; attempts: number; count: number }>();
    // Records read while a burst goes on (counts 3, 10), one read after it ended (1,000),
    // two more of its logged drops (already counted), then a later look.
    expect(repeatsOf(seen, 'f', { firstNs: 1n, count: 3 })).toBe(3);
    expect(repeatsOf(seen, 'f', { firstNs: 1n, count: 10 })).toBe(7);
    expect(repeatsOf(seen, 'f', { firstNs: 1n, count: 1000 })).toBe(990);
    expect(repeatsOf(seen, 'f', { firstNs: 1n, count: 1000 })).toBe(0);
    expect(repeatsOf(seen, 'f', { firstNs: 1n, count: 1000 })).toBe(0);
    expect(repeatsOf(seen, 'f', { firstNs: 1n, count: 1000 }, false)).toBe(0);
    // A TCP SYN (counted) and its retransmissions (from a timer: logged, not counted).
    expect([1, 1, 1].map(() => repeatsOf(seen, 's', { firstNs: 7n, count: 1 }))).toEqual([1, 1, 1]);
    // Another record for the tuple (a new process, or after the LRU forgot it) starts anew.
    expect(repeatsOf(seen, 'f', { firstNs: 2n, count: 1 })).toBe(1);
  });
});
