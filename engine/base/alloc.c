/*
 * alloc.c -- libwarden's allocation hook (see wd_alloc.h; warden_set_allocator
 * and warden_free, the public side, are in engine/error.c).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/wd_alloc.h"

static struct {
  void *(*malloc_fn)(void *ctx, size_t n);
  void *(*realloc_fn)(void *ctx, void *p, size_t n);
  void (*free_fn)(void *ctx, void *p);
  void *ctx;
} g_alloc; /* zero: use malloc/realloc/free */

void wd_alloc_hook(void *(*malloc_fn)(void *, size_t), void *(*realloc_fn)(void *, void *, size_t),
                   void (*free_fn)(void *, void *), void *ctx) {
  g_alloc.malloc_fn = malloc_fn;
  g_alloc.realloc_fn = realloc_fn;
  g_alloc.free_fn = free_fn;
  g_alloc.ctx = ctx;
}

void *wd_malloc(size_t n) {
  if (n == 0) n = 1;
  return g_alloc.malloc_fn ? g_alloc.malloc_fn(g_alloc.ctx, n) : malloc(n);
}

void *wd_calloc(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  void *p = wd_malloc(n * size);
  if (p) memset(p, 0, (n * size) > 0 ? n * size : 1);
  return p;
}

void *wd_realloc(void *p, size_t n) {
  if (n == 0) n = 1;
  return g_alloc.realloc_fn ? g_alloc.realloc_fn(g_alloc.ctx, p, n)
                            : realloc(p, n);
}

void wd_free(void *p) {
  if (!p) return;
  if (g_alloc.free_fn)
    g_alloc.free_fn(g_alloc.ctx, p);
  else
    free(p);
}

char *wd_strndup(const char *s, size_t n) {
  char *d = wd_malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

char *wd_strdup(const char *s) { return wd_strndup(s, strlen(s)); }

char *wd_asprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *s = wd_malloc((size_t)n + 1);
  if (!s) return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}
