/*
 * planner_calib.c -- measure the cost constants of the planner in
 * engine/search.c on this machine (not a test; prints a table and the
 * constants to paste).
 *
 * For two dimensions (64 and 384) on N synthetic clustered vectors
 * (bench/synth.h, cosine, k = 10, single queries) it measures:
 *   - exact scan: ns per allowed vector at selectivities 0.2% .. 5% (the
 *     region where the planner's decision flips), with 8 different random
 *     allowed sets rotated across queries so no set stays cache-hot;
 *   - IVF: the per-query fixed cost (probe one list: centroid distances +
 *     heap), ns per visited id (all lists, 0.01% allowed: bitmap probes
 *     only) and ns per scanned vector (all lists, 100% allowed);
 * then fits cost = a + b*dim per unit and prints the constants, and the
 * measured exact/IVF crossover selectivity.
 *
 * Build (after `make`):
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -Iengine -Iindex -Iacl -Ibench \
 *     bench/planner_calib.c build/libwarden.a -o /tmp/planner_calib -lfaiss \
 *     -llmdb -lroaring -ljansson -lyaml -lopenblas -fopenmp -lstdc++ -lm
 *   /tmp/planner_calib [N]     (default 200000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ivf.h"
#include "ivf_build.h"
#include "search.h"
#include "synth.h"

#define K 10
#define NQ 100
#define NSETS 8

typedef struct meas {
  double ex_vec[6]; /* ns per allowed vector at sels[] */
  double fixed_ns, visit_ns, scan_ns;
  double cross;     /* measured crossover selectivity */
} meas;

static const double sels[6] = {0.002, 0.005, 0.01, 0.02, 0.05, 0.1};

static roaring_bitmap_t *rand_set(size_t n, double s, uint64_t seed) {
  roaring_bitmap_t *b = roaring_bitmap_create();
  syn_state = seed;
  for (size_t i = 0; i < n; i++)
    if (syn_unif() < s) roaring_bitmap_add(b, (uint32_t)i);
  roaring_bitmap_run_optimize(b);
  return b;
}

