/*
 * search.c -- strategy selection and execution (see search.h): the
 * cost-based planner, the filtered IVF probe with its exact fallback, and
 * the exact scan.
 *
 * The planner knows the allowed set's exact size before searching, so it
 * can price both strategies per query:
 *
 *   exact = nallowed * (EX_VEC + EX_DIM * dim)               [ns]
 *   ivf   = nlist * dim * IVF_CENT                  (probe order)
 *         + visited * IVF_VISIT                     (bitmap probe per id)
 *         + visited * s * (IVF_VEC + IVF_DIM * dim) (distances, allowed only)
 *
 * where s = nallowed / nindexed and visited = max(min_lists * list_len,
 * want_allowed / s): the probe stops once want_allowed allowed vectors were
 * scanned, so a selective filter makes it visit more lists.  Batches of
 * queries (nq >= 2) are priced like single ones: the exact scan's SGEMM
 * path only applies when >= 1/8 of a block is allowed (index/scan.c),
 * far above the measured crossover, so it does not move the decision.
 * Visits use a dense bitset copy of the allowed set when that is cheaper
 * than probing the roaring bitmap per id (selective filters).
 *
 * The constants come from bench/planner_calib.c on the development machine
 * (AMD EPYC, 2 cores, AVX-512, 200k x 384 and 50k x 64, cosine); see the
 * numbers next to them.  They only need to be right within ~2x: near the
 * crossover both strategies cost about the same.
 *
 * Recall: the probe parameters (PROBE_*, WANT_*) were tuned with
 * bench/ivf_bench.c for recall@10 >= 0.95 at every selectivity on
 * clustered data.  When the probe hits its bounds before scanning
 * want_allowed candidates, or returns fewer than k, the query is re-run
 * exactly, so ANN never silently returns short or filter-starved results.
 *
 * Threading: wd_search is reentrant; the index snapshot is reference
 * counted (engine/indexer.c).
 */
#include "engine/search.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/graph_index.h"
#include "engine/indexer.h"
#include "index/scan.h"
#include "base/clock.h"

/* ---- measured cost constants (ns), bench/planner_calib.c ----
 * Measured on 200k x 384 and 200k x 64 (1788 lists), three runs on a
 * loaded 2-core EPYC (AVX-512); per-unit values at d=384 in brackets:
 *   exact scan, 0.2%..10% allowed: 130-330 ns/vector [~250], d=64 ~70;
 *   IVF per query: 64-80 us fixed [centroid distances ~0.09 ns per
 *   centroid-dim], d=64 ~28 us; roaring_bitmap_contains per visited id
 *   36-46 ns (random sets: array containers); the dense bitset 2.0 ns per
 *   allowed id to build and 2.5 ns per visit; scanning an allowed vector
 *   72-105 ns [~80], d=64 19-34.
 *   Measured crossover (single query, uncorrelated filter): ~0.5% allowed
 *   at d=384 (exact 340 us vs IVF 312 us), ~1-2% at d=64; the estimates
 *   below cross at the same points. */
#define EX_VEC 20.0       /* per allowed vector: bitmap walk, heap offer */
#define EX_DIM 0.60       /* per allowed vector and dimension */
/* ... when the allowed vectors are in the CPU cache (the same set scanned
 * moments ago, see hot_lookup): bench/scanbench.c "1% hot", one 1 % set
 * scanned again and again: 14.5 ns per vector at d=64, 24 at d=100, 50 at
 * d=384, 69 at d=768 -- against 42, 78, 208, 503 for a different set per
 * query.  On synthetic-384 at 1 % uncorrelated (one filter for every
 * query) the exact scan ran at 5,500 QPS while the planner, pricing it
 * cold, chose IVF at 2,600. */
#define EX_VEC_HOT 10.0
#define EX_DIM_HOT 0.10
/* A set counts as cached when the bytes read by scans since its vectors
 * were last scanned, plus its own vectors, fit in HOT_LLC_FRAC of the
 * last-level cache (an LRU stack-distance estimate; other processes are
 * not seen).  A set last answered by IVF had only some codes read: it is
 * priced cached only when it was used just before (HOT_SEEN_FRAC of the
 * cache read since), so that a set queried again and again gets one exact
 * scan that brings it into the cache, while per-query filters that merely
 * recur (100 team filters in random order: one in four recurs within 16
 * MB of reads) are not scanned cold on the strength of a stale sighting. */
#define HOT_LLC_FRAC 0.5
#define HOT_SEEN_FRAC 0.0625
#define IVF_FIXED 15000.0 /* per query: allocation, heapify, setup */
#define IVF_CENT 0.08     /* per centroid and dimension (probe order) */
#define IVF_VISIT 45.0    /* per visited id: roaring_bitmap_contains */
#define IVF_VISIT_BITS 3.0 /* per visited id with the dense bitset */
#define BITS_ID 1.0       /* building the bitset, per allowed id in array
                             containers (sets under 1/16 of their range) */
#define BITS_RANGE 0.015  /* ... per id of the range otherwise: bitset and
                             run containers are copied or filled word-wise
                             (0.003-0.04 ns measured, 200k ids, 10-100 %) */
#define IVF_VEC 5.0       /* per allowed (scanned) vector */
#define IVF_DIM 0.20      /* per scanned vector and dimension */
/* SQ8 lists (AVX-512 VNNI): ~30 ns per scanned 384-d code, measured on the
 * quick synthetic bench at 50 % anti-correlated (25k codes in ~0.75 ms
 * beyond the visits); plus the exact re-rank of the candidates. */
#define SQ8_DIM 0.065     /* per scanned code and dimension */

/* ---- probe parameters (bench/ivf_bench.c) ---- */
#define PROBE_MIN 8        /* lists probed at least */
#define PROBE_FRAC 0.045   /* ... or this fraction of nlist (0.012 gave recall 0.89 on synthetic-384: raised by measurement) */
#define WANT_K 96          /* allowed candidates scanned: WANT_K * k ... (48 gave recall 0.947 at 10 % on GloVe) */
#define WANT_MIN 512       /* ... and at least this many */
#define VISIT_SLACK 4.0    /* bound: visited <= VISIT_SLACK * expected */
#define STARVED 0.5        /* probed region's allowed density below this
                              fraction of the global one: widen the probe */
/* The widened probe (anti-correlated filters).  Measured, forced IVF:
 * GloVe-100 (1000 queries) 50 % anti-correlated 307 -> 643 QPS at recall
 * 0.974 (every list in SQ8 codes before), 10 % 299 -> 618 QPS at 0.976;
 * synthetic-384 (300 queries) 50 % 295 -> 642 QPS at 0.997.  WIDE_EFF 2
 * gave GloVe 0.966 but 0.93 on test_anticorrelated's half-space filter,
 * 3 gives 0.95-0.97 there, 4 and more read most lists on GloVe. */
#define WIDE_EFF 3.0

/* Dense filters scan whole lists and test the filter only on the way into
 * the heap (wd_ivf_params.whole_from).  Measured, forced IVF, 1000
 * queries, off/on: synthetic-384 50 % uncorrelated 1,644-1,718 ->
 * 2,647-2,821 QPS (allowed and filtered-out entries alternate at random:
 * a mispredicted branch and a kernel call per short run), ACL principal
 * u1027 (31 %) 2,307-2,647 -> 2,637-2,783, glove-100 50 % 1,675 -> 1,715;
 * at 10 % it loses (synthetic 3,758-4,211 -> 2,964-3,086, glove-100
 * 2,599 -> 1,967): the filtered-out codes cost more than they save.  The
 * same holds list by list, so a list is scanned whole only while the list
 * before it was dense: with every list of a 50 % anti-correlated probe
 * scanned whole, forced IVF fell from 509 to 416 QPS (synthetic-384) and
 * from 782 to 503 (glove-100). */
