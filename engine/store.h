/*
 * store.h -- the collection's LMDB environment: the one door to LMDB.
 *
 * Layout (named databases in DIR/store/):
 *   meta     "revision" u64, "next_slot" u64, "docs" u64, "chunks" u64, "lexicon" u64
 *            (1: the lexical index covers every chunk, engine/lexical.h),
 *            "format" u64, "t:<field>" one byte wd_type (fixed field types)
 *   docs     doc key -> document record, JSON:
 *            {"doc_id","source","namespace","metadata","allow","deny","slots"}
 *            doc key = doc_id when <= 480 bytes, else its first 480 bytes +
 *            "\xff\x00" + 128-bit hash (LMDB keys are <= 511 bytes); the
 *            record holds the full id and is checked on every lookup.
 *   chunks   slot (u32 big-endian) -> [u32 ordinal][u32 id len][doc_id][text]
 *   blocks   block number (u32 BE) -> embedding block (index/scan.h layout:
 *            float invnorm[256]; float vec[256][dim]).  A block is one LMDB
 *            value of ~400 KB at d=384, so LMDB stores it on consecutive
 *            overflow pages: a scan reads each block as one contiguous run
 *            of memory straight from the map, with no copy.
 *   bitmaps  key -> CRoaring portable bitmap of slots:
 *            "L" live slots; "A"+principal allow; "D"+principal deny;
 *            "B"/"C"+field+bucket (numeric ranges, see store_nkey);
 *            "N"+namespace; "S"+source (first 500 bytes); "V"+field+"\0"+value (value encoded so that
 *            LMDB's byte order is the value order: strings raw, int64 and
 *            float64 as order-preserving big-endian, bool one byte) --
 *            equality is one get, ranges and prefixes one cursor walk.
 *   principals principal -> JSON array of its groups (the directory)
 *   grants   (resolver issue)
 *
 * Slots (chunk ids) are dense u32 handed out in insertion order and never
 * reused: an upsert gets new slots and frees the old ones (rows zeroed,
 * bits cleared).  Derived indexes can thus name chunks by slot.
 *
 * Write transactions keep dirty bitmaps and blocks in memory and write each
 * once at commit, so a bulk ingest rewrites a bitmap once, not per document.
 * store_write() reruns an operation after growing the map on MDB_MAP_FULL,
 * so operations must be re-runnable from their context.
 */
#ifndef WD_STORE_H
#define WD_STORE_H
#include <jansson.h>
#include <roaring/roaring.h>

#include "base/crc.h"
#include "acl/acl_store.h"
#include "acl/names.h"
#include "base/hmap.h"
#include "engine/wd_internal.h"

#define WD_EMAPFULL (-30999) /* internal: the map must grow, rerun the op */
#define WD_MAX_DOCID 1024
#define WD_MAX_KEYLEN 128    /* metadata key */
#define WD_MAX_STRVAL 256    /* metadata string value / list element */
#define WD_MAX_SLOTS 0xFFFFFF00u

typedef struct wd_txn {
  warden *db;
  MDB_txn *t;
  int write;
  int changed;       /* something was written: bump the revision */
  wd_hmap bms;       /* dirty bitmaps: key -> roaring_bitmap_t* */
  wd_hmap blocks;    /* dirty blocks: u32 block -> float* */
  uint64_t next_slot, ndocs, nchunks; /* write txn counters */
  uint64_t rev;      /* read txn: the snapshot's revision (bitmap cache key) */
  struct wd_blktab *blk; /* read txn: block locations of rev (see store.c) */
  int blk_tried;
  struct wd_lexw *lex;   /* write txn: dirty lexical entries (lexical.c) */
  /* A staged ingest's write txns (engine/stage.h): the new slots' live
   * bits wait for the publish txn (stage_live collects the slots), and so
   * do the postings of those in the posting window of the first new slot;
   * new field types wait in stage_types; the txn sees staged document
   * records.  NULL in every other txn. */
  roaring_bitmap_t *stage_live;
  wd_hmap *stage_types; /* field -> (void *)(uintptr_t)(wd_type + 1) */
  uint64_t stage_lex_from; /* new slots from here on get postings now */
  uint64_t pub_slot1;      /* read txn: meta next_slot + 1, 0 until read */
  /* ingest: the chunk tokens of the document doc_index is adding, counted
   * ahead (lexical.h wd_lexpre; from chunk lex_pre_first on); NULL: read
   * the texts back from the chunk records */
  const struct wd_lexpre *lex_pre;
  size_t lex_pre_first;
  /* write txn: one cursor per database, opened on first use and kept
   * where its last put or get left it (store.c wcur) */
  MDB_cursor *wc[16];
} wd_txn;

