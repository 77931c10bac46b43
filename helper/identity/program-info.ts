// What a prompt shows about a program: its name and icon from a .desktop entry whose Exec=
// (or TryExec=) runs that binary, the user's login name, and the process's facts from /proc.
//
// The helper runs as root and reads files in users' homes here, so a user's own entries are
// read only if they are regular files owned by that user, opened without following a final
// symlink and at most 64 KiB: a user can make a prompt of their own show any name, but cannot
// make the helper read anything they could not read themselves. The prompt always shows the
// real path next to the name.
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import type { DeniedAttempt } from '../../common/attempts.js';
import type { PromptProgram } from '../../common/api.js';
import type { HashCache } from '../kernel/proc.js';
import { readCmdline, readProc } from '../kernel/proc.js';
import { execProgram, parseDesktopEntry } from './apps.js';
import type { DesktopEntry } from './apps.js';

const MAX_ENTRY_BYTES = 64 * 1024;
/** Re-read a directory at most this often even if its mtime did not change (entries edited in place). */
const DIR_MAX_AGE_MS = 60_000;

export const SYSTEM_APPLICATION_DIRS = [
  '/usr/share/applications',
  '/usr/local/share/applications',
  '/var/lib/flatpak/exports/share/applications',
  '/var/lib/snapd/desktop/applications',
];
const USER_APPLICATION_DIRS = ['.local/share/applications', '.local/share/flatpak/exports/share/applications'];
/** Where a bare Exec= program name is looked up (the users' PATH is not known to the helper). */
const SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/games', '/usr/local/games', '/snap/bin'];

interface IndexedEntry extends DesktopEntry {
  file: string;
  /** The programs it names, resolved to real paths. */
  programs: string[];
}

interface DirIndex {
  mtimeMs: number;
  readAt: number;
  entries: IndexedEntry[];
}

export interface PasswdEntry {
  name: string;
  home: string;
}

/** uid -> login name and home, from /etc/passwd text. */
export function parsePasswd(text: string): Map<number, PasswdEntry> {
  const out = new Map<number, PasswdEntry>();
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || !/^\d+$/.test(f[2] as string)) continue;
    const uid = Number(f[2]);
    if (!out.has(uid)) out.set(uid, { name: f[0] as string, home: f[5] as string });
  }
  return out;
}

export class ProgramInfo {
  private readonly dirs = new Map<string, DirIndex>();
  private passwd: { mtimeMs: number; map: Map<number, PasswdEntry> } | undefined;

  constructor(
    private readonly opts: {
      systemDirs?: string[];
      passwdFile?: string;
      now?: () => number;
    } = {},
  ) {}

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  async user(uid: number): Promise<PasswdEntry | undefined> {
    const file = this.opts.passwdFile ?? '/etc/passwd';
    const st = await fs.stat(file).catch(() => undefined);
    if (!st) return undefined;
    if (!this.passwd || this.passwd.mtimeMs !== st.mtimeMs) {
      this.passwd = { mtimeMs: st.mtimeMs, map: parsePasswd(await fs.readFile(file, 'utf8').catch(() => '')) };
    }
    return this.passwd.map.get(uid);
  }

  async userName(uid: number): Promise<string> {
    return (await this.user(uid))?.name ?? `uid ${uid}`;
  }

  /** Name and icon of `exe` for user `uid`: the user's own entries first, then the system's. */
  async program(uid: number, exe: string): Promise<PromptProgram> {
    const home = (await this.user(uid))?.home;
    const userDirs = home && home !== '/' ? USER_APPLICATION_DIRS.map((d) => ({ dir: path.join(home, d), owner: uid })) : [];
    const systemDirs = (this.opts.systemDirs ?? SYSTEM_APPLICATION_DIRS).map((dir) => ({ dir, owner: undefined }));
    let hidden: IndexedEntry | undefined;
    for (const { dir, owner } of [...userDirs, ...systemDirs]) {
      for (const e of await this.index(dir, owner)) {
        if (!e.programs.includes(exe)) continue;
        if (!e.noDisplay) return programOf(e);
        hidden ??= e;
      }
    }
    return hidden ? programOf(hidden) : { name: path.basename(exe) };
  }

