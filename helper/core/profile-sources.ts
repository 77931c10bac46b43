// The profile sources, at the I/O edge: reads profiles.d, trusted-keys/ and remote.json,
// runs the remote pull, watches for changes, and remembers what was in force (state dir).
// The decisions themselves are pure, in helper/profile/sources.ts.
//
// The helper uses it in three steps:
//   load()        every source's candidate, checked -> profiles + rejected for mergePolicy
//   commit(p)     after the policy p is in force: record versions and last good copies
//   start(fn)     watch the files (and pull) and call fn when a reload is due
import { watch, promises as fs } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Policy, SourceStatus } from '../../common/policy.js';
import type { LoadedProfile } from '../profile/loaded.js';
import { RemotePuller } from '../profile/pull.js';
import { listProfiles, readCandidate, readKeys, sourceKey } from '../profile/read.js';
import type { httpsGet, PullerView } from '../profile/pull.js';
import { parseRemoteConfig, REMOTE_CONFIG_FILE } from '../profile/remote-config.js';
import type { Candidate, GoodCopy, Selection, VersionRecord } from '../profile/sources.js';
import { MAX_PROFILE_BYTES, REMOTE_KEY, selectSources } from '../profile/sources.js';
import { IFACE_PATTERN } from '../../common/profile.js';
import { ProfileStore } from '../profile/store.js';
import type { Paths } from '../config.js';
import { profilesDir, trustedKeysDir } from '../config.js';
import { describeWriteError, readTrusted, storageHealth } from '../kernel/files.js';
import type { StorageHealth } from '../kernel/files.js';
import type { EventSink } from './event-bus.js';
import { logError } from '../../common/node/log.js';

/** How often the files are compared with what was last loaded, in case a watch event was missed. */
const RESCAN_MS = 5_000;

export interface ProfileLoad {
  profiles: LoadedProfile[];
  rejected: SourceStatus[];
  /** The interfaces gated by the policy last in force (for mergePolicy: kept while degraded). */
  gated: string[];
  /** Worth showing, but not a failed source (warnings, an unreachable server with a cached copy). */
  notes: string[];
}

export interface ProfileSourcesOptions {
  /** The HTTPS client of the remote pull (tests). */
  get?: typeof httpsGet;
  now?: () => Date;
  /** Where failures to record the profiles in force are shown (default: the helper's storageHealth). */
  health?: StorageHealth;
}

/** The StorageHealth key of the records of the profiles in force (versions, last good copies, gated interfaces). */
export const PROFILE_RECORDS = 'records of the profiles in force';


export class ProfileSources {
  private readonly store: ProfileStore;
  private readonly puller: RemotePuller;
  private versions = new Map<string, VersionRecord>();
  private lastGood = new Map<string, GoodCopy>();
  private gated: string[] = [];
  private storeProblems: string[] = [];
  /** The versions changed and are not saved yet. */
  private versionsDirty = false;
  /** The policy last committed (a failed commit is retried with it) and the commits, one at a time. */
  private committed: Policy | undefined;
  private commits: Promise<void> = Promise.resolve();
  private last: Selection | undefined;
  private readonly reported = new Map<string, string>();
  private fingerprint = '';
  private onChange: (why: string) => void = () => undefined;

  private constructor(
    private readonly paths: Paths,
    private readonly events: EventSink,
    private readonly opts: ProfileSourcesOptions,
  ) {
    this.store = new ProfileStore(paths.state);
    this.puller = new RemotePuller({
      ...(opts.get ? { get: opts.get } : {}),
      cached: () => {
        const c = this.lastGood.get(REMOTE_KEY);
        return c && { url: c.file, bytes: c.bytes, ...(c.sig ? { sig: c.sig } : {}), ...(c.etag ? { etag: c.etag } : {}) };
      },
      onChange: (why) => this.onChange(why),
      onResult: (r) => {
        if (r.result !== 'not-modified') this.events.emit({ type: 'profile.pulled', ...r });
      },
      ...(opts.now ? { now: opts.now } : {}),
    });
  }

