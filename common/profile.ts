// Profile format v1, as fixed by PRODUCT.md. These types describe a profile that
// has passed validation (helper/profile/validate.ts); nothing else constructs them.

export const PROFILE_SCHEMA = 'tunnelgate/profile@1';

export type Proto = 'tcp' | 'udp';
export type Mode = 'enforce' | 'audit';
export type Action = 'allow' | 'deny';

/** A tunnel destination: one CIDR, optionally narrowed to ports and a protocol. */
export interface Destination {
  cidr: string;
  ports?: number[];
  proto?: Proto;
}

/**
 * How a rule names a program. Exactly one of `path`, `package`, `flatpak`, `snap` or
 * `appimage` is given; `sha256` and `script` only go with `path`.
 *
 * Extensions of v1 (issue 4; PRODUCT.md allows extending). The last three name apps whose
 * executable path changes with every version, and each is established from what the
 * kernel (and flatpak/snapd, as root) provide, never from what the process says
 * (helper/identity/):
 * - `flatpak`: a Flatpak app id (`org.example.App`): /proc/PID/root/.flatpak-info says
 *   `[Application] name=`, and the process's executable is the very file of that
 *   installation (`app-path` / `runtime-path`) as the host sees it.
 * - `snap`: a snap name: the process's cgroup is `snap.<name>.…` and its executable is the
 *   host's file under /snap/<name>/ (root's read-only squashfs mount).
 * - `appimage`: the absolute path of an .AppImage file: the process runs from a read-only
 *   FUSE mount of that image, served by a live process whose /proc/PID/exe is the file.
 */
export interface BinaryMatcher {
  /** The kernel's view (/proc/PID/exe); a trailing `*` makes it a prefix pattern. */
  path?: string;
  /** Lower-case hex sha256 of the executable's bytes. */
  sha256?: string;
  /** For interpreters: the script the interpreter was started with. */
  script?: string;
  /** Any executable that dpkg/rpm says belongs to this package. */
  package?: string;
  /** Flatpak application id. */
  flatpak?: string;
  /** Snap name. */
  snap?: string;
  /** Absolute path of an .AppImage file. */
  appimage?: string;
}

/**
 * Environment variables that make a program load code the rule does not name. A process
 * started with one of the loader variables is refused by every rule, one with an
 * interpreter variable by script rules; `rules[].allowEnv` relaxes named ones.
 */
export const LOADER_ENV = [
  'LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT',
  // The rest of glibc's own list of what it strips for set-id programs (sysdeps/generic/
  // unsecvars.h, glibc 2.36), GLIBC_TUNABLES included; TMPDIR is left out on purpose (it
  // names where temporary files go and loads nothing; Debian's pam_tmpdir sets it for everyone).
  'GCONV_PATH', 'GETCONF_DIR', 'GLIBC_TUNABLES', 'HOSTALIASES', 'LD_DEBUG', 'LD_DEBUG_OUTPUT', 'LD_DYNAMIC_WEAK',
  'LD_HWCAP_MASK', 'LD_ORIGIN_PATH', 'LD_PROFILE', 'LD_SHOW_AUXV', 'LD_USE_LOAD_BIAS', 'LOCALDOMAIN', 'LOCPATH',
  'MALLOC_TRACE', 'NIS_PATH', 'NLSPATH', 'RESOLV_HOST_CONF', 'RES_OPTIONS', 'TZDIR',
  // Libraries and runtimes that load code a variable names into whatever program uses them
  // (a fresh tester: OPENSSL_CONF with a provider `module = evil.so` ran in an allowed curl):
  // OpenSSL's config (providers, engines) and module dirs; GTK's and GIO's module dirs; Qt's
  // plugin dirs; GStreamer's plugin paths; Java's agent options (-javaagent); Electron's
  // switch to plain Node (ELECTRON_RUN_AS_NODE: an allowed Electron app runs any script).
  'OPENSSL_CONF', 'OPENSSL_MODULES', 'OPENSSL_ENGINES', 'GTK_PATH', 'GIO_MODULE_DIR', 'QT_PLUGIN_PATH',
  'QT_QPA_PLATFORM_PLUGIN_PATH', 'GST_PLUGIN_PATH', 'GST_PLUGIN_PATH_1_0', 'GST_PLUGIN_SYSTEM_PATH',
  'GST_PLUGIN_SYSTEM_PATH_1_0', 'JAVA_TOOL_OPTIONS', 'JDK_JAVA_OPTIONS', '_JAVA_OPTIONS', 'ELECTRON_RUN_AS_NODE',
] as const;
export const INTERPRETER_ENV = [
  'PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'PYTHONINSPECT', 'PYTHONUSERBASE', 'PYTHONEXECUTABLE', 'PYTHONPYCACHEPREFIX',
  'PYTHONPLATLIBDIR', 'PYTHONBREAKPOINT', 'NODE_OPTIONS', 'NODE_PATH', 'PERL5LIB', 'PERL5OPT', 'PERLLIB', 'PERL5DB',
  'RUBYLIB', 'RUBYOPT', 'BASH_ENV', 'ENV', 'SHELLOPTS', 'BASHOPTS', 'PS4',
] as const;
export const REFUSED_ENV = [...LOADER_ENV, ...INTERPRETER_ENV] as const;
export type RefusedEnv = (typeof REFUSED_ENV)[number];

/**
 * What happens to the descendants of an admitted process. They start in its cgroup
 * (net_cls is inherited on fork). `inherit` (default): they keep the tunnel. `confine`:
 * a descendant whose own program is not allowed is taken out when the watcher sees it.
 */
export type ChildrenPolicy = 'inherit' | 'confine';

export interface ProfileRule {
  id: string;
  action?: Action;
  binary?: BinaryMatcher;
  /** Traffic the kernel itself originates (NFS, CIFS): no process. */
  kernel?: boolean;
  destinations?: Destination[];
  mode?: Mode;
  /** Allow rules only; default `inherit`. */
  children?: ChildrenPolicy;
  /** Allow rules only: refused environment variables this rule accepts. */
  allowEnv?: RefusedEnv[];
}

export interface Profile {
  schema: typeof PROFILE_SCHEMA;
  id: string;
  version: number;
  mode: Mode;
  interfaces: string[];
  userPrompts: 'allow' | 'deny';
  alwaysAllow?: Destination[];
  rules: ProfileRule[];
  expires?: string;
}

/** Identifiers (profile ids, rule ids) become cgroup names and nft comments. */
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$';
/** Interface names: what the kernel allows (IFNAMSIZ-1), optionally ending in `*`. */
export const IFACE_PATTERN = '^[A-Za-z0-9_.-]{1,15}\\*?$';
