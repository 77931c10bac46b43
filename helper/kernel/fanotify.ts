// Holding each exec of an allowed binary until the helper has admitted the process
// (issue 10, part 1): fanotify permission events, FAN_OPEN_EXEC_PERM (fanotify(7),
// fanotify_mark(2); what fapolicyd uses). The addon (helper/native/native.c) owns the
// group and a reader thread; this module is its TypeScript face: marks by path, events
// as plain objects, answers by event id, and marks that follow a binary replaced by an
// upgrade.
//
// Kernel facts this relies on (measured on kernel 6.18, LAB-NOTES.md):
// - The event arrives while the task sits in execve (/proc/TID/syscall starts with 59, or
//   322 for execveat), before the new argv/envp are copied into the new image and before
//   the old image is torn down; /proc/TID/exe still names the OLD program. The reader
//   thread reads the NEW argv/envp from /proc/TID/mem at execve's pointers.
// - The kernel waits for an answer without a timeout of its own. The reader thread answers
//   FAN_ALLOW by itself after `deadlineMs` (kind 'expired'), so an exec is never held
//   longer than that whatever the event loop does. When the group's fd closes (close(),
//   or the helper dies), the kernel allows every pending event (fanotify_release).
// - A full event queue (16,384 events) does not hold an exec: the kernel allows it at once
//   and queues an overflow event, reported here as onOverflow (rescan).
//
// Marks: inode marks, one per allowed file, never FAN_MARK_MOUNT or FAN_MARK_FILESYSTEM.
// - Only execs of marked inodes wait; every other exec on the machine never enters this
//   path (a filesystem mark with FAN_OPEN_EXEC_PERM would make every exec of the
//   filesystem wait for the helper's reader thread, and an ignore mask per unrelated file
//   cannot be kept complete).
// - An inode mark follows the file into every mount and mount namespace (a bind mount, a
//   Flatpak or container sandbox that bind-mounts the host's /usr), where a mount mark
//   covers one mount only.
// - Marks are taken through an fd the module keeps (mark() opens the path, fstat's it and
//   marks that very fd: no window in which the path could name another inode). The mark is
//   not FAN_MARK_EVICTABLE: an evictable mark is dropped with the inode from the cache, and
//   the next exec would not be held.
// - A package upgrade replaces a binary by renaming a new file over the path: a NEW inode,
//   without a mark. The old mark stays on the old inode (running processes keep it) until
//   unmark. This module watches the parent directory of every marked path (inotify, via
//   fs.watch) and re-marks a path whose inode changed (onReplaced); refresh() does the same
//   for every path at once (after an overflow or a policy reload).
// - Directory marks with `children: true` (FAN_EVENT_ON_CHILD) cover every file directly in
//   a directory, present or future: glob rules such as /opt/app/bin/*.
//
// Caution for the caller: the helper must not start a marked binary itself with
// child_process (libuv's spawn blocks the event loop until the child's exec has happened:
// a deadlock against its own permission event until the deadline). Events of the helper's
// own children are therefore answered at once by the reader thread (`passOwnChildren`,
// default true) and reported as onOwnChild.
import { subscribe } from '../../common/listeners.js';
import { watch, type FSWatcher, statSync } from 'node:fs';
import path from 'node:path';
import { openFanotifyGroup } from '../native/index.js';
import type { RawFanotifyEvent, RawFanotifyGroup } from '../native/index.js';

/** An exec held by the kernel until allow()/deny() or the deadline. */
export interface HeldExec {
  /** Names the event for allow()/deny(); never reused within a group. */
  id: number;
  /** The thread that called execve. After the exec it is the process (its pid = tgid below). */
  tid: number;
  /** The process (thread group) that is exec'ing: the pid to admit. */
  pid: number;
  ppid: number;
  /** Real uid of the exec'ing task (-1 if unreadable). */
  uid: number;
  /** Threads of the process at the event; > 1 means other threads run during the hold. */
  threads: number;
  /** The file being executed, as the kernel names the opened file (symlinks resolved). */
  path: string;
  dev: bigint;
  ino: bigint;
  /** 59 execve, 322 execveat (x86_64); -1 not in a system call, -2 unreadable. */
  syscall: number;
  /** The NEW argv and envp given to execve (latin1 strings: one char per byte); undefined if unreadable. */
  argv: string[] | undefined;
  envp: string[] | undefined;
  /** argv/envp were cut (more than 65,536 entries or 4 MiB of strings). */
  truncated: boolean;
  /** When the reader thread read the event: process.hrtime.bigint() time (CLOCK_MONOTONIC, ns). */
  readAtNs: bigint;
  /**
   * AF_INET/AF_INET6 sockets the task held at the event, close-on-exec ones included (-1:
   * could not tell). Moving it then would re-tag them all, also where another process
   * shares them (native.c inet_sockets_of).
   */
  inetSockets: number;
  /** The program calling execve (what /proc/TID/exe named at the event: the OLD image), if known. */
  caller?: { dev: bigint; ino: bigint };
  /** Why argv/envp could not be read, if so. */
  error?: string;
}

