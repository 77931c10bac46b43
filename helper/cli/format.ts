// Human-readable output of the CLI. `--json` bypasses all of this.
import type { ExplainResult, ListResult, PromptView, StatusReport, UserDecisionView } from '../../common/api.js';
import { describeLifetime } from '../../common/api.js';
import type { AttemptRecord, AuditReport, ProfileTestResult } from '../../common/audit.js';
import type { StampedEvent } from '../../common/events.js';
import type { EffectiveRule } from '../../common/policy.js';
import type { Destination } from '../../common/profile.js';
import { formatRuleDestination } from '../daemon/destinations.js';

export function formatStatus(s: StatusReport): string {
  const lines = [
    `gate:       ${s.state} (mode ${s.mode}, ${s.mechanism})`,
    `interfaces: ${s.interfaces.map((i) => `${i.pattern}${i.present.length ? ` [${i.present.join(', ')}]` : ' [absent]'}`).join(', ') || 'none'}`,
    `rules:      ${s.ruleCount}, admitted processes: ${s.admittedProcesses}, dropped: ${s.dropped.packets} packets`,
    `cgroups:    ${s.cgroupDir}`,
    `helper:     pid ${s.helper.pid}, version ${s.helper.version}, since ${s.helper.startedAt}`,
  ];
  if (s.sources.length) {
    lines.push('profiles:');
    for (const src of s.sources) {
      const what = src.profileId ? `${src.profileId} v${src.version}` : '';
      lines.push(`  ${src.state.padEnd(8)} ${src.file} ${what}`.trimEnd());
    }
  }
  if (s.problems.length) {
    lines.push('problems:');
    for (const p of s.problems) lines.push(`  - ${p}`);
  }
  return lines.join('\n');
}

/** Written as `--dst` takes it: `198.18.0.0/24:22,443/tcp`. */
function scope(r: { destinations?: Destination[] }): string {
  if (!r.destinations?.length) return 'whole tunnel';
  return r.destinations.map(formatRuleDestination).join(' ');
}

function what(r: EffectiveRule): string {
  if (r.kernel) return '(kernel traffic)';
  const b = r.binary;
  if (!b) return '?';
  const main = b.package !== undefined ? `package:${b.package}` : (b.path ?? '?');
  return `${main}${b.script ? ` ${b.script}` : ''}${b.sha256 ? ` sha256:${b.sha256.slice(0, 12)}…` : ''}`;
}

export function formatList(l: ListResult): string {
  if (!l.rules.length) return 'no rules: the tunnel is closed to every program';
  const rows = l.rules.map((r) => [
    r.action.toUpperCase(),
    r.source.kind === 'profile' ? `${r.source.profileId}:${r.id}` : `user ${r.source.uid}:${r.id}`,
    what(r),
    scope(r),
    `${r.mode}${r.locked ? ', locked' : ''}`,
  ]);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows.map((row) => row.map((c, i) => (i < 4 ? c.padEnd(widths[i] ?? 0) : c)).join('  ')).join('\n');
}

// ---- prompts, decisions, events, explain ---------------------------------------------

function dstText(d: { addr: string; port?: number; proto: string }): string {
  return `${d.addr.includes(':') ? `[${d.addr}]` : d.addr}${d.port !== undefined ? `:${d.port}` : ''}/${d.proto}`;
}

export function formatPrompts(list: readonly PromptView[], now = Date.now()): string {
  if (!list.length) return 'no pending prompts';
  return list
    .map((p) => {
      const lines = [`prompt ${p.id}: ${p.program.name} (${p.exe}) of ${p.user} (uid ${p.uid})`];
      lines.push(`  tried:    ${p.destinations.map((d) => `${dstText(d)} on ${d.iface}${d.count > 1 ? ` ×${d.count}` : ''}`).join(', ')}`);
      lines.push(`  attempts: ${p.count}, first ${p.firstSeen}, last ${p.lastSeen}`);
      if (p.pids.length) lines.push(`  pids:     ${p.pids.join(', ')}`);
      if (p.cmdline?.length) lines.push(`  command:  ${p.cmdline.join(' ')}`);
      if (p.parents.length) lines.push(`  via:      ${p.parents.map((x) => `${x.exe} (${x.pid})`).join(' <- ')}`);
      if (p.sha256) lines.push(`  sha256:   ${p.sha256}`);
      for (const w of p.warnings) lines.push(`  WARNING:  ${w}`);
      lines.push(
        p.deadline
          ? `  answer within ${Math.max(0, Math.round((Date.parse(p.deadline) - now) / 1000))} s, or it counts as deny`
          : '  no app shows it: answer with tunnelgate answer ID allow-once|allow-for --for D|allow-always|deny|deny-always',
      );
      return lines.join('\n');
    })
    .join('\n\n');
}

