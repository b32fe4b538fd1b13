/*
 * allowed.c -- the bitmap key encoding of the store and the allowed set a
 * query builds from it.
 *
 * Bitmap keys (engine/store.h, layout): kind byte + principal, namespace,
 * source, or field + "\0" + an order-preserving value encoding, so that
 * equality is one get and ranges and prefixes one cursor walk.  The filter
 * index below (fx_*) answers filter leaves (engine/filter.h) with those
 * walks; wd_allowed_set combines them with the ACL bitmaps (acl/acl.c).
 */
#include <string.h>

#include "engine/allowed.h"

/* ---------------------------------------------------------- bitmap keys */

size_t store_key(char *buf, char kind, const char *s, size_t n) {
  buf[0] = kind;
  if (n > 500) n = 500; /* callers validate lengths; never overflow */
  if (n && s) memcpy(buf + 1, s, n); /* s may be NULL from a damaged record */
  return n + 1;
}

/* Order-preserving 8-byte encodings: LMDB compares keys bytewise. */
static void enc_u64be(unsigned char *p, uint64_t u) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (unsigned char)(u & 0xff);
    u >>= 8;
  }
}

uint64_t store_num_enc(const wd_value *v) {
  if (v->type == WD_T_INT) return (uint64_t)v->i ^ 0x8000000000000000ULL;
  double f = v->f == 0 ? 0.0 : v->f; /* -0 and 0 are one value */
  uint64_t u;
  memcpy(&u, &f, 8);
  return (u & 0x8000000000000000ULL) ? ~u : u ^ 0x8000000000000000ULL;
}

size_t store_nkey(char *buf, char kind, const char *field, uint64_t enc, int nbytes) {
  size_t fl = strlen(field);
  if (fl > WD_MAX_KEYLEN) fl = WD_MAX_KEYLEN;
  buf[0] = kind;
  memcpy(buf + 1, field, fl);
  buf[1 + fl] = 0;
  unsigned char e[8];
  enc_u64be(e, enc);
  memcpy(buf + 2 + fl, e, (size_t)nbytes);
  return 2 + fl + (size_t)nbytes;
}

size_t store_vkey(char *buf, const char *field, const wd_value *v) {
  size_t fl = strlen(field);
  if (fl > WD_MAX_KEYLEN) fl = WD_MAX_KEYLEN;
  buf[0] = 'V';
  memcpy(buf + 1, field, fl);
  buf[1 + fl] = 0;
  unsigned char *p = (unsigned char *)buf + 2 + fl;
  switch (v->type) {
    case WD_T_INT:
    case WD_T_FLOAT:
      enc_u64be(p, store_num_enc(v));
      return 2 + fl + 8;
    case WD_T_BOOL:
      p[0] = v->b ? 1 : 0;
      return 2 + fl + 1;
    default: {
      size_t n = v->len > WD_MAX_STRVAL ? WD_MAX_STRVAL : v->len;
      if (n && v->s) memcpy(p, v->s, n);
      return 2 + fl + n;
    }
  }
}

/* ------------------------------------------------------ filter index */

typedef struct fx_ctx {
  wd_txn *tx;
} fx_ctx;

static wd_type fx_type(void *ctx, const char *key) {
  return store_field_type(((fx_ctx *)ctx)->tx, key);
}

/* Only keys declared in warden.yaml have a public type (filter.h). */
static int fx_public(void *ctx, const char *key) {
  const wd_config *cfg = &((fx_ctx *)ctx)->tx->db->cfg;
  for (size_t i = 0; i < cfg->nmeta; i++)
    if (strcmp(cfg->meta[i].key, key) == 0) return 1;
  return 0;
}

static int fx_eq(void *ctx, const char *key, const wd_value *v, roaring_bitmap_t *acc) {
  fx_ctx *c = ctx;
  if (strlen(key) > WD_MAX_KEYLEN) return 0;
  if (v->type == WD_T_STRING && v->len > WD_MAX_STRVAL) return 0; /* cannot be stored */
  char kb[512];
  size_t kl = store_vkey(kb, key, v);
  return store_bm_or(c->tx, kb, kl, acc);
}

/* Walk keys kind+field+"\0"+top nbytes of the encoding, for encodings
 * (truncated to nbytes) in [lo, hi]. */
