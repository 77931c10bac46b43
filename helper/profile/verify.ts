// `tunnelgate profile verify FILE`: what the helper would do with FILE, decided by the
// helper's own code: read.ts (which names it loads from ETC/profiles.d, the trusted-path
// reads of FILE and FILE.sig, the key state) and sources.ts examine() (signature, validity,
// rollback), against the machine's trusted-keys/ and, when the state dir can be read
// (root), the versions in force. The verdict:
//
//   - not-loaded: the helper never reads FILE: it is not in ETC/profiles.d (or ETC or
//     profiles.d does not exist), or its name is not `*.json` / is hidden;
//   - refuse: it would read FILE and reject it (owner and modes: FILE and every directory
//     above it owned by root and writable by no one else; a signature by a trusted key where
//     trusted-keys/ holds any *.pub; a valid profile; no rollback below the version in force);
//   - accept: it would put FILE in force.
//
// Not judged: what depends on the other sources of the same round (another file with the
// same profile id, the drop-all guard of sources.ts): the helper decides that across files.
//
// verifyReport is pure (bytes and facts in, the report out); readVerifyInput does the reads.
import { lstat, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { GONE, isProfileName, readCandidate, readKeys, sourceKey } from './read.js';
import { verify } from './signing.js';
import { examine } from './sources.js';
import type { Candidate, KeyState, VersionRecord } from './sources.js';
import { ProfileStore } from './store.js';

/** What `profile verify --json` prints (one document). */
export interface VerifyReport {
  file: string;
  /** What the helper would do with FILE (see the header). */
  verdict: 'accept' | 'refuse' | 'not-loaded';
  /** verdict is accept. */
  ok: boolean;
  profile?: { id: string; version: number; rules: number };
  /** Whether the helper reads FILE at all: a `*.json` entry of ETC/profiles.d. */
  location: { profilesDir: string; loaded: boolean; detail?: string };
  /** Owner and modes of FILE (and FILE.sig where a signature is required) and the directories above them; not checked when FILE does not exist. */
  ownership: { checked: boolean; ok: boolean; problems: string[] };
  signature: {
    /** Whether the helper requires one (trusted-keys/ holds any *.pub). */
    required: boolean;
    /**
     * not-required: no trusted key, the helper does not look at FILE.sig (`present` says whether one exists);
     * good: by `key`; bad: does not verify or cannot be read; missing: no FILE.sig; unchecked: required, but no usable key or no FILE to check.
     */
    state: 'not-required' | 'good' | 'bad' | 'missing' | 'unchecked';
    present: boolean;
    key?: string;
    detail?: string;
    keysDir: string;
  };
  version: {
    /** False when the state dir could not be read (not root): the rollback check was not made. */
    checked: boolean;
    inForce?: number;
    detail?: string;
  };
  /** Every reason the helper would not put it in force (empty when it would), each once. */
  problems: string[];
  warnings: string[];
}

/** What verifyReport needs: the reads of readVerifyInput. */
export interface VerifyInput {
  file: string;
  /** FILE and FILE.sig as the helper reads them (read.ts: readCandidate). */
  candidate: Candidate;
  location: VerifyReport['location'];
  /** Owner/mode problems found besides readTrusted's (a file owned by a user other than root). */
  ownerProblems: string[];
  keys: KeyState;
  /** undefined: the state dir could not be read. */
  versions?: ReadonlyMap<string, VersionRecord>;
  versionsNote?: string;
  now: Date;
}

const untrusted = (m: string | undefined): m is string => m !== undefined && /not trusted/.test(m);

function signatureOf(i: VerifyInput): VerifyReport['signature'] {
  const c = i.candidate;
  const base = { required: i.keys.configured, keysDir: i.keys.dir, present: c.sig !== undefined || c.sigError !== undefined };
  // The helper looks at FILE.sig only where signatures are required (sources.ts examine).
  if (!i.keys.configured) return { ...base, state: 'not-required' };
  if (i.keys.keys.length === 0) return { ...base, state: 'unchecked', detail: `no usable key in ${i.keys.dir} (every profile is refused: fail closed)` };
  if (c.sigError !== undefined) return { ...base, state: 'bad', detail: `cannot read ${path.basename(i.file)}.sig: ${c.sigError}` };
  if (c.sig === undefined) return { ...base, state: 'missing' };
  if (c.bytes === undefined) return { ...base, state: 'unchecked', detail: 'no profile to check it against' };
  const v = verify(c.bytes, c.sig, i.keys.keys);
  return v.ok ? { ...base, state: 'good', key: v.key } : { ...base, state: 'bad', detail: v.reason };
}

/**
 * The report for FILE: the helper's own examine() decides whether it would be accepted and
 * why not (with a rollback floor only when VERSIONS is known), the location whether it is
 * read at all; signature, ownership and version are the details behind it. Pure.
 */
export function verifyReport(i: VerifyInput): VerifyReport {
  const c = i.candidate;
  const result = examine(c, i.keys, i.versions ?? new Map(), i.now);
  const missing = c.readError === GONE;
  const sigCounts = i.keys.configured;
  const ownership = [...new Set([...[c.readError, ...(sigCounts ? [c.sigError] : [])].filter(untrusted), ...i.ownerProblems])];
  const problems = [
    ...new Set([
      ...(i.location.loaded ? [] : [i.location.detail ?? 'the helper does not read this file']),
      ...(missing ? [`${i.file} does not exist`] : []),
      ...i.ownerProblems,
      ...(result.ok || missing ? [] : result.problems),
    ]),
  ];
  const profile = result.profile;
  const floor = profile ? i.versions?.get(profile.id) : undefined;
  const version: VerifyReport['version'] = i.versions
    ? { checked: true, ...(floor ? { inForce: floor.version } : {}), ...(profile && !floor ? { detail: `no version of profile ${profile.id} was in force yet` } : {}) }
    : { checked: false, detail: i.versionsNote ?? 'the state dir could not be read' };
  const verdict = !i.location.loaded ? 'not-loaded' : problems.length ? 'refuse' : 'accept';
  return {
    file: i.file,
    verdict,
    ok: verdict === 'accept',
    ...(profile ? { profile: { id: profile.id, version: profile.version, rules: profile.rules.length } } : {}),
    location: i.location,
    ownership: { checked: !missing, ok: !missing && ownership.length === 0, problems: ownership },
    signature: signatureOf(i),
    version,
    problems,
    warnings: result.ok ? result.warnings : [],
  };
}

/** Owner problems readTrusted lets pass when verify is run by FILE's owner (it trusts its own uid): the helper trusts root only. */
async function notRootOwned(file: string): Promise<string[]> {
  if ((process.geteuid?.() ?? 0) === 0) return [];
  const out: string[] = [];
  let p = await realpath(file).catch(() => path.resolve(file));
  for (;;) {
    const st = await lstat(p).catch(() => undefined);
    if (st && st.uid !== 0) out.push(`${p} is owned by uid ${st.uid}, not root: not trusted (chown root)`);
    const up = path.dirname(p);
    if (up === p) return out;
    p = up;
  }
}

/**
 * Whether the helper with configuration dir ETC reads FILE at all: FILE's directory is
 * ETC/profiles.d (compared after resolving symbolic links of the directories; FILE itself
 * may be a link, as the helper opens profiles.d/NAME and follows it) and NAME is one it loads.
 */
export async function locate(file: string, etc: string): Promise<VerifyReport['location']> {
  const dir = path.join(etc, 'profiles.d');
  const no = (detail: string) => ({ profilesDir: dir, loaded: false, detail });
  if (!(await stat(etc).catch(() => undefined))?.isDirectory()) return no(`${etc} does not exist: a helper with this configuration dir loads no profile (give the one it runs with: --etc or TUNNELGATE_ETC)`);
  const real = await realpath(dir).catch(() => undefined);
  if (real === undefined) return no(`${dir} does not exist: the helper loads no profile from it`);
  const here = await realpath(path.dirname(file)).catch(() => path.dirname(file));
  if (here !== real) return no(`${file} is not in ${dir}: the helper loads only the *.json files there and never reads this one (install it there)`);
  const name = path.basename(file);
  if (!isProfileName(name)) return no(`${name}: the helper loads only names ending in .json that do not start with a dot (editors' temporary files)`);
  return { profilesDir: dir, loaded: true };
}

/**
 * Read FILE and FILE.sig as the helper reads profiles.d (read.ts: readCandidate), where FILE
 * is (locate), the keys of ETC/trusted-keys, and the versions in force from STATE (when readable).
 */
export async function readVerifyInput(file: string, etc: string, state: string, now = new Date()): Promise<VerifyInput> {
  const abs = path.resolve(file);
  const [location, ownerProblems, keys, candidate] = await Promise.all([
    locate(abs, etc),
    notRootOwned(abs),
    readKeys(path.join(etc, 'trusted-keys')),
    readCandidate(abs, sourceKey(path.basename(abs))),
  ]);
  const input: VerifyInput = { file: abs, candidate, location, ownerProblems, keys, now };
  const stored = await new ProfileStore(state).read().catch((e: Error) => ({ versions: undefined, problems: [e.message] }));
  const unreadable = stored.problems.find((p) => /EACCES|EPERM/.test(p));
  if (unreadable) input.versionsNote = `${state} cannot be read (run as root to check the version in force): ${unreadable}`;
  else if (stored.versions) input.versions = stored.versions;
  return input;
}
