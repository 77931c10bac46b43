// Words for what the helper reports: pure functions from the shared types to text.
// No DOM here, so unit tests run them under Node.

import type { GateState } from '../common/api.js';
import type { PromptCloseReason, RuleRemovalReason, StampedEvent } from '../common/events.js';
import { describeDestination, formatDestination, formatRemaining, shortHash, visible } from '../common/format.js';
import type { EffectiveRule, RuleSource, SourceStatus } from '../common/policy.js';
import type { PromptDecision, PromptView } from '../common/prompts.js';

// The sanitiser and the shared formatters, for the page's modules that import them from here.
export { describeDestination, formatCommandLine, formatRemaining, visible } from '../common/format.js';

export const STATE_TITLES: Readonly<Record<GateState, string>> = {
  enforcing: 'Enforcing',
  audit: 'Audit only',
  degraded: 'Degraded',
  down: 'Down',
};

export const STATE_MEANINGS: Readonly<Record<GateState, string>> = {
  enforcing: 'Only whitelisted programs can reach the tunnel.',
  audit: 'Nothing is blocked: programs that would be denied are recorded.',
  degraded: 'The gate is in force, but not everything is as the policy says (see the problems).',
  down: 'The gate is not in force (see the problems).',
};

export function describeProgram(r: EffectiveRule): { main: string; extra: string[] } {
  if (r.kernel) return { main: 'kernel traffic (no process)', extra: [] };
  const b = r.binary;
  if (!b) return { main: '(no program)', extra: [] };
  const extra: string[] = [];
  if (b.script !== undefined) extra.push(`script ${b.script}`);
  if (b.sha256 !== undefined) extra.push(`sha256 ${shortHash(b.sha256)}`);
  if (b.package !== undefined) return { main: `package ${b.package}`, extra };
  return { main: b.path ?? '(no path)', extra };
}

export function describeScope(r: EffectiveRule): string[] {
  return r.destinations?.length ? r.destinations.map(describeDestination) : ['whole tunnel'];
}

export function describeSource(s: RuleSource): string {
  return s.kind === 'profile' ? `profile ${s.profileId} v${s.version}` : `user ${s.uid}`;
}

export function describeSourceStatus(s: SourceStatus): string {
  return s.profileId !== undefined ? `${s.profileId}${s.version !== undefined ? ` v${s.version}` : ''}` : '(unreadable)';
}

export interface EventDescription {
  title: string;
  detail: string;
  severity: 'info' | 'warn' | 'block';
}

