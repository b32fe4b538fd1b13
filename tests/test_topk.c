/*
 * test_topk.c -- the bounded top-k heap against a sort-everything oracle.
 *
 * Random candidate streams (drawn from a small set of distances so ties
 * are frequent, with NaN and infinities mixed in) are pushed into the heap
 * and the drained result must equal the first k of the stream sorted by
 * (dist, id) with qsort -- ids included, so tie order is checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "topk.h"

static int quick(void) { return getenv("WARDEN_TEST_QUICK") != NULL; }

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}

typedef struct cand {
  float dist;
  uint32_t id;
} cand;

/* Oracle order, written independently of wd_hit_better. */
static int cmp_cand(const void *pa, const void *pb) {
  const cand *a = pa, *b = pb;
  if (a->dist < b->dist) return -1;
  if (a->dist > b->dist) return 1;
  return a->id < b->id ? -1 : a->id > b->id;
}

static void test_random_streams(void **st) {
  (void)st;
  enum { MAXN = 400 };
  static cand c[MAXN], sorted[MAXN];
  static wd_hit_i out[MAXN + 8];
  int iters = quick() ? 300 : 3000;
  for (int it = 0; it < iters; it++) {
    size_t n = rnd() % MAXN;
    size_t k = 1 + rnd() % 60;
    int distinct = 1 + (int)(rnd() % 20); /* few values: many ties */
    /* unique ids in random order */
    for (size_t i = 0; i < n; i++) c[i].id = (uint32_t)(i * 7 + 3);
    for (size_t i = n; i > 1; i--) {
      size_t j = rnd() % i;
      uint32_t t = c[i - 1].id;
      c[i - 1].id = c[j].id;
      c[j].id = t;
    }
    for (size_t i = 0; i < n; i++) {
      uint64_t r = rnd() % 100;
      if (r == 0)
        c[i].dist = NAN;
      else if (r == 1)
        c[i].dist = INFINITY;
      else if (r == 2)
        c[i].dist = -INFINITY;
      else
        c[i].dist = (float)((int)(rnd() % (uint64_t)distinct) - 5) * 0.25f;
    }
    wd_topk t;
    assert_int_equal(wd_topk_init(&t, k), 0);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
      wd_topk_push(&t, c[i].dist, c[i].id);
      if (!isnan(c[i].dist)) sorted[m++] = c[i];
      /* worst(): +inf until full, then the k-th best seen so far */
      if (m < k) {
        assert_true(isinf(wd_topk_worst(&t)) && wd_topk_worst(&t) > 0);
      } else if (rnd() % 16 == 0) {
        static cand tmp[MAXN];
        memcpy(tmp, sorted, m * sizeof *tmp);
        qsort(tmp, m, sizeof *tmp, cmp_cand);
        float w = wd_topk_worst(&t);
        assert_true(w == tmp[k - 1].dist);
      }
    }
    qsort(sorted, m, sizeof *sorted, cmp_cand);
    size_t want = m < k ? m : k;
    assert_int_equal(t.n, want);
    out[want].id = 0xDEADBEEF; /* must not be written */
    size_t got = wd_topk_drain_sorted(&t, out);
    assert_int_equal(got, want);
    assert_int_equal(out[want].id, 0xDEADBEEF);
    for (size_t i = 0; i < want; i++) {
      assert_int_equal(out[i].id, sorted[i].id);
      assert_true(out[i].dist == sorted[i].dist);
    }
    assert_int_equal(t.n, 0); /* drained */
    wd_topk_free(&t);
  }
}

/* Table of small scenarios with the expected ids written out by hand. */
static void test_table(void **st) {
  (void)st;
  static const struct {
    size_t k, n;
    float d[8];
    uint32_t id[8];
    size_t want_n;
    uint32_t want[8];
  } cases[] = {
      /* k larger than n */
      {5, 3, {3, 1, 2}, {10, 11, 12}, 3, {11, 12, 10}},
      /* ties: lower id wins regardless of arrival order */
      {2, 4, {1, 1, 1, 1}, {9, 4, 7, 2}, 2, {2, 4}},
      {1, 3, {1, 1, 0.5f}, {5, 3, 8}, 1, {8}},
      /* NaN never enters, even into an empty heap */
      {3, 3, {NAN, NAN, NAN}, {1, 2, 3}, 0, {0}},
      {2, 4, {NAN, 5, NAN, 4}, {1, 2, 3, 4}, 2, {4, 2}},
      /* infinities are ordinary values */
      {2, 3, {INFINITY, -INFINITY, 0}, {1, 2, 3}, 2, {2, 3}},
      /* -0 and +0 compare equal: id decides */
      {1, 2, {0.0f, -0.0f}, {2, 1}, 1, {1}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    wd_topk t;
    wd_hit_i out[8];
    assert_int_equal(wd_topk_init(&t, cases[c].k), 0);
    for (size_t i = 0; i < cases[c].n; i++)
      wd_topk_push(&t, cases[c].d[i], cases[c].id[i]);
    assert_int_equal(wd_topk_drain_sorted(&t, out), cases[c].want_n);
    for (size_t i = 0; i < cases[c].want_n; i++)
      assert_int_equal(out[i].id, cases[c].want[i]);
    wd_topk_free(&t);
  }
}

static void test_reset_and_reuse(void **st) {
  (void)st;
  wd_topk t;
  wd_hit_i out[4];
  assert_int_equal(wd_topk_init(&t, 2), 0);
  wd_topk_push(&t, 1.0f, 1);
  wd_topk_push(&t, 2.0f, 2);
  assert_true(wd_topk_worst(&t) == 2.0f);
  wd_topk_reset(&t);
  assert_int_equal(t.n, 0);
  assert_true(isinf(wd_topk_worst(&t)));
  wd_topk_push(&t, 7.0f, 7);
  assert_int_equal(wd_topk_drain_sorted(&t, out), 1);
  assert_int_equal(out[0].id, 7);
  /* draining an empty heap is fine */
  assert_int_equal(wd_topk_drain_sorted(&t, out), 0);
  wd_topk_free(&t);
  wd_topk_free(&t); /* idempotent */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_reset_and_reuse),
      cmocka_unit_test(test_random_streams),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
