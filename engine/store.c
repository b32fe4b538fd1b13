/*
 * store.c -- LMDB environment, transactions, records, bitmaps, blocks.
 *
 * See store.h for the on-disk layout.  This is the only file that calls
 * LMDB.  Threading: read transactions are opened with MDB_NOTLS so any
 * thread may hold several; each holds db->maplock shared for its lifetime
 * so that a map resize (which LMDB allows only with no live transaction in
 * the process) waits for them.
 */
#include "engine/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "engine/jdump.h"
#include "engine/lexical.h"
#include "index/scan.h"

#define NDBI 7
#define FORMAT_VERSION 2 /* 2: values carry a CRC-32C */
#define LMDB_MAX_KEY 511            /* LMDB's default key size limit */
#define LOW_SPACE (4u << 20)        /* free bytes below which EIO means a full disk */
#define DOCKEY_PREFIX 480           /* doc key: this many bytes of a longer id ... */
#define DOCKEY_LEN (DOCKEY_PREFIX + 2 + 16) /* ... + "\xff\0" + a 128-bit hash */

static const char *find_map_base(warden *db);
static int val_in_map(warden *db, const MDB_val *v);
static int val_check(warden *db, const MDB_val *v, const char *what, size_t *len);
static int doc_decode(warden *db, const MDB_val *v, json_t **rec);
static int bm_decode(warden *db, const MDB_val *v, roaring_bitmap_t **bm);

static size_t block_floats(const warden *db) {
  return (size_t)WD_BLOCK + (size_t)WD_BLOCK * db->cfg.dim;
}

int store_mdb_err(warden *db, int rc, const char *what) {
  if (rc == MDB_MAP_FULL) return WD_EMAPFULL;
  if (rc == ENOSPC || rc == EIO || rc == EDQUOT) {
    /* LMDB reports a short write on a full disk as EIO: say what it is */
    struct statvfs sv;
    char path[4096];
    snprintf(path, sizeof path, "%s/store", db->dir ? db->dir : ".");
    if (rc == ENOSPC || (statvfs(path, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize < LOW_SPACE))
      return wd_err(db, WARDEN_EIO, "%s: no space left on device (the collection is unchanged)",
                    what);
  }
  if (rc == ENOMEM) return wd_err(db, WARDEN_ENOMEM, "%s: out of memory", what);
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID ||
      rc == MDB_VERSION_MISMATCH || rc == MDB_BAD_TXN)
    return wd_err(db, WARDEN_ECORRUPT, "%s: %s", what, mdb_strerror(rc));
  return wd_err(db, WARDEN_EIO, "%s: %s", what, mdb_strerror(rc));
}

static size_t initial_mapsize(void) {
  const char *e = getenv("WARDEN_MAPSIZE");
  if (e && *e) {
    unsigned long long v = strtoull(e, NULL, 10);
    if (v >= 65536) return (size_t)v;
  }
  return (size_t)1 << 32; /* 4 GiB of address space; grows on demand */
}

int store_open(warden *db, const char *dir, int create, char *err,
               size_t errlen) {
  char path[4096];
  int rc;
  if (snprintf(path, sizeof path, "%s/store", dir) >= (int)sizeof path) {
    snprintf(err, errlen, "%s: path too long", dir);
    return WARDEN_EINVAL;
  }
  if (create && mkdir(path, 0755) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return WARDEN_EIO;
  }
  struct stat st;
  if (!create && stat(path, &st) != 0) {
    snprintf(err, errlen, "%s: not a warden collection (no store/)", dir);
    return WARDEN_ENOTFOUND;
  }
  if ((rc = mdb_env_create(&db->env)) != 0) goto lmdb_fail;
  mdb_env_set_maxdbs(db->env, 16);
  mdb_env_set_maxreaders(db->env, 1022);
  db->mapsize = initial_mapsize();
  mdb_env_set_mapsize(db->env, db->mapsize);
  /* MDB_NORDAHEAD (MADV_RANDOM on the map): reads here are random (a
   * rerank's rows, B-tree pages), and the kernel's read-around on a fault
   * is the device's read_ahead_kb -- 8 MB on this machine's disk.  At 10M x
   * 384 (a 23 GB store beside 9 GB of index files on 24 GB of RAM) 1,600
   * queries read 89 GB from disk that way, evicting what they needed. */
  rc = mdb_env_open(db->env, path,
                    MDB_NOTLS | MDB_NORDAHEAD | (db->read_only ? MDB_RDONLY : 0), 0644);
  if (rc != 0) goto lmdb_fail;
  {
    /* LMDB may have adopted a larger size recorded by another process. */
    MDB_envinfo info;
    if (mdb_env_info(db->env, &info) == 0 && info.me_mapsize > db->mapsize)
      db->mapsize = info.me_mapsize;
  }
  int dead = 0;
  mdb_reader_check(db->env, &dead); /* clear readers of crashed processes */
  db->map_base = find_map_base(db);
  {
    MDB_txn *t;
    unsigned flags = db->read_only ? MDB_RDONLY : 0;
    if ((rc = mdb_txn_begin(db->env, NULL, flags, &t)) != 0) goto lmdb_fail;
    const char *names[NDBI] = {"meta", "docs", "chunks", "blocks",
                               "bitmaps", "principals", "grants"};
    MDB_dbi *dbis[NDBI] = {&db->dbi_meta, &db->dbi_docs, &db->dbi_chunks,
                           &db->dbi_blocks, &db->dbi_bitmaps, &db->dbi_princ,
                           &db->dbi_grants};
    for (int i = 0; i < NDBI; i++) {
      rc = mdb_dbi_open(t, names[i], db->read_only ? 0 : MDB_CREATE, dbis[i]);
      if (rc != 0) {
        mdb_txn_abort(t);
        if (rc == MDB_NOTFOUND) {
          snprintf(err, errlen, "%s: not a warden collection (missing %s)",
                   dir, names[i]);
          mdb_env_close(db->env);
          db->env = NULL;
          return WARDEN_ECORRUPT;
        }
        goto lmdb_fail;
      }
    }
    /* the lexical index: created on first write access by this build; a
     * read-only handle on an older store has none (lexical queries then
     * find nothing) */
    rc = mdb_dbi_open(t, "lexicon", 0, &db->dbi_lex);
    if (rc == MDB_NOTFOUND && !db->read_only) {
      rc = mdb_dbi_open(t, "lexicon", MDB_CREATE, &db->dbi_lex);
      /* "lexicon" = 1: the lexical index covers every chunk (it was created
       * with the store, or before any chunk); a store that predates it has
       * none, and warden check does not hold its absence against it */
      MDB_val k = {9, "next_slot"}, v, lk = {7, "lexicon"};
      uint64_t one = 1, ns = 0;
      if (mdb_get(t, db->dbi_meta, &k, &v) == 0 && v.mv_size == 8) memcpy(&ns, v.mv_data, 8);
      MDB_val lv = {8, &one};
      if (rc == 0 && ns == 0) rc = mdb_put(t, db->dbi_meta, &lk, &lv, 0);
    }
    db->have_lex = rc == 0;
    if (rc != 0 && rc != MDB_NOTFOUND) {
      mdb_txn_abort(t);
      goto lmdb_fail;
    }
    if (create) {
      MDB_val k = {6, "format"}, v;
      uint64_t fv = FORMAT_VERSION;
      v.mv_size = 8;
      v.mv_data = &fv;
      rc = mdb_put(t, db->dbi_meta, &k, &v, 0);
      if (rc != 0) {
        mdb_txn_abort(t);
        goto lmdb_fail;
      }
    } else {
      MDB_val k = {6, "format"}, v;
      rc = mdb_get(t, db->dbi_meta, &k, &v);
      uint64_t fv = 0;
      if (rc == 0 && v.mv_size == 8) memcpy(&fv, v.mv_data, 8);
      if (fv != FORMAT_VERSION) {
        mdb_txn_abort(t);
        snprintf(err, errlen,
                 "%s: store format %llu is not supported (expected %d)", dir,
                 (unsigned long long)fv, FORMAT_VERSION);
        mdb_env_close(db->env);
        db->env = NULL;
        return WARDEN_ECORRUPT;
      }
    }
    if ((rc = mdb_txn_commit(t)) != 0) goto lmdb_fail;
  }
  return 0;
lmdb_fail:
  snprintf(err, errlen, "%s: %s", path, mdb_strerror(rc));
  if (db->env) mdb_env_close(db->env);
  db->env = NULL;
  return rc == MDB_CORRUPTED || rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH
             ? WARDEN_ECORRUPT
             : WARDEN_EIO;
}

void store_close(warden *db) {
  if (db->env) mdb_env_close(db->env);
  db->env = NULL;
}

/* Adopt a size another process set (newsize 0) or grow our own map. */
static int grow_map(warden *db, size_t newsize) {
  pthread_rwlock_wrlock(&db->maplock);
  int rc = mdb_env_set_mapsize(db->env, newsize);
  if (rc == 0) {
    MDB_envinfo info;
    if (mdb_env_info(db->env, &info) == 0) db->mapsize = info.me_mapsize;
    db->map_base = find_map_base(db); /* a resize may move the map */
  }
  pthread_rwlock_unlock(&db->maplock);
  return rc;
}

