// A packet the gate refused (or, in audit mode, would have refused), attributed to the
// process that sent it. The kernel-side reader (helper/kernel/nflog.ts, via
// helper/daemon/attempts.ts) produces these; the prompt manager (helper/daemon/prompts.ts)
// consumes them. Every field except time, uid, dst, iface and mode may be missing: a
// process may be gone before it is looked at, and kernel traffic has no process at all.

export type AttemptProto = 'tcp' | 'udp' | 'icmp' | 'other';

export interface AttemptDestination {
  /** IPv4 dotted quad or IPv6 text. */
  addr: string;
  /** TCP/UDP destination port. */
  port?: number;
  proto: AttemptProto;
}

export interface DeniedAttempt {
  /** ISO instant the packet was logged. */
  time: string;
  /** The socket owner's uid (nft `log flags skuid`). */
  uid: number;
  pid?: number;
  /** /proc/PID/exe as the kernel resolved it. */
  exe?: string;
  cmdline?: string[];
  /** Nearest parent first. */
  parents?: Array<{ pid: number; exe: string }>;
  /**
   * How many dropped packets this record stands for (absent: 1). The log is rate-limited
   * (20/s, burst 50); where the kernel counts the sender's drops (helper/kernel/send-trace.ts)
   * a record also carries the unlogged drops of the same process and flow since the last one,
   * and 0 when an earlier record already counted its drop. Summed: the flow's drops.
   */
  repeats?: number;
  dst: AttemptDestination;
  /** The gated interface the packet was leaving by. */
  iface: string;
  /** `audit`: the packet went through, but enforcing would have dropped it. */
  mode: 'enforce' | 'audit';
}

/** How a destination is shown: common/format.ts (re-exported for the modules that import it from here). */
export { formatDestination } from './format.js';