#define WHOLE_SEL 0.25

/* ---- the graph index (issue 14) ----
 * Cost of a graph query: the calibrated code distances (wd_hnsw_plan's
 * ndist, measured on this collection at build time) times the cost of one
 * (a random SQ8 code: prefetched cache lines, the VNNI or float SQ8 kernel,
 * a heap offer), the float re-rank (wd_hnsw_rerank candidates), and the allowed set
 * as a dense bitset.  GR_* measured with bench/graph_bench.c (see its
 * header): synthetic 784-d L2 and 100-d cosine, one thread, loaded 2-core
 * EPYC. */
#define GR_FIXED 4000.0   /* per query: query codes, visited-set reuse, heaps */
/* GR_DIST 30 was tried once the walk's heaps compared integer keys
 * (index/hnsw.c hkey; a planned text-384 walk then costs 59-62 ns per
 * distance at d=384 against the 78 priced here) and not kept: it sent
 * text-384 50 % to the graph (p50 104-109 us against the IVF's 127-134),
 * but also bench/graph_gen.py neardup-256 10 % (99 us, recall 0.969,
 * against the IVF's 50 us and 0.998) and 10 % correlated (recall 0.9555
 * -> 0.938).  Those walks spend 4 distances per hop where text-384
 * spends 8: the cost is per hop as much as per distance, and the
 * calibration does not record hops. */
#define GR_DIST 40.0      /* per code distance: cache misses, heap work */
#define GR_DIM 0.10       /* per code distance and dimension */
/* per second-hop neighbour list (wd_hnsw_stats.lists): two-hop mode reads
 * the list of every disallowed neighbour it passes through, a random
 * 4 (M0 + 1)-byte read and M0 filter tests that ndist does not count.
 * Measured, text-384 60k at 10 %, two-hop efSearch 128 (645 distances,
 * 1,353 lists per query): 255 us per query where distances, re-rank and
 * bitset account for 66 -- ~140 ns per list (a cache miss each).  Unpriced,
 * the planner chose that walk over the IVF, which ran 2.4x faster. */
#define GR_LIST 140.0
#define GR_RERANK 1.5     /* a float re-rank distance costs this many exact-scan vectors
                             (a random row, not a streamed block) */
/* The walk saw fewer allowed nodes near the query than the filter's
 * global share (anti-correlated filter): below this fraction of it the
 * query is re-planned at the local density (more effort, or exact). */
#define GR_STARVED 0.3
/* The local-density probe (wd_hnsw_local_density): run for one query
 * whose filter allows under LOCAL_MAX_SEL of the graph; a local share
 * over LOCAL_RATIO times the global one re-plans the walk.  Cost: the
 * upper-level descent (the walk then does it again) and ~1,000 bit tests
 * on up to 33 neighbour lists: ~15 us at d=784 (image-784 60k), hence the
 * cost gate in wd_search_t. */
#define LOCAL_MAX_SEL 0.5
#define LOCAL_RATIO 2.0

/* WARDEN_TEST_PROBE=1 (tests only): run the local-density probe wherever
 * it is eligible, not only where the cost gate in wd_search_t says it can
 * change the choice -- tests/test_ann.c's small collections never open the
 * gate, and the re-planned path must meet the oracle there too.  Read
 * only where the gate stayed shut (a getenv, ~0.1 us, against a query of
 * tens of microseconds), so a test can set it at any time. */
static int probe_forced(void) {
  const char *e = getenv("WARDEN_TEST_PROBE");
  return e && *e == '1';
}
/* A walk may spend this many times its calibrated distances (at least
 * GR_BUDGET_MIN) before it counts as lost (then: exact).  The calibrated
 * figure is a mean; 8x leaves room for the slow queries of its tail (4x
 * and a 0.5 density threshold after 8 hops sent 2 of 50 uncorrelated
 * image-784 10 % queries to the exact scan). */
#define GR_BUDGET 8.0
#define GR_BUDGET_MIN 256.0

/* The brute-force scan over the graph's codes (wd_hnsw_scan_codes): per
 * allowed node one SQ8 code read in slot order with prefetch, then the
 * float re-rank of CS_RERANK_K * k (at least CS_RERANK_MIN) candidates.
 * Measured with bench/graph_bench.c, image-784 60k (784-d L2), forced
 * codes against the planner's choice, alternating runs on a loaded
 * 2-core machine: 1 % uncorrelated (600 allowed) 78-82 us against 140-162
 * exact; 1 % correlated (1,394) 167-178 against 202 graph; 1 % anti
 * 126-140 against 137-184 exact; 0.1 % (60) 35 against 24 exact (the
 * re-rank alone costs more than the exact scan: priced so).  Per code
 * ~100 ns at d=784 under that load, about a quarter of an exact-scan
 * vector (a byte per dimension instead of four); per re-rank ~1 us (a
 * random 3 KB row).  Recall 1.000 at every one of those points with a
 * re-rank of 12 to 64. */
#define CS_FIXED 3000.0   /* per query: query codes, buffers, heap */
#define CS_VEC 25.0       /* per allowed node: slot -> node, heap offer */
#define CS_DIM 0.10       /* per allowed node and dimension (the code read) */
#define CS_RERANK_K 4
#define CS_RERANK_MIN 40

static double est_codes_us(uint64_t in_g, uint64_t ntail, size_t k, size_t dim) {
  double r = (double)(CS_RERANK_K * k > CS_RERANK_MIN ? CS_RERANK_K * k : CS_RERANK_MIN);
  double ex_vec = EX_VEC + EX_DIM * (double)dim;
  return (CS_FIXED + (double)in_g * (CS_VEC + CS_DIM * (double)dim) + r * GR_RERANK * ex_vec +
          (double)ntail * ex_vec) / 1e3;
}

static size_t codes_rerank(size_t k) {
  return CS_RERANK_K * k > CS_RERANK_MIN ? CS_RERANK_K * k : CS_RERANK_MIN;
}

static int get_block(void *ctx, uint32_t b, const float **base) {
  return store_block_get((wd_txn *)ctx, b, base);
}

/* Graphs whose calibration recorded hops (wd_hnsw_cal_hops) are priced
 * per hop and per distance: a hop is a dependent read of the expanded
 * node's neighbour list, its visit tags and a heap pop, whatever number
 * of new neighbours it then scores.  Least squares over 108 walks
 * (bench/graph_walk.c and graph_walk_fit.py on bench/graph_gen.py
 * text-384, image-784, neardup-256 and heavytail-128 at 60k; 10, 50 and
 * 100 %; efSearch 16-256; expand mode, one thread, Xeon with AVX-512
 * VNNI, mean time of the search call), two runs: 172-176 ns per hop,
 * 21-25 ns + 0.058-0.070 ns per dimension per code distance; median
 * error 5.6-7.3 % (max 18-31 %), where distances alone (GR_DIST above)
 * fit with 11.8-16.8 % (max 65-70 %) -- text-384's walks score 6.9 new neighbours per hop,
 * neardup-256's 3.6, and a price per distance alone cannot serve both:
 * lowered to fit text-384 (30 ns) it sent neardup-256 10 % to a walk
 * twice as slow as the IVF.  Files without hops keep the old model. */
#define GR_HOP 170.0
#define GR_HDIST 21.0
#define GR_HDIM 0.06

