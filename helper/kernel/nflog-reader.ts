// Denied attempts: the refuse chain logs to an NFLOG group (rate-limited); each record is
// parsed and attributed to the process that owns the socket by the injected `attribute`
// (helper/identity/attribution.ts, wired in helper/startup.ts).
import type { DeniedAttempt } from '../../common/attempts.js';
import { openNetlink } from '../native/index.js';
import type { NetlinkSocket } from '../native/index.js';
import { errorOf, NETLINK_NETFILTER, nflogConfigMessages, parseMessages, parseNflog, parsePacket } from './netlink.js';
import type { PacketInfo } from './netlink.js';

export interface AttemptReaderDeps {
  group: number;
  onAttempt: (a: DeniedAttempt) => void;
  /** Interface name of an ifindex in our namespace. */
  ifaceName: (index: number) => Promise<string>;
  onError: (message: string) => void;
  /** The process behind a packet (kernel uid from the record, if any); {} when none is found. */
  attribute: (p: PacketInfo, uid: number | undefined) => Promise<Pick<DeniedAttempt, 'pid' | 'exe' | 'cmdline' | 'parents' | 'repeats'>>;
  /**
   * Drops of this packet's flow by process `pid` counted by the kernel since its last
   * attempt (the rest of a burst the rate-limited log did not show); asked `recountAfterMs`
   * after an attributed attempt, and reported as one more attempt when not 0.
   */
  unreported?: (p: PacketInfo, pid: number) => number;
  recountAfterMs?: number;
  /** Releases what `attribute` holds open (its sock_diag socket and reader thread); called by stop(). */
  release?: () => void;
  /** The log prefix of the refuse chain's audit-mode rule (helper/ruleset/render.ts LOG_PREFIX_AUDIT). */
  auditPrefix: string;
}

/** Reads the gate's NFLOG group and turns outbound drops into attributed attempts. */
export class AttemptReader {
  private sock: NetlinkSocket | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly deps: AttemptReaderDeps) {}

  start(): void {
    this.sock = openNetlink({ protocol: NETLINK_NETFILTER }, (b) => this.onDatagram(b));
    for (const m of nflogConfigMessages(this.deps.group)) this.sock.send(m);
  }

  private onDatagram(b: Buffer): void {
    if (!b.length) {
      this.deps.onError('the kernel dropped NFLOG records (reader too slow)');
      return;
    }
    for (const m of parseMessages(b)) {
      const err = errorOf(m);
      if (err) this.deps.onError(`NFLOG group ${this.deps.group}: errno ${err}${err === 16 ? ' (another reader holds this group)' : ''}`);
      const rec = parseNflog(m);
      if (!rec || rec.outdev === undefined) continue; // inbound drops are counted, not attributed
      const pkt = parsePacket(rec.payload);
      if (!pkt) continue;
      const time = new Date().toISOString();
      void (async () => {
        const who = await this.deps.attribute(pkt, rec.uid);
        const port = pkt.dport;
        const attempt: DeniedAttempt = {
          time,
          uid: rec.uid ?? -1,
          ...who,
          dst: { addr: pkt.dst, ...(port !== undefined ? { port } : {}), proto: pkt.proto },
          iface: await this.deps.ifaceName(rec.outdev as number).catch(() => `if${rec.outdev}`),
          mode: rec.prefix === this.deps.auditPrefix ? 'audit' : 'enforce',
        };
        this.deps.onAttempt(attempt);
        if (who.pid !== undefined) this.recount(pkt, attempt, who.pid);
      })().catch((e: Error) => this.deps.onError(`attributing a dropped packet: ${e.message}`));
    }
  }

  /** The rest of a burst: one more attempt standing for the drops counted since (see AttemptReaderDeps.unreported). */
  private recount(pkt: PacketInfo, attempt: DeniedAttempt, pid: number): void {
    const { unreported } = this.deps;
    if (!unreported) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      const n = unreported(pkt, pid);
      if (n > 0) this.deps.onAttempt({ ...attempt, time: new Date().toISOString(), repeats: n });
    }, this.deps.recountAfterMs ?? 1_000);
    this.timers.add(timer);
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.sock?.close();
    this.sock = undefined;
    this.deps.release?.();
  }
}
