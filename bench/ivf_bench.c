/*
 * ivf_bench.c -- warden's IVF (index/ivf.c) against the exact filtered scan
 * (index/scan.c) and FAISS's own IVF, on N x D synthetic clustered vectors
 * (bench/synth.h), cosine, k = 10, single-query calls.
 *
 * For each selectivity (uncorrelated random allowed sets of 0.1% .. 100%)
 * it prints QPS and recall@10 (vs the exact scan) of: the exact scan, our
 * IVF with adaptive probing (the parameters engine/search.c uses), and the
 * planner's choice ("auto", wd_plan_choose).  It also times the IVF build
 * (ours: FAISS k-means + assignment + image) against FAISS's IndexIVFFlat
 * train + add, and FAISS's list scan with an IDSelectorBitmap at the same
 * number of probed lists, which is how we decided to scan lists ourselves.
 *
 * Build (from the repo root, after `make build/rel/bench/faiss_capi_extra.o`,
 * the FAISS C API beyond what the library calls):
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -Iengine -Iindex -Iacl -Ibench \
 *     bench/ivf_bench.c build/rel/bench/faiss_capi_extra.o build/libwarden.a \
 *     -o /tmp/ivf_bench -lfaiss -llmdb \
 *     -lroaring -ljansson -lyaml -lopenblas -fopenmp -lstdc++ -lm
 *   /tmp/ivf_bench [N [D [NQ]]]        (default 200000 384 200)
 * Module-level: vectors live in memory in the LMDB block layout, so the
 * numbers exclude LMDB page faults and the query engine's ACL work.
 *
 * Result on the development machine (2-core EPYC, AVX-512, shared with
 * other jobs: load ~5, so +-2x noise), 200000 x 384, 200 queries:
 *   build: warden 42.4 s (k-means 37.3 s on 114k samples, nlist 1788,
 *          12 iterations; assignment 4.7 s); FAISS IndexIVFFlat train+add
 *          47.5 s (all 200k samples, 25 iterations).
 *   | sel  | exact QPS | IVF QPS | IVF R@10 | lists | auto  | auto QPS | FAISS+bitmap QPS |
 *   | 0.1% |  89302*   |  1847   |  1.000   | 1780  | exact |  77429   |   661            |
 *   | 1%   |   5844    |  5744   |  1.000   |  218  | ivf   |   6951   |  1049            |
 *   | 10%  |    199    |  4786   |  0.985   |   23  | ivf   |   5211   |  1332            |
 *   | 50%  |     59    |  2133   |  0.996   |   22  | ivf   |   2098   |   691            |
 *   | 100% |     70    |  3372   |  0.997   |   22  | ivf   |   3453   |   705            |
 *   (* one allowed set for all queries stays cache-hot: optimistic.)
 * FAISS's list scan with an IDSelectorBitmap at the same nprobe is 2.5-5x
 * slower than ours, hence index/ivf.c scans lists itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faiss_capi.h"
#include "ivf.h"
#include "ivf_build.h"
#include "kernels.h"
#include "search.h"
#include "synth.h"

#define K 10

static double recall(const wd_hit_i *truth, size_t nt, const wd_hit_i *got, size_t ng) {
  if (nt == 0) return 1.0;
  size_t hit = 0;
  for (size_t i = 0; i < nt; i++)
    for (size_t j = 0; j < ng; j++)
      if (truth[i].id == got[j].id) {
        hit++;
        break;
      }
  return (double)hit / (double)nt;
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
  size_t d = argc > 2 ? strtoul(argv[2], NULL, 10) : 384;
  size_t nq = argc > 3 ? strtoul(argv[3], NULL, 10) : 200;
  syn_data sd;
  syn_init(&sd, n, d, 42);
  syn_blocks sb;
  double t0 = syn_now_ms();
  syn_fill(&sd, &sb);
  float *qs = malloc(nq * d * sizeof(float));
  for (size_t i = 0; i < nq; i++) syn_vec(&sd, qs + i * d);
  fprintf(stderr, "generated %zu x %zu in %.0f ms (simd %s)\n", n, d, syn_now_ms() - t0,
          wd_kernels_name());
  wd_vecsrc src = {d, WD_METRIC_COSINE, syn_get_block, &sb};
  roaring_bitmap_t *live = roaring_bitmap_from_range(0, n, 1);

  /* ---- build: ours */
  char why[256];
  wd_ivf_build_in bi;
  memset(&bi, 0, sizeof bi);
  bi.src = &src;
  bi.live = live;
  bi.next_slot = n;
  bi.revision = 1;
  bi.seed = 1234;
  wd_ivf_build_out bo;
  t0 = syn_now_ms();
  if (wd_ivf_build(&bi, &bo, why, sizeof why)) {
    fprintf(stderr, "build: %s\n", why);
    return 1;
  }
  double our_build = syn_now_ms() - t0;
  wd_ivf ix;
  if (wd_ivf_open_image(bo.image, bo.len, d, WD_METRIC_COSINE, &ix, why, sizeof why)) {
    fprintf(stderr, "open: %s\n", why);
    return 1;
  }
  printf("warden IVF build: nlist %zu, %.0f ms (k-means %.0f ms on %zu samples, assign %.0f ms)\n",
         bo.nlist, our_build, bo.train_ms, bo.nlist * 64 < n ? bo.nlist * 64 : n, bo.assign_ms);

  /* ---- build: FAISS IndexIVFFlat (IP quantizer), default k-means params */
  float *flat = malloc(n * d * sizeof(float));
  for (size_t i = 0; i < n; i++)
    memcpy(flat + i * d, syn_block(&sb, i / WD_BLOCK) + WD_BLOCK + (i % WD_BLOCK) * d,
           d * sizeof(float));
  FaissIndexFlatIP *fq = NULL;
  FaissIndexIVFFlat *fivf = NULL;
  faiss_IndexFlatIP_new_with(&fq, (idx_t)d);
  faiss_IndexIVFFlat_new_with_metric(&fivf, (FaissIndex *)fq, d, bo.nlist, METRIC_INNER_PRODUCT);
  faiss_IndexIVF_set_own_fields((FaissIndexIVF *)fivf, 1);
  t0 = syn_now_ms();
  if (faiss_Index_train((FaissIndex *)fivf, (idx_t)n, flat) ||
      faiss_Index_add((FaissIndex *)fivf, (idx_t)n, flat)) {
    fprintf(stderr, "faiss: %s\n", faiss_get_last_error());
    return 1;
  }
  double faiss_build = syn_now_ms() - t0;
  printf("FAISS IndexIVFFlat build (train on all %zu, 25 iters default, + add): %.0f ms\n\n", n,
         faiss_build);

  double sels[] = {0.001, 0.01, 0.1, 0.5, 1.0};
  printf("| selectivity | exact QPS | IVF QPS | IVF recall@10 | lists | scanned | auto | auto QPS | auto recall | FAISS-IVF+bitmap QPS (same nprobe) | FAISS recall |\n");
  printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  wd_hit_i *truth = malloc(nq * K * sizeof *truth);
  size_t *ntruth = malloc(nq * sizeof *ntruth);
  wd_hit_i got[K];
  for (size_t si = 0; si < sizeof sels / sizeof sels[0]; si++) {
    double s = sels[si];
    roaring_bitmap_t *al = roaring_bitmap_create();
    uint8_t *bytes = calloc((n + 7) / 8, 1);
    syn_state = 777 + si;
    for (size_t i = 0; i < n; i++)
      if (s >= 1.0 || syn_unif() < s) {
        roaring_bitmap_add(al, (uint32_t)i);
        bytes[i / 8] |= (uint8_t)(1u << (i % 8));
      }
    roaring_bitmap_run_optimize(al);
    uint64_t na = roaring_bitmap_get_cardinality(al);
    wd_topk h;
    wd_topk_init(&h, K);
    /* exact */
    t0 = syn_now_ms();
    for (size_t q = 0; q < nq; q++) {
      wd_topk_reset(&h);
      wd_scan_exact(&src, qs + q * d, 1, al, &h, NULL);
      ntruth[q] = wd_topk_drain_sorted(&h, truth + q * K);
    }
    double ex_ms = syn_now_ms() - t0;
    /* IVF with the planner's probe parameters */
    wd_plan_in pin = {na, n, n, d, K, 1, bo.nlist, 1, 0, 0, 0, 0};
    wd_plan_out pout;
    wd_plan_choose(&pin, &pout);
    double rsum = 0, lists = 0, scanned = 0;
    t0 = syn_now_ms();
    for (size_t q = 0; q < nq; q++) {
      uint64_t *bits = NULL;
      if (pout.use_bits) pout.ivf.bits = bits = wd_ivf_bits(al, &pout.ivf.nbits);
      wd_topk_reset(&h);
      wd_ivf_stats st;
      wd_ivf_search(&ix, NULL, qs + q * d, al, &pout.ivf, &src, &h, &st);
      size_t ng = wd_topk_drain_sorted(&h, got);
      rsum += recall(truth + q * K, ntruth[q], got, ng);
      lists += st.lists;
      scanned += st.scanned;
      wd_free(bits);
    }
    double ivf_ms = syn_now_ms() - t0;
    /* auto: what the planner picks */
    double arsum = 0;
    t0 = syn_now_ms();
    for (size_t q = 0; q < nq; q++) {
      wd_topk_reset(&h);
      uint64_t *bits = NULL;
      if (pout.use_ivf && pout.use_bits) pout.ivf.bits = bits = wd_ivf_bits(al, &pout.ivf.nbits);
      if (pout.use_ivf)
        wd_ivf_search(&ix, NULL, qs + q * d, al, &pout.ivf, &src, &h, NULL);
      else
        wd_scan_exact(&src, qs + q * d, 1, al, &h, NULL);
      wd_free(bits);
      size_t ng = wd_topk_drain_sorted(&h, got);
      arsum += recall(truth + q * K, ntruth[q], got, ng);
    }
    double auto_ms = syn_now_ms() - t0;
    /* FAISS with a bitmap selector at our mean lists probed */
    size_t np = (size_t)(lists / nq + 0.5);
    if (np < 1) np = 1;
    FaissIDSelectorBitmap *sel = NULL;
    FaissSearchParametersIVF *sp = NULL;
    faiss_IDSelectorBitmap_new(&sel, (n + 7) / 8, bytes);
    faiss_SearchParametersIVF_new_with(&sp, (FaissIDSelector *)sel, np, 0);
    float fd[K];
    idx_t fl[K];
    double frsum = 0;
    t0 = syn_now_ms();
    for (size_t q = 0; q < nq; q++) {
      faiss_Index_search_with_params((FaissIndex *)fivf, 1, qs + q * d, K,
                                     (FaissSearchParameters *)sp, fd, fl);
      size_t ng = 0;
      for (size_t i = 0; i < K; i++)
        if (fl[i] >= 0) got[ng++].id = (uint32_t)fl[i];
      frsum += recall(truth + q * K, ntruth[q], got, ng);
    }
    double f_ms = syn_now_ms() - t0;
    faiss_SearchParametersIVF_free(sp);
    faiss_IDSelectorBitmap_free(sel);
    printf("| %.1f%% | %.0f | %.0f | %.3f | %.1f | %.0f | %s | %.0f | %.3f | %.0f | %.3f |\n", s * 100,
           nq / ex_ms * 1e3, nq / ivf_ms * 1e3, rsum / nq, lists / nq, scanned / nq,
           pout.use_ivf ? "ivf" : "exact", nq / auto_ms * 1e3, arsum / nq, nq / f_ms * 1e3,
           frsum / nq);
    fflush(stdout);
    wd_topk_free(&h);
    roaring_bitmap_free(al);
    free(bytes);
  }
  faiss_Index_free((FaissIndex *)fivf);
  wd_ivf_close(&ix);
  wd_free(bo.image);
  roaring_bitmap_free(live);
  free(flat);
  free(qs);
  free(truth);
  free(ntruth);
  free(sb.mem);
  free(sd.cent);
  free(sd.cdf);
  return 0;
}
