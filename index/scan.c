/*
 * scan.c -- exact filtered k-NN over blocked embeddings (see scan.h).
 *
 * The allowed bitmap drives the scan: its ids are read in sorted order in
 * small batches (roaring_read_uint32_iterator), gathered per block, and each
 * block is then handled by one of three paths chosen from how many of its
 * rows are allowed:
 *
 *  - sparse (few allowed rows): the rows are queued across blocks and
 *    scored one kernel call per id, with the next rows prefetched;
 *  - dense (many): the allowed rows form runs of consecutive ids, and each
 *    run is one *_rows kernel call, which streams the run from memory at
 *    close to bandwidth;
 *  - dense-sgemm (nq >= 2 and the allowed rows fill most of their span):
 *    one SGEMM of (queries x dim) * (dim x span) gives every inner product,
 *    and the BLAS kernel reuses each block row across all queries from
 *    cache instead of re-reading it per query.
 *
 * Disallowed rows cost no distance computation except on the SGEMM path,
 * which computes the whole span between the first and last allowed row of
 * a block (it is only chosen when that span is mostly allowed) and then
 * drops the disallowed columns before they reach any heap.
 *
 * L2 in the SGEMM path: ||q||^2 + ||x||^2 - 2 q.x loses precision when the
 * distance is small relative to the norms.  It is used only as a filter: a
 * candidate whose approximate distance, minus a worst-case float error
 * bound, could still enter the heap is recomputed exactly with wd_l2sq.
 * So batch L2 results equal the single-query ones bit for bit.  Cosine and
 * ip take the SGEMM dot products as they are (summation order differs from
 * the single-query kernels by a few ulps).
 *
 * Threading: reentrant; reads the blocks, writes only the caller's heaps
 * and its own per-call scratch.
 */
#include "index/scan.h"

#include <cblas.h>
#include <float.h>
#include <string.h>

#include "index/kernels.h"
#include "base/wd_alloc.h"
#include "base/wd_types.h"

/* A block with at least this many allowed rows takes a dense path. */
#define DENSE_MIN (WD_BLOCK / 8)
/* SGEMM needs the allowed rows to fill at least 1/SGEMM_FILL of their span,
 * or it would spend most of its flops on disallowed rows. */
#define SGEMM_FILL 2
/* Queries per SGEMM call: bounds the result scratch to QCHUNK*WD_BLOCK
 * floats while each block is reused from cache across the chunks. */
#define QCHUNK 128
/* Ids read from the bitmap per iterator call. */
#define IDBUF 256
/* Sparse rows are queued across blocks and scored SPQ at a time, with the
 * lines of the row PF_AHEAD ahead requested while one is scored.  Scattered
 * rows defeat the hardware prefetcher, and at 1 % density a block holds
 * ~2-3 allowed rows, so a per-block look-ahead never got going: the scan
 * waited on DRAM once per vector.  bench/scanbench.c, 340k x 100, random
 * rows (AMD EPYC, AVX-512): 1 % with a different set per call 0.39 ms
 * without prefetch, 0.31 ms prefetching within blocks, 0.25 ms with this
 * queue; 10 % 2.98 -> 2.05 ms.  PF_AHEAD 4..10 measured within 5 %. */
#define SPQ 64
#ifndef PF_AHEAD
#define PF_AHEAD 6
#endif

typedef struct scan_ctx {
  const wd_vecsrc *src;
  size_t dim;
  int metric;
  const float *queries;
  size_t nq;
  wd_topk *heaps;
  float *out;  /* kernel / SGEMM results: max(WD_BLOCK, QCHUNK*WD_BLOCK) */
  float *qn;   /* ||q||^2 per query (l2 batch only) */
  float *xn;   /* ||x||^2 per allowed row of the current block */
  uint64_t scanned, blocks;
  uint64_t ids_path[3]; /* allowed ids handled by each path */
  /* queued sparse rows: vector, 1/||x|| and id */
  const float *sp_x[SPQ];
  const float *sp_inv[SPQ]; /* read when scored: the load is prefetched */
  uint32_t sp_id[SPQ];
  size_t sp_n;
} scan_ctx;

static inline void prefetch_row(const float *x, size_t bytes) {
  const char *p = (const char *)x;
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 3);
}

/* Turn a raw kernel value into the internal lower-is-better dist. */
static inline float to_dist(int metric, float v, float invnorm) {
  if (metric == WD_METRIC_COSINE) return -(v * invnorm);
  if (metric == WD_METRIC_IP) return -v;
  return v; /* l2: v is already the squared distance */
}