typedef struct graph_plan {
  int ok;          /* calibrated for this selectivity and target */
  size_t ef;
  int two_hop;
  double ndist, lists, hops, est_us;
} graph_plan;

static void plan_graph(const wd_hnsw *g, double sel, double target, size_t k, size_t dim,
                       uint64_t nallowed, uint64_t range, uint64_t ntail, graph_plan *gp) {
  memset(gp, 0, sizeof *gp);
  gp->est_us = -1;
  if (!g) return;
  int hop_model = g->cal_hops;
  double per_dist = hop_model ? GR_HDIST + GR_HDIM * (double)dim : GR_DIST + GR_DIM * (double)dim;
  /* The hops price the chosen walk, they do not choose it: weighted into
   * the choice (GR_HOP / per_dist hops worth a distance), tests/
   * test_hnsw.c's near-duplicates at 30 % (quick mode) moved to a walk
   * that met its calibrated recall but gave 0.948 on fresh queries (0.965
   * as chosen by distances and lists). */
  if (!wd_hnsw_plan(g, sel, target, k, GR_LIST / per_dist, &gp->ef, &gp->two_hop, &gp->ndist,
                    &gp->lists, &gp->hops))
    return;
  gp->ok = 1;
  double bits = sel < 1.0 / 16 ? (double)nallowed * BITS_ID : (double)range * BITS_RANGE;
  double ex_vec = EX_VEC + EX_DIM * (double)dim;
  gp->est_us = (GR_FIXED + gp->ndist * per_dist + (hop_model ? gp->hops * GR_HOP : 0) +
                gp->lists * GR_LIST + (double)wd_hnsw_rerank(gp->ef, k) * GR_RERANK * ex_vec +
                bits + (double)ntail * ex_vec) / 1e3;
}

void wd_search_close(warden *db) { wd_ann_close(db); }

/* The calibrated probe depth (index/ivf.h wd_ivf_cal) for selectivity
 * sel at recall target + CAL_MARGIN: log-linear in selectivity between the
 * calibrated selectivities around sel and in recall between the
 * calibrated targets around the wanted one (the measured curves are
 * smooth in both).  0 when the table cannot say: no table, a target above
 * the highest calibrated one, sel below the lowest calibrated
 * selectivity, or a point the sweep did not reach (the fixed rule then
 * prices the probe, as for older files).  The margin: the table's recall
 * is a mean over 48 sample queries; bench/graph_gen.py text-384 at 10 %
 * got 0.9675 from the 0.95 entry itself on new queries. */
#define CAL_MARGIN 0.015
/* The table's list count for target column t at selectivity sel; 0 when
 * it cannot say, and then *unreached = 1 when that is because a sweep
 * around sel stopped before reaching t (indexer.c CALIB_MAX_SHARE). */
static double cal_at(const wd_ivf_cal *cal, size_t t, double sel, int *unreached) {
  const double sels[WD_IVF_CAL_NSEL] = WD_IVF_CAL_SELS;
  if (sel >= sels[0]) {
    if (!cal->lists[0][t]) *unreached = 1;
    return cal->lists[0][t];
  }
  for (size_t i = 1; i < WD_IVF_CAL_NSEL; i++) {
    if (sel < sels[i]) continue;
    double a = cal->lists[i - 1][t], b = cal->lists[i][t]; /* at sels[i-1] > sel >= sels[i] */
    if (!a || !b) {
      *unreached = 1;
      return 0;
    }
    double u = (log(sels[i - 1]) - log(sel)) / (log(sels[i - 1]) - log(sels[i]));
    return exp(log(a) * (1 - u) + log(b) * u);
  }
  return 0;
}

/* The calibrated probe depth for sel and target (0: the table cannot
 * say).  *unreached: the table was measured here and its sweep gave up
 * before the target (see cal_at). */
static size_t cal_lists(const wd_ivf_cal *cal, double sel, double target, int *unreached) {
  int un = 0;
  if (unreached) *unreached = 0;
  if (!cal || !cal->present) return 0;
  const double tgts[WD_IVF_CAL_NTGT] = WD_IVF_CAL_TGTS;
  target += CAL_MARGIN;
  if (target > tgts[WD_IVF_CAL_NTGT - 1] + 1e-9) return 0;
  size_t t = 0;
  while (t < WD_IVF_CAL_NTGT && tgts[t] + 1e-9 < target) t++;
  double hi = cal_at(cal, t, sel, &un);
  if (!(hi > 0)) {
    if (unreached) *unreached = un;
    return 0;
  }
  if (t == 0 || target >= tgts[t] - 1e-9) return (size_t)ceil(hi - 1e-6);
  double lo = cal_at(cal, t - 1, sel, &un);
  if (!(lo > 0)) return (size_t)ceil(hi - 1e-6);
  double u = (target - tgts[t - 1]) / (tgts[t] - tgts[t - 1]);
  return (size_t)ceil(exp(log(lo) * (1 - u) + log(hi) * u) - 1e-6) /* exp(log(x)) != x */;
}