static int begin(warden *db, unsigned flags, MDB_txn **t) {
  for (int tries = 0;; tries++) {
    pthread_rwlock_rdlock(&db->maplock);
    int rc = mdb_txn_begin(db->env, NULL, flags, t);
    if (rc == 0) return 0; /* maplock stays held until the txn ends */
    pthread_rwlock_unlock(&db->maplock);
    if (rc == MDB_MAP_RESIZED && tries < 8) {
      grow_map(db, 0);
      continue;
    }
    return store_mdb_err(db, rc, "begin transaction");
  }
}

int store_read_begin(warden *db, wd_txn *tx) {
  memset(tx, 0, sizeof *tx);
  tx->db = db;
  int rc = begin(db, MDB_RDONLY, &tx->t);
  if (!rc) tx->rev = store_meta_u64(tx, "revision");
  return rc;
}

#define BMCACHE_MAX_BYTES ((size_t)64 << 20)

void store_bmcache_free(wd_bmcache *c) {
  if (!c) return;
  WD_HMAP_FOREACH(&c->map, e) roaring_bitmap_free(e->val);
  wd_hmap_free(&c->map);
  pthread_mutex_destroy(&c->mu);
  wd_free(c);
}

void *store_lazy_cache(warden *db, void **slot, size_t size) {
  void *c = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (c) return c;
  /* created once, under the grow lock (no reader holds it otherwise) */
  pthread_mutex_lock(&db->growlock);
  c = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (!c && (c = wd_calloc(1, size))) {
    pthread_mutex_init((pthread_mutex_t *)c, NULL);
    __atomic_store_n(slot, c, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&db->growlock);
  return c;
}

/* OR the cached bitmap for key into acc.  Returns 1 when served from the
 * cache, 0 when not cached (the caller decodes and offers it with
 * cache_offer).  The lock is held while ORing: a newer revision may empty
 * the cache at any time. */
static int cache_or(wd_txn *tx, const char *key, size_t klen, roaring_bitmap_t *acc) {
  wd_bmcache *c = __atomic_load_n(&tx->db->bmcache, __ATOMIC_ACQUIRE);
  if (tx->write || !c) return 0;
  int hit = 0;
  pthread_mutex_lock(&c->mu);
  if (c->rev == tx->rev) {
    roaring_bitmap_t *bm = wd_hmap_get(&c->map, key, klen);
    if (bm) {
      roaring_bitmap_or_inplace(acc, bm);
      hit = 1;
    }
  }
  pthread_mutex_unlock(&c->mu);
  return hit;
}

/* Keep bm (decoded for tx's revision) in the cache, which takes ownership;
 * returns 1 if taken, 0 if the caller keeps it. */
static int cache_offer(wd_txn *tx, const char *key, size_t klen, roaring_bitmap_t *bm) {
  warden *db = tx->db;
  if (tx->write) return 0;
  wd_bmcache *c = store_lazy_cache(db, (void **)&db->bmcache, sizeof *c);
  if (!c) return 0;
  int taken = 0;
  pthread_mutex_lock(&c->mu);
  if (tx->rev > c->rev) { /* a newer revision: what is cached is stale */
    WD_HMAP_FOREACH(&c->map, e) roaring_bitmap_free(e->val);
    wd_hmap_free(&c->map);
    c->bytes = 0;
    c->rev = tx->rev;
  }
  size_t sz = roaring_bitmap_size_in_bytes(bm);
  if (tx->rev == c->rev && c->bytes + sz <= BMCACHE_MAX_BYTES &&
      !wd_hmap_get(&c->map, key, klen) && wd_hmap_put(&c->map, key, klen, bm, NULL) == 0) {
    c->bytes += sz;
    taken = 1;
  }
  pthread_mutex_unlock(&c->mu);
  return taken;
}

int store_derived_get(wd_txn *tx, const char *key, size_t klen, roaring_bitmap_t **out) {
  *out = NULL;
  if (tx->write || klen == 0 || key[0] != 0) return 0;
  roaring_bitmap_t *bm = roaring_bitmap_create();
  if (!bm) return 0;
  if (!cache_or(tx, key, klen, bm)) {
    roaring_bitmap_free(bm);
    return 0;
  }
  *out = bm;
  return 1;
}

void store_derived_put(wd_txn *tx, const char *key, size_t klen, const roaring_bitmap_t *bm) {
  if (tx->write || klen == 0 || key[0] != 0) return;
  roaring_bitmap_t *c = roaring_bitmap_copy(bm);
  if (c && !cache_offer(tx, key, klen, c)) roaring_bitmap_free(c);
}

static void blktab_release(wd_txn *tx);

void store_read_end(wd_txn *tx) {
  blktab_release(tx);
  if (!tx->t) return;
  mdb_txn_abort(tx->t);
  tx->t = NULL;
  pthread_rwlock_unlock(&tx->db->maplock);
}

/* pending bitmaps (store_bm_add, below) */
static roaring_bitmap_t *bm_of(const void *v);
static int bm_pending(const void *v);
static int stored_or(wd_txn *tx, const char *key, size_t klen, roaring_bitmap_t *acc);

/* A write txn's puts and gets go through one cursor per database, left
 * where the last one was.  LMDB then finds a key that falls in the
 * cursor's leaf page without a descent from the root (mdb_cursor_set
 * checks the page's first and last keys first), which is what the
 * key-ordered flushes below and an ingest's ascending slot, block and
 * staged document keys give it; any other key costs the usual descent.
 * LMDB keeps a write txn's open cursors valid across every put and delete
 * of the txn; they are closed before it ends (free_caches). */
static MDB_cursor *wcur(wd_txn *tx, MDB_dbi dbi) {
  if (!tx->write || dbi >= sizeof tx->wc / sizeof tx->wc[0]) return NULL;
  if (!tx->wc[dbi] && mdb_cursor_open(tx->t, dbi, &tx->wc[dbi]) != 0) tx->wc[dbi] = NULL;
  return tx->wc[dbi];
}

static void wcur_close(wd_txn *tx) {
  for (size_t i = 0; i < sizeof tx->wc / sizeof tx->wc[0]; i++)
    if (tx->wc[i]) {
      mdb_cursor_close(tx->wc[i]);
      tx->wc[i] = NULL;
    }
}

static int w_put(wd_txn *tx, MDB_dbi dbi, MDB_val *k, MDB_val *d, unsigned flags) {
  MDB_cursor *c = wcur(tx, dbi);
  return c ? mdb_cursor_put(c, k, d, flags) : mdb_put(tx->t, dbi, k, d, flags);
}

static int w_get(wd_txn *tx, MDB_dbi dbi, MDB_val *k, MDB_val *d) {
  MDB_cursor *c = wcur(tx, dbi);
  return c ? mdb_cursor_get(c, k, d, MDB_SET) : mdb_get(tx->t, dbi, k, d);
}

static void free_caches(wd_txn *tx) {
  wcur_close(tx);
  wd_lex_txn_free(tx);
  WD_HMAP_FOREACH(&tx->bms, e) roaring_bitmap_free(bm_of(e->val));
  wd_hmap_free(&tx->bms);
  WD_HMAP_FOREACH(&tx->blocks, e) wd_free(e->val);
  wd_hmap_free(&tx->blocks);
}

static int put_u64(wd_txn *tx, const char *key, uint64_t v) {
  MDB_val k = {strlen(key), (void *)key}, d = {8, &v};
  int rc = mdb_put(tx->t, tx->db->dbi_meta, &k, &d, 0);
  return rc ? store_mdb_err(tx->db, rc, "write meta") : 0;
}

/* Write the dirty lexical entries and drop them: a spill that kept them
 * would write every term of the transaction again at each later spill
 * (engine/lexical.h). */
static int flush_lex(wd_txn *tx) {
  int rc = wd_lex_flush(tx);
  if (!rc) wd_lex_txn_drop(tx);
  return rc;
}

static int ent_cmp(const void *a, const void *b) { /* LMDB's key order */
  const wd_hmap_ent *x = *(const wd_hmap_ent *const *)a, *y = *(const wd_hmap_ent *const *)b;
  int r = memcmp(x->key, y->key, x->klen < y->klen ? x->klen : y->klen);
  return r ? r : (x->klen > y->klen) - (x->klen < y->klen);
}

/* The entries of m in key order, so that a flush's puts walk the B-tree
 * once through one cursor (wcur) instead of descending for each key.
 * NULL when out of memory (then m is written in table order). */
static wd_hmap_ent **ents_sorted(const wd_hmap *m) {
  wd_hmap_ent **v = wd_malloc((m->n ? m->n : 1) * sizeof *v);
  if (!v) return NULL;
  size_t n = 0;
  WD_HMAP_FOREACH(m, e) v[n++] = e;
  qsort(v, n, sizeof *v, ent_cmp);
  return v;
}

/* Write the dirty bitmaps, pending ones merged with their stored bits,
 * and drop them from the transaction's cache (a later store_bm_mut reads
 * them back from the transaction's own view). */
static int flush_bm(wd_txn *tx) {
  warden *db = tx->db;
  int rc = 0;
  char *buf = NULL;
  size_t bufcap = 0;
  wd_hmap_ent **ord = ents_sorted(&tx->bms);
  size_t i = 0;
  WD_HMAP_FOREACH(&tx->bms, it) {
    wd_hmap_ent *e = ord ? ord[i++] : it;
    roaring_bitmap_t *bm = bm_of(e->val);
    MDB_val k = {e->klen, e->key};
    if (bm_pending(e->val)) { /* in key order: the cursor is on its page */
      int src = stored_or(tx, e->key, e->klen, bm);
      if (src) {
        wd_free(buf);
        wd_free(ord);
        return src;
      }
      e->val = bm;
    }
    if (roaring_bitmap_is_empty(bm)) {
      rc = mdb_del(tx->t, db->dbi_bitmaps, &k, NULL);
      if (rc == MDB_NOTFOUND) rc = 0;
      if (rc) break;
      continue;
    }
    roaring_bitmap_run_optimize(bm);
    size_t n = roaring_bitmap_portable_size_in_bytes(bm);
    if (n > bufcap) {
      char *nb = wd_realloc(buf, n);
      if (!nb) {
        wd_free(buf);
        wd_free(ord);
        return wd_err(db, WARDEN_ENOMEM, "commit: out of memory");
      }
      buf = nb;
      bufcap = n;
    }
    roaring_bitmap_portable_serialize(bm, buf);
    MDB_val d = {n + 4, NULL};
    if ((rc = w_put(tx, db->dbi_bitmaps, &k, &d, MDB_RESERVE)) != 0) break;
    memcpy(d.mv_data, buf, n);
    uint32_t c = wd_crc32c(buf, n);
    memcpy((char *)d.mv_data + n, &c, 4);
  }
  wd_free(buf);
  wd_free(ord);
  if (rc) return store_mdb_err(db, rc, "write bitmap");
  WD_HMAP_FOREACH(&tx->bms, e) roaring_bitmap_free(bm_of(e->val));
  wd_hmap_free(&tx->bms);
  memset(&tx->bms, 0, sizeof tx->bms);
  return 0;
}

/* Both of the above: the lexical entries first (they dirty nothing else). */
static int flush_bitmaps(wd_txn *tx) {
  int rc = flush_lex(tx);
  return rc ? rc : flush_bm(tx);
}

/* Write the dirty blocks except block keep (UINT32_MAX: none) and drop
 * them from the cache (block_mut reads them back from the transaction). */
static int flush_blocks(wd_txn *tx, uint32_t keep) {
  warden *db = tx->db;
  size_t bsz = block_floats(db) * sizeof(float);
  unsigned char kk[4];
  kk[0] = (unsigned char)(keep >> 24);
  kk[1] = (unsigned char)(keep >> 16);
  kk[2] = (unsigned char)(keep >> 8);
  kk[3] = (unsigned char)keep;
  float *kept = NULL;
  wd_hmap_ent **ord = ents_sorted(&tx->blocks);
  size_t i = 0;
  WD_HMAP_FOREACH(&tx->blocks, it) {
    wd_hmap_ent *e = ord ? ord[i++] : it;
    if (keep != UINT32_MAX && memcmp(e->key, kk, 4) == 0) {
      kept = e->val;
      continue;
    }
    MDB_val k = {e->klen, e->key}, d = {bsz, e->val};
    int rc = w_put(tx, db->dbi_blocks, &k, &d, 0);
    if (rc) {
      wd_free(ord);
      return store_mdb_err(db, rc, "write embeddings");
    }
  }
  wd_free(ord);
  WD_HMAP_FOREACH(&tx->blocks, e) if (e->val != kept) wd_free(e->val);
  wd_hmap_free(&tx->blocks);
  memset(&tx->blocks, 0, sizeof tx->blocks);
  if (kept && wd_hmap_put(&tx->blocks, kk, 4, kept, NULL) != 0) {
    wd_free(kept);
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  }
  return 0;
}

/* Write dirty bitmaps and blocks, counters and the new revision. */
static int flush(wd_txn *tx) {
  int rc;
  if ((rc = flush_bitmaps(tx)) || (rc = flush_blocks(tx, UINT32_MAX))) return rc;
  if ((rc = put_u64(tx, "next_slot", tx->next_slot)) ||
      (rc = put_u64(tx, "docs", tx->ndocs)) ||
      (rc = put_u64(tx, "chunks", tx->nchunks)))
    return rc;
  return put_u64(tx, "revision", store_meta_u64(tx, "revision") + 1);
}

int store_write(warden *db, int (*op)(wd_txn *tx, void *ctx), void *ctx,
                uint64_t *revision) {
  if (db->read_only)
    return wd_err(db, WARDEN_EINVAL, "collection was opened read-only");
  for (int attempt = 0;; attempt++) {
    wd_txn tx;
    memset(&tx, 0, sizeof tx);
    tx.db = db;
    tx.write = 1;
    int rc = begin(db, 0, &tx.t);
    if (rc) return rc;
    tx.next_slot = store_meta_u64(&tx, "next_slot");
    tx.ndocs = store_meta_u64(&tx, "docs");
    tx.nchunks = store_meta_u64(&tx, "chunks");
    rc = op(&tx, ctx);
    uint64_t rev = store_meta_u64(&tx, "revision");
    if (rc == 0 && tx.changed) {
      rc = flush(&tx);
      rev++;
    }
    free_caches(&tx);
    if (rc == 0) {
      int mrc = mdb_txn_commit(tx.t);
      tx.t = NULL;
      pthread_rwlock_unlock(&db->maplock);
      if (mrc == 0) {
        if (revision) *revision = rev;
        return 0;
      }
      rc = store_mdb_err(db, mrc, "commit");
    } else {
      mdb_txn_abort(tx.t);
      pthread_rwlock_unlock(&db->maplock);
    }
    if (rc != WD_EMAPFULL) return rc;
    if (attempt >= 24)
      return wd_err(db, WARDEN_EIO, "commit: the map cannot grow further");
    size_t cur = db->mapsize;
    size_t add = cur < ((size_t)1 << 30) ? cur : ((size_t)1 << 30) * 4;
    int grc = grow_map(db, cur + (add > cur ? cur : add));
    if (grc) return store_mdb_err(db, grc, "grow map");
  }
}

/* ---------------------------------------- long write transactions (bulk) */

int store_reserve(warden *db, uint64_t extra) {
  mdb_filehandle_t fd = -1;
  struct stat fs;
  uint64_t used = 0;
  if (mdb_env_get_fd(db->env, &fd) == 0 && fstat(fd, &fs) == 0) used = (uint64_t)fs.st_size;
  /* A generous reservation (standard input cannot be replayed) is address
   * space only, but an address space can be smaller than it (qemu-user's
   * emulated one, ulimit -v).  LMDB unmaps the old map before it maps the
   * new one and leaves no map at all when that fails, so the size is
   * probed first with a mapping of the data file like LMDB's own (shared,
   * read-only), halving the extra until it fits or is below
   * RESERVE_MIN_MIB; an input that outgrows a smaller reservation is
   * refused whole (ingest.c). */
  enum { RESERVE_MIN_MIB = 64 };
  uint64_t want;
  for (;;) {
    want = used + extra;
    want = (want + ((uint64_t)1 << 20) - 1) & ~(((uint64_t)1 << 20) - 1);
    if (want <= db->mapsize) return 0;
    if (fd < 0) break; /* no file to probe with: let LMDB try */
    void *p = mmap(NULL, (size_t)want, PROT_READ, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
      munmap(p, (size_t)want);
      break;
    }
    if (extra <= ((uint64_t)RESERVE_MIN_MIB << 20))
      return wd_err(db, WARDEN_ENOMEM, "grow map: no %llu MiB of address space for the store",
                    (unsigned long long)(want >> 20));
    extra /= 2;
  }
  int rc = grow_map(db, (size_t)want);
  return rc ? store_mdb_err(db, rc, "grow map") : 0;
}

int store_write_begin(warden *db, wd_txn *tx) {
  if (db->read_only)
    return wd_err(db, WARDEN_EINVAL, "collection was opened read-only");
  memset(tx, 0, sizeof *tx);
  tx->db = db;
  tx->write = 1;
  int rc = begin(db, 0, &tx->t);
  if (rc) return rc;
  tx->next_slot = store_meta_u64(tx, "next_slot");
  tx->ndocs = store_meta_u64(tx, "docs");
  tx->nchunks = store_meta_u64(tx, "chunks");
  return 0;
}

int store_write_spill(wd_txn *tx, size_t max_bitmaps) {
  int rc = flush_blocks(tx, (uint32_t)(tx->next_slot / WD_BLOCK));
  if (!rc && tx->bms.n > max_bitmaps) rc = flush_bm(tx);
  if (!rc && wd_lex_mem(tx) > WD_SPILL_LEX) rc = flush_lex(tx);
  return rc;
}

int store_write_commit(wd_txn *tx, uint64_t *revision) {
  warden *db = tx->db;
  uint64_t rev = store_meta_u64(tx, "revision");
  int rc = 0;
  if (tx->changed) {
    rc = flush(tx);
    rev++;
  }
  free_caches(tx);
  if (rc) {
    mdb_txn_abort(tx->t);
  } else {
    int mrc = mdb_txn_commit(tx->t);
    if (mrc) rc = store_mdb_err(db, mrc, "commit");
  }
  tx->t = NULL;
  pthread_rwlock_unlock(&db->maplock);
  if (!rc && revision) *revision = rev;
  return rc;
}

void store_release_map(warden *db) {
  pthread_rwlock_rdlock(&db->maplock); /* no resize moves the map meanwhile */
  if (db->map_base) (void)madvise((void *)db->map_base, db->mapsize, MADV_DONTNEED);
  pthread_rwlock_unlock(&db->maplock);
}

void store_bound_map(warden *db) {
  static unsigned long calls;
  if (__atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED) % 256) return;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return;
  unsigned long size, res, shared;
  int n = fscanf(f, "%lu %lu %lu", &size, &res, &shared);
  fclose(f);
  long pg = sysconf(_SC_PAGESIZE);
  if (n == 3 && pg > 0 && (size_t)shared * (size_t)pg > WD_MAP_RESIDENT_CAP) store_release_map(db);
}

