// "Blocked programs": the programs whose tunnel traffic the gate refused recently (from the
// events main passes on), one row per program and user, newest first, each with the
// helper's explanation of why, asked with the program's path and its last destination.

import type { StampedEvent } from '../common/events.js';
import { formatDestination } from '../common/attempts.js';
import type { AttemptDestination } from '../common/attempts.js';
import { formatTime, plural, visible } from './format.js';
import type { Explanations } from './explain-view.js';
import { whyDisclosure } from './explain-view.js';
import { el } from './dom.js';

export interface BlockedProgram {
  exe: string;
  uid: number;
  attempts: number;
  lastDst: AttemptDestination;
  lastSeen: string;
  audit: boolean;
}

/** Programs shown (the newest); the events list has everything. */
export const MAX_BLOCKED = 12;

/** Denied attempts grouped by program and user, newest first. Attempts of processes gone before they were named are left out. */
export function blockedPrograms(events: readonly StampedEvent[], max = MAX_BLOCKED): BlockedProgram[] {
  const by = new Map<string, BlockedProgram>();
  for (const e of events) {
    if (e.type !== 'attempt.denied' || e.attempt.exe === undefined) continue;
    const a = e.attempt;
    const key = `${a.uid}\u0000${a.exe}`;
    const b = by.get(key);
    if (!b) {
      by.set(key, { exe: a.exe as string, uid: a.uid, attempts: 1, lastDst: a.dst, lastSeen: e.time, audit: a.mode === 'audit' });
    } else {
      b.attempts += 1;
      if (e.time >= b.lastSeen) Object.assign(b, { lastDst: a.dst, lastSeen: e.time, audit: a.mode === 'audit' });
    }
  }
  return [...by.values()].sort((x, y) => (x.lastSeen < y.lastSeen ? 1 : x.lastSeen > y.lastSeen ? -1 : 0)).slice(0, max);
}

export function renderBlocked(list: HTMLElement, events: readonly StampedEvent[], explanations: Explanations): void {
  const programs = blockedPrograms(events);
  if (!programs.length) {
    list.replaceChildren(el('li', 'empty', 'No program was blocked recently.'));
    return;
  }
  // Rows are rebuilt; their explanations come from the cache, so the helper is asked once.
  list.replaceChildren(
    ...programs.map((b) => {
      const dst = { addr: b.lastDst.addr, proto: b.lastDst.proto, ...(b.lastDst.port !== undefined ? { port: b.lastDst.port } : {}) };
      const li = el(
        'li',
        `blocked${b.audit ? ' blocked-audit' : ''}`,
        el('div', 'blocked-program program', visible(b.exe)),
        el(
          'div',
          'blocked-facts',
          `${b.audit ? 'would be blocked (audit)' : 'blocked'} → ${formatDestination(b.lastDst)} · ${plural(b.attempts, 'attempt', 'attempts')} · last ${formatTime(b.lastSeen)} · uid ${b.uid}`,
        ),
        whyDisclosure(explanations, { path: b.exe, dst }, 'Why blocked?', true),
      );
      li.dataset['exe'] = b.exe;
      return li;
    }),
  );
}
