/*
 * ivf_build.h -- build an IVF index image (index/ivf.h layout) from a set
 * of live slots whose vectors come through a wd_vecsrc.  Storage-free: the
 * engine passes LMDB blocks (engine/indexer.c), the benchmark in-memory
 * ones.
 *
 * Training: FAISS k-means (index/ann_faiss.c) on a seeded uniform random
 * sample of at most max_train_per_list vectors per list (bounded: at most
 * 40 * nlist = 160 * sqrt(n) vectors by default, 245 MB at 1M x 384, 777 MB
 * at 10M); every live vector is then assigned in batches (FAISS, all
 * cores).  Memory: the image (n * (dim + 4) bytes with SQ8) plus 8 bytes
 * per vector; build_bytes reports it.  With `old`, the old
 * centroids (and SQ8 ranges) are kept -- no retraining -- and only slots
 * the old index did not hold are assigned; slots no longer live drop out.
 */
#ifndef WD_IVF_BUILD_H
#define WD_IVF_BUILD_H
#include "index/ivf.h"

typedef struct wd_ivf_build_in {
  const wd_vecsrc *src;          /* exact vectors of the slots */
  const roaring_bitmap_t *live;  /* slots to index (all < next_slot) */
  uint64_t next_slot, revision;  /* stamped into the header */
  size_t nlist;                  /* 0: ~4*sqrt(n), clamped to [1, n] */
  int sq8;
  const wd_ivf *old;             /* reuse its centroids; may be NULL */
  uint64_t old_ntrained;         /* with old: vectors it was trained on */
  int niter;                     /* k-means iterations; 0: 10 (as the bench gives FAISS) */
  size_t max_train_per_list;     /* 0: 40 (FAISS warns below 39; build time was slower than FAISS IVF at 64) */
  unsigned seed;
  void (*progress)(void *ctx, uint64_t done, uint64_t total);
  void *progress_ctx;
} wd_ivf_build_in;

typedef struct wd_ivf_build_out {
  void *image;       /* WD_IVF_HDR + body; free with wd_free */
  size_t len;
  size_t nlist;
  int retrained;     /* 1: new centroids; 0: reused old ones */
  uint64_t nvec, assigned, reused;
  double train_ms, assign_ms;
  uint64_t train_bytes;  /* the training sample */
  uint64_t build_bytes;  /* the build's peak working set (estimate) */
} wd_ivf_build_out;

/* Returns 0, -1 on allocation failure, -2 on a FAISS error, -3 when live is
 * empty, or a negative get_block error; why says what failed. */
int wd_ivf_build(const wd_ivf_build_in *in, wd_ivf_build_out *out, char *why,
                 size_t whylen);

/* The default list count for n vectors. */
size_t wd_ivf_default_nlist(uint64_t n);

#endif
