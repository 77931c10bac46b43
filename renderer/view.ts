// DOM for each part of the page. Every string from the helper goes in as a text node
// (textContent), never as markup; attributes are set only with fixed names.

import type { ListResult, StatusReport } from '../common/api.js';
import type { AuditReport } from '../common/audit.js';
import type { StampedEvent } from '../common/events.js';
import type { HelperUnavailableNotice, IpcError } from '../common/ipc.js';
import type { EffectiveRule } from '../common/policy.js';
import { summarizeAudit } from './audit-summary.js';
import type { Explanations } from './explain-view.js';
import { whyDisclosure } from './explain-view.js';
import type { DestinationSummary, ProgramSummary } from './audit-summary.js';
import {
  STATE_MEANINGS,
  STATE_TITLES,
  describeEvent,
  describeProgram,
  describeScope,
  describeSource,
  describeSourceStatus,
  formatCount,
  formatTime,
  plural,
  visible,
} from './format.js';

export { el } from './dom.js';
import { el, type Child } from './dom.js';

export function renderGate(root: HTMLElement, status: StatusReport | undefined, unavailable: HelperUnavailableNotice | undefined): void {
  const kind = unavailable ? 'unknown' : (status?.state ?? 'unknown');
  root.className = `gate gate-${kind}`;
  root.dataset['state'] = kind;
  if (unavailable) {
    root.replaceChildren(
      el('h1', 'gate-title', 'Helper unavailable'),
      el('div', 'gate-meaning', unavailable.message),
      el(
        'div',
        'gate-summary',
        status ? `Last known state: ${STATE_TITLES[status.state]}. ` : '',
        'Rules already in the kernel stay in force without the helper. ',
        retryText(unavailable),
      ),
    );
    return;
  }
  if (!status) {
    root.replaceChildren(el('h1', 'gate-title', 'Connecting…'), el('div', 'gate-meaning', 'Asking the helper for the gate state.'));
    return;
  }
  const parts = [
    `mode ${status.mode}`,
    status.mechanism,
    `${formatCount(status.ruleCount)} rule${status.ruleCount === 1 ? '' : 's'}`,
    `${formatCount(status.admittedProcesses)} admitted process${status.admittedProcesses === 1 ? '' : 'es'}`,
    `${formatCount(status.dropped.packets)} packet${status.dropped.packets === 1 ? '' : 's'} dropped`,
  ];
  root.replaceChildren(
    el('h1', 'gate-title', STATE_TITLES[status.state]),
    el('div', 'gate-meaning', STATE_MEANINGS[status.state]),
    el('div', 'gate-summary', parts.join(' · ')),
  );
}

function retryText(n: HelperUnavailableNotice): string {
  return n.retryInMs > 0 ? `Retrying in ${Math.ceil(n.retryInMs / 1000)} s.` : 'The tray app keeps trying.';
}

export function renderProblems(section: HTMLElement, list: HTMLElement, status: StatusReport | undefined): void {
  const problems = status?.problems ?? [];
  section.hidden = problems.length === 0;
  list.replaceChildren(...problems.map((p) => el('li', 'problem', p)));
}

export function renderInterfaces(list: HTMLElement, status: StatusReport | undefined): void {
  if (!status) return list.replaceChildren(el('li', 'empty', '—'));
  if (!status.interfaces.length) return list.replaceChildren(el('li', 'empty', 'No gated interface in the policy.'));
  list.replaceChildren(
    ...status.interfaces.map((i) =>
      el(
        'li',
        `iface ${i.present.length ? 'iface-up' : 'iface-absent'}`,
        el('span', 'iface-pattern', i.pattern),
        el('span', 'iface-present', i.present.length ? i.present.join(', ') : 'not present'),
      ),
    ),
  );
}

