// What the helper remembers about profiles across restarts, in its state dir (0700, root):
//
//   profile-versions.json        highest version in force per profile id (rollback protection)
//   profiles-last-good/KEY.json  the last copy in force of each source (exact bytes, signature,
//                                and for the remote pull its ETag), the fallback when the
//                                source is later broken, also after a restart
//
// Every write is atomic (temp file, fsync, rename, fsync of the directory): a crash leaves
// the old or the new file, never half of one. A copy read back is checked again (signature,
// schema, version) like any other before it is used.
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir, writeFileAtomic } from '../kernel/files.js';
import { IFACE_PATTERN } from '../../common/profile.js';
import type { GoodCopy, VersionRecord } from './sources.js';

export { writeFileAtomic };

export const VERSIONS_FILE = 'profile-versions.json';
export const LAST_GOOD_DIR = 'profiles-last-good';
/** The interfaces (names and patterns) gated by the policy last in force. */
export const GATED_FILE = 'gated-names.json';
const FORMAT = 1;

/** What a GoodCopy and its file have alike: every field but the bytes and the signature. */
type CopyFields = Omit<GoodCopy, 'bytes' | 'sig'>;

/** A GoodCopy as stored in STATE: the bytes and the signature file in base64. */
type StoredCopy = CopyFields & {
  format: number;
  /** base64 of the exact bytes and of the signature file. */
  bytes: string;
  sig?: string;
};

export interface StoredState {
  versions: Map<string, VersionRecord>;
  lastGood: Map<string, GoodCopy>;
  /** The interfaces gated by the policy last in force (kept gated until a valid policy drops them). */
  gated: string[];
  /** `PATH: message` for whatever could not be read back. */
  problems: string[];
}

export class ProfileStore {
  constructor(readonly stateDir: string) {}

  get versionsFile(): string {
    return join(this.stateDir, VERSIONS_FILE);
  }

  get lastGoodDir(): string {
    return join(this.stateDir, LAST_GOOD_DIR);
  }

  private copyFile(key: string): string {
    return join(this.lastGoodDir, `${encodeURIComponent(key)}.json`);
  }

  async read(): Promise<StoredState> {
    const state: StoredState = { versions: new Map(), lastGood: new Map(), gated: [], problems: [] };
    try {
      state.gated = await this.readGated();
    } catch (e) {
      state.problems.push(`${this.gatedFile}: cannot read the interfaces gated before (${(e as Error).message}); gating what the profiles and their last good copies name`);
    }
    try {
      const doc = JSON.parse(await readFile(this.versionsFile, 'utf8')) as { format?: unknown; profiles?: unknown };
      if (doc.format !== FORMAT || !isRecord(doc.profiles)) throw new Error('unknown format');
      for (const [id, r] of Object.entries(doc.profiles)) {
        if (isRecord(r) && Number.isSafeInteger(r.version) && typeof r.sha256 === 'string' && typeof r.since === 'string') {
          state.versions.set(id, { version: r.version as number, sha256: r.sha256, since: r.since });
        } else state.problems.push(`${this.versionsFile}: entry ${JSON.stringify(id)} is malformed and ignored`);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        state.problems.push(`${this.versionsFile}: cannot read (${(e as Error).message}); rollback protection rests on the last good copies until it is rewritten`);
      }
    }
    let names: string[] = [];
    try {
      names = (await readdir(this.lastGoodDir)).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') state.problems.push(`${this.lastGoodDir}: cannot read (${(e as Error).message})`);
    }
    for (const name of names.sort()) {
      const path = join(this.lastGoodDir, name);
      try {
        const s = JSON.parse(await readFile(path, 'utf8')) as StoredCopy;
        if (s.format !== FORMAT || typeof s.key !== 'string' || typeof s.bytes !== 'string' || typeof s.profileId !== 'string') {
          throw new Error('unknown format');
        }
        if (this.copyFile(s.key) !== path) throw new Error(`names source ${s.key}, not the one its file name says`);
        const copy: GoodCopy = {
          ...copyFields(s),
          bytes: Buffer.from(s.bytes, 'base64'),
          ...(s.sig !== undefined ? { sig: Buffer.from(s.sig, 'base64') } : {}),
        };
        state.lastGood.set(copy.key, copy);
        // The copies were in force, so their versions are floors too (the versions file may be lost).
        const floor = state.versions.get(copy.profileId);
        if (!floor || floor.version < copy.version) {
          state.versions.set(copy.profileId, { version: copy.version, sha256: copy.sha256, since: copy.savedAt });
        }
      } catch (e) {
        state.problems.push(`${path}: cannot use this last good copy (${(e as Error).message})`);
      }
    }
    return state;
  }

  get gatedFile(): string {
    return join(this.stateDir, GATED_FILE);
  }

  /**
   * The remembered interface names ([] when none were saved yet).
   * @throws when the file exists but cannot be read or is not in this format
   */
  private async readGated(): Promise<string[]> {
    let text: string;
    try {
      text = await readFile(this.gatedFile, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const doc = JSON.parse(text) as { format?: unknown; interfaces?: unknown };
    if (doc.format !== FORMAT || !Array.isArray(doc.interfaces) || !doc.interfaces.every((i) => typeof i === 'string' && new RegExp(IFACE_PATTERN).test(i))) {
      throw new Error(`${this.gatedFile}: unknown format`);
    }
    return doc.interfaces as string[];
  }

  /** Remember the interfaces gated now (atomically). */
  async writeGated(interfaces: readonly string[]): Promise<void> {
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.gatedFile, `${JSON.stringify({ format: FORMAT, interfaces: [...interfaces].sort() }, null, 2)}\n`);
  }

  async writeVersions(versions: ReadonlyMap<string, VersionRecord>): Promise<void> {
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    const profiles = Object.fromEntries([...versions.entries()].sort(([a], [b]) => a.localeCompare(b)));
    await writeFileAtomic(this.versionsFile, `${JSON.stringify({ format: FORMAT, profiles }, null, 2)}\n`);
  }

  async writeGood(copy: GoodCopy): Promise<void> {
    await mkdir(this.lastGoodDir, { recursive: true, mode: 0o700 });
    const stored: StoredCopy = {
      format: FORMAT,
      ...copyFields(copy),
      bytes: copy.bytes.toString('base64'),
      ...(copy.sig ? { sig: copy.sig.toString('base64') } : {}),
    };
    await writeFileAtomic(this.copyFile(copy.key), `${JSON.stringify(stored, null, 2)}\n`);
  }

  async removeGood(key: string): Promise<void> {
    await rm(this.copyFile(key), { force: true });
    await syncDir(this.lastGoodDir).catch(() => undefined);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The fields a copy keeps as they are between memory and its file, picked one by one: what
 * else a file holds is not carried over, and absent optional fields stay absent.
 */
function copyFields(c: CopyFields): CopyFields {
  return {
    key: c.key,
    file: c.file,
    profileId: c.profileId,
    version: c.version,
    rules: c.rules,
    sha256: c.sha256,
    ...(c.signedBy !== undefined ? { signedBy: c.signedBy } : {}),
    ...(c.etag !== undefined ? { etag: c.etag } : {}),
    savedAt: c.savedAt,
  };
}
