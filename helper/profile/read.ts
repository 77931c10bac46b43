// How the helper reads profiles.d and trusted-keys/: which names it loads, the trusted-path
// reads of a profile and its signature, and the key state that decides whether signatures
// are required. One copy, used by the helper (core/profile-sources.ts) and by
// `tunnelgate profile verify` (verify.ts), so that verify says what the helper would do.
import { listTrusted, readTrusted, UntrustedError } from '../kernel/files.js';
import { MAX_SIGNATURE_BYTES } from './pull.js';
import { loadTrustedKeys } from './signing.js';
import type { Candidate, KeyState } from './sources.js';
import { MAX_PROFILE_BYTES } from './sources.js';

/**
 * Whether the helper loads a file of this name from profiles.d: `*.json`, not hidden (hidden
 * files are the temporary files of editors and config management, mid-write). Pure.
 */
export const isProfileName = (name: string): boolean => name.endsWith('.json') && !name.startsWith('.');

/** The source key of profiles.d/NAME (sources.ts: Candidate.key). */
export const sourceKey = (name: string): string => `profiles.d/${name}`;

/** The profile files of DIR the helper loads, sorted; undefined when DIR does not exist. @throws UntrustedError, or the read error */
export async function listProfiles(dir: string): Promise<string[] | undefined> {
  const all = await listTrusted(dir);
  return all?.filter(isProfileName).sort();
}

/** The keys of DIR; where any *.pub file exists (usable or not), or DIR cannot be read, signatures are required: fail closed. */
export async function readKeys(dir: string): Promise<KeyState> {
  const { keys, problems } = await loadTrustedKeys(dir);
  return { dir, keys, problems, configured: keys.length > 0 || problems.length > 0 };
}

/**
 * A profiles.d file and its FILE.sig, read with the checks that do not need the contents:
 * trusted path (owner root, writable by no one else, up to /; helper/kernel/files.ts).
 * A missing file is `readError: 'cannot read: it is gone'`.
 */
export async function readCandidate(file: string, key: string): Promise<Candidate> {
  const base = { key, file, requireSignature: false };
  let bytes: Buffer | undefined;
  try {
    bytes = await readTrusted(file, MAX_PROFILE_BYTES);
  } catch (e) {
    return { ...base, readError: e instanceof UntrustedError ? e.message : `cannot read: ${(e as Error).message}` };
  }
  if (bytes === undefined) return { ...base, readError: GONE };
  try {
    const sig = await readTrusted(`${file}.sig`, MAX_SIGNATURE_BYTES);
    return sig === undefined ? { ...base, bytes } : { ...base, bytes, sig };
  } catch (e) {
    return { ...base, bytes, sigError: (e as Error).message };
  }
}

/** readCandidate's readError for a file that does not exist. */
export const GONE = 'cannot read: it is gone';
