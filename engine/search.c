/*
 * search.c -- strategy selection and execution (see search.h).
 *
 * Today there is one strategy: the exact scan over the allowed set
 * (index/scan.c), which consults the bitmap inside the scan.  The ANN index
 * and the cost-based planner plug in here.
 */
#include "search.h"

#include <string.h>

#include "scan.h"

static int get_block(void *ctx, uint32_t b, const float **base) {
  return store_block_get((wd_txn *)ctx, b, base);
}

int wd_search_open(warden *db) {
  (void)db;
  return 0;
}

void wd_search_close(warden *db) { (void)db; }

int wd_search(warden *db, wd_txn *tx, const float *qv, size_t nq,
              const roaring_bitmap_t *allowed, uint64_t nallowed,
              uint64_t nlive, int strategy, wd_topk *heaps,
              wd_search_info *info) {
  (void)nallowed;
  (void)nlive;
  (void)strategy;
  memset(info, 0, sizeof *info);
  wd_vecsrc src = {db->cfg.dim, db->cfg.metric, get_block, tx};
  wd_scan_stats st;
  memset(&st, 0, sizeof st);
  int rc = wd_scan_exact(&src, qv, nq, allowed, heaps, &st);
  if (rc == -1) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  if (rc) return rc;
  info->strategy = "exact";
  info->path = st.path;
  info->scanned = st.scanned;
  return 0;
}
