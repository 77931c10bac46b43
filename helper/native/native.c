/*
 * The one thing Node cannot ask the kernel for: who is on the other end of a
 * unix socket. SO_PEERCRED is filled in by the kernel at connect() time, so a
 * client cannot lie about it; and ptrace, to hold a launched program at its exec
 * until the helper has verified it. Everything else stays in TypeScript.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <signal.h>
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
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
