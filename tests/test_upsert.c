/*
 * test_upsert.c -- warden_upsert(), the typed upsert, against the JSON Lines
 * path it shares its validator with:
 *  - the same documents upserted typed and ingested as JSONL give identical
 *    warden_export output and identical query answers;
 *  - every class of bad input is refused with "docs[I].field: reason" (the
 *    same reason the JSONL path gives for the same document) and leaves the
 *    collection exactly as it was (export and revision unchanged);
 *  - keep_going commits the good documents and reports the bad;
 *  - an upsert replaces a document's chunks; the embedder fills in rows.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "warden.h"
#include "engine/fastemb.h"

#define DIM 16

static char tmp[64];

static void mk_tmp(void) {
  snprintf(tmp, sizeof tmp, "/tmp/warden-upsert-XXXXXX");
  assert_non_null(mkdtemp(tmp));
}

/* A collection named name under tmp; yaml (may be NULL) its config. */
static warden *fresh(const char *name, const char *yaml) {
  char dir[256], cfg[256], err[512];
  snprintf(dir, sizeof dir, "%s/%s", tmp, name);
  warden_create_opts co = {DIM, "cosine", NULL};
  if (yaml) {
    snprintf(cfg, sizeof cfg, "%s/%s.yaml", tmp, name);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fputs(yaml, f);
    fclose(f);
    co.dim = 0;
    co.metric = NULL;
    co.config_path = cfg;
  }
  if (warden_create(dir, &co, err, sizeof err)) fail_msg("create: %s", err);
  warden *db;
  if (warden_open(dir, NULL, &db, err, sizeof err)) fail_msg("open: %s", err);
  return db;
}

static void rm_tmp(void) {
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  assert_int_equal(system(cmd), 0);
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
static char *export_all(warden *db) {
  sbuf s = {0};
  assert_int_equal(warden_export(db, sbuf_write, &s), 0);
  if (!s.b) s.b = calloc(1, 1);
  return s.b;
}
static uint64_t revision(warden *db) {
  uint64_t r = 0;
  assert_int_equal(warden_revision(db, &r), 0);
  return r;
}

/* ------------------------------------------------------ a test corpus */

#define NDOC 60
#define MAXCH 3

/* Storage behind the warden_doc structs of one corpus. */
typedef struct corpus {
  warden_doc docs[NDOC];
  warden_meta meta[NDOC][5];
  char ids[NDOC][32], srcs[NDOC][64], nss[NDOC][32], kinds[NDOC][8], tags[NDOC][2][8];
  const char *taglist[NDOC][2];
  const char *allow[NDOC][3], *deny[NDOC][1];
  char texts[NDOC][MAXCH][64];
  const char *textp[NDOC][MAXCH];
  float *rows;
  size_t nrows;
} corpus;

static uint64_t rng = 88172645463325252ull;
static double urand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}

static void corpus_make(corpus *c) {
  memset(c, 0, sizeof *c);
  c->rows = malloc(sizeof(float) * NDOC * MAXCH * DIM);
  for (int i = 0; i < NDOC; i++) {
    warden_doc *d = &c->docs[i];
    snprintf(c->ids[i], 32, "doc-%03d", i);
    snprintf(c->srcs[i], 64, i % 2 ? "file:///data/%d.txt" : "s3://bucket/%d.md", i);
    snprintf(c->nss[i], 32, "/ns%d/sub/", i % 3); /* trailing '/' is normalised */
    snprintf(c->kinds[i], 8, "%c", "abc"[i % 3]);
    snprintf(c->tags[i][0], 8, "t%d", i % 4);
    snprintf(c->tags[i][1], 8, "all");
    c->taglist[i][0] = c->tags[i][0];
    c->taglist[i][1] = c->tags[i][1];
    warden_meta *m = c->meta[i];
    m[0] = (warden_meta){.key = "year", .type = WARDEN_META_INT, .i = 2000 + i % 5};
    m[1] = (warden_meta){.key = "kind", .type = WARDEN_META_STRING, .str = c->kinds[i]};
    m[2] = (warden_meta){.key = "weight", .type = WARDEN_META_FLOAT, .f = i * 0.25 + (i % 2 ? 0.5 : 0)};
    m[3] = (warden_meta){.key = "draft", .type = WARDEN_META_BOOL, .i = i % 2};
    m[4] = (warden_meta){.key = "tags", .type = WARDEN_META_STRING_LIST, .list = c->taglist[i], .nlist = 2};
    size_t na = 0;
    c->allow[i][na++] = i % 2 ? "user:bob" : "user:alice";
    if (i % 3 == 0) c->allow[i][na++] = "group:eng";
    if (i % 7 == 0) c->allow[i][na++] = "*";
    if (i % 5 == 0) c->deny[i][0] = "user:mallory";
    *d = (warden_doc){.doc_id = c->ids[i], .source = c->srcs[i],
                      .namespace_ = i % 4 == 3 ? NULL : c->nss[i],
                      .metadata = m, .nmetadata = i % 6 == 5 ? 0 : 5,
                      .has_acl = 1, .allow = c->allow[i], .nallow = na,
                      .deny = c->deny[i], .ndeny = i % 5 == 0,
                      .texts = c->textp[i], .nchunks = 1 + i % MAXCH};
    for (size_t k = 0; k < d->nchunks; k++) {
      snprintf(c->texts[i][k], 64, "text of doc %d chunk %zu", i, k);
      c->textp[i][k] = c->texts[i][k];
      for (int x = 0; x < DIM; x++) c->rows[c->nrows * DIM + x] = (float)(urand() * 2 - 1);
      c->nrows++;
    }
  }
}

/* The JSON ingest line of d (its rows: NULL to leave embeddings out),
 * built with jansson so that floats round-trip exactly. */
static json_t *doc_line(const warden_doc *d, const float *rows) {
  json_t *j = json_object();
  if (d->doc_id) json_object_set_new(j, "doc_id", json_string(d->doc_id));
  if (d->source) json_object_set_new(j, "source", json_string(d->source));
  if (d->namespace_) json_object_set_new(j, "namespace", json_string(d->namespace_));
  if (d->nmetadata) {
    json_t *m = json_object();
    for (size_t k = 0; k < d->nmetadata; k++) {
      const warden_meta *e = &d->metadata[k];
      json_t *v = NULL;
      switch (e->type) {
        case WARDEN_META_STRING: v = json_string(e->str); break;
        case WARDEN_META_INT: v = json_integer(e->i); break;
        case WARDEN_META_FLOAT: v = json_real(e->f); break;
        case WARDEN_META_BOOL: v = json_boolean(e->i); break;
        case WARDEN_META_STRING_LIST:
          v = json_array();
          for (size_t x = 0; x < e->nlist; x++) json_array_append_new(v, json_string(e->list[x]));
          break;
      }
      json_object_set_new(m, e->key, v);
    }
    json_object_set_new(j, "metadata", m);
  }
  if (d->has_acl) {
    json_t *a = json_array(), *dn = json_array();
    for (size_t x = 0; x < d->nallow; x++) json_array_append_new(a, json_string(d->allow[x]));
    for (size_t x = 0; x < d->ndeny; x++) json_array_append_new(dn, json_string(d->deny[x]));
    json_object_set_new(j, "acl", json_pack("{soso}", "allow", a, "deny", dn));
  }
  json_t *ch = json_array();
  for (size_t c = 0; c < d->nchunks; c++) {
    json_t *o = json_object();
    if (d->texts[c]) json_object_set_new(o, "text", json_string(d->texts[c]));
    if (rows) {
      json_t *e = json_array();
      for (int x = 0; x < DIM; x++) json_array_append_new(e, json_real(rows[c * DIM + x]));
      json_object_set_new(o, "embedding", e);
    }
    json_array_append_new(ch, o);
  }
  json_object_set_new(j, "chunks", ch);
  return j;
}

