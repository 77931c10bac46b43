// Who sent a dropped packet, recorded by the kernel at the drop (issue 10 part 4).
//
// Why eBPF (measured, bench/attribution.ts): every user-space source is read after the
// fact. sock_diag (helper/kernel/sock-diag.ts) answers in ~0.2-0.6 ms but only while the
// socket exists; /proc/PID/fd and /proc/PID/exe only while the process lives. A program that
// sends a burst of datagrams and exits at once is gone before the NFLOG record has crossed
// into JavaScript, so it was never named. The proc connector knows recent execs, but not
// which of them owned a socket: naming from it would be a guess. Only the kernel, at the
// moment it drops the packet, knows both.
//
// What this kernel lets us attach (measured on 6.18 here): raw tracepoints only. BPF LSM and
// fentry programs are refused at load (EPERM, before the verifier), kprobes are not built
// (CONFIG_KPROBES unset), and per-CPU kernel variables are not resolvable (no
// `__preempt_count` in kallsyms, so no in_task() test). So one raw tracepoint program, an
// observer (it changes nothing, and no packet waits on it), on `kfree_skb` with reason
// SKB_DROP_REASON_NETFILTER_DROP, for a packet that has a socket, when the current task is
// in a system call whose first argument is a file descriptor of that very socket (its user
// registers, then its fd table: sendto, sendmsg, sendmmsg, connect, write): a netfilter drop
// on the output path runs inside the sender's system call (a UDP datagram, the first SYN).
// A drop anywhere else (a TCP retransmission from a timer in softirq on top of an unrelated
// task; a reply the kernel makes while wireguard-go writes to its TUN device; io_uring) is
// not recorded: there the current task is not the sender. It records, by the packet's
// (family, protocol, addresses, ports): tgid, tid, uid, comm, the process's start time, its
// executable's path (current->mm->exe_file, walked dentry by dentry across mounts: what
// /proc/PID/exe shows; marked incomplete when a name or the depth does not fit), a count and
// first/last times; and marks the entry shared when another tgid sent with that tuple within
// the last second. Kernel threads (no mm) are not recorded.
// The helper looks the tuple of each NFLOG record up (one bpf(2) call) and names the process
// only from a recent, unshared, complete record of the same uid; otherwise attribution goes
// on to the socket (helper/identity/attribution.ts).
//
// Lifetime: maps, programs and attachments are file descriptors of the helper: when it exits
// (or is killed) the kernel detaches and frees them. Nothing machine-wide is changed. Where
// loading fails (no BTF, an older kernel, a verifier that refuses) the helper says so in
// `status` and attributes from sockets as before.
import { readFileSync } from 'node:fs';
import { nativeBpf } from '../native/index.js';
import type { NativeBpf } from '../native/index.js';
import { asm, assemble, PSEUDO_MAP_FD } from './bpf-asm.js';
import type { Insn } from './bpf-asm.js';
import { Btf } from './btf.js';
import type { PacketInfo } from './netlink.js';
import { addrBytes } from './sock-diag.js';

// uapi numbers (include/uapi/linux/bpf.h)
const MAP_PERCPU_ARRAY = 6;
const MAP_LRU_HASH = 9;
const PROG_RAW_TRACEPOINT = 17;
const H = { lookup: 1, update: 2, ktimeGetNs: 5, pidTgid: 14, uidGid: 15, comm: 16, currentTask: 35, probeReadKernel: 113, probeReadKernelStr: 115 } as const;

/** Path components recorded (deeper paths are marked incomplete), and bytes per component with its NUL. */
export const PATH_DEPTH = 16;
export const NAME_BYTES = 64;
/** drop map key: u8 family (4/6); u8 protocol; be16 sport; be16 dport; u16 pad; u8 src[16]; u8 dst[16] (IPv4 in the first 4). */
export const KEY_BYTES = 40;
/**
 * drop map value: u32 tgid @0; u32 tid @4; u32 uid @8; u32 flags @12 (1: shared); u64 count @16;
 * u64 first_ns @24; u64 last_ns @32 (CLOCK_MONOTONIC); u64 start_boottime @40; char comm[16] @48;
 * u32 depth @64; u32 path state @68 (1 complete, 2 incomplete); the exe path's components
 * from the file up, NUL-terminated, NAME_BYTES each, @72.
 */
export const VALUE_BYTES = 72 + PATH_DEPTH * NAME_BYTES;
const SHARED = 1;
const PATH_COMPLETE = 1;
const PATH_INCOMPLETE = 2;

