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
#include "store.h"
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

/* --------------------------------------------- one principal grammar */

/* NAME parts (after "user:" / "group:"), good and bad. */
static const char *const good_names[] = {
    "alice", "a.b-c_d@example.com", "Zo\xc3\xab", /* Zoë */
    "\xe5\x90\x8d\xe5\x89\x8d",                      /* 名前 */
    "\xf0\x9f\x94\x91key",                           /* emoji U+1F511 */
    "x:y/z=1", "n\xc2\xa1",                          /* U+00A1 is printable */
};
static const char *const bad_names[] = {
    "",                          /* empty */
    "a b",                       /* space */
    "a\tb", "a\x01", "a\x7f",    /* ASCII controls */
    "a\xc2\xa0",                 /* U+00A0 no-break space (trailing) */
    "a\xc2\x85",                 /* U+0085 NEL */
    "a\xe2\x80\xa8",             /* U+2028 line separator */
    "a\xe2\x80\xa9",             /* U+2029 paragraph separator */
    "a\xe3\x80\x80",             /* U+3000 ideographic space */
    "a\xe2\x80\x8b",             /* U+200B zero width space */
    "\xef\xbb\xbf" "a",          /* U+FEFF BOM (leading) */
    "a\xe2\x80\x8d" "b",         /* U+200D zero width joiner */
    "a\xe2\x80\xae",             /* U+202E right-to-left override */
    "a\xe2\x81\xa0",             /* U+2060 word joiner */
    "a\xc2\xad",                 /* U+00AD soft hyphen */
    "a\xe1\x9a\x80",             /* U+1680 ogham space mark */
    "a\xe2\x80\xaf",             /* U+202F narrow no-break space */
    "a\xf3\xa0\x80\x81",         /* U+E0001 language tag */
    "a\xef\xbf\xbe",             /* U+FFFE noncharacter */
    "a\xff",                     /* not UTF-8 */
    "a\xc3",                     /* cut sequence */
    "a\xc0\xaf",                 /* overlong '/' */
    "a\xed\xa0\x80",             /* surrogate U+D800 */
    "a\xf4\x90\x80\x80",         /* > U+10FFFF */
};

/* Every entry point that takes a principal, for one full principal string
 * (p starts with "user:" or "group:").  Returns the number of entry points
 * that accepted it; on refusal the collection's revision must not move. */
