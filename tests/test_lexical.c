/*
 * test_lexical.c -- the lexical index, BM25 and hybrid queries (issue 19).
 *
 *   - the tokenizer's rules (identifiers, case folding, stems);
 *   - hidden documents change nothing: adding, removing, re-ACLing
 *     documents a principal cannot read leaves that principal's lexical
 *     and hybrid scores and order bit-identical (and a readable document
 *     does change them, so the comparison can fail);
 *   - a randomized oracle: lexical and hybrid answers against a brute-force
 *     BM25 over the readable set (same tokenizer, formula of lexical.h) and
 *     a brute-force exact vector ranking fused by RRF, id for id, score
 *     bit for bit, rank for rank; every hit readable (zero leaks); the
 *     collection mutated between rounds (upserts, deletes, ACL changes)
 *     and `warden check` clean after each round;
 *   - a callback resolver: hits of lexical and hybrid queries all pass it,
 *     and exactly k come back while enough chunks are readable;
 *   - weighted fusion against the two sides queried on their own;
 *   - the N-th allocation failing, for every N;
 *   - warden check notices postings that disagree with the chunk texts.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lexical.h"
#include "warden.h"
#include "wd_internal.h"

static char *buf;
static long nqueries, nleaks;

static uint64_t rs = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}
static int rr(int n) { return (int)(rnd() % (uint64_t)n); }

static int quick(void) { return getenv("WARDEN_TEST_QUICK") != NULL; }

/* ------------------------------------------------------- tokenizer */

typedef struct toks {
  char t[64][WD_LEX_MAXTERM + 1];
  int n;
} toks;

static int collect(const char *t, size_t l, void *ctx) {
  toks *k = ctx;
  if (k->n < 64) {
    memcpy(k->t[k->n], t, l);
    k->t[k->n][l] = 0;
    k->n++;
  }
  return 0;
}

static void tokenize(int lang, const char *s, toks *k) {
  wd_lexer lx;
  assert_int_equal(wd_lexer_init(&lx, lang), 0);
  k->n = 0;
  assert_int_equal(wd_lex_tokens(&lx, s, strlen(s), collect, k), 0);
  wd_lexer_free(&lx);
}

static void test_tokenizer(void **st) {
  (void)st;
  toks k;
  tokenize(0, "Error ERR-4521: disks FULL", &k);
  assert_int_equal(k.n, 6);
  assert_string_equal(k.t[0], "error");
  assert_string_equal(k.t[1], "err");
  assert_string_equal(k.t[2], "4521");
  assert_string_equal(k.t[3], "err-4521");
  assert_string_equal(k.t[4], "disk");
  assert_string_equal(k.t[5], "full");
  tokenize(0, "ΣΟΦΙΑ Привет RUNNING runs café", &k);
  assert_int_equal(k.n, 5);
  assert_string_equal(k.t[0], "σοφια");
  assert_string_equal(k.t[1], "привет");
  assert_string_equal(k.t[2], "run");
  assert_string_equal(k.t[3], "run");
  assert_string_equal(k.t[4], "café");
  /* no stemming with language none; identifiers with dots and slashes */
  tokenize(1, "Running v1.2.3 a/b -x- __", &k);
  assert_int_equal(k.n, 9);
  assert_string_equal(k.t[0], "running");
  assert_string_equal(k.t[1], "v1");
  assert_string_equal(k.t[4], "v1.2.3");
  assert_string_equal(k.t[7], "a/b");
  assert_string_equal(k.t[8], "x");
  /* invalid UTF-8 is a separator, never a crash */
  tokenize(0, "ab\xff\xfe" "cd\xc3", &k);
  assert_int_equal(k.n, 2);
  assert_int_equal(wd_lex_language_parse("french"), 9);
  assert_int_equal(wd_lex_language_parse("klingon"), -1);
}

/* --------------------------------------------------- the collection */

static char dir[256];

static warden *make(const char *yaml) {
  snprintf(dir, sizeof dir, "/tmp/warden-lexical-XXXXXX");
  assert_non_null(mkdtemp(dir));
  char cdir[300], cfg[300], err[512];
  snprintf(cfg, sizeof cfg, "%s/warden.yaml", dir);
  FILE *f = fopen(cfg, "w");
  assert_non_null(f);
  fputs(yaml, f);
  fclose(f);
  snprintf(cdir, sizeof cdir, "%s/c", dir);
  warden_create_opts co = {0, NULL, cfg};
  assert_int_equal(warden_create(cdir, &co, err, sizeof err), 0);
  warden *db;
  assert_int_equal(warden_open(cdir, NULL, &db, err, sizeof err), 0);
  return db;
}

