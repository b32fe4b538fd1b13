/*
 * hnsw.h -- warden's filter-aware graph index (HNSW family).
 *
 * Storage-free like the IVF (index/ivf.h): it holds the graph and one SQ8
 * code per vector; the exact vectors (build distances, float re-ranking)
 * come through a wd_vecsrc.
 *
 * Why our own graph instead of FAISS's IndexHNSW: FAISS and hnswlib gate
 * only the *results* by the selector, so below a few percent selectivity
 * the search walks a graph whose nodes are almost all unusable and
 * collapses (measured in issue 3).  Here the allowed set is consulted
 * inside the traversal, in two modes (wd_hnsw_params.two_hop):
 *   expand   disallowed nodes get a distance and are expanded for
 *            navigation but never enter the result set (dense filters);
 *   two-hop  (ACORN-1, SIGMOD 2024) only allowed nodes get a distance;
 *            a disallowed neighbour is not scored but its own neighbours
 *            are looked at, so the walk stays on the allowed subgraph,
 *            which two-hop edges keep connected when most nodes are
 *            disallowed.
 * Which mode and which efSearch reach a recall target at a selectivity is
 * not a constant: wd_hnsw_calibrate measures it on the collection's own
 * vectors at build time and the table is stored in the file.
 *
 * The index file (DIR/index/hnsw.wdx) is a 128-byte header and a body of
 * 64-byte aligned sections, host byte order:
 *   header: magic "WDHNS\r\n\032", u32 version, dim, metric, M, M0,
 *           maxlevel, entry, ncal; u64 revision, next_slot (the store
 *           state it reflects), nvec, nup, body_len, body_sum, created;
 *           zero padding; u64 hdr_sum (checksum of the bytes before it).
 *   body:   u32 ids[nvec]           node -> slot, strictly ascending
 *           u8  level[nvec]
 *           u32 upoff[nvec]         first upper block of a node (level>0)
 *           u32 nb0[nvec][M0 + 1]   level 0: count, then neighbours
 *           u32 up[nup][M + 1]      levels >= 1, level l of node i at
 *                                   block upoff[i] + l - 1
 *           f32 sqmin[dim], sqscale[dim]; u8 codes[nvec][dim]
 *           f32 cnorm[nvec]         squared norm of the decoded code
 *           wd_hnsw_cal cal[ncal]   the calibration table
 * Written only by rename(2) of a complete fsynced temp file
 * (wd_ivf_write_file) and fully validated on open, like the IVF file.
 *
 * Threading: a loaded wd_hnsw is immutable apart from an internal pool of
 * visited-sets (mutex-protected); any number of threads may search it.
 */
#ifndef WD_HNSW_H
#define WD_HNSW_H
#include <pthread.h>
#include <roaring/roaring.h>
#include <stddef.h>
#include <stdint.h>

#include "index/scan.h"
#include "index/topk.h"

#define WD_HNSW_VERSION 1u
#define WD_HNSW_HDR 128u
#define WD_HNSW_MAXN 0x7fffffffu /* nodes (the top bit marks navigation-only) */
/* header flag: walk on the float vectors, not the codes (set by the build
 * when the calibration shows the codes lose recall, e.g. heavy-tailed
 * norms, where one per-dimension byte range cannot resolve the small
 * vectors) */
#define WD_HNSW_FLOAT_WALK 1u

typedef struct wd_hnsw_header {
  char magic[8];
  uint32_t version, dim, metric, M, M0, maxlevel, entry, ncal;
  uint64_t revision, next_slot, nvec, nup, body_len, body_sum, created;
  uint32_t flags; /* WD_HNSW_FLOAT_WALK */
  uint8_t pad[WD_HNSW_HDR - 100 - 8];
  uint64_t hdr_sum;
} wd_hnsw_header;

/* One calibration point: at selectivity sel (uncorrelated allowed set),
 * search mode two_hop with efSearch ef gave mean recall@10 recall for
 * ndist distance computations per query (mean, codes) and lists
 * second-hop neighbour lists read (wd_hnsw_stats.lists: mean, rounded; 0
 * in expand mode and in files written before it was recorded).
 * two_hop holds the mode in bit 0 and, from bit 8 up, the mean hops
 * (wd_hnsw_stats.hops, rounded; 0 in files written before they were
 * recorded): read them with wd_hnsw_cal_mode / wd_hnsw_cal_hops. */
typedef struct wd_hnsw_cal {
  float sel, ef, recall, ndist;
  uint32_t two_hop, lists;
} wd_hnsw_cal;

#define WD_HNSW_CAL_HOPS_MAX 0xFFFFFFu
static inline int wd_hnsw_cal_mode(const wd_hnsw_cal *c) { return (int)(c->two_hop & 1u); }
static inline uint32_t wd_hnsw_cal_hops(const wd_hnsw_cal *c) { return c->two_hop >> 8; }

