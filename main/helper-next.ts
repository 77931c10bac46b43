// What the tray app needs from the helper's API beyond common/api.ts today (issue 12):
// declared here, in one place, until the helper serves it and common/api.ts declares it
// (after the merge of the API and helper branches). Then these types move to
// common/api.ts, `callNext` becomes `client.call`, and this file goes.
//
// - `apps` {}: the installed applications, from the .desktop entries the helper already
//   reads for prompts (system, the caller's own ~/.local/share/applications, Flatpak
//   exports in /var/lib/flatpak/exports/share/applications and the caller's
//   ~/.local/share/flatpak/exports/share/applications, snapd's desktop dir), `NoDisplay`
//   and `Hidden` ones left out, sorted by name. Access: any (each user sees what they may
//   start).
// - `allow` {app, destinations?, seconds?, untilLogout?}: like `allow {path}`, for an
//   installed app named by its desktop entry; the helper resolves Exec= (a Flatpak export
//   becomes a `flatpak` matcher, not a path). Refused with the reason where IT locks user
//   decisions or an IT deny overrides it (issue 12 part 7).
// - `explain` {rule}: the helper's words for one rule of the whitelist (by key): what it
//   matches, its scope and lifetime, who may remove it.
//
// Plain module: no Electron.

import type { AllowParams, ExplainParams, ExplainResult, AllowResult } from '../common/api.js';
import type { InstalledApp } from '../common/ipc.js';
import type { HelperClient } from '../common/node/client.js';

export interface AppsResult {
  apps: InstalledApp[];
}

export type NextAllowParams = Omit<AllowParams, 'path' | 'pin' | 'uid'> & { app: string };
export type NextExplainParams = Pick<ExplainParams, 'uid'> & { rule: string };

export interface NextMethods {
  apps: { params: Record<string, never>; result: AppsResult };
  allow: { params: NextAllowParams; result: AllowResult };
  explain: { params: NextExplainParams; result: ExplainResult };
}

/** A call of a method (or of parameters) the helper will serve after the merge; an older helper answers MethodNotFound or InvalidParams. */
export function callNext<M extends keyof NextMethods>(client: Pick<HelperClient, 'call'>, method: M, params: NextMethods[M]['params']): Promise<NextMethods[M]['result']> {
  const call = client.call as unknown as (m: string, p: unknown) => Promise<NextMethods[M]['result']>;
  return call.call(client, method, params);
}
