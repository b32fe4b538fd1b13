/*
 * fuzz_records.c -- libFuzzer target for the decoders of stored records:
 * document records (JSON), chunk records, embedding blocks, CRoaring
 * bitmaps, directory entries and meta counters, as read back from LMDB.
 *
 * LLVMFuzzerInitialize builds a small real collection (dimension 4) and
 * keeps a copy of its data.mdb as a template.  For every input the
 * template is copied back, then the input overwrites one stored value with
 * the LMDB API directly: byte 0 picks the database (meta, docs, chunks,
 * blocks, bitmaps, principals), byte 1 the entry (n-th key), the rest is
 * the new value (an empty rest deletes the entry).  Then the collection is
 * opened and put through check, export, stats, queries (with and without
 * a filter), acl_get, principal_get, an upsert and a delete.  Each call
 * must return an error code or data; a crash, leak or UB is a finding.
 *
 * Build: make build/fuzz/fuzz_records (tests/reliability.mk).  Run with
 * -max_len=8192 so whole embedding blocks (5 KiB) can be replaced.
 */
#include <fcntl.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "warden.h"

uint32_t wd_crc32c(const void *p, size_t n); /* engine/crc.c */

static char root[256], coll[300], store[320], tmpl[320];

static void copy_file(const char *from, const char *to) {
  int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (in < 0 || out < 0) abort();
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n) abort();
  close(in);
  close(out);
}

static int sink(void *ctx, const char *b, size_t n) {
  (void)b;
  *(size_t *)ctx += n;
  return 0;
}

static const char *DOCS =
    "{\"doc_id\":\"d1\",\"source\":\"s3://b/d1\",\"namespace\":\"/t/a\",\"metadata\":{\"year\":3,"
    "\"kind\":\"charm\",\"tags\":[\"red\",\"blue\"],\"w\":0.5,\"ok\":true},\"acl\":{\"allow\":"
    "[\"user:a\",\"group:g\"],\"deny\":[\"user:z\"]},\"chunks\":[{\"text\":\"one\",\"embedding\":"
    "[1,0,0,0]},{\"text\":\"two\",\"embedding\":[0,1,0,0]}]}\n"
    "{\"doc_id\":\"d2\",\"source\":\"file:///x/d2\",\"namespace\":\"/t/b\",\"metadata\":{\"year\":5,"
    "\"kind\":\"hex\"},\"acl\":{\"allow\":[\"*\"],\"deny\":[]},\"chunks\":[{\"text\":\"three\","
    "\"embedding\":[0,0,1,0]}]}\n"
    "{\"doc_id\":\"d3\",\"source\":\"s3://b/d3\",\"namespace\":\"/u\",\"metadata\":{\"tags\":[\"gold\"]},"
    "\"acl\":{\"allow\":[\"group:h\"],\"deny\":[]},\"chunks\":[{\"text\":\"four\",\"embedding\":"
    "[0,0,0,1]},{\"text\":\"five\",\"embedding\":[1,1,0,0]},{\"text\":\"six\",\"embedding\":"
    "[0,1,1,0]}]}\n";

static void cleanup(void) {
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd)) {
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  /* FUZZ_TMPDIR (set by fuzz.sh) lets the runner clean up after a crash,
   * which skips atexit handlers */
  const char *base = getenv("FUZZ_TMPDIR");
  if (!base || !*base) base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(root, sizeof root, "%s/fuzz_records.XXXXXX", base);
  if (!mkdtemp(root)) abort();
  atexit(cleanup);
  snprintf(coll, sizeof coll, "%s/c", root);
  snprintf(store, sizeof store, "%s/c/store/data.mdb", root);
  snprintf(tmpl, sizeof tmpl, "%s/template.mdb", root);
  char err[512];
  warden_create_opts co = {4, "l2", NULL};
  warden *db;
  if (warden_create(coll, &co, err, sizeof err) || warden_open(coll, NULL, &db, err, sizeof err))
    abort();
  if (warden_ingest_buffer(db, "seed", DOCS, strlen(DOCS), NULL, NULL)) abort();
  const char *gs[] = {"group:g", "group:h"};
  if (warden_principal_set(db, "user:a", gs, 2, NULL)) abort();
  const char *gg[] = {"group:h"};
  if (warden_principal_set(db, "group:g", gg, 1, NULL)) abort();
  warden_close(db);
  copy_file(store, tmpl);
  return 0;
}

