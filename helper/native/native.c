/*
 * The one thing Node cannot ask the kernel for: who is on the other end of a
 * unix socket. SO_PEERCRED is filled in by the kernel at connect() time, so a
 * client cannot lie about it; ptrace, to hold a launched program at its exec until
 * the helper has verified it; raw netlink sockets (NFLOG, the proc connector) read on
 * a thread of their own; and syslog(3). Message formats are built and parsed in
 * TypeScript (helper/kernel/netlink.ts), where they are unit-tested.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <signal.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/filter.h>
#include <sys/time.h>
#include <sys/fanotify.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <poll.h>
#include <stdint.h>
#include <dirent.h>
#include <sys/syscall.h>
#include <time.h>
#include <node_api.h>

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

/* peerCred(fd: number): { pid, uid, gid } */
static napi_value peer_cred(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "peerCred(fd): fd must be a non-negative integer");
    return NULL;
  }
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return throw_errno(env, "getsockopt(SO_PEERCRED)", errno);

  napi_value out, v;
  napi_create_object(env, &out);
  napi_create_int32(env, cred.pid, &v);
  napi_set_named_property(env, out, "pid", v);
  napi_create_uint32(env, cred.uid, &v);
  napi_set_named_property(env, out, "uid", v);
  napi_create_uint32(env, cred.gid, &v);
  napi_set_named_property(env, out, "gid", v);
  return out;
}

static int arg_pid(napi_env env, napi_callback_info info, const char *name) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t pid;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_value_int32(env, argv[0], &pid) != napi_ok || pid < 2) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s(pid): pid must be an integer above 1", name);
    napi_throw_type_error(env, NULL, msg);
    return -1;
  }
  return pid;
}

static napi_value str(napi_env env, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

/*
 * Launch verification without a window: the helper becomes the tracer of the stub
 * that will exec the program. The kernel stops the tracee right after a successful
 * execve, before the new program runs an instruction (PTRACE_EVENT_EXEC); the helper
 * reads /proc/PID/exe there, admits or not, and detaches. EXITKILL: if the helper
 * dies meanwhile, the tracee dies too, so nothing unverified runs on.
 * All calls must come from the thread that seized (Node's main thread).
 */
static napi_value ptrace_seize(napi_env env, napi_callback_info info) {
  int pid = arg_pid(env, info, "ptraceSeize");
  if (pid < 0) return NULL;
  if (ptrace(PTRACE_SEIZE, pid, NULL, (void *)(long)(PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL)) != 0)
    return throw_errno(env, "ptrace(PTRACE_SEIZE)", errno);
  return NULL;
}

/* Non-blocking: "exec" (stopped after exec), "exited", or "running". Passes other stops on. */
static napi_value ptrace_poll_exec(napi_env env, napi_callback_info info) {
  int pid = arg_pid(env, info, "ptracePollExec");
  if (pid < 0) return NULL;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG | __WALL);
    if (r == 0) return str(env, "running");
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == ECHILD) return str(env, "exited");
      return throw_errno(env, "waitpid", errno);
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) return str(env, "exited");
    if (!WIFSTOPPED(status)) continue;
    int event = (status >> 16) & 0xff;
    if (event == PTRACE_EVENT_EXEC) return str(env, "exec");
    if (event == PTRACE_EVENT_STOP) {
      /* group-stop (SIGSTOP, SIGTSTP…): let it stay stopped as it would untraced */
      ptrace(PTRACE_LISTEN, pid, NULL, NULL);
      continue;
    }
    /* signal-delivery-stop: deliver the signal as if we were not there */
    ptrace(PTRACE_CONT, pid, NULL, (void *)(long)WSTOPSIG(status));
  }
}

/*
 * `tunnelgate run` follows a launcher's exec chain (a shell script that execs the real
 * program): a tracee stopped at an exec that admits nothing goes on, still traced with
 * PTRACE_O_TRACEEXEC, so its next exec stops it again before that program runs.
 */
static napi_value ptrace_resume(napi_env env, napi_callback_info info) {
  int pid = arg_pid(env, info, "ptraceResume");
  if (pid < 0) return NULL;
  if (ptrace(PTRACE_CONT, pid, NULL, NULL) != 0)
    return throw_errno(env, "ptrace(PTRACE_CONT)", errno);
  return NULL;
}

static napi_value ptrace_detach(napi_env env, napi_callback_info info) {
  int pid = arg_pid(env, info, "ptraceDetach");
  if (pid < 0) return NULL;
  if (ptrace(PTRACE_DETACH, pid, NULL, NULL) != 0 && errno != ESRCH)
    return throw_errno(env, "ptrace(PTRACE_DETACH)", errno);
  return NULL;
}

/* ---- netlink: open, send, and a reader thread that hands each datagram to JS ---- */

struct reader {
  int fd;
  int wake; /* eventfd: stop() wakes the reader; it never wakes on a timer */
  int batch;
  volatile int stop;
  napi_threadsafe_function tsfn;
  pthread_t thread;
};

struct datagram {
  size_t len;
  unsigned char bytes[];
};

static void call_js(napi_env env, napi_value js_cb, void *ctx, void *data) {
  (void)ctx;
  struct datagram *d = data;
  if (env != NULL && js_cb != NULL) {
    napi_value buf, undefined;
    napi_create_buffer_copy(env, d->len, d->bytes, NULL, &buf);
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, js_cb, 1, &buf, NULL);
  }
  free(d);
}

static int deliver(struct reader *r, const unsigned char *bytes, size_t n) {
  struct datagram *d = malloc(sizeof *d + n);
  if (!d) return -1;
  d->len = n;
  memcpy(d->bytes, bytes, n);
  if (napi_call_threadsafe_function(r->tsfn, d, napi_tsfn_blocking) != napi_ok) {
    free(d);
    return -1;
  }
  return 0;
}

/*
 * One blocking recv, then (batch mode) every datagram already queued, without waiting:
 * one call into JS per wake-up instead of one per datagram. Netlink messages are
 * self-delimiting and 4-aligned, so concatenated datagrams parse as one. An overrun
 * (ENOBUFS) is still told to JS as an empty buffer, after what was read before it.
 */
