// "My rules and answers": the tray app user's own allow rules and deny-always answers, as
// the helper keeps them (`decisions`), each with what it covers, how long, a "Why?" in the
// helper's words, and Revoke (an allow rule) or Undo (a deny-always). The helper decides
// whether a revoke is allowed and says why not; the row then shows its words.

import type { RevokeResult, UserDecisionView } from '../common/api.js';
import { describeLifetime } from '../common/format.js';
import type { IpcError, IpcResult } from '../common/ipc.js';
import { describeDestination, formatTime, visible } from './format.js';
import type { Explanations } from './explain-view.js';
import { whyDisclosure } from './explain-view.js';
import { el } from './dom.js';

export type RevokeFn = (target: string) => Promise<IpcResult<RevokeResult>>;

export function decisionTitle(d: UserDecisionView): string {
  return d.kind === 'allow' ? 'Allowed' : 'Always denied';
}

export function decisionScope(d: UserDecisionView): string {
  return d.destinations?.length ? `only ${d.destinations.map(describeDestination).join(', ')}` : 'the whole tunnel';
}

export function decisionLifetime(d: UserDecisionView): string {
  const l = d.lifetime;
  if (l.kind === 'until') return `until ${formatTime(l.expires)}`;
  return describeLifetime(l);
}

export class DecisionsView {
  constructor(
    private readonly list: HTMLElement,
    private readonly note: HTMLElement,
    private readonly revoke: RevokeFn,
    private readonly explanations: Explanations,
    /** Called after a revoke the helper accepted: the page asks for the list again. */
    private readonly changed: () => void,
  ) {}

  render(decisions: readonly UserDecisionView[] | undefined, error: IpcError | undefined): void {
    if (!decisions) {
      this.note.textContent = error ? `Your rules cannot be shown: ${error.message}` : 'Loading…';
      this.list.replaceChildren();
      return;
    }
    this.note.textContent = error ? `Not refreshed: ${error.message}` : '';
    if (!decisions.length) {
      this.list.replaceChildren(el('li', 'empty', 'You have no rules or “always deny” answers.'));
      return;
    }
    this.list.replaceChildren(...decisions.map((d) => this.row(d)));
  }

  private row(d: UserDecisionView): HTMLElement {
    const action = d.kind === 'allow' ? 'Revoke' : 'Undo';
    const button = el('button', `btn ${d.kind === 'allow' ? 'btn-deny' : 'btn-allow'}`, action);
    button.type = 'button';
    button.setAttribute('aria-label', `${action}: ${decisionTitle(d)} ${visible(d.path)}`);
    const status = el('p', 'decision-status');
    status.setAttribute('role', 'status');
    button.addEventListener('click', () => {
      button.disabled = true;
      status.className = 'decision-status';
      status.textContent = d.kind === 'allow' ? 'Revoking…' : 'Undoing…';
      void this.revoke(d.id).then((r) => {
        if (r.ok) {
          status.textContent = r.value.released ? `Done. ${r.value.released} running process(es) lost tunnel access.` : 'Done.';
          this.changed();
        } else {
          button.disabled = false;
          status.className = 'decision-status decision-error';
          status.textContent = `Not done: ${r.error.message}`;
        }
      });
    });
    const li = el(
      'li',
      `decision decision-${d.kind}`,
      el(
        'div',
        'decision-head',
        el('span', `action action-${d.kind}`, decisionTitle(d)),
        el('span', 'decision-program program', visible(d.path)),
        button,
      ),
      el(
        'div',
        'decision-facts',
        `${decisionScope(d)} · ${decisionLifetime(d)} · ${d.via === 'prompt' ? 'answered in a prompt' : 'added'} ${formatTime(d.createdAt)}`,
        d.sha256 !== undefined ? ` · pinned to sha256 ${d.sha256.slice(0, 12)}…` : '',
      ),
      whyDisclosure(this.explanations, { path: d.path }, 'Why?'),
      status,
    );
    li.dataset['id'] = d.id;
    if (d.key !== undefined) li.dataset['key'] = d.key;
    return li;
  }
}
