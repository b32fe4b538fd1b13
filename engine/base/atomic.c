/*
 * atomic.c -- atomic, durable file replacement (see atomic.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic.h"
#include "base/wd_alloc.h"

#define WRITE_CHUNK (1u << 30) /* bytes per write(2): Linux caps one at ~2 GiB */

int wd_write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n > WRITE_CHUNK ? WRITE_CHUNK : n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

void wd_fsync_dir(const char *path) {
  char *dir = wd_strdup(path);
  if (!dir) return;
  char *slash = strrchr(dir, '/');
  const char *d = ".";
  if (slash == dir)
    d = "/";
  else if (slash)
    *slash = 0, d = dir;
  int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd); /* best effort: some filesystems refuse */
    close(dfd);
  }
  wd_free(dir);
}

int wd_atomic_write(const char *path, const void *data, size_t len, const char **what) {
  const char *step = "out of memory";
  char *tmp = wd_asprintf("%s.tmp.XXXXXX", path);
  int fd = -1, e = ENOMEM;
  if (!tmp) goto fail;
  step = "cannot create temporary file";
  if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
    e = errno;
    wd_free(tmp);
    tmp = NULL;
    goto fail;
  }
  /* keep the mode of the file we replace */
  struct stat st;
  mode_t mode = stat(path, &st) == 0 ? (st.st_mode & 07777) : 0644;
  step = "cannot write";
  if (fchmod(fd, mode) != 0 || wd_write_all(fd, data, len) != 0) goto fail_errno;
  step = "cannot fsync";
  if (fsync(fd) != 0) goto fail_errno;
  step = "cannot close";
  int crc = close(fd);
  fd = -1;
  if (crc != 0) goto fail_errno;
  step = "cannot rename into place";
  if (rename(tmp, path) != 0) goto fail_errno;
  wd_fsync_dir(path);
  wd_free(tmp);
  return 0;
fail_errno:
  e = errno;
fail:
  if (fd >= 0) close(fd);
  if (tmp) unlink(tmp);
  wd_free(tmp);
  if (what) *what = step;
  errno = e;
  return -1;
}
