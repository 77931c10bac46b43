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
import type { AllowParams, Caller } from '../../../common/api.js';
import { normalRuleKey } from '../../../common/format.js';
import { decide, describe } from '../../policy/decide.js';
import { readableBy, requireOwn } from '../authorization.js';
import { ApiError } from '../../../common/errors.js';
import type { Handlers } from '../server.js';
import { installedApps } from './apps.js';
import type { AppsDeps } from './apps.js';
import { pathIdentity, sha256File } from './path-identity.js';
import type { PathFactsDeps } from './path-identity.js';
import { requireDestinations } from './prompts.js';

/** What the rule handlers work on. */
export interface RuleHandlerDeps {
  current: () => Policy | undefined;
  rules: Pick<UserRules, 'allow' | 'resolve' | 'remove' | 'views'>;
  prompts: Pick<PromptManager, 'ruleAdded'>;
  clock: Clock;
  /** Where `allow {app}` finds installed apps (default: the real directories). */
  apps?: AppsDeps;
  /** How `allow` reads a program's facts for decide() (default: sha256 of the file, dpkg). */
  facts?: PathFactsDeps;
}

/** The program `allow` names: `path`, or the executable of the installed app `app` (one of the caller's `apps`). Exactly one. */
async function programOf(caller: Caller, p: AllowParams, apps: AppsDeps | undefined): Promise<string> {
  if ((p.path === undefined) === (p.app === undefined)) throw ApiError(ErrorCode.InvalidParams, 'allow needs exactly one of a path and an app');
  if (p.path !== undefined) return p.path;
  const app = (await installedApps(caller, apps)).find((a) => a.desktopEntry === p.app);
  if (!app) throw ApiError(ErrorCode.NotFound, `${p.app} is not an application installed for uid ${caller.uid} (see apps)`);
  if (app.flatpak) {
    throw ApiError(ErrorCode.Forbidden, `${app.name} is Flatpak app ${app.flatpak}: a user rule names a program by its path, and a Flatpak app runs in its sandbox; an IT rule (binary.flatpak) can allow it`);
  }
  if (!app.exe) throw ApiError(ErrorCode.NotFound, `cannot tell which program ${p.app} starts (its Exec= names no installed executable)`);
  return app.exe;
}

/**
 * Refuses (Forbidden, with the reason) a user rule the gate would never apply: decide(),
 * as the gate calls it, on the facts of `file` for uid, finds an IT deny for the whole
 * tunnel, which wins over every allow.
 */
async function refuseOverridden(policy: Policy, file: string, st: Stats | undefined, uid: number, caller: Caller, facts: PathFactsDeps): Promise<void> {
  const { id } = await pathIdentity(policy, file, st, uid, caller, facts);
  const v = decide(policy, id);
  if (!v.allow && v.rule && v.rule.source.kind === 'profile' && v.rule.action === 'deny' && !v.rule.destinations?.length) {
    throw ApiError(ErrorCode.Forbidden, `${file} stays denied: ${v.reason}, and an IT deny wins over user rules; ask your administrator`);
  }
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
      const file = await programOf(caller, p, d.apps);
      const st = await checkProgramPath(file);
      requireDestinations(p.destinations);
      const pin = p.pin ?? true;
      if (pin) {
        if (!st) throw ApiError(ErrorCode.NotFound, `${file} does not exist, so its hash cannot be pinned (allow it without a pin to name a program not installed yet)`);
        if (!readableBy(st, caller)) throw ApiError(ErrorCode.Forbidden, `${file} is not readable by uid ${caller.uid}, so its hash cannot be pinned for you`);
      }
      const policy = d.current();
      if (policy) await refuseOverridden(policy, file, st, uid, caller, d.facts ?? { sha256: sha256File });
      const lifetime = requestedLifetime(p, d.clock.now());
      const r = await d.rules.allow({ uid, path: file, pin, ...(p.destinations ? { destinations: p.destinations } : {}), lifetime, by: caller.uid, via: 'api' });
      d.prompts.ruleAdded(uid, file, p.destinations);
      return { rule: r.view, admitted: r.admitted };
    },

    async revoke(caller, p) {
      const uid = p.uid ?? caller.uid;
      requireOwn(caller, uid, 'revoke decisions');
      const target = normalRuleKey(p.target);
      const isPath = target.startsWith('/');
      if (p.uid !== undefined && !isPath) throw ApiError(ErrorCode.InvalidParams, 'uid goes with a path; a rule key or id names its user already');
      const found = d.rules.resolve(target, uid);
      const all = [...found.allows, ...found.denies];
      if (!all.length) {
        const it = d.current()?.rules.find((r) => r.source.kind === 'profile' && (isPath ? r.binary?.path === target : r.key === target || r.id === target));
        if (it) throw ApiError(ErrorCode.Forbidden, `${target} is ${isPath ? 'allowed or denied by ' : ''}${describe(it)}: IT rules cannot be revoked here, only by changing the profile`);
        throw ApiError(ErrorCode.NotFound, `no user decision ${isPath ? `for ${target} of uid ${uid}` : target}`);
      }
      for (const x of all) requireOwn(caller, x.uid, 'revoke decisions');
      return d.rules.remove(new Set(all.map((x) => x.id)), caller.uid, 'revoked');
    },

    async decisions(caller) {
      return d.rules.views(caller.admin ? undefined : caller.uid);
    },
  };
}