static void run(size_t n, size_t d, meas *m) {
  syn_data sd;
  syn_init(&sd, n, d, 7);
  syn_blocks sb;
  syn_fill(&sd, &sb);
  float *qs = malloc(NQ * d * sizeof(float));
  for (size_t i = 0; i < NQ; i++) syn_vec(&sd, qs + i * d);
  wd_vecsrc src = {d, WD_METRIC_COSINE, syn_get_block, &sb};
  roaring_bitmap_t *live = roaring_bitmap_from_range(0, n, 1);
  wd_ivf_build_in bi;
  memset(&bi, 0, sizeof bi);
  bi.src = &src;
  bi.live = live;
  bi.next_slot = n;
  bi.seed = 1;
  wd_ivf_build_out bo;
  char why[256];
  if (wd_ivf_build(&bi, &bo, why, sizeof why)) {
    fprintf(stderr, "build: %s\n", why);
    exit(1);
  }
  wd_ivf ix;
  wd_ivf_open_image(bo.image, bo.len, d, WD_METRIC_COSINE, &ix, why, sizeof why);
  wd_topk h;
  wd_topk_init(&h, K);
  printf("\n# N=%zu d=%zu nlist=%zu\n| selectivity | exact us/query | exact ns/vector | "
         "IVF us/query (planner params) |\n|---|---|---|---|\n", n, d, ix.nlist);
  m->cross = -1;
  for (int si = 0; si < 6; si++) {
    roaring_bitmap_t *sets[NSETS];
    uint64_t card = 0;
    for (int j = 0; j < NSETS; j++) {
      sets[j] = rand_set(n, sels[si], 100 + j + si * 10);
      card += roaring_bitmap_get_cardinality(sets[j]);
    }
    double t0 = syn_now_ms();
    for (int q = 0; q < NQ; q++) {
      wd_topk_reset(&h);
      wd_scan_exact(&src, qs + q * d, 1, sets[q % NSETS], &h, NULL);
    }
    double ex_us = (syn_now_ms() - t0) * 1e3 / NQ;
    m->ex_vec[si] = ex_us * 1e3 / ((double)card / NSETS);
    wd_plan_in pin = {card / NSETS, n, n, d, K, 1, ix.nlist, 1, WARDEN_STRATEGY_ANN, 0, ix.sq8, 0};
    wd_plan_out po;
    wd_plan_choose(&pin, &po);
    t0 = syn_now_ms();
    for (int q = 0; q < NQ; q++) {
      wd_topk_reset(&h);
      uint64_t *bits = NULL;
    if (po.use_bits) po.ivf.bits = bits = wd_ivf_bits(sets[q % NSETS], &po.ivf.nbits);
    wd_ivf_search(&ix, NULL, qs + q * d, sets[q % NSETS], &po.ivf, NULL, &h, NULL);
    wd_free(bits);
    }
    double ivf_us = (syn_now_ms() - t0) * 1e3 / NQ;
    if (m->cross < 0 && ivf_us < ex_us) m->cross = sels[si];
    printf("| %.1f%% | %.1f | %.1f | %.1f |\n", sels[si] * 100, ex_us, m->ex_vec[si], ivf_us);
    for (int j = 0; j < NSETS; j++) roaring_bitmap_free(sets[j]);
  }
  /* IVF unit costs */
  wd_ivf_params one = {1, 0, 1, UINT64_MAX, 64, NULL, 0};
  double t0 = syn_now_ms();
  for (int q = 0; q < NQ; q++) {
    wd_topk_reset(&h);
    wd_ivf_search(&ix, NULL, qs + q * d, live, &one, NULL, &h, NULL);
  }
  m->fixed_ns = (syn_now_ms() - t0) * 1e6 / NQ;
  /* scan: every list, everything allowed (a run container: its bitmap
   * probes are nearly free); visit: every list with a realistic 1% random
   * set (array containers), minus the 1% that are scanned */
  wd_ivf_params all = {ix.nlist, UINT64_MAX, ix.nlist, UINT64_MAX, 64, NULL, 0};
  t0 = syn_now_ms();
  for (int q = 0; q < NQ / 4; q++) {
    wd_topk_reset(&h);
    wd_ivf_search(&ix, NULL, qs + q * d, live, &all, NULL, &h, NULL);
  }
  m->scan_ns = ((syn_now_ms() - t0) * 1e6 / (NQ / 4) - m->fixed_ns) / (double)n;
  roaring_bitmap_t *tiny = rand_set(n, 0.01, 5);
  t0 = syn_now_ms();
  for (int q = 0; q < NQ / 4; q++) {
    wd_topk_reset(&h);
    wd_ivf_search(&ix, NULL, qs + q * d, tiny, &all, NULL, &h, NULL);
  }
  m->visit_ns = ((syn_now_ms() - t0) * 1e6 / (NQ / 4) - m->fixed_ns) / (double)n -
                0.01 * m->scan_ns;
  /* the dense bitset: build cost per allowed id, then visits with it */
  roaring_bitmap_t *ten = rand_set(n, 0.1, 6);
  uint64_t nb;
  t0 = syn_now_ms();
  for (int r = 0; r < 20; r++) wd_free(wd_ivf_bits(ten, &nb));
  double bits_id = (syn_now_ms() - t0) * 1e6 / 20 / (double)roaring_bitmap_get_cardinality(ten);
  roaring_bitmap_free(ten);
  all.bits = wd_ivf_bits(tiny, &all.nbits);
  t0 = syn_now_ms();
  for (int q = 0; q < NQ / 4; q++) {
    wd_topk_reset(&h);
    wd_ivf_search(&ix, NULL, qs + q * d, tiny, &all, NULL, &h, NULL);
  }
  double vbits = ((syn_now_ms() - t0) * 1e6 / (NQ / 4) - m->fixed_ns) / (double)n -
                 0.01 * m->scan_ns;
  wd_free((void *)all.bits);
  printf("bitset: build %.2f ns per allowed id, visit %.1f ns/id\n", bits_id, vbits);
  wd_ivf_stats st;
  roaring_bitmap_t *two = rand_set(n, 0.02, 9);
  wd_plan_in pin = {roaring_bitmap_get_cardinality(two), n, n, d, K, 1, ix.nlist, 1, 2, 0, ix.sq8, 0};
  wd_plan_out po;
  wd_plan_choose(&pin, &po);
  wd_topk_reset(&h);
  wd_ivf_search(&ix, NULL, qs, two, &po.ivf, NULL, &h, &st);
  printf("2%% probe: %llu lists, %llu visited, %llu scanned (planner expected %.0f visited)\n",
         (unsigned long long)st.lists, (unsigned long long)st.visited,
         (unsigned long long)st.scanned, po.est_visited);
  roaring_bitmap_free(two);
  printf("IVF: fixed %.1f us/query (%.3f ns per centroid-dim), visit %.1f ns/id, "
         "scan %.1f ns/vector; measured crossover at selectivity ~%.1f%%\n",
         m->fixed_ns / 1e3, m->fixed_ns / ((double)ix.nlist * d), m->visit_ns, m->scan_ns,
         m->cross * 100);
  roaring_bitmap_free(tiny);
  wd_topk_free(&h);
  wd_ivf_close(&ix);
  wd_free(bo.image);
  roaring_bitmap_free(live);
  free(qs);
  free(sb.mem);
  free(sd.cent);
  free(sd.cdf);
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
  meas lo, hi;
  run(n, 64, &lo);
  run(n, 384, &hi);
  /* exact: mean over the sparse selectivities, fit a + b*dim */
  double el = 0, eh = 0;
  for (int i = 0; i < 6; i++) {
    el += lo.ex_vec[i] / 6;
    eh += hi.ex_vec[i] / 6;
  }
  double exd = (eh - el) / (384 - 64), ex0 = el - exd * 64;
  double scd = (hi.scan_ns - lo.scan_ns) / (384 - 64), sc0 = lo.scan_ns - scd * 64;
  /* fixed = IVF_FIXED + nlist * dim * IVF_CENT, from the two dims */
  double nl = (double)wd_ivf_default_nlist(n);
  double cent = (hi.fixed_ns - lo.fixed_ns) / (nl * (384 - 64));
  printf("\nconstants: EX_VEC %.1f EX_DIM %.3f | IVF_FIXED %.0f IVF_CENT %.3f IVF_VISIT %.1f "
         "IVF_VEC %.1f IVF_DIM %.3f\n",
         ex0 < 0 ? 0 : ex0, exd, lo.fixed_ns - nl * 64 * cent, cent,
         (lo.visit_ns + hi.visit_ns) / 2, sc0 < 0 ? 0 : sc0, scd);
  return 0;
}
