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
#include <sys/time.h>
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

static void *reader_main(void *arg) {
  struct reader *r = arg;
  unsigned char *buf = malloc(65536);
  while (buf && !r->stop) {
    ssize_t n = recv(r->fd, buf, 65536, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      if (errno == ENOBUFS) n = 0; /* the kernel dropped messages: tell JS with an empty buffer */
      else break;
    }
    struct datagram *d = malloc(sizeof *d + (size_t)n);
    if (!d) break;
    d->len = (size_t)n;
    memcpy(d->bytes, buf, (size_t)n);
    if (napi_call_threadsafe_function(r->tsfn, d, napi_tsfn_blocking) != napi_ok) {
      free(d);
      break;
    }
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
  return NULL;
}

static napi_value netlink_listen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name, stop;
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "netlinkListen(fd, callback)");
    return NULL;
  }
  struct reader *r = calloc(1, sizeof *r);
  if (!r) return throw_errno(env, "calloc", ENOMEM);
  r->fd = fd;
  napi_create_string_utf8(env, "tunnelgate-netlink", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, r, reader_finalize, NULL, call_js, &r->tsfn) != napi_ok) {
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

static void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

static napi_value init(napi_env env, napi_value exports) {
  export_fn(env, exports, "peerCred", peer_cred);
  export_fn(env, exports, "ptraceSeize", ptrace_seize);
  export_fn(env, exports, "ptracePollExec", ptrace_poll_exec);
  export_fn(env, exports, "ptraceDetach", ptrace_detach);
  export_fn(env, exports, "netlinkOpen", netlink_open);
  export_fn(env, exports, "netlinkSend", netlink_send);
  export_fn(env, exports, "netlinkListen", netlink_listen);
  export_fn(env, exports, "syslog", syslog_msg);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
