/*
 * synth.h -- a seeded Gaussian-mixture generator for the C benchmarks
 * (bench/ivf_bench.c, bench/planner_calib.c), shaped like bench/gen.py's
 * synthetic-384: Zipf-sized clusters (N/200 of them), cluster centres with
 * variance 1/(j+1) on axis j, within-cluster noise 0.3/(j+1)^0.8, unit
 * norm.  Also an in-memory wd_vecsrc in the LMDB block layout (scan.h).
 * Header-only; bench code, not library code.
 */
#ifndef WD_BENCH_SYNTH_H
#define WD_BENCH_SYNTH_H
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scan.h"

static uint64_t syn_state = 0x9e3779b97f4a7c15ull;
static inline uint64_t syn_next(void) {
  syn_state ^= syn_state >> 12;
  syn_state ^= syn_state << 25;
  syn_state ^= syn_state >> 27;
  return syn_state * 2685821657736338717ull;
}
static inline double syn_unif(void) { return (syn_next() >> 11) * (1.0 / 9007199254740992.0); }
static inline double syn_gauss(void) {
  double u = syn_unif(), v = syn_unif();
  if (u < 1e-300) u = 1e-300;
  return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

typedef struct syn_data {
  size_t n, d, ncl;
  float *cent;   /* ncl x d */
  double *cdf;   /* cluster weights */
} syn_data;

static inline void syn_init(syn_data *s, size_t n, size_t d, uint64_t seed) {
  syn_state = seed * 0x9e3779b97f4a7c15ull + 1;
  s->n = n;
  s->d = d;
  s->ncl = n / 200 > 64 ? n / 200 : 64;
  s->cent = malloc(s->ncl * d * sizeof(float));
  s->cdf = malloc(s->ncl * sizeof(double));
  double tot = 0;
  for (size_t c = 0; c < s->ncl; c++) tot += 1.0 / pow((double)(c + 1), 1.1);
  double acc = 0;
  for (size_t c = 0; c < s->ncl; c++) {
    acc += 1.0 / pow((double)(c + 1), 1.1) / tot;
    s->cdf[c] = acc;
    for (size_t j = 0; j < d; j++)
      s->cent[c * d + j] = (float)(syn_gauss() / sqrt((double)j + 1));
  }
}

/* One vector from the mixture into x (unit length). */
static inline void syn_vec(const syn_data *s, float *x) {
  double u = syn_unif();
  size_t lo = 0, hi = s->ncl - 1;
  while (lo < hi) {
    size_t m = (lo + hi) / 2;
    if (s->cdf[m] < u) lo = m + 1; else hi = m;
  }
  double n2 = 0;
  for (size_t j = 0; j < s->d; j++) {
    x[j] = s->cent[lo * s->d + j] + (float)(0.3 * syn_gauss() / pow((double)j + 1, 0.8));
    n2 += (double)x[j] * x[j];
  }
  float inv = (float)(1.0 / sqrt(n2));
  for (size_t j = 0; j < s->d; j++) x[j] *= inv;
}

/* In-memory blocks: float invnorm[256]; float vec[256][d]. */
typedef struct syn_blocks {
  size_t d, nblocks;
  float *mem;
} syn_blocks;

static inline float *syn_block(syn_blocks *b, size_t i) {
  return b->mem + i * (WD_BLOCK + WD_BLOCK * b->d);
}

static inline int syn_get_block(void *ctx, uint32_t b, const float **base) {
  syn_blocks *sb = ctx;
  if (b >= sb->nblocks) return 1;
  *base = syn_block(sb, b);
  return 0;
}

static inline void syn_fill(const syn_data *s, syn_blocks *b) {
  b->d = s->d;
  b->nblocks = (s->n + WD_BLOCK - 1) / WD_BLOCK;
  b->mem = calloc(b->nblocks * (WD_BLOCK + WD_BLOCK * s->d), sizeof(float));
  for (size_t i = 0; i < s->n; i++) {
    float *base = syn_block(b, i / WD_BLOCK);
    float *x = base + WD_BLOCK + (i % WD_BLOCK) * s->d;
    syn_vec(s, x);
    double n2 = 0;
    for (size_t j = 0; j < s->d; j++) n2 += (double)x[j] * x[j];
    base[i % WD_BLOCK] = (float)(1.0 / sqrt(n2));
  }
}

static inline double syn_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#endif
