/*
 * test_concurrency.c -- queries from many threads while other processes
 * write; killed readers; handles used after fork(); revoke visibility
 * across processes; tenant isolation under near-duplicate embeddings.
 *
 *  1. threads_vs_writer: 4 threads query one handle while a forked writer
 *     process (its own handle) upserts, deletes and re-ACLs 48 documents.
 *     After each write returns, the writer publishes in shared memory the
 *     set of documents user:reader may read at that revision.  Each query
 *     learns its snapshot revision and must return exactly that set
 *     (k = 64 >= all documents): no revoked document, none missing.
 *  2. killed_readers: child processes querying in a loop are SIGKILLed
 *     mid-query; a later open clears their stale LMDB reader slots (checked
 *     with mdb_reader_list on the lock file) and writes still commit.
 *  3. fork_refused: a handle used in a child after fork() fails with
 *     WARDEN_EFORK on every entry point tried, and keeps working in the
 *     parent.
 *  4. revoke_other_process: 200 times, acl_set revokes a document; a query
 *     started afterwards in another process (a fresh child for half of the
 *     rounds, a long-lived one with its own open handle for the others)
 *     must not return it.  Then the document is granted back.
 *  5. tenant_isolation: 10 tenants with near-duplicate embeddings (one
 *     base vector + tiny noise) in their own namespaces, readable by their
 *     own group (from the directory or asserted by the caller).
 *     WARDEN_ISOLATION_QUERIES (default 10000; 2000 quick) queries from 4
 *     threads as random tenants' users, with and without namespace
 *     prefixes: zero foreign chunks allowed.
 * Built by the generic test rules, and under ThreadSanitizer by
 * `make test-tsan` (tests/reliability.mk).
 */
#include <lmdb.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "warden.h"

#define DIM 8
static int quick(void) { return getenv("WARDEN_TEST_QUICK") != NULL; }

static char root[256];

