/*
 * test_ann.c -- the ANN index: planner decisions, IVF recall against a
 * brute-force oracle at every selectivity (module level, flat and SQ8, and
 * through warden_query), zero leaks (every hit is in the allowed set),
 * crash consistency of the index file (truncated, garbage, foreign, newer
 * than the store: detected, never used, results still exact), a stale
 * index catching up after more ingests, and concurrent queries during
 * ingest.
 *
 * The oracle is a double-precision brute force written here, independent
 * of index/scan.c and index/ivf.c.  Data: seeded clustered vectors.
 * WARDEN_TEST_QUICK shrinks the collection and query counts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "indexer.h"
#include "ivf.h"
#include "ivf_build.h"
#include "search.h"
#include "warden.h"

#define DIM 32
#define K 10

static int quick(void) { return getenv("WARDEN_TEST_QUICK") != NULL; }

/* ------------------------------------------------------------ data */

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

/* n clustered unit vectors (64 clusters) into x. */
static void gen(float *x, size_t n, uint64_t seed) {
  rs = seed * 0x9e3779b97f4a7c15ull + 1;
  float cent[64][DIM];
  for (int c = 0; c < 64; c++)
    for (int j = 0; j < DIM; j++) cent[c][j] = (float)gauss();
  for (size_t i = 0; i < n; i++) {
    int c = (int)(rnd() % 64);
    double n2 = 0;
    for (int j = 0; j < DIM; j++) {
      x[i * DIM + j] = cent[c][j] + (float)(0.35 * gauss());
      n2 += (double)x[i * DIM + j] * x[i * DIM + j];
    }
    for (int j = 0; j < DIM; j++) x[i * DIM + j] = (float)(x[i * DIM + j] / sqrt(n2));
  }
}

/* Oracle: the k ids with the highest cosine among those with ok[i]. */
static size_t oracle(const float *x, size_t n, const unsigned char *ok, const float *q,
                     uint32_t *out) {
  double best[K];
  size_t m = 0;
  double qn = 0;
  for (int j = 0; j < DIM; j++) qn += (double)q[j] * q[j];
  qn = sqrt(qn);
  for (size_t i = 0; i < n; i++) {
    if (!ok[i]) continue;
    double d = 0, xn = 0;
    for (int j = 0; j < DIM; j++) {
      d += (double)q[j] * x[i * DIM + j];
      xn += (double)x[i * DIM + j] * x[i * DIM + j];
    }
    d /= qn * sqrt(xn);
    size_t p = m < K ? m++ : K;
    if (p == K) {
      if (d <= best[K - 1]) continue;
      p = K - 1;
    }
    while (p > 0 && best[p - 1] < d) {
      best[p] = best[p - 1];
      out[p] = out[p - 1];
      p--;
    }
    best[p] = d;
    out[p] = (uint32_t)i;
  }
  return m;
}

static double overlap(const uint32_t *truth, size_t nt, const uint32_t *got, size_t ng) {
  if (nt == 0) return 1.0;
  size_t h = 0;
  for (size_t i = 0; i < nt; i++)
    for (size_t j = 0; j < ng; j++)
      if (truth[i] == got[j]) {
        h++;
        break;
      }
  return (double)h / (double)nt;
}

/* ------------------------------------------------- planner decisions */

static void test_planner(void **state) {
  (void)state;
  struct {
    uint64_t nallowed, nindexed;
    size_t dim, nq, nlist;
    int have, force, want_ivf;
  } cases[] = {
      {1000000, 1000000, 384, 1, 4000, 1, 0, 1},  /* unfiltered, big: ivf */
      {100000, 1000000, 384, 1, 4000, 1, 0, 1},   /* 10%: ivf */
      {100, 1000000, 384, 1, 4000, 1, 0, 0},      /* 0.01%: exact */
      {1000, 1000000, 384, 1, 4000, 1, 0, 0},     /* 0.1%: exact */
      {1000000, 1000000, 384, 1, 4000, 0, 0, 0},  /* no index: exact */
      {1000000, 1000000, 384, 1, 4000, 1, 1, 0},  /* forced exact */
      {100, 1000000, 384, 1, 4000, 1, 2, 1},      /* forced ivf */
      {100, 1000000, 384, 1, 4000, 0, 2, 0},      /* forced ivf, none: exact */
      {5, 1000000, 384, 1, 4000, 1, 0, 0},        /* fewer than k allowed */
      {50, 200, 384, 1, 56, 1, 0, 0},             /* tiny collection */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    wd_plan_in in = {cases[i].nallowed, cases[i].nindexed, cases[i].nindexed, cases[i].dim,
                     K, cases[i].nq, cases[i].nlist, cases[i].have, cases[i].force, 0, 0, 0, 0, NULL};
    wd_plan_out po;
    wd_plan_choose(&in, &po);
    if (po.use_ivf != cases[i].want_ivf) fail_msg("case %zu: use_ivf %d", i, po.use_ivf);
    assert_non_null(po.reason);
    if (po.use_ivf) {
      assert_true(po.ivf.min_lists >= 1 && po.ivf.min_lists <= cases[i].nlist);
      assert_true(po.ivf.want_allowed >= K || po.ivf.want_allowed == cases[i].nallowed);
      assert_true(po.ivf.max_visited >= po.est_visited * 0.99);
    }
  }
  /* costs grow with the allowed set; the ivf estimate grows as the filter
   * gets more selective (more lists to find enough allowed vectors) */
  wd_plan_in a = {1000, 1000000, 1000000, 384, K, 1, 4000, 1, 0, 0, 0, 0, 0, NULL}, b = a;
  b.nallowed = 100000;
  wd_plan_out pa, pb;
  wd_plan_choose(&a, &pa);
  wd_plan_choose(&b, &pb);
  assert_true(pb.est_exact_us > pa.est_exact_us);
  assert_true(pa.est_visited > pb.est_visited);
  /* A starved SQ8 probe is re-run over every list only when that is
   * priced below the exact scan: for half of 200k yes, for 1 % no (the
   * visits of every list cost more than 2000 exact distances); float
   * lists have no such fallback. */
  wd_plan_in big = {100000, 200000, 200000, 384, K, 1, 1788, 1, 0, 0, 1, 0, 0, NULL}, small = big;
  small.nallowed = 2000;
  wd_plan_out pbig, psmall;
  wd_plan_choose(&big, &pbig);
  wd_plan_choose(&small, &psmall);
  assert_true(pbig.est_all_us >= 0 && pbig.est_all_us < pbig.est_exact_us);
  assert_true(psmall.est_all_us > psmall.est_exact_us);
  /* A starved probe of the 1 % set goes to the exact scan rather than
   * widening (the widened probe's worst case, every list, is priced above
   * 2000 exact distances; measured 2,040 QPS exact against 1,077
   * widened); the half widens (worst case far below 100k distances). */
  assert_true(psmall.use_ivf);
  assert_true(psmall.est_wide_us > psmall.est_exact_us);
  assert_true(pbig.est_wide_us < pbig.est_exact_us);
  big.sq8 = 0;
  wd_plan_choose(&big, &pbig);
  assert_true(pbig.est_all_us < 0);
  /* SQ8 scans cost less per vector: its IVF estimate is the lower one at
   * high selectivity */
  wd_plan_in f = {200000, 200000, 200000, 384, K, 1, 1788, 1, 0, 0, 0, 0, 0, NULL}, q8 = f;
  q8.sq8 = 1;
  wd_plan_out pf, pq;
  wd_plan_choose(&f, &pf);
  wd_plan_choose(&q8, &pq);
  assert_true(pq.est_ivf_us < pf.est_ivf_us);
  /* 1 % of 200k x 384 with an SQ8 index: IVF while the allowed vectors
   * are cold, the exact scan once they are cached (measured 5,500 QPS
   * exact against 2,600 IVF with one filter repeated) */
  wd_plan_in cold = {2000, 200000, 200000, 384, K, 1, 1788, 1, 0, 0, 1, 0, 0, NULL}, hot = cold;
  hot.hot = 1;
  wd_plan_out pc, ph;
  wd_plan_choose(&cold, &pc);
  wd_plan_choose(&hot, &ph);
  assert_true(pc.use_ivf);
  assert_false(ph.use_ivf);
  assert_true(ph.est_exact_us < pc.est_exact_us);
  assert_true(ph.est_ivf_us == pc.est_ivf_us);
  /* the index's probe-depth table (issue 14): the list count at the
   * selectivity and target + 0.015 (log-linear between calibrated
   * targets), k allowed vectors the only other stop condition; a point
   * the sweep did not reach -> every list, flagged unreached; no table
   * entry (target above 0.99, an older file) -> the fixed rule */
  wd_ivf_cal cal = {1, {{4, 6, 12}, {8, 12, 24}, {16, 24, 48}, {32, 48, 96}, {0, 0, 0}}};
  wd_plan_in c = {20000, 200000, 200000, 384, K, 1, 1788, 1, 0, 0, 1, 0, 0.935, &cal};
  wd_plan_out pcal;
  wd_plan_choose(&c, &pcal); /* sel 0.1, 0.935 + 0.015 = 0.95: the entry itself */
  assert_true(pcal.calibrated);
  assert_int_equal(pcal.ivf.min_lists, 24);
  assert_int_equal(pcal.ivf.want_allowed, K);
  c.nallowed = 60000; /* sel 0.3 at 0.965: 12 * 2^(0.015/0.04) = 15.6 */
  c.target = 0.95;
  wd_plan_choose(&c, &pcal);
  assert_true(pcal.calibrated);
  assert_int_equal(pcal.ivf.min_lists, 16);
  assert_false(pcal.unreached);
  c.nallowed = 4000; /* sel 0.02: between 0.03 and a 0.01 the sweep never reached */
  wd_plan_choose(&c, &pcal);
  assert_true(pcal.calibrated);
  assert_true(pcal.unreached);
  assert_int_equal(pcal.ivf.min_lists, 1788);
  assert_int_equal(pcal.ivf.want_allowed, K);
  /* priced as the probe of every list: every indexed id visited */
  assert_true(pcal.est_visited >= 200000 * 0.999);
  c.nallowed = 2000; /* sel 0.01 itself: not reached either */
  wd_plan_choose(&c, &pcal);
  assert_true(pcal.unreached);
  /* unfiltered at 0.965: the 0.99 column alone still says (12) */
  cal.lists[0][1] = 0;
  c.nallowed = 200000;
  wd_plan_choose(&c, &pcal);
  assert_false(pcal.unreached);
  assert_int_equal(pcal.ivf.min_lists, 12);
  cal.lists[0][2] = 0; /* ... and not once it was not reached either */
  wd_plan_choose(&c, &pcal);
  assert_true(pcal.unreached);
  assert_int_equal(pcal.ivf.min_lists, 1788);
  cal.lists[0][1] = 6;
  cal.lists[0][2] = 12;
  c.nallowed = 20000;
  c.target = 0.99; /* 1.005: above the table */
  wd_plan_choose(&c, &pcal);
  assert_false(pcal.calibrated);
  assert_false(pcal.unreached);
  assert_true(pcal.ivf.want_allowed > K);
  c.target = 0.95;
  c.cal = NULL; /* an older file */
  wd_plan_choose(&c, &pcal);
  assert_false(pcal.calibrated);
  assert_false(pcal.unreached);
}

