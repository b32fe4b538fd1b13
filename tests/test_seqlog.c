/*
 * test_seqlog.c -- the compressed first-slot -> line log of ingest
 * (engine/base/seqlog.h), against a plain array of the same pairs.
 *
 * Keys advance by steps of 1 to 2^40 and values by steps of -2^40 to
 * 2^40 (a line map restarting in a second file, a typed index), at
 * lengths around the mark interval; every stored key must give back its
 * value, every key between, before and after them must be absent, and a
 * key out of order must be refused without changing the log.  The size
 * check holds the claim of seqlog.h: about 2.5 bytes an entry when both
 * advance in small steps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

#include "base/seqlog.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* a step drawn mostly small, sometimes huge */
static uint64_t step(void) {
  uint64_t r = next() % 100;
  if (r < 70) return 1;
  if (r < 90) return 1 + next() % 200;
  if (r < 97) return 1 + next() % 100000;
  return 1 + next() % (1ull << 40);
}

static void check_len(size_t n) {
  uint64_t *k = malloc((n + 1) * sizeof *k), *v = malloc((n + 1) * sizeof *v);
  assert_non_null(k);
  assert_non_null(v);
  wd_seqlog s = {0};
  uint64_t key = next() % 1000, val = next();
  for (size_t i = 0; i < n; i++) {
    if (i) {
      key += step();
      uint64_t r = next() % 10;
      val = r < 6 ? val + 1 : r < 8 ? val + step() : val - step();
    }
    k[i] = key;
    v[i] = val;
    assert_int_equal(wd_seqlog_add(&s, key, val), 0);
  }
  assert_int_equal(s.n, n);
  for (size_t i = 0; i < n; i++) {
    uint64_t got = 0;
    assert_int_equal(wd_seqlog_find(&s, k[i], &got), 1);
    assert_true(got == v[i]);
    if (i + 1 < n && k[i + 1] > k[i] + 1) {
      uint64_t mid = k[i] + 1 + next() % (k[i + 1] - k[i] - 1);
      assert_int_equal(wd_seqlog_find(&s, mid, &got), 0);
    }
  }
  uint64_t got;
  if (n) {
    if (k[0]) assert_int_equal(wd_seqlog_find(&s, k[0] - 1, &got), 0);
    assert_int_equal(wd_seqlog_find(&s, k[n - 1] + 1, &got), 0);
    /* out of order: refused, and the log answers as before */
    assert_int_equal(wd_seqlog_add(&s, k[n - 1], 7), -2);
    assert_int_equal(wd_seqlog_add(&s, k[0], 7), -2);
    assert_int_equal(s.n, n);
    assert_int_equal(wd_seqlog_find(&s, k[n - 1], &got), 1);
    assert_true(got == v[n - 1]);
  } else {
    assert_int_equal(wd_seqlog_find(&s, 0, &got), 0);
    assert_int_equal(wd_seqlog_find(&s, 12345, &got), 0);
  }
  wd_seqlog_free(&s);
  free(k);
  free(v);
}

static void test_lengths(void **st) {
  (void)st;
  size_t lens[] = {0, 1, 2, 63, 64, 65, 127, 128, 129, 1000, 4097, 100000};
  for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) check_len(lens[i]);
}

/* one-chunk documents on consecutive lines, then a second file whose
 * lines start again at 1 (a where code's file index in the high bits) */
static void test_size(void **st) {
  (void)st;
  wd_seqlog s = {0};
  const size_t n = 1000000;
  for (size_t i = 0; i < n; i++) {
    uint64_t where = i < n / 2 ? i + 1 : (1ull << 40) | (i - n / 2 + 1);
    assert_int_equal(wd_seqlog_add(&s, 5000 + i, where), 0);
  }
  assert_true(wd_seqlog_size(&s) < n * 5 / 2 + 65536);
  uint64_t got;
  assert_int_equal(wd_seqlog_find(&s, 5000 + n / 2 - 1, &got), 1);
  assert_true(got == n / 2);
  assert_int_equal(wd_seqlog_find(&s, 5000 + n / 2, &got), 1);
  assert_true(got == ((1ull << 40) | 1));
  assert_int_equal(wd_seqlog_find(&s, 5000 + n - 1, &got), 1);
  assert_true(got == ((1ull << 40) | (n / 2)));
  wd_seqlog_free(&s);
}

int main(void) {
  const struct CMUnitTest t[] = {
      cmocka_unit_test(test_lengths),
      cmocka_unit_test(test_size),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
