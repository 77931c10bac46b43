/*
 * The one thing Node cannot ask the kernel for: who is on the other end of a
 * unix socket. SO_PEERCRED is filled in by the kernel at connect() time, so a
 * client cannot lie about it. Everything else stays in TypeScript.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
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

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "peerCred", NAPI_AUTO_LENGTH, peer_cred, NULL, &fn);
  napi_set_named_property(env, exports, "peerCred", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