/** Kernel facts the programs are assembled with (from BTF). */
export interface KernelLayout {
  skbSk: number;
  skbHead: number;
  skbNetworkHeader: number;
  taskGroupLeader: number;
  taskStartBoottime: number;
  taskMm: number;
  mmExeFile: number;
  fileMnt: number;
  fileDentry: number;
  vfsmountRoot: number;
  mountMnt: number;
  mountParent: number;
  mountMountpoint: number;
  dentryParent: number;
  dentryName: number;
  /** Where the current task's user registers are: task->stack + THREAD_SIZE - sizeof(pt_regs) (x86-64). */
  taskStack: number;
  ptRegsFromStack: number;
  ptRegsArg0: number;
  taskFiles: number;
  filesFdt: number;
  fdtMaxFds: number;
  fdtFd: number;
  filePrivateData: number;
  socketSk: number;
  netfilterDropReason: number;
}

/** x86-64 THREAD_SIZE without KASAN (arch/x86/include/asm/page_64_types.h); a wrong guess records nothing, never a wrong name. */
const THREAD_SIZE = 16384;

/** Reads the layout from BTF. Throws naming what this kernel lacks. */
export function kernelLayout(btf: Btf): KernelLayout {
  if (btf.sizeOfMember('sk_buff', 'network_header') !== 2) throw new Error('sk_buff.network_header is not a u16 here');
  const fPath = btf.offsetOf('file', 'f_path');
  return {
    skbSk: btf.offsetOf('sk_buff', 'sk'),
    skbHead: btf.offsetOf('sk_buff', 'head'),
    skbNetworkHeader: btf.offsetOf('sk_buff', 'network_header'),
    taskGroupLeader: btf.offsetOf('task_struct', 'group_leader'),
    taskStartBoottime: btf.offsetOf('task_struct', 'start_boottime'),
    taskMm: btf.offsetOf('task_struct', 'mm'),
    mmExeFile: btf.offsetOf('mm_struct', 'exe_file'),
    fileMnt: fPath + btf.offsetOf('path', 'mnt'),
    fileDentry: fPath + btf.offsetOf('path', 'dentry'),
    vfsmountRoot: btf.offsetOf('vfsmount', 'mnt_root'),
    mountMnt: btf.offsetOf('mount', 'mnt'),
    mountParent: btf.offsetOf('mount', 'mnt_parent'),
    mountMountpoint: btf.offsetOf('mount', 'mnt_mountpoint'),
    dentryParent: btf.offsetOf('dentry', 'd_parent'),
    dentryName: btf.offsetOf('dentry', 'd_name') + btf.offsetOf('qstr', 'name'),
    taskStack: btf.offsetOf('task_struct', 'stack'),
    ptRegsFromStack: THREAD_SIZE - btf.sizeOf('pt_regs'),
    ptRegsArg0: btf.offsetOf('pt_regs', 'di'),
    taskFiles: btf.offsetOf('task_struct', 'files'),
    filesFdt: btf.offsetOf('files_struct', 'fdt'),
    fdtMaxFds: btf.offsetOf('fdtable', 'max_fds'),
    fdtFd: btf.offsetOf('fdtable', 'fd'),
    filePrivateData: btf.offsetOf('file', 'private_data'),
    socketSk: btf.offsetOf('socket', 'sk'),
    netfilterDropReason: btf.enumValue('SKB_DROP_REASON_NETFILTER_DROP'),
  };
}

/**
 * The exe path walk: from dentry r6 in vfsmount r8 up to the root, one component per
 * NAME_BYTES slot of the value at r7; crossing at most two mounts per level. Ends at `done`
 * (complete) or `trunc`.
 */
