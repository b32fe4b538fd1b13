/*
 * stage.c -- staged ingest: bounded staging transactions, one publish
 * transaction, reclaim of leftovers (the design is in stage.h).
 */
#include "engine/stage.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "engine/doc.h"
#include "engine/lexical.h"
#include "index/scan.h"

#define STAGE_KEY "stage"           /* meta: staged data may exist */
#define STAGE_DEFAULT_MB 256        /* new data per staging transaction */
#define RECLAIM_CHUNKS 20000        /* chunk records deleted per reclaim txn */
#define RECLAIM_BITMAPS 4096        /* bitmaps trimmed per reclaim txn */
#define PUBLISH_LEX_BATCH 4096      /* chunks tokenised per lexical call */

/* Crash-test hook (tests/crash/crash.py): WARDEN_CRASH_AT=POINT kills the
 * process with SIGKILL -- kill -9 exactly there -- at the first time it
 * reaches POINT: "stage-mid" (a staging txn written, not committed),
 * "stage-between" (after a staging commit), "publish-mid" (the publish
 * txn written, not committed), "publish-done" (committed, not yet
 * reported), "reclaim-mid" (after a reclaim commit). */
static void crash_point(const char *point) {
  const char *e = getenv("WARDEN_CRASH_AT");
  if (e && strcmp(e, point) == 0) raise(SIGKILL);
}

uint64_t wd_stage_cap(void) {
  const char *e = getenv("WARDEN_STAGE_MB");
  uint64_t mb = STAGE_DEFAULT_MB;
  if (e && *e) {
    char *end;
    unsigned long long v = strtoull(e, &end, 10);
    /* 0 (tests): stage every input, one staging txn per batch */
    if (*end == 0 && v == 0) return 1;
    if (*end == 0 && v >= 1 && v <= (1u << 20)) mb = v;
  }
  return mb << 20;
}

