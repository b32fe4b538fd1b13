/*
 * test_hnsw.c -- the filter-aware graph index (index/hnsw.c) at module
 * level: recall@10 against a brute-force oracle at several selectivities
 * with the effort the build-time calibration chose (wd_hnsw_plan at
 * target 0.95), on five data families the bench does not have (clustered,
 * low intrinsic dimension, near-duplicate clusters, heavy-tailed norms
 * (L2), high-dimensional near-uniform); zero leaks (never a disallowed
 * slot) in both traversal modes; incremental insert; the file refused
 * when damaged (bit flip, truncation, foreign dimension).
 *
 * The oracle is a double-precision brute force written here.
 * WARDEN_TEST_QUICK shrinks the collections.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hnsw.h"
#include "ivf.h"
#include "scan.h"
#include "wd_alloc.h"
#include "wd_types.h"

#define K 10

static int quick(void) { return getenv("WARDEN_TEST_QUICK") != NULL; }

static uint64_t rs;
static uint64_t rnd(void) {
  rs ^= rs >> 12;
  rs ^= rs << 25;
  rs ^= rs >> 27;
  return rs * 2685821657736338717ull;
}
static double unif(void) { return (rnd() >> 11) * (1.0 / 9007199254740992.0); }
static double gauss(void) {
  double u = unif(), v = unif();
  if (u < 1e-300) u = 1e-300;
  return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* ------------------------------------------------------ data families */

enum { F_CLUSTER, F_LOWDIM, F_NEARDUP, F_HEAVY, F_UNIFORM, NFAM };
static const char *fam_name[] = {"clustered", "low-intrinsic-dim", "near-duplicates",
                                 "heavy-tailed-norms", "near-uniform"};

/* n vectors of dimension d of family f into x (row-major). */
static void gen(int f, float *x, size_t n, size_t d, uint64_t seed) {
  rs = seed * 0x9e3779b97f4a7c15ull + 1;
  size_t nc = 48, r = 4;
  float *cent = malloc(nc * d * sizeof *cent), *basis = malloc(r * d * sizeof *basis);
  for (size_t i = 0; i < nc * d; i++) cent[i] = (float)gauss();
  for (size_t i = 0; i < r * d; i++) basis[i] = (float)gauss();
  for (size_t i = 0; i < n; i++) {
    float *y = x + i * d;
    if (f == F_CLUSTER) {
      size_t c = rnd() % nc;
      for (size_t j = 0; j < d; j++) y[j] = cent[c * d + j] + (float)(0.4 * gauss());
    } else if (f == F_LOWDIM) {
      /* a 4-d manifold (curved) embedded in d dimensions */
      double t[4];
      for (size_t a = 0; a < r; a++) t[a] = 2 * unif() - 1;
      for (size_t j = 0; j < d; j++) {
        double v = 0;
        for (size_t a = 0; a < r; a++) v += basis[a * d + j] * sin(1.7 * t[a] + 0.3 * (double)j);
        y[j] = (float)(v + 0.01 * gauss());
      }
    } else if (f == F_NEARDUP) {
      /* few tight groups of near-copies: distances inside a group tiny */
      size_t c = rnd() % (n / 20 + 1);
      uint64_t save = rs;
      rs = c * 0x2545F4914F6CDD1Dull + 7;
      for (size_t j = 0; j < d; j++) y[j] = (float)gauss();
      rs = save;
      for (size_t j = 0; j < d; j++) y[j] += (float)(0.02 * gauss());
    } else if (f == F_HEAVY) {
      size_t c = rnd() % nc;
      double scale = exp(1.5 * gauss()); /* log-normal norms */
      for (size_t j = 0; j < d; j++)
        y[j] = (float)(scale * (cent[c * d + j] + 0.5 * gauss()));
    } else {
      for (size_t j = 0; j < d; j++) y[j] = (float)(2 * unif() - 1);
    }
  }
  free(cent);
  free(basis);
}

/* --------------------------------------------------------- vecsrc */

typedef struct mem {
  size_t n, d;
  float **blocks;
  size_t nb;
} mem;

