// What a helper answers, as the shared types say: used by the main-process tests and
// by the renderer test's stand-in main process.
import type { ListResult, PromptView, StatusReport, UserDecisionView } from '../../../common/api.js';
import type { AuditReport } from '../../../common/audit.js';
import { COVERAGE_NOTE } from '../../../common/audit.js';
import type { StampedEvent } from '../../../common/events.js';
import type { EffectiveRule } from '../../../common/policy.js';

export function statusReport(over: Partial<StatusReport> = {}): StatusReport {
  return {
    state: 'enforcing',
    mode: 'enforce',
    mechanism: 'net_cls',
    cgroupDir: '/sys/fs/cgroup/net_cls/tunnelgate',
    interfaces: [{ pattern: 'wg0', present: ['wg0'] }],
    ruleCount: 2,
    admittedProcesses: 1,
    dropped: { packets: 0, bytes: 0 },
    sources: [{ file: '/etc/tunnelgate/profiles.d/corp-base.json', profileId: 'corp-base', version: 7, state: 'active', problems: [] }],
    problems: [],
    helper: { pid: 4242, version: '0.1.0', startedAt: '2026-11-22T08:00:00.000Z', appliedAt: '2026-11-22T08:00:01.000Z' },
    ...over,
  };
}

const corp = { kind: 'profile', profileId: 'corp-base', version: 7, file: '/etc/tunnelgate/profiles.d/corp-base.json' } as const;

export function itRule(id: string, over: Partial<EffectiveRule> = {}): EffectiveRule {
  return { key: `corp-base:${id}`, id, source: corp, action: 'allow', kernel: false, mode: 'enforce', locked: true, ...over };
}

/** A rule uid 1000 made by answering a prompt. */
export function userRule(id: string, over: Partial<EffectiveRule> = {}): EffectiveRule {
  return { key: `user.1000:${id}`, id, source: { kind: 'user', uid: 1000 }, action: 'allow', kernel: false, mode: 'enforce', locked: false, uid: 1000, ...over };
}

export function listResult(rules: EffectiveRule[] = [itRule('ssh', { binary: { path: '/usr/bin/ssh' } })]): ListResult {
  return { rules, userPrompts: 'allow' };
}

