/*
 * scale_query.c -- the query step of `make bench-scale` (bench/scale/run.sh):
 * one warden_query per query vector, single thread, for each selectivity of
 * gen.py's ACLs, timed one by one.
 *
 *   scale_query DIR QUERIES.npy OUT.jsonl [K [PASSES]]
 *
 * Selectivities (gen.py: doc i has "group:g<(i%1000)%100>" and
 * "user:u<i%1000>"): 0.1 % = principal user:u<q%1000>; 1 % = group:g<q%100>;
 * 10 % = groups g<q%10 * 10 ..+9>; 100 % = all 100 groups.  Writes one line
 * per (selectivity, query): {"sel","q","ms","ids":[doc numbers]} for
 * recall against bench/scale/truth.py's exact answers, which run.sh
 * computes from the .npy itself (not through warden).
 *
 * PASSES (default 2): the whole set of queries is run that many times and
 * every pass is written ("pass": 0, 1, ...).  At 10M x 384 the store's
 * floats (15 GB), the IVF (3.9 GB) and the graph (5.3 GB) do not all fit
 * in this machine's 24 GB next to the page cache the earlier steps left,
 * so the first pass reads from disk; report.py gives both the cold first
 * pass and the last one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "warden.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static float *load_npy(const char *path, size_t *n, size_t *dim) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char pre[10];
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) || pre[6] != 1) return NULL;
  size_t hl = pre[8] | (size_t)pre[9] << 8;
  char *h = calloc(1, hl + 1);
  if (!h || fread(h, 1, hl, f) != hl || !strstr(h, "'<f4'")) return NULL;
  char *sh = strstr(h, "'shape': (");
  unsigned long long a, b;
  if (!sh || sscanf(sh + 10, "%llu, %llu", &a, &b) != 2) return NULL;
  float *v = malloc(a * b * sizeof *v);
  if (!v || fread(v, sizeof *v, a * b, f) != a * b) return NULL;
  fclose(f);
  free(h);
  *n = a;
  *dim = b;
  return v;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: scale_query DIR QUERIES.npy OUT.jsonl [K [PASSES]]\n");
    return 2;
  }
  unsigned k = argc > 4 ? (unsigned)atoi(argv[4]) : 10;
  int passes = argc > 5 ? atoi(argv[5]) : 2;
  if (k == 0 || passes < 1) {
    fprintf(stderr, "scale_query: K and PASSES must be positive\n");
    return 2;
  }
  char err[512];
  warden *db;
  warden_open_opts oo = {.read_only = 1};
  if (warden_open(argv[1], &oo, &db, err, sizeof err)) {
    fprintf(stderr, "scale_query: %s\n", err);
    return 1;
  }
  size_t nq, dim;
  float *q = load_npy(argv[2], &nq, &dim);
  if (!q || dim != warden_dimension(db)) {
    fprintf(stderr, "scale_query: cannot read %s (float32, dimension %u)\n", argv[2],
            warden_dimension(db));
    return 1;
  }
  FILE *out = fopen(argv[3], "w");
  if (!out) return 1;
  static const char *sels[] = {"0.1%", "1%", "10%", "100%"};
  char gbuf[100][16];
  const char *groups[100];
  char user[32];
  for (int pass = 0; pass < passes; pass++)
  for (int s = 0; s < 4; s++) {
    for (size_t i = 0; i < nq; i++) {
      warden_query_opts o;
      memset(&o, 0, sizeof o);
      o.k = k;
      size_t ng = 0;
      if (s == 0) {
        snprintf(user, sizeof user, "user:u%03zu", i % 1000);
        o.principal = user;
      } else {
        o.principal = "user:nobody";
        size_t lo = s == 1 ? i % 100 : s == 2 ? (i % 10) * 10 : 0;
        ng = s == 1 ? 1 : s == 2 ? 10 : 100;
        for (size_t g = 0; g < ng; g++) {
          snprintf(gbuf[g], sizeof gbuf[g], "group:g%02zu", lo + g);
          groups[g] = gbuf[g];
        }
        o.groups = groups;
        o.ngroups = ng;
      }
      warden_results *r;
      double t0 = now_ms();
      int rc = warden_query(db, q + i * dim, 1, &o, &r);
      double ms = now_ms() - t0;
      if (rc) {
        fprintf(stderr, "scale_query: %s\n", warden_errmsg(db));
        return 1;
      }
      fprintf(out, "{\"pass\":%d,\"sel\":\"%s\",\"q\":%zu,\"ms\":%.4f,\"ids\":[", pass,
              sels[s], i, ms);
      for (size_t h = 0; h < warden_results_count(r, 0); h++) {
        const warden_hit *x = warden_results_hit(r, 0, h);
        fprintf(out, h ? ",%ld" : "%ld", strtol(x->doc_id + 4, NULL, 10)); /* doc-NNNNNNNNN */
      }
      fprintf(out, "]}\n");
      warden_results_free(r);
    }
  }
  fclose(out);
  free(q);
  warden_close(db);
  return 0;
}