static int entry_points(fx *f, const char *p, int expect_ok) {
  int accepted = 0, points = 0;
  char esc[1024], buf[8192], path[256], err[1024];
  json_esc(p, esc, sizeof esc);
  int is_group = strncmp(p, "group:", 6) == 0;

  /* 1. warden.yaml default_acl (double-quoted YAML scalar, raw bytes) */
  {
    wd_config c;
    int n = snprintf(buf, sizeof buf, "dimension: 4\ndefault_acl:\n  allow: [\"%s\"]\n", esc);
    int rc = wd_config_parse(buf, (size_t)n, "warden.yaml", &c, err, sizeof err);
    if (rc == 0) wd_config_free(&c);
    points++;
    accepted += rc == 0;
    if (rc != 0 && expect_ok) fprintf(stderr, "config refused %s: %s\n", p, err);
    /* refused by the grammar (naming the key) or, for bytes YAML itself
     * does not allow, by libyaml (naming the file) */
    if (rc != 0 && !expect_ok) assert_non_null(strstr(err, "warden.yaml:"));
  }
  /* 2, 3. ingest ACL allow and deny */
  for (int d = 0; d < 2; d++) {
    uint64_t r0 = revision(f->db);
    snprintf(buf, sizeof buf,
             "{\"doc_id\":\"g%d\",\"source\":\"s3://b/g\",\"acl\":{\"allow\":[\"%s\"],"
             "\"deny\":[\"%s\"]},\"chunks\":[{\"text\":\"t\",\"embedding\":[1,0,0,0]}]}\n",
             d, d ? "user:ok" : esc, d ? esc : "user:ok");
    int rc = ingest(f->db, buf);
    points++;
    accepted += rc == 0;
    if (rc) {
      assert_int_equal(revision(f->db), r0);
      if (expect_ok) fprintf(stderr, "ingest refused %s: %s\n", p, warden_errmsg(f->db));
      else if (!strstr(warden_errmsg(f->db), "t.jsonl:1: json:")) /* not JSON at all */
        assert_non_null(strstr(warden_errmsg(f->db), d ? "t.jsonl:1: acl.deny[0]" : "t.jsonl:1: acl.allow[0]"));
    }
  }
  /* 4, 5. acl set allow / deny */
  for (int d = 0; d < 2; d++) {
    uint64_t r0 = revision(f->db);
    const char *v[] = {p};
    int rc = d ? warden_acl_set(f->db, "base", NULL, 0, v, 1, NULL)
               : warden_acl_set(f->db, "base", v, 1, NULL, 0, NULL);
    points++;
    accepted += rc == 0;
    if (rc) assert_int_equal(revision(f->db), r0);
  }
  /* 6. acl sync file */
  {
    uint64_t r0 = revision(f->db);
    int n = snprintf(buf, sizeof buf, "{\"doc_id\":\"base\",\"allow\":[\"%s\"],\"deny\":[]}\n", esc);
    snprintf(path, sizeof path, "%s/acl.jsonl", f->dir);
    write_file(path, buf, (size_t)n);
    int rc = warden_acl_sync(f->db, path, NULL, NULL);
    points++;
    accepted += rc == 0;
    if (rc) assert_int_equal(revision(f->db), r0);
  }
  /* 7. principals set: the principal, 8. its groups (group names only) */
  {
    uint64_t r0 = revision(f->db);
    const char *g[] = {"group:g1"};
    int rc = warden_principal_set(f->db, p, g, 1, NULL);
    points++;
    accepted += rc == 0;
    if (rc) assert_int_equal(revision(f->db), r0);
    if (is_group) {
      const char *g2[] = {p};
      rc = warden_principal_set(f->db, "user:member", g2, 1, NULL);
      points++;
      accepted += rc == 0;
      if (rc) assert_int_equal(revision(f->db), r0);
    }
  }
  /* 9. principals sync file (principal; groups when a group) */
  {
    uint64_t r0 = revision(f->db);
    int n = is_group ? snprintf(buf, sizeof buf, "{\"principal\":\"user:m2\",\"groups\":[\"%s\"]}\n", esc)
                     : snprintf(buf, sizeof buf, "{\"principal\":\"%s\",\"groups\":[]}\n", esc);
    snprintf(path, sizeof path, "%s/princ.jsonl", f->dir);
    write_file(path, buf, (size_t)n);
    int rc = warden_principals_sync(f->db, path, NULL, NULL);
    points++;
    accepted += rc == 0;
    if (rc) assert_int_equal(revision(f->db), r0);
  }
  /* 10. principals get */
  {
    char *js = NULL;
    int rc = warden_principal_get(f->db, p, &js);
    warden_free(js);
    points++;
    accepted += rc == 0;
  }
  /* 11. grants add */
  {
    uint64_t r0 = revision(f->db);
    int rc = warden_grant_add(f->db, p, "s3://b/", NULL);
    points++;
    accepted += rc == 0;
    if (rc) assert_int_equal(revision(f->db), r0);
  }
  /* 12. query principal, 13. asserted group (C API) */
  {
    float q[4] = {1, 0, 0, 0};
    warden_query_opts o = {0};
    o.principal = p;
    o.k = 1;
    warden_results *r = NULL;
    int rc = warden_query(f->db, q, 1, &o, &r);
    if (!rc) warden_results_free(r);
    points++;
    accepted += rc == 0;
    if (is_group) {
      const char *g[] = {p};
      o.principal = "user:asker";
      o.groups = g;
      o.ngroups = 1;
      r = NULL;
      rc = warden_query(f->db, q, 1, &o, &r);
      if (!rc) warden_results_free(r);
      points++;
      accepted += rc == 0;
    }
  }
  if (expect_ok && accepted != points)
    fail_msg("\"%s\": accepted at %d of %d entry points", p, accepted, points);
  return accepted;
}

