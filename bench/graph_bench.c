/*
 * graph_bench.c -- warden through its C API on the issue-14 workloads
 * (bench/graph_gen.py, any --family; dimension and metric from combos.json): builds the collection once, then measures one
 * filter combination per call so bench/graph_faiss.py can run warden and
 * FAISS back to back, combination by combination, in one bench run.
 *
 *   graph_bench build DATA_DIR COLL_DIR        -> JSON: ingest, IVF and graph build
 *                                                 (metric from combos.json: l2, cosine, ip)
 *   graph_bench query DATA_DIR COLL_DIR COMBO [--target-recall R] [--batch]
 *                                               -> JSON: recall@10, QPS, strategy
 *
 * Single-query QPS: one thread, one warden_query per query vector, wall
 * time of the call (plan, filter evaluation, search, result building); the
 * first pass over the queries warms up and is not timed.  Leaks: hits
 * outside the combination's allowed rule (from meta.i32).  --batch: also
 * one warden_query call with every query vector of a shared filter, or one
 * stream per core for per-query filters.
 *
 * The graph's build choices (M, efConstruction) and their measurement are
 * in index/hnsw.c; this bench's table is in the README.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "warden.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *m, const char *w) {
  fprintf(stderr, "graph_bench: %s%s%s\n", m, w ? ": " : "", w ? w : "");
  exit(1);
}

static void *slurp(const char *dir, const char *name, size_t *len) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "rb");
  if (!f) die("cannot open", p);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) die("cannot read", p);
  b[n] = 0;
  fclose(f);
  *len = (size_t)n;
  return b;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void build(const char *data, const char *cdir) {
  size_t len;
  json_t *man = json_loads(slurp(data, "combos.json", &len), 0, NULL);
  size_t n = (size_t)json_integer_value(json_object_get(man, "n"));
  size_t d = (size_t)json_integer_value(json_object_get(man, "d"));
  const char *metric = json_string_value(json_object_get(man, "metric"));
  const char *family = json_string_value(json_object_get(man, "family"));
  if (!metric) metric = "l2";
  if (strcmp(metric, "l2") && strcmp(metric, "cosine") && strcmp(metric, "ip"))
    die("combos.json: metric: not one of l2, cosine, ip", metric);
  if (!family) family = "image-784";
  float *x = slurp(data, "base.f32", &len);
  int32_t *meta = slurp(data, "meta.i32", &len);
  char cfg[4096], err[512];
  snprintf(cfg, sizeof cfg, "%s.yaml", cdir);
  FILE *f = fopen(cfg, "w");
  fprintf(f, "dimension: %zu\nmetric: %s\nmetadata:\n  urank: int\n  c10: int\n  c100: int\n",
          d, metric);
  fclose(f);
  warden_create_opts co = {(unsigned)d, metric, cfg};
  if (warden_create(cdir, &co, err, sizeof err)) die("create", err);
  warden *db;
  if (warden_open(cdir, NULL, &db, err, sizeof err)) die("open", err);
  double t0 = now();
  /* %.9g round-trips a float32 (image-784's integers print as before); a
   * value takes at most 16 bytes with its comma ("-1.23456789e-05,") */
  size_t chunk = 2000, cap = chunk * (d * 16 + 256);
  char *buf = malloc(cap);
  for (size_t s = 0; s < n; s += chunk) {
    size_t o = 0;
    for (size_t i = s; i < s + chunk && i < n; i++) {
      o += (size_t)sprintf(buf + o,
                           "{\"doc_id\":\"d%zu\",\"source\":\"s3://img/%zu\",\"acl\":{\"allow\":"
                           "[\"*\"]},\"metadata\":{\"urank\":%d,\"c10\":%d,\"c100\":%d},"
                           "\"chunks\":[{\"text\":\"i\",\"embedding\":[",
                           i, i, meta[3 * i], meta[3 * i + 1], meta[3 * i + 2]);
      for (size_t j = 0; j < d; j++) o += (size_t)sprintf(buf + o, j ? ",%.9g" : "%.9g", (double)x[i * d + j]);
      o += (size_t)sprintf(buf + o, "]}]}\n");
    }
    warden_ingest_report ir;
    if (warden_ingest_buffer(db, family, buf, o, NULL, &ir)) die("ingest", warden_errmsg(db));
  }
  double t_ingest = now() - t0;
  t0 = now();
  char *js = NULL;
  warden_index_opts io;
  memset(&io, 0, sizeof io);
  if (warden_index_build(db, &io, &js)) die("index", warden_errmsg(db));
  double t_index = now() - t0;
  printf("{\"family\":\"%s\",\"metric\":\"%s\",\"ingest_s\":%.2f,\"index_s\":%.2f,"
         "\"index\":%s}\n", family, metric, t_ingest, t_index, js);
  warden_free(js);
  warden_close(db);
  unlink(cfg);
  free(buf);
}

