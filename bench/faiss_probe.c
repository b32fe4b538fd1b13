/*
 * faiss_probe.c -- what Debian's generic FAISS 1.7.3 build costs us, measured
 * through our C API layer (index/faiss_capi.cpp).  Not a test: a probe that
 * prints one table, to decide ANN defaults (nlist, nprobe, when a filter is
 * selective enough to skip IVF and scan exactly).
 *
 * Measures on N x D clustered float vectors (default 100000 x 384):
 *   - IVFFlat build time: train (k-means, nlist lists) and add;
 *   - single-query latency (one query per call, as warden issues them) of
 *     IndexFlatL2, IVF nprobe 8 and 32, each unfiltered and with an
 *     IDSelectorBitmap allowing 1% and 10% of the ids;
 *   - recall@10 of each IVF row against the exact flat answer under the
 *     same filter.
 *
 * Build and run (from the repo root):
 *   g++ -std=c++17 -O2 -fPIC -fopenmp -Iindex -c index/faiss_capi.cpp -o /tmp/fc.o
 *   g++ -std=c++17 -O2 -fPIC -fopenmp -Iindex -c bench/faiss_capi_extra.cpp -o /tmp/fx.o
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -Iindex bench/faiss_probe.c /tmp/fx.o /tmp/fc.o \
 *       -o /tmp/faiss_probe -lfaiss -lopenblas -fopenmp -lstdc++ -lm
 *   /tmp/faiss_probe [N [D [NLIST [NQ [SPREAD]]]]]
 * SPREAD (default 0.25) is the blob standard deviation per coordinate; the
 * blob centres are uniform in [-1,1]^D.  Larger spreads make blobs overlap
 * and the unfiltered IVF recall drop.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "faiss_capi.h"

enum { K = 10 };

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}

static float rng_unit(void) { return (float)(rng_next() >> 40) / 16777216.0f; }

static float rng_gauss(void) {
  float s = 0;
  for (int i = 0; i < 4; i++) s += rng_unit();
  return (s - 2.0f) * 1.7320508f;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "%s failed (%d): %s\n", what, rc,
          faiss_get_last_error() ? faiss_get_last_error() : "?");
  exit(1);
}
#define CHECK(call)                  \
  do {                               \
    int rc_ = (call);                \
    if (rc_) die(#call, rc_);        \
  } while (0)

/* Runs nq single-query searches; returns mean ms per query. */
static double time_queries(const FaissIndex *index, const float *qs, int nq,
                           int d, const FaissSearchParameters *sp,
                           idx_t *labels) {
  float dis[K];
  double t0 = now();
  for (int i = 0; i < nq; i++)
    CHECK(faiss_Index_search_with_params(index, 1, qs + (size_t)i * d, K, sp,
                                         dis, labels + (size_t)i * K));
  return (now() - t0) * 1e3 / nq;
}

