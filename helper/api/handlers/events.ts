// `events`: the recent events the caller may see.
import type { StampedEvent } from '../../../common/events.js';
import { visibleTo } from '../authorization.js';
import type { Handlers } from '../server.js';

/** Events after `afterSeq` that the caller may see, the last `limit` of them. */
export function eventHandlers(d: { recent: () => StampedEvent[] }): Pick<Handlers, 'events'> {
  return {
    events: async (caller, p) => {
      const list = d.recent().filter((e) => e.seq > (p.afterSeq ?? 0) && visibleTo(caller, e));
      return p.limit !== undefined ? list.slice(-p.limit) : list;
    },
  };
}
