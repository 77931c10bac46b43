// `status` and the two steps of `tunnelgate run` (helper/core/launches.ts).
import type { StatusReport } from '../../../common/api.js';
import type { Launches } from '../../core/launches.js';
import type { Handlers } from '../server.js';

/** The gate's status report, and the launch protocol. Errors are the launches' ApiErrors. */
export function statusHandlers(d: { status: () => Promise<StatusReport>; launches: Pick<Launches, 'begin' | 'confirm'> }): Pick<Handlers, 'status' | 'launch.begin' | 'launch.confirm'> {
  return {
    status: async () => d.status(),
    'launch.begin': (caller, p) => d.launches.begin(caller, p),
    'launch.confirm': (caller, p) => d.launches.confirm(caller, p.launchId),
  };
}
