/*
 * warden_bench.c -- measures warden through its C API on a bench workload
 * (bench/SCHEMA.md), so CLI start-up is never in the figures, and writes
 * result records in the schema report.py merges with the FAISS baselines.
 *
 * usage: warden_bench DATA_DIR OUT.json COLLECTION_DIR [--queries N] [--combo ID] [--system NAME]
 * (WARDEN_BENCH_NO_REFS=1 skips the bandwidth, SGEMM and FAISS figures)
 *
 * DATA_DIR is bench/data/<workload>/<scale> (made by gen.py and truth.py).
 * The collection is built once (principals, ingest, ANN index) and reused
 * while its stamp file matches the data's manifest.  For every combination
 * of the manifest and every warden strategy (auto, exact, ann) it measures
 * recall@10 against the truth files, single-query QPS on one thread,
 * batch QPS with one query stream per core, p50/p99 latency and leaks
 * (returned rows the combination's allowed rule rejects).  It also records,
 * in the same run: a plain memory-read bandwidth, an OpenBLAS SGEMM
 * GFLOP/s figure, and FAISS IndexFlat (through the C API, unfiltered) on
 * the same vectors, for the exact-scan comparison.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <cblas.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "faiss_capi.h"
#include "warden.h"

/* The ANN index may not be in this build of the library yet. */
#pragma weak warden_index_build

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "warden_bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static void *slurp(const char *dir, const char *name, size_t *len) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "rb");
  if (!f) die("%s: %s", p, strerror(errno));
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *b = malloc((size_t)n + 1);
  if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) die("%s: read failed", p);
  b[n] = 0;
  fclose(f);
  if (len) *len = (size_t)n;
  return b;
}

static double rss_mb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* ---------------------------------------------------- machine figures */

static double read_bandwidth_gbs(void) {
  /* integer sums: the loop vectorises and is bound by memory, not by
   * floating-point add latency */
  size_t n = (size_t)128 << 20; /* 1 GiB of u64 */
  uint64_t *a = malloc(n * sizeof(uint64_t));
  if (!a) return 0;
  for (size_t i = 0; i < n; i++) a[i] = i & 7;
  double best = 0;
  volatile uint64_t sink = 0;
  for (int r = 0; r < 3; r++) {
    double t = now();
    /* eight independent sums: no add chain limits the loads */
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (size_t i = 0; i < n; i += 8) {
      s0 += a[i]; s1 += a[i + 1]; s2 += a[i + 2]; s3 += a[i + 3];
      s4 += a[i + 4]; s5 += a[i + 5]; s6 += a[i + 6]; s7 += a[i + 7];
    }
    sink = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
    double gbs = n * sizeof(uint64_t) / (now() - t) / 1e9;
    if (gbs > best) best = gbs;
  }
  (void)sink;
  free(a);
  return best;
}

static double sgemm_gflops(void) {
  int m = 1024, n = 1024, k = 1024;
  float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n),
        *c = malloc(sizeof(float) * m * n);
  for (int i = 0; i < m * k; i++) a[i] = (float)(i % 13) * 0.1f;
  for (int i = 0; i < k * n; i++) b[i] = (float)(i % 7) * 0.1f;
  double best = 0;
  for (int r = 0; r < 5; r++) {
    double t = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, a, k, b, k, 0, c, n);
    double g = 2.0 * m * n * k / (now() - t) / 1e9;
    if (g > best) best = g;
  }
  free(a);
  free(b);
  free(c);
  return best;
}

/* ------------------------------------------------------------- build */

static void progress(void *ctx, uint64_t lines, uint64_t bytes, uint64_t total) {
  (void)ctx;
  (void)lines;
  if (total) fprintf(stderr, "\r  ingest %5.1f%%", 100.0 * bytes / total);
}