  /** Read what earlier runs left in the state dir (versions in force, last good copies). */
  static async open(paths: Paths, events: EventSink, opts: ProfileSourcesOptions = {}): Promise<ProfileSources> {
    const s = new ProfileSources(paths, events, opts);
    const stored = await s.store.read();
    s.versions = stored.versions;
    s.lastGood = stored.lastGood;
    s.gated = stored.gated;
    s.storeProblems = stored.problems;
    return s;
  }

  private now(): Date {
    return this.opts.now?.() ?? new Date();
  }

  /** Every source's candidate, checked. Never throws: whatever goes wrong is a rejected source. */
  async load(): Promise<ProfileLoad> {
    this.fingerprint = await this.computeFingerprint();
    const rejected: SourceStatus[] = [];
    const notes: string[] = [];

    const keys = await readKeys(trustedKeysDir(this.paths));
    const candidates = await this.readProfilesDir(rejected);
    const remote = await this.remoteCandidate(rejected, notes);
    if (remote) candidates.push(remote);

    const sel = selectSources({ candidates, lastGood: this.lastGood, versions: this.versions, keys, now: this.now() });
    this.last = sel;
    rejected.push(...sel.rejected);
    if (this.storeProblems.length) rejected.push({ file: this.paths.state, state: 'rejected', problems: [...this.storeProblems] });
    // Write failures of the state dir are not a source's fault: status reads them from
    // storageHealth directly (degraded at once, enforcing again when a write works; issue 9.10).
    this.reportRejections(sel.rejected);
    // The copies that were good before may no longer hold (a trust change): what they named stays gated.
    const gated = [...new Set([...this.gated, ...[...this.lastGood.values()].flatMap((g) => interfacesOf(g.bytes))])];
    return { profiles: sel.profiles, rejected, gated, notes: [...sel.notes, ...notes] };
  }

  private async readProfilesDir(rejected: SourceStatus[]): Promise<Candidate[]> {
    const dir = profilesDir(this.paths);
    let names: string[];
    try {
      // Hidden files are the temporary files of editors and config management, mid-write.
      const listed = await listProfiles(dir);
      if (listed === undefined) return [];
      names = listed;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      rejected.push({ file: dir, state: 'rejected', problems: [`cannot read the profile directory (${err.message}); the last good copies stay in force`] });
      return [...this.lastGood.values()].filter((g) => g.key !== REMOTE_KEY).map((g) => ({ key: g.key, file: g.file, requireSignature: false, pending: true }));
    }
    return Promise.all(names.map((name) => readCandidate(path.join(dir, name), sourceKey(name))));
  }

  private async remoteCandidate(rejected: SourceStatus[], notes: string[]): Promise<Candidate | undefined> {
    const file = path.join(this.paths.etc, REMOTE_CONFIG_FILE);
    let text: string | undefined;
    try {
      text = (await readTrusted(file, MAX_PROFILE_BYTES))?.toString('utf8');
      if (text === undefined) this.puller.configure(undefined);
    } catch (e) {
      rejected.push({ file, state: 'rejected', problems: [`cannot read: ${(e as Error).message}; the previous pull settings stay`] });
    }
    if (text !== undefined) {
      const r = parseRemoteConfig(text);
      if (r.ok) this.puller.configure(r.config);
      else rejected.push({ file, state: 'rejected', problems: [...r.problems, 'the previous pull settings stay'] });
    }
    const cached = this.lastGood.get(REMOTE_KEY);
    const view: PullerView = this.puller.view();
    if (!view.config) {
      // Not configured (any more): a cached copy stays only while remote.json is unreadable.
      return cached && rejected.some((s) => s.file === file) ? { key: REMOTE_KEY, file: cached.file, requireSignature: true, pending: true } : undefined;
    }
    const url = view.config.url;
    const l = view.latest;
    if (view.error && (l || cached)) {
      const what = l ? 'the copy it served last' : `the cached copy (profile ${cached?.profileId} version ${cached?.version}, from ${cached?.savedAt})`;
      notes.push(`${url}: cannot pull since ${view.error.since} (${view.error.message}); using ${what}`);
    }
    if (l) {
      return { key: REMOTE_KEY, file: url, bytes: l.bytes, ...(l.sig ? { sig: l.sig } : {}), ...(l.sigError ? { sigError: l.sigError } : {}), requireSignature: true };
    }
    if (view.error && !cached) {
      return { key: REMOTE_KEY, file: url, readError: `cannot pull: ${view.error.message}; no copy is cached yet`, requireSignature: true };
    }
    if (!view.polled && !cached) notes.push(`${url}: first pull pending`);
    // Nothing newer than the cached copy: it stays (checked again like any other copy).
    return { key: REMOTE_KEY, file: url, requireSignature: true, pending: true };
  }