/* The JSONL text of docs[0..n) with rows (NULL: no embeddings). */
static char *jsonl(const warden_doc *docs, size_t n, const float *rows, size_t *len) {
  sbuf s = {0};
  size_t r = 0;
  for (size_t i = 0; i < n; i++) {
    json_t *j = doc_line(&docs[i], rows ? rows + r * DIM : NULL);
    r += docs[i].nchunks;
    char *t = json_dumps(j, JSON_COMPACT);
    sbuf_write(&s, t, strlen(t));
    sbuf_write(&s, "\n", 1);
    free(t);
    json_decref(j);
  }
  *len = s.n;
  return s.b;
}

/* Every hit of a query as one comparable string. */
static char *answer(warden *db, const float *q, const char *principal, const char *filter) {
  warden_query_opts o = {.principal = principal, .k = 20, .filter = filter,
                         .strategy = WARDEN_STRATEGY_EXACT};
  warden_results *r;
  int rc = warden_query(db, q, 1, &o, &r);
  if (rc) fail_msg("query: %s", warden_errmsg(db));
  sbuf s = {0};
  sbuf_write(&s, "", 0);
  for (size_t i = 0; i < warden_results_count(r, 0); i++) {
    const warden_hit *h = warden_results_hit(r, 0, i);
    char line[1024];
    snprintf(line, sizeof line, "%s#%u %.6f %s %s %s %s\n", h->doc_id, h->chunk, h->score,
             h->text, h->source, h->namespace_, h->metadata_json);
    sbuf_write(&s, line, strlen(line));
  }
  warden_results_free(r);
  return s.b;
}

static void test_typed_equals_jsonl(void **state) {
  (void)state;
  mk_tmp();
  corpus *c = malloc(sizeof *c);
  corpus_make(c);
  warden *a = fresh("a", NULL), *b = fresh("b", NULL);
  size_t len;
  char *text = jsonl(c->docs, NDOC, c->rows, &len);
  warden_ingest_report ra, rb;
  if (warden_ingest_buffer(a, "docs.jsonl", text, len, NULL, &ra))
    fail_msg("ingest: %s", warden_errmsg(a));
  if (warden_upsert(b, c->docs, NDOC, c->rows, c->nrows, NULL, &rb))
    fail_msg("upsert: %s", warden_errmsg(b));
  assert_int_equal(rb.documents, NDOC);
  assert_int_equal(rb.chunks, c->nrows);
  assert_int_equal(rb.replaced, 0);
  assert_int_equal(rb.bad_lines, 0);
  assert_null(rb.errors);
  assert_int_equal(ra.documents, rb.documents);
  assert_int_equal(ra.chunks, rb.chunks);
  assert_int_equal(rb.revision, revision(b));
  char *ea = export_all(a), *eb = export_all(b);
  assert_true(strlen(ea) > 1000);
  assert_string_equal(ea, eb);
  const char *principals[] = {"user:alice", "user:bob", "group:eng", "user:mallory"};
  const char *filters[] = {NULL, "{\"year\":{\"$gte\":2002}}", "{\"kind\":\"b\"}",
                           "{\"tags\":{\"$in\":[\"t1\"]}}", "{\"draft\":true}"};
  for (int qi = 0; qi < 6; qi++)
    for (int p = 0; p < 4; p++)
      for (int f = 0; f < 5; f++) {
        const float *q = c->rows + (size_t)(qi * 17 % c->nrows) * DIM;
        char *x = answer(a, q, principals[p], filters[f]);
        char *y = answer(b, q, principals[p], filters[f]);
        assert_string_equal(x, y);
        if (p == 0 && f == 0) assert_true(strlen(x) > 0);
        free(x);
        free(y);
      }
  free(ea);
  free(eb);
  free(text);
  warden_close(a);
  warden_close(b);
  free(c->rows);
  free(c);
  rm_tmp();
}

/* ---------------------------------------------------- validation errors */

typedef struct bad_case {
  const char *name;
  void (*mutate)(warden_doc *d, float *row, warden_meta *m);
  int code;           /* expected return */
  const char *msg;    /* expected warden_errmsg, exactly (typed) */
  int jsonl;          /* 1: the JSONL path must give the same field: reason */
} bad_case;