static void sh(const char *fmt, ...) {
  char cmd[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  if (system(cmd) != 0) fail_msg("command failed: %s", cmd);
}

static warden *make(const char *name, char *dir, size_t dl) {
  snprintf(dir, dl, "%s/%s", root, name);
  char err[512];
  warden_create_opts co = {DIM, "l2", NULL};
  if (warden_create(dir, &co, err, sizeof err)) fail_msg("create: %s", err);
  warden *db;
  if (warden_open(dir, NULL, &db, err, sizeof err)) fail_msg("open: %s", err);
  return db;
}

static void doc_line(char *o, int i, const char *allow, const char *ns, int v) {
  sprintf(o,
          "{\"doc_id\":\"d%02d\",\"source\":\"s3://b/d%02d\",\"namespace\":\"%s\",\"acl\":"
          "{\"allow\":[%s],\"deny\":[]},\"chunks\":[{\"text\":\"text %d v%d\",\"embedding\":"
          "[%d,1,0,0,0,0,0,%d]}]}\n",
          i, i, ns, allow, i, v, i % 5, v % 3);
}

static void child_signals_default(void) {
  int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
}

/* ------------------------------------------------ 1. threads vs writer */

#define NTOG 48
#define MAXREV 20000
typedef struct shared {
  volatile uint64_t mask[MAXREV]; /* readable docs at revision r */
  volatile int published[MAXREV];
  volatile int writer_done;
} shared;
static shared *sh_mem;
static char tdir[300];
static warden *tdb;
static volatile int stop_readers;
static long t_queries, t_bad;
static pthread_mutex_t t_lock = PTHREAD_MUTEX_INITIALIZER;

static void publish(uint64_t rev, uint64_t mask) {
  if (rev >= MAXREV) return;
  sh_mem->mask[rev] = mask;
  __atomic_store_n(&sh_mem->published[rev], 1, __ATOMIC_RELEASE);
}

static void writer_process(int nops) {
  warden *db;
  char err[512];
  if (warden_open(tdir, NULL, &db, err, sizeof err)) _exit(2);
  uint64_t mask = 0;
  for (int i = 0; i < NTOG; i++) mask |= 1ULL << i; /* all readable initially */
  unsigned s = 77;
  char line[1024];
  for (int op = 0; op < nops; op++) {
    s = s * 1103515245u + 12345u;
    int i = (int)((s >> 8) % NTOG), kind = (int)((s >> 20) % 4);
    char id[8];
    snprintf(id, sizeof id, "d%02d", i);
    const char *ids[] = {id};
    warden_write_report rep = {0, 0, 0, 0};
    int rc;
    uint64_t rev;
    if (kind == 0) { /* revoke */
      const char *al[] = {"user:other"};
      if ((mask >> i & 1) == 0 && (s & 1)) continue;
      rc = warden_acl_set(db, id, al, 1, NULL, 0, &rep);
      if (rc == WARDEN_ENOTFOUND) continue;
      rev = rep.revision;
      mask &= ~(1ULL << i);
    } else if (kind == 1) { /* grant (via group) */
      const char *al[] = {"group:readers", "user:other"};
      rc = warden_acl_set(db, id, al, 2, NULL, 0, &rep);
      if (rc == WARDEN_ENOTFOUND) continue;
      rev = rep.revision;
      mask |= 1ULL << i;
    } else if (kind == 2) { /* delete */
      rc = warden_delete(db, ids, 1, &rep);
      rev = rep.revision;
      if (rc == 0 && rep.changed == 0) continue; /* nothing committed */
      mask &= ~(1ULL << i);
    } else { /* upsert, readable or not */
      int ok = (s >> 3) & 1;
      doc_line(line, i, ok ? "\"user:reader\"" : "\"user:other\"", "/w", op);
      warden_ingest_report ir;
      rc = warden_ingest_buffer(db, "w", line, strlen(line), NULL, &ir);
      rev = ir.revision;
      mask = ok ? mask | 1ULL << i : mask & ~(1ULL << i);
    }
    if (rc) _exit(3);
    if (rc == 0 && rev < MAXREV && !sh_mem->published[rev]) publish(rev, mask);
  }
  warden_close(db);
  sh_mem->writer_done = 1;
  _exit(0);
}

static void *reader_thread(void *arg) {
  (void)arg;
  long q = 0, bad = 0;
  warden_query_opts o;
  memset(&o, 0, sizeof o);
  o.principal = "user:reader";
  o.k = 64;
  float v[DIM] = {1, 1, 0, 0, 0, 0, 0, 1};
  while (!__atomic_load_n(&stop_readers, __ATOMIC_ACQUIRE)) {
    warden_results *r;
    if (warden_query(tdb, v, 1, &o, &r)) {
      bad++;
      break;
    }
    uint64_t rev = warden_results_revision(r);
    uint64_t got = 0;
    for (size_t i = 0; i < warden_results_count(r, 0); i++)
      got |= 1ULL << atoi(warden_results_hit(r, 0, i)->doc_id + 1);
    warden_results_free(r);
    if (rev >= MAXREV) break;
    /* the writer publishes just after its call returns: wait for it */
    for (int spin = 0; !__atomic_load_n(&sh_mem->published[rev], __ATOMIC_ACQUIRE); spin++) {
      if (spin > 200000) {
        printf("revision %llu never published\n", (unsigned long long)rev);
        bad++;
        goto out;
      }
      usleep(10);
    }
    if (got != sh_mem->mask[rev]) {
      printf("revision %llu: returned %llx, readable %llx\n", (unsigned long long)rev,
             (unsigned long long)got, (unsigned long long)sh_mem->mask[rev]);
      bad++;
    }
    q++;
  }
out:
  pthread_mutex_lock(&t_lock);
  t_queries += q;
  t_bad += bad;
  pthread_mutex_unlock(&t_lock);
  return NULL;
}

static void test_threads_vs_writer(void **st) {
  (void)st;
  sh_mem = mmap(NULL, sizeof *sh_mem, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(sh_mem != MAP_FAILED);
  memset((void *)sh_mem, 0, sizeof *sh_mem);
  tdb = make("threads", tdir, sizeof tdir);
  static char buf[NTOG * 400];
  char *o = buf;
  for (int i = 0; i < NTOG; i++) {
    doc_line(o, i, "\"group:readers\"", "/w", 0);
    o += strlen(o);
  }
  warden_ingest_report ir;
  assert_int_equal(warden_ingest_buffer(tdb, "init", buf, strlen(buf), NULL, &ir), 0);
  const char *g[] = {"group:readers"};
  warden_write_report wr;
  assert_int_equal(warden_principal_set(tdb, "user:reader", g, 1, &wr), 0);
  publish(wr.revision, NTOG == 64 ? ~0ULL : (1ULL << NTOG) - 1);
  int nops = quick() ? 300 : 1500;
  fflush(stdout);
  pid_t w = fork();
  assert_true(w >= 0);
  if (w == 0) {
    child_signals_default();
    writer_process(nops);
  }
  pthread_t th[4];
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, reader_thread, NULL), 0);
  int status;
  assert_int_equal(waitpid(w, &status, 0), w);
  usleep(20000);
  __atomic_store_n(&stop_readers, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  printf("threads_vs_writer: %d writes, %ld queries checked, %ld wrong\n", nops, t_queries, t_bad);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(t_bad, 0);
  assert_true(t_queries > 0);
  char *js;
  assert_int_equal(warden_check(tdb, &js), 0);
  warden_free(js);
  warden_close(tdb);
  munmap((void *)sh_mem, sizeof *sh_mem);
}

/* ------------------------------------------------- 2. killed readers */

static int put_line(const char *msg, void *ctx) { return fputs(msg, ctx); }

static int stale_readers(const char *dir) {
  char store[400];
  snprintf(store, sizeof store, "%s/store", dir);
  MDB_env *env;
  if (mdb_env_create(&env)) _exit(255);
  mdb_env_set_maxdbs(env, 16);
  if (mdb_env_open(env, store, MDB_RDONLY | MDB_NOTLS, 0644)) _exit(255);
  /* count reader slots whose process is gone, without clearing them */
  int dead = 0;
  FILE *f = tmpfile();
  mdb_reader_list(env, put_line, f);
  rewind(f);
  char line[256];
  while (fgets(line, sizeof line, f)) {
    int pid;
    if (sscanf(line, " %d", &pid) == 1 && pid > 0 && kill(pid, 0) != 0) dead++;
  }
  fclose(f);
  mdb_env_close(env);
  return dead;
}

/* In a child: optionally warden_open (which must clear stale readers), then
 * count stale slots.  Returns the count. */
static int in_child_count(const char *dir, int open_first) {
  fflush(stdout);
  pid_t p = fork();
  assert_true(p >= 0);
  if (p == 0) {
    child_signals_default();
    if (open_first) {
      warden *h;
      char err[512];
      if (warden_open(dir, NULL, &h, err, sizeof err)) _exit(255);
      warden_close(h);
    }
    int n = stale_readers(dir);
    _exit(n > 200 ? 200 : n);
  }
  int status;
  assert_int_equal(waitpid(p, &status, 0), p);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 255);
  return WEXITSTATUS(status);
}

