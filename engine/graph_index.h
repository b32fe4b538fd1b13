/*
 * graph_index.h -- the lifecycle of the collection's graph index file
 * (DIR/index/hnsw.wdx, index/hnsw.h): build or extend it during
 * `warden index`, load and validate it for queries, and report it in
 * `warden stats` and `warden check`.  The same trust model as the IVF file
 * (engine/indexer.c): checksums and structure first, then against the
 * store (not ahead of it, a sample of codes equal to the embeddings); a
 * file that fails is never used.
 *
 * Staleness: slots are never reused and a slot's vector never changes, so
 * a graph stamped with next_slot N is right for every slot < N; slots
 * added since are scanned exactly next to the graph walk (engine/search.c)
 * until the next `warden index` inserts them into the graph (no rebuild).
 * Deletes and ACL changes only shrink the allowed bitmap.
 *
 * Threading: queries take a reference to the loaded graph under
 * db->annlock (wd_graph_acquire) and drop it when done; a reload never
 * frees a graph a query walks.
 */
#ifndef WD_GRAPH_INDEX_H
#define WD_GRAPH_INDEX_H
#include <jansson.h>
#include <roaring/roaring.h>

#include "index/hnsw.h"
#include "engine/store.h"

typedef struct wd_graph_ref {
  wd_hnsw *g;
  uint64_t next_slot; /* every live slot below this is a node */
  void *base;         /* opaque, for wd_graph_release */
} wd_graph_ref;

/* 0 with *ref set; 1 when no usable graph exists (*state, static: "missing",
 * "corrupt", "foreign", "newer_than_store", "error"); negative warden code
 * on allocation failure. */
int wd_graph_acquire(warden *db, wd_graph_ref *ref, const char **state);
void wd_graph_release(wd_graph_ref *ref);
void wd_graph_close(warden *db);
/* Free the state wd_ann_graph_slot points to (engine/indexer.c). */
void wd_graph_state_free(void *state);

/* One phase of warden_index_opts' progress as the plain callback the IVF
 * and graph builds take: phase "ivf" also goes to opts->progress, every
 * phase to opts->phase_progress. */
typedef struct wd_phase_prog {
  const warden_index_opts *opts;
  const char *phase;
} wd_phase_prog;
void wd_phase_progress(void *ctx, uint64_t done, uint64_t total);

/* Build or extend the graph for the live slots of tx (called by
 * warden_index_build after the IVF file).  rebuild: ignore an existing
 * graph.  *report: a new JSON object describing what was done.  0 or a
 * negative warden code (message set). */
int wd_graph_build(warden *db, wd_txn *tx, const roaring_bitmap_t *live, int rebuild,
                   const warden_index_opts *opts, json_t **report);

/* The "graph" member of `warden stats` (NULL on allocation failure). */
json_t *wd_graph_stats(warden *db, wd_txn *tx);

/* For `warden check`: integrity, every node's code against the store,
 * every live slot below next_slot a node.  Sets report["graph"]; returns
 * the number of problems (0 without a file), or a negative warden code. */
int wd_graph_check(warden *db, wd_txn *tx, json_t *report);

void wd_graph_path(const warden *db, char *buf, size_t len);

#endif
