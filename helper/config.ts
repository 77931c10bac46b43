// Where things live: each path has a flag, an environment variable and a default (PRODUCT.md).
import path from 'node:path';

export interface Paths {
  etc: string;
  state: string;
  run: string;
  cgroupRoot: string;
}

export const DEFAULTS: Paths = {
  etc: '/etc/tunnelgate',
  state: '/var/lib/tunnelgate',
  run: '/run/tunnelgate',
  cgroupRoot: 'tunnelgate',
};

const ENV: Record<keyof Paths, string> = {
  etc: 'TUNNELGATE_ETC',
  state: 'TUNNELGATE_STATE',
  run: 'TUNNELGATE_RUN',
  cgroupRoot: 'TUNNELGATE_CGROUP_ROOT',
};

/** Flag, then environment, then default. Directories become absolute. */
export function resolvePaths(flags: Partial<Paths>, env: NodeJS.ProcessEnv = process.env): Paths {
  const pick = (k: keyof Paths) => flags[k] || env[ENV[k]] || DEFAULTS[k];
  return {
    etc: path.resolve(pick('etc')),
    state: path.resolve(pick('state')),
    run: path.resolve(pick('run')),
    cgroupRoot: pick('cgroupRoot'),
  };
}

export const profilesDir = (p: Paths) => path.join(p.etc, 'profiles.d');
export const trustedKeysDir = (p: Paths) => path.join(p.etc, 'trusted-keys');

/**
 * NFLOG group the gate's refuse chain logs to. NFLOG instances are per network namespace,
 * and one reader may bind a group: a second helper in the same namespace is refused anyway.
 */
export const NFLOG_GROUP = 7467;

/**
 * V8 options the helper runs with (tunnelgate.service's `Environment=NODE_OPTIONS=`; the
 * lab and the bench start it with the same). A young generation of 1 MiB semi-spaces and
 * one V8 worker thread instead of four: the helper's heap is small and its allocations
 * short-lived, and each worker thread's malloc arena and the larger semi-spaces were
 * ~12 MiB of its resident memory at idle (bench/RESULTS.md, RSS: 88 -> 76 MB measured
 * together; either alone saved under 1 MB). Issue 10's target is an RSS under 80 MB.
 */
export const HELPER_NODE_OPTIONS = '--max-semi-space-size=1 --v8-pool-size=1';