static void m_no_id(warden_doc *d, float *r, warden_meta *m) { (void)r; (void)m; d->doc_id = NULL; }
static void m_empty_id(warden_doc *d, float *r, warden_meta *m) { (void)r; (void)m; d->doc_id = ""; }
static void m_source(warden_doc *d, float *r, warden_meta *m) { (void)r; (void)m; d->source = "no-scheme"; }
static void m_no_source(warden_doc *d, float *r, warden_meta *m) { (void)r; (void)m; d->source = NULL; }
static void m_ns(warden_doc *d, float *r, warden_meta *m) { (void)r; (void)m; d->namespace_ = "a/b"; }
static void m_ns_dots(warden_doc *d, float *r, warden_meta *m) { (void)r; (void)m; d->namespace_ = "/a/../b"; }
static void m_mtype(warden_doc *d, float *r, warden_meta *m) {
  (void)r;
  m[0] = (warden_meta){.key = "year", .type = 99};
  d->metadata = m;
  d->nmetadata = 1;
}
static void m_mkey(warden_doc *d, float *r, warden_meta *m) {
  (void)r;
  m[0] = (warden_meta){.key = "", .type = WARDEN_META_INT, .i = 1};
  d->metadata = m;
  d->nmetadata = 1;
}
static void m_mkey_null(warden_doc *d, float *r, warden_meta *m) {
  (void)r;
  m[0] = (warden_meta){.key = NULL, .type = WARDEN_META_INT, .i = 1};
  d->metadata = m;
  d->nmetadata = 1;
}
static void m_mdup(warden_doc *d, float *r, warden_meta *m) {
  (void)r;
  m[0] = (warden_meta){.key = "k", .type = WARDEN_META_INT, .i = 1};
  m[1] = (warden_meta){.key = "k", .type = WARDEN_META_INT, .i = 2};
  d->metadata = m;
  d->nmetadata = 2;
}
static void m_mconflict(warden_doc *d, float *r, warden_meta *m) {
  (void)r; /* "year" is an int in the stored collection */
  m[0] = (warden_meta){.key = "year", .type = WARDEN_META_STRING, .str = "2020"};
  d->metadata = m;
  d->nmetadata = 1;
}
static void m_mlong(warden_doc *d, float *r, warden_meta *m) {
  (void)r;
  static char big[300];
  memset(big, 'x', 299);
  m[0] = (warden_meta){.key = "k", .type = WARDEN_META_STRING, .str = big};
  d->metadata = m;
  d->nmetadata = 1;
}
static void m_mnan(warden_doc *d, float *r, warden_meta *m) {
  (void)r;
  m[0] = (warden_meta){.key = "w", .type = WARDEN_META_FLOAT, .f = NAN};
  d->metadata = m;
  d->nmetadata = 1;
}
static void m_principal(warden_doc *d, float *r, warden_meta *m) {
  (void)r; (void)m;
  static const char *al[] = {"user:ok", "alice"};
  d->allow = al;
  d->nallow = 2;
}
static void m_deny_star(warden_doc *d, float *r, warden_meta *m) {
  (void)r; (void)m;
  static const char *dn[] = {"*"};
  d->deny = dn;
  d->ndeny = 1;
}
static void m_no_acl(warden_doc *d, float *r, warden_meta *m) { (void)r; (void)m; d->has_acl = 0; }
static void m_no_chunks(warden_doc *d, float *r, warden_meta *m) { (void)r; (void)m; d->nchunks = 0; }
static void m_null_text(warden_doc *d, float *r, warden_meta *m) {
  (void)r; (void)m;
  static const char *t[] = {NULL};
  d->texts = t;
}
static void m_nan(warden_doc *d, float *r, warden_meta *m) { (void)d; (void)m; r[3] = NAN; }
static void m_inf(warden_doc *d, float *r, warden_meta *m) { (void)d; (void)m; r[5] = INFINITY; }
static void m_zero(warden_doc *d, float *r, warden_meta *m) {
  (void)d; (void)m;
  memset(r, 0, DIM * sizeof *r);
}
static void m_dup(warden_doc *d, float *r, warden_meta *m) { (void)r; (void)m; d->doc_id = "good-0"; }
static void m_rows(warden_doc *d, float *r, warden_meta *m) { (void)r; (void)m; d->nchunks = 2; }

static const bad_case cases[] = {
    {"missing doc_id", m_no_id, WARDEN_EDATA, "docs[1].doc_id: required field is missing", 1},
    {"empty doc_id", m_empty_id, WARDEN_EDATA, "docs[1].doc_id: must be 1..1024 bytes", 1},
    {"bad source", m_source, WARDEN_EDATA,
     "docs[1].source: expected a URI such as s3://bucket/key, file:///path or https://...", 1},
    {"missing source", m_no_source, WARDEN_EDATA, "docs[1].source: required field is missing", 1},
    {"bad namespace", m_ns, WARDEN_EDATA, "docs[1].namespace: must start with \"/\"", 1},
    {"namespace ..", m_ns_dots, WARDEN_EDATA,
     "docs[1].namespace: empty, \".\" or \"..\" path segment in \"/a/../b\"", 1},
    {"metadata type code", m_mtype, WARDEN_EDATA,
     "docs[1].metadata.year: unknown type 99 (expected a WARDEN_META_* value)", 0},
    {"empty metadata key", m_mkey, WARDEN_EDATA, "docs[1].metadata.: keys must be 1..128 bytes", 1},
    {"NULL metadata key", m_mkey_null, WARDEN_EDATA, "docs[1].metadata[0]: key is NULL", 0},
    {"repeated metadata key", m_mdup, WARDEN_EDATA, "docs[1].metadata.k: duplicate key", 0},
    {"metadata type conflict", m_mconflict, WARDEN_EDATA,
     "docs[1].metadata.year: expected int (the field's type), got string", 1},
    {"metadata string too long", m_mlong, WARDEN_EDATA,
     "docs[1].metadata.k: string values must be at most 256 bytes, without NUL", 1},
    {"metadata NaN", m_mnan, WARDEN_EDATA, "docs[1].metadata.w: expected a finite number", 0},
    {"bad principal", m_principal, WARDEN_EDATA, NULL, 1},
    {"* in deny", m_deny_star, WARDEN_EDATA, NULL, 1},
    {"no acl, no default", m_no_acl, WARDEN_EDATA,
     "docs[1].acl: required (the collection has no default_acl)", 1},
    {"empty chunks", m_no_chunks, WARDEN_EDATA,
     "docs[1].chunks: expected a non-empty array of {text, embedding}", 0},
    {"NULL text", m_null_text, WARDEN_EDATA, "docs[1].chunks[0].text: required field is missing", 1},
    {"NaN in a row", m_nan, WARDEN_EDATA,
     "docs[1].chunks[0].embedding: value 3 is not a finite float32", 0},
    {"inf in a row", m_inf, WARDEN_EDATA,
     "docs[1].chunks[0].embedding: value 5 is not a finite float32", 0},
    {"zero cosine row", m_zero, WARDEN_EDATA,
     "docs[1].chunks[0].embedding: is all zeros (cosine needs a non-zero vector)", 1},
    {"duplicate doc_id in one call", m_dup, WARDEN_EDATA,
     "docs[1].doc_id: duplicate of docs[0] in this input", 0},
    {"row count mismatch", m_rows, WARDEN_EINVAL, NULL, 0},
};

/* Three documents, the middle one mutated; the collection already holds
 * one document ("stored", with an int field "year"). */
