// The helper's explanation of a verdict, shown as it says it: the reason, the rule or lock
// behind it, the notes. The page computes no verdict of its own. Explanations are asked
// for once per subject and kept (the helper is asked again after the whitelist changes).

import type { ExplainResult } from '../common/api.js';
import type { ExplainQuery, IpcResult } from '../common/ipc.js';
import { visible } from './format.js';
import { el } from './dom.js';

export type ExplainFn = (query: ExplainQuery) => Promise<IpcResult<ExplainResult>>;

/** The explanation as text nodes: `Denied: <reason>` and the notes. */
export function explanationNodes(r: ExplainResult): HTMLElement[] {
  const verdict = r.verdict === 'allow' ? 'Allowed' : r.enforced ? 'Denied' : 'Denied (audit mode: recorded, not enforced)';
  const out: HTMLElement[] = [el('p', `why-reason why-${r.verdict}`, el('strong', undefined, `${verdict}: `), visible(r.reason))];
  if (r.rule) out.push(el('p', 'why-rule', `Rule ${r.rule.key}${r.rule.locked ? ' (set by IT, locked)' : ''}: ${visible(r.rule.description)}`));
  if (r.locked) out.push(el('p', 'why-locked', 'IT does not let users decide on this machine.'));
  for (const n of r.notes) out.push(el('p', 'why-note', visible(n)));
  return out;
}

/** Asks the helper once per key; the answers (and failures) are kept until `forget()`. */
export class Explanations {
  private readonly cache = new Map<string, Promise<IpcResult<ExplainResult>>>();

  constructor(private readonly explain: ExplainFn) {}

  get(query: ExplainQuery): Promise<IpcResult<ExplainResult>> {
    const key = JSON.stringify(query);
    let p = this.cache.get(key);
    if (!p) {
      p = this.explain(query);
      this.cache.set(key, p);
    }
    return p;
  }

  /** After the whitelist changed: every verdict may differ. */
  forget(): void {
    this.cache.clear();
  }

  /** Fills `box` with the explanation of `query` (a status line first, for screen readers). */
  async fill(box: HTMLElement, query: ExplainQuery): Promise<void> {
    box.setAttribute('aria-busy', 'true');
    box.replaceChildren(el('p', 'why-loading', 'Asking the helper why…'));
    const r = await this.get(query);
    box.removeAttribute('aria-busy');
    box.replaceChildren(...(r.ok ? explanationNodes(r.value) : [el('p', 'why-error', `The helper could not explain it: ${r.error.message}`)]));
  }
}

/** A "Why?" disclosure: the explanation is asked for when it is first opened. */
export function whyDisclosure(explanations: Explanations, query: ExplainQuery, label = 'Why?', open = false): HTMLDetailsElement {
  const box = el('div', 'why-box');
  box.setAttribute('aria-live', 'polite');
  const details = el('details', 'why', el('summary', undefined, label), box);
  let asked = false;
  const ask = (): void => {
    if (asked || !details.open) return;
    asked = true;
    void explanations.fill(box, query);
  };
  details.addEventListener('toggle', ask);
  if (open) {
    details.open = true;
    ask();
  }
  return details;
}
