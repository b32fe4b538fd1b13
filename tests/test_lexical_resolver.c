/*
 * test_lexical_resolver.c -- lexical and hybrid queries with a resolver
 * (security review F1, F5): a principal's scores, order and ranks must not
 * depend on documents that principal cannot read, and the resolver's
 * denials count as cannot-read.
 *
 * Two collections hold the same readable documents in the same relative
 * order; the second also holds documents the callback resolver denies
 * (source under s3://b/priv/) and documents the ACL hides, all full of the
 * query's words and close to the query vector.  For random queries:
 *   - lexical and hybrid hits are identical across the two: ids, scores
 *     bit for bit, semantic_rank, lexical_rank, order;
 *   - no denied document is returned;
 *   - lexical ranks are 1..n over the returned hits, and in hybrid mode
 *     each side's ranks are distinct and within 1..n;
 *   - --explain's postings_read is the same in both (it counts only
 *     postings of chunks the caller may read).
 * Each assertion fails on the code before the fix (BM25 statistics over
 * resolver-denied documents, ranks among denied candidates, postings_read
 * counting hidden postings).
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

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}
static int rr(int n) { return (int)(rnd() % (uint64_t)n); }
static int quick(void) { return getenv("WARDEN_TEST_QUICK") != NULL; }

static const char *words[] = {"merger", "acme", "quarter", "plans", "results", "disk",
                              "full", "quota", "server", "revenue", "budget", "audit"};
#define NW (sizeof words / sizeof *words)

static int deny_priv(void *ctx, const char *principal, const char *const *groups, size_t ngroups,
                     const warden_resource *res, size_t n, unsigned char *allowed) {
  (void)ctx, (void)principal, (void)groups, (void)ngroups;
  for (size_t i = 0; i < n; i++) allowed[i] = strstr(res[i].source, "/priv/") == NULL;
  return 0;
}

typedef struct coll {
  char dir[256];
  warden *db;
} coll;

static void make(coll *c) {
  snprintf(c->dir, sizeof c->dir, "/tmp/warden-lexres-XXXXXX");
  assert_non_null(mkdtemp(c->dir));
  char cdir[300], cfg[300], err[512];
  snprintf(cfg, sizeof cfg, "%s/warden.yaml", c->dir);
  FILE *f = fopen(cfg, "w");
  assert_non_null(f);
  fputs("dimension: 4\nmetric: l2\n", f);
  fclose(f);
  snprintf(cdir, sizeof cdir, "%s/c", c->dir);
  warden_create_opts co = {0, NULL, cfg};
  assert_int_equal(warden_create(cdir, &co, err, sizeof err), 0);
  assert_int_equal(warden_open(cdir, NULL, &c->db, err, sizeof err), 0);
  assert_int_equal(warden_set_resolver(c->db, deny_priv, NULL), 0);
}

static void destroy(coll *c) {
  warden_close(c->db);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->dir);
  assert_int_equal(system(cmd), 0);
}

/* one document line: kind 0 readable, 1 resolver-denied, 2 ACL-hidden */
static size_t doc(char *b, int id, int kind) {
  char text[512];
  size_t o = 0;
  int nw = 2 + rr(8);
  for (int i = 0; i < nw; i++) {
    const char *w = kind ? words[rr(3)] : words[rr((int)NW)]; /* hidden: the query's words */
    o += (size_t)snprintf(text + o, sizeof text - o, "%s%s", i ? " " : "", w);
  }
  int v0 = kind ? 0 : rr(5), v1 = kind ? 1 : rr(5);
  return (size_t)sprintf(b,
                         "{\"doc_id\":\"%c%d\",\"source\":\"s3://b/%s/%d\",\"namespace\":\"/\","
                         "\"acl\":{\"allow\":[\"%s\"]},"
                         "\"chunks\":[{\"text\":\"%s\",\"embedding\":[%d,%d,0,0]}]}\n",
                         "pqh"[kind], id, kind == 1 ? "priv" : "pub", id,
                         kind == 2 ? "user:other" : "*", text, v0, v1);
}

static long postings_read(const char *plan) {
  const char *p = strstr(plan, "\"postings_read\":");
  assert_non_null(p);
  return atol(p + strlen("\"postings_read\":"));
}

static void compare(coll *a, coll *b, int mode, const char *text, size_t k) {
  warden_query_opts qo;
  memset(&qo, 0, sizeof qo);
  qo.principal = "user:alice";
  qo.k = k;
  qo.mode = mode;
  qo.text = text;
  qo.explain = 1;
  float q[4] = {0, 1, 0, 0};
  warden_results *ra, *rb;
  assert_int_equal(warden_query(a->db, mode == WARDEN_MODE_LEXICAL ? NULL : q, 1, &qo, &ra), 0);
  assert_int_equal(warden_query(b->db, mode == WARDEN_MODE_LEXICAL ? NULL : q, 1, &qo, &rb), 0);
  size_t n = warden_results_count(ra, 0);
  assert_int_equal(warden_results_count(rb, 0), n);
  for (size_t i = 0; i < n; i++) {
    const warden_hit *x = warden_results_hit(ra, 0, i), *y = warden_results_hit(rb, 0, i);
    assert_string_equal(x->doc_id, y->doc_id);
    assert_int_equal(y->doc_id[0], 'p'); /* never a denied or hidden one */
    assert_memory_equal(&x->score, &y->score, sizeof x->score); /* bit for bit */
    assert_int_equal(x->semantic_rank, y->semantic_rank);
    assert_int_equal(x->lexical_rank, y->lexical_rank);
    if (mode == WARDEN_MODE_LEXICAL) {
      assert_int_equal(y->lexical_rank, i + 1); /* ranks 1..n among the returned hits */
    } else {
      assert_true(y->semantic_rank <= n && y->lexical_rank <= n);
      assert_true(y->semantic_rank || y->lexical_rank);
      for (size_t j = 0; j < i; j++) {
        const warden_hit *z = warden_results_hit(rb, 0, j);
        if (y->semantic_rank) assert_int_not_equal(z->semantic_rank, y->semantic_rank);
        if (y->lexical_rank) assert_int_not_equal(z->lexical_rank, y->lexical_rank);
      }
    }
  }
  assert_int_equal(postings_read(warden_results_plan(ra, 0)),
                   postings_read(warden_results_plan(rb, 0)));
  warden_results_free(ra);
  warden_results_free(rb);
}