static double recall(const idx_t *got, const idx_t *truth, int nq) {
  long hit = 0, tot = 0;
  for (int i = 0; i < nq; i++)
    for (int a = 0; a < K; a++) {
      if (truth[i * K + a] < 0) continue;
      tot++;
      for (int b = 0; b < K; b++)
        if (got[i * K + b] == truth[i * K + a]) {
          hit++;
          break;
        }
    }
  return tot ? (double)hit / (double)tot : 1.0;
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
  int d = argc > 2 ? atoi(argv[2]) : 384;
  size_t nlist = argc > 3 ? strtoul(argv[3], NULL, 10) : 1024;
  int nq = argc > 4 ? atoi(argv[4]) : 200;
  float spread = argc > 5 ? (float)atof(argv[5]) : 0.25f;
  int ncent = 2000;

  /* Clustered data: ncent Gaussian blobs; queries are perturbed data
   * points, as RAG queries land near some stored chunks. */
  float *cent = malloc(sizeof(float) * (size_t)ncent * d);
  float *xb = malloc(sizeof(float) * n * d);
  float *qs = malloc(sizeof(float) * (size_t)nq * d);
  idx_t *truth = malloc(sizeof(idx_t) * (size_t)nq * K);
  idx_t *got = malloc(sizeof(idx_t) * (size_t)nq * K);
  if (!cent || !xb || !qs || !truth || !got) return 1;
  for (size_t i = 0; i < (size_t)ncent * d; i++) cent[i] = rng_unit() * 2 - 1;
  for (size_t i = 0; i < n; i++) {
    const float *c = cent + (rng_next() % (uint64_t)ncent) * (size_t)d;
    for (int j = 0; j < d; j++) xb[i * d + j] = c[j] + spread * rng_gauss();
  }
  for (int i = 0; i < nq; i++) {
    const float *x = xb + (rng_next() % n) * (size_t)d;
    for (int j = 0; j < d; j++)
      qs[(size_t)i * d + j] = x[j] + 0.4f * spread * rng_gauss();
  }

  printf("faiss_probe: n=%zu d=%d nlist=%zu queries=%d k=%d spread=%.2f\n",
         n, d, nlist, nq, K, spread);

  FaissIndexFlatL2 *flat = NULL;
  double t0 = now();
  CHECK(faiss_IndexFlatL2_new_with(&flat, d));
  CHECK(faiss_Index_add(flat, (idx_t)n, xb));
  printf("flat add: %.2f s\n", now() - t0);

  FaissIndexFlatL2 *quant = NULL;
  FaissIndexIVFFlat *ivf = NULL;
  CHECK(faiss_IndexFlatL2_new_with(&quant, d));
  CHECK(faiss_IndexIVFFlat_new_with_metric(&ivf, quant, (size_t)d, nlist,
                                           METRIC_L2));
  faiss_IndexIVF_set_own_fields(ivf, 1);
  t0 = now();
  CHECK(faiss_Index_train(ivf, (idx_t)n, xb));
  double t_train = now() - t0;
  t0 = now();
  CHECK(faiss_Index_add(ivf, (idx_t)n, xb));
  double t_add = now() - t0;
  printf("ivf build: train %.2f s + add %.2f s = %.2f s (imbalance %.2f)\n",
         t_train, t_add, t_train + t_add,
         faiss_IndexIVF_imbalance_factor(ivf));

  static const double sels[] = {1.0, 0.10, 0.01};
  printf("\n%-10s %-14s %10s %10s\n", "filter", "index", "ms/query",
         "recall@10");
  for (size_t s = 0; s < sizeof sels / sizeof sels[0]; s++) {
    size_t nbytes = (n + 7) / 8;
    uint8_t *bm = calloc(nbytes, 1);
    FaissIDSelectorBitmap *sel = NULL;
    if (!bm) return 1;
    for (size_t i = 0; i < n; i++)
      if (rng_unit() < sels[s]) bm[i >> 3] |= (uint8_t)(1u << (i & 7));
    if (sels[s] < 1.0) CHECK(faiss_IDSelectorBitmap_new(&sel, nbytes, bm));
    char fname[32];
    if (sels[s] < 1.0)
      snprintf(fname, sizeof fname, "bitmap %g%%", sels[s] * 100);
    else
      snprintf(fname, sizeof fname, "none");

    FaissSearchParameters *sp = NULL;
    CHECK(faiss_SearchParameters_new(&sp, (FaissIDSelector *)sel));
    double ms = time_queries(flat, qs, nq, d, sp, truth);
    printf("%-10s %-14s %10.3f %10s\n", fname, "flat (exact)", ms, "1.000");
    faiss_SearchParameters_free(sp);

    static const size_t probes[] = {8, 32};
    for (size_t p = 0; p < 2; p++) {
      FaissSearchParametersIVF *spi = NULL;
      CHECK(faiss_SearchParametersIVF_new_with(&spi, (FaissIDSelector *)sel,
                                               probes[p], 0));
      ms = time_queries(ivf, qs, nq, d, spi, got);
      char iname[32];
      snprintf(iname, sizeof iname, "ivf nprobe=%zu", probes[p]);
      printf("%-10s %-14s %10.3f %10.3f\n", fname, iname, ms,
             recall(got, truth, nq));
      faiss_SearchParametersIVF_free(spi);
    }
    if (sel) faiss_IDSelectorBitmap_free(sel);
    free(bm);
  }

  faiss_Index_free(ivf);
  faiss_Index_free(flat);
  free(got);
  free(truth);
  free(qs);
  free(xb);
  free(cent);
  return 0;
}
