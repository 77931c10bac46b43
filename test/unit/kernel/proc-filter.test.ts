import { describe, expect, it } from 'vitest';
import {
  hasProcEventFilter, parseMessages, parseProcEvent, PROC_EVENT, procConnectorListenFiltered, procEventFilter, procEventMask,
} from '../../../helper/kernel/netlink.js';

/** A proc connector datagram as the kernel sends it: nlmsghdr, cn_msg, proc_event (host order). */
function procMsg(what: number, data: number[], comm?: string): Buffer {
  const ev = Buffer.alloc(16 + 24);
  ev.writeUInt32LE(what >>> 0, 0);
  data.forEach((v, i) => ev.writeUInt32LE(v >>> 0, 16 + i * 4));
  if (comm !== undefined) Buffer.from(comm).copy(ev, 16 + 8);
  const cn = Buffer.alloc(20);
  cn.writeUInt32LE(1, 0); // CN_IDX_PROC
  cn.writeUInt32LE(1, 4);
  cn.writeUInt16LE(ev.length, 16);
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + cn.length + ev.length, 0);
  h.writeUInt16LE(3, 4); // NLMSG_DONE
  return Buffer.concat([h, cn, ev]);
}

/** The classic BPF subset the filter uses, run as the kernel runs it (big-endian loads). */
function runBpf(prog: Buffer, pkt: Buffer): number {
  let a = 0;
  let x = 0;
  for (let pc = 0; pc < prog.length / 8; pc++) {
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog.readUInt8(pc * 8 + 2);
    const jf = prog.readUInt8(pc * 8 + 3);
    const k = prog.readUInt32LE(pc * 8 + 4);
    switch (code) {
      case 0x20:
        if (k + 4 > pkt.length) return 0;
        a = pkt.readUInt32BE(k);
        break;
      case 0x07:
        x = a;
        break;
      case 0x15:
        pc += a === k ? jt : jf;
        break;
      case 0x1d:
        pc += a === x ? jt : jf;
        break;
      case 0x05:
        pc += k;
        break;
      case 0x06:
        return k;
      default:
        throw new Error(`unexpected opcode ${code}`);
    }
  }
  throw new Error('fell off the end');
}

const exec = (pid: number, tgid = pid) => procMsg(PROC_EVENT.exec, [pid, tgid]);
const exit = (pid: number, tgid: number) => procMsg(PROC_EVENT.exit, [pid, tgid, 0, 17, 1, 1]);
const fork = (ppid: number, ptgid: number, cpid: number, ctgid: number) => procMsg(PROC_EVENT.fork, [ppid, ptgid, cpid, ctgid]);
const ptrace = (pid: number, tgid: number) => procMsg(PROC_EVENT.ptrace, [pid, tgid, 99, 99]);
const comm = (pid: number, tgid: number) => procMsg(PROC_EVENT.comm, [pid, tgid], 'worker');
const ack = () => procMsg(PROC_EVENT.none, [0, 0]);

