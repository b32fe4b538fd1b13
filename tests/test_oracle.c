/*
 * test_oracle.c -- randomized differential test of the whole query path
 * against a brute-force oracle written here, independently of the engine.
 *
 * The oracle keeps its own copy of every document (ACL, namespace,
 * metadata, embeddings), its own directory of nested groups, evaluates the
 * stored-ACL rule and the metadata filter semantics of SPEC sections 2 and
 * 4 document by document, and ranks with double precision.  Embeddings are
 * small integers so that float arithmetic in the engine is exact: for l2
 * and ip single queries, the engine's top-k must equal the oracle's id for
 * id, including the tie order (equal distances: the older chunk first).
 * Cosine and batched queries (SGEMM) are compared by score with a small
 * tolerance.  Every returned chunk must be readable: a leak fails at once.
 *
 * The collection is mutated between query rounds (upserts, deletes, ACL
 * changes, group changes) through the public API, on a real LMDB store.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "warden.h"

#include "oracle_model.h"
  }
}

static void run_metric(int m, int rounds, int qper) {
  metric = m;
  memset(docs, 0, sizeof docs);
  memset(dir_user, 0, sizeof dir_user);
  memset(dir_group, 0, sizeof dir_group);
  ndocs_used = 0;
  next_slot = 0;
  snprintf(dir, sizeof dir, "/tmp/warden-oracle-XXXXXX");
  assert_non_null(mkdtemp(dir));
  char cdir[300];
  snprintf(cdir, sizeof cdir, "%s/c", dir);
  warden_create_opts co = {DIM, m == WARDEN_METRIC_L2 ? "l2" : m == WARDEN_METRIC_IP ? "ip" : "cosine", NULL};
  char err[512], cfgpath[400];
  if (use_resolver >= 2) {
    /* a warden.yaml naming the grants resolver or the real example
     * resolver program (build/check-access) with a policy file */
    random_rules();
    snprintf(cfgpath, sizeof cfgpath, "%s/warden.yaml", dir);
    FILE *cf = fopen(cfgpath, "w");
    assert_non_null(cf);
    fprintf(cf, "dimension: %d\nmetric: %s\n", DIM, co.metric);
    if (use_resolver == 2) {
      fprintf(cf, "resolver:\n  type: grants\n");
    } else {
      char cwd[256], pol[400];
      assert_non_null(getcwd(cwd, sizeof cwd));
      snprintf(pol, sizeof pol, "%s/policy.jsonl", dir);
      FILE *pf = fopen(pol, "w");
      assert_non_null(pf);
      for (int i = 0; i < nrules; i++) {
        char pn[24];
        pname(rule_who[i], pn);
        fprintf(pf, "{\"principal\":\"%s\",\"prefix\":\"%s\",\"effect\":\"%s\"}\n", pn,
                rule_prefix[i], rule_deny[i] ? "deny" : "allow");
      }
      fclose(pf);
      fprintf(cf, "resolver:\n  type: command\n  command: [\"%s/build/check-access\", \"%s\"]\n  timeout_ms: 5000\n",
              cwd, pol);
    }
    fclose(cf);
    co.dim = 0;
    co.metric = NULL;
    co.config_path = cfgpath;
  }
  assert_int_equal(warden_create(cdir, &co, err, sizeof err), 0);
  assert_int_equal(warden_open(cdir, NULL, &db, err, sizeof err), 0);
  if (use_resolver == 1) assert_int_equal(warden_set_resolver(db, cb_resolver, NULL), 0);
  for (int r = 0; r < rounds; r++) {
    ingest_round(10 + rr(30));
    for (int i = 0; i < 3; i++) mutate();
    for (int i = 0; i < qper; i++) {
      batch_mode = rr(5) == 0;
      run_query();
      if (rr(4) == 0) run_agent_query(); /* on-behalf-of */
    }
  }
  char *rep = NULL;
  int rc = warden_check(db, &rep);
  if (rc) fail_msg("check: %s", rep ? rep : warden_errmsg(db));
  warden_free(rep);
  warden_close(db);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static int quick(void) { return getenv("WARDEN_TEST_QUICK") != NULL; }

static void test_oracle_l2(void **s) {
  (void)s;
  rs = 0x1234567;
  run_metric(WARDEN_METRIC_L2, quick() ? 8 : 30, quick() ? 60 : 150);
}
static void test_oracle_ip(void **s) {
  (void)s;
  rs = 0x7654321;
  run_metric(WARDEN_METRIC_IP, quick() ? 8 : 25, quick() ? 60 : 150);
}
static void test_oracle_cosine(void **s) {
  (void)s;
  rs = 0xabcdef1;
  run_metric(WARDEN_METRIC_COSINE, quick() ? 8 : 25, quick() ? 60 : 150);
}

static void test_oracle_resolver(void **s) {
  (void)s;
  rs = 0x5151515;
  use_resolver = 1;
  run_metric(WARDEN_METRIC_L2, quick() ? 6 : 20, quick() ? 50 : 100);
  use_resolver = 0;
  assert_true(resolver_calls > 0);
  /* the failing path was exercised, and it was visible to the caller */
  printf("oracle: callback resolver: %ld calls, %ld failed, %ld degraded answers\n",
         resolver_calls, resolver_failures, degraded_answers);
  assert_true(resolver_failures > 0);
  assert_true(degraded_answers > 0);
}

static void test_oracle_grants(void **s) {
  (void)s;
  rs = 0x2468ace;
  use_resolver = 2;
  run_metric(WARDEN_METRIC_L2, quick() ? 6 : 20, quick() ? 50 : 100);
  use_resolver = 0;
}

static void test_oracle_command(void **s) {
  (void)s;
  if (access("build/check-access", X_OK) != 0) {
    fail_msg("build/check-access is missing: run the tests from the repository root after "
             "`make build/check-access`");
  }
  rs = 0x1357bdf;
  use_resolver = 3;
  run_metric(WARDEN_METRIC_L2, quick() ? 4 : 10, quick() ? 40 : 100);
  use_resolver = 0;
}

static void test_report(void **s) {
  (void)s;
  printf("oracle: %ld queries compared, %ld leaks\n", nqueries, nleaks);
  assert_true(nqueries >= (quick() ? 1000 : 10000));
  assert_int_equal(nleaks, 0);
  printf("oracle: %ld on-behalf-of (agent) queries compared, %ld hits\n", nagent_queries, nagent_hits);
  assert_true(nagent_queries >= (quick() ? 200 : 2000));
  assert_true(nagent_hits > 0);
}

int main(void) {
  buf = malloc(4 << 20);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_oracle_l2),
      cmocka_unit_test(test_oracle_ip),
      cmocka_unit_test(test_oracle_cosine),
      cmocka_unit_test(test_oracle_resolver),
      cmocka_unit_test(test_oracle_grants),
      cmocka_unit_test(test_oracle_command),
      cmocka_unit_test(test_report),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  free(buf);
  return rc;
}
