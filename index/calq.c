/*
 * calq.c -- calibration queries (see calq.h).
 *
 * Why these kinds: a calibration that measures with queries easier than
 * the real ones under-spends (recall below the target), one with harder
 * queries over-spends.  Measured with FAISS HNSW16 (efConstruction 64) as
 * a proxy walk, recall@10 at efSearch 16/32/64/128 on bench/graph_gen.py
 * text-384 (60k, cosine): the generator's held-out queries
 * 0.820/0.917/0.954/0.980, kind 0 0.802/0.914/0.967/0.979, kind 1
 * 0.829/0.927/0.971/0.986, kind 2 0.752/0.877/0.938/0.973; image-784
 * (60k, L2) held-out 0.980/0.999 at 16/32, every kind 0.98-0.99 /
 * 0.995-0.998.  A left-out point is jittered (kind 1) because its own node
 * is still in the graph: unjittered, its edges would lead a walk straight
 * to the answer (0.952 at efSearch 32 against 0.917 held-out).
 *
 * Replaced: the graph's 15 %/30 % interpolations plus 1.0 x spread noise
 * (0.79-0.82 at efSearch 32 on text-384: planned at efSearch 384 where 32
 * reached 0.97 on held-out queries).
 */
#include "index/calq.h"

#include <math.h>
#include <string.h>

#include "base/wd_alloc.h"
#include "base/wd_types.h"

static uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* slot's vector as ranked (unit length for cosine) into out: 0, 1 when
 * missing, or a negative get_block error */
static int get_vec(const wd_vecsrc *src, uint32_t slot, float *out) {
  const float *base = NULL;
  int g = src->get_block(src->ctx, slot / WD_BLOCK, &base);
  if (g < 0) return g;
  if (g != 0 || !base) return 1;
  const float *x = base + WD_BLOCK + (size_t)(slot % WD_BLOCK) * src->dim;
  float inv = src->metric == WD_METRIC_COSINE ? base[slot % WD_BLOCK] : 1.0f;
  for (size_t j = 0; j < src->dim; j++) out[j] = x[j] * inv;
  return 0;
}

int wd_calib_queries(const wd_vecsrc *src, const roaring_bitmap_t *live, size_t nq,
                     uint64_t seed, float *q, uint32_t *left, size_t *nleft) {
  const size_t dim = src->dim;
  uint64_t nlive = roaring_bitmap_get_cardinality(live);
  *nleft = 0;
  if (nlive == 0) return 1;
  float *tmp = wd_malloc((dim ? dim : 1) * sizeof *tmp);
  double *mean = wd_calloc(dim ? dim : 1, sizeof *mean), *sd = wd_calloc(dim ? dim : 1, sizeof *sd);
  int rc = 0;
  if (!tmp || !mean || !sd) {
    rc = -1;
    goto out;
  }
  for (size_t i = 0; i < nq; i++) {
    uint32_t a = 0, b = 0;
    roaring_bitmap_select(live, (uint32_t)(splitmix(seed + 2 * i) % nlive), &a);
    roaring_bitmap_select(live, (uint32_t)(splitmix(seed + 2 * i + 1) % nlive), &b);
    float *y = q + i * dim;
    int r1 = get_vec(src, a, y), r2 = get_vec(src, b, tmp);
    if (r1 || r2) {
      rc = r1 < 0 ? r1 : r2 < 0 ? r2 : 1;
      goto out;
    }
    for (size_t j = 0; j < dim; j++) {
      mean[j] += y[j];
      sd[j] += (double)y[j] * y[j];
    }
    if (i % 3 == 0)
      for (size_t j = 0; j < dim; j++) y[j] = 0.85f * y[j] + 0.15f * tmp[j];
    else if (i % 3 == 1)
      left[(*nleft)++] = a;
  }
  for (size_t j = 0; j < dim; j++) {
    mean[j] /= (double)nq;
    double v = sd[j] / (double)nq - mean[j] * mean[j];
    sd[j] = v > 0 ? sqrt(v) : 0;
  }
  uint64_t ns = seed ^ 0xABCDEFull;
  for (size_t i = 0; i < nq; i++) {
    float *y = q + i * dim;
    if (i % 3 != 0) {
      double amp = i % 3 == 1 ? 0.3 : 0.5;
      for (size_t j = 0; j < dim; j++) {
        double u1 = ((double)(splitmix(ns++) >> 11) + 1) / 9007199254740993.0;
        double u2 = (double)(splitmix(ns++) >> 11) / 9007199254740992.0;
        y[j] += (float)(amp * sd[j] * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
      }
    }
    double n2 = 0;
    for (size_t j = 0; j < dim; j++) n2 += (double)y[j] * y[j];
    if (src->metric == WD_METRIC_COSINE && n2 > 0)
      for (size_t j = 0; j < dim; j++) y[j] = (float)(y[j] / sqrt(n2));
  }
out:
  wd_free(tmp);
  wd_free(mean);
  wd_free(sd);
  return rc;
}