#define BATCH_BYTES (256 * 1024)
static void *reader_main(void *arg) {
  struct reader *r = arg;
  size_t cap = r->batch ? BATCH_BYTES : 65536;
  unsigned char *buf = malloc(cap);
  while (buf && !r->stop) {
    /* Wait without a timeout (an idle helper must not wake): data, an error (ENOBUFS sets
       the socket's error: POLLERR), or stop(). */
    struct pollfd fds[2] = {{.fd = r->fd, .events = POLLIN}, {.fd = r->wake, .events = POLLIN}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (r->stop || (fds[1].revents & POLLIN)) break;
    if (!(fds[0].revents & (POLLIN | POLLERR))) continue;
    ssize_t n = recv(r->fd, buf, 65536, MSG_DONTWAIT);
    int overrun = 0;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      if (errno == ENOBUFS) {
        n = 0; /* the kernel dropped messages: tell JS with an empty buffer */
        overrun = 1;
      } else break;
    }
    size_t len = (size_t)n;
    while (r->batch && !overrun && len + 65536 <= cap) {
      ssize_t m = recv(r->fd, buf + len, 65536, MSG_DONTWAIT);
      if (m < 0) {
        if (errno == ENOBUFS) overrun = 1;
        break;
      }
      len += (size_t)m;
    }
    if (len > 0 || !r->batch || overrun) {
      if (deliver(r, buf, len) != 0) break;
    }
    if (overrun && len > 0 && deliver(r, buf, 0) != 0) break;
  }
  free(buf);
  close(r->fd);
  napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
  return NULL;
}

static void reader_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct reader *r = data;
  pthread_join(r->thread, NULL);
  close(r->wake);
  free(r);
}

/*
 * netlinkOpen(protocol, groups, initNetns): fd. With initNetns the socket is created in
 * the initial network namespace (that of kthreadd, pid 2, readable where pid 1 may not
 * be), on a short-lived thread so the helper's own threads never change namespace: the
 * proc connector exists only there.
 */
struct open_args {
  int protocol, type;
  uint32_t groups;
  int init_netns;
  int fd, err;
};

static void *open_in_thread(void *arg) {
  struct open_args *a = arg;
  if (a->init_netns) {
    int ns = open("/proc/2/ns/net", O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
      a->err = errno;
      if (ns >= 0) close(ns);
      return NULL;
    }
    close(ns);
  }
  int fd = socket(AF_NETLINK, a->type | SOCK_CLOEXEC, a->protocol);
  if (fd < 0) {
    a->err = errno;
    return NULL;
  }
  struct sockaddr_nl addr = {.nl_family = AF_NETLINK, .nl_groups = a->groups};
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    a->err = errno;
    close(fd);
    return NULL;
  }
  int size = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
  struct timeval tv = {.tv_sec = 0, .tv_usec = 250000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  a->fd = fd;
  return NULL;
}

static napi_value netlink_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  struct open_args a = {0};
  uint32_t groups;
  bool init_netns = false, dgram = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4 ||
      napi_get_value_int32(env, argv[0], &a.protocol) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &groups) != napi_ok ||
      napi_get_value_bool(env, argv[2], &init_netns) != napi_ok ||
      napi_get_value_bool(env, argv[3], &dgram) != napi_ok) {
    napi_throw_type_error(env, NULL, "netlinkOpen(protocol, groups, initNetns, dgram)");
    return NULL;
  }
  a.groups = groups;
  a.init_netns = init_netns;
  a.type = dgram ? SOCK_DGRAM : SOCK_RAW;
  a.fd = -1;
  pthread_t t;
  if (pthread_create(&t, NULL, open_in_thread, &a) != 0) return throw_errno(env, "pthread_create", errno);
  pthread_join(t, NULL);
  if (a.fd < 0) return throw_errno(env, "netlink socket", a.err);
  napi_value out;
  napi_create_int32(env, a.fd, &out);
  return out;
}

/* netlinkSend(fd, buffer): sends one message to the kernel. */
static napi_value netlink_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "netlinkSend(fd, buffer)");
    return NULL;
  }
  struct sockaddr_nl to = {.nl_family = AF_NETLINK};
  if (sendto(fd, data, len, 0, (struct sockaddr *)&to, sizeof to) < 0) return throw_errno(env, "netlink sendto", errno);
  return NULL;
}

/* netlinkListen(fd, onDatagram): stop(); the fd belongs to the reader from now on. */
static napi_value reader_stop(napi_env env, napi_callback_info info) {
  struct reader *r;
  napi_get_cb_info(env, info, NULL, NULL, NULL, (void **)&r);
  r->stop = 1;
  uint64_t one = 1;
  if (write(r->wake, &one, sizeof one) < 0) { /* the reader sees stop at its next wake-up */ }
  return NULL;
}

static napi_value netlink_listen(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], name, stop;
  int32_t fd;
  bool batch = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      (argc > 2 && napi_get_value_bool(env, argv[2], &batch) != napi_ok)) {
    napi_throw_type_error(env, NULL, "netlinkListen(fd, callback, batch?)");
    return NULL;
  }
  struct reader *r = calloc(1, sizeof *r);
  if (!r) return throw_errno(env, "calloc", ENOMEM);
  r->fd = fd;
  r->batch = batch;
  r->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (r->wake < 0) {
    int err = errno;
    free(r);
    return throw_errno(env, "eventfd", err);
  }
  napi_create_string_utf8(env, "tunnelgate-netlink", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, r, reader_finalize, NULL, call_js, &r->tsfn) != napi_ok) {
    close(r->wake);
    free(r);
    napi_throw_error(env, NULL, "napi_create_threadsafe_function failed");
    return NULL;
  }
  if (pthread_create(&r->thread, NULL, reader_main, r) != 0) {
    int err = errno;
    napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
    return throw_errno(env, "pthread_create", err);
  }
  napi_create_function(env, "stop", NAPI_AUTO_LENGTH, reader_stop, r, &stop);
  return stop;
}

/*
 * netlinkSetFilter(fd, program, drain): attaches a classic BPF socket filter (SO_ATTACH_FILTER,
 * socket(7), Documentation/networking/filter.rst). `program` is an array of struct
 * sock_filter, 8 bytes each in host order { u16 code; u8 jt; u8 jf; u32 k }, built and
 * unit-tested in TypeScript (helper/kernel/netlink.ts). The kernel runs it on every
 * datagram before it is queued: what it drops never wakes the reader thread.
 * `drain`: discard what was queued before the filter was attached (a socket joins its
 * multicast group at bind, before a filter can be set); only before anyone listens.
 */
static napi_value netlink_set_filter(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  void *data;
  size_t len;
  bool drain = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      (argc > 2 && napi_get_value_bool(env, argv[2], &drain) != napi_ok) ||
      napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok || len == 0 || len % 8 != 0 || len / 8 > 4096) {
    napi_throw_type_error(env, NULL, "netlinkSetFilter(fd, program): program must be 1..4096 instructions of 8 bytes");
    return NULL;
  }
  struct sock_fprog prog = {.len = (unsigned short)(len / 8), .filter = data};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) return throw_errno(env, "setsockopt(SO_ATTACH_FILTER)", errno);
  if (drain) {
    char scratch[4096];
    while (recv(fd, scratch, sizeof scratch, MSG_DONTWAIT | MSG_TRUNC) >= 0 || errno == ENOBUFS || errno == EINTR) {
    }
  }
  return NULL;
}