export function renderRules(tbody: HTMLElement, note: HTMLElement, rules: ListResult | undefined, error: IpcError | undefined, explanations?: Explanations): void {
  if (error && !rules) {
    note.textContent = `The whitelist cannot be shown: ${error.message}`;
    tbody.replaceChildren();
    return;
  }
  if (!rules) {
    note.textContent = 'Loading…';
    tbody.replaceChildren();
    return;
  }
  note.textContent =
    rules.userPrompts === 'allow'
      ? 'Users may be asked, and may add their own rules where no IT rule decides.'
      : 'Locked by IT: only the profiles decide; users cannot add rules.';
  if (!rules.rules.length) {
    const td = el('td', 'empty', 'No rules: the tunnel is closed to every program.');
    td.colSpan = 5;
    tbody.replaceChildren(el('tr', undefined, td));
    return;
  }
  tbody.replaceChildren(...rules.rules.map((r) => ruleRow(r, explanations)));
}

function ruleRow(r: EffectiveRule, explanations: Explanations | undefined): HTMLTableRowElement {
  const program = describeProgram(r);
  const tags: Child[] = [];
  if (r.mode === 'audit') tags.push(el('span', 'tag tag-audit', 'audit'));
  if (r.expires) tags.push(el('span', 'tag tag-expires', `until ${formatTime(r.expires)}`));
  const row = el(
    'tr',
    `rule rule-${r.action}`,
    el('td', 'rule-action', el('span', `action action-${r.action}`, r.action)),
    el(
      'td',
      'rule-program',
      el('div', 'program', program.main),
      ...program.extra.map((x) => el('div', 'program-extra', x)),
      el('div', 'rule-id', r.id),
      explanations ? whyDisclosure(explanations, { rule: r.key }, 'Why?') : null,
    ),
    el('td', 'rule-scope', ...describeScope(r).map((s) => el('div', undefined, s)), ...tags),
    el('td', 'rule-source', describeSource(r.source)),
    el('td', 'rule-lock', el('span', r.locked ? 'lock lock-on' : 'lock lock-off', r.locked ? 'locked' : 'revocable')),
  );
  // Small screens show the table as stacked rows: each cell names its column.
  const labels = ['Action', 'Program', 'Scope', 'Source', 'Lock'];
  [...row.cells].forEach((c, i) => (c.dataset['label'] = labels[i] ?? ''));
  row.dataset['key'] = r.key;
  return row;
}

export function renderSources(tbody: HTMLElement, status: StatusReport | undefined): void {
  const sources = status?.sources ?? [];
  if (!sources.length) {
    const td = el('td', 'empty', status ? 'No profile found.' : '—');
    td.colSpan = 4;
    tbody.replaceChildren(el('tr', undefined, td));
    return;
  }
  tbody.replaceChildren(
    ...sources.map((s) =>
      el(
        'tr',
        `source source-${s.state}`,
        el('td', undefined, el('span', `source-state state-${s.state}`, s.state)),
        el('td', undefined, describeSourceStatus(s)),
        el('td', 'source-file', s.file),
        el('td', 'source-problems', ...(s.problems.length ? s.problems.map((p) => el('div', 'problem', p)) : ['—'])),
      ),
    ),
  );
}

export function renderEvents(list: HTMLElement, events: StampedEvent[] | undefined, error: IpcError | undefined): void {
  if (!events?.length) {
    const text = error
      ? `Events cannot be shown: ${error.message}`
      : 'No events yet. Blocked attempts, prompts, decisions and policy changes will appear here.';
    list.replaceChildren(el('li', 'empty', text));
    return;
  }
  list.replaceChildren(
    ...[...events].reverse().map((e) => {
      const d = describeEvent(e);
      return el(
        'li',
        `event event-${d.severity}`,
        el('time', 'event-time', formatTime(e.time)),
        el('span', 'event-title', d.title),
        el('span', 'event-detail', d.detail),
      );
    }),
  );
}

export interface AuditDom {
  coverage: HTMLElement;
  totals: HTMLElement;
  programs: HTMLElement;
  destinations: HTMLElement;
  period: HTMLElement;
}

/** Rows per table; the totals say how many there are in all. */
export const AUDIT_TOP = 10;

