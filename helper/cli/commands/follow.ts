// `tunnelgate events --follow`: the recent events, then each new one as the helper reports it.
import type { StampedEvent } from '../../../common/events.js';
import { safeJson } from '../../../common/format.js';
import { HelperClient, HelperUnavailable } from '../../../common/node/client.js';
import { formatEvent } from '../format.js';
import { runDirOf, say } from '../io.js';

/** Prints events until the helper closes the connection, then throws HelperUnavailable (exit 1). */
export async function followEvents(o: { run?: string; json?: boolean; limit?: number }): Promise<never> {
  const show = (e: StampedEvent) => (o.json ? process.stdout.write(`${safeJson(e)}\n`) : say(formatEvent(e)));
  const client = await HelperClient.connect(runDirOf(o.run));
  // A notification may come before the subscription's snapshot: hold those, then show
  // each event once, in seq order.
  let last = 0;
  let held: StampedEvent[] | undefined = [];
  const showNew = (e: StampedEvent) => {
    if (e.seq <= last) return;
    last = e.seq;
    show(e);
  };
  client.onNotification((n) => {
    if (n.method !== 'event') return;
    if (held) held.push(n.params);
    else showNew(n.params);
  });
  const r = await client.subscribe(['events']);
  const recent = r.events ?? [];
  for (const e of o.limit !== undefined ? recent.slice(-o.limit) : recent) show(e);
  last = recent.at(-1)?.seq ?? 0;
  for (const e of held) showNew(e);
  held = undefined;
  await client.closed;
  // Said as any lost helper is (program.ts): text on stderr, or with --json a JSON error on stdout.
  throw new HelperUnavailable('the helper closed the connection');
}
