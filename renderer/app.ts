// The status window's page. It knows the helper only through `window.tunnelgate`
// (main/preload.cts): asks for status, whitelist, prompts, events, the user's own rules
// and the audit summary once, then follows the main process's notifications. Answers to
// prompts, revokes and "Add an app…" go back the same way; the helper decides whether
// this user may do them, and explains every verdict shown.

import type { ListResult, PromptView, StatusReport, UserDecisionView } from '../common/api.js';
import type { AuditReport } from '../common/audit.js';
import type { StampedEvent } from '../common/events.js';
import type { HelperUnavailableNotice, IpcError, TunnelgateApi } from '../common/ipc.js';
import { AddAppDialog } from './add-app.js';
import { renderBlocked } from './blocked-view.js';
import { DecisionsView } from './decisions-view.js';
import { mergeEvents } from './event-list.js';
import { Explanations } from './explain-view.js';
import { PreferencesView } from './preferences-view.js';
import { PromptList } from './prompt-view.js';
import { applyTheme } from './theme.js';
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
  decisions?: UserDecisionView[];
  decisionsError?: IpcError;
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
    blocked: byId('blocked'),
    addApp: byId('add-app') as HTMLButtonElement,
    lockNote: byId('lock-note'),
  };
}

/** What the notification handlers and the first load update. */
interface Page {
  state: PageState;
  explanations: Explanations;
  prompts: PromptList;
  render(): void;
  renderEventList(): void;
  loadDecisions(): Promise<void>;
  showPrompts(list: readonly PromptView[]): void;
  /** promptsChanged carries the whole list: once one came, an earlier getPrompts answer is stale. */
  promptsSeen: boolean;
}

/** The helper's pushes through main: status, rules, availability, prompts, events. */
function wireNotifications(api: TunnelgateApi, page: Page): void {
  api.onStatusChanged((status) => {
    page.state.status = status;
    page.state.unavailable = undefined;
    page.render();
  });
  api.onRulesChanged((rules) => {
    page.state.rules = rules;
    page.state.rulesError = undefined;
    // Every verdict may differ now; the user's own rules may have changed too.
    page.explanations.forget();
    page.render();
    page.renderEventList();
    void page.loadDecisions();
  });
  api.onHelperUnavailable((notice) => {
    page.state.unavailable = notice;
    page.explanations.forget();
    page.render();
  });
  // promptsChanged carries the whole list: once one came, an earlier getPrompts answer is stale.
  api.onPromptsChanged((list) => {
    page.promptsSeen = true;
    page.showPrompts(list);
  });
  api.onEventsAdded((batch) => {
    page.state.events = mergeEvents(page.state.events, batch);
    page.state.eventsError = undefined;
    page.renderEventList();
  });
  api.onRevealSection((section) => {
    if (section === 'prompts') page.prompts.reveal();
  });
}

/** The first answers; a notification that arrived meanwhile is newer and wins. */
function loadInitial(api: TunnelgateApi, page: Page): void {
  void Promise.all([api.getStatus(), api.getRules(), api.getEvents(), api.getPrompts()]).then(([status, rules, events, pending]) => {
    // A notification may have arrived meanwhile; it is newer than these answers.
    if (status.ok) {
      page.state.status ??= status.value;
    } else if (status.error.kind === 'unavailable' || status.error.kind === 'helper') {
      page.state.unavailable ??= { message: status.error.message, retryInMs: 0 };
    } else {
      page.state.unavailable ??= { message: `the tray app could not ask: ${status.error.message}`, retryInMs: 0 };
    }
    if (rules.ok) page.state.rules ??= rules.value;
    else page.state.rulesError = rules.error;
    if (events.ok) page.state.events = mergeEvents(page.state.events, { events: events.value, replace: false });
    else if (!page.state.events.length) page.state.eventsError = events.error;
    if (pending.ok && !page.promptsSeen) page.showPrompts(pending.value);
    page.render();
    page.renderEventList();
  });
}

export function start(api: TunnelgateApi): void {
  const state: PageState = { events: [], auditLoading: true };
  const dom = pageElements();
  const explanations = new Explanations((q) => api.explain(q));
  const prompts = new PromptList(
    byId('prompts-section'),
    byId('prompts-title'),
    byId('prompts'),
    (id, decision, options) => api.answerPrompt(id, decision, options),
    () => Date.now(),
    { explanations },
  );
  const loadDecisions = async (): Promise<void> => {
    const r = await api.getDecisions();
    if (r.ok) {
      state.decisions = r.value;
      state.decisionsError = undefined;
    } else {
      state.decisionsError = r.error;
    }
    decisions.render(state.decisions, state.decisionsError);
  };
  const decisions = new DecisionsView(byId('decisions'), byId('decisions-note'), (t) => api.revoke(t), explanations, () => void loadDecisions());
  const addApp = new AddAppDialog(api, () => void loadDecisions());
  dom.addApp.addEventListener('click', () => void addApp.open());
  const preferences = new PreferencesView(byId('preferences'), byId('preferences-status'), api, applyTheme);
  api.onPreferencesChanged((p) => {
    applyTheme(p);
    preferences.show(p);
  });
  void api.getPreferences().then((r) => {
    if (!r.ok) return;
    applyTheme(r.value);
    preferences.show(r.value);
  });

  const shownRules: { rules?: ListResult | undefined; error?: IpcError | undefined; drawn?: true } = {};
  const render = (): void => {
    renderGate(dom.gate, state.status, state.unavailable);
    renderProblems(dom.problemsSection, dom.problems, state.status);
    renderInterfaces(dom.interfaces, state.status);
    // Rebuilt only when the whitelist changed: an open "Why?" stays open across status updates.
    if (!shownRules.drawn || state.rules !== shownRules.rules || state.rulesError !== shownRules.error) {
      shownRules.drawn = true;
      renderRules(dom.rules, dom.rulesNote, state.rules, state.rulesError, explanations);
      shownRules.rules = state.rules;
      shownRules.error = state.rulesError;
    }
    renderSources(dom.sources, state.status);
    renderHelperInfo(dom.helper, state.status);
    renderLock();
    document.body.classList.toggle('stale', state.unavailable !== undefined);
  };
  /** Where IT locks user decisions the controls say so rather than fail. */
  const renderLock = (): void => {
    const locked = state.rules?.userPrompts === 'deny';
    dom.lockNote.hidden = !locked;
    dom.lockNote.textContent = locked ? 'IT has locked this machine: only the IT profiles decide, so you cannot add apps or answer prompts here.' : '';
    dom.addApp.disabled = locked || state.unavailable !== undefined;
    dom.addApp.title = locked ? 'Locked by IT' : state.unavailable ? 'The helper is unavailable' : '';
  };
  const renderEventList = (): void => {
    renderEvents(dom.events, state.events, state.eventsError);
    renderBlocked(dom.blocked, state.events, explanations);
  };
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

  const page: Page = { state, explanations, prompts, render, renderEventList, loadDecisions, showPrompts, promptsSeen: false };
  wireNotifications(api, page);
  dom.auditRefresh.addEventListener('click', () => void loadAudit());
  setInterval(() => prompts.tick(), 1000);

  render();
  renderEventList();
  decisions.render(undefined, undefined);
  void loadAudit();
  void loadDecisions();
  loadInitial(api, page);
}

start(window.tunnelgate);
