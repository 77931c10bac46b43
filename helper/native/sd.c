// The systemd side of the helper: one AF_UNIX datagram send, used for sd_notify(3)
// (READY=1, STATUS=..., to $NOTIFY_SOCKET) and for the journal's native protocol
// (KEY=VALUE fields to /run/systemd/journal/socket). Node has no unix datagram sockets.
// A separate addon (tunnelgate_sd.node), so native.c stays as it is.
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <node_api.h>

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

// unixDgramSend(path: string, data: Buffer): void. A path starting with '@' names an
// abstract socket (systemd's NOTIFY_SOCKET may be one). Throws on any error (ENOENT:
// no such socket; EMSGSIZE: the datagram is larger than the socket's buffer allows).
static napi_value unix_dgram_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "unixDgramSend(path, buffer)");
    return NULL;
  }
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], sa.sun_path, sizeof sa.sun_path, &len) != napi_ok || len == 0 ||
      len >= sizeof sa.sun_path - 1) {
    napi_throw_type_error(env, NULL, "unixDgramSend: path must be a non-empty string shorter than 107 bytes");
    return NULL;
  }
  if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';
  void *data = NULL;
  size_t size = 0;
  bool is_buffer = false;
  napi_is_buffer(env, argv[1], &is_buffer);
  if (!is_buffer || napi_get_buffer_info(env, argv[1], &data, &size) != napi_ok) {
    napi_throw_type_error(env, NULL, "unixDgramSend: data must be a Buffer");
    return NULL;
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket(AF_UNIX, SOCK_DGRAM)", errno);
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (sa.sun_path[0] ? 1 : 0));
  ssize_t n = sendto(fd, data, size, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
  int err = errno;
  close(fd);
  if (n < 0) return throw_errno(env, "sendto", err);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "unixDgramSend", NAPI_AUTO_LENGTH, unix_dgram_send, NULL, &fn);
  napi_set_named_property(env, exports, "unixDgramSend", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
