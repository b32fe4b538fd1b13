/*
 * indexer.h -- the collection's ANN index lifecycle: build the index file
 * (warden_index_build), load and validate it, let a stale index catch up
 * with the store in memory, and report its state (stats, check).
 *
 * Threading contract: db->ann holds the current *snapshot* of the loaded
 * index (the mmapped file plus the vectors caught up in memory).  A
 * snapshot is immutable once published; catching up builds a new one and
 * swaps the pointer under db->annlock.  Queries take a reference under the
 * lock (wd_ann_acquire) and drop it when done (wd_ann_release), so a swap
 * or a reload never frees an index a query is scanning.
 */
#ifndef WD_INDEXER_H
#define WD_INDEXER_H
#include <jansson.h>

#include "index/ivf.h"
#include "engine/store.h"

/* A query's reference to the current index snapshot. */
typedef struct wd_ann_ref {
  const wd_ivf *ix;
  const wd_ivf_extra *ex; /* vectors caught up from LMDB; may be NULL */
  uint64_t nindexed;      /* vectors in ix + ex */
  uint64_t caught_up;     /* of which caught up in memory (not yet in file) */
  const roaring_bitmap_t *idset; /* the ids in ix's lists (not ex's); may be NULL */
  void *snap;             /* opaque, for wd_ann_release */
} wd_ann_ref;

/* Take a reference to an index usable for a query in snapshot tx: loaded
 * (first use, or the file changed), validated against the store, and
 * caught up with every slot of tx.  Returns 0 with *ref filled; 1 when no
 * usable index exists (*state, a static string, says why: "missing",
 * "corrupt", "foreign", "newer_than_store", "error"); negative on
 * allocation failure. */
int wd_ann_acquire(warden *db, wd_txn *tx, wd_ann_ref *ref, const char **state);
void wd_ann_release(wd_ann_ref *ref);

/* Drop the loaded index (next acquire reloads).  Frees db->ann. */
void wd_ann_close(warden *db);

/* The "index" member of `warden stats`: a new JSON object (NULL on
 * allocation failure) with the configured type, the file state ("none",
 * "ready", "stale", "corrupt", "foreign", "newer_than_store"), its
 * revision/next_slot against the store's, vectors, nlist, quantizer and
 * "rebuild_suggested". */
json_t *wd_index_stats(warden *db, wd_txn *tx);

/* For `warden check`: verify the index file against the store in tx: file
 * integrity, every indexed slot exists and every slot live at build time
 * is indexed exactly once, and each stored vector matches the embedding in
 * LMDB.  Sets report["index"] to {"state":..,"checked":N,"problems":[..]}.
 * Returns the number of problems (0 also when there is no index file: it
 * is optional), or a negative warden code (ENOMEM). */
int wd_index_check(warden *db, wd_txn *tx, json_t *report);

/* The graph index's state slot inside db->ann (engine/graph_index.c owns
 * what it points to; wd_ann_close frees it).  NULL on allocation failure.
 * Call under db->annlock. */
void **wd_ann_graph_slot(warden *db);

/* DIR/index/ivf.wdx into buf (>= 4096 bytes). */
void wd_index_path(const warden *db, char *buf, size_t len);

#endif
