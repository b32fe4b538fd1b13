/*
 * test_scan.c -- exact filtered scan against a brute-force oracle.
 *
 * An in-memory wd_vecsrc holds random blocks in the store's layout.  For
 * random allowed bitmaps (densities 0.001..1, plus clustered ranges), all
 * three metrics and nq = 1 and 7, the scan's top-k must match a
 * double-precision brute force written here: position by position the
 * distances agree within 1e-4 relative, so ids may differ only between
 * near-ties.  With small-integer vectors (ip, l2) float arithmetic is exact
 * and the ids, distances and tie order (lower id first) must be identical,
 * at every SIMD level the CPU has.  Also: missing blocks and ids beyond
 * the last block are skipped, get_block errors propagate, allocation
 * failures return -1 without leaks, and batch L2 equals single-query L2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "scan.h"
#include "warden.h"
#include "wd_types.h"

static int quick(void) { return getenv("WARDEN_TEST_QUICK") != NULL; }

static uint64_t rng_state = 0xD1B54A32D192ED03ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}
static double urand(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

/* ---- in-memory vector source --------------------------------------- */

typedef struct memsrc {
  size_t dim;
  uint32_t n;        /* live rows: ids 0..n-1 */
  uint32_t nblocks;
  float **blocks;
  uint32_t missing;  /* this block reports "does not exist" (UINT32_MAX: none) */
  uint32_t err_at;   /* this block fails with err_code (UINT32_MAX: none) */
  int err_code;
} memsrc;

static int mem_get_block(void *ctx, uint32_t b, const float **base) {
  memsrc *m = ctx;
  if (b == m->err_at) return m->err_code;
  if (b >= m->nblocks || b == m->missing) return 1;
  *base = m->blocks[b];
  return 0;
}

static const float *row_of(const memsrc *m, uint32_t id) {
  return m->blocks[id / WD_BLOCK] + WD_BLOCK + (size_t)(id % WD_BLOCK) * m->dim;
}

static int exists(const memsrc *m, uint32_t id) {
  uint32_t b = id / WD_BLOCK;
  return id < m->n && b < m->nblocks && b != m->missing && b != m->err_at;
}

/* ints: components are small integers in [-2, 2] (exact float math). */
static void mem_build(memsrc *m, uint32_t n, size_t dim, int ints) {
  m->dim = dim;
  m->n = n;
  m->nblocks = (n + WD_BLOCK - 1) / WD_BLOCK;
  m->missing = m->err_at = UINT32_MAX;
  m->err_code = 0;
  m->blocks = calloc(m->nblocks, sizeof *m->blocks);
  assert_non_null(m->blocks);
  for (uint32_t b = 0; b < m->nblocks; b++) {
    float *blk = calloc(WD_BLOCK + (size_t)WD_BLOCK * dim, sizeof *blk);
    assert_non_null(blk);
    m->blocks[b] = blk;
    for (uint32_t r = 0; r < WD_BLOCK; r++) {
      uint32_t id = b * WD_BLOCK + r;
      if (id >= n) break; /* empty tail rows stay zero, invnorm 0 */
      float *x = blk + WD_BLOCK + (size_t)r * dim;
      double ss = 0;
      for (size_t i = 0; i < dim; i++) {
        x[i] = ints ? (float)((int)(rnd() % 5) - 2) : (float)(urand() * 2 - 1);
        ss += (double)x[i] * x[i];
      }
      blk[r] = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
    }
  }
}

static void mem_free(memsrc *m) {
  for (uint32_t b = 0; b < m->nblocks; b++) free(m->blocks[b]);
  free(m->blocks);
}

/* ---- oracle --------------------------------------------------------- */

typedef struct ohit {
  double dist;
  uint32_t id;
} ohit;

static int cmp_ohit(const void *pa, const void *pb) {
  const ohit *a = pa, *b = pb;
  if (a->dist < b->dist) return -1;
  if (a->dist > b->dist) return 1;
  return a->id < b->id ? -1 : a->id > b->id;
}

