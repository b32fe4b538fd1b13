/*
 * scan.h -- exact filtered k-NN over blocked embeddings.
 *
 * Embeddings live in fixed-size blocks of WD_BLOCK vectors (the layout the
 * store keeps in LMDB, see engine/store.h): chunk id c lives in block
 * c / WD_BLOCK at row c % WD_BLOCK.  A block is one contiguous buffer:
 *
 *     float invnorm[WD_BLOCK];        1/||x|| per row (0 for empty rows)
 *     float vec[WD_BLOCK][dim];       the raw embeddings, row-major
 *
 * The allowed set (a CRoaring bitmap of chunk ids) is consulted *inside* the
 * scan: a disallowed vector costs no distance computation.  Two paths:
 *  - sparse: iterate only the allowed ids (few per block);
 *  - dense: per block, distances for the allowed rows with the row kernels,
 *    or for batches of queries one SGEMM (OpenBLAS) of queries x block.
 * Scores: cosine uses dot(q/|q|, x) * invnorm[x]; ip uses dot; l2 uses the
 * squared distance.  Internally "dist" is lower-is-better: -score for
 * cosine/ip, l2sq for l2.
 *
 * Threading: wd_scan_exact is reentrant; it only reads the blocks.
 */
#ifndef WD_SCAN_H
#define WD_SCAN_H
#include <roaring/roaring.h>
#include <stddef.h>
#include <stdint.h>

#include "base/layout.h"
#include "index/topk.h"

typedef struct wd_vecsrc {
  size_t dim;
  int metric; /* WD_METRIC_* */
  /* Fetch block b.  On success return 0 and set *base to the block buffer
   * (layout above), valid for the whole scan.  Return 1 when the block does
   * not exist (treated as empty), negative on error (the scan stops and
   * returns that value). */
  int (*get_block)(void *ctx, uint32_t b, const float **base);
  void *ctx;
} wd_vecsrc;

typedef struct wd_scan_stats {
  uint64_t scanned;  /* distance computations made (per query summed) */
  uint64_t blocks;   /* blocks touched */
  int path;          /* 0 sparse, 1 dense, 2 dense-sgemm */
} wd_scan_stats;

/* For each of nq queries (row-major, dim floats each; for cosine already
 * normalised to unit length by the caller), push every allowed chunk's
 * distance into heaps[q] (initialised by the caller with the wanted k).
 * allowed must only contain ids of existing, live chunks' rows (others are
 * read as whatever the block holds).  stats may be NULL.  Returns 0, a
 * negative get_block error, or -1 on allocation failure. */
int wd_scan_exact(const wd_vecsrc *src, const float *queries, size_t nq,
                  const roaring_bitmap_t *allowed, wd_topk *heaps,
                  wd_scan_stats *stats);

/* Convert an internal dist back to the user-facing score. */
static inline float wd_dist_to_score(int metric, float dist) {
  return metric == 1 /* l2 */ ? dist : -dist;
}

#endif
