// Events: stamped, kept in a bounded ring for clients, and written to stderr (the
// journal, under systemd) as JSON lines.
import type { GateEvent, StampedEvent } from '../../common/events.js';
import { safeJson } from '../../common/format.js';

export interface EventSink {
  emit(e: GateEvent): void;
}

export class EventLog implements EventSink {
  private seq: number;
  private readonly ring: StampedEvent[] = [];
  private readonly listeners = new Set<(e: StampedEvent) => void>();

  /** @param after the seq the last helper ended with (audit-trail.ts lastAuditSeq): numbering goes on from there, unique across starts. */
  constructor(
    private readonly write: (line: string) => void = (l) => process.stderr.write(l),
    private readonly max = 1000,
    after = 0,
  ) {
    this.seq = after;
  }

  emit(e: GateEvent): void {
    const stamped: StampedEvent = { ...e, seq: ++this.seq, time: new Date().toISOString() };
    this.ring.push(stamped);
    if (this.ring.length > this.max) this.ring.shift();
    this.write(`${safeJson(stamped)}\n`);
    for (const l of this.listeners) l(stamped);
  }

  recent(): StampedEvent[] {
    return [...this.ring];
  }

  subscribe(fn: (e: StampedEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