/* Exact distance (lower is better) of id for query q. */
static double oracle_dist(const memsrc *m, int metric, const float *q,
                          uint32_t id) {
  const float *x = row_of(m, id);
  double dot = 0, l2 = 0, xx = 0;
  for (size_t i = 0; i < m->dim; i++) {
    dot += (double)q[i] * x[i];
    xx += (double)x[i] * x[i];
    double t = (double)q[i] - x[i];
    l2 += t * t;
  }
  if (metric == WD_METRIC_L2) return l2;
  if (metric == WD_METRIC_IP) return -dot;
  return xx > 0 ? -dot / sqrt(xx) : 0.0;
}

/* Brute force over every allowed, existing id; returns the count and the
 * sorted hits in *out (malloc'd). */
static size_t oracle(const memsrc *m, int metric, const float *q,
                     const roaring_bitmap_t *allowed, ohit **out) {
  size_t card = (size_t)roaring_bitmap_get_cardinality(allowed);
  ohit *h = malloc((card + 1) * sizeof *h);
  assert_non_null(h);
  size_t n = 0;
  roaring_uint32_iterator_t it;
  roaring_init_iterator(allowed, &it);
  while (it.has_value) {
    if (exists(m, it.current_value))
      h[n].id = it.current_value,
      h[n].dist = oracle_dist(m, metric, q, it.current_value), n++;
    roaring_advance_uint32_iterator(&it);
  }
  qsort(h, n, sizeof *h, cmp_ohit);
  *out = h;
  return n;
}

/* ---- helpers -------------------------------------------------------- */

static void make_queries(float *q, size_t nq, size_t dim, int metric,
                         int ints) {
  for (size_t j = 0; j < nq; j++) {
    float *v = q + j * dim;
    double ss = 0;
    for (size_t i = 0; i < dim; i++) {
      v[i] = ints ? (float)((int)(rnd() % 5) - 2) : (float)(urand() * 2 - 1);
      ss += (double)v[i] * v[i];
    }
    if (ss == 0) v[0] = 1, ss = 1;
    if (metric == WD_METRIC_COSINE)
      for (size_t i = 0; i < dim; i++) v[i] = (float)(v[i] / sqrt(ss));
  }
}

/* Random allowed set: each live id with probability p; "clustered" mode
 * adds random ranges instead.  A few ids beyond the last block are added
 * to check they are skipped. */
static roaring_bitmap_t *make_allowed(const memsrc *m, double p,
                                      int clustered) {
  roaring_bitmap_t *bm = roaring_bitmap_create();
  if (clustered) {
    int runs = 1 + (int)(rnd() % 12);
    for (int r = 0; r < runs; r++) {
      uint32_t lo = (uint32_t)(rnd() % m->n);
      uint32_t len = 1 + (uint32_t)(rnd() % 300);
      uint32_t hi = lo + len > m->n ? m->n : lo + len;
      roaring_bitmap_add_range(bm, lo, hi);
    }
  } else {
    for (uint32_t id = 0; id < m->n; id++)
      if (urand() < p) roaring_bitmap_add(bm, id);
  }
  roaring_bitmap_add(bm, m->nblocks * WD_BLOCK + 5);
  roaring_bitmap_add(bm, 1u << 30);
  roaring_bitmap_add(bm, UINT32_MAX);
  return bm;
}

static int heaps_init(wd_topk *h, size_t nq, size_t k) {
  for (size_t i = 0; i < nq; i++)
    if (wd_topk_init(&h[i], k) != 0) return -1;
  return 0;
}
static void heaps_free(wd_topk *h, size_t nq) {
  for (size_t i = 0; i < nq; i++) wd_topk_free(&h[i]);
}

/* Compare one query's drained hits with the oracle.  exact: identical ids
 * and distances; otherwise distances agree position by position within
 * 1e-4 relative, and every returned id is allowed with a matching exact
 * distance. */