export function describeEvent(e: StampedEvent): EventDescription {
  if (isDecisionEvent(e)) return describeDecisionEvent(e);
  switch (e.type) {
    case 'helper.started':
      return { title: 'Helper started', detail: `pid ${e.pid}, version ${e.version}`, severity: 'info' };
    case 'helper.stopping':
      return { title: 'Helper stopping', detail: `signal ${e.signal}`, severity: 'warn' };
    case 'policy.applied':
      return {
        title: 'Policy applied',
        detail: `${e.rules} rule${e.rules === 1 ? '' : 's'}, mode ${e.mode}${e.problems.length ? `; ${e.problems.join('; ')}` : ''}`,
        severity: e.problems.length ? 'warn' : 'info',
      };
    case 'policy.failed':
      return { title: 'Policy not applied', detail: e.reason, severity: 'warn' };
    case 'gate.adopted':
      return { title: 'Gate adopted', detail: `${e.kept} running program${e.kept === 1 ? '' : 's'} kept, ${e.released} released`, severity: 'info' };
    case 'launch.admitted':
      return { title: 'Admitted', detail: `${visible(e.path)} (pid ${e.pid}, uid ${e.uid}) by rule ${e.rule}`, severity: 'info' };
    case 'launch.refused': {
      const who = e.pid !== undefined ? `pid ${e.pid}, uid ${e.uid}` : `uid ${e.uid}`;
      return { title: 'Blocked', detail: `${visible(e.path)} (${who}): ${visible(e.reason)}`, severity: 'block' };
    }
    case 'api.refused':
      return { title: 'Request refused', detail: `${e.method} from pid ${e.pid} (uid ${e.uid}): ${e.reason}`, severity: 'warn' };
    case 'profile.loaded': {
      const parts = [`${e.profileId} v${e.version}`];
      if (e.previousVersion !== undefined) parts.push(`(was v${e.previousVersion})`);
      parts.push(`from ${e.file}`);
      if (e.signedBy !== undefined) parts.push(`signed by ${e.signedBy}`);
      return { title: 'Profile loaded', detail: parts.join(' ') + (e.note ? `; ${e.note}` : ''), severity: 'info' };
    }
    case 'profile.rejected':
      return { title: 'Profile rejected', detail: `${e.file}: ${e.problems.join('; ')}`, severity: 'warn' };
    case 'profile.removed':
      return { title: 'Profile removed', detail: `${e.profileId} v${e.version} (${e.file})`, severity: 'info' };
    case 'profile.pulled':
      return {
        title: 'Profile pull',
        detail: `${e.url}: ${e.result}${e.detail ? ` (${e.detail})` : ''}`,
        severity: e.result === 'failed' ? 'warn' : 'info',
      };
    case 'attempt.denied': {
      const a = e.attempt;
      const who = a.pid !== undefined ? `pid ${a.pid}, uid ${a.uid}` : `uid ${a.uid}`;
      return {
        title: a.mode === 'audit' ? 'Would be blocked' : 'Blocked',
        detail: `${visible(a.exe ?? '(process gone)')} (${who}) → ${formatDestination(a.dst)} on ${visible(a.iface)}`,
        severity: a.mode === 'audit' ? 'warn' : 'block',
      };
    }
    case 'process.admitted':
      return { title: 'Admitted', detail: `${visible(e.path)} (pid ${e.pid}, uid ${e.uid}) by rule ${e.rule}`, severity: 'info' };
    case 'process.refused':
      return { title: 'Refused', detail: `${visible(e.path)} (pid ${e.pid}, uid ${e.uid}): ${e.reason}`, severity: 'block' };
    case 'process.released':
      return { title: 'Released', detail: `${visible(e.path)} (pid ${e.pid}) from rule ${e.rule}: ${e.reason}`, severity: 'info' };
    case 'attempt.admitted':
      return { title: 'Admitted', detail: `${visible(e.exe)} (pid ${e.pid}, uid ${e.uid}) by rule ${e.rule}`, severity: 'info' };
    case 'binary.changed':
      return {
        title: 'Program changed',
        detail: `${visible(e.path)} (uid ${e.uid}): sha256 was ${e.previous.slice(0, 16)}… since ${formatTime(e.since)}, now ${e.sha256.slice(0, 16)}…`,
        severity: 'warn',
      };
    default: {
      // A newer helper may report kinds this page does not know yet.
      const unknown: { type: string } = e;
      return { title: unknown.type, detail: '', severity: 'info' };
    }
  }
}

/** Prompts, their answers and the user decisions they leave. */
type DecisionEvent = Extract<StampedEvent, { type: `prompt.${string}` | `rule.${string}` | `deny.${string}` | 'decisions.corrupt' }>;

function isDecisionEvent(e: StampedEvent): e is DecisionEvent {
  return /^(prompt|rule|deny|decisions)\./.test(e.type);
}