describe('proc connector events', () => {
  it('parses every kind it knows and nothing else', () => {
    const one = (b: Buffer) => parseProcEvent(parseMessages(b)[0]!);
    expect(one(exec(10))).toEqual({ kind: 'exec', pid: 10, tgid: 10 });
    expect(one(exit(11, 10))).toEqual({ kind: 'exit', pid: 11, tgid: 10, exitCode: 0, exitSignal: 17, parentPid: 1, parentTgid: 1 });
    expect(one(fork(1, 1, 20, 20))).toEqual({ kind: 'fork', parentPid: 1, parentTgid: 1, childPid: 20, childTgid: 20 });
    expect(one(ptrace(5, 5))).toEqual({ kind: 'ptrace', pid: 5, tgid: 5, tracerPid: 99, tracerTgid: 99 });
    expect(one(comm(7, 6))).toEqual({ kind: 'comm', pid: 7, tgid: 6, comm: 'worker' });
    expect(one(ack())).toBeUndefined();
    expect(one(procMsg(PROC_EVENT.uid, [1, 1]))).toBeUndefined();
  });

  it('builds the filtered listen message (struct proc_input) and the mask', () => {
    const m = parseMessages(procConnectorListenFiltered(procEventMask(['exec', 'exit'])))[0]!;
    expect(m.body.readUInt16LE(16)).toBe(8);
    expect(m.body.readUInt32LE(20)).toBe(1); // PROC_CN_MCAST_LISTEN
    expect(m.body.readUInt32LE(24)).toBe(0x80000002);
    expect(procEventMask(['ptrace', 'comm', 'fork'])).toBe(0x301);
  });

  it('knows which kernels filter by event type', () => {
    expect(hasProcEventFilter('6.18.44-fc-v782')).toBe(true);
    expect(hasProcEventFilter('6.6.0')).toBe(true);
    expect(hasProcEventFilter('6.5.13-amd64')).toBe(false);
    expect(hasProcEventFilter('5.10.0-30-amd64')).toBe(false);
    expect(hasProcEventFilter('7.0')).toBe(true);
    expect(hasProcEventFilter('garbage')).toBe(false);
  });
});

describe('the proc connector socket filter (classic BPF)', () => {
  const pass = (prog: Buffer, pkt: Buffer) => runBpf(prog, pkt) !== 0;

  it('passes the kinds asked for, acks, and nothing else', () => {
    const p = procEventFilter({ kinds: ['exec', 'ptrace'], leadersOnly: true });
    expect(pass(p, exec(100))).toBe(true);
    expect(pass(p, ptrace(101, 100))).toBe(true); // a traced thread matters too
    expect(pass(p, ack())).toBe(true);
    expect(pass(p, exit(100, 100))).toBe(false);
    expect(pass(p, fork(1, 1, 2, 2))).toBe(false);
    expect(pass(p, comm(100, 100))).toBe(false);
    expect(pass(p, Buffer.alloc(20))).toBe(false); // too short to be an event
  });

  it('drops thread exits, thread forks and thread names when leadersOnly', () => {
    const p = procEventFilter({ kinds: ['exit', 'fork', 'comm'], leadersOnly: true });
    expect(pass(p, exit(100, 100))).toBe(true);
    expect(pass(p, exit(101, 100))).toBe(false);
    expect(pass(p, fork(100, 100, 200, 200))).toBe(true);
    expect(pass(p, fork(100, 100, 201, 100))).toBe(false); // a new thread of 100
    expect(pass(p, comm(100, 100))).toBe(true);
    expect(pass(p, comm(102, 100))).toBe(false);
    const all = procEventFilter({ kinds: ['exit', 'fork'], leadersOnly: false });
    expect(pass(all, exit(101, 100))).toBe(true);
    expect(pass(all, fork(100, 100, 201, 100))).toBe(true);
  });

  it('keeps only the given processes, in blocks longer than one jump reaches', () => {
    const tgids = Array.from({ length: 650 }, (_, i) => 1000 + i * 3);
    const p = procEventFilter({ kinds: ['exec', 'exit', 'fork'], leadersOnly: true, tgids });
    for (const t of [1000, 1000 + 199 * 3, 1000 + 200 * 3, 1000 + 649 * 3]) {
      expect(pass(p, exec(t))).toBe(true);
      expect(pass(p, exit(t, t))).toBe(true);
      expect(pass(p, fork(t, t, 5, 5))).toBe(true);
    }
    for (const t of [999, 1001, 1000 + 650 * 3, 77]) {
      expect(pass(p, exec(t))).toBe(false);
      expect(pass(p, fork(t, t, 5, 5))).toBe(false);
    }
    expect(pass(p, exit(1001, 1000))).toBe(false); // a thread of a kept process
    expect(pass(p, ack())).toBe(true);
    expect(() => procEventFilter({ kinds: ['exec'], leadersOnly: true, tgids: Array.from({ length: 3001 }, (_, i) => i) })).toThrow();
  });
});