static void check_hits(const memsrc *m, int metric, const float *q,
                       const roaring_bitmap_t *allowed, wd_topk *t,
                       int exact) {
  ohit *o;
  size_t no = oracle(m, metric, q, allowed, &o);
  size_t want = no < t->k ? no : t->k;
  wd_hit_i *got = malloc((t->n + 1) * sizeof *got);
  assert_non_null(got);
  size_t n = wd_topk_drain_sorted(t, got);
  assert_int_equal(n, want);
  for (size_t i = 0; i < n; i++) {
    assert_true(roaring_bitmap_contains(allowed, got[i].id));
    assert_true(exists(m, got[i].id));
    for (size_t j = 0; j < i; j++) assert_true(got[j].id != got[i].id);
    if (exact) {
      assert_int_equal(got[i].id, o[i].id);
      assert_true((double)got[i].dist == o[i].dist);
      continue;
    }
    double tol = 1e-4 * (fabs(o[i].dist) + 1.0);
    double own = oracle_dist(m, metric, q, got[i].id);
    if (fabs(got[i].dist - o[i].dist) > tol || fabs(got[i].dist - own) > tol)
      fprintf(stderr, "metric %d pos %zu: got id %u %.7g (exact %.7g), "
              "oracle id %u %.7g\n", metric, i, got[i].id, got[i].dist, own,
              o[i].id, o[i].dist);
    assert_true(fabs(got[i].dist - o[i].dist) <= tol);
    assert_true(fabs(got[i].dist - own) <= tol);
  }
  free(got);
  free(o);
}

/* Number of existing blocks holding at least one allowed id. */
static uint64_t blocks_touched(const memsrc *m, const roaring_bitmap_t *bm,
                               uint64_t *ids) {
  uint64_t nb = 0, ni = 0;
  for (uint32_t b = 0; b < m->nblocks; b++) {
    uint64_t c = 0;
    for (uint32_t r = 0; r < WD_BLOCK; r++)
      if (exists(m, b * WD_BLOCK + r) &&
          roaring_bitmap_contains(bm, b * WD_BLOCK + r))
        c++;
    nb += c > 0;
    ni += c;
  }
  *ids = ni;
  return nb;
}

/* ---- tests ---------------------------------------------------------- */

static void test_random_vs_oracle(void **st) {
  (void)st;
  static const double dens[] = {0.001, 0.01, 0.05, 0.2, 0.5, 0.9, 1.0, -1};
  static const size_t dims[] = {1, 3, 16, 17, 64, 100, 385};
  static const size_t ks[] = {1, 10, 50, 100000};
  int reps = quick() ? 1 : 3;
  for (int rep = 0; rep < reps; rep++)
    for (int metric = 0; metric < 3; metric++) {
      memsrc m;
      size_t dim = dims[rnd() % (sizeof dims / sizeof dims[0])];
      mem_build(&m, 1500 + (uint32_t)(rnd() % 1500), dim, 0);
      if (rep == 1) m.missing = 2; /* a hole in the middle */
      for (size_t di = 0; di < sizeof dens / sizeof dens[0]; di++) {
        roaring_bitmap_t *bm =
            make_allowed(&m, dens[di] < 0 ? 0 : dens[di], dens[di] < 0);
        for (size_t nq = 1; nq <= 7; nq += 6) {
          size_t k = ks[rnd() % (sizeof ks / sizeof ks[0])];
          float *q = malloc(nq * dim * sizeof *q);
          wd_topk heaps[7];
          assert_non_null(q);
          make_queries(q, nq, dim, metric, 0);
          assert_int_equal(heaps_init(heaps, nq, k), 0);
          wd_vecsrc src = {dim, metric, mem_get_block, &m};
          wd_scan_stats stats;
          assert_int_equal(wd_scan_exact(&src, q, nq, bm, heaps, &stats), 0);
          uint64_t ids, nb = blocks_touched(&m, bm, &ids);
          assert_int_equal(stats.blocks, nb);
          if (nq == 1)
            assert_int_equal(stats.scanned, ids);
          else
            assert_true(stats.scanned >= ids * nq);
          if (dens[di] == 1.0) assert_int_equal(stats.path, nq == 1 ? 1 : 2);
          if (dens[di] == 0.001) assert_int_equal(stats.path, 0);
          for (size_t j = 0; j < nq; j++)
            check_hits(&m, metric, q + j * dim, bm, &heaps[j], 0);
          heaps_free(heaps, nq);
          free(q);
        }
        roaring_bitmap_free(bm);
      }
      mem_free(&m);
    }
}

