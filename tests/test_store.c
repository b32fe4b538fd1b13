/*
 * test_store.c -- the store through the public API: the LMDB map growing
 * under a large transaction, upserts replacing chunks atomically, deletes
 * removing everything, long doc_ids (the hashed-key path), counters, and
 * the export/ingest round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warden.h"

static char tmp[64];
static char cdir[128];

static warden *fresh(unsigned dim, const char *metric) {
  snprintf(tmp, sizeof tmp, "/tmp/warden-store-XXXXXX");
  assert_non_null(mkdtemp(tmp));
  snprintf(cdir, sizeof cdir, "%s/c", tmp);
  warden_create_opts co = {dim, metric, NULL};
  char err[512];
  if (warden_create(cdir, &co, err, sizeof err)) fail_msg("create: %s", err);
  warden *db;
  if (warden_open(cdir, NULL, &db, err, sizeof err)) fail_msg("open: %s", err);
  return db;
}

static void cleanup(warden *db) {
  warden_close(db);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  assert_int_equal(system(cmd), 0);
}

static long json_int(const char *json, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = strstr(json, pat);
  if (!p) fail_msg("%s not in %s", key, json);
  return atol(p + strlen(pat));
}

typedef struct sbuf {
  char *b;
  size_t n, cap;
} sbuf;
static int sbuf_write(void *ctx, const char *buf, size_t len) {
  sbuf *s = ctx;
  if (s->n + len + 1 > s->cap) {
    s->cap = (s->n + len + 1) * 2;
    s->b = realloc(s->b, s->cap);
  }
  memcpy(s->b + s->n, buf, len);
  s->n += len;
  s->b[s->n] = 0;
  return 0;
}

/* A transaction far larger than the initial map: the map must grow and the
 * operation rerun, invisibly to the caller. */
static void test_map_grows(void **state) {
  (void)state;
  setenv("WARDEN_MAPSIZE", "262144", 1); /* 256 KiB */
  warden *db = fresh(64, "l2");
  unsetenv("WARDEN_MAPSIZE");
  size_t cap = 3000 * 1200;
  char *buf = malloc(cap), *o = buf;
  for (int i = 0; i < 3000; i++) {
    o += sprintf(o, "{\"doc_id\":\"d%d\",\"source\":\"file:///d/%d\",\"acl\":{\"allow\":[\"*\"]},\"chunks\":[{\"text\":\"t%d\",\"embedding\":[", i, i, i);
    for (int j = 0; j < 64; j++) o += sprintf(o, "%s%d", j ? "," : "", (i * 31 + j) % 17);
    o += sprintf(o, "]}]}\n");
  }
  warden_ingest_report rep;
  if (warden_ingest_buffer(db, "big.jsonl", buf, (size_t)(o - buf), NULL, &rep))
    fail_msg("ingest: %s", warden_errmsg(db));
  assert_int_equal(rep.documents, 3000);
  char *st;
  assert_int_equal(warden_stats(db, &st), 0);
  assert_int_equal(json_int(st, "documents"), 3000);
  assert_int_equal(json_int(st, "chunks"), 3000);
  warden_free(st);
  char *chk = NULL;
  if (warden_check(db, &chk)) fail_msg("check: %s", chk);
  warden_free(chk);
  free(buf);
  cleanup(db);
}

/* Upsert with fewer chunks, delete, long ids: nothing of an old version
 * survives anywhere (export, queries, check). */
