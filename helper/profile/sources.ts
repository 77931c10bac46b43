// Which profile copies go into force: the decisions behind "signed, versioned, and bad
// input never opens the gate", kept pure (bytes in, decisions out) so they can be tested
// without a helper. helper/core/profile-sources.ts does the reading, writing and watching.
//
// A *source* is one place a profile comes from: a file in profiles.d (key
// `profiles.d/NAME.json`) or the remote pull (key `remote`). Each round, every source
// offers a *candidate* (its current bytes and signature), and the *last good copy* of each
// source (what was last in force from it, kept in memory and in the state dir) is the
// fallback:
//
//  - a candidate that cannot be read, is not signed by a trusted key where signatures are
//    required, does not validate, or rolls back a profile id to a lower version is
//    rejected; the source's last good copy stays in force and status says why;
//  - where trusted-keys/ holds any *.pub file (even only unusable ones: fail closed),
//    every profile needs FILE.sig by a usable key; pulled profiles always need one;
//  - a source that is gone (file deleted, remote pull no longer configured) is removed
//    deliberately: its rules leave with it. That can close the tunnel, never open it;
//  - the drop-all guard: an update that would leave the machine with no profile rule at
//    all, when rules were in force, because a profile that had rules now has `rules: []`,
//    is taken for a mistake (a templating error, a truncated export) unless it comes with
//    a higher `version` than the copy in force: an intentional emptying is published as a
//    new version. Until then the last good copy stays in force.
import { createHash } from 'node:crypto';
import type { SourceStatus } from '../../common/policy.js';
import type { Profile } from '../../common/profile.js';
import type { LoadedProfile } from '../profile/loaded.js';
import type { TrustedKey } from './signing.js';
import { verify } from './signing.js';
import { validateProfile } from './validate.js';

/** Profiles are small; anything larger is refused before it is parsed. */
export const MAX_PROFILE_BYTES = 1024 * 1024;
export const REMOTE_KEY = 'remote';

export interface Candidate {
  /** Stable name of the source: `profiles.d/NAME.json` or `remote`. */
  key: string;
  /** What status shows: the file's path, or the URL. */
  file: string;
  /** The exact bytes, unless they could not be read (readError) or nothing new exists (pending). */
  bytes?: Buffer;
  readError?: string;
  /** Contents of FILE.sig; sigError when it exists but could not be read. */
  sig?: Buffer;
  sigError?: string;
  /** Pulled profiles need a signature even where no trusted key is configured. */
  requireSignature: boolean;
  /** Nothing new to offer yet (first remote fetch in flight): keep the last good copy, no complaint. */
  pending?: boolean;
}

/** A copy that was in force: the fallback of its source, persisted in the state dir. */
export interface GoodCopy {
  key: string;
  file: string;
  bytes: Buffer;
  sig?: Buffer;
  profileId: string;
  version: number;
  rules: number;
  sha256: string;
  /** The trusted key (file name without .pub) whose signature was verified. */
  signedBy?: string;
  /** Remote copies: the ETag the server sent with them. */
  etag?: string;
  savedAt: string;
}

/** The highest version in force so far, per profile id (rollback protection). */
export interface VersionRecord {
  version: number;
  sha256: string;
  since: string;
}

export interface KeyState {
  /** The trusted-keys directory (for messages). */
  dir: string;
  keys: readonly TrustedKey[];
  /** Problems loading keys, as `PATH: message`. */
  problems: readonly string[];
  /** Any *.pub file present (usable or not), or the directory unreadable: signatures required. */
  configured: boolean;
}

export interface SelectInput {
  candidates: readonly Candidate[];
  lastGood: ReadonlyMap<string, GoodCopy>;
  versions: ReadonlyMap<string, VersionRecord>;
  keys: KeyState;
  now: Date;
}

export interface Selection {
  /** What goes to mergePolicy. */
  profiles: LoadedProfile[];
  rejected: SourceStatus[];
  /** Candidates accepted this round, by key: they become last good copies once in force. */
  accepted: Map<string, GoodCopy>;
  /** Keys of the sources that exist now; last good copies of the others are dropped. */
  present: Set<string>;
  /** Things worth knowing that do not make the source fail (warnings, re-pushes). */
  notes: string[];
}

type Examined =
  | { ok: true; profile: Profile; warnings: string[]; copy: GoodCopy }
  | { ok: false; problems: string[]; profile?: Profile };

export const sha256Of = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Keys configured: whether signatures are required at all, and a problem when none is usable. */
export function keyProblem(keys: KeyState): string | undefined {
  if (keys.configured && keys.keys.length === 0) {
    return `${keys.dir} holds keys but none is usable: every profile is refused until a valid ed25519 public key is installed (fail closed)`;
  }
  return undefined;
}

