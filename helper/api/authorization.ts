// Who may do what through the API. Each refusal is a Forbidden ApiError, which the server
// records as api.refused:
// - root and the admin group see and do everything, for every user;
// - a user sees their own prompts, decisions, user rules and events (and events about nobody);
// - a user answers only prompts about their own processes, adds rules only for themselves and
//   only where the policy allows user decisions, revokes only their own decisions;
// - nobody revokes an IT rule through the API: that is what the profile is for.
//
// Who is an admin: root, or a member of the configured admin group.
//
// Design note: group membership is the kernel's record of the connecting process, not a
// lookup of the user in /etc/group (getgrouplist). SO_PEERCRED gives pid, euid and egid at
// connect time but not the supplementary groups, so they are read from
// /proc/<peer pid>/status (`Groups:`) when the connection is accepted, and trusted only if
// that process still has the peer's euid and egid. These are the groups the kernel itself
// uses for the process's file access: a user added to the group becomes an admin at their
// next login, one removed from it stops being one at their next login, like every other
// group-gated resource. Groups from NSS (LDAP, sssd) count as the kernel sees them.
// Anything unreadable or inconsistent means "not an admin" (fail closed). Never from the
// request. Residual race: a pid recycled between connect() and accept (milliseconds) would
// have to be a process of the same user with the same egid; at worst that user's membership
// in another of their own sessions counts.
// (SO_PEERGROUPS in the native addon would remove the /proc step; the check stays the same.)
import { readFileSync } from 'node:fs';
import type { Stats } from 'node:fs';
import type { Caller } from '../../common/api.js';
import { ErrorCode } from '../../common/api.js';
import type { GateEvent } from '../../common/events.js';
import { eventUid } from '../../common/events.js';
import { ApiError } from '../../common/errors.js';

/** SO_PEERCRED of a connection: pid, uid and gid of the peer at connect time. */
export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

/** The gid of a group name, from /etc/group text. */
export function gidOfGroup(groupText: string, name: string): number | undefined {
  for (const line of groupText.split('\n')) {
    const [n, , gid] = line.split(':');
    if (n === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return undefined;
}

/** Effective uid/gid and supplementary groups from /proc/PID/status text. */
export function parseStatusCreds(text: string): { euid: number; egid: number; groups: number[] } | undefined {
  const field = (name: string) => text.split('\n').find((l) => l.startsWith(`${name}:`))?.slice(name.length + 1).trim();
  const uids = field('Uid')?.split(/\s+/).map(Number);
  const gids = field('Gid')?.split(/\s+/).map(Number);
  const groups = field('Groups');
  const euid = uids?.[1];
  const egid = gids?.[1];
  if (euid === undefined || egid === undefined || Number.isNaN(euid) || Number.isNaN(egid) || groups === undefined) return undefined;
  return { euid, egid, groups: groups ? groups.split(/\s+/).map(Number) : [] };
}

export interface AdminCheckIo {
  readFile: (file: string) => string;
}

const realIo: AdminCheckIo = { readFile: (f) => readFileSync(f, 'utf8') };

/**
 * The admin test for a peer, run when its connection is accepted. `adminGid` undefined:
 * only root is an admin.
 */
export function adminCheck(adminGid: number | undefined, io: AdminCheckIo = realIo): (cred: PeerCred) => boolean {
  return (cred) => {
    if (cred.uid === 0) return true;
    if (adminGid === undefined) return false;
    try {
      const status = parseStatusCreds(io.readFile(`/proc/${cred.pid}/status`));
      if (!status || status.euid !== cred.uid || status.egid !== cred.gid) return false;
      return cred.gid === adminGid || status.groups.includes(adminGid);
    } catch {
      return false;
    }
  };
}

/** The configured admin group as a gid; a name that does not resolve is a problem, not a guess. */
export function resolveAdminGroup(group: string | number | undefined, io: AdminCheckIo = realIo): { gid?: number; problem?: string } {
  if (group === undefined) return {};
  if (typeof group === 'number') return { gid: group };
  let text = '';
  try {
    text = io.readFile('/etc/group');
  } catch (e) {
    return { problem: `admin group ${group}: cannot read /etc/group (${(e as Error).message}); only root is an admin` };
  }
  const gid = gidOfGroup(text, group);
  return gid === undefined ? { problem: `admin group ${group} does not exist in /etc/group; only root is an admin (a numeric gid works for groups from NSS)` } : { gid };
}

/** May this caller read the file (to hash it)? Owner, group and other bits; admins always. */
export function readableBy(st: Pick<Stats, 'uid' | 'gid' | 'mode'>, caller: Pick<Caller, 'uid' | 'gid' | 'admin'>): boolean {
  if (caller.admin) return true;
  if (st.uid === caller.uid) return (st.mode & 0o400) !== 0;
  if (st.gid === caller.gid) return (st.mode & 0o040) !== 0;
  return (st.mode & 0o004) !== 0;
}

/** Users are shown their own events and those about nobody; admins everything. */
export const visibleTo = (caller: Pick<Caller, 'uid' | 'admin'>, e: GateEvent): boolean => {
  if (caller.admin) return true;
  const uid = eventUid(e);
  return uid === undefined || uid === caller.uid;
};

/** Throws ApiError Forbidden unless `uid` is the caller's own or the caller is an admin; `what` completes "only an admin may …". */
export function requireOwn(caller: Pick<Caller, 'uid' | 'admin'>, uid: number, what: string): void {
  if (uid !== caller.uid && !caller.admin) throw ApiError(ErrorCode.Forbidden, `only an admin may ${what} of another user (uid ${uid})`);
}