  private async index(dir: string, owner: number | undefined): Promise<IndexedEntry[]> {
    const key = `${owner ?? 'system'}:${dir}`;
    const st = await fs.stat(dir).catch(() => undefined);
    if (!st?.isDirectory()) {
      this.dirs.delete(key);
      return [];
    }
    const cached = this.dirs.get(key);
    if (cached && cached.mtimeMs === st.mtimeMs && this.now() - cached.readAt < DIR_MAX_AGE_MS) return cached.entries;
    const names = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.desktop')).sort();
    const entries: IndexedEntry[] = [];
    for (const n of names.slice(0, 4096)) {
      const file = path.join(dir, n);
      const text = await readEntryFile(file, owner);
      const entry = text === undefined ? undefined : parseDesktopEntry(text);
      if (!entry) continue;
      const programs = new Set<string>();
      for (const p of [entry.tryExec, entry.exec && execProgram(entry.exec)]) {
        const real = p ? await resolveProgram(p) : undefined;
        if (real) programs.add(real);
      }
      if (programs.size) entries.push({ ...entry, file, programs: [...programs] });
    }
    this.dirs.set(key, { mtimeMs: st.mtimeMs, readAt: this.now(), entries });
    return entries;
  }
}

function programOf(e: IndexedEntry): PromptProgram {
  return { name: e.name, ...(e.icon ? { icon: e.icon } : {}), desktopEntry: e.file };
}

/** A .desktop file's text; for a user's directory only a regular file that user owns. */
async function readEntryFile(file: string, owner: number | undefined): Promise<string | undefined> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const st = await fh.stat();
    if (!st.isFile() || st.size > MAX_ENTRY_BYTES) return undefined;
    if (owner !== undefined && st.uid !== owner) return undefined;
    return await fh.readFile('utf8');
  } catch {
    return undefined;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** An Exec= program as the real path the kernel would report for it. */
async function resolveProgram(p: string): Promise<string | undefined> {
  const candidates = p.startsWith('/') ? [p] : p.includes('/') ? [] : SEARCH_PATH.map((d) => path.join(d, p));
  for (const c of candidates) {
    const real = await fs.realpath(c).catch(() => undefined);
    if (real) return real;
  }
  return undefined;
}

/** What the prompt manager needs to know about the process behind an attempt. */
export interface ProcessFacts {
  pid?: number;
  startTime?: string;
  exe: string;
  sha256?: string;
  cmdline?: string[];
  parents: Array<{ pid: number; exe: string }>;
  program: PromptProgram;
  user: string;
}

/**
 * Facts about an attempt's process, from /proc (the kernel's answer). A process that is gone
 * (or whose pid now runs something else) keeps what the attempt recorded, without a pid.
 */
export async function inspectAttempt(a: DeniedAttempt, info: ProgramInfo, hashes: HashCache): Promise<ProcessFacts | undefined> {
  let pid = a.pid;
  let startTime: string | undefined;
  let exe = a.exe;
  if (pid !== undefined) {
    const p = await readProc(pid).catch(() => undefined);
    if (p && p.uid === a.uid && (exe === undefined || exe === p.exe)) {
      exe = p.exe;
      startTime = p.startTime;
    } else {
      pid = undefined;
    }
  }
  if (exe === undefined) return undefined;
  const sha256 = await hashes.sha256(pid !== undefined ? `/proc/${pid}/exe` : exe).catch(() => undefined);
  const cmdline = a.cmdline ?? (pid !== undefined ? await readCmdline(pid).catch(() => undefined) : undefined);
  const [program, user] = await Promise.all([info.program(a.uid, exe), info.userName(a.uid)]);
  return {
    ...(pid !== undefined ? { pid } : {}),
    ...(startTime !== undefined ? { startTime } : {}),
    exe,
    ...(sha256 ? { sha256 } : {}),
    ...(cmdline ? { cmdline } : {}),
    parents: a.parents ?? [],
    program,
    user,
  };
}
