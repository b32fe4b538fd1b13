/*
 * hmap.c -- open-addressing hash map (linear probing, no deletion).
 */
#include "base/hmap.h"

#include <string.h>

#include "base/wd_alloc.h"

uint64_t wd_hash64(const void *p, size_t n, uint64_t seed) {
  /* FNV-1a with a final avalanche (splitmix64): fast, good enough for
   * in-memory tables; never used where an adversary picks colliding keys
   * to break correctness (only speed). */
  const unsigned char *s = p;
  uint64_t h = 1469598103934665603ULL ^ seed;
  for (size_t i = 0; i < n; i++) {
    h ^= s[i];
    h *= 1099511628211ULL;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

static wd_hmap_ent *find(const wd_hmap *m, const void *key, size_t klen,
                         uint64_t h) {
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    wd_hmap_ent *e = &m->e[i];
    if (!e->key) return e;
    if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
      return e;
  }
}

void *wd_hmap_get(const wd_hmap *m, const void *key, size_t klen) {
  if (!m->cap) return NULL;
  wd_hmap_ent *e = find(m, key, klen, wd_hash64(key, klen, 0));
  return e->key ? e->val : NULL;
}

wd_hmap_ent *wd_hmap_find(const wd_hmap *m, const void *key, size_t klen) {
  if (!m->cap) return NULL;
  wd_hmap_ent *e = find(m, key, klen, wd_hash64(key, klen, 0));
  return e->key ? e : NULL;
}

static int grow(wd_hmap *m) {
  size_t ncap = m->cap ? m->cap * 2 : 64;
  wd_hmap_ent *ne = wd_calloc(ncap, sizeof *ne);
  if (!ne) return -1;
  wd_hmap old = *m;
  m->e = ne;
  m->cap = ncap;
  for (size_t i = 0; i < old.cap; i++)
    if (old.e[i].key) *find(m, old.e[i].key, old.e[i].klen, old.e[i].hash) = old.e[i];
  wd_free(old.e);
  return 0;
}

int wd_hmap_put(wd_hmap *m, const void *key, size_t klen, void *val,
                void **old) {
  if ((m->n + 1) * 4 > m->cap * 3 && grow(m) != 0) return -1;
  uint64_t h = wd_hash64(key, klen, 0);
  wd_hmap_ent *e = find(m, key, klen, h);
  if (e->key) {
    if (old) *old = e->val;
    e->val = val;
    return 0;
  }
  char *k = wd_malloc(klen ? klen : 1);
  if (!k) return -1;
  memcpy(k, key, klen);
  e->key = k;
  e->klen = klen;
  e->hash = h;
  e->val = val;
  m->n++;
  if (old) *old = NULL;
  return 0;
}

void wd_hmap_free(wd_hmap *m) {
  for (size_t i = 0; i < m->cap; i++) wd_free(m->e[i].key);
  wd_free(m->e);
  m->e = NULL;
  m->cap = m->n = 0;
}
