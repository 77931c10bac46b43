// Version-independent app identities: Flatpak, Snap, AppImage, and the one parser of
// GKeyFiles (.flatpak-info, .desktop entries). Pure parsing and checks;
// helper/identity/gather.ts reads the files.
//
// Trust (see common/profile.ts BinaryMatcher): a user can fake any of these names inside a
// mount namespace of their own (unshare -Urm: bind a forged /.flatpak-info, mount over
// /snap/NAME, a FUSE mount with a forged source). So a name is believed only together with
// a kernel fact that ties the running executable to root-owned files of that app:
// - flatpak: .flatpak-info's app-path/runtime-path must be a system installation of that
//   very app id (/var/lib/flatpak/app/<id>/…/files), and /proc/PID/exe must be the same
//   inode as the file at that host path. Everything inside the sandbox shares the app id,
//   so `flatpak run --command=sh <id>` is that app too: flatpak's own model.
// - snap: the cgroup says snap.<name>.…, and /proc/PID/exe under /snap/<name>/ is the same
//   inode as the host's file there (snapd's read-only squashfs mount).
// - appimage: the exe lies in a read-only FUSE mount named after the image file and
//   whose owner (user_id, written by fusermount) is the process's user, and a live process
//   of that user runs the image file itself (its /proc/PID/exe, the runtime serving the
//   mount). The kernel does not say which process serves a FUSE mount, so a user who runs
//   the real image and, beside it, a FUSE server of their own with a forged source could
//   pass: appimage rules are as strong as "that user runs this image now". Document the
//   image path in a root-owned directory (checked: an image writable by non-root users is
//   refused).

/** A GKeyFile (.flatpak-info): group -> key -> value. Comments and blank lines skipped. */
export function parseKeyFile(text: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let group: Map<string, string> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const g = /^\[([^\]]+)\]$/.exec(line);
    if (g) {
      group = out.get(g[1] as string) ?? new Map<string, string>();
      out.set(g[1] as string, group);
      continue;
    }
    const eq = line.indexOf('=');
    if (!group || eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    if (!group.has(key)) group.set(key, line.slice(eq + 1).trim());
  }
  return out;
}

export interface FlatpakInfo {
  name: string;
  appPath?: string;
  runtimePath?: string;
}

export function parseFlatpakInfo(text: string): FlatpakInfo | undefined {
  const kf = parseKeyFile(text);
  const name = kf.get('Application')?.get('name');
  if (!name || !FLATPAK_ID.test(name)) return undefined;
  const inst = kf.get('Instance');
  const appPath = inst?.get('app-path');
  const runtimePath = inst?.get('runtime-path');
  return { name, ...(appPath ? { appPath } : {}), ...(runtimePath ? { runtimePath } : {}) };
}

export const FLATPAK_ID = /^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)+$/;

/** System-wide flatpak installation. Per-user ones are writable by their user: never trusted. */
export const FLATPAK_SYSTEM_DIR = '/var/lib/flatpak';

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Is this app-path the deployed files of app `id` in the system installation? */
export function isSystemAppPath(appPath: string, id: string): boolean {
  return new RegExp(`^${escapeRe(FLATPAK_SYSTEM_DIR)}/app/${escapeRe(id)}/[^/]+/[^/]+/[0-9a-f]+/files$`).test(appPath);
}

export function isSystemRuntimePath(runtimePath: string): boolean {
  return new RegExp(`^${escapeRe(FLATPAK_SYSTEM_DIR)}/runtime/[^/]+/[^/]+/[^/]+/[0-9a-f]+/files$`).test(runtimePath);
}

/**
 * The host path of a sandboxed executable: /app/… lives in app-path, /usr/… in
 * runtime-path. Anything else is not part of the app.
 */