/* Overwrite (or delete) the n-th entry of the named database. */
static void poke(const char *dbname, unsigned nth, const uint8_t *val, size_t len) {
  char dir[320];
  snprintf(dir, sizeof dir, "%s/store", coll);
  MDB_env *env;
  MDB_txn *t;
  MDB_dbi dbi;
  MDB_cursor *c;
  if (mdb_env_create(&env)) abort();
  mdb_env_set_maxdbs(env, 16);
  mdb_env_set_mapsize(env, (size_t)1 << 30);
  if (mdb_env_open(env, dir, MDB_NOTLS, 0644)) abort();
  if (mdb_txn_begin(env, NULL, 0, &t) || mdb_dbi_open(t, dbname, 0, &dbi)) abort();
  MDB_stat st;
  mdb_stat(t, dbi, &st);
  if (st.ms_entries && !mdb_cursor_open(t, dbi, &c)) {
    MDB_val k, d;
    int rc = mdb_cursor_get(c, &k, &d, MDB_FIRST);
    for (unsigned i = 0; rc == 0 && i < nth % st.ms_entries; i++)
      rc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
    if (rc == 0) {
      char key[512];
      size_t kl = k.mv_size;
      memcpy(key, k.mv_data, kl);
      mdb_cursor_close(c);
      /* Values of these databases carry a CRC-32C (store.h): append a
       * valid one so the decoders behind the checksum are fuzzed too;
       * blocks and meta carry none; an odd first value byte keeps the raw
       * bytes, so the checksum check itself stays under test. */
      uint8_t *cv = malloc(len + 4);
      size_t cl = len;
      if (!cv) abort();
      memcpy(cv, val, len);
      if (strcmp(dbname, "blocks") && strcmp(dbname, "meta") && len && !(val[0] & 1)) {
        uint32_t crc = wd_crc32c(val, len);
        memcpy(cv + len, &crc, 4);
        cl += 4;
      }
      MDB_val kk = {kl, key}, vv = {cl, cv};
      if (len)
        mdb_put(t, dbi, &kk, &vv, 0);
      else
        mdb_del(t, dbi, &kk, NULL);
      free(cv);
    } else {
      mdb_cursor_close(c);
    }
  }
  if (mdb_txn_commit(t)) abort();
  mdb_env_close(env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *dbs[] = {"meta", "docs", "chunks", "blocks", "bitmaps", "principals"};
  if (size < 2) return 0;
  copy_file(tmpl, store);
  poke(dbs[data[0] % 6], data[1], data + 2, size - 2);
  warden *db;
  char err[512];
  if (warden_open(coll, NULL, &db, err, sizeof err) != 0) {
    if (!memchr(err, 0, sizeof err)) __builtin_trap();
    return 0;
  }
  char *js = NULL;
  int rc = warden_check(db, &js);
  warden_free(js);
  js = NULL;
  if (rc == 0 && warden_stats(db, &js) == 0) warden_free(js);
  size_t total = 0;
  warden_export(db, sink, &total);
  if (warden_acl_get(db, "d1", &js) == 0) warden_free(js);
  if (warden_principal_get(db, "user:a", &js) == 0) warden_free(js);
  static const char *filters[] = {NULL, "{\"year\":{\"$gte\":3}}",
                                  "{\"orAll\":[{\"startsWith\":{\"key\":\"kind\",\"value\":\"ch\"}},"
                                  "{\"listContains\":{\"key\":\"tags\",\"value\":\"gold\"}}]}"};
  const char *ns[] = {"/t"};
  for (int i = 0; i < 3; i++) {
    warden_query_opts o;
    memset(&o, 0, sizeof o);
    o.principal = i == 2 ? "user:b" : "user:a";
    o.filter = filters[i];
    o.k = 4;
    o.namespaces = ns;
    o.nnamespaces = i == 1;
    float q[8] = {1, 0.5f, 0.25f, 0, 0, 0, 1, 1};
    warden_results *r = NULL;
    if (warden_query(db, q, 2, &o, &r) == 0) {
      for (size_t qi = 0; qi < warden_results_nqueries(r); qi++)
        for (size_t h = 0; h < warden_results_count(r, qi); h++) {
          const warden_hit *x = warden_results_hit(r, qi, h);
          if (!x || !x->doc_id || !x->text || !x->source || !x->metadata_json) __builtin_trap();
          total += strlen(x->doc_id) + strlen(x->text);
        }
      warden_results_free(r);
    }
  }
  /* writes over damaged records: must refuse or repair, never crash */
  const char *line =
      "{\"doc_id\":\"d1\",\"source\":\"s3://b/d1\",\"acl\":{\"allow\":[\"user:a\"]},"
      "\"metadata\":{\"year\":4},\"chunks\":[{\"text\":\"new\",\"embedding\":[1,2,3,4]}]}\n";
  warden_ingest_buffer(db, "upsert", line, strlen(line), NULL, NULL);
  const char *del[] = {"d2", "d3"};
  warden_delete(db, del, 2, NULL);
  const char *al[] = {"user:q"};
  warden_acl_set(db, "d1", al, 1, NULL, 0, NULL);
  warden_close(db);
  return 0;
}