static void test_killed_readers(void **st) {
  (void)st;
  char dir[300];
  warden *db = make("killed", dir, sizeof dir);
  static char buf[64 * 400];
  char *o = buf;
  for (int i = 0; i < 40; i++) {
    doc_line(o, i, "\"*\"", "/k", 0);
    o += strlen(o);
  }
  assert_int_equal(warden_ingest_buffer(db, "init", buf, strlen(buf), NULL, NULL), 0);
  int nkill = quick() ? 8 : 24, stale_total = 0;
  for (int i = 0; i < nkill; i++) {
    fflush(stdout);
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
      child_signals_default();
      warden *h;
      char err[512];
      if (warden_open(dir, NULL, &h, err, sizeof err)) _exit(2);
      warden_query_opts q;
      memset(&q, 0, sizeof q);
      q.principal = "user:x";
      q.k = 5;
      float v[DIM] = {1, 2, 3, 4, 5, 6, 7, 8};
      for (;;) { /* until killed */
        warden_results *r;
        if (warden_query(h, v, 1, &q, &r) == 0) warden_results_free(r);
      }
    }
    usleep(20000 + (useconds_t)(i * 1777 % 30000));
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
    /* counted after every kill: the next child's warden_open clears the
     * stale slot again (mdb_reader_check), so only a running total shows
     * that kills really happened mid-query */
    stale_total += in_child_count(dir, 0);
  }
  /* Counted in children while this process keeps the environment open:
   * LMDB resets the reader table when the first process opens it, which
   * would hide stale slots; and one process must not open an environment
   * twice. */
  int before = stale_total, after = in_child_count(dir, 1);
  printf("killed_readers: %d readers killed mid-query, %d stale slots before a warden_open, %d "
         "after\n", nkill, before, after);
  assert_true(before > 0); /* else the test killed nobody mid-query */
  assert_int_equal(after, 0);
  /* writes still commit and are visible */
  char line[512];
  doc_line(line, 99, "\"user:x\"", "/k", 1);
  warden_ingest_report ir;
  assert_int_equal(warden_ingest_buffer(db, "w", line, strlen(line), NULL, &ir), 0);
  char *js;
  assert_int_equal(warden_stats(db, &js), 0);
  assert_non_null(strstr(js, "\"documents\":41"));
  warden_free(js);
  warden_close(db);
}