export function formatDecision(d: UserDecisionView): string {
  const pin = d.sha256 ? `, sha256 ${d.sha256.slice(0, 12)}…` : d.kind === 'allow' ? ', not pinned' : '';
  return `${d.kind.toUpperCase()} ${d.key ?? d.id} uid ${d.uid} ${d.path} (${describeLifetime(d.lifetime)}${pin}; ${scope(d)})`;
}

export function formatDecisions(list: readonly UserDecisionView[]): string {
  return list.length ? list.map(formatDecision).join('\n') : 'no user decisions';
}

function value(v: unknown): string {
  if (typeof v === 'string') return /\s/.test(v) || v === '' ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/** One line per event: time, type, then its fields as key=value. */
export function formatEvent(e: StampedEvent): string {
  const fields: Record<string, unknown> = { ...e };
  delete fields.seq;
  delete fields.time;
  delete fields.type;
  if (e.type === 'attempt.denied') {
    const { attempt } = e;
    delete fields.attempt;
    Object.assign(fields, {
      uid: attempt.uid,
      ...(attempt.pid !== undefined ? { pid: attempt.pid } : {}),
      ...(attempt.exe !== undefined ? { exe: attempt.exe } : {}),
      dst: dstText(attempt.dst),
      iface: attempt.iface,
      mode: attempt.mode,
    });
  }
  const kv = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${value(v)}`);
  return [e.time, e.type, ...kv].join(' ');
}

export function formatExplain(r: ExplainResult): string {
  const s = r.subject;
  const lines = [`${r.verdict}${r.enforced ? '' : ' (audit mode: not enforced)'}: ${r.reason}`];
  lines.push(`  program: ${s.exe}${s.pid !== undefined ? ` (pid ${s.pid})` : ''}, uid ${s.uid}${s.sha256 ? `, sha256 ${s.sha256.slice(0, 12)}…` : ''}`);
  if (r.rule) {
    lines.push(`  rule:    ${r.rule.key} (${r.rule.description}; ${scope(r.rule)}${r.rule.locked ? '; locked' : ''})`);
  }
  if (r.admittedUnder) lines.push(`  now in:  ${r.admittedUnder}`);
  const prompt = {
    'would-ask': 'a denied attempt asks the user',
    locked: 'users are not asked: the policy is locked (userPrompts "deny")',
    decided: 'users are not asked: a deny-always decision covers it',
    'not-applicable': 'no prompt',
  }[r.prompt];
  if (r.verdict === 'deny') lines.push(`  prompt:  ${prompt}`);
  for (const n of r.notes) lines.push(`  note:    ${n}`);
  return lines.join('\n');
}

function recordLine(r: AttemptRecord): string {
  const dst = `${r.dst.addr}${r.dst.port !== undefined ? `:${r.dst.port}` : ''}/${r.dst.proto}`;
  return `${String(r.count).padStart(6)}  ${r.mode.padEnd(7)}  uid ${String(r.uid).padEnd(6)} ${r.exe ?? '(process gone)'} -> ${dst}  (${r.firstSeen} .. ${r.lastSeen})`;
}

export function formatAudit(a: AuditReport): string {
  const lines = [`attempts refused (or passed in audit mode) in the last ${a.days} days: ${a.records.length} program/destination pairs`];
  if (a.records.length) lines.push('', '   count  mode     user        program -> destination  (first .. last seen)', ...a.records.map(recordLine));
  lines.push('', a.coverage);
  return lines.join('\n');
}

export function formatProfileTest(t: ProfileTestResult): string {
  const lines = [`draft ${t.draft.id} version ${t.draft.version} (${t.draft.file}) against ${t.recordsReplayed} attempt records of the last ${t.days} days:`];
  const section = (title: string, ls: ProfileTestResult['newlyDropped']) => {
    lines.push('', `${title}: ${ls.length}`);
    for (const l of ls) lines.push(`${recordLine(l.record)}\n          ${l.before} -> ${l.after}: ${l.reason}`);
  };
  section('would newly DROP', t.newlyDropped);
  section('would newly ADMIT', t.newlyAdmitted);
  lines.push('', t.coverage);
  return lines.join('\n');
}
