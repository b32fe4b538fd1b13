/*
 * acl_store.h -- the store as the permission code sees it.
 *
 * acl/ evaluates who may read what over stored bitmaps and directory
 * entries without seeing struct warden, LMDB or the record layout: a
 * snapshot is an opaque wd_txn, the handle an opaque warden (used only to
 * record an error message on it).  engine/store.c implements these
 * functions (engine/store.h includes this header, so the compiler checks
 * that both sides agree).
 */
#ifndef WD_ACL_STORE_H
#define WD_ACL_STORE_H
#include <jansson.h>
#include <roaring/roaring.h>
#include <stddef.h>

#include "engine/warden.h"

typedef struct wd_txn wd_txn; /* a read snapshot or a write transaction */

/* The handle tx belongs to (for wd_err). */
warden *store_txn_handle(wd_txn *tx);
/* Record a message for the calling thread on db and return code
 * (engine/error.c). */
int wd_err(warden *db, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Bitmap key kind + s (buf >= 512 bytes): 'A'+principal allow,
 * 'D'+principal deny, 'N'+namespace, 'S'+source, 'L' live slots. */
size_t store_key(char *buf, char kind, const char *s, size_t n);
/* OR the stored bitmap under key into acc (absent: nothing). */
int store_bm_or(wd_txn *tx, const char *key, size_t klen, roaring_bitmap_t *acc);
/* Walk bitmap keys in [lo, hi] (hi NULL: while key starts with lo's first
 * plen bytes), calling fn(key, klen, ctx) -> 1 to OR that bitmap into acc,
 * 0 to skip, negative to stop with an error.  fn NULL: take every one. */
int store_bm_walk(wd_txn *tx, const char *lo, size_t lolen, size_t plen, const char *hi,
                  size_t hilen, roaring_bitmap_t *acc,
                  int (*fn)(const char *key, size_t klen, void *ctx), void *ctx);
/* The groups the directory lists for principal p / the prefixes granted
 * to p, as a JSON array of strings (new reference; empty when none);
 * WARDEN_ECORRUPT when the stored entry is damaged. */
int store_directory_get(wd_txn *tx, const char *p, size_t n, json_t **out);
int store_grants_get(wd_txn *tx, const char *p, size_t n, json_t **out);

#endif
