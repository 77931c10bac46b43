// The evidence side of the API: `tunnelgate audit` (what was refused, or would have been
// in audit mode) and `tunnelgate profile test` (what a draft would change). Nothing here
// writes a rule.
import { COVERAGE_NOTE } from '../../../common/audit.js';
import { ErrorCode } from '../../../common/api.js';
import type { Policy } from '../../../common/policy.js';
import type { EvidenceStore } from '../../evidence/store.js';
import { mergePolicy } from '../../policy/merge.js';
import type { UserRule } from '../../policy/merge.js';
import { replay } from '../../policy/replay.js';
import type { LoadedProfile } from '../../profile/loaded.js';
import { formatProblems, validateProfile } from '../../profile/validate.js';
import { ApiError } from '../../../common/errors.js';
import type { Handlers } from '../server.js';

/** Days of evidence `audit` and `profile test` look at unless asked otherwise. */
export const DEFAULT_DAYS = 30;

/** What the policy in force was merged from; startup updates it with each policy it builds. */
export interface PolicyInputs {
  profiles: readonly LoadedProfile[];
  userRules: readonly UserRule[];
}

export interface EvidenceHandlerDeps {
  evidence: Pick<EvidenceStore, 'report'>;
  /** The policy in force. */
  current: () => Policy | undefined;
  /** The profiles and user rules it was merged from. */
  inputs: Readonly<PolicyInputs>;
  now?: () => Date;
}

/** `audit` and `profile.test`. Throws ApiError Internal (no policy yet), InvalidParams (a draft that does not validate). */
export function evidenceHandlers(d: EvidenceHandlerDeps): Pick<Handlers, 'audit' | 'profile.test'> {
  const now = d.now ?? (() => new Date());
  return {
    audit: async (caller, p) => {
      const days = p.days ?? DEFAULT_DAYS;
      const all = d.evidence.report(now(), days);
      return { days, records: caller.admin ? all : all.filter((r) => r.uid === caller.uid), coverage: COVERAGE_NOTE };
    },
    'profile.test': async (_caller, p) => {
      const current = d.current();
      if (!current) throw ApiError(ErrorCode.Internal, 'the helper has no policy in force yet');
      const v = validateProfile(p.text, p.file);
      if (!v.ok) throw ApiError(ErrorCode.InvalidParams, formatProblems(p.file, v.problems).join('\n'));
      const { profiles, userRules } = d.inputs;
      // The draft takes the place of the profile with its id, or joins the others.
      const others = profiles.filter((lp) => lp.profile.id !== v.profile.id);
      const draft = mergePolicy({ profiles: [...others, { file: p.file, profile: v.profile }], rejected: [], userRules, now: now() });
      const days = p.days ?? DEFAULT_DAYS;
      const records = d.evidence.report(now(), days);
      return {
        draft: { id: v.profile.id, version: v.profile.version, file: p.file },
        days,
        recordsReplayed: records.length,
        ...replay(current, draft, records),
        coverage: COVERAGE_NOTE,
      };
    },
  };
}