  /** An event per source whose rejection is new or different; silence while it stays the same. */
  private reportRejections(rejected: readonly SourceStatus[]): void {
    const now = new Map(rejected.map((s) => [s.file, JSON.stringify(s.problems)]));
    for (const s of rejected) {
      if (this.reported.get(s.file) === now.get(s.file)) continue;
      this.events.emit({
        type: 'profile.rejected',
        file: s.file,
        ...(s.profileId !== undefined ? { profileId: s.profileId, version: s.version ?? 0 } : {}),
        problems: s.problems,
      });
    }
    this.reported.clear();
    for (const [k, v] of now) this.reported.set(k, v);
  }

  /**
   * The policy built from the last load() is in force: remember what of it came from
   * fresh candidates (versions, last good copies), and forget the sources that are gone.
   * A failure to write the state dir is shown in storageHealth (status: degraded, naming the
   * file and errno) and the commit is retried until it works, which clears it. Never throws.
   */
  commit(policy: Policy): Promise<void> {
    this.committed = policy;
    this.commits = this.commits.then(() => this.commitNow(policy));
    return this.commits;
  }

  private get health(): StorageHealth {
    return this.opts.health ?? storageHealth;
  }

  private async commitNow(policy: Policy): Promise<void> {
    const sel = this.last;
    if (!sel || policy !== this.committed) return; // a newer commit supersedes this one
    const now = this.now().toISOString();
    const active = policy.sources.filter((s) => s.state === 'active');
    if (this.storeProblems.length) this.versionsDirty = true;
    try {
      for (const [key, fresh] of sel.accepted) {
        if (!active.some((s) => s.file === fresh.file && s.profileId === fresh.profileId && s.version === fresh.version)) continue;
        const prev = this.lastGood.get(key);
        const copy: GoodCopy = { ...fresh, savedAt: now };
        if (key === REMOTE_KEY) {
          const latest = this.puller.view().latest;
          const etag = latest?.bytes.equals(fresh.bytes) ? latest.etag : prev?.sha256 === fresh.sha256 ? prev.etag : undefined;
          if (etag) copy.etag = etag;
          else delete copy.etag;
        }
        const same = prev && prev.sha256 === copy.sha256 && prev.file === copy.file && sameBytes(prev.sig, copy.sig) && prev.etag === copy.etag;
        if (!same) {
          await this.store.writeGood(copy);
          this.lastGood.set(key, copy);
        }
        if (!prev || prev.sha256 !== copy.sha256) {
          const note = prev && prev.profileId === copy.profileId && prev.version === copy.version ? 'same version, new content (a re-push)' : undefined;
          this.events.emit({
            type: 'profile.loaded',
            file: copy.file,
            profileId: copy.profileId,
            version: copy.version,
            ...(prev ? { previousVersion: prev.version } : {}),
            ...(copy.signedBy ? { signedBy: copy.signedBy } : {}),
            ...(note ? { note } : {}),
          });
        }
        const floor = this.versions.get(copy.profileId);
        if (!floor || copy.version > floor.version || (copy.version === floor.version && copy.sha256 !== floor.sha256)) {
          this.versions.set(copy.profileId, { version: copy.version, sha256: copy.sha256, since: now });
          this.versionsDirty = true;
        }
      }
      for (const [key, prev] of [...this.lastGood]) {
        if (sel.present.has(key)) continue;
        await this.store.removeGood(key);
        this.lastGood.delete(key);
        this.events.emit({ type: 'profile.removed', file: prev.file, profileId: prev.profileId, version: prev.version });
      }
      if (this.versionsDirty) {
        await this.store.writeVersions(this.versions);
        this.versionsDirty = false;
      }
      if (!sameList(this.gated, policy.interfaces)) {
        await this.store.writeGated(policy.interfaces);
        this.gated = [...policy.interfaces];
      }
      this.storeProblems = [];
    } catch (e) {
      const reason = `${describeWriteError(e, this.paths.state)}: rollback protection and last good copies may not survive a restart`;
      if (!this.health.isFailing(PROFILE_RECORDS)) logError(`cannot record the profiles in force: ${reason}`);
      this.health.fail(PROFILE_RECORDS, reason, { file: this.paths.state, retry: () => (this.committed ? this.commit(this.committed) : Promise.resolve()) });
      return;
    }
    this.health.ok(PROFILE_RECORDS);
  }