function describeDecisionEvent(e: DecisionEvent): EventDescription {
  switch (e.type) {
    case 'prompt.opened':
      return {
        title: 'Asked',
        detail: `${visible(e.program)} (${visible(e.exe)}, uid ${e.uid}) wants ${e.dst}${e.warnings.length ? `; ${e.warnings.map(visible).join('; ')}` : ''}`,
        severity: e.warnings.length ? 'warn' : 'info',
      };
    case 'prompt.answered':
      return {
        title: 'Answered',
        detail:
          `${visible(e.exe)}: ${DECISION_DONE[e.decision]}${e.scope === 'destination' ? ' (only the destination it tried)' : ''}` +
          `${e.by !== e.uid ? `, by uid ${e.by}` : ''}`,
        severity: e.decision.startsWith('deny') ? 'warn' : 'info',
      };
    case 'prompt.closed':
      return {
        title: 'Prompt closed',
        detail: `${visible(e.exe)} (uid ${e.uid}): ${CLOSE_REASONS[e.reason] ?? e.reason}`,
        severity: e.reason === 'timeout' || e.reason === 'unanswered' ? 'warn' : 'info',
      };
    case 'rule.added':
      return {
        title: 'Rule added',
        detail: `${visible(e.path)} for uid ${e.uid}, ${e.lifetime}${e.destinations?.length ? `, only ${e.destinations.join(', ')}` : ''}${e.by !== e.uid ? `, by uid ${e.by}` : ''}`,
        severity: 'info',
      };
    case 'rule.removed':
      return { title: 'Rule removed', detail: `${visible(e.path)} (uid ${e.uid}): ${REMOVAL_REASONS[e.reason] ?? e.reason}`, severity: 'info' };
    case 'deny.added':
      return {
        title: 'Always denied',
        detail: `${visible(e.path)} for uid ${e.uid}${e.destinations?.length ? `, only ${e.destinations.join(', ')}` : ''}`,
        severity: 'warn',
      };
    case 'deny.removed':
      return { title: 'Deny removed', detail: `${visible(e.path)} (uid ${e.uid}): ${e.reason}`, severity: 'info' };
    case 'decisions.corrupt':
      return { title: 'Decisions damaged', detail: `${e.file}: ${e.reason}${e.movedTo ? `; kept as ${e.movedTo}` : ''}`, severity: 'warn' };
  }
}

/** "3 412" style thousands, independent of the page's locale. */
export function formatCount(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, '\u202f');
}

export function formatTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

const DECISION_DONE: Readonly<Record<PromptDecision, string>> = {
  'allow-once': 'allowed once',
  'allow-for': 'allowed for a while',
  'allow-always': 'always allowed',
  deny: 'denied',
  'deny-always': 'always denied',
};

const CLOSE_REASONS: Readonly<Record<PromptCloseReason, string>> = {
  timeout: 'no answer in time, so denied',
  unanswered: 'nobody answered, so denied',
  locked: 'IT policy does not let users decide',
  allowed: 'a rule allows it now',
};

const REMOVAL_REASONS: Readonly<Record<RuleRemovalReason, string>> = {
  revoked: 'revoked',
  expired: 'its time ran out',
  'process-exited': 'the process exited',
  'session-ended': 'the user logged out',
  replaced: 'replaced',
};

/** "via": nearest parent first, `/usr/bin/bash (pid 5100) ← …`. */
export function describeParents(parents: PromptView['parents']): string {
  return parents.length ? parents.map((p) => `${visible(p.exe)} (pid ${p.pid})`).join(' ← ') : 'no parent known';
}

/** What the person is told about the time left to answer. */
export function describeDeadline(deadline: string | undefined, now: number): { text: string; urgent: boolean } {
  if (deadline === undefined) return { text: 'Waiting for an answer.', urgent: false };
  const left = Date.parse(deadline) - now;
  if (Number.isNaN(left)) return { text: 'Waiting for an answer.', urgent: false };
  if (left <= 0) return { text: 'Time is up: no answer counts as deny.', urgent: true };
  return { text: `Denied in ${formatRemaining(left)} without an answer.`, urgent: left <= 10_000 };
}

/** A letter for the generic program glyph: no icon file is ever loaded. */
export function glyphLetter(name: string): string {
  const m = /[\p{L}\p{N}]/u.exec(name);
  return m ? m[0].toLocaleUpperCase('en') : '?';
}

export function plural(n: number, one: string, many: string): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}