export function renderAudit(dom: AuditDom, report: AuditReport | undefined, error: IpcError | undefined, loading: boolean): void {
  if (!report) {
    dom.coverage.hidden = true;
    dom.period.textContent = '';
    dom.totals.textContent = loading ? 'Loading…' : `The audit summary cannot be shown: ${error?.message ?? 'no answer'}`;
    emptyRow(dom.programs, 6, '—');
    emptyRow(dom.destinations, 5, '—');
    return;
  }
  const s = summarizeAudit(report, AUDIT_TOP);
  // The helper's own words, verbatim and first: what this evidence does not cover.
  dom.coverage.hidden = false;
  dom.coverage.replaceChildren(el('div', 'coverage-title', 'What this does not show'), el('p', 'coverage-text', s.coverage));
  dom.period.textContent = `last ${plural(s.days, 'day', 'days')}`;
  if (!s.attempts) {
    dom.totals.textContent = error ? `Not refreshed: ${error.message}` : `Nothing was refused in the last ${plural(s.days, 'day', 'days')}.`;
    emptyRow(dom.programs, 6, 'No program was refused.');
    emptyRow(dom.destinations, 5, 'No destination was refused.');
    return;
  }
  dom.totals.textContent =
    `${plural(s.attempts, 'attempt', 'attempts')} by ${plural(s.programCount, 'program', 'programs')} to ${plural(s.destinationCount, 'destination', 'destinations')}` +
    (s.auditAttempts ? `; ${formatCount(s.auditAttempts)} passed only because of audit mode` : '') +
    (s.programCount > AUDIT_TOP || s.destinationCount > AUDIT_TOP ? `. The ${AUDIT_TOP} most frequent of each are shown.` : '.') +
    (error ? ` Not refreshed: ${error.message}` : '');
  dom.programs.replaceChildren(...s.programs.map(programRow));
  dom.destinations.replaceChildren(...s.destinations.map(destinationRow));
}

/** `blocked`, `would be blocked` (audit mode): tags with a space between, to read and copy right. */
function modeTags(modes: ProgramSummary['modes']): HTMLElement {
  const tags = modes.map((m) => el('span', `tag tag-${m === 'audit' ? 'audit' : 'blocked'}`, m === 'audit' ? 'would be blocked' : 'blocked'));
  return el('div', undefined, ...tags.flatMap((t, i) => (i ? [' ', t] : [t])));
}

function programRow(p: ProgramSummary): HTMLTableRowElement {
  return el(
    'tr',
    'audit-program',
    el('td', 'program', p.exe !== undefined ? visible(p.exe) : '(process gone before it was named)', modeTags(p.modes)),
    el('td', 'num', formatCount(p.attempts)),
    el('td', 'num', formatCount(p.destinations)),
    el('td', 'users', p.uids.map((u) => `uid ${u}`).join(', ')),
    el('td', 'when', formatTime(p.firstSeen)),
    el('td', 'when', formatTime(p.lastSeen)),
  );
}

function destinationRow(d: DestinationSummary): HTMLTableRowElement {
  return el(
    'tr',
    'audit-destination',
    el('td', 'program', d.destination, modeTags(d.modes)),
    el('td', 'num', formatCount(d.attempts)),
    el('td', 'num', formatCount(d.programs)),
    el('td', 'when', formatTime(d.firstSeen)),
    el('td', 'when', formatTime(d.lastSeen)),
  );
}

function emptyRow(tbody: HTMLElement, columns: number, text: string): void {
  const td = el('td', 'empty', text);
  td.colSpan = columns;
  tbody.replaceChildren(el('tr', undefined, td));
}

export function renderHelperInfo(footer: HTMLElement, status: StatusReport | undefined): void {
  if (!status) return footer.replaceChildren();
  const h = status.helper;
  footer.replaceChildren(
    `Helper pid ${h.pid}, version ${h.version}, running since ${formatTime(h.startedAt)}`,
    h.appliedAt ? `; policy applied ${formatTime(h.appliedAt)}` : '',
    `. Rule cgroups: ${status.cgroupDir}`,
  );
}
