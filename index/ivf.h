/*
 * ivf.h -- warden's inverted-file (IVF) index: centroids from FAISS k-means
 * (index/ann_faiss.c), inverted lists of chunk slots, and a filtered list
 * scan with adaptive probing.  Storage-free: it knows nothing of LMDB; the
 * exact vectors it may need (SQ8 re-ranking) come through a wd_vecsrc.
 *
 * Why our own lists and kernels instead of FAISS's IndexIVF search: the
 * allowed set is a CRoaring bitmap that changes per query.  Scanning a list
 * here costs one bitmap probe per id and a distance only for allowed ids,
 * with the runtime-dispatched AVX-512/AVX2 kernels of index/kernels.c;
 * Debian's FAISS is a generic build and would need the bitmap expanded to
 * a dense byte map per query for its IDSelectorBitmap.  bench/ivf_bench.c
 * measures both (numbers in its header comment).
 *
 * The index file (one per collection, DIR/index/ivf.wdx) is a 128-byte
 * header followed by a body of 64-byte aligned sections:
 *
 *   header: magic "WDIVF\r\n\032", u32 version, dim, metric, flags (bit 0:
 *           SQ8), nlist, calib_lists (the unfiltered probe depth measured
 *           at build time, 0: none); u64 revision, next_slot (the LMDB state
 *           it reflects), ntrained (vectors when the centroids were
 *           trained), nvec, body_len, body_sum (checksum of the body),
 *           created (unix time); the probe-depth table
 *           (wd_ivf_cal, zero in older files) and zero padding; u64 hdr_sum (checksum of the
 *           120 bytes before it).  Host byte order (little-endian x86-64).
 *   body:   float centroids[nlist][dim]
 *           u64   offs[nlist + 1]           list l = [offs[l], offs[l+1])
 *           u32   ids[nvec]                 slots, ascending within a list
 *           flat: float vecs[nvec][dim]     (unit length for cosine)
 *           sq8:  float sqmin[dim], sqscale[dim]; u8 codes[nvec][dim]
 *
 * Vectors are stored list by list, so probing a list streams one
 * contiguous run of memory.  A file is only ever replaced by rename(2) of
 * a fully written and fsynced temp file (wd_ivf_write_file), and every
 * field is validated on open (wd_ivf_open_file), so a crash or a damaged
 * file can make the index unavailable but never wrong.
 *
 * Threading: a loaded wd_ivf and a wd_ivf_extra are immutable; any number
 * of threads may search them at once.
 */
#ifndef WD_IVF_H
#define WD_IVF_H
#include <roaring/roaring.h>
#include <stddef.h>
#include <stdint.h>

#include "index/scan.h"
#include "index/topk.h"

#define WD_IVF_VERSION 1u
#define WD_IVF_HDR 128u
#define WD_IVF_SQ8 1u

typedef struct wd_ivf_header {
  char magic[8];
  uint32_t version, dim, metric, flags, nlist;
  uint32_t calib_lists; /* lists reaching recall 0.95 unfiltered at build time (0: not measured) */
  uint64_t revision, next_slot, ntrained, nvec, body_len, body_sum, created;
  uint8_t pad[WD_IVF_HDR - 88 - 8];
  uint64_t hdr_sum;
} wd_ivf_header;

/* The probe-depth calibration table, stored in the header's padding
 * (which older files leave zero: present == 0, the planner then uses its
 * fixed rule).  lists[s][t]: probed lists (margin included) that gave mean
 * recall@10 >= WD_IVF_CAL_TGT[t] at selectivity WD_IVF_CAL_SELS[s]
 * (uncorrelated random allowed sets, measured on the collection's own
 * vectors when the index was built: engine/indexer.c); 0: not reached. */
#define WD_IVF_CAL_NSEL 5
#define WD_IVF_CAL_NTGT 3
#define WD_IVF_CAL_SELS {1.0, 0.3, 0.1, 0.03, 0.01}
#define WD_IVF_CAL_TGTS {0.90, 0.95, 0.99}
typedef struct wd_ivf_cal {
  uint16_t present; /* 1 */
  uint16_t lists[WD_IVF_CAL_NSEL][WD_IVF_CAL_NTGT];
} wd_ivf_cal;

/* Byte offsets of the body sections (relative to the body start). */
typedef struct wd_ivf_layout {
  size_t cent, offs, ids, vecs, sqmin, sqscale, codes, body_len;
} wd_ivf_layout;

void wd_ivf_layout_of(size_t dim, size_t nlist, size_t nvec, int sq8,
                      wd_ivf_layout *lay);