function pathWalk(l: KernelLayout): Insn[] {
  const { aluK, movX, movK, ldx, st, jK, jX, ja, call, label } = asm;
  const probe = (dstOff: number, base: 6 | 8 | 9, off: number): Insn[] => [
    movX(1, 10), aluK('add', 1, dstOff), movK(2, 8), movX(3, base), aluK('add', 3, off), call(H.probeReadKernel),
    jK('jne', 0, 0, 'trunc'),
  ];
  const out: Insn[] = [];
  for (let i = 0; i < PATH_DEPTH; i++) {
    for (let c = 0; c < 3; c++) {
      // At the root of this mount? Then continue from where it is mounted.
      out.push(...probe(-120, 8, l.vfsmountRoot));
      out.push(ldx(8, 1, 10, -120));
      out.push(jX('jne', 6, 1, `name${i}`));
      if (c === 2) {
        out.push(ja('trunc'));
        break;
      }
      out.push(movX(9, 8), aluK('sub', 9, l.mountMnt)); // struct mount
      out.push(...probe(-120, 9, l.mountParent));
      out.push(ldx(8, 1, 10, -120));
      out.push(jX('jeq', 1, 9, 'done')); // the root of the mount tree
      out.push(...probe(-128, 9, l.mountMountpoint));
      out.push(ldx(8, 6, 10, -128));
      out.push(ldx(8, 8, 10, -120), aluK('add', 8, l.mountMnt));
    }
    out.push(label(`name${i}`, movX(1, 10)), aluK('add', 1, -120), movK(2, 8), movX(3, 6), aluK('add', 3, l.dentryParent), call(H.probeReadKernel));
    out.push(jK('jne', 0, 0, 'trunc'));
    out.push(ldx(8, 1, 10, -120));
    out.push(jX('jeq', 1, 6, 'done')); // a filesystem's own root
    out.push(...probe(-128, 6, l.dentryName));
    out.push(movX(1, 7), aluK('add', 1, 72 + i * NAME_BYTES), movK(2, NAME_BYTES), ldx(8, 3, 10, -128), call(H.probeReadKernelStr));
    out.push(jK('jslt', 0, 2, 'trunc')); // an empty name, or an error
    out.push(jK('jsgt', 0, NAME_BYTES - 1, 'trunc')); // may have been cut
    out.push(st(4, 7, 64, i + 1));
    out.push(ldx(8, 6, 10, -120));
  }
  out.push(ja('trunc'));
  return out;
}

/**
 * The sender check: the current task is in a system call whose first argument is a file
 * descriptor of the very socket of the packet (sk at -128): sendto, sendmsg, sendmmsg,
 * connect, write, writev. Reads the task's user registers and walks its fd table. Anything
 * else (softirq on top of an unrelated task, wireguard-go's write to its TUN device that
 * makes the kernel answer for another socket, io_uring) goes to `out`: not recorded.
 */
function senderCheck(l: KernelLayout): Insn[] {
  const { aluK, aluX, movX, movK, ldx, st, jK, jX, call } = asm;
  const read = (dstOff: number, size: number): Insn[] => [movX(1, 10), aluK('add', 1, dstOff), movK(2, size), call(H.probeReadKernel), jK('jne', 0, 0, 'out')];
  const at = (base: 1 | 8, off: number): Insn[] => [movX(3, base), aluK('add', 3, off)];
  return [
    call(H.currentTask),
    movX(8, 0), // r8 = task
    ...at(8, l.taskStack), ...read(-120, 8),
    ldx(8, 1, 10, -120),
    jK('jeq', 1, 0, 'out'),
    ...at(1, l.ptRegsFromStack + l.ptRegsArg0), ...read(-120, 8),
    ldx(8, 9, 10, -120), // r9 = the system call's first argument
    ...at(8, l.taskFiles), ...read(-120, 8),
    ldx(8, 8, 10, -120),
    jK('jeq', 8, 0, 'out'),
    ...at(8, l.filesFdt), ...read(-120, 8),
    ldx(8, 8, 10, -120), // r8 = fdtable
    jK('jeq', 8, 0, 'out'),
    st(4, 10, -104, 0),
    ...at(8, l.fdtMaxFds), ...read(-104, 4),
    ldx(4, 1, 10, -104),
    jX('jge', 9, 1, 'out'), // not an open fd (unsigned: a negative one too)
    ...at(8, l.fdtFd), ...read(-120, 8),
    ldx(8, 3, 10, -120),
    aluK('lsh', 9, 3), aluX('add', 3, 9), ...read(-120, 8),
    ldx(8, 1, 10, -120), // struct file *
    jK('jeq', 1, 0, 'out'),
    ...at(1, l.filePrivateData), ...read(-120, 8),
    ldx(8, 1, 10, -120), // struct socket * (if it is a socket)
    jK('jeq', 1, 0, 'out'),
    ...at(1, l.socketSk), ...read(-120, 8),
    ldx(8, 1, 10, -120),
    ldx(8, 2, 10, -128),
    jX('jne', 1, 2, 'out'),
  ];
}

