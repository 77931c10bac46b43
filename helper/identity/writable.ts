// Who could have written a file, from stat-like facts. Pure.
//
// A path can vouch for a program only if no non-root user could have put other bytes
// there: not by writing the file (owner, group or other write bits; an owner can always
// chmod, so a file owned by a non-root user counts as writable by them), and not by
// replacing it (write access to its directory, or to any directory above: rename the
// subtree away and put another in its place). A sticky directory (/tmp) lets a user
// rename only what they own, so a root-owned entry in it is safe.
// Group write with gid 0 counts as root only (the root group has no other members on the
// systems we target); any other group counts as non-root users.

export interface StatLike {
  mode: number;
  uid: number;
  gid: number;
}

export interface Cred {
  uid: number;
  /** Primary and supplementary groups. */
  gids: readonly number[];
}

const S_ISVTX = 0o1000;

export function fmtMode(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}

/** Why non-root users could write this file's bytes, or undefined. */
export function fileWritableByNonRoot(st: StatLike): string | undefined {
  if (st.uid !== 0) return `owned by uid ${st.uid}`;
  if (st.mode & 0o002) return `writable by every user (mode ${fmtMode(st.mode)})`;
  if (st.mode & 0o020 && st.gid !== 0) return `writable by group ${st.gid} (mode ${fmtMode(st.mode)})`;
  return undefined;
}

/** Why non-root users could replace `entry` inside directory `dir`, or undefined. */
export function dirLetsNonRootReplace(dir: StatLike, entry: StatLike): string | undefined {
  const sticky = (dir.mode & S_ISVTX) !== 0;
  if (dir.uid !== 0) return `its directory is owned by uid ${dir.uid}`;
  const rootEntry = entry.uid === 0;
  if (dir.mode & 0o002 && !(sticky && rootEntry)) return `its directory is writable by every user (mode ${fmtMode(dir.mode)}${sticky ? '' : ', no sticky bit'})`;
  if (dir.mode & 0o020 && dir.gid !== 0 && !(sticky && rootEntry)) return `its directory is writable by group ${dir.gid} (mode ${fmtMode(dir.mode)})`;
  return undefined;
}

/**
 * The whole chain: `chain[0]` is the file, `chain[i+1]` the directory holding `chain[i]`,
 * up to /. Paths name the entries in the same order, for the reason text.
 */
export function pathWritableByNonRoot(chain: readonly StatLike[], paths: readonly string[]): string | undefined {
  const file = chain[0];
  if (!file) return 'cannot be examined';
  const own = fileWritableByNonRoot(file);
  if (own) return `${paths[0]} is ${own}`;
  for (let i = 1; i < chain.length; i++) {
    const why = dirLetsNonRootReplace(chain[i] as StatLike, chain[i - 1] as StatLike);
    if (why) return `${paths[0]} can be replaced: ${paths[i] ?? 'a directory above it'} (${why.replace(/^its directory is /, '')})`;
  }
  return undefined;
}

/** Can this user (with these groups) write the file's bytes? Root can write anything. */
export function fileWritableBy(st: StatLike, who: Cred): boolean {
  if (who.uid === 0) return true;
  if (st.uid === who.uid) return true; // the owner can chmod
  if (who.gids.includes(st.gid)) return (st.mode & 0o020) !== 0;
  return (st.mode & 0o002) !== 0;
}

/** Can this user rename or replace `entry` in `dir`? */
export function dirLetsReplace(dir: StatLike, entry: StatLike, who: Cred): boolean {
  if (who.uid === 0) return true;
  const canWrite = dir.uid === who.uid || (who.gids.includes(dir.gid) ? (dir.mode & 0o020) !== 0 : (dir.mode & 0o002) !== 0);
  if (!canWrite) return false;
  return !(dir.mode & S_ISVTX) || entry.uid === who.uid || dir.uid === who.uid;
}

/**
 * A script is accepted only if neither the process's own user (unless root) nor any other
 * non-root user could have changed it. Returns the reason it is not, or undefined.
 */
export function scriptUnsafe(chain: readonly StatLike[], paths: readonly string[], who: Cred): string | undefined {
  const file = chain[0];
  if (!file) return 'cannot be examined';
  if (who.uid !== 0) {
    if (fileWritableBy(file, who)) return `${paths[0]} is writable by the process's user (uid ${who.uid})`;
    for (let i = 1; i < chain.length; i++) {
      if (dirLetsReplace(chain[i] as StatLike, chain[i - 1] as StatLike, who)) {
        return `${paths[0]} can be replaced by the process's user (uid ${who.uid}) through ${paths[i] ?? 'a directory above it'}`;
      }
    }
  }
  return pathWritableByNonRoot(chain, paths);
}

/** `/a/b/c` -> [`/a/b/c`, `/a/b`, `/a`, `/`]. */
export function ancestry(path: string): string[] {
  const out = [path];
  let p = path;
  while (p !== '/' && p !== '') {
    p = p.slice(0, p.lastIndexOf('/')) || '/';
    out.push(p);
  }
  return out;
}
