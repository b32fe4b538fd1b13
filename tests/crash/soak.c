/*
 * soak.c -- `make soak`: minutes of random interleavings of ingest, upsert,
 * delete, ACL changes, group (directory) changes and queries through the C
 * API, every step checked against an independent oracle.
 *
 * The oracle model, filter generator and checker are copied from
 * tests/test_oracle.c (the lead's differential test; copied, not shared,
 * so each can evolve): the oracle keeps its own copy of every document and
 * of the group directory, evaluates the stored-ACL rule and the filter
 * semantics document by document, and ranks in double precision.  Here the
 * collection is mutated one operation at a time and several queries are
 * compared after *every* step; every 50 steps the handle is closed and the
 * collection reopened, and warden_check must be clean.  The metric changes
 * with each new collection (l2, ip, cosine in turn), and a collection is
 * recreated after 400 documents.
 *
 * Usage: soak SECONDS [SEED].  Prints the figures; exits 1 on the first
 * disagreement (with the query that showed it).
 */
#include <math.h>
#include <stdarg.h>
#include <time.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include "warden.h"

static void fail_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail_msg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stdout, "SOAK FAILURE: ");
  vfprintf(stdout, fmt, ap);
  fprintf(stdout, "\n");
  va_end(ap);
  exit(1);
}
#define assert_int_equal(a, b)                                                       \
  do {                                                                               \
    long long a_ = (long long)(a), b_ = (long long)(b);                              \
    if (a_ != b_) fail_msg("%s:%d: %s == %lld, expected %lld", __FILE__, __LINE__, #a, a_, b_); \
  } while (0)
#define assert_non_null(p) \
  do {                     \
    if (!(p)) fail_msg("%s:%d: %s is NULL", __FILE__, __LINE__, #p); \
  } while (0)
#define assert_true(c) \
  do {                 \
    if (!(c)) fail_msg("%s:%d: %s", __FILE__, __LINE__, #c); \
  } while (0)

#include "../oracle_model.h"
  }
}

static long nsteps, nreopens, nchecks, ncollections;

static void reopen_and_check(const char *cdir) {
  char *rep = NULL;
  int rc = warden_check(db, &rep);
  if (rc) fail_msg("check: %s", rep ? rep : warden_errmsg(db));
  warden_free(rep);
  nchecks++;
  warden_close(db);
  char err[512];
  if (warden_open(cdir, NULL, &db, err, sizeof err)) fail_msg("reopen: %s", err);
  if (use_resolver == 1 && warden_set_resolver(db, cb_resolver, NULL)) fail_msg("set_resolver");
  nreopens++;
}

static void soak_collection(int m, double deadline) {
  metric = m;
  memset(docs, 0, sizeof docs);
  memset(dir_user, 0, sizeof dir_user);
  memset(dir_group, 0, sizeof dir_group);
  ndocs_used = 0;
  next_slot = 0;
  snprintf(dir, sizeof dir, "/tmp/warden-soak-XXXXXX");
  assert_non_null(mkdtemp(dir));
  char cdir[300];
  snprintf(cdir, sizeof cdir, "%s/c", dir);
  warden_create_opts co = {DIM, m == WARDEN_METRIC_L2 ? "l2" : m == WARDEN_METRIC_IP ? "ip" : "cosine", NULL};
  char err[512];
  assert_int_equal(warden_create(cdir, &co, err, sizeof err), 0);
  assert_int_equal(warden_open(cdir, NULL, &db, err, sizeof err), 0);
  /* every other collection adds a source-permission callback resolver */
  use_resolver = (int)(ncollections % 2);
  if (use_resolver) assert_int_equal(warden_set_resolver(db, cb_resolver, NULL), 0);
  ncollections++;
  struct timespec ts;
  for (long step = 0;; step++) {
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ts.tv_sec + ts.tv_nsec / 1e9 > deadline || ndocs_used >= MAXDOCS - 40) break;
    if (rr(3) == 0)
      ingest_round(1 + rr(rr(4) == 0 ? 30 : 4));
    else
      mutate();
    nsteps++;
    for (int i = 0; i < 4; i++) {
      batch_mode = rr(5) == 0;
      run_query();
    }
    if (step % 50 == 49) reopen_and_check(cdir);
  }
  reopen_and_check(cdir);
  warden_close(db);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 300;
  rs = argc > 2 ? strtoull(argv[2], NULL, 0) : 0x50a4;
  if (!rs) rs = 1;
  buf = malloc(4 << 20);
  (void)random_rules; /* grants / command resolvers: covered by test_oracle */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double deadline = ts.tv_sec + ts.tv_nsec / 1e9 + secs;
  static const int metrics[] = {WARDEN_METRIC_L2, WARDEN_METRIC_IP, WARDEN_METRIC_COSINE};
  for (int c = 0;; c++) {
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ts.tv_sec + ts.tv_nsec / 1e9 > deadline) break;
    soak_collection(metrics[c % 3], deadline);
  }
  free(buf);
  printf("soak: %.0f s, %ld collections, %ld write steps, %ld oracle queries compared, %ld leaks, "
         "%ld reopens, %ld clean checks\n",
         secs, ncollections, nsteps, nqueries, nleaks, nreopens, nchecks);
  return nleaks ? 1 : 0;
}