/** drop, part 1: a netfilter drop of a packet whose socket the current task is sending on; its tuple as the key at -40. */
function dropKeyPart(l: KernelLayout): Insn[] {
  const { aluK, aluX, movX, movK, ldx, stx, st, jK, ja, call, label } = asm;
  const probe = (dstOff: number, size: number, base: 6 | 7 | 8 | 9, off: number): Insn[] => [
    movX(1, 10), aluK('add', 1, dstOff), movK(2, size), movX(3, base), aluK('add', 3, off), call(H.probeReadKernel),
  ];
  // Stack: key -40..-1; IP header -80..-41; scratch at -88, -96, -104 (ports), -112 (u32 key), -120, -128.
  return [
    movX(6, 1), // r6 = ctx (u64 args: skb, location, reason, rx_sk)
    ldx(8, 2, 6, 16),
    jK('jne', 2, l.netfilterDropReason, 'out'),
    ldx(8, 7, 6, 0), // r7 = skb
    ...probe(-88, 8, 7, l.skbSk),
    jK('jne', 0, 0, 'out'),
    ldx(8, 1, 10, -88),
    jK('jeq', 1, 0, 'out'), // no socket: not a process's packet
    stx(8, 10, -128, 1),
    ...senderCheck(l),
    ...probe(-88, 8, 7, l.skbHead),
    jK('jne', 0, 0, 'out'),
    ldx(8, 8, 10, -88), // r8 = head
    st(8, 10, -96, 0),
    ...probe(-96, 2, 7, l.skbNetworkHeader),
    jK('jne', 0, 0, 'out'),
    ldx(2, 1, 10, -96),
    aluX('add', 8, 1), // r8 = IP header
    ...probe(-80, 40, 8, 0),
    jK('jne', 0, 0, 'out'),
    st(8, 10, -40, 0), st(8, 10, -32, 0), st(8, 10, -24, 0), st(8, 10, -16, 0), st(8, 10, -8, 0),
    ldx(1, 1, 10, -80),
    movX(2, 1), aluK('rsh', 2, 4),
    jK('jeq', 2, 4, 'v4'),
    jK('jeq', 2, 6, 'v6'),
    ja('out'),
    // IPv4: protocol @9, src @12, dst @16, transport at IHL * 4
    label('v4', st(1, 10, -40, 4)),
    ldx(1, 3, 10, -80 + 9),
    stx(1, 10, -39, 3),
    ldx(4, 4, 10, -80 + 12), stx(4, 10, -32, 4),
    ldx(4, 4, 10, -80 + 16), stx(4, 10, -16, 4),
    aluK('and', 1, 0x0f), aluK('lsh', 1, 2),
    movX(9, 1), // r9 = transport offset
    ja('ports'),
    // IPv6: next header @6, src @8, dst @24, transport at 40 (extension headers: no ports)
    label('v6', st(1, 10, -40, 6)),
    ldx(1, 3, 10, -80 + 6),
    stx(1, 10, -39, 3),
    ldx(8, 4, 10, -80 + 8), stx(8, 10, -32, 4),
    ldx(8, 4, 10, -80 + 16), stx(8, 10, -24, 4),
    ldx(8, 4, 10, -80 + 24), stx(8, 10, -16, 4),
    ldx(8, 4, 10, -80 + 32), stx(8, 10, -8, 4),
    movK(9, 40),
    label('ports', jK('jeq', 3, 6, 'l4')),
    jK('jeq', 3, 17, 'l4'),
    ja('ids'),
    label('l4', st(4, 10, -104, 0)),
    aluX('add', 8, 9),
    ...probe(-104, 4, 8, 0),
    ldx(2, 1, 10, -104), stx(2, 10, -38, 1),
    ldx(2, 1, 10, -102), stx(2, 10, -36, 1),
  ];
}