typedef struct bq {
  warden *db;
  const float *q;
  size_t d, from, to;
  const char *const *filters;
  double target;
} bq;

static void *batch_worker(void *arg) {
  bq *b = arg;
  for (size_t i = b->from; i < b->to; i++) {
    warden_query_opts o;
    memset(&o, 0, sizeof o);
    o.principal = "user:bench";
    o.filter = b->filters[i];
    o.k = 10;
    o.target_recall = (float)b->target;
    warden_results *r = NULL;
    if (warden_query(b->db, b->q + i * b->d, 1, &o, &r)) die("query", warden_errmsg(b->db));
    warden_results_free(r);
  }
  return NULL;
}

static void query(const char *data, const char *cdir, const char *combo, double target,
                  int batch, int repeat) {
  size_t len;
  json_t *man = json_loads(slurp(data, "combos.json", &len), 0, NULL);
  size_t d = (size_t)json_integer_value(json_object_get(man, "d"));
  size_t nq = (size_t)json_integer_value(json_object_get(man, "nq"));
  json_t *cb = NULL, *arr = json_object_get(man, "combos");
  for (size_t i = 0; i < json_array_size(arr); i++)
    if (!strcmp(json_string_value(json_object_get(json_array_get(arr, i), "name")), combo))
      cb = json_array_get(arr, i);
  if (!cb) die("no such combo", combo);
  float *q = slurp(data, "queries.f32", &len);
  int32_t *meta = slurp(data, "meta.i32", &len);
  char tn[300];
  snprintf(tn, sizeof tn, "truth-%s.i32", combo);
  int32_t *truth = slurp(data, tn, &len);
  json_t *fl = json_object_get(cb, "filters"), *rule = json_object_get(cb, "rule");
  const char **filters = calloc(nq, sizeof *filters);
  for (size_t i = 0; i < nq; i++) filters[i] = json_string_value(json_array_get(fl, i));
  int urank = !strcmp(json_string_value(json_array_get(rule, 0)), "urank");
  long lim = urank ? (long)json_integer_value(json_array_get(rule, 1)) : 0;
  int col = urank ? 0 : (int)json_integer_value(json_array_get(rule, 1));
  json_t *teams = urank ? NULL : json_array_get(rule, 2);
  warden *db;
  char err[512];
  if (warden_open(cdir, NULL, &db, err, sizeof err)) die("open", err);
  double *lat = malloc(nq * sizeof *lat), rsum = 0;
  size_t leaks = 0;
  char strat[64] = "", ef[32] = "";
  for (int pass = 0; pass < 2; pass++) {
   for (int rep = 0; rep < (pass ? repeat : 1); rep++)
    for (size_t i = 0; i < nq; i++) {
      warden_query_opts o;
      memset(&o, 0, sizeof o);
      o.principal = "user:bench";
      o.filter = filters[i];
      o.k = 10;
      o.target_recall = (float)target;
      /* GRAPH_BENCH_EXACT=1: every query answered by the exact scan */
      if (getenv("GRAPH_BENCH_EXACT")) o.strategy = WARDEN_STRATEGY_EXACT;
      o.explain = (pass == 0 && i == 0) || (pass == 0 && getenv("GRAPH_BENCH_PLAN_ALL"));
      warden_results *r = NULL;
      double t = now();
      if (warden_query(db, q + i * d, 1, &o, &r)) die("query", warden_errmsg(db));
      lat[i] = now() - t;
      /* GRAPH_BENCH_PLAN_ALL=1: every query's plan on stderr (warm-up pass) */
      if (pass == 0 && getenv("GRAPH_BENCH_PLAN_ALL")) fprintf(stderr, "%s\n", warden_results_plan(r, 0));
      if (pass == 0 && i == 0) {
        /* GRAPH_BENCH_PLAN=1: the first query's plan (--explain) on stderr */
        if (getenv("GRAPH_BENCH_PLAN")) fprintf(stderr, "%s\n", warden_results_plan(r, 0));
        json_t *p = json_loads(warden_results_plan(r, 0), 0, NULL);
        snprintf(strat, sizeof strat, "%s", json_string_value(json_object_get(p, "strategy")));
        json_t *g = json_object_get(p, "graph");
        snprintf(ef, sizeof ef, "%lld",
                 (long long)json_integer_value(json_object_get(g, "ef_search")));
        json_decref(p);
      }
      if (pass == 1 && rep == 0) {
        size_t nh = warden_results_count(r, 0), nt = 0, hit = 0;
        for (size_t a = 0; a < 10; a++) nt += truth[i * 10 + a] >= 0;
        for (size_t h = 0; h < nh; h++) {
          long row = atol(warden_results_hit(r, 0, h)->doc_id + 1);
          int ok = urank ? meta[3 * row] < lim
                         : meta[3 * row + col] == (int)json_integer_value(json_array_get(teams, i));
          leaks += !ok;
          for (size_t a = 0; a < 10; a++) hit += truth[i * 10 + a] == row;
        }
        rsum += nt ? (double)hit / (double)nt : 1.0;
        if (getenv("GRAPH_BENCH_PLAN_ALL"))
          fprintf(stderr, "{\"query\":%zu,\"recall\":%.2f}\n", i, nt ? (double)hit / (double)nt : 1.0);
      }
      warden_results_free(r);
    }
  }
  double tot = 0;
  for (size_t i = 0; i < nq; i++) tot += lat[i];
  qsort(lat, nq, sizeof *lat, cmpd);
  double bqps = 0;
  if (batch) {
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    if (nc < 1) nc = 1;
    pthread_t th[64];
    bq b[64];
    double t = now();
    for (long c = 0; c < nc && c < 64; c++) {
      b[c] = (bq){db, q, d, nq * (size_t)c / (size_t)nc, nq * (size_t)(c + 1) / (size_t)nc,
                  filters, target};
      pthread_create(&th[c], NULL, batch_worker, &b[c]);
    }
    for (long c = 0; c < nc && c < 64; c++) pthread_join(th[c], NULL);
    bqps = (double)nq / (now() - t);
  }
  printf("{\"system\":\"warden\",\"combo\":\"%s\",\"recall\":%.4f,\"qps\":%.1f,\"p50_us\":%.1f,"
         "\"p99_us\":%.1f,\"leaks\":%zu,\"strategy\":\"%s\",\"ef_search\":%s,\"target_recall\":%.3f,"
         "\"batch_qps\":%.1f}\n",
         combo, rsum / (double)nq, (double)nq / tot, lat[nq / 2] * 1e6,
         lat[(size_t)(nq * 0.99)] * 1e6, leaks, strat, ef[0] ? ef : "0", target, bqps);
  warden_close(db);
}

int main(int argc, char **argv) {
  if (argc >= 4 && !strcmp(argv[1], "build")) {
    build(argv[2], argv[3]);
    return 0;
  }
  if (argc >= 5 && !strcmp(argv[1], "query")) {
    double target = 0;
    int batch = 0, repeat = 1;
    for (int i = 5; i < argc; i++) {
      if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
      else
      if (!strcmp(argv[i], "--target-recall") && i + 1 < argc) target = atof(argv[++i]);
      else if (!strcmp(argv[i], "--batch")) batch = 1;
    }
    query(argv[2], argv[3], argv[4], target, batch, repeat);
    return 0;
  }
  fprintf(stderr, "usage: graph_bench build DATA COLL | query DATA COLL COMBO "
                  "[--target-recall R] [--batch] [--repeat N]\n");
  return 2;
}