export function flatpakHostPath(exe: string, info: FlatpakInfo): string | undefined {
  if (exe.startsWith('/app/') && info.appPath) return `${info.appPath}${exe.slice(4)}`;
  if (exe.startsWith('/usr/') && info.runtimePath) return `${info.runtimePath}${exe.slice(4)}`;
  return undefined;
}

/** Snap name from /proc/PID/cgroup text: the last component of the unified (or name=systemd) path. */
export function snapFromCgroup(text: string): string | undefined {
  const lines = text.split('\n').filter(Boolean);
  const pick = lines.find((l) => l.startsWith('0::')) ?? lines.find((l) => l.includes(':name=systemd:'));
  if (!pick) return undefined;
  const path = pick.slice(pick.indexOf(':', pick.indexOf(':') + 1) + 1);
  const last = path.split('/').pop() ?? '';
  const m = /^snap\.([a-z0-9](?:-?[a-z0-9])*)\.[^/]+\.(?:scope|service)$/.exec(last);
  return m?.[1];
}

/** Snap name from an executable path under /snap/<name>/<revision>/. */
export function snapFromExe(exe: string): string | undefined {
  const m = /^\/snap\/([a-z0-9](?:-?[a-z0-9])*)\/[^/]+\/./.exec(exe);
  return m?.[1];
}

export const SNAP_NAME = /^(?=.*[a-z])[a-z0-9](?:-?[a-z0-9])*$/;

export interface MountEntry {
  mountPoint: string;
  fstype: string;
  source: string;
  mountOptions: string[];
  superOptions: string[];
}

const unescapeMount = (s: string) => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const [fstype, source, superOpts] = line.slice(sep + 3).split(' ');
    if (left[4] === undefined || fstype === undefined) continue;
    out.push({
      mountPoint: unescapeMount(left[4]),
      fstype,
      source: unescapeMount(source ?? ''),
      mountOptions: (left[5] ?? '').split(','),
      superOptions: (superOpts ?? '').split(','),
    });
  }
  return out;
}