/** drop, part 2: the same process again (count it), or a new record in the per-CPU scratch value (r7). */
function dropRecordPart(drops: number, scratch: number): Insn[] {
  const { aluK, aluX, movX, movK, ldx, stx, st, atomicAdd64, jK, jX, ja, call, ldImm64, label } = asm;
  return [
    label('ids', call(H.pidTgid)),
    movX(9, 0), // r9 = pid_tgid
    ldImm64(1, drops, PSEUDO_MAP_FD),
    movX(2, 10), aluK('add', 2, -40),
    call(H.lookup),
    jK('jeq', 0, 0, 'fresh'),
    movX(7, 0),
    ldx(4, 1, 7, 0),
    movX(2, 9), aluK('rsh', 2, 32),
    jX('jne', 1, 2, 'other'),
    // The same process again: count it.
    movK(1, 1),
    atomicAdd64(7, 16, 1),
    call(H.ktimeGetNs),
    stx(8, 7, 32, 0),
    ja('out'),
    // Another process sent with this tuple: shared if it did within the last second.
    label('other', call(H.ktimeGetNs)),
    ldx(8, 1, 7, 32),
    aluX('sub', 0, 1),
    movK(8, 0),
    jK('jgt', 0, 1_000_000_000, 'build'),
    movK(8, SHARED),
    ja('build'),
    label('fresh', movK(8, 0)),
    label('build', st(4, 10, -112, 0)),
    ldImm64(1, scratch, PSEUDO_MAP_FD),
    movX(2, 10), aluK('add', 2, -112),
    call(H.lookup),
    jK('jeq', 0, 0, 'out'),
    movX(7, 0), // r7 = the new value
    movX(1, 9), aluK('rsh', 1, 32), stx(4, 7, 0, 1),
    stx(4, 7, 4, 9),
    call(H.uidGid), stx(4, 7, 8, 0),
    stx(4, 7, 12, 8),
    st(8, 7, 16, 1),
    call(H.ktimeGetNs), stx(8, 7, 24, 0), stx(8, 7, 32, 0),
    movX(1, 7), aluK('add', 1, 48), movK(2, 16), call(H.comm),
    st(8, 7, 40, 0),
    st(4, 7, 64, 0),
    st(4, 7, 68, 0),
  ];
}

/** drop, part 3: the process's start time and exe path into r7, then the record is stored. */
function dropExePart(l: KernelLayout, drops: number): Insn[] {
  const { aluK, movX, movK, ldx, st, jK, ja, call, ldImm64, label } = asm;
  const probe = (dstOff: number, size: number, base: 6 | 7 | 8 | 9, off: number): Insn[] => [
    movX(1, 10), aluK('add', 1, dstOff), movK(2, size), movX(3, base), aluK('add', 3, off), call(H.probeReadKernel),
  ];
  return [
    call(H.currentTask),
    movX(6, 0), // r6 = current
    ...probe(-120, 8, 6, l.taskGroupLeader),
    jK('jne', 0, 0, 'out'),
    ldx(8, 3, 10, -120),
    aluK('add', 3, l.taskStartBoottime),
    movX(1, 7), aluK('add', 1, 40), movK(2, 8),
    call(H.probeReadKernel),
    jK('jne', 0, 0, 'out'),
    ...probe(-120, 8, 6, l.taskMm),
    jK('jne', 0, 0, 'out'),
    ldx(8, 6, 10, -120),
    jK('jeq', 6, 0, 'out'), // a kernel thread: no program to name
    ...probe(-120, 8, 6, l.mmExeFile),
    jK('jne', 0, 0, 'out'),
    ldx(8, 9, 10, -120),
    jK('jeq', 9, 0, 'out'),
    ...probe(-120, 8, 9, l.fileMnt),
    jK('jne', 0, 0, 'out'),
    ldx(8, 8, 10, -120),
    ...probe(-120, 8, 9, l.fileDentry),
    jK('jne', 0, 0, 'out'),
    ldx(8, 6, 10, -120),
    ...pathWalk(l),
    label('done', st(4, 7, 68, PATH_COMPLETE)),
    ja('store'),
    label('trunc', st(4, 7, 68, PATH_INCOMPLETE)),
    label('store', ldImm64(1, drops, PSEUDO_MAP_FD)),
    movX(2, 10), aluK('add', 2, -40),
    movX(3, 7),
    movK(4, 0),
    call(H.update),
    label('out', movK(0, 0)),
  ];
}


/** The `drop` program (see the header). `drops`, `scratch`: map fds. */
export function dropProgram(l: KernelLayout, drops: number, scratch: number): Insn[] {
  return [...dropKeyPart(l), ...dropRecordPart(drops, scratch), ...dropExePart(l, drops), asm.exit()];
}