void store_write_abort(wd_txn *tx) {
  if (!tx->t) return;
  free_caches(tx);
  mdb_txn_abort(tx->t);
  tx->t = NULL;
  pthread_rwlock_unlock(&tx->db->maplock);
}

/* A value LMDB hands back must lie inside the used part of the map: a
 * damaged page number or overflow count would otherwise point past the
 * end of the file, and reading it is a SIGBUS, not an error. */
static int val_in_map(warden *db, const MDB_val *v) {
  const char *p = v->mv_data;
  /* only values served from the map can point past the file; a write
   * transaction's own dirty pages live in ordinary memory */
  if (!db->map_base || p < db->map_base || (size_t)(p - db->map_base) >= db->mapsize) return 1;
  /* the file only grows while the handle is open: compare with the last
   * size seen and ask the kernel again only when a value reaches past it
   * (no system call per value on the query path) */
  size_t off = (size_t)(p - db->map_base);
  size_t used = __atomic_load_n(&db->file_size, __ATOMIC_RELAXED);
  if (v->mv_size <= used && off <= used - v->mv_size) return 1;
  mdb_filehandle_t fd;
  struct stat fs;
  if (mdb_env_get_fd(db->env, &fd) != 0 || fstat(fd, &fs) != 0) return 1;
  used = (size_t)fs.st_size;
  __atomic_store_n(&db->file_size, used, __ATOMIC_RELAXED);
  return v->mv_size <= used && off <= used - v->mv_size;
}