/* syslog(priority, message): to the system log (journald reads /dev/log too). */
static napi_value syslog_msg(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t prio;
  char msg[4096];
  size_t len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_int32(env, argv[0], &prio) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], msg, sizeof msg, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "syslog(priority, message)");
    return NULL;
  }
  static int opened = 0;
  if (!opened) {
    openlog("tunnelgate", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
    opened = 1;
  }
  syslog(prio, "%s", msg);
  return NULL;
}

/* ---- fanotify: hold each exec of a marked file until the helper has answered ----
 *
 * fanotify(7), fanotify_init(2), fanotify_mark(2). A group of class FAN_CLASS_CONTENT may
 * ask for FAN_OPEN_EXEC_PERM: the kernel stops a task inside execve(2) when it opens a
 * marked file for execution (do_open_execat, before the new argv and envp are copied and
 * before the old image is torn down) and waits until the group writes a response for the
 * event's file descriptor. This file gives the group its own reader thread, which:
 *  - reads each event, and collects what the helper needs while the task is still blocked:
 *    the file (readlink /proc/self/fd/N, fstat: dev/ino), the exec'ing thread (FAN_REPORT_TID:
 *    the event names the thread that called execve, whose /proc/TID/syscall holds the
 *    execve arguments), its tgid/ppid/uid/thread count (/proc/TID/status), and the NEW argv
 *    and envp, read through /proc/TID/mem at the pointers execve was given;
 *  - hands that to JS through a threadsafe function, never waiting for JS;
 *  - answers FAN_ALLOW itself when JS has not answered within the deadline, so an exec is
 *    never held longer than that whatever the event loop is doing;
 *  - on close, answers FAN_ALLOW to everything pending and closes the group. If the
 *    helper dies instead, the kernel does the same when the last reference to the group's
 *    fd goes (fanotify_release allows every pending permission event).
 * Events are named by a 64-bit id, never by their fd: an fd number is reused as soon as it
 * is closed, so an answer that arrives after the deadline cannot reach another exec.
 */
enum { FAN_EV_EXEC, FAN_EV_EXPIRED, FAN_EV_OVERFLOW, FAN_EV_OWN_CHILD, FAN_EV_ERROR, FAN_EV_ADMITTED, FAN_EV_HELD_CLOSE };

/* ---- verdict tickets: the common held exec answered in the reader thread ----
 *
 * JS decides each held exec (helper/admission/exec-admission.ts). After it has admitted an
 * exec of file F by uid U, it may hand this thread a ticket: "an exec of this very inode,
 * at this path, by U, while the file and every directory above it are exactly as they were
 * (mode, owner, ctime: the bytes a hash was taken of), by a single-threaded, untraced task of
 * the helper's network and user namespaces whose new envp names none of the refused
 * variables, gets the same verdict: move it into this cgroup". The thread checks exactly
 * those facts of each event and, when every one holds, writes the tgid to the rule's
 * cgroup.procs and answers FAN_ALLOW itself, then tells JS (FAN_EV_ADMITTED) so the
 * watcher follows the process. Anything else, or any failed check or write, goes to JS
 * as before. No policy is evaluated here: a ticket only replays a verdict JS took on the
 * same inputs, and JS drops every ticket when the policy changes (setTickets([])).
 */
struct fan_ancestor {
  char *path;
  uint64_t dev, ino;
  uint32_t mode, uid, gid;
};

struct fan_ticket {
  uint64_t dev, ino;
  long uid;
  char *path, *rule;
  uint32_t mode, fuid, fgid;
  uint64_t size;
  int64_t ctime_sec, ctime_nsec;
  uint64_t expires_ns; /* CLOCK_MONOTONIC */
  int procs_fd;
  size_t nanc;
  struct fan_ancestor *anc;
};

struct fan_fast {
  struct fan_ticket *t;
  size_t n;
  char **refused; /* "NAME=" prefixes */
  size_t nrefused;
  uint64_t netns_dev, netns_ino, userns_dev, userns_ino;
};


struct fan_pending {
  uint64_t id;
  int fd, tid;
  int64_t deadline;
};

struct fan_group {
  int fd, wake;
  int deadline_ms;
  int pass_own_children;
  volatile int stop;
  int refs; /* the reader thread and the JS handle */
  pthread_mutex_t mu;
  pthread_mutex_t fast_mu; /* guards fast: setTickets against the reader thread */
  /* Tasks whose exec was held lately (the reader thread's own: no lock), for FAN_EV_HELD_CLOSE. */
  struct {
    int tid;
    int64_t at_ms;
  } held[64];
  unsigned held_next;
  struct fan_fast fast;
  struct fan_pending *pend;
  size_t npend, cap;
  uint64_t next_id;
  napi_threadsafe_function tsfn;
  pthread_t thread;
  int started;
};

