/*
 * test_harden.c -- regression tests for the hardening issue (13): one
 * principal grammar at every entry point, error paths that must not read
 * freed JSON, numeric edge cases of vectors and norms.
 *
 * Each test feeds the public C API (real LMDB, real files); none mocks a
 * component.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "warden.h"

/* ------------------------------------------------------------- fixture */

typedef struct fx {
  char dir[64];
  char sub[96];
  warden *db;
} fx;

static void rm_rf(const char *dir) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", dir);
}

static void write_file(const char *path, const char *text, size_t len) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, len, f), len);
  fclose(f);
}

static void fx_open(fx *f, unsigned dim, const char *metric) {
  strcpy(f->dir, "/tmp/wd_harden_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->sub, sizeof f->sub, "%s/c", f->dir);
  char err[512] = "";
  warden_create_opts co = {dim, metric, NULL};
  int rc = warden_create(f->sub, &co, err, sizeof err);
  if (rc) fprintf(stderr, "create: %s\n", err);
  assert_int_equal(rc, 0);
  rc = warden_open(f->sub, NULL, &f->db, err, sizeof err);
  if (rc) fprintf(stderr, "open: %s\n", err);
  assert_int_equal(rc, 0);
}

static void fx_close(fx *f) {
  warden_close(f->db);
  rm_rf(f->dir);
}

static uint64_t revision(warden *db) {
  uint64_t r = 0;
  assert_int_equal(warden_revision(db, &r), 0);
  return r;
}

static int ingest(warden *db, const char *text) {
  return warden_ingest_buffer(db, "t.jsonl", text, strlen(text), NULL, NULL);
}

/* s as the inside of a JSON string: controls as \u00XX, quote and
 * backslash escaped, every other byte as is (invalid UTF-8 stays invalid,
 * so the JSON parser sees exactly these bytes). */
static void json_esc(const char *s, char *out, size_t cap) {
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p && o + 8 < cap; p++) {
    if (*p < 0x20) o += (size_t)snprintf(out + o, cap - o, "\\u%04x", *p);
    else if (*p == '"' || *p == '\\') out[o++] = '\\', out[o++] = (char)*p;
    else out[o++] = (char)*p;
  }
  out[o] = 0;
}

/* ------------------------------- no JSON value read after it was freed */

/* A jansson allocator whose free scribbles over the block and keeps it in
 * quarantine, so a read after json_decref sees garbage (ASan does not see
 * reads inside uninstrumented jansson). */
#define QUAR 4096
static void *quar[QUAR];
static size_t nquar;
static void scribble_free(void *p) {
  if (!p) return;
  memset(p, 0x5a, malloc_usable_size(p));
  if (nquar == QUAR) {
    free(quar[0]);
    memmove(quar, quar + 1, (QUAR - 1) * sizeof *quar);
    nquar--;
  }
  quar[nquar++] = p;
}
static void quar_drain(void) {
  for (size_t i = 0; i < nquar; i++) free(quar[i]);
  nquar = 0;
}

static void test_error_paths_read_no_freed_json(void **state) {
  (void)state;
  fx f;
  fx_open(&f, 4, "l2");
  json_set_alloc_funcs(malloc, scribble_free);
  const char *g[] = {"group:ok", "user:notagroup"};
  int rc = warden_principal_set(f.db, "user:a", g, 2, NULL);
  char msg[512];
  snprintf(msg, sizeof msg, "%s", warden_errmsg(f.db));
  char path[256];
  snprintf(path, sizeof path, "%s/p.jsonl", f.dir);
  const char line[] = "{\"principal\":\"user:b\",\"groups\":[\"user:notagroup2\"]}\n";
  write_file(path, line, sizeof line - 1);
  int rc2 = warden_principals_sync(f.db, path, NULL, NULL);
  char msg2[512];
  snprintf(msg2, sizeof msg2, "%s", warden_errmsg(f.db));
  json_set_alloc_funcs(malloc, free);
  quar_drain();
  assert_int_equal(rc, WARDEN_EDATA);
  assert_non_null(strstr(msg, "\"user:notagroup\" is not a group"));
  assert_int_equal(rc2, WARDEN_EDATA);
  assert_non_null(strstr(msg2, "\"user:notagroup2\" is not a group"));
  fx_close(&f);
}

int main(void) {
  (void)json_esc;
  (void)ingest;
  (void)revision;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_paths_read_no_freed_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