/* Where LMDB mapped data.mdb in this process: LMDB does not say, so find
 * the mapping of that inode in /proc/self/maps (Linux).  NULL when it
 * cannot be told; then only sizes are checked. */
static const char *find_map_base(warden *db) {
  mdb_filehandle_t fd;
  struct stat fs;
  if (mdb_env_get_fd(db->env, &fd) != 0 || fstat(fd, &fs) != 0) return NULL;
  FILE *f = fopen("/proc/self/maps", "re");
  if (!f) return NULL;
  char line[4096];
  const char *base = NULL;
  while (!base && fgets(line, sizeof line, f)) {
    unsigned long lo, hi, off, ino;
    unsigned maj, min;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms, &off, &maj, &min, &ino) == 7 &&
        ino == (unsigned long)fs.st_ino && off == 0)
      base = (const char *)lo;
  }
  fclose(f);
  return base;
}

static int val_check(warden *db, const MDB_val *v, const char *what, size_t *len) {
  uint32_t c;
  if (v->mv_size < 4 || !val_in_map(db, v)) goto bad;
  memcpy(&c, (const char *)v->mv_data + v->mv_size - 4, 4);
  if (wd_crc32c(v->mv_data, v->mv_size - 4) != c) goto bad;
  *len = v->mv_size - 4;
  return 0;
bad:
  return wd_err(db, WARDEN_ECORRUPT, "%s: stored value fails its checksum (damaged on disk)", what);
}

static int put_val(wd_txn *tx, MDB_dbi dbi, const void *key, size_t klen, const void *data,
                  size_t len, const char *what) {
  MDB_val k = {klen, (void *)key}, d = {len + 4, NULL};
  int rc = w_put(tx, dbi, &k, &d, MDB_RESERVE);
  if (rc) return store_mdb_err(tx->db, rc, what);
  if (len) memcpy(d.mv_data, data, len);
  uint32_t c = wd_crc32c(data, len);
  memcpy((char *)d.mv_data + len, &c, 4);
  tx->changed = 1;
  return 0;
}

static int get_val(wd_txn *tx, MDB_dbi dbi, const void *key, size_t klen, const void **data,
                  size_t *len, const char *what) {
  MDB_val k = {klen, (void *)key}, d;
  int rc = w_get(tx, dbi, &k, &d);
  if (rc == MDB_NOTFOUND) return WARDEN_ENOTFOUND;
  if (rc) return store_mdb_err(tx->db, rc, what);
  if ((rc = val_check(tx->db, &d, what, len))) return rc;
  *data = d.mv_data;
  return 0;
}

static int str_array(const json_t *a);
static int get_strings(wd_txn *tx, MDB_dbi dbi, const char *key, size_t klen, const char *what,
                       json_t **out);

static int get_strings(wd_txn *tx, MDB_dbi dbi, const char *key, size_t klen, const char *what,
                      json_t **out) {
  const void *data;
  size_t len;
  int rc = klen && klen <= LMDB_MAX_KEY ? get_val(tx, dbi, key, klen, &data, &len, what)
                               : WARDEN_ENOTFOUND;
  if (rc == WARDEN_ENOTFOUND) {
    *out = json_array();
    return *out ? 0 : wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
  }
  if (rc) return rc;
  json_error_t je;
  json_t *a = json_loadb(data, len, 0, &je);
  if (!str_array(a)) {
    json_decref(a);
    return wd_err(tx->db, WARDEN_ECORRUPT, "%s of %.*s is damaged", what,
                  (int)(klen > 80 ? 80 : klen), key);
  }
  *out = a;
  return 0;
}

static int str_array(const json_t *a) {
  size_t i;
  const json_t *e;
  if (!json_is_array(a)) return 0;
  json_array_foreach(a, i, e) if (!json_is_string(e)) return 0;
  return 1;
}

/* The shape every reader of a record relies on. */
static int doc_shape_ok(const json_t *r) {
  if (!json_is_object(r) || !json_is_string(json_object_get(r, "doc_id")) ||
      !json_is_string(json_object_get(r, "source")) ||
      !json_is_string(json_object_get(r, "namespace")) ||
      !json_is_object(json_object_get(r, "metadata")) || !str_array(json_object_get(r, "allow")) ||
      !str_array(json_object_get(r, "deny")) || !json_is_array(json_object_get(r, "slots")))
    return 0;
  const char *k;
  const json_t *v;
  json_object_foreach((json_t *)json_object_get(r, "metadata"), k, v) {
    if (!json_is_string(v) && !json_is_integer(v) && !json_is_real(v) && !json_is_boolean(v) &&
        !str_array(v))
      return 0;
  }
  size_t i;
  json_array_foreach(json_object_get(r, "slots"), i, v) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > (json_int_t)WD_MAX_SLOTS)
      return 0;
  }
  return 1;
}

static int doc_decode(warden *db, const MDB_val *v, json_t **rec) {
  size_t len = 0;
  int rc = val_check(db, v, "document record", &len);
  if (rc) return rc;
  json_error_t je;
  json_t *j = json_loadb(v->mv_data, len, 0, &je);
  if (!j && strstr(je.text, "memory")) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  if (!doc_shape_ok(j)) {
    json_decref(j);
    return wd_err(db, WARDEN_ECORRUPT, "a document record is damaged");
  }
  *rec = j;
  return 0;
}

static int bm_decode(warden *db, const MDB_val *v, roaring_bitmap_t **bm) {
  size_t len = 0;
  int rc = val_check(db, v, "bitmap", &len);
  if (rc) return rc;
  roaring_bitmap_t *b = roaring_bitmap_portable_deserialize_safe(v->mv_data, len);
  if (!b) return wd_err(db, WARDEN_ECORRUPT, "bitmap: cannot decode stored bitmap");
  *bm = b;
  return 0;
}

uint64_t store_meta_u64(wd_txn *tx, const char *key) {
  MDB_val k = {strlen(key), (void *)key}, d;
  uint64_t v = 0;
  if (mdb_get(tx->t, tx->db->dbi_meta, &k, &d) == 0 && d.mv_size == 8)
    memcpy(&v, d.mv_data, 8);
  return v;
}

int store_meta_put_u64(wd_txn *tx, const char *key, uint64_t v) {
  tx->changed = 1;
  return put_u64(tx, key, v);
}

wd_type store_field_type(wd_txn *tx, const char *field) {
  for (size_t i = 0; i < tx->db->cfg.nmeta; i++)
    if (strcmp(tx->db->cfg.meta[i].key, field) == 0)
      return tx->db->cfg.meta[i].type;
  if (tx->stage_types) { /* a staged ingest's new fields (stage.h) */
    uintptr_t st = (uintptr_t)wd_hmap_get(tx->stage_types, field, strlen(field));
    if (st) return (wd_type)(st - 1);
  }
  char key[WD_MAX_KEYLEN + 8];
  int n = snprintf(key, sizeof key, "t:%s", field);
  if (n < 0 || (size_t)n >= sizeof key) return WD_T_NONE;
  MDB_val k = {(size_t)n, key}, d;
  if (mdb_get(tx->t, tx->db->dbi_meta, &k, &d) == 0 && d.mv_size == 1)
    return (wd_type) * (const unsigned char *)d.mv_data;
  return WD_T_NONE;
}