/* ------------------------------------------------ module-level recall */

typedef struct memsrc {
  float *blocks; /* layout of scan.h */
  size_t nblocks;
} memsrc;

static int mem_get_block(void *ctx, uint32_t b, const float **base) {
  memsrc *m = ctx;
  if (b >= m->nblocks) return 1;
  *base = m->blocks + (size_t)b * (WD_BLOCK + WD_BLOCK * DIM);
  return 0;
}

static void mem_fill(memsrc *m, const float *x, size_t n) {
  m->nblocks = (n + WD_BLOCK - 1) / WD_BLOCK;
  m->blocks = calloc(m->nblocks * (WD_BLOCK + WD_BLOCK * DIM), sizeof(float));
  assert_non_null(m->blocks);
  for (size_t i = 0; i < n; i++) {
    float *base = m->blocks + (i / WD_BLOCK) * (WD_BLOCK + WD_BLOCK * DIM);
    memcpy(base + WD_BLOCK + (i % WD_BLOCK) * DIM, x + i * DIM, DIM * sizeof(float));
    base[i % WD_BLOCK] = 1.0f; /* unit vectors */
  }
}

/* An IVF built over src's n vectors (live) and opened for src's metric. */
static void build_open(const wd_vecsrc *src, const roaring_bitmap_t *live, size_t n, int sq8,
                       wd_ivf_build_out *bo, wd_ivf *ix) {
  wd_ivf_build_in in;
  memset(&in, 0, sizeof in);
  in.src = src;
  in.live = live;
  in.next_slot = n;
  in.revision = 3;
  in.sq8 = sq8;
  in.seed = 5;
  char why[300];
  assert_int_equal(wd_ivf_build(&in, bo, why, sizeof why), 0);
  assert_int_equal(wd_ivf_open_image(bo->image, bo->len, DIM, src->metric, ix, why, sizeof why), 0);
}

/* An allowed set: each of n ids with probability sel (all at sel >= 1),
 * ok[] marking them, from the test's generator reseeded at seed; and the
 * planner's forced-ANN probe for it on ix. */
static roaring_bitmap_t *random_allowed(size_t n, double sel, uint64_t seed, unsigned char *ok,
                                        const wd_ivf *ix, wd_plan_out *po) {
  roaring_bitmap_t *al = roaring_bitmap_create();
  rs = seed;
  for (size_t i = 0; i < n; i++) {
    ok[i] = sel >= 1.0 || unif() < sel;
    if (ok[i]) roaring_bitmap_add(al, (uint32_t)i);
  }
  uint64_t na = roaring_bitmap_get_cardinality(al);
  wd_plan_in pin = {na, n, n, DIM, K, 1, ix->nlist, 1, WARDEN_STRATEGY_ANN, 0, ix->sq8, 0, 0, NULL};
  wd_plan_choose(&pin, po);
  return al;
}

static void module_recall(int sq8) {
  size_t n = quick() ? 5000 : 20000, nq = quick() ? 10 : 40;
  float *x = malloc(n * DIM * sizeof(float)), *qs = malloc(nq * DIM * sizeof(float));
  unsigned char *ok = malloc(n);
  gen(x, n, 11);
  /* queries: perturbed data points, so they land in the clusters */
  for (size_t q = 0; q < nq; q++) {
    size_t at = (q * 7919) % n;
    double n2 = 0;
    for (int j = 0; j < DIM; j++) {
      qs[q * DIM + j] = x[at * DIM + j] + (float)(0.2 * gauss());
      n2 += (double)qs[q * DIM + j] * qs[q * DIM + j];
    }
    for (int j = 0; j < DIM; j++) qs[q * DIM + j] = (float)(qs[q * DIM + j] / sqrt(n2));
  }
  memsrc m;
  mem_fill(&m, x, n);
  wd_vecsrc src = {DIM, WD_METRIC_COSINE, mem_get_block, &m};
  roaring_bitmap_t *live = roaring_bitmap_from_range(0, n, 1);
  wd_ivf_build_out bo;
  wd_ivf ix;
  build_open(&src, live, n, sq8, &bo, &ix);
  assert_int_equal(ix.h.nvec, n);
  double sels[] = {0.001, 0.01, 0.1, 0.5, 1.0};
  for (size_t si = 0; si < 5; si++) {
    wd_plan_out po;
    roaring_bitmap_t *al = random_allowed(n, sels[si], 99 + si, ok, &ix, &po);
    uint64_t nbits = 0;
    uint64_t *bits = wd_ivf_bits(al, &nbits);
    assert_non_null(bits);
    double rsum = 0;
    for (size_t q = 0; q < nq; q++) {
      wd_topk h;
      assert_int_equal(wd_topk_init(&h, K), 0);
      wd_ivf_stats st;
      assert_int_equal(wd_ivf_search(&ix, NULL, qs + q * DIM, al, &po.ivf, &src, &h, &st), 0);
      wd_hit_i hits[K];
      size_t ng = wd_topk_drain_sorted(&h, hits);
      wd_topk_free(&h);
      uint32_t got[K], truth[K];
      for (size_t i = 0; i < ng; i++) {
        got[i] = hits[i].id;
        if (!ok[got[i]]) fail_msg("leak: id %u not allowed (sel %g)", got[i], sels[si]);
        if (i > 0) assert_true(hits[i - 1].dist <= hits[i].dist);
      }
      size_t nt = oracle(x, n, ok, qs + q * DIM, truth);
      /* when the probe stopped early the engine re-runs exactly; here it
       * must still have what it scanned */
      if (!st.bound_hit) assert_int_equal(ng, nt);
      rsum += overlap(truth, nt, got, ng);
      /* the dense bitset, scanned run by run and whole-list, finds the
       * same hits with the same counts as the roaring bitmap above */
      for (int whole = 0; whole < 2; whole++) {
        wd_ivf_params pb = po.ivf;
        pb.bits = bits;
        pb.nbits = nbits;
        pb.whole_from = whole ? 0.25 : 0;
        wd_topk hb;
        assert_int_equal(wd_topk_init(&hb, K), 0);
        wd_ivf_stats sb;
        assert_int_equal(wd_ivf_search(&ix, NULL, qs + q * DIM, al, &pb, &src, &hb, &sb), 0);
        wd_hit_i hb_hits[K];
        size_t nb = wd_topk_drain_sorted(&hb, hb_hits);
        wd_topk_free(&hb);
        assert_int_equal(nb, ng);
        for (size_t i = 0; i < nb; i++) {
          assert_int_equal(hb_hits[i].id, hits[i].id);
          assert_true(hb_hits[i].dist == hits[i].dist);
        }
        assert_int_equal(sb.scanned, st.scanned);
        assert_int_equal(sb.visited, st.visited);
        assert_int_equal(sb.lists, st.lists);
      }
    }
    wd_free(bits);
    double rec = rsum / (double)nq;
    if (rec < 0.95) fail_msg("sq8=%d selectivity %g: recall@10 %.3f < 0.95", sq8, sels[si], rec);
    roaring_bitmap_free(al);
  }
  wd_ivf_close(&ix);
  wd_free(bo.image);
  roaring_bitmap_free(live);
  free(m.blocks);
  free(x);
  free(qs);
  free(ok);
}

