/*
 * fuzz_ingest.c -- libFuzzer target for the JSON Lines ingest parser
 * (engine/ingest.c) through the public warden_ingest_buffer().
 *
 * A collection (dimension 4, metric cosine, the strictest validation) is
 * created in a temporary directory in LLVMFuzzerInitialize and every input
 * is ingested into it twice: with keep_going on, then without.  Nothing is compared: the target
 * looks for crashes, leaks and undefined behaviour.  The only contract
 * checked is the return convention (0 or a documented negative code, and
 * a report written only on success).  The collection is recreated every
 * 2000 inputs so the store does not grow without bound.
 *
 * Build: make build/fuzz/fuzz_ingest (tests/reliability.mk).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "warden.h"

static char root[256], coll[300];
static warden *db;
static unsigned long runs;

static void fresh(void) {
  char cmd[400], err[512];
  if (db) warden_close(db);
  db = NULL;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", coll);
  if (system(cmd) != 0) abort();
  warden_create_opts co = {4, "cosine", NULL};
  if (warden_create(coll, &co, err, sizeof err) != 0) abort();
  if (warden_open(coll, NULL, &db, err, sizeof err) != 0) abort();
}

static void cleanup(void) {
  char cmd[400];
  if (db) warden_close(db);
  db = NULL;
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
  snprintf(root, sizeof root, "%s/fuzz_ingest.XXXXXX", base);
  if (!mkdtemp(root)) abort();
  snprintf(coll, sizeof coll, "%s/c", root);
  fresh();
  atexit(cleanup);
  return 0;
}

static int documented(int rc) {
  return rc == WARDEN_EDATA || rc == WARDEN_EINVAL || rc == WARDEN_ENOMEM || rc == WARDEN_EIO;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (++runs % 2000 == 0) fresh();
  warden_ingest_opts o = {1, NULL, NULL};
  warden_ingest_report rep;
  memset(&rep, 0xAB, sizeof rep);
  int rc = warden_ingest_buffer(db, "fuzz.jsonl", (const char *)data, size, &o, &rep);
  if (rc == 0) {
    if (rep.documents > rep.documents + rep.bad_lines) __builtin_trap();
    warden_free(rep.errors);
  } else {
    if (!documented(rc)) __builtin_trap();
    if (rep.documents != 0xABABABABABABABABull) __builtin_trap(); /* written on failure */
  }
  /* the same bytes without keep_going: all or nothing, never a crash */
  rc = warden_ingest_buffer(db, "fuzz.jsonl", (const char *)data, size, NULL, NULL);
  if (rc != 0 && !documented(rc)) __builtin_trap();
  return 0;
}
