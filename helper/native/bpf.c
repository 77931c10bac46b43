/*
 * The bpf(2) system call, for helper/kernel/send-trace.ts: create maps, load a program
 * (assembled and checked in TypeScript against the running kernel's BTF), attach it with
 * BPF_RAW_TRACEPOINT_OPEN (a raw tracepoint, or an LSM/tracing program by its BTF id), and
 * look a map element up. Every object is an fd of this process: when the helper exits, for
 * any reason, the kernel detaches the programs and frees the maps. No libbpf: the few
 * commands used are stable uapi (include/uapi/linux/bpf.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <node_api.h>

static long sys_bpf(int cmd, union bpf_attr *attr) {
  return syscall(__NR_bpf, cmd, attr, sizeof *attr);
}

static napi_value bpf_throw(napi_env env, const char *what, int err, const char *log) {
  char msg[3072];
  if (log && *log) {
    size_t n = strlen(log);
    const char *tail = n > 2000 ? log + n - 2000 : log;
    snprintf(msg, sizeof msg, "%s: %s\n%s", what, strerror(err), tail);
  } else {
    snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  }
  napi_value code, text, e;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_int32(env, err, &code);
  napi_create_error(env, NULL, text, &e);
  napi_set_named_property(env, e, "errno", code);
  napi_throw(env, e);
  return NULL;
}

static int get_u32(napi_env env, napi_value v, uint32_t *out) {
  return napi_get_value_uint32(env, v, out) == napi_ok ? 0 : -1;
}

/* bpfMapCreate(type, keySize, valueSize, maxEntries, flags, name): fd */
static napi_value bpf_map_create(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  uint32_t type, ks, vs, max, flags;
  char name[BPF_OBJ_NAME_LEN] = {0};
  size_t nl;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 6 || get_u32(env, argv[0], &type) ||
      get_u32(env, argv[1], &ks) || get_u32(env, argv[2], &vs) || get_u32(env, argv[3], &max) || get_u32(env, argv[4], &flags) ||
      napi_get_value_string_utf8(env, argv[5], name, sizeof name, &nl) != napi_ok) {
    napi_throw_type_error(env, NULL, "bpfMapCreate(type, keySize, valueSize, maxEntries, flags, name)");
    return NULL;
  }
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = type;
  a.key_size = ks;
  a.value_size = vs;
  a.max_entries = max;
  a.map_flags = flags;
  memcpy(a.map_name, name, sizeof a.map_name - 1);
  long fd = sys_bpf(BPF_MAP_CREATE, &a);
  if (fd < 0) return bpf_throw(env, "BPF_MAP_CREATE", errno, NULL);
  napi_value out;
  napi_create_int32(env, (int32_t)fd, &out);
  return out;
}

/* bpfProgLoad(type, expectedAttachType, attachBtfId, insns, name): fd; throws with the verifier's log */
static napi_value bpf_prog_load(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  uint32_t type, eat, btf_id;
  void *insns;
  size_t len, nl;
  char name[BPF_OBJ_NAME_LEN] = {0};
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5 || get_u32(env, argv[0], &type) ||
      get_u32(env, argv[1], &eat) || get_u32(env, argv[2], &btf_id) ||
      napi_get_buffer_info(env, argv[3], &insns, &len) != napi_ok || len == 0 || len % 8 != 0 ||
      napi_get_value_string_utf8(env, argv[4], name, sizeof name, &nl) != napi_ok) {
    napi_throw_type_error(env, NULL, "bpfProgLoad(type, expectedAttachType, attachBtfId, insns, name)");
    return NULL;
  }
  size_t log_size = 1 << 20;
  char *log = calloc(1, log_size);
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = type;
  a.expected_attach_type = eat;
  a.attach_btf_id = btf_id;
  a.insns = (uint64_t)(uintptr_t)insns;
  a.insn_cnt = (uint32_t)(len / 8);
  a.license = (uint64_t)(uintptr_t) "GPL";
  memcpy(a.prog_name, name, sizeof a.prog_name - 1);
  long fd = sys_bpf(BPF_PROG_LOAD, &a);
  if (fd < 0 && log) {
    /* Again with the verifier's log, to say why. */
    a.log_buf = (uint64_t)(uintptr_t)log;
    a.log_size = (uint32_t)log_size;
    a.log_level = 1;
    fd = sys_bpf(BPF_PROG_LOAD, &a);
  }
  if (fd < 0) {
    int err = errno;
    napi_value r = bpf_throw(env, "BPF_PROG_LOAD", err, log);
    free(log);
    return r;
  }
  free(log);
  napi_value out;
  napi_create_int32(env, (int32_t)fd, &out);
  return out;
}

/* bpfRawTracepointOpen(name | null, progFd): fd (the attachment; closing it detaches) */
static napi_value bpf_raw_tp_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char name[128] = {0};
  size_t nl = 0;
  int32_t prog;
  napi_valuetype t;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 || napi_typeof(env, argv[0], &t) != napi_ok ||
      (t == napi_string && napi_get_value_string_utf8(env, argv[0], name, sizeof name, &nl) != napi_ok) ||
      napi_get_value_int32(env, argv[1], &prog) != napi_ok) {
    napi_throw_type_error(env, NULL, "bpfRawTracepointOpen(name | null, progFd)");
    return NULL;
  }
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.raw_tracepoint.name = t == napi_string ? (uint64_t)(uintptr_t)name : 0;
  a.raw_tracepoint.prog_fd = (uint32_t)prog;
  long fd = sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &a);
  if (fd < 0) return bpf_throw(env, "BPF_RAW_TRACEPOINT_OPEN", errno, NULL);
  napi_value out;
  napi_create_int32(env, (int32_t)fd, &out);
  return out;
}

/* bpfMapLookup(mapFd, key, valueSize): Buffer, or null when there is no such element */
static napi_value bpf_map_lookup(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  uint32_t vs;
  void *key;
  size_t kl;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &key, &kl) != napi_ok || get_u32(env, argv[2], &vs) || vs == 0 || vs > (1 << 20)) {
    napi_throw_type_error(env, NULL, "bpfMapLookup(mapFd, key, valueSize)");
    return NULL;
  }
  void *val;
  napi_value out;
  if (napi_create_buffer(env, vs, &val, &out) != napi_ok) return NULL;
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = (uint32_t)fd;
  a.key = (uint64_t)(uintptr_t)key;
  a.value = (uint64_t)(uintptr_t)val;
  if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &a) != 0) {
    if (errno == ENOENT) {
      napi_get_null(env, &out);
      return out;
    }
    return bpf_throw(env, "BPF_MAP_LOOKUP_ELEM", errno, NULL);
  }
  return out;
}

/* bpfClose(fd) */
static napi_value bpf_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "bpfClose(fd)");
    return NULL;
  }
  close(fd);
  return NULL;
}

void bpf_exports(napi_env env, napi_value exports);
void bpf_exports(napi_env env, napi_value exports) {
  const struct { const char *name; napi_callback cb; } fns[] = {
    {"bpfMapCreate", bpf_map_create}, {"bpfProgLoad", bpf_prog_load}, {"bpfRawTracepointOpen", bpf_raw_tp_open},
    {"bpfMapLookup", bpf_map_lookup}, {"bpfClose", bpf_close},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn);
    napi_set_named_property(env, exports, fns[i].name, fn);
  }
}