void wd_plan_choose(const wd_plan_in *in, wd_plan_out *out) {
  memset(out, 0, sizeof *out);
  double dim = (double)in->dim, na = (double)in->nallowed;
  double k = (double)(in->k ? in->k : 10);
  out->est_exact_us = in->hot ? na * (EX_VEC_HOT + EX_DIM_HOT * dim) / 1e3
                              : na * (EX_VEC + EX_DIM * dim) / 1e3;
  if (!in->have_ivf || in->nlist == 0 || in->nindexed == 0) {
    out->reason = in->force == WARDEN_STRATEGY_ANN ? "no usable index" : "no index";
    out->est_ivf_us = -1;
    out->est_all_us = -1;
    return;
  }
  double nl = (double)in->nlist, ni = (double)in->nindexed;
  double len = ni / nl;
  double s = na / ni;
  if (s > 1) s = 1;
  /* the probe depth measured on this very index at build time (see
   * engine/indexer.c calibrate()) beats any fixed fraction: data sets
   * differ (synthetic-384 needs ~4% of the lists, GloVe ~10%) */
  double minl = in->calib_lists ? (double)in->calib_lists : ceil(nl * PROBE_FRAC);
  if (minl < PROBE_MIN) minl = PROBE_MIN;
  if (minl > nl) minl = nl;
  double want = WANT_K * k > WANT_MIN ? WANT_K * k : WANT_MIN;
  /* the table measured on this index at this selectivity and target:
   * the list count is the effort, and k allowed vectors the only other
   * condition (the fixed rule's want above read on until 96 k allowed
   * vectors were seen, whatever the data) */
  int unreached = 0;
  size_t cl = cal_lists(in->cal, s, in->target > 0 ? in->target : 0.95, &unreached);
  if (!cl && unreached) {
    /* The sweep on this index gave up before the target at this
     * selectivity: probing half the collection did not reach it.  The
     * fixed rule would probe a few percent of the lists anyway (bench/
     * graph_gen.py uniform-960, 60k, 10 %: 208 lists, recall 0.876; 8 %
     * anti-correlated: 0.728).  What the table does say is that only a
     * probe of (nearly) every list gets there: price that one, and probe
     * that deep if it is still chosen. */
    minl = nl;
    want = k;
    out->calibrated = 1;
    out->unreached = 1;
  } else if (cl) {
    minl = (double)cl > nl ? nl : (double)cl;
    want = k;
    out->calibrated = 1;
    /* ... and the depths of the calibrated selectivities above s, for a
     * probe that finds the filter denser near the query than overall
     * (wd_ivf_params.dyn_*; measured: image-784 1 % correlated probed the
     * 1 % depth although its region held the allowed vectors of a 10 %
     * filter) */
    const double csel[WD_IVF_CAL_NSEL] = WD_IVF_CAL_SELS;
    size_t nd = 0;
    for (size_t i = 0; i < WD_IVF_CAL_NSEL; i++) {
      if (csel[i] <= s) break;
      size_t li = cal_lists(in->cal, csel[i], in->target > 0 ? in->target : 0.95, NULL);
      if (!li) continue;
      out->dyn_sel[nd] = csel[i];
      out->dyn_lists[nd++] = li;
    }
    out->ivf.ndyn = nd;
    out->ivf.dyn_sel = out->dyn_sel; /* out outlives the probe (wd_search_t's po) */
    out->ivf.dyn_lists = out->dyn_lists;
  }
  if (want > na) want = na;
  double visited = minl * len;
  if (s > 0 && want / s > visited) visited = want / s;
  if (visited > ni) visited = ni;
  out->est_visited = visited;
  /* the dense bitset pays for itself when the probe visits many ids per
   * allowed id (selective filters) */
  double build = s < 1.0 / 16 ? na * BITS_ID : ni * BITS_RANGE;
  double v_rb = visited * IVF_VISIT, v_bits = build + visited * IVF_VISIT_BITS;
  out->use_bits = v_bits < v_rb;
  out->ivf.rerank = wd_ivf_rerank(k);
  double per_vec = IVF_VEC + (in->sq8 ? SQ8_DIM : IVF_DIM) * dim;
  double rerank = in->sq8 ? (double)out->ivf.rerank * (EX_VEC + EX_DIM * dim) : 0;
  out->est_ivf_us = (IVF_FIXED + nl * dim * IVF_CENT + (out->use_bits ? v_bits : v_rb) +
                     visited * s * per_vec + rerank) / 1e3;
  out->est_all_us = in->sq8 ? (IVF_FIXED + nl * dim * IVF_CENT + build +
                               ni * IVF_VISIT_BITS + na * per_vec + 2 * rerank) / 1e3
                            : -1;
  /* the widened probe at worst reads every list through the same filter
   * test as the first probe */
  out->est_wide_us = (IVF_FIXED + nl * dim * IVF_CENT +
                      (out->use_bits ? build + ni * IVF_VISIT_BITS : ni * IVF_VISIT) +
                      na * per_vec + rerank) / 1e3;
  out->ivf.min_lists = (size_t)minl;
  out->ivf.want_allowed = (uint64_t)want;
  out->ivf.max_lists = in->nlist;
  double maxv = visited * VISIT_SLACK;
  out->ivf.max_visited = maxv > ni ? (uint64_t)ni : (uint64_t)maxv;
  if (in->force == WARDEN_STRATEGY_ANN) {
    out->use_ivf = 1;
    out->reason = "forced";
  } else if (in->force == WARDEN_STRATEGY_EXACT) {
    out->reason = "forced";
  } else if (in->nallowed <= in->k) {
    out->reason = "allowed set not larger than k";
  } else if (out->est_ivf_us < out->est_exact_us) {
    out->use_ivf = 1;
    out->reason = "cheaper";
  } else {
    out->reason = "cheaper";
  }
}

/* ---- recently scanned allowed sets ----
 * The handle counts the bytes its scans read (db->touched) and remembers,
 * in a small direct-mapped table, the count at which each allowed set was
 * last scanned.  A set is priced as cached when what was read since then
 * plus its own vectors fits in HOT_LLC_FRAC of the last-level cache. */
static size_t llc_bytes;
static pthread_once_t llc_once = PTHREAD_ONCE_INIT;

static void llc_detect(void) {
  /* the largest cache sysfs lists for cpu0; sysconf is the fallback (it
   * over-reported 320 MiB for a 32 MiB L3 in a VM here) */
  size_t best = 0;
  for (int i = 0; i < 8; i++) {
    char path[96], buf[32];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    if (fgets(buf, sizeof buf, f)) {
      char *e;
      unsigned long long v = strtoull(buf, &e, 10);
      if (*e == 'K') v <<= 10;
      else if (*e == 'M') v <<= 20;
      if (v > best) best = (size_t)v;
    }
    fclose(f);
  }
  if (best == 0) {
    long v = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (v <= 0) v = sysconf(_SC_LEVEL2_CACHE_SIZE);
    best = v > 0 ? (size_t)v : (size_t)8 << 20;
  }
  llc_bytes = best;
}

/* Whether a set is still in the cache cannot be seen; what its scan cost
 * can.  The cached price (EX_*_HOT) models a private last-level cache: on
 * a VM whose 260 MB L3 is shared with other tenants (Xeon, 2026-12-03) a
 * 1 % set of text-384 60k (600 vectors) rescanned query after query took
 * ~80 ns a vector against the modelled 48 (image-784: ~165 against 88),
 * so the planner kept the exact scan (p50 65 us; image-784 110) where the
 * graph's codes answer in 45 (56).  Exact scans priced cached record their
 * cost per vector here: an average over the last ~8 that starts from the
 * model's price, each sample capped at the cold price, sets of
 * HOT_OBS_MIN vectors or more (below, fixed costs dominate).
 *
 * The measured price only arbitrates between the exact scan and the scan
 * of the graph's codes, two exhaustive answers (the codes re-ranked in
 * float): timing cannot move a query to the IVF or the graph walk, whose
 * recall rests on their calibration (test_correlated_graph: with the
 * measured price against every strategy, a noisy run moved 90 % filters
 * at d=32 from the exact scan to an IVF that gave recall 0.912). */
#define HOT_OBS_MIN 256
#define HOT_OBS_W 0.125

static double hot_measured(const warden *db) {
  uint64_t b = atomic_load_explicit(&((warden *)db)->hot_ns, memory_order_relaxed);
  double v;
  memcpy(&v, &b, sizeof v);
  return v;
}

static void hot_observe(warden *db, double ns, uint64_t scanned) {
  if (scanned < HOT_OBS_MIN || !(ns > 0)) return;
  double dim = (double)db->cfg.dim, per = ns / (double)scanned, cap = EX_VEC + EX_DIM * dim;
  if (per > cap) per = cap;
  /* from the model's price: one slow scan moves it an eighth of the way */
  double old = hot_measured(db);
  if (!(old > 0)) old = EX_VEC_HOT + EX_DIM_HOT * dim;
  double v = old + HOT_OBS_W * (per - old);
  uint64_t b;
  memcpy(&b, &v, sizeof b);
  atomic_store_explicit(&db->hot_ns, b, memory_order_relaxed);
}

/* The exact scan's price for the exact-or-codes choice: the planner's, or
 * for a cached set what such scans measured (above the model's, never
 * above the cold price). */
static double exact_vs_codes_us(const warden *db, const wd_plan_in *pin, const wd_plan_out *po) {
  if (!pin->hot) return po->est_exact_us;
  double dim = (double)pin->dim, m = hot_measured(db), cold = EX_VEC + EX_DIM * dim;
  if (!(m > EX_VEC_HOT + EX_DIM_HOT * dim)) return po->est_exact_us;
  return (double)pin->nallowed * (m < cold ? m : cold) / 1e3;
}

static int hot_lookup(warden *db, uint64_t key, double set_bytes) {
  if (!key) return 0;
  pthread_once(&llc_once, llc_detect);
  unsigned slot = (unsigned)(key % 64);
  if (atomic_load_explicit(&db->recent[slot].key, memory_order_relaxed) != key) return 0;
  uint64_t mark = atomic_load_explicit(&db->recent[slot].mark, memory_order_relaxed);
  int exact = atomic_load_explicit(&db->recent[slot].exact, memory_order_relaxed);
  uint64_t now = atomic_load_explicit(&db->touched, memory_order_relaxed);
  double since = now >= mark ? (double)(now - mark) : 0, llc = (double)llc_bytes;
  if (set_bytes + since > HOT_LLC_FRAC * llc) return 0;
  return exact || since <= HOT_SEEN_FRAC * llc;
}

