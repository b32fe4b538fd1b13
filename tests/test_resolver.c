/*
 * test_resolver.c -- tests of acl/grants.c, acl/resolver.c and acl/audit.c.
 *
 * Runs against a real collection in a mkdtemp directory (public API for
 * create/open/ingest/grants/principals) and calls the resolver and audit
 * functions through the internal headers:
 *  - grants: add/remove/list reports and validation; a randomized check of
 *    wd_resolver_check against a brute-force oracle written here (prefix
 *    match over an explicit membership table), and the pre-filter bitmap
 *    against the same oracle (every allowed slot is in it);
 *  - command: the real child build/check-access (skipped with a message
 *    when it was not built): answers, crash, hang, garbage, wrong id, too
 *    few answers, slow answers, a missing program, a child that exits at
 *    once (no SIGPIPE), restart on the next call, halving retry that saves
 *    the good resources of a batch, time bounds, concurrent callers, and
 *    the resolver configured through warden.yaml with relative paths;
 *  - callback: answers, failure with halving, warden_set_resolver;
 *  - audit: lines parse back with the documented fields, the CRC matches an
 *    independent bitwise CRC-32, no chunk text, a torn last line and a
 *    damaged middle line are detected, reopen after a torn tail, and
 *    concurrent writers never interleave.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "acl.h"
#include "audit.h"
#include "resolver.h"
#include "store.h"
#include "warden.h"

static char check_access[PATH_MAX]; /* absolute path, "" when not built */
static int quick;

static int64_t ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- fixture */

typedef struct fx {
  char dir[64];
  warden *db;
} fx;

static void rm_rf(const char *dir) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", dir);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* A collection of dim 4 holding ndocs one-chunk documents with the given
 * sources (doc ids "d0", "d1", ...), all readable by "*". */