static void test_bad_input(void **state) {
  (void)state;
  mk_tmp();
  warden *db = fresh("c", NULL);
  const char *allow[] = {"*"};
  const char *t1[] = {"one"};
  warden_meta year = {.key = "year", .type = WARDEN_META_INT, .i = 1999};
  float row0[DIM];
  for (int x = 0; x < DIM; x++) row0[x] = (float)(x + 1);
  warden_doc stored = {.doc_id = "stored", .source = "file:///s", .metadata = &year,
                       .nmetadata = 1, .has_acl = 1, .allow = allow, .nallow = 1,
                       .texts = t1, .nchunks = 1};
  if (warden_upsert(db, &stored, 1, row0, 1, NULL, NULL)) fail_msg("%s", warden_errmsg(db));
  char *before = export_all(db);
  uint64_t rev = revision(db);
  for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
    const bad_case *bc = &cases[ci];
    warden_doc d[3];
    warden_meta m[4];
    char ids[3][16];
    for (int i = 0; i < 3; i++) {
      snprintf(ids[i], 16, "good-%d", i);
      d[i] = (warden_doc){.doc_id = ids[i], .source = "s3://b/k", .has_acl = 1, .allow = allow,
                          .nallow = 1, .texts = t1, .nchunks = 1};
    }
    float rows[3 * DIM];
    for (int x = 0; x < 3 * DIM; x++) rows[x] = (float)(x % 7) - 3.0f;
    bc->mutate(&d[1], rows + DIM, m);
    size_t nrows = d[0].nchunks + d[1].nchunks + d[2].nchunks;
    if (bc->code == WARDEN_EINVAL) nrows = 3; /* the row-count case */
    int rc = warden_upsert(db, d, 3, rows, nrows, NULL, NULL);
    if (rc != bc->code)
      fail_msg("%s: rc %d (%s), expected %d", bc->name, rc, warden_errmsg(db), bc->code);
    const char *msg = warden_errmsg(db);
    if (bc->msg && strcmp(msg, bc->msg))
      fail_msg("%s: message \"%s\", expected \"%s\"", bc->name, msg, bc->msg);
    if (bc->code == WARDEN_EDATA && strncmp(msg, "docs[1].", 8))
      fail_msg("%s: message \"%s\" does not name docs[1]", bc->name, msg);
    if (bc->code == WARDEN_EINVAL) assert_true(strlen(msg) > 0);
    char *after = export_all(db);
    if (strcmp(before, after)) fail_msg("%s: the collection changed", bc->name);
    free(after);
    assert_int_equal(revision(db), rev);
    if (bc->jsonl) {
      /* the same document as JSONL: the same "field: reason" after the
       * location, since both paths run the same validator */
      char typed[1024];
      snprintf(typed, sizeof typed, "%s", msg + strlen("docs[1]."));
      size_t len;
      char *text = jsonl(d, 3, rows, &len);
      rc = warden_ingest_buffer(db, "x.jsonl", text, len, NULL, NULL);
      free(text);
      assert_int_equal(rc, WARDEN_EDATA);
      char want[1100];
      snprintf(want, sizeof want, "x.jsonl:2: %s", typed);
      if (strcmp(warden_errmsg(db), want))
        fail_msg("%s: JSONL says \"%s\", typed \"%s\"", bc->name, warden_errmsg(db), msg);
      after = export_all(db);
      assert_string_equal(before, after);
      free(after);
    }
  }
  /* NULL arguments */
  assert_int_equal(warden_upsert(NULL, NULL, 0, NULL, 0, NULL, NULL), WARDEN_EINVAL);
  assert_int_equal(warden_upsert(db, NULL, 2, row0, 1, NULL, NULL), WARDEN_EINVAL);
  /* no embeddings and no embedder */
  assert_int_equal(warden_upsert(db, &stored, 1, NULL, 0, NULL, NULL), WARDEN_EINVAL);
  assert_non_null(strstr(warden_errmsg(db), "no embedder"));
  assert_int_equal(warden_upsert(db, &stored, 1, NULL, 1, NULL, NULL), WARDEN_EINVAL);
  char *after = export_all(db);
  assert_string_equal(before, after);
  free(after);
  assert_int_equal(revision(db), rev);
  /* nothing to do is not an error */
  warden_ingest_report rep;
  assert_int_equal(warden_upsert(db, NULL, 0, NULL, 0, NULL, &rep), 0);
  assert_int_equal(rep.documents, 0);
  assert_int_equal(rep.revision, rev);
  free(before);
  warden_close(db);
  rm_tmp();
}

static void count_progress(void *ctx, uint64_t done, uint64_t total) {
  uint64_t *p = ctx;
  assert_true(done <= total);
  p[0]++;
  p[1] = done;
}

static void test_keep_going(void **state) {
  (void)state;
  mk_tmp();
  warden *db = fresh("k", NULL);
  const char *allow[] = {"user:alice"};
  const char *bad_allow[] = {"nobody"};
  const char *t[] = {"a", "b"};
  char ids[5][8];
  warden_doc d[5];
  float rows[6 * DIM];
  for (int x = 0; x < 6 * DIM; x++) rows[x] = (float)((x * 7) % 11) - 5.0f;
  for (int i = 0; i < 5; i++) {
    snprintf(ids[i], 8, "k%d", i);
    d[i] = (warden_doc){.doc_id = ids[i], .source = "s3://b/k", .has_acl = 1, .allow = allow,
                        .nallow = 1, .texts = t, .nchunks = 1};
  }
  d[2].nchunks = 2;         /* rows 2 and 3 */
  d[1].allow = bad_allow;   /* bad: principal */
  memset(rows + 4 * DIM, 0, DIM * sizeof(float)); /* d[3]'s row: all zeros */
  warden_upsert_opts o = {.keep_going = 1};
  uint64_t prog[2] = {0, 0};
  o.progress = count_progress;
  o.progress_ctx = prog;
  warden_ingest_report rep;
  if (warden_upsert(db, d, 5, rows, 6, &o, &rep)) fail_msg("%s", warden_errmsg(db));
  assert_int_equal(rep.documents, 3);
  assert_int_equal(rep.chunks, 4);
  assert_int_equal(rep.bad_lines, 2);
  assert_non_null(rep.errors);
  assert_string_equal(rep.errors,
                      "docs[1].acl.allow[0]: \"nobody\" is not a principal (expected user:NAME, "
                      "group:NAME or *)\n"
                      "docs[3].chunks[0].embedding: is all zeros (cosine needs a non-zero vector)");
  warden_free(rep.errors);
  assert_true(prog[0] >= 1);
  assert_int_equal(prog[1], 5);
  /* the good documents are there, each with its own rows */
  warden_query_opts q = {.principal = "user:alice", .k = 10, .strategy = WARDEN_STRATEGY_EXACT};
  warden_results *r;
  assert_int_equal(warden_query(db, rows + 3 * DIM, 1, &q, &r), 0);
  assert_int_equal(warden_results_count(r, 0), 4);
  const warden_hit *h = warden_results_hit(r, 0, 0);
  assert_string_equal(h->doc_id, "k2");
  assert_int_equal(h->chunk, 1);
  assert_string_equal(h->text, "b");
  assert_true(fabsf(h->score - 1.0f) < 1e-5f);
  warden_results_free(r);
  /* without keep_going the same call commits nothing */
  uint64_t rev = revision(db);
  d[0].doc_id = "fresh";
  assert_int_equal(warden_upsert(db, d, 5, rows, 6, NULL, &rep), WARDEN_EDATA);
  assert_string_equal(warden_errmsg(db),
                      "docs[1].acl.allow[0]: \"nobody\" is not a principal (expected "
                      "user:NAME, group:NAME or *)");
  assert_int_equal(revision(db), rev);
  char *ex = export_all(db);
  assert_null(strstr(ex, "\"fresh\""));
  free(ex);
  warden_close(db);
  rm_tmp();
}

