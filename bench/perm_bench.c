/*
 * perm_bench.c -- permission-change workloads (BENCH.md / issue 5 item 6):
 * the time to revoke one document (p50/p99 of a committed `acl set`), to
 * sync the ACLs of N documents (`acl sync`, one transaction, vectors
 * untouched), and to principals-sync a group directory, next to the time a
 * full re-ingest of the same collection takes.  Through the C API.
 *
 * usage: perm_bench DIR [N] [DIM] [CHANGED_FRACTION]
 *   defaults: N = 1000000, DIM = 64, CHANGED_FRACTION = 0.1
 * Prints one JSON object with the figures.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "warden.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rs = 42;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void fail(warden *db, const char *what) {
  fprintf(stderr, "perm_bench: %s: %s\n", what, db ? warden_errmsg(db) : "");
  exit(1);
}

/* Write N documents (or their ACL lines) as JSON Lines to path. */
static void write_docs(const char *path, long n, int dim, int acl_only, double changed) {
  FILE *f = fopen(path, "w");
  if (!f) fail(NULL, path);
  for (long i = 0; i < n; i++) {
    int g1 = (int)(rnd() % 1000);
    if (acl_only) {
      /* the same groups as at ingest, except for the changed fraction */
      int change = (double)(rnd() % 1000000) / 1e6 < changed;
      fprintf(f, "{\"doc_id\":\"doc-%ld\",\"allow\":[\"group:g%d\",\"group:g%d\"],\"deny\":[]}\n", i,
              (int)(i % 1000), change ? (g1 + 1) % 1000 : (int)((i * 7) % 1000));
      continue;
    }
    fprintf(f,
            "{\"doc_id\":\"doc-%ld\",\"source\":\"s3://bucket/docs/%ld.md\",\"namespace\":\"/t%ld\","
            "\"metadata\":{\"year\":%ld},\"acl\":{\"allow\":[\"group:g%d\",\"group:g%d\"]},"
            "\"chunks\":[{\"text\":\"chunk of document %ld\",\"embedding\":[",
            i, i, i % 10, i % 7, (int)(i % 1000), (int)((i * 7) % 1000), i);
    for (int j = 0; j < dim; j++)
      fprintf(f, "%s%.6f", j ? "," : "", (double)((rnd() % 2000) + 1) / 1000.0 - 1.0);
    fprintf(f, "]}]}\n");
  }
  fclose(f);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: perm_bench DIR [N] [DIM] [CHANGED_FRACTION]\n");
    return 2;
  }
  const char *dir = argv[1];
  long n = argc > 2 ? atol(argv[2]) : 1000000;
  int dim = argc > 3 ? atoi(argv[3]) : 64;
  double changed = argc > 4 ? atof(argv[4]) : 0.1;
  char coll[4096], docs[4096], acls[4096], cmd[4200];
  snprintf(coll, sizeof coll, "%s/collection", dir);
  snprintf(docs, sizeof docs, "%s/docs.jsonl", dir);
  snprintf(acls, sizeof acls, "%s/acl-sync.jsonl", dir);
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' && rm -rf '%s'", dir, coll);
  if (system(cmd) != 0) fail(NULL, "mkdir");
  fprintf(stderr, "perm_bench: writing %ld documents (d=%d)\n", n, dim);
  write_docs(docs, n, dim, 0, 0);
  write_docs(acls, n, dim, 1, changed);
  char err[512];
  warden_create_opts co = {(unsigned)dim, "cosine", NULL};
  if (warden_create(coll, &co, err, sizeof err)) {
    fprintf(stderr, "perm_bench: %s\n", err);
    return 1;
  }
  warden *db;
  if (warden_open(coll, NULL, &db, err, sizeof err)) {
    fprintf(stderr, "perm_bench: %s\n", err);
    return 1;
  }
  const char *paths[1] = {docs};
  warden_ingest_report ir;
  double t = now();
  if (warden_ingest(db, paths, 1, NULL, &ir)) fail(db, "ingest");
  double ingest_s = now() - t;
  fprintf(stderr, "  ingest: %.1f s\n", ingest_s);
  /* re-ingest of the same collection (every document replaced) */
  t = now();
  if (warden_ingest(db, paths, 1, NULL, &ir)) fail(db, "re-ingest");
  double reingest_s = now() - t;
  fprintf(stderr, "  re-ingest: %.1f s\n", reingest_s);
  warden_write_report wr;
  t = now();
  if (warden_acl_sync(db, acls, NULL, &wr)) fail(db, "acl sync");
  double sync_s = now() - t;
  fprintf(stderr, "  acl sync: %.2f s (%llu changed, %llu unchanged)\n", sync_s,
          (unsigned long long)wr.changed, (unsigned long long)wr.unchanged);
  uint64_t sync_changed = wr.changed, sync_unchanged = wr.unchanged;
  /* the same file again: nothing differs, nothing is written */
  t = now();
  if (warden_acl_sync(db, acls, NULL, &wr)) fail(db, "acl sync (no-op)");
  double sync_noop_s = now() - t;
  /* single revokes: committed acl set, one document each */
  int reps = 200;
  double *lat = malloc(sizeof(double) * reps);
  for (int i = 0; i < reps; i++) {
    char id[64];
    snprintf(id, sizeof id, "doc-%ld", (long)(rnd() % (uint64_t)n));
    const char *allow[1] = {"group:revoked"};
    t = now();
    if (warden_acl_set(db, id, allow, 1, NULL, 0, &wr)) fail(db, "acl set");
    lat[i] = (now() - t) * 1e3;
  }
  qsort(lat, reps, sizeof *lat, cmpd);
  char *chk = NULL;
  int crc = warden_check(db, &chk);
  warden_free(chk);
  printf("{\"documents\": %ld, \"dimension\": %d, \"ingest_s\": %.2f, \"reingest_s\": %.2f, "
         "\"acl_sync_s\": %.2f, \"acl_sync_changed\": %llu, \"acl_sync_unchanged\": %llu, "
         "\"acl_sync_noop_s\": %.2f, \"revoke_p50_ms\": %.2f, \"revoke_p99_ms\": %.2f, "
         "\"check_clean\": %s}\n",
         n, dim, ingest_s, reingest_s, sync_s, (unsigned long long)sync_changed,
         (unsigned long long)sync_unchanged, sync_noop_s, lat[reps / 2], lat[(int)(reps * 0.99)],
         crc == 0 ? "true" : "false");
  free(lat);
  warden_close(db);
  return 0;
}