static void fx_open(fx *f, const char *yaml, const char *const *sources, size_t ndocs) {
  strcpy(f->dir, "/tmp/wd_resolver_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  char sub[128], err[512] = "";
  snprintf(sub, sizeof sub, "%s/c", f->dir);
  warden_create_opts co = {4, NULL, NULL};
  char ypath[128];
  if (yaml) {
    snprintf(ypath, sizeof ypath, "%s/in.yaml", f->dir);
    write_file(ypath, yaml);
    co.dim = 0;
    co.config_path = ypath;
  }
  int rc = warden_create(sub, &co, err, sizeof err);
  if (rc) fprintf(stderr, "create: %s\n", err);
  assert_int_equal(rc, 0);
  rc = warden_open(sub, NULL, &f->db, err, sizeof err);
  if (rc) fprintf(stderr, "open: %s\n", err);
  assert_int_equal(rc, 0);
  size_t cap = 256 * (ndocs + 1) + 1024, len = 0;
  char *buf = malloc(cap);
  for (size_t i = 0; i < ndocs; i++)
    len += (size_t)snprintf(buf + len, cap - len,
                            "{\"doc_id\":\"d%zu\",\"source\":\"%s\",\"acl\":{\"allow\":[\"*\"]},"
                            "\"chunks\":[{\"text\":\"SECRET-TEXT-%zu\",\"embedding\":[1,%zu,0,1]}]}\n",
                            i, sources[i], i, i % 7);
  if (ndocs) {
    rc = warden_ingest_buffer(f->db, "t", buf, len, NULL, NULL);
    if (rc) fprintf(stderr, "ingest: %s\n", warden_errmsg(f->db));
    assert_int_equal(rc, 0);
  }
  free(buf);
}

static void fx_close(fx *f) {
  warden_close(f->db);
  rm_rf(f->dir);
}

/* Expanded principal set of p (with asserted groups g). */
static void expand(warden *db, const char *p, const char *const *g, size_t ng, wd_strlist *who) {
  wd_txn tx;
  assert_int_equal(store_read_begin(db, &tx), 0);
  assert_int_equal(acl_expand(&tx, p, g, ng, who), 0);
  store_read_end(&tx);
}

/* Run a check in a read snapshot. */
static void check(wd_resolver *r, warden *db, const wd_strlist *who,
                  const warden_resource *items, size_t n, unsigned char *out, char **ev) {
  wd_txn tx;
  assert_int_equal(store_read_begin(db, &tx), 0);
  int rc = wd_resolver_check(r, &tx, who, items, n, out, ev);
  store_read_end(&tx);
  assert_int_equal(rc, 0);
}

static void free_ev(char **ev, size_t n) {
  for (size_t i = 0; i < n; i++) warden_free(ev[i]);
}

/* ---------------------------------------------------------- grants api */

static void test_grants_api(void **state) {
  (void)state;
  fx f;
  fx_open(&f, NULL, NULL, 0);
  warden_write_report rep;
  memset(&rep, 0, sizeof rep);
  assert_int_equal(warden_grant_add(f.db, "group:eng", "s3://b/eng/", &rep), 0);
  assert_int_equal(rep.changed, 1);
  uint64_t r1 = rep.revision;
  assert_true(r1 >= 1);
  assert_int_equal(warden_grant_add(f.db, "group:eng", "s3://b/eng/", &rep), 0);
  assert_int_equal(rep.changed, 0);
  assert_int_equal(rep.unchanged, 1);
  assert_int_equal(rep.revision, r1); /* nothing written: no new revision */
  assert_int_equal(warden_grant_add(f.db, "group:eng", "s3://b/docs/", &rep), 0);
  assert_int_equal(warden_grant_add(f.db, "*", "s3://b/pub/", &rep), 0);
  assert_int_equal(rep.revision, r1 + 2);
  assert_int_equal(warden_grant_remove(f.db, "user:nobody", "s3://x", &rep), 0);
  assert_int_equal(rep.changed, 0);
  assert_int_equal(rep.unknown, 1);

  /* validation */
  char big[600];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = 0;
  assert_int_equal(warden_grant_add(f.db, "eng", "s3://b/", NULL), WARDEN_EDATA);
  assert_int_equal(warden_grant_add(f.db, "group:", "s3://b/", NULL), WARDEN_EDATA);
  assert_int_equal(warden_grant_add(f.db, NULL, "s3://b/", NULL), WARDEN_EDATA);
  assert_int_equal(warden_grant_add(f.db, "user:a", "", NULL), WARDEN_EDATA);
  assert_int_equal(warden_grant_add(f.db, "user:a", NULL, NULL), WARDEN_EDATA);
  assert_int_equal(warden_grant_add(f.db, "user:a", big, NULL), WARDEN_EDATA);
  assert_int_equal(warden_grant_add(f.db, "user:a", "s3://\xff\xfe", NULL), WARDEN_EDATA);
  assert_non_null(strstr(warden_errmsg(f.db), "prefix"));
  big[500] = 0; /* exactly 500 bytes is fine */
  assert_int_equal(warden_grant_add(f.db, "user:a", big, NULL), 0);
  assert_int_equal(warden_grant_remove(f.db, "user:a", big, &rep), 0);
  assert_int_equal(rep.changed, 1);

  char *js = NULL;
  assert_int_equal(warden_grant_list(f.db, &js), 0);
  json_error_t je;
  json_t *o = json_loads(js, 0, &je);
  warden_free(js);
  assert_non_null(o);
  json_t *g = json_object_get(o, "grants");
  assert_int_equal(json_array_size(g), 3);
  /* ordered by principal, then prefix */
  const char *want[3][2] = {{"*", "s3://b/pub/"}, {"group:eng", "s3://b/docs/"},
                            {"group:eng", "s3://b/eng/"}};
  for (size_t i = 0; i < 3; i++) {
    json_t *e = json_array_get(g, i);
    assert_string_equal(json_string_value(json_object_get(e, "principal")), want[i][0]);
    assert_string_equal(json_string_value(json_object_get(e, "prefix")), want[i][1]);
  }
  assert_int_equal(json_integer_value(json_object_get(o, "revision")), r1 + 4);
  json_decref(o);
  fx_close(&f);
}

/* ------------------------------------------------------- grants oracle */

#define NUSERS 4
#define NGROUPS 3

static const char *const users[NUSERS] = {"user:u0", "user:u1", "user:u2", "user:u3"};
static const char *const groups[NGROUPS] = {"group:g0", "group:g1", "group:g2"};

static void rand_source(char *s, unsigned *seed) {
  static const char *const parts[] = {"s3://a/", "s3://b/", "s3://ab/", "file:///x/"};
  static const char alpha[] = "xy/";
  int n = rand_r(seed) % 4;
  strcpy(s, parts[rand_r(seed) % 4]);
  size_t l = strlen(s);
  for (int i = 0; i < n; i++) s[l++] = alpha[rand_r(seed) % 3];
  s[l] = 0;
}

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static void test_grants_oracle(void **state) {
  (void)state;
  unsigned seed = 12345;
  int rounds = quick ? 2 : 6;
  for (int round = 0; round < rounds; round++) {
    enum { NDOC = 60, NGRANT = 8 };
    char srcs[NDOC][64];
    const char *sp[NDOC];
    for (int i = 0; i < NDOC; i++) {
      rand_source(srcs[i], &seed);
      sp[i] = srcs[i];
    }
    fx f;
    fx_open(&f, NULL, sp, NDOC);
    /* membership: member[u][g]; u1 reaches g2 through g1 (nested) */
    int member[NUSERS][NGROUPS] = {{1, 0, 0}, {0, 1, 1}, {0, 0, 0}, {0, 0, 1}};
    const char *g0[] = {"group:g0"}, *g1[] = {"group:g1"}, *g12[] = {"group:g2"};
    assert_int_equal(warden_principal_set(f.db, "user:u0", g0, 1, NULL), 0);
    assert_int_equal(warden_principal_set(f.db, "user:u1", g1, 1, NULL), 0);
    assert_int_equal(warden_principal_set(f.db, "group:g1", g12, 1, NULL), 0);
    assert_int_equal(warden_principal_set(f.db, "user:u3", g12, 1, NULL), 0);
    /* random grants: holder index 0..3 users, 4..6 groups, 7 "*" */
    int gh[NGRANT];
    char gp[NGRANT][64];
    for (int i = 0; i < NGRANT; i++) {
      gh[i] = rand_r(&seed) % 8;
      if (gh[i] == 7 && rand_r(&seed) % 2) gh[i] = 2;
      rand_source(gp[i], &seed);
      /* shorten to make it a prefix of many sources */
      gp[i][strlen(gp[i]) > 7 ? 7 + rand_r(&seed) % (strlen(gp[i]) - 6) : strlen(gp[i])] = 0;
      const char *holder = gh[i] < 4 ? users[gh[i]] : gh[i] < 7 ? groups[gh[i] - 4] : "*";
      assert_int_equal(warden_grant_add(f.db, holder, gp[i], NULL), 0);
    }
    f.db->cfg.resolver_type = WD_RESOLVER_GRANTS;
    wd_resolver *r;
    assert_int_equal(wd_resolver_open(f.db, &r), 0);
    f.db->cfg.resolver_type = WD_RESOLVER_NONE;
    assert_true(wd_resolver_active(r));
    assert_string_equal(wd_resolver_name(r), "grants");
    warden_resource items[NDOC];
    char ids[NDOC][16];
    for (int i = 0; i < NDOC; i++) {
      snprintf(ids[i], sizeof ids[i], "d%d", i);
      items[i] = (warden_resource){ids[i], srcs[i]};
    }
    for (int u = 0; u < NUSERS; u++) {
      wd_strlist who;
      expand(f.db, users[u], NULL, 0, &who);
      unsigned char out[NDOC];
      char *ev[NDOC];
      check(r, f.db, &who, items, NDOC, out, ev);
      roaring_bitmap_t *pre = NULL;
      wd_txn tx;
      assert_int_equal(store_read_begin(f.db, &tx), 0);
      assert_int_equal(wd_resolver_prefilter(r, &tx, &who, &pre), 0);
      assert_non_null(pre);
      uint64_t nallowed = 0;
      for (int d = 0; d < NDOC; d++) {
        int want = 0;
        for (int i = 0; i < NGRANT; i++) {
          int holds = gh[i] == 7 || (gh[i] < 4 && gh[i] == u) ||
                      (gh[i] >= 4 && gh[i] < 7 && member[u][gh[i] - 4]);
          if (holds && starts_with(srcs[d], gp[i])) want = 1;
        }
        assert_int_equal(out[d], want ? WD_RES_ALLOW : WD_RES_DENY);
        assert_non_null(ev[d]);
        if (want) {
          assert_true(strncmp(ev[d], "grant ", 6) == 0);
          /* the evidence names a grant that really covers the source */
          const char *pfx = strchr(ev[d] + 6, ' ');
          assert_non_null(pfx);
          assert_true(starts_with(srcs[d], pfx + 1));
          nallowed++;
        }
        /* pre-filter: the document's slot is in it when allowed */
        json_t *rec;
        assert_int_equal(store_doc_get(&tx, ids[d], strlen(ids[d]), &rec), 0);
        uint32_t slot = (uint32_t)json_integer_value(json_array_get(json_object_get(rec, "slots"), 0));
        json_decref(rec);
        if (want) assert_true(roaring_bitmap_contains(pre, slot));
      }
      /* and exact: grants and "S" keys are both source prefixes */
      assert_int_equal(roaring_bitmap_get_cardinality(pre), nallowed);
      roaring_bitmap_free(pre);
      store_read_end(&tx);
      free_ev(ev, NDOC);
      wd_strlist_free(&who);
    }
    /* revoke everything: nothing is allowed any more (no caching) */
    char *js;
    assert_int_equal(warden_grant_list(f.db, &js), 0);
    json_t *o = json_loads(js, 0, NULL);
    warden_free(js);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(o, "grants"), i, e)
        assert_int_equal(warden_grant_remove(f.db, json_string_value(json_object_get(e, "principal")),
                                             json_string_value(json_object_get(e, "prefix")), NULL),
                         0);
    json_decref(o);
    wd_strlist who;
    expand(f.db, "user:u1", NULL, 0, &who);
    unsigned char out[NDOC];
    check(r, f.db, &who, items, NDOC, out, NULL);
    for (int d = 0; d < NDOC; d++) assert_int_equal(out[d], WD_RES_DENY);
    wd_strlist_free(&who);
    wd_resolver_close(r);
    fx_close(&f);
  }
}