/* L2 through the SQ8 IVF, probe order from the byte centroids
 * (|c|^2 - 2 q.c, index/ivf.h): data with norms from 0.5 to 3 and a
 * shared offset, so |c|^2 matters.  (1) With one list probed, the list
 * is the float-nearest centroid's whenever the second-nearest is 5 %
 * farther (the byte estimate may swap near ties only); (2) recall@10
 * against brute-force L2 at 100 % and 10 % with the planner's probe. */
static void test_ivf_l2(void **state) {
  (void)state;
  size_t n = quick() ? 5000 : 20000, nq = quick() ? 40 : 100;
  float *x = malloc(n * DIM * sizeof(float)), *qs = malloc(nq * DIM * sizeof(float));
  unsigned char *ok = malloc(n);
  gen(x, n, 23);
  for (size_t i = 0; i < n; i++) {
    float sc = (float)(0.5 + 2.5 * unif());
    for (int j = 0; j < DIM; j++) x[i * DIM + j] = x[i * DIM + j] * sc + (j % 3 ? 0.7f : -1.1f);
  }
  for (size_t q = 0; q < nq; q++) {
    size_t at = (q * 7919 + 13) % n;
    for (int j = 0; j < DIM; j++) qs[q * DIM + j] = x[at * DIM + j] + (float)(0.15 * gauss());
  }
  memsrc m;
  mem_fill(&m, x, n);
  wd_vecsrc src = {DIM, WD_METRIC_L2, mem_get_block, &m};
  roaring_bitmap_t *live = roaring_bitmap_from_range(0, n, 1);
  wd_ivf_build_out bo;
  wd_ivf ix;
  build_open(&src, live, n, 1, &bo, &ix);
  /* (1) the first list probed */
  size_t clear = 0;
  for (size_t q = 0; q < nq; q++) {
    const float *qv = qs + q * DIM;
    double b1 = INFINITY, b2 = INFINITY;
    size_t l1 = 0;
    for (size_t l = 0; l < ix.nlist; l++) {
      double d = 0;
      for (int j = 0; j < DIM; j++) {
        double t = (double)qv[j] - ix.cent[l * DIM + j];
        d += t * t;
      }
      if (d < b1) {
        b2 = b1;
        b1 = d;
        l1 = l;
      } else if (d < b2) {
        b2 = d;
      }
    }
    if (b2 < 1.05 * b1) continue; /* a near tie: either order is right */
    clear++;
    wd_ivf_params p;
    memset(&p, 0, sizeof p);
    p.min_lists = p.max_lists = 1;
    p.max_visited = UINT64_MAX;
    p.rerank = wd_ivf_rerank(K);
    wd_topk h;
    assert_int_equal(wd_topk_init(&h, K), 0);
    wd_ivf_stats st;
    assert_int_equal(wd_ivf_search(&ix, NULL, qv, NULL, &p, &src, &h, &st), 0);
    wd_hit_i hits[K];
    size_t ng = wd_topk_drain_sorted(&h, hits);
    wd_topk_free(&h);
    assert_int_equal(st.lists, 1);
    for (size_t i = 0; i < ng; i++) {
      int in_l1 = 0;
      for (uint64_t e = ix.offs[l1]; e < ix.offs[l1 + 1]; e++) in_l1 |= ix.ids[e] == hits[i].id;
      if (!in_l1) fail_msg("query %zu: hit %u is not in the nearest centroid's list", q, hits[i].id);
    }
  }
  assert_true(clear >= nq / 4); /* the check above ran on enough queries */
  /* (2) recall */
  double sels[] = {1.0, 0.1};
  for (size_t si = 0; si < 2; si++) {
    wd_plan_out po;
    roaring_bitmap_t *al = random_allowed(n, sels[si], 199 + si, ok, &ix, &po);
    double rsum = 0;
    for (size_t q = 0; q < nq; q++) {
      const float *qv = qs + q * DIM;
      wd_topk h;
      assert_int_equal(wd_topk_init(&h, K), 0);
      wd_ivf_stats st;
      assert_int_equal(wd_ivf_search(&ix, NULL, qv, al, &po.ivf, &src, &h, &st), 0);
      wd_hit_i hits[K];
      size_t ng = wd_topk_drain_sorted(&h, hits);
      wd_topk_free(&h);
      /* brute force: the K nearest allowed by L2 */
      uint32_t truth[K], got[K];
      double td[K];
      size_t nt = 0;
      for (size_t i = 0; i < n; i++) {
        if (!ok[i]) continue;
        double d = 0;
        for (int j = 0; j < DIM; j++) {
          double t = (double)qv[j] - x[i * DIM + j];
          d += t * t;
        }
        size_t at = nt < K ? nt++ : K;
        if (at == K && d >= td[K - 1]) continue;
        if (at == K) at = K - 1;
        while (at > 0 && td[at - 1] > d) {
          td[at] = td[at - 1];
          truth[at] = truth[at - 1];
          at--;
        }
        td[at] = d;
        truth[at] = (uint32_t)i;
      }
      for (size_t i = 0; i < ng; i++) {
        got[i] = hits[i].id;
        if (!ok[got[i]]) fail_msg("leak: id %u not allowed (sel %g)", got[i], sels[si]);
      }
      rsum += overlap(truth, nt, got, ng);
    }
    double rec = rsum / (double)nq;
    if (rec < 0.95) fail_msg("L2 selectivity %g: recall@10 %.3f < 0.95", sels[si], rec);
    roaring_bitmap_free(al);
  }
  wd_ivf_close(&ix);
  wd_free(bo.image);
  roaring_bitmap_free(live);
  free(m.blocks);
  free(x);
  free(qs);
  free(ok);
}

/* The IVF probe order (index/ivf.c po_init/po_pop: the nearest lists
 * heaped first, the rest only when reached) against a full sort by
 * (distance, list): random, heavily tied, negative, infinite and all-equal
 * distances, list counts around the split threshold and at 10M scale. */
static int cmp_dl(const void *a, const void *b) {
  const float *x = *(const float *const *)a, *y = *(const float *const *)b;
  if (*x != *y) return *x < *y ? -1 : 1;
  return x < y ? -1 : x > y;
}

static void test_ivf_probe_order(void **state) {
  (void)state;
  const size_t ns[] = {1, 10, 255, 256, 979, 5000, 12649};
  for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
    size_t n = ns[a];
    float *d = malloc(n * sizeof *d);
    const float **ref = malloc(n * sizeof *ref);
    uint32_t *got = malloc(n * sizeof *got);
    for (int fam = 0; fam < 5; fam++) {
      for (size_t i = 0; i < n; i++) {
        double u = (double)(rnd() % 1000003) / 1000003.0;
        d[i] = fam == 0   ? (float)u
               : fam == 1 ? (float)(rnd() % 7)                /* ties */
               : fam == 2 ? (float)(-50.0 + 100.0 * u * u)    /* skewed, negative */
               : fam == 3 ? (i % 97 == 5 ? INFINITY : (float)u) /* some infinite */
                          : 3.0f;                              /* all equal */
      }
      for (size_t i = 0; i < n; i++) ref[i] = &d[i];
      qsort(ref, n, sizeof *ref, cmp_dl);
      const size_t wants[] = {1, 16, 64, n / 3 + 1, n};
      for (size_t w = 0; w < 5; w++) {
        memset(got, 0xff, n * sizeof *got);
        assert_int_equal(wd_ivf_probe_order(d, n, wants[w], got, n), (long)n);
        for (size_t i = 0; i < n; i++)
          if (got[i] != (uint32_t)(ref[i] - d))
            fail_msg("n %zu family %d want %zu: position %zu is list %u, want %u", n, fam,
                     wants[w], i, got[i], (unsigned)(ref[i] - d));
        /* a prefix only */
        assert_int_equal(wd_ivf_probe_order(d, n, wants[w], got, n / 2), (long)(n / 2));
      }
    }
    free(d);
    free(ref);
    free(got);
  }
}

static void test_ivf_recall_flat(void **state) {
  (void)state;
  module_recall(0);
}

static void test_ivf_recall_sq8(void **state) {
  (void)state;
  module_recall(1);
}

/* The dense copy of an allowed set equals it bit for bit, whatever mix of
 * CRoaring containers (array, bitset, run; after run_optimize) holds it. */
static void test_bits_expansion(void **state) {
  (void)state;
  uint64_t seed = 77;
  for (int t = 0; t < 40; t++) {
    roaring_bitmap_t *b = roaring_bitmap_create();
    uint32_t span = 1000 + (uint32_t)(t * 9973 % 300000);
    for (int part = 0; part < 4; part++) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      uint32_t lo = (uint32_t)(seed >> 33) % span, kind = (uint32_t)(seed >> 20) % 3;
      if (kind == 0) /* sparse: array containers */
        for (int i = 0; i < 50; i++) roaring_bitmap_add(b, (lo + (uint32_t)i * 37) % span);
      else if (kind == 1) /* dense random: bitset containers */
        for (uint32_t i = 0; i < 9000; i++) {
          seed = seed * 6364136223846793005ull + 1442695040888963407ull;
          if ((seed >> 40) & 1) roaring_bitmap_add(b, lo + i);
        }
      else /* long runs */
        roaring_bitmap_add_range(b, lo, lo + 70000 + (uint64_t)(seed >> 50));
    }
    if (t & 1) roaring_bitmap_run_optimize(b);
    uint64_t nbits = 0;
    uint64_t *bits = wd_ivf_bits(b, &nbits);
    assert_non_null(bits);
    assert_int_equal(nbits, (uint64_t)roaring_bitmap_maximum(b) + 1);
    uint64_t count = 0;
    for (uint64_t i = 0; i < nbits; i++) {
      int in = (int)((bits[i >> 6] >> (i & 63)) & 1);
      assert_int_equal(in, roaring_bitmap_contains(b, (uint32_t)i));
      count += (uint64_t)in;
    }
    assert_int_equal(count, roaring_bitmap_get_cardinality(b));
    wd_free(bits);
    roaring_bitmap_free(b);
  }
}

