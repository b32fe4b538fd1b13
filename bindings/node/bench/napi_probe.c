/*
 * napi_probe.c -- a minimal N-API addon used only by bench/overhead.mjs to
 * compare per-call overhead against koffi: warden_dimension() called
 * synchronously, and a trivial call (warden_dimension) run as napi async
 * work (the pattern an N-API binding would use to keep queries off the
 * event loop).  Built by the bench script with cc; not part of the package.
 */
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct warden warden;
unsigned warden_dimension(const warden *db);

static warden *handle_of(napi_env env, napi_value v) {
  uint64_t addr = 0;
  bool lossless;
  napi_get_value_bigint_uint64(env, v, &addr, &lossless);
  return (warden *)(uintptr_t)addr;
}

static napi_value dim_sync(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_create_uint32(env, warden_dimension(handle_of(env, argv[0])), &out);
  return out;
}

typedef struct job {
  napi_async_work work;
  napi_ref cb;
  warden *db;
  unsigned res;
} job;

static void exec(napi_env env, void *data) {
  (void)env;
  job *j = data;
  j->res = warden_dimension(j->db);
}

static void done(napi_env env, napi_status st, void *data) {
  (void)st;
  job *j = data;
  napi_value cb, undef, argv[2];
  napi_get_reference_value(env, j->cb, &cb);
  napi_get_undefined(env, &undef);
  napi_get_null(env, &argv[0]);
  napi_create_uint32(env, j->res, &argv[1]);
  napi_call_function(env, undef, cb, 2, argv, NULL);
  napi_delete_reference(env, j->cb);
  napi_delete_async_work(env, j->work);
  free(j);
}

static napi_value dim_async(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  job *j = calloc(1, sizeof *j);
  j->db = handle_of(env, argv[0]);
  napi_create_reference(env, argv[1], 1, &j->cb);
  napi_create_string_utf8(env, "dim", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, exec, done, j, &j->work);
  napi_queue_async_work(env, j->work);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value f;
  napi_create_function(env, "dimSync", NAPI_AUTO_LENGTH, dim_sync, NULL, &f);
  napi_set_named_property(env, exports, "dimSync", f);
  napi_create_function(env, "dimAsync", NAPI_AUTO_LENGTH, dim_async, NULL, &f);
  napi_set_named_property(env, exports, "dimAsync", f);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