static void test_principal_grammar(void **state) {
  (void)state;
  fx f;
  fx_open(&f, 4, "l2");
  assert_int_equal(ingest(f.db, "{\"doc_id\":\"base\",\"source\":\"s3://b/base\",\"acl\":{\"allow\":[\"*\"]},"
                                "\"chunks\":[{\"text\":\"t\",\"embedding\":[1,0,0,0]}]}\n"),
                   0);
  const char *pre[] = {"user:", "group:"};
  char p[512];
  for (size_t k = 0; k < 2; k++) {
    for (size_t i = 0; i < sizeof good_names / sizeof good_names[0]; i++) {
      snprintf(p, sizeof p, "%s%s", pre[k], good_names[i]);
      entry_points(&f, p, 1);
    }
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
      snprintf(p, sizeof p, "%s%s", pre[k], bad_names[i]);
      int acc = entry_points(&f, p, 0);
      if (acc) fail_msg("bad name #%zu \"%s\" accepted at %d entry points", i, p, acc);
    }
  }
  /* the refusal names the invisible character */
  const char *v[] = {"user:bob\xc2\xa0"};
  assert_int_equal(warden_acl_set(f.db, "base", NULL, 0, v, 1, NULL), WARDEN_EDATA);
  assert_non_null(strstr(warden_errmsg(f.db), "U+00A0"));
  fx_close(&f);
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


/* ------------------------------------------ vectors float32 can score */

static int doc_line(char *buf, size_t cap, const char *id, const char *emb) {
  return snprintf(buf, cap,
                  "{\"doc_id\":\"%s\",\"source\":\"s3://b/%s\",\"acl\":{\"allow\":[\"*\"]},"
                  "\"chunks\":[{\"text\":\"t\",\"embedding\":%s}]}\n",
                  id, id, emb);
}

static int query1(warden *db, const float *q, float *score, size_t *n) {
  warden_query_opts o = {0};
  o.principal = "user:a";
  o.k = 10;
  o.strategy = WARDEN_STRATEGY_EXACT;
  warden_results *r = NULL;
  int rc = warden_query(db, q, 1, &o, &r);
  if (rc) return rc;
  *n = warden_results_count(r, 0);
  if (*n) *score = warden_results_hit(r, 0, 0)->score;
  warden_results_free(r);
  return 0;
}

typedef struct raw_put {
  uint32_t slot;
  const float *v;
} raw_put;
static int raw_put_fn(wd_txn *tx, void *ctx) {
  raw_put *p = ctx;
  return store_vec_put(tx, p->slot, p->v);
}

static void test_norms(void **state) {
  (void)state;
  char buf[512];
  /* cosine */
  fx f;
  fx_open(&f, 4, "cosine");
  doc_line(buf, sizeof buf, "good", "[1,0.5,0,0]");
  assert_int_equal(ingest(f.db, buf), 0);
  uint64_t r0 = revision(f.db);
  const char *bad_cos[] = {"[1e-40,0,0,0]", "[1e-31,1e-31,0,0]", "[0,0,0,0]",
                           "[4e18,0,0,0]", "[3e38,3e38,3e38,3e38]"};
  for (size_t i = 0; i < sizeof bad_cos / sizeof bad_cos[0]; i++) {
    doc_line(buf, sizeof buf, "bad", bad_cos[i]);
    assert_int_equal(ingest(f.db, buf), WARDEN_EDATA);
    if (!strstr(warden_errmsg(f.db), "t.jsonl:1: chunks[0].embedding: "))
      fail_msg("%s: %s", bad_cos[i], warden_errmsg(f.db));
    assert_int_equal(revision(f.db), r0);
  }
  /* small but representable: scored exactly */
  doc_line(buf, sizeof buf, "tiny", "[1e-29,0,0,0]");
  assert_int_equal(ingest(f.db, buf), 0);
  float sc = 0;
  size_t n = 0;
  float q[4] = {1, 0, 0, 0};
  assert_int_equal(query1(f.db, q, &sc, &n), 0);
  assert_int_equal(n, 2);
  assert_true(fabsf(sc - 1.0f) < 1e-5f); /* tiny first, score 1, not NaN */
  /* query vectors: the same rule */
  float qbad[][4] = {{1e-40f, 0, 0, 0}, {0, 0, 0, 0}, {3e38f, 3e38f, 0, 0}, {NAN, 0, 0, 0}};
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(query1(f.db, qbad[i], &sc, &n), WARDEN_EDATA);
    assert_non_null(strstr(warden_errmsg(f.db), "query 0: "));
  }
  float qtiny[4] = {1e-29f, 0, 0, 0};
  assert_int_equal(query1(f.db, qtiny, &sc, &n), 0);
  assert_int_equal(n, 2);
  /* warden check finds a stored vector that cannot be scored (written
   * below the ingest door, as an older build could) */
  char *js = NULL;
  assert_int_equal(warden_check(f.db, &js), 0);
  warden_free(js);
  float under[4] = {1e-40f, 0, 0, 0};
  raw_put rp = {0, under};
  uint64_t rv;
  assert_int_equal(store_write(f.db, raw_put_fn, &rp, &rv), 0);
  js = NULL;
  assert_int_equal(warden_check(f.db, &js), WARDEN_ECORRUPT);
  assert_non_null(js);
  assert_non_null(strstr(js, "cannot be scored"));
  warden_free(js);
  fx_close(&f);

  /* l2: squared distances that would overflow float32 are refused */
  fx_open(&f, 4, "l2");
  doc_line(buf, sizeof buf, "big", "[1e18,0,0,0]");
  assert_int_equal(ingest(f.db, buf), 0);
  doc_line(buf, sizeof buf, "huge", "[1e19,0,0,0]");
  assert_int_equal(ingest(f.db, buf), WARDEN_EDATA);
  doc_line(buf, sizeof buf, "zero", "[0,0,0,0]");
  assert_int_equal(ingest(f.db, buf), 0); /* fine for l2 */
  float qn[4] = {-3e18f, 0, 0, 0};
  assert_int_equal(query1(f.db, qn, &sc, &n), 0);
  assert_int_equal(n, 2);
  assert_true(isfinite(sc));
  assert_true(sc > 8e36f);
  float qh[4] = {-1e19f, 0, 0, 0};
  assert_int_equal(query1(f.db, qh, &sc, &n), WARDEN_EDATA);
  fx_close(&f);
}