/* The "none" resolver allows everything and has no pre-filter. */
static void test_none(void **state) {
  (void)state;
  fx f;
  fx_open(&f, NULL, NULL, 0);
  assert_false(wd_resolver_active(f.db->resolver));
  assert_string_equal(wd_resolver_name(f.db->resolver), "none");
  wd_strlist who;
  expand(f.db, "user:a", NULL, 0, &who);
  warden_resource it[2] = {{"x", "s3://x"}, {"y", NULL}};
  unsigned char out[2] = {9, 9};
  check(f.db->resolver, f.db, &who, it, 2, out, NULL);
  assert_int_equal(out[0], WD_RES_ALLOW);
  assert_int_equal(out[1], WD_RES_ALLOW);
  wd_txn tx;
  roaring_bitmap_t *pre = (roaring_bitmap_t *)1;
  assert_int_equal(store_read_begin(f.db, &tx), 0);
  assert_int_equal(wd_resolver_prefilter(f.db->resolver, &tx, &who, &pre), 0);
  store_read_end(&tx);
  assert_null(pre);
  wd_strlist_free(&who);
  fx_close(&f);
}

/* ------------------------------------------------------ command resolver */

#define POLICY                                                                   \
  "{\"principal\":\"group:eng\",\"prefix\":\"s3://b/eng/\",\"effect\":\"allow\"}\n" \
  "{\"principal\":\"user:alice\",\"prefix\":\"s3://b/eng/secret/\",\"effect\":\"deny\"}\n" \
  "{\"principal\":\"*\",\"prefix\":\"s3://b/pub/\",\"effect\":\"allow\"}\n"

/* Policy oracle for user:alice in group:eng. */
static int alice_may(const char *src) {
  if (starts_with(src, "s3://b/eng/secret/")) return 0;
  return starts_with(src, "s3://b/eng/") || starts_with(src, "s3://b/pub/");
}

