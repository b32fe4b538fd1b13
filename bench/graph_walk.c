/*
 * graph_walk.c -- the graph walk alone (index/hnsw.c wd_hnsw_search), no
 * collection, no planner: what the planner's graph price (engine/search.c
 * GR_HOP, GR_HDIST, GR_HDIM) was fitted on.
 *
 *   graph_walk DATA_DIR COMBO [--build-threads T] [--save F | --load F]
 *
 * DATA_DIR is a bench/graph_gen.py directory (base.f32, queries.f32,
 * meta.i32, truth-COMBO.i32, combos.json for n, d and the metric); COMBO
 * one of its uncorrelated ones (uncorr-S: urank < S % of n).  Builds the
 * graph with the engine's defaults (M 16, efConstruction 64, T threads,
 * default 2), or loads an image saved before with --save (the same graph
 * for runs that compare search code), then walks every query in expand
 * mode at efSearch 16 .. 256 with the engine's re-rank window, three
 * passes (the last one timed, one thread).  One line per efSearch:
 *
 *   COMBO ef E recall R p50_us P mean_us M dist D hops H rerank K dim d
 *
 * bench/graph_walk_fit.py fits the price on such lines.  Run it pinned
 * (taskset -c 0) on a machine with nothing else running.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/layout.h"
#include "base/wd_types.h"
#include "index/hnsw.h"
#include "index/ivf.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die(const char *m, const char *w) {
  fprintf(stderr, "graph_walk: %s%s%s\n", m, w ? ": " : "", w ? w : "");
  exit(1);
}

static void *slurp(const char *dir, const char *name, size_t *len) {
  char p[4096];
  snprintf(p, sizeof p, "%s%s%s", dir ? dir : "", dir ? "/" : "", name);
  FILE *f = fopen(p, "rb");
  if (!f) die("cannot open", p);
  if (fseek(f, 0, SEEK_END)) die("cannot seek", p);
  long n = ftell(f);
  if (n < 0 || fseek(f, 0, SEEK_SET)) die("cannot seek", p);
  char *b = malloc((size_t)n + 1);
  if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) die("cannot read", p);
  b[n] = 0;
  fclose(f);
  *len = (size_t)n;
  return b;
}

typedef struct blocks {
  float **b;
  size_t nb;
} blocks;

static int get_block(void *ctx, uint32_t i, const float **base) {
  const blocks *t = ctx;
  if (i >= t->nb) return 1;
  *base = t->b[i];
  return 0;
}

static void unit(float *v, size_t d) {
  double s = 0;
  for (size_t j = 0; j < d; j++) s += (double)v[j] * v[j];
  float inv = s > 0 ? (float)(1 / sqrt(s)) : 0;
  for (size_t j = 0; j < d; j++) v[j] *= inv;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 3) die("usage: graph_walk DATA_DIR COMBO [--build-threads T] [--save F | --load F]", NULL);
  const char *dir = argv[1], *combo = argv[2], *save = NULL, *load = NULL;
  int threads = 2;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--build-threads")) threads = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--save")) save = argv[i + 1];
    else if (!strcmp(argv[i], "--load")) load = argv[i + 1];
    else die("unknown option", argv[i]);
  }
  if (strncmp(combo, "uncorr-", 7)) die("only uncorrelated combinations", combo);
  size_t len;
  char *mj = slurp(dir, "combos.json", &len);
  json_t *man = json_loads(mj, 0, NULL);
  if (!man) die("combos.json: not JSON", NULL);
  size_t n = (size_t)json_integer_value(json_object_get(man, "n"));
  size_t d = (size_t)json_integer_value(json_object_get(man, "d"));
  const char *ms = json_string_value(json_object_get(man, "metric"));
  int metric = ms && !strcmp(ms, "cosine") ? WD_METRIC_COSINE
               : ms && !strcmp(ms, "ip")   ? WD_METRIC_IP
                                           : WD_METRIC_L2;
  if (!n || !d) die("combos.json: n or d missing", NULL);
  float *x = slurp(dir, "base.f32", &len);
  if (len != n * d * sizeof(float)) die("base.f32: not n x d floats", NULL);
  float *q = slurp(dir, "queries.f32", &len);
  size_t nq = len / (d * sizeof(float));
  int32_t *meta = slurp(dir, "meta.i32", &len);
  char tn[256];
  snprintf(tn, sizeof tn, "truth-%s.i32", combo);
  int32_t *truth = slurp(dir, tn, &len);
  size_t tk = len / sizeof(int32_t) / (nq ? nq : 1);
  if (metric == WD_METRIC_COSINE) {
    for (size_t i = 0; i < n; i++) unit(x + i * d, d);
    for (size_t i = 0; i < nq; i++) unit(q + i * d, d);
  }
  /* the store's block layout (base/layout.h): WD_BLOCK inverse norms (1:
   * the vectors above are already unit for cosine), then the rows */
  blocks t = {NULL, (n + WD_BLOCK - 1) / WD_BLOCK};
  t.b = calloc(t.nb, sizeof *t.b);
  if (!t.b) die("out of memory", NULL);
  for (size_t b = 0; b < t.nb; b++) {
    float *bl = calloc(WD_BLOCK + WD_BLOCK * d, sizeof *bl);
    if (!bl) die("out of memory", NULL);
    for (size_t i = 0; i < WD_BLOCK; i++) {
      bl[i] = 1.0f;
      if (b * WD_BLOCK + i < n) memcpy(bl + WD_BLOCK + i * d, x + (b * WD_BLOCK + i) * d, d * 4);
    }
    t.b[b] = bl;
  }
  wd_vecsrc src = {d, metric, get_block, &t};
  void *img = NULL;
  size_t il = 0;
  char why[256];
  if (load) {
    img = slurp(NULL, load, &il);
  } else {
    uint32_t *slots = malloc(n * sizeof *slots);
    if (!slots) die("out of memory", NULL);
    for (size_t i = 0; i < n; i++) slots[i] = (uint32_t)i;
    wd_hnsw_build_in in = {&src, slots, n, NULL, 1, n, 0, 0, threads, 1234, NULL, NULL};
    double t0 = now();
    if (wd_hnsw_build(&in, &img, &il, why, sizeof why)) die("build", why);
    fprintf(stderr, "graph_walk: built in %.2f s on %d threads\n", now() - t0, threads);
    free(slots);
    if (save) {
      FILE *f = fopen(save, "wb");
      if (!f || fwrite(img, 1, il, f) != il || fclose(f)) die("cannot write", save);
    }
  }
  wd_hnsw g;
  if (wd_hnsw_open_image(img, il, d, metric, &g, why, sizeof why)) die("open", why);
  double sel = atof(combo + 7) / 100;
  roaring_bitmap_t *al = roaring_bitmap_create();
  for (size_t i = 0; i < n; i++)
    if ((double)meta[3 * i] < sel * (double)n) roaring_bitmap_add(al, (uint32_t)i);
  uint64_t nbits = 0;
  uint64_t *bits = wd_ivf_bits(al, &nbits);
  int all = roaring_bitmap_get_cardinality(al) == n;
  static const size_t EFS[] = {16, 24, 32, 48, 64, 96, 128, 192, 256};
  double *us = malloc(nq * sizeof *us);
  if (!bits || !us) die("out of memory", NULL);
  for (size_t e = 0; e < sizeof EFS / sizeof EFS[0]; e++) {
    size_t rr = wd_hnsw_rerank(EFS[e], 10);
    wd_hnsw_params p = {EFS[e], 0, rr, all ? NULL : bits, all ? 0 : nbits, 0, 0};
    double rsum = 0, dsum = 0, hsum = 0, mean = 0;
    for (int pass = 0; pass < 3; pass++)
      for (size_t i = 0; i < nq; i++) {
        wd_topk h;
        wd_hnsw_stats st;
        wd_hit_i res[10];
        if (wd_topk_init(&h, 10)) die("out of memory", NULL);
        double a = now();
        if (wd_hnsw_search(&g, q + i * d, NULL, &p, &src, &h, &st)) die("search failed", NULL);
        double b = now();
        size_t m = wd_topk_drain_sorted(&h, res), hit = 0;
        wd_topk_free(&h);
        if (pass < 2) continue;
        us[i] = (b - a) * 1e6;
        mean += us[i];
        for (size_t u = 0; u < tk && u < 10; u++)
          for (size_t v = 0; v < m; v++) hit += truth[i * tk + u] == (int32_t)res[v].id;
        rsum += (double)hit / (double)(tk < 10 ? tk : 10);
        dsum += (double)st.ndist;
        hsum += (double)st.hops;
      }
    qsort(us, nq, sizeof *us, cmpd);
    printf("%s ef %zu recall %.4f p50_us %.1f mean_us %.1f dist %.0f hops %.0f rerank %zu dim %zu\n",
           combo, EFS[e], rsum / (double)nq, us[nq / 2], mean / (double)nq, dsum / (double)nq,
           hsum / (double)nq, rr, d);
  }
  wd_hnsw_close(&g);
  return 0;
}