/* --------------------------------------------------- 3. fork refused */

static void test_fork_refused(void **st) {
  (void)st;
  char dir[300];
  warden *db = make("fork", dir, sizeof dir);
  char line[512];
  doc_line(line, 1, "\"*\"", "/f", 0);
  assert_int_equal(warden_ingest_buffer(db, "w", line, strlen(line), NULL, NULL), 0);
  fflush(stdout);
  pid_t p = fork();
  assert_true(p >= 0);
  if (p == 0) {
    child_signals_default();
    int bad = 0;
    warden_query_opts q;
    memset(&q, 0, sizeof q);
    q.principal = "user:x";
    float v[DIM] = {1};
    warden_results *r;
    char *js;
    const char *ids[] = {"d01"};
    const char *al[] = {"user:y"};
    bad |= warden_query(db, v, 1, &q, &r) != WARDEN_EFORK;
    bad |= warden_stats(db, &js) != WARDEN_EFORK;
    bad |= warden_check(db, &js) != WARDEN_EFORK;
    bad |= warden_ingest_buffer(db, "w", line, strlen(line), NULL, NULL) != WARDEN_EFORK;
    bad |= warden_delete(db, ids, 1, NULL) != WARDEN_EFORK;
    bad |= warden_acl_set(db, "d01", al, 1, NULL, 0, NULL) != WARDEN_EFORK;
    bad |= warden_acl_get(db, "d01", &js) != WARDEN_EFORK;
    bad |= warden_principal_set(db, "user:x", al, 0, NULL) != WARDEN_EFORK;
    bad |= warden_principal_get(db, "user:x", &js) != WARDEN_EFORK;
    _exit(bad ? 1 : 0);
  }
  int status;
  assert_int_equal(waitpid(p, &status, 0), p);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("a call in the child after fork() was not refused with WARDEN_EFORK");
  char *js;
  assert_int_equal(warden_stats(db, &js), 0); /* the parent is unaffected */
  warden_free(js);
  warden_close(db);
}

/* ------------------------------------------ 4. revoke, other process */

/* Query as user:victim in a handle h; 1 if d07 is returned. */
static int sees_d07(warden *h) {
  warden_query_opts q;
  memset(&q, 0, sizeof q);
  q.principal = "user:victim";
  q.k = 50;
  float v[DIM] = {2, 1, 0, 0, 0, 0, 0, 0};
  warden_results *r;
  if (warden_query(h, v, 1, &q, &r)) return -1;
  int seen = 0;
  for (size_t i = 0; i < warden_results_count(r, 0); i++)
    if (strcmp(warden_results_hit(r, 0, i)->doc_id, "d07") == 0) seen = 1;
  warden_results_free(r);
  return seen;
}

