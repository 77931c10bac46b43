// The running kernel's own type information (BTF, /sys/kernel/btf/vmlinux;
// Documentation/bpf/btf.rst): type ids, struct member offsets, enum values. The eBPF
// programs of helper/kernel/send-trace.ts are assembled against these at load time, so no
// offset of this kernel build is written in the source. Pure: parses a buffer.

const MAGIC = 0xeb9f;
const KIND = { int: 1, ptr: 2, array: 3, struct: 4, union: 5, enum: 6, fwd: 7, typedef: 8, volatile: 9, const: 10, restrict: 11, func: 12, funcProto: 13, var: 14, datasec: 15, float: 16, declTag: 17, typeTag: 18, enum64: 19 } as const;

interface Member {
  name: string;
  type: number;
  /** Bit offset within the struct. */
  bits: number;
}

/**
 * Parsed vmlinux BTF: look-ups by name, the only questions the loader asks. The first pass
 * only indexes where each type starts (vmlinux has ~150,000 types); names are compared as
 * string-section offsets (BTF strings are deduplicated) and decoded only for the structs asked.
 */
export class Btf {
  /** The blob as 32-bit words (BTF records are 4-byte aligned). */
  private readonly w: Uint32Array;
  /** Word index of each type's record (index = type id; 0: void). */
  private readonly at: Uint32Array;
  private readonly count: number;
  private readonly strs: Buffer;

  /** Parses a BTF blob. Throws on a bad magic or a kind this parser does not know. */
  constructor(buf: Buffer) {
    if (buf.length < 24 || buf.readUInt16LE(0) !== MAGIC) throw new Error('not BTF (bad magic)');
    const hdrLen = buf.readUInt32LE(4);
    const typeOff = hdrLen + buf.readUInt32LE(8);
    const typeLen = buf.readUInt32LE(12);
    const strOff = hdrLen + buf.readUInt32LE(16);
    this.strs = buf.subarray(strOff, strOff + buf.readUInt32LE(20));
    if (typeOff % 4) throw new Error('BTF types are not 4-byte aligned');
    const aligned = new Uint8Array(typeLen + 12);
    aligned.set(buf.subarray(typeOff, typeOff + typeLen));
    this.w = new Uint32Array(aligned.buffer, 0, aligned.length >> 2);
    const at = new Uint32Array((typeLen / 12 + 2) | 0);
    let n = 1;
    let i = 0;
    const end = typeLen >> 2;
    while (i < end) {
      at[n++] = i;
      const info = this.w[i + 1] as number;
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      i += 3;
      switch (kind) {
        case KIND.int: case KIND.var: case KIND.declTag: i += 1; break;
        case KIND.array: i += 3; break;
        case KIND.struct: case KIND.union: case KIND.datasec: case KIND.enum64: i += 3 * vlen; break;
        case KIND.enum: case KIND.funcProto: i += 2 * vlen; break;
        case KIND.ptr: case KIND.fwd: case KIND.typedef: case KIND.volatile: case KIND.const: case KIND.restrict:
        case KIND.func: case KIND.float: case KIND.typeTag: break;
        default: throw new Error(`BTF kind ${kind} unknown to this parser`);
      }
    }
    this.at = at;
    this.count = n;
  }

  private str(off: number): string {
    const end = this.strs.indexOf(0, off);
    return this.strs.toString('latin1', off, end < 0 ? this.strs.length : end);
  }

  /** The string-section offset of `name`, or -1. */
  private strIndex(name: string): number {
    const i = this.strs.indexOf(Buffer.from(`\0${name}\0`, 'latin1'));
    return i < 0 ? -1 : i + 1;
  }

  private kindOf(id: number): number {
    return ((this.w[(this.at[id] as number) + 1] as number) >>> 24) & 0x1f;
  }

  private ref(id: number): number {
    return this.w[(this.at[id] as number) + 2] as number;
  }

  /** The ids of the types of `kind` named `name`. */
  private findAll(name: string, kinds: readonly number[]): number[] {
    const so = this.strIndex(name);
    const out: number[] = [];
    if (so < 0) return out;
    for (let id = 1; id < this.count; id++) {
      if (this.w[this.at[id] as number] === so && kinds.includes(this.kindOf(id))) out.push(id);
    }
    return out;
  }

