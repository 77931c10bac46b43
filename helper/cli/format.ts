// Human-readable output of the CLI. `--json` bypasses all of this.
import type { ListResult, StatusReport } from '../../common/api.js';
import type { EffectiveRule } from '../../common/policy.js';

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

function scope(r: EffectiveRule): string {
  if (!r.destinations?.length) return 'whole tunnel';
  return r.destinations.map((d) => `${d.cidr}${d.proto ? `/${d.proto}` : ''}${d.ports?.length ? `:${d.ports.join(',')}` : ''}`).join(' ');
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
