// What a helper answers, as the shared types say: used by the main-process tests and
// by the renderer test's stand-in main process.
import type { ListResult, StatusReport } from '../../../common/api.js';
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
      {
        key: 'user.1000:curl',
        id: 'curl',
        source: { kind: 'user', uid: 1000 },
        action: 'allow',
        binary: { path: '/usr/bin/curl' },
        kernel: false,
        destinations: [{ cidr: '198.18.0.80/32', ports: [80], proto: 'tcp' }],
        mode: 'enforce',
        locked: false,
        uid: 1000,
        expires: '2026-11-22T18:00:00.000Z',
      },
      {
        key: 'user.1000:odd',
        id: 'odd',
        source: { kind: 'user', uid: 1000 },
        action: 'allow',
        binary: { path: '/tmp/<img src=x onerror="window.__pwned=1">' },
        kernel: false,
        mode: 'enforce',
        locked: false,
        uid: 1000,
      },
    ],
  } satisfies ListResult,
};

export const SOME_EVENTS: StampedEvent[] = [
  { seq: 1, time: '2026-11-22T08:00:00.000Z', type: 'helper.started', pid: 4242, version: '0.1.0' },
  { seq: 2, time: '2026-11-22T08:00:01.000Z', type: 'policy.applied', rules: 8, mode: 'enforce', problems: [] },
  { seq: 3, time: '2026-11-22T08:05:00.000Z', type: 'launch.refused', uid: 1000, pid: 5150, path: '/usr/bin/nc', reason: 'no rule allows /usr/bin/nc' },
];