/** A held exec the reader thread admitted by itself under a verdict ticket (ExecHold.setTickets), already answered. */
export interface AdmittedExec extends HeldExec {
  /** The ticket's rule (key): the process is in its cgroup now. */
  rule: string;
  /** When the reader thread answered: process.hrtime.bigint() time (ns). */
  answeredAtNs: bigint;
}

/** What a stat(2) of a file or directory said, as a ticket compares it. */
export interface StatSnapshot {
  dev: bigint;
  ino: bigint;
  mode: number;
  uid: number;
  gid: number;
}

/**
 * "An exec of this very file, by this uid, gets this rule" (ExecHold.setTickets). The
 * reader thread admits a held exec under it only when every fact below is still true and
 * the task is single-threaded, untraced, of the namespaces given, with none of the refused
 * variables in its new envp; otherwise the exec goes to JS as any other. Times in ns.
 */
export interface VerdictTicket {
  /** The executed file at the path JS judged (the event's path must be this one). */
  path: string;
  file: StatSnapshot & { size: bigint; ctimeNs: bigint };
  /** Real uid of the exec'ing task. */
  uid: number;
  /** Every directory above the file, as stat(2) saw them (writability of the path). */
  ancestors: Array<StatSnapshot & { path: string }>;
  /** The rule's cgroup.procs, where the tgid is written. */
  procs: string;
  rule: string;
  /** CLOCK_MONOTONIC ns (process.hrtime.bigint()) after which the ticket is void. */
  expiresNs: bigint;
}

/** What every ticket of a set shares: the helper's namespaces and the refused variable names. */
export interface TicketSet {
  netns: { dev: bigint; ino: bigint };
  userns: { dev: bigint; ino: bigint };
  refusedEnv: readonly string[];
  tickets: readonly VerdictTicket[];
}

/** The addon's layout of a TicketSet (native.c fan_fast_parse): NUL-terminated tokens. Pure. */
export function encodeTickets(set: TicketSet): Buffer {
  const t: Array<string | number | bigint> = ['1', set.netns.dev, set.netns.ino, set.userns.dev, set.userns.ino, set.refusedEnv.length, ...set.refusedEnv, set.tickets.length];
  for (const k of set.tickets) {
    const f = k.file;
    t.push(f.dev, f.ino, k.uid, k.path, f.mode, f.uid, f.gid, f.size, f.ctimeNs / 1_000_000_000n, f.ctimeNs % 1_000_000_000n, k.expiresNs, k.procs, k.rule, k.ancestors.length);
    for (const a of k.ancestors) t.push(a.path, a.dev, a.ino, a.mode, a.uid, a.gid);
  }
  for (const x of t) if (typeof x === 'string' && x.includes('\0')) throw new Error('a ticket field holds a NUL byte');
  return Buffer.concat(t.map((x) => Buffer.from(`${x}\0`, 'utf8')));
}

export interface MarkedFile {
  path: string;
  dev: bigint;
  ino: bigint;
  /** A directory mark covering the files directly in it. */
  children: boolean;
}

export interface ExecHoldOptions {
  /** Longest hold of one exec before the reader thread allows it by itself; default 250 ms. */
  deadlineMs?: number;
  /** Answer execs by the helper's own children at once (see the header); default true. */
  passOwnChildren?: boolean;
  /** Watch the parent directories of marked paths and re-mark replaced files; default true. */
  followReplacements?: boolean;
}

export class FanotifyUnavailable extends Error {}

/** The plain event of a raw 'exec' message (pure; exported for tests). */
export function heldExecOf(e: RawFanotifyEvent): HeldExec {
  const h: HeldExec = {
    id: e.id,
    tid: e.tid ?? -1,
    pid: e.tgid ?? -1,
    ppid: e.ppid ?? -1,
    uid: e.uid ?? -1,
    threads: e.threads ?? -1,
    path: e.path ?? '',
    dev: e.dev ?? 0n,
    ino: e.ino ?? 0n,
    syscall: e.syscall ?? -2,
    argv: e.error !== undefined && !e.argv?.length ? undefined : (e.argv ?? undefined),
    envp: e.error !== undefined && !e.envp?.length ? undefined : (e.envp ?? undefined),
    truncated: e.truncated ?? false,
    readAtNs: e.readAtNs ?? 0n,
    inetSockets: e.inetSockets ?? -1,
  };
  if (e.error !== undefined) h.error = e.error;
  if (e.callerDev !== undefined && e.callerIno !== undefined) h.caller = { dev: e.callerDev, ino: e.callerIno };
  return h;
}

