// The prompts: one card per pending prompt with what a person needs to decide (program,
// path, command line, parents, user, destinations, attempts, a warning when the program
// changed, time left) and the answers. Cards are keyed by prompt id: an update (another
// attempt, another process) redraws the facts but keeps the buttons and the chosen scope,
// so nobody loses their place while deciding.
//
// Every string from the helper goes in as text (el() in view.ts); a program chooses its
// own name, path and arguments, so those pass through visible() too. No icon file is
// loaded: the .desktop icon NAME is shown, next to a generic glyph.

import type { AnswerResult } from '../common/api.js';
import type { PromptDecision, PromptScope, PromptView } from '../common/prompts.js';
import { formatDestination } from '../common/format.js';
import type { AnswerOptions, IpcResult } from '../common/ipc.js';
import { describeDeadline, describeParents, formatCommandLine, formatTime, glyphLetter, plural, visible } from './format.js';
import type { Explanations } from './explain-view.js';
import { whyDisclosure } from './explain-view.js';
import { el } from './dom.js';

export interface PromptListOptions {
  /** Where "Why am I asked?" gets the helper's words. */
  explanations?: Explanations;
  /** The prompt window (400×600): answers right under the program, the facts folded away. */
  compact?: boolean;
}

export type AnswerFn = (id: string, decision: PromptDecision, options: AnswerOptions) => Promise<IpcResult<AnswerResult>>;

interface Answer {
  decision: PromptDecision;
  label: string;
  kind: 'allow' | 'deny';
  seconds?: number;
  title: string;
}

/** The answers offered, in this order. */
export const ANSWERS: readonly Answer[] = [
  { decision: 'allow-once', label: 'Allow once', kind: 'allow', title: 'This process only, until it exits.' },
  { decision: 'allow-for', label: 'Allow for 1 hour', kind: 'allow', seconds: 3600, title: 'This program, for the next hour.' },
  { decision: 'allow-always', label: 'Always allow', kind: 'allow', title: 'This program as it is now; an update asks again.' },
  { decision: 'deny', label: 'Deny', kind: 'deny', title: 'Not now: these processes are not asked about again while they run.' },
  { decision: 'deny-always', label: 'Always deny', kind: 'deny', title: 'Never ask about this program again.' },
];

const DONE: Readonly<Record<PromptDecision, string>> = {
  'allow-once': 'Allowed once.',
  'allow-for': 'Allowed for 1 hour.',
  'allow-always': 'Always allowed.',
  deny: 'Denied.',
  'deny-always': 'Always denied.',
};

interface Card {
  root: HTMLElement;
  details: HTMLElement;
  why: HTMLElement;
  timer: HTMLElement;
  destinationLabel: HTMLElement;
  buttons: HTMLButtonElement[];
  status: HTMLElement;
  scope: () => PromptScope;
  prompt: PromptView;
  json: string;
  busy: boolean;
}

export class PromptList {
  private readonly cards = new Map<string, Card>();

  constructor(
    private readonly section: HTMLElement,
    private readonly title: HTMLElement,
    private readonly list: HTMLElement,
    private readonly answer: AnswerFn,
    private readonly now: () => number = () => Date.now(),
    private readonly opts: PromptListOptions = {},
  ) {}

  /** Keyboard first: the first prompt's Deny has the focus (Enter denies; Tab or the arrows move). */
  focusDefault(): void {
    const first = this.list.querySelector<HTMLButtonElement>('.prompt button[data-decision="deny"]:not(:disabled)');
    first?.focus();
  }

  get count(): number {
    return this.cards.size;
  }

  update(prompts: readonly PromptView[]): void {
    const ids = new Set(prompts.map((p) => p.id));
    for (const [id, card] of this.cards) {
      if (ids.has(id)) continue;
      card.root.remove();
      this.cards.delete(id);
    }
    const order: HTMLElement[] = [];
    for (const p of prompts) {
      let card = this.cards.get(p.id);
      if (!card) {
        card = this.create(p);
        this.cards.set(p.id, card);
      } else if (JSON.stringify(p) !== card.json) {
        this.redraw(card, p);
      }
      order.push(card.root);
    }
    // Reorder only what moved: moving the focused card would take its focus.
    order.forEach((node, i) => {
      if (this.list.children[i] !== node) this.list.insertBefore(node, this.list.children[i] ?? null);
    });
    this.section.hidden = prompts.length === 0;
    this.title.textContent = prompts.length ? `${plural(prompts.length, 'program asks', 'programs ask')} for the tunnel` : '';
    this.tick();
  }

