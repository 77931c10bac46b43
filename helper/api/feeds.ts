// The subscription side of the API: each subscriber gets a snapshot of its topics, then
// events it may see, prompt changes about its processes (all of them for admins), and the
// status again after events that change it, and when state-dir writes start or stop
// failing (coalesced: one push 250 ms after the first change).
import type { Caller, StatusReport, SubscribeResult, Topic } from '../../common/api.js';
import type { GateEvent, StampedEvent } from '../../common/events.js';
import type { PromptView } from '../../common/api.js';
import type { Clock } from '../core/clock.js';
import type { PromptChange } from '../core/prompts.js';
import { visibleTo } from './authorization.js';
import type { Feeds, Notify } from './server.js';

/**
 * Events that change what `status` says: the policy (applied, failed, its sources), the
 * kernel state put back (gate.restored: a note, the table there again), contested listeners,
 * and the count of admitted processes (admitted, released).
 */
export const STATUS_EVENTS: ReadonlySet<GateEvent['type']> = new Set<GateEvent['type']>([
  'policy.applied',
  'policy.failed',
  'gate.adopted',
  'gate.restored',
  'listeners.contested',
  'rule.added',
  'rule.removed',
  'profile.loaded',
  'profile.rejected',
  'profile.removed',
  'decisions.corrupt',
  'process.admitted',
  'process.released',
  'launch.admitted',
  'attempt.admitted',
]);
/** How long the status push waits for more status events (milliseconds). */
const STATUS_DEBOUNCE_MS = 250;

interface Subscriber {
  caller: Caller;
  topics: Set<Topic>;
  notify: Notify;
}

/** What the feeds read and follow. */
export interface FeedSources {
  clock: Clock;
  /** The event ring and its live feed (helper/core/event-bus.ts). */
  events: { recent(): StampedEvent[]; subscribe(fn: (e: StampedEvent) => void): () => void };
  status: () => Promise<StatusReport>;
  /**
   * What changes status besides events (state-dir write failures starting or ending:
   * helper/kernel/files.ts storageHealth.onChange): subscribe, returns the unsubscribe.
   */
  statusChanges?: (fn: () => void) => () => void;
}

/** What the feeds need of the prompt manager (helper/core/prompts.ts). */
export interface FeedPrompts {
  list(caller: Pick<Caller, 'uid' | 'admin'>): PromptView[];
  viewerArrived(uid: number): void;
  onChange(fn: (change: PromptChange, prompt: PromptView) => void): () => void;
}

/**
 * The subscribers and the fan-out to them. Built before the prompt manager (which asks
 * hasViewer); attach() connects the two. close() stops following and cancels the timer.
 */
export class SubscriberFeeds implements Feeds {
  private readonly subscribers = new Set<Subscriber>();
  private prompts: FeedPrompts | undefined;
  private statusTimer: unknown;
  private readonly offs: Array<() => void> = [];

  constructor(private readonly src: FeedSources) {}

  /** Does a subscriber of this uid follow prompts (someone who can answer one)? */
  hasViewer(uid: number): boolean {
    return [...this.subscribers].some((s) => s.caller.uid === uid && s.topics.has('prompts'));
  }

  /** Follow the events and the prompt manager's changes. Call once. */
  attach(prompts: FeedPrompts): void {
    this.prompts = prompts;
    this.offs.push(this.src.events.subscribe((e) => this.onEvent(e)));
    if (this.src.statusChanges) this.offs.push(this.src.statusChanges(() => this.statusChanged()));
    this.offs.push(
      prompts.onChange((change, prompt) => {
        for (const s of this.subscribers) {
          if (s.topics.has('prompts') && (s.caller.admin || s.caller.uid === prompt.uid)) s.notify('prompt', { change, prompt });
        }
      }),
    );
  }

  private onEvent(e: StampedEvent): void {
    for (const s of this.subscribers) if (s.topics.has('events') && visibleTo(s.caller, e)) s.notify('event', e);
    if (STATUS_EVENTS.has(e.type)) this.statusChanged();
  }

  /**
   * Push the status to its subscribers STATUS_DEBOUNCE_MS after a change, read then (so the
   * changes of that time go out as one push). Not reset by later changes: a steady stream of
   * them (processes admitted and released) cannot hold the push back.
   */
  private statusChanged(): void {
    if (this.statusTimer !== undefined || ![...this.subscribers].some((s) => s.topics.has('status'))) return;
    const { clock } = this.src;
    this.statusTimer = clock.setTimeout(() => {
      this.statusTimer = undefined;
      void this.src.status().then((st) => {
        for (const s of this.subscribers) if (s.topics.has('status')) s.notify('status', st);
      }, () => undefined);
    }, STATUS_DEBOUNCE_MS);
  }

  /** A snapshot of the topics the caller may see, then notifications until cancel(). */
  async subscribe(caller: Caller, topics: Topic[], notify: Notify): Promise<{ result: SubscribeResult; cancel: () => void }> {
    const result: SubscribeResult = { topics };
    if (topics.includes('events')) result.events = this.src.events.recent().filter((e) => visibleTo(caller, e));
    if (topics.includes('prompts') && this.prompts) result.prompts = this.prompts.list(caller);
    if (topics.includes('status')) result.status = await this.src.status();
    const sub = { caller, topics: new Set(topics), notify };
    this.subscribers.add(sub);
    if (topics.includes('prompts')) this.prompts?.viewerArrived(caller.uid);
    return { result, cancel: () => this.subscribers.delete(sub) };
  }

  close(): void {
    for (const off of this.offs.splice(0)) off();
    this.src.clock.clearTimeout(this.statusTimer);
  }
}
