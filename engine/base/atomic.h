/*
 * atomic.h -- replace a file atomically and durably (base/atomic.c).
 *
 * The one way warden replaces a file: write a temporary file next to it,
 * fsync it, rename it over the target, fsync the directory.  A reader (or
 * a crash) sees the old file or the new one, never a mix.
 */
#ifndef WD_ATOMIC_H
#define WD_ATOMIC_H
#include <stddef.h>

/* Replace path with len bytes of data, keeping the mode of the file it
 * replaces (0644 for a new file).  Returns 0, or -1 with errno set and
 * *what (may be NULL) naming the step that failed ("cannot write", ...);
 * the target is then untouched and no temporary file is left. */
int wd_atomic_write(const char *path, const void *data, size_t len, const char **what);
/* fsync the directory holding path, so a rename into it is durable (best
 * effort: some filesystems refuse). */
void wd_fsync_dir(const char *path);
/* Write all n bytes (retrying short writes and EINTR); 0 or -1. */
int wd_write_all(int fd, const void *p, size_t n);

#endif