/* Decoded bitmaps of the newest revision seen, shared by a handle's read
 * transactions: a bitmap never changes within a revision (every committed
 * write bumps it), so (revision, key) names one immutable bitmap and
 * queries need not decode and checksum the same bitmaps again.  Only read
 * transactions use it; a snapshot older than the cache's revision bypasses
 * it; a newer one empties it. */
typedef struct wd_bmcache {
  pthread_mutex_t mu; /* first: store_lazy_cache initialises it */
  uint64_t rev;
  wd_hmap map; /* key -> roaring_bitmap_t* */
  size_t bytes;
} wd_bmcache;
void store_bmcache_free(wd_bmcache *c);
/* The handle's cache in *slot, created zeroed on first use (thread-safe).
 * The cache struct must begin with its pthread_mutex_t, which this
 * initialises.  NULL when out of memory (callers then run uncached). */
void *store_lazy_cache(warden *db, void **slot, size_t size);
/* Drop the handle's table of embedding-block locations (at close). */
void store_blktab_free(warden *db);

int store_open(warden *db, const char *dir, int create, char *err,
               size_t errlen);
void store_close(warden *db);

/* Begin / end a read-only snapshot.  Thread-safe. */
int store_read_begin(warden *db, wd_txn *tx);
void store_read_end(wd_txn *tx);

/* Run op in a write transaction: op returns 0 to commit, negative to abort
 * (that code is returned).  Reruns op after growing the map when it returns
 * WD_EMAPFULL.  *revision (may be NULL) receives the committed revision, or
 * the current one when op changed nothing. */
int store_write(warden *db, int (*op)(wd_txn *tx, void *ctx), void *ctx,
                uint64_t *revision);

/* A write transaction held open across calls (bulk loads: engine/ingest.c).
 * store_reserve grows the map, before the transaction begins, so that the
 * file may grow by extra bytes without MDB_MAP_FULL (address space only:
 * the file grows as pages are written).  A long transaction cannot be
 * rerun, so WD_EMAPFULL from it is final for it.  store_write_spill writes
 * the dirty blocks (all but the one next_slot falls in) and, when more
 * than max_bitmaps are dirty, the dirty bitmaps into the transaction and
 * frees their copies, and the dirty lexical entries once they hold more
 * than WD_SPILL_LEX bytes (each spill of them writes every touched term's
 * slot bitmap and directory, so they are spilled by their own size and
 * not with the bitmaps): what the transaction holds in memory stays bounded
 * (LMDB keeps its own dirty pages; see README "Bulk ingest").  commit
 * flushes, bumps the revision when something changed and commits; abort
 * discards.  Both end the transaction. */
int store_reserve(warden *db, uint64_t extra);
int store_write_begin(warden *db, wd_txn *tx);
#define WD_SPILL_LEX ((size_t)128 << 20)
int store_write_spill(wd_txn *tx, size_t max_bitmaps);
int store_write_commit(wd_txn *tx, uint64_t *revision);
void store_write_abort(wd_txn *tx);
/* Drop this process's page-table entries for the LMDB map (MADV_DONTNEED
 * on a shared file mapping: the pages stay in the page cache and fault
 * back in, the same bytes, on the next read; safe with readers running).
 * A staged ingest calls it after each staging commit, so that its
 * resident set stays bounded while the store grows. */
void store_release_map(warden *db);
/* For long scans of the store (index builds, check): every 256th call
 * (any thread), release the map when this process's resident file pages
 * (/proc/self/statm) exceed WD_MAP_RESIDENT_CAP.  Those pages are the
 * store's embeddings read through the map: without this an index build
 * of 10M x 384 showed 21-23 GiB of RSS, nearly all of it page cache. */
#define WD_MAP_RESIDENT_CAP ((size_t)1 << 30)
void store_bound_map(warden *db);

/* Values of docs, chunks, bitmaps, principals and grants end with a
 * CRC-32C of the bytes before it, so a flipped byte on disk is refused
 * (WARDEN_ECORRUPT) instead of being returned as data.  Embedding blocks
 * carry none: a checksum over ~400 KB per block would cost the scan a
 * third of its speed, and a damaged vector can change a score, never who
 * may read what. */
/* The named databases (layout above), for the generic calls below. */
typedef enum wd_db {
  WD_DB_META,
  WD_DB_DOCS,
  WD_DB_CHUNKS,
  WD_DB_BLOCKS,
  WD_DB_BITMAPS,
  WD_DB_PRINC,
  WD_DB_GRANTS
} wd_db;
/* Put data with its CRC under key. */
int store_put_val(wd_txn *tx, wd_db which, const void *key, size_t klen, const void *data,
                  size_t len, const char *what);
