/*
 * backup.c -- warden_backup: an online, consistent, compacted copy of a
 * collection.
 *
 * The store is copied compacted (store_copy_compact): LMDB walks one
 * read snapshot and writes only the pages in use, renumbered, so free pages
 * (left by deletes and rewrites) are not copied.  Writers go on meanwhile
 * (a reader never blocks LMDB's writer).  The ANN index file is copied
 * *before* the snapshot is taken, so its revision is never newer than the
 * copied store's (an index newer than its store would be refused; an older
 * one is brought up to date as usual).  Everything is written into a
 * temporary directory next to DEST, fsynced, and renamed to DEST at the
 * end: DEST is either absent or a complete collection.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/store.h"
#include "engine/wd_internal.h"

static int copy_file(warden *db, const char *from, const char *to, int missing_ok) {
  int in = open(from, O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    if (missing_ok && errno == ENOENT) return 0;
    return wd_err(db, WARDEN_EIO, "backup: %s: %s", from, strerror(errno));
  }
  int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    int e = errno;
    close(in);
    return wd_err(db, WARDEN_EIO, "backup: %s: %s", to, strerror(e));
  }
  char buf[1 << 16];
  ssize_t n;
  int rc = 0;
  while ((n = read(in, buf, sizeof buf)) > 0) {
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(out, buf + off, (size_t)(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        rc = wd_err(db, WARDEN_EIO, "backup: %s: %s", to, strerror(errno));
        break;
      }
      off += w;
    }
    if (rc) break;
  }
  if (!rc && n < 0) rc = wd_err(db, WARDEN_EIO, "backup: %s: %s", from, strerror(errno));
  if (!rc && fsync(out) != 0) rc = wd_err(db, WARDEN_EIO, "backup: %s: %s", to, strerror(errno));
  close(in);
  if (close(out) != 0 && !rc) rc = wd_err(db, WARDEN_EIO, "backup: %s: %s", to, strerror(errno));
  return rc;
}

static void fsync_dir(const char *d) {
  int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

static void rm_tmp(const char *tmp) {
  static const char *const files[] = {"warden.yaml", "store/data.mdb", "store/lock.mdb",
                                      "index/ivf.wdx"};
  char p[4400];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", tmp, files[i]);
    unlink(p);
  }
  snprintf(p, sizeof p, "%s/store", tmp);
  rmdir(p);
  snprintf(p, sizeof p, "%s/index", tmp);
  rmdir(p);
  rmdir(tmp);
}

int warden_backup(warden *db, const char *dest, char **json_out) {
  if (!db || !dest || !*dest) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_err_clear(db);
  struct stat st;
  if (lstat(dest, &st) == 0)
    return wd_err(db, WARDEN_EEXIST, "backup: %s already exists", dest);
  char *dc = wd_strdup(dest), *bc = wd_strdup(dest);
  if (!dc || !bc) {
    wd_free(dc);
    wd_free(bc);
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  }
  char tmp[4200], parent[4096];
  snprintf(parent, sizeof parent, "%s", dirname(dc));
  snprintf(tmp, sizeof tmp, "%s/.%s.backup-XXXXXX", parent, basename(bc));
  wd_free(dc);
  wd_free(bc);
  if (!mkdtemp(tmp)) return wd_err(db, WARDEN_EIO, "backup: %s: %s", tmp, strerror(errno));
  (void)chmod(tmp, 0755);
  char a[4400], b[4400];
  /* 1. warden.yaml and the index file (before the snapshot: see above) */
  snprintf(a, sizeof a, "%s/warden.yaml", db->dir);
  snprintf(b, sizeof b, "%s/warden.yaml", tmp);
  rc = copy_file(db, a, b, 0);
  snprintf(b, sizeof b, "%s/index", tmp);
  if (!rc && mkdir(b, 0755) != 0) rc = wd_err(db, WARDEN_EIO, "backup: %s: %s", b, strerror(errno));
  if (!rc) {
    snprintf(a, sizeof a, "%s/index/ivf.wdx", db->dir);
    snprintf(b, sizeof b, "%s/index/ivf.wdx", tmp);
    rc = copy_file(db, a, b, 1);
  }
  /* 2. the store: one snapshot, compacted */
  snprintf(b, sizeof b, "%s/store", tmp);
  if (!rc && mkdir(b, 0755) != 0) rc = wd_err(db, WARDEN_EIO, "backup: %s: %s", b, strerror(errno));
  if (!rc) rc = store_copy_compact(db, b, "backup: copy store");
  if (!rc) {
    snprintf(a, sizeof a, "%s/store/data.mdb", tmp);
    int fd = open(a, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) rc = wd_err(db, WARDEN_EIO, "backup: %s: %s", a, strerror(errno));
    if (fd >= 0) close(fd);
    fsync_dir(b);
    snprintf(b, sizeof b, "%s/index", tmp);
    fsync_dir(b);
    fsync_dir(tmp);
  }
  if (!rc && rename(tmp, dest) != 0)
    rc = wd_err(db, WARDEN_EIO, "backup: %s: %s", dest, strerror(errno));
  if (rc) {
    rm_tmp(tmp);
    return rc;
  }
  fsync_dir(parent);
  /* what the copy holds */
  if (json_out) {
    warden *c = NULL;
    char err[512];
    uint64_t rev = 0;
    off_t size = 0;
    snprintf(a, sizeof a, "%s/store/data.mdb", dest);
    if (stat(a, &st) == 0) size = st.st_size;
    if (warden_open(dest, &(warden_open_opts){1}, &c, err, sizeof err) == 0) {
      (void)warden_revision(c, &rev);
      warden_close(c);
    }
    json_t *o = json_pack("{s:s,s:I,s:I}", "backup", dest, "revision", (json_int_t)rev,
                          "store_bytes", (json_int_t)size);
    return wd_json_return(db, o, json_out);
  }
  return 0;
}
