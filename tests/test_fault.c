/*
 * test_fault.c -- allocation-failure injection along the public API paths.
 *
 * A counting allocator (warden_set_allocator) is installed once, before
 * any handle exists, and never removed.  For every public call in the table
 * below and for every N, the N-th allocation the call makes fails (SQLite's
 * "OOM at the N-th malloc", transient: later allocations succeed again),
 * until a run of the call makes fewer than N allocations.  Each failing run
 * must:
 *   - return a negative documented code (WARDEN_ENOMEM; a few calls may
 *     also legitimately report the failure as WARDEN_EIO), never 0 with a
 *     half-done job and never crash;
 *   - leak nothing: after the handle is closed, every block the allocator
 *     handed out has been returned (the allocator counts; ASan/LSan in the
 *     sanitized run check the third-party side);
 *   - for writes, change nothing: warden_export() of the collection is
 *     byte-identical before and after, and the same call with no failure
 *     then succeeds and gives the same export as a clean reference run.
 * Each trial starts from a fresh copy of a template collection, so trials
 * are independent.  LMDB, CRoaring and jansson allocate with malloc, not
 * through the hook; their failures are out of scope here.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "warden.h"

/* LeakSanitizer's entry point, present only in sanitized builds. */
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

/* ------------------------------------------------------ the allocator */

typedef struct { size_t size; size_t magic; } hdr;
#define MAGIC 0x57415244454eULL
static long live_blocks, nallocs, fail_at; /* fail_at 0: never */
static int failed;

static void *f_malloc(void *ctx, size_t n) {
  (void)ctx;
  nallocs++;
  if (fail_at && nallocs == fail_at) {
    failed = 1;
    return NULL;
  }
  hdr *h = malloc(sizeof *h + n);
  if (!h) return NULL;
  h->size = n;
  h->magic = MAGIC;
  live_blocks++;
  return h + 1;
}

static void f_free(void *ctx, void *p) {
  (void)ctx;
  if (!p) return;
  hdr *h = (hdr *)p - 1;
  if (h->magic != MAGIC) fail_msg("free of a block the hook did not allocate");
  h->magic = 0;
  live_blocks--;
  free(h);
}

static void *f_realloc(void *ctx, void *p, size_t n) {
  if (!p) return f_malloc(ctx, n);
  nallocs++;
  if (fail_at && nallocs == fail_at) {
    failed = 1;
    return NULL;
  }
  hdr *h = (hdr *)p - 1;
  if (h->magic != MAGIC) fail_msg("realloc of a block the hook did not allocate");
  hdr *nh = realloc(h, sizeof *nh + n);
  if (!nh) return NULL;
  nh->size = n;
  return nh + 1;
}

/* ------------------------------------------------------- collections */

#define DIM 4
static char root[256], tmpl[300], work[300];

static const char *DOCS =
    "{\"doc_id\":\"a\",\"source\":\"s3://b/a\",\"namespace\":\"/t1\",\"metadata\":{\"year\":3,"
    "\"kind\":\"charm\",\"tags\":[\"red\",\"blue\"],\"w\":0.5,\"ok\":true},\"acl\":{\"allow\":"
    "[\"user:u1\",\"group:g1\"],\"deny\":[\"user:u9\"]},\"chunks\":[{\"text\":\"a0\",\"embedding\":"
    "[1,0,0,0]},{\"text\":\"a1\",\"embedding\":[0,1,0,0]}]}\n"
    "{\"doc_id\":\"b\",\"source\":\"file:///x/b\",\"namespace\":\"/t2/x\",\"metadata\":{\"year\":5,"
    "\"kind\":\"hex\"},\"acl\":{\"allow\":[\"*\"],\"deny\":[]},\"chunks\":[{\"text\":\"b0\","
    "\"embedding\":[0,0,1,0]}]}\n"
    "{\"doc_id\":\"c\",\"source\":\"s3://b/c\",\"namespace\":\"/t1/deep\",\"metadata\":{\"tags\":"
    "[\"gold\"]},\"acl\":{\"allow\":[\"group:g2\"],\"deny\":[]},\"chunks\":[{\"text\":\"c0\","
    "\"embedding\":[0,0,0,1]},{\"text\":\"c1\",\"embedding\":[1,1,0,0]}]}\n";