static void test_image_validation(void **state) {
  (void)state;
  /* a tiny valid image, then damaged copies: each refused with its kind */
  size_t n = 600;
  float *x = malloc(n * DIM * sizeof(float));
  gen(x, n, 3);
  memsrc m;
  mem_fill(&m, x, n);
  wd_vecsrc src = {DIM, WD_METRIC_COSINE, mem_get_block, &m};
  roaring_bitmap_t *live = roaring_bitmap_from_range(0, n, 1);
  wd_ivf_build_in in;
  memset(&in, 0, sizeof in);
  in.src = &src;
  in.live = live;
  in.next_slot = n;
  wd_ivf_build_out bo;
  char why[300];
  assert_int_equal(wd_ivf_build(&in, &bo, why, sizeof why), 0);
  wd_ivf ix;
  char *img = malloc(bo.len);
  struct {
    const char *what;
    size_t len;
    size_t flip;   /* byte to flip, or SIZE_MAX */
    int want;
  } cases[] = {
      {"valid", bo.len, SIZE_MAX, 0},
      {"empty", 0, SIZE_MAX, 2},
      {"header only", WD_IVF_HDR, SIZE_MAX, 2},
      {"truncated", bo.len / 2, SIZE_MAX, 2},
      {"last byte gone", bo.len - 1, SIZE_MAX, 2},
      {"magic", bo.len, 0, 3},
      {"header field", bo.len, 20, 2},
      {"body byte", bo.len, WD_IVF_HDR + 5, 2},
      {"last body byte", bo.len, bo.len - 1, 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    memcpy(img, bo.image, bo.len);
    if (cases[i].flip != SIZE_MAX) img[cases[i].flip] ^= 0x40;
    int rc = wd_ivf_open_image(img, cases[i].len, DIM, WD_METRIC_COSINE, &ix, why, sizeof why);
    if (rc != cases[i].want) fail_msg("%s: rc %d (%s)", cases[i].what, rc, why);
    if (rc == 0) wd_ivf_close(&ix);
  }
  /* foreign: other dimension or metric, or a newer format (resealed) */
  assert_int_equal(wd_ivf_open_image(bo.image, bo.len, DIM + 1, WD_METRIC_COSINE, &ix, why,
                                     sizeof why), 3);
  assert_int_equal(wd_ivf_open_image(bo.image, bo.len, DIM, WD_METRIC_L2, &ix, why, sizeof why),
                   3);
  memcpy(img, bo.image, bo.len);
  ((wd_ivf_header *)img)->version = WD_IVF_VERSION + 1;
  ((wd_ivf_header *)img)->hdr_sum =
      wd_ivf_checksum(img, offsetof(wd_ivf_header, hdr_sum));
  assert_int_equal(wd_ivf_open_image(img, bo.len, DIM, WD_METRIC_COSINE, &ix, why, sizeof why), 3);
  /* structurally wrong but correctly checksummed: an id out of range */
  memcpy(img, bo.image, bo.len);
  wd_ivf_layout lay;
  wd_ivf_layout_of(DIM, ((wd_ivf_header *)img)->nlist, n, 0, &lay);
  uint32_t bad = (uint32_t)n + 5;
  memcpy(img + WD_IVF_HDR + lay.ids, &bad, 4);
  wd_ivf_seal(img);
  assert_int_equal(wd_ivf_open_image(img, bo.len, DIM, WD_METRIC_COSINE, &ix, why, sizeof why), 2);
  free(img);
  wd_free(bo.image);
  roaring_bitmap_free(live);
  free(m.blocks);
  free(x);
}

/* --------------------------------------------------- engine level */

typedef struct coll {
  char dir[256];
  warden *db;
  float *x;  /* vectors by doc number */
  size_t n;  /* docs ingested (doc i has slot-independent id d<i>) */
  size_t cap;
} coll;

/* Optional per-document metadata "far" (0..255) for ingest_range. */
static const unsigned char *g_far;

static void ingest_range(coll *c, size_t from, size_t to) {
  size_t cap = (to - from) * (DIM * 16 + 220) + 64;
  char *buf = malloc(cap), *p = buf;
  for (size_t i = from; i < to; i++) {
    p += sprintf(p, "{\"doc_id\":\"d%06zu\",\"source\":\"s3://b/d%zu\",\"metadata\":{\"g\":%zu",
                 i, i, i % 1000);
    if (g_far) p += sprintf(p, ",\"far\":%d", g_far[i]);
    p += sprintf(p, "},\"acl\":{\"allow\":[\"*\"]},\"chunks\":[{\"text\":\"t\",\"embedding\":[");
    for (int j = 0; j < DIM; j++) p += sprintf(p, "%s%.9g", j ? "," : "", c->x[i * DIM + j]);
    p += sprintf(p, "]}]}\n");
  }
  warden_ingest_report rep;
  int rc = warden_ingest_buffer(c->db, "test", buf, (size_t)(p - buf), NULL, &rep);
  if (rc) fail_msg("ingest: %s", warden_errmsg(c->db));
  warden_free(rep.errors);
  free(buf);
  if (to > c->n) c->n = to;
}

/* Issue 14: `warden index` also builds the graph index (index.graph: on,
 * the default).  These tests are about the IVF, so they turn it off,
 * except where g_graph is set: then the same oracle checks run with the
 * planner free to pick the graph. */
static int g_graph;

static void coll_open(coll *c, size_t cap) {
  memset(c, 0, sizeof *c);
  snprintf(c->dir, sizeof c->dir, "/tmp/wd_test_ann_XXXXXX");
  assert_non_null(mkdtemp(c->dir));
  char cfgpath[300];
  snprintf(cfgpath, sizeof cfgpath, "%s.yaml", c->dir);
  FILE *cf = fopen(cfgpath, "w");
  assert_non_null(cf);
  fprintf(cf, "dimension: %d\nmetric: cosine\nindex:\n  graph: %s\n", DIM, g_graph ? "on" : "off");
  fclose(cf);
  strcat(c->dir, "/c");
  warden_create_opts co = {DIM, "cosine", cfgpath};
  char err[512];
  if (warden_create(c->dir, &co, err, sizeof err)) fail_msg("create: %s", err);
  unlink(cfgpath);
  if (warden_open(c->dir, NULL, &c->db, err, sizeof err)) fail_msg("open: %s", err);
  c->cap = cap;
  c->x = malloc(cap * DIM * sizeof(float));
  gen(c->x, cap, 21);
}

static void coll_close(coll *c) {
  warden_close(c->db);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%.*s'", (int)(strlen(c->dir) - 2), c->dir);
  if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
  free(c->x);
}

/* Query doc vectors' neighbourhood with filter g < lim; returns doc
 * numbers of the hits in got (<= K) and the plan (caller frees). */
static size_t query(coll *c, const float *q, unsigned lim, int strategy, uint32_t *got,
                    char **plan) {
  char filter[64];
  snprintf(filter, sizeof filter, "{\"g\":{\"$lt\":%u}}", lim);
  warden_query_opts o;
  memset(&o, 0, sizeof o);
  o.principal = "user:t";
  o.filter = lim >= 1000 ? NULL : filter;
  o.k = K;
  o.strategy = strategy;
  o.explain = plan != NULL;
  warden_results *r = NULL;
  int rc = warden_query(c->db, q, 1, &o, &r);
  if (rc) fail_msg("query: %s", warden_errmsg(c->db));
  size_t n = warden_results_count(r, 0);
  for (size_t i = 0; i < n; i++) {
    const warden_hit *h = warden_results_hit(r, 0, i);
    got[i] = (uint32_t)strtoul(h->doc_id + 1, NULL, 10);
    if (got[i] % 1000 >= lim) fail_msg("leak: doc %u returned for g < %u", got[i], lim);
  }
  if (plan) *plan = strdup(warden_results_plan(r, 0) ? warden_results_plan(r, 0) : "");
  warden_results_free(r);
  return n;
}

static double engine_recall(coll *c, unsigned lim, int strategy, size_t nq, int *used_ivf) {
  unsigned char *ok = malloc(c->n);
  for (size_t i = 0; i < c->n; i++) ok[i] = i % 1000 < lim;
  double rsum = 0;
  *used_ivf = 0;
  for (size_t q = 0; q < nq; q++) {
    float qv[DIM];
    size_t at = (q * 104729) % c->n;
    for (int j = 0; j < DIM; j++) qv[j] = c->x[at * DIM + j] + (float)(0.1 * gauss());
    uint32_t got[K], truth[K];
    char *plan;
    size_t ng = query(c, qv, lim, strategy, got, &plan);
    size_t nt = oracle(c->x, c->n, ok, qv, truth);
    assert_int_equal(ng, nt); /* exactly k, or all of the allowed set */
    rsum += overlap(truth, nt, got, ng);
    if (strstr(plan, "\"strategy\":\"ivf\"") || strstr(plan, "\"strategy\":\"graph\"") ||
        strstr(plan, "\"strategy\":\"codes\"")) /* the graph's codes, scanned */
      (*used_ivf)++; /* an ANN index was used */
    free(plan);
  }
  free(ok);
  return rsum / (double)nq;
}

static void build(coll *c, int rebuild, json_t **rep) {
  warden_index_opts io = {rebuild, NULL, NULL, NULL};
  char *js = NULL;
  if (warden_index_build(c->db, &io, &js)) fail_msg("index: %s", warden_errmsg(c->db));
  json_error_t je;
  *rep = json_loads(js, 0, &je);
  assert_non_null(*rep);
  warden_free(js);
}

/* A collection of n documents (ingest_range) with its index built. */
static void coll_built(coll *c, size_t n) {
  coll_open(c, n);
  ingest_range(c, 0, n);
  json_t *rep;
  build(c, 0, &rep);
  json_decref(rep);
}

/* The index state as `warden stats` reports it (wd_index_stats). */
static const char *stats_state(coll *c, char *buf, size_t len) {
  wd_txn tx;
  assert_int_equal(store_read_begin(c->db, &tx), 0);
  json_t *o = wd_index_stats(c->db, &tx);
  store_read_end(&tx);
  assert_non_null(o);
  const char *s = json_string_value(json_object_get(o, "state"));
  snprintf(buf, len, "%s", s ? s : "?");
  json_decref(o);
  return buf;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Anti-correlated filters: the allowed set is the half (and the tenth) of
 * the collection least similar to the region queried, so the nearest
 * lists hold almost none of it (BENCH.md's anti-correlated cells, as a
 * half-space).  Forced IVF must still reach recall 0.95 against the oracle
 * with no leak, and so must the unfiltered and 90 % cases of the same
 * data.  Before the starved rule looked at the calibrated region, the
 * half-space gave recall 0.69. */
/* Overlapping clusters (lists straddle the allowed set's boundary, where
 * the nearest allowed vectors are), ingested with metadata "far": 2 for
 * the docs least similar to doc 0 (below the far2 quantile), 1 up to the
 * far1 quantile, 0 for the rest.  Returns far (malloc'd). */
static unsigned char *anti_coll(coll *c, size_t n, double far2, double far1) {
  coll_open(c, n);
  float cent[16][DIM];
  for (int k = 0; k < 16; k++)
    for (int j = 0; j < DIM; j++) cent[k][j] = (float)gauss();
  for (size_t i = 0; i < n; i++) {
    double n2 = 0;
    int k = (int)(rnd() % 16);
    for (int j = 0; j < DIM; j++) {
      c->x[i * DIM + j] = cent[k][j] + (float)(0.7 * gauss());
      n2 += (double)c->x[i * DIM + j] * c->x[i * DIM + j];
    }
    for (int j = 0; j < DIM; j++) c->x[i * DIM + j] = (float)(c->x[i * DIM + j] / sqrt(n2));
  }
  const float *q0 = c->x; /* the region queried: around doc 0 */
  double *sim = malloc(n * sizeof *sim), *sorted = malloc(n * sizeof *sorted);
  for (size_t i = 0; i < n; i++) {
    double d = 0;
    for (int j = 0; j < DIM; j++) d += (double)q0[j] * c->x[i * DIM + j];
    sim[i] = sorted[i] = d;
  }
  qsort(sorted, n, sizeof *sorted, cmp_double);
  double p2 = sorted[(size_t)((double)n * far2)], p1 = sorted[(size_t)((double)n * far1)];
  unsigned char *far = malloc(n);
  for (size_t i = 0; i < n; i++) far[i] = sim[i] < p2 ? 2 : sim[i] < p1 ? 1 : 0;
  g_far = far;
  ingest_range(c, 0, n);
  g_far = NULL;
  free(sim);
  free(sorted);
  json_t *rep;
  build(c, 0, &rep);
  json_decref(rep);
  return far;
}

static void test_anticorrelated(void **state) {
  (void)state;
  size_t n = quick() ? 6000 : 20000, nq = quick() ? 12 : 40;
  coll c;
  unsigned char *far = anti_coll(&c, n, 0.10, 0.50);
  const float *q0 = c.x;
  const char *filters[] = {"{\"far\":{\"$gte\":0}}", "{\"far\":{\"$lte\":1}}", "{\"far\":{\"$gte\":1}}", "{\"far\":2}"};
  int minv[] = {0, 5, 1, 2};
  unsigned char *ok = malloc(n);
  for (int f = 0; f < 4; f++) {
    for (size_t i = 0; i < n; i++) ok[i] = minv[f] == 5 ? far[i] <= 1 : far[i] >= minv[f];
    double rsum = 0;
    for (size_t qn = 0; qn < nq; qn++) {
      float qv[DIM];
      for (int j = 0; j < DIM; j++) qv[j] = q0[j] + (float)(0.15 * gauss());
      warden_query_opts o;
      memset(&o, 0, sizeof o);
      o.principal = "user:t";
      o.filter = filters[f];
      o.k = K;
      o.strategy = WARDEN_STRATEGY_ANN;
      warden_results *r = NULL;
      if (warden_query(c.db, qv, 1, &o, &r)) fail_msg("query: %s", warden_errmsg(c.db));
      size_t ng = warden_results_count(r, 0);
      uint32_t got[K], truth[K];
      for (size_t i = 0; i < ng; i++) {
        got[i] = (uint32_t)strtoul(warden_results_hit(r, 0, i)->doc_id + 1, NULL, 10);
        if (!ok[got[i]]) fail_msg("leak: doc %u for %s", got[i], filters[f]);
      }
      warden_results_free(r);
      size_t nt = oracle(c.x, n, ok, qv, truth);
      assert_int_equal(ng, nt);
      rsum += overlap(truth, nt, got, ng);
    }
    if (rsum / (double)nq < 0.95) fail_msg("%s: recall@10 %.3f", filters[f], rsum / (double)nq);
  }
  free(ok);
  free(far);
  coll_close(&c);
}

/* A small anti-correlated set the planner sends to IVF (8 % of 20k at
 * d=32: IVF priced below the exact scan, the exact scan below reading
 * every list): the probe stops once its calibrated region shows
 * starvation and the query is answered exactly ("starved_exact"), so the
 * results are the oracle's.  Forced ANN keeps to the index and widens. */
static void test_starved_exact(void **state) {
  (void)state;
  size_t n = 20000, nq = 8;
  coll c;
  unsigned char *far = anti_coll(&c, n, 0.08, 0.50);
  unsigned char *ok = malloc(n);
  for (size_t i = 0; i < n; i++) ok[i] = far[i] == 2;
  for (int forced = 0; forced < 2; forced++) {
    size_t starved = 0, widened = 0;
    for (size_t qn = 0; qn < nq; qn++) {
      float qv[DIM];
      for (int j = 0; j < DIM; j++) qv[j] = c.x[j] + (float)(0.15 * gauss());
      warden_query_opts o;
      memset(&o, 0, sizeof o);
      o.principal = "user:t";
      /* the same set under a new filter each time, so that it is never
       * priced as cached (an exact scan would then be cheaper than IVF) */
      char filt[64];
      snprintf(filt, sizeof filt, "{\"far\":2,\"g\":{\"$lt\":%zu}}", 1000 + qn + nq * forced);
      o.filter = filt;
      o.k = K;
      o.strategy = forced ? WARDEN_STRATEGY_ANN : WARDEN_STRATEGY_AUTO;
      o.explain = 1;
      warden_results *r = NULL;
      if (warden_query(c.db, qv, 1, &o, &r)) fail_msg("query: %s", warden_errmsg(c.db));
      const char *plan = warden_results_plan(r, 0);
      assert_non_null(plan);
      if (!strstr(plan, "\"choice\":\"ivf\"")) fail_msg("planner did not pick ivf: %s", plan);
      starved += strstr(plan, "\"starved_exact\":1") != NULL;
      /* a starved query answered exactly is an exact fallback too */
      if (!forced && !strstr(plan, "\"exact_fallbacks\":1")) fail_msg("plan: %s", plan);
      widened += strstr(plan, "\"widened\":1") != NULL;
      size_t ng = warden_results_count(r, 0);
      uint32_t got[K], truth[K];
      for (size_t i = 0; i < ng; i++) {
        got[i] = (uint32_t)strtoul(warden_results_hit(r, 0, i)->doc_id + 1, NULL, 10);
        if (!ok[got[i]]) fail_msg("leak: doc %u", got[i]);
      }
      warden_results_free(r);
      size_t nt = oracle(c.x, n, ok, qv, truth);
      assert_int_equal(ng, nt);
      /* answered exactly: the oracle's ids, in its order */
      if (!forced)
        for (size_t i = 0; i < nt; i++) assert_int_equal(got[i], truth[i]);
    }
    if (!forced) assert_int_equal(starved, nq);
    else {
      assert_int_equal(starved, 0);
      assert_int_equal(widened, nq);
    }
  }
  free(ok);
  free(far);
  coll_close(&c);
}

/* A principal who may read every indexed chunk gets the probe without the
 * filter ("all_allowed"); once one indexed chunk is revoked or deleted the
 * filter is back and that chunk is never returned, caught-up chunks
 * included. */
static void test_unfiltered_probe(void **state) {
  (void)state;
  coll c;
  coll_open(&c, 4400);
  ingest_range(&c, 0, 4000);
  json_t *rep;
  build(&c, 0, &rep);
  json_decref(rep);
  const float *q = c.x + 123 * DIM; /* doc d000123 is its own nearest */
  uint32_t got[K];
  char *plan;
  size_t n = query(&c, q, 1000, WARDEN_STRATEGY_ANN, got, &plan);
  if (!strstr(plan, "\"all_allowed\":true")) fail_msg("everything readable: %s", plan);
  free(plan);
  assert_true(n == K && got[0] == 123);
  const char *deny[] = {"user:t"};
  if (warden_acl_set(c.db, "d000123", NULL, 0, deny, 1, NULL))
    fail_msg("acl: %s", warden_errmsg(c.db));
  n = query(&c, q, 1000, WARDEN_STRATEGY_ANN, got, &plan);
  if (!strstr(plan, "\"all_allowed\":false")) fail_msg("after a revoke: %s", plan);
  free(plan);
  for (size_t i = 0; i < n; i++) assert_int_not_equal(got[i], 123);
  /* caught up, not in the file: readable, then deleted */
  ingest_range(&c, 4000, 4200);
  const float *q2 = c.x + 4100 * DIM;
  const char *del[] = {"d000123"};
  assert_int_equal(warden_delete(c.db, del, 1, NULL), 0);
  n = query(&c, q2, 1000, WARDEN_STRATEGY_ANN, got, &plan);
  if (!strstr(plan, "\"all_allowed\":false")) fail_msg("deleted id in the lists: %s", plan);
  free(plan);
  assert_true(n == K && got[0] == 4100);
  build(&c, 1, &rep); /* rebuilt: the lists hold exactly the live ids */
  json_decref(rep);
  n = query(&c, q2, 1000, WARDEN_STRATEGY_ANN, got, &plan);
  if (!strstr(plan, "\"all_allowed\":true")) fail_msg("after rebuild: %s", plan);
  free(plan);
  assert_true(n == K && got[0] == 4100);
  /* a caught-up chunk revoked: the lists are all readable, the extra not */
  ingest_range(&c, 4200, 4400);
  const float *q3 = c.x + 4300 * DIM;
  n = query(&c, q3, 1000, WARDEN_STRATEGY_ANN, got, &plan);
  if (!strstr(plan, "\"all_allowed\":true")) fail_msg("caught up, readable: %s", plan);
  free(plan);
  assert_true(n == K && got[0] == 4300);
  if (warden_acl_set(c.db, "d004300", NULL, 0, deny, 1, NULL))
    fail_msg("acl: %s", warden_errmsg(c.db));
  n = query(&c, q3, 1000, WARDEN_STRATEGY_ANN, got, &plan);
  if (!strstr(plan, "\"all_allowed\":false")) fail_msg("caught up, revoked: %s", plan);
  free(plan);
  for (size_t i = 0; i < n; i++) assert_int_not_equal(got[i], 4300);
  coll_close(&c);
}

/* The planner remembers which allowed sets were just scanned: the same
 * filter again is priced as cached, a new one is not, and neither changes
 * what a forced exact query returns. */
static void test_allowed_cached(void **state) {
  (void)state;
  coll c;
  coll_built(&c, 4000);
  float *q = c.x + 17 * DIM;
  uint32_t a[K], b[K];
  char *plan;
  size_t na = query(&c, q, 100, WARDEN_STRATEGY_AUTO, a, &plan);
  if (!strstr(plan, "\"allowed_cached\":false")) fail_msg("first use priced cached: %s", plan);
  free(plan);
  size_t nb = query(&c, q, 100, WARDEN_STRATEGY_AUTO, b, &plan);
  if (!strstr(plan, "\"allowed_cached\":true")) fail_msg("repeat not priced cached: %s", plan);
  free(plan);
  assert_int_equal(na, nb);
  query(&c, q, 200, WARDEN_STRATEGY_AUTO, b, &plan);
  if (!strstr(plan, "\"allowed_cached\":false")) fail_msg("new filter priced cached: %s", plan);
  free(plan);
  /* exact answers do not depend on the pricing */
  na = query(&c, q, 300, WARDEN_STRATEGY_EXACT, a, &plan);
  free(plan);
  nb = query(&c, q, 300, WARDEN_STRATEGY_EXACT, b, &plan);
  assert_non_null(strstr(plan, "\"allowed_cached\":true"));
  free(plan);
  assert_int_equal(na, nb);
  assert_memory_equal(a, b, na * sizeof a[0]);
  coll_close(&c);
}

/* The cached exact scan's measured price (engine/search.c hot_observe):
 * one 2 % filter queried again and again with the graph on.  Once an
 * exact scan of a cached set of >= 256 vectors has run, every later plan
 * reports what such scans cost per vector; the exact-or-codes choice that
 * follows agrees with the reported prices; and whichever of the two
 * answers, it is the brute-force answer (recall@10 >= 0.99, no leak). */
static void test_cached_exact_measured(void **state) {
  (void)state;
  g_graph = 1;
  size_t n = 20000;
  coll c;
  coll_built(&c, n);
  unsigned lim = 20; /* g < 20: 400 of 20,000 */
  unsigned char *ok = malloc(n);
  for (size_t i = 0; i < n; i++) ok[i] = i % 1000 < lim;
  int measured_scan = 0, reported = 0;
  double rsum = 0;
  const int nq = 40;
  for (int qn = 0; qn < nq; qn++) {
    float qv[DIM];
    for (int j = 0; j < DIM; j++) qv[j] = c.x[(size_t)(qn % 4) * 977 * DIM + j];
    uint32_t got[K], truth[K];
    char *ptxt;
    size_t ng = query(&c, qv, lim, WARDEN_STRATEGY_AUTO, got, &ptxt);
    size_t nt = oracle(c.x, n, ok, qv, truth);
    assert_int_equal(ng, nt);
    rsum += overlap(truth, nt, got, ng);
    json_t *plan = json_loads(ptxt, 0, NULL);
    assert_non_null(plan);
    json_t *pl = json_object_get(plan, "planner");
    const char *st = json_string_value(json_object_get(plan, "strategy"));
    int cached = json_is_true(json_object_get(pl, "allowed_cached"));
    json_t *ns = json_object_get(pl, "cached_exact_ns");
    if (measured_scan && !json_is_number(ns))
      fail_msg("query %d: no measured price after a cached exact scan: %s", qn, ptxt);
    if (json_is_number(ns)) {
      reported = 1;
      assert_true(json_number_value(ns) > 0);
    }
    if (cached && json_is_number(ns)) {
      double ex = json_number_value(json_object_get(pl, "est_exact_us"));
      double meas = 400 * json_number_value(ns) / 1e3, codes = json_number_value(json_object_get(pl, "est_codes_us"));
      double price = meas > ex ? meas : ex;
      /* exact chosen: not dearer than the codes at the price used; codes
       * chosen while the exact scan was the planner's pick: cheaper than
       * the measured exact price */
      /* (explain rounds prices to 0.1 us and ns to 0.1: 0.2 us of slack) */
      if (json_is_number(json_object_get(pl, "est_codes_us"))) {
        if (!strcmp(st, "exact") && !(codes >= price - 0.2))
          fail_msg("query %d: exact at %.1f us chosen over codes at %.1f: %s", qn, price, codes, ptxt);
        if (!strcmp(st, "codes") && !(codes < price + 0.2))
          fail_msg("query %d: codes at %.1f us chosen over exact at %.1f: %s", qn, codes, price, ptxt);
      }
    }
    if (!strcmp(st, "exact") && cached) measured_scan = 1;
    json_decref(plan);
    free(ptxt);
  }
  if (getenv("TEST_ANN_VERBOSE"))
    fprintf(stderr, "cached exact: measured %d, reported %d, recall %.3f\n", measured_scan,
            reported, rsum / nq);
  assert_true(rsum / nq >= 0.99);
  assert_true(reported == measured_scan);
  free(ok);
  coll_close(&c);
  g_graph = 0;
}

static void test_engine_recall(void **state) {
  (void)state;
  size_t n = quick() ? 4000 : 20000, nq = quick() ? 8 : 30;
  coll c;
  coll_open(&c, n);
  ingest_range(&c, 0, n);
  json_t *rep;
  build(&c, 0, &rep);
  assert_true(json_is_true(json_object_get(rep, "built")));
  assert_int_equal(json_integer_value(json_object_get(rep, "vectors")), n);
  assert_true(json_is_true(json_object_get(rep, "retrained")));
  json_decref(rep);
  unsigned lims[] = {1, 10, 100, 500, 1000}; /* 0.1% .. 100% */
  for (size_t i = 0; i < 5; i++) {
    int ivf;
    double r = engine_recall(&c, lims[i], WARDEN_STRATEGY_ANN, nq, &ivf);
    if (r < 0.95) fail_msg("ANN g<%u: recall@10 %.3f", lims[i], r);
    assert_int_equal(ivf, nq); /* forced: the index was used */
    r = engine_recall(&c, lims[i], WARDEN_STRATEGY_AUTO, nq, &ivf);
    if (r < 0.95) fail_msg("AUTO g<%u: recall@10 %.3f", lims[i], r);
    /* the planner must not pick the index for 0.1% of the collection */
    if (lims[i] == 1) assert_int_equal(ivf, 0);
  }
  coll_close(&c);
}

static void write_file(const char *path, const void *p, size_t n) {
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.t", path);
  FILE *f = fopen(tmp, "wb");
  assert_non_null(f);
  if (n) assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
  assert_int_equal(rename(tmp, path), 0);
}

static void test_crash_consistency(void **state) {
  (void)state;
  size_t n = quick() ? 3000 : 8000;
  coll c;
  coll_built(&c, n);
  json_t *rep;
  char path[600], st[64];
  snprintf(path, sizeof path, "%s/index/ivf.wdx", c.dir);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  size_t len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  char *good = malloc(len), *img = malloc(len);
  assert_int_equal(fread(good, 1, len, f), len);
  fclose(f);
  assert_string_equal(stats_state(&c, st, sizeof st), "ready");

  enum { TRUNC, GARBAGE, FOREIGN, NEWER, EMPTY, JUNK, MISSING };
  struct {
    int kind;
    const char *state;
  } cases[] = {{TRUNC, "corrupt"}, {GARBAGE, "corrupt"}, {FOREIGN, "foreign"},
               {NEWER, "newer_than_store"}, {EMPTY, "corrupt"}, {JUNK, "foreign"},
               {MISSING, "none"}};
  float qv[DIM];
  memcpy(qv, c.x + 17 * DIM, sizeof qv);
  uint32_t want[K], got[K];
  size_t nw = query(&c, qv, 1000, WARDEN_STRATEGY_EXACT, want, NULL);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    memcpy(img, good, len);
    size_t l = len;
    wd_ivf_header *h = (wd_ivf_header *)img;
    switch (cases[i].kind) {
      case TRUNC: l = len / 2; break;
      case GARBAGE: img[len - 100] ^= 0x5a; break;
      case FOREIGN: { /* well-formed, but its vectors are not this store's */
        wd_ivf_layout lay;
        int sq8 = (h->flags & WD_IVF_SQ8) != 0; /* SQ8 is the default */
        wd_ivf_layout_of(DIM, h->nlist, h->nvec, sq8, &lay);
        if (sq8) {
          uint8_t *cd = (uint8_t *)(img + WD_IVF_HDR + lay.codes);
          for (size_t j = 0; j < h->nvec * DIM; j++) cd[j] = (uint8_t)(255 - cd[j]);
        } else {
          float *v = (float *)(img + WD_IVF_HDR + lay.vecs);
          for (size_t j = 0; j < h->nvec * DIM; j++) v[j] = -v[j];
        }
        wd_ivf_seal(img);
        break;
      }
      case NEWER:
        h->next_slot += 1000;
        h->revision += 50;
        wd_ivf_seal(img);
        break;
      case EMPTY: l = 0; break;
      case JUNK:
        for (size_t b = 0; b < len; b++) img[b] = (char)(b * 31 + 7);
        break;
      default: break;
    }
    if (cases[i].kind == MISSING)
      unlink(path);
    else
      write_file(path, img, l);
    char *plan;
    size_t ng = query(&c, qv, 1000, WARDEN_STRATEGY_ANN, got, &plan);
    /* never used: the answer is the exact one */
    assert_int_equal(ng, nw);
    for (size_t j = 0; j < ng; j++) assert_int_equal(got[j], want[j]);
    if (!strstr(plan, "\"strategy\":\"exact\"")) fail_msg("case %zu: plan %s", i, plan);
    free(plan);
    if (strcmp(stats_state(&c, st, sizeof st), cases[i].state) != 0)
      fail_msg("case %zu: stats state %s, want %s", i, st, cases[i].state);
    /* warden check reports it (a missing index is not a problem) */
    wd_txn tx;
    assert_int_equal(store_read_begin(c.db, &tx), 0);
    json_t *r = json_object();
    int np = wd_index_check(c.db, &tx, r);
    store_read_end(&tx);
    if (cases[i].kind == MISSING) assert_int_equal(np, 0);
    else assert_true(np > 0);
    json_decref(r);
  }
  /* a fresh handle sees the same (nothing cached in the process) */
  write_file(path, good, len / 3);
  warden *db2;
  char err[300];
  assert_int_equal(warden_open(c.dir, NULL, &db2, err, sizeof err), 0);
  warden *keep = c.db;
  c.db = db2;
  char *plan;
  query(&c, qv, 1000, WARDEN_STRATEGY_ANN, got, &plan);
  assert_non_null(strstr(plan, "\"strategy\":\"exact\""));
  free(plan);
  warden_close(db2);
  c.db = keep;
  /* restored, it is used again, and check is clean */
  write_file(path, good, len);
  query(&c, qv, 1000, WARDEN_STRATEGY_ANN, got, &plan);
  assert_non_null(strstr(plan, "\"strategy\":\"ivf\""));
  free(plan);
  wd_txn tx;
  assert_int_equal(store_read_begin(c.db, &tx), 0);
  json_t *r = json_object();
  assert_int_equal(wd_index_check(c.db, &tx, r), 0);
  store_read_end(&tx);
  json_decref(r);
  /* an index build over a damaged file replaces it */
  write_file(path, good, len / 2);
  build(&c, 0, &rep);
  assert_true(json_is_true(json_object_get(rep, "retrained")));
  json_decref(rep);
  assert_string_equal(stats_state(&c, st, sizeof st), "ready");
  free(good);
  free(img);
  coll_close(&c);
}

static void test_stale_catch_up(void **state) {
  (void)state;
  size_t n = quick() ? 3000 : 8000, extra = 200;
  coll c;
  coll_open(&c, n + extra);
  ingest_range(&c, 0, n);
  json_t *rep;
  build(&c, 0, &rep);
  json_decref(rep);
  char st[64];
  /* new documents after the build */
  ingest_range(&c, n, n + extra);
  assert_string_equal(stats_state(&c, st, sizeof st), "stale");
  int found = 0;
  for (size_t i = n; i < n + extra; i += 20) {
    uint32_t got[K];
    char *plan;
    size_t ng = query(&c, c.x + i * DIM, 1000, WARDEN_STRATEGY_ANN, got, &plan);
    assert_true(ng == K);
    assert_non_null(strstr(plan, "\"strategy\":\"ivf\""));
    assert_null(strstr(plan, "\"caught_up\":0"));
    free(plan);
    found += got[0] == i; /* its own vector is its nearest neighbour */
  }
  assert_int_equal(found, (int)(extra / 20));
  /* deletes need no rebuild: a deleted doc is never returned */
  char id[32];
  snprintf(id, sizeof id, "d%06zu", n + 40);
  const char *ids[1] = {id};
  assert_int_equal(warden_delete(c.db, ids, 1, NULL), 0);
  uint32_t got[K];
  size_t ng = query(&c, c.x + (n + 40) * DIM, 1000, WARDEN_STRATEGY_ANN, got, NULL);
  for (size_t j = 0; j < ng; j++) assert_true(got[j] != n + 40);
  assert_int_equal(ng, K);
  /* the next build persists the caught-up slots without retraining */
  build(&c, 0, &rep);
  assert_false(json_is_true(json_object_get(rep, "retrained")));
  assert_int_equal(json_integer_value(json_object_get(rep, "assigned")), extra - 1);
  assert_int_equal(json_integer_value(json_object_get(rep, "vectors")), n + extra - 1);
  assert_false(json_is_true(json_object_get(rep, "rebuild_suggested")));
  json_decref(rep);
  assert_string_equal(stats_state(&c, st, sizeof st), "ready");
  char *plan;
  ng = query(&c, c.x + (n + 60) * DIM, 1000, WARDEN_STRATEGY_ANN, got, &plan);
  assert_int_equal(got[0], n + 60);
  assert_non_null(strstr(plan, "\"caught_up\":0"));
  free(plan);
  /* --rebuild retrains */
  build(&c, 1, &rep);
  assert_true(json_is_true(json_object_get(rep, "retrained")));
  json_decref(rep);
  coll_close(&c);
}

typedef struct qthread {
  coll *c;
  int iters, errors;
} qthread;

static void *qrun(void *arg) {
  qthread *t = arg;
  for (int i = 0; i < t->iters; i++) {
    warden_query_opts o;
    memset(&o, 0, sizeof o);
    o.principal = "user:t";
    o.filter = "{\"g\":{\"$lt\":500}}";
    o.k = K;
    o.strategy = i % 2 ? WARDEN_STRATEGY_ANN : WARDEN_STRATEGY_AUTO;
    warden_results *r = NULL;
    const float *q = t->c->x + (size_t)((i * 37) % 1000) * DIM;
    if (warden_query(t->c->db, q, 1, &o, &r)) {
      t->errors++;
      continue;
    }
    size_t n = warden_results_count(r, 0);
    if (n != K) t->errors++;
    for (size_t j = 0; j < n; j++) {
      unsigned long d = strtoul(warden_results_hit(r, 0, j)->doc_id + 1, NULL, 10);
      if (d % 1000 >= 500) t->errors++;
    }
    warden_results_free(r);
  }
  return NULL;
}

/* The oracle checks above with the graph index built and the planner free
 * to choose it (issue 14). */
static void test_engine_recall_graph(void **state) {
  g_graph = 1;
  test_engine_recall(state);
  g_graph = 0;
}
static void test_anticorrelated_graph(void **state) {
  g_graph = 1;
  test_anticorrelated(state);
  g_graph = 0;
}

/* Correlated filters through the graph (issue 14's local-density probe):
 * the allowed set is the 5 % of the collection most similar to doc 0
 * ("far": 0), queried around doc 0 (correlated) and around random docs
 * (mostly unrelated to it).  Against the brute-force oracle: no leak,
 * exactly min(k, allowed) hits, recall@10 >= 0.95 on each side; and the
 * probe ran and re-planned at least one correlated query (its explain
 * shows a local density above the filter's share). */
static void test_correlated_graph(void **state) {
  (void)state;
  g_graph = 1;
  /* at d=32 and 20k vectors the IVF and the exact scan are cheap enough
   * that the probe's cost gate stays shut: run it on every eligible query
   * (engine/search.c probe_forced) */
  setenv("WARDEN_TEST_PROBE", "1", 1);
  size_t n = quick() ? 8000 : 20000, nq = quick() ? 16 : 40;
  coll c;
  unsigned char *far = anti_coll(&c, n, 0.10, 0.95);
  unsigned char *ok = malloc(n);
  for (size_t i = 0; i < n; i++) ok[i] = far[i] == 0;
  size_t replanned = 0, walked = 0;
  for (int side = 0; side < 2; side++) {
    double rsum = 0;
    for (size_t qn = 0; qn < nq; qn++) {
      const float *base = side == 0 ? c.x : c.x + (rnd() % n) * DIM;
      float qv[DIM];
      for (int j = 0; j < DIM; j++) qv[j] = base[j] + (float)(0.15 * gauss());
      warden_query_opts o;
      memset(&o, 0, sizeof o);
      o.principal = "user:t";
      o.filter = "{\"far\":0}";
      o.k = K;
      o.explain = 1;
      warden_results *r = NULL;
      if (warden_query(c.db, qv, 1, &o, &r)) fail_msg("query: %s", warden_errmsg(c.db));
      size_t ng = warden_results_count(r, 0);
      uint32_t got[K], truth[K];
      for (size_t i = 0; i < ng; i++) {
        got[i] = (uint32_t)strtoul(warden_results_hit(r, 0, i)->doc_id + 1, NULL, 10);
        if (!ok[got[i]]) fail_msg("leak: doc %u for far=0", got[i]);
      }
      json_t *plan = json_loads(warden_results_plan(r, 0), 0, NULL);
      assert_non_null(plan);
      json_t *g = json_object_get(plan, "graph");
      double ld = json_number_value(json_object_get(g, "local_density"));
      double sel = json_number_value(json_object_get(g, "selectivity"));
      if (side == 0 && json_is_number(json_object_get(g, "local_density")) && ld > 2 * sel) {
        replanned++;
        walked += strcmp(json_string_value(json_object_get(plan, "strategy")), "graph") == 0;
      }
      json_decref(plan);
      warden_results_free(r);
      size_t nt = oracle(c.x, n, ok, qv, truth);
      assert_int_equal(ng, nt);
      rsum += overlap(truth, nt, got, ng);
    }
    if (rsum / (double)nq < 0.95)
      fail_msg("%s: recall@10 %.3f", side ? "unrelated" : "correlated", rsum / (double)nq);
  }
  fprintf(stderr, "correlated: %zu of %zu queries re-planned from the local density, %zu walked\n",
          replanned, nq, walked);
  /* (at d=32 the re-planned walk is priced above the IVF and the codes
   * scan, so "walked" is usually 0 here: the walk planned from the local
   * density is measured on bench/graph_gen.py image-784, where
   * graph_bench checks every hit against the filter's rule) */
  assert_true(replanned > 0);
  free(ok);
  free(far);
  coll_close(&c);
  g_graph = 0;
}

/* Issue 15: warden_index_opts.phase_progress reports the IVF phase then
 * the graph phase, each from 0 to its total (the vectors) with done never
 * going back, and `progress` still sees the IVF phase alone. */
typedef struct prog_log {
  char phase[8][8];
  uint64_t first[8], last[8], total[8];
  int nphase, back, plain, plain_done;
} prog_log;
static void on_phase(void *ctx, const char *phase, uint64_t done, uint64_t total) {
  prog_log *l = ctx;
  if (l->nphase == 0 || strcmp(l->phase[l->nphase - 1], phase) != 0) {
    assert_true(l->nphase < 8);
    snprintf(l->phase[l->nphase], sizeof l->phase[0], "%s", phase);
    l->first[l->nphase] = done;
    l->last[l->nphase] = done;
    l->total[l->nphase++] = total;
    return;
  }
  if (done < l->last[l->nphase - 1] || total != l->total[l->nphase - 1]) l->back++;
  l->last[l->nphase - 1] = done;
}
static void on_plain(void *ctx, uint64_t done, uint64_t total) {
  prog_log *l = ctx;
  l->plain++;
  if (done == total) l->plain_done++;
}
static void test_index_progress(void **state) {
  (void)state;
  g_graph = 1;
  size_t n = quick() ? 9000 : 12000;
  coll c;
  coll_open(&c, n);
  ingest_range(&c, 0, n);
  prog_log l;
  memset(&l, 0, sizeof l);
  warden_index_opts io = {0, on_plain, &l, on_phase};
  char *js = NULL;
  if (warden_index_build(c.db, &io, &js)) fail_msg("index: %s", warden_errmsg(c.db));
  warden_free(js);
  assert_int_equal(l.nphase, 2);
  assert_string_equal(l.phase[0], "ivf");
  assert_string_equal(l.phase[1], "graph");
  for (int i = 0; i < 2; i++) {
    assert_int_equal(l.first[i], 0);
    assert_int_equal(l.total[i], n);
    assert_int_equal(l.last[i], n);
  }
  assert_int_equal(l.back, 0);
  assert_true(l.plain >= 2); /* 0 of n, ..., n of n: the IVF phase only */
  assert_int_equal(l.plain_done, 1);
  coll_close(&c);
  g_graph = 0;
}

static void test_concurrent(void **state) {
  (void)state;
  size_t n = quick() ? 2000 : 6000, step = quick() ? 200 : 500;
  coll c;
  coll_open(&c, n + 4 * step);
  ingest_range(&c, 0, n);
  json_t *rep;
  build(&c, 0, &rep);
  json_decref(rep);
  enum { NT = 4 };
  pthread_t th[NT];
  qthread qt[NT];
  for (int i = 0; i < NT; i++) {
    qt[i] = (qthread){&c, quick() ? 20 : 60, 0};
    assert_int_equal(pthread_create(&th[i], NULL, qrun, &qt[i]), 0);
  }
  for (int b = 0; b < 4; b++) ingest_range(&c, n + b * step, n + (b + 1) * step);
  for (int i = 0; i < NT; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(qt[i].errors, 0);
  }
  coll_close(&c);
}

/* every test starts with the graph off: a failed *_graph test leaves
 * through cmocka's longjmp before it can reset g_graph, and the tests
 * after it then ran with the graph (one failure reported as four) */
static int graph_off(void **state) {
  (void)state;
  g_graph = 0;
  return 0;
}

int main(void) {
  /* one graph build thread: the same graph every run (engine/graph_index.c) */
  setenv("WARDEN_BUILD_THREADS", "1", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_planner, graph_off),
      cmocka_unit_test_setup(test_image_validation, graph_off),
      cmocka_unit_test_setup(test_bits_expansion, graph_off),
      cmocka_unit_test_setup(test_ivf_probe_order, graph_off),
      cmocka_unit_test_setup(test_ivf_recall_flat, graph_off),
      cmocka_unit_test_setup(test_ivf_recall_sq8, graph_off),
      cmocka_unit_test_setup(test_ivf_l2, graph_off),
      cmocka_unit_test_setup(test_engine_recall, graph_off),
      cmocka_unit_test_setup(test_allowed_cached, graph_off),
      cmocka_unit_test_setup(test_cached_exact_measured, graph_off),
      cmocka_unit_test_setup(test_unfiltered_probe, graph_off),
      cmocka_unit_test_setup(test_anticorrelated, graph_off),
      cmocka_unit_test_setup(test_anticorrelated_graph, graph_off),
      cmocka_unit_test_setup(test_engine_recall_graph, graph_off),
      cmocka_unit_test_setup(test_starved_exact, graph_off),
      cmocka_unit_test_setup(test_crash_consistency, graph_off),
      cmocka_unit_test_setup(test_stale_catch_up, graph_off),
      cmocka_unit_test_setup(test_correlated_graph, graph_off),
      cmocka_unit_test_setup(test_concurrent, graph_off),
      cmocka_unit_test_setup(test_index_progress, graph_off),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