  /** The id of function `name` (an attach point: BPF LSM hooks are `bpf_lsm_<hook>`). Throws when absent. */
  funcId(name: string): number {
    const id = this.findAll(name, [KIND.func])[0];
    if (id === undefined) throw new Error(`the kernel has no function ${name} in its BTF`);
    return id;
  }

  /** The id of global variable `name` (a per-CPU variable for bpf_this_cpu_ptr). Throws when absent. */
  varId(name: string): number {
    const id = this.findAll(name, [KIND.var])[0];
    if (id === undefined) throw new Error(`the kernel has no variable ${name} in its BTF`);
    return id;
  }

  /** The value of enumerator `name` (in any enum). Throws when absent. */
  enumValue(name: string): number {
    const so = this.strIndex(name);
    for (let id = 1; so >= 0 && id < this.count; id++) {
      const kind = this.kindOf(id);
      if (kind !== KIND.enum && kind !== KIND.enum64) continue;
      const base = this.at[id] as number;
      const vlen = (this.w[base + 1] as number) & 0xffff;
      const step = kind === KIND.enum ? 2 : 3;
      for (let i = 0; i < vlen; i++) {
        const e = base + 3 + i * step;
        if (this.w[e] === so) return kind === KIND.enum ? (this.w[e + 1] as number) | 0 : (this.w[e + 1] as number);
      }
    }
    throw new Error(`the kernel has no enumerator ${name} in its BTF`);
  }

  /** Skips typedefs and qualifiers. */
  private resolve(id: number): number {
    let cur = id;
    for (let k = this.kindOf(cur); k === KIND.typedef || k === KIND.volatile || k === KIND.const || k === KIND.restrict || k === KIND.typeTag; k = this.kindOf(cur)) cur = this.ref(cur);
    return cur;
  }

  private members(id: number): Member[] {
    const kind = this.kindOf(id);
    if (kind !== KIND.struct && kind !== KIND.union) return [];
    const base = this.at[id] as number;
    const info = this.w[base + 1] as number;
    const out: Member[] = [];
    for (let i = 0; i < (info & 0xffff); i++) {
      const m = base + 3 + i * 3;
      const raw = this.w[m + 2] as number;
      out.push({ name: this.str(this.w[m] as number), type: this.w[m + 1] as number, bits: info >>> 31 ? raw & 0xffffff : raw });
    }
    return out;
  }

  /** A member of struct/union `id`, looking through anonymous structs and unions. */
  private memberIn(id: number, member: string): { bits: number; type: number } | undefined {
    for (const m of this.members(id)) {
      if (m.name === member) return { bits: m.bits, type: m.type };
      if (m.name === '') {
        const found = this.memberIn(this.resolve(m.type), member);
        if (found) return { bits: m.bits + found.bits, type: found.type };
      }
    }
    return undefined;
  }

  private walk(struct: string, path: string): { bits: number; type: number } {
    const id = this.findAll(struct, [KIND.struct, KIND.union])[0];
    if (id === undefined) throw new Error(`the kernel has no struct ${struct} in its BTF`);
    let t = this.resolve(id);
    let bits = 0;
    for (const part of path.split('.')) {
      const m = this.memberIn(t, part);
      if (!m) throw new Error(`struct ${struct} has no member ${path} in this kernel's BTF`);
      bits += m.bits;
      t = this.resolve(m.type);
    }
    return { bits, type: t };
  }

  /**
   * Byte offset of a member path (`'f_path'`, `'__sk_common.skc_family'`) in struct `struct`.
   * Throws when the struct or a member is absent, or the member is a bitfield.
   */
  offsetOf(struct: string, path: string): number {
    const { bits } = this.walk(struct, path);
    if (bits % 8) throw new Error(`${struct}.${path} is a bitfield`);
    return bits / 8;
  }

  /** Size in bytes of struct (or union) `name`. Throws when absent. */
  sizeOf(name: string): number {
    const id = this.findAll(name, [KIND.struct, KIND.union])[0];
    if (id === undefined) throw new Error(`the kernel has no struct ${name} in its BTF`);
    return this.ref(id);
  }

  /** Size in bytes of a member's type (8 for a pointer). */
  sizeOfMember(struct: string, path: string): number {
    const { type } = this.walk(struct, path);
    return this.kindOf(type) === KIND.ptr ? 8 : this.ref(type);
  }
}
