/*
 * collection.c -- create, open, close; stats, export, delete (check:
 * engine/check.c).
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

#include "acl/acl.h"
#include "acl/audit.h"
#include "engine/doc.h"
#include "engine/indexer.h"
#include "engine/lexical.h"
#include "acl/resolver.h"
#include "engine/search.h"
#include "engine/embed.h"
#include "index/scan.h"
#include "engine/store.h"

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
  uint64_t blocks = 0;
  if (store_count(&tx, WD_DB_BLOCKS, &blocks)) blocks = 0;
  else /* not those of a staged ingest (stage.h) */
    blocks -= store_count_from(&tx, 1, (uint32_t)((store_meta_u64(&tx, "next_slot") + WD_BLOCK - 1) / WD_BLOCK));
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

/* warden_check: engine/check.c */