/* Small integers: every dot product and squared distance is exact in
 * float, so results must equal the oracle exactly, ties included. */
static void test_exact_integers(void **st) {
  (void)st;
  static const size_t dims[] = {2, 5, 16, 33};
  static const double dens[] = {0.01, 0.3, 1.0, -1};
  for (int lv = WD_SIMD_SCALAR; lv <= WD_SIMD_AVX512; lv++) {
    if (wd_kernels_force(lv) != lv) continue;
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
      memsrc m;
      size_t dim = dims[di];
      mem_build(&m, 1200 + (uint32_t)(rnd() % 400), dim, 1);
      for (int metric = 1; metric <= 2; metric++) /* l2, ip */
        for (size_t pi = 0; pi < sizeof dens / sizeof dens[0]; pi++) {
          roaring_bitmap_t *bm =
              make_allowed(&m, dens[pi] < 0 ? 0 : dens[pi], dens[pi] < 0);
          for (size_t nq = 1; nq <= 7; nq += 6) {
            float q[7 * 33];
            wd_topk heaps[7];
            make_queries(q, nq, dim, metric, 1);
            assert_int_equal(heaps_init(heaps, nq, 1 + rnd() % 40), 0);
            wd_vecsrc src = {dim, metric, mem_get_block, &m};
            assert_int_equal(wd_scan_exact(&src, q, nq, bm, heaps, NULL), 0);
            for (size_t j = 0; j < nq; j++)
              check_hits(&m, metric, q + j * dim, bm, &heaps[j], 1);
            heaps_free(heaps, nq);
          }
          roaring_bitmap_free(bm);
        }
      mem_free(&m);
    }
  }
  wd_kernels_force(WD_SIMD_AVX512);
}

/* Batch L2 re-checks SGEMM candidates with the exact kernel, so it must
 * equal query-by-query scanning bit for bit. */
static void test_batch_l2_equals_single(void **st) {
  (void)st;
  memsrc m;
  size_t dim = 48, nq = 7, k = 20;
  mem_build(&m, 3000, dim, 0);
  /* near-duplicates of the queries make small distances, where the
   * ||q||^2 + ||x||^2 - 2qx expansion is least precise */
  float q[7 * 48];
  make_queries(q, nq, dim, WD_METRIC_L2, 0);
  for (size_t j = 0; j < nq; j++)
    for (int c = 0; c < 30; c++) {
      float *x = (float *)row_of(&m, (uint32_t)(rnd() % m.n));
      for (size_t i = 0; i < dim; i++)
        x[i] = q[j * dim + i] + (float)((urand() - 0.5) * 1e-3);
    }
  roaring_bitmap_t *bm = roaring_bitmap_create();
  roaring_bitmap_add_range(bm, 0, m.n);
  wd_vecsrc src = {dim, WD_METRIC_L2, mem_get_block, &m};
  wd_topk batch[7], one;
  assert_int_equal(heaps_init(batch, nq, k), 0);
  wd_scan_stats stats;
  assert_int_equal(wd_scan_exact(&src, q, nq, bm, batch, &stats), 0);
  assert_int_equal(stats.path, 2);
  for (size_t j = 0; j < nq; j++) {
    wd_hit_i a[20], b[20];
    assert_int_equal(wd_topk_init(&one, k), 0);
    assert_int_equal(wd_scan_exact(&src, q + j * dim, 1, bm, &one, NULL), 0);
    size_t na = wd_topk_drain_sorted(&batch[j], a);
    size_t nb = wd_topk_drain_sorted(&one, b);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
      assert_int_equal(a[i].id, b[i].id);
      assert_true(a[i].dist == b[i].dist);
    }
    wd_topk_free(&one);
  }
  heaps_free(batch, nq);
  roaring_bitmap_free(bm);
  mem_free(&m);
}