static int mem_get(void *ctx, uint32_t b, const float **base) {
  mem *m = ctx;
  if (b >= m->nb) return 1;
  *base = m->blocks[b];
  return 0;
}

static void mem_make(mem *m, const float *x, size_t n, size_t d) {
  m->n = n;
  m->d = d;
  m->nb = (n + WD_BLOCK - 1) / WD_BLOCK;
  m->blocks = calloc(m->nb, sizeof *m->blocks);
  for (size_t b = 0; b < m->nb; b++) {
    float *blk = calloc(WD_BLOCK + WD_BLOCK * d, sizeof *blk);
    for (size_t r = 0; r < WD_BLOCK && b * WD_BLOCK + r < n; r++) {
      const float *v = x + (b * WD_BLOCK + r) * d;
      double n2 = 0;
      for (size_t j = 0; j < d; j++) n2 += (double)v[j] * v[j];
      blk[r] = n2 > 0 ? (float)(1 / sqrt(n2)) : 0;
      memcpy(blk + WD_BLOCK + r * d, v, d * sizeof *v);
    }
    m->blocks[b] = blk;
  }
}

static void mem_free(mem *m) {
  for (size_t b = 0; b < m->nb; b++) free(m->blocks[b]);
  free(m->blocks);
}

/* --------------------------------------------------------- oracle */

static double score(int metric, const float *q, const float *x, size_t d) {
  double s = 0, xn = 0, qn = 0;
  for (size_t j = 0; j < d; j++) {
    if (metric == WD_METRIC_L2)
      s += ((double)q[j] - x[j]) * ((double)q[j] - x[j]);
    else
      s -= (double)q[j] * x[j];
    xn += (double)x[j] * x[j];
    qn += (double)q[j] * q[j];
  }
  if (metric == WD_METRIC_COSINE && xn > 0 && qn > 0) s /= sqrt(xn) * sqrt(qn);
  return s; /* lower is better */
}

static size_t oracle(int metric, const float *x, size_t n, size_t d, const unsigned char *ok,
                     const float *q, uint32_t *out) {
  double best[K];
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (!ok[i]) continue;
    double s = score(metric, q, x + i * d, d);
    if (m < K) {
      size_t p = m++;
      while (p > 0 && best[p - 1] > s) best[p] = best[p - 1], out[p] = out[p - 1], p--;
      best[p] = s, out[p] = (uint32_t)i;
    } else if (s < best[K - 1]) {
      size_t p = K - 1;
      while (p > 0 && best[p - 1] > s) best[p] = best[p - 1], out[p] = out[p - 1], p--;
      best[p] = s, out[p] = (uint32_t)i;
    }
  }
  return m;
}

/* ------------------------------------------------------- helpers */

static const double SELS[] = {1.0, 0.3, 0.1, 0.03, 0.01};

typedef struct built {
  mem m;
  wd_vecsrc src;
  void *img;
  size_t len;
  wd_hnsw g;
  roaring_bitmap_t *live;
} built;

/* Build threads.  The families' recall checks build with one thread: a
 * parallel build inserts in a different order each run, and near the
 * target (near-duplicates at 10 % in quick mode) the calibration then
 * declined the graph in one run of two -- a test must not depend on the
 * scheduler.  The other tests build on two threads. */
static int g_threads = 2;

static void on_progress(void *ctx, uint64_t done, uint64_t total) {
  uint64_t *p = ctx; /* first done, last done, total */
  if (p[0] == UINT64_MAX) p[0] = done;
  assert_true(done >= p[1]);
  p[1] = done;
  p[2] = total;
}

