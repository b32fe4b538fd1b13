/*
 * search.h -- "the nearest allowed vectors": the step of a query between
 * the allowed bitmap and the hits.  It picks a strategy (the planner:
 * exact scan, or the ANN index with the bitmap) and runs it.
 *
 * The caller (engine/query.c) owns the snapshot, the allowed set and the
 * heaps; it may call wd_search several times per query (over-fetch rounds
 * after the resolver rejected candidates), each time with a smaller
 * allowed set and possibly a larger k.
 */
#ifndef WD_SEARCH_H
#define WD_SEARCH_H
#include <jansson.h>
#include <math.h>
#include <roaring/roaring.h>

#include "index/ivf.h"
#include "engine/store.h"
#include "index/topk.h"

typedef struct wd_search_info {
  const char *strategy; /* "exact", "ivf", ... (static string) */
  int path;             /* exact scan path (index/scan.h stats.path) */
  uint64_t scanned;     /* distance computations, summed over queries */
  int fell_back;        /* exact was run for a query the IVF pass left short or starved */
  int explain;          /* set by the caller: fill detail (else left NULL:
                           building it was ~3 % of a graph query) */
  json_t *detail;       /* --explain only: an object of the extra plan
                           members ({"planner":{..},"graph":{..},..}), merged
                           into the plan's top level; NULL when none.  Owned
                           by the info: whoever owns the info releases it
                           with wd_search_info_clear before reusing or
                           dropping it (wd_search_t overwrites it) */
} wd_search_info;

static inline void wd_search_info_clear(wd_search_info *i) {
  json_decref(i->detail);
  i->detail = NULL;
}

/* Plan numbers with the digits the plan has always shown (it was printf
 * text): v rounded to d decimals (d = 0: an integer), or to s significant
 * digits.  A non-finite value gives NULL (a "o?" json_pack argument makes
 * it null: printf wrote "inf", which was not JSON). */
static inline json_t *wd_json_fixed(double v, int d) {
  if (!isfinite(v)) return NULL;
  if (d == 0) return json_integer((json_int_t)llround(v));
  double p = pow(10, d);
  return json_real(round(v * p) / p);
}
static inline json_t *wd_json_sig(double v, int s) {
  if (!isfinite(v)) return NULL;
  if (v == 0) return json_real(0);
  double p = pow(10, s - 1 - (int)floor(log10(fabs(v))));
  return json_real(round(v * p) / p);
}

/* For each of nq (unit-normalised for cosine) queries, fill heaps[q]
 * (initialised by the caller with the wanted k) with the nearest chunks in
 * allowed.  nallowed/nlive: cardinalities (already known to the caller).
 * strategy: WARDEN_STRATEGY_*.  set_key: a non-zero identity of the
 * allowed set when the caller has one (a hash of what it was computed
 * from), which lets the planner notice a set scanned moments ago, whose
 * vectors are still cached; 0 when unknown.  Returns 0 or a negative
 * warden code (with the message set on db). */
int wd_search(warden *db, wd_txn *tx, const float *qv, size_t nq,
              const roaring_bitmap_t *allowed, uint64_t nallowed,
              uint64_t nlive, int strategy, uint64_t set_key, wd_topk *heaps,
              wd_search_info *info);

/* wd_search with a recall target for the ANN strategies (issue 14):
 * target_recall in (0, 1], 0 = the collection's index.target_recall.
 * The graph index's effort (efSearch, traversal mode) is looked up in the
 * recall-vs-effort table measured on this collection when the graph was
 * built (index/hnsw.h wd_hnsw_plan); the planner then picks the cheapest
 * of exact / IVF / graph.  wd_search is this with target 0. */
int wd_search_t(warden *db, wd_txn *tx, const float *qv, size_t nq,
                const roaring_bitmap_t *allowed, uint64_t nallowed, uint64_t nlive,
                int strategy, double target_recall, uint64_t set_key, wd_topk *heaps,
                wd_search_info *info);

/* The planner, pure (no I/O) so it can be tested and benchmarked alone.
 * Costs are estimated in microseconds from constants measured by
 * bench/planner_calib.c (see engine/search.c). */
typedef struct wd_plan_in {
  uint64_t nallowed; /* exact size of the allowed set */
  uint64_t nlive;    /* live chunks */
  uint64_t nindexed; /* vectors in the ANN index (0: none) */
  size_t dim, k, nq;
  size_t nlist;      /* lists of the ANN index */
  int have_ivf;      /* a usable index exists */
  int force;         /* 0 planner, 1 exact, 2 ivf (WARDEN_STRATEGY_*) */
  size_t calib_lists; /* lists that gave recall >= 0.95 when the index was
                         built (0: not calibrated) */
  int sq8;            /* the lists hold SQ8 codes (re-ranked exactly) */
  int hot;            /* the allowed vectors are likely in the CPU cache:
                         the same set was scanned recently and little has
                         been read since (see engine/search.c) */
  double target;      /* recall target (0: 0.95) */
  const wd_ivf_cal *cal; /* the index's probe-depth table, or NULL */
} wd_plan_in;

typedef struct wd_plan_out {
  int use_ivf;
  int use_bits;      /* expand allowed to a dense bitset for the probe */
  double est_exact_us, est_ivf_us; /* per query */
  double est_all_us;   /* SQ8: every list, the fallback of a starved probe */
  int calibrated;      /* min_lists came from the index's table */
  int unreached;       /* ... which says no probe short of every list
                          reaches the target at this selectivity */
  double dyn_sel[WD_IVF_CAL_NSEL];   /* ivf.dyn_*: the table at the */
  size_t dyn_lists[WD_IVF_CAL_NSEL]; /* calibrated selectivities above sel */
  double est_wide_us;  /* the widened probe of a starved query at its worst
                          (every list, filtered): above est_exact_us a
                          starved query goes straight to the exact scan */
  double est_visited;               /* ids the IVF probe should look at */
  const char *reason;               /* static string */
  wd_ivf_params ivf;                /* probe bounds when use_ivf */
} wd_plan_out;

void wd_plan_choose(const wd_plan_in *in, wd_plan_out *out);

/* Releases the handle's ANN state (called by close; the indexes are
 * loaded on first use, so there is no open hook). */
void wd_search_close(warden *db);

#endif