/** Check one copy: readable, signed where required, valid, and not a rollback. */
export function examine(c: Candidate, keys: KeyState, versions: ReadonlyMap<string, VersionRecord>, now: Date): Examined {
  if (c.bytes === undefined) return { ok: false, problems: [c.readError ?? 'nothing to read'] };
  const bytes = c.bytes;
  if (bytes.length > MAX_PROFILE_BYTES) return { ok: false, problems: [`larger than ${MAX_PROFILE_BYTES} bytes; refused unread`] };

  let signedBy: string | undefined;
  if (keys.configured || c.requireSignature) {
    const sigName = c.key === REMOTE_KEY ? `${c.file}.sig` : `${c.file.split('/').pop() ?? c.file}.sig`;
    if (keys.keys.length === 0) {
      const why = keys.configured
        ? `no usable trusted key in ${keys.dir} to check its signature with (fail closed)`
        : `a pulled profile must be signed by a trusted key, and ${keys.dir} holds none: refusing to use it`;
      return { ok: false, problems: [why] };
    }
    if (c.sigError !== undefined) return { ok: false, problems: [`cannot read the signature ${sigName}: ${c.sigError}`] };
    if (c.sig === undefined) {
      return { ok: false, problems: [`not signed: ${sigName} is missing, and trusted keys are configured in ${keys.dir}`] };
    }
    const v = verify(bytes, c.sig, keys.keys);
    if (!v.ok) return { ok: false, problems: [`bad signature (${sigName}): ${v.reason}`] };
    signedBy = v.key;
  }

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, problems: ['not valid UTF-8 text'] };
  }
  const v = validateProfile(text, c.file, { now });
  if (!v.ok) return { ok: false, problems: v.problems.map((p) => (p.path === '' ? p.message : `${p.path}: ${p.message}`)) };
  const { profile } = v;
  const floor = versions.get(profile.id);
  if (floor && profile.version < floor.version) {
    return {
      ok: false,
      profile,
      problems: [`rollback from version ${floor.version} to ${profile.version} refused (profile ${profile.id}); publish version ${floor.version} or higher`],
    };
  }
  const copy: GoodCopy = {
    key: c.key,
    file: c.file,
    bytes,
    ...(c.sig ? { sig: c.sig } : {}),
    profileId: profile.id,
    version: profile.version,
    rules: profile.rules.length,
    sha256: sha256Of(bytes),
    ...(signedBy !== undefined ? { signedBy } : {}),
    savedAt: now.toISOString(),
  };
  const warnings = v.warnings.map((w) => `${c.file}: warning: ${w}`);
  return { ok: true, profile, warnings, copy };
}

const liveRules = (p: Profile, now: Date): number => (p.expires && Date.parse(p.expires) <= now.getTime() ? 0 : p.rules.length);

export function selectSources(input: SelectInput): Selection {
  const { keys, versions, lastGood, now } = input;
  const out: Selection = { profiles: [], rejected: [], accepted: new Map(), present: new Set(), notes: [] };

  const kp = keyProblem(keys);
  if (keys.problems.length || kp) out.rejected.push({ file: keys.dir, state: 'rejected', problems: [...keys.problems, ...(kp ? [kp] : [])] });

  interface Round {
    c: Candidate;
    result?: Examined;
  }
  const rounds: Round[] = input.candidates.map((c) => ({ c, ...(c.pending ? {} : { result: examine(c, keys, versions, now) }) }));
  for (const { c } of rounds) out.present.add(c.key);

  // The drop-all guard (see the top of this file).
  const accepted = rounds.filter((r) => r.result?.ok);
  const inForceBefore = [...lastGood.values()].reduce((n, g) => n + g.rules, 0);
  const rulesAfter = (refused: ReadonlySet<Round>): number =>
    rounds.reduce((n, r) => {
      if (r.result?.ok && !refused.has(r)) return n + liveRules(r.result.profile, now);
      const good = lastGood.get(r.c.key);
      return n + (good ? good.rules : 0);
    }, 0);
  const refusedEmpty = new Set<Round>();
  if (inForceBefore > 0 && rulesAfter(refusedEmpty) === 0) {
    for (const r of accepted) {
      if (!r.result?.ok) continue;
      const good = lastGood.get(r.c.key);
      const p = r.result.profile;
      if (!good || good.rules === 0 || p.rules.length > 0) continue;
      if (good.profileId === p.id && p.version > good.version) continue;
      refusedEmpty.add(r);
      r.result = {
        ok: false,
        profile: p,
        problems: [
          `would remove every rule on this machine (version ${good.version} in force had ${good.rules}, this copy has none); ` +
            `publish it as a version higher than ${good.version} if that is intended`,
        ],
      };
    }
  }

  const acceptedIds = new Set(rounds.flatMap((r) => (r.result?.ok ? [r.result.profile.id] : [])));
  for (const { c, result } of rounds) {
    if (result?.ok) {
      out.profiles.push({ file: c.file, profile: result.profile });
      out.accepted.set(c.key, result.copy);
      out.notes.push(...result.warnings);
      const good = lastGood.get(c.key);
      const floor = versions.get(result.profile.id);
      if (floor && floor.version === result.profile.version && floor.sha256 !== result.copy.sha256 && good?.sha256 !== result.copy.sha256) {
        out.notes.push(`${c.file}: profile ${result.profile.id} version ${result.profile.version} changed without a new version number (accepted as a re-push)`);
      }
      continue;
    }
    // Rejected, or nothing new yet: the last good copy of this source, if it still holds.
    const good = lastGood.get(c.key);
    let fallback: Examined | undefined;
    let fallbackProblem: string | undefined;
    if (good) {
      if (acceptedIds.has(good.profileId)) fallbackProblem = `profile ${good.profileId} now comes from another source`;
      else {
        fallback = examine({ key: c.key, file: c.file, bytes: good.bytes, ...(good.sig ? { sig: good.sig } : {}), requireSignature: c.requireSignature }, keys, versions, now);
        if (!fallback.ok) fallbackProblem = `its last good copy (version ${good.version}) no longer holds: ${fallback.problems.join('; ')}`;
      }
    }
    if (fallback?.ok) out.profiles.push({ file: c.file, profile: fallback.profile });
    if (!result) continue; // pending
    const tail = fallback?.ok
      ? `the last good copy (profile ${fallback.profile.id} version ${fallback.profile.version}) stays in force`
      : fallbackProblem
        ? `nothing from this source is in force: ${fallbackProblem}`
        : 'nothing from this source is in force';
    const p = result.profile;
    out.rejected.push({
      file: c.file,
      ...(p ? { profileId: p.id, version: p.version } : {}),
      state: 'rejected',
      problems: [...result.problems, tail],
    });
  }
  return out;
}
