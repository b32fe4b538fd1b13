/*
 * fuzz_filter.c -- libFuzzer target for the metadata filter parser and
 * evaluator (engine/filter.c).
 *
 * Arbitrary bytes go to wd_filter_parse; whatever parses is evaluated with
 * wd_filter_eval against a tiny fake inverted index of 16 documents whose
 * field types are fixed by the key's first letter (i: int, f: float,
 * s: string, l: string_list, b: bool, anything else: unknown).  The index
 * answers from a table, so every callback path (eq, range, prefix,
 * contains, negation against the universe) is reachable.  Checked besides
 * memory safety: a failed parse leaves a terminated message, and a result
 * never names a chunk outside the universe.
 *
 * Build: make build/fuzz/fuzz_filter (tests/reliability.mk).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "filter.h"
#include "warden.h"

#define NDOC 16

static const int64_t IVAL[NDOC] = {0, 1, 2, 3, -1, 100, INT64_MAX, INT64_MIN, 4, 4, 5, 7, 9, 0, -9, 12};
static const double FVAL[NDOC] = {0.0, 0.5, -0.5, 1e300, -1e300, 3.25, 2.0, 7.0, 1.0, -0.0, 8.5, 9.0, 1e-9, 4.0, 5.0, 6.0};
static const char *SVAL[NDOC] = {"charm", "hex", "", "charming", "a", "ab", "abc", "zz", "\xc3\xa9t\xc3\xa9", "x y", "red", "green", "blue", "gold", "grey", "redish"};

static wd_type ftype(void *ctx, const char *key) {
  (void)ctx;
  switch (key[0]) {
    case 'i': return WD_T_INT;
    case 'f': return WD_T_FLOAT;
    case 's': return WD_T_STRING;
    case 'l': return WD_T_STRING_LIST;
    case 'b': return WD_T_BOOL;
    default: return WD_T_NONE;
  }
}

/* Document d has key at all: a key's length decides which documents lack
 * it, so "missing key" semantics are exercised too. */
static int has_key(const char *key, int d) { return (d + (int)strlen(key)) % 5 != 0; }

static int cmpv(wd_type t, int d, const wd_value *v) {
  if (t == WD_T_INT) return IVAL[d] < v->i ? -1 : IVAL[d] > v->i;
  return FVAL[d] < v->f ? -1 : FVAL[d] > v->f;
}

static int feq(void *ctx, const char *key, const wd_value *v, roaring_bitmap_t *acc) {
  wd_type t = ftype(ctx, key);
  if (t == WD_T_NONE || v->type != (t == WD_T_STRING_LIST ? WD_T_STRING : t)) __builtin_trap();
  for (int d = 0; d < NDOC; d++) {
    if (!has_key(key, d)) continue;
    int m = 0;
    if (t == WD_T_INT || t == WD_T_FLOAT) m = cmpv(t, d, v) == 0;
    else if (t == WD_T_BOOL) m = (d & 1) == !!v->b;
    else if (t == WD_T_STRING) m = strlen(SVAL[d]) == v->len && memcmp(SVAL[d], v->s, v->len) == 0;
    else m = (strlen(SVAL[d]) == v->len && memcmp(SVAL[d], v->s, v->len) == 0) ||
             (strlen(SVAL[(d + 3) % NDOC]) == v->len && memcmp(SVAL[(d + 3) % NDOC], v->s, v->len) == 0);
    if (m) roaring_bitmap_add(acc, (uint32_t)d);
  }
  return 0;
}

static int frange(void *ctx, const char *key, const wd_value *lo, int lo_incl,
                  const wd_value *hi, int hi_incl, roaring_bitmap_t *acc) {
  wd_type t = ftype(ctx, key);
  if (t != WD_T_INT && t != WD_T_FLOAT) __builtin_trap();
  if ((lo && lo->type != t) || (hi && hi->type != t)) __builtin_trap();
  for (int d = 0; d < NDOC; d++) {
    if (!has_key(key, d)) continue;
    if (lo && (lo_incl ? cmpv(t, d, lo) < 0 : cmpv(t, d, lo) <= 0)) continue;
    if (hi && (hi_incl ? cmpv(t, d, hi) > 0 : cmpv(t, d, hi) >= 0)) continue;
    roaring_bitmap_add(acc, (uint32_t)d);
  }
  return 0;
}

static int fprefix(void *ctx, const char *key, const char *p, size_t n, roaring_bitmap_t *acc) {
  wd_type t = ftype(ctx, key);
  if (t != WD_T_STRING && t != WD_T_STRING_LIST) __builtin_trap();
  for (int d = 0; d < NDOC; d++)
    if (has_key(key, d) && strlen(SVAL[d]) >= n && memcmp(SVAL[d], p, n) == 0)
      roaring_bitmap_add(acc, (uint32_t)d);
  return 0;
}

static int fcontains(void *ctx, const char *key, const char *p, size_t n, roaring_bitmap_t *acc) {
  wd_type t = ftype(ctx, key);
  if (t != WD_T_STRING && t != WD_T_STRING_LIST) __builtin_trap();
  for (int d = 0; d < NDOC; d++)
    if (has_key(key, d) && memmem(SVAL[d], strlen(SVAL[d]), p, n))
      roaring_bitmap_add(acc, (uint32_t)d);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wd_filter *f = NULL;
  char err[512];
  if (wd_filter_parse((const char *)data, size, &f, err, sizeof err) != 0) {
    if (!memchr(err, 0, sizeof err)) __builtin_trap(); /* unterminated */
    return 0;
  }
  roaring_bitmap_t *u = roaring_bitmap_create();
  roaring_bitmap_add_range(u, 0, NDOC - 2); /* two indexed chunks are dead */
  wd_filter_index ix = {NULL, ftype, feq, frange, fprefix, fcontains, u, NULL};
  roaring_bitmap_t *r = NULL;
  int rc = wd_filter_eval(f, &ix, &r, err, sizeof err);
  if (rc == 0) {
    if (!r || !roaring_bitmap_is_subset(r, u)) __builtin_trap();
    roaring_bitmap_free(r);
  } else if (rc != WARDEN_EDATA || !memchr(err, 0, sizeof err) || !err[0]) {
    __builtin_trap(); /* only a type mismatch may fail, with a message */
  }
  roaring_bitmap_free(u);
  wd_filter_free(f);
  return 0;
}