/* A read-only view of an index image (header + body). */
typedef struct wd_ivf {
  wd_ivf_header h;
  size_t dim;
  int metric, sq8;
  size_t nlist;
  const float *cent;
  const uint64_t *offs;
  const uint32_t *ids;
  const float *vecs;                  /* flat */
  const float *sqmin, *sqscale;       /* sq8 */
  const uint8_t *codes;               /* sq8 */
  void *map;                          /* mmap of the file, or NULL */
  size_t maplen;
  void *owned;                        /* wd_malloc'd image, or NULL */
  /* The centroids in SQ8 too, made at open (not stored), so probe order
   * costs a quarter of the bytes; NULL when not made (out of memory: the
   * float centroids are used).  L2 adds each decoded centroid's squared
   * norm (cnorm) and orders by |c|^2 - 2 q.c: image-784 60k (979 lists),
   * the float L2 over the centroids read 3 MB per query; an IVF query
   * probing one list took 62-71 us with it, 37-39 with the bytes.
   * Scanning L2 lists on bytes too (per-entry norms, filled per list on
   * first probe) was measured: the float SQ8 L2 kernel's 19 % of an
   * image-784 10 % query became ~12 % in the byte kernel; not kept for
   * the lazily filled, shared state it needs. */
  const uint8_t *ccodes;
  const float *cmin, *cscale, *cnorm;
  void *cq;                           /* their allocation */
} wd_ivf;

/* 64-bit checksum (4-lane multiply-rotate hash, ~10 GB/s). */
uint64_t wd_ivf_checksum(const void *p, size_t n);

/* Build an image: the caller allocates WD_IVF_HDR + lay.body_len bytes
 * (zeroed), fills the header fields and sections, then calls
 * wd_ivf_seal() to compute body_sum and hdr_sum. */
void wd_ivf_seal(void *image);

/* Atomically replace path with the image: write path.tmp.PID, fsync,
 * rename over path, fsync the directory.  Returns 0 or -1 with a message
 * in why (the old file is then untouched). */
int wd_ivf_write_file(const char *path, const void *image, size_t len,
                      char *why, size_t whylen);

/* Open and fully validate an index file for a collection of dimension dim
 * and metric.  Returns 0 with *out filled (release with wd_ivf_close), or:
 *   1  missing file;   2 damaged (size, checksum, structure);
 *   3  foreign (magic, dimension or metric differ, newer format version).
 * On nonzero, why says what is wrong.  Ids are checked < next_slot and the
 * lists for monotony; the caller compares revision/next_slot with the
 * store. */
int wd_ivf_open_file(const char *path, size_t dim, int metric, wd_ivf *out,
                     char *why, size_t whylen);
/* The same over an image in memory (borrowed, must outlive the view). */
int wd_ivf_open_image(const void *image, size_t len, size_t dim, int metric,
                      wd_ivf *out, char *why, size_t whylen);
void wd_ivf_close(wd_ivf *ix);

/* Vectors added after the file was written (a stale index catching up):
 * per-list arrays of slots and float vectors (unit length for cosine). */
typedef struct wd_ivf_extra {
  size_t nlist, dim;
  uint32_t *cnt, *cap;
  uint32_t **ids;
  float **vecs;
  uint64_t nvec;
} wd_ivf_extra;

/* New empty extra for nlist lists, or a deep copy of src (src may be
 * NULL).  NULL on allocation failure. */
wd_ivf_extra *wd_ivf_extra_clone(const wd_ivf_extra *src, size_t nlist,
                                 size_t dim);
/* Append n vectors (already normalised for cosine) with their slots and
 * list labels.  Returns 0 or -1 on allocation failure. */
int wd_ivf_extra_add(wd_ivf_extra *ex, const uint32_t *slots,
                     const uint32_t *labels, const float *vecs, size_t n);
void wd_ivf_extra_free(wd_ivf_extra *ex);

/* SQ8 candidates the engine re-ranks with the float vectors for k
 * results, at build-time calibration (k = 10) and at query time alike:
 * max(3k, 32).  It was max(4k, 64); on text-384 60k at 10 % (AVX-512
 * VNNI) 32 kept the calibrated depth (43 lists) and recall (0.9875) and
 * took p50 135-150 -> 101-117 us: the float rows are scattered reads, and
 * the true top 10 sat within the first 32 code-ranked candidates. */
static inline size_t wd_ivf_rerank(size_t k) { return 3 * k > 32 ? 3 * k : 32; }

