/*
 * topk.c -- bounded top-k selection (see topk.h).
 *
 * A binary max-heap keyed on (dist, id) with the *worst* kept hit at the
 * root, so admission is one comparison against h[0] and a replacement is
 * one sift-down: O(log k) per admitted candidate, O(1) per rejected one.
 * "Worse" is the exact inverse of wd_hit_better, which makes the kept set
 * independent of the order candidates arrive in (ties: lower id wins).
 *
 * Threading: a wd_topk belongs to one thread at a time.
 */
#include "index/topk.h"

#include <math.h>

#include "base/wd_alloc.h"

int wd_topk_init(wd_topk *t, size_t k) {
  t->n = 0;
  t->k = k;
  /* k == 0 is tolerated (the heap keeps nothing); wd_malloc rounds 0 up. */
  t->h = wd_calloc(k ? k : 1, sizeof *t->h);
  if (!t->h) {
    t->k = 0;
    return -1;
  }
  return 0;
}

void wd_topk_free(wd_topk *t) {
  if (!t) return;
  wd_free(t->h);
  t->h = NULL;
  t->n = t->k = 0;
}

void wd_topk_reset(wd_topk *t) { t->n = 0; }

/* 1 when a ranks strictly after b (a is the worse hit). */
static inline int worse(const wd_hit_i *a, const wd_hit_i *b) {
  return wd_hit_better(b->dist, b->id, a->dist, a->id);
}

static void sift_up(wd_hit_i *h, size_t i) {
  wd_hit_i x = h[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!worse(&x, &h[p])) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = x;
}

static void sift_down(wd_hit_i *h, size_t n, size_t i) {
  wd_hit_i x = h[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && worse(&h[c + 1], &h[c])) c++;
    if (!worse(&h[c], &x)) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = x;
}

void wd_topk_push(wd_topk *t, float dist, uint32_t id) {
  if (isnan(dist) || t->k == 0) return;
  if (t->n < t->k) {
    t->h[t->n].dist = dist;
    t->h[t->n].id = id;
    sift_up(t->h, t->n);
    t->n++;
    return;
  }
  if (!wd_hit_better(dist, id, t->h[0].dist, t->h[0].id)) return;
  t->h[0].dist = dist;
  t->h[0].id = id;
  sift_down(t->h, t->n, 0);
}

float wd_topk_worst(const wd_topk *t) {
  if (t->n < t->k || t->k == 0) return INFINITY;
  return t->h[0].dist;
}

size_t wd_topk_drain_sorted(wd_topk *t, wd_hit_i *out) {
  size_t n = t->n;
  /* Pop the worst repeatedly, filling out from the back: best ends first. */
  while (t->n > 0) {
    out[t->n - 1] = t->h[0];
    t->n--;
    if (t->n > 0) {
      t->h[0] = t->h[t->n];
      sift_down(t->h, t->n, 0);
    }
  }
  return n;
}