type Listener<T> = (x: T) => void;

interface Mark extends MarkedFile {
  fd: number;
}

/**
 * A fanotify exec-hold group. Construct with ExecHold.open(); throws FanotifyUnavailable
 * (with the kernel's errno text) where fanotify permission events cannot be had: no
 * CAP_SYS_ADMIN (EPERM), or a kernel without CONFIG_FANOTIFY_ACCESS_PERMISSIONS (EINVAL).
 */
export class ExecHold {
  private readonly execs = new Set<Listener<HeldExec>>();
  private readonly admitted = new Set<Listener<AdmittedExec>>();
  private readonly heldCloses = new Set<Listener<{ tid: number }>>();
  private readonly expired = new Set<Listener<{ id: number; tid: number }>>();
  private readonly overflows = new Set<Listener<void>>();
  private readonly ownChildren = new Set<Listener<{ pid: number; path: string }>>();
  private readonly replaced = new Set<Listener<{ path: string; before: MarkedFile; after: MarkedFile | undefined }>>();
  private readonly marks = new Map<string, Mark>();
  private readonly dirs = new Map<string, FSWatcher>();
  private closed = false;

  private constructor(
    private readonly group: RawFanotifyGroup,
    private readonly follow: boolean,
  ) {}

  static open(opts: ExecHoldOptions = {}): ExecHold {
    // Events may arrive before the constructor returns: they wait in `queued`.
    const box: { self?: ExecHold } = {};
    const queued: RawFanotifyEvent[] = [];
    const deadline = Math.max(1, Math.round(opts.deadlineMs ?? 250));
    let group: RawFanotifyGroup;
    try {
      group = openFanotifyGroup((e) => (box.self ? box.self.dispatch(e) : queued.push(e)), deadline, opts.passOwnChildren ?? true);
    } catch (e) {
      throw new FanotifyUnavailable(`fanotify exec permission events unavailable: ${(e as Error).message}`);
    }
    const self = new ExecHold(group, opts.followReplacements ?? true);
    box.self = self;
    for (const e of queued) self.dispatch(e);
    return self;
  }

  /** Every held exec of a marked file. Answer with allow(id) (or deny) before the deadline. */
  onExec(cb: Listener<HeldExec>): () => void {
    return subscribe(this.execs, cb);
  }

  /**
   * A task whose exec of a marked file was held in the last 5 s closed that file: the exec
   * failed after the hold (or the process ended). native.c fan_handle_close.
   */
  onHeldClose(cb: Listener<{ tid: number }>): () => void {
    return subscribe(this.heldCloses, cb);
  }

  /** A held exec the reader thread admitted and answered under a ticket (setTickets). */
  onAdmitted(cb: Listener<AdmittedExec>): () => void {
    return subscribe(this.admitted, cb);
  }

  /**
   * Replace every verdict ticket (empty list: none). Synchronous: when it returns, no exec
   * is admitted under a ticket not in `set` any more. Throws if a cgroup.procs cannot be
   * opened (then no ticket is in force).
   */
  setTickets(set: TicketSet): void {
    if (this.closed) return;
    this.group.setTickets(set.tickets.length ? encodeTickets(set) : Buffer.alloc(0));
  }

  /** The reader thread allowed an exec itself: nobody answered within the deadline. */
  onExpired(cb: Listener<{ id: number; tid: number }>): () => void {
    return subscribe(this.expired, cb);
  }

  /** The kernel's event queue overflowed: some execs of marked files went unheld. */
  onOverflow(cb: Listener<void>): () => void {
    return subscribe(this.overflows, cb);
  }

  /** An exec by the helper's own child, allowed at once (passOwnChildren). */
  onOwnChild(cb: Listener<{ pid: number; path: string }>): () => void {
    return subscribe(this.ownChildren, cb);
  }

  /** A marked path now names another inode (re-marked: `after`) or nothing (`after` undefined). */
  onReplaced(cb: Listener<{ path: string; before: MarkedFile; after: MarkedFile | undefined }>): () => void {
    return subscribe(this.replaced, cb);
  }

  /** Let a held exec go on. False if it was no longer held (deadline passed, closed). */
  allow(id: number): boolean {
    return !this.closed && this.group.respond(id, true);
  }

  /** Make a held execve fail with EPERM. False if it was no longer held. */
  deny(id: number): boolean {
    return !this.closed && this.group.respond(id, false);
  }

  /** Execs held now (answered by neither side yet). */
  pending(): number {
    return this.closed ? 0 : this.group.pending();
  }