struct fan_msg {
  int kind;
  uint64_t id;
  uint64_t read_ns; /* CLOCK_MONOTONIC when the reader thread read the event (= process.hrtime.bigint()) */
  int tid, tgid, ppid, threads, sysno, truncated;
  long uid, tracer;
  int inet_sockets; /* AF_INET/AF_INET6 socket fds the exec'ing task holds (-1: could not tell) */
  uint64_t answered_ns; /* FAN_EV_ADMITTED: when the reader thread answered */
  char rule[512];      /* FAN_EV_ADMITTED: the ticket's rule */
  uint64_t dev, ino;
  uint64_t caller_dev, caller_ino; /* the program calling execve (/proc/TID/exe at the event); 0 if unknown */
  char path[4096];
  char *argv, *envp; /* NUL-separated */
  size_t argv_len, envp_len;
  int argc, envc;
  char err[160];
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fan_fast_free(struct fan_fast *f) {
  for (size_t i = 0; i < f->n; i++) {
    struct fan_ticket *t = &f->t[i];
    free(t->path);
    free(t->rule);
    if (t->procs_fd >= 0) close(t->procs_fd);
    for (size_t j = 0; j < t->nanc; j++) free(t->anc[j].path);
    free(t->anc);
  }
  free(f->t);
  for (size_t i = 0; i < f->nrefused; i++) free(f->refused[i]);
  free(f->refused);
  memset(f, 0, sizeof *f);
}

/* A reader of NUL-separated tokens (setTickets' buffer). */
struct tok {
  const char *p, *end;
  int bad;
};

static const char *tok_str(struct tok *k) {
  if (k->bad || k->p >= k->end) {
    k->bad = 1;
    return "";
  }
  const char *s = k->p;
  const char *z = memchr(s, 0, (size_t)(k->end - s));
  if (!z) {
    k->bad = 1;
    return "";
  }
  k->p = z + 1;
  return s;
}

static uint64_t tok_u64(struct tok *k) {
  const char *s = tok_str(k);
  char *e;
  errno = 0;
  unsigned long long v = strtoull(s, &e, 10);
  if (k->bad || *s == 0 || *e != 0 || errno) k->bad = 1;
  return (uint64_t)v;
}

static char *tok_dup(struct tok *k) {
  return strdup(tok_str(k));
}

/* Parses setTickets' buffer into `f` (see TicketSet in helper/native/index.ts); 0, or -1 if malformed. */
static int fan_fast_parse(struct tok *k, struct fan_fast *f) {
  if (strcmp(tok_str(k), "1") != 0) return -1;
  f->netns_dev = tok_u64(k);
  f->netns_ino = tok_u64(k);
  f->userns_dev = tok_u64(k);
  f->userns_ino = tok_u64(k);
  uint64_t nr = tok_u64(k);
  if (k->bad || nr > 256) return -1;
  f->refused = calloc(nr ? nr : 1, sizeof *f->refused);
  if (!f->refused) return -1;
  for (; f->nrefused < nr && !k->bad; f->nrefused++) {
    const char *name = tok_str(k);
    size_t l = strlen(name);
    char *p = malloc(l + 2);
    if (!p) return -1;
    memcpy(p, name, l);
    p[l] = '=';
    p[l + 1] = 0;
    f->refused[f->nrefused] = p;
  }
  uint64_t nt = tok_u64(k);
  if (k->bad || nt > 4096) return -1;
  f->t = calloc(nt ? nt : 1, sizeof *f->t);
  if (!f->t) return -1;
  for (; f->n < nt && !k->bad; f->n++) {
    struct fan_ticket *t = &f->t[f->n];
    t->procs_fd = -1;
    t->dev = tok_u64(k);
    t->ino = tok_u64(k);
    t->uid = (long)tok_u64(k);
    t->path = tok_dup(k);
    t->mode = (uint32_t)tok_u64(k);
    t->fuid = (uint32_t)tok_u64(k);
    t->fgid = (uint32_t)tok_u64(k);
    t->size = tok_u64(k);
    t->ctime_sec = (int64_t)tok_u64(k);
    t->ctime_nsec = (int64_t)tok_u64(k);
    t->expires_ns = tok_u64(k);
    const char *procs = tok_str(k);
    t->rule = tok_dup(k);
    uint64_t na = tok_u64(k);
    if (k->bad || !t->path || !t->rule || na > 64) return -1;
    t->anc = calloc(na ? na : 1, sizeof *t->anc);
    if (!t->anc) return -1;
    for (; t->nanc < na && !k->bad; t->nanc++) {
      struct fan_ancestor *a = &t->anc[t->nanc];
      a->path = tok_dup(k);
      a->dev = tok_u64(k);
      a->ino = tok_u64(k);
      a->mode = (uint32_t)tok_u64(k);
      a->uid = (uint32_t)tok_u64(k);
      a->gid = (uint32_t)tok_u64(k);
      if (!a->path) return -1;
    }
    if (k->bad) return -1;
    /* The rule's cgroup.procs, opened now: a cgroup removed since makes the write fail (JS then decides). */
    t->procs_fd = open(procs, O_WRONLY | O_CLOEXEC);
    if (t->procs_fd < 0) return -1;
  }
  return k->bad || k->p != k->end ? -1 : 0;
}

static int same_stat(const char *path, uint64_t dev, uint64_t ino) {
  struct stat st;
  return stat(path, &st) == 0 && (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
}

static int ancestor_same(const struct fan_ancestor *a) {
  struct stat st;
  return stat(a->path, &st) == 0 && (uint64_t)st.st_dev == a->dev && (uint64_t)st.st_ino == a->ino && st.st_mode == a->mode &&
         st.st_uid == a->uid && st.st_gid == a->gid;
}

/* Any envp entry that starts with a refused "NAME=" (with any value, even empty: JS decides those). */
static int env_refused(const struct fan_fast *f, const char *envp, size_t len, int count) {
  size_t off = 0;
  for (int i = 0; i < count && off < len; i++) {
    const char *e = envp + off;
    size_t l = strnlen(e, len - off);
    for (size_t j = 0; j < f->nrefused; j++) {
      size_t pl = strlen(f->refused[j]);
      if (l >= pl && memcmp(e, f->refused[j], pl) == 0) return 1;
    }
    off += l + 1;
  }
  return 0;
}

/*
 * The held exec of `m` (its event fd `event_fd`) matched against the tickets: when one
 * holds in every respect, the task is moved into the ticket's cgroup and its rule is
 * copied to m->rule (1); else 0, nothing done. Caller holds g->fast_mu.
 */
static int fan_try_ticket(struct fan_group *g, int event_fd, struct fan_msg *m) {
  const struct fan_fast *f = &g->fast;
  if (!f->n || m->threads != 1 || m->tgid != m->tid || m->tgid <= 0 || m->tracer != 0 || m->inet_sockets != 0 || m->truncated || m->err[0] ||
      !m->argv || !m->envp || (m->sysno != 59 && m->sysno != 322))
    return 0;
  struct stat st;
  if (fstat(event_fd, &st) != 0) return 0;
  for (size_t i = 0; i < f->n; i++) {
    const struct fan_ticket *t = &f->t[i];
    if (t->dev != (uint64_t)st.st_dev || t->ino != (uint64_t)st.st_ino || t->uid != m->uid) continue;
    if (now_ns() >= t->expires_ns || strcmp(t->path, m->path) != 0) return 0;
    if (st.st_mode != t->mode || st.st_uid != t->fuid || st.st_gid != t->fgid || (uint64_t)st.st_size != t->size ||
        st.st_ctim.tv_sec != t->ctime_sec || st.st_ctim.tv_nsec != t->ctime_nsec)
      return 0;
    for (size_t j = 0; j < t->nanc; j++)
      if (!ancestor_same(&t->anc[j])) return 0;
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/ns/net", m->tid);
    if (!same_stat(p, f->netns_dev, f->netns_ino)) return 0;
    snprintf(p, sizeof p, "/proc/%d/ns/user", m->tid);
    if (!same_stat(p, f->userns_dev, f->userns_ino)) return 0;
    if (env_refused(f, m->envp, m->envp_len, m->envc)) return 0;
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%d\n", m->tgid);
    if (write(t->procs_fd, buf, (size_t)n) != n) return 0;
    snprintf(m->rule, sizeof m->rule, "%s", t->rule);
    return 1;
  }
  return 0;
}

static void fan_unref(struct fan_group *g) {
  if (__atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    pthread_mutex_destroy(&g->mu);
    pthread_mutex_destroy(&g->fast_mu);
    fan_fast_free(&g->fast);
    free(g->pend);
    free(g);
  }
}

static void fan_answer(int group_fd, int fd, int allow) {
  struct fanotify_response resp = {.fd = fd, .response = allow ? FAN_ALLOW : FAN_DENY};
  ssize_t w;
  do w = write(group_fd, &resp, sizeof resp);
  while (w < 0 && errno == EINTR);
  close(fd);
}

/* Reads a whole small /proc file into buf (NUL-terminated); -1 on error. */
static ssize_t read_small(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  while (len + 1 < cap) {
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = 0;
  return (ssize_t)len;
}

static long status_field(const char *text, const char *name) {
  size_t nl = strlen(name);
  for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    if (strncmp(p, name, nl) == 0 && p[nl] == ':') return strtol(p + nl + 1, NULL, 10);
  return -1;
}

#define VEC_BUDGET (4u << 20) /* bytes of strings read per vector at most (ARG_MAX is far lower in practice) */
#define VEC_MAX_COUNT 65536

/* Appends the strings of a NULL-terminated char*[] at `addr` in the task's memory. */
static int read_vec(int mem, uint64_t addr, char **out, size_t *out_len, int *count, int *truncated) {
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  if (!buf) return -1;
  *count = 0;
  uint64_t ptrs[64];
  for (uint64_t at = addr; addr != 0;) {
    ssize_t n = pread(mem, ptrs, sizeof ptrs, (off_t)at);
    if (n < 8) {
      free(buf);
      return -1;
    }
    size_t np = (size_t)n / 8;
    int done = 0;
    for (size_t i = 0; i < np && !done; i++) {
      if (ptrs[i] == 0 || *count >= VEC_MAX_COUNT) {
        if (ptrs[i] != 0) *truncated = 1;
        done = 1;
        break;
      }
      /* one string: read in chunks until its NUL */
      uint64_t s = ptrs[i];
      for (;;) {
        if (len + 4096 + 1 > cap) {
          if (cap >= VEC_BUDGET) {
            *truncated = 1;
            done = 1;
            break;
          }
          char *nb = realloc(buf, cap * 2);
          if (!nb) {
            free(buf);
            return -1;
          }
          buf = nb;
          cap *= 2;
        }
        /* do not cross a page we may not be able to read in one go */
        size_t chunk = 4096 - (size_t)(s & 4095);
        ssize_t m = pread(mem, buf + len, chunk, (off_t)s);
        if (m <= 0) {
          free(buf);
          return -1;
        }
        char *z = memchr(buf + len, 0, (size_t)m);
        if (z) {
          len = (size_t)(z - buf) + 1;
          break;
        }
        len += (size_t)m;
        s += (uint64_t)m;
      }
      if (done) break;
      (*count)++;
    }
    if (done) break;
    at += np * 8;
  }
  *out = buf;
  *out_len = len;
  return 0;
}

/* What the exec'ing task is about to run with: its execve arguments, from /proc/TID/syscall and /proc/TID/mem. */
static void read_exec_args(struct fan_msg *m) {
  char path[64], text[512];
  snprintf(path, sizeof path, "/proc/%d/syscall", m->tid);
  if (read_small(path, text, sizeof text) <= 0) {
    m->sysno = -2;
    snprintf(m->err, sizeof m->err, "cannot read %s: %s", path, strerror(errno));
    return;
  }
  if (strncmp(text, "running", 7) == 0) {
    m->sysno = -1;
    snprintf(m->err, sizeof m->err, "the task is not in a system call");
    return;
  }
  unsigned long long a[7] = {0};
  long nr = strtol(text, NULL, 10);
  char *p = strchr(text, ' ');
  for (int i = 1; i < 7 && p; i++) {
    a[i] = strtoull(p + 1, NULL, 16);
    p = strchr(p + 1, ' ');
  }
  m->sysno = (int)nr;
  uint64_t argv, envp;
  if (nr == 59) { /* x86_64 execve(filename, argv, envp) */
    argv = a[2];
    envp = a[3];
  } else if (nr == 322) { /* x86_64 execveat(dirfd, filename, argv, envp, flags) */
    argv = a[3];
    envp = a[4];
  } else {
    snprintf(m->err, sizeof m->err, "the task is in system call %ld, not execve", nr);
    return;
  }
  snprintf(path, sizeof path, "/proc/%d/mem", m->tid);
  int mem = open(path, O_RDONLY | O_CLOEXEC);
  if (mem < 0) {
    snprintf(m->err, sizeof m->err, "cannot open %s: %s", path, strerror(errno));
    return;
  }
  if (read_vec(mem, argv, &m->argv, &m->argv_len, &m->argc, &m->truncated) != 0 ||
      read_vec(mem, envp, &m->envp, &m->envp_len, &m->envc, &m->truncated) != 0)
    snprintf(m->err, sizeof m->err, "cannot read the new argv/envp from %s", path);
  close(mem);
}

static void fan_msg_free(struct fan_msg *m) {
  free(m->argv);
  free(m->envp);
  free(m);
}

static napi_value string_array(napi_env env, const char *blob, size_t len, int count) {
  napi_value arr, v;
  napi_create_array_with_length(env, (size_t)count, &arr);
  size_t off = 0;
  for (int i = 0; i < count && off < len; i++) {
    size_t l = strnlen(blob + off, len - off);
    /* latin1 keeps every byte: the caller decodes as it likes */
    napi_create_string_latin1(env, blob + off, l, &v);
    napi_set_element(env, arr, (uint32_t)i, v);
    off += l + 1;
  }
  return arr;
}

static void fan_call_js(napi_env env, napi_value js_cb, void *ctx, void *data) {
  (void)ctx;
  struct fan_msg *m = data;
  if (env != NULL && js_cb != NULL) {
    static const char *kinds[] = {"exec", "expired", "overflow", "own-child", "error", "admitted", "held-close"};
    int execlike = m->kind == FAN_EV_EXEC || m->kind == FAN_EV_ADMITTED;
    napi_value o, v, undefined;
    napi_create_object(env, &o);
    napi_set_named_property(env, o, "kind", str(env, kinds[m->kind]));
    napi_create_double(env, (double)m->id, &v);
    napi_set_named_property(env, o, "id", v);
    if (execlike || m->kind == FAN_EV_OWN_CHILD || m->kind == FAN_EV_EXPIRED || m->kind == FAN_EV_HELD_CLOSE) {
      napi_create_int32(env, m->tid, &v);
      napi_set_named_property(env, o, "tid", v);
    }
    if (execlike || m->kind == FAN_EV_OWN_CHILD) {
      napi_create_int32(env, m->tgid, &v);
      napi_set_named_property(env, o, "tgid", v);
      napi_create_int32(env, m->ppid, &v);
      napi_set_named_property(env, o, "ppid", v);
      napi_create_int64(env, m->uid, &v);
      napi_set_named_property(env, o, "uid", v);
      napi_create_int32(env, m->threads, &v);
      napi_set_named_property(env, o, "threads", v);
      napi_set_named_property(env, o, "path", str(env, m->path));
      napi_create_bigint_uint64(env, m->dev, &v);
      napi_set_named_property(env, o, "dev", v);
      napi_create_bigint_uint64(env, m->ino, &v);
      napi_set_named_property(env, o, "ino", v);
    }
    if (execlike) {
      napi_create_int32(env, m->inet_sockets, &v);
      napi_set_named_property(env, o, "inetSockets", v);
    }
    if (execlike && m->caller_ino != 0) {
      napi_create_bigint_uint64(env, m->caller_dev, &v);
      napi_set_named_property(env, o, "callerDev", v);
      napi_create_bigint_uint64(env, m->caller_ino, &v);
      napi_set_named_property(env, o, "callerIno", v);
    }
    if (m->kind == FAN_EV_ADMITTED) {
      napi_set_named_property(env, o, "rule", str(env, m->rule));
      napi_create_bigint_uint64(env, m->answered_ns, &v);
      napi_set_named_property(env, o, "answeredAtNs", v);
    }
    if (execlike) {
      napi_create_bigint_uint64(env, m->read_ns, &v);
      napi_set_named_property(env, o, "readAtNs", v);
      napi_create_int32(env, m->sysno, &v);
      napi_set_named_property(env, o, "syscall", v);
      napi_set_named_property(env, o, "argv", string_array(env, m->argv, m->argv_len, m->argv ? m->argc : 0));
      napi_set_named_property(env, o, "envp", string_array(env, m->envp, m->envp_len, m->envp ? m->envc : 0));
      napi_get_boolean(env, m->truncated != 0, &v);
      napi_set_named_property(env, o, "truncated", v);
    }
    if (m->err[0]) napi_set_named_property(env, o, "error", str(env, m->err));
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, js_cb, 1, &o, NULL);
  }
  fan_msg_free(m);
}

static void fan_send(struct fan_group *g, struct fan_msg *m) {
  if (napi_call_threadsafe_function(g->tsfn, m, napi_tsfn_blocking) != napi_ok) fan_msg_free(m);
}

/*
 * How many AF_INET/AF_INET6 sockets task `tid` holds now; -1 when it cannot be told. At a
 * held exec its fd table still holds every descriptor, close-on-exec ones included (they
 * are closed after the point of no return), and moving the task into a net_cls cgroup
 * re-tags every socket in that table (net_cls's attach, update_classid_task), also the
 * ones it shares with the process that forked it: an unnamed parent would gain the
 * tunnel on a shared socket (a fresh tester). Each socket fd is duplicated with
 * pidfd_getfd(2) to ask its domain (SO_DOMAIN); unix sockets do not matter here.
 */
static int inet_sockets_of(int tid) {
  char path[64], link[64];
  snprintf(path, sizeof path, "/proc/%d/fd", tid);
  DIR *d = opendir(path);
  if (!d) return -1;
  int pidfd = -1, n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    char fdpath[96];
    snprintf(fdpath, sizeof fdpath, "%s/%s", path, de->d_name);
    ssize_t l = readlink(fdpath, link, sizeof link - 1);
    if (l <= 0) continue;
    link[l] = 0;
    if (strncmp(link, "socket:", 7) != 0) continue;
    if (pidfd < 0) pidfd = (int)syscall(SYS_pidfd_open, tid, 0);
    int fd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, atoi(de->d_name), 0);
    if (fd < 0) {
      n = -1;
      break;
    }
    int domain = 0;
    socklen_t len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) domain = -1;
    close(fd);
    if (domain == AF_INET || domain == AF_INET6 || domain == -1) n++;
  }
  closedir(d);
  if (pidfd >= 0) close(pidfd);
  return n;
}

