/*
 * lexical_bench.c -- warden's side of the lexical benchmark (issue 19):
 * indexing chunks/s, lexical (BM25) QPS at 0.1 / 1 / 10 / 100 %
 * selectivity and hybrid QPS, single thread, through the C API.  The
 * peers (SQLite FTS5, Xapian) are measured by bench/lexical_bench.py on
 * the same corpus (bench/lexical_corpus.py) and queries.
 *
 * usage: lexical_bench CORPUSDIR COLLDIR [BATCH]
 *   CORPUSDIR holds docs.jsonl and queries.json; COLLDIR is created
 *   (dimension 64, hash embedder: warden embeds every chunk at ingest,
 *   which the peers do not have to do) and ingested in transactions of
 *   BATCH documents (default 10000); then an ANN index is built for the
 *   hybrid runs' vector side.  Selectivity is a metadata filter
 *   {"sel": {"$lt": X}} evaluated into the allowed bitmap; the BM25
 *   traversal consults that bitmap posting by posting.
 * Prints one JSON object per measurement.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "warden.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fail(warden *db, const char *what) {
  fprintf(stderr, "lexical_bench: %s: %s\n", what, db ? warden_errmsg(db) : "");
  exit(1);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: lexical_bench CORPUSDIR COLLDIR [BATCH]\n");
    return 2;
  }
  const char *cdir = argv[1], *dir = argv[2];
  long batch = argc > 3 ? atol(argv[3]) : 10000;
  char path[4096], err[512];
  struct stat st;
  warden *db;
  int fresh = stat(dir, &st) != 0;
  if (fresh) {
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s.yaml", dir);
    FILE *f = fopen(cfg, "w");
    if (!f) fail(NULL, cfg);
    fprintf(f, "dimension: 64\nmetric: cosine\nmetadata:\n  sel: int\nembedder:\n  type: hash\n");
    fclose(f);
    warden_create_opts co = {0, NULL, cfg};
    if (warden_create(dir, &co, err, sizeof err)) {
      fprintf(stderr, "create: %s\n", err);
      return 1;
    }
  }
  if (warden_open(dir, NULL, &db, err, sizeof err)) {
    fprintf(stderr, "open: %s\n", err);
    return 1;
  }
  if (fresh) {
    snprintf(path, sizeof path, "%s/docs.jsonl", cdir);
    FILE *f = fopen(path, "r");
    if (!f) fail(NULL, path);
    size_t cap = (size_t)64 << 20, len = 0;
    char *buf = malloc(cap), *line = NULL;
    size_t lcap = 0;
    long n = 0, total = 0;
    double t0 = now(), c0 = cpu();
    for (;;) {
      ssize_t l = getline(&line, &lcap, f);
      if (l > 0) {
        if (len + (size_t)l > cap) {
          cap = (len + (size_t)l) * 2;
          buf = realloc(buf, cap);
        }
        memcpy(buf + len, line, (size_t)l);
        len += (size_t)l;
        n++;
      }
      if ((l <= 0 && n) || n == batch) {
        if (warden_ingest_buffer(db, "docs", buf, len, NULL, NULL)) fail(db, "ingest");
        total += n;
        n = 0;
        len = 0;
      }
      if (l <= 0) break;
    }
    double t1 = now(), c1 = cpu();
    fclose(f);
    free(line);
    free(buf);
    printf("{\"system\":\"warden\",\"what\":\"index\",\"chunks\":%ld,\"seconds\":%.3f,"
           "\"cpu_seconds\":%.3f,\"chunks_per_s\":%.0f,\"chunks_per_cpu_s\":%.0f,"
           "\"note\":\"includes hash-embedding and storing a 64-d vector per chunk\"}\n",
           total, t1 - t0, c1 - c0, total / (t1 - t0), total / (c1 - c0));
    if (getenv("LEXBENCH_INGEST_ONLY")) return 0; /* for profiling */
    char *rep = NULL;
    double t2 = now();
    if (warden_index_build(db, NULL, &rep)) fail(db, "index");
    printf("{\"system\":\"warden\",\"what\":\"ann_index\",\"seconds\":%.3f}\n", now() - t2);
    warden_free(rep);
    fflush(stdout);
  }
  snprintf(path, sizeof path, "%s/queries.json", cdir);
  json_error_t je;
  json_t *qs = json_load_file(path, 0, &je);
  if (!json_is_array(qs)) fail(NULL, path);
  size_t nq = json_array_size(qs);
  static const int sels[] = {1, 10, 100, 1000};
  for (int mode = WARDEN_MODE_LEXICAL; mode <= WARDEN_MODE_HYBRID; mode++) {
    for (int si = 0; si < 4; si++) {
      char filter[64];
      snprintf(filter, sizeof filter, "{\"sel\": {\"$lt\": %d}}", sels[si]);
      warden_query_opts o;
      memset(&o, 0, sizeof o);
      o.principal = "user:bench";
      o.k = 10;
      o.mode = mode;
      o.filter = sels[si] < 1000 ? filter : NULL;
      double hits = 0, t0 = 0, c0 = 0;
      /* a warm-up pass over the first 100 queries, then the timed pass */
      for (int pass = 0; pass < 2; pass++) {
        if (pass) {
          t0 = now();
          c0 = cpu();
        }
        for (size_t i = 0; i < (pass ? nq : (nq < 100 ? nq : 100)); i++) {
          o.text = json_string_value(json_array_get(qs, i));
          warden_results *r;
          if (warden_query(db, NULL, 1, &o, &r)) fail(db, "query");
          if (pass) hits += (double)warden_results_count(r, 0);
          warden_results_free(r);
        }
      }
      double dt = now() - t0, dc = cpu() - c0;
      printf("{\"system\":\"warden\",\"what\":\"%s\",\"selectivity\":%g,\"queries\":%zu,"
             "\"qps\":%.1f,\"qps_cpu\":%.1f,\"mean_hits\":%.2f}\n",
             mode == WARDEN_MODE_LEXICAL ? "lexical" : "hybrid", sels[si] / 1000.0, nq, nq / dt,
             nq / dc, hits / (double)nq);
      fflush(stdout);
    }
  }
  json_decref(qs);
  warden_close(db);
  return 0;
}
