/*
 * collection.c -- create, open, close; stats, check, export, delete.
 *
 * A collection directory holds warden.yaml and store/ (LMDB).  The
 * dimension and metric are recorded in the store too, so a warden.yaml
 * edited to disagree with the stored vectors is refused at open instead of
 * silently misreading embeddings.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acl.h"
#include "audit.h"
#include "doc.h"
#include "indexer.h"
#include "lexical.h"
#include "resolver.h"
#include "search.h"
#include "embed.h"
#include "scan.h"
#include "store.h"

static void set_err(char *buf, size_t len, const char *msg) {
  if (buf && len) snprintf(buf, len, "%s", msg);
}

static warden *handle_new(void) {
  warden *db = wd_calloc(1, sizeof *db);
  if (!db) return NULL;
  if (pthread_key_create(&db->errkey, free) != 0) {
    wd_free(db);
    return NULL;
  }
  pthread_rwlock_init(&db->maplock, NULL);
  pthread_mutex_init(&db->growlock, NULL);
  pthread_mutex_init(&db->blklock, NULL);
  pthread_mutex_init(&db->annlock, NULL);
  db->pid = getpid();
  db->lockfd = -1;
  return db;
}

static void handle_free(warden *db) {
  wd_search_close(db);
  wd_resolver_close(db->resolver);
  wd_audit_close(db->audit);
  store_bmcache_free(db->bmcache);
  wd_doccache_free(db->doccache);
  store_blktab_free(db);
  store_close(db);
  wd_config_free(&db->cfg);
  wd_free(db->dir);
  void *own = pthread_getspecific(db->errkey);
  free(own);
  pthread_setspecific(db->errkey, NULL);
  pthread_key_delete(db->errkey);
  pthread_rwlock_destroy(&db->maplock);
  pthread_mutex_destroy(&db->growlock);
  pthread_mutex_destroy(&db->blklock);
  pthread_mutex_destroy(&db->annlock);
  if (db->lockfd >= 0) close(db->lockfd);
  wd_free(db);
}

static int put_schema(wd_txn *tx, void *ctx) {
  (void)ctx;
  int rc = store_meta_put_u64(tx, "dim", tx->db->cfg.dim);
  if (!rc) rc = store_meta_put_u64(tx, "metric", (uint64_t)tx->db->cfg.metric);
  tx->changed = 0; /* schema, not data: an empty collection is revision 0 */
  return rc;
}

