// Human-readable output of the CLI. `--json` bypasses all of this (common/format.ts safeJson).
//
// Every string a program, a user or a file chose (paths, argv, names, reasons that quote
// them, problems) goes through common/format.ts `visible` here, so no escape sequence or
// direction override reaches the terminal as it is.
import path from 'node:path';
import type { ExplainResult, ListResult, StatusReport } from '../../common/api.js';
import type { AttemptRecord, AuditReport, ProfileTestResult } from '../../common/audit.js';
import type { StampedEvent } from '../../common/events.js';
import {
  describeLifetime, describeRuleId, formatCommandLine, formatDestination, formatRuleScope, safeJson, shortHash, visible,
} from '../../common/format.js';
import type { EffectiveRule } from '../../common/policy.js';
import type { PromptView, UserDecisionView } from '../../common/prompts.js';
import type { VerifyReport } from '../profile/verify.js';

export function formatStatus(s: StatusReport): string {
  const iface = (i: StatusReport['interfaces'][number]) => `${visible(i.pattern)}${i.present.length ? ` [${i.present.map(visible).join(', ')}]` : ' [absent]'}`;
  const lines = [
    `gate:       ${s.state} (mode ${s.mode}, ${s.mechanism})`,
    `interfaces: ${s.interfaces.map(iface).join(', ') || 'none'}`,
    `rules:      ${s.ruleCount}, admitted processes: ${s.admittedProcesses}, dropped: ${s.dropped.packets} packets`,
    `cgroups:    ${visible(s.cgroupDir)}${s.netCls ? ` (${visible(s.netCls.reason)})` : ''}`,
    `helper:     pid ${s.helper.pid}, version ${visible(s.helper.version)}, since ${s.helper.startedAt}`,
    ...(s.processes ? [`exec hold:  ${visible(s.processes.execHold)}`, `ptrace:     ${visible(s.processes.ptrace)}`] : []),
  ];
  if (s.sources.length) {
    lines.push('profiles:');
    for (const src of s.sources) {
      const what = src.profileId ? `${visible(src.profileId)} v${src.version}` : '';
      lines.push(`  ${src.state.padEnd(8)} ${visible(src.file)} ${what}`.trimEnd());
    }
  }
  lines.push(...formatProblemList(s.problems));
  return lines.join('\n');
}

/** `problems:` and one `  - …` line each; nothing when there are none. */
export function formatProblemList(problems: readonly string[]): string[] {
  return problems.length ? ['problems:', ...problems.map((p) => `  - ${visible(p)}`)] : [];
}

function what(r: EffectiveRule): string {
  if (r.kernel) return '(kernel traffic)';
  const b = r.binary;
  if (!b) return '?';
  const main = b.package !== undefined ? `package:${b.package}` : (b.path ?? '?');
  return visible(`${main}${b.script ? ` ${b.script}` : ''}`) + (b.sha256 ? ` sha256:${shortHash(b.sha256)}` : '');
}

export function formatList(l: ListResult): string {
  if (!l.rules.length) return 'no rules: the tunnel is closed to every program';
  const rows = l.rules.map((r) => [
    r.action.toUpperCase(),
    visible(describeRuleId(r.source, r.id)),
    what(r),
    formatRuleScope(r),
    `${r.mode}${r.locked ? ', locked' : ''}`,
  ]);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows.map((row) => row.map((c, i) => (i < 4 ? c.padEnd(widths[i] ?? 0) : c)).join('  ')).join('\n');
}

// ---- prompts, decisions, events, explain ---------------------------------------------

function promptLines(p: PromptView, now: number): string[] {
  const lines = [`prompt ${p.id}: ${visible(p.program.name)} (${visible(p.exe)}) of ${visible(p.user)} (uid ${p.uid})`];
  lines.push(`  tried:    ${p.destinations.map((d) => `${formatDestination(d)} on ${visible(d.iface)}${d.count > 1 ? ` ×${d.count}` : ''}`).join(', ')}`);
  lines.push(`  attempts: ${p.count}, first ${p.firstSeen}, last ${p.lastSeen}`);
  if (p.pids.length) lines.push(`  pids:     ${p.pids.join(', ')}`);
  if (p.cmdline?.length) lines.push(`  command:  ${formatCommandLine(p.cmdline)}`);
  if (p.parents.length) lines.push(`  via:      ${p.parents.map((x) => `${visible(x.exe)} (${x.pid})`).join(' <- ')}`);
  if (p.sha256) lines.push(`  sha256:   ${p.sha256}`);
  for (const w of p.warnings) lines.push(`  WARNING:  ${visible(w)}`);
  lines.push(
    p.deadline
      ? `  answer within ${Math.max(0, Math.round((Date.parse(p.deadline) - now) / 1000))} s, or it counts as deny`
      : '  no app shows it: answer with tunnelgate answer ID allow-once|allow-for --for D|allow-always|deny|deny-always',
  );
  return lines;
}

export function formatPrompts(list: readonly PromptView[], now = Date.now()): string {
  if (!list.length) return 'no pending prompts';
  return list.map((p) => promptLines(p, now).join('\n')).join('\n\n');
}

export function formatDecision(d: UserDecisionView): string {
  const pin = d.sha256 ? `, sha256 ${shortHash(d.sha256)}` : d.kind === 'allow' ? ', not pinned' : '';
  return `${d.kind.toUpperCase()} ${visible(d.key ?? d.id)} uid ${d.uid} ${visible(d.path)} (${describeLifetime(d.lifetime)}${pin}; ${formatRuleScope(d)})`;
}

export function formatDecisions(list: readonly UserDecisionView[]): string {
  return list.length ? list.map(formatDecision).join('\n') : 'no user decisions';
}