static void test_upsert_delete(void **state) {
  (void)state;
  warden *db = fresh(2, "l2");
  char longid[1100];
  memset(longid, 'x', 1000);
  longid[1000] = 0;
  char longid2[1100];
  memcpy(longid2, longid, 1001);
  longid2[999] = 'y'; /* same first 480 bytes: distinct hashed keys */
  char buf[8192];
  int n = snprintf(buf, sizeof buf,
                   "{\"doc_id\":\"a\",\"source\":\"s3://b/a\",\"acl\":{\"allow\":[\"*\"]},\"chunks\":[{\"text\":\"a0\",\"embedding\":[0,0]},{\"text\":\"a1\",\"embedding\":[1,0]},{\"text\":\"a2\",\"embedding\":[2,0]}]}\n"
                   "{\"doc_id\":\"%s\",\"source\":\"s3://b/l\",\"acl\":{\"allow\":[\"*\"]},\"chunks\":[{\"text\":\"L\",\"embedding\":[5,5]}]}\n"
                   "{\"doc_id\":\"%s\",\"source\":\"s3://b/l2\",\"acl\":{\"allow\":[\"*\"]},\"chunks\":[{\"text\":\"L2\",\"embedding\":[6,6]}]}\n",
                   longid, longid2);
  warden_ingest_report rep;
  assert_int_equal(warden_ingest_buffer(db, "v1", buf, (size_t)n, NULL, &rep), 0);
  assert_int_equal(rep.chunks, 5);
  n = snprintf(buf, sizeof buf,
               "{\"doc_id\":\"a\",\"source\":\"s3://b/a\",\"acl\":{\"allow\":[\"*\"]},\"chunks\":[{\"text\":\"new\",\"embedding\":[9,9]}]}\n");
  assert_int_equal(warden_ingest_buffer(db, "v2", buf, (size_t)n, NULL, &rep), 0);
  assert_int_equal(rep.replaced, 1);
  warden_query_opts o;
  memset(&o, 0, sizeof o);
  o.principal = "user:u";
  o.k = 100;
  float q[2] = {0, 0};
  warden_results *r;
  assert_int_equal(warden_query(db, q, 1, &o, &r), 0);
  assert_int_equal(warden_results_count(r, 0), 3); /* a(new), long, long2 */
  for (size_t i = 0; i < 3; i++) {
    const warden_hit *h = warden_results_hit(r, 0, i);
    assert_true(strcmp(h->text, "a0") && strcmp(h->text, "a1") && strcmp(h->text, "a2"));
  }
  warden_results_free(r);
  char *acl;
  assert_int_equal(warden_acl_get(db, longid2, &acl), 0);
  assert_non_null(strstr(acl, "\"allow\":[\"*\"]"));
  warden_free(acl);
  const char *ids[3] = {longid, "nope", "a"};
  warden_write_report wr;
  assert_int_equal(warden_delete(db, ids, 3, &wr), 0);
  assert_int_equal(wr.changed, 2);
  assert_int_equal(wr.unknown, 1);
  sbuf s = {0};
  assert_int_equal(warden_export(db, sbuf_write, &s), 0);
  assert_non_null(strstr(s.b, "\"L2\""));
  assert_null(strstr(s.b, "\"L\""));
  assert_null(strstr(s.b, "\"new\""));
  assert_int_equal(warden_acl_get(db, longid, &acl), WARDEN_ENOTFOUND);
  char *chk = NULL;
  if (warden_check(db, &chk)) fail_msg("check: %s", chk);
  warden_free(chk);
  char *st;
  assert_int_equal(warden_stats(db, &st), 0);
  assert_int_equal(json_int(st, "documents"), 1);
  assert_int_equal(json_int(st, "chunks"), 1);
  warden_free(st);
  free(s.b);
  cleanup(db);
}

/* A failed ingest (bad last line) leaves no trace; revision unchanged. */
static void test_all_or_nothing(void **state) {
  (void)state;
  warden *db = fresh(2, "ip");
  const char *good = "{\"doc_id\":\"g\",\"source\":\"s3://b/g\",\"acl\":{\"allow\":[\"*\"]},\"chunks\":[{\"text\":\"g\",\"embedding\":[1,2]}]}\n";
  warden_ingest_report rep;
  assert_int_equal(warden_ingest_buffer(db, "g", good, strlen(good), NULL, &rep), 0);
  uint64_t rev = rep.revision;
  char buf[1024];
  int n = snprintf(buf, sizeof buf, "%s%s", good,
                   "{\"doc_id\":\"h\",\"source\":\"s3://b/h\",\"acl\":{\"allow\":[\"*\"]},\"metadata\":{\"x\":1},\"chunks\":[{\"text\":\"h\",\"embedding\":[1]}]}\n");
  int rc = warden_ingest_buffer(db, "bad.jsonl", buf, (size_t)n, NULL, &rep);
  assert_int_equal(rc, WARDEN_EDATA);
  assert_non_null(strstr(warden_errmsg(db), "bad.jsonl:2: chunks[0].embedding:"));
  char *st;
  assert_int_equal(warden_stats(db, &st), 0);
  assert_int_equal(json_int(st, "revision"), (long)rev);
  assert_int_equal(json_int(st, "documents"), 1);
  warden_free(st);
  cleanup(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_map_grows),
      cmocka_unit_test(test_upsert_delete),
      cmocka_unit_test(test_all_or_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