static void hot_record(warden *db, uint64_t key, int exact, double bytes) {
  uint64_t now = atomic_fetch_add_explicit(&db->touched, (uint64_t)bytes,
                                           memory_order_relaxed) + (uint64_t)bytes;
  if (!key) return;
  unsigned slot = (unsigned)(key % 64);
  atomic_store_explicit(&db->recent[slot].key, key, memory_order_relaxed);
  atomic_store_explicit(&db->recent[slot].mark, now, memory_order_relaxed);
  atomic_store_explicit(&db->recent[slot].exact, exact, memory_order_relaxed);
}

/* Does allowed hold every id the index holds (its lists and the caught-up
 * extra)?  Then the probe needs no filter: nothing it can reach is
 * disallowed.  A deleted or revoked id still in the lists makes this
 * false, and the filtered probe runs.  The count test alone would do (a
 * caught-up index holds every live id, and allowed only live ones); the
 * subset tests keep the shortcut safe should that ever stop holding. */
static int covers_index(const wd_ann_ref *ref, const roaring_bitmap_t *allowed,
                        uint64_t nallowed) {
  if (!ref->idset || nallowed < ref->nindexed) return 0;
  if (!roaring_bitmap_is_subset(ref->idset, allowed)) return 0;
  if (ref->ex)
    for (size_t l = 0; l < ref->ex->nlist; l++)
      for (uint32_t i = 0; i < ref->ex->cnt[l]; i++)
        if (!roaring_bitmap_contains(allowed, ref->ex->ids[l][i])) return 0;
  return 1;
}

/* One IVF pass for query x into h (reset first when again), counting
 * its work into the running totals.  0 or a negative warden code. */
typedef struct probe_acc {
  uint64_t lists, visited;
} probe_acc;

static int probe(warden *db, const wd_ann_ref *ref, const float *x,
                 const roaring_bitmap_t *allowed, const wd_ivf_params *p,
                 const wd_vecsrc *src, int again, wd_topk *h, wd_ivf_stats *st,
                 probe_acc *acc, wd_search_info *info) {
  if (again) wd_topk_reset(h);
  int r = wd_ivf_search(ref->ix, ref->ex, x, allowed, p, src, h, st);
  if (r) return r == -1 ? wd_err(db, WARDEN_ENOMEM, "out of memory") : r;
  acc->lists += st->lists;
  acc->visited += st->visited;
  info->scanned += st->scanned + st->reranked;
  return 0;
}

static int run_exact(warden *db, wd_txn *tx, const float *qv, size_t nq,
                     const roaring_bitmap_t *allowed, wd_topk *heaps,
                     wd_search_info *info) {
  wd_vecsrc src = {db->cfg.dim, db->cfg.metric, get_block, tx};
  wd_scan_stats st;
  memset(&st, 0, sizeof st);
  int rc = wd_scan_exact(&src, qv, nq, allowed, heaps, &st);
  if (rc == -1) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  if (rc) return rc;
  info->path = st.path;
  info->scanned += st.scanned;
  return 0;
}

/* One graph pass for query x into h (reset first): the walk over the
 * graph's nodes, then the allowed slots added since the graph was written
 * (tail, may be NULL) scanned exactly into the same heap. */
static int graph_pass(warden *db, wd_txn *tx, wd_hnsw *g, const float *x,
                      const wd_hnsw_params *p, const roaring_bitmap_t *tail, wd_topk *h,
                      wd_hnsw_stats *st, wd_search_info *info) {
  wd_topk_reset(h);
  wd_vecsrc src = {db->cfg.dim, db->cfg.metric, get_block, tx};
  int r = wd_hnsw_search(g, x, NULL, p, &src, h, st);
  if (r) return r == -1 ? wd_err(db, WARDEN_ENOMEM, "out of memory") : r;
  info->scanned += st->ndist + st->reranked;
  if (tail) return run_exact(db, tx, x, 1, tail, h, info);
  return 0;
}

/* The code scan (wd_hnsw_scan_codes) for query x into h (reset first),
 * then the allowed slots added since the graph was written (tail) exactly
 * into the same heap: every allowed vector is looked at, so the answer is
 * never short and does not depend on where the filter lies. */
static int codes_pass(warden *db, wd_txn *tx, wd_hnsw *g, const float *x,
                      const roaring_bitmap_t *allowed, const roaring_bitmap_t *tail, wd_topk *h,
                      wd_search_info *info, uint64_t *tot) {
  wd_topk_reset(h);
  wd_vecsrc src = {db->cfg.dim, db->cfg.metric, get_block, tx};
  wd_hnsw_stats st;
  int r = wd_hnsw_scan_codes(g, x, allowed, codes_rerank(h->k), &src, h, &st);
  if (r) return r == -1 ? wd_err(db, WARDEN_ENOMEM, "out of memory") : r;
  info->scanned += st.ndist + st.reranked;
  tot[0] += st.ndist;
  tot[2] += st.reranked;
  if (tail) return run_exact(db, tx, x, 1, tail, h, info);
  return 0;
}

/* The graph path of wd_search (issue 14): per query the planned walk, and
 * the exact scan when the result is short or the walk found the filter
 * anti-correlated with the query (far fewer allowed nodes near it than
 * the filter's share). */
/* internal strategy: the planner without the graph (exact or IVF) */
#define WD_STRATEGY_NO_GRAPH 100

static int run_graph(warden *db, wd_txn *tx, wd_hnsw *g, const float *qv, size_t nq,
                     const roaring_bitmap_t *allowed, uint64_t nallowed, uint64_t nlive,
                     int force, double target, const graph_plan *gp, double sel,
                     const roaring_bitmap_t *tail, int codes_fallback, wd_topk *heaps,
                     wd_search_info *info, uint64_t *tot, uint64_t *pre, uint64_t pre_n,
                     int *bits_oom) {
  /* pre: the dense bitset the planner already built (the local-density
   * probe), else one built here */
  uint64_t nbits = pre_n;
  uint64_t *bits = pre ? pre : wd_ivf_bits(allowed, &nbits);
  if (!bits) {
    *bits_oom = 1;
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  }
  int rc = 0;
  size_t dim = db->cfg.dim;
  for (size_t q = 0; q < nq && !rc; q++) {
    const float *x = qv + q * dim;
    /* bounded: GR_BUDGET times the calibrated distances, and the density
     * check after the first hops (index/hnsw.c STARVE_HOPS) */
    double budget = gp->ndist * GR_BUDGET;
    wd_hnsw_params p = {gp->ef, gp->two_hop, wd_hnsw_rerank(gp->ef, heaps[q].k), bits, nbits,
                        (uint64_t)(budget > GR_BUDGET_MIN ? budget : GR_BUDGET_MIN),
                        sel < 0.95 ? GR_STARVED * sel : 0};
    wd_hnsw_stats st;
    if ((rc = graph_pass(db, tx, g, x, &p, tail, &heaps[q], &st, info))) break;
    tot[0] += st.ndist;
    tot[1] += st.hops;
    tot[2] += st.reranked;
    tot[6] += st.lists;
    uint64_t want_n = nallowed < heaps[q].k ? nallowed : heaps[q].k;
    double local = st.looked ? (double)st.allowed / (double)st.looked : 1.0;
    int anti = st.starved || st.bound_hit || (sel < 0.95 && local < GR_STARVED * sel);
    if (heaps[q].n >= want_n && !anti) continue;
    tot[3] += (uint64_t)anti;
    /* short, or anti-correlated: the calibration was measured with filters
     * independent of the query, so it says nothing here; the exact scan
     * does.  (Re-walking at the local density with the effort scaled by
     * sel/local was tried: on tests/test_ann.c's half-space filter, 50 %
     * allowed and none near the query, it reached recall 0.86-0.91 at
     * efSearch 54-134.) */
    tot[4]++;
    wd_topk_reset(&heaps[q]);
    /* every allowed code, when that is priced below the exact scan: it
     * does not care where the allowed vectors lie either */
    if (codes_fallback) {
      tot[5]++;
      if ((rc = codes_pass(db, tx, g, x, allowed, tail, &heaps[q], info, tot))) break;
      continue;
    }
    if (force == WARDEN_STRATEGY_ANN) { /* forced ANN: exact stays the last resort */
      if ((rc = run_exact(db, tx, x, 1, allowed, &heaps[q], info))) break;
      continue;
    }
    /* the planner without the graph: exact, or the IVF with its own
     * handling of anti-correlated filters (a widened probe on SQ8 codes).
     * Measured, image-784 anti-correlated 10 %: exact 12.7 ms per query */
    wd_search_info sub;
    sub.explain = 0;
    if ((rc = wd_search_t(db, tx, x, 1, allowed, nallowed, nlive, WD_STRATEGY_NO_GRAPH, target, 0,
                          &heaps[q], &sub)))
      break;
    info->scanned += sub.scanned;
  }
  if (!pre) wd_free(bits);
  return rc;
}

