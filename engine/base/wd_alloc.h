/*
 * wd_alloc.h -- the one door for libwarden's own allocations.
 *
 * Every allocation libwarden makes goes through wd_malloc/wd_calloc/
 * wd_realloc/wd_free so that tests can fail the Nth allocation (see
 * warden_set_allocator).  Third-party libraries (LMDB, CRoaring, jansson,
 * FAISS) allocate on their own.
 */
#ifndef WD_ALLOC_H
#define WD_ALLOC_H
#include <stddef.h>

void *wd_malloc(size_t n);
void *wd_calloc(size_t n, size_t size); /* overflow-checked */
void *wd_realloc(void *p, size_t n);
void wd_free(void *p);
char *wd_strdup(const char *s);
char *wd_strndup(const char *s, size_t n);
/* printf into a new string; NULL on allocation failure. */
char *wd_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Route the calls above through these functions (all NULL: the C
 * library's); warden_set_allocator (engine/error.c) is the public side. */
void wd_alloc_hook(void *(*malloc_fn)(void *ctx, size_t n),
                   void *(*realloc_fn)(void *ctx, void *p, size_t n),
                   void (*free_fn)(void *ctx, void *p), void *ctx);

#endif