int wd_stage_lock(warden *db, int *fd) {
  char path[4096];
  snprintf(path, sizeof path, "%s/store/ingest.lock", db->dir);
  int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (f < 0) return wd_err(db, WARDEN_EIO, "%s: %s", path, strerror(errno));
  while (flock(f, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    close(f);
    return wd_err(db, WARDEN_EIO, "%s: lock: %s", path, strerror(e));
  }
  *fd = f;
  return 0;
}

void wd_stage_unlock(int *fd) {
  if (*fd > 0) close(*fd); /* closing releases the flock */
  *fd = -1;
}

/* ------------------------------------------------------------ reclaim */

/* The first slot of the first posting window that holds no published
 * slot: staging writes postings from there on (stage.h). */
static uint64_t lex_from(uint64_t pub) {
  return (pub + WD_LEX_WIN - 1) / WD_LEX_WIN * WD_LEX_WIN;
}


typedef struct {
  uint32_t from;
  char **keys;
  size_t *lens, n;
  char last[512];
  size_t lastlen;
  int oom;
} bmscan;

static int bm_collect(const char *key, size_t klen, uint32_t max_slot, void *ctx) {
  bmscan *b = ctx;
  memcpy(b->last, key, klen);
  b->lastlen = klen;
  if (max_slot < b->from) return 0;
  if (!(b->keys[b->n] = wd_malloc(klen ? klen : 1))) {
    b->oom = 1;
    return 1;
  }
  memcpy(b->keys[b->n], key, klen);
  b->lens[b->n++] = klen;
  return b->n == RECLAIM_BITMAPS;
}

static int commit_plain(wd_txn *tx) {
  float *held;
  return store_stage_commit(tx, UINT32_MAX, &held);
}

int wd_stage_reclaim(warden *db) {
  wd_txn tx;
  int rc = store_write_begin(db, &tx);
  if (rc) return rc;
  if (!store_meta_u64(&tx, STAGE_KEY)) {
    store_write_abort(&tx);
    return 0;
  }
  uint64_t pub = store_meta_u64(&tx, "next_slot");
  roaring_bitmap_t *view = roaring_bitmap_create(); /* sees staged records */
  if (!view) {
    store_write_abort(&tx);
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  }
  /* 1. staged chunk records and the new documents' records they name */
  uint32_t from = (uint32_t)pub, s;
  for (;;) {
    tx.stage_live = view;
    size_t n = 0;
    while (n < RECLAIM_CHUNKS && (rc = store_chunk_next(&tx, from, &s)) == 0) {
      uint32_t ord;
      const char *id, *text;
      size_t il, tl;
      if ((rc = store_chunk_get(&tx, s, &ord, &id, &il, &text, &tl)) == 0 && ord == 0) {
        json_t *rec = NULL;
        char idb[WD_MAX_DOCID + 1];
        size_t l = il > WD_MAX_DOCID ? WD_MAX_DOCID : il;
        memcpy(idb, id, l);
        if ((rc = store_doc_get(&tx, idb, l, &rec)) == 0) {
          json_t *s0 = json_array_get(json_object_get(rec, "slots"), 0);
          if (json_is_integer(s0) && (uint64_t)json_integer_value(s0) == s)
            rc = store_doc_del(&tx, idb, l);
          json_decref(rec);
        } else if (rc == WARDEN_ENOTFOUND || rc == WARDEN_ECORRUPT) {
          rc = 0; /* not ours to judge: warden check reports damage */
        }
      } else if (rc == WARDEN_ENOTFOUND || rc == WARDEN_ECORRUPT) {
        rc = 0;
      }
      /* its postings, written by staging from lex_from(pub) on */
      if (!rc && s >= lex_from(pub)) {
        rc = wd_lex_doc(&tx, &s, 1, 0);
        if (rc == WARDEN_ECORRUPT) rc = 0; /* no chunk record: nothing indexed */
      }
      if (!rc) rc = store_chunk_del(&tx, s);
      if (rc) break;
      from = s + 1;
      n++;
      if (s == UINT32_MAX) break;
    }
    if (rc < 0) goto fail;
    tx.stage_live = NULL;
    if ((rc = commit_plain(&tx))) goto out;
    crash_point("reclaim-mid");
    if ((rc = store_write_begin(db, &tx))) goto out;
    if (n < RECLAIM_CHUNKS) break;
  }
  /* 2. bits of staged slots in every bitmap */
  bmscan b;
  memset(&b, 0, sizeof b);
  b.from = (uint32_t)pub;
  b.keys = wd_malloc(RECLAIM_BITMAPS * sizeof *b.keys);
  b.lens = wd_malloc(RECLAIM_BITMAPS * sizeof *b.lens);
  if (!b.keys || !b.lens) {
    wd_free(b.keys);
    wd_free(b.lens);
    rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
    goto fail;
  }
  for (;;) {
    b.n = 0;
    size_t before = b.lastlen;
    char prev[512];
    memcpy(prev, b.last, before);
    rc = store_bm_keys(&tx, prev, before, bm_collect, &b);
    if (!rc && b.oom) rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
    for (size_t i = 0; i < b.n && !rc; i++) {
      roaring_bitmap_t *bm;
      if (!(rc = store_bm_mut(&tx, b.keys[i], b.lens[i], &bm)))
        roaring_bitmap_remove_range(bm, pub, (uint64_t)UINT32_MAX + 1);
    }
    int more = b.n == RECLAIM_BITMAPS;
    for (size_t i = 0; i < b.n; i++) wd_free(b.keys[i]);
    if (!rc) rc = commit_plain(&tx);
    else store_write_abort(&tx);
    if (!rc) rc = store_write_begin(db, &tx);
    if (rc || !more) break;
  }
  wd_free(b.keys);
  wd_free(b.lens);
  if (rc) goto out_open;
  /* 3. blocks wholly made of staged slots (the block holding slot pub is
   * never written by staging) and the mark */
  for (uint32_t blk = (uint32_t)((pub + WD_BLOCK - 1) / WD_BLOCK);; blk++) {
    const float *base;
    int r = store_block_get(&tx, blk, &base);
    if (r < 0) {
      rc = r;
      goto fail;
    }
    if (r == 1) break;
    if ((rc = store_block_del(&tx, blk))) goto fail;
  }
  if ((rc = store_meta_del(&tx, STAGE_KEY))) goto fail;
  rc = commit_plain(&tx);
  goto out;
out_open:
  if (tx.t) store_write_abort(&tx);
  goto out;
fail:
  tx.stage_live = NULL;
  store_write_abort(&tx);
out:
  roaring_bitmap_free(view);
  return rc;
}

/* ------------------------------------------------------------ staging */

static uint32_t held_block(const wd_stage *st) {
  return st->pub % WD_BLOCK ? (uint32_t)(st->pub / WD_BLOCK) : UINT32_MAX;
}

/* Hook the stage into a fresh write txn. */
static int attach(wd_stage *st, wd_txn *tx) {
  tx->stage_live = st->live;
  tx->stage_types = &st->types;
  tx->stage_lex_from = lex_from(st->pub);
  tx->next_slot = st->next_slot;
  st->tx_docs = tx->ndocs;
  st->tx_chunks = tx->nchunks;
  st->bytes = 0;
  if (st->pblk) {
    float *b = st->pblk;
    st->pblk = NULL;
    return store_block_give(tx, held_block(st), b);
  }
  return 0;
}

int wd_stage_start(wd_stage *st, warden *db, wd_txn *tx) {
  memset(st, 0, sizeof *st);
  st->db = db;
  st->cap = wd_stage_cap();
  st->pub = st->next_slot = tx->next_slot;
  if (!(st->live = roaring_bitmap_create()) || !(st->repl = json_array())) {
    wd_stage_free(st);
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  }
  st->on = 1;
  /* two staging txns' worth of new data (512 MiB by default) */
  st->warm = store_warm_start(db, 2 * st->cap);
  int rc = store_meta_put_u64(tx, STAGE_KEY, 1);
  if (!rc) rc = attach(st, tx);
  return rc;
}

/* Commit the current staging txn; the held block stays in st. */
static int stage_commit(wd_stage *st, wd_txn *tx) {
  st->next_slot = tx->next_slot;
  st->d_docs += (int64_t)tx->ndocs - (int64_t)st->tx_docs;
  st->d_chunks += (int64_t)tx->nchunks - (int64_t)st->tx_chunks;
  tx->stage_live = NULL;
  tx->stage_types = NULL;
  float *held = NULL;
  int rc = store_stage_commit(tx, held_block(st), &held);
  if (held) st->pblk = held;
  if (!rc) st->ntxn++;
  return rc;
}

int wd_stage_step(wd_stage *st, wd_txn *tx, uint64_t bytes) {
  if (!st->on) return 0;
  st->bytes += bytes;
  if (st->bytes < st->cap) return 0;
  crash_point("stage-mid");
  int rc = stage_commit(st, tx);
  if (!rc) crash_point("stage-between");
  /* the B-tree pages this ingest read through the map count in its
   * resident set and grow with the store, not the input: 3.5 GB of a 4 GB
   * peak RSS at 7M x 384, 0.7 GB of it its own memory */
  if (!rc) store_release_map(st->db);
  if (!rc) rc = store_write_begin(st->db, tx);
  if (!rc) rc = attach(st, tx);
  return rc;
}

/* The publish txn's work; tx is a plain write txn. */
static int publish(wd_stage *st, wd_txn *tx) {
  warden *db = st->db;
  int rc = 0;
  /* nothing written (every document refused with keep_going): the
   * revision stays, as for an ingest in one txn */
  if (roaring_bitmap_is_empty(st->live) && !st->types.n && !json_array_size(st->repl))
    return store_meta_del(tx, STAGE_KEY);
  tx->next_slot = st->next_slot;
  tx->ndocs = (uint64_t)((int64_t)tx->ndocs + st->d_docs);
  tx->nchunks = (uint64_t)((int64_t)tx->nchunks + st->d_chunks);
  tx->changed = 1;
  /* the held block: published rows as stored now, new rows from staging */
  if (st->pblk) {
    uint64_t end = (st->pub / WD_BLOCK + 1) * WD_BLOCK;
    if (end > st->next_slot) end = st->next_slot;
    for (uint64_t s = st->pub; s < end && !rc; s++)
      rc = store_vec_put(tx, (uint32_t)s,
                         st->pblk + WD_BLOCK + (size_t)(s % WD_BLOCK) * db->cfg.dim);
    if (rc) return rc;
  }
  WD_HMAP_FOREACH(&st->types, e) {
    char f[WD_MAX_KEYLEN + 1];
    size_t l = e->klen > WD_MAX_KEYLEN ? WD_MAX_KEYLEN : e->klen;
    memcpy(f, e->key, l);
    f[l] = 0;
    if (store_field_type(tx, f) == WD_T_NONE &&
        (rc = store_field_type_put(tx, f, (wd_type)((uintptr_t)e->val - 1))))
      return rc;
  }
  /* documents that replace stored ones: remove the old, store the new */
  size_t i;
  json_t *rec;
  json_array_foreach(st->repl, i, rec) {
    json_t *id = json_object_get(rec, "doc_id"), *old = NULL;
    rc = store_doc_get(tx, json_string_value(id), json_string_length(id), &old);
    if (rc == 0) {
      rc = doc_remove(tx, old);
      json_decref(old);
    } else if (rc == WARDEN_ENOTFOUND) {
      rc = 0; /* deleted meanwhile */
    }
    if (!rc) rc = store_doc_put(tx, json_string_value(id), json_string_length(id), rec);
    if (rc) return rc;
  }
  /* live bits of every new slot; postings of those that share a posting
   * window with published slots (at most WD_LEX_WIN - 1) */
  roaring_bitmap_t *L;
  char kb[8];
  if ((rc = store_bm_mut(tx, kb, store_key(kb, 'L', "", 0), &L))) return rc;
  roaring_bitmap_or_inplace(L, st->live);
  roaring_uint32_iterator_t *it = roaring_create_iterator(st->live);
  uint32_t *buf = wd_malloc(PUBLISH_LEX_BATCH * sizeof *buf);
  if (!it || !buf) rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
  uint64_t lf = lex_from(st->pub);
  while (!rc && it && it->has_value && it->current_value < lf) {
    uint32_t n = roaring_read_uint32_iterator(it, buf, PUBLISH_LEX_BATCH), m = 0;
    while (m < n && buf[m] < lf) m++;
    rc = wd_lex_doc(tx, buf, m, 1);
    if (m < n) break;
  }
  if (it) roaring_free_uint32_iterator(it);
  wd_free(buf);
  if (!rc) rc = store_meta_del(tx, STAGE_KEY);
  return rc;
}

int wd_stage_publish(wd_stage *st, wd_txn *tx, uint64_t *revision) {
  int rc = stage_commit(st, tx);
  if (rc) return rc;
  if ((rc = store_write_begin(st->db, tx))) return rc;
  if ((rc = publish(st, tx))) {
    store_write_abort(tx);
    return rc;
  }
  crash_point("publish-mid");
  rc = store_write_commit(tx, revision);
  if (!rc) crash_point("publish-done");
  return rc;
}

void wd_stage_free(wd_stage *st) {
  store_warm_stop(st->warm);
  if (st->live) roaring_bitmap_free(st->live);
  wd_hmap_free(&st->types);
  json_decref(st->repl);
  wd_hmap_free(&st->repl_ids);
  wd_free(st->pblk);
  memset(st, 0, sizeof *st);
}