int wd_search(warden *db, wd_txn *tx, const float *qv, size_t nq,
              const roaring_bitmap_t *allowed, uint64_t nallowed,
              uint64_t nlive, int strategy, uint64_t set_key, wd_topk *heaps,
              wd_search_info *info) {
  return wd_search_t(db, tx, qv, nq, allowed, nallowed, nlive, strategy, 0, set_key, heaps,
                     info);
}

/* Longer than the ~150 lines the rest keeps to, for a reason: the index
 * references it acquires (IVF, graph), the tail of slots the graph does
 * not hold and the dense bitset are shared by every strategy and must be
 * released on every path, so planning, dispatch and release stay in one
 * frame; the strategies themselves are run_exact, run_graph, codes_pass
 * and probe above. */
int wd_search_t(warden *db, wd_txn *tx, const float *qv, size_t nq,
                const roaring_bitmap_t *allowed, uint64_t nallowed, uint64_t nlive,
                int strategy, double target_recall, uint64_t set_key, wd_topk *heaps,
                wd_search_info *info) {
  int explain = info->explain;
  memset(info, 0, sizeof *info);
  info->explain = explain;
  int no_graph = strategy == WD_STRATEGY_NO_GRAPH;
  if (no_graph) strategy = WARDEN_STRATEGY_AUTO;
  int force = strategy;
  if (force == WARDEN_STRATEGY_AUTO)
    force = db->cfg.index_type == WD_INDEX_FLAT  ? WARDEN_STRATEGY_EXACT
            : db->cfg.index_type == WD_INDEX_IVF ? WARDEN_STRATEGY_ANN
                                                 : WARDEN_STRATEGY_AUTO;
  size_t k = nq ? heaps[0].k : 10;
  wd_ann_ref ref;
  memset(&ref, 0, sizeof ref);
  const char *istate = "not consulted";
  int have = 0;
  if (force != WARDEN_STRATEGY_EXACT && nallowed > 0) {
    int rc = wd_ann_acquire(db, tx, &ref, &istate);
    if (rc < 0) return rc;
    have = rc == 0;
    if (have) istate = ref.caught_up ? "caught_up" : "ready";
  }
  double target = target_recall > 0           ? target_recall
                  : db->cfg.target_recall > 0 ? db->cfg.target_recall
                                              : 0.95;
  wd_ivf_cal ivcal;
  memset(&ivcal, 0, sizeof ivcal);
  if (have) memcpy(&ivcal, ref.ix->h.pad, sizeof ivcal);
  wd_plan_in pin = {nallowed, nlive, have ? ref.nindexed : 0, db->cfg.dim, k, nq,
                    have ? ref.ix->nlist : 0, have, force, have ? ref.ix->h.calib_lists : 0,
                    have ? ref.ix->sq8 : 0,
                    hot_lookup(db, set_key, (double)nallowed * (double)db->cfg.dim * 4),
                    target, ivcal.present ? &ivcal : NULL};
  wd_plan_out po;
  wd_plan_choose(&pin, &po);
  /* the graph index (issue 14): priced from its build-time calibration at
   * the recall target, against the exact scan and the IVF */
  wd_graph_ref gref;
  memset(&gref, 0, sizeof gref);
  const char *gstate = "not consulted";
  int have_g = 0, use_graph = 0;
  graph_plan gp;
  memset(&gp, 0, sizeof gp);
  gp.est_us = -1;
  uint64_t ntail = 0, range = 0, in_g = 0, gtot[7] = {0, 0, 0, 0, 0, 0, 0};
  int use_codes = 0, codes_fallback = 0;
  double est_codes = -1;
  double gsel = 0, psel = -1, ldens = -1;
  uint64_t *pbits = NULL, pnbits = 0;
  roaring_bitmap_t *tail = NULL;
  if (force != WARDEN_STRATEGY_EXACT && nallowed > 0 && db->cfg.graph && !no_graph) {
    int grc = wd_graph_acquire(db, &gref, &gstate);
    if (grc < 0) {
      wd_ann_release(&ref);
      return grc;
    }
    have_g = grc == 0;
  }
  if (have_g) {
    in_g = roaring_bitmap_range_cardinality(allowed, 0, gref.next_slot);
    ntail = nallowed > in_g ? nallowed - in_g : 0;
    gsel = gref.g->n ? (double)in_g / (double)gref.g->n : 0;
    if (gsel > 1) gsel = 1;
    range = (uint64_t)roaring_bitmap_maximum(allowed) + 1;
    /* the best without the graph: exact or IVF, and the scan of the
     * graph's codes (not with the float walk: there the codes cannot
     * rank) */
    int codes_ok = !(gref.g->h.flags & WD_HNSW_FLOAT_WALK) && nallowed > k;
    if (codes_ok) est_codes = est_codes_us(in_g, ntail, k, db->cfg.dim);
    double best_ng = po.use_ivf ? po.est_ivf_us : po.est_exact_us;
    if (codes_ok && est_codes < best_ng) best_ng = est_codes;
    plan_graph(gref.g, gsel, target, k, db->cfg.dim, nallowed, range, ntail, &gp);
    /* the filter's overlap with the query's region (issue 14): for one
     * query with a selective filter, the allowed share where the walk
     * would start (wd_hnsw_local_density).  Far above the global share (a
     * filter correlated with the query), the walk is planned at the
     * geometric mean of the two: the calibration's uncorrelated effort at
     * 1 % is many times what a walk needs inside a region that is 40 %
     * allowed (image-784 60k, 1 % correlated: IVF at 137 us was chosen,
     * the graph answers in 81-86 us at recall 0.9955 planned so).  The
     * probe costs ~15 us at d=784 (measured: uncorrelated 1 % 97 -> 115
     * us when run on every query), so it runs only where it can change
     * the choice: the graph loses at the global share and would win at
     * the largest share the probe can give. */
    if (nq == 1 && gsel > 0 && gsel < LOCAL_MAX_SEL && codes_ok && force != WARDEN_STRATEGY_ANN &&
        !(gp.ok && gp.est_us < best_ng)) {
      graph_plan gmax;
      plan_graph(gref.g, sqrt(gsel), target, k, db->cfg.dim, nallowed, range, ntail, &gmax);
      if ((gmax.ok && gmax.est_us < best_ng) || probe_forced()) {
        pbits = wd_ivf_bits(allowed, &pnbits);
        uint64_t pd = 0;
        ldens = pbits ? wd_hnsw_local_density(gref.g, qv, pbits, pnbits, &pd) : -1;
        if (ldens < 0) {
          wd_free(pbits);
          wd_ann_release(&ref);
          wd_graph_release(&gref);
          return wd_err(db, WARDEN_ENOMEM, "out of memory");
        }
        if (ldens > LOCAL_RATIO * gsel) {
          psel = sqrt(gsel * (ldens < 1 ? ldens : 1));
          plan_graph(gref.g, psel, target, k, db->cfg.dim, nallowed, range, ntail, &gp);
        }
      }
    }
    if (gp.ok && nallowed > k) {
      if (force == WARDEN_STRATEGY_ANN)
        use_graph = !po.use_ivf || gp.est_us < po.est_ivf_us;
      else
        use_graph = gp.est_us < (po.use_ivf ? po.est_ivf_us : po.est_exact_us);
    }
    /* the brute-force scan of the graph's codes, against whatever won so
     * far */
    if (codes_ok) {
      double best = use_graph ? gp.est_us : po.use_ivf ? po.est_ivf_us : exact_vs_codes_us(db, &pin, &po);
      use_codes = est_codes < best;
      if (use_codes) use_graph = 0;
      codes_fallback = est_codes < po.est_exact_us;
    }
  }
  if ((use_graph || use_codes || codes_fallback) && ntail) {
    tail = roaring_bitmap_copy(allowed);
    if (!tail) {
      wd_ann_release(&ref);
      wd_graph_release(&gref);
      wd_free(pbits);
      return wd_err(db, WARDEN_ENOMEM, "out of memory");
    }
    roaring_bitmap_remove_range(tail, 0, gref.next_slot);
  }
  int rc = 0;
  uint64_t *bits = NULL;
  uint64_t fallbacks = 0, bound = 0, widened = 0, starved_exact = 0;
  probe_acc acc = {0, 0};
  int unfiltered = 0;
  if (use_codes) {
    info->strategy = "codes";
    for (size_t q = 0; q < nq && !rc; q++)
      rc = codes_pass(db, tx, gref.g, qv + q * db->cfg.dim, allowed, tail, &heaps[q], info, gtot);
  } else if (use_graph) {
    info->strategy = "graph";
    int boom = 0;
    rc = run_graph(db, tx, gref.g, qv, nq, allowed, nallowed, nlive, force, target, &gp,
                   psel > 0 ? psel : gsel, tail, codes_fallback, heaps, info, gtot, pbits, pnbits,
                   &boom);
    info->fell_back = gtot[4] > 0;
  } else if (!po.use_ivf) {
    info->strategy = "exact";
    double t0 = pin.hot && nq == 1 ? wd_now_ms() : 0;
    rc = run_exact(db, tx, qv, nq, allowed, heaps, info);
    if (!rc && t0 > 0) hot_observe(db, (wd_now_ms() - t0) * 1e6, info->scanned);
  } else {
    info->strategy = "ivf";
    /* perf, GloVe-100 unfiltered: the per-entry filter test was ~8 % */
    unfiltered = covers_index(&ref, allowed, nallowed);
    if (unfiltered) po.use_bits = 0;
    if (po.use_bits) {
      po.ivf.bits = bits = wd_ivf_bits(allowed, &po.ivf.nbits);
      if (!bits && po.ivf.nbits == 0 && nallowed > 0) {
        wd_ann_release(&ref);
        wd_graph_release(&gref);
        if (tail) roaring_bitmap_free(tail);
        wd_free(pbits);
        return wd_err(db, WARDEN_ENOMEM, "out of memory");
      }
    }
    wd_vecsrc src = {db->cfg.dim, db->cfg.metric, get_block, tx};
    double sel = pin.nindexed ? (double)nallowed / (double)pin.nindexed : 1.0;
    /* dense filters: whole lists through the kernel (wd_ivf_params) */
    if (po.use_bits && sel >= WHOLE_SEL) po.ivf.whole_from = WHOLE_SEL;
    /* A starved probe (below) would widen, at worst to every list.  When
     * the exact scan is priced below that worst case, the first probe
     * stops as soon as its calibrated region shows starvation and the
     * query is answered exactly: small anti-correlated sets
     * (synthetic-384 1 %: 1,077 QPS widened; 1,092 probing on to want
     * and then scanning; exact alone 2,258).  A forced ANN query keeps to
     * the index. */
    wd_ivf_params first = po.ivf;
    /* ... and so does a calibrated probe, or one with the graph's codes to
     * fall back on: with a calibrated depth the first probe is short, and
     * reading on past it through allowed-poor lists (the want rule below)
     * cost 650 lists for nothing at text-384 10 % anti-correlated */
    /* (only where that answer is priced below the widened probe: a large
     * anti-correlated set -- synthetic-384 50 % -- is cheaper widened than
     * scanned, 1,296 against 304 QPS when a calibrated probe stopped) */
    int codes_cheap = codes_fallback && est_codes <= po.est_wide_us;
    if (force != WARDEN_STRATEGY_ANN && sel < 0.95 &&
        (po.est_exact_us <= po.est_wide_us || codes_cheap))
      first.starve_below = STARVED * sel;
    for (size_t q = 0; q < nq && !rc; q++) {
      wd_ivf_stats st;
      const float *x = qv + q * db->cfg.dim;
      const roaring_bitmap_t *filt = unfiltered ? NULL : allowed;
      if ((rc = probe(db, &ref, x, filt, &first, &src, 0, &heaps[q], &st, &acc, info))) break;
      bound += st.bound_hit;
      if (st.starved) {
        /* counted like the late case below: an exact fallback, starved --
         * over the graph's codes when they are priced below the exact scan
         * (they do not care where the allowed set lies either) */
        starved_exact++;
        fallbacks++;
        wd_topk_reset(&heaps[q]);
        if (codes_fallback && est_codes <= po.est_exact_us) {
          gtot[5]++;
          if ((rc = codes_pass(db, tx, gref.g, x, allowed, tail, &heaps[q], info, gtot))) break;
        } else if ((rc = run_exact(db, tx, x, 1, allowed, &heaps[q], info))) {
          break;
        }
        continue;
      }
      /* filter-starved: widen the probe (below); short: answer this query
       * from every list (SQ8) or exactly (flat, or still short).  Starved also
       * means "anti-correlated": the probed lists hold far fewer allowed
       * vectors than the collection does on average (the allowed set lies
       * away from the query), so the nearest allowed vectors are likely in
       * lists the probe never reached (measured: recall 0.88 at 10-50 %
       * anti-correlated selectivity on GloVe without this rule). */
      uint64_t want_n = nallowed < heaps[q].k ? nallowed : heaps[q].k;
      /* density in the calibrated region (the first min_lists lists): over
       * the whole probe it was diluted by the allowed-rich lists the probe
       * went on to reach, and missed half-space filters (recall 0.69 on
       * tests/test_ann.c test_anticorrelated) */
      double local = st.visited_min ? (double)st.scanned_min / (double)st.visited_min : 1.0;
      int starved = sel < 0.95 && local < STARVED * sel;
      int skip_all = 0;
      int redo = heaps[q].n < want_n || (st.bound_hit && st.scanned < po.ivf.want_allowed) ||
                 starved;
      /* starved: widen the probe until it has seen WIDE_EFF times the
       * calibrated list count in lists that hold their share of allowed
       * vectors (wd_ivf_params.min_eff); at worst that reads every list,
       * which is what a starved query used to get (or, see first above,
       * the exact scan when that is cheaper: starvation found after the
       * calibrated region, e.g. by the want bound, lands here too) */
      if (redo && starved && heaps[q].n >= want_n && first.starve_below > 0) {
        starved_exact++;
        skip_all = 1;
      } else if (redo && starved && heaps[q].n >= want_n) {
        wd_ivf_params e = po.ivf;
        e.min_eff = (double)po.ivf.min_lists * WIDE_EFF;
        e.sel = sel;
        e.max_lists = ref.ix->nlist;
        e.max_visited = UINT64_MAX; /* at worst every list: the old fallback */
        widened++;
        if ((rc = probe(db, &ref, x, filt, &e, &src, 1, &heaps[q], &st, &acc, info))) break;
        redo = heaps[q].n < want_n;
      }
      /* all SQ8 lists when that is priced below the exact scan (large
       * allowed sets); the exact scan otherwise */
      if (redo && !skip_all && ref.ix->sq8 && st.lists < ref.ix->nlist && po.est_all_us >= 0 &&
          po.est_all_us < po.est_exact_us) {
        /* every list, in one-byte codes (a quarter of the exact scan's
         * bytes), with a wider exact re-rank: measured recall 0.99+ on
         * anti-correlated sets at 2-3x the exact scan's speed */
        wd_ivf_params all = po.ivf;
        all.min_lists = all.max_lists = ref.ix->nlist;
        all.want_allowed = 0;
        all.max_visited = UINT64_MAX;
        all.rerank = all.rerank * 2;
        if ((rc = probe(db, &ref, x, filt, &all, &src, 1, &heaps[q], &st, &acc, info))) break;
        fallbacks++;
        redo = heaps[q].n < want_n;
      }
      if (redo) {
        wd_topk_reset(&heaps[q]);
        fallbacks++;
        if ((rc = run_exact(db, tx, x, 1, allowed, &heaps[q], info))) break;
      }
    }
    info->fell_back = fallbacks > 0;
  }
  if (!rc && (use_graph || use_codes)) {
    hot_record(db, set_key, 0, (double)info->scanned / (double)(nq ? nq : 1) * (double)db->cfg.dim);
  } else if (!rc) {
    /* bytes read: the scanned vectors (codes) and, for IVF, the visited ids */
    double vb = (double)db->cfg.dim * (po.use_ivf && ref.ix->sq8 ? 1 : 4);
    hot_record(db, set_key, !po.use_ivf, (double)info->scanned / (double)(nq ? nq : 1) * vb +
                                (double)acc.visited * 4);
  }
  wd_ann_release(&ref);
  wd_graph_release(&gref);
  if (tail) roaring_bitmap_free(tail);
  wd_free(bits);
  wd_free(pbits);
  if (rc || !explain) return rc;
  size_t nqq = nq ? nq : 1;
  typedef json_int_t I;
  json_t *planner = json_pack(
      "{s:s?,s:s?,s:o?,s:o?,s:o?,s:o?,s:o?,s:o?,s:b,s:o?}", "choice",
      use_codes ? "codes" : use_graph ? "graph" : po.use_ivf ? "ivf" : "exact", "reason",
      use_codes ? "cheapest: every allowed code, re-ranked"
      : use_graph ? "cheapest at the calibrated effort" : po.reason,
      "est_exact_us", wd_json_fixed(po.est_exact_us, 1), "est_ivf_us", wd_json_fixed(po.est_ivf_us, 1),
      "est_all_lists_us", wd_json_fixed(po.est_all_us, 1), "est_graph_us", wd_json_fixed(gp.est_us, 1),
      "est_codes_us", wd_json_fixed(est_codes, 1), "target_recall", wd_json_sig(target, 4),
      "allowed_cached", pin.hot, "cached_exact_ns",
      hot_measured(db) > 0 ? wd_json_fixed(hot_measured(db), 1) : json_null());
  json_t *graph = json_pack("{s:s?,s:b,s:o?,s:o?,s:o?,s:I,s:s,s:o?,s:o?,s:o?,s:I}", "state", gstate,
                            "calibrated", gp.ok, "selectivity", wd_json_sig(gsel, 4),
                            "local_density", ldens >= 0 ? wd_json_sig(ldens, 4) : json_null(),
                            "planned_selectivity", wd_json_sig(psel > 0 ? psel : gsel, 4),
                            "ef_search", (I)gp.ef,
                            "mode", gp.two_hop ? "two_hop" : "expand", "est_distances",
                            wd_json_fixed(gp.ndist, 0), "est_lists", wd_json_fixed(gp.lists, 0),
                            "est_hops", gp.hops > 0 ? wd_json_fixed(gp.hops, 0) : json_null(),
                            "pending_slots", (I)ntail);
  json_t *more = NULL;
  if (graph && (use_graph || use_codes)) {
    more = json_pack("{s:o?,s:o?,s:o?,s:o?,s:I,s:I,s:I}", "distances",
                     wd_json_fixed((double)gtot[0] / nqq, 1), "hops", wd_json_fixed((double)gtot[1] / nqq, 1),
                     "lists", wd_json_fixed((double)gtot[6] / nqq, 1),
                     "reranked", wd_json_fixed((double)gtot[2] / nqq, 1), "anticorrelated", (I)gtot[3],
                     "exact_fallbacks", (I)(gtot[4] - gtot[5]), "codes_fallbacks", (I)gtot[5]);
    if (!more || json_object_update(graph, more)) json_decref(graph), graph = NULL;
    json_decref(more);
  }
  json_t *index = json_pack("{s:s?}", "state", istate);
  if (index && have) {
    more = json_pack("{s:I,s:I,s:I}", "nlist", (I)(ref.ix ? ref.ix->nlist : 0), "indexed",
                     (I)pin.nindexed, "caught_up", (I)ref.caught_up);
    if (!more || json_object_update(index, more)) json_decref(index), index = NULL;
    json_decref(more);
  }
  json_t *d = json_pack("{s:o?,s:o?,s:o?}", "planner", planner, "graph", graph, "index", index);
  if (d && (!planner || !graph || !index)) json_decref(d), d = NULL; /* never half a plan */
  if (d && po.use_ivf && !use_graph &&
      json_object_set_new(
          d, "ivf",
          json_pack("{s:o?,s:o?,s:I,s:b,s:b,s:I,s:b,s:b,s:I,s:I,s:I,s:I,s:I}", "lists_probed",
                    wd_json_fixed((double)acc.lists / nqq, 1), "visited",
                    wd_json_fixed((double)acc.visited / nqq, 0), "min_lists", (I)po.ivf.min_lists,
                    "calibrated", po.calibrated, "unreached", po.unreached, "want_allowed", (I)po.ivf.want_allowed, "bitset",
                    po.use_bits, "all_allowed", unfiltered, "bound_hit", (I)bound, "widened",
                    (I)widened, "starved_exact", (I)starved_exact, "exact_fallbacks",
                    (I)(fallbacks - gtot[5]), "codes_fallbacks", (I)gtot[5])))
    json_decref(d), d = NULL;
  info->detail = d;
  return 0;
}