  /**
   * Mark the inode `file` names now (symlinks followed), keyed by `file`. Marking a path
   * again re-marks it if it names another inode than before. Throws the errno text: ENOENT,
   * EACCES, EINVAL (not a regular file; with children: not a directory).
   */
  mark(file: string, opts: { children?: boolean } = {}): MarkedFile {
    if (this.closed) throw new Error('fanotify group is closed');
    const children = opts.children ?? false;
    const old = this.marks.get(file);
    if (old && old.children === children) {
      const st = statSync(file, { bigint: true, throwIfNoEntry: false });
      if (st && st.dev === old.dev && st.ino === old.ino) return publicMark(old);
    }
    const m = this.group.mark(file, children);
    if (old) this.group.unmark(old.fd);
    const mark: Mark = { path: file, dev: m.dev, ino: m.ino, children, fd: m.fd };
    this.marks.set(file, mark);
    if (this.follow) this.watchDir(children ? file : path.dirname(file));
    return publicMark(mark);
  }

  /** Remove the mark of `file` (the inode marked under that name). No-op if not marked. */
  unmark(file: string): void {
    const m = this.marks.get(file);
    if (!m) return;
    this.marks.delete(file);
    if (!this.closed) this.group.unmark(m.fd);
    const dir = m.children ? file : path.dirname(file);
    if (![...this.marks.values()].some((x) => (x.children ? x.path : path.dirname(x.path)) === dir)) {
      this.dirs.get(dir)?.close();
      this.dirs.delete(dir);
    }
  }

  /** The marks held now. */
  marked(): MarkedFile[] {
    return [...this.marks.values()].map(publicMark);
  }

  /**
   * Re-stat every marked path; re-mark those that name another inode now (onReplaced fires
   * for each). For use after an overflow, a policy reload, or events fs.watch may miss.
   */
  refresh(): void {
    for (const file of [...this.marks.keys()]) this.recheck(file);
  }

  /** Allow everything held and close the group (the kernel drops every mark with it). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.dirs.values()) w.close();
    this.dirs.clear();
    this.group.close();
    // The mark fds are ours: the group no longer needs them.
    for (const m of this.marks.values()) {
      try {
        this.group.unmark(m.fd);
      } catch {
        /* the group is gone: unmark only closes the fd */
      }
    }
    this.marks.clear();
  }

  private dispatch(e: RawFanotifyEvent): void {
    switch (e.kind) {
      case 'exec': {
        const h = heldExecOf(e);
        for (const cb of this.execs) cb(h);
        return;
      }
      case 'admitted': {
        const a: AdmittedExec = { ...heldExecOf(e), rule: e.rule ?? '', answeredAtNs: e.answeredAtNs ?? 0n };
        for (const cb of this.admitted) cb(a);
        return;
      }
      case 'held-close':
        for (const cb of this.heldCloses) cb({ tid: e.tid ?? -1 });
        return;
      case 'expired':
        for (const cb of this.expired) cb({ id: e.id, tid: e.tid ?? -1 });
        return;
      case 'overflow':
        for (const cb of this.overflows) cb();
        return;
      case 'own-child':
        for (const cb of this.ownChildren) cb({ pid: e.tgid ?? -1, path: e.path ?? '' });
        return;
      default:
    }
  }

  private watchDir(dir: string): void {
    if (this.dirs.has(dir)) return;
    try {
      const w = watch(dir, { persistent: false }, (_type, name) => {
        const hits = [...this.marks.values()].filter((m) =>
          m.children ? m.path === dir : path.dirname(m.path) === dir && (name === null || name === path.basename(m.path)),
        );
        for (const m of hits) this.recheck(m.path);
      });
      w.on('error', () => {
        w.close();
        this.dirs.delete(dir);
      });
      this.dirs.set(dir, w);
    } catch {
      /* the directory is gone or unreadable: refresh() still re-marks */
    }
  }

  private recheck(file: string): void {
    const m = this.marks.get(file);
    if (!m || this.closed) return;
    const st = statSync(file, { bigint: true, throwIfNoEntry: false });
    if (st && st.dev === m.dev && st.ino === m.ino) return;
    const before = publicMark(m);
    let after: MarkedFile | undefined;
    try {
      after = st ? this.mark(file, { children: m.children }) : undefined;
    } catch {
      after = undefined;
    }
    // A path that names nothing (or something unmarkable) keeps its old mark, which still
    // holds execs of the old inode, until it comes back or is unmarked.
    for (const cb of this.replaced) cb({ path: file, before, after });
  }
}

function publicMark(m: Mark): MarkedFile {
  return { path: m.path, dev: m.dev, ino: m.ino, children: m.children };
}