static void test_replace(void **state) {
  (void)state;
  mk_tmp();
  warden *db = fresh("r", NULL);
  const char *allow[] = {"group:eng"};
  const char *t2[] = {"old one", "old two"}, *t1[] = {"new"};
  warden_meta m1 = {.key = "v", .type = WARDEN_META_INT, .i = 1};
  warden_meta m2 = {.key = "v", .type = WARDEN_META_INT, .i = 2};
  float a[2 * DIM], b[DIM];
  for (int x = 0; x < DIM; x++) {
    a[x] = x == 0;
    a[DIM + x] = x == 1;
    b[x] = x == 2;
  }
  warden_doc d = {.doc_id = "d", .source = "file:///d", .metadata = &m1, .nmetadata = 1,
                  .has_acl = 1, .allow = allow, .nallow = 1, .texts = t2, .nchunks = 2};
  warden_ingest_report rep;
  assert_int_equal(warden_upsert(db, &d, 1, a, 2, NULL, &rep), 0);
  assert_int_equal(rep.replaced, 0);
  d.texts = t1;
  d.nchunks = 1;
  d.metadata = &m2;
  assert_int_equal(warden_upsert(db, &d, 1, b, 1, NULL, &rep), 0);
  assert_int_equal(rep.documents, 1);
  assert_int_equal(rep.replaced, 1);
  assert_int_equal(rep.chunks, 1);
  char *st;
  assert_int_equal(warden_stats(db, &st), 0);
  assert_non_null(strstr(st, "\"documents\":1"));
  assert_non_null(strstr(st, "\"chunks\":1"));
  warden_free(st);
  warden_query_opts q = {.principal = "group:eng", .k = 10, .strategy = WARDEN_STRATEGY_EXACT};
  warden_results *r;
  assert_int_equal(warden_query(db, a, 1, &q, &r), 0); /* the old chunk's vector */
  assert_int_equal(warden_results_count(r, 0), 1);
  assert_string_equal(warden_results_hit(r, 0, 0)->text, "new");
  assert_string_equal(warden_results_hit(r, 0, 0)->metadata_json, "{\"v\":2}");
  warden_results_free(r);
  q.filter = "{\"v\":1}";
  assert_int_equal(warden_query(db, a, 1, &q, &r), 0);
  assert_int_equal(warden_results_count(r, 0), 0);
  warden_results_free(r);
  warden_close(db);
  rm_tmp();
}

/* embeddings == NULL: the embedder embeds the texts, exactly as the JSONL
 * path does for chunks without an embedding; the default ACL applies. */
static void test_embedder(void **state) {
  (void)state;
  mk_tmp();
  const char *yaml = "dimension: 16\nmetric: cosine\nembedder: {type: hash}\n"
                     "default_acl: {allow: ['user:alice']}\n";
  warden *a = fresh("ea", yaml), *b = fresh("eb", yaml);
  const char *t[] = {"red apples", "green pears", "blue plums"};
  warden_doc d[2] = {
      {.doc_id = "x", .source = "file:///x", .texts = t, .nchunks = 2},
      {.doc_id = "y", .source = "file:///y", .texts = t + 2, .nchunks = 1},
  };
  size_t len;
  char *text = jsonl(d, 2, NULL, &len);
  assert_int_equal(warden_ingest_buffer(a, "e.jsonl", text, len, NULL, NULL), 0);
  if (warden_upsert(b, d, 2, NULL, 0, NULL, NULL)) fail_msg("%s", warden_errmsg(b));
  char *ea = export_all(a), *eb = export_all(b);
  assert_string_equal(ea, eb);
  assert_non_null(strstr(eb, "user:alice"));
  float q[DIM];
  assert_int_equal(warden_embed(b, "green pears", q), 0);
  char *x = answer(a, q, "user:alice", NULL), *y = answer(b, q, "user:alice", NULL);
  assert_string_equal(x, y);
  assert_non_null(strstr(y, "x#1 1.000000 green pears"));
  free(x);
  free(y);
  free(ea);
  free(eb);
  free(text);
  warden_close(a);
  warden_close(b);
  rm_tmp();
}


/* A bulk load over several calls is one transaction: a second handle sees
 * nothing until the commit; a doc_id repeated in a later call is refused
 * by its index across the load, and the failed load commits nothing. */
static void test_bulk(void **state) {
  (void)state;
  mk_tmp();
  warden *db = fresh("b", NULL);
  char dir[256], err[512];
  snprintf(dir, sizeof dir, "%s/b", tmp);
  warden *rd;
  if (warden_open(dir, NULL, &rd, err, sizeof err)) fail_msg("open: %s", err);
  corpus *c = malloc(sizeof *c);
  corpus_make(c);
  warden_bulk *b;
  assert_int_equal(warden_bulk_begin(db, NULL, 0, &b), 0);
  size_t row = 0;
  for (int k = 0; k < 3; k++) { /* docs 0..19, 20..39, 40..59 */
    size_t n = 0;
    for (int i = 20 * k; i < 20 * k + 20; i++) n += c->docs[i].nchunks;
    assert_int_equal(warden_bulk_upsert(b, c->docs + 20 * k, 20, c->rows + row * DIM, n), 0);
    row += n;
    /* a reader sees none of it while the load is open */
    assert_int_equal(revision(rd), 0);
    char *ex = export_all(rd);
    assert_string_equal(ex, "");
    free(ex);
  }
  /* wrong row count: refused, the load goes on */
  assert_int_equal(warden_bulk_upsert(b, c->docs, 1, c->rows, 7), WARDEN_EINVAL);
  warden_ingest_report rep;
  assert_int_equal(warden_bulk_commit(b, &rep), 0);
  assert_int_equal(rep.documents, NDOC);
  assert_int_equal(rep.chunks, c->nrows);
  assert_true(revision(rd) == rep.revision && rep.revision > 0);
  /* the same as one warden_upsert of everything */
  warden *one = fresh("one", NULL);
  assert_int_equal(warden_upsert(one, c->docs, NDOC, c->rows, c->nrows, NULL, NULL), 0);
  char *e1 = export_all(one), *e2 = export_all(rd);
  assert_string_equal(e1, e2);
  free(e1);
  warden_close(one);
  /* a repeat across calls: refused, and nothing of the load is committed */
  uint64_t rev = revision(db);
  assert_int_equal(warden_bulk_begin(db, NULL, 1 << 20, &b), 0);
  assert_int_equal(warden_bulk_upsert(b, c->docs + 10, 5, c->rows, c->docs[10].nchunks +
                   c->docs[11].nchunks + c->docs[12].nchunks + c->docs[13].nchunks +
                   c->docs[14].nchunks), 0);
  assert_int_equal(warden_bulk_upsert(b, c->docs + 12, 1, c->rows, c->docs[12].nchunks),
                   WARDEN_EDATA);
  assert_string_equal(warden_errmsg(db), "docs[5].doc_id: duplicate of docs[2] in this input");
  assert_int_equal(warden_bulk_upsert(b, c->docs, 1, c->rows, c->docs[0].nchunks), WARDEN_EDATA);
  assert_int_equal(warden_bulk_commit(b, &rep), WARDEN_EDATA);
  assert_int_equal(revision(db), rev);
  char *e3 = export_all(rd);
  assert_string_equal(e2, e3);
  free(e2);
  free(e3);
  /* an aborted load leaves nothing either */
  assert_int_equal(warden_bulk_begin(db, NULL, 0, &b), 0);
  assert_int_equal(warden_bulk_upsert(b, c->docs, 1, c->rows, c->docs[0].nchunks), 0);
  warden_bulk_abort(b);
  assert_int_equal(revision(db), rev);
  warden_close(rd);
  warden_close(db);
  free(c->rows);
  free(c);
  rm_tmp();
}

