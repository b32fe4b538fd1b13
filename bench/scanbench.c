/*
 * scanbench.c -- micro-benchmark of the exact filtered scan (index/scan.c).
 *
 * Builds N random d-dimensional vectors in the store's block layout in
 * memory, then times, for each SIMD level the CPU has:
 *   - single-query scans (nq = 1) over everything allowed: ms/query and the
 *     effective read bandwidth N*d*4 bytes / time;
 *   - the same at 10% random allowed density;
 *   - 1% random density, cold: a different set per call (64 sets, larger
 *     than the last-level cache), the case of a per-query filter; the
 *     scattered rows make it bound by memory latency, not bandwidth;
 *     and one of those sets again and again (cached);
 *   - one batch call with nq queries (SGEMM path): queries per second.
 * Not a test; not run by make.  Usage:
 *
 *   scanbench N d nq [cosine|l2|ip] [k]
 *
 * Build (from the repo root):
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -pthread -Iengine -Iindex \
 *       -I/usr/include/x86_64-linux-gnu/openblas-pthread bench/scanbench.c \
 *       index/scan.c index/topk.c index/kernels.c engine/alloc.c \
 *       -o build/scanbench -lroaring -lopenblas -lm
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"
#include "scan.h"
#include "wd_types.h"

typedef struct src_ctx {
  float *base;
  size_t block_floats;
  uint32_t nblocks;
} src_ctx;

static int get_block(void *ctx, uint32_t b, const float **base) {
  src_ctx *s = ctx;
  if (b >= s->nblocks) return 1;
  *base = s->base + (size_t)b * s->block_floats;
  return 0;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (float)((rng >> 40) / 16777216.0 * 2.0 - 1.0);
}

/* Runs nq queries through wd_scan_exact, `reps` calls of `per` queries.
 * Returns seconds per call. */
static double run(const wd_vecsrc *src, const float *q, size_t per,
                  const roaring_bitmap_t *bm, size_t k, int reps,
                  wd_scan_stats *st) {
  wd_topk *h = calloc(per, sizeof *h);
  for (size_t i = 0; i < per; i++) wd_topk_init(&h[i], k);
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    for (size_t i = 0; i < per; i++) wd_topk_reset(&h[i]);
    double t0 = now();
    if (wd_scan_exact(src, q, per, bm, h, st) != 0) {
      fprintf(stderr, "scan failed\n");
      exit(1);
    }
    double t = now() - t0;
    if (t < best) best = t;
  }
  for (size_t i = 0; i < per; i++) wd_topk_free(&h[i]);
  free(h);
  return best;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s N d nq [cosine|l2|ip] [k]\n", argv[0]);
    return 2;
  }
  size_t n = strtoul(argv[1], NULL, 10), d = strtoul(argv[2], NULL, 10);
  size_t nq = strtoul(argv[3], NULL, 10);
  int metric = WD_METRIC_COSINE;
  if (argc > 4 && strcmp(argv[4], "l2") == 0) metric = WD_METRIC_L2;
  if (argc > 4 && strcmp(argv[4], "ip") == 0) metric = WD_METRIC_IP;
  size_t k = argc > 5 ? strtoul(argv[5], NULL, 10) : 10;
  if (n == 0 || d == 0 || nq == 0) return 2;

  src_ctx sc;
  sc.nblocks = (uint32_t)((n + WD_BLOCK - 1) / WD_BLOCK);
  sc.block_floats = WD_BLOCK + (size_t)WD_BLOCK * d;
  sc.base = aligned_alloc(64, ((sc.nblocks * sc.block_floats * 4 + 63) / 64) * 64);
  if (!sc.base) return 1;
  memset(sc.base, 0, sc.nblocks * sc.block_floats * 4);
  for (size_t id = 0; id < n; id++) {
    float *blk = sc.base + (id / WD_BLOCK) * sc.block_floats;
    float *x = blk + WD_BLOCK + (id % WD_BLOCK) * d;
    double ss = 0;
    for (size_t i = 0; i < d; i++) x[i] = frand(), ss += (double)x[i] * x[i];
    blk[id % WD_BLOCK] = (float)(1.0 / __builtin_sqrt(ss));
  }
  float *q = malloc(nq * d * sizeof *q);
  for (size_t j = 0; j < nq; j++) {
    double ss = 0;
    for (size_t i = 0; i < d; i++) q[j * d + i] = frand(), ss += q[j * d + i] * q[j * d + i];
    for (size_t i = 0; i < d; i++) q[j * d + i] = (float)(q[j * d + i] / __builtin_sqrt(ss));
  }
  roaring_bitmap_t *all = roaring_bitmap_create();
  roaring_bitmap_add_range(all, 0, n);
  roaring_bitmap_t *tenth = roaring_bitmap_create();
  for (uint32_t id = 0; id < n; id++)
    if (frand() < -0.8f) roaring_bitmap_add(tenth, id);

  enum { NCOLD = 64 };
  roaring_bitmap_t *cold[NCOLD];
  for (int c = 0; c < NCOLD; c++) {
    cold[c] = roaring_bitmap_create();
    for (uint32_t id = 0; id < n; id++)
      if (frand() < -0.98f) roaring_bitmap_add(cold[c], id);
  }
  wd_vecsrc src = {d, metric, get_block, &sc};
  double bytes = (double)n * d * 4;
  printf("N=%zu d=%zu nq=%zu metric=%s k=%zu data=%.1f MB\n", n, d, nq,
         metric == WD_METRIC_L2 ? "l2" : metric == WD_METRIC_IP ? "ip" : "cosine",
         k, bytes / 1e6);
  for (int lv = WD_SIMD_SCALAR; lv <= WD_SIMD_AVX512; lv++) {
    if (wd_kernels_force(lv) != lv) continue;
    wd_scan_stats st;
    double t1 = run(&src, q, 1, all, k, 10, &st);
    double tf = run(&src, q, 1, tenth, k, 10, &st);
    double tc = 0;
    for (int c = 0; c < NCOLD; c++) tc += run(&src, q, 1, cold[c], k, 1, &st);
    tc /= NCOLD;
    double th = run(&src, q, 1, cold[0], k, 20, &st); /* the same set: cached */
    double tb = run(&src, q, nq, all, k, 3, &st);
    printf("%-7s single: %8.3f ms/query %6.2f GB/s | 10%% allowed: %7.3f ms "
           "| 1%% cold: %7.3f ms hot: %7.3f ms | batch nq=%zu (path %d): %8.1f QPS (%.2f ms/query)\n",
           wd_kernels_name(), t1 * 1e3, bytes / t1 / 1e9, tf * 1e3, tc * 1e3, th * 1e3, nq,
           st.path, nq / tb, tb * 1e3 / nq);
  }
  roaring_bitmap_free(all);
  roaring_bitmap_free(tenth);
  for (int c = 0; c < NCOLD; c++) roaring_bitmap_free(cold[c]);
  free(q);
  free(sc.base);
  return 0;
}