/* Score the queued sparse rows against every query. */
static void sparse_flush(scan_ctx *c) {
  const size_t n = c->sp_n, dim = c->dim, vbytes = dim * sizeof(float);
  const int l2 = c->metric == WD_METRIC_L2;
  if (n == 0) return;
  for (size_t qi = 0; qi < c->nq; qi++) {
    const float *q = c->queries + qi * dim;
    wd_topk *t = &c->heaps[qi];
    if (qi == 0)
      for (size_t i = 0; i < n && i < PF_AHEAD; i++) {
        prefetch_row(c->sp_x[i], vbytes);
        __builtin_prefetch(c->sp_inv[i], 0, 3);
      }
    for (size_t i = 0; i < n; i++) {
      if (qi == 0 && i + PF_AHEAD < n) {
        prefetch_row(c->sp_x[i + PF_AHEAD], vbytes);
        __builtin_prefetch(c->sp_inv[i + PF_AHEAD], 0, 3);
      }
      const float *x = c->sp_x[i];
      float v = l2 ? wd_l2sq(q, x, dim) : wd_dot(q, x, dim);
      wd_topk_offer(t, to_dist(c->metric, v, *c->sp_inv[i]), c->sp_id[i]);
    }
  }
  c->scanned += (uint64_t)n * c->nq;
  c->sp_n = 0;
}

/* The queries against the allowed rows of one dense block, run by run.
 * rows is sorted ascending. */
static void block_runs(scan_ctx *c, const float *base, uint32_t b,
                       const uint32_t *rows, size_t nrows) {
  const float *invn = base;
  const float *vec = base + WD_BLOCK;
  const size_t dim = c->dim;
  const int l2 = c->metric == WD_METRIC_L2;
  for (size_t qi = 0; qi < c->nq; qi++) {
    const float *q = c->queries + qi * dim;
    wd_topk *t = &c->heaps[qi];
    size_t span = rows[nrows - 1] - rows[0] + 1;
    if (nrows * 2 >= span) {
      /* at least half the span is allowed: one streaming call over the
       * whole span beats many short runs (measured: 50 % random density at
       * 50k x 384 went from 8.7 to ~4 ms per query); only allowed rows are
       * offered */
      uint32_t r0 = rows[0];
      const float *x = vec + (size_t)r0 * dim;
      if (l2)
        wd_l2sq_rows(q, x, span, dim, c->out);
      else
        wd_dot_rows(q, x, span, dim, c->out);
      for (size_t k = 0; k < nrows; k++)
        wd_topk_offer(t, to_dist(c->metric, c->out[rows[k] - r0], invn[rows[k]]), b * WD_BLOCK + rows[k]);
      continue;
    }
    size_t i = 0;
    while (i < nrows) {
      size_t j = i + 1;
      while (j < nrows && rows[j] == rows[j - 1] + 1) j++;
      uint32_t r0 = rows[i];
      size_t len = j - i;
      const float *x = vec + (size_t)r0 * dim;
      if (l2)
        wd_l2sq_rows(q, x, len, dim, c->out);
      else
        wd_dot_rows(q, x, len, dim, c->out);
      for (size_t k = 0; k < len; k++)
        wd_topk_offer(t, to_dist(c->metric, c->out[k], invn[r0 + k]),
              b * WD_BLOCK + r0 + (uint32_t)k);
      i = j;
    }
  }
  c->scanned += (uint64_t)nrows * c->nq;
}

/* All queries against one block with SGEMM over the span of allowed rows. */
static void block_sgemm(scan_ctx *c, const float *base, uint32_t b,
                        const uint32_t *rows, size_t nrows) {
  const float *invn = base;
  const float *vec = base + WD_BLOCK;
  const size_t dim = c->dim;
  const int l2 = c->metric == WD_METRIC_L2;
  const uint32_t lo = rows[0];
  const size_t span = rows[nrows - 1] - lo + 1;
  const float *xs = vec + (size_t)lo * dim;
  /* Worst-case relative error of a float dot product of length dim (Higham,
   * gamma_n ~ n*u), doubled for the three terms of the expansion. */
  const float relerr = 4.0f * (float)dim * FLT_EPSILON;

  if (l2)
    for (size_t i = 0; i < nrows; i++) {
      const float *x = vec + (size_t)rows[i] * dim;
      c->xn[i] = wd_dot(x, x, dim);
    }
  for (size_t q0 = 0; q0 < c->nq; q0 += QCHUNK) {
    size_t qc = c->nq - q0 < QCHUNK ? c->nq - q0 : QCHUNK;
    /* out[qc x span] = Q[qc x dim] * X[span x dim]^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)qc, (int)span,
                (int)dim, 1.0f, c->queries + q0 * dim, (int)dim, xs, (int)dim,
                0.0f, c->out, (int)span);
    c->scanned += (uint64_t)qc * span;
    for (size_t qi = 0; qi < qc; qi++) {
      wd_topk *t = &c->heaps[q0 + qi];
      const float *o = c->out + qi * span;
      if (!l2) {
        for (size_t i = 0; i < nrows; i++) {
          uint32_t r = rows[i];
          wd_topk_offer(t, to_dist(c->metric, o[r - lo], invn[r]), b * WD_BLOCK + r);
        }
        continue;
      }
      const float qn = c->qn[q0 + qi];
      const float *q = c->queries + (q0 + qi) * dim;
      for (size_t i = 0; i < nrows; i++) {
        uint32_t r = rows[i];
        float s = qn + c->xn[i];
        float approx = s - 2.0f * o[r - lo];
        /* Could it enter the heap?  If not even with the error bound
         * subtracted, it certainly cannot with the exact value. */
        if (t->n >= t->k && !(approx - relerr * s <= t->h[0].dist)) continue;
        float d = wd_l2sq(q, vec + (size_t)r * dim, dim);
        c->scanned++;
        wd_topk_offer(t, d, b * WD_BLOCK + r);
      }
    }
  }
}

