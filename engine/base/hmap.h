/*
 * hmap.h -- a small open-addressing hash map from byte strings to pointers.
 * Used for a write transaction's dirty bitmaps and blocks, and for
 * duplicate detection during ingest.  Not thread-safe (one owner).
 */
#ifndef WD_HMAP_H
#define WD_HMAP_H
#include <stddef.h>
#include <stdint.h>

typedef struct wd_hmap_ent {
  char *key; /* owned copy, NULL = empty slot */
  size_t klen;
  uint64_t hash;
  void *val;
} wd_hmap_ent;

typedef struct wd_hmap {
  wd_hmap_ent *e;
  size_t cap; /* power of two, 0 when unallocated */
  size_t n;
} wd_hmap;

uint64_t wd_hash64(const void *p, size_t n, uint64_t seed);
/* Find the value for key; NULL when absent. */
void *wd_hmap_get(const wd_hmap *m, const void *key, size_t klen);
/* The entry for key (its val may be changed in place); NULL when absent. */
wd_hmap_ent *wd_hmap_find(const wd_hmap *m, const void *key, size_t klen);
/* Insert or replace; returns 0 or -1 on allocation failure.  *old (may be
 * NULL) receives the replaced value or NULL. */
int wd_hmap_put(wd_hmap *m, const void *key, size_t klen, void *val,
                void **old);
/* Free the table and keys (not the values: iterate first). */
void wd_hmap_free(wd_hmap *m);
#define WD_HMAP_FOREACH(m, it) \
  for (wd_hmap_ent *it = (m)->e; (m)->e && it < (m)->e + (m)->cap; it++) \
    if (it->key)

#endif