/* JSONL inputs larger than one batch: a doc_id repeated lines apart is
 * named by its first line, and a bad last line commits nothing. */
static void test_jsonl_batches(void **state) {
  (void)state;
  mk_tmp();
  warden *db = fresh("j", NULL);
  const int n = 5000;
  sbuf s = {0};
  char line[512];
  for (int i = 0; i < n; i++) {
    int id = i == 4100 ? 7 : i; /* line 4101 repeats line 8's doc_id */
    snprintf(line, sizeof line,
             "{\"doc_id\":\"d%d\",\"source\":\"file:///d\",\"acl\":{\"allow\":[\"*\"]},"
             "\"chunks\":[{\"text\":\"t\",\"embedding\":[1,%d,0,0,0,0,0,0,0,0,0,0,0,0,0,2]}]}\n",
             id, i);
    sbuf_write(&s, line, strlen(line));
  }
  assert_int_equal(warden_ingest_buffer(db, "big.jsonl", s.b, s.n, NULL, NULL), WARDEN_EDATA);
  assert_string_equal(warden_errmsg(db), "big.jsonl:4101: doc_id: duplicate of big.jsonl:8 in this input");
  assert_int_equal(revision(db), 0);
  warden_ingest_opts o = {.keep_going = 1};
  warden_ingest_report rep;
  assert_int_equal(warden_ingest_buffer(db, "big.jsonl", s.b, s.n, &o, &rep), 0);
  assert_int_equal(rep.documents, n - 1);
  assert_int_equal(rep.bad_lines, 1);
  assert_string_equal(rep.errors, "big.jsonl:4101: doc_id: duplicate of big.jsonl:8 in this input");
  warden_free(rep.errors);
  uint64_t rev = revision(db);
  char *before = export_all(db);
  sbuf_write(&s, "{\"doc_id\":\"last\"}\n", 18);
  assert_int_equal(warden_ingest_buffer(db, "big.jsonl", s.b, s.n, NULL, NULL), WARDEN_EDATA);
  assert_string_equal(warden_errmsg(db), "big.jsonl:5001: source: required field is missing");
  assert_int_equal(revision(db), rev);
  char *after = export_all(db);
  assert_string_equal(before, after);
  free(before);
  free(after);
  free(s.b);
  warden_close(db);
  rm_tmp();
}

/* The parse/apply pipeline (engine/ingest.h), forced on with jobs of a
 * few documents (WARDEN_INGEST_PIPE=N): a worker thread validates later
 * jobs while this thread applies earlier ones.  Against the one-thread
 * path (WARDEN_INGEST_PIPE=0) on the same input: the same export, the same
 * counts, and the errors of every job in line order, written out here by
 * hand; a bad line in a later job still commits nothing. */
static void set_pipe(const char *v) {
  if (v) setenv("WARDEN_INGEST_PIPE", v, 1);
  else unsetenv("WARDEN_INGEST_PIPE");
}

typedef struct prog_log {
  uint64_t done[256], total[256];
  size_t n;
} prog_log;
static void prog_note(void *ctx, uint64_t done, uint64_t total) {
  prog_log *p = ctx;
  if (p->n < 256) {
    p->done[p->n] = done;
    p->total[p->n++] = total;
  }
}

