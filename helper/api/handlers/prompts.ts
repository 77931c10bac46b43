// `prompts` and `answer`: the prompt manager decides who may answer what (its own check).
import { ErrorCode } from '../../../common/api.js';
import type { Destination } from '../../../common/profile.js';
import type { PromptManager } from '../../core/prompts.js';
import { checkDestinations } from '../../policy/destinations.js';
import { ApiError } from '../../../common/errors.js';
import type { Handlers } from '../server.js';

/** Throws ApiError InvalidParams when a destination list does not parse. */
export function requireDestinations(destinations: readonly Destination[] | undefined): void {
  if (!destinations) return;
  const bad = checkDestinations(destinations);
  if (bad) throw ApiError(ErrorCode.InvalidParams, bad);
}

/** The caller's prompts (all for admins), and answers to them. */
export function promptHandlers(d: { prompts: Pick<PromptManager, 'list' | 'answer'> }): Pick<Handlers, 'prompts' | 'answer'> {
  return {
    prompts: async (caller) => d.prompts.list(caller),
    answer: async (caller, p) => {
      requireDestinations(p.destinations);
      return d.prompts.answer(caller, p);
    },
  };
}
