/*
 * test_fetch.c -- warden_fetch(): one document by doc_id, under the same
 * checks as a query: every chunk, in chunk order, for a principal the
 * stored ACL allows; nothing for one it does not, nor for an unknown id
 * (indistinguishable); on-behalf-of (the agent must be allowed too); the
 * filter and namespaces apply; a callback resolver is asked for both
 * identities and its "no" or its failure hides the document.
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
static warden *db;

static const char *DOCS =
    "{\"doc_id\":\"book\",\"source\":\"s3://b/book\",\"namespace\":\"/lib\",\"metadata\":{\"year\":3},"
    "\"acl\":{\"allow\":[\"user:alice\",\"group:bots\"]},\"chunks\":["
    "{\"text\":\"c0\",\"embedding\":[0,1]},{\"text\":\"c1\",\"embedding\":[1,0]},"
    "{\"text\":\"c2\",\"embedding\":[0.5,0.5]}]}\n"
    "{\"doc_id\":\"other\",\"source\":\"s3://b/other\",\"acl\":{\"allow\":[\"*\"]},"
    "\"chunks\":[{\"text\":\"o\",\"embedding\":[1,0]}]}\n";

static int setup(void **s) {
  (void)s;
  snprintf(tmp, sizeof tmp, "/tmp/warden-fetch-XXXXXX");
  assert_non_null(mkdtemp(tmp));
  char dir[128], err[512];
  snprintf(dir, sizeof dir, "%s/c", tmp);
  warden_create_opts co = {2, "cosine", NULL};
  if (warden_create(dir, &co, err, sizeof err) || warden_open(dir, NULL, &db, err, sizeof err))
    fail_msg("%s", err);
  assert_int_equal(warden_ingest_buffer(db, "docs", DOCS, strlen(DOCS), NULL, NULL), 0);
  const char *g[] = {"group:bots"};
  assert_int_equal(warden_principal_set(db, "user:bot", g, 1, NULL), 0);
  return 0;
}

static int teardown(void **s) {
  (void)s;
  warden_close(db);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  return system(cmd);
}

/* The texts of a fetch, joined by ',' into out; returns the count. */
static int fetch(const char *id, const warden_query_opts *o, char *out) {
  warden_results *r = NULL;
  int rc = warden_fetch(db, id, o, &r);
  if (rc) fail_msg("fetch %s: %s", id, warden_errmsg(db));
  size_t n = warden_results_count(r, 0);
  out[0] = 0;
  for (size_t i = 0; i < n; i++) {
    const warden_hit *h = warden_results_hit(r, 0, i);
    assert_string_equal(h->doc_id, id);
    assert_int_equal(h->chunk, i); /* chunk order, every chunk */
    if (i) strcat(out, ",");
    strcat(out, h->text);
  }
  warden_results_free(r);
  return (int)n;
}

static void test_fetch_acl(void **s) {
  (void)s;
  char got[256];
  warden_query_opts o = {0};
  o.principal = "user:alice";
  o.k = 1; /* ignored: every chunk */
  assert_int_equal(fetch("book", &o, got), 3);
  assert_string_equal(got, "c0,c1,c2");
  o.principal = "user:eve";
  assert_int_equal(fetch("book", &o, got), 0);
  assert_int_equal(fetch("no-such-doc", &o, got), 0); /* same answer as "not yours" */
  assert_int_equal(fetch("other", &o, got), 1);
  /* filter and namespaces apply */
  o.principal = "user:alice";
  o.filter = "{\"year\":{\"$gt\":3}}";
  assert_int_equal(fetch("book", &o, got), 0);
  o.filter = NULL;
  const char *ns[] = {"/elsewhere"};
  o.namespaces = ns;
  o.nnamespaces = 1;
  assert_int_equal(fetch("book", &o, got), 0);
  o.nnamespaces = 0;
  o.namespaces = NULL;
  /* a revoke is visible to the next fetch */
  const char *allow[] = {"group:bots"};
  assert_int_equal(warden_acl_set(db, "book", allow, 1, NULL, 0, NULL), 0);
  assert_int_equal(fetch("book", &o, got), 0);
  const char *allow2[] = {"user:alice", "group:bots"};
  assert_int_equal(warden_acl_set(db, "book", allow2, 2, NULL, 0, NULL), 0);
  assert_int_equal(fetch("book", &o, got), 3);
  /* errors */
  warden_results *r = NULL;
  assert_int_equal(warden_fetch(db, "", &o, &r), WARDEN_EINVAL);
  o.principal = "alice";
  assert_int_equal(warden_fetch(db, "book", &o, &r), WARDEN_EINVAL);
  assert_null(r);
}

static void test_fetch_agent(void **s) {
  (void)s;
  char got[256];
  warden_query_opts o = {0};
  o.principal = "user:alice";
  o.agent = "user:bot";
  assert_int_equal(fetch("book", &o, got), 3);
  o.agent = "user:stranger-bot";
  assert_int_equal(fetch("book", &o, got), 0); /* the user may, the agent may not */
  o.principal = "user:eve";
  o.agent = "user:bot";
  assert_int_equal(fetch("book", &o, got), 0); /* the agent may, the user may not */
}

static int says_no_to; /* 0: allow all, 1: deny the agent, 2: fail for the agent */
static int cb(void *ctx, const char *principal, const char *const *groups, size_t ngroups,
              const warden_resource *res, size_t n, unsigned char *allowed) {
  (void)ctx;
  (void)groups;
  (void)ngroups;
  int agent = strcmp(principal, "user:bot") == 0;
  if (agent && says_no_to == 2) return -1;
  for (size_t i = 0; i < n; i++) allowed[i] = !(agent && says_no_to == 1) && res[i].source[0];
  return 0;
}

static void test_fetch_resolver_checks_both(void **s) {
  (void)s;
  assert_int_equal(warden_set_resolver(db, cb, NULL), 0);
  char got[256];
  warden_query_opts o = {0};
  o.principal = "user:alice";
  o.agent = "user:bot";
  says_no_to = 0;
  assert_int_equal(fetch("book", &o, got), 3);
  says_no_to = 1;
  assert_int_equal(fetch("book", &o, got), 0);
  says_no_to = 2;
  warden_results *r = NULL;
  assert_int_equal(warden_fetch(db, "book", &o, &r), 0);
  assert_int_equal(warden_results_count(r, 0), 0);
  assert_true(warden_results_degraded(r, 0)); /* failed, not "no" */
  warden_results_free(r);
  o.agent = NULL; /* without the agent, the principal's own check passes */
  assert_int_equal(fetch("book", &o, got), 3);
  assert_int_equal(warden_set_resolver(db, NULL, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fetch_acl),
      cmocka_unit_test(test_fetch_agent),
      cmocka_unit_test(test_fetch_resolver_checks_both),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
