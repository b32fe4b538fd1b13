/*
 * compact.c -- warden_compact: reclaim what deletes leave behind.
 *
 * Slots are never reused, so deleted documents leave zero rows in the
 * embedding blocks, unused slots, and free LMDB pages; the file never
 * shrinks.  Compaction rebuilds the collection from a full export
 * (restore.c) -- dense slots in insertion order, same documents, ACLs,
 * directory, grants, field types and configuration -- and swaps the new
 * store in:
 *
 *   1. take DIR/store's flock exclusively (every open handle holds it
 *      shared: compaction needs the collection to itself, and opens made
 *      meanwhile are refused with "being compacted");
 *   2. remove what a killed compaction left (DIR/.compact*);
 *   3. export from one snapshot, import into DIR/.compact (revision
 *      continues above the current one), rebuild the ANN index there when
 *      the collection had one;
 *   4. move the old index file away (the collection is now the old store
 *      without an index: valid, queries are exact);
 *   5. exchange DIR/store and DIR/.compact/store atomically
 *      (renameat2 RENAME_EXCHANGE): the new store, no index: valid;
 *   6. move the new index file in; fsync; remove DIR/.compact.
 *
 * A kill -9 at any moment leaves either the old store or the new one
 * (both complete, both consistent), with no index or the one that belongs
 * to the store; revisions never go back.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/store.h"
#include "engine/wd_internal.h"

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f) {
  (void)st, (void)flag, (void)f;
  return remove(p) != 0 && errno != ENOENT ? -1 : 0;
}

static void rm_rf(const char *p) {
  struct stat st;
  if (lstat(p, &st) != 0) return;
  nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void fsync_path(const char *p) {
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

static void set_msg(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_msg(char *buf, size_t len, const char *fmt, ...) {
  if (!buf || !len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

typedef struct fsink {
  FILE *f;
} fsink;

static int fsink_write(void *ctx, const char *buf, size_t len) {
  fsink *s = ctx;
  return len && fwrite(buf, 1, len, s->f) != len ? -1 : 0;
}

/* Remove leftovers of a killed compaction: DIR/.compact, DIR/.compact.jsonl
 * and the import's temp dirs DIR/..compact.import-*. */
static void cleanup(const char *dir) {
  char p[4400];
  snprintf(p, sizeof p, "%s/.compact", dir);
  rm_rf(p);
  snprintf(p, sizeof p, "%s/.compact.jsonl", dir);
  unlink(p);
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strncmp(e->d_name, "..compact.import-", 17) == 0) {
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      rm_rf(p);
    }
  closedir(d);
}

static off_t file_size(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 ? st.st_size : 0;
}

/* One function on purpose (~160 lines): steps 1-6 are the crash-safe
 * sequence described at the top of this file, each valid only after the
 * one before it on the same paths; reviewing the order is reading this
 * function top to bottom. */
