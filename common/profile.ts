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

/** How a rule names a program. Exactly one of `path` or `package` is given. */
export interface BinaryMatcher {
  /** The kernel's view (/proc/PID/exe); a trailing `*` makes it a prefix pattern. */
  path?: string;
  /** Lower-case hex sha256 of the executable's bytes. */
  sha256?: string;
  /** For interpreters: the script the interpreter was started with. */
  script?: string;
  /** Any executable that dpkg/rpm says belongs to this package. */
  package?: string;
}

export interface ProfileRule {
  id: string;
  action?: Action;
  binary?: BinaryMatcher;
  /** Traffic the kernel itself originates (NFS, CIFS): no process. */
  kernel?: boolean;
  destinations?: Destination[];
  mode?: Mode;
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