int store_field_type_put(wd_txn *tx, const char *field, wd_type t) {
  char key[WD_MAX_KEYLEN + 8];
  int n = snprintf(key, sizeof key, "t:%s", field);
  if (n < 0 || (size_t)n >= sizeof key)
    return wd_err(tx->db, WARDEN_EDATA, "metadata key too long");
  if (tx->stage_types) /* written by the publish txn (stage.c) */
    return wd_hmap_put(tx->stage_types, field, strlen(field), (void *)(uintptr_t)(t + 1), NULL)
               ? wd_err(tx->db, WARDEN_ENOMEM, "out of memory")
               : 0;
  unsigned char b = (unsigned char)t;
  MDB_val k = {(size_t)n, key}, d = {1, &b};
  tx->changed = 1;
  int rc = mdb_put(tx->t, tx->db->dbi_meta, &k, &d, 0);
  return rc ? store_mdb_err(tx->db, rc, "write field type") : 0;
}

/* ------------------------------------------------------------- bitmaps */

/* The bitmap key encoding (store_key, store_vkey, store_nkey,
 * store_num_enc) lives in engine/allowed.c, next to the allowed set built
 * from it. */

/* A write txn's dirty bitmap whose stored bits are not read in yet: it
 * holds only bits added since (store_bm_add), and the stored ones are ORed
 * in when it is first changed otherwise, read, or flushed.  An ingest adds
 * bits to many bitmaps that are new (a source's) or that it would
 * otherwise read in random key order, one B-tree descent each; the flush
 * reads them in key order through one cursor instead.  Tagged in the low
 * bit of the table's value (roaring_bitmap_t is aligned). */
#define BM_PENDING ((uintptr_t)1)
static roaring_bitmap_t *bm_of(const void *v) {
  return (roaring_bitmap_t *)((uintptr_t)v & ~BM_PENDING);
}
static int bm_pending(const void *v) { return ((uintptr_t)v & BM_PENDING) != 0; }

/* OR the bitmap stored for key (committed, or flushed by this txn) into acc. */
static int stored_or(wd_txn *tx, const char *key, size_t klen, roaring_bitmap_t *acc) {
  if (cache_or(tx, key, klen, acc)) return 0;
  MDB_val k = {klen, (void *)key}, d;
  int rc = w_get(tx, tx->db->dbi_bitmaps, &k, &d);
  if (rc == MDB_NOTFOUND) return 0;
  if (rc) return store_mdb_err(tx->db, rc, "read bitmap");
  roaring_bitmap_t *bm;
  if ((rc = bm_decode(tx->db, &d, &bm))) return rc;
  roaring_bitmap_or_inplace(acc, bm);
  if (cache_offer(tx, key, klen, bm)) return 0;
  roaring_bitmap_free(bm);
  return 0;
}

int store_bm_or(wd_txn *tx, const char *key, size_t klen,
                roaring_bitmap_t *acc) {
  if (tx->write) {
    void *v = wd_hmap_get(&tx->bms, key, klen);
    if (v) {
      roaring_bitmap_or_inplace(acc, bm_of(v));
      if (!bm_pending(v)) return 0;
    }
  }
  return stored_or(tx, key, klen, acc);
}

int store_bm_mut(wd_txn *tx, const char *key, size_t klen,
                 roaring_bitmap_t **out) {
  wd_hmap_ent *e = wd_hmap_find(&tx->bms, key, klen);
  roaring_bitmap_t *c;
  if (e) {
    c = bm_of(e->val);
    if (bm_pending(e->val)) {
      int rc = stored_or(tx, key, klen, c);
      if (rc) return rc;
      e->val = c;
    }
  } else {
    c = roaring_bitmap_create();
    if (!c) return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
    int rc = stored_or(tx, key, klen, c);
    if (rc == 0 && wd_hmap_put(&tx->bms, key, klen, c, NULL) != 0)
      rc = wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
    if (rc) {
      roaring_bitmap_free(c);
      return rc;
    }
  }
  tx->changed = 1;
  *out = c;
  return 0;
}

int store_bm_add(wd_txn *tx, const char *key, size_t klen, const uint32_t *slots, size_t n) {
  wd_hmap_ent *e = wd_hmap_find(&tx->bms, key, klen);
  if (e) {
    roaring_bitmap_add_many(bm_of(e->val), n, slots);
  } else {
    roaring_bitmap_t *c = roaring_bitmap_create();
    if (!c) return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
    roaring_bitmap_add_many(c, n, slots);
    if (wd_hmap_put(&tx->bms, key, klen, (void *)((uintptr_t)c | BM_PENDING), NULL) != 0) {
      roaring_bitmap_free(c);
      return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
    }
  }
  tx->changed = 1;
  return 0;
}

int store_bm_walk(wd_txn *tx, const char *lo, size_t lolen, size_t plen,
                  const char *hi, size_t hilen, roaring_bitmap_t *acc,
                  int (*fn)(const char *key, size_t klen, void *ctx),
                  void *ctx) {
  /* Dirty bitmaps of a write transaction are flushed before walks are
   * needed (walks serve queries, which use read transactions). */
  MDB_cursor *c;
  int rc = mdb_cursor_open(tx->t, tx->db->dbi_bitmaps, &c);
  if (rc) return store_mdb_err(tx->db, rc, "open cursor");
  MDB_val k = {lolen, (void *)lo}, d;
  rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
  int ret = 0;
  while (rc == 0) {
    if (k.mv_size < plen || memcmp(k.mv_data, lo, plen) != 0) break;
    if (hi) {
      size_t m = k.mv_size < hilen ? k.mv_size : hilen;
      int cmp = memcmp(k.mv_data, hi, m);
      if (cmp > 0 || (cmp == 0 && k.mv_size > hilen)) break;
    }
    int take = fn ? fn(k.mv_data, k.mv_size, ctx) : 1;
    if (take < 0) {
      ret = take;
      break;
    }
    if (take && cache_or(tx, k.mv_data, k.mv_size, acc)) take = 0;
    if (take) {
      roaring_bitmap_t *bm;
      if ((ret = bm_decode(tx->db, &d, &bm))) break;
      roaring_bitmap_or_inplace(acc, bm);
      if (!cache_offer(tx, k.mv_data, k.mv_size, bm)) roaring_bitmap_free(bm);
    }
    rc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
  }
  if (!ret && rc && rc != MDB_NOTFOUND) ret = store_mdb_err(tx->db, rc, "walk");
  mdb_cursor_close(c);
  return ret;
}

/* ----------------------------------------------------------- documents */

size_t store_dockey(char *buf, const char *doc_id, size_t n) {
  if (n <= DOCKEY_PREFIX) {
    memcpy(buf, doc_id, n);
    return n;
  }
  memcpy(buf, doc_id, DOCKEY_PREFIX);
  buf[DOCKEY_PREFIX] = (char)0xff;
  buf[DOCKEY_PREFIX + 1] = 0;
  /* two 64-bit hashes with different seeds (golden-ratio constants) */
  uint64_t h1 = wd_hash64(doc_id, n, 0x9e3779b97f4a7c15ULL);
  uint64_t h2 = wd_hash64(doc_id, n, 0x3c6ef372fe94f82bULL);
  memcpy(buf + DOCKEY_PREFIX + 2, &h1, 8);
  memcpy(buf + DOCKEY_PREFIX + 10, &h2, 8);
  return DOCKEY_LEN;
}

int store_doc_get(wd_txn *tx, const char *doc_id, size_t n, json_t **rec) {
  char kb[512];
  MDB_val k = {store_dockey(kb, doc_id, n), kb}, d;
  int rc = w_get(tx, tx->db->dbi_docs, &k, &d);
  if (rc == MDB_NOTFOUND) return WARDEN_ENOTFOUND;
  if (rc) return store_mdb_err(tx->db, rc, "read document");
  json_t *j;
  if ((rc = doc_decode(tx->db, &d, &j))) return rc;
  json_t *id = json_object_get(j, "doc_id");
  if (json_string_length(id) != n || memcmp(json_string_value(id), doc_id, n) != 0) {
    json_decref(j);
    return wd_err(tx->db, WARDEN_ECORRUPT,
                  "document record for \"%.*s\" is damaged", (int)(n > 80 ? 80 : n),
                  doc_id);
  }
  /* staged by an ingest that has not published (engine/stage.h); a write
   * txn's own new slots are below its next_slot */
  json_t *s0 = json_array_get(json_object_get(j, "slots"), 0);
  if (!tx->write && !tx->pub_slot1) tx->pub_slot1 = store_meta_u64(tx, "next_slot") + 1;
  if (!tx->stage_live && json_is_integer(s0) &&
      (uint64_t)json_integer_value(s0) >= (tx->write ? tx->next_slot : tx->pub_slot1 - 1)) {
    json_decref(j);
    return WARDEN_ENOTFOUND;
  }
  *rec = j;
  return 0;
}

