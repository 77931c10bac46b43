// `list`, `allow`, `revoke`, `decisions`: the rules in force and the users' own decisions
// (helper/core/user-rules.ts). Users act on their own decisions only; IT rules are the
// profile's, never revoked here.
import { promises as fs } from 'node:fs';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { ErrorCode } from '../../../common/api.js';
import type { Policy } from '../../../common/policy.js';
import type { Clock } from '../../core/clock.js';
import type { PromptManager } from '../../core/prompts.js';
import { requestedLifetime } from '../../core/user-rules.js';
import type { UserRules } from '../../core/user-rules.js';
import { describe } from '../../policy/decide.js';
import { readableBy, requireOwn } from '../authorization.js';
import { ApiError } from '../../core/errors.js';
import type { Handlers } from '../server.js';
import { requireDestinations } from './prompts.js';

/** What the rule handlers work on. */
export interface RuleHandlerDeps {
  current: () => Policy | undefined;
  rules: Pick<UserRules, 'allow' | 'resolve' | 'remove' | 'views'>;
  prompts: Pick<PromptManager, 'ruleAdded'>;
  clock: Clock;
}

/**
 * A path a rule can name: absolute, normalised, and not a symbolic link (the kernel reports
 * the target). Its lstat, undefined if it does not exist; throws ApiError InvalidParams.
 */
export async function checkProgramPath(p: string): Promise<Stats | undefined> {
  if (path.normalize(p) !== p || p.endsWith('/')) throw ApiError(ErrorCode.InvalidParams, `${p} is not a normalised absolute path`);
  const st = await fs.lstat(p).catch(() => undefined);
  if (st?.isSymbolicLink()) {
    const real = await fs.realpath(p).catch(() => undefined);
    throw ApiError(ErrorCode.InvalidParams, `${p} is a symbolic link${real ? ` to ${real}` : ''}: rules name the program the kernel runs${real ? `; use ${real}` : ''}`);
  }
  if (st && !st.isFile()) throw ApiError(ErrorCode.InvalidParams, `${p} is not a regular file`);
  return st;
}

/** The rules and decisions handlers. */
export function ruleHandlers(d: RuleHandlerDeps): Pick<Handlers, 'list' | 'allow' | 'revoke' | 'decisions'> {
  return {
    async list(caller) {
      const policy = d.current();
      const rules = (policy?.rules ?? []).filter((r) => caller.admin || r.source.kind === 'profile' || r.uid === caller.uid);
      return { rules, userPrompts: policy?.userPrompts ?? 'deny' };
    },

    async allow(caller, p) {
      const uid = p.uid ?? caller.uid;
      requireOwn(caller, uid, 'add rules');
      const st = await checkProgramPath(p.path);
      requireDestinations(p.destinations);
      const pin = p.pin ?? true;
      if (pin) {
        if (!st) throw ApiError(ErrorCode.NotFound, `${p.path} does not exist, so its hash cannot be pinned (allow it without a pin to name a program not installed yet)`);
        if (!readableBy(st, caller)) throw ApiError(ErrorCode.Forbidden, `${p.path} is not readable by uid ${caller.uid}, so its hash cannot be pinned for you`);
      }
      const lifetime = requestedLifetime(p, d.clock.now());
      const r = await d.rules.allow({ uid, path: p.path, pin, ...(p.destinations ? { destinations: p.destinations } : {}), lifetime, by: caller.uid, via: 'api' });
      d.prompts.ruleAdded(uid, p.path, p.destinations);
      return { rule: r.view, admitted: r.admitted };
    },

    async revoke(caller, p) {
      const uid = p.uid ?? caller.uid;
      requireOwn(caller, uid, 'revoke decisions');
      const isPath = p.target.startsWith('/');
      if (p.uid !== undefined && !isPath) throw ApiError(ErrorCode.InvalidParams, 'uid goes with a path; a rule key or id names its user already');
      const found = d.rules.resolve(p.target, uid);
      const all = [...found.allows, ...found.denies];
      if (!all.length) {
        const it = d.current()?.rules.find((r) => r.source.kind === 'profile' && (isPath ? r.binary?.path === p.target : r.key === p.target || r.id === p.target));
        if (it) throw ApiError(ErrorCode.Forbidden, `${p.target} is ${isPath ? 'allowed or denied by ' : ''}${describe(it)}: IT rules cannot be revoked here, only by changing the profile`);
        throw ApiError(ErrorCode.NotFound, `no user decision ${isPath ? `for ${p.target} of uid ${uid}` : p.target}`);
      }
      for (const x of all) requireOwn(caller, x.uid, 'revoke decisions');
      return d.rules.remove(new Set(all.map((x) => x.id)), caller.uid, 'revoked');
    },

    async decisions(caller) {
      return d.rules.views(caller.admin ? undefined : caller.uid);
    },
  };
}