static void fan_handle_perm(struct fan_group *g, const struct fanotify_event_metadata *md, uint64_t read_ns) {
  struct fan_msg *m = calloc(1, sizeof *m);
  if (!m) {
    fan_answer(g->fd, md->fd, 1);
    return;
  }
  m->read_ns = read_ns;
  m->tid = md->pid;
  char path[64], status[4096];
  snprintf(path, sizeof path, "/proc/self/fd/%d", md->fd);
  ssize_t n = readlink(path, m->path, sizeof m->path - 1);
  m->path[n > 0 ? n : 0] = 0;
  struct stat st;
  if (fstat(md->fd, &st) == 0) {
    m->dev = (uint64_t)st.st_dev;
    m->ino = (uint64_t)st.st_ino;
  }
  snprintf(path, sizeof path, "/proc/%d/status", md->pid);
  if (read_small(path, status, sizeof status) > 0) {
    m->tgid = (int)status_field(status, "Tgid");
    m->ppid = (int)status_field(status, "PPid");
    m->uid = status_field(status, "Uid");
    m->threads = (int)status_field(status, "Threads");
    m->tracer = status_field(status, "TracerPid");
  } else {
    m->tgid = m->ppid = m->threads = -1;
    m->uid = m->tracer = -1;
  }
  if (g->pass_own_children && m->ppid == getpid()) {
    /* Our own child: the event loop may be blocked in uv_spawn waiting for this very exec. */
    fan_answer(g->fd, md->fd, 1);
    m->kind = FAN_EV_OWN_CHILD;
    fan_send(g, m);
    return;
  }
  g->held[g->held_next++ % 64] = (typeof(g->held[0])){.tid = m->tid, .at_ms = now_ms()};
  read_exec_args(m);
  m->inet_sockets = inet_sockets_of(md->pid);
  snprintf(path, sizeof path, "/proc/%d/exe", md->pid);
  if (stat(path, &st) == 0) {
    m->caller_dev = (uint64_t)st.st_dev;
    m->caller_ino = (uint64_t)st.st_ino;
  }
  pthread_mutex_lock(&g->fast_mu);
  int admitted = fan_try_ticket(g, md->fd, m);
  pthread_mutex_unlock(&g->fast_mu);
  if (admitted) {
    fan_answer(g->fd, md->fd, 1);
    m->answered_ns = now_ns();
    m->kind = FAN_EV_ADMITTED;
    fan_send(g, m);
    return;
  }
  pthread_mutex_lock(&g->mu);
  if (g->npend == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 16;
    struct fan_pending *p = realloc(g->pend, cap * sizeof *p);
    if (!p) {
      pthread_mutex_unlock(&g->mu);
      fan_answer(g->fd, md->fd, 1);
      fan_msg_free(m);
      return;
    }
    g->pend = p;
    g->cap = cap;
  }
  m->id = ++g->next_id;
  m->kind = FAN_EV_EXEC;
  g->pend[g->npend++] = (struct fan_pending){.id = m->id, .fd = md->fd, .tid = m->tid, .deadline = now_ms() + g->deadline_ms};
  pthread_mutex_unlock(&g->mu);
  fan_send(g, m);
}

