/*
 * exact_scan.c -- warden's exact scan next to Debian FAISS IndexFlat, same
 * data, same process, same run, plus the two ceilings it is bound by: a
 * plain memory-read bandwidth and OpenBLAS SGEMM FLOP/s.
 *
 * usage: exact_scan DIR [N] [D] [NQ]     (defaults 100000 384 200)
 *
 * Data: N x D clustered unit vectors (a Gaussian mixture), ingested into a
 * real collection in DIR/collection through the C API.  Every chunk is
 * readable by the querying principal ("*"), so the scan covers all N
 * vectors: single queries measure the scan as GB/s of embeddings read;
 * batch queries (one warden_query call with NQ vectors: one SGEMM per
 * block) measure QPS.  FAISS: IndexFlatIP through the C API on the same
 * normalised vectors, one query per call, then one batch call.
 */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "faiss_capi.h"
#include "warden.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rs = 7;
static double gauss(void) {
  double u = 0;
  for (int i = 0; i < 12; i++) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    u += (double)(rs >> 11) / 9007199254740992.0;
  }
  return u - 6;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void normalise(float *v, size_t d) {
  double n2 = 0;
  for (size_t i = 0; i < d; i++) n2 += (double)v[i] * v[i];
  float inv = (float)(1 / sqrt(n2));
  for (size_t i = 0; i < d; i++) v[i] *= inv;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: exact_scan DIR [N] [D] [NQ]\n");
    return 2;
  }
  const char *dir = argv[1];
  size_t n = argc > 2 ? (size_t)atol(argv[2]) : 100000;
  size_t d = argc > 3 ? (size_t)atol(argv[3]) : 384;
  size_t nq = argc > 4 ? (size_t)atol(argv[4]) : 200;
  size_t nc = 256;
  float *cent = malloc(sizeof(float) * nc * d), *x = malloc(sizeof(float) * n * d),
        *q = malloc(sizeof(float) * nq * d);
  for (size_t i = 0; i < nc * d; i++) cent[i] = (float)gauss();
  for (size_t i = 0; i < n + nq; i++) {
    float *v = i < n ? x + i * d : q + (i - n) * d;
    const float *c = cent + (i * 2654435761u % nc) * d;
    for (size_t j = 0; j < d; j++) v[j] = c[j] + 0.5f * (float)gauss();
    normalise(v, d);
  }
  /* the ceilings, measured now */
  /* integer sums: the loop vectorises and is bound by memory, not by
   * floating-point add latency */
  size_t bwn = (size_t)128 << 20; /* 1 GiB of u64 */
  uint64_t *bw = malloc(bwn * sizeof(uint64_t));
  for (size_t i = 0; i < bwn; i++) bw[i] = i & 3;
  double best_bw = 0;
  volatile uint64_t sink;
  for (int r = 0; r < 3; r++) {
    double t = now();
    /* eight independent sums: no add chain limits the loads */
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (size_t i = 0; i < bwn; i += 8) {
      s0 += bw[i]; s1 += bw[i + 1]; s2 += bw[i + 2]; s3 += bw[i + 3];
      s4 += bw[i + 4]; s5 += bw[i + 5]; s6 += bw[i + 6]; s7 += bw[i + 7];
    }
    sink = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
    double g = bwn * 8.0 / (now() - t) / 1e9;
    if (g > best_bw) best_bw = g;
  }
  (void)sink;
  free(bw);
  double best_gf = 0;
  {
    int m = 1024;
    float *a = calloc((size_t)m * m, 4), *b = calloc((size_t)m * m, 4), *c = calloc((size_t)m * m, 4);
    for (int r = 0; r < 5; r++) {
      double t = now();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, m, 1, a, m, b, m, 0, c, m);
      double g = 2.0 * m * m * m / (now() - t) / 1e9;
      if (g > best_gf) best_gf = g;
    }
    free(a);
    free(b);
    free(c);
  }
  /* a real collection */
  char coll[4096], cmd[4200], err[512];
  snprintf(coll, sizeof coll, "%s/collection", dir);
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' && rm -rf '%s'", dir, coll);
  if (system(cmd) != 0) return 1;
  warden_create_opts co = {(unsigned)d, "cosine", NULL};
  if (warden_create(coll, &co, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  warden *db;
  if (warden_open(coll, NULL, &db, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  size_t per = 10000;
  char *buf = malloc(per * (d * 16 + 200));
  double ti = now();
  for (size_t s = 0; s < n; s += per) {
    char *o = buf;
    for (size_t i = s; i < n && i < s + per; i++) {
      o += sprintf(o, "{\"doc_id\":\"d%zu\",\"source\":\"s3://b/%zu\",\"acl\":{\"allow\":[\"*\"]},\"chunks\":[{\"text\":\"c\",\"embedding\":[", i, i);
      for (size_t j = 0; j < d; j++) o += sprintf(o, "%s%.9g", j ? "," : "", x[i * d + j]);
      o += sprintf(o, "]}]}\n");
    }
    warden_ingest_report rep;
    if (warden_ingest_buffer(db, "gen", buf, (size_t)(o - buf), NULL, &rep)) {
      fprintf(stderr, "ingest: %s\n", warden_errmsg(db));
      return 1;
    }
  }
  double ingest_s = now() - ti;
  free(buf);
  warden_query_opts o;
  memset(&o, 0, sizeof o);
  o.principal = "user:bench";
  o.k = 10;
  o.strategy = WARDEN_STRATEGY_EXACT;
  double *lat = malloc(sizeof(double) * nq);
  warden_results *r;
  for (size_t i = 0; i < 5; i++) warden_query(db, q, 1, &o, &r), warden_results_free(r);
  double t0 = now();
  for (size_t i = 0; i < nq; i++) {
    double t = now();
    if (warden_query(db, q + i * d, 1, &o, &r)) {
      fprintf(stderr, "query: %s\n", warden_errmsg(db));
      return 1;
    }
    lat[i] = now() - t;
    warden_results_free(r);
  }
  double w_single = (now() - t0) / nq;
  qsort(lat, nq, sizeof *lat, cmpd);
  double w_p50 = lat[nq / 2];
  t0 = now();
  if (warden_query(db, q, nq, &o, &r)) {
    fprintf(stderr, "batch: %s\n", warden_errmsg(db));
    return 1;
  }
  double w_batch = nq / (now() - t0);
  warden_results_free(r);
  warden_close(db);
  /* FAISS IndexFlatIP on the same vectors */
  FaissIndexFlatIP *fi;
  if (faiss_IndexFlatIP_new_with(&fi, (idx_t)d) || faiss_Index_add((FaissIndex *)fi, (idx_t)n, x)) {
    fprintf(stderr, "faiss: %s\n", faiss_get_last_error());
    return 1;
  }
  float *dist = malloc(sizeof(float) * 10 * nq);
  idx_t *lab = malloc(sizeof(idx_t) * 10 * nq);
  for (size_t i = 0; i < 5; i++) faiss_Index_search((FaissIndex *)fi, 1, q, 10, dist, lab);
  t0 = now();
  for (size_t i = 0; i < nq; i++) {
    double t = now();
    faiss_Index_search((FaissIndex *)fi, 1, q + i * d, 10, dist + i * 10, lab + i * 10);
    lat[i] = now() - t;
  }
  double f_single = (now() - t0) / nq;
  qsort(lat, nq, sizeof *lat, cmpd);
  double f_p50 = lat[nq / 2];
  t0 = now();
  faiss_Index_search((FaissIndex *)fi, (idx_t)nq, q, 10, dist, lab);
  double f_batch = nq / (now() - t0);
  faiss_Index_free((FaissIndex *)fi);
  double bytes = (double)n * d * 4;
  printf("{\"n\": %zu, \"d\": %zu, \"queries\": %zu, \"ingest_s\": %.2f,\n"
         " \"read_bandwidth_gbs\": %.1f, \"sgemm_gflops\": %.1f,\n"
         " \"warden_single_ms\": %.3f, \"warden_single_p50_ms\": %.3f, \"warden_single_qps\": %.1f,"
         " \"warden_scan_gbs\": %.1f, \"warden_scan_of_bandwidth\": %.2f,\n"
         " \"warden_batch_qps\": %.1f, \"warden_batch_gflops\": %.1f, \"warden_batch_of_sgemm\": %.2f,\n"
         " \"faiss_flat_single_ms\": %.3f, \"faiss_flat_single_p50_ms\": %.3f, \"faiss_flat_single_qps\": %.1f,"
         " \"faiss_flat_scan_gbs\": %.1f, \"faiss_flat_batch_qps\": %.1f,\n"
         " \"single_speedup_vs_faiss\": %.2f, \"batch_speedup_vs_faiss\": %.2f}\n",
         n, d, nq, ingest_s, best_bw, best_gf, w_single * 1e3, w_p50 * 1e3, 1 / w_single,
         bytes / w_single / 1e9, bytes / w_single / 1e9 / best_bw, w_batch,
         w_batch * 2.0 * n * d / 1e9, w_batch * 2.0 * n * d / 1e9 / best_gf, f_single * 1e3,
         f_p50 * 1e3, 1 / f_single, bytes / f_single / 1e9, f_batch, f_single / w_single,
         w_batch / f_batch);
  free(lat);
  free(dist);
  free(lab);
  free(x);
  free(q);
  free(cent);
  return 0;
}