/* ------------------------------------ callback resolver isolation */

static int hostile_cb(void *ctx, const char *principal, const char *const *groups,
                      size_t ngroups, const warden_resource *res, size_t n,
                      unsigned char *allowed) {
  (void)ctx, (void)principal, (void)groups, (void)ngroups;
  for (size_t i = 0; i < n; i++)
    if (strncmp(res[i].doc_id, "bad-", 4) == 0) return -1; /* the whole call fails */
  for (size_t i = 0; i < n; i++)
    allowed[i] = strncmp(res[i].doc_id, "good-", 5) == 0        ? 1
                 : strncmp(res[i].doc_id, "undecided-", 10) == 0 ? WARDEN_RESOLVER_UNDECIDED
                                                                 : 0;
  return 0;
}

static void test_callback_isolation(void **state) {
  (void)state;
  fx f;
  fx_open(&f, 4, "l2");
  char buf[400];
  size_t cap = 1 << 16, len = 0;
  char *all = malloc(cap);
  int ngood = 0;
  for (int i = 0; i < 60; i++) {
    const char *kind = i % 10 == 3 ? "bad" : i % 10 == 7 ? "undecided" : i % 10 == 5 ? "no" : "good";
    ngood += kind[0] == 'g';
    snprintf(buf, sizeof buf, "%s-%d", kind, i);
    char emb[64];
    snprintf(emb, sizeof emb, "[1,%d,0,0]", i);
    len += (size_t)doc_line(all + len, cap - len, buf, emb);
  }
  assert_int_equal(warden_ingest_buffer(f.db, "t", all, len, NULL, NULL), 0);
  free(all);
  assert_int_equal(warden_set_resolver(f.db, hostile_cb, NULL), 0);
  float q[4] = {1, 0, 0, 0};
  warden_query_opts o = {0};
  o.principal = "user:a";
  o.k = 100;
  warden_results *r = NULL;
  assert_int_equal(warden_query(f.db, q, 1, &o, &r), 0);
  size_t n = warden_results_count(r, 0);
  for (size_t i = 0; i < n; i++)
    if (strncmp(warden_results_hit(r, 0, i)->doc_id, "good-", 5) != 0)
      fail_msg("returned %s", warden_results_hit(r, 0, i)->doc_id);
  assert_int_equal(n, (size_t)ngood); /* every good one, although calls with a bad one fail */
  assert_true(warden_results_degraded(r, 0));
  warden_results_free(r);
  fx_close(&f);
}

/* ------------------------------------------------ audit.fsync option */