static int walk_level(wd_txn *tx, const char *field, char kind, int nbytes, uint64_t lo,
                      uint64_t hi, roaring_bitmap_t *acc) {
  if (lo > hi) return 0;
  char lk[512], hk[512];
  int shift = 8 * (8 - nbytes);
  size_t ll = store_nkey(lk, kind, field, lo << shift, nbytes);
  size_t hl = store_nkey(hk, kind, field, hi << shift, nbytes);
  size_t plen = strlen(field) > WD_MAX_KEYLEN ? WD_MAX_KEYLEN + 2 : strlen(field) + 2;
  return store_bm_walk(tx, lk, ll, plen, hk, hl, acc, NULL, NULL);
}

/* Range [lo, hi] over encodings, decomposed like a segment tree: exact
 * values at the ragged edges, 256-value buckets next, 65536-value buckets
 * in the middle -- at most ~1000 bitmaps whatever the number of distinct
 * values in the range.  Half-open arithmetic in 128 bits: no overflow at
 * the ends of the u64 range. */
static int range_enc(wd_txn *tx, const char *field, uint64_t lo, uint64_t hi,
                     roaring_bitmap_t *acc) {
  typedef unsigned __int128 u128;
  if (lo > hi) return 0;
  u128 L = lo, H = (u128)hi + 1; /* [L, H) */
  int rc;
  if (H - L < 512) return walk_level(tx, field, 'V', 8, lo, hi, acc);
  u128 bL = (L + 255) >> 8, bH = H >> 8; /* full 256-buckets [bL, bH) */
  if (bL >= bH) return walk_level(tx, field, 'V', 8, lo, hi, acc);
  if (L < (bL << 8) && (rc = walk_level(tx, field, 'V', 8, lo, (uint64_t)((bL << 8) - 1), acc)))
    return rc;
  if ((bH << 8) < H && (rc = walk_level(tx, field, 'V', 8, (uint64_t)(bH << 8), hi, acc)))
    return rc;
  u128 cL = (bL + 255) >> 8, cH = bH >> 8; /* full 65536-buckets [cL, cH) */
  if (cL >= cH) return walk_level(tx, field, 'B', 7, (uint64_t)bL, (uint64_t)(bH - 1), acc);
  if (bL < (cL << 8) &&
      (rc = walk_level(tx, field, 'B', 7, (uint64_t)bL, (uint64_t)((cL << 8) - 1), acc)))
    return rc;
  if ((cH << 8) < bH &&
      (rc = walk_level(tx, field, 'B', 7, (uint64_t)(cH << 8), (uint64_t)(bH - 1), acc)))
    return rc;
  return walk_level(tx, field, 'C', 6, (uint64_t)cL, (uint64_t)(cH - 1), acc);
}

static int fx_range(void *ctx, const char *key, const wd_value *lo, int lo_incl,
                    const wd_value *hi, int hi_incl, roaring_bitmap_t *acc) {
  fx_ctx *c = ctx;
  if (strlen(key) > WD_MAX_KEYLEN) return 0;
  uint64_t l = 0, h = UINT64_MAX;
  if (lo) {
    l = store_num_enc(lo);
    if (!lo_incl) {
      if (l == UINT64_MAX) return 0;
      l++;
    }
  }
  if (hi) {
    h = store_num_enc(hi);
    if (!hi_incl) {
      if (h == 0) return 0;
      h--;
    }
  }
  return range_enc(c->tx, key, l, h, acc);
}

typedef struct match_ctx {
  size_t plen;
  const char *needle;
  size_t nlen;
} match_ctx;

static int take_contains(const char *k, size_t kl, void *ctx) {
  match_ctx *m = ctx;
  return memmem(k + m->plen, kl - m->plen, m->needle, m->nlen) != NULL;
}

static int fx_prefix(void *ctx, const char *key, const char *p, size_t n,
                     roaring_bitmap_t *acc) {
  fx_ctx *c = ctx;
  size_t fl = strlen(key);
  if (fl > WD_MAX_KEYLEN || n > WD_MAX_STRVAL) return 0;
  char kb[512];
  kb[0] = 'V';
  memcpy(kb + 1, key, fl);
  kb[fl + 1] = 0;
  memcpy(kb + fl + 2, p, n);
  return store_bm_walk(c->tx, kb, fl + 2 + n, fl + 2 + n, NULL, 0, acc, NULL, NULL);
}

static int fx_contains(void *ctx, const char *key, const char *needle, size_t n,
                       roaring_bitmap_t *acc) {
  fx_ctx *c = ctx;
  size_t fl = strlen(key);
  if (fl > WD_MAX_KEYLEN || n > WD_MAX_STRVAL) return 0;
  char kb[512];
  kb[0] = 'V';
  memcpy(kb + 1, key, fl);
  kb[fl + 1] = 0;
  match_ctx m = {fl + 2, needle, n};
  return store_bm_walk(c->tx, kb, fl + 2, fl + 2, NULL, 0, acc, take_contains, &m);
}