static void test_hidden_change_nothing(void **st) {
  (void)st;
  int rounds = quick() ? 2 : 6;
  char *la = malloc(1 << 20), *lb = malloc(1 << 20);
  assert_non_null(la);
  assert_non_null(lb);
  for (int round = 0; round < rounds; round++) {
    coll a, b;
    make(&a);
    make(&b);
    size_t oa = 0, ob = 0;
    int nd = 20 + rr(60);
    for (int i = 0; i < nd; i++) {
      size_t l = doc(la + oa, i, 0);
      memcpy(lb + ob, la + oa, l);
      oa += l;
      ob += l;
      int extra = rr(3);
      for (int e = 0; e < extra; e++) ob += doc(lb + ob, 1000 + i * 3 + e, 1 + rr(2));
    }
    ob += doc(lb + ob, 9999, 1); /* at least one denied document */
    la[oa] = lb[ob] = 0;
    assert_int_equal(warden_ingest_buffer(a.db, "a", la, oa, NULL, NULL), 0);
    assert_int_equal(warden_ingest_buffer(b.db, "b", lb, ob, NULL, NULL), 0);
    for (int t = 0; t < 8; t++) {
      char text[128];
      snprintf(text, sizeof text, "%s %s", words[rr(3)], words[rr((int)NW)]);
      size_t k = (size_t)(1 + rr(12));
      compare(&a, &b, WARDEN_MODE_LEXICAL, text, k);
      compare(&a, &b, WARDEN_MODE_HYBRID, text, k);
    }
    compare(&a, &b, WARDEN_MODE_LEXICAL, "merger", 1);
    compare(&a, &b, WARDEN_MODE_HYBRID, "merger", 1);
    destroy(&a);
    destroy(&b);
  }
  free(la);
  free(lb);
}

/* More allowed chunks than the work bound (5000): the pre-check covers
 * only the documents holding a query term, so the semantic side's rounds
 * meet denied documents (vectors equal to the query, no query word) that
 * were never checked.  The reported ranks must still be ranks among the
 * hits that passed: both sides' best readable chunk is rank 1, ranks are
 * distinct and within 1..n (fails without the renumbering). */
static void test_ranks_renumbered(void **st) {
  (void)st;
  coll c;
  make(&c);
  size_t cap = 6000 * 256, o = 0;
  char *b = malloc(cap);
  assert_non_null(b);
  for (int i = 0; i < 5400; i++) {
    int denied = i % 1800 == 1; /* three, nearest to the query vector */
    o += (size_t)snprintf(b + o, cap - o,
                          "{\"doc_id\":\"%c%d\",\"source\":\"s3://b/%s/%d\",\"namespace\":\"/\","
                          "\"acl\":{\"allow\":[\"*\"]},\"chunks\":[{\"text\":\"%s w%d\","
                          "\"embedding\":[%d,%d,0,0]}]}\n",
                          denied ? 'q' : 'p', i, denied ? "priv" : "pub", i,
                          denied ? "other" : i % 10 == 0 ? "merger" : "plain", i % 97,
                          denied ? 0 : 1 + i % 5, denied ? 1 : 1);
  }
  assert_int_equal(warden_ingest_buffer(c.db, "r", b, o, NULL, NULL), 0);
  free(b);
  for (int mode = WARDEN_MODE_LEXICAL; mode <= WARDEN_MODE_HYBRID; mode++) {
    warden_query_opts qo;
    memset(&qo, 0, sizeof qo);
    qo.principal = "user:alice";
    qo.k = 6;
    qo.mode = mode;
    qo.text = "merger";
    qo.explain = 1;
    float q[4] = {0, 1, 0, 0};
    warden_results *r;
    assert_int_equal(warden_query(c.db, mode == WARDEN_MODE_LEXICAL ? NULL : q, 1, &qo, &r), 0);
    size_t n = warden_results_count(r, 0);
    assert_int_equal(n, 6);
    assert_non_null(strstr(warden_results_plan(r, 0), "resolver-checked-subset"));
    int s1 = 0, l1 = 0;
    for (size_t i = 0; i < n; i++) {
      const warden_hit *h = warden_results_hit(r, 0, i);
      assert_int_equal(h->doc_id[0], 'p');
      assert_true(h->semantic_rank <= n && h->lexical_rank <= n);
      if (mode == WARDEN_MODE_LEXICAL) assert_int_equal(h->lexical_rank, i + 1);
      s1 |= h->semantic_rank == 1;
      l1 |= h->lexical_rank == 1;
      for (size_t j = 0; j < i; j++) {
        const warden_hit *z = warden_results_hit(r, 0, j);
        if (h->semantic_rank) assert_int_not_equal(z->semantic_rank, h->semantic_rank);
        if (h->lexical_rank) assert_int_not_equal(z->lexical_rank, h->lexical_rank);
      }
    }
    assert_true(l1);
    if (mode == WARDEN_MODE_HYBRID) assert_true(s1);
    warden_results_free(r);
  }
  destroy(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hidden_change_nothing),
      cmocka_unit_test(test_ranks_renumbered),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