typedef struct cmdfx {
  fx f;
  char policy[128];
  wd_strlist who;
} cmdfx;

static int cmd_setup(void **state) {
  static cmdfx c;
  memset(&c, 0, sizeof c);
  fx_open(&c.f, NULL, NULL, 0);
  snprintf(c.policy, sizeof c.policy, "%s/policy.jsonl", c.f.dir);
  write_file(c.policy, POLICY);
  const char *g[] = {"group:eng"};
  assert_int_equal(warden_principal_set(c.f.db, "user:alice", g, 1, NULL), 0);
  expand(c.f.db, "user:alice", NULL, 0, &c.who);
  *state = &c;
  return 0;
}

static int cmd_teardown(void **state) {
  cmdfx *c = *state;
  wd_strlist_free(&c->who);
  fx_close(&c->f);
  return 0;
}

/* A command resolver running check-access with the given extra flags. */
static wd_resolver *cmd_open(cmdfx *c, unsigned timeout_ms, const char *const *flags) {
  char *argv[16];
  size_t n = 0;
  argv[n++] = check_access;
  argv[n++] = c->policy;
  for (; flags && *flags; flags++) argv[n++] = (char *)*flags;
  argv[n] = NULL;
  wd_config save = c->f.db->cfg;
  c->f.db->cfg.resolver_type = WD_RESOLVER_COMMAND;
  c->f.db->cfg.resolver_cmd = argv;
  c->f.db->cfg.nresolver_cmd = n;
  c->f.db->cfg.resolver_timeout_ms = timeout_ms;
  wd_resolver *r = NULL;
  int rc = wd_resolver_open(c->f.db, &r);
  c->f.db->cfg = save;
  assert_int_equal(rc, 0);
  assert_string_equal(wd_resolver_name(r), "command");
  assert_true(wd_resolver_active(r));
  return r;
}

#define NITEMS 8
static const char *const item_src[NITEMS] = {
    "s3://b/eng/a", "s3://b/eng/secret/b", "s3://b/pub/c", "s3://b/hr/d",
    "s3://b/eng/e", "s3://b/pub/f",        "s3://b/x/g",   "s3://b/eng/h"};

static void make_items(warden_resource *it, char ids[][32], const char *marker, int at) {
  for (int i = 0; i < NITEMS; i++) {
    snprintf(ids[i], 32, "doc-%d%s", i, i == at && marker ? marker : "");
    it[i] = (warden_resource){ids[i], item_src[i]};
  }
}

/* All items resolved per the policy, except those listed as failed. */
static void expect(const unsigned char *out, int fail_at, int fail_kind) {
  for (int i = 0; i < NITEMS; i++) {
    if (i == fail_at)
      assert_int_equal(out[i], fail_kind);
    else
      assert_int_equal(out[i], alice_may(item_src[i]) ? WD_RES_ALLOW : WD_RES_DENY);
  }
}

#define SKIP_IF_NO_CHILD()                                                        \
  do {                                                                            \
    if (!check_access[0]) {                                                       \
      fprintf(stderr, "SKIP: build/check-access not found (build it first)\n"); \
      skip();                                                                     \
    }                                                                             \
  } while (0)

static void test_command_basic(void **state) {
  SKIP_IF_NO_CHILD();
  cmdfx *c = *state;
  wd_resolver *r = cmd_open(c, 2000, NULL);
  warden_resource it[NITEMS];
  char ids[NITEMS][32];
  make_items(it, ids, NULL, -1);
  for (int rep = 0; rep < 3; rep++) { /* the same child serves every call */
    unsigned char out[NITEMS];
    char *ev[NITEMS];
    check(r, c->f.db, &c->who, it, NITEMS, out, ev);
    expect(out, -1, 0);
    for (int i = 0; i < NITEMS; i++)
      assert_string_equal(ev[i], out[i] == WD_RES_ALLOW ? "command: allowed" : "command: denied");
    free_ev(ev, NITEMS);
  }
  /* asserted groups reach the child: bob in group:eng via the caller */
  wd_strlist bob;
  const char *g[] = {"group:eng"};
  expand(c->f.db, "user:bob", g, 1, &bob);
  unsigned char out[NITEMS];
  check(r, c->f.db, &bob, it, NITEMS, out, NULL);
  assert_int_equal(out[1], WD_RES_ALLOW); /* alice's deny is not bob's */
  assert_int_equal(out[3], WD_RES_DENY);
  wd_strlist_free(&bob);
  wd_resolver_close(r);
}

static void test_command_crash_restart(void **state) {
  SKIP_IF_NO_CHILD();
  cmdfx *c = *state;
  const char *flags[] = {"--crash-after", "1", NULL};
  wd_resolver *r = cmd_open(c, 2000, flags);
  warden_resource it = {"d", "s3://b/eng/x"};
  unsigned char out;
  char *ev;
  check(r, c->f.db, &c->who, &it, 1, &out, NULL);
  assert_int_equal(out, WD_RES_ALLOW);
  check(r, c->f.db, &c->who, &it, 1, &out, &ev); /* the child exits */
  assert_int_equal(out, WD_RES_ERROR);
  assert_non_null(strstr(ev, "error"));
  warden_free(ev);
  check(r, c->f.db, &c->who, &it, 1, &out, NULL); /* a fresh child answers */
  assert_int_equal(out, WD_RES_ALLOW);
  wd_resolver_close(r);
}