static void destroy(warden *db) {
  warden_close(db);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static void ingest(warden *db, const char *lines) {
  int rc = warden_ingest_buffer(db, "t", lines, strlen(lines), NULL, NULL);
  if (rc) fail_msg("ingest: %s", warden_errmsg(db));
}

static void check_ok(warden *db) {
  char *js = NULL;
  int rc = warden_check(db, &js);
  if (rc) fail_msg("check: %s %s", warden_errmsg(db), js ? js : "");
  warden_free(js);
}

/* ---------------------------------------- hidden documents change nothing */

typedef struct snap {
  int n;
  char id[16][32];
  uint32_t chunk[16], srank[16], lrank[16];
  uint32_t bits[16]; /* the score's bits */
} snap;

static int allow_h; /* the control step: h1 becomes readable */

static void take(warden *db, int mode, const char *text, snap *s) {
  warden_query_opts o;
  memset(&o, 0, sizeof o);
  o.principal = "user:alice";
  o.k = 10;
  o.mode = mode;
  o.text = text;
  o.strategy = WARDEN_STRATEGY_EXACT;
  float q[4] = {1, 2, 0, 1};
  warden_results *r;
  int rc = warden_query(db, mode == WARDEN_MODE_LEXICAL ? NULL : q, 1, &o, &r);
  if (rc) fail_msg("query: %s", warden_errmsg(db));
  memset(s, 0, sizeof *s);
  s->n = (int)warden_results_count(r, 0);
  for (int i = 0; i < s->n; i++) {
    const warden_hit *h = warden_results_hit(r, 0, (size_t)i);
    snprintf(s->id[i], sizeof s->id[i], "%s", h->doc_id);
    s->chunk[i] = h->chunk;
    s->srank[i] = h->semantic_rank;
    s->lrank[i] = h->lexical_rank;
    memcpy(&s->bits[i], &h->score, 4);
    if (!allow_h) assert_true(strncmp(h->doc_id, "h", 1) != 0); /* never a hidden chunk */
  }
  warden_results_free(r);
}

static int same(const snap *a, const snap *b) { return memcmp(a, b, sizeof *a) == 0; }

static void test_hidden_change_nothing(void **st) {
  (void)st;
  warden *db = make("dimension: 4\nmetric: l2\n");
  static const char *vis =
      "{\"doc_id\":\"v1\",\"source\":\"s3://b/v1\",\"namespace\":\"/\",\"acl\":{\"allow\":[\"user:alice\"]},"
      "\"chunks\":[{\"text\":\"the disk of build host zyxel is full ERR-4521\",\"embedding\":[1,2,0,0]},"
      "{\"text\":\"disk quota raised\",\"embedding\":[0,2,0,1]}]}\n"
      "{\"doc_id\":\"v2\",\"source\":\"s3://b/v2\",\"namespace\":\"/\",\"acl\":{\"allow\":[\"*\"]},"
      "\"chunks\":[{\"text\":\"how to free disk space, disks and more disks\",\"embedding\":[3,1,0,1]}]}\n"
      "{\"doc_id\":\"v3\",\"source\":\"s3://b/v3\",\"namespace\":\"/\",\"acl\":{\"allow\":[\"*\"]},"
      "\"chunks\":[{\"text\":\"unrelated text about lunch\",\"embedding\":[1,1,1,1]}]}\n";
  static const char *hid =
      "{\"doc_id\":\"h1\",\"source\":\"s3://b/h1\",\"namespace\":\"/\",\"acl\":{\"allow\":[\"user:mallory\"]},"
      "\"chunks\":[{\"text\":\"zyxel zyxel ERR-4521 disk secret\",\"embedding\":[1,2,0,1]}]}\n"
      "{\"doc_id\":\"h2\",\"source\":\"s3://b/h2\",\"namespace\":\"/\",\"acl\":{\"allow\":[\"*\"],\"deny\":[\"user:alice\"]},"
      "\"chunks\":[{\"text\":\"disk disk disk disk zyxel\",\"embedding\":[1,2,0,1]},{\"text\":\"a very long chunk "
      "with many many words to move the average length a lot a lot a lot a lot a lot\",\"embedding\":[0,0,0,0]}]}\n";
  ingest(db, vis);
  const char *qs[3] = {"zyxel disk", "ERR-4521", "disks lunch zyxel"};
  snap base[2][3], now;
  for (int m = 0; m < 2; m++)
    for (int q = 0; q < 3; q++) take(db, m ? WARDEN_MODE_HYBRID : WARDEN_MODE_LEXICAL, qs[q], &base[m][q]);
  assert_true(base[0][0].n == 3);
#define SAME_ALL()                                                                         \
  for (int m = 0; m < 2; m++)                                                              \
    for (int q = 0; q < 3; q++) {                                                          \
      take(db, m ? WARDEN_MODE_HYBRID : WARDEN_MODE_LEXICAL, qs[q], &now);                 \
      assert_true(same(&now, &base[m][q]));                                                \
    }
  /* add hidden documents (one denied explicitly) */
  ingest(db, hid);
  SAME_ALL();
  /* many hidden copies: df of zyxel in the collection grows tenfold */
  for (int i = 0; i < 10; i++) {
    char line[512];
    snprintf(line, sizeof line,
             "{\"doc_id\":\"hx%d\",\"source\":\"s3://b/hx\",\"namespace\":\"/\",\"acl\":{\"allow\":[\"user:bob\"]},"
             "\"chunks\":[{\"text\":\"zyxel %d disk\",\"embedding\":[1,2,0,%d]}]}\n",
             i, i, i % 2);
    ingest(db, line);
  }
  SAME_ALL();
  /* re-ACL a hidden document to another hidden principal, delete some */
  const char *bob[] = {"user:bob"};
  assert_int_equal(warden_acl_set(db, "h1", bob, 1, NULL, 0, NULL), 0);
  const char *del[] = {"h2", "hx3"};
  assert_int_equal(warden_delete(db, del, 2, NULL), 0);
  SAME_ALL();
  check_ok(db);
  /* control: a document alice CAN read changes her statistics */
  const char *alice[] = {"user:alice"};
  assert_int_equal(warden_acl_set(db, "h1", alice, 1, NULL, 0, NULL), 0);
  allow_h = 1;
  take(db, WARDEN_MODE_LEXICAL, qs[0], &now);
  assert_false(same(&now, &base[0][0]));
  destroy(db);
}

/* ------------------------------------------------------------ oracle */

#define ND 3000 /* capacity; nd in use */
#define NU 6
#define NG 3
#define MAXC 3
#define DIM 4

static const char *vocab[] = {
    "disk",   "disks",  "Disk",      "running", "run",  "RUNS",    "error", "ERR-4521",
    "err-17", "4521",   "ticket",    "TICKET-9", "Σοφία", "ΣΟΦΙΑ",  "привет", "ПРИВЕТ",
    "café",   "update", "updated",   "server",  "servers", "backup", "the",  "a",
    "v1.2.3", "lunch",  "quota",     "zyxel",   "alpha", "beta",    "gamma", "delta"};
#define NV ((int)(sizeof vocab / sizeof vocab[0]))

typedef struct ochunk {
  char text[512];
  int emb[DIM];
  uint32_t slot;
  toks tk;
} ochunk;

typedef struct odoc {
  int alive;
  char id[16];
  int ns; /* 0 /a, 1 /b */
  int allow_star, allow_u[NU], allow_g[NG], deny_u[NU], deny_g[NG];
  int nc;
  ochunk c[MAXC];
} odoc;

static odoc docs[ND];
static int nd;
static long npruned; /* queries whose plan shows block-max pruning */
static uint32_t next_slot;
static int ugroups[NU][NG]; /* groups each user asserts */
static wd_lexer olx;

static void random_doc(odoc *d, int i) {
  memset(d, 0, sizeof *d);
  d->alive = 1;
  snprintf(d->id, sizeof d->id, "d%d", i);
  d->ns = rr(2);
  d->allow_star = rr(5) == 0;
  for (int u = 0; u < NU; u++) {
    d->allow_u[u] = rr(4) == 0;
    d->deny_u[u] = rr(12) == 0;
  }
  for (int g = 0; g < NG; g++) {
    d->allow_g[g] = rr(3) == 0;
    d->deny_g[g] = rr(15) == 0;
  }
  d->nc = 1 + rr(MAXC);
  for (int c = 0; c < d->nc; c++) {
    ochunk *ch = &d->c[c];
    /* in the large run, the first two thirds of the documents have short
     * chunks and the rest long ones: windows differ in their bounds */
    int nw = nd <= 100 ? 1 + rr(10) : i < nd * 2 / 3 ? 1 + rr(3) : 12 + rr(20), o = 0;
    for (int w = 0; w < nw; w++)
      o += snprintf(ch->text + o, sizeof ch->text - (size_t)o, "%s%s", w ? (rr(4) ? " " : ", ") : "",
                    vocab[rr(NV)]);
    for (int j = 0; j < DIM; j++) ch->emb[j] = rr(7) - 3;
    ch->tk.n = 0;
    assert_int_equal(wd_lex_tokens(&olx, ch->text, strlen(ch->text), collect, &ch->tk), 0);
  }
}

static void list_json(char *o, const char *kind, const int *u, const int *g, int star) {
  int first = 1;
  o += sprintf(o, "\"%s\":[", kind);
  if (star) {
    o += sprintf(o, "\"*\"");
    first = 0;
  }
  for (int i = 0; i < NU; i++)
    if (u[i]) {
      o += sprintf(o, "%s\"user:u%d\"", first ? "" : ",", i);
      first = 0;
    }
  for (int i = 0; i < NG; i++)
    if (g[i]) {
      o += sprintf(o, "%s\"group:g%d\"", first ? "" : ",", i);
      first = 0;
    }
  sprintf(o, "]");
}

static size_t doc_json(const odoc *d, char *o) {
  char al[512], de[512];
  list_json(al, "allow", d->allow_u, d->allow_g, d->allow_star);
  list_json(de, "deny", d->deny_u, d->deny_g, 0);
  size_t n = (size_t)sprintf(o, "{\"doc_id\":\"%s\",\"source\":\"s3://b/%s\",\"namespace\":\"/%s\","
                                "\"acl\":{%s,%s},\"chunks\":[",
                             d->id, d->id, d->ns ? "b" : "a", al, de);
  for (int c = 0; c < d->nc; c++) {
    n += (size_t)sprintf(o + n, "%s{\"text\":\"%s\",\"embedding\":[%d,%d,%d,%d]}", c ? "," : "",
                         d->c[c].text, d->c[c].emb[0], d->c[c].emb[1], d->c[c].emb[2],
                         d->c[c].emb[3]);
  }
  n += (size_t)sprintf(o + n, "]}\n");
  return n;
}

static int readable(const odoc *d, int u) {
  if (!d->alive) return 0;
  int ok = d->allow_star || d->allow_u[u];
  for (int g = 0; g < NG; g++)
    if (ugroups[u][g] && d->allow_g[g]) ok = 1;
  if (d->deny_u[u]) ok = 0;
  for (int g = 0; g < NG; g++)
    if (ugroups[u][g] && d->deny_g[g]) ok = 0;
  return ok;
}

typedef struct ohit {
  int d, c;
  uint32_t slot;
  double score; /* BM25, or -distance */
  uint32_t srank, lrank;
  double fused;
} ohit;

static int ohit_cmp(const void *a, const void *b) {
  const ohit *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static int fused_cmp(const void *a, const void *b) {
  const ohit *x = a, *y = b;
  if (x->fused != y->fused) return x->fused > y->fused ? -1 : 1;
  return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static int tf_of(const toks *t, const char *term) {
  int n = 0;
  for (int i = 0; i < t->n; i++) n += strcmp(t->t[i], term) == 0;
  return n;
}

/* brute force: the lexical top-k over the readable chunks (ns: -1 any) */
static int oracle_lex(int u, int ns, char **terms, size_t nt, int k, ohit *out) {
  static ohit all[ND * MAXC];
  int n = 0;
  uint64_t N = 0, sumdl = 0;
  for (int i = 0; i < nd; i++)
    if (readable(&docs[i], u) && (ns < 0 || docs[i].ns == ns))
      for (int c = 0; c < docs[i].nc; c++) {
        N++;
        sumdl += (uint64_t)docs[i].c[c].tk.n;
      }
  if (!N) return 0;
  double avgdl = sumdl ? (double)sumdl / (double)N : 1.0;
  double idf[64];
  for (size_t t = 0; t < nt; t++) {
    uint64_t df = 0;
    for (int i = 0; i < nd; i++)
      if (readable(&docs[i], u) && (ns < 0 || docs[i].ns == ns))
        for (int c = 0; c < docs[i].nc; c++) df += tf_of(&docs[i].c[c].tk, terms[t]) > 0;
    idf[t] = df ? wd_bm25_idf((double)N, (double)df) : 0;
  }
  for (int i = 0; i < nd; i++)
    if (readable(&docs[i], u) && (ns < 0 || docs[i].ns == ns))
      for (int c = 0; c < docs[i].nc; c++) {
        double s = 0;
        int any = 0;
        for (size_t t = 0; t < nt; t++) {
          int tf = tf_of(&docs[i].c[c].tk, terms[t]);
          if (!tf) continue;
          any = 1;
          s += wd_bm25_w(idf[t], (double)tf, (double)docs[i].c[c].tk.n, avgdl);
        }
        if (!any) continue;
        all[n].d = i;
        all[n].c = c;
        all[n].slot = docs[i].c[c].slot;
        all[n].score = s;
        n++;
      }
  qsort(all, (size_t)n, sizeof *all, ohit_cmp);
  if (n > k) n = k;
  memcpy(out, all, (size_t)n * sizeof *out);
  return n;
}

static int oracle_sem(int u, int ns, const float *q, int k, ohit *out) {
  static ohit all[ND * MAXC];
  int n = 0;
  for (int i = 0; i < nd; i++)
    if (readable(&docs[i], u) && (ns < 0 || docs[i].ns == ns))
      for (int c = 0; c < docs[i].nc; c++) {
        double d2 = 0;
        for (int j = 0; j < DIM; j++) {
          double x = docs[i].c[c].emb[j] - q[j];
          d2 += x * x;
        }
        all[n].d = i;
        all[n].c = c;
        all[n].slot = docs[i].c[c].slot;
        all[n].score = -d2;
        n++;
      }
  qsort(all, (size_t)n, sizeof *all, ohit_cmp);
  if (n > k) n = k;
  memcpy(out, all, (size_t)n * sizeof *out);
  return n;
}

static void ingest_docs(warden *db, const int *which, int n) {
  size_t o = 0;
  for (int j = 0; j < n; j++) {
    odoc *d = &docs[which[j]];
    for (int c = 0; c < d->nc; c++) d->c[c].slot = next_slot++;
    o += doc_json(d, buf + o);
  }
  buf[o] = 0;
  if (n) ingest(db, buf);
}

static void run_query(warden *db, int mode) {
  int u = rr(NU), ns = rr(3) - 1, k = 1 + rr(8);
  /* query text: 1-4 vocabulary words, sometimes one nobody has */
  char text[256];
  int o = 0, nw = 1 + rr(4);
  for (int w = 0; w < nw; w++)
    o += snprintf(text + o, sizeof text - (size_t)o, "%s%s", w ? " " : "",
                  rr(10) ? vocab[rr(NV)] : "nosuchword");
  float q[DIM];
  for (int j = 0; j < DIM; j++) q[j] = (float)(rr(7) - 3);
  char uname[16], gn[NG][16];
  const char *groups[NG];
  size_t ng = 0;
  snprintf(uname, sizeof uname, "user:u%d", u);
  for (int g = 0; g < NG; g++)
    if (ugroups[u][g]) {
      snprintf(gn[ng], sizeof gn[ng], "group:g%d", g);
      groups[ng] = gn[ng];
      ng++;
    }
  const char *nsv[1] = {ns == 1 ? "/b" : "/a"};
  warden_query_opts qo;
  memset(&qo, 0, sizeof qo);
  qo.principal = uname;
  qo.groups = ng ? groups : NULL;
  qo.ngroups = ng;
  qo.namespaces = ns >= 0 ? nsv : NULL;
  qo.nnamespaces = ns >= 0 ? 1 : 0;
  qo.k = (unsigned)k;
  qo.mode = mode;
  qo.text = text;
  qo.strategy = WARDEN_STRATEGY_EXACT;
  qo.explain = 1;
  warden_results *r;
  int rc = warden_query(db, mode == WARDEN_MODE_LEXICAL ? NULL : q, 1, &qo, &r);
  if (rc) fail_msg("query: %s", warden_errmsg(db));
  const char *plan = warden_results_plan(r, 0);
  assert_non_null(plan);
  if (!strstr(plan, "\"windows_pruned\":0,")) npruned++;
  char **terms;
  size_t *tl, nt;
  assert_int_equal(wd_lex_query_terms(db, text, &terms, &tl, &nt), 0);
  static ohit lex[ND * MAXC], sem[ND * MAXC], fus[2 * ND * MAXC];
  int nl = oracle_lex(u, ns, terms, nt, k, lex), nexp = nl;
  for (size_t i = 0; i < nt; i++) wd_free(terms[i]);
  wd_free(terms);
  wd_free(tl);
  ohit *exp = lex;
  if (mode == WARDEN_MODE_HYBRID) {
    int ns2 = oracle_sem(u, ns, q, k, sem), m = 0;
    for (int i = 0; i < ns2; i++) {
      fus[m] = sem[i];
      fus[m].srank = (uint32_t)i + 1;
      fus[m].lrank = 0;
      m++;
    }
    for (int i = 0; i < nl; i++) {
      int f = -1;
      for (int j = 0; j < m; j++)
        if (fus[j].slot == lex[i].slot) f = j;
      if (f < 0) {
        f = m++;
        fus[f] = lex[i];
        fus[f].srank = 0;
      }
      fus[f].lrank = (uint32_t)i + 1;
    }
    for (int j = 0; j < m; j++) {
      double s = 0;
      if (fus[j].srank) s += 1.0 / (60.0 + fus[j].srank);
      if (fus[j].lrank) s += 1.0 / (60.0 + fus[j].lrank);
      fus[j].fused = s;
    }
    qsort(fus, (size_t)m, sizeof *fus, fused_cmp);
    nexp = m < k ? m : k;
    exp = fus;
  }
  nqueries++;
  size_t got = warden_results_count(r, 0);
  for (size_t i = 0; i < got; i++) {
    const warden_hit *h = warden_results_hit(r, 0, i);
    int di = atoi(h->doc_id + 1);
    if (di < 0 || di >= nd || !readable(&docs[di], u) || (ns >= 0 && docs[di].ns != ns)) {
      nleaks++;
      fail_msg("LEAK: %s#%u to %s", h->doc_id, h->chunk, uname);
    }
  }
  if ((int)got != nexp) fail_msg("mode %d '%s' u%d ns %d k %d: %zu hits, oracle %d", mode, text, u, ns, k, got, nexp);
  for (int i = 0; i < nexp; i++) {
    const warden_hit *h = warden_results_hit(r, 0, (size_t)i);
    int di = atoi(h->doc_id + 1);
    float want = mode == WARDEN_MODE_HYBRID ? (float)exp[i].fused : (float)exp[i].score;
    if (di != exp[i].d || (int)h->chunk != exp[i].c || h->score != want)
      fail_msg("mode %d '%s' u%d k %d hit %d: %s#%u %.9g, oracle d%d#%d %.9g", mode, text, u, k, i,
               h->doc_id, h->chunk, h->score, exp[i].d, exp[i].c, want);
    if (mode == WARDEN_MODE_HYBRID) {
      assert_int_equal(h->semantic_rank, exp[i].srank);
      assert_int_equal(h->lexical_rank, exp[i].lrank);
    } else {
      assert_int_equal(h->lexical_rank, (uint32_t)i + 1);
      assert_int_equal(h->semantic_rank, 0);
    }
  }
  warden_results_free(r);
}

static void run_oracle(int ndocs, int rounds, int qper) {
  nd = ndocs;
  assert_int_equal(wd_lexer_init(&olx, 0), 0);
  memset(docs, 0, sizeof docs);
  next_slot = 0;
  for (int u = 0; u < NU; u++)
    for (int g = 0; g < NG; g++) ugroups[u][g] = rr(2);
  warden *db = make("dimension: 4\nmetric: l2\n");
  static int all[ND];
  for (int i = 0; i < nd; i++) {
    random_doc(&docs[i], i);
    all[i] = i;
  }
  ingest_docs(db, all, nd);
  for (int round = 0; round < rounds; round++) {
    for (int q = 0; q < qper; q++) run_query(db, rr(2) ? WARDEN_MODE_LEXICAL : WARDEN_MODE_HYBRID);
    /* mutate: upserts (new slots), deletes, ACL changes */
    int up[8], nup = 0;
    for (int j = 0; j < 1 + rr(6); j++) {
      int i = rr(nd), dup = 0;
      for (int x = 0; x < nup; x++) dup |= up[x] == i;
      if (dup) continue;
      random_doc(&docs[i], i);
      up[nup++] = i;
    }
    ingest_docs(db, up, nup);
    for (int j = 0; j < rr(3); j++) {
      int i = rr(nd);
      if (!docs[i].alive) continue;
      const char *id[1] = {docs[i].id};
      assert_int_equal(warden_delete(db, id, 1, NULL), 0);
      docs[i].alive = 0;
    }
    for (int j = 0; j < rr(4); j++) {
      int i = rr(nd);
      if (!docs[i].alive) continue;
      odoc *d = &docs[i];
      char names[NU + NG][16];
      const char *al[NU + NG];
      size_t na = 0;
      d->allow_star = 0;
      for (int u = 0; u < NU; u++) {
        d->allow_u[u] = rr(3) == 0;
        d->deny_u[u] = 0;
        if (d->allow_u[u]) {
          snprintf(names[na], 16, "user:u%d", u);
          al[na] = names[na];
          na++;
        }
      }
      for (int g = 0; g < NG; g++) {
        d->allow_g[g] = rr(3) == 0;
        d->deny_g[g] = 0;
        if (d->allow_g[g]) {
          snprintf(names[na], 16, "group:g%d", g);
          al[na] = names[na];
          na++;
        }
      }
      const char *none[1] = {NULL};
      assert_int_equal(warden_acl_set(db, d->id, al, na, none, 0, NULL), 0);
    }
    check_ok(db);
  }
  destroy(db);
  wd_lexer_free(&olx);
}

/* few documents, many rounds of mutation: every ACL and upsert path */
static void test_oracle_lexical(void **st) {
  (void)st;
  run_oracle(48, quick() ? 8 : 40, quick() ? 60 : 200);
}

/* 3000 documents (~6000 chunks, two posting windows and more as upserts
 * move slots): windows skipped because nothing in them is allowed, and
 * windows pruned by their block-max bound */
static void test_oracle_lexical_windows(void **st) {
  (void)st;
  rs = 0x9e3779b97f4a7c15ull;
  npruned = 0;
  run_oracle(3000, quick() ? 2 : 4, quick() ? 40 : 150);
  printf("lexical oracle (3000 docs): %ld queries pruned windows\n", npruned);
  assert_true(npruned > 0);
}

/* A stored term's slot bitmap is read only when a transaction needs it
 * (lexical.c term_load_bm): adds to a stored term wait as its blocks'
 * tails, and a removal from it in the same transaction, or the commit,
 * must see them.  One ingest: y0 adds to stored "alpha", then x1's
 * replacement removes x1 from it, then y1 adds again; the slot bitmap,
 * the postings and the hits must all say x0, x2, y0, y1. */
#define LINE(id, text)                                                              \
  "{\"doc_id\":\"" id "\",\"source\":\"s3://b/" id "\",\"acl\":{\"allow\":[\"user:alice\"]}," \
  "\"chunks\":[{\"text\":\"" text "\",\"embedding\":[1,0,0,0]}]}\n"
static void test_stored_term_adds_then_removes(void **st) {
  (void)st;
  warden *db = make("dimension: 4\nmetric: l2\n");
  ingest(db, LINE("x0", "alpha beta") LINE("x1", "alpha") LINE("x2", "alpha alpha"));
  ingest(db, LINE("y0", "alpha delta") LINE("x1", "gamma") LINE("y1", "alpha"));
  check_ok(db);
  const char *want[] = {"x0", "x2", "y0", "y1"};
  for (int pass = 0; pass < 2; pass++) {
    warden_query_opts o;
    memset(&o, 0, sizeof o);
    o.principal = "user:alice";
    o.k = 10;
    o.mode = WARDEN_MODE_LEXICAL;
    o.text = "alpha";
    o.strategy = WARDEN_STRATEGY_EXACT;
    warden_results *r;
    if (warden_query(db, NULL, 1, &o, &r)) fail_msg("query: %s", warden_errmsg(db));
    size_t n = warden_results_count(r, 0);
    assert_int_equal(n, 4);
    int seen[4] = {0};
    for (size_t i = 0; i < n; i++) {
      const char *id = warden_results_hit(r, 0, i)->doc_id;
      for (int j = 0; j < 4; j++) seen[j] += strcmp(id, want[j]) == 0;
    }
    for (int j = 0; j < 4; j++) assert_int_equal(seen[j], 1);
    warden_results_free(r);
    /* again after a third transaction that only adds (the commit path) */
    if (!pass) ingest(db, LINE("z0", "delta"));
  }
  const char *ids[1] = {"y0"};
  assert_int_equal(warden_delete(db, ids, 1, NULL), 0);
  check_ok(db);
  destroy(db);
}
#undef LINE

/* --------------------------------------------------------- resolver */

static int deny_odd(void *ctx, const char *principal, const char *const *groups, size_t ngroups,
                    const warden_resource *res, size_t n, unsigned char *allowed) {
  (void)ctx, (void)principal, (void)groups, (void)ngroups;
  for (size_t i = 0; i < n; i++) allowed[i] = atoi(res[i].doc_id + 1) % 2 == 0;
  return 0;
}

static void test_resolver_rounds(void **st) {
  (void)st;
  warden *db = make("dimension: 4\nmetric: l2\ndefault_acl:\n  allow: [\"*\"]\n");
  size_t o = 0;
  for (int i = 0; i < 200; i++)
    o += (size_t)sprintf(buf + o,
                         "{\"doc_id\":\"d%d\",\"source\":\"s3://b/d%d\",\"namespace\":\"/\","
                         "\"chunks\":[{\"text\":\"disk %s %d\",\"embedding\":[%d,1,0,0]}]}\n",
                         i, i, i % 3 ? "full" : "quota", i, i % 5);
  buf[o] = 0;
  ingest(db, buf);
  assert_int_equal(warden_set_resolver(db, deny_odd, NULL), 0);
  for (int mode = 1; mode <= 2; mode++) {
    warden_query_opts qo;
    memset(&qo, 0, sizeof qo);
    qo.principal = "user:x";
    qo.k = 25;
    qo.mode = mode;
    qo.text = "disk full";
    qo.explain = 1;
    float q[4] = {1, 1, 0, 0};
    warden_results *r;
    assert_int_equal(warden_query(db, q, 1, &qo, &r), 0);
    assert_int_equal(warden_results_count(r, 0), 25); /* exactly k */
    for (size_t i = 0; i < 25; i++) {
      const warden_hit *h = warden_results_hit(r, 0, i);
      assert_int_equal(atoi(h->doc_id + 1) % 2, 0);
      assert_true(h->lexical_rank > 0 || h->semantic_rank > 0);
      if (i) assert_true(h->score <= warden_results_hit(r, 0, i - 1)->score);
    }
    assert_non_null(strstr(warden_results_plan(r, 0), mode == 1 ? "\"lexical\"" : "\"hybrid\""));
    warden_results_free(r);
  }
  destroy(db);
}

/* ------------------------------------------------ check and refusals */

static void test_check_and_refusals(void **st) {
  (void)st;
  warden *db = make("dimension: 4\nmetric: l2\nlexical:\n  language: none\n");
  ingest(db,
         "{\"doc_id\":\"a\",\"source\":\"s3://b/a\",\"namespace\":\"/\",\"acl\":{\"allow\":[\"*\"]},"
         "\"chunks\":[{\"text\":\"Running servers\",\"embedding\":[1,0,0,0]}]}\n");
  check_ok(db);
  warden_query_opts qo;
  memset(&qo, 0, sizeof qo);
  qo.principal = "user:x";
  qo.mode = WARDEN_MODE_LEXICAL;
  warden_results *r;
  assert_int_equal(warden_query(db, NULL, 1, &qo, &r), WARDEN_EINVAL); /* no text */
  qo.text = "running";
  float q2[8] = {1, 0, 0, 0, 0, 1, 0, 0};
  assert_int_equal(warden_query(db, q2, 2, &qo, &r), WARDEN_EINVAL); /* a batch */
  qo.mode = 7;
  assert_int_equal(warden_query(db, NULL, 1, &qo, &r), WARDEN_EINVAL);
  qo.mode = WARDEN_MODE_HYBRID; /* no vector, no embedder */
  assert_int_equal(warden_query(db, NULL, 1, &qo, &r), WARDEN_EINVAL);
  qo.mode = WARDEN_MODE_LEXICAL;
  assert_int_equal(warden_query(db, NULL, 1, &qo, &r), 0);
  assert_int_equal(warden_results_count(r, 0), 1); /* language none: "running" as is */
  warden_results_free(r);
  qo.text = "run";
  assert_int_equal(warden_query(db, NULL, 1, &qo, &r), 0);
  assert_int_equal(warden_results_count(r, 0), 0);
  warden_results_free(r);
  /* postings that disagree with the texts: check says so */
  wd_txn tx;
  memset(&tx, 0, sizeof tx);
  warden_close(db);
  char cdir[300], err[512];
  snprintf(cdir, sizeof cdir, "%s/c", dir);
  /* reopen with stemming: the stored postings ("running") no longer match
   * what the tokenizer makes of the text ("run") */
  char cfg[400];
  snprintf(cfg, sizeof cfg, "%s/c/warden.yaml", dir);
  FILE *f = fopen(cfg, "w");
  assert_non_null(f);
  fputs("dimension: 4\nmetric: l2\nlexical:\n  language: english\n", f);
  fclose(f);
  assert_int_equal(warden_open(cdir, NULL, &db, err, sizeof err), 0);
  char *js = NULL;
  assert_int_equal(warden_check(db, &js), WARDEN_ECORRUPT);
  assert_non_null(strstr(js, "lexical index"));
  warden_free(js);
  destroy(db);
}

/* ------------------------------------------------ weighted fusion */

/* lexical.fusion: weighted: each side min-max normalised over its own top
 * k, semantic_weight * sem + (1 - semantic_weight) * lex, checked against
 * the two sides queried on their own. */
static void test_weighted_fusion(void **st) {
  (void)st;
  warden *db = make("dimension: 4\nmetric: l2\nlexical:\n  fusion: weighted\n  semantic_weight: 0.3\n");
  size_t o = 0;
  for (int i = 0; i < 40; i++)
    o += (size_t)sprintf(buf + o,
                         "{\"doc_id\":\"d%d\",\"source\":\"s3://b/d%d\",\"namespace\":\"/\",\"acl\":{\"allow\":[\"*\"]},"
                         "\"chunks\":[{\"text\":\"%s %s %d\",\"embedding\":[%d,%d,0,1]}]}\n",
                         i, i, i % 3 ? "disk" : "quota", i % 4 ? "full" : "disk disk", i, i % 7, i % 5);
  buf[o] = 0;
  ingest(db, buf);
  float q[4] = {2, 3, 0, 1};
  warden_query_opts qo;
  memset(&qo, 0, sizeof qo);
  qo.principal = "user:x";
  qo.k = 8;
  qo.text = "disk full";
  qo.strategy = WARDEN_STRATEGY_EXACT;
  warden_results *lr, *sr, *hr;
  qo.mode = WARDEN_MODE_LEXICAL;
  assert_int_equal(warden_query(db, NULL, 1, &qo, &lr), 0);
  qo.mode = WARDEN_MODE_SEMANTIC;
  const char *t = qo.text;
  qo.text = NULL;
  assert_int_equal(warden_query(db, q, 1, &qo, &sr), 0);
  qo.text = t;
  qo.mode = WARDEN_MODE_HYBRID;
  assert_int_equal(warden_query(db, q, 1, &qo, &hr), 0);
  size_t nl = warden_results_count(lr, 0), ns = warden_results_count(sr, 0);
  assert_int_equal(nl, 8);
  assert_int_equal(ns, 8);
  double lmin = 1e300, lmax = -1e300, smin = 1e300, smax = -1e300;
  for (size_t i = 0; i < nl; i++) {
    double x = warden_results_hit(lr, 0, i)->score;
    lmin = x < lmin ? x : lmin;
    lmax = x > lmax ? x : lmax;
  }
  for (size_t i = 0; i < ns; i++) {
    double x = -(double)warden_results_hit(sr, 0, i)->score; /* l2: lower is better */
    smin = x < smin ? x : smin;
    smax = x > smax ? x : smax;
  }
  size_t nh = warden_results_count(hr, 0);
  assert_int_equal(nh, 8);
  double prev = 1e300;
  for (size_t i = 0; i < nh; i++) {
    const warden_hit *h = warden_results_hit(hr, 0, i);
    double want = 0;
    if (h->semantic_rank) {
      const warden_hit *s = warden_results_hit(sr, 0, h->semantic_rank - 1);
      assert_string_equal(s->doc_id, h->doc_id);
      want += 0.3 * (smax > smin ? (-(double)s->score - smin) / (smax - smin) : 1.0);
    }
    if (h->lexical_rank) {
      const warden_hit *l = warden_results_hit(lr, 0, h->lexical_rank - 1);
      assert_string_equal(l->doc_id, h->doc_id);
      want += 0.7 * (lmax > lmin ? ((double)l->score - lmin) / (lmax - lmin) : 1.0);
    }
    assert_true(h->semantic_rank || h->lexical_rank);
    /* the sides' scores reach the caller as floats: compare loosely */
    assert_true(fabs(h->score - want) < 1e-5);
    assert_true(h->score <= prev + 1e-6);
    prev = h->score;
  }
  const char *plan = NULL;
  (void)plan;
  warden_results_free(lr);
  warden_results_free(sr);
  warden_results_free(hr);
  destroy(db);
}

/* ------------------------------------------- allocation failures */

static long nallocs, fail_at;
static void *f_malloc(void *ctx, size_t n) {
  (void)ctx;
  if (fail_at && ++nallocs == fail_at) return NULL;
  return malloc(n);
}
static void *f_realloc(void *ctx, void *p, size_t n) {
  (void)ctx;
  if (fail_at && ++nallocs == fail_at) return NULL;
  return realloc(p, n);
}
static void f_free(void *ctx, void *p) {
  (void)ctx;
  free(p);
}

/* The N-th allocation of a lexical ingest, a lexical and a hybrid query and
 * a check fails, for every N until all succeed: each call returns 0 or
 * WARDEN_ENOMEM with a message, the collection stays checkable, and
 * nothing leaks (LSan in the sanitizer build). */
static void test_alloc_failures(void **st) {
  (void)st;
  warden_allocator a = {f_malloc, f_realloc, f_free, NULL};
  warden_set_allocator(&a);
  warden *db = make("dimension: 4\nmetric: l2\nembedder:\n  type: hash\n");
  static const char *doc =
      "{\"doc_id\":\"a\",\"source\":\"s3://b/a\",\"namespace\":\"/\",\"acl\":{\"allow\":[\"*\"]},"
      "\"chunks\":[{\"text\":\"Running disks ERR-4521 Σοφία\"},{\"text\":\"disk quota v1.2\"}]}\n";
  int done = 0;
  long n;
  for (n = 1; !done && n < 20000; n++) {
    nallocs = 0;
    fail_at = n;
#define CALLED(i, rc_)                                                                   \
  do {                                                                                   \
    if ((rc_) && (rc_) != WARDEN_ENOMEM)                                                 \
      fail_msg("n=%ld call %d: %d %s", n, i, (rc_), warden_errmsg(db));                  \
    if (rc_) assert_true(warden_errmsg(db)[0] != 0);                                     \
  } while (0)
    int rc1 = warden_ingest_buffer(db, "t", doc, strlen(doc), NULL, NULL);
    CALLED(1, rc1);
    warden_query_opts o;
    memset(&o, 0, sizeof o);
    o.principal = "user:x";
    o.text = "running disk err-4521";
    o.explain = 1;
    warden_results *r = NULL;
    o.mode = WARDEN_MODE_LEXICAL;
    int rc2 = warden_query(db, NULL, 1, &o, &r);
    CALLED(2, rc2);
    if (!rc2) warden_results_free(r);
    o.mode = WARDEN_MODE_HYBRID;
    int rc3 = warden_query(db, NULL, 1, &o, &r);
    CALLED(3, rc3);
    if (!rc3) warden_results_free(r);
    char *js = NULL;
    int rc4 = warden_check(db, &js);
    CALLED(4, rc4);
    warden_free(js);
#undef CALLED
    done = !rc1 && !rc2 && !rc3 && !rc4 && nallocs < n;
  }
  fail_at = 0;
  assert_true(done);
  check_ok(db);
  destroy(db);
  warden_set_allocator(NULL);
}

static void test_report(void **st) {
  (void)st;
  printf("lexical oracle: %ld queries compared, %ld leaks\n", nqueries, nleaks);
  assert_true(nqueries >= (quick() ? 500 : 8000));
  assert_int_equal(nleaks, 0);
}

int main(void) {
  buf = malloc(32 << 20);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tokenizer),
      cmocka_unit_test(test_hidden_change_nothing),
      cmocka_unit_test(test_oracle_lexical),
      cmocka_unit_test(test_oracle_lexical_windows),
      cmocka_unit_test(test_stored_term_adds_then_removes),
      cmocka_unit_test(test_resolver_rounds),
      cmocka_unit_test(test_check_and_refusals),
      cmocka_unit_test(test_weighted_fusion),
      cmocka_unit_test(test_alloc_failures),
      cmocka_unit_test(test_report),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  free(buf);
  return rc;
}