int store_doc_put(wd_txn *tx, const char *doc_id, size_t n, const json_t *rec) {
  char kb[512], sb[4096], *s;
  size_t sl;
  /* json_dumps(rec, JSON_COMPACT | JSON_REAL_PRECISION(17)), byte for
   * byte, mostly without its allocations (engine/jdump.h) */
  if (wd_jdump(rec, sb, sizeof sb, &s, &sl))
    return wd_err(tx->db, WARDEN_ENOMEM, "encode document: out of memory");
  int rc = put_val(tx, tx->db->dbi_docs, kb, store_dockey(kb, doc_id, n), s, sl,
                         "write document");
  if (s != sb) wd_free(s);
  return rc;
}

int store_doc_del(wd_txn *tx, const char *doc_id, size_t n) {
  char kb[512];
  MDB_val k = {store_dockey(kb, doc_id, n), kb};
  int rc = mdb_del(tx->t, tx->db->dbi_docs, &k, NULL);
  tx->changed = 1;
  return rc && rc != MDB_NOTFOUND ? store_mdb_err(tx->db, rc, "delete document")
                                  : 0;
}

/* -------------------------------------------------------------- chunks */

static void slotkey(unsigned char *b, uint32_t s) {
  b[0] = (unsigned char)(s >> 24);
  b[1] = (unsigned char)(s >> 16);
  b[2] = (unsigned char)(s >> 8);
  b[3] = (unsigned char)s;
}

int store_chunk_put(wd_txn *tx, uint32_t slot, uint32_t ord,
                    const char *doc_id, size_t dlen, const char *text,
                    size_t tlen) {
  unsigned char kb[4];
  slotkey(kb, slot);
  MDB_val k = {4, kb}, d = {8 + dlen + tlen + 4, NULL};
  int rc = w_put(tx, tx->db->dbi_chunks, &k, &d, MDB_RESERVE);
  if (rc) return store_mdb_err(tx->db, rc, "write chunk");
  uint32_t h[2] = {ord, (uint32_t)dlen};
  memcpy(d.mv_data, h, 8);
  memcpy((char *)d.mv_data + 8, doc_id, dlen);
  if (tlen) memcpy((char *)d.mv_data + 8 + dlen, text, tlen);
  uint32_t c = wd_crc32c(d.mv_data, 8 + dlen + tlen);
  memcpy((char *)d.mv_data + 8 + dlen + tlen, &c, 4);
  tx->changed = 1;
  return 0;
}

int store_chunk_get(wd_txn *tx, uint32_t slot, uint32_t *ord,
                    const char **doc_id, size_t *dlen, const char **text,
                    size_t *tlen) {
  unsigned char kb[4];
  slotkey(kb, slot);
  MDB_val k = {4, kb}, d;
  int rc = w_get(tx, tx->db->dbi_chunks, &k, &d);
  if (rc == MDB_NOTFOUND) return WARDEN_ENOTFOUND;
  if (rc) return store_mdb_err(tx->db, rc, "read chunk");
  size_t len;
  if ((rc = val_check(tx->db, &d, "chunk record", &len))) return rc;
  uint32_t h[2];
  if (len < 8) goto bad;
  memcpy(h, d.mv_data, 8);
  if (h[1] == 0 || (size_t)h[1] > len - 8 || h[1] > WD_MAX_DOCID) goto bad;
  *ord = h[0];
  *doc_id = (const char *)d.mv_data + 8;
  *dlen = h[1];
  *text = (const char *)d.mv_data + 8 + h[1];
  *tlen = len - 8 - h[1];
  return 0;
bad:
  return wd_err(tx->db, WARDEN_ECORRUPT, "chunk record %u is damaged", slot);
}

int store_chunk_del(wd_txn *tx, uint32_t slot) {
  unsigned char kb[4];
  slotkey(kb, slot);
  MDB_val k = {4, kb};
  int rc = mdb_del(tx->t, tx->db->dbi_chunks, &k, NULL);
  tx->changed = 1;
  return rc && rc != MDB_NOTFOUND ? store_mdb_err(tx->db, rc, "delete chunk") : 0;
}

/* ---------------------------------------------------------- embeddings */

/* Where each embedding block of a revision lies in the map, shared by a
 * handle's read transactions.  A sparse scan or a re-rank touches one
 * block per few vectors, and each lookup was a B-tree descent (mdb_get).
 * Blocks are only ever written by a commit that bumps the revision
 * (flush), and LMDB never moves or reuses a page the current tree still
 * references, so within one revision a block stays where it was found.
 * Offsets are kept relative to the map's base: a map that grows may move,
 * the file offsets do not (and a reader holds the map lock, so the map
 * cannot move under it).  A table is refcounted: the handle holds one
 * reference for the newest revision seen, each read transaction using it
 * another. */
typedef struct wd_blktab {
  uint64_t rev;
  uint32_t n;    /* blocks covered */
  int refs;      /* under db->blklock */
  uint64_t *off; /* atomic; 0 unknown, else offset from the map base + 1 */
} wd_blktab;

static void blktab_unref(warden *db, wd_blktab *t) { /* db->blklock held */
  (void)db;
  if (t && --t->refs == 0) {
    wd_free(t->off);
    wd_free(t);
  }
}

void store_blktab_free(warden *db) {
  pthread_mutex_lock(&db->blklock);
  blktab_unref(db, db->blktab);
  db->blktab = NULL;
  pthread_mutex_unlock(&db->blklock);
}

static wd_blktab *blktab_acquire(wd_txn *tx) {
  if (tx->blk_tried) return tx->blk;
  tx->blk_tried = 1;
  warden *db = tx->db;
  if (!db->map_base) return NULL;
  pthread_mutex_lock(&db->blklock);
  wd_blktab *t = db->blktab;
  if (t && t->rev == tx->rev) {
    t->refs++;
    tx->blk = t;
  } else if (!t || tx->rev > t->rev) {
    uint64_t nb = store_meta_u64(tx, "next_slot") / WD_BLOCK + 1;
    /* no more blocks than the map can hold: next_slot comes from the file,
     * and a damaged one asked for a 32 GiB table (fuzz_records, OOM);
     * blocks past the table are looked up in LMDB as before */
    uint64_t cap = db->mapsize / (block_floats(db) * sizeof(float)) + 1;
    if (nb > cap) nb = cap;
    wd_blktab *nt = nb <= UINT32_MAX ? wd_calloc(1, sizeof *nt) : NULL;
    if (nt && !(nt->off = wd_calloc((size_t)nb, sizeof *nt->off))) {
      wd_free(nt);
      nt = NULL;
    }
    if (nt) {
      nt->rev = tx->rev;
      nt->n = (uint32_t)nb;
      nt->refs = 2; /* the handle's and this transaction's */
      blktab_unref(db, t);
      db->blktab = nt;
      tx->blk = nt;
    }
  } /* an older snapshot than the table: plain lookups */
  pthread_mutex_unlock(&db->blklock);
  return tx->blk;
}

static void blktab_release(wd_txn *tx) {
  if (!tx->blk) return;
  pthread_mutex_lock(&tx->db->blklock);
  blktab_unref(tx->db, tx->blk);
  pthread_mutex_unlock(&tx->db->blklock);
  tx->blk = NULL;
}

int store_block_get(wd_txn *tx, uint32_t b, const float **base) {
  unsigned char kb[4];
  slotkey(kb, b);
  wd_blktab *t = NULL;
  if (tx->write) {
    float *c = wd_hmap_get(&tx->blocks, kb, 4);
    if (c) {
      *base = c;
      return 0;
    }
  } else if ((t = blktab_acquire(tx)) && b < t->n) {
    uint64_t o = __atomic_load_n(&t->off[b], __ATOMIC_RELAXED);
    if (o) {
      *base = (const float *)(tx->db->map_base + (o - 1));
      return 0;
    }
  }
  MDB_val k = {4, kb}, d;
  int rc = w_get(tx, tx->db->dbi_blocks, &k, &d);
  if (rc == MDB_NOTFOUND) return 1;
  if (rc) return store_mdb_err(tx->db, rc, "read embeddings");
  if (d.mv_size != block_floats(tx->db) * sizeof(float) || !val_in_map(tx->db, &d))
    return wd_err(tx->db, WARDEN_ECORRUPT,
                  "embedding block %u has %zu bytes, expected %zu", b,
                  d.mv_size, block_floats(tx->db) * sizeof(float));
  *base = d.mv_data;
  const char *p = d.mv_data, *mb = tx->db->map_base;
  if (t && b < t->n && p >= mb && (size_t)(p - mb) < tx->db->mapsize)
    __atomic_store_n(&t->off[b], (uint64_t)(p - mb) + 1, __ATOMIC_RELAXED);
  return 0;
}