static double build_collection(const char *data, const char *cdir, json_t *man,
                               double *index_s, int *have_index) {
  char stamp[4096], want[256];
  snprintf(stamp, sizeof stamp, "%s/bench-stamp", cdir);
  snprintf(want, sizeof want, "fmt3 %s %s %lld %lld", json_string_value(json_object_get(man, "workload")),
           json_string_value(json_object_get(man, "scale")),
           (long long)json_integer_value(json_object_get(man, "n")),
           (long long)json_integer_value(json_object_get(man, "seed")));
  FILE *f = fopen(stamp, "r");
  char got[256] = "";
  double ingest_s = -1;
  if (f) {
    if (fgets(got, sizeof got, f)) got[strcspn(got, "\n")] = 0;
    if (fscanf(f, "%lf %lf %d", &ingest_s, index_s, have_index) != 3) got[0] = 0;
    fclose(f);
  }
  if (strcmp(got, want) == 0) return ingest_s;
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", cdir);
  if (system(cmd) != 0) die("cannot clear %s", cdir);
  char err[1024];
  warden_create_opts co = {(unsigned)json_integer_value(json_object_get(man, "d")),
                           json_string_value(json_object_get(man, "metric")), NULL};
  if (warden_create(cdir, &co, err, sizeof err)) die("create: %s", err);
  warden *db;
  if (warden_open(cdir, NULL, &db, err, sizeof err)) die("open: %s", err);
  char p[4096];
  snprintf(p, sizeof p, "%s/principals.jsonl", data);
  warden_write_report wr;
  if (warden_principals_sync(db, p, NULL, &wr)) die("principals: %s", warden_errmsg(db));
  snprintf(p, sizeof p, "%s/docs.jsonl", data);
  const char *paths[1] = {p};
  warden_ingest_opts io = {0, progress, NULL};
  warden_ingest_report ir;
  double t = now();
  if (warden_ingest(db, paths, 1, &io, &ir)) die("ingest: %s", warden_errmsg(db));
  ingest_s = now() - t;
  fprintf(stderr, "\r  ingested %llu documents in %.1f s\n", (unsigned long long)ir.documents,
          ingest_s);
  warden_free(ir.errors);
  t = now();
  char *rep = NULL;
  *have_index = warden_index_build && warden_index_build(db, NULL, &rep) == 0;
  *index_s = now() - t;
  if (!*have_index) {
    fprintf(stderr, "  no ANN index (%s): ANN rows are skipped\n", warden_errmsg(db));
    *index_s = 0;
  } else {
    fprintf(stderr, "  index built in %.1f s: %s\n", *index_s, rep ? rep : "");
  }
  warden_free(rep);
  warden_close(db);
  f = fopen(stamp, "w");
  if (f) {
    fprintf(f, "%s\n%f %f %d\n", want, ingest_s, *index_s, *have_index);
    fclose(f);
  }
  return ingest_s;
}

/* ---------------------------------------------------------- queries */

typedef struct combo {
  const char *id, *mode, *principal;
  double selectivity;
  char **filters; /* nq lines or NULL */
  int32_t *truth; /* nq x 10 */
  const char *kind;
  int32_t *docv, *qv;
  int32_t value;
  uint8_t *mask;
} combo;

typedef struct runctx {
  warden *db;
  const float *queries;
  size_t d, nscore, k;
  combo *c;
  int strategy;
  int32_t *out; /* nscore x k doc rows, -1 pad */
  double *lat;
  size_t next; /* batch: shared cursor */
  pthread_mutex_t mu;
  int failed;
  char err[512];
} runctx;

static int row_of(const char *doc_id) { return atoi(doc_id + 1); } /* "d<i>" */

static int one(runctx *x, size_t q) {
  warden_query_opts o;
  memset(&o, 0, sizeof o);
  o.principal = x->c->principal;
  o.filter = x->c->filters ? x->c->filters[q] : NULL;
  o.k = (unsigned)x->k;
  o.strategy = x->strategy;
  warden_results *r;
  int rc = warden_query(x->db, x->queries + q * x->d, 1, &o, &r);
  if (rc) {
    snprintf(x->err, sizeof x->err, "%s", warden_errmsg(x->db));
    return rc;
  }
  size_t n = warden_results_count(r, 0);
  for (size_t i = 0; i < x->k; i++)
    x->out[q * x->k + i] = i < n ? row_of(warden_results_hit(r, 0, i)->doc_id) : -1;
  warden_results_free(r);
  return 0;
}

static void *batch_worker(void *arg) {
  runctx *x = arg;
  for (;;) {
    pthread_mutex_lock(&x->mu);
    size_t q = x->next++;
    pthread_mutex_unlock(&x->mu);
    if (q >= x->nscore) break;
    if (one(x, q)) x->failed = 1;
  }
  return NULL;
}

static int allowed_row(const combo *c, size_t q, int row) {
  if (strcmp(c->kind, "lt") == 0) return c->docv[row] < c->value;
  if (strcmp(c->kind, "eq_per_query") == 0) return c->docv[row] == c->qv[q];
  return c->mask[row] != 0;
}

static char **read_lines(const char *data, const char *name, size_t nq) {
  char *b = slurp(data, name, NULL);
  char **v = calloc(nq, sizeof *v);
  char *s = b;
  for (size_t i = 0; i < nq && s && *s; i++) {
    char *e = strchr(s, '\n');
    if (e) *e = 0;
    v[i] = s;
    s = e ? e + 1 : NULL;
  }
  return v;
}