int warden_create(const char *dir, const warden_create_opts *opts, char *errbuf,
                  size_t errlen) {
  char msg[1024], path[4096];
  if (!dir || !*dir) {
    set_err(errbuf, errlen, "init: no directory given");
    return WARDEN_EINVAL;
  }
  warden_create_opts o = {0, NULL, NULL};
  if (opts) o = *opts;
  wd_config cfg;
  wd_config_defaults(&cfg);
  int rc;
  if (o.config_path) {
    if ((rc = wd_config_load(o.config_path, &cfg, msg, sizeof msg))) {
      set_err(errbuf, errlen, msg);
      return rc;
    }
    if (o.dim && o.dim != cfg.dim) {
      snprintf(msg, sizeof msg, "--dim %u disagrees with %s (dimension: %u)", o.dim,
               o.config_path, cfg.dim);
      goto usage;
    }
    if (o.metric && wd_metric_parse(o.metric) != cfg.metric) {
      snprintf(msg, sizeof msg, "--metric %s disagrees with %s (metric: %s)", o.metric,
               o.config_path, wd_metric_name(cfg.metric));
      goto usage;
    }
  } else {
    if (o.dim == 0 || o.dim > 65536) {
      snprintf(msg, sizeof msg, "init: --dim must be 1..65536");
      goto usage;
    }
    cfg.dim = o.dim;
    if (o.metric) {
      int m = wd_metric_parse(o.metric);
      if (m < 0) {
        snprintf(msg, sizeof msg, "init: --metric must be cosine, l2 or ip, not \"%s\"", o.metric);
        goto usage;
      }
      cfg.metric = m;
    }
  }
  int made_dir = mkdir(dir, 0755) == 0;
  if (!made_dir && errno != EEXIST) {
    snprintf(msg, sizeof msg, "%s: %s", dir, strerror(errno));
    wd_config_free(&cfg);
    set_err(errbuf, errlen, msg);
    return WARDEN_EIO;
  }
  struct stat st;
  snprintf(path, sizeof path, "%s/warden.yaml", dir);
  int had_yaml = stat(path, &st) == 0;
  snprintf(path, sizeof path, "%s/store", dir);
  if (had_yaml || stat(path, &st) == 0) {
    snprintf(msg, sizeof msg, "%s: already holds a collection", dir);
    wd_config_free(&cfg);
    set_err(errbuf, errlen, msg);
    return WARDEN_EEXIST;
  }
  warden *db = handle_new();
  if (!db) {
    wd_config_free(&cfg);
    set_err(errbuf, errlen, "out of memory");
    return WARDEN_ENOMEM;
  }
  db->cfg = cfg;
  rc = store_open(db, dir, 1, msg, sizeof msg);
  if (!rc) rc = store_write(db, put_schema, NULL, NULL);
  if (rc && !msg[0]) snprintf(msg, sizeof msg, "%s", warden_errmsg(db));
  if (!rc) {
    snprintf(path, sizeof path, "%s/warden.yaml", dir);
    rc = wd_config_write(&db->cfg, path, msg, sizeof msg);
  }
  handle_free(db);
  if (!rc) {
    /* a collection that cannot be opened (audit.path in a missing
     * directory, a resolver that cannot start, ...) is a failed create */
    warden *t = NULL;
    rc = warden_open(dir, NULL, &t, msg, sizeof msg);
    warden_close(t);
  }
  if (rc) {
    /* leave nothing a retry would trip over */
    snprintf(path, sizeof path, "%s/store/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/store/lock.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/store", dir);
    rmdir(path);
    snprintf(path, sizeof path, "%s/warden.yaml", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/index", dir);
    rmdir(path);
    if (made_dir) rmdir(dir);
    set_err(errbuf, errlen, msg);
  }
  return rc;
usage:
  wd_config_free(&cfg);
  set_err(errbuf, errlen, msg);
  return WARDEN_EINVAL;
}

static int open_impl(const char *dir, const warden_open_opts *opts, warden **out,
                     char *errbuf, size_t errlen, int lock);

int warden_open(const char *dir, const warden_open_opts *opts, warden **out,
                char *errbuf, size_t errlen) {
  return open_impl(dir, opts, out, errbuf, errlen, 1);
}

int wd_open_nolock(const char *dir, const warden_open_opts *opts, warden **out, char *errbuf,
                   size_t errlen) {
  return open_impl(dir, opts, out, errbuf, errlen, 0);
}

static int open_impl(const char *dir, const warden_open_opts *opts, warden **out,
                     char *errbuf, size_t errlen, int lock) {
  char msg[1024], path[4096];
  if (!dir || !out) {
    set_err(errbuf, errlen, "open: NULL argument");
    return WARDEN_EINVAL;
  }
  warden *db = handle_new();
  if (!db) {
    set_err(errbuf, errlen, "out of memory");
    return WARDEN_ENOMEM;
  }
  db->read_only = opts ? opts->read_only : 0;
  db->dir = wd_strdup(dir);
  int rc = db->dir ? 0 : WARDEN_ENOMEM;
  snprintf(path, sizeof path, "%s/warden.yaml", dir);
  struct stat st;
  if (!rc && stat(path, &st) != 0) {
    snprintf(msg, sizeof msg, "%s: not a warden collection (no warden.yaml)", dir);
    rc = WARDEN_ENOTFOUND;
  }
  if (!rc) rc = wd_config_load(path, &db->cfg, msg, sizeof msg);
  if (!rc && lock) {
    /* shared while open; warden_compact takes it exclusively (compact.c) */
    snprintf(path, sizeof path, "%s/store", dir);
    for (int tries = 0; tries < 3 && !rc; tries++) {
      db->lockfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (db->lockfd < 0) break; /* store_open reports it */
      if (flock(db->lockfd, LOCK_SH | LOCK_NB) != 0) {
        snprintf(msg, sizeof msg,
                 "%s: being compacted (warden compact); try again when it is done", dir);
        rc = WARDEN_EIO;
        break;
      }
      /* locked the store that is in place, not one a compaction just
       * swapped out? */
      struct stat a, b;
      if (fstat(db->lockfd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
          a.st_dev == b.st_dev)
        break;
      close(db->lockfd);
      db->lockfd = -1;
    }
  }
  if (!rc) rc = store_open(db, dir, 0, msg, sizeof msg);
  if (!rc) {
    wd_txn tx;
    rc = store_read_begin(db, &tx);
    if (!rc) {
      uint64_t dim = store_meta_u64(&tx, "dim"), metric = store_meta_u64(&tx, "metric");
      store_read_end(&tx);
      if (dim != db->cfg.dim || metric != (uint64_t)db->cfg.metric) {
        snprintf(msg, sizeof msg,
                 "%s: warden.yaml says dimension %u, metric %s but the store holds "
                 "dimension %llu, metric %s",
                 dir, db->cfg.dim, wd_metric_name(db->cfg.metric), (unsigned long long)dim,
                 wd_metric_name((int)metric));
        rc = WARDEN_ECONFIG;
      }
    } else {
      snprintf(msg, sizeof msg, "%s", warden_errmsg(db));
    }
  }
  if (!rc && (rc = wd_resolver_open(db, &db->resolver)) != 0)
    snprintf(msg, sizeof msg, "resolver: %s", warden_errmsg(db));
  if (!rc && (rc = wd_audit_open(db, &db->audit)) != 0)
    snprintf(msg, sizeof msg, "audit: %s", warden_errmsg(db));
  if (!rc && (rc = wd_search_open(db)) != 0)
    snprintf(msg, sizeof msg, "index: %s", warden_errmsg(db));
  if (rc) {
    if (rc == WARDEN_ENOMEM) snprintf(msg, sizeof msg, "out of memory");
    set_err(errbuf, errlen, msg);
    handle_free(db);
    return rc;
  }
  *out = db;
  return 0;
}

void warden_close(warden *db) {
  if (db) handle_free(db);
}

unsigned warden_dimension(const warden *db) { return db ? db->cfg.dim : 0; }

int warden_revision(warden *db, uint64_t *out) {
  if (!db || !out) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_txn tx;
  if ((rc = store_read_begin(db, &tx))) return rc;
  *out = store_meta_u64(&tx, "revision");
  store_read_end(&tx);
  return 0;
}
int warden_metric(const warden *db) { return db ? db->cfg.metric : -1; }

int warden_embed(warden *db, const char *text, float *out) {
  if (!db || !text || !out) return WARDEN_EINVAL;
  if (db->cfg.embedder != WD_EMBEDDER_HASH)
    return wd_err(db, WARDEN_EINVAL,
                  "embed: the collection has no embedder (set embedder.type: hash "
                  "in warden.yaml, or pass vectors)");
  wd_embed_hash(text, strlen(text), out, db->cfg.dim);
  return 0;
}

int warden_stats(warden *db, char **json_out) {
  if (!db || !json_out) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_txn tx;
  if ((rc = store_read_begin(db, &tx))) return rc;
  MDB_stat ms;
  size_t blocks = 0;
  if (mdb_stat(tx.t, db->dbi_blocks, &ms) == 0) /* not those of a staged ingest (stage.h) */
    blocks = ms.ms_entries -
             store_count_from(&tx, 1, (uint32_t)((store_meta_u64(&tx, "next_slot") + WD_BLOCK - 1) / WD_BLOCK));
  json_t *o = json_pack(
      "{s:I,s:I,s:i,s:s,s:I,s:I,s:I,s:{s:s,s:s},s:s,s:s}", "documents",
      (json_int_t)store_meta_u64(&tx, "docs"), "chunks",
      (json_int_t)store_meta_u64(&tx, "chunks"), "dimension", (int)db->cfg.dim, "metric",
      wd_metric_name(db->cfg.metric), "revision", (json_int_t)store_meta_u64(&tx, "revision"),
      "slots_used", (json_int_t)store_meta_u64(&tx, "next_slot"), "embedding_blocks",
      (json_int_t)blocks, "index", "type", "flat", "state", "exact scan (no ANN index built)",
      "embedder", db->cfg.embedder == WD_EMBEDDER_HASH ? "hash" : "none", "simd",
      "runtime-dispatch");
  if (o) json_object_set_new(o, "index", wd_index_stats(db, &tx));
  store_read_end(&tx);
  return wd_json_return(db, o, json_out);
}

/* ------------------------------------------------------------- delete */

typedef struct del_op {
  const char *const *ids;
  size_t n;
  uint64_t deleted, unknown;
} del_op;

static int del_apply(wd_txn *tx, void *ctx) {
  del_op *op = ctx;
  op->deleted = op->unknown = 0;
  for (size_t i = 0; i < op->n; i++) {
    json_t *rec;
    int rc = store_doc_get(tx, op->ids[i], strlen(op->ids[i]), &rec);
    if (rc == WARDEN_ENOTFOUND) {
      op->unknown++;
      continue;
    }
    if (rc) return rc;
    rc = doc_remove(tx, rec);
    json_decref(rec);
    if (rc) return rc;
    op->deleted++;
  }
  return 0;
}

int warden_delete(warden *db, const char *const *doc_ids, size_t n,
                  warden_write_report *rep) {
  if (!db || (!doc_ids && n)) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_err_clear(db);
  for (size_t i = 0; i < n; i++)
    if (!doc_ids[i] || !*doc_ids[i] || strlen(doc_ids[i]) > WD_MAX_DOCID)
      return wd_err(db, WARDEN_EINVAL, "delete: doc_id %zu must be 1..1024 bytes", i);
  del_op op = {doc_ids, n, 0, 0};
  uint64_t rev = 0;
  if ((rc = store_write(db, del_apply, &op, &rev))) return rc;
  if (rep) {
    rep->changed = op.deleted;
    rep->unchanged = 0;
    rep->unknown = op.unknown;
    rep->revision = rev;
  }
  return 0;
}

/* ------------------------------------------------------------- export */

int warden_export(warden *db, int (*write)(void *ctx, const char *buf, size_t len),
                  void *ctx) {
  if (!db || !write) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  /* restore.c: shortest round-trip floats, float fields printed as floats */
  return wd_export_docs(db, write, ctx);
}

/* -------------------------------------------------------------- check */

static void problem(json_t *list, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(json_t *list, const char *fmt, ...) {
  if (json_array_size(list) >= 100) return;
  char b[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  json_array_append_new(list, json_string(b));
}

/* Rebuild every bitmap from the records and compare with the stored ones;
 * check chunk records and embeddings of every slot. */
int warden_check(warden *db, char **json_out) {
  if (!db || !json_out) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_txn tx;
  if ((rc = store_read_begin(db, &tx))) return rc;
  json_t *probs = json_array();
  wd_hmap want; /* bitmap key -> expected bitmap */
  memset(&want, 0, sizeof want);
  roaring_bitmap_t *slots_seen = roaring_bitmap_create();
  uint64_t ndocs = 0, nchunks = 0;
  MDB_cursor *c = NULL;
  char *kbuf_all = wd_malloc(4096 * 512);
  if (!kbuf_all) {
    store_read_end(&tx);
    json_decref(probs);
    roaring_bitmap_free(slots_seen);
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  }
  /* slots from next_slot on are an unpublished staged ingest's (stage.h) */
  uint64_t pub = store_meta_u64(&tx, "next_slot");
  int mrc = mdb_cursor_open(tx.t, db->dbi_docs, &c);
  MDB_val k, d;
  mrc = mrc ? mrc : mdb_cursor_get(c, &k, &d, MDB_FIRST);
  /* use a scratch write-like txn view so doc_index's bitmap calls collect
   * into `want` instead of the store: emulate with our own walk */
  while (mrc == 0) {
    json_t *rec = NULL;
    uint32_t *s = NULL;
    size_t n = 0;
    int drc = store_doc_decode(db, &d, &rec);
    if (!drc) drc = doc_slots(db, rec, &s, &n);
    if (drc == WARDEN_ENOMEM) {
      json_decref(rec);
      rc = drc;
      break;
    }
    if (drc) {
      problem(probs, "document record %zu bytes under key \"%.*s\" is damaged", d.mv_size,
              (int)(k.mv_size > 60 ? 60 : k.mv_size), (const char *)k.mv_data);
      json_decref(rec);
      mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
      continue;
    }
    if (n && s[0] >= pub) { /* staged, not published */
      wd_free(s);
      json_decref(rec);
      mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
      continue;
    }
    ndocs++;
    nchunks += n;
    const char *id = json_string_value(json_object_get(rec, "doc_id"));
    /* expected bitmap keys for this document */
    char kb[512];
    size_t kl;
    const char *keys[4096];
    size_t klens[4096], nk = 0;
    char *kbufs = kbuf_all;
#define ADDKEY(len_)                                   \
  do {                                                 \
    if (nk < 4096) {                                   \
      memcpy(kbufs + nk * 512, kb, (len_));            \
      keys[nk] = kbufs + nk * 512;                     \
      klens[nk++] = (len_);                            \
    }                                                  \
  } while (0)
    kl = store_key(kb, 'L', "", 0);
    ADDKEY(kl);
    const char *lists[2] = {"allow", "deny"};
    for (int l = 0; l < 2; l++) {
      size_t i;
      json_t *p;
      json_array_foreach(json_object_get(rec, lists[l]), i, p) {
        kl = store_key(kb, l ? 'D' : 'A', json_string_value(p), json_string_length(p));
        ADDKEY(kl);
      }
    }
    json_t *ns = json_object_get(rec, "namespace");
    kl = store_key(kb, 'N', json_string_value(ns), json_string_length(ns));
    ADDKEY(kl);
    json_t *srcj = json_object_get(rec, "source");
    kl = store_key(kb, 'S', json_string_value(srcj), json_string_length(srcj));
    ADDKEY(kl);
    const char *field;
    json_t *v;
    json_object_foreach(json_object_get(rec, "metadata"), field, v) {
      wd_type t = store_field_type(&tx, field);
      if (t == WD_T_NONE) {
        problem(probs, "%s: metadata field \"%s\" has no recorded type", id, field);
        continue;
      }
      json_t *vals = json_is_array(v) ? v : NULL;
      size_t cnt = vals ? json_array_size(vals) : 1;
      for (size_t i = 0; i < cnt; i++) {
        json_t *x = vals ? json_array_get(vals, i) : v;
        int fits = (t == WD_T_STRING || t == WD_T_STRING_LIST) ? json_is_string(x)
                   : t == WD_T_INT                             ? json_is_integer(x)
                   : t == WD_T_FLOAT                           ? json_is_number(x)
                                                               : json_is_boolean(x);
        if (!fits || (t == WD_T_STRING_LIST) != (vals != NULL)) {
          problem(probs, "%s: metadata \"%s\" does not have its field's type (%s)", id, field,
                  wd_type_name(t));
          break;
        }
        wd_value val;
        memset(&val, 0, sizeof val);
        if (t == WD_T_STRING || t == WD_T_STRING_LIST) {
          val.type = WD_T_STRING;
          val.s = json_string_value(x);
          val.len = json_string_length(x);
        } else if (t == WD_T_INT) {
          val.type = WD_T_INT;
          val.i = json_integer_value(x);
        } else if (t == WD_T_FLOAT) {
          val.type = WD_T_FLOAT;
          val.f = json_number_value(x);
        } else {
          val.type = WD_T_BOOL;
          val.b = json_is_true(x);
        }
        kl = store_vkey(kb, field, &val);
        ADDKEY(kl);
        if (val.type == WD_T_INT || val.type == WD_T_FLOAT) {
          kl = store_nkey(kb, 'B', field, store_num_enc(&val), 7);
          ADDKEY(kl);
          kl = store_nkey(kb, 'C', field, store_num_enc(&val), 6);
          ADDKEY(kl);
        }
      }
    }
    for (size_t i = 0; i < nk && !rc; i++) {
      roaring_bitmap_t *bm = wd_hmap_get(&want, keys[i], klens[i]);
      if (!bm) {
        bm = roaring_bitmap_create();
        if (!bm || wd_hmap_put(&want, keys[i], klens[i], bm, NULL)) {
          if (bm) roaring_bitmap_free(bm);
          rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
          break;
        }
      }
      roaring_bitmap_add_many(bm, n, s);
    }
    if (rc) {
      wd_free(s);
      json_decref(rec);
      break;
    }
#undef ADDKEY
    for (size_t i = 0; i < n; i++) {
      if (roaring_bitmap_contains(slots_seen, s[i]))
        problem(probs, "%s: slot %u is claimed by two documents", id, s[i]);
      roaring_bitmap_add(slots_seen, s[i]);
      uint32_t ord;
      const char *cid, *text;
      size_t il, tl;
      int r = store_chunk_get(&tx, s[i], &ord, &cid, &il, &text, &tl);
      if (r || il != strlen(id) || memcmp(cid, id, il) != 0 || ord != i)
        problem(probs, "%s: chunk %zu (slot %u) record is missing or names another document", id,
                i, s[i]);
      const float *blk;
      r = store_block_get(&tx, s[i] / WD_BLOCK, &blk);
      if (r)
        problem(probs, "%s: chunk %zu (slot %u) has no embedding block", id, i, s[i]);
      else {
        const float *vec = blk + WD_BLOCK + (size_t)(s[i] % WD_BLOCK) * db->cfg.dim;
        double n2 = 0;
        int finite = 1;
        for (size_t j = 0; j < db->cfg.dim; j++) {
          if (!isfinite(vec[j])) finite = 0;
          n2 += (double)vec[j] * vec[j];
        }
        float inv = blk[s[i] % WD_BLOCK];
        float expect = n2 > 0 ? (float)(1.0 / sqrt(n2)) : 0.0f;
        char why[200];
        if (!finite || fabsf(inv - expect) > 1e-5f * (expect > 1 ? expect : 1))
          problem(probs, "%s: chunk %zu (slot %u) embedding or its norm is damaged", id, i, s[i]);
        else if (wd_vec_check(vec, db->cfg.dim, db->cfg.metric, why, sizeof why))
          /* stored before ingest refused such vectors: it would score NaN
           * or overflow, and k-means (warden index) would fail on it */
          problem(probs,
                  "%s: chunk %zu (slot %u) embedding cannot be scored: %s (re-ingest or delete "
                  "the document)",
                  id, i, s[i], why);
      }
    }
    wd_free(s);
    json_decref(rec);
    mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
  }
  if (c) mdb_cursor_close(c);
  wd_free(kbuf_all);
  if (mrc && mrc != MDB_NOTFOUND && !rc) rc = store_mdb_err(db, mrc, "check documents");
  /* counters */
  if (!rc) {
    if (store_meta_u64(&tx, "docs") != ndocs)
      problem(probs, "document counter says %llu, records say %llu",
              (unsigned long long)store_meta_u64(&tx, "docs"), (unsigned long long)ndocs);
    if (store_meta_u64(&tx, "chunks") != nchunks)
      problem(probs, "chunk counter says %llu, records say %llu",
              (unsigned long long)store_meta_u64(&tx, "chunks"), (unsigned long long)nchunks);
    MDB_stat st;
    if (mdb_stat(tx.t, db->dbi_chunks, &st) == 0 &&
        st.ms_entries - store_count_from(&tx, 0, (uint32_t)pub) != nchunks)
      problem(probs, "%zu chunk records for %llu chunks", (size_t)st.ms_entries,
              (unsigned long long)nchunks);
  }
  /* every stored bitmap must equal the expected one, and vice versa */
  uint64_t nbitmaps = 0;
  if (!rc && (mrc = mdb_cursor_open(tx.t, db->dbi_bitmaps, &c)) == 0) {
    mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST);
    while (mrc == 0) {
      roaring_bitmap_t *got = NULL;
      if (store_bm_decode(db, &d, &got)) got = NULL;
      if (got && roaring_bitmap_maximum(got) >= pub && !roaring_bitmap_is_empty(got)) {
        roaring_bitmap_remove_range(got, pub, (uint64_t)UINT32_MAX + 1); /* staged */
        if (roaring_bitmap_is_empty(got)) { /* only staged slots */
          roaring_bitmap_free(got);
          mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
          continue;
        }
      }
      nbitmaps++;
      roaring_bitmap_t *exp = wd_hmap_get(&want, k.mv_data, k.mv_size);
      const char *kk = k.mv_data;
      int kl = (int)(k.mv_size > 60 ? 60 : k.mv_size);
      if (!got)
        problem(probs, "bitmap %.*s cannot be decoded", kl, kk);
      else if (!exp) {
        if (!roaring_bitmap_is_empty(got)) problem(probs, "bitmap %.*s names chunks no record names", kl, kk);
      } else if (!roaring_bitmap_equals(got, exp))
        problem(probs, "bitmap %.*s disagrees with the records (%llu stored, %llu expected)", kl,
                kk, (unsigned long long)roaring_bitmap_get_cardinality(got),
                (unsigned long long)roaring_bitmap_get_cardinality(exp));
      if (exp) {
        /* mark as seen: the slot 0xFFFFFFFF never names a chunk */
        roaring_bitmap_clear(exp);
        roaring_bitmap_add(exp, 0xFFFFFFFFu);
      }
      if (got) roaring_bitmap_free(got);
      mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
    }
    mdb_cursor_close(c);
  }
  /* the lexical postings against the chunk texts (engine/lexical.c) */
  if (!rc) {
    char lk[2] = "L";
    roaring_bitmap_t *lv = roaring_bitmap_create();
    int lrc = lv ? store_bm_or(&tx, lk, 1, lv) : WARDEN_ENOMEM;
    if (!lrc) lrc = wd_lex_check(db, &tx, lv, probs);
    if (lv) roaring_bitmap_free(lv);
    if (lrc < 0) rc = lrc;
  }
  WD_HMAP_FOREACH(&want, e) {
    roaring_bitmap_t *bm = e->val;
    if (!roaring_bitmap_contains(bm, 0xFFFFFFFFu))
      problem(probs, "bitmap %.*s is missing", (int)(e->klen > 60 ? 60 : e->klen), e->key);
    roaring_bitmap_free(bm);
  }
  wd_hmap_free(&want);
  roaring_bitmap_free(slots_seen);
  uint64_t rev = store_meta_u64(&tx, "revision");
  /* the ANN index file against the store */
  json_t *ixrep = json_object();
  int nix = rc ? 0 : wd_index_check(db, &tx, ixrep);
  store_read_end(&tx);
  if (!rc && nix < 0) rc = nix;
  if (rc) {
    json_decref(probs);
    json_decref(ixrep);
    return rc;
  }
  if (nix > 0) problem(probs, "index: %d problem(s), see \"index\"", nix);
  size_t np = json_array_size(probs);
  json_t *o = json_pack("{s:b,s:I,s:I,s:I,s:I,s:o}", "ok", np == 0, "documents",
                        (json_int_t)ndocs, "chunks", (json_int_t)nchunks, "bitmaps",
                        (json_int_t)nbitmaps, "revision", (json_int_t)rev, "problems", probs);
  if (o && json_object_get(ixrep, "index"))
    json_object_set(o, "index", json_object_get(ixrep, "index"));
  json_decref(ixrep);
  char *s = wd_json_string(db, o);
  if (!s) return WARDEN_ENOMEM;
  *json_out = s;
  if (np) return wd_err(db, WARDEN_ECORRUPT, "check: %zu problem(s) found", np);
  return 0;
}