  /** Brings the prompts into view, the first one focused. */
  reveal(): void {
    if (this.section.hidden) return;
    this.section.scrollIntoView({ block: 'start' });
    const first = this.list.querySelector<HTMLElement>('.prompt');
    first?.focus({ preventScroll: true });
  }

  /** Time left on each card; called every second. */
  tick(): void {
    const now = this.now();
    for (const card of this.cards.values()) {
      const d = describeDeadline(card.prompt.deadline, now);
      card.timer.textContent = d.text;
      card.timer.classList.toggle('urgent', d.urgent);
    }
  }

  private create(p: PromptView): Card {
    const radioName = `scope-${p.id}`;
    const radio = (value: PromptScope, checked: boolean): HTMLInputElement => {
      const r = el('input');
      r.type = 'radio';
      r.name = radioName;
      r.value = value;
      r.checked = checked;
      return r;
    };
    const whole = radio('tunnel', true);
    const only = radio('destination', false);
    const destinationLabel = el('span');
    const buttons = ANSWERS.map((a) => {
      const b = el('button', `btn btn-${a.kind}`, a.label);
      b.type = 'button';
      b.title = a.title;
      b.dataset['decision'] = a.decision;
      return b;
    });
    const status = el('p', 'prompt-status');
    status.setAttribute('role', 'status');
    const timer = el('div', 'prompt-timer');
    const details = el('div', 'prompt-details');
    const why = el('div', 'prompt-why');
    const buttonRow = el('div', 'prompt-buttons', ...buttons);
    buttonRow.setAttribute('role', 'group');
    buttonRow.setAttribute('aria-label', `Answer for ${visible(p.program.name)}`);
    const controls = el(
      'div',
      'prompt-controls',
      el(
        'fieldset',
        'prompt-scope',
        el('legend', undefined, 'For'),
        el('label', undefined, whole, ' the whole tunnel'),
        el('label', undefined, only, ' ', destinationLabel),
      ),
      buttonRow,
      status,
    );
    const root = this.opts.compact
      ? el('article', 'prompt prompt-compact', details, controls, why)
      : el('article', 'prompt', details, why, controls);
    root.tabIndex = -1;
    root.setAttribute('aria-label', `${visible(p.program.name)} asks for the tunnel`);
    // Keyboard: the arrows move between the answers; Escape denies.
    buttonRow.addEventListener('keydown', (ev) => {
      const i = buttons.indexOf(ev.target as HTMLButtonElement);
      if (i < 0) return;
      if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') {
        ev.preventDefault();
        buttons[(i + (ev.key === 'ArrowRight' ? 1 : buttons.length - 1)) % buttons.length]?.focus();
      }
    });
    root.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape') return;
      ev.preventDefault();
      buttons.find((b) => b.dataset['decision'] === 'deny')?.click();
    });
    root.dataset['id'] = p.id;
    const card: Card = {
      root,
      details,
      why,
      timer,
      destinationLabel,
      buttons,
      status,
      scope: () => (only.checked ? 'destination' : 'tunnel'),
      prompt: p,
      json: '',
      busy: false,
    };
    ANSWERS.forEach((a, i) => buttons[i]?.addEventListener('click', () => void this.send(card, a)));
    this.redraw(card, p);
    return card;
  }

  private redraw(card: Card, p: PromptView): void {
    card.prompt = p;
    card.json = JSON.stringify(p);
    card.destinationLabel.textContent =
      p.destinations.length === 1 && p.destinations[0] ? `only ${formatDestination(p.destinations[0])}` : `only these ${p.destinations.length} destinations`;
    card.details.replaceChildren(...promptDetails(p, card.timer, this.opts.compact ?? false));
    const ex = this.opts.explanations;
    if (ex && !card.why.firstChild) {
      const d = p.destinations[0];
      const dst = d ? { addr: d.addr, proto: d.proto, ...(d.port !== undefined ? { port: d.port } : {}) } : undefined;
      card.why.replaceChildren(whyDisclosure(ex, { path: p.exe, ...(dst ? { dst } : {}) }, 'Why am I asked?'));
    }
  }

  private async send(card: Card, a: Answer): Promise<void> {
    if (card.busy) return;
    card.busy = true;
    for (const b of card.buttons) b.disabled = true;
    card.status.className = 'prompt-status';
    card.status.textContent = 'Sending…';
    const options: AnswerOptions = { scope: card.scope() };
    if (a.seconds !== undefined) options.seconds = a.seconds;
    const r = await this.answer(card.prompt.id, a.decision, options);
    if (r.ok) {
      // The card goes when the helper says the prompt closed (promptsChanged).
      card.status.textContent = `${DONE[a.decision]}${r.value.admitted.length ? ` Admitted: pid ${r.value.admitted.join(', ')}.` : ''}`;
      return;
    }
    card.busy = false;
    for (const b of card.buttons) b.disabled = false;
    card.status.className = 'prompt-status prompt-error';
    card.status.textContent = `Not answered: ${r.error.message}`;
  }
}