static void test_audit_fsync(void **state) {
  (void)state;
  wd_config c;
  char err[512];
  const char y[] = "dimension: 4\naudit:\n  path: audit.jsonl\n  fsync: true\n";
  assert_int_equal(wd_config_parse(y, sizeof y - 1, "warden.yaml", &c, err, sizeof err), 0);
  assert_int_equal(c.audit_fsync, 1);
  wd_config_free(&c);
  const char y2[] = "dimension: 4\naudit:\n  fsync: true\n";
  assert_int_equal(wd_config_parse(y2, sizeof y2 - 1, "warden.yaml", &c, err, sizeof err),
                   WARDEN_ECONFIG);
  assert_non_null(strstr(err, "audit.fsync: needs audit.path"));
  const char y3[] = "dimension: 4\naudit:\n  path: a\n  fsync: sometimes\n";
  assert_int_equal(wd_config_parse(y3, sizeof y3 - 1, "warden.yaml", &c, err, sizeof err),
                   WARDEN_ECONFIG);
  assert_non_null(strstr(err, "warden.yaml:4: audit.fsync: expected one of false, true"));
  /* a collection created with it keeps it and audits every query */
  char dir[64] = "/tmp/wd_harden_XXXXXX", sub[128], yp[128], ap[160];
  assert_non_null(mkdtemp(dir));
  snprintf(yp, sizeof yp, "%s/in.yaml", dir);
  write_file(yp, y, sizeof y - 1);
  snprintf(sub, sizeof sub, "%s/c", dir);
  warden_create_opts co = {0, NULL, yp};
  assert_int_equal(warden_create(sub, &co, err, sizeof err), 0);
  snprintf(ap, sizeof ap, "%s/warden.yaml", sub);
  assert_int_equal(wd_config_load(ap, &c, err, sizeof err), 0);
  assert_int_equal(c.audit_fsync, 1); /* written back by the config writer */
  wd_config_free(&c);
  warden *db;
  assert_int_equal(warden_open(sub, NULL, &db, err, sizeof err), 0);
  assert_int_equal(ingest(db, "{\"doc_id\":\"a\",\"source\":\"s3://b/a\",\"acl\":{\"allow\":[\"*\"]},"
                              "\"chunks\":[{\"text\":\"t\",\"embedding\":[1,0,0,0]}]}\n"),
                   0);
  float q[4] = {1, 0, 0, 0};
  warden_query_opts o = {0};
  o.principal = "user:a";
  warden_results *r;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(warden_query(db, q, 1, &o, &r), 0);
    warden_results_free(r);
  }
  warden_close(db);
  snprintf(ap, sizeof ap, "%s/audit.jsonl", sub);
  FILE *f = fopen(ap, "r");
  assert_non_null(f);
  int lines = 0, ch;
  while ((ch = fgetc(f)) != EOF) lines += ch == '\n';
  fclose(f);
  assert_int_equal(lines, 3);
  rm_rf(dir);
}

/* -------------------------------- compact needs the collection alone */

static void test_compact_exclusive(void **state) {
  (void)state;
  fx f;
  fx_open(&f, 4, "l2");
  assert_int_equal(ingest(f.db, "{\"doc_id\":\"a\",\"source\":\"s3://b/a\",\"acl\":{\"allow\":[\"*\"]},"
                                "\"chunks\":[{\"text\":\"t\",\"embedding\":[1,0,0,0]}]}\n"),
                   0);
  char err[1024] = "";
  /* refused while a handle (here: this process's) has it open */
  assert_int_equal(warden_compact(f.sub, err, sizeof err, NULL), WARDEN_EIO);
  assert_non_null(strstr(err, "is open"));
  uint64_t r0 = revision(f.db);
  warden_close(f.db);
  char *js = NULL;
  assert_int_equal(warden_compact(f.sub, err, sizeof err, &js), 0);
  assert_non_null(strstr(js, "\"documents\":1"));
  warden_free(js);
  assert_int_equal(warden_open(f.sub, NULL, &f.db, err, sizeof err), 0);
  assert_true(revision(f.db) > r0);
  fx_close(&f);
}

/* ------------------------------------ bitmap adds without a read */

/* store_bm_add keeps only the new bits and merges the stored ones when
 * the bitmap is next read, changed otherwise, or flushed (store.c
 * BM_PENDING).  Each step's bitmap is compared with a hand-written set. */
typedef struct pend {
  int step;
  char got[4][64]; /* the sets read inside the txns, as "1,2,5" */
} pend;

static void set_str(const roaring_bitmap_t *bm, char *out, size_t n) {
  size_t o = 0;
  out[0] = 0;
  uint32_t v[16];
  size_t c = (size_t)roaring_bitmap_get_cardinality(bm);
  assert_true(c <= 16);
  roaring_bitmap_to_uint32_array(bm, v);
  for (size_t i = 0; i < c && o + 12 < n; i++)
    o += (size_t)snprintf(out + o, n - o, o ? ",%u" : "%u", v[i]);
}