typedef struct wd_hnsw {
  wd_hnsw_header h;
  size_t dim, n, M, M0;
  int metric;
  const uint32_t *ids;
  const uint8_t *level;
  const uint32_t *upoff;
  const uint32_t *nb0;
  const uint32_t *up;
  const float *sqmin, *sqscale;
  const uint8_t *codes;
  const float *cnorm;
  const wd_hnsw_cal *cal;
  size_t ncal;
  int cal_hops; /* every calibration point records its hops (set at open) */
  int ident; /* ids[i] == i for every node (set at open) */
  void *map; /* mmap of the file, or NULL */
  size_t maplen;
  /* visited-set pool */
  pthread_mutex_t vlock;
  int vlock_ok;
  void **vpool;
  size_t nvpool, vcap;
} wd_hnsw;

/* Build (or extend) a graph.  The nodes are old's nodes (when old is
 * given: incremental insert, old's codes ranges are kept) followed by
 * slots[0..n), which must be ascending and above every slot of old.
 * Vectors come from src (raw embeddings; cosine is normalised here).
 * M: neighbours per node on upper levels (2M on level 0), efc:
 * efConstruction, threads: worker threads (0: one per online CPU).
 * On success *image (wd_malloc'd, free with wd_free) holds a sealed image
 * with no calibration table (ncal 0) stamped with revision/next_slot.
 * Returns 0; -1 out of memory; a negative get_block error; -2 with why. */
typedef struct wd_hnsw_build_in {
  const wd_vecsrc *src;
  const uint32_t *slots;
  size_t n;
  const wd_hnsw *old;
  uint64_t revision, next_slot;
  size_t M, efc;
  int threads;
  uint64_t seed;
  /* progress (may be NULL): nodes inserted of n, called on the calling
   * thread only (it inserts too), every 4,096 nodes and at the end */
  void (*progress)(void *ctx, uint64_t done, uint64_t total);
  void *progress_ctx;
} wd_hnsw_build_in;

int wd_hnsw_build(const wd_hnsw_build_in *in, void **image, size_t *len, char *why,
                  size_t whylen);

/* Replace the calibration table of image (from wd_hnsw_build) with cal[n]
 * and reseal: returns the new image (the old one is freed) or NULL on
 * allocation failure (the old one is then untouched). */
void *wd_hnsw_set_cal(void *image, size_t *len, const wd_hnsw_cal *cal, size_t n,
                      uint32_t flags);

/* The build-time calibration of a built image, in place: the standard
 * selectivities (100 % .. 1 %), the code walk and, when the codes cap the
 * recall, the float walk (WD_HNSW_FLOAT_WALK); *image is replaced by the
 * calibrated one.  Returns the number of points, -1 out of memory, -2
 * (why) when the image does not open, or a negative get_block error. */
int wd_hnsw_calibrate_image(void **image, size_t *len, const wd_vecsrc *src,
                            const roaring_bitmap_t *live, uint64_t seed, int threads, char *why,
                            size_t whylen);

/* Open and fully validate (checksums, then structure: ids ascending below
 * next_slot, neighbour ids < nvec, counts, levels, the entry point) an
 * image or file for a collection of dimension dim and metric.  Returns 0,
 * 1 missing, 2 damaged, 3 foreign (as wd_ivf_open_file), why says what. */
int wd_hnsw_open_image(const void *image, size_t len, size_t dim, int metric, wd_hnsw *out,
                       char *why, size_t whylen);
int wd_hnsw_open_file(const char *path, size_t dim, int metric, wd_hnsw *out, char *why,
                      size_t whylen);
void wd_hnsw_close(wd_hnsw *g);

typedef struct wd_hnsw_params {
  size_t ef;       /* efSearch (>= k) */
  int two_hop;     /* ACORN-style traversal (see above) */
  size_t rerank;   /* candidates re-ranked in float (>= k) */
  /* the allowed set: bits (dense, slot-indexed, as wd_ivf_bits) when
   * given, else roaring allowed, else every node */
  const uint64_t *bits;
  uint64_t nbits;
  /* optional bounds (0: off): stop after max_dist code distances
   * (wd_hnsw_stats.bound_hit), or after the first hops when the allowed
   * share of the neighbours seen is below starve_below (.starved) */
  uint64_t max_dist;
  double starve_below;
} wd_hnsw_params;

/* The float re-rank window of a walk at efSearch ef for k results: the
 * best max(3k, 24) candidates by code distance, never more than ef.  The
 * build-time calibration measures recall with this same window.
 * Measured (bench/graph_bench.c text-384 60k, 100 %, efSearch 64, AVX2):
 * re-ranking all 64 candidates 7,197 QPS at recall 0.957, 40: 7,601 at
 * 0.957, 24: 9,048 at 0.9565, 16: 9,031 at 0.946 -- the true top 10 are
 * almost always among the best 24 codes; each further re-rank is a random
 * float row (1.5 KB at d=384) read for nothing. */