static void build(built *b, const float *x, size_t n, size_t d, int metric, size_t nbuild) {
  memset(b, 0, sizeof *b);
  mem_make(&b->m, x, n, d);
  b->src = (wd_vecsrc){d, metric, mem_get, &b->m};
  uint32_t *slots = malloc(n * sizeof *slots);
  for (size_t i = 0; i < n; i++) slots[i] = (uint32_t)i;
  char why[300] = "";
  wd_hnsw_build_in in = {&b->src, slots, nbuild, NULL, 7, n, 0, 0, g_threads, 99, NULL, NULL};
  int rc = wd_hnsw_build(&in, &b->img, &b->len, why, sizeof why);
  if (rc) fprintf(stderr, "build: %d %s\n", rc, why);
  assert_int_equal(rc, 0);
  if (nbuild < n) { /* incremental insert of the rest */
    wd_hnsw old;
    assert_int_equal(wd_hnsw_open_image(b->img, b->len, d, metric, &old, why, sizeof why), 0);
    /* progress of an extension counts the new nodes only, 0 to n - nbuild */
    uint64_t prog[3] = {UINT64_MAX, 0, 0}; /* first done, last done, total */
    wd_hnsw_build_in in2 = {&b->src, slots + nbuild, n - nbuild, &old, 8, n, 0, 0, g_threads, 99,
                            on_progress, prog};
    void *img2 = NULL;
    size_t len2 = 0;
    assert_int_equal(wd_hnsw_build(&in2, &img2, &len2, why, sizeof why), 0);
    assert_int_equal(prog[0], 0);
    assert_int_equal(prog[1], n - nbuild);
    assert_int_equal(prog[2], n - nbuild);
    wd_hnsw_close(&old);
    wd_free(b->img);
    b->img = img2;
    b->len = len2;
  }
  free(slots);
  b->live = roaring_bitmap_from_range(0, n, 1);
  assert_int_equal(wd_hnsw_open_image(b->img, b->len, d, metric, &b->g, why, sizeof why), 0);
  wd_hnsw_close(&b->g);
  int nc = wd_hnsw_calibrate_image(&b->img, &b->len, &b->src, b->live, 4242, 0, why, sizeof why);
  assert_true(nc > 0);
  assert_int_equal(wd_hnsw_open_image(b->img, b->len, d, metric, &b->g, why, sizeof why), 0);
  assert_int_equal(b->g.ncal, (size_t)nc);
}

static void unbuild(built *b) {
  wd_hnsw_close(&b->g);
  wd_free(b->img);
  roaring_bitmap_free(b->live);
  mem_free(&b->m);
}

/* A fresh query into q: a data point moved toward another (unit for
 * cosine), drawn from rnd(). */
static void fresh_query(const float *x, size_t n, size_t d, int metric, float *q) {
  size_t a = rnd() % n, c = rnd() % n;
  double n2 = 0;
  for (size_t j = 0; j < d; j++) {
    q[j] = (float)(0.8 * x[a * d + j] + 0.2 * x[c * d + j]);
    n2 += (double)q[j] * q[j];
  }
  if (metric == WD_METRIC_COSINE)
    for (size_t j = 0; j < d; j++) q[j] = (float)(q[j] / sqrt(n2));
}

/* Mean recall@10 of nq queries at selectivity sel; corr: 0 random, 1
 * correlated (allowed = the half-space around the first query),
 * checks that no disallowed slot is ever returned.  Planned with
 * wd_hnsw_plan at target; returns -1 when the plan declines (the
 * planner then answers exactly). */
