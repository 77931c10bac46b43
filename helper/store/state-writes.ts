// Write failures of the users' decisions shown in status (issue 9.10). The decisions store
// (decisions.ts) refuses a change it cannot save and tells the caller why ("cannot save your
// rule: the state directory … is full (ENOSPC); nothing was changed"): nothing acknowledged
// is lost. This port over it also reports the failure to storageHealth (status `degraded`,
// naming the file and errno) and probes the file again until a save works, which clears it.
import type { DecisionsDoc, DecisionsStore } from './decisions.js';
import { storageHealth } from '../kernel/files.js';
import type { StorageHealth } from '../kernel/files.js';

/** What the user rules and prompts need of the decisions store. */
export type DecisionsPort = Pick<DecisionsStore, 'current' | 'update' | 'file'>;

/** The StorageHealth key of the decisions file. */
export const DECISIONS_KEY = 'user decisions';

const SAVE_FAILED = /^cannot save your rule: (.*); nothing was changed$/s;

/**
 * `store`, with its save failures reported to `health` (default: the helper's storageHealth)
 * and cleared by the next save that works; while failing, the unchanged decisions are
 * written again every retry period (StorageHealth) to notice that space came back.
 * A store frozen at start (a corrupt file that could not be set aside) is not reported here:
 * that is a start-up problem of its own.
 */
export function reportDecisionWrites(store: DecisionsStore, health: StorageHealth = storageHealth): DecisionsPort {
  const update = <T>(fn: (draft: DecisionsDoc) => T): Promise<T> =>
    store.update(fn).then(
      (r) => {
        health.ok(DECISIONS_KEY);
        return r;
      },
      (e: unknown) => {
        const m = SAVE_FAILED.exec((e as Error)?.message ?? '');
        if (m?.[1]) health.fail(DECISIONS_KEY, m[1], { file: store.file, retry: () => update(() => undefined) });
        throw e;
      },
    );
  return {
    get current() {
      return store.current;
    },
    file: store.file,
    update,
  };
}
