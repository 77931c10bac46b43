import type { Policy } from '../../../common/policy.js';
import type { Profile } from '../../../common/profile.js';
import { mergePolicy } from '../../../helper/policy/merge.js';
import type { UserRule } from '../../../helper/policy/merge.js';

export function profile(over: Partial<Profile> = {}): Profile {
  return {
    schema: 'tunnelgate/profile@1',
    id: 'corp-base',
    version: 7,
    mode: 'enforce',
    interfaces: ['wg0'],
    userPrompts: 'allow',
    rules: [],
    ...over,
  };
}

export function policyOf(profiles: Profile[], userRules: UserRule[] = [], now = new Date('2026-11-22T00:00:00Z')): Policy {
  return mergePolicy({
    profiles: profiles.map((p, i) => ({ file: `/etc/tunnelgate/profiles.d/${i}-${p.id}.json`, profile: p })),
    rejected: [],
    userRules,
    now,
  });
}
