// The status window's page. It knows the helper only through `window.tunnelgate`
// (main/preload.cts): asks for status, whitelist and events once, then follows the
// main process's notifications.

import type { ListResult, StatusReport } from '../common/api.js';
import type { StampedEvent } from '../common/events.js';
import type { HelperUnavailableNotice, IpcError, TunnelgateApi } from '../common/ipc.js';
import { renderEvents, renderGate, renderHelperInfo, renderInterfaces, renderProblems, renderRules, renderSources } from './view.js';

interface PageState {
  status?: StatusReport;
  rules?: ListResult;
  rulesError?: IpcError;
  events?: StampedEvent[];
  eventsError?: IpcError;
  unavailable?: HelperUnavailableNotice;
}

function byId(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`index.html has no #${id}`);
  return e;
}

export function start(api: TunnelgateApi): void {
  const state: PageState = {};
  const dom = {
    gate: byId('gate'),
    problemsSection: byId('problems-section'),
    problems: byId('problems'),
    interfaces: byId('interfaces'),
    rules: byId('rules-body'),
    rulesNote: byId('rules-note'),
    sources: byId('sources-body'),
    events: byId('events'),
    helper: byId('helper-info'),
  };

  const render = (): void => {
    renderGate(dom.gate, state.status, state.unavailable);
    renderProblems(dom.problemsSection, dom.problems, state.status);
    renderInterfaces(dom.interfaces, state.status);
    renderRules(dom.rules, dom.rulesNote, state.rules, state.rulesError);
    renderSources(dom.sources, state.status);
    renderEvents(dom.events, state.events, state.eventsError);
    renderHelperInfo(dom.helper, state.status);
    document.body.classList.toggle('stale', state.unavailable !== undefined);
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

  render();
  void Promise.all([api.getStatus(), api.getRules(), api.getEvents()]).then(([status, rules, events]) => {
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
    if (events.ok) state.events = events.value;
    else state.eventsError = events.error;
    render();
  });
}

start(window.tunnelgate);