static void test_pipeline(void **state) {
  (void)state;
  const char *was = getenv("WARDEN_INGEST_PIPE");
  char *saved = was ? strdup(was) : NULL;
  mk_tmp();
  sbuf s = {0};
  char line[600];
  for (int i = 1; i <= 500; i++) {
    if (i == 50) { /* bad source, caught by the worker */
      snprintf(line, sizeof line,
               "{\"doc_id\":\"d%d\",\"source\":\"nope\",\"acl\":{\"allow\":[\"*\"]},"
               "\"chunks\":[{\"text\":\"t\",\"embedding\":[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2]}]}\n", i);
    } else if (i == 300) { /* 15 values */
      snprintf(line, sizeof line,
               "{\"doc_id\":\"d%d\",\"source\":\"file:///d\",\"acl\":{\"allow\":[\"*\"]},"
               "\"chunks\":[{\"text\":\"t\",\"embedding\":[1,0,0,0,0,0,0,0,0,0,0,0,0,0,2]}]}\n", i);
    } else {
      int id = i == 410 ? 20 : i == 12 ? 11 : i; /* 410 repeats 20 (jobs apart), 12 repeats 11 */
      snprintf(line, sizeof line,
               "{\"doc_id\":\"d%d\",\"source\":\"file:///d/%d\",\"metadata\":{\"n\":%d},"
               "\"acl\":{\"allow\":[\"user:u%d\"]},"
               "\"chunks\":[{\"text\":\"alpha %d\",\"embedding\":[1,%d,0,0,0,0,0,0,0,0,0,0,0,0,0,2]},"
               "{\"text\":\"beta\",\"embedding\":[0,1,%d,0,0,0,0,0,0,0,0,0,0,0,0,2]}]}\n",
               id, i, i, i % 7, i, i, i % 13);
    }
    sbuf_write(&s, line, strlen(line));
    if (i % 97 == 0) sbuf_write(&s, "\n", 1); /* blank lines are skipped (and counted: 300 is line 303) */
  }
  const char *want =
      "big:12: doc_id: duplicate of big:11 in this input\n"
      "big:50: source: expected a URI such as s3://bucket/key, file:///path or https://...\n"
      "big:303: chunks[0].embedding: has 15 values, the collection's dimension is 16\n"
      "big:414: doc_id: duplicate of big:20 in this input";
  warden_ingest_opts o = {.keep_going = 1};
  warden_ingest_report ra, rb;
  set_pipe("0");
  warden *one = fresh("one", NULL);
  assert_int_equal(warden_ingest_buffer(one, "big", s.b, s.n, &o, &ra), 0);
  const char *jobs[] = {"1", "7", "64"};
  for (size_t k = 0; k < sizeof jobs / sizeof *jobs; k++) {
    set_pipe(jobs[k]);
    char name[16];
    snprintf(name, sizeof name, "p%zu", k);
    warden *db = fresh(name, NULL);
    assert_int_equal(warden_ingest_buffer(db, "big", s.b, s.n, &o, &rb), 0);
    assert_int_equal(rb.documents, 496);
    assert_int_equal(rb.documents, ra.documents);
    assert_int_equal(rb.chunks, 2 * 496);
    assert_int_equal(rb.bad_lines, 4);
    assert_string_equal(rb.errors, want);
    assert_string_equal(ra.errors, want);
    char *e1 = export_all(one), *e2 = export_all(db);
    assert_string_equal(e1, e2);
    free(e1);
    free(e2);
    warden_free(rb.errors);
    /* without keep_going the first bad line is the error, nothing lands */
    name[0] = 'n';
    warden *none = fresh(name, NULL);
    assert_int_equal(warden_ingest_buffer(none, "big", s.b, s.n, NULL, NULL), WARDEN_EDATA);
    assert_string_equal(warden_errmsg(none), "big:12: doc_id: duplicate of big:11 in this input");
    assert_int_equal(revision(none), 0);
    warden_close(none);
    warden_close(db);
  }
  warden_free(ra.errors);
  /* the typed path: a call of many documents is cut into jobs */
  corpus *c = malloc(sizeof *c);
  corpus_make(c);
  set_pipe("0");
  warden *t1 = fresh("t1", NULL);
  assert_int_equal(warden_upsert(t1, c->docs, NDOC, c->rows, c->nrows, NULL, NULL), 0);
  set_pipe("4");
  warden *t2 = fresh("t2", NULL);
  assert_int_equal(warden_upsert(t2, c->docs, NDOC, c->rows, c->nrows, NULL, NULL), 0);
  char *e1 = export_all(t1), *e2 = export_all(t2);
  assert_string_equal(e1, e2);
  free(e1);
  free(e2);
  /* a bad document in the ninth job: refused, t2 exactly as it was */
  uint64_t rev = revision(t2);
  char *before = export_all(t2);
  const char *src = c->docs[33].source;
  c->docs[33].source = "no-scheme";
  assert_int_equal(warden_upsert(t2, c->docs, NDOC, c->rows, c->nrows, NULL, NULL), WARDEN_EDATA);
  assert_string_equal(warden_errmsg(t2),
                      "docs[33].source: expected a URI such as s3://bucket/key, file:///path or https://...");
  assert_int_equal(revision(t2), rev);
  char *after = export_all(t2);
  assert_string_equal(before, after);
  free(before);
  free(after);
  /* keep_going: the other 59 land, the error names docs[33] */
  prog_log pl = {0};
  warden_upsert_opts uo = {.keep_going = 1, .progress = prog_note, .progress_ctx = &pl};
  warden_ingest_report rt;
  assert_int_equal(warden_upsert(t2, c->docs, NDOC, c->rows, c->nrows, &uo, &rt), 0);
  /* progress counts what reached the applier: it only grows, never past
   * the total, and ends at it (15 jobs of 4: more than two reports) */
  assert_true(pl.n > 2);
  for (size_t i = 0; i < pl.n; i++) {
    assert_int_equal(pl.total[i], NDOC);
    assert_true(pl.done[i] <= NDOC);
    if (i) assert_true(pl.done[i] >= pl.done[i - 1]);
  }
  assert_int_equal(pl.done[pl.n - 1], NDOC);
  assert_true(pl.done[0] < NDOC);
  assert_int_equal(rt.documents, NDOC - 1);
  assert_int_equal(rt.bad_lines, 1);
  assert_string_equal(rt.errors,
                      "docs[33].source: expected a URI such as s3://bucket/key, file:///path or https://...");
  warden_free(rt.errors);
  c->docs[33].source = src;
  warden_close(t1);
  warden_close(t2);
  warden_close(one);
  free(c->rows);
  free(c);
  free(s.b);
  set_pipe(saved);
  free(saved);
  rm_tmp();
}

/* The JSONL path parses embedding arrays itself (engine/fastemb.c): its
 * floats must be exactly (float)strtod of the text, as jansson's were.
 * Tricky numbers ingested as JSONL and the same values computed here and
 * upserted typed give byte-identical exports; numbers JSON forbids are
 * still refused with jansson's words. */
