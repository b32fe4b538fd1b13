/*
 * test_names.c -- one namespace grammar and one prefix rule at every entry
 * point (issue 12; the principal grammar's table is test_harden.c's).
 *
 * The same table of good and bad namespaces goes to the grammar itself
 * (wd_namespace_check, acl/names.c), to ingest (a document's namespace),
 * to the typed upsert (warden_doc.namespace_), to warden_query and to
 * warden_fetch (namespace prefixes); each must accept or refuse alike, and
 * a refusal must leave the collection's revision where it was.  Then the
 * prefix rule: "/a" covers "/a" and "/a/b" and never "/ab", through the
 * bitmaps and through the record re-check of every hit (a disagreement
 * between the two would fail the query with WARDEN_ECORRUPT).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acl/names.h"
#include "warden.h"

static char dir[64], sub[96];
static warden *db;

static void open_fx(void) {
  strcpy(dir, "/tmp/wd_names_XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(sub, sizeof sub, "%s/c", dir);
  char err[512] = "";
  warden_create_opts co = {2, "l2", NULL};
  assert_int_equal(warden_create(sub, &co, err, sizeof err), 0);
  assert_int_equal(warden_open(sub, NULL, &db, err, sizeof err), 0);
}

static void close_fx(void) {
  warden_close(db);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static uint64_t revision(void) {
  uint64_t r = 0;
  assert_int_equal(warden_revision(db, &r), 0);
  return r;
}

static char long_ns[WD_MAX_NAMESPACE + 2];

/* Namespaces every entry point must take ... */
static const char *const good[] = {
    "/", "//", "/a", "/a/b", "/a/b/", "/a b", "/caf\xc3\xa9/\xc3\x9f", "/a.b/..c", "/-/_/~",
};
/* ... and refuse (long_ns is added: WD_MAX_NAMESPACE + 1 bytes). */
static const char *const bad[] = {
    "", "a", "a/b", "/a//b", "/./a", "/a/.", "/a/../b", "/..", "/a\x01", "/\x1f",
};

static int ingest_ns(const char *ns, int i) {
  char buf[2048];
  char esc[1024];
  size_t o = 0;
  for (const char *p = ns; *p && o + 8 < sizeof esc; p++) {
    unsigned char c = (unsigned char)*p;
    if (c < 0x20) o += (size_t)snprintf(esc + o, sizeof esc - o, "\\u%04x", c);
    else esc[o++] = (char)c;
  }
  esc[o] = 0;
  int n = snprintf(buf, sizeof buf,
                   "{\"doc_id\":\"n%d\",\"source\":\"s3://b/n\",\"namespace\":\"%s\","
                   "\"acl\":{\"allow\":[\"*\"]},\"chunks\":[{\"text\":\"t\",\"embedding\":[1,0]}]}\n",
                   i, esc);
  return warden_ingest_buffer(db, "n.jsonl", buf, (size_t)n, NULL, NULL);
}

static int upsert_ns(const char *ns, int i) {
  char id[32];
  snprintf(id, sizeof id, "u%d", i);
  const char *allow[] = {"*"}, *texts[] = {"t"};
  warden_doc d = {id, "s3://b/u", ns, NULL, 0, 1, allow, 1, NULL, 0, texts, 1};
  float row[2] = {1, 0};
  return warden_upsert(db, &d, 1, row, 1, NULL, NULL);
}

static int query_ns(const char *ns, int fetch) {
  float q[2] = {1, 0};
  const char *nss[] = {ns};
  warden_query_opts o = {0};
  o.principal = "user:x";
  o.k = 5;
  o.namespaces = nss;
  o.nnamespaces = 1;
  warden_results *r = NULL;
  int rc = fetch ? warden_fetch(db, "n0", &o, &r) : warden_query(db, q, 1, &o, &r);
  warden_results_free(r);
  return rc;
}

/* Returns how many of the entry points accepted ns. */
static int entry_points(const char *ns, int i, int *points) {
  char out[WD_MAX_NAMESPACE + 2], why[300];
  int acc = 0;
  *points = 5;
  acc += wd_namespace_check(ns, strlen(ns), out, why, sizeof why) == 0;
  uint64_t r0 = revision();
  int rc = ingest_ns(ns, i);
  acc += rc == 0;
  if (rc) {
    assert_int_equal(revision(), r0);
    assert_non_null(strstr(warden_errmsg(db), "n.jsonl:1: namespace:"));
  }
  r0 = revision();
  rc = upsert_ns(ns, i);
  acc += rc == 0;
  if (rc) {
    assert_int_equal(revision(), r0);
    assert_non_null(strstr(warden_errmsg(db), "namespace"));
  }
  acc += query_ns(ns, 0) == 0;
  acc += query_ns(ns, 1) == 0;
  return acc;
}

