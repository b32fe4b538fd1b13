/*
 * topk.h -- bounded top-k selection with a binary max-heap.
 *
 * Distances are "lower is better" (callers negate similarities).  Ties are
 * broken deterministically: between equal distances the lower id wins, so
 * the result never depends on scan order.  NaN distances are never pushed
 * (callers validate vectors; the heap also rejects them).
 */
#ifndef WD_TOPK_H
#define WD_TOPK_H
#include <stddef.h>
#include <stdint.h>

typedef struct wd_hit_i {
  float dist;
  uint32_t id;
} wd_hit_i;

typedef struct wd_topk {
  wd_hit_i *h; /* heap, worst element at h[0] */
  size_t n;    /* elements held */
  size_t k;    /* capacity */
} wd_topk;

/* 1 when (da, ia) ranks strictly before (db, ib). */
static inline int wd_hit_better(float da, uint32_t ia, float db, uint32_t ib) {
  return da < db || (da == db && ia < ib);
}

/* Initialise for k results (k >= 1).  Returns 0 or -1 on allocation
 * failure.  Free with wd_topk_free. */
int wd_topk_init(wd_topk *t, size_t k);
void wd_topk_free(wd_topk *t);
void wd_topk_reset(wd_topk *t);
/* Offer a candidate; kept if it ranks among the best k seen so far. */
void wd_topk_push(wd_topk *t, float dist, uint32_t id);
/* wd_topk_push for the scan loops (index/scan.c, index/ivf.c): pushes only
 * what could enter the heap, so a rejected candidate costs one compare
 * instead of a call. */
static inline void wd_topk_offer(wd_topk *t, float d, uint32_t id) {
  if (t->n < t->k || wd_hit_better(d, id, t->h[0].dist, t->h[0].id)) wd_topk_push(t, d, id);
}
/* Current admission threshold: a candidate must rank better than
 * (worst_dist, worst_id) once the heap is full.  +inf while not full. */
float wd_topk_worst(const wd_topk *t);
/* Sort the held results best first into out (t->n entries) and leave the
 * heap empty.  out may alias nothing in t. */
size_t wd_topk_drain_sorted(wd_topk *t, wd_hit_i *out);

#endif