static void test_revoke_other_process(void **st) {
  (void)st;
  char dir[300];
  warden *db = make("revoke", dir, sizeof dir);
  static char buf[20 * 400];
  char *o = buf;
  for (int i = 0; i < 20; i++) {
    doc_line(o, i, "\"user:victim\"", "/r", 0);
    o += strlen(o);
  }
  assert_int_equal(warden_ingest_buffer(db, "init", buf, strlen(buf), NULL, NULL), 0);
  /* the long-lived other process: opens its handle once, queries on demand */
  int req[2], ans[2];
  assert_int_equal(pipe(req), 0);
  assert_int_equal(pipe(ans), 0);
  fflush(stdout);
  pid_t srv = fork();
  assert_true(srv >= 0);
  if (srv == 0) {
    child_signals_default();
    close(req[1]); /* else read() never sees end of file */
    close(ans[0]);
    warden *h;
    char err[512];
    if (warden_open(dir, NULL, &h, err, sizeof err)) _exit(2);
    char c;
    while (read(req[0], &c, 1) == 1) {
      char a = (char)('0' + sees_d07(h));
      if (write(ans[1], &a, 1) != 1) break;
    }
    warden_close(h);
    _exit(0);
  }
  int rounds = 200, leaks = 0;
  const char *revoked[] = {"user:someone-else"}, *granted[] = {"user:victim"};
  for (int i = 0; i < rounds; i++) {
    assert_int_equal(warden_acl_set(db, "d07", revoked, 1, NULL, 0, NULL), 0);
    int seen;
    if (i % 2 == 0) { /* a process started after the revoke returned */
      fflush(stdout);
      pid_t p = fork();
      assert_true(p >= 0);
      if (p == 0) {
        child_signals_default();
        close(req[1]);
        warden *h;
        char err[512];
        if (warden_open(dir, NULL, &h, err, sizeof err)) _exit(2);
        int s = sees_d07(h);
        warden_close(h);
        _exit(s == 0 ? 0 : s == 1 ? 1 : 2);
      }
      int status;
      assert_int_equal(waitpid(p, &status, 0), p);
      assert_true(WIFEXITED(status));
      assert_true(WEXITSTATUS(status) != 2);
      seen = WEXITSTATUS(status);
    } else { /* a process that was already running, its handle open */
      char c = 'q', a = 0;
      assert_int_equal(write(req[1], &c, 1), 1);
      assert_int_equal(read(ans[0], &a, 1), 1);
      assert_true(a == '0' || a == '1');
      seen = a == '1';
    }
    leaks += seen;
    assert_int_equal(warden_acl_set(db, "d07", granted, 1, NULL, 0, NULL), 0);
    if (i % 10 == 0) { /* and the grant is visible too */
      char c = 'q', a = 0;
      assert_int_equal(write(req[1], &c, 1), 1);
      assert_int_equal(read(ans[0], &a, 1), 1);
      assert_int_equal(a, '1');
    }
  }
  close(req[1]);
  close(ans[0]);
  waitpid(srv, NULL, 0);
  close(req[0]);
  close(ans[1]);
  printf("revoke_other_process: %d revokes, %d later queries in other processes saw the document\n",
         rounds, leaks);
  assert_int_equal(leaks, 0);
  warden_close(db);
}

/* ------------------------------------------------ 5. tenant isolation */

#define NTEN 10
#define DOCS_PER_TEN 30
static warden *idb;
static long iso_queries, iso_foreign, iso_errors, iso_hits;
static int iso_target;