static double recall_at(built *b, const float *x, size_t n, size_t d, int metric, double sel,
                        double target, size_t nq, uint64_t seed, int force_mode, size_t *ef_out) {
  unsigned char *ok = calloc(n, 1);
  roaring_bitmap_t *al = roaring_bitmap_create();
  rs = seed;
  for (size_t i = 0; i < n; i++)
    if (unif() < sel) ok[i] = 1, roaring_bitmap_add(al, (uint32_t)i);
  size_t na = roaring_bitmap_get_cardinality(al);
  size_t ef = 0;
  int two = 0;
  double nd = 0, nl = 0, nh = 0;
  int planned = wd_hnsw_plan(&b->g, na ? (double)na / (double)n : 0, target, K, 0.5, &ef, &two,
                             &nd, &nl, &nh);
  /* every calibration point records its mean hops, at least one */
  assert_true(b->g.cal_hops);
  if (planned) assert_true(nh >= 1);
  if (force_mode >= 0) {
    planned = 1;
    two = force_mode;
    ef = 128;
  }
  if (ef_out) *ef_out = ef;
  if (!planned || na < K) {
    free(ok);
    roaring_bitmap_free(al);
    return -1;
  }
  uint64_t nbits = 0;
  uint64_t *bits = wd_ivf_bits(al, &nbits);
  double rsum = 0;
  float *q = malloc(d * sizeof *q), *tmp = malloc(d * sizeof *tmp);
  for (size_t t = 0; t < nq; t++) {
    fresh_query(x, n, d, metric, q);
    uint32_t truth[K];
    size_t nt = oracle(metric, x, n, d, ok, q, truth);
    wd_topk h;
    assert_int_equal(wd_topk_init(&h, K), 0);
    wd_hnsw_params p = {ef, two, ef, t % 2 ? bits : NULL, t % 2 ? nbits : 0, 0, 0};
    wd_hnsw_stats st;
    assert_int_equal(wd_hnsw_search(&b->g, q, t % 2 ? NULL : al, &p, &b->src, &h, &st), 0);
    wd_hit_i res[K];
    size_t m = wd_topk_drain_sorted(&h, res);
    wd_topk_free(&h);
    size_t hit = 0;
    for (size_t i = 0; i < m; i++) {
      assert_true(res[i].id < n);
      assert_true(ok[res[i].id]); /* never a disallowed slot */
      for (size_t j = 0; j < nt; j++) hit += truth[j] == res[i].id;
    }
    rsum += nt ? (double)hit / (double)nt : 1;
  }
  free(q);
  free(tmp);
  wd_free(bits);
  free(ok);
  roaring_bitmap_free(al);
  return rsum / (double)nq;
}

/* ----------------------------------------------------------- tests */

static void family(int f, int metric, size_t d) {
  size_t n = quick() ? 3000 : 8000, nq = quick() ? 60 : 150;
  float *x = malloc(n * d * sizeof *x);
  gen(f, x, n, d, 11 + (uint64_t)f);
  built b;
  g_threads = 1;
  build(&b, x, n, d, metric, n);
  g_threads = 2;
  for (size_t s = 0; s < 5; s++) {
    size_t ef = 0;
    double r = recall_at(&b, x, n, d, metric, SELS[s], 0.95, nq, 1000 + s, -1, &ef);
    fprintf(stderr, "  %-20s sel %5.3f ef %3zu recall %s%.3f\n", fam_name[f], SELS[s], ef,
            r < 0 ? "(exact) " : "", r < 0 ? 1.0 : r);
    if (r >= 0) assert_true(r >= 0.95);
    /* dense filters must be answerable by the graph -- except near-uniform
     * high-dimensional data, where on a small collection (quick mode, 3,000
     * vectors) no efSearch reaches the target for fewer distances than half
     * the collection, and the planner rightly answers exactly */
    if (SELS[s] >= 0.1 && f != F_UNIFORM) assert_true(r >= 0);
  }
  unbuild(&b);
  free(x);
}

static void test_clustered(void **st) {
  (void)st;
  family(F_CLUSTER, WD_METRIC_COSINE, 48);
}
static void test_lowdim(void **st) {
  (void)st;
  family(F_LOWDIM, WD_METRIC_L2, 64);
}
static void test_neardup(void **st) {
  (void)st;
  family(F_NEARDUP, WD_METRIC_COSINE, 64);
}
static void test_heavy(void **st) {
  (void)st;
  family(F_HEAVY, WD_METRIC_L2, 48);
}
static void test_uniform(void **st) {
  (void)st;
  family(F_UNIFORM, WD_METRIC_IP, 96);
}

/* Both traversal modes at every selectivity: no disallowed slot, ever
 * (recall_at asserts it per hit), including the entry point's. */
static void test_no_leaks(void **st) {
  (void)st;
  size_t n = 2000, d = 24;
  float *x = malloc(n * d * sizeof *x);
  gen(F_CLUSTER, x, n, d, 5);
  built b;
  build(&b, x, n, d, WD_METRIC_COSINE, n);
  const double sels[] = {0.5, 0.05, 0.005, 0.001};
  for (int mode = 0; mode < 2; mode++)
    for (size_t s = 0; s < 4; s++) recall_at(&b, x, n, d, WD_METRIC_COSINE, sels[s], 0.95, 40, 77 + s, mode, NULL);
  unbuild(&b);
  free(x);
}

