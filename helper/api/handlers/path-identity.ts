// What a process of a binary would be, from its path alone (`explain PATH`, `allow`): the
// facts the gate gathers from /proc for a live process (helper/identity/gather.ts), read
// here from the file at the path, so that explain, allow and the gate agree. Reads only the
// file, its directories and the package database; the hash only if the caller may read the
// file. What only a live process shows (environment, tracer, script argument, AppImage
// mount) is said in the notes instead.
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import type { Stats } from 'node:fs';
import type { Caller } from '../../../common/api.js';
import type { Policy } from '../../../common/policy.js';
import { isSystemAppPath, snapFromExe } from '../../identity/apps.js';
import { md5Of, verifiedPackages } from '../../identity/package.js';
import { ancestry, pathWritableByNonRoot } from '../../identity/writable.js';
import { candidateRules, needsHash, packagesNamed } from '../../policy/decide.js';
import type { ProcessIdentity } from '../../policy/decide.js';
import { readableBy } from '../authorization.js';

/** How identity facts are read; the package check is replaceable for tests. */
export interface PathFactsDeps {
  sha256: (file: string) => Promise<string>;
  packages?: (named: readonly string[], file: string) => Promise<{ packages: string[]; notes: string[] }>;
}

/** sha256 of a file's bytes, streamed (hex). */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

const defaultPackages = (named: readonly string[], file: string) => verifiedPackages(named, file, () => md5Of(file));

/** A Flatpak app id from a host path in the system installation (…/app/ID/ARCH/BRANCH/COMMIT/files/…). */
export function flatpakOfHostPath(file: string): string | undefined {
  const m = /^\/var\/lib\/flatpak\/app\/([^/]+)\/[^/]+\/[^/]+\/[0-9a-f]+\/files\//.exec(file);
  const id = m?.[1];
  if (!id) return undefined;
  const files = file.slice(0, file.indexOf('/files/') + '/files'.length);
  return isSystemAppPath(files, id) ? id : undefined;
}

async function exeUnsafeOf(file: string): Promise<string | undefined> {
  const paths = ancestry(file);
  const stats = await Promise.all(paths.map((p) => fs.stat(p).catch(() => undefined)));
  if (stats.some((s) => s === undefined)) return `${file} cannot be examined`;
  return pathWritableByNonRoot(stats.map((s) => ({ mode: (s as Stats).mode, uid: (s as Stats).uid, gid: (s as Stats).gid })), paths);
}

/**
 * The identity decide() sees for a process of uid running `file` (which the caller has
 * lstat'ed: `st`, undefined if absent): sha256 (where a rule pins one and the caller may
 * read the file), packages named by the policy that own the file with its bytes, exeUnsafe
 * (writable by non-root), a Flatpak app id (system installation) or a snap name (under
 * /snap/NAME/). Notes say what could not be established.
 */
export async function pathIdentity(policy: Policy, file: string, st: Stats | undefined, uid: number, caller: Caller, deps: PathFactsDeps): Promise<{ id: ProcessIdentity; notes: string[] }> {
  const id: ProcessIdentity = { exe: file, exeDeleted: false, uid };
  const notes: string[] = [];
  if (!st?.isFile()) return { id, notes };
  const rules = candidateRules(policy, file);
  const named = packagesNamed(policy).filter((pkg) => rules.some((r) => r.binary?.package === pkg));
  if (named.length) {
    const v = await (deps.packages ?? defaultPackages)(named, file);
    if (v.packages.length) id.packages = v.packages;
    notes.push(...v.notes);
  }
  if (rules.some((r) => r.binary?.path !== undefined && r.binary.sha256 === undefined)) {
    const unsafe = await exeUnsafeOf(file);
    if (unsafe) id.exeUnsafe = unsafe;
  }
  if (needsHash(policy, file)) {
    if (readableBy(st, caller)) id.sha256 = await deps.sha256(file).catch(() => undefined);
    else notes.push(`${file} is not readable by uid ${caller.uid}: rules that pin its hash cannot be checked`);
  }
  const flatpak = flatpakOfHostPath(file);
  if (flatpak) {
    id.flatpak = flatpak;
    notes.push(`${file} is a file of Flatpak app ${flatpak}; in its sandbox the app runs it as /app/…`);
  }
  const snap = snapFromExe(file);
  if (snap) id.snap = snap;
  if (rules.some((r) => r.binary?.script !== undefined)) notes.push('script rules match a running interpreter by its script: explain the PID of one to see whether its script counts');
  if (rules.some((r) => r.binary?.appimage !== undefined)) notes.push('AppImage rules match a running image by its mount: explain the PID of one');
  return { id, notes };
}