/* One resource makes the child crash: bisection saves all the others. */
static void test_command_halving(void **state) {
  SKIP_IF_NO_CHILD();
  cmdfx *c = *state;
  static const char *const modes[][4] = {
      {"--marker", "BAD", "--crash-after", "0"},
      {"--marker", "BAD", "--garbage", NULL},
      {"--marker", "BAD", "--wrong-id", NULL},
      {"--marker", "BAD", "--too-few", NULL},
  };
  for (size_t m = 0; m < 4; m++) {
    const char *flags[5] = {modes[m][0], modes[m][1], modes[m][2], modes[m][3], NULL};
    wd_resolver *r = cmd_open(c, 2000, flags);
    for (int at = 0; at < NITEMS; at += 3) {
      warden_resource it[NITEMS];
      char ids[NITEMS][32];
      make_items(it, ids, "BAD", at);
      unsigned char out[NITEMS];
      check(r, c->f.db, &c->who, it, NITEMS, out, NULL);
      expect(out, at, WD_RES_ERROR);
      /* and a batch without the marker is answered whole */
      make_items(it, ids, NULL, -1);
      check(r, c->f.db, &c->who, it, NITEMS, out, NULL);
      expect(out, -1, 0);
    }
    wd_resolver_close(r);
  }
}

/* A child that is broken for every request: every item fails, quickly. */
static void test_command_always_broken(void **state) {
  SKIP_IF_NO_CHILD();
  cmdfx *c = *state;
  static const char *const modes[][3] = {
      {"--garbage", NULL, NULL}, {"--wrong-id", NULL, NULL},
      {"--too-few", NULL, NULL}, {"--crash-after", "0", NULL}};
  for (size_t m = 0; m < 4; m++) {
    wd_resolver *r = cmd_open(c, 2000, modes[m]);
    warden_resource it[NITEMS];
    char ids[NITEMS][32];
    make_items(it, ids, NULL, -1);
    unsigned char out[NITEMS];
    int64_t t0 = ms_now();
    check(r, c->f.db, &c->who, it, NITEMS, out, NULL);
    assert_true(ms_now() - t0 < 1500); /* failures are detected, not timed out */
    for (int i = 0; i < NITEMS; i++) assert_int_equal(out[i], WD_RES_ERROR);
    wd_resolver_close(r);
  }
}

static void test_command_hang_and_slow(void **state) {
  SKIP_IF_NO_CHILD();
  cmdfx *c = *state;
  const unsigned T = 250;
  /* a resource that makes the child hang: TIMEOUT within ~2 x timeout */
  const char *hang[] = {"--marker", "HANG", "--hang-after", "0", NULL};
  wd_resolver *r = cmd_open(c, T, hang);
  warden_resource it[NITEMS];
  char ids[NITEMS][32];
  make_items(it, ids, "HANG", 2);
  unsigned char out[NITEMS];
  int64_t t0 = ms_now();
  check(r, c->f.db, &c->who, it, NITEMS, out, NULL);
  int64_t el = ms_now() - t0;
  assert_true(el >= T);
  assert_true(el < 2 * T + 150);
  assert_int_equal(out[2], WD_RES_TIMEOUT);
  for (int i = 0; i < NITEMS; i++) /* never allowed unless the child said so */
    if (i != 2)
      assert_true(out[i] == WD_RES_TIMEOUT ||
                  out[i] == (alice_may(item_src[i]) ? WD_RES_ALLOW : WD_RES_DENY));
  /* recovers at once on the next call */
  make_items(it, ids, NULL, -1);
  t0 = ms_now();
  check(r, c->f.db, &c->who, it, NITEMS, out, NULL);
  assert_true(ms_now() - t0 < T);
  expect(out, -1, 0);
  wd_resolver_close(r);

  /* a child that always answers too late */
  const char *slow[] = {"--slow-ms", "700", NULL};
  r = cmd_open(c, T, slow);
  t0 = ms_now();
  char *ev[NITEMS];
  check(r, c->f.db, &c->who, it, NITEMS, out, ev);
  el = ms_now() - t0;
  assert_true(el < 2 * T + 150);
  for (int i = 0; i < NITEMS; i++) {
    assert_int_equal(out[i], WD_RES_TIMEOUT);
    assert_non_null(strstr(ev[i], "timeout"));
  }
  free_ev(ev, NITEMS);
  t0 = ms_now();
  wd_resolver_close(r); /* kills the sleeping child without waiting it out */
  assert_true(ms_now() - t0 < 600);
}

/* Start failures and a child that exits before reading: denied, and the
 * host survives (no SIGPIPE). */
static void test_command_dead_programs(void **state) {
  cmdfx *c = *state;
  const char *progs[] = {"/nonexistent/resolver", "true", "false"};
  for (size_t p = 0; p < 3; p++) {
    char *argv[] = {(char *)progs[p], NULL};
    wd_config save = c->f.db->cfg;
    c->f.db->cfg.resolver_type = WD_RESOLVER_COMMAND;
    c->f.db->cfg.resolver_cmd = argv;
    c->f.db->cfg.nresolver_cmd = 1;
    c->f.db->cfg.resolver_timeout_ms = 1000;
    wd_resolver *r = NULL;
    int rc = wd_resolver_open(c->f.db, &r);
    c->f.db->cfg = save;
    assert_int_equal(rc, 0);
    /* a big request so the write outlives the child */
    enum { N = 300 };
    warden_resource *it = calloc(N, sizeof *it);
    static char longsrc[2048];
    memset(longsrc, 'x', sizeof longsrc - 1);
    for (int i = 0; i < N; i++) it[i] = (warden_resource){"d", longsrc};
    unsigned char *out = malloc(N);
    for (int rep = 0; rep < 2; rep++) {
      int64_t t0 = ms_now();
      check(r, c->f.db, &c->who, it, N, out, NULL);
      assert_true(ms_now() - t0 < 1500);
      for (int i = 0; i < N; i++) assert_int_equal(out[i], WD_RES_ERROR);
    }
    free(out);
    free(it);
    wd_resolver_close(r);
  }
}