/** A degraded gate with every kind of rule the profile format has, and a hostile path. */
export const RICH = {
  status: statusReport({
    state: 'degraded',
    interfaces: [
      { pattern: 'wg0', present: ['wg0'] },
      { pattern: 'wg-corp*', present: [] },
    ],
    ruleCount: 8,
    admittedProcesses: 3,
    dropped: { packets: 1234, bytes: 98765 },
    sources: [
      { file: '/etc/tunnelgate/profiles.d/corp-base.json', profileId: 'corp-base', version: 7, state: 'active', problems: [] },
      {
        file: '/etc/tunnelgate/profiles.d/legacy.json',
        profileId: 'legacy',
        version: 2,
        state: 'rejected',
        problems: ['legacy.json: signature: no valid signature by a trusted key'],
      },
    ],
    problems: [
      'profile /etc/tunnelgate/profiles.d/legacy.json rejected: no valid signature by a trusted key',
      'interface pattern wg-corp* matches no interface',
    ],
  }),
  rules: {
    userPrompts: 'allow',
    rules: [
      itRule('ssh', { binary: { path: '/usr/bin/ssh' } }),
      itRule('git', {
        binary: { path: '/usr/bin/git', sha256: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' },
        destinations: [{ cidr: '198.18.0.0/24', ports: [22, 443], proto: 'tcp' }],
      }),
      itRule('deploy-tool', { binary: { path: '/usr/bin/python3', script: '/opt/corp/deploy.py' }, mode: 'audit' }),
      itRule('ssh-client', { binary: { package: 'openssh-client' } }),
      itRule('nfs', { kernel: true, destinations: [{ cidr: '198.18.0.20/32', ports: [2049], proto: 'tcp' }] }),
      itRule('no-games', { action: 'deny', binary: { path: '/usr/games/*' } }),
      userRule('curl', {
        binary: { path: '/usr/bin/curl' },
        destinations: [{ cidr: '198.18.0.80/32', ports: [80], proto: 'tcp' }],
        expires: '2026-11-22T18:00:00.000Z',
      }),
      userRule('odd', { binary: { path: '/tmp/<img src=x onerror="window.__pwned=1">' } }),
    ],
  } satisfies ListResult,
};

export const SOME_EVENTS: StampedEvent[] = [
  { seq: 1, time: '2026-11-22T08:00:00.000Z', type: 'helper.started', pid: 4242, version: '0.1.0' },
  { seq: 2, time: '2026-11-22T08:00:01.000Z', type: 'policy.applied', rules: 8, mode: 'enforce', problems: [] },
  { seq: 3, time: '2026-11-22T08:05:00.000Z', type: 'launch.refused', uid: 1000, pid: 5150, path: '/usr/bin/nc', reason: 'no rule allows /usr/bin/nc' },
];

/** A pending prompt as the helper shows it (PromptView), for a curl run from a shell. */
export function promptView(over: Partial<PromptView> = {}): PromptView {
  return {
    id: '0123456789abcdef',
    uid: 1000,
    user: 'alice',
    exe: '/usr/bin/curl',
    program: { name: 'curl' },
    pids: [5150],
    cmdline: ['curl', '-sS', 'https://198.18.0.10/'],
    parents: [
      { pid: 5100, exe: '/usr/bin/bash' },
      { pid: 4000, exe: '/usr/bin/gnome-terminal-server' },
    ],
    destinations: [{ addr: '198.18.0.10', port: 443, proto: 'tcp', iface: 'wg0', count: 3 }],
    count: 3,
    firstSeen: '2026-11-22T08:05:00.000Z',
    lastSeen: '2026-11-22T08:05:02.000Z',
    sha256: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    warnings: [],
    deadline: '2026-11-22T08:05:30.000Z',
    ...over,
  };
}

/** A user's allow-always of curl for the whole tunnel, answered in a prompt (UserDecisionView); its key follows its id. */
export function decisionView(over: Partial<UserDecisionView> = {}): UserDecisionView {
  const id = over.id ?? 'a1b2c3d4e5f60718';
  return {
    kind: 'allow',
    id,
    key: `user.1000:${id}`,
    uid: 1000,
    path: '/usr/bin/curl',
    lifetime: { kind: 'always' },
    createdAt: '2026-11-22T08:00:00.000Z',
    createdBy: 1000,
    via: 'prompt',
    ...over,
  };
}

/** A prompt whose every field a hostile program could choose: markup, controls, direction overrides. */
export function hostilePrompt(over: Partial<PromptView> = {}): PromptView {
  return promptView({
    id: 'fedcba9876543210',
    exe: '/home/alice/.local/bin/<img src=x onerror="window.__pwned=1">',
    program: { name: '<b>Totally Safe</b> & "Trusted"', icon: '<svg onload=alert(1)>', desktopEntry: '/home/alice/.local/share/applications/evil.desktop' },
    cmdline: ['<script>window.__pwned=2</script>', 'line\nbreak', 'gpj.\u202eexe'],
    parents: [{ pid: 5100, exe: '/usr/bin/<i>bash</i>' }],
    destinations: [
      { addr: '198.18.0.10', port: 443, proto: 'tcp', iface: 'wg0', count: 40 },
      { addr: 'fd00:7467::2', port: 53, proto: 'udp', iface: 'wg0', count: 2 },
    ],
    count: 42,
    warnings: [
      '/home/alice/.local/bin/<img src=x onerror="window.__pwned=1"> is not the program seen before at this path: its sha256 was 0000000000000000… (since 2026-11-01T00:00:00.000Z) and is now 9f86d081884c7d65…',
    ],
    ...over,
  });
}

export const AUDIT_REPORT: AuditReport = {
  days: 30,
  coverage: COVERAGE_NOTE,
  records: [
    { mode: 'audit', uid: 1000, exe: '/usr/bin/curl', dst: { addr: '198.18.0.10', port: 443, proto: 'tcp' }, count: 12, firstSeen: '2026-11-02T09:00:00.000Z', lastSeen: '2026-11-20T17:30:00.000Z' },
    { mode: 'audit', uid: 1000, exe: '/usr/bin/curl', dst: { addr: '198.18.0.11', port: 443, proto: 'tcp' }, count: 3, firstSeen: '2026-11-05T10:00:00.000Z', lastSeen: '2026-11-06T10:00:00.000Z' },
    { mode: 'enforce', uid: 1001, exe: '/opt/corp/<b>report</b>', dst: { addr: '198.18.0.10', port: 443, proto: 'tcp' }, count: 40, firstSeen: '2026-11-10T08:00:00.000Z', lastSeen: '2026-11-21T08:00:00.000Z' },
    { mode: 'audit', uid: 1000, dst: { addr: 'fd00:7467::53', port: 53, proto: 'udp' }, count: 1, firstSeen: '2026-11-15T12:00:00.000Z', lastSeen: '2026-11-15T12:00:00.000Z' },
  ],
};
