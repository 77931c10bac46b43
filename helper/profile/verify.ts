// `tunnelgate profile verify FILE`: what the helper will check of FILE before it puts it in
// force, checked by the same code (sources.ts: examine) against the machine's own
// trusted-keys/ and, when the state dir can be read (root), the versions in force:
//
//   - owner and modes: FILE, FILE.sig and every directory above them owned by root and
//     writable by no one else (helper/kernel/files.ts: readTrusted); the helper runs as
//     root, so a file owned by the user who runs verify is reported too;
//   - signature: where trusted-keys/ holds any *.pub, FILE.sig must be an ed25519 signature
//     of FILE's exact bytes by one of them;
//   - the profile itself (validate.ts), and its version against the one in force for its id
//     (no rollback).
//
// Not judged: what depends on the other sources of the same round (another file with the
// same profile id, the drop-all guard of sources.ts): the helper decides that across files.
//
// verifyReport is pure (bytes and facts in, the report out); readVerifyInput does the reads.
import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import { readTrusted, UntrustedError } from '../kernel/files.js';
import { MAX_SIGNATURE_BYTES } from './pull.js';
import { loadTrustedKeys, verify } from './signing.js';
import { examine, MAX_PROFILE_BYTES } from './sources.js';
import type { Candidate, KeyState, VersionRecord } from './sources.js';
import { ProfileStore } from './store.js';

/** What `profile verify --json` prints (one document). */
export interface VerifyReport {
  file: string;
  /** True when the helper would put this copy in force. */
  ok: boolean;
  profile?: { id: string; version: number; rules: number };
  /** Owner and modes of FILE, FILE.sig and the directories above them. */
  ownership: { ok: boolean; problems: string[] };
  signature: {
    /** Whether the helper requires one (trusted-keys/ holds any *.pub). */
    required: boolean;
    /** good: by `key`; bad: does not verify; missing: no FILE.sig; unchecked: not required and no key to check with. */
    state: 'good' | 'bad' | 'missing' | 'unchecked';
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
  /** Every reason the helper would refuse it (empty when ok). */
  problems: string[];
  warnings: string[];
}

/** What verifyReport needs: the reads of readVerifyInput. */
export interface VerifyInput {
  file: string;
  bytes?: Buffer;
  readError?: string;
  sig?: Buffer;
  sigError?: string;
  /** Owner/mode problems found besides readTrusted's (a file owned by a user other than root). */
  ownerProblems: string[];
  keys: KeyState;
  /** undefined: the state dir could not be read. */
  versions?: ReadonlyMap<string, VersionRecord>;
  versionsNote?: string;
  now: Date;
}

function signatureOf(i: VerifyInput): VerifyReport['signature'] {
  const base = { required: i.keys.configured, keysDir: i.keys.dir };
  if (i.sigError !== undefined) return { ...base, state: 'bad', detail: `cannot read ${path.basename(i.file)}.sig: ${i.sigError}` };
  if (i.sig === undefined) return { ...base, state: i.keys.configured ? 'missing' : 'unchecked' };
  if (i.bytes === undefined) return { ...base, state: 'unchecked' };
  if (i.keys.keys.length === 0) return { ...base, state: 'unchecked', detail: `no usable key in ${i.keys.dir} to check it with` };
  const v = verify(i.bytes, i.sig, i.keys.keys);
  return v.ok ? { ...base, state: 'good', key: v.key } : { ...base, state: 'bad', detail: v.reason };
}

/**
 * The report for FILE: the helper's own examine() decides ok and its problems (with a
 * rollback floor only when VERSIONS is known); signature, ownership and version are the
 * details behind it. Pure.
 */
export function verifyReport(i: VerifyInput): VerifyReport {
  const candidate: Candidate = {
    key: `profiles.d/${path.basename(i.file)}`,
    file: i.file,
    requireSignature: false,
    ...(i.bytes !== undefined ? { bytes: i.bytes } : { readError: i.readError ?? 'cannot read' }),
    ...(i.sig !== undefined ? { sig: i.sig } : {}),
    ...(i.sigError !== undefined ? { sigError: i.sigError } : {}),
  };
  const result = examine(candidate, i.keys, i.versions ?? new Map(), i.now);
  const untrusted = [i.readError, i.sigError].filter((m): m is string => m !== undefined && /not trusted/.test(m));
  const ownership = [...untrusted, ...i.ownerProblems];
  const problems = [...new Set([...i.ownerProblems, ...(result.ok ? [] : result.problems)])];
  const profile = result.profile;
  const floor = profile ? i.versions?.get(profile.id) : undefined;
  const version: VerifyReport['version'] = i.versions
    ? { checked: true, ...(floor ? { inForce: floor.version } : {}), ...(profile && !floor ? { detail: `no version of profile ${profile.id} was in force yet` } : {}) }
    : { checked: false, detail: i.versionsNote ?? 'the state dir could not be read' };
  return {
    file: i.file,
    ok: problems.length === 0,
    ...(profile ? { profile: { id: profile.id, version: profile.version, rules: profile.rules.length } } : {}),
    ownership: { ok: ownership.length === 0, problems: ownership },
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
    if (st && st.uid !== 0) out.push(`${p} is owned by uid ${st.uid}, not root: the helper will not trust it (chown root)`);
    const up = path.dirname(p);
    if (up === p) return out;
    p = up;
  }
}

/**
 * Read FILE and FILE.sig as the helper reads profiles.d (trusted path checks), the keys of
 * KEYS_DIR, and the versions in force from STATE (when readable).
 */
export async function readVerifyInput(file: string, keysDir: string, state: string, now = new Date()): Promise<VerifyInput> {
  const abs = path.resolve(file);
  const input: VerifyInput = { file: abs, ownerProblems: await notRootOwned(abs), keys: await readKeys(keysDir), now };
  try {
    const bytes = await readTrusted(abs, MAX_PROFILE_BYTES);
    if (bytes === undefined) input.readError = 'cannot read: no such file';
    else input.bytes = bytes;
  } catch (e) {
    input.readError = e instanceof UntrustedError ? e.message : `cannot read: ${(e as Error).message}`;
  }
  try {
    const sig = await readTrusted(`${abs}.sig`, MAX_SIGNATURE_BYTES);
    if (sig !== undefined) input.sig = sig;
  } catch (e) {
    input.sigError = (e as Error).message;
  }
  const stored = await new ProfileStore(state).read().catch((e: Error) => ({ versions: undefined, problems: [e.message] }));
  const unreadable = stored.problems.find((p) => /EACCES|EPERM/.test(p));
  if (unreadable) input.versionsNote = `${state} cannot be read (run as root to check the version in force): ${unreadable}`;
  else if (stored.versions) input.versions = stored.versions;
  return input;
}

async function readKeys(dir: string): Promise<KeyState> {
  const { keys, problems } = await loadTrustedKeys(dir);
  return { dir, keys, problems, configured: keys.length > 0 || problems.length > 0 };
}