static void test_edges(void **st) {
  (void)st;
  memsrc m;
  mem_build(&m, 1000, 8, 0);
  wd_vecsrc src = {8, WD_METRIC_COSINE, mem_get_block, &m};
  float q[2 * 8];
  make_queries(q, 2, 8, WD_METRIC_COSINE, 0);
  wd_topk h[2];
  wd_scan_stats stats;

  /* empty bitmap: nothing scanned, nothing found */
  roaring_bitmap_t *empty = roaring_bitmap_create();
  assert_int_equal(heaps_init(h, 2, 5), 0);
  memset(&stats, 0xff, sizeof stats);
  assert_int_equal(wd_scan_exact(&src, q, 2, empty, h, &stats), 0);
  assert_int_equal(stats.scanned, 0);
  assert_int_equal(stats.blocks, 0);
  assert_int_equal(h[0].n, 0);
  assert_int_equal(h[1].n, 0);

  /* only ids beyond the last block: skipped */
  roaring_bitmap_t *far = roaring_bitmap_create();
  roaring_bitmap_add_range(far, 4 * WD_BLOCK, 4 * WD_BLOCK + 600);
  roaring_bitmap_add(far, UINT32_MAX);
  assert_int_equal(wd_scan_exact(&src, q, 2, far, h, &stats), 0);
  assert_int_equal(stats.blocks, 0);
  assert_int_equal(h[0].n, 0);

  /* get_block errors propagate; stats are not written on failure */
  roaring_bitmap_t *all = roaring_bitmap_create();
  roaring_bitmap_add_range(all, 0, 1000);
  m.err_at = 2;
  m.err_code = -42;
  memset(&stats, 0xab, sizeof stats);
  assert_int_equal(wd_scan_exact(&src, q, 1, all, h, &stats), -42);
  assert_int_equal(stats.blocks, 0xababababababababull);
  assert_int_equal(wd_scan_exact(&src, q, 2, all, h, NULL), -42);
  m.err_at = UINT32_MAX;

  /* nq == 0 is a no-op */
  assert_int_equal(wd_scan_exact(&src, q, 0, all, h, NULL), 0);

  heaps_free(h, 2);
  roaring_bitmap_free(empty);
  roaring_bitmap_free(far);
  roaring_bitmap_free(all);
  mem_free(&m);
}

/* ---- allocation failure -------------------------------------------- */

static int fail_after; /* allocations left before failing; <0: never */
static void *fail_malloc(void *ctx, size_t n) {
  (void)ctx;
  if (fail_after == 0) return NULL;
  if (fail_after > 0) fail_after--;
  return malloc(n);
}
static void *fail_realloc(void *ctx, void *p, size_t n) {
  (void)ctx;
  if (fail_after == 0) return NULL;
  if (fail_after > 0) fail_after--;
  return realloc(p, n);
}
static void fail_free(void *ctx, void *p) {
  (void)ctx;
  free(p);
}

static void test_alloc_failure(void **st) {
  (void)st;
  memsrc m;
  mem_build(&m, 700, 4, 0);
  wd_vecsrc src = {4, WD_METRIC_L2, mem_get_block, &m};
  float q[3 * 4];
  make_queries(q, 3, 4, WD_METRIC_L2, 0);
  roaring_bitmap_t *all = roaring_bitmap_create();
  roaring_bitmap_add_range(all, 0, 700);
  wd_topk h[3];
  assert_int_equal(heaps_init(h, 3, 4), 0);
  warden_allocator a = {fail_malloc, fail_realloc, fail_free, NULL};
  warden_set_allocator(&a);
  int ok = 0;
  for (int n = 0; n < 20 && !ok; n++) {
    fail_after = n;
    int rc = wd_scan_exact(&src, q, 3, all, h, NULL);
    assert_true(rc == 0 || rc == -1);
    ok = rc == 0;
  }
  warden_set_allocator(NULL);
  assert_true(ok); /* a finite number of allocations suffices */
  heaps_free(h, 3);
  roaring_bitmap_free(all);
  mem_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_edges),
      cmocka_unit_test(test_alloc_failure),
      cmocka_unit_test(test_exact_integers),
      cmocka_unit_test(test_batch_l2_equals_single),
      cmocka_unit_test(test_random_vs_oracle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