int warden_compact(const char *dir, char *errbuf, size_t errlen, char **json_out) {
  if (!dir || !*dir) {
    set_msg(errbuf, errlen, "compact: no directory given");
    return WARDEN_EINVAL;
  }
  if (strlen(dir) > 4000) {
    set_msg(errbuf, errlen, "compact: directory name too long");
    return WARDEN_EINVAL;
  }
  char p[4400], q[4400], exp[4096], tmp[4096];
  struct stat st;
  snprintf(p, sizeof p, "%s/warden.yaml", dir);
  if (stat(p, &st) != 0) {
    set_msg(errbuf, errlen, "%s: not a warden collection (no warden.yaml)", dir);
    return WARDEN_ENOTFOUND;
  }
  /* 1. the collection to ourselves */
  snprintf(p, sizeof p, "%s/store", dir);
  int lk = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lk < 0) {
    set_msg(errbuf, errlen, "%s: %s", p, strerror(errno));
    return WARDEN_EIO;
  }
  if (flock(lk, LOCK_EX | LOCK_NB) != 0) {
    close(lk);
    set_msg(errbuf, errlen,
            "%s: the collection is open (another process or handle); compact needs it to "
            "itself",
            dir);
    return WARDEN_EIO;
  }
  /* 2. leftovers */
  cleanup(dir);
  snprintf(tmp, sizeof tmp, "%s/.compact", dir);
  snprintf(exp, sizeof exp, "%s/.compact.jsonl", dir);
  char msg[1024] = "";
  int rc;
  warden *db = NULL;
  uint64_t rev0 = 0, docs = 0;
  off_t before = file_size((snprintf(p, sizeof p, "%s/store/data.mdb", dir), p));
  /* 3. export, import, index */
  rc = wd_open_nolock(dir, &(warden_open_opts){1}, &db, msg, sizeof msg);
  if (!rc) {
    FILE *f = fopen(exp, "wb");
    if (!f) {
      set_msg(msg, sizeof msg, "%s: %s", exp, strerror(errno));
      rc = WARDEN_EIO;
    } else {
      fsink s = {f};
      rc = warden_export_full(db, fsink_write, &s);
      if (rc) set_msg(msg, sizeof msg, "%s", warden_errmsg(db));
      if ((fflush(f) != 0 || fsync(fileno(f)) != 0) && !rc) {
        set_msg(msg, sizeof msg, "%s: %s", exp, strerror(errno));
        rc = WARDEN_EIO;
      }
      fclose(f);
    }
    if (!rc) (void)warden_revision(db, &rev0);
    warden_close(db);
    db = NULL;
  }
  char *rep = NULL;
  /* the export is our own, just written from this collection: its config
   * (resolver command, audit path included) is the collection's */
  if (!rc) rc = warden_import_ex(tmp, exp, WARDEN_IMPORT_TRUST_CONFIG, msg, sizeof msg, &rep);
  json_t *ir = rep ? json_loads(rep, 0, NULL) : NULL;
  warden_free(rep);
  docs = (uint64_t)json_integer_value(json_object_get(ir, "documents"));
  uint64_t rev1 = (uint64_t)json_integer_value(json_object_get(ir, "revision"));
  json_decref(ir);
  unlink(exp);
  /* every ANN index file: the IVF and the graph (both are rebuilt from
   * the new store when the collection had either; a file left from the
   * old store would describe other slots) */
  static const char *const idx_files[] = {"ivf.wdx", "hnsw.wdx"};
  enum { NIDX = sizeof idx_files / sizeof *idx_files };
  int had_index = 0;
  for (int f = 0; f < NIDX; f++) {
    snprintf(p, sizeof p, "%s/index/%s", dir, idx_files[f]);
    if (stat(p, &st) == 0) had_index = 1;
  }
  int built = 0;
  if (!rc && had_index) {
    rc = wd_open_nolock(tmp, NULL, &db, msg, sizeof msg);
    char *ij = NULL;
    if (!rc) {
      rc = warden_index_build(db, NULL, &ij);
      if (rc) set_msg(msg, sizeof msg, "index: %s", warden_errmsg(db));
      warden_close(db);
      db = NULL;
    }
    warden_free(ij);
    snprintf(q, sizeof q, "%s/index/ivf.wdx", tmp);
    built = !rc && stat(q, &st) == 0;
  }
  if (!rc) {
    /* the new store must be on disk before it becomes the collection */
    snprintf(q, sizeof q, "%s/store/data.mdb", tmp);
    fsync_path(q);
    snprintf(q, sizeof q, "%s/store", tmp);
    fsync_path(q);
  }
  /* 4. the old index files away: old store, no index */
  for (int f = 0; !rc && had_index && f < NIDX; f++) {
    snprintf(p, sizeof p, "%s/index/%s", dir, idx_files[f]);
    snprintf(q, sizeof q, "%s/old-%s", tmp, idx_files[f]);
    if (stat(p, &st) != 0) continue;
    if (rename(p, q) != 0) {
      set_msg(msg, sizeof msg, "%s: %s", p, strerror(errno));
      rc = WARDEN_EIO;
    } else {
      snprintf(p, sizeof p, "%s/index", dir);
      fsync_path(p);
    }
  }
  /* 5. exchange the stores */
  if (!rc) {
    snprintf(p, sizeof p, "%s/store", dir);
    snprintf(q, sizeof q, "%s/store", tmp);
    if (syscall(SYS_renameat2, AT_FDCWD, p, AT_FDCWD, q, RENAME_EXCHANGE) != 0) {
      set_msg(msg, sizeof msg, "exchange %s and %s: %s", p, q, strerror(errno));
      rc = WARDEN_EIO;
    } else {
      fsync_path(dir);
      fsync_path(tmp);
    }
  }
  /* 6. the new index files in */
  for (int f = 0; !rc && built && f < NIDX; f++) {
    snprintf(p, sizeof p, "%s/index/%s", tmp, idx_files[f]);
    if (stat(p, &st) != 0) continue;
    snprintf(q, sizeof q, "%s/index", dir);
    mkdir(q, 0755);
    snprintf(q, sizeof q, "%s/index/%s", dir, idx_files[f]);
    if (rename(p, q) == 0) {
      snprintf(q, sizeof q, "%s/index", dir);
      fsync_path(q);
    } /* else: no such index, queries plan without it; `warden index` builds it */
  }
  if (!rc) rm_rf(tmp); /* the old store */
  else cleanup(dir);
  flock(lk, LOCK_UN);
  close(lk);
  if (rc) {
    set_msg(errbuf, errlen, "compact: %s", msg[0] ? msg : warden_strerror(rc));
    return rc;
  }
  off_t after = file_size((snprintf(p, sizeof p, "%s/store/data.mdb", dir), p));
  if (json_out) {
    json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:b}", "compacted", dir, "documents",
                          (json_int_t)docs, "bytes_before", (json_int_t)before, "bytes_after",
                          (json_int_t)after, "revision_before", (json_int_t)rev0, "revision",
                          (json_int_t)rev1, "index_rebuilt", built);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    *json_out = s ? wd_strdup(s) : NULL;
    free(s);
  }
  return 0;
}
