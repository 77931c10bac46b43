// `apps`: the installed applications a caller can start, from .desktop entries (names,
// icons, the program each starts), for "Add an app…" in the tray and `allow {app}`.
// Parsing is helper/identity/apps.ts's (the one GKeyFile parser); this reads the files.
//
// The helper is root and reads the caller's own ~/.local/share/applications: the home
// comes from the caller's uid (SO_PEERCRED) through the passwd file, never from the
// request. An entry is read only if it is a regular file the caller may read, which lies
// in the caller's home or in a system directory (a symlink in the home cannot make root
// read a file elsewhere), at most 64 KiB, opened without following a last symlink and
// without blocking (a FIFO is refused, not waited on).
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Caller, InstalledApp } from '../../../common/api.js';
import { byName, desktopDirs, execProgram, flatpakOfEntry, homeOfUid, parseDesktopEntry } from '../../identity/apps.js';
import type { DesktopEntry } from '../../identity/apps.js';
import { readableBy } from '../authorization.js';
import type { Handlers } from '../server.js';

const MAX_ENTRY_BYTES = 64 * 1024;
/** Where a program named without a directory in Exec= is looked up (a desktop session's PATH). */
const SEARCH_PATH = ['/usr/local/bin', '/usr/bin', '/bin', '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/games', '/usr/local/games'];
/** Entries outside the caller's home must lie under these (symlinked Flatpak and snap exports included). */
const SYSTEM_ROOTS = ['/usr/', '/var/lib/flatpak/', '/var/lib/snapd/', '/opt/', '/snap/'];

/** Where the apps handler reads from; every field has the real default. */
export interface AppsDeps {
  /** The passwd database's text (default: the file named by TUNNELGATE_PASSWD in root's environment, for labs, or /etc/passwd). */
  passwd?: () => Promise<string>;
  /** The entry directories for a home (default: helper/identity/apps.ts desktopDirs). */
  dirs?: (home: string | undefined) => string[];
  /** Where entries outside the caller's home may lie (default SYSTEM_ROOTS). */
  systemRoots?: readonly string[];
}

const under = (p: string, root: string) => p.startsWith(root.endsWith('/') ? root : `${root}/`);

/** The text of an entry the caller may read, or undefined (see the file's comment). */
async function readEntry(file: string, caller: Caller, home: string | undefined, roots: readonly string[]): Promise<string | undefined> {
  const real = await fs.realpath(file).catch(() => undefined);
  if (!real || !real.endsWith('.desktop')) return undefined;
  if (!roots.some((r) => under(real, r)) && !(home && under(real, home))) return undefined;
  const fh = await fs.open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => undefined);
  if (!fh) return undefined;
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > MAX_ENTRY_BYTES || !readableBy(st, caller)) return undefined;
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

/** The executable a program word of Exec= or TryExec= names, symlinks resolved (the kernel's view), or undefined. */
export async function resolveProgram(word: string): Promise<string | undefined> {
  const candidates = word.startsWith('/') ? [word] : word.includes('/') ? [] : SEARCH_PATH.map((d) => path.join(d, word));
  for (const c of candidates) {
    const real = await fs.realpath(c).catch(() => undefined);
    const st = real ? await fs.stat(real).catch(() => undefined) : undefined;
    if (real && st?.isFile() && (st.mode & 0o111) !== 0) return real;
  }
  return undefined;
}

/** One listed app from a parsed entry, or undefined where TryExec= names no installed program. */
async function appOf(file: string, e: DesktopEntry): Promise<InstalledApp | undefined> {
  if (e.tryExec !== undefined && !(await resolveProgram(e.tryExec))) return undefined;
  const flatpak = flatpakOfEntry(e);
  const word = e.exec !== undefined ? execProgram(e.exec) : undefined;
  // A snap's Exec= starts /snap/bin/NAME, a link to snapd's launcher: not the app's program.
  const exe = flatpak || !word || word.startsWith('/snap/bin/') ? undefined : await resolveProgram(word);
  return {
    desktopEntry: file,
    name: e.name,
    ...(e.icon ? { icon: e.icon } : {}),
    ...(exe ? { exe } : {}),
    ...(e.comment ? { comment: e.comment } : {}),
    ...(flatpak ? { flatpak } : {}),
  };
}

/**
 * The installed applications `caller` can start: every entry of the directories (the
 * caller's own first; a desktop file id seen once hides the same id further on, Hidden
 * entries included, as the XDG spec says), NoDisplay and Hidden ones left out, sorted by
 * name. Unreadable directories and entries are skipped.
 */
export async function installedApps(caller: Caller, deps: AppsDeps = {}): Promise<InstalledApp[]> {
  const passwd = deps.passwd ?? (() => fs.readFile(process.env['TUNNELGATE_PASSWD'] || '/etc/passwd', 'utf8'));
  const home = homeOfUid(await passwd().catch(() => ''), caller.uid);
  const realHome = home ? await fs.realpath(home).catch(() => undefined) : undefined;
  const seen = new Set<string>();
  const apps: InstalledApp[] = [];
  for (const dir of (deps.dirs ?? desktopDirs)(home)) {
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.endsWith('.desktop')).sort()) {
      if (seen.has(name)) continue;
      const file = path.join(dir, name);
      const text = await readEntry(file, caller, realHome, deps.systemRoots ?? SYSTEM_ROOTS);
      if (text === undefined) continue;
      seen.add(name);
      const e = parseDesktopEntry(text);
      if (!e || e.noDisplay) continue;
      const app = await appOf(file, e);
      if (app) apps.push(app);
    }
  }
  return apps.sort(byName);
}

/** The apps handler (any caller: each sees the entries they can read). */
export function appsHandlers(deps: AppsDeps = {}): Pick<Handlers, 'apps'> {
  return {
    async apps(caller) {
      return { apps: await installedApps(caller, deps) };
    },
  };
}