/*
 * A marked file closed (FAN_CLOSE_NOWRITE, a notification) by a task whose exec of it was
 * held within the last 5 s: that exec did not keep the file, so it failed after the hold
 * (execve(2) copies argv and envp after opening the file: E2BIG, EFAULT, ENOMEM, a bad
 * ELF fail there, and the file's last reference goes on the way back to user space), or
 * the process has exited since. A successful exec keeps the file (mm->exe_file, its
 * mappings) until the process ends. JS then looks at the process at once.
 */
static void fan_handle_close(struct fan_group *g, const struct fanotify_event_metadata *md) {
  int64_t now = now_ms();
  for (unsigned i = 0; i < 64; i++) {
    if (g->held[i].tid != md->pid || g->held[i].tid <= 0 || now - g->held[i].at_ms > 5000) continue;
    g->held[i].tid = 0;
    struct fan_msg *m = calloc(1, sizeof *m);
    if (!m) return;
    m->kind = FAN_EV_HELD_CLOSE;
    m->tid = md->pid;
    fan_send(g, m);
    return;
  }
}

/* Answers FAN_ALLOW to every event past its deadline; returns ms to the next deadline, or -1. */
static int fan_expire(struct fan_group *g) {
  int64_t now = now_ms(), next = -1;
  pthread_mutex_lock(&g->mu);
  for (size_t i = 0; i < g->npend;) {
    struct fan_pending *p = &g->pend[i];
    if (p->deadline <= now) {
      struct fan_msg *m = calloc(1, sizeof *m);
      fan_answer(g->fd, p->fd, 1);
      if (m) {
        m->kind = FAN_EV_EXPIRED;
        m->id = p->id;
        m->tid = p->tid;
      }
      g->pend[i] = g->pend[--g->npend];
      if (m) fan_send(g, m);
      continue;
    }
    if (next < 0 || p->deadline - now < next) next = p->deadline - now;
    i++;
  }
  pthread_mutex_unlock(&g->mu);
  return (int)next;
}