function promptDetails(p: PromptView, timer: HTMLElement, compact: boolean): Node[] {
  const name = visible(p.program.name);
  const head = el(
    'div',
    'prompt-head',
    el('div', 'prompt-glyph', glyphLetter(p.program.name)),
    el(
      'div',
      'prompt-who',
      el('div', 'prompt-program', name),
      el('div', 'prompt-ask', 'wants to use the tunnel'),
      p.program.icon !== undefined ? el('div', 'prompt-icon-name', `icon: ${visible(p.program.icon)}`) : null,
    ),
    timer,
  );
  head.firstElementChild?.setAttribute('aria-hidden', 'true');
  timer.setAttribute('role', 'timer');

  const facts: Array<[string, string, Node | string]> = [
    ['path', 'Program', visible(p.exe)],
    ['cmdline', 'Command line', p.cmdline ? formatCommandLine(p.cmdline) : 'not known'],
    ['parents', 'Started via', describeParents(p.parents)],
    ['user', 'User', `${visible(p.user)} (uid ${p.uid})`],
    [
      'destinations',
      p.destinations.length === 1 ? 'Destination' : 'Destinations',
      el(
        'div',
        undefined,
        ...p.destinations.map((d) => el('div', undefined, `${formatDestination(d)} on ${visible(d.iface)} · ${plural(d.count, 'attempt', 'attempts')}`)),
      ),
    ],
    [
      'attempts',
      'Attempts',
      `${plural(p.count, 'attempt', 'attempts')}, first ${formatTime(p.firstSeen)}, last ${formatTime(p.lastSeen)}` +
        (p.pids.length ? `; ${p.pids.length === 1 ? 'process' : 'processes'} ${p.pids.join(', ')}` : '; its processes have exited'),
    ],
  ];
  if (p.program.desktopEntry !== undefined) facts.push(['desktop', 'Desktop entry', visible(p.program.desktopEntry)]);
  if (p.sha256 !== undefined) facts.push(['sha256', 'sha256', p.sha256]);

  const dl = el('dl', 'prompt-facts');
  for (const [key, label, value] of facts) {
    const dd = el('dd', `fact-${key}`, value);
    dl.append(el('dt', undefined, label), dd);
  }
  const nodes: Node[] = [head];
  if (p.warnings.length) {
    nodes.push(el('ul', 'prompt-warnings', ...p.warnings.map((w) => el('li', 'prompt-warning', el('strong', undefined, 'Warning: '), visible(w)))));
  }
  if (compact) {
    const first = p.destinations[0];
    if (first) {
      const more = p.destinations.length > 1 ? ` and ${p.destinations.length - 1} more` : '';
      nodes.push(el('p', 'prompt-wants', `${formatDestination(first)}${more} · ${plural(p.count, 'attempt', 'attempts')}`));
    }
    nodes.push(el('details', 'prompt-more', el('summary', undefined, 'Details'), dl));
  } else {
    nodes.push(dl);
  }
  return nodes;
}