/* Half the nodes built, the other half inserted into the existing graph:
 * the recall holds. */
static void test_incremental(void **st) {
  (void)st;
  size_t n = quick() ? 3000 : 6000, d = 32;
  float *x = malloc(n * d * sizeof *x);
  gen(F_CLUSTER, x, n, d, 9);
  built b;
  build(&b, x, n, d, WD_METRIC_L2, n / 2);
  assert_int_equal(b.g.n, n);
  for (size_t s = 0; s < 3; s++) {
    double r = recall_at(&b, x, n, d, WD_METRIC_L2, SELS[s], 0.95, 80, 300 + s, -1, NULL);
    fprintf(stderr, "  incremental sel %.2f recall %.3f\n", SELS[s], r);
    assert_true(r >= 0.95);
  }
  unbuild(&b);
  free(x);
}

/* The brute-force code scan (wd_hnsw_scan_codes) on every family: a
 * graph over a subset of the slots (every 7th skipped, and the last 10 %
 * never inserted, so the slot -> node merge is exercised and allowed
 * holds slots the graph does not have), random allowed sets from 30 % to
 * 0.3 %.  Never a slot outside allowed or outside the graph; with a
 * re-rank of every candidate it is the exact answer over allowed and the
 * graph's slots; with the planner's re-rank (40 at k = 10) recall@10 >=
 * 0.95 wherever the build kept the code walk (the planner does not use
 * the codes where it chose the float walk). */
static void test_scan_codes(void **st) {
  (void)st;
  static const int metrics[] = {WD_METRIC_COSINE, WD_METRIC_L2, WD_METRIC_COSINE, WD_METRIC_L2,
                                WD_METRIC_IP};
  const double sels[] = {0.3, 0.03, 0.003};
  for (int f = 0; f < 5; f++) {
    size_t n = quick() ? 2500 : 6000, d = 40, nq = quick() ? 20 : 50;
    int metric = metrics[f];
    float *x = malloc(n * d * sizeof *x);
    gen(f, x, n, d, 500 + (uint64_t)f);
    mem m;
    mem_make(&m, x, n, d);
    wd_vecsrc src = {d, metric, mem_get, &m};
    uint32_t *slots = malloc(n * sizeof *slots);
    unsigned char *ing = calloc(n, 1);
    size_t ns = 0;
    for (size_t i = 0; i < n * 9 / 10; i++)
      if (i % 7 != 3) slots[ns++] = (uint32_t)i, ing[i] = 1;
    char why[300] = "";
    void *img = NULL;
    size_t len = 0;
    /* one build thread: the float-walk decision depends on the graph, and a
     * parallel build differs run to run (g_threads above) */
    wd_hnsw_build_in in = {&src, slots, ns, NULL, 7, n, 0, 0, 1, 99, NULL, NULL};
    assert_int_equal(wd_hnsw_build(&in, &img, &len, why, sizeof why), 0);
    roaring_bitmap_t *live = roaring_bitmap_from_range(0, n, 1);
    assert_true(wd_hnsw_calibrate_image(&img, &len, &src, live, 4242, 0, why, sizeof why) > 0);
    wd_hnsw g;
    assert_int_equal(wd_hnsw_open_image(img, len, d, metric, &g, why, sizeof why), 0);
    assert_false(g.ident);
    int float_walk = (g.h.flags & WD_HNSW_FLOAT_WALK) != 0;
    float *q = malloc(d * sizeof *q);
    for (size_t s = 0; s < 3; s++) {
      unsigned char *ok = calloc(n, 1), *okg = calloc(n, 1);
      roaring_bitmap_t *al = roaring_bitmap_create();
      rs = 900 + s + 10 * (uint64_t)f;
      for (size_t i = 0; i < n; i++)
        if (unif() < sels[s]) ok[i] = 1, okg[i] = ing[i], roaring_bitmap_add(al, (uint32_t)i);
      double rsum = 0;
      for (size_t t = 0; t < nq; t++) {
        fresh_query(x, n, d, metric, q);
        uint32_t truth[K];
        size_t nt = oracle(metric, x, n, d, okg, q, truth);
        for (int full = 0; full < 2; full++) {
          wd_topk h;
          assert_int_equal(wd_topk_init(&h, K), 0);
          wd_hnsw_stats hs;
          assert_int_equal(wd_hnsw_scan_codes(&g, q, al, full ? n : 40, &src, &h, &hs), 0);
          wd_hit_i res[K];
          size_t mm = wd_topk_drain_sorted(&h, res);
          wd_topk_free(&h);
          assert_int_equal(mm, nt); /* never short: every allowed node is scored */
          size_t hit = 0;
          for (size_t i = 0; i < mm; i++) {
            assert_true(res[i].id < n);
            assert_true(ok[res[i].id]);  /* never a disallowed slot */
            assert_true(ing[res[i].id]); /* nor one the graph does not hold */
            for (size_t j = 0; j < nt; j++) hit += truth[j] == res[i].id;
          }
          if (full) /* every candidate re-ranked in float: the exact answer (ties aside) */
            assert_true(hit + 1 >= nt);
          else
            rsum += nt ? (double)hit / (double)nt : 1;
        }
      }
      double r = rsum / (double)nq;
      fprintf(stderr, "  codes %-20s sel %5.3f recall %.3f%s\n", fam_name[f], sels[s], r,
              float_walk ? " (float walk: not planned)" : "");
      if (!float_walk) assert_true(r >= 0.95);
      free(ok);
      free(okg);
      roaring_bitmap_free(al);
    }
    free(q);
    wd_hnsw_close(&g);
    wd_free(img);
    roaring_bitmap_free(live);
    free(slots);
    free(ing);
    mem_free(&m);
    free(x);
  }
}

