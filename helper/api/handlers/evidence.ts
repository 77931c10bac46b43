// The evidence side of the API: `tunnelgate audit` (what was refused, or would have been
// in audit mode) and `tunnelgate profile test` (what a draft would change). Nothing here
// writes a rule.
import type { Handlers } from '../server.js';
import type { DeniedAttempt } from '../../../common/attempts.js';
import { COVERAGE_NOTE } from '../../../common/audit.js';
import { ErrorCode } from '../../../common/api.js';
import type { Caller } from '../../../common/api.js';
import type { Policy } from '../../../common/policy.js';
import { EvidenceStore } from '../../evidence/store.js';
import { mergePolicy } from '../../policy/merge.js';
import type { UserRule } from '../../policy/merge.js';
import type { LoadedProfile } from '../../profile/loaded.js';
import { replay } from '../../policy/replay.js';
import { formatProblems, validateProfile } from '../../profile/validate.js';
import { ApiError } from '../errors.js';

const DEFAULT_DAYS = 30;

export interface AuditApiDeps {
  stateDir: string;
  /** The policy in force. */
  current: () => Policy | undefined;
  /** The profiles and user rules it was merged from. */
  inputs: () => { profiles: readonly LoadedProfile[]; userRules: readonly UserRule[] };
  now?: () => Date;
}

export interface AuditApi {
  record(a: DeniedAttempt): void;
  handlers: Pick<Handlers, 'audit' | 'profile.test'>;
  problems: string[];
  close(): Promise<void>;
}

export async function openAuditApi(deps: AuditApiDeps): Promise<AuditApi> {
  const { log, problem } = await EvidenceStore.open(deps.stateDir);
  const now = deps.now ?? (() => new Date());
  return {
    record: (a) => log.add(a),
    problems: problem ? [problem] : [],
    close: () => log.close(),
    handlers: {
      audit: async (caller: Caller, p) => {
        const days = p.days ?? DEFAULT_DAYS;
        const all = log.report(now(), days);
        return { days, records: caller.admin ? all : all.filter((r) => r.uid === caller.uid), coverage: COVERAGE_NOTE };
      },
      'profile.test': async (_caller: Caller, p) => {
        const current = deps.current();
        if (!current) throw ApiError(ErrorCode.Internal, 'the helper has no policy in force yet');
        const v = validateProfile(p.text, p.file);
        if (!v.ok) throw ApiError(ErrorCode.InvalidParams, formatProblems(p.file, v.problems).join('\n'));
        const { profiles, userRules } = deps.inputs();
        // The draft takes the place of the profile with its id, or joins the others.
        const others = profiles.filter((lp) => lp.profile.id !== v.profile.id);
        const draft = mergePolicy({ profiles: [...others, { file: p.file, profile: v.profile }], rejected: [], userRules, now: now() });
        const days = p.days ?? DEFAULT_DAYS;
        const records = log.report(now(), days);
        return {
          draft: { id: v.profile.id, version: v.profile.version, file: p.file },
          days,
          recordsReplayed: records.length,
          ...replay(current, draft, records),
          coverage: COVERAGE_NOTE,
        };
      },
    },
  };
}