static void *iso_thread(void *arg) {
  unsigned s = (unsigned)(uintptr_t)arg * 2654435761u + 1;
  long q = 0, foreign = 0, errors = 0, hits = 0;
  for (;;) {
    pthread_mutex_lock(&t_lock);
    int go = iso_queries < iso_target;
    if (go) iso_queries++;
    pthread_mutex_unlock(&t_lock);
    if (!go) break;
    s = s * 1103515245u + 12345u;
    int t = (int)((s >> 8) % NTEN), mode = (int)((s >> 16) % 4);
    char user[32], grp[32], ns[32];
    snprintf(user, sizeof user, "user:t%d-u%u", t, (s >> 4) % 3);
    snprintf(grp, sizeof grp, "group:tenant%d", t);
    snprintf(ns, sizeof ns, "/tenants/t%d", mode == 3 ? (t + 1) % NTEN : t);
    const char *gs[] = {grp}, *nss[] = {ns};
    warden_query_opts o;
    memset(&o, 0, sizeof o);
    o.principal = user;
    o.groups = gs;
    o.ngroups = mode == 1; /* asserted by the IdP, else from the directory */
    o.namespaces = nss;
    o.nnamespaces = mode >= 2; /* mode 3: another tenant's namespace: nothing */
    o.k = 1 + (s >> 20) % 40;
    float v[DIM];
    for (int j = 0; j < DIM; j++) v[j] = 1.0f + (float)(((s >> (j + 3)) & 7)) * 1e-4f;
    warden_results *r;
    if (warden_query(idb, v, 1, &o, &r)) {
      errors++;
      continue;
    }
    char want[32];
    int wl = snprintf(want, sizeof want, "t%d/", t);
    for (size_t i = 0; i < warden_results_count(r, 0); i++) {
      const warden_hit *h = warden_results_hit(r, 0, i);
      hits++;
      if (strncmp(h->doc_id, want, (size_t)wl) != 0 || mode == 3 ||
          strncmp(h->namespace_, "/tenants/", 9) != 0 || atoi(h->namespace_ + 10) != t) {
        if (foreign < 5) printf("FOREIGN: %s (%s) returned to %s\n", h->doc_id, h->namespace_, user);
        foreign++;
      }
    }
    if (mode != 3 && warden_results_count(r, 0) != (o.k < DOCS_PER_TEN * 2 ? o.k : DOCS_PER_TEN * 2))
      errors++; /* exactly k: every tenant has 60 chunks of its own */
    warden_results_free(r);
    q++;
  }
  pthread_mutex_lock(&t_lock);
  iso_foreign += foreign;
  iso_errors += errors;
  iso_hits += hits;
  pthread_mutex_unlock(&t_lock);
  return NULL;
}

static void test_tenant_isolation(void **st) {
  (void)st;
  char dir[300];
  idb = make("tenants", dir, sizeof dir);
  static char buf[NTEN * DOCS_PER_TEN * 600];
  char *o = buf;
  unsigned s = 5;
  for (int t = 0; t < NTEN; t++) {
    for (int d = 0; d < DOCS_PER_TEN; d++) {
      o += sprintf(o,
                   "{\"doc_id\":\"t%d/doc%d\",\"source\":\"s3://tenant%d/doc%d\",\"namespace\":"
                   "\"/tenants/t%d%s\",\"acl\":{\"allow\":[\"group:tenant%d\"],\"deny\":[]},"
                   "\"chunks\":[",
                   t, d, t, d, t, d % 2 ? "/sub" : "", t);
      for (int c = 0; c < 2; c++) {
        o += sprintf(o, "%s{\"text\":\"tenant %d secret %d.%d\",\"embedding\":[", c ? "," : "", t, d, c);
        for (int j = 0; j < DIM; j++) {
          s = s * 1103515245u + 12345u;
          o += sprintf(o, "%s%.6f", j ? "," : "", 1.0 + (double)((s >> 8) % 1000) * 1e-6);
        }
        o += sprintf(o, "]}");
      }
      o += sprintf(o, "]}\n");
    }
  }
  assert_int_equal(warden_ingest_buffer(idb, "tenants", buf, strlen(buf), NULL, NULL), 0);
  for (int t = 0; t < NTEN; t++)
    for (int u = 0; u < 3; u++) {
      char user[32], grp[32];
      snprintf(user, sizeof user, "user:t%d-u%d", t, u);
      snprintf(grp, sizeof grp, "group:tenant%d", t);
      const char *gs[] = {grp};
      assert_int_equal(warden_principal_set(idb, user, gs, 1, NULL), 0);
    }
  const char *e = getenv("WARDEN_ISOLATION_QUERIES");
  iso_target = e ? atoi(e) : quick() ? 2000 : 10000;
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, iso_thread, (void *)(uintptr_t)(i + 1)), 0);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  printf("tenant_isolation: %ld queries, %ld hits, %ld foreign chunks, %ld errors\n", iso_queries,
         iso_hits, iso_foreign, iso_errors);
  assert_int_equal(iso_foreign, 0);
  assert_int_equal(iso_errors, 0);
  warden_close(idb);
}

static int setup(void **state) {
  (void)state;
  snprintf(root, sizeof root, "/tmp/warden-conc-XXXXXX");
  return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  sh("rm -rf '%s'", root);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fork_refused),
      cmocka_unit_test(test_revoke_other_process),
      cmocka_unit_test(test_killed_readers),
      cmocka_unit_test(test_threads_vs_writer),
      cmocka_unit_test(test_tenant_isolation),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