  /** Watch profiles.d, trusted-keys/ and the etc dir, rescan now and then, and pull. */
  start(onChange: (why: string) => void): { close(): void } {
    this.onChange = onChange;
    const watchers = new Map<string, FSWatcher>();
    let closed = false;
    const arm = (dir: string, why: string, extra?: (file: string | null) => void) => {
      watchers.get(dir)?.close();
      watchers.delete(dir);
      try {
        const w = watch(dir, (_event, file) => {
          extra?.(file);
          onChange(`${why}${file ? `/${file}` : ''}`);
        });
        // A directory that is removed or replaced ends its watch; the etc watcher re-arms it.
        w.on('error', () => {
          w.close();
          if (watchers.get(dir) === w) watchers.delete(dir);
        });
        watchers.set(dir, w);
      } catch {
        /* absent for now: the etc watcher and the rescan notice when it appears */
      }
    };
    const armChildren = () => {
      if (closed) return;
      arm(profilesDir(this.paths), 'profiles.d');
      arm(trustedKeysDir(this.paths), 'trusted-keys');
    };
    arm(this.paths.etc, 'etc', (file) => {
      if (file === null || file === 'profiles.d' || file === 'trusted-keys') armChildren();
    });
    armChildren();
    const rescan = setInterval(() => {
      void this.computeFingerprint().then((fp) => {
        if (closed || fp === this.fingerprint) return;
        armChildren();
        onChange('rescan');
      });
    }, RESCAN_MS);
    rescan.unref();
    this.puller.start();
    return {
      close: () => {
        closed = true;
        clearInterval(rescan);
        this.puller.stop();
        for (const w of watchers.values()) w.close();
        watchers.clear();
      },
    };
  }

  /** Names, inodes, sizes and times of everything load() reads: a change means a reload is due. */
  private async computeFingerprint(): Promise<string> {
    const parts: string[] = [];
    const statLine = async (p: string) => {
      const s = await fs.stat(p).catch(() => undefined);
      return s ? `${p}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}:${s.mode}` : `${p}:-`;
    };
    for (const dir of [profilesDir(this.paths), trustedKeysDir(this.paths)]) {
      parts.push(await statLine(dir));
      const names = await fs.readdir(dir).catch(() => [] as string[]);
      for (const n of names.sort()) parts.push(await statLine(path.join(dir, n)));
    }
    parts.push(await statLine(path.join(this.paths.etc, REMOTE_CONFIG_FILE)));
    return parts.join('\n');
  }
}

/**
 * profiles.d alone, checked like the helper checks it (signatures where the sibling
 * trusted-keys/ has keys) but without state: no rollback floor, no last good copies.
 * For one-shot readers; the helper uses ProfileSources.
 */
export async function loadProfiles(dir: string): Promise<ProfileLoad> {
  const keys = await readKeys(path.join(path.dirname(dir), 'trusted-keys'));
  const names = (await listProfiles(dir).catch(() => undefined)) ?? [];
  const candidates = await Promise.all(names.map((name) => readCandidate(path.join(dir, name), sourceKey(name))));
  const sel = selectSources({ candidates, lastGood: new Map(), versions: new Map(), keys, now: new Date() });
  return { profiles: sel.profiles, rejected: sel.rejected, gated: [], notes: sel.notes };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
}

/** The `interfaces` a stored copy names, read without trusting it further ([] when it cannot tell). */
function interfacesOf(bytes: Buffer): string[] {
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { interfaces?: unknown };
    return Array.isArray(doc.interfaces) ? doc.interfaces.filter((i): i is string => typeof i === 'string' && new RegExp(IFACE_PATTERN).test(i)) : [];
  } catch {
    return [];
  }
}

function sameBytes(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b);
}