static int block_mut(wd_txn *tx, uint32_t b, float **out) {
  unsigned char kb[4];
  slotkey(kb, b);
  float *c = wd_hmap_get(&tx->blocks, kb, 4);
  if (!c) {
    size_t nf = block_floats(tx->db);
    c = wd_malloc(nf * sizeof(float));
    if (!c) return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
    const float *cur;
    int rc = store_block_get(tx, b, &cur);
    if (rc < 0) {
      wd_free(c);
      return rc;
    }
    if (rc == 0)
      memcpy(c, cur, nf * sizeof(float));
    else
      memset(c, 0, nf * sizeof(float));
    if (wd_hmap_put(&tx->blocks, kb, 4, c, NULL) != 0) {
      wd_free(c);
      return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
    }
  }
  tx->changed = 1;
  *out = c;
  return 0;
}

int store_vec_put(wd_txn *tx, uint32_t slot, const float *v) {
  float *blk;
  int rc = block_mut(tx, slot / WD_BLOCK, &blk);
  if (rc) return rc;
  size_t dim = tx->db->cfg.dim, row = slot % WD_BLOCK;
  double n2 = 0;
  for (size_t i = 0; i < dim; i++) n2 += (double)v[i] * v[i];
  blk[row] = n2 > 0 ? (float)(1.0 / sqrt(n2)) : 0.0f;
  memcpy(blk + WD_BLOCK + row * dim, v, dim * sizeof(float));
  return 0;
}

int store_vec_zero(wd_txn *tx, uint32_t slot) {
  float *blk;
  int rc = block_mut(tx, slot / WD_BLOCK, &blk);
  if (rc) return rc;
  size_t dim = tx->db->cfg.dim, row = slot % WD_BLOCK;
  blk[row] = 0;
  memset(blk + WD_BLOCK + row * dim, 0, dim * sizeof(float));
  return 0;
}

/* ------------------------------------------------------------ lexicon */

int store_lex_get(wd_txn *tx, const void *key, size_t klen, const void **data, size_t *len) {
  if (!tx->db->have_lex) return WARDEN_ENOTFOUND;
  return get_val(tx, tx->db->dbi_lex, key, klen, data, len, "lexical index");
}

int store_lex_get_fast(wd_txn *tx, const void *key, size_t klen, const void **data, size_t *len) {
  if (!tx->db->have_lex) return WARDEN_ENOTFOUND;
  MDB_val k = {klen, (void *)key}, d;
  int rc = w_get(tx, tx->db->dbi_lex, &k, &d);
  if (rc == MDB_NOTFOUND) return WARDEN_ENOTFOUND;
  if (rc) return store_mdb_err(tx->db, rc, "lexical index");
  if (d.mv_size < 4 || !val_in_map(tx->db, &d))
    return wd_err(tx->db, WARDEN_ECORRUPT, "lexical index: a stored value is damaged");
  *data = d.mv_data;
  *len = d.mv_size - 4;
  return 0;
}

int store_lex_put(wd_txn *tx, const void *key, size_t klen, const void *data, size_t len) {
  if (!tx->db->have_lex) return wd_err(tx->db, WARDEN_EIO, "lexical index: not open");
  return put_val(tx, tx->db->dbi_lex, key, klen, data, len, "write lexical index");
}

int store_lex_del(wd_txn *tx, const void *key, size_t klen) {
  if (!tx->db->have_lex) return 0;
  MDB_val k = {klen, (void *)key};
  int rc = mdb_del(tx->t, tx->db->dbi_lex, &k, NULL);
  tx->changed = 1;
  return rc && rc != MDB_NOTFOUND ? store_mdb_err(tx->db, rc, "delete lexical entry") : 0;
}

int store_lex_walk(wd_txn *tx, const void *prefix, size_t plen,
                   int (*fn)(const void *key, size_t klen, const void *val, size_t vlen, void *ctx),
                   void *ctx) {
  if (!tx->db->have_lex) return 0;
  MDB_cursor *c;
  int rc = mdb_cursor_open(tx->t, tx->db->dbi_lex, &c);
  if (rc) return store_mdb_err(tx->db, rc, "open cursor");
  MDB_val k = {plen, (void *)prefix}, d;
  rc = plen ? mdb_cursor_get(c, &k, &d, MDB_SET_RANGE) : mdb_cursor_get(c, &k, &d, MDB_FIRST);
  int ret = 0;
  while (rc == 0) {
    if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0) break;
    size_t len = 0;
    const void *v = NULL;
    if (val_check(tx->db, &d, "lexical index", &len) == 0) v = d.mv_data;
    else len = 0;
    int r = fn(k.mv_data, k.mv_size, v, len, ctx);
    if (r) {
      ret = r < 0 ? r : 0;
      break;
    }
    rc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
  }
  if (!ret && rc && rc != MDB_NOTFOUND) ret = store_mdb_err(tx->db, rc, "walk lexical index");
  mdb_cursor_close(c);
  return ret;
}

/* ------------------------------------------ the generic door (store.h) */

static MDB_dbi dbi_of(const warden *db, wd_db which) {
  switch (which) {
    case WD_DB_META: return db->dbi_meta;
    case WD_DB_DOCS: return db->dbi_docs;
    case WD_DB_CHUNKS: return db->dbi_chunks;
    case WD_DB_BLOCKS: return db->dbi_blocks;
    case WD_DB_BITMAPS: return db->dbi_bitmaps;
    case WD_DB_PRINC: return db->dbi_princ;
    case WD_DB_GRANTS: return db->dbi_grants;
  }
  return db->dbi_meta;
}

int store_put_val(wd_txn *tx, wd_db which, const void *key, size_t klen, const void *data,
                  size_t len, const char *what) {
  return put_val(tx, dbi_of(tx->db, which), key, klen, data, len, what);
}

int store_get_val(wd_txn *tx, wd_db which, const void *key, size_t klen, const void **data,
                  size_t *len, const char *what) {
  return get_val(tx, dbi_of(tx->db, which), key, klen, data, len, what);
}

int store_del_val(wd_txn *tx, wd_db which, const void *key, size_t klen, const char *what) {
  MDB_val k = {klen, (void *)key};
  int rc = mdb_del(tx->t, dbi_of(tx->db, which), &k, NULL);
  if (rc == MDB_NOTFOUND) return 0;
  return rc ? store_mdb_err(tx->db, rc, what) : 0;
}

int store_get_strings(wd_txn *tx, wd_db which, const char *key, size_t klen, const char *what,
                      json_t **out) {
  return get_strings(tx, dbi_of(tx->db, which), key, klen, what, out);
}

int store_directory_get(wd_txn *tx, const char *p, size_t n, json_t **out) {
  return get_strings(tx, tx->db->dbi_princ, p, n, "directory entry", out);
}

int store_grants_get(wd_txn *tx, const char *p, size_t n, json_t **out) {
  return get_strings(tx, tx->db->dbi_grants, p, n, "grants", out);
}

int store_doc_decode(warden *db, const void *val, size_t len, json_t **rec) {
  MDB_val v = {len, (void *)val};
  return doc_decode(db, &v, rec);
}

int store_bm_decode(warden *db, const void *val, size_t len, roaring_bitmap_t **bm) {
  MDB_val v = {len, (void *)val};
  return bm_decode(db, &v, bm);
}

int store_count(wd_txn *tx, wd_db which, uint64_t *n) {
  MDB_stat st;
  int rc = mdb_stat(tx->t, dbi_of(tx->db, which), &st);
  if (rc) return store_mdb_err(tx->db, rc, "count entries");
  *n = st.ms_entries;
  return 0;
}

int store_iter_begin(wd_txn *tx, wd_db which, const void *from, size_t flen, const char *what,
                     wd_iter *it) {
  memset(it, 0, sizeof *it);
  it->tx = tx;
  it->what = what;
  it->from = from;
  it->flen = flen;
  MDB_cursor *c;
  int rc = mdb_cursor_open(tx->t, dbi_of(tx->db, which), &c);
  if (rc) return store_mdb_err(tx->db, rc, what);
  it->cursor = c;
  return 0;
}

int store_iter_next(wd_iter *it) {
  MDB_cursor *c = it->cursor;
  if (!c) return 0;
  MDB_val k = {it->flen, (void *)it->from}, d;
  int rc = it->started ? mdb_cursor_get(c, &k, &d, MDB_NEXT)
           : it->from  ? mdb_cursor_get(c, &k, &d, MDB_SET_RANGE)
                       : mdb_cursor_get(c, &k, &d, MDB_FIRST);
  it->started = 1;
  if (rc == MDB_NOTFOUND) return 0;
  if (rc) return store_mdb_err(it->tx->db, rc, it->what);
  it->key = k.mv_data;
  it->klen = k.mv_size;
  it->val = d.mv_data;
  it->vlen = d.mv_size;
  return 1;
}

void store_iter_end(wd_iter *it) {
  if (it->cursor) mdb_cursor_close(it->cursor);
  it->cursor = NULL;
}

int store_copy_compact(warden *db, const char *dir, const char *what) {
  pthread_rwlock_rdlock(&db->maplock); /* no map resize during the copy */
  int rc = mdb_env_copy2(db->env, dir, MDB_CP_COMPACT);
  pthread_rwlock_unlock(&db->maplock);
  return rc ? store_mdb_err(db, rc, what) : 0;
}

warden *store_txn_handle(wd_txn *tx) { return tx->db; }

/* ---------------------------------------------------- staged ingest */