typedef struct thr {
  cmdfx *c;
  wd_resolver *r;
  int ok;
} thr;

static void *thr_main(void *arg) {
  thr *t = arg;
  warden_resource it[NITEMS];
  char ids[NITEMS][32];
  make_items(it, ids, NULL, -1);
  t->ok = 1;
  for (int rep = 0; rep < 25; rep++) {
    unsigned char out[NITEMS];
    char *ev[NITEMS];
    wd_txn tx;
    if (store_read_begin(t->c->f.db, &tx)) {
      t->ok = 0;
      break;
    }
    int rc = wd_resolver_check(t->r, &tx, &t->c->who, it + rep % 4, NITEMS - rep % 4, out, ev);
    store_read_end(&tx);
    if (rc) t->ok = 0;
    for (int i = 0; !rc && i < NITEMS - rep % 4; i++) {
      if (out[i] != (alice_may(item_src[i + rep % 4]) ? WD_RES_ALLOW : WD_RES_DENY)) t->ok = 0;
      warden_free(ev[i]);
    }
  }
  return NULL;
}

static void test_command_threads(void **state) {
  SKIP_IF_NO_CHILD();
  cmdfx *c = *state;
  wd_resolver *r = cmd_open(c, 2000, NULL);
  pthread_t th[4];
  thr t[4];
  for (int i = 0; i < 4; i++) {
    t[i] = (thr){c, r, 0};
    assert_int_equal(pthread_create(&th[i], NULL, thr_main, &t[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_true(t[i].ok);
  }
  wd_resolver_close(r);
}

/* The resolver from warden.yaml, with the program and the policy given as
 * paths relative to the collection directory. */
static void test_command_from_config(void **state) {
  SKIP_IF_NO_CHILD();
  (void)state;
  fx f;
  char yaml[PATH_MAX + 256];
  snprintf(yaml, sizeof yaml,
           "dimension: 4\nresolver:\n  type: command\n"
           "  command: [\"./bin/check-access\", \"policy.jsonl\"]\n  timeout_ms: 2000\n");
  fx_open(&f, yaml, NULL, 0);
  char path[256], cmd[PATH_MAX + 300];
  snprintf(path, sizeof path, "%s/c/policy.jsonl", f.dir);
  write_file(path, POLICY);
  snprintf(cmd, sizeof cmd, "mkdir -p '%s/c/bin' && cp '%s' '%s/c/bin/check-access'", f.dir,
           check_access, f.dir);
  assert_int_equal(system(cmd), 0);
  assert_string_equal(wd_resolver_name(f.db->resolver), "command");
  wd_strlist who;
  const char *g[] = {"group:eng"};
  expand(f.db, "user:alice", g, 1, &who);
  warden_resource it[NITEMS];
  char ids[NITEMS][32];
  make_items(it, ids, NULL, -1);
  unsigned char out[NITEMS];
  check(f.db->resolver, f.db, &who, it, NITEMS, out, NULL);
  expect(out, -1, 0);
  wd_strlist_free(&who);
  fx_close(&f);
}

/* ----------------------------------------------------- callback resolver */

typedef struct cbctx {
  int calls;
  pthread_mutex_t mu;
} cbctx;

/* Allows s3://b/pub/...; fails any batch holding a doc_id with "BAD". */
static int cb(void *ctx, const char *principal, const char *const *groups, size_t ngroups,
              const warden_resource *res, size_t n, unsigned char *allowed) {
  cbctx *c = ctx;
  pthread_mutex_lock(&c->mu);
  c->calls++;
  pthread_mutex_unlock(&c->mu);
  if (strcmp(principal, "user:alice") != 0 || ngroups != 1 || strcmp(groups[0], "group:eng"))
    return -2;
  for (size_t i = 0; i < n; i++)
    if (strstr(res[i].doc_id, "BAD")) return -1;
  for (size_t i = 0; i < n; i++) allowed[i] = starts_with(res[i].source, "s3://b/pub/") ? 7 : 0;
  return 0;
}

static void test_callback(void **state) {
  cmdfx *c = *state;
  warden *db = c->f.db;
  cbctx ctx = {0, PTHREAD_MUTEX_INITIALIZER};
  assert_int_equal(warden_set_resolver(db, cb, &ctx), 0);
  assert_string_equal(wd_resolver_name(db->resolver), "callback");
  assert_true(wd_resolver_active(db->resolver));
  warden_resource it[NITEMS];
  char ids[NITEMS][32];
  make_items(it, ids, NULL, -1);
  unsigned char out[NITEMS];
  char *ev[NITEMS];
  check(db->resolver, db, &c->who, it, NITEMS, out, ev);
  assert_int_equal(ctx.calls, 1);
  for (int i = 0; i < NITEMS; i++) {
    int pub = starts_with(item_src[i], "s3://b/pub/");
    assert_int_equal(out[i], pub ? WD_RES_ALLOW : WD_RES_DENY);
    assert_string_equal(ev[i], pub ? "callback: allowed" : "callback: denied");
  }
  free_ev(ev, NITEMS);
  /* a failing resource: bisection isolates it, the others are answered */
  make_items(it, ids, "BAD", 5);
  ctx.calls = 0;
  check(db->resolver, db, &c->who, it, NITEMS, out, ev);
  for (int i = 0; i < NITEMS; i++) {
    if (i == 5) {
      assert_int_equal(out[i], WD_RES_ERROR);
      assert_non_null(strstr(ev[i], "callback returned -1"));
    } else {
      assert_int_equal(out[i], starts_with(item_src[i], "s3://b/pub/") ? WD_RES_ALLOW : WD_RES_DENY);
    }
  }
  assert_true(ctx.calls <= 2 * 3 + 3); /* the attempt budget */
  free_ev(ev, NITEMS);
  /* every resource failing: bounded work, all errors */
  for (int i = 0; i < NITEMS; i++) {
    snprintf(ids[i], 32, "BAD%d", i);
    it[i].doc_id = ids[i];
  }
  ctx.calls = 0;
  check(db->resolver, db, &c->who, it, NITEMS, out, NULL);
  for (int i = 0; i < NITEMS; i++) assert_int_equal(out[i], WD_RES_ERROR);
  assert_true(ctx.calls <= 2 * 3 + 3);
  /* back to the configured resolver */
  assert_int_equal(warden_set_resolver(db, NULL, NULL), 0);
  assert_string_equal(wd_resolver_name(db->resolver), "none");
  assert_int_equal(warden_set_resolver(NULL, cb, NULL), WARDEN_EINVAL);
}

/* --------------------------------------------------------------- audit */

/* Bitwise CRC-32 (IEEE), independent of the table-driven one in audit.c. */
static uint32_t crc32_bitwise(const unsigned char *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *b = malloc((size_t)n + 1);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  b[n] = 0;
  fclose(f);
  *len = (size_t)n;
  return b;
}

static wd_audit *audit_open(warden *db, const char *rel) {
  wd_config save = db->cfg;
  db->cfg.audit_path = (char *)rel;
  wd_audit *a = NULL;
  int rc = wd_audit_open(db, &a);
  db->cfg = save;
  assert_int_equal(rc, 0);
  assert_non_null(a);
  return a;
}

static void audit_record(wd_audit *a, warden *db, const wd_strlist *who, const char *filter,
                         size_t qi) {
  const char *asserted[] = {"group:idp"};
  const char *ns[] = {"/school"};
  warden_query_opts o = {.principal = who->v[0], .groups = asserted, .ngroups = 1,
                         .namespaces = ns, .nnamespaces = 1, .filter = filter, .k = 3};
  wd_audit_hit hits[2] = {{"d0", 0, "group:eng via user:alice", "grant group:eng s3://b/eng/"},
                          {"d1", 2, "*", NULL}};
  wd_audit_query q = {&o, who, 42, qi, hits, 2, 3, 1, 0, 1};
  assert_int_equal(wd_audit_write(a, db, &q), 0);
}

static void test_audit(void **state) {
  cmdfx *c = *state;
  warden *db = c->f.db;
  /* off unless configured */
  wd_audit *none = (wd_audit *)1;
  assert_int_equal(wd_audit_open(db, &none), 0);
  assert_null(none);
  wd_audit *a = audit_open(db, "audit.jsonl");
  audit_record(a, db, &c->who, "{\"year\": {\"$lte\": 4}}", 0);
  audit_record(a, db, &c->who, "not json", 1);
  audit_record(a, db, &c->who, NULL, 2);
  wd_audit_close(a);
  char path[256];
  snprintf(path, sizeof path, "%s/c/audit.jsonl", c->f.dir);

  size_t len;
  char *text = slurp(path, &len);
  assert_null(strstr(text, "SECRET-TEXT"));
  int nl = 0;
  for (char *line = text, *end; (end = strchr(line, '\n')); line = end + 1, nl++) {
    *end = 0;
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    assert_non_null(o);
    static const char *const keys[] = {"time", "principal", "groups", "asserted_groups",
                                       "namespaces", "filter", "revision", "query", "k",
                                       "results", "resolver", "degraded", "crc"};
    size_t ki = 0;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) { /* documented order, nothing else */
      assert_true(ki < 13);
      assert_string_equal(key, keys[ki++]);
    }
    assert_int_equal(ki, 13);
    const char *t = json_string_value(json_object_get(o, "time"));
    assert_int_equal(strlen(t), 24); /* 2024-01-02T03:04:05.678Z */
    assert_int_equal(t[10], 'T');
    assert_int_equal(t[23], 'Z');
    assert_string_equal(json_string_value(json_object_get(o, "principal")), "user:alice");
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "groups"), 0)), "group:eng");
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "asserted_groups"), 0)),
                        "group:idp");
    assert_int_equal(json_integer_value(json_object_get(o, "revision")), 42);
    assert_int_equal(json_integer_value(json_object_get(o, "query")), nl);
    json_t *f = json_object_get(o, "filter");
    if (nl == 0) assert_true(json_is_object(f));
    if (nl == 1) assert_string_equal(json_string_value(f), "not json");
    if (nl == 2) assert_true(json_is_null(f));
    json_t *res = json_object_get(o, "results");
    assert_int_equal(json_array_size(res), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "resolver")),
                        "grant group:eng s3://b/eng/");
    assert_true(json_is_null(json_object_get(json_array_get(res, 1), "resolver")));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(res, 1), "chunk")), 2);
    json_t *rs = json_object_get(o, "resolver");
    assert_int_equal(json_integer_value(json_object_get(rs, "denied")), 3);
    assert_int_equal(json_integer_value(json_object_get(rs, "error")), 1);
    assert_true(json_is_true(json_object_get(o, "degraded")));
    /* crc: the line without ,"crc":"..." */
    const char *crc = json_string_value(json_object_get(o, "crc"));
    char *cut = strstr(line, ",\"crc\":\"");
    assert_non_null(cut);
    *cut = 0;
    char content[8192];
    snprintf(content, sizeof content, "%s}", line);
    char want[16];
    snprintf(want, sizeof want, "%08x", crc32_bitwise((const unsigned char *)content, strlen(content)));
    assert_string_equal(crc, want);
    json_decref(o);
  }
  assert_int_equal(nl, 3);
  free(text);
  assert_int_equal(crc32_bitwise((const unsigned char *)"123456789", 9), 0xCBF43926u);

  int torn = -1;
  uint64_t bad = 99;
  assert_int_equal(wd_audit_verify(path, &torn, &bad), 3);
  assert_int_equal(torn, 0);
  assert_int_equal(bad, 0);
  /* crash mid-write: the last line is cut short */
  assert_int_equal(truncate(path, (off_t)len - 7), 0);
  assert_int_equal(wd_audit_verify(path, &torn, &bad), 2);
  assert_int_equal(torn, 1);
  assert_int_equal(bad, 0);
  /* reopening ends the torn line; new records verify */
  a = audit_open(db, path); /* an absolute path works too */
  audit_record(a, db, &c->who, NULL, 3);
  wd_audit_close(a);
  assert_int_equal(wd_audit_verify(path, &torn, &bad), 3);
  assert_int_equal(torn, 0);
  assert_int_equal(bad, 1);
  /* a flipped byte in the first line: damaged, not torn */
  FILE *fp = fopen(path, "r+");
  fseek(fp, 30, SEEK_SET);
  int ch = fgetc(fp);
  fseek(fp, 30, SEEK_SET);
  fputc(ch ^ 1, fp);
  fclose(fp);
  assert_int_equal(wd_audit_verify(path, &torn, &bad), 2);
  assert_int_equal(bad, 2);
  /* a last line whose crc fails counts as torn */
  fp = fopen(path, "a");
  fputs("{\"x\":1,\"crc\":\"00000000\"}\n", fp);
  fclose(fp);
  assert_int_equal(wd_audit_verify(path, &torn, &bad), 2);
  assert_int_equal(torn, 1);
  assert_int_equal(bad, 2);
  assert_true(wd_audit_verify("/nonexistent/audit.jsonl", &torn, &bad) < 0);
}