static const char *NEWDOCS =
    "{\"doc_id\":\"a\",\"source\":\"s3://b/a2\",\"namespace\":\"/t3\",\"metadata\":{\"year\":7,"
    "\"kind\":\"new\",\"tags\":[\"x\"]},\"acl\":{\"allow\":[\"user:u2\"],\"deny\":[]},\"chunks\":"
    "[{\"text\":\"new a\",\"embedding\":[2,2,2,2]}]}\n"
    "{\"doc_id\":\"d\",\"source\":\"s3://b/d\",\"namespace\":\"/t1\",\"metadata\":{\"w\":1.5,"
    "\"ok\":false,\"fresh\":\"f\"},\"acl\":{\"allow\":[\"user:u1\"],\"deny\":[]},\"chunks\":"
    "[{\"text\":\"d0\",\"embedding\":[3,0,0,1]},{\"text\":\"d1\",\"embedding\":[0,3,1,0]}]}\n";

static void sh(const char *fmt, ...) {
  char cmd[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  if (system(cmd) != 0) fail_msg("command failed: %s", cmd);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

typedef struct { char *p; size_t n, cap; } sbuf;
static int sb_write(void *ctx, const char *b, size_t n) {
  sbuf *s = ctx;
  if (s->n + n + 1 > s->cap) {
    s->cap = (s->n + n + 1) * 2;
    s->p = realloc(s->p, s->cap);
  }
  memcpy(s->p + s->n, b, n);
  s->n += n;
  s->p[s->n] = 0;
  return 0;
}

/* The export of the collection at dir, as a malloc'd string (no faults). */
static char *export_of(const char *dir) {
  warden *db;
  char err[512];
  long saved = fail_at;
  fail_at = 0;
  if (warden_open(dir, NULL, &db, err, sizeof err)) fail_msg("open %s: %s", dir, err);
  sbuf s = {NULL, 0, 0};
  sb_write(&s, "", 0);
  if (warden_export(db, sb_write, &s)) fail_msg("export: %s", warden_errmsg(db));
  /* principals are not exported: append the directory entries we touch */
  const char *ps[] = {"user:u1", "user:u2", "group:g1"};
  for (int i = 0; i < 3; i++) {
    char *j = NULL;
    if (warden_principal_get(db, ps[i], &j)) fail_msg("principal_get: %s", warden_errmsg(db));
    sb_write(&s, j, strlen(j));
    warden_free(j);
  }
  warden_close(db);
  fail_at = saved;
  return s.p;
}

static void fresh_work(void) {
  sh("rm -rf '%s' && cp -r '%s' '%s'", work, tmpl, work);
}

static int setup(void **state) {
  (void)state;
  static const warden_allocator a = {f_malloc, f_realloc, f_free, NULL};
  warden_set_allocator(&a);
  snprintf(root, sizeof root, "/tmp/warden-fault-XXXXXX");
  if (!mkdtemp(root)) return -1;
  snprintf(tmpl, sizeof tmpl, "%s/tmpl", root);
  snprintf(work, sizeof work, "%s/work", root);
  char err[512];
  warden_create_opts co = {DIM, "l2", NULL};
  if (warden_create(tmpl, &co, err, sizeof err)) return -1;
  warden *db;
  if (warden_open(tmpl, NULL, &db, err, sizeof err)) return -1;
  if (warden_ingest_buffer(db, "seed", DOCS, strlen(DOCS), NULL, NULL)) return -1;
  const char *g[] = {"group:g1"};
  if (warden_principal_set(db, "user:u1", g, 1, NULL)) return -1;
  warden_close(db);
  char p[400];
  snprintf(p, sizeof p, "%s/acl.jsonl", root);
  write_file(p, "{\"doc_id\":\"a\",\"allow\":[\"user:u2\"],\"deny\":[]}\n"
                "{\"doc_id\":\"c\",\"allow\":[\"*\"],\"deny\":[\"group:g1\"]}\n"
                "{\"doc_id\":\"zz\",\"allow\":[],\"deny\":[]}\n");
  snprintf(p, sizeof p, "%s/new.jsonl", root);
  write_file(p, NEWDOCS);
  snprintf(p, sizeof p, "%s/princ.jsonl", root);
  write_file(p, "{\"principal\":\"user:u2\",\"groups\":[\"group:g1\",\"group:g2\"]}\n"
                "{\"principal\":\"group:g1\",\"groups\":[\"group:g2\"]}\n");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  sh("rm -rf '%s'", root);
  return 0;
}

/* ------------------------------------------------------- the calls */

typedef struct op {
  const char *name;
  int write;                                /* must leave the export unchanged on failure */
  int (*run)(warden *db, char *err, size_t errlen); /* db NULL for create/open */
} op;


static int op_ingest(warden *db, char *e, size_t l) {
  (void)e; (void)l;
  warden_ingest_report rep;
  int rc = warden_ingest_buffer(db, "new.jsonl", NEWDOCS, strlen(NEWDOCS), NULL, &rep);
  if (rc == 0) warden_free(rep.errors);
  return rc;
}
static int op_ingest_kg(warden *db, char *e, size_t l) {
  (void)e; (void)l;
  static const char *bad = "{\"doc_id\":\"q\",\"chunks\":[{\"text\":\"t\",\"embedding\":[1]}]}\n";
  char buf[4096];
  snprintf(buf, sizeof buf, "%s%s", NEWDOCS, bad);
  warden_ingest_opts o = {1, NULL, NULL};
  warden_ingest_report rep;
  int rc = warden_ingest_buffer(db, "kg.jsonl", buf, strlen(buf), &o, &rep);
  if (rc == 0) warden_free(rep.errors);
  return rc;
}
static int op_ingest_file(warden *db, char *e, size_t l) {
  (void)e; (void)l;
  char p[400];
  snprintf(p, sizeof p, "%s/new.jsonl", root);
  const char *paths[] = {p};
  return warden_ingest(db, paths, 1, NULL, NULL);
}
static int op_delete(warden *db, char *e, size_t l) {
  (void)e; (void)l;
  const char *ids[] = {"a", "nope", "c"};
  return warden_delete(db, ids, 3, NULL);
}
static int op_acl_set(warden *db, char *e, size_t l) {
  (void)e; (void)l;
  const char *al[] = {"user:u2", "group:g9"}, *dn[] = {"user:u1"};
  return warden_acl_set(db, "a", al, 2, dn, 1, NULL);
}
static int op_acl_sync(warden *db, char *e, size_t l) {
  (void)e; (void)l;
  char p[400];
  snprintf(p, sizeof p, "%s/acl.jsonl", root);
  return warden_acl_sync(db, p, NULL, NULL);
}
static int op_principal_set(warden *db, char *e, size_t l) {
  (void)e; (void)l;
  const char *g[] = {"group:g2", "group:g3"};
  return warden_principal_set(db, "user:u2", g, 2, NULL);
}
static int op_principals_sync(warden *db, char *e, size_t l) {
  (void)e; (void)l;
  char p[400];
  snprintf(p, sizeof p, "%s/princ.jsonl", root);
  return warden_principals_sync(db, p, NULL, NULL);
}
static int op_query(warden *db, char *e, size_t l) {
  (void)e; (void)l;
  const char *gs[] = {"group:g2"}, *ns[] = {"/t1", "/t2"};
  warden_query_opts o;
  memset(&o, 0, sizeof o);
  o.principal = "user:u1";
  o.groups = gs;
  o.ngroups = 1;
  o.namespaces = ns;
  o.nnamespaces = 2;
  o.filter = "{\"orAll\":[{\"lessThan\":{\"key\":\"year\",\"value\":9}},"
             "{\"listContains\":{\"key\":\"tags\",\"value\":\"gold\"}},"
             "{\"stringContains\":{\"key\":\"kind\",\"value\":\"ar\"}}]}";
  o.k = 3;
  o.explain = 1;
  float q[2 * DIM] = {1, 0, 0, 0, 0, 1, 1, 0};
  warden_results *r = NULL;
  int rc = warden_query(db, q, 2, &o, &r);
  if (rc == 0) {
    /* a successful query must be a correct one: a, c visible (u1 via g1, g2) */
    if (warden_results_count(r, 0) != 3) fail_msg("query under fault: %zu hits", warden_results_count(r, 0));
    warden_results_free(r);
  }
  return rc;
}
static int op_query_plain(warden *db, char *e, size_t l) {
  (void)e; (void)l;
  warden_query_opts o;
  memset(&o, 0, sizeof o);
  o.principal = "user:u9";
  o.filter = "{\"year\":{\"$gte\":1},\"kind\":{\"$in\":[\"hex\",\"charm\"]}}";
  float q[DIM] = {0, 0, 1, 0};
  warden_results *r = NULL;
  int rc = warden_query(db, q, 1, &o, &r);
  if (rc == 0) {
    if (warden_results_count(r, 0) != 1) fail_msg("query under fault: wrong count");
    warden_results_free(r);
  }
  return rc;
}
static int op_stats(warden *db, char *e, size_t l) {
  (void)e; (void)l;
  char *j = NULL;
  int rc = warden_stats(db, &j);
  warden_free(j);
  return rc;
}
static int op_check(warden *db, char *e, size_t l) {
  (void)e; (void)l;
  char *j = NULL;
  int rc = warden_check(db, &j);
  warden_free(j);
  return rc;
}
static int op_export(warden *db, char *e, size_t l) {
  (void)e; (void)l;
  sbuf s = {NULL, 0, 0};
  int rc = warden_export(db, sb_write, &s);
  free(s.p);
  return rc;
}
static int op_acl_get(warden *db, char *e, size_t l) {
  (void)e; (void)l;
  char *j = NULL;
  int rc = warden_acl_get(db, "a", &j);
  warden_free(j);
  return rc;
}
static int op_principal_get(warden *db, char *e, size_t l) {
  (void)e; (void)l;
  char *j = NULL;
  int rc = warden_principal_get(db, "user:u1", &j);
  warden_free(j);
  return rc;
}
static int op_open(warden *db, char *e, size_t l) {
  (void)db;
  warden *h;
  int rc = warden_open(work, NULL, &h, e, l);
  if (rc == 0) warden_close(h);
  return rc;
}
static int op_create(warden *db, char *e, size_t l) {
  (void)db;
  char d[400];
  snprintf(d, sizeof d, "%s/created", work);
  warden_create_opts co = {8, "cosine", NULL};
  return warden_create(d, &co, e, l);
}

static const op OPS[] = {
    {"ingest_buffer", 1, op_ingest},   {"ingest_keep_going", 1, op_ingest_kg},
    {"ingest_file", 1, op_ingest_file}, {"delete", 1, op_delete},
    {"acl_set", 1, op_acl_set},         {"acl_sync", 1, op_acl_sync},
    {"principal_set", 1, op_principal_set}, {"principals_sync", 1, op_principals_sync},
    {"query", 0, op_query},             {"query_plain", 0, op_query_plain},
    {"stats", 0, op_stats},             {"check", 0, op_check},
    {"export", 0, op_export},           {"acl_get", 0, op_acl_get},
    {"principal_get", 0, op_principal_get}, {"open", 0, op_open},
    {"create", 0, op_create},
};

static int is_db_op(const op *o) { return o->run != op_open && o->run != op_create; }

/* One run of o with the n-th allocation failing (n 0: none).  Returns the
 * call's code; *hit says whether the failure point was reached. */
static char last_msg[600];
static int run_once(const op *o, long n, int *hit) {
  char err[512] = "";
  warden *db = NULL;
  if (is_db_op(o)) {
    char e2[512];
    if (warden_open(work, NULL, &db, e2, sizeof e2)) fail_msg("open: %s", e2);
  }
  nallocs = 0;
  failed = 0;
  fail_at = n;
  int rc = o->run(db, err, sizeof err);
  fail_at = 0;
  *hit = failed;
  if (rc && !db && !memchr(err, 0, sizeof err)) fail_msg("%s: unterminated message", o->name);
  if (rc && db && !warden_errmsg(db)[0] && rc != WARDEN_ECORRUPT)
    fail_msg("%s: failed (%d) without a message", o->name, rc);
  snprintf(last_msg, sizeof last_msg, "%s", db ? warden_errmsg(db) : err);
  warden_close(db);
  return rc;
}

static long total_trials, nbugs;

/* A broken promise: report it and go on with the next call, so one run
 * lists every bug. */
#define BUG(...)                  \
  do {                            \
    printf("BUG: " __VA_ARGS__);  \
    printf("\n");                \
    nbugs++;                      \
    goto done;                    \
  } while (0)


static void fault_op(const op *o) {
  /* reference: a clean run, and the export it leaves */
  fresh_work();
  char *before = export_of(work);
  int hit;
  int rc0 = run_once(o, 0, &hit);
  if (o->run == op_check) assert_true(rc0 == 0 || rc0 == WARDEN_ECORRUPT);
  else assert_int_equal(rc0, 0);
  char *after_ok = o->write ? export_of(work) : NULL;
  if (o->write) assert_string_not_equal(before, after_ok);
  long n, wrong = 0;
  int last_wrong = 0;
  for (n = 1;; n++) {
    fresh_work();
    long live0 = live_blocks;
    int rc = run_once(o, n, &hit);
    total_trials++;
    if (live_blocks != live0)
      BUG("%s: failing allocation %ld leaked %ld block(s)", o->name, n, live_blocks - live0);
    if (!hit) {
      if (rc != rc0) BUG("%s: unfaulted rerun returned %d", o->name, rc);
      break;
    }
    if (rc == 0) {
      /* tolerated: the library worked around the failure; then the result
       * must be the clean one */
      if (o->write) {
        char *now = export_of(work);
        if (strcmp(now, after_ok) != 0)
          BUG("%s: allocation %ld failed, call returned 0, but the collection differs", o->name, n);
        free(now);
      }
      continue;
    }
    if (rc != WARDEN_ENOMEM) {
      /* keep going (the other promises still hold or not); one line per
       * distinct wrong code */
      if (rc != last_wrong)
        printf("BUG: %s: allocation %ld failed, returned %d (%s: %s), expected WARDEN_ENOMEM\n",
               o->name, n, rc, warden_strerror(rc), last_msg);
      last_wrong = rc;
      wrong++;
    }
    if (o->write) {
      char *now = export_of(work);
      if (strcmp(now, before) != 0)
        BUG("%s: allocation %ld failed (ENOMEM) but the collection changed", o->name, n);
      free(now);
      /* the same call, allocator healthy: succeeds, same result as clean */
      int h2;
      if (run_once(o, 0, &h2)) BUG("%s: retry after ENOMEM failed", o->name);
      now = export_of(work);
      if (strcmp(now, after_ok) != 0) BUG("%s: retry after ENOMEM gives another collection", o->name);
      free(now);
    }
    if (o->run == op_create) { /* nothing left behind that a retry trips over */
      int h2;
      if (run_once(o, 0, &h2)) BUG("%s: create after a failed create fails", o->name);
    }
  }
  if (wrong) {
    nbugs++;
    printf("  %-18s %ld allocation points, %ld returned the wrong code\n", o->name, n - 1, wrong);
  } else
    printf("  %-18s %ld allocation points, every one failed once: ok\n", o->name, n - 1);
done:
  free(before);
  free(after_ok);
}

static void test_nth_allocation(void **state) {
  (void)state;
  /* each call's series runs in a child, so a crash is reported as that
   * call's failure and the other calls are still tried */
  for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++) {
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      nbugs = 0; /* the parent's count is not this child's */
      fault_op(&OPS[i]);
      /* _exit skips LeakSanitizer's exit check: run it here (sanitized
       * build), so leaks of jansson/CRoaring objects on error paths count */
      if (__lsan_do_recoverable_leak_check && __lsan_do_recoverable_leak_check()) {
        printf("BUG: %s: LeakSanitizer found leaks (see above)\n", OPS[i].name);
        nbugs++;
      }
      fflush(stdout);
      _exit(nbugs ? 1 : 0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st)) {
      printf("BUG: %s: crashed with signal %d under allocation failure (see above)\n", OPS[i].name,
             WTERMSIG(st));
      nbugs++;
    } else if (WEXITSTATUS(st) != 0) {
      printf("BUG: %s: broke a promise or a sanitizer stopped it (exit %d)\n", OPS[i].name,
             WEXITSTATUS(st));
      nbugs++;
    }
  }
  printf("fault: %zu calls, %ld broken promise(s)\n", sizeof OPS / sizeof OPS[0], nbugs);
  assert_int_equal(nbugs, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nth_allocation),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