static int pend_or(wd_txn *tx, const char *key, char *out) {
  char kb[64];
  size_t kl = store_key(kb, 'N', key, strlen(key));
  roaring_bitmap_t *acc = roaring_bitmap_create();
  int rc = store_bm_or(tx, kb, kl, acc);
  set_str(acc, out, 64);
  roaring_bitmap_free(acc);
  return rc;
}

static int pend_add(wd_txn *tx, const char *key, const uint32_t *s, size_t n) {
  char kb[64];
  return store_bm_add(tx, kb, store_key(kb, 'N', key, strlen(key)), s, n);
}

static int pend_fn(wd_txn *tx, void *ctx) {
  pend *p = ctx;
  char kb[64];
  int rc = 0;
  if (p->step == 0) {
    const uint32_t a[] = {1, 2, 5};
    rc = pend_add(tx, "/k", a, 3);
  } else if (p->step == 1) { /* read, then change, a pending bitmap */
    const uint32_t a[] = {7}, b[] = {9};
    roaring_bitmap_t *bm;
    if ((rc = pend_add(tx, "/k", a, 1)) || (rc = pend_or(tx, "/k", p->got[0]))) return rc;
    if ((rc = store_bm_mut(tx, kb, store_key(kb, 'N', "/k", 2), &bm))) return rc;
    roaring_bitmap_remove(bm, 1);
    if ((rc = pend_or(tx, "/k", p->got[1])) || (rc = pend_add(tx, "/k", b, 1))) return rc;
  } else if (p->step == 2) { /* flushed pending: a stored key and a new one */
    const uint32_t a[] = {11}, b[] = {3};
    rc = pend_add(tx, "/k", a, 1);
    if (!rc) rc = pend_add(tx, "/new", b, 1);
  } else { /* a spill in the middle of the txn, then more adds */
    const uint32_t a[] = {13}, b[] = {15};
    if ((rc = pend_add(tx, "/k", a, 1)) || (rc = store_write_spill(tx, 0))) return rc;
    if ((rc = pend_add(tx, "/k", b, 1))) return rc;
    rc = pend_or(tx, "/k", p->got[2]);
  }
  return rc;
}

static void read_set(warden *db, const char *key, char *out) {
  wd_txn tx;
  assert_int_equal(store_read_begin(db, &tx), 0);
  assert_int_equal(pend_or(&tx, key, out), 0);
  store_read_end(&tx);
}

static void test_pending_bitmap(void **state) {
  (void)state;
  fx f;
  fx_open(&f, 4, "l2");
  pend p;
  memset(&p, 0, sizeof p);
  char got[64];
  uint64_t rv;
  assert_int_equal(store_write(f.db, pend_fn, &p, &rv), 0);
  read_set(f.db, "/k", got);
  assert_string_equal(got, "1,2,5");
  p.step = 1;
  assert_int_equal(store_write(f.db, pend_fn, &p, &rv), 0);
  assert_string_equal(p.got[0], "1,2,5,7"); /* read: the stored bits too */
  assert_string_equal(p.got[1], "2,5,7");   /* changed: merged, then 1 removed */
  read_set(f.db, "/k", got);
  assert_string_equal(got, "2,5,7,9");
  p.step = 2;
  assert_int_equal(store_write(f.db, pend_fn, &p, &rv), 0);
  read_set(f.db, "/k", got);
  assert_string_equal(got, "2,5,7,9,11");
  read_set(f.db, "/new", got);
  assert_string_equal(got, "3");
  p.step = 3;
  assert_int_equal(store_write(f.db, pend_fn, &p, &rv), 0);
  assert_string_equal(p.got[2], "2,5,7,9,11,13,15");
  read_set(f.db, "/k", got);
  assert_string_equal(got, "2,5,7,9,11,13,15");
  fx_close(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_principal_grammar),
      cmocka_unit_test(test_error_paths_read_no_freed_json),
      cmocka_unit_test(test_norms),
      cmocka_unit_test(test_callback_isolation),
      cmocka_unit_test(test_audit_fsync),
      cmocka_unit_test(test_compact_exclusive),
      cmocka_unit_test(test_pending_bitmap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