/* ---------------------------------------------------------- allowed set */

/* The derived-bitmap cache key of a query's allowed set (before any
 * resolver pre-filter): NUL, 'A', the counts of groups and namespaces,
 * then the principal, groups and namespaces NUL-terminated, then the
 * filter text.  The counts make the encoding unambiguous.  NULL (do not
 * cache) when long or out of memory. */
static char *allowed_key(const warden_query_opts *o, size_t *len) {
  size_t n = 2 + 8 + strlen(o->principal) + 1 + (o->filter ? strlen(o->filter) : 0);
  for (size_t i = 0; i < o->ngroups; i++) n += strlen(o->groups[i]) + 1;
  for (size_t i = 0; i < o->nnamespaces; i++) n += strlen(o->namespaces[i]) + 1;
  if (n > 8192) return NULL;
  char *k = wd_malloc(n), *p = k;
  if (!k) return NULL;
  uint32_t ng = (uint32_t)o->ngroups, nn = (uint32_t)o->nnamespaces;
  *p++ = 0;
  *p++ = 'A';
  memcpy(p, &ng, 4);
  memcpy(p + 4, &nn, 4);
  p += 8;
  size_t l = strlen(o->principal) + 1;
  memcpy(p, o->principal, l);
  p += l;
  for (size_t i = 0; i < o->ngroups; i++) {
    l = strlen(o->groups[i]) + 1;
    memcpy(p, o->groups[i], l);
    p += l;
  }
  for (size_t i = 0; i < o->nnamespaces; i++) {
    l = strlen(o->namespaces[i]) + 1;
    memcpy(p, o->namespaces[i], l);
    p += l;
  }
  if (o->filter) memcpy(p, o->filter, strlen(o->filter));
  *len = n;
  return k;
}

/* FNV-1a over the allowed set's cache key and, on behalf of an agent, the
 * agent and its groups (NUL-separated): the scanned set depends on them. */
#define FNV_OFFSET 14695981039346656037ull
#define FNV_PRIME 1099511628211ull
static uint64_t set_hash(const warden_query_opts *o, const char *akey, size_t akl) {
  uint64_t h = FNV_OFFSET;
  for (size_t i = 0; i < akl; i++) h = (h ^ (unsigned char)akey[i]) * FNV_PRIME;
  for (size_t i = 0; o->agent && i <= o->nagent_groups; i++) {
    const char *p = i ? o->agent_groups[i - 1] : o->agent;
    for (; *p; p++) h = (h ^ (unsigned char)*p) * FNV_PRIME;
    h = (h ^ 0) * FNV_PRIME;
  }
  return h ? h : 1;
}

int wd_allowed_set(wd_txn *tx, const warden_query_opts *o, const wd_filter *flt,
                   const wd_strlist *who, const roaring_bitmap_t *live, roaring_bitmap_t **out,
                   uint64_t *set_key) {
  size_t akl = 0;
  char *akey = allowed_key(o, &akl);
  *set_key = akey ? set_hash(o, akey, akl) : 0;
  *out = NULL;
  roaring_bitmap_t *allowed = NULL;
  int rc = 0;
  if (akey && store_derived_get(tx, akey, akl, &allowed)) goto done;
  if ((rc = acl_readable(tx, who, &allowed))) goto done;
  if (o->nnamespaces) {
    roaring_bitmap_t *m;
    if ((rc = acl_namespace_mask(tx, o->namespaces, o->nnamespaces, &m))) goto done;
    roaring_bitmap_and_inplace(allowed, m);
    roaring_bitmap_free(m);
  }
  if (flt) {
    char ferr[512];
    fx_ctx fc = {tx};
    wd_filter_index ix = {&fc, fx_type, fx_eq, fx_range, fx_prefix, fx_contains, live, fx_public};
    roaring_bitmap_t *fb;
    if ((rc = wd_filter_eval(flt, &ix, &fb, ferr, sizeof ferr))) {
      if (rc == WARDEN_EDATA) wd_err(tx->db, rc, "%s", ferr);
      goto done;
    }
    roaring_bitmap_and_inplace(allowed, fb);
    roaring_bitmap_free(fb);
  }
  roaring_bitmap_and_inplace(allowed, live);
  if (akey) store_derived_put(tx, akey, akl, allowed);
done:
  wd_free(akey);
  if (rc) {
    if (allowed) roaring_bitmap_free(allowed);
    return rc;
  }
  *out = allowed;
  return 0;
}
