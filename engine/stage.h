/*
 * stage.h -- bounded-memory ingest that readers still see all or nothing.
 *
 * One LMDB write transaction keeps every page it dirties in memory until it
 * commits, so one transaction per ingest grows with the input (1.95 GiB at
 * 1M x 384).  A staged ingest instead commits its work in a sequence of
 * staging transactions of about WARDEN_STAGE_MB (default 256) MiB of new
 * data each, all of it invisible to readers, and then publishes it in one
 * final transaction.
 *
 * Invisible, because a slot is published only below the meta "next_slot",
 * which only the publish transaction moves: staging writes chunk records,
 * embedding blocks and bitmap bits of slots at or above it (every reader
 * reaches a chunk through the live bitmap "L", which staging does not
 * touch), lexical postings in posting windows that hold no published slot
 * (BM25 reads only windows with allowed live slots; warden check skips
 * those windows), and records of new documents, which store_doc_get,
 * warden check and export hide while their first slot is not published.
 * Staging does not write the block that holds the first new slot (its
 * other rows are published and readers cache block locations per
 * revision): it stays in memory until publish.  The counters, the
 * revision and new field types are not written either.
 *
 * The publish transaction writes: next_slot, counters, the live bits of
 * every new slot, the held block's new rows, new field types, the postings
 * of the (at most WD_LEX_WIN - 1) new slots in the window shared with
 * published ones, and the removal of every replaced document and its new
 * record.  Its memory is bounded, except ~1 KB per document that replaces
 * a stored one (their records wait in memory for it).
 *
 * kill -9: before the publish commit readers see the collection as before
 * (the staged data is invisible); after it, the whole ingest.  The staged
 * leftovers carry the meta key "stage"; the next ingest (any path: they all
 * take DIR/store/ingest.lock and call wd_stage_reclaim first) deletes them
 * in bounded transactions that change nothing a reader sees, and a failed
 * or aborted staged ingest reclaims its own at once.  A read-only handle
 * ignores them.  Other writers (delete, ACL changes) may run between
 * staging transactions: they touch published slots only; ingests are
 * serialised by the lock file for their whole duration.
 */
#ifndef WD_STAGE_H
#define WD_STAGE_H
#include <jansson.h>

#include "engine/store.h"

typedef struct wd_stage {
  warden *db;
  int on;               /* a staged ingest (else one transaction, as before) */
  uint64_t cap;         /* bytes of new data per staging transaction */
  uint64_t pub;         /* the published next_slot */
  uint64_t next_slot;   /* next new slot */
  int64_t d_docs, d_chunks; /* counter changes of committed staging txns */
  uint64_t tx_docs, tx_chunks; /* counters when the current txn began */
  uint64_t bytes;       /* new data in the current staging txn */
  uint64_t ntxn;        /* staging txns committed */
  roaring_bitmap_t *live; /* every new slot */
  wd_hmap types;        /* new field types: field -> wd_type + 1 */
  json_t *repl;         /* new records of documents that replace stored ones */
  wd_hmap repl_ids;     /* their doc ids -> first new slot + 1 */
  float *pblk;          /* block pub / WD_BLOCK, held while staging */
  void *warm;           /* page-cache warming (store_warm_start) */
} wd_stage;

/* Bytes of new data per staging transaction (WARDEN_STAGE_MB, MiB; 0
 * stages every input with a staging txn per batch, for tests). */
uint64_t wd_stage_cap(void);
/* Take DIR/store/ingest.lock exclusively (blocking): every ingest does. */
int wd_stage_lock(warden *db, int *fd);
void wd_stage_unlock(int *fd);
/* Delete what a killed or failed staged ingest left (meta "stage"). */
int wd_stage_reclaim(warden *db);

/* Start staging into tx (a fresh write txn): marks the store, attaches
 * the stage to tx. */
int wd_stage_start(wd_stage *st, warden *db, wd_txn *tx);
/* Count bytes of new data; when the current txn holds more than the cap,
 * commit it and begin the next one in tx. */
int wd_stage_step(wd_stage *st, wd_txn *tx, uint64_t bytes);
/* Commit the last staging txn and publish everything in one txn. */
int wd_stage_publish(wd_stage *st, wd_txn *tx, uint64_t *revision);
/* Free what st holds (not the store's staged data). */
void wd_stage_free(wd_stage *st);

#endif