/* wd_hnsw_local_density sees a filter's overlap with the query's region:
 * with the 2 % of the collection nearest to a query allowed (correlated)
 * the share where its walk starts is far above 2 %, with the 2 % farthest
 * (anti-correlated) it is near 0, and with a random 2 % it stays near 2 %.
 * The oracle is the brute-force ranking written here. */
static int cmp_dbl_idx(const void *a, const void *b) {
  const double *x = a, *y = b;
  return (x[0] > y[0]) - (x[0] < y[0]);
}

/* Files written before the calibration recorded hops (two_hop 0 or 1):
 * they open without the hop price (cal_hops 0), plan the same setting,
 * and report 0 hops; a file with hops reports its recorded ones. */
static void test_cal_without_hops(void **st) {
  (void)st;
  size_t n = 2000, d = 24;
  float *x = malloc(n * d * sizeof *x);
  gen(F_CLUSTER, x, n, d, 77);
  built b;
  g_threads = 1;
  build(&b, x, n, d, WD_METRIC_L2, n);
  g_threads = 2;
  assert_true(b.g.cal_hops);
  size_t nc = b.g.ncal, ef1 = 0, ef0 = 0;
  int two1 = 0, two0 = 0;
  double nd1 = 0, nl1 = 0, nh1 = 0, nd0 = 0, nl0 = 0, nh0 = -1;
  assert_int_equal(wd_hnsw_plan(&b.g, 1.0, 0.9, K, 0.5, &ef1, &two1, &nd1, &nl1, &nh1), 1);
  assert_true(nh1 >= 1);
  wd_hnsw_cal *old = malloc(nc * sizeof *old);
  memcpy(old, b.g.cal, nc * sizeof *old);
  for (size_t i = 0; i < nc; i++) old[i].two_hop &= 1u; /* as written before hops */
  void *img = wd_malloc(b.len);
  memcpy(img, b.img, b.len);
  size_t len = b.len;
  img = wd_hnsw_set_cal(img, &len, old, nc, b.g.h.flags);
  assert_non_null(img);
  wd_hnsw g;
  char why[300];
  assert_int_equal(wd_hnsw_open_image(img, len, d, WD_METRIC_L2, &g, why, sizeof why), 0);
  assert_false(g.cal_hops);
  assert_int_equal(wd_hnsw_plan(&g, 1.0, 0.9, K, 0.5, &ef0, &two0, &nd0, &nl0, &nh0), 1);
  assert_int_equal(ef0, ef1);
  assert_int_equal(two0, two1);
  assert_true(nd0 == nd1);
  assert_true(nh0 == 0);
  wd_hnsw_close(&g);
  wd_free(img);
  free(old);
  unbuild(&b);
  free(x);
}

