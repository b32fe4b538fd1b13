/* imgmap.c -- see imgmap.h */
#include "index/imgmap.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE_PAGE ((size_t)2 << 20) /* x86-64 and arm64 (4 KiB granule) PMD size */

static size_t span(size_t len) { return (len + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE; }

void *wd_img_load(int fd, size_t len) {
  size_t n = span(len ? len : 1);
  /* reserve a 2 MiB-aligned range, then map the file over it: only an
   * aligned range can be mapped with huge page table entries */
  char *raw = mmap(NULL, n + HUGE_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  uintptr_t a = ((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
  char *p = (char *)a;
  if (p > raw) munmap(raw, (size_t)(p - raw));
  size_t tail = (size_t)(raw + n + HUGE_PAGE - (p + n));
  if (tail) munmap(p + n, tail);
  void *m = mmap(p, len, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
  if (m == MAP_FAILED) {
    int e = errno;
    munmap(p, n);
    errno = e;
    return NULL;
  }
#ifdef MADV_HUGEPAGE
  (void)madvise(m, len, MADV_HUGEPAGE); /* advice only */
#endif
  return m;
}

void wd_img_free(void *p, size_t len) {
  if (p) munmap(p, span(len ? len : 1));
}
