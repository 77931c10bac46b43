// The prompt window's page (prompt.html, 400×600): only the prompts of programs that still
// run, answers first, Deny focused, the countdown to the helper's timeout, and "Why am I
// asked?" in the helper's words. Main opens this window for a new prompt and closes it
// when nothing is left to answer (main/prompt-surface.ts); the page only shows and asks.

import type { PromptView } from '../common/api.js';
import type { TunnelgateApi } from '../common/ipc.js';
import { Explanations } from './explain-view.js';
import { plural } from './format.js';
import { PromptList } from './prompt-view.js';
import { applyTheme } from './theme.js';
import { renderGate } from './view.js';

function byId(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`prompt.html has no #${id}`);
  return e;
}

export function startPromptWindow(api: TunnelgateApi): void {
  const title = byId('prompts-title');
  const empty = byId('prompts-empty');
  const hint = byId('keys-hint');
  const gate = byId('gate');
  const explanations = new Explanations((q) => api.explain(q));
  // PromptList hides its section when empty; here the page says so instead.
  const section = document.createElement('div');
  const list = new PromptList(section, document.createElement('span'), byId('prompts'), (id, d, o) => api.answerPrompt(id, d, o), () => Date.now(), {
    explanations,
    compact: true,
  });
  let focused = false;
  const show = (all: readonly PromptView[]): void => {
    const live = all.filter((p) => p.pids.length > 0);
    list.update(live);
    title.textContent = live.length ? `${plural(live.length, 'program asks', 'programs ask')} for the tunnel` : 'Nothing to answer';
    document.title = live.length ? `(${live.length}) tunnelgate: a program asks for the tunnel` : 'tunnelgate';
    empty.hidden = live.length > 0;
    hint.hidden = live.length === 0;
    // Keyboard first: Deny has the focus once the first prompt is drawn.
    if (live.length && !focused) {
      focused = true;
      list.focusDefault();
    }
    if (!live.length) focused = false;
  };
  let seen = false;
  api.onPromptsChanged((p) => {
    seen = true;
    show(p);
  });
  api.onHelperUnavailable((n) => {
    gate.hidden = false;
    renderGate(gate, undefined, n);
  });
  api.onStatusChanged((s) => {
    gate.hidden = true;
    gate.dataset['state'] = s.state;
  });
  api.onRulesChanged(() => explanations.forget());
  api.onPreferencesChanged(applyTheme);
  void api.getPreferences().then((r) => r.ok && applyTheme(r.value));
  setInterval(() => list.tick(), 1000);
  gate.hidden = true;
  void api.getPrompts().then((r) => {
    if (r.ok && !seen) show(r.value);
    if (!r.ok) {
      gate.hidden = false;
      renderGate(gate, undefined, { message: r.error.message, retryInMs: 0 });
    }
  });
}

startPromptWindow(window.tunnelgate);