/* The calibration's walks run on threads (index/hnsw.c calw): the points
 * must be the same bits for one thread and for three, on both metrics. */
static void test_calibration_threads(void **st) {
  (void)st;
  size_t n = quick() ? 2000 : 5000, d = 24;
  float *x = malloc(n * d * sizeof *x);
  for (int metric = 0; metric < 2; metric++) {
    int m = metric ? WD_METRIC_COSINE : WD_METRIC_L2;
    gen(metric ? F_CLUSTER : F_HEAVY, x, n, d, 31 + metric);
    built b;
    g_threads = 1;
    build(&b, x, n, d, m, n);
    g_threads = 2;
    static const double sels[] = {1.0, 0.3, 0.05};
    wd_hnsw_cal c1[256], c3[256];
    memset(c1, 0, sizeof c1);
    memset(c3, 0, sizeof c3);
    int n1 = wd_hnsw_calibrate(&b.g, &b.src, b.live, sels, 3, 60, c1, 256, 77, 1);
    int n3 = wd_hnsw_calibrate(&b.g, &b.src, b.live, sels, 3, 60, c3, 256, 77, 3);
    assert_true(n1 >= 3); /* one per selectivity and mode at least; few when small data saturate early */
    assert_int_equal(n1, n3);
    assert_memory_equal(c1, c3, (size_t)n1 * sizeof *c1);
    unbuild(&b);
  }
  free(x);
}

static void test_local_density(void **st) {
  (void)st;
  size_t n = quick() ? 3000 : 8000, d = 32, nq = 20;
  float *x = malloc(n * d * sizeof *x), *q = malloc(d * sizeof *q);
  gen(F_CLUSTER, x, n, d, 21);
  built b;
  g_threads = 1;
  build(&b, x, n, d, WD_METRIC_L2, n);
  g_threads = 2;
  double *rank = malloc(2 * n * sizeof *rank);
  uint64_t nw = (n + 63) / 64, *bits = calloc(nw, sizeof *bits);
  size_t share = n / 50; /* 2 % */
  double sum[3] = {0, 0, 0};
  rs = 4242;
  for (size_t t = 0; t < nq; t++) {
    fresh_query(x, n, d, WD_METRIC_L2, q);
    for (size_t i = 0; i < n; i++) {
      rank[2 * i] = score(WD_METRIC_L2, q, x + i * d, d);
      rank[2 * i + 1] = (double)i;
    }
    qsort(rank, n, 2 * sizeof *rank, cmp_dbl_idx);
    for (int kind = 0; kind < 3; kind++) {
      memset(bits, 0, nw * sizeof *bits);
      for (size_t r = 0; r < share; r++) {
        size_t i = kind == 0   ? (size_t)rank[2 * r + 1]             /* nearest */
                   : kind == 1 ? (size_t)rank[2 * (n - 1 - r) + 1] /* farthest */
                               : (size_t)(rnd() % n);              /* random */
        bits[i >> 6] |= 1ull << (i & 63);
      }
      uint64_t nd = 0;
      double ld = wd_hnsw_local_density(&b.g, q, bits, n, &nd);
      assert_true(ld >= 0 && ld <= 1);
      assert_true(nd > 0);
      sum[kind] += ld;
    }
  }
  double corr = sum[0] / nq, anti = sum[1] / nq, unc = sum[2] / nq;
  fprintf(stderr, "  local density at 2 %%: correlated %.3f anti %.3f random %.3f\n", corr, anti,
          unc);
  assert_true(corr > 0.2);   /* 10x the global share */
  assert_true(anti < 0.005); /* a quarter of it */
  assert_true(unc > 0.005 && unc < 0.06);
  free(bits);
  free(rank);
  free(q);
  unbuild(&b);
  free(x);
}