typedef struct athr {
  wd_audit *a;
  warden *db;
  const wd_strlist *who;
} athr;

static void *audit_thr(void *arg) {
  athr *t = arg;
  for (int i = 0; i < 50; i++) audit_record(t->a, t->db, t->who, "{\"a\":1}", (size_t)i);
  return NULL;
}

static void test_audit_threads(void **state) {
  cmdfx *c = *state;
  wd_audit *a = audit_open(c->f.db, "audit2.jsonl");
  pthread_t th[4];
  athr t = {a, c->f.db, &c->who};
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, audit_thr, &t), 0);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  wd_audit_close(a);
  char path[256];
  snprintf(path, sizeof path, "%s/c/audit2.jsonl", c->f.dir);
  int torn;
  uint64_t bad;
  assert_int_equal(wd_audit_verify(path, &torn, &bad), 200);
  assert_int_equal(torn, 0);
  assert_int_equal(bad, 0);
}

int main(void) {
  quick = getenv("WARDEN_TEST_QUICK") != NULL;
  if (!realpath("build/check-access", check_access) || access(check_access, X_OK) != 0) {
    check_access[0] = 0;
    fprintf(stderr, "note: build/check-access not found (cwd must be the repo root); "
                    "command resolver tests are skipped\n");
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grants_api),
      cmocka_unit_test(test_grants_oracle),
      cmocka_unit_test(test_none),
      cmocka_unit_test_setup_teardown(test_command_basic, cmd_setup, cmd_teardown),
      cmocka_unit_test_setup_teardown(test_command_crash_restart, cmd_setup, cmd_teardown),
      cmocka_unit_test_setup_teardown(test_command_halving, cmd_setup, cmd_teardown),
      cmocka_unit_test_setup_teardown(test_command_always_broken, cmd_setup, cmd_teardown),
      cmocka_unit_test_setup_teardown(test_command_hang_and_slow, cmd_setup, cmd_teardown),
      cmocka_unit_test_setup_teardown(test_command_dead_programs, cmd_setup, cmd_teardown),
      cmocka_unit_test_setup_teardown(test_command_threads, cmd_setup, cmd_teardown),
      cmocka_unit_test(test_command_from_config),
      cmocka_unit_test_setup_teardown(test_callback, cmd_setup, cmd_teardown),
      cmocka_unit_test_setup_teardown(test_audit, cmd_setup, cmd_teardown),
      cmocka_unit_test_setup_teardown(test_audit_threads, cmd_setup, cmd_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