/** A field's value: a plain word as it is (made visible), anything else as JSON with every unsafe character escaped. */
function value(v: unknown): string {
  if (typeof v === 'string' && v !== '' && !/\s/.test(v)) return visible(v);
  return safeJson(v);
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
      dst: formatDestination(attempt.dst),
      iface: attempt.iface,
      mode: attempt.mode,
    });
  }
  const kv = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${visible(k)}=${value(v)}`);
  return [visible(e.time), visible(e.type), ...kv].join(' ');
}

const PROMPT_OUTCOMES: Readonly<Record<ExplainResult['prompt'], string>> = {
  'would-ask': 'a denied attempt asks the user',
  locked: 'users are not asked: the policy is locked (userPrompts "deny")',
  decided: 'users are not asked: a deny-always decision covers it',
  'not-applicable': 'no prompt',
};

export function formatExplain(r: ExplainResult): string {
  const s = r.subject;
  const lines = [`${r.verdict}${r.enforced ? '' : ' (audit mode: not enforced)'}: ${visible(r.reason)}`];
  lines.push(`  program: ${visible(s.exe)}${s.pid !== undefined ? ` (pid ${s.pid})` : ''}, uid ${s.uid}${s.sha256 ? `, sha256 ${shortHash(s.sha256)}` : ''}`);
  if (r.rule) {
    lines.push(`  rule:    ${visible(r.rule.key)} (${visible(r.rule.description)}; ${formatRuleScope(r.rule)}${r.rule.locked ? '; locked' : ''})`);
  }
  if (r.admittedUnder) lines.push(`  now in:  ${visible(r.admittedUnder)}`);
  if (r.verdict === 'deny') lines.push(`  prompt:  ${PROMPT_OUTCOMES[r.prompt]}`);
  for (const n of r.notes) lines.push(`  note:    ${visible(n)}`);
  return lines.join('\n');
}

function recordLine(r: AttemptRecord): string {
  const exe = r.exe !== undefined ? visible(r.exe) : '(process gone)';
  return `${String(r.count).padStart(6)}  ${r.mode.padEnd(7)}  uid ${String(r.uid).padEnd(6)} ${exe} -> ${formatDestination(r.dst)}  (${r.firstSeen} .. ${r.lastSeen})`;
}

export function formatAudit(a: AuditReport): string {
  const lines = [`attempts refused (or passed in audit mode) in the last ${a.days} days: ${a.records.length} program/destination pairs`];
  if (a.records.length) lines.push('', '   count  mode     user        program -> destination  (first .. last seen)', ...a.records.map(recordLine));
  lines.push('', visible(a.coverage));
  return lines.join('\n');
}

export function formatProfileTest(t: ProfileTestResult): string {
  const lines = [
    `draft ${visible(t.draft.id)} version ${t.draft.version} (${visible(t.draft.file)}) against ${t.recordsReplayed} attempt records of the last ${t.days} days:`,
  ];
  const section = (title: string, ls: ProfileTestResult['newlyDropped']) => {
    lines.push('', `${title}: ${ls.length}`);
    for (const l of ls) lines.push(`${recordLine(l.record)}\n          ${l.before} -> ${l.after}: ${visible(l.reason)}`);
  };
  section('would newly DROP', t.newlyDropped);
  section('would newly ADMIT', t.newlyAdmitted);
  lines.push('', visible(t.coverage));
  return lines.join('\n');
}

/** `tunnelgate profile verify`: the verdict, then one line per check, then the problems not already shown on a check's line. */
export function formatVerify(r: VerifyReport): string {
  const what = r.profile ? `profile ${visible(r.profile.id)} version ${r.profile.version}, ${r.profile.rules} rules` : 'no valid profile';
  const sig = r.signature;
  const keysDir = visible(sig.keysDir);
  const sigLine = {
    'not-required': sig.present
      ? `${visible(path.basename(r.file))}.sig present but not checked (not required: no trusted keys in ${keysDir})`
      : `not signed (not required: no trusted keys in ${keysDir})`,
    good: `good, by ${visible(sig.key ?? '?')}.pub in ${keysDir}`,
    bad: `BAD${sig.detail ? `: ${visible(sig.detail)}` : ''}`,
    missing: `missing, and ${keysDir} holds keys: required`,
    unchecked: `not checked${sig.detail ? `: ${visible(sig.detail)}` : ''}`,
  }[sig.state];
  const v = r.version;
  const versionLine = !v.checked
    ? `not checked: ${visible(v.detail ?? '')}`
    : v.inForce !== undefined
      ? `${r.profile?.version ?? '?'}, in force: ${v.inForce}`
      : visible(v.detail ?? 'no version in force yet');
  const ownerLine = !r.ownership.checked
    ? 'not checked (no such file)'
    : r.ownership.ok
      ? 'ok (root, writable by no one else, up to /)'
      : r.ownership.problems.map(visible).join('; ');
  const headline = { accept: 'the helper will accept it', refuse: 'the helper will REFUSE it', 'not-loaded': 'the helper will NOT LOAD it' }[r.verdict];
  const shown = new Set([...r.ownership.problems, ...(r.location.detail ? [r.location.detail] : [])]);
  return [
    `${visible(r.file)}: ${headline} (${what})`,
    `  location:        ${r.location.loaded ? `ok (in ${visible(r.location.profilesDir)})` : visible(r.location.detail ?? 'not read by the helper')}`,
    `  owner and modes: ${ownerLine}`,
    `  signature:       ${sigLine}`,
    `  version:         ${versionLine}`,
    ...r.problems.filter((p) => !shown.has(p) && !(sig.detail && p.includes(sig.detail))).map((p) => `  problem: ${visible(p)}`),
    ...r.warnings.map((w) => `  warning: ${visible(w)}`),
  ].join('\n');
}