/* A damaged image is refused: any flipped byte (checksums), truncation,
 * another dimension or metric; a corrupt neighbour id with valid
 * checksums (structure check). */
static void test_damaged(void **st) {
  (void)st;
  size_t n = 1500, d = 16;
  float *x = malloc(n * d * sizeof *x);
  gen(F_CLUSTER, x, n, d, 3);
  built b;
  build(&b, x, n, d, WD_METRIC_COSINE, n);
  char why[300];
  wd_hnsw g;
  unsigned char *c = malloc(b.len);
  for (size_t t = 0; t < 40; t++) {
    memcpy(c, b.img, b.len);
    size_t at = (size_t)(rnd() % b.len);
    c[at] ^= (unsigned char)(1u << (rnd() % 8));
    int rc = wd_hnsw_open_image(c, b.len, d, WD_METRIC_COSINE, &g, why, sizeof why);
    assert_true(rc == 2 || rc == 3);
  }
  assert_int_equal(wd_hnsw_open_image(b.img, b.len - 64, d, WD_METRIC_COSINE, &g, why, sizeof why), 2);
  assert_int_equal(wd_hnsw_open_image(b.img, 100, d, WD_METRIC_COSINE, &g, why, sizeof why), 2);
  assert_int_equal(wd_hnsw_open_image(b.img, b.len, d + 1, WD_METRIC_COSINE, &g, why, sizeof why), 3);
  assert_int_equal(wd_hnsw_open_image(b.img, b.len, d, WD_METRIC_L2, &g, why, sizeof why), 3);
  /* a neighbour id out of range, resealed: only the structure check sees it */
  memcpy(c, b.img, b.len);
  wd_hnsw_header *h = (wd_hnsw_header *)c;
  size_t off = (size_t)((const char *)b.g.nb0 - (const char *)b.img);
  uint32_t *li = (uint32_t *)(c + off);
  li[0] = 1;
  li[1] = (uint32_t)n + 5;
  h->body_sum = wd_ivf_checksum(c + WD_HNSW_HDR, h->body_len);
  h->hdr_sum = wd_ivf_checksum(c, offsetof(wd_hnsw_header, hdr_sum));
  assert_int_equal(wd_hnsw_open_image(c, b.len, d, WD_METRIC_COSINE, &g, why, sizeof why), 2);
  assert_non_null(strstr(why, "inconsistent"));
  /* the file path: written atomically, read back, then damaged on disk */
  char path[] = "/tmp/wd_hnsw_test_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(wd_ivf_write_file(path, b.img, b.len, why, sizeof why), 0);
  assert_int_equal(wd_hnsw_open_file(path, d, WD_METRIC_COSINE, &g, why, sizeof why), 0);
  wd_hnsw_close(&g);
  FILE *f = fopen(path, "r+b");
  fseek(f, (long)(b.len / 2), SEEK_SET);
  fputc(0x5a ^ ((unsigned char *)b.img)[b.len / 2], f);
  fclose(f);
  assert_int_equal(wd_hnsw_open_file(path, d, WD_METRIC_COSINE, &g, why, sizeof why), 2);
  unlink(path);
  assert_int_equal(wd_hnsw_open_file(path, d, WD_METRIC_COSINE, &g, why, sizeof why), 1);
  free(c);
  unbuild(&b);
  free(x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_clustered),  cmocka_unit_test(test_lowdim),
      cmocka_unit_test(test_neardup),    cmocka_unit_test(test_heavy),
      cmocka_unit_test(test_uniform),    cmocka_unit_test(test_no_leaks),
      cmocka_unit_test(test_incremental), cmocka_unit_test(test_damaged),
      cmocka_unit_test(test_local_density), cmocka_unit_test(test_calibration_threads),
      cmocka_unit_test(test_scan_codes), cmocka_unit_test(test_cal_without_hops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