/* Handle the gathered allowed rows of block b.  Returns 0 or a negative
 * get_block error. */
static int scan_block(scan_ctx *c, uint32_t b, const uint32_t *rows,
                      size_t nrows) {
  const float *base = NULL;
  int rc = c->src->get_block(c->src->ctx, b, &base);
  if (rc < 0) return rc;
  if (rc != 0 || !base) return 0; /* missing block: its ids have no rows */
  c->blocks++;
  size_t span = rows[nrows - 1] - rows[0] + 1;
  if (c->nq >= 2 && c->dim > 0 && nrows >= DENSE_MIN &&
      nrows * SGEMM_FILL >= span) {
    block_sgemm(c, base, b, rows, nrows);
    c->ids_path[2] += nrows;
  } else if (nrows >= DENSE_MIN) {
    block_runs(c, base, b, rows, nrows);
    c->ids_path[1] += nrows;
  } else {
    /* sparse: queue the rows (the block stays mapped for the whole scan) */
    const float *vec = base + WD_BLOCK;
    for (size_t i = 0; i < nrows; i++) {
      if (c->sp_n == SPQ) sparse_flush(c);
      c->sp_x[c->sp_n] = vec + (size_t)rows[i] * c->dim;
      c->sp_inv[c->sp_n] = base + rows[i];
      c->sp_id[c->sp_n++] = b * WD_BLOCK + rows[i];
    }
    c->ids_path[0] += nrows;
  }
  return 0;
}

int wd_scan_exact(const wd_vecsrc *src, const float *queries, size_t nq,
                  const roaring_bitmap_t *allowed, wd_topk *heaps,
                  wd_scan_stats *stats) {
  scan_ctx c;
  memset(&c, 0, sizeof c);
  c.src = src;
  c.dim = src->dim;
  c.metric = src->metric;
  c.queries = queries;
  c.nq = nq;
  c.heaps = heaps;
  int rc = 0;
  uint32_t *ids = NULL, *rows = NULL;
  if (nq == 0 || !allowed) goto done;

  size_t outn = nq >= 2 ? (size_t)QCHUNK * WD_BLOCK : WD_BLOCK;
  c.out = wd_malloc(outn * sizeof *c.out);
  c.xn = wd_malloc(WD_BLOCK * sizeof *c.xn);
  c.qn = wd_malloc(nq * sizeof *c.qn);
  ids = wd_malloc(IDBUF * sizeof *ids);
  rows = wd_malloc(WD_BLOCK * sizeof *rows);
  if (!c.out || !c.xn || !c.qn || !ids || !rows) {
    rc = -1;
    goto done;
  }
  if (c.metric == WD_METRIC_L2)
    for (size_t i = 0; i < nq; i++)
      c.qn[i] = wd_dot(queries + i * c.dim, queries + i * c.dim, c.dim);

  roaring_uint32_iterator_t it;
  roaring_init_iterator(allowed, &it);
  uint32_t cur = 0; /* block being gathered */
  size_t nrows = 0;
  for (;;) {
    uint32_t got = roaring_read_uint32_iterator(&it, ids, IDBUF);
    for (uint32_t i = 0; i < got; i++) {
      uint32_t b = ids[i] / WD_BLOCK;
      if (nrows > 0 && b != cur) {
        rc = scan_block(&c, cur, rows, nrows);
        if (rc < 0) goto done;
        nrows = 0;
      }
      cur = b;
      rows[nrows++] = ids[i] % WD_BLOCK;
    }
    if (got < IDBUF) break;
  }
  if (nrows > 0) {
    rc = scan_block(&c, cur, rows, nrows);
    if (rc < 0) goto done;
  }
  sparse_flush(&c);
  rc = 0;

done:
  if (rc == 0 && stats) {
    stats->scanned = c.scanned;
    stats->blocks = c.blocks;
    int p = 0;
    for (int k = 1; k < 3; k++)
      if (c.ids_path[k] > c.ids_path[p]) p = k;
    stats->path = p;
  }
  wd_free(c.out);
  wd_free(c.xn);
  wd_free(c.qn);
  wd_free(ids);
  wd_free(rows);
  return rc;
}
