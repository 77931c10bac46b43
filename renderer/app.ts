// The status window's page. It knows the helper only through `window.tunnelgate`
// (main/preload.cts): asks for status, whitelist, prompts, events and the audit summary
// once, then follows the main process's notifications. Answers to prompts go back the
// same way; the helper decides whether this user may give them.

import type { ListResult, PromptView, StatusReport } from '../common/api.js';
import type { AuditReport } from '../common/audit.js';
import type { StampedEvent } from '../common/events.js';
import type { HelperUnavailableNotice, IpcError, TunnelgateApi } from '../common/ipc.js';
import { mergeEvents } from './event-list.js';
import { PromptList } from './prompt-view.js';
import { renderAudit, renderEvents, renderGate, renderHelperInfo, renderInterfaces, renderProblems, renderRules, renderSources } from './view.js';

interface PageState {
  status?: StatusReport;
  rules?: ListResult;
  rulesError?: IpcError;
  events: StampedEvent[];
  eventsError?: IpcError;
  unavailable?: HelperUnavailableNotice;
  audit?: AuditReport;
  auditError?: IpcError;
  auditLoading: boolean;
}

function byId(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`index.html has no #${id}`);
  return e;
}

/** The elements of index.html the page fills. */
function pageElements() {
  return {
    gate: byId('gate'),
    problemsSection: byId('problems-section'),
    problems: byId('problems'),
    interfaces: byId('interfaces'),
    rules: byId('rules-body'),
    rulesNote: byId('rules-note'),
    sources: byId('sources-body'),
    events: byId('events'),
    helper: byId('helper-info'),
    audit: {
      coverage: byId('audit-coverage'),
      totals: byId('audit-totals'),
      programs: byId('audit-programs-body'),
      destinations: byId('audit-destinations-body'),
      period: byId('audit-period'),
    },
    auditRefresh: byId('audit-refresh') as HTMLButtonElement,
  };
}

export function start(api: TunnelgateApi): void {
  const state: PageState = { events: [], auditLoading: true };
  const dom = pageElements();
  const prompts = new PromptList(byId('prompts-section'), byId('prompts-title'), byId('prompts'), (id, decision, options) =>
    api.answerPrompt(id, decision, options),
  );

  const render = (): void => {
    renderGate(dom.gate, state.status, state.unavailable);
    renderProblems(dom.problemsSection, dom.problems, state.status);
    renderInterfaces(dom.interfaces, state.status);
    renderRules(dom.rules, dom.rulesNote, state.rules, state.rulesError);
    renderSources(dom.sources, state.status);
    renderHelperInfo(dom.helper, state.status);
    document.body.classList.toggle('stale', state.unavailable !== undefined);
  };
  const renderEventList = (): void => renderEvents(dom.events, state.events, state.eventsError);
  const renderAuditPanel = (): void => {
    renderAudit(dom.audit, state.audit, state.auditError, state.auditLoading);
    dom.auditRefresh.disabled = state.auditLoading;
  };
  const showPrompts = (list: readonly PromptView[]): void => {
    prompts.update(list);
    document.title = list.length ? `(${list.length}) tunnelgate` : 'tunnelgate';
  };
  const loadAudit = async (): Promise<void> => {
    state.auditLoading = true;
    renderAuditPanel();
    const r = await api.getAudit();
    state.auditLoading = false;
    if (r.ok) {
      state.audit = r.value;
      state.auditError = undefined;
    } else {
      state.auditError = r.error; // a report shown before stays, marked as not refreshed
    }
    renderAuditPanel();
  };

  api.onStatusChanged((status) => {
    state.status = status;
    state.unavailable = undefined;
    render();
  });
  api.onRulesChanged((rules) => {
    state.rules = rules;
    state.rulesError = undefined;
    render();
  });
  api.onHelperUnavailable((notice) => {
    state.unavailable = notice;
    render();
  });
  // promptsChanged carries the whole list: once one came, an earlier getPrompts answer is stale.
  let promptsSeen = false;
  api.onPromptsChanged((list) => {
    promptsSeen = true;
    showPrompts(list);
  });
  api.onEventsAdded((batch) => {
    state.events = mergeEvents(state.events, batch);
    state.eventsError = undefined;
    renderEventList();
  });
  api.onRevealSection((section) => {
    if (section === 'prompts') prompts.reveal();
  });
  dom.auditRefresh.addEventListener('click', () => void loadAudit());
  setInterval(() => prompts.tick(), 1000);

  render();
  renderEventList();
  void loadAudit();
  void Promise.all([api.getStatus(), api.getRules(), api.getEvents(), api.getPrompts()]).then(([status, rules, events, pending]) => {
    // A notification may have arrived meanwhile; it is newer than these answers.
    if (status.ok) {
      state.status ??= status.value;
    } else if (status.error.kind === 'unavailable' || status.error.kind === 'helper') {
      state.unavailable ??= { message: status.error.message, retryInMs: 0 };
    } else {
      state.unavailable ??= { message: `the tray app could not ask: ${status.error.message}`, retryInMs: 0 };
    }
    if (rules.ok) state.rules ??= rules.value;
    else state.rulesError = rules.error;
    if (events.ok) state.events = mergeEvents(state.events, { events: events.value, replace: false });
    else if (!state.events.length) state.eventsError = events.error;
    if (pending.ok && !promptsSeen) showPrompts(pending.value);
    render();
    renderEventList();
  });
}

start(window.tunnelgate);