static void test_number_parsing(void **state) {
  (void)state;
  mk_tmp();
  static const char *const nums[] = {
      "1e-7", "-0.0", "123456789012345678", "1.00000000000000000000001", "3.4028234e17",
      "1E+2", "0.1e1", "-12.5e-3", "0.000000000000000000000000000000000000000001",
      "9007199254740993", "0.30000000000000004", "7", "-1", "2.5E-0", "1e17",
      "1e-23", "123.456e-30",
      /* eight digits at a time (fastemb.c eight_digits): at and across
       * the 19 significant digits kept, after leading zeros */
      "-0.0123456789", "0.12345678901234567890123", "12345678.87654321",
      "1234567890123456.7", "0.000000001234567812345678", "-98765432.1e-3",
      "99999999.99999999", "0.10000000", "10000000.00000001"};
  /* (no value near FLT_MAX: a stored vector's norm must stay below 3.16e18,
   * engine/vecnorm.c, or its scores would overflow float32) */
  const size_t nn = sizeof nums / sizeof *nums;
  warden *a = fresh("na", NULL), *b = fresh("nb", NULL);
  sbuf s = {0};
  float rows[8 * DIM];
  const char *t1[] = {"t"};
  const char *allow[] = {"*"};
  warden_doc d[8];
  char ids[8][8];
  for (int i = 0; i < 8; i++) {
    char line[4096];
    int o = snprintf(line, sizeof line, "{\"doc_id\":\"n%d\",\"source\":\"file:///n\",\"acl\":{\"allow\":[\"*\"]},"
                     "\"chunks\":[{\"text\":\"t\",\"embedding\": [ ", i);
    for (int x = 0; x < DIM; x++) {
      const char *t = nums[(size_t)(i * DIM + x) % nn];
      o += snprintf(line + o, sizeof line - (size_t)o, "%s%s", x ? " , " : "", t);
      rows[i * DIM + x] = (float)strtod(t, NULL);
    }
    snprintf(line + o, sizeof line - (size_t)o, " ]}]}\n");
    sbuf_write(&s, line, strlen(line));
    snprintf(ids[i], 8, "n%d", i);
    d[i] = (warden_doc){.doc_id = ids[i], .source = "file:///n", .has_acl = 1, .allow = allow,
                        .nallow = 1, .texts = t1, .nchunks = 1};
  }
  if (warden_ingest_buffer(a, "n.jsonl", s.b, s.n, NULL, NULL)) fail_msg("%s", warden_errmsg(a));
  if (warden_upsert(b, d, 8, rows, 8, NULL, NULL)) fail_msg("%s", warden_errmsg(b));
  char *ea = export_all(a), *eb = export_all(b);
  assert_string_equal(ea, eb);
  free(ea);
  free(eb);
  free(s.b);
  /* what JSON forbids: jansson's error, as before */
  static const char *const badnum[] = {"01", "1.", "+1", ".5", "1e", "-", "1e400", "NaN",
                                       "12345678901234567890123"};
  for (size_t i = 0; i < sizeof badnum / sizeof *badnum; i++) {
    char line[512];
    snprintf(line, sizeof line,
             "{\"doc_id\":\"x\",\"source\":\"file:///x\",\"acl\":{\"allow\":[\"*\"]},"
             "\"chunks\":[{\"text\":\"t\",\"embedding\":[1,%s,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}]}\n",
             badnum[i]);
    int rc = warden_ingest_buffer(a, "bad.jsonl", line, strlen(line), NULL, NULL);
    if (rc != WARDEN_EDATA) fail_msg("%s: rc %d", badnum[i], rc);
    if (strncmp(warden_errmsg(a), "bad.jsonl:1: json: ", 19))
      fail_msg("%s: %s", badnum[i], warden_errmsg(a));
  }
  /* a string in the array: the validator's words */
  const char *sline = "{\"doc_id\":\"x\",\"source\":\"file:///x\",\"acl\":{\"allow\":[\"*\"]},"
                      "\"chunks\":[{\"text\":\"t\",\"embedding\":[1,\"2\",1,1,1,1,1,1,1,1,1,1,1,1,1,1]}]}\n";
  assert_int_equal(warden_ingest_buffer(a, "s.jsonl", sline, strlen(sline), NULL, NULL), WARDEN_EDATA);
  assert_string_equal(warden_errmsg(a), "s.jsonl:1: chunks[0].embedding: value 1 is not a number");
  /* an "embedding" key elsewhere (metadata) is left alone */
  const char *mline = "{\"doc_id\":\"m\",\"source\":\"file:///m\",\"acl\":{\"allow\":[\"*\"]},"
                      "\"metadata\":{\"embedding\":[\"a\",\"b\"]},"
                      "\"chunks\":[{\"text\":\"t\",\"embedding\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]},"
                      "{\"text\":\"u\",\"embedding\":[]}]}\n";
  assert_int_equal(warden_ingest_buffer(a, "m.jsonl", mline, strlen(mline), NULL, NULL), WARDEN_EDATA);
  assert_string_equal(warden_errmsg(a),
                      "m.jsonl:1: chunks[1].embedding: has 0 values, the collection's dimension is 16");
  warden_close(a);
  warden_close(b);
  rm_tmp();
}

/* wd_fastemb_plain against (float)strtod, bit for bit, on texts built to
 * reach every path of fastemb.c's number(): float32 values printed with
 * 9, 12, 17, 19 and 20 significant digits (17 and 19 are past 2^53, the
 * float_near path; 20 is past the 19 digits kept), fixed-point texts of
 * 0-9 integer and 0-9 fraction digits and plain integers, and the adversarial
 * ones for float_near -- the exact midpoint between two floats and its
 * double neighbours, printed with 17 to 25 digits, where a near-miss
 * would round the wrong way. */
static uint64_t nrs = 0x2545F4914F6CDD1Dull;
static uint64_t nrnd(void) {
  nrs ^= nrs << 13;
  nrs ^= nrs >> 7;
  nrs ^= nrs << 17;
  return nrs;
}

static void test_number_exact(void **state) {
  (void)state;
  enum { PER = 500 };
  static char buf[PER * 40 + 8];
  static char texts[PER][40];
  wd_fastemb fe;
  memset(&fe, 0, sizeof fe);
  size_t checked = 0, rounds = getenv("WARDEN_TEST_QUICK") ? 100 : 400;
  static const char *const fmts[] = {"%.9g", "%.12g", "%.17g", "%.19g", "%.20g"};
  for (size_t r = 0; r < rounds; r++) {
    size_t o = 0;
    buf[o++] = '[';
    for (int i = 0; i < PER; i++) {
      /* a float32 with a random sign and an exponent from 2^-100 to 2^58
       * (below 1e18: "%.20g" prints larger ones as integers, which
       * jansson refuses as too big -- test_number_parsing covers that) */
      uint32_t bits = (uint32_t)(nrnd() & 0x807fffffu) | ((uint32_t)(27 + nrnd() % 159) << 23);
      float f;
      memcpy(&f, &bits, 4);
      int kind = (int)(nrnd() % 11);
      if (kind < 5) {
        snprintf(texts[i], sizeof texts[i], fmts[kind], (double)f);
      } else if (kind >= 8) { /* fastemb's short form: up to 9 + 9 digits */
        double v = ldexp((double)(nrnd() % 2000000001) - 1e9, -(int)(nrnd() % 40));
        int fd = (int)(nrnd() % 10);
        if (kind == 10) snprintf(texts[i], sizeof texts[i], "%lld", (long long)(v * 10));
        else snprintf(texts[i], sizeof texts[i], "%.*f", fd, v);
      } else { /* a midpoint, or one double away from it */
        double t = ((double)f + (double)nextafterf(f, f < 0 ? -INFINITY : INFINITY)) * 0.5;
        if (kind == 6) t = nextafter(t, 0.0);
        if (kind == 7) t = nextafter(t, INFINITY);
        snprintf(texts[i], sizeof texts[i], (nrnd() & 1) ? "%.17g" : "%.25g", t);
      }
      size_t tl = strlen(texts[i]);
      if (i) buf[o++] = ',';
      memcpy(buf + o, texts[i], tl);
      o += tl;
    }
    buf[o++] = ']';
    fe.nv = 0;
    size_t cnt = 0;
    assert_int_equal(wd_fastemb_plain(&fe, buf, o, &cnt), 1);
    assert_int_equal(cnt, PER);
    for (int i = 0; i < PER; i++) {
      float want = (float)strtod(texts[i], NULL);
      if (memcmp(&want, &fe.v[i], 4) != 0)
        fail_msg("%s: parsed %.9g, strtod says %.9g", texts[i], (double)fe.v[i], (double)want);
      checked++;
    }
  }
  wd_fastemb_free(&fe);
  assert_int_equal(checked, rounds * PER);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_number_exact),
      cmocka_unit_test(test_typed_equals_jsonl),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_keep_going),
      cmocka_unit_test(test_replace),
      cmocka_unit_test(test_embedder),
      cmocka_unit_test(test_bulk),
      cmocka_unit_test(test_jsonl_batches),
      cmocka_unit_test(test_pipeline),
      cmocka_unit_test(test_number_parsing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