static void test_namespace_grammar(void **state) {
  (void)state;
  open_fx();
  memset(long_ns, 'x', sizeof long_ns - 1);
  long_ns[0] = '/';
  long_ns[sizeof long_ns - 1] = 0;
  int points;
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    int acc = entry_points(good[i], (int)i, &points);
    if (acc != points) fail_msg("good namespace \"%s\" accepted at %d of %d entry points", good[i], acc, points);
  }
  for (size_t i = 0; i <= sizeof bad / sizeof bad[0]; i++) {
    const char *ns = i < sizeof bad / sizeof bad[0] ? bad[i] : long_ns;
    int acc = entry_points(ns, 100 + (int)i, &points);
    if (acc) fail_msg("bad namespace #%zu \"%.40s\" accepted at %d of %d entry points", i, ns, acc, points);
  }
  close_fx();
}

/* The ids of what a query under prefix returns, sorted, comma-joined. */
static void ids_under(const char *prefix, char *out, size_t cap) {
  float q[2] = {1, 0};
  const char *nss[] = {prefix};
  warden_query_opts o = {0};
  o.principal = "user:x";
  o.k = 10;
  o.namespaces = nss;
  o.nnamespaces = 1;
  warden_results *r = NULL;
  assert_int_equal(warden_query(db, q, 1, &o, &r), 0);
  const char *ids[10];
  size_t n = warden_results_count(r, 0);
  for (size_t i = 0; i < n; i++) ids[i] = warden_results_hit(r, 0, i)->doc_id;
  for (size_t i = 0; i < n; i++) /* sort */
    for (size_t j = i + 1; j < n; j++)
      if (strcmp(ids[j], ids[i]) < 0) {
        const char *t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
      }
  out[0] = 0;
  for (size_t i = 0; i < n; i++) {
    if (i) strncat(out, ",", cap - strlen(out) - 1);
    strncat(out, ids[i], cap - strlen(out) - 1);
  }
  warden_results_free(r);
}

static void test_prefix_rule(void **state) {
  (void)state;
  open_fx();
  const char *docs =
      "{\"doc_id\":\"a\",\"source\":\"s3://b/1\",\"namespace\":\"/a\",\"acl\":{\"allow\":[\"*\"]},\"chunks\":[{\"text\":\"t\",\"embedding\":[1,0]}]}\n"
      "{\"doc_id\":\"ab\",\"source\":\"s3://b/2\",\"namespace\":\"/ab\",\"acl\":{\"allow\":[\"*\"]},\"chunks\":[{\"text\":\"t\",\"embedding\":[1,0]}]}\n"
      "{\"doc_id\":\"a_b\",\"source\":\"s3://b/3\",\"namespace\":\"/a/b\",\"acl\":{\"allow\":[\"*\"]},\"chunks\":[{\"text\":\"t\",\"embedding\":[1,0]}]}\n"
      "{\"doc_id\":\"root\",\"source\":\"s3://b/4\",\"acl\":{\"allow\":[\"*\"]},\"chunks\":[{\"text\":\"t\",\"embedding\":[1,0]}]}\n";
  assert_int_equal(warden_ingest_buffer(db, "p.jsonl", docs, strlen(docs), NULL, NULL), 0);
  char got[256];
  ids_under("/a", got, sizeof got);
  assert_string_equal(got, "a,a_b");
  ids_under("/a/", got, sizeof got);
  assert_string_equal(got, "a,a_b");
  ids_under("/a/b", got, sizeof got);
  assert_string_equal(got, "a_b");
  ids_under("/ab", got, sizeof got);
  assert_string_equal(got, "ab");
  ids_under("/", got, sizeof got);
  assert_string_equal(got, "a,a_b,ab,root");
  ids_under("/a/bc", got, sizeof got);
  assert_string_equal(got, "");
  /* the rule itself */
  assert_true(wd_namespace_covers("/a", 2, "/a/b", 4));
  assert_false(wd_namespace_covers("/a", 2, "/ab", 3));
  assert_true(wd_namespace_covers("/", 1, "/ab", 3));
  close_fx();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_namespace_grammar),
      cmocka_unit_test(test_prefix_rule),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