/** The drop map key of a packet as NFLOG shows it (see KEY_BYTES). */
export function dropKey(p: Pick<PacketInfo, 'family' | 'protoNumber' | 'src' | 'dst' | 'sport' | 'dport'>): Buffer {
  const k = Buffer.alloc(KEY_BYTES);
  k.writeUInt8(p.family, 0);
  k.writeUInt8(p.protoNumber, 1);
  if (p.protoNumber === 6 || p.protoNumber === 17) {
    k.writeUInt16BE(p.sport ?? 0, 2);
    k.writeUInt16BE(p.dport ?? 0, 4);
  }
  const src = addrBytes(p.src);
  const dst = addrBytes(p.dst);
  if (p.family === 4) {
    src.copy(k, 8, 12);
    dst.copy(k, 24, 12);
  } else {
    src.copy(k, 8);
    dst.copy(k, 24);
  }
  return k;
}

/** One record of the drop map. */
export interface SendRecord {
  tgid: number;
  tid: number;
  uid: number;
  /** Another process sent with the same tuple within a second of this one. */
  shared: boolean;
  count: number;
  /** CLOCK_MONOTONIC ns (process.hrtime.bigint()). */
  firstNs: bigint;
  lastNs: bigint;
  /** task->start_boottime of the process, ns. */
  startNs: bigint;
  comm: string;
  /** current->mm->exe_file's path at the drop (absent: a name or the depth did not fit). */
  exe?: string;
}

/** Decodes a drop map value (pure). */
export function parseSendRecord(v: Buffer): SendRecord {
  const cstr = (b: Buffer) => {
    const end = b.indexOf(0);
    return b.toString('utf8', 0, end < 0 ? b.length : end);
  };
  const depth = v.readUInt32LE(64);
  const parts: string[] = [];
  for (let i = 0; i < Math.min(depth, PATH_DEPTH); i++) parts.unshift(cstr(v.subarray(72 + i * NAME_BYTES, 72 + (i + 1) * NAME_BYTES)));
  const complete = v.readUInt32LE(68) === PATH_COMPLETE && depth > 0 && depth <= PATH_DEPTH;
  return {
    tgid: v.readUInt32LE(0),
    tid: v.readUInt32LE(4),
    uid: v.readUInt32LE(8),
    shared: (v.readUInt32LE(12) & SHARED) !== 0,
    count: Number(v.readBigUInt64LE(16)),
    firstNs: v.readBigUInt64LE(24),
    lastNs: v.readBigUInt64LE(32),
    startNs: v.readBigUInt64LE(40),
    comm: cstr(v.subarray(48, 64)),
    ...(complete ? { exe: `/${parts.join('/')}` } : {}),
  };
}

/** The loaded programs: look-ups of the drop map. */
export class SendTrace {
  private constructor(
    private readonly bpf: NativeBpf,
    private readonly fds: number[],
    private readonly drops: number,
  ) {}

  /**
   * Loads and attaches both programs. Throws (with the verifier's log when it refused a
   * program) after closing whatever it had opened; the caller falls back to sockets.
   */
  static load(btfPath = '/sys/kernel/btf/vmlinux', bpf: NativeBpf = nativeBpf()): SendTrace {
    const layout = kernelLayout(new Btf(readFileSync(btfPath)));
    const fds: number[] = [];
    try {
      const open = (fd: number) => {
        fds.push(fd);
        return fd;
      };
      const drops = open(bpf.bpfMapCreate(MAP_LRU_HASH, KEY_BYTES, VALUE_BYTES, 2048, 0, 'tg_drops'));
      const scratch = open(bpf.bpfMapCreate(MAP_PERCPU_ARRAY, 4, VALUE_BYTES, 1, 0, 'tg_drop_tmp'));
      const drop = open(bpf.bpfProgLoad(PROG_RAW_TRACEPOINT, 0, 0, assemble(dropProgram(layout, drops, scratch)), 'tg_drop'));
      open(bpf.bpfRawTracepointOpen('kfree_skb', drop));
      return new SendTrace(bpf, fds, drops);
    } catch (e) {
      for (const fd of fds.reverse()) bpf.bpfClose(fd);
      throw e;
    }
  }

  /** The kernel's record of who last sent a dropped packet with this one's tuple, or undefined. */
  lookup(p: Pick<PacketInfo, 'family' | 'protoNumber' | 'src' | 'dst' | 'sport' | 'dport'>): SendRecord | undefined {
    const v = this.bpf.bpfMapLookup(this.drops, dropKey(p), VALUE_BYTES);
    return v ? parseSendRecord(v) : undefined;
  }

  /** Detaches the programs and frees the maps (the kernel does the same when the helper exits). */
  close(): void {
    for (const fd of this.fds.reverse()) this.bpf.bpfClose(fd);
    this.fds.length = 0;
  }
}
