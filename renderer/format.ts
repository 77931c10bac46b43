// Words for what the helper reports: pure functions from the shared types to text.
// No DOM here, so unit tests run them under Node.

import type { GateState } from '../common/api.js';
import type { StampedEvent } from '../common/events.js';
import type { EffectiveRule, RuleSource, SourceStatus } from '../common/policy.js';
import type { Destination } from '../common/profile.js';

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
  if (b.sha256 !== undefined) extra.push(`sha256 ${b.sha256.slice(0, 12)}…`);
  if (b.package !== undefined) return { main: `package ${b.package}`, extra };
  return { main: b.path ?? '(no path)', extra };
}

export function describeDestination(d: Destination): string {
  const proto = d.proto ? ` ${d.proto}` : '';
  const ports = d.ports?.length ? ` port${d.ports.length === 1 ? '' : 's'} ${d.ports.join(', ')}` : '';
  return `${d.cidr}${proto}${ports}`;
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

export function describeEvent(e: StampedEvent): { title: string; detail: string; severity: 'info' | 'warn' | 'block' } {
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
      return { title: 'Admitted', detail: `${e.path} (pid ${e.pid}, uid ${e.uid}) by rule ${e.rule}`, severity: 'info' };
    case 'launch.refused': {
      const who = e.pid !== undefined ? `pid ${e.pid}, uid ${e.uid}` : `uid ${e.uid}`;
      return { title: 'Blocked', detail: `${e.path} (${who}): ${e.reason}`, severity: 'block' };
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
    default: {
      // A newer helper may report kinds this page does not know yet.
      const unknown: { type: string } = e;
      return { title: unknown.type, detail: '', severity: 'info' };
    }
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