/* Get and verify: WARDEN_ENOTFOUND when absent; *data borrowed until the
 * end of the transaction. */
int store_get_val(wd_txn *tx, wd_db which, const void *key, size_t klen, const void **data,
                  size_t *len, const char *what);
/* Delete key (absent: not an error).  Does not mark tx changed. */
int store_del_val(wd_txn *tx, wd_db which, const void *key, size_t klen, const char *what);
/* A value holding a JSON array of strings (directory entries, grants):
 * *out a new reference, an empty array when key is absent (or too long to
 * be a key); WARDEN_ECORRUPT when the value is damaged. */
int store_get_strings(wd_txn *tx, wd_db which, const char *key, size_t klen, const char *what,
                      json_t **out);
/* Decode a document record value (CRC, JSON, shape), e.g. from an
 * iterator. */
int store_doc_decode(warden *db, const void *val, size_t len, json_t **rec);
/* Decode a bitmap value (CRC, CRoaring portable format). */
int store_bm_decode(warden *db, const void *val, size_t len, roaring_bitmap_t **bm);
/* Number of entries in a database. */
int store_count(wd_txn *tx, wd_db which, uint64_t *n);

/* Walk one database in key order, from the first key >= from (from NULL:
 * the first key):
 *     wd_iter it;
 *     if ((rc = store_iter_begin(tx, WD_DB_DOCS, NULL, 0, "export", &it))) ...
 *     while ((rc = store_iter_next(&it)) == 1) use it.key/klen, it.val/vlen;
 *     store_iter_end(&it);            rc: 0 at the end, negative on error
 * Keys and values are borrowed until the next call; values are raw (no
 * CRC check: decode them with store_doc_decode etc.).  what names the walk
 * in error messages. */
typedef struct wd_iter {
  const void *key, *val;
  size_t klen, vlen;
  /* private */
  wd_txn *tx;
  void *cursor;
  const void *from;
  size_t flen;
  const char *what;
  int started;
} wd_iter;
int store_iter_begin(wd_txn *tx, wd_db which, const void *from, size_t flen, const char *what,
                     wd_iter *it);
int store_iter_next(wd_iter *it);
void store_iter_end(wd_iter *it);

/* A compacted copy of the store (one snapshot) into directory dir
 * (engine/backup.c). */
int store_copy_compact(warden *db, const char *dir, const char *what);

/* Map an LMDB return code to a warden code with a message. */
int store_mdb_err(warden *db, int rc, const char *what);

uint64_t store_meta_u64(wd_txn *tx, const char *key); /* 0 when missing */
int store_meta_put_u64(wd_txn *tx, const char *key, uint64_t v);
wd_type store_field_type(wd_txn *tx, const char *field);
int store_field_type_put(wd_txn *tx, const char *field, wd_type t);

/* Bitmap keys (store_key, store_bm_or and store_bm_walk, which the
 * permission code uses too, are declared in acl/acl_store.h; store_bm_or
 * reads through a write transaction's dirty bitmaps). */
size_t store_vkey(char *buf, const char *field, const wd_value *v);
/* Numeric values also live in bucket bitmaps so a range over a field with
 * many distinct values reads few bitmaps: "B"+field+"\0"+top 7 bytes of the
 * encoding (256 consecutive encodings) and "C"+... top 6 bytes (65536).
 * store_num_enc: the order-preserving u64 of an int or float value. */
uint64_t store_num_enc(const wd_value *v);
size_t store_nkey(char *buf, char kind, const char *field, uint64_t enc, int nbytes);
/* Bitmaps derived from stored ones (e.g. a query's allowed set), kept in
 * the same per-revision cache: key must start with a NUL byte (stored
 * bitmap keys never do).  get: 1 with *out a new copy, or 0 (not cached,
 * or a write transaction).  put: offers a copy; failing is not an error. */
int store_derived_get(wd_txn *tx, const char *key, size_t klen, roaring_bitmap_t **out);
void store_derived_put(wd_txn *tx, const char *key, size_t klen, const roaring_bitmap_t *bm);

/* A mutable bitmap for key in a write txn (loaded or created, cached). */
int store_bm_mut(wd_txn *tx, const char *key, size_t klen,
                 roaring_bitmap_t **bm);
/* Add slots[0..n) to key's bitmap in a write txn without reading the
 * stored one now: it is merged when the bitmap is next read, changed by
 * store_bm_mut, or flushed (store.c BM_PENDING). */