int store_stage_commit(wd_txn *tx, uint32_t hold, float **held) {
  warden *db = tx->db;
  *held = NULL;
  int rc = flush_bitmaps(tx);
  if (!rc) rc = flush_blocks(tx, hold);
  if (!rc && hold != UINT32_MAX) {
    unsigned char kb[4];
    slotkey(kb, hold);
    *held = wd_hmap_get(&tx->blocks, kb, 4);
    wd_hmap_free(&tx->blocks); /* the held block is the only one left */
    memset(&tx->blocks, 0, sizeof tx->blocks);
  }
  free_caches(tx);
  if (rc) {
    mdb_txn_abort(tx->t);
  } else {
    int mrc = mdb_txn_commit(tx->t);
    if (mrc) rc = store_mdb_err(db, mrc, "commit staged ingest");
  }
  tx->t = NULL;
  pthread_rwlock_unlock(&db->maplock);
  if (rc && *held) {
    wd_free(*held);
    *held = NULL;
  }
  return rc;
}

int store_block_give(wd_txn *tx, uint32_t b, float *blk) {
  unsigned char kb[4];
  slotkey(kb, b);
  void *old = NULL;
  if (wd_hmap_put(&tx->blocks, kb, 4, blk, &old)) {
    wd_free(blk);
    return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
  }
  if (old) wd_free(old);
  tx->changed = 1;
  return 0;
}

int store_block_del(wd_txn *tx, uint32_t b) {
  unsigned char kb[4];
  slotkey(kb, b);
  MDB_val k = {4, kb};
  int rc = mdb_del(tx->t, tx->db->dbi_blocks, &k, NULL);
  if (rc == MDB_NOTFOUND) return 0;
  return rc ? store_mdb_err(tx->db, rc, "delete embeddings") : 0;
}

int store_meta_del(wd_txn *tx, const char *key) {
  MDB_val k = {strlen(key), (void *)key};
  int rc = mdb_del(tx->t, tx->db->dbi_meta, &k, NULL);
  if (rc == MDB_NOTFOUND) return 0;
  return rc ? store_mdb_err(tx->db, rc, "delete meta") : 0;
}

int store_chunk_next(wd_txn *tx, uint32_t from, uint32_t *slot) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(tx->t, tx->db->dbi_chunks, &c);
  if (rc) return store_mdb_err(tx->db, rc, "read chunks");
  unsigned char kb[4];
  slotkey(kb, from);
  MDB_val k = {4, kb}, d;
  rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
  mdb_cursor_close(c);
  if (rc == MDB_NOTFOUND) return 1;
  if (rc) return store_mdb_err(tx->db, rc, "read chunks");
  if (k.mv_size != 4) return wd_err(tx->db, WARDEN_ECORRUPT, "bad chunk key");
  const unsigned char *p = k.mv_data;
  *slot = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
  return 0;
}

uint64_t store_count_from(wd_txn *tx, int which, uint32_t from) {
  MDB_cursor *c;
  if (mdb_cursor_open(tx->t, which ? tx->db->dbi_blocks : tx->db->dbi_chunks, &c)) return 0;
  unsigned char kb[4];
  slotkey(kb, from);
  MDB_val k = {4, kb}, d;
  uint64_t n = 0;
  for (int rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(c, &k, &d, MDB_NEXT))
    n++;
  mdb_cursor_close(c);
  return n;
}

int store_bm_keys(wd_txn *tx, const char *after, size_t alen,
                  int (*fn)(const char *key, size_t klen, uint32_t max_slot, void *ctx),
                  void *ctx) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(tx->t, tx->db->dbi_bitmaps, &c);
  if (rc) return store_mdb_err(tx->db, rc, "read bitmaps");
  MDB_val k = {alen, (void *)after}, d;
  rc = alen ? mdb_cursor_get(c, &k, &d, MDB_SET_RANGE) : mdb_cursor_get(c, &k, &d, MDB_FIRST);
  if (rc == 0 && alen && k.mv_size == alen && memcmp(k.mv_data, after, alen) == 0)
    rc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
  int out = 0;
  while (rc == 0) {
    roaring_bitmap_t *bm = NULL;
    uint32_t mx = 0;
    if (bm_decode(tx->db, &d, &bm) == 0) {
      if (!roaring_bitmap_is_empty(bm)) mx = roaring_bitmap_maximum(bm);
      roaring_bitmap_free(bm);
    }
    if ((out = fn(k.mv_data, k.mv_size, mx, ctx))) break;
    rc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
  }
  mdb_cursor_close(c);
  if (out < 0) return out;
  if (rc && rc != MDB_NOTFOUND) return store_mdb_err(tx->db, rc, "read bitmaps");
  return 0;
}

/* ------------------------------------------------- page-cache warming */

/* On this project's VMs (and wherever the host backs guest memory
 * lazily) the first touch of a page costs ~2.7 s per GiB: a 1M x 384
 * ingest writes ~2.3 GB of new file pages, and the copy into fresh page
 * cache pages inside LMDB's commit (writev) ran at that price on the
 * thread that holds the write transaction, the ingest's bottleneck.  While
 * a staged ingest runs, a helper thread keeps the next `ahead` bytes
 * past the committed end of data.mdb allocated (fallocate, which only
 * ever grows the file) and in the page cache (readahead of the new,
 * zeroed range), so the commit copies into pages already there.  LMDB
 * (without MDB_WRITEMAP) only ever writes whole pages below its next page
 * number and never looks at the file's size; readers never read past
 * their snapshot's last page.  The stop cuts the file back to LMDB's end
 * while holding the write lock (no commit can extend it meanwhile).  A
 * kill -9 leaves at most that much zeroed tail, cut by the next staged
 * ingest.  WARDEN_INGEST_WARM=0 turns it off. */
typedef struct wd_warm {
  warden *db;
  int fd;
  uint64_t psize;
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
  uint64_t done;  /* warmed up to here (file bytes) */
  uint64_t ahead; /* how far past LMDB's end */
  int grew;      /* the file was extended past LMDB's end */
} wd_warm;

#define WARM_STEP ((uint64_t)8 << 20)

static uint64_t lmdb_end(wd_warm *w) {
  MDB_envinfo ei;
  if (mdb_env_info(w->db->env, &ei) != 0) return 0;
  return ((uint64_t)ei.me_last_pgno + 1) * w->psize;
}

static void *warm_main(void *arg) {
  wd_warm *w = arg;
  pthread_mutex_lock(&w->mu);
  while (!w->stop) {
    pthread_mutex_unlock(&w->mu);
    int worked = 0;
    uint64_t used = lmdb_end(w);
    if (used) {
      if (w->done < used) w->done = used;
      uint64_t want = used + w->ahead;
      if (w->done < want) {
        uint64_t n = want - w->done < WARM_STEP ? want - w->done : WARM_STEP;
        /* not supported, or no space: leave it to LMDB's own writes */
        if (fallocate(w->fd, 0, (off_t)w->done, (off_t)n) == 0) {
          pthread_mutex_lock(&w->mu);
          w->grew = 1;
          pthread_mutex_unlock(&w->mu);
          (void)readahead(w->fd, (off64_t)w->done, (size_t)n);
          w->done += n;
          worked = 1;
        }
      }
    }
    pthread_mutex_lock(&w->mu);
    if (!worked && !w->stop) { /* ahead: look again in 20 ms */
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 20 * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* Cut data.mdb back to LMDB's end (holding the write lock). */
static void warm_trim(warden *db, int fd, uint64_t psize) {
  MDB_txn *t;
  if (begin(db, 0, &t) != 0) return;
  MDB_envinfo ei;
  struct stat fs;
  if (mdb_env_info(db->env, &ei) == 0 && fstat(fd, &fs) == 0) {
    uint64_t end = ((uint64_t)ei.me_last_pgno + 1) * psize;
    if ((uint64_t)fs.st_size > end && ftruncate(fd, (off_t)end) == 0)
      __atomic_store_n(&db->file_size, (size_t)end, __ATOMIC_RELAXED);
  }
  mdb_txn_abort(t);
  pthread_rwlock_unlock(&db->maplock);
}

void *store_warm_start(warden *db, uint64_t ahead) {
  const char *e = getenv("WARDEN_INGEST_WARM");
  if (e && strcmp(e, "0") == 0) return NULL;
  MDB_stat es;
  int fd;
  if (mdb_env_get_fd(db->env, &fd) != 0 || mdb_env_stat(db->env, &es) != 0) return NULL;
  wd_warm *w = wd_calloc(1, sizeof *w);
  if (!w) return NULL;
  w->db = db;
  w->fd = fd;
  w->psize = es.ms_psize;
  w->ahead = ahead > WARM_STEP ? ahead : WARM_STEP;
  /* a tail a killed ingest left: cut it first */
  struct stat fs;
  uint64_t used = lmdb_end(w);
  if (used && fstat(fd, &fs) == 0 && (uint64_t)fs.st_size > used) w->grew = 1;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  if (pthread_create(&w->th, NULL, warm_main, w) != 0) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    wd_free(w);
    return NULL;
  }
  return w;
}

void store_warm_stop(void *h) {
  wd_warm *w = h;
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->th, NULL);
  if (w->grew) warm_trim(w->db, w->fd, w->psize);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  wd_free(w);
}