int main(int argc, char **argv) {
  if (argc < 4) die("usage: warden_bench DATA_DIR OUT.json COLLECTION_DIR [--queries N] [--combo ID] [--system NAME]");
  const char *data = argv[1], *outp = argv[2], *cdir = argv[3];
  size_t nscore = 200;
  const char *only_combo = NULL, *only_system = NULL; /* for profiling */
  int with_refs = !getenv("WARDEN_BENCH_NO_REFS"); /* skip machine and FAISS figures */
  for (int i = 4; i + 1 < argc; i++) {
    if (strcmp(argv[i], "--queries") == 0) nscore = (size_t)atol(argv[++i]);
    else if (strcmp(argv[i], "--combo") == 0) only_combo = argv[++i];
    else if (strcmp(argv[i], "--system") == 0) only_system = argv[++i];
  }
  size_t mlen;
  char *mtext = slurp(data, "manifest.json", &mlen);
  json_error_t je;
  json_t *man = json_loadb(mtext, mlen, 0, &je);
  if (!man) die("manifest: %s", je.text);
  size_t n = (size_t)json_integer_value(json_object_get(man, "n"));
  size_t d = (size_t)json_integer_value(json_object_get(man, "d"));
  size_t nq = (size_t)json_integer_value(json_object_get(man, "nq"));
  size_t k = (size_t)json_integer_value(json_object_get(man, "k"));
  if (nscore > nq) nscore = nq;
  const char *workload = json_string_value(json_object_get(man, "workload"));
  const char *scale = json_string_value(json_object_get(man, "scale"));
  float *queries = slurp(data, "queries.f32", NULL);
  fprintf(stderr, "warden_bench: %s/%s n=%zu d=%zu, %zu scored queries\n", workload, scale, n, d,
          nscore);

  /* machine figures, same run */
  double bw = with_refs ? read_bandwidth_gbs() : 0, gf = with_refs ? sgemm_gflops() : 0;
  fprintf(stderr, "  read bandwidth %.1f GB/s, SGEMM %.1f GFLOP/s\n", bw, gf);

  double index_s = 0;
  int have_index = 0;
  double ingest_s = build_collection(data, cdir, man, &index_s, &have_index);
  char err[1024];
  warden *db;
  if (warden_open(cdir, NULL, &db, err, sizeof err)) die("open: %s", err);

  /* Process warm-up, untimed: the FAISS baselines query indexes already
   * read into memory, while warden reads its LMDB map, whose pages a fresh
   * process must first fault in.  One unfiltered exact query maps every
   * embedding block and a few ANN queries the index; no per-query cache
   * (allowed sets, documents) is filled for the timed queries by this. */
  {
    warden_query_opts o;
    memset(&o, 0, sizeof o);
    o.principal = "user:bench-admin";
    o.k = (unsigned)k;
    o.strategy = WARDEN_STRATEGY_EXACT;
    warden_results *r;
    if (warden_query(db, queries + (nq - 1) * d, 1, &o, &r) == 0) warden_results_free(r);
    o.strategy = WARDEN_STRATEGY_ANN;
    for (size_t q = nq > 64 ? nq - 64 : 0; q < nq; q++)
      if (warden_query(db, queries + q * d, 1, &o, &r) == 0) warden_results_free(r);
  }

  json_t *records = json_array();
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1) cores = 1;
  json_t *combos = json_object_get(man, "combos");
  static const struct {
    const char *name;
    int strategy;
  } systems[] = {{"warden-auto", WARDEN_STRATEGY_AUTO},
                 {"warden-exact", WARDEN_STRATEGY_EXACT},
                 {"warden-ann", WARDEN_STRATEGY_ANN}};
  double exact_full_lat = 0, exact_full_qps_batch = 0;
  size_t ci;
  json_t *cj;
  json_array_foreach(combos, ci, cj) {
    combo c;
    memset(&c, 0, sizeof c);
    c.id = json_string_value(json_object_get(cj, "id"));
    if (only_combo && strcmp(only_combo, c.id) != 0) continue;
    c.mode = json_string_value(json_object_get(cj, "mode"));
    c.principal = json_string_value(json_object_get(cj, "principal"));
    c.selectivity = json_number_value(json_object_get(cj, "selectivity"));
    const char *ff = json_string_value(json_object_get(cj, "filters"));
    c.filters = ff ? read_lines(data, ff, nq) : NULL;
    char tp[4096];
    snprintf(tp, sizeof tp, "%s/%s", data, json_string_value(json_object_get(cj, "truth")));
    struct stat st;
    if (stat(tp, &st) != 0) {
      fprintf(stderr, "  %s: no truth file (run truth.py): skipped\n", c.id);
      free(c.filters);
      continue;
    }
    c.truth = slurp(data, json_string_value(json_object_get(cj, "truth")), NULL);
    json_t *al = json_object_get(cj, "allowed");
    c.kind = json_string_value(json_object_get(al, "kind"));
    if (json_object_get(al, "doc_values"))
      c.docv = slurp(data, json_string_value(json_object_get(al, "doc_values")), NULL);
    if (json_object_get(al, "query_values"))
      c.qv = slurp(data, json_string_value(json_object_get(al, "query_values")), NULL);
    c.value = (int32_t)json_integer_value(json_object_get(al, "value"));
    if (json_object_get(al, "file"))
      c.mask = slurp(data, json_string_value(json_object_get(al, "file")), NULL);
    for (size_t s = 0; s < 3; s++) {
      if (systems[s].strategy == WARDEN_STRATEGY_ANN && !have_index) continue;
      if (only_system && strcmp(only_system, systems[s].name) != 0) continue;
      runctx x;
      memset(&x, 0, sizeof x);
      x.db = db;
      x.queries = queries;
      x.d = d;
      x.nscore = nscore;
      x.k = k;
      x.c = &c;
      x.strategy = systems[s].strategy;
      x.out = malloc(nscore * k * sizeof *x.out);
      x.lat = malloc(nscore * sizeof *x.lat);
      pthread_mutex_init(&x.mu, NULL);
      /* The protocol of bench/baselines.py: the batch pass over every
       * query first (one query stream per core), then the timed
       * single-query pass on one thread.  FAISS's single-query figures are
       * taken after its batch pass over the same queries, so both systems
       * are timed in the same state. */
      pthread_t th[64];
      x.next = 0;
      double tb = now();
      for (long t = 0; t < cores && t < 64; t++) pthread_create(&th[t], NULL, batch_worker, &x);
      for (long t = 0; t < cores && t < 64; t++) pthread_join(th[t], NULL);
      double batch = now() - tb;
      double t0 = now();
      int failed = x.failed;
      for (size_t q = 0; q < nscore && !failed; q++) {
        double t = now();
        failed = one(&x, q) != 0;
        x.lat[q] = (now() - t) * 1e3;
      }
      double single = now() - t0;
      if (failed) {
        fprintf(stderr, "  %s %s: query failed: %s\n", systems[s].name, c.id, x.err);
        free(x.out);
        free(x.lat);
        continue;
      }
      /* recall and leaks */
      double rsum = 0;
      long leaks = 0;
      for (size_t q = 0; q < nscore; q++) {
        int tn = 0, hit = 0;
        for (size_t i = 0; i < k; i++) {
          int tr = c.truth[q * k + i];
          if (tr < 0) continue;
          tn++;
          for (size_t j = 0; j < k; j++) hit += x.out[q * k + j] == tr;
        }
        rsum += tn ? (double)hit / tn : 1.0;
        for (size_t j = 0; j < k; j++) {
          int row = x.out[q * k + j];
          if (row >= 0 && (row >= (int)n || !allowed_row(&c, q, row))) leaks++;
        }
      }
      qsort(x.lat, nscore, sizeof *x.lat, cmpd);
      double p50 = x.lat[nscore / 2], p99 = x.lat[(size_t)(nscore * 0.99)];
      /* the strategy the planner chose, from one explained query */
      char strategy[64] = "";
      {
        warden_query_opts o;
        memset(&o, 0, sizeof o);
        o.principal = c.principal;
        o.filter = c.filters ? c.filters[0] : NULL;
        o.k = (unsigned)k;
        o.strategy = systems[s].strategy;
        o.explain = 1;
        warden_results *r;
        if (warden_query(db, queries, 1, &o, &r) == 0) {
          json_t *pj = json_loads(warden_results_plan(r, 0), 0, NULL);
          snprintf(strategy, sizeof strategy, "%s",
                   json_string_value(json_object_get(pj, "strategy")) ?: "");
          json_decref(pj);
          warden_results_free(r);
        }
      }
      double qs = nscore / single, qb = nscore / batch;
      if (systems[s].strategy == WARDEN_STRATEGY_EXACT && strcmp(c.id, "uncorrelated-100pct") == 0) {
        exact_full_lat = single / nscore;
        exact_full_qps_batch = qb;
      }
      fprintf(stderr, "  %-13s %-26s recall %.3f  qps1 %8.1f  qpsN %8.1f  p50 %7.3f ms  leaks %ld  %s\n",
              systems[s].name, c.id, rsum / nscore, qs, qb, p50, leaks, strategy);
      json_array_append_new(
          records,
          json_pack("{s:s,s:s,s:s,s:s,s:s,s:f,s:s,s:{},s:f,s:f,s:f,s:f,s:f,s:o,s:f,s:I,s:s}",
                    "system", systems[s].name, "workload", workload, "scale", scale, "combo", c.id,
                    "mode", c.mode, "selectivity", c.selectivity, "principal", c.principal,
                    "params", "recall", rsum / nscore, "qps_single", qs, "qps_batch", qb, "p50_ms",
                    p50, "p99_ms", p99, "build_s",
                    systems[s].strategy == WARDEN_STRATEGY_EXACT ? json_real(ingest_s)
                                                                 : json_real(ingest_s + index_s),
                    "rss_mb", rss_mb(), "leaks", (json_int_t)leaks, "strategy", strategy));
      pthread_mutex_destroy(&x.mu);
      free(x.out);
      free(x.lat);
    }
    free(c.filters);
    free(c.truth);
    free(c.docv);
    free(c.qv);
    free(c.mask);
  }
  warden_close(db);

  /* FAISS IndexFlatIP on the same vectors, unfiltered, same run, through
   * the C API (no Python in the figure) */
  float *base = slurp(data, "base.f32", NULL);
  FaissIndexFlatIP *fi = NULL;
  double faiss_single = 0, faiss_batch_qps = 0;
  if (with_refs && faiss_IndexFlatIP_new_with(&fi, (idx_t)d) == 0 && faiss_Index_add((FaissIndex *)fi, (idx_t)n, base) == 0) {
    float *dist = malloc(sizeof(float) * k * nscore);
    idx_t *lab = malloc(sizeof(idx_t) * k * nscore);
    faiss_Index_search((FaissIndex *)fi, 1, queries, (idx_t)k, dist, lab);
    double t = now();
    for (size_t q = 0; q < nscore; q++)
      faiss_Index_search((FaissIndex *)fi, 1, queries + q * d, (idx_t)k, dist + q * k, lab + q * k);
    faiss_single = (now() - t) / nscore;
    t = now();
    faiss_Index_search((FaissIndex *)fi, (idx_t)nscore, queries, (idx_t)k, dist, lab);
    faiss_batch_qps = nscore / (now() - t);
    free(dist);
    free(lab);
    faiss_Index_free((FaissIndex *)fi);
  }
  free(base);
  double bytes = (double)n * d * sizeof(float);
  json_t *refs = json_pack(
      "{s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f}", "read_bandwidth_gbs", bw, "sgemm_gflops", gf,
      "warden_exact_single_ms", exact_full_lat * 1e3, "warden_exact_scan_gbs",
      exact_full_lat > 0 ? bytes / exact_full_lat / 1e9 : 0.0, "warden_exact_batch_qps",
      exact_full_qps_batch, "faiss_flat_capi_single_ms", faiss_single * 1e3,
      "faiss_flat_capi_scan_gbs", faiss_single > 0 ? bytes / faiss_single / 1e9 : 0.0,
      "faiss_flat_capi_batch_qps", faiss_batch_qps);
  fprintf(stderr,
          "  exact scan (unfiltered, 1 thread): warden %.2f ms/query = %.1f GB/s (%.0f%% of read "
          "bandwidth); FAISS IndexFlatIP %.2f ms/query = %.1f GB/s\n"
          "  batch: warden %.0f QPS (%ld query streams); FAISS IndexFlatIP batch %.0f QPS\n",
          exact_full_lat * 1e3, exact_full_lat > 0 ? bytes / exact_full_lat / 1e9 : 0,
          exact_full_lat > 0 ? 100 * bytes / exact_full_lat / 1e9 / bw : 0, faiss_single * 1e3,
          faiss_single > 0 ? bytes / faiss_single / 1e9 : 0, exact_full_qps_batch, cores,
          faiss_batch_qps);
  json_t *meta = json_pack("{s:s,s:s,s:I,s:I,s:I,s:f,s:f,s:I}", "workload", workload, "scale", scale,
                           "n", (json_int_t)n, "d", (json_int_t)d, "scored_queries",
                           (json_int_t)nscore, "ingest_s", ingest_s, "index_s", index_s, "cores",
                           (json_int_t)cores);
  json_t *outj = json_pack("{s:o,s:o,s:o}", "meta", meta, "refs", refs, "records", records);
  if (json_dump_file(outj, outp, JSON_INDENT(1))) die("%s: cannot write", outp);
  json_decref(outj);
  json_decref(man);
  free(mtext);
  free(queries);
  return 0;
}