int store_bm_add(wd_txn *tx, const char *key, size_t klen, const uint32_t *slots, size_t n);
/* Documents. */
size_t store_dockey(char *buf, const char *doc_id, size_t n); /* buf>=512 */
int store_doc_get(wd_txn *tx, const char *doc_id, size_t n, json_t **rec);
int store_doc_put(wd_txn *tx, const char *doc_id, size_t n, const json_t *rec);
int store_doc_del(wd_txn *tx, const char *doc_id, size_t n);

/* Chunks: pointers returned by store_chunk_get are valid until the end of
 * the transaction. */
int store_chunk_put(wd_txn *tx, uint32_t slot, uint32_t ord,
                    const char *doc_id, size_t dlen, const char *text,
                    size_t tlen);
int store_chunk_get(wd_txn *tx, uint32_t slot, uint32_t *ord,
                    const char **doc_id, size_t *dlen, const char **text,
                    size_t *tlen);
int store_chunk_del(wd_txn *tx, uint32_t slot);

/* Embeddings. */
int store_vec_put(wd_txn *tx, uint32_t slot, const float *v);
int store_vec_zero(wd_txn *tx, uint32_t slot);
/* Block b (0 found, 1 absent, <0 error); *base valid until txn end. */
int store_block_get(wd_txn *tx, uint32_t b, const float **base);

/* The lexicon database (engine/lexical.h holds its layout).  get:
 * WARDEN_ENOTFOUND when absent (always, for a collection opened read-only
 * that has no lexicon yet); the value's CRC is checked; *data borrowed
 * until the end of the transaction.  walk: every key starting with prefix,
 * in key order, fn(key, klen, val, vlen, ctx) with val CRC-checked (NULL,
 * vlen 0 when it fails its checksum); fn returns 0 to go on, nonzero to
 * stop (a negative value is returned as the error). */
int store_lex_get(wd_txn *tx, const void *key, size_t klen, const void **data, size_t *len);
/* The same without verifying the CRC (the value is bounds-checked; *len
 * excludes the CRC): for posting blocks and chunk lengths on the query
 * path, which like embedding blocks are read in bulk per query.  Damage
 * there can change a score, never which chunks may be returned (the
 * allowed set gates every posting); warden check verifies their CRCs. */
int store_lex_get_fast(wd_txn *tx, const void *key, size_t klen, const void **data, size_t *len);
int store_lex_put(wd_txn *tx, const void *key, size_t klen, const void *data, size_t len);
int store_lex_del(wd_txn *tx, const void *key, size_t klen);
int store_lex_walk(wd_txn *tx, const void *prefix, size_t plen,
                   int (*fn)(const void *key, size_t klen, const void *val, size_t vlen, void *ctx),
                   void *ctx);

/* ---------------------------------------------------- staged ingest
 * Primitives of engine/stage.c.  Published = below the meta "next_slot":
 * records, chunks, rows and bits of slots at or above it are invisible to
 * every reader (store_doc_get hides a record whose first slot is not
 * published, except in a stager's txn). */
/* Commit a staging txn: writes the dirty bitmaps and blocks but neither the
 * counters nor the revision.  Block hold (UINT32_MAX: none) is not written:
 * *held receives it (wd_free), NULL when it was not dirty.  Ends the txn. */
int store_stage_commit(wd_txn *tx, uint32_t hold, float **held);
/* Make blk (wd_malloc'd, taken over) the dirty copy of block b. */
int store_block_give(wd_txn *tx, uint32_t b, float *blk);
int store_block_del(wd_txn *tx, uint32_t b);
int store_meta_del(wd_txn *tx, const char *key);
/* The first chunk slot >= from: 0 with *slot, 1 when none, <0 error. */
int store_chunk_next(wd_txn *tx, uint32_t from, uint32_t *slot);
/* Entries of chunks (which 0) or blocks (which 1) with key >= from. */
uint64_t store_count_from(wd_txn *tx, int which, uint32_t from);
/* Call fn for bitmap keys > after (alen 0: from the first) in key order
 * until fn returns nonzero (1: stop, <0: error returned).  *max_slot is
 * the bitmap's largest slot (0 when empty or undecodable). */
int store_bm_keys(wd_txn *tx, const char *after, size_t alen,
                  int (*fn)(const char *key, size_t klen, uint32_t max_slot, void *ctx),
                  void *ctx);

/* A staged ingest's page-cache warming thread (store.c), keeping `ahead`
 * bytes past LMDB's end warm (at least 8 MiB): start returns
 * NULL when off or unavailable (nothing changes then); stop joins it and
 * cuts data.mdb back to LMDB's end.  Call stop with no txn open on the
 * calling thread. */
void *store_warm_start(warden *db, uint64_t ahead);
void store_warm_stop(void *w);
#endif
