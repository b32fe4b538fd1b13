/*
 * allowed.h -- a query's allowed set: the slots it may return before any
 * resolver (engine/allowed.c).
 */
#ifndef WD_ALLOWED_H
#define WD_ALLOWED_H
#include <roaring/roaring.h>

#include "acl/acl.h"
#include "engine/filter.h"
#include "engine/store.h"

/* readable(who) AND namespace mask(o->namespaces) AND filter(flt, may be
 * NULL) AND live.  Within one revision it is a function of the caller's
 * identity, the namespaces and the filter text: repeated queries take it
 * from the revision's derived-bitmap cache (engine/store.c).  *out a new
 * bitmap; *set_key a hash of that identity (0 when not cacheable), the
 * planner's cache-recency key (engine/search.c). */
int wd_allowed_set(wd_txn *tx, const warden_query_opts *o, const wd_filter *flt,
                   const wd_strlist *who, const roaring_bitmap_t *live, roaring_bitmap_t **out,
                   uint64_t *set_key);

#endif
