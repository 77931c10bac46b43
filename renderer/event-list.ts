// The events the window shows: what getEvents answered and what main pushed since
// (eventsAdded), merged, oldest first, the newest `max` kept. Pure: no DOM.
//
// An answer and a notification may cross on their way, so events are merged by
// identity, never assumed in order; a restarted helper counts `seq` from 1 again, so
// identity is seq and time together, and the order is by time first.

import type { StampedEvent } from '../common/events.js';
import type { EventBatch } from '../common/ipc.js';

export const MAX_EVENTS_SHOWN = 200;

export function mergeEvents(current: readonly StampedEvent[], batch: EventBatch, max = MAX_EVENTS_SHOWN): StampedEvent[] {
  const base = batch.replace ? [] : current;
  const seen = new Set(base.map(identity));
  const out = [...base];
  for (const e of batch.events) {
    const id = identity(e);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(e);
  }
  out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.seq - b.seq));
  return out.length > max ? out.slice(out.length - max) : out;
}

function identity(e: StampedEvent): string {
  return `${e.seq}@${e.time}`;
}
