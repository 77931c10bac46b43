import type { Profile } from '../../../common/profile.js';

/** The example from PRODUCT.md, with the truncated sha256 completed. */
export const exampleProfile: Profile = {
  schema: 'tunnelgate/profile@1',
  id: 'corp-base',
  version: 7,
  mode: 'enforce',
  interfaces: ['wg0', 'wg-corp*'],
  userPrompts: 'allow',
  alwaysAllow: [{ cidr: '198.18.0.53/32', ports: [53], proto: 'udp' }],
  rules: [
    { id: 'ssh', binary: { path: '/usr/bin/ssh' } },
    {
      id: 'git',
      binary: { path: '/usr/bin/git', sha256: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' },
      destinations: [{ cidr: '198.18.0.0/24', ports: [22, 443], proto: 'tcp' }],
    },
    { id: 'deploy-tool', binary: { path: '/usr/bin/python3', script: '/opt/corp/deploy.py' } },
    { id: 'ssh-client', binary: { package: 'openssh-client' } },
    { id: 'nfs', kernel: true, destinations: [{ cidr: '198.18.0.20/32', ports: [2049], proto: 'tcp' }] },
    { id: 'no-games', action: 'deny', binary: { path: '/usr/games/*' } },
  ],
  expires: '2027-06-30T00:00:00Z',
};

/** A deep copy as plain JSON, free to mutate. */
export function exampleJson(): Record<string, unknown> & { rules: Record<string, unknown>[] } {
  return JSON.parse(JSON.stringify(exampleProfile)) as Record<string, unknown> & { rules: Record<string, unknown>[] };
}

export const NOW = new Date('2026-01-01T00:00:00Z');