/** The mount a path lies on: the longest mount point above it, the later of equal ones (mounted on top). */
export function mountOf(mounts: readonly MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const under = mp === '/' || path === mp || path.startsWith(`${mp}/`);
    if (under && (!best || mp.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

/**
 * Does this mount look like the runtime's mount of `image`: FUSE, read-only, and named
 * after the image? libfuse names a mount after the server's argv[0], which the type-2
 * runtime sets to the image's real path: the source is that path or its base name, the
 * type `fuse.<base name>` (libfuse 2 and 3 differ). Returns the mount's owner (user_id,
 * written by fusermount), or undefined if it is not such a mount.
 * Written from the runtime's and libfuse's sources; no AppImage runs on the test machines.
 */
export function appImageMountOwner(m: MountEntry, image: string): number | undefined {
  if (m.fstype !== 'fuse' && !m.fstype.startsWith('fuse.')) return undefined;
  if (!m.mountOptions.includes('ro')) return undefined;
  const base = image.slice(image.lastIndexOf('/') + 1);
  const named = m.source === image || m.source === base || m.fstype === `fuse.${base}`;
  const owner = m.superOptions.find((o) => o.startsWith('user_id='));
  if (!named || !owner) return undefined;
  const uid = Number(owner.slice('user_id='.length));
  return Number.isInteger(uid) ? uid : undefined;
}

/** Cheap hot-path test: AppImage runtimes mount at $TMPDIR/.mount_<name>XXXXXX. */
export const mayBeAppImage = (exe: string) => exe.includes('/.mount_');

/** The [Desktop Entry] group of an application's .desktop file (unlocalised keys). */
export interface DesktopEntry {
  name: string;
  icon?: string;
  exec?: string;
  tryExec?: string;
  comment?: string;
  /** `X-Flatpak=`: the app id of a Flatpak export. */
  flatpak?: string;
  noDisplay: boolean;
}

/**
 * The [Desktop Entry] group of a .desktop file (a GKeyFile, read by parseKeyFile: the first
 * value of a key wins), or undefined if it is no application (Type other than Application,
 * Hidden=true, or no Name).
 */
export function parseDesktopEntry(text: string): DesktopEntry | undefined {
  const kv = parseKeyFile(text).get('Desktop Entry') ?? new Map<string, string>();
  const name = kv.get('Name');
  if (!name || (kv.get('Type') ?? 'Application') !== 'Application' || kv.get('Hidden') === 'true') return undefined;
  const icon = kv.get('Icon');
  const exec = kv.get('Exec');
  const tryExec = kv.get('TryExec');
  const comment = kv.get('Comment');
  const flatpak = kv.get('X-Flatpak');
  return {
    name,
    ...(icon ? { icon } : {}),
    ...(exec ? { exec } : {}),
    ...(tryExec ? { tryExec } : {}),
    ...(comment ? { comment } : {}),
    ...(flatpak && FLATPAK_ID.test(flatpak) ? { flatpak } : {}),
    noDisplay: kv.get('NoDisplay') === 'true',
  };
}

/** Split an Exec= value into arguments (the spec's quoting: "…" with \\ escapes). */
export function splitExec(exec: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let quoted = false;
  for (let i = 0; i < exec.length; i++) {
    const c = exec[i] as string;
    if (quoted) {
      if (c === '\\' && i + 1 < exec.length) cur += exec[++i];
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') {
      quoted = true;
      has = true;
    } else if (c === ' ' || c === '\t') {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
    }
  }
  if (has || cur) out.push(cur);
  return out;
}

/** The program an Exec= line starts: its first word, past `env VAR=value …`. */
export function execProgram(exec: string): string | undefined {
  const words = splitExec(exec);
  let i = 0;
  if (words[0] === 'env' || words[0] === '/usr/bin/env') {
    i = 1;
    while (i < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i] as string)) i++;
  }
  const w = words[i];
  return w && !w.startsWith('%') ? w : undefined;
}

/** The directories of .desktop entries, most important first (a file id found earlier hides later ones). */
export function desktopDirs(home: string | undefined): string[] {
  const user = home ? [`${home}/.local/share/applications`, `${home}/.local/share/flatpak/exports/share/applications`] : [];
  return [
    ...user.slice(0, 1),
    '/usr/local/share/applications',
    '/usr/share/applications',
    ...user.slice(1),
    `${FLATPAK_SYSTEM_DIR}/exports/share/applications`,
    '/var/lib/snapd/desktop/applications',
  ];
}

/** The home directory of uid in /etc/passwd text (the first line with that uid), or undefined. */
export function homeOfUid(passwdText: string, uid: number): string | undefined {
  for (const line of passwdText.split('\n')) {
    const f = line.split(':');
    if (f.length >= 7 && f[2] === String(uid) && /^\d+$/.test(f[2]) && f[5]?.startsWith('/')) return f[5];
  }
  return undefined;
}

/** The Flatpak app id an entry starts: `X-Flatpak=`, or `flatpak run … ID` in its Exec=. */
export function flatpakOfEntry(e: DesktopEntry): string | undefined {
  if (e.flatpak) return e.flatpak;
  const words = e.exec ? splitExec(e.exec) : [];
  if (!/(^|\/)flatpak$/.test(words[0] ?? '') || words[1] !== 'run') return undefined;
  const id = words.slice(2).find((w) => !w.startsWith('-') && !w.startsWith('@@') && !w.startsWith('%'));
  return id && FLATPAK_ID.test(id) ? id : undefined;
}

/** Sorts apps by name (case-insensitive), then by entry path: the order the page lists them in. */
export function byName<T extends { name: string; desktopEntry: string }>(a: T, b: T): number {
  return a.name.localeCompare(b.name, 'en', { sensitivity: 'base' }) || (a.desktopEntry < b.desktopEntry ? -1 : a.desktopEntry > b.desktopEntry ? 1 : 0);
}
