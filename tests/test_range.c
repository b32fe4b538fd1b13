/*
 * test_range.c -- numeric range filters over fields with many distinct
 * values, where the store answers from value, 256-bucket and 65536-bucket
 * bitmaps (engine/query.c range_enc).  Every result set is compared with a
 * brute-force evaluation over the documents this test generated.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warden.h"

#define N 3000
static long long xv[N];
static double yv[N];
static int hasx[N], hasy[N];
static uint64_t rs = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}

static long long rint_between(long long a, long long b) {
  return a + (long long)(rnd() % (uint64_t)(b - a + 1));
}

static void test_ranges(void **state) {
  (void)state;
  char dir[] = "/tmp/warden-range-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char cdir[128];
  snprintf(cdir, sizeof cdir, "%s/c", dir);
  warden_create_opts co = {2, "l2", NULL};
  char err[512];
  assert_int_equal(warden_create(cdir, &co, err, sizeof err), 0);
  warden *db;
  assert_int_equal(warden_open(cdir, NULL, &db, err, sizeof err), 0);
  size_t cap = (size_t)N * 300;
  char *buf = malloc(cap), *o = buf;
  for (int i = 0; i < N; i++) {
    /* wide ints incl. negatives and the int64 extremes; floats of every sign
     * and magnitude */
    int pick = (int)(rnd() % 50);
    xv[i] = pick == 0 ? INT64_MIN : pick == 1 ? INT64_MAX : rint_between(-200000, 200000);
    yv[i] = (double)rint_between(-1000000, 1000000) / 7.0 * pow(10, (double)(rnd() % 7) - 3);
    hasx[i] = rnd() % 10 != 0;
    hasy[i] = rnd() % 10 != 0;
    o += sprintf(o, "{\"doc_id\":\"d%d\",\"source\":\"s3://b/%d\",\"metadata\":{", i, i);
    if (hasx[i]) o += sprintf(o, "\"x\":%lld", xv[i]);
    if (hasy[i]) o += sprintf(o, "%s\"y\":%.17g", hasx[i] ? "," : "", yv[i]);
    o += sprintf(o, "},\"acl\":{\"allow\":[\"*\"]},\"chunks\":[{\"text\":\"t\",\"embedding\":[%d,1]}]}\n", i);
  }
  warden_ingest_report rep;
  if (warden_ingest_buffer(db, "r.jsonl", buf, (size_t)(o - buf), NULL, &rep))
    fail_msg("ingest: %s", warden_errmsg(db));
  free(buf);
  static const char *ops[] = {"$gt", "$gte", "$lt", "$lte"};
  int trials = getenv("WARDEN_TEST_QUICK") ? 60 : 300;
  float q[2] = {0, 0};
  for (int t = 0; t < trials; t++) {
    int field = (int)(rnd() % 2), nops = 1 + (int)(rnd() % 2);
    char f[256];
    int op[2];
    long long bx[2];
    double by[2];
    char *p = f + sprintf(f, "{\"%s\":{", field ? "y" : "x");
    for (int j = 0; j < nops; j++) {
      /* two conditions: one lower and one upper bound (no duplicate key) */
      op[j] = nops == 1 ? (int)(rnd() % 4) : (int)(rnd() % 2) + 2 * j;
      if (field) {
        by[j] = hasy[rnd() % N] && rnd() % 2 ? yv[rnd() % N] : (double)rint_between(-200000, 200000) / 3.0;
        p += sprintf(p, "%s\"%s\":%.17g", j ? "," : "", ops[op[j]], by[j]);
      } else {
        bx[j] = rnd() % 3 == 0 ? xv[rnd() % N] : rint_between(-250000, 250000);
        p += sprintf(p, "%s\"%s\":%lld", j ? "," : "", ops[op[j]], bx[j]);
      }
    }
    sprintf(p, "}}");
    int want = 0;
    static int expect[N];
    for (int i = 0; i < N; i++) {
      int ok = field ? hasy[i] : hasx[i];
      for (int j = 0; j < nops && ok; j++) {
        if (field) {
          double v = yv[i], b = by[j];
          ok = op[j] == 0 ? v > b : op[j] == 1 ? v >= b : op[j] == 2 ? v < b : v <= b;
        } else {
          long long v = xv[i], b = bx[j];
          ok = op[j] == 0 ? v > b : op[j] == 1 ? v >= b : op[j] == 2 ? v < b : v <= b;
        }
      }
      expect[i] = ok;
      want += ok;
    }
    warden_query_opts qo;
    memset(&qo, 0, sizeof qo);
    qo.principal = "user:a";
    qo.filter = f;
    qo.k = N;
    warden_results *r;
    if (warden_query(db, q, 1, &qo, &r)) fail_msg("query %s: %s", f, warden_errmsg(db));
    size_t got = warden_results_count(r, 0);
    for (size_t i = 0; i < got; i++) {
      int id = atoi(warden_results_hit(r, 0, i)->doc_id + 1);
      if (!expect[id]) fail_msg("%s: d%d (x=%lld y=%.17g) should not match", f, id, xv[id], yv[id]);
    }
    if ((int)got != want) fail_msg("%s: %zu results, expected %d", f, got, want);
    warden_results_free(r);
  }
  char *chk = NULL;
  assert_int_equal(warden_check(db, &chk), 0);
  warden_free(chk);
  warden_close(db);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_ranges)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