static void *fan_main(void *arg) {
  struct fan_group *g = arg;
  /* aligned for struct fanotify_event_metadata */
  static __thread uint64_t buf64[8192 / 8];
  char *buf = (char *)buf64;
  int timeout = -1;
  while (!g->stop) {
    struct pollfd fds[2] = {{.fd = g->fd, .events = POLLIN}, {.fd = g->wake, .events = POLLIN}};
    int r = poll(fds, 2, timeout);
    if (r < 0 && errno != EINTR) break;
    if (fds[1].revents & POLLIN) {
      uint64_t v;
      if (read(g->wake, &v, sizeof v) < 0) { /* nothing to do */ }
    }
    if (fds[0].revents & POLLIN) {
      for (;;) {
        ssize_t n = read(g->fd, buf, sizeof buf64);
        if (n <= 0) break;
        uint64_t read_ns = now_ns();
        const struct fanotify_event_metadata *md = (const void *)buf;
        for (; FAN_EVENT_OK(md, n); md = FAN_EVENT_NEXT(md, n)) {
          if (md->vers != FANOTIFY_METADATA_VERSION) continue;
          if (md->mask & FAN_Q_OVERFLOW) {
            struct fan_msg *m = calloc(1, sizeof *m);
            if (m) {
              m->kind = FAN_EV_OVERFLOW;
              fan_send(g, m);
            }
          }
          if (md->fd < 0) continue;
          if (md->mask & FAN_OPEN_EXEC_PERM) fan_handle_perm(g, md, read_ns);
          else {
            if (md->mask & FAN_CLOSE_NOWRITE) fan_handle_close(g, md);
            close(md->fd);
          }
        }
      }
    }
    timeout = fan_expire(g);
  }
  pthread_mutex_lock(&g->mu);
  for (size_t i = 0; i < g->npend; i++) fan_answer(g->fd, g->pend[i].fd, 1);
  g->npend = 0;
  close(g->fd);
  g->fd = -1;
  pthread_mutex_unlock(&g->mu);
  close(g->wake);
  napi_release_threadsafe_function(g->tsfn, napi_tsfn_release);
  return NULL;
}

static struct fan_group *fan_this(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  struct fan_group *g = NULL;
  napi_get_cb_info(env, info, argc, argv, NULL, (void **)&g);
  return g;
}

/* respond(id, allow): true if the event was still held (and is answered now). */
static napi_value fan_respond(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  double idd;
  bool allow;
  struct fan_group *g = fan_this(env, info, &argc, argv);
  if (argc != 2 || napi_get_value_double(env, argv[0], &idd) != napi_ok || napi_get_value_bool(env, argv[1], &allow) != napi_ok) {
    napi_throw_type_error(env, NULL, "respond(id, allow)");
    return NULL;
  }
  uint64_t id = (uint64_t)idd;
  bool found = false;
  pthread_mutex_lock(&g->mu);
  for (size_t i = 0; i < g->npend && g->fd >= 0; i++) {
    if (g->pend[i].id != id) continue;
    fan_answer(g->fd, g->pend[i].fd, allow);
    g->pend[i] = g->pend[--g->npend];
    found = true;
    break;
  }
  pthread_mutex_unlock(&g->mu);
  napi_get_boolean(env, found, &out);
  return out;
}

/*
 * mark(path, children): { fd, dev, ino }. Marks the inode `path` names now (symlinks
 * followed) with FAN_OPEN_EXEC_PERM, through an fd the caller keeps for unmark: the mark
 * stays with that inode whatever later happens to the path (rename-over, unlink).
 * `children`: path is a directory and the mark covers execs of the files directly in it
 * (FAN_EVENT_ON_CHILD).
 */
static napi_value fan_mark(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out, v;
  char path[4096];
  size_t len;
  bool children = false;
  struct fan_group *g = fan_this(env, info, &argc, argv);
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok || len == 0 ||
      (argc > 1 && napi_get_value_bool(env, argv[1], &children) != napi_ok)) {
    napi_throw_type_error(env, NULL, "mark(path, children?)");
    return NULL;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC | (children ? O_DIRECTORY : 0));
  if (fd < 0) return throw_errno(env, path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0 || (!children && !S_ISREG(st.st_mode))) {
    int err = errno;
    close(fd);
    if (!children && err == 0) err = EINVAL;
    return throw_errno(env, "fanotify mark: not a regular file", err ? err : EINVAL);
  }
  uint64_t mask = FAN_OPEN_EXEC_PERM | FAN_CLOSE_NOWRITE | (children ? FAN_EVENT_ON_CHILD : 0);
  /* under the lock: the reader thread closes the group's fd (and sets -1) under it */
  pthread_mutex_lock(&g->mu);
  int rc = g->fd < 0 ? (errno = EBADF, -1) : fanotify_mark(g->fd, FAN_MARK_ADD | (children ? FAN_MARK_ONLYDIR : 0), mask, fd, NULL);
  int err = errno;
  pthread_mutex_unlock(&g->mu);
  if (rc != 0) {
    close(fd);
    return throw_errno(env, "fanotify_mark(FAN_MARK_ADD)", err);
  }
  napi_create_object(env, &out);
  napi_create_int32(env, fd, &v);
  napi_set_named_property(env, out, "fd", v);
  napi_create_bigint_uint64(env, (uint64_t)st.st_dev, &v);
  napi_set_named_property(env, out, "dev", v);
  napi_create_bigint_uint64(env, (uint64_t)st.st_ino, &v);
  napi_set_named_property(env, out, "ino", v);
  return out;
}

