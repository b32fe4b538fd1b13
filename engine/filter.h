/*
 * filter.h -- metadata filters: parse both dialects, compile to bitmaps.
 *
 * Two input dialects (SPEC section 4) compile to one expression tree:
 *  - Bedrock Knowledge Bases style: {"equals": {"key": K, "value": V}},
 *    notEquals, greaterThan, greaterThanOrEquals, lessThan,
 *    lessThanOrEquals, in, notIn, startsWith, listContains, stringContains,
 *    combined with {"andAll": [...]} and {"orAll": [...]};
 *  - Mongo / Pinecone / Chroma style: {"k": {"$eq": V}, "k2": {"$lte": 4}}
 *    with $eq $ne $gt $gte $lt $lte $in $nin $and $or; a bare value means
 *    $eq; several keys in one object are ANDed.
 * The dialect is recognised from the top-level object's keys.
 *
 * Evaluation never looks at documents one by one: each leaf asks the
 * inverted index (wd_filter_index, implemented over LMDB by the store) for a
 * bitmap of chunk ids, and the tree combines bitmaps.  Semantics:
 *  - a key a document lacks makes every comparison false, except
 *    notEquals / notIn / $ne / $nin, which are true (they are computed as
 *    universe minus the positive match);
 *  - on a string_list field, equals/in/$eq/$in/listContains test membership
 *    of one element;
 *  - int and float fields compare numerically with int or float values;
 *  - a type mismatch between the filter value and the field's type (e.g.
 *    lessThan on a string field, startsWith on an int field) is an error,
 *    not an empty result; a key no document has and no declaration names has
 *    no type, so it is simply missing everywhere.
 * Limits: nesting depth <= 32, <= 4096 leaves, in-lists <= 65536 values.
 */
#ifndef WD_FILTER_H
#define WD_FILTER_H
#include <jansson.h>
#include <roaring/roaring.h>

#include "base/wd_types.h"

typedef struct wd_filter wd_filter; /* compiled, immutable, thread-safe */

/* Parse a filter from JSON text (len bytes).  On success *out is a filter
 * to free with wd_filter_free.  On an allocation failure returns
 * WARDEN_ENOMEM; on bad input returns -1 and writes a message
 * ("filter: andAll[1].equals: missing \"key\"") into err. */
int wd_filter_parse(const char *json, size_t len, wd_filter **out, char *err,
                    size_t errlen);
/* The same from an already decoded jansson value (borrowed). */
int wd_filter_parse_json(const json_t *j, wd_filter **out, char *err,
                         size_t errlen);
void wd_filter_free(wd_filter *f);

/* The inverted index a filter is evaluated against.  Every callback ORs the
 * chunk ids it finds into *acc (never clears it) and returns 0, or a
 * negative warden error code (evaluation stops and returns it). */
typedef struct wd_filter_index {
  void *ctx;
  /* Type of a field: WD_T_NONE when no document has it and it is not
   * declared. */
  wd_type (*field_type)(void *ctx, const char *key);
  /* Chunks whose field equals v (string_list: contains v).  v's type is the
   * field's type, already converted (int<->float handled by the filter
   * module: an int field is only asked for integral values). */
  int (*eq)(void *ctx, const char *key, const wd_value *v,
            roaring_bitmap_t *acc);
  /* Numeric range over an int or float field.  lo/hi NULL = unbounded;
   * *_incl nonzero = inclusive.  Bounds have the field's type. */
  int (*range)(void *ctx, const char *key, const wd_value *lo, int lo_incl,
               const wd_value *hi, int hi_incl, roaring_bitmap_t *acc);
  /* String (or string_list element) values starting with prefix. */
  int (*prefix)(void *ctx, const char *key, const char *prefix, size_t len,
                roaring_bitmap_t *acc);
  /* String (or string_list element) values containing needle. */
  int (*contains)(void *ctx, const char *key, const char *needle, size_t len,
                  roaring_bitmap_t *acc);
  /* All live chunks (for negations).  Borrowed. */
  const roaring_bitmap_t *universe;
  /* Is the key's type public (declared in warden.yaml)?  NULL: every key
   * is.  A filter whose value or operator does not fit the type of a key
   * that is not public is evaluated as if no document had the key (as for
   * an unknown key), instead of failing with the type: the type of an
   * undeclared key comes from documents the caller may not be able to
   * read, and the answer must not depend on them. */
  int (*is_public)(void *ctx, const char *key);
} wd_filter_index;

/* Evaluate f to a new bitmap (*out, free with roaring_bitmap_free).
 * Returns 0; WARDEN_EDATA with a message in err on a type mismatch; or the
 * negative code a callback returned. */
int wd_filter_eval(const wd_filter *f, const wd_filter_index *ix,
                   roaring_bitmap_t **out, char *err, size_t errlen);

#endif