/* Probe bounds.  Lists are visited in order of centroid distance until at
 * least min_lists were probed AND want_allowed allowed vectors were
 * scanned; never more than max_lists lists or (after the first list)
 * max_visited ids. */
typedef struct wd_ivf_params {
  size_t min_lists;
  uint64_t want_allowed;
  size_t max_lists;
  uint64_t max_visited;
  size_t rerank;        /* sq8: candidates re-ranked with exact vectors
                           (wd_ivf_rerank) */
  /* Optional dense copy of the allowed set (wd_ivf_bits): when set it is
   * consulted instead of the roaring bitmap -- one load per visited id
   * instead of a binary search in an array container (~45 ns). */
  const uint64_t *bits;
  uint64_t nbits;
  /* Optional, for allowed sets lying away from the query: also require
   * min_eff "effective" lists, where a probed list counts
   * min(1, its allowed entries / (its length * sel)) -- a list holding
   * the collection's share of allowed vectors counts as one, a list
   * holding none as zero.  0: off. */
  double min_eff, sel;
  /* Optional: when the first min_lists lists are done and the allowed
   * share of the ids they held is below this, stop there and set
   * wd_ivf_stats.starved (the caller answers exactly instead of reading
   * on through allowed-poor lists).  0: off. */
  double starve_below;
  /* Optional (needs bits): run every entry of a list through the kernel
   * and test the filter only on the way into the heap, for dense filters
   * where allowed and filtered-out entries alternate -- while the list
   * probed before held at least this share of allowed entries (the first
   * list always): an allowed set lying away from the query leaves the
   * lists near it sparse, and there the run-by-run scan is cheaper.
   * 0: off. */
  double whole_from;
  /* Optional (a calibrated probe): a shallower depth where the probe finds
   * the allowed set denser than its global share -- a filter correlated
   * with the query, whose nearest allowed vectors are as near as those of
   * a higher selectivity.  After WD_IVF_DYN_MIN visited ids, while the
   * allowed share seen is at least WD_IVF_DYN_FACTOR times dyn_sel[i]
   * (descending), dyn_lists[i] lists are enough (never more than
   * min_lists; k allowed, want_allowed, still needed).  ndyn 0: off. */
  const double *dyn_sel;
  const size_t *dyn_lists;
  size_t ndyn;
} wd_ivf_params;
#define WD_IVF_DYN_MIN 256
#define WD_IVF_DYN_FACTOR 1.5

/* A dense bitset of allowed (ids < roaring max + 1), *nbits set to its
 * size in bits.  Free with wd_free.  NULL on allocation failure (or when
 * allowed is empty: then *nbits is 0). */
uint64_t *wd_ivf_bits(const roaring_bitmap_t *allowed, uint64_t *nbits);

typedef struct wd_ivf_stats {
  uint64_t lists;     /* lists probed */
  uint64_t visited;   /* ids looked at (allowed or not) */
  uint64_t scanned;   /* distance computations on allowed ids */
  uint64_t reranked;  /* sq8 exact re-rank computations */
  int bound_hit;      /* stopped by max_lists/max_visited before want */
  /* visited and scanned when the first min_lists lists were done (the
   * calibrated region around the query): their ratio is the allowed
   * density near the query */
  uint64_t visited_min, scanned_min;
  int starved;        /* stopped by starve_below; the heap is partial */
} wd_ivf_stats;

/* Push the nearest allowed vectors of one query q (dim floats, unit for
 * cosine) into heap (caller-initialised with k).  allowed NULL means every
 * indexed id.  ex may be NULL.  exact (needed for SQ8 only) gives the exact
 * vectors for re-ranking.  Dists follow scan.h (lower is better).  Returns
 * 0, -1 on allocation failure, or a negative get_block error. */
int wd_ivf_search(const wd_ivf *ix, const wd_ivf_extra *ex, const float *q,
                  const roaring_bitmap_t *allowed, const wd_ivf_params *p,
                  const wd_vecsrc *exact, wd_topk *heap, wd_ivf_stats *st);

/* SQ8 encode of one vector with the image's per-dimension ranges. */
void wd_ivf_sq8_encode(const float *x, const float *sqmin,
                       const float *sqscale, size_t dim, uint8_t *code);

/* The order wd_ivf_search probes lists in, for lists at distances d[0..n)
 * (lower first, ties by list number) with `want` lists heaped first: the
 * first m list numbers into order.  Returns how many were written
 * (min(m, n)); -1 out of memory.  For tests: the probe's own code path. */
long wd_ivf_probe_order(const float *d, size_t n, size_t want, uint32_t *order, size_t m);

#endif