/* unmark(fd): removes the mark of the inode held by fd (from mark()) and closes fd. */
static napi_value fan_unmark(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  struct fan_group *g = fan_this(env, info, &argc, argv);
  if (argc != 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "unmark(fd)");
    return NULL;
  }
  int err = 0;
  pthread_mutex_lock(&g->mu);
  if (g->fd >= 0 && fanotify_mark(g->fd, FAN_MARK_REMOVE, FAN_OPEN_EXEC_PERM | FAN_CLOSE_NOWRITE | FAN_EVENT_ON_CHILD, fd, NULL) != 0 && errno != ENOENT)
    err = errno;
  pthread_mutex_unlock(&g->mu);
  close(fd);
  if (err) return throw_errno(env, "fanotify_mark(FAN_MARK_REMOVE)", err);
  return NULL;
}

/*
 * setTickets(buffer): replaces every verdict ticket at once (see fan_try_ticket; the
 * buffer's layout is TicketSet's in helper/native/index.ts). An empty buffer drops them
 * all. Returns when no exec is being admitted under an old ticket any more. Throws a
 * TypeError for a malformed buffer and the errno of a cgroup.procs that cannot be opened
 * (the old tickets are dropped then too).
 */
static napi_value fan_set_tickets(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data;
  size_t len;
  struct fan_group *g = fan_this(env, info, &argc, argv);
  if (argc != 1 || napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "setTickets(buffer)");
    return NULL;
  }
  struct fan_fast next = {0}, old;
  int rc = 0, err = 0;
  if (len > 0) {
    struct tok k = {.p = data, .end = (const char *)data + len, .bad = 0};
    rc = fan_fast_parse(&k, &next);
    err = errno;
    if (rc != 0) fan_fast_free(&next);
  }
  pthread_mutex_lock(&g->fast_mu);
  old = g->fast;
  g->fast = next;
  pthread_mutex_unlock(&g->fast_mu);
  fan_fast_free(&old);
  if (rc != 0) return err ? throw_errno(env, "exec hold tickets", err) : (napi_throw_type_error(env, NULL, "setTickets: malformed buffer"), NULL);
  return NULL;
}

static napi_value fan_pending_count(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value out;
  struct fan_group *g = fan_this(env, info, &argc, NULL);
  pthread_mutex_lock(&g->mu);
  napi_create_uint32(env, (uint32_t)g->npend, &out);
  pthread_mutex_unlock(&g->mu);
  return out;
}

/* close(): allow everything still held, close the group; idempotent. */
static napi_value fan_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  struct fan_group *g = fan_this(env, info, &argc, NULL);
  if (!g->stop) {
    g->stop = 1;
    uint64_t one = 1;
    if (write(g->wake, &one, sizeof one) < 0) { /* the thread polls it; cannot fail short of EBADF */ }
  }
  return NULL;
}

static void fan_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct fan_group *g = data;
  if (g->started) pthread_join(g->thread, NULL);
  fan_unref(g);
}

static void fan_handle_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  fan_unref(data);
}

static void add_method(napi_env env, napi_value obj, const char *name, napi_callback cb, void *data) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, data, &fn);
  napi_set_named_property(env, obj, name, fn);
}

/*
 * fanotifyOpen(onEvent, deadlineMs, passOwnChildren): { respond, mark, unmark, pending, close }.
 * Throws with errno text when fanotify_init fails (EPERM without CAP_SYS_ADMIN, EINVAL
 * where permission events are not built in: CONFIG_FANOTIFY_ACCESS_PERMISSIONS).
 */
static napi_value fanotify_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], name, out;
  int32_t deadline_ms;
  bool pass_own = true;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 ||
      napi_get_value_int32(env, argv[1], &deadline_ms) != napi_ok || deadline_ms < 1 ||
      napi_get_value_bool(env, argv[2], &pass_own) != napi_ok) {
    napi_throw_type_error(env, NULL, "fanotifyOpen(onEvent, deadlineMs >= 1, passOwnChildren)");
    return NULL;
  }
  int fd = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_TID | FAN_UNLIMITED_MARKS,
                         O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "fanotify_init(FAN_CLASS_CONTENT)", errno);
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "eventfd", err);
  }
  struct fan_group *g = calloc(1, sizeof *g);
  if (!g) {
    close(fd);
    close(wake);
    return throw_errno(env, "calloc", ENOMEM);
  }
  g->fd = fd;
  g->wake = wake;
  g->deadline_ms = deadline_ms;
  g->pass_own_children = pass_own;
  g->refs = 2;
  pthread_mutex_init(&g->mu, NULL);
  pthread_mutex_init(&g->fast_mu, NULL);
  napi_create_string_utf8(env, "tunnelgate-fanotify", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, g, fan_finalize, NULL, fan_call_js, &g->tsfn) != napi_ok) {
    close(fd);
    close(wake);
    free(g);
    napi_throw_error(env, NULL, "napi_create_threadsafe_function failed");
    return NULL;
  }
  g->started = 1;
  if (pthread_create(&g->thread, NULL, fan_main, g) != 0) {
    g->started = 0;
    int err = errno;
    close(fd);
    close(wake);
    g->refs = 1; /* no JS handle will hold it */
    napi_release_threadsafe_function(g->tsfn, napi_tsfn_abort);
    return throw_errno(env, "pthread_create", err);
  }
  napi_create_object(env, &out);
  add_method(env, out, "respond", fan_respond, g);
  add_method(env, out, "mark", fan_mark, g);
  add_method(env, out, "unmark", fan_unmark, g);
  add_method(env, out, "pending", fan_pending_count, g);
  add_method(env, out, "setTickets", fan_set_tickets, g);
  add_method(env, out, "close", fan_close, g);
  napi_add_finalizer(env, out, g, fan_handle_finalize, NULL, NULL);
  return out;
}

static void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

void bpf_exports(napi_env env, napi_value exports); /* bpf.c */

static napi_value init(napi_env env, napi_value exports) {
  export_fn(env, exports, "peerCred", peer_cred);
  export_fn(env, exports, "ptraceSeize", ptrace_seize);
  export_fn(env, exports, "ptracePollExec", ptrace_poll_exec);
  export_fn(env, exports, "ptraceDetach", ptrace_detach);
  export_fn(env, exports, "ptraceResume", ptrace_resume);
  export_fn(env, exports, "netlinkOpen", netlink_open);
  export_fn(env, exports, "netlinkSend", netlink_send);
  export_fn(env, exports, "netlinkListen", netlink_listen);
  export_fn(env, exports, "netlinkSetFilter", netlink_set_filter);
  export_fn(env, exports, "fanotifyOpen", fanotify_open);
  export_fn(env, exports, "syslog", syslog_msg);
  bpf_exports(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