static inline size_t wd_hnsw_rerank(size_t ef, size_t k) {
  size_t r = 3 * k > 24 ? 3 * k : 24;
  return r < ef ? r : ef;
}

typedef struct wd_hnsw_stats {
  uint64_t ndist;    /* code distances */
  uint64_t hops;     /* nodes expanded */
  uint64_t looked;   /* neighbours of expanded nodes (visited or not) */
  uint64_t allowed;  /* ... of which allowed: allowed/looked is the
                        allowed density the walk saw near the query
                        (second hops are not counted: only the allowed
                        ones are ever looked at) */
  uint64_t lists;    /* two-hop mode: the level-0 neighbour lists of
                        disallowed neighbours read (each a random
                        4 (M0 + 1)-byte read and M0 filter tests: two-hop's
                        cost beyond ndist and hops); 0 in expand mode */
  uint64_t reranked; /* float distances */
  int bound_hit;     /* stopped by max_dist */
  int starved;       /* stopped by starve_below */
} wd_hnsw_stats;

/* The allowed share of the neighbourhood a walk for q would start in:
 * the greedy descent of the upper levels (on codes, as wd_hnsw_search),
 * then the level-0 neighbours of the node it reaches and their
 * neighbours (up to M0 + M0^2 slots, visited or not), tested against the
 * dense bitset bits (nbits bits, as wd_ivf_bits).  What the planner uses
 * to see a filter correlated with the query before choosing a strategy.
 * Returns the share in [0, 1] (*ndist: code distances spent), or -1 on
 * allocation failure. */
double wd_hnsw_local_density(wd_hnsw *g, const float *q, const uint64_t *bits, uint64_t nbits,
                             uint64_t *ndist);

/* Push the nearest allowed nodes' slots of query q (dim floats, unit for
 * cosine) into heap (caller-initialised with k), distances per scan.h.
 * exact gives the float vectors for re-ranking (NULL: code distances are
 * returned).  Never pushes a disallowed slot.  Returns 0, -1 on
 * allocation failure, or a negative get_block error. */
int wd_hnsw_search(wd_hnsw *g, const float *q, const roaring_bitmap_t *allowed,
                   const wd_hnsw_params *p, const wd_vecsrc *exact, wd_topk *heap,
                   wd_hnsw_stats *st);

/* The same answer by brute force over the codes: every node whose slot is
 * in allowed gets a code distance, the rerank nearest are re-ranked with
 * the float vectors from exact (NULL: code distances).  No walk, so no
 * dependence on where the allowed nodes lie: for small allowed sets (a
 * few thousand nodes) it reads a quarter of the exact scan's bytes, and
 * it is what an anti-correlated filter needs.  Slots of allowed beyond
 * the graph are ignored (the caller scans them).  st: ndist, reranked.
 * Returns 0, -1 on allocation failure, or a negative get_block error. */
int wd_hnsw_scan_codes(wd_hnsw *g, const float *q, const roaring_bitmap_t *allowed,
                       size_t rerank, const wd_vecsrc *exact, wd_topk *heap,
                       wd_hnsw_stats *st);

/* Calibrate on the graph's own vectors: nq sample queries (index/hnsw.c
 * says which kinds: jittered and left-out indexed vectors) at each
 * selectivity sels[i] (random allowed subsets of live), answered exactly
 * (wd_scan_exact) and by the graph in both modes over an efSearch sweep.
 * Writes up to cap points to out, returns how many (0 when it could not
 * measure), or -1 on allocation failure / a negative get_block error.
 * The walks run on threads threads (0: every core); src->get_block is
 * called from the calling thread only, and the points do not depend on
 * the thread count. */
int wd_hnsw_calibrate(wd_hnsw *g, const wd_vecsrc *src, const roaring_bitmap_t *live,
                      const double *sels, size_t nsel, size_t nq, wd_hnsw_cal *out,
                      size_t cap, uint64_t seed, int threads);

/* The cheapest calibrated setting that reaches recall target at
 * selectivity sel: interpolated between the calibrated selectivities
 * around sel, cost = ndist + list_w * lists (list_w: what one neighbour
 * list read costs in code distances; the caller's cost model says).
 * *hops: the chosen setting's mean hops, interpolated the same way, for
 * the caller's price (they do not choose the setting: see
 * engine/search.c plan_graph); 0 when the file did not record them.
 * Returns 1 with *ef, *two_hop, *ndist, *lists and *hops set, 0 when no
 * calibrated setting reaches target there or sel allows fewer than 200
 * of the graph's nodes (index/hnsw.c PLAN_MIN_ALLOWED). */
int wd_hnsw_plan(const wd_hnsw *g, double sel, double target, size_t k, double list_w,
                 size_t *ef, int *two_hop, double *ndist, double *lists, double *hops);

#endif
