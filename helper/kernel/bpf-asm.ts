// A small eBPF assembler (Documentation/bpf/standardization/instruction-set.rst): the
// helper's programs are written here as instruction lists and encoded to the kernel's
// struct bpf_insn (8 bytes, little-endian: code, dst:4|src:4, off s16, imm s32), with
// forward jumps by label. Pure; the verifier is the judge of what is loaded.

export type Reg = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;

export interface Insn {
  code: number;
  dst: Reg;
  src: number;
  off: number | string;
  imm: number;
  /** ld_imm64's second slot (upper 32 bits). */
  imm2?: number;
  label?: string;
}

const LD = 0x00, LDX = 0x01, ST = 0x02, STX = 0x03, ALU64 = 0x07, JMP = 0x05;
const SIZE = { 1: 0x10, 2: 0x08, 4: 0x00, 8: 0x18 } as const;
const MEM = 0x60, IMM = 0x00, ATOMIC = 0xc0;
const K = 0x00, X = 0x08;
const ALU = { add: 0x00, sub: 0x10, mul: 0x20, or: 0x40, and: 0x50, lsh: 0x60, rsh: 0x70, mov: 0xb0 } as const;
const J = { ja: 0x00, jeq: 0x10, jgt: 0x20, jge: 0x30, jne: 0x50, jsgt: 0x60, jsge: 0x70, jlt: 0xa0, jle: 0xb0, jslt: 0xc0, jsle: 0xd0 } as const;

export type AluOp = keyof typeof ALU;
export type JmpOp = keyof typeof J;
export type Size = 1 | 2 | 4 | 8;

/** BPF_PSEUDO_MAP_FD: ld_imm64 of a map fd. */
export const PSEUDO_MAP_FD = 1;
/** BPF_PSEUDO_BTF_ID: ld_imm64 of a kernel variable by BTF id. */
export const PSEUDO_BTF_ID = 3;

const ins = (code: number, dst: Reg, src: number, off: number | string, imm: number): Insn => ({ code, dst, src, off, imm });

/** The instructions, each a function of its operands. */
export const asm = {
  /** dst op= imm (64-bit). */
  aluK: (op: AluOp, dst: Reg, imm: number) => ins(ALU64 | ALU[op] | K, dst, 0, 0, imm),
  /** dst op= src (64-bit). */
  aluX: (op: AluOp, dst: Reg, src: Reg) => ins(ALU64 | ALU[op] | X, dst, src, 0, 0),
  movK: (dst: Reg, imm: number) => ins(ALU64 | ALU.mov | K, dst, 0, 0, imm),
  movX: (dst: Reg, src: Reg) => ins(ALU64 | ALU.mov | X, dst, src, 0, 0),
  /** dst = *(size *)(src + off) */
  ldx: (size: Size, dst: Reg, src: Reg, off: number) => ins(LDX | MEM | SIZE[size], dst, src, off, 0),
  /** *(size *)(dst + off) = src */
  stx: (size: Size, dst: Reg, off: number, src: Reg) => ins(STX | MEM | SIZE[size], dst, src, off, 0),
  /** *(size *)(dst + off) = imm */
  st: (size: Size, dst: Reg, off: number, imm: number) => ins(ST | MEM | SIZE[size], dst, 0, off, imm),
  /** lock *(u64 *)(dst + off) += src */
  atomicAdd64: (dst: Reg, off: number, src: Reg) => ins(STX | ATOMIC | SIZE[8], dst, src, off, ALU.add),
  /** if dst op imm goto label */
  jK: (op: JmpOp, dst: Reg, imm: number, label: string) => ins(JMP | J[op] | K, dst, 0, label, imm),
  /** if dst op src goto label */
  jX: (op: JmpOp, dst: Reg, src: Reg, label: string) => ins(JMP | J[op] | X, dst, src, label, 0),
  ja: (label: string) => ins(JMP | J.ja, 0, 0, label, 0),
  call: (helper: number) => ins(JMP | 0x80, 0, 0, 0, helper),
  exit: () => ins(JMP | 0x90, 0, 0, 0, 0),
  /** dst = 64-bit immediate; `pseudo` makes it a map fd or a BTF id the kernel resolves. */
  ldImm64: (dst: Reg, imm: number, pseudo = 0, imm2 = 0): Insn => ({ code: LD | IMM | SIZE[8], dst, src: pseudo, off: 0, imm, imm2 }),
  /** Gives the next instruction a label. */
  label: (name: string, i: Insn): Insn => ({ ...i, label: name }),
};

/** Encodes a program; labels resolve to forward or backward jump offsets. Throws on an unknown label. */
export function assemble(prog: readonly Insn[]): Buffer {
  // Slot index of every instruction (ld_imm64 takes two).
  const slot: number[] = [];
  let n = 0;
  for (const i of prog) {
    slot.push(n);
    n += i.code === (LD | IMM | SIZE[8]) ? 2 : 1;
  }
  const at = new Map<string, number>();
  prog.forEach((i, k) => {
    if (i.label === undefined) return;
    if (at.has(i.label)) throw new Error(`bpf: label ${i.label} twice`);
    at.set(i.label, slot[k] as number);
  });
  const out = Buffer.alloc(n * 8);
  prog.forEach((i, k) => {
    const s = slot[k] as number;
    let off = i.off;
    if (typeof off === 'string') {
      const t = at.get(off);
      if (t === undefined) throw new Error(`bpf: no label ${off}`);
      off = t - s - 1;
    }
    if (off < -32768 || off > 32767) throw new Error('bpf: jump too far');
    out.writeUInt8(i.code, s * 8);
    out.writeUInt8((i.dst & 0xf) | ((i.src & 0xf) << 4), s * 8 + 1);
    out.writeInt16LE(off, s * 8 + 2);
    out.writeInt32LE(i.imm | 0, s * 8 + 4);
    if (i.code === (LD | IMM | SIZE[8])) out.writeInt32LE((i.imm2 ?? 0) | 0, s * 8 + 12);
  });
  return out;
}
