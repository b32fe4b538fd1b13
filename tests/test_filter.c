/*
 * test_filter.c -- tests of engine/filter.c (metadata filters).
 *
 * Three tiers:
 *  - table-driven cases over six hand-made documents whose expected ids were
 *    worked out by hand: every operator in both dialects, nesting, missing
 *    keys, string_list membership, int/float bounds, type errors with their
 *    messages, parse errors, limits;
 *  - a randomized differential test: thousands of random filters in both
 *    dialects over random documents, comparing wd_filter_eval (through a
 *    fake inverted index that scans the documents) with an independent
 *    oracle that evaluates the JSON filter directly on each document;
 *  - allocation-failure injection: every failing allocation must surface as
 *    an error without leaks (ASan checks the leaks).
 * The fake index also checks the callback contract (an int field is only
 * asked for int values, bounds carry the field's type, untyped keys are
 * never looked up) and fails the evaluation if it is broken.  It returns
 * dead documents too, so the tests also check that answers stay inside the
 * universe.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "warden.h"

/* ------------------------------------------------------------ fake index */

#define MAXF 8
#define MAXL 4
#define E_CONTRACT (-7000) /* the filter broke the callback contract */

typedef struct fld {
  const char *name;
  wd_type type;
} fld;

typedef struct fval {
  int has;
  const char *s;
  int64_t i;
  double f;
  int b;
  const char *l[MAXL];
  int nl;
} fval;

typedef struct fdoc {
  uint32_t id;
  int live;
  fval v[MAXF];
} fdoc;

typedef struct fake {
  const fld *schema;
  int nf;
  const fdoc *docs;
  size_t n;
  roaring_bitmap_t *universe;
} fake;

static int fk_field(const fake *fk, const char *key) {
  for (int i = 0; i < fk->nf; i++)
    if (strcmp(fk->schema[i].name, key) == 0) return i;
  return -1;
}

/* "boom" is a string field whose lookups fail: error propagation. */
static wd_type fk_type(void *ctx, const char *key) {
  const fake *fk = ctx;
  if (strcmp(key, "boom") == 0) return WD_T_STRING;
  int fi = fk_field(fk, key);
  return fi < 0 ? WD_T_NONE : fk->schema[fi].type;
}

static int str_eq(const char *a, const char *s, size_t len) {
  return strlen(a) == len && memcmp(a, s, len) == 0;
}

static int fk_eq(void *ctx, const char *key, const wd_value *v,
                 roaring_bitmap_t *acc) {
  const fake *fk = ctx;
  if (strcmp(key, "boom") == 0) return WARDEN_EIO;
  int fi = fk_field(fk, key);
  if (fi < 0) return E_CONTRACT - 1;
  wd_type t = fk->schema[fi].type;
  wd_type want = t == WD_T_STRING_LIST ? WD_T_STRING : t;
  if (v->type != want) return E_CONTRACT - 2;
  for (size_t d = 0; d < fk->n; d++) {
    const fval *x = &fk->docs[d].v[fi];
    if (!x->has) continue;
    int m = 0;
    switch (t) {
      case WD_T_STRING: m = str_eq(x->s, v->s, v->len); break;
      case WD_T_STRING_LIST:
        for (int k = 0; k < x->nl; k++) m |= str_eq(x->l[k], v->s, v->len);
        break;
      case WD_T_INT: m = x->i == v->i; break;
      case WD_T_FLOAT: m = x->f == v->f; break;
      case WD_T_BOOL: m = !!x->b == !!v->b; break;
      default: return E_CONTRACT - 3;
    }
    if (m) roaring_bitmap_add(acc, fk->docs[d].id);
  }
  return 0;
}

static int fk_range(void *ctx, const char *key, const wd_value *lo,
                    int lo_incl, const wd_value *hi, int hi_incl,
                    roaring_bitmap_t *acc) {
  const fake *fk = ctx;
  int fi = fk_field(fk, key);
  if (fi < 0) return E_CONTRACT - 4;
  wd_type t = fk->schema[fi].type;
  if (t != WD_T_INT && t != WD_T_FLOAT) return E_CONTRACT - 5;
  if ((lo && lo->type != t) || (hi && hi->type != t)) return E_CONTRACT - 6;
  for (size_t d = 0; d < fk->n; d++) {
    const fval *x = &fk->docs[d].v[fi];
    if (!x->has) continue;
    int m = 1;
    if (t == WD_T_INT) {
      if (lo) m &= lo_incl ? x->i >= lo->i : x->i > lo->i;
      if (hi) m &= hi_incl ? x->i <= hi->i : x->i < hi->i;
    } else {
      if (lo) m &= lo_incl ? x->f >= lo->f : x->f > lo->f;
      if (hi) m &= hi_incl ? x->f <= hi->f : x->f < hi->f;
    }
    if (m) roaring_bitmap_add(acc, fk->docs[d].id);
  }
  return 0;
}

static int str_match(const char *s, const char *p, size_t len, int contains) {
  size_t sl = strlen(s);
  if (!contains) return sl >= len && memcmp(s, p, len) == 0;
  if (len == 0) return 1;
  for (size_t i = 0; i + len <= sl; i++)
    if (memcmp(s + i, p, len) == 0) return 1;
  return 0;
}

static int fk_strop(const fake *fk, const char *key, const char *p, size_t len,
                    roaring_bitmap_t *acc, int contains) {
  int fi = fk_field(fk, key);
  if (fi < 0) return E_CONTRACT - 7;
  wd_type t = fk->schema[fi].type;
  if (t != WD_T_STRING && t != WD_T_STRING_LIST) return E_CONTRACT - 8;
  for (size_t d = 0; d < fk->n; d++) {
    const fval *x = &fk->docs[d].v[fi];
    if (!x->has) continue;
    int m = 0;
    if (t == WD_T_STRING)
      m = str_match(x->s, p, len, contains);
    else
      for (int k = 0; k < x->nl; k++) m |= str_match(x->l[k], p, len, contains);
    if (m) roaring_bitmap_add(acc, fk->docs[d].id);
  }
  return 0;
}

static int fk_prefix(void *ctx, const char *key, const char *p, size_t len,
                     roaring_bitmap_t *acc) {
  return fk_strop(ctx, key, p, len, acc, 0);
}

static int fk_contains(void *ctx, const char *key, const char *p, size_t len,
                       roaring_bitmap_t *acc) {
  return fk_strop(ctx, key, p, len, acc, 1);
}

static void fk_init(fake *fk, const fld *schema, int nf, const fdoc *docs,
                    size_t n) {
  fk->schema = schema;
  fk->nf = nf;
  fk->docs = docs;
  fk->n = n;
  fk->universe = roaring_bitmap_create();
  for (size_t i = 0; i < n; i++)
    if (docs[i].live) roaring_bitmap_add(fk->universe, docs[i].id);
}

static wd_filter_index fk_index(fake *fk) {
  wd_filter_index ix = {fk,        fk_type,     fk_eq, fk_range,
                        fk_prefix, fk_contains, fk->universe, NULL};
  return ix;
}

/* --------------------------------------------------------------- oracle */

/* Canonical operators; the oracle maps both dialects' names onto them. */
enum { O_EQ, O_NE, O_GT, O_GTE, O_LT, O_LTE, O_IN, O_NIN, O_PRE, O_LC, O_SC,
       O_COUNT };
static const char *const BED_NAMES[O_COUNT] = {
    "equals",   "notEquals",        "greaterThan", "greaterThanOrEquals",
    "lessThan", "lessThanOrEquals", "in",          "notIn",
    "startsWith", "listContains",   "stringContains"};
static const char *const MONGO_NAMES[O_COUNT] = {
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", NULL, NULL,
    NULL};

static int o_op(const char *const *names, const char *name) {
  for (int i = 0; i < O_COUNT; i++)
    if (names[i] && strcmp(names[i], name) == 0) return i;
  fail_msg("oracle: unknown op %s", name);
  return -1;
}

static double o_num(const fval *x, wd_type t) {
  return t == WD_T_INT ? (double)x->i : x->f;
}

/* Does the document's value equal v?  (Type-correct filters only.) */
static int o_eq(wd_type t, const fval *x, const json_t *v) {
  switch (t) {
    case WD_T_STRING: return strcmp(x->s, json_string_value(v)) == 0;
    case WD_T_STRING_LIST:
      for (int k = 0; k < x->nl; k++)
        if (strcmp(x->l[k], json_string_value(v)) == 0) return 1;
      return 0;
    case WD_T_INT:
      if (json_is_integer(v)) return x->i == json_integer_value(v);
      return (double)x->i == json_real_value(v);
    case WD_T_FLOAT: return x->f == json_number_value(v);
    case WD_T_BOOL: return !!x->b == json_is_true(v);
    default: fail_msg("oracle: bad type"); return 0;
  }
}

static int o_leaf(const fake *fk, int op, const char *key, const json_t *v,
                  const fdoc *d) {
  int fi = fk_field(fk, key);
  if (fi < 0 || !d->v[fi].has) return op == O_NE || op == O_NIN;
  wd_type t = fk->schema[fi].type;
  const fval *x = &d->v[fi];
  size_t i;
  const json_t *e;
  int any = 0;
  switch (op) {
    case O_EQ: return o_eq(t, x, v);
    case O_NE: return !o_eq(t, x, v);
    case O_IN:
    case O_NIN:
      json_array_foreach(v, i, e) any |= o_eq(t, x, e);
      return op == O_IN ? any : !any;
    case O_GT: return o_num(x, t) > json_number_value(v);
    case O_GTE: return o_num(x, t) >= json_number_value(v);
    case O_LT: return o_num(x, t) < json_number_value(v);
    case O_LTE: return o_num(x, t) <= json_number_value(v);
    case O_LC: return o_eq(WD_T_STRING_LIST, x, v);
    case O_PRE:
    case O_SC: {
      const char *p = json_string_value(v);
      if (t == WD_T_STRING) return str_match(x->s, p, strlen(p), op == O_SC);
      for (int k = 0; k < x->nl; k++)
        any |= str_match(x->l[k], p, strlen(p), op == O_SC);
      return any;
    }
  }
  return 0;
}

static int o_bedrock(const fake *fk, const json_t *j, const fdoc *d) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)j, k, v) { /* exactly one entry */
    size_t i;
    json_t *e;
    if (strcmp(k, "andAll") == 0) {
      json_array_foreach(v, i, e) if (!o_bedrock(fk, e, d)) return 0;
      return 1;
    }
    if (strcmp(k, "orAll") == 0) {
      json_array_foreach(v, i, e) if (o_bedrock(fk, e, d)) return 1;
      return 0;
    }
    return o_leaf(fk, o_op(BED_NAMES, k),
                  json_string_value(json_object_get(v, "key")),
                  json_object_get(v, "value"), d);
  }
  return 1;
}

static int o_mongo(const fake *fk, const json_t *j, const fdoc *d) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)j, k, v) {
    size_t i;
    json_t *e;
    int ok = 1;
    if (strcmp(k, "$and") == 0) {
      json_array_foreach(v, i, e) ok &= o_mongo(fk, e, d);
    } else if (strcmp(k, "$or") == 0) {
      ok = 0;
      json_array_foreach(v, i, e) ok |= o_mongo(fk, e, d);
    } else if (json_is_object(v)) {
      const char *op;
      json_t *ov;
      json_object_foreach(v, op, ov) ok &=
          o_leaf(fk, o_op(MONGO_NAMES, op), k, ov, d);
    } else {
      ok = o_leaf(fk, O_EQ, k, v, d);
    }
    if (!ok) return 0;
  }
  return 1;
}

/* --------------------------------------------------------- table tests */

static const fld TSCHEMA[] = {{"year", WD_T_INT},          {"type", WD_T_STRING},
                              {"use", WD_T_STRING},        {"tags", WD_T_STRING_LIST},
                              {"score", WD_T_FLOAT},       {"active", WD_T_BOOL}};
#define I(x) {.has = 1, .i = (x)}
#define S(x) {.has = 1, .s = (x)}
#define F(x) {.has = 1, .f = (x)}
#define B(x) {.has = 1, .b = (x)}
#define L(...) {.has = 1, .l = {__VA_ARGS__}, .nl = sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)}
#define L0 {.has = 1, .nl = 0}
#define N {0}
/*  id  live year   type                use            tags                         score    active */
static const fdoc TDOCS[] = {
    {10, 1, {I(4), S("charms"),          S("defense"), L("shield", "basic"),       F(2.5),  B(1)}},
    {11, 1, {I(5), S("transfiguration"), N,            L("advanced"),              F(4.0),  B(0)}},
    {12, 1, {I(1), S("charms"),          S("utility"), L0,                         F(1.0),  N}},
    {13, 1, {N,    S("potions"),         S("defense"), N,                          N,       B(1)}},
    {14, 1, {I(7), S("dark arts"),       S("attack"),  L("forbidden", "advanced"), F(-1.5), B(0)}},
    {15, 1, {I(4), N,                    N,            L("basic"),                 F(2.0),  N}},
    /* dead: the fake index still returns it; no answer may contain it */
    {16, 0, {I(4), S("charms"),          S("defense"), L("basic"),                 F(2.5),  B(1)}},
};
#define ALL "10,11,12,13,14,15"
#define WITH_YEAR "10,11,12,14,15"

typedef struct tcase {
  const char *filter;
  const char *expect; /* ids "10,12" when rc == 0, else a message part */
  int rc;             /* 0 or WARDEN_EDATA from eval */
} tcase;

static const tcase TCASES[] = {
    /* Bedrock, every operator */
    {"{\"equals\":{\"key\":\"type\",\"value\":\"charms\"}}", "10,12", 0},
    {"{\"notEquals\":{\"key\":\"type\",\"value\":\"charms\"}}", "11,13,14,15", 0},
    {"{\"greaterThan\":{\"key\":\"year\",\"value\":4}}", "11,14", 0},
    {"{\"greaterThanOrEquals\":{\"key\":\"year\",\"value\":4}}", "10,11,14,15", 0},
    {"{\"lessThan\":{\"key\":\"year\",\"value\":4}}", "12", 0},
    {"{\"lessThanOrEquals\":{\"key\":\"year\",\"value\":4}}", "10,12,15", 0},
    {"{\"in\":{\"key\":\"type\",\"value\":[\"potions\",\"dark arts\",\"nope\"]}}", "13,14", 0},
    {"{\"notIn\":{\"key\":\"use\",\"value\":[\"defense\"]}}", "11,12,14,15", 0},
    {"{\"startsWith\":{\"key\":\"type\",\"value\":\"ch\"}}", "10,12", 0},
    {"{\"startsWith\":{\"key\":\"type\",\"value\":\"\"}}", "10,11,12,13,14", 0},
    {"{\"startsWith\":{\"key\":\"tags\",\"value\":\"adv\"}}", "11,14", 0},
    {"{\"listContains\":{\"key\":\"tags\",\"value\":\"basic\"}}", "10,15", 0},
    {"{\"stringContains\":{\"key\":\"type\",\"value\":\"ar\"}}", "10,12,14", 0},
    {"{\"stringContains\":{\"key\":\"tags\",\"value\":\"ie\"}}", "10", 0},
    /* string_list: equality is membership */
    {"{\"equals\":{\"key\":\"tags\",\"value\":\"advanced\"}}", "11,14", 0},
    {"{\"in\":{\"key\":\"tags\",\"value\":[\"shield\",\"forbidden\"]}}", "10,14", 0},
    {"{\"notEquals\":{\"key\":\"tags\",\"value\":\"advanced\"}}", "10,12,13,15", 0},
    {"{\"notIn\":{\"key\":\"tags\",\"value\":[\"basic\",\"shield\"]}}", "11,12,13,14", 0},
    /* bool */
    {"{\"equals\":{\"key\":\"active\",\"value\":true}}", "10,13", 0},
    {"{\"equals\":{\"key\":\"active\",\"value\":false}}", "11,14", 0},
    {"{\"notEquals\":{\"key\":\"active\",\"value\":true}}", "11,12,14,15", 0},
    /* combinations */
    {"{\"andAll\":[{\"equals\":{\"key\":\"use\",\"value\":\"defense\"}},"
     "{\"lessThanOrEquals\":{\"key\":\"year\",\"value\":4}}]}", "10", 0},
    {"{\"orAll\":[{\"equals\":{\"key\":\"type\",\"value\":\"potions\"}},"
     "{\"greaterThan\":{\"key\":\"score\",\"value\":3}}]}", "11,13", 0},
    {"{\"andAll\":[{\"orAll\":[{\"equals\":{\"key\":\"type\",\"value\":\"charms\"}},"
     "{\"equals\":{\"key\":\"type\",\"value\":\"potions\"}}]},"
     "{\"notEquals\":{\"key\":\"active\",\"value\":false}}]}", "10,12,13", 0},
    {"{\"andAll\":[{\"equals\":{\"key\":\"year\",\"value\":1}}]}", "12", 0},
    {"{\"andAll\":[{\"notEquals\":{\"key\":\"type\",\"value\":\"charms\"}},"
     "{\"notIn\":{\"key\":\"year\",\"value\":[5,7]}}]}", "13,15", 0},
    {"{\"orAll\":[{\"notEquals\":{\"key\":\"year\",\"value\":4}},"
     "{\"equals\":{\"key\":\"year\",\"value\":4}}]}", ALL, 0},
    /* int field, real bound */
    {"{\"greaterThan\":{\"key\":\"year\",\"value\":4.5}}", "11,14", 0},
    {"{\"greaterThanOrEquals\":{\"key\":\"year\",\"value\":4.5}}", "11,14", 0},
    {"{\"lessThan\":{\"key\":\"year\",\"value\":4.5}}", "10,12,15", 0},
    {"{\"lessThanOrEquals\":{\"key\":\"year\",\"value\":4.5}}", "10,12,15", 0},
    {"{\"lessThanOrEquals\":{\"key\":\"year\",\"value\":4.0}}", "10,12,15", 0},
    {"{\"lessThan\":{\"key\":\"year\",\"value\":4.0}}", "12", 0},
    {"{\"greaterThan\":{\"key\":\"year\",\"value\":4.0}}", "11,14", 0},
    {"{\"greaterThan\":{\"key\":\"year\",\"value\":-0.5}}", WITH_YEAR, 0},
    {"{\"lessThan\":{\"key\":\"year\",\"value\":-0.5}}", "", 0},
    {"{\"equals\":{\"key\":\"year\",\"value\":4.0}}", "10,15", 0},
    {"{\"equals\":{\"key\":\"year\",\"value\":4.5}}", "", 0},
    {"{\"notEquals\":{\"key\":\"year\",\"value\":4.5}}", ALL, 0},
    {"{\"in\":{\"key\":\"year\",\"value\":[1,4.5,7.0]}}", "12,14", 0},
    {"{\"greaterThan\":{\"key\":\"year\",\"value\":1e19}}", "", 0},
    {"{\"lessThan\":{\"key\":\"year\",\"value\":1e19}}", WITH_YEAR, 0},
    {"{\"greaterThan\":{\"key\":\"year\",\"value\":-1e19}}", WITH_YEAR, 0},
    {"{\"lessThanOrEquals\":{\"key\":\"year\",\"value\":-1e19}}", "", 0},
    {"{\"lessThanOrEquals\":{\"key\":\"year\",\"value\":9223372036854775807}}", WITH_YEAR, 0},
    {"{\"greaterThan\":{\"key\":\"year\",\"value\":-9223372036854775808}}", WITH_YEAR, 0},
    {"{\"equals\":{\"key\":\"year\",\"value\":1e300}}", "", 0},
    /* float field, int bound */
    {"{\"greaterThan\":{\"key\":\"score\",\"value\":2}}", "10,11", 0},
    {"{\"greaterThanOrEquals\":{\"key\":\"score\",\"value\":2}}", "10,11,15", 0},
    {"{\"equals\":{\"key\":\"score\",\"value\":1}}", "12", 0},
    {"{\"lessThan\":{\"key\":\"score\",\"value\":0}}", "14", 0},
    {"{\"lessThanOrEquals\":{\"key\":\"score\",\"value\":2.5}}", "10,12,14,15", 0},
    /* a key nobody has: positive false, negated true, never a type error */
    {"{\"equals\":{\"key\":\"house\",\"value\":\"x\"}}", "", 0},
    {"{\"equals\":{\"key\":\"house\",\"value\":true}}", "", 0},
    {"{\"notEquals\":{\"key\":\"house\",\"value\":\"x\"}}", ALL, 0},
    {"{\"greaterThan\":{\"key\":\"house\",\"value\":3}}", "", 0},
    {"{\"notIn\":{\"key\":\"house\",\"value\":[1,\"a\",true,2.5]}}", ALL, 0},
    {"{\"in\":{\"key\":\"house\",\"value\":[1,\"a\",true]}}", "", 0},
    {"{\"startsWith\":{\"key\":\"house\",\"value\":\"\"}}", "", 0},
    {"{\"listContains\":{\"key\":\"house\",\"value\":\"a\"}}", "", 0},
    {"{\"stringContains\":{\"key\":\"house\",\"value\":\"a\"}}", "", 0},
    /* empty things */
    {"{}", ALL, 0},
    {"{\"in\":{\"key\":\"type\",\"value\":[]}}", "", 0},
    {"{\"notIn\":{\"key\":\"type\",\"value\":[]}}", ALL, 0},
    /* Mongo */
    {"{\"type\":\"charms\"}", "10,12", 0},
    {"{\"type\":{\"$eq\":\"charms\"}}", "10,12", 0},
    {"{\"type\":{\"$ne\":\"charms\"}}", "11,13,14,15", 0},
    {"{\"year\":{\"$gte\":4,\"$lt\":7}}", "10,11,15", 0},
    {"{\"year\":{\"$gt\":1,\"$lte\":5}}", "10,11,15", 0},
    {"{\"use\":\"defense\",\"year\":{\"$lte\":4}}", "10", 0},
    {"{\"use\":{\"$eq\":\"defense\"},\"student\":{\"$ne\":1}}", "10,13", 0},
    {"{\"$or\":[{\"type\":\"potions\"},{\"score\":{\"$gt\":3}}]}", "11,13", 0},
    {"{\"type\":{\"$in\":[\"potions\",\"dark arts\"]}}", "13,14", 0},
    {"{\"use\":{\"$nin\":[\"defense\",\"attack\"]}}", "11,12,15", 0},
    {"{\"tags\":\"basic\"}", "10,15", 0},
    {"{\"tags\":{\"$in\":[\"shield\",\"forbidden\"]}}", "10,14", 0},
    {"{\"active\":false}", "11,14", 0},
    {"{\"score\":2}", "15", 0},
    {"{\"$and\":[{\"year\":4},{\"tags\":\"basic\"}]}", "10,15", 0},
    {"{\"$and\":[{\"$or\":[{\"year\":1},{\"year\":7}]},{\"type\":{\"$ne\":\"charms\"}}]}", "14", 0},
    {"{\"house\":{\"$ne\":1}}", ALL, 0},
    {"{\"house\":{\"$gt\":1}}", "", 0},
    {"{\"house\":{\"$nin\":[\"a\"]},\"year\":4}", "10,15", 0},
    {"{\"year\":{\"$lt\":4.5}}", "10,12,15", 0},
    {"{\"$or\":[{}]}", ALL, 0},
    {"{\"$or\":[{\"year\":{\"$lt\":0}},{\"year\":{\"$gt\":100}}]}", "", 0},
    /* a Mongo field may share a name with a Bedrock word when wrapped */
    {"{\"$and\":[{\"in\":3}]}", "", 0},
    /* type mismatches: errors, with the path in the message */
    {"{\"lessThan\":{\"key\":\"type\",\"value\":3}}",
     "filter: lessThan: key \"type\" is a string field; lessThan needs int or float", WARDEN_EDATA},
    {"{\"equals\":{\"key\":\"year\",\"value\":\"4\"}}",
     "filter: equals.value: key \"year\" is an int field; got a string", WARDEN_EDATA},
    {"{\"equals\":{\"key\":\"type\",\"value\":4}}", "is a string field; got a number", WARDEN_EDATA},
    {"{\"equals\":{\"key\":\"year\",\"value\":true}}", "is an int field; got a boolean", WARDEN_EDATA},
    {"{\"equals\":{\"key\":\"score\",\"value\":\"1\"}}", "is a float field; got a string", WARDEN_EDATA},
    {"{\"equals\":{\"key\":\"active\",\"value\":1}}", "is a bool field; got a number", WARDEN_EDATA},
    {"{\"equals\":{\"key\":\"active\",\"value\":\"true\"}}", "is a bool field; got a string", WARDEN_EDATA},
    {"{\"equals\":{\"key\":\"tags\",\"value\":1}}", "is a string_list field; got a number", WARDEN_EDATA},
    {"{\"equals\":{\"key\":\"type\",\"value\":false}}", "is a string field; got a boolean", WARDEN_EDATA},
    {"{\"notEquals\":{\"key\":\"year\",\"value\":\"x\"}}", "notEquals.value:", WARDEN_EDATA},
    {"{\"startsWith\":{\"key\":\"year\",\"value\":\"4\"}}",
     "filter: startsWith: key \"year\" is an int field; startsWith needs string or string_list", WARDEN_EDATA},
    {"{\"stringContains\":{\"key\":\"active\",\"value\":\"t\"}}", "stringContains needs string or string_list", WARDEN_EDATA},
    {"{\"listContains\":{\"key\":\"type\",\"value\":\"charms\"}}",
     "filter: listContains: key \"type\" is a string field; listContains needs string_list", WARDEN_EDATA},
    {"{\"greaterThan\":{\"key\":\"tags\",\"value\":1}}", "greaterThan needs int or float", WARDEN_EDATA},
    {"{\"greaterThanOrEquals\":{\"key\":\"active\",\"value\":1}}", "is a bool field; greaterThanOrEquals needs", WARDEN_EDATA},
    {"{\"in\":{\"key\":\"year\",\"value\":[1,\"2\"]}}",
     "filter: in.value[1]: key \"year\" is an int field; got a string", WARDEN_EDATA},
    {"{\"notIn\":{\"key\":\"tags\",\"value\":[\"a\",\"b\",true]}}", "filter: notIn.value[2]:", WARDEN_EDATA},
    {"{\"andAll\":[{\"equals\":{\"key\":\"year\",\"value\":4}},{\"lessThan\":{\"key\":\"type\",\"value\":3}}]}",
     "filter: andAll[1].lessThan: key \"type\"", WARDEN_EDATA},
    /* the first branch is empty; the error must still be reported */
    {"{\"andAll\":[{\"equals\":{\"key\":\"year\",\"value\":99}},{\"lessThan\":{\"key\":\"type\",\"value\":3}}]}",
     "andAll[1].lessThan", WARDEN_EDATA},
    {"{\"type\":{\"$lt\":3}}", "filter: type.$lt: key \"type\" is a string field; $lt needs int or float", WARDEN_EDATA},
    {"{\"year\":\"4\"}", "filter: year: key \"year\" is an int field; got a string", WARDEN_EDATA},
    {"{\"year\":{\"$ne\":\"4\"}}", "filter: year.$ne: key \"year\"", WARDEN_EDATA},
    {"{\"$or\":[{\"year\":1},{\"score\":{\"$in\":[1,\"x\"]}}]}",
     "filter: $or[1].score.$in[1]: key \"score\" is a float field; got a string", WARDEN_EDATA},
    {"{\"$and\":[{\"year\":{\"$gt\":100}},{\"active\":{\"$gte\":1}}]}", "$and[1].active.$gte", WARDEN_EDATA},
};

static roaring_bitmap_t *ids_bitmap(const char *s) {
  roaring_bitmap_t *b = roaring_bitmap_create();
  while (*s) {
    char *end;
    roaring_bitmap_add(b, (uint32_t)strtoul(s, &end, 10));
    s = *end == ',' ? end + 1 : end;
  }
  return b;
}

static void bitmap_str(const roaring_bitmap_t *b, char *buf, size_t len) {
  roaring_uint32_iterator_t it;
  roaring_init_iterator(b, &it);
  size_t n = 0;
  buf[0] = 0;
  for (; it.has_value && n + 12 < len; roaring_advance_uint32_iterator(&it))
    n += (size_t)snprintf(buf + n, len - n, "%s%u", n ? "," : "",
                          it.current_value);
}

/* Parse (both entry points) and evaluate; returns eval's rc. */
static int run_filter(const char *text, const wd_filter_index *ix,
                      roaring_bitmap_t **out, char *err, size_t errlen) {
  wd_filter *f = NULL;
  int rc = wd_filter_parse(text, strlen(text), &f, err, errlen);
  if (rc != 0) fail_msg("parse failed: %s: %s", text, err);
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  assert_non_null(j);
  wd_filter *f2 = NULL;
  assert_int_equal(wd_filter_parse_json(j, &f2, err, errlen), 0);
  json_decref(j);
  rc = wd_filter_eval(f, ix, out, err, errlen);
  roaring_bitmap_t *out2 = NULL;
  char err2[512];
  int rc2 = wd_filter_eval(f2, ix, &out2, err2, sizeof err2);
  assert_int_equal(rc, rc2);
  if (rc == 0) {
    assert_true(roaring_bitmap_equals(*out, out2));
    roaring_bitmap_free(out2);
  } else {
    assert_string_equal(err, err2);
  }
  wd_filter_free(f);
  wd_filter_free(f2);
  return rc;
}

static void test_table(void **state) {
  (void)state;
  fake fk;
  fk_init(&fk, TSCHEMA, 6, TDOCS, sizeof TDOCS / sizeof TDOCS[0]);
  wd_filter_index ix = fk_index(&fk);
  for (size_t i = 0; i < sizeof TCASES / sizeof TCASES[0]; i++) {
    const tcase *tc = &TCASES[i];
    roaring_bitmap_t *out = (roaring_bitmap_t *)0x1; /* must stay on error */
    char err[512];
    int rc = run_filter(tc->filter, &ix, &out, err, sizeof err);
    if (rc != tc->rc)
      fail_msg("case %zu %s: rc %d, want %d (%s)", i, tc->filter, rc, tc->rc,
               err);
    if (rc == 0) {
      roaring_bitmap_t *want = ids_bitmap(tc->expect);
      char got[256];
      bitmap_str(out, got, sizeof got);
      if (!roaring_bitmap_equals(out, want))
        fail_msg("case %zu %s: got {%s}, want {%s}", i, tc->filter, got,
                 tc->expect);
      roaring_bitmap_free(want);
      roaring_bitmap_free(out);
    } else {
      assert_ptr_equal(out, (roaring_bitmap_t *)0x1);
      if (strncmp(err, "filter: ", 8) != 0 || !strstr(err, tc->expect))
        fail_msg("case %zu %s: message \"%s\" lacks \"%s\"", i, tc->filter,
                 err, tc->expect);
    }
  }
  roaring_bitmap_free(fk.universe);
}

/* ----------------------------------------------------------- parse errors */

typedef struct pcase {
  const char *filter;
  const char *msg; /* a part of the expected message */
} pcase;

static const pcase PCASES[] = {
    {"", "filter: invalid JSON"},
    {"{", "filter: invalid JSON"},
    {"3", "filter: invalid JSON"},
    {"\"equals\"", "filter: invalid JSON"},
    {"{} x", "filter: invalid JSON"},
    {"{\"a\":1,\"a\":2}", "filter: invalid JSON"},
    {"{\"equals\":{\"key\":\"a\",\"value\":1.5e400}}", "filter: invalid JSON"},
    {"[]", "filter: expected a JSON object"},
    {"{\"equals\":{\"key\":\"a\"}}", "filter: equals: missing \"value\""},
    {"{\"equals\":{\"value\":1}}", "filter: equals: missing \"key\""},
    {"{\"andAll\":[{\"equals\":{\"key\":\"a\",\"value\":1}},{\"equals\":{\"value\":1}}]}",
     "filter: andAll[1].equals: missing \"key\""},
    {"{\"equals\":{\"key\":\"a\",\"value\":1,\"x\":2}}", "filter: equals: unexpected field \"x\""},
    {"{\"andAll\":[{\"equals\":{\"key\":\"a\",\"value\":1}},{\"fooBar\":{\"key\":\"a\",\"value\":1}}]}",
     "filter: andAll[1]: unknown operator \"fooBar\""},
    {"{\"andAll\":[{\"equals\":{\"key\":\"a\",\"value\":1}},{\"lessThan\":{\"key\":\"a\",\"value\":\"x\"}}]}",
     "filter: andAll[1].lessThan.value: expected a number"},
    {"{\"greaterThan\":{\"key\":\"a\",\"value\":true}}", "filter: greaterThan.value: expected a number"},
    {"{\"equals\":{\"key\":\"a\",\"value\":null}}", "filter: equals.value: null is not a valid value"},
    {"{\"equals\":{\"key\":\"a\",\"value\":[1]}}", "for a list use in"},
    {"{\"equals\":{\"key\":\"a\",\"value\":{\"b\":1}}}", "filter: equals.value: expected a string, number or boolean"},
    {"{\"in\":{\"key\":\"a\",\"value\":1}}", "filter: in.value: expected an array"},
    {"{\"notIn\":{\"key\":\"a\",\"value\":[1,null]}}", "filter: notIn.value[1]: null"},
    {"{\"in\":{\"key\":\"a\",\"value\":[[1]]}}", "filter: in.value[0]: expected a string, number or boolean"},
    {"{\"startsWith\":{\"key\":\"a\",\"value\":1}}", "filter: startsWith.value: expected a string"},
    {"{\"listContains\":{\"key\":\"a\",\"value\":[\"x\"]}}", "filter: listContains.value: expected a string"},
    {"{\"stringContains\":{\"key\":\"a\",\"value\":false}}", "filter: stringContains.value: expected a string"},
    {"{\"andAll\":[]}", "filter: andAll: expected a non-empty array"},
    {"{\"orAll\":{}}", "filter: orAll: expected a non-empty array"},
    {"{\"andAll\":[3]}", "filter: andAll[0]: expected an object"},
    {"{\"orAll\":[{}]}", "filter: orAll[0]: expected exactly one operator, got 0"},
    {"{\"andAll\":[{\"equals\":{\"key\":\"a\",\"value\":1}},{\"a\":1}]}", "filter: andAll[1]: unknown operator \"a\""},
    {"{\"equals\":{\"key\":\"\",\"value\":1}}", "filter: equals.key: empty key"},
    {"{\"equals\":{\"key\":1,\"value\":1}}", "filter: equals.key: expected a string"},
    {"{\"equals\":1}", "filter: equals: expected an object with \"key\" and \"value\""},
    {"{\"equals\":{\"key\":\"a\",\"value\":1},\"lessThan\":{\"key\":\"a\",\"value\":1}}",
     "filter: expected exactly one operator, got 2"},
    {"{\"equals\":{\"key\":\"a\",\"value\":1},\"b\":2}", "filter: Bedrock operator \"equals\" mixed with \"b\""},
    {"{\"a\":{\"$foo\":1}}", "filter: a: unknown operator \"$foo\""},
    {"{\"a\":{\"b\":1}}", "filter: a: unknown operator \"b\""},
    {"{\"$not\":{\"a\":1}}", "filter: unknown operator \"$not\""},
    {"{\"$and\":[{\"$exists\":true}]}", "filter: $and[0]: unknown operator \"$exists\""},
    {"{\"a\":{\"$gt\":\"x\"}}", "filter: a.$gt: expected a number"},
    {"{\"a\":{}}", "filter: a: empty operator object"},
    {"{\"a\":[1,2]}", "for a list use $in"},
    {"{\"a\":{\"$ne\":[1,2]}}", "for a list use $nin"},
    {"{\"a\":null}", "filter: a: null is not a valid value"},
    {"{\"a\":{\"$in\":5}}", "filter: a.$in: expected an array"},
    {"{\"a\":{\"$nin\":[1,{}]}}", "filter: a.$nin[1]: expected a string"},
    {"{\"$and\":[{\"a\":1},3]}", "filter: $and[1]: expected an object"},
    {"{\"$or\":[]}", "filter: $or: expected a non-empty array"},
    {"{\"$or\":{\"a\":1}}", "filter: $or: expected a non-empty array"},
    {"{\"\":1}", "filter: empty key"},
    {"{\"$and\":[{\"b\":1},{\"$or\":[{\"c\":{\"$lte\":null}}]}]}", "filter: $and[1].$or[0].c.$lte: expected a number"},
};

static void test_parse_errors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof PCASES / sizeof PCASES[0]; i++) {
    wd_filter *f = (wd_filter *)0x1;
    char err[512];
    int rc = wd_filter_parse(PCASES[i].filter, strlen(PCASES[i].filter), &f,
                             err, sizeof err);
    if (rc != -1)
      fail_msg("case %zu %s: parsed (rc %d)", i, PCASES[i].filter, rc);
    assert_ptr_equal(f, (wd_filter *)0x1);
    if (!strstr(err, PCASES[i].msg))
      fail_msg("case %zu %s: message \"%s\" lacks \"%s\"", i, PCASES[i].filter,
               err, PCASES[i].msg);
  }
  /* a tiny error buffer is filled, truncated and terminated */
  char small[8];
  wd_filter *f = NULL;
  assert_int_equal(wd_filter_parse("{", 1, &f, small, sizeof small), -1);
  assert_int_equal(strlen(small), 7);
  /* NULLs */
  assert_int_equal(wd_filter_parse(NULL, 0, &f, small, sizeof small), -1);
  assert_int_equal(wd_filter_parse("{}", 2, NULL, NULL, 0), -1);
  assert_int_equal(wd_filter_parse_json(NULL, &f, NULL, 0), -1);
  /* length is honoured: the text after len is not read */
  assert_int_equal(wd_filter_parse("{}garbage", 2, &f, NULL, 0), 0);
  wd_filter_free(f);
  wd_filter_free(NULL);
}

/* --------------------------------------------------------------- limits */

/* A buffer that grows; tests only. */
typedef struct sbuf {
  char *p;
  size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s) {
  size_t l = strlen(s);
  if (b->n + l + 1 > b->cap) {
    b->cap = (b->n + l + 1) * 2;
    b->p = realloc(b->p, b->cap);
    assert_non_null(b->p);
  }
  memcpy(b->p + b->n, s, l + 1);
  b->n += l;
}

static int parse_str(const char *s, char *err, size_t errlen) {
  wd_filter *f = NULL;
  int rc = wd_filter_parse(s, strlen(s), &f, err, errlen);
  if (rc == 0) wd_filter_free(f);
  return rc;
}

static char *nested(int levels, const char *open, const char *close,
                    const char *leaf) {
  sbuf b = {0};
  for (int i = 0; i < levels; i++) sb_add(&b, open);
  sb_add(&b, leaf);
  for (int i = 0; i < levels; i++) sb_add(&b, close);
  return b.p;
}

static void test_limits(void **state) {
  (void)state;
  char err[512];
  fake fk;
  fk_init(&fk, TSCHEMA, 6, TDOCS, sizeof TDOCS / sizeof TDOCS[0]);
  wd_filter_index ix = fk_index(&fk);

  /* depth: 32 nested combinators pass, 33 fail, in both dialects */
  const char *bl = "{\"equals\":{\"key\":\"year\",\"value\":4}}";
  for (int lv = 31; lv <= 33; lv++) {
    char *s = nested(lv, "{\"andAll\":[", "]}", bl);
    int rc = parse_str(s, err, sizeof err);
    assert_int_equal(rc, lv <= 32 ? 0 : -1);
    if (rc) assert_non_null(strstr(err, "nested deeper than 32 levels"));
    free(s);
    s = nested(lv, "{\"$or\":[", "]}", "{\"year\":4}");
    rc = parse_str(s, err, sizeof err);
    assert_int_equal(rc, lv <= 32 ? 0 : -1);
    if (rc) assert_non_null(strstr(err, "nested deeper than 32 levels"));
    free(s);
  }
  /* very deep JSON is refused cleanly, not by a stack overflow */
  {
    char *s = nested(3000, "{\"$and\":[", "]}", "{}");
    assert_int_equal(parse_str(s, err, sizeof err), -1);
    free(s);
  }

  /* leaves: 4096 pass, 4097 fail (orAll and Mongo multi-op fields) */
  for (int n = 4096; n <= 4097; n++) {
    sbuf b = {0};
    sb_add(&b, "{\"orAll\":[");
    for (int i = 0; i < n; i++) {
      char leaf[96];
      snprintf(leaf, sizeof leaf,
               "%s{\"equals\":{\"key\":\"year\",\"value\":%d}}", i ? "," : "",
               i);
      sb_add(&b, leaf);
    }
    sb_add(&b, "]}");
    wd_filter *f = NULL;
    int rc = wd_filter_parse(b.p, b.n, &f, err, sizeof err);
    if (n == 4096) {
      assert_int_equal(rc, 0);
      roaring_bitmap_t *out;
      assert_int_equal(wd_filter_eval(f, &ix, &out, err, sizeof err), 0);
      roaring_bitmap_t *want = ids_bitmap(WITH_YEAR);
      assert_true(roaring_bitmap_equals(out, want));
      roaring_bitmap_free(out);
      roaring_bitmap_free(want);
      wd_filter_free(f);
    } else {
      assert_int_equal(rc, -1);
      assert_non_null(strstr(err, "more than 4096 conditions"));
    }
    free(b.p);
  }
  {
    sbuf b = {0};
    sb_add(&b, "{\"$or\":[");
    for (int i = 0; i < 1366; i++) /* 3 leaves each: 4098 */
      sb_add(&b, i ? ",{\"year\":{\"$gt\":1,\"$lt\":9,\"$ne\":5}}"
                   : "{\"year\":{\"$gt\":1,\"$lt\":9,\"$ne\":5}}");
    sb_add(&b, "]}");
    assert_int_equal(parse_str(b.p, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than 4096 conditions"));
    free(b.p);
  }

  /* in-lists: 65536 pass (and evaluate), 65537 fail */
  for (int n = 65536; n <= 65537; n++) {
    sbuf b = {0};
    sb_add(&b, "{\"in\":{\"key\":\"year\",\"value\":[");
    for (int i = 0; i < n; i++) {
      char v[24];
      snprintf(v, sizeof v, "%s%d", i ? "," : "", i + 5);
      sb_add(&b, v);
    }
    sb_add(&b, "]}}");
    wd_filter *f = NULL;
    int rc = wd_filter_parse(b.p, b.n, &f, err, sizeof err);
    if (n == 65536) {
      assert_int_equal(rc, 0);
      roaring_bitmap_t *out;
      assert_int_equal(wd_filter_eval(f, &ix, &out, err, sizeof err), 0);
      roaring_bitmap_t *want = ids_bitmap("11,14"); /* years 5 and 7 */
      assert_true(roaring_bitmap_equals(out, want));
      roaring_bitmap_free(out);
      roaring_bitmap_free(want);
      wd_filter_free(f);
    } else {
      assert_int_equal(rc, -1);
      assert_non_null(strstr(err, "filter: in.value: more than 65536 values"));
    }
    free(b.p);
  }

  /* keys: 1..256 bytes */
  for (int n = 256; n <= 257; n++) {
    char *key = malloc((size_t)n + 1);
    memset(key, 'k', (size_t)n);
    key[n] = 0;
    char *s = malloc((size_t)n + 64);
    snprintf(s, (size_t)n + 64, "{\"equals\":{\"key\":\"%s\",\"value\":1}}",
             key);
    int rc = parse_str(s, err, sizeof err);
    assert_int_equal(rc, n <= 256 ? 0 : -1);
    if (rc) assert_non_null(strstr(err, "key longer than 256 bytes"));
    snprintf(s, (size_t)n + 64, "{\"%s\":1}", key);
    rc = parse_str(s, err, sizeof err);
    assert_int_equal(rc, n <= 256 ? 0 : -1);
    if (rc) assert_non_null(strstr(err, "key longer than 256 bytes"));
    free(key);
    free(s);
  }

  /* string values: <= 64 KiB */
  for (int n = 65536; n <= 65537; n++) {
    char *s = malloc((size_t)n + 64);
    int off = snprintf(s, 64, "{\"type\":\"");
    memset(s + off, 'v', (size_t)n);
    strcpy(s + off + n, "\"}");
    int rc = parse_str(s, err, sizeof err);
    assert_int_equal(rc, n <= 65536 ? 0 : -1);
    if (rc)
      assert_non_null(
          strstr(err, "filter: type: string value longer than 65536 bytes"));
    free(s);
  }
  roaring_bitmap_free(fk.universe);
}

/* ------------------------------------------------ eval errors and NULLs */

static void test_eval_errors(void **state) {
  (void)state;
  fake fk;
  fk_init(&fk, TSCHEMA, 6, TDOCS, sizeof TDOCS / sizeof TDOCS[0]);
  wd_filter_index ix = fk_index(&fk);
  char err[512];
  /* a failing callback's code comes back, the answer pointer untouched */
  const char *fs[] = {
      "{\"boom\":\"x\"}",
      ("{\"andAll\":[{\"equals\":{\"key\":\"year\",\"value\":4}},"
       "{\"notEquals\":{\"key\":\"boom\",\"value\":\"x\"}}]}"),
      "{\"$or\":[{\"year\":4},{\"$and\":[{\"boom\":{\"$in\":[\"a\"]}},{}]}]}",
  };
  for (size_t i = 0; i < 3; i++) {
    wd_filter *f = NULL;
    assert_int_equal(wd_filter_parse(fs[i], strlen(fs[i]), &f, err, sizeof err),
                     0);
    roaring_bitmap_t *out = (roaring_bitmap_t *)0x1;
    assert_int_equal(wd_filter_eval(f, &ix, &out, err, sizeof err), WARDEN_EIO);
    assert_ptr_equal(out, (roaring_bitmap_t *)0x1);
    assert_non_null(strstr(err, "\"boom\""));
    wd_filter_free(f);
  }
  /* incomplete arguments */
  wd_filter *f = NULL;
  assert_int_equal(wd_filter_parse("{}", 2, &f, err, sizeof err), 0);
  roaring_bitmap_t *out = NULL;
  assert_int_equal(wd_filter_eval(NULL, &ix, &out, err, sizeof err),
                   WARDEN_EINVAL);
  assert_int_equal(wd_filter_eval(f, NULL, &out, err, sizeof err),
                   WARDEN_EINVAL);
  assert_int_equal(wd_filter_eval(f, &ix, NULL, err, sizeof err),
                   WARDEN_EINVAL);
  wd_filter_index bad = ix;
  bad.universe = NULL;
  assert_int_equal(wd_filter_eval(f, &bad, &out, NULL, 0), WARDEN_EINVAL);
  bad = ix;
  bad.range = NULL;
  assert_int_equal(wd_filter_eval(f, &bad, &out, NULL, 0), WARDEN_EINVAL);
  /* a compiled filter serves many evaluations and indexes */
  for (int k = 0; k < 3; k++) {
    assert_int_equal(wd_filter_eval(f, &ix, &out, err, sizeof err), 0);
    assert_int_equal(roaring_bitmap_get_cardinality(out), 6);
    roaring_bitmap_free(out);
  }
  wd_filter_free(f);
  roaring_bitmap_free(fk.universe);
}

/* ------------------------------------------------- randomized differential */

typedef struct gen {
  uint64_t s;
  int err; /* the filter holds a deliberate type mismatch */
} gen;

static uint64_t rnd(gen *g) {
  g->s ^= g->s >> 12;
  g->s ^= g->s << 25;
  g->s ^= g->s >> 27;
  return g->s * 2685821657736338717ULL;
}
static int rn(gen *g, int n) { return (int)(rnd(g) % (uint64_t)n); }

static const fld RSCHEMA[] = {{"s", WD_T_STRING}, {"t", WD_T_STRING},
                              {"i", WD_T_INT},    {"j", WD_T_INT},
                              {"f", WD_T_FLOAT},  {"b", WD_T_BOOL},
                              {"tags", WD_T_STRING_LIST}};
#define RNF 7 /* field RNF is "ghost": no type, in no document */
static const char *const SDOM[] = {"",     "a",      "ab",   "abc", "b",
                                   "ba",   "charms", "char", "x y", "A"};
static const char *const NEEDLES[] = {"",   "a",  "ab", "b",  "ch", "char",
                                      "rm", "h",  " ",  "zz", "A",  "x y"};

static const char *fname(int fi) { return fi < RNF ? RSCHEMA[fi].name : "ghost"; }
static wd_type ftype(int fi) { return fi < RNF ? RSCHEMA[fi].type : WD_T_NONE; }

static void gen_docs(gen *g, fdoc *docs, size_t n) {
  roaring_bitmap_t *used = roaring_bitmap_create();
  for (size_t d = 0; d < n; d++) {
    memset(&docs[d], 0, sizeof docs[d]);
    uint32_t id;
    do id = (uint32_t)rn(g, (int)n * 4); while (roaring_bitmap_contains(used, id));
    roaring_bitmap_add(used, id);
    docs[d].id = id;
    docs[d].live = rn(g, 10) != 0;
    for (int fi = 0; fi < RNF; fi++) {
      fval *x = &docs[d].v[fi];
      if (rn(g, 4) == 0) continue;
      x->has = 1;
      switch (RSCHEMA[fi].type) {
        case WD_T_STRING: x->s = SDOM[rn(g, 10)]; break;
        case WD_T_INT: x->i = rn(g, 11) - 5; break;
        case WD_T_FLOAT: x->f = (rn(g, 41) - 20) / 4.0; break;
        case WD_T_BOOL: x->b = rn(g, 2); break;
        case WD_T_STRING_LIST:
          x->nl = rn(g, MAXL);
          for (int k = 0; k < x->nl; k++) x->l[k] = SDOM[rn(g, 10)];
          break;
        default: break;
      }
    }
  }
  roaring_bitmap_free(used);
}

static json_t *gen_num(gen *g) {
  return rn(g, 2) ? json_integer(rn(g, 13) - 6)
                  : json_real((rn(g, 53) - 26) / 4.0);
}

/* A value equality on a field of type t accepts. */
static json_t *gen_eqval(gen *g, wd_type t) {
  switch (t) {
    case WD_T_STRING:
    case WD_T_STRING_LIST: return json_string(SDOM[rn(g, 10)]);
    case WD_T_INT:
      return rn(g, 10) < 7 ? json_integer(rn(g, 13) - 6)
                           : json_real((rn(g, 25) - 12) / 2.0);
    case WD_T_FLOAT: return gen_num(g);
    case WD_T_BOOL: return json_boolean(rn(g, 2));
    default: return gen_eqval(g, (wd_type)(1 + rn(g, 4)));
  }
}

/* A value equality on a field of type t rejects. */
static json_t *gen_badval(gen *g, wd_type t) {
  int r = rn(g, 2);
  switch (t) {
    case WD_T_STRING:
    case WD_T_STRING_LIST: return r ? gen_num(g) : json_boolean(rn(g, 2));
    case WD_T_INT:
    case WD_T_FLOAT: return r ? json_string("3") : json_boolean(rn(g, 2));
    default: return r ? json_string("true") : gen_num(g);
  }
}

static int op_ok(int op, wd_type t) {
  if (t == WD_T_NONE) return 1;
  switch (op) {
    case O_GT: case O_GTE: case O_LT: case O_LTE:
      return t == WD_T_INT || t == WD_T_FLOAT;
    case O_PRE: case O_SC: return t == WD_T_STRING || t == WD_T_STRING_LIST;
    case O_LC: return t == WD_T_STRING_LIST;
    default: return 1;
  }
}

/* Generate a condition on a field of type t: sets *op, returns the value,
 * sets *err when the condition deliberately mismatches the field type. */
static json_t *gen_cond(gen *g, int nops, wd_type t, int force_eq, int *op,
                        int *err) {
  *err = 0;
  if (t != WD_T_NONE && rn(g, 100) < 3) {
    *err = 1;
    if (!force_eq && rn(g, 2)) {
      int bad[O_COUNT], nb = 0;
      for (int o = 0; o < nops; o++)
        if (!op_ok(o, t)) bad[nb++] = o;
      if (nb) {
        *op = bad[rn(g, nb)];
        return *op <= O_LTE ? gen_num(g) : json_string(NEEDLES[rn(g, 12)]);
      }
    }
    *op = force_eq ? O_EQ : (int[]){O_EQ, O_NE, O_IN, O_NIN}[rn(g, 4)];
    if (*op == O_EQ || *op == O_NE) return gen_badval(g, t);
    json_t *a = json_array();
    int n = rn(g, 3), at = rn(g, n + 1);
    for (int i = 0; i <= n; i++)
      json_array_append_new(a, i == at ? gen_badval(g, t) : gen_eqval(g, t));
    return a;
  }
  do *op = force_eq ? O_EQ : rn(g, nops); while (!op_ok(*op, t));
  switch (*op) {
    case O_EQ: case O_NE: return gen_eqval(g, t);
    case O_IN: case O_NIN: {
      json_t *a = json_array();
      int n = rn(g, 5);
      for (int i = 0; i < n; i++) json_array_append_new(a, gen_eqval(g, t));
      return a;
    }
    case O_GT: case O_GTE: case O_LT: case O_LTE: return gen_num(g);
    case O_LC: return json_string(SDOM[rn(g, 10)]);
    default: return json_string(NEEDLES[rn(g, 12)]);
  }
}

static json_t *gen_bedrock(gen *g, int depth) {
  if (depth < 5 && rn(g, 100) < 35) {
    json_t *a = json_array();
    int n = 1 + rn(g, 3);
    for (int i = 0; i < n; i++) json_array_append_new(a, gen_bedrock(g, depth + 1));
    return json_pack("{s:o}", rn(g, 2) ? "andAll" : "orAll", a);
  }
  int fi = rn(g, RNF + 1), op, err;
  json_t *v = gen_cond(g, O_COUNT, ftype(fi), 0, &op, &err);
  g->err |= err;
  return json_pack("{s:{s:s,s:o}}", BED_NAMES[op], "key", fname(fi), "value",
                   v);
}

static json_t *gen_mongo(gen *g, int depth) {
  json_t *o = json_object();
  if (rn(g, 100) < 3) return o;
  int n = 1 + rn(g, 3);
  for (int e = 0; e < n; e++) {
    if (depth < 5 && rn(g, 100) < 30) {
      const char *k = rn(g, 2) ? "$and" : "$or";
      if (json_object_get(o, k)) continue;
      json_t *a = json_array();
      int m = 1 + rn(g, 3);
      for (int i = 0; i < m; i++) json_array_append_new(a, gen_mongo(g, depth + 1));
      json_object_set_new(o, k, a);
      continue;
    }
    int fi = rn(g, RNF + 1), op, err;
    if (json_object_get(o, fname(fi))) continue;
    if (rn(g, 100) < 30) { /* bare value: $eq */
      json_object_set_new(o, fname(fi),
                          gen_cond(g, O_LC, ftype(fi), 1, &op, &err));
      g->err |= err;
      continue;
    }
    json_t *ops = json_object();
    int m = 1 + rn(g, 3);
    for (int i = 0; i < m; i++) {
      json_t *v = gen_cond(g, O_PRE, ftype(fi), 0, &op, &err);
      if (json_object_get(ops, MONGO_NAMES[op])) {
        json_decref(v);
        continue;
      }
      json_object_set_new(ops, MONGO_NAMES[op], v);
      g->err |= err;
    }
    json_object_set_new(o, fname(fi), ops);
  }
  return o;
}

static void test_random(void **state) {
  (void)state;
  int iters = getenv("WARDEN_TEST_QUICK") ? 600 : 6000;
  gen g = {0x9e3779b97f4a7c15ULL, 0};
  fdoc *docs = calloc(200, sizeof *docs);
  fake fk = {0};
  int nerr = 0, nmixed = 0, nbed = 0;
  for (int it = 0; it < iters; it++) {
    if (it % 50 == 0) {
      if (fk.universe) roaring_bitmap_free(fk.universe);
      size_t n = 20 + (size_t)rn(&g, 181);
      gen_docs(&g, docs, n);
      fk_init(&fk, RSCHEMA, RNF, docs, n);
    }
    wd_filter_index ix = fk_index(&fk);
    g.err = 0;
    int bed = rn(&g, 2);
    nbed += bed;
    json_t *j = bed ? gen_bedrock(&g, 0) : gen_mongo(&g, 0);
    char *text = json_dumps(j, JSON_COMPACT);
    wd_filter *f = NULL;
    char err[512];
    int rc = it % 2 ? wd_filter_parse(text, strlen(text), &f, err, sizeof err)
                    : wd_filter_parse_json(j, &f, err, sizeof err);
    if (rc != 0) fail_msg("iter %d: parse failed: %s: %s", it, text, err);
    roaring_bitmap_t *out = NULL;
    rc = wd_filter_eval(f, &ix, &out, err, sizeof err);
    if (g.err) {
      nerr++;
      if (rc != WARDEN_EDATA || strncmp(err, "filter: ", 8) != 0)
        fail_msg("iter %d: %s: want a type error, got rc %d (%s)", it, text,
                 rc, err);
    } else {
      if (rc != 0) fail_msg("iter %d: %s: rc %d: %s", it, text, rc, err);
      roaring_bitmap_t *want = roaring_bitmap_create();
      for (size_t d = 0; d < fk.n; d++)
        if (docs[d].live && (bed ? o_bedrock(&fk, j, &docs[d])
                                 : o_mongo(&fk, j, &docs[d])))
          roaring_bitmap_add(want, docs[d].id);
      if (!roaring_bitmap_equals(out, want))
        fail_msg("iter %d: %s: got %llu ids, oracle %llu", it, text,
                 (unsigned long long)roaring_bitmap_get_cardinality(out),
                 (unsigned long long)roaring_bitmap_get_cardinality(want));
      uint64_t c = roaring_bitmap_get_cardinality(want);
      if (c > 0 && c < roaring_bitmap_get_cardinality(fk.universe)) nmixed++;
      roaring_bitmap_free(want);
      roaring_bitmap_free(out);
    }
    wd_filter_free(f);
    free(text);
    json_decref(j);
  }
  /* the generator must exercise every path, not produce trivia */
  assert_true(nerr > iters / 100);
  assert_true(nmixed > iters / 4);
  assert_true(nbed > iters / 3 && nbed < 2 * iters / 3);
  roaring_bitmap_free(fk.universe);
  free(docs);
}

/* ----------------------------------------------- allocation failures */

static long g_fail_at = -1, g_nalloc;

static void *fail_malloc(void *ctx, size_t n) {
  (void)ctx;
  if (g_fail_at >= 0 && g_nalloc++ == g_fail_at) return NULL;
  return malloc(n);
}
static void *fail_realloc(void *ctx, void *p, size_t n) {
  (void)ctx;
  if (g_fail_at >= 0 && g_nalloc++ == g_fail_at) return NULL;
  return realloc(p, n);
}
static void fail_free(void *ctx, void *p) {
  (void)ctx;
  free(p);
}

static void test_alloc_failures(void **state) {
  (void)state;
  fake fk;
  fk_init(&fk, TSCHEMA, 6, TDOCS, sizeof TDOCS / sizeof TDOCS[0]);
  wd_filter_index ix = fk_index(&fk);
  const char *fs[] = {
      ("{\"andAll\":[{\"orAll\":[{\"equals\":{\"key\":\"type\",\"value\":\"charms\"}},"
       "{\"in\":{\"key\":\"tags\",\"value\":[\"a\",\"basic\"]}}]},"
       "{\"notEquals\":{\"key\":\"active\",\"value\":false}},"
       "{\"greaterThan\":{\"key\":\"year\",\"value\":1.5}}]}"),
      ("{\"use\":\"defense\",\"$or\":[{\"year\":{\"$gte\":4,\"$lt\":9}},"
       "{\"type\":{\"$nin\":[\"x\",\"y\"]}}],\"score\":{\"$gt\":0}}"),
  };
  warden_allocator a = {fail_malloc, fail_realloc, fail_free, NULL};
  warden_set_allocator(&a);
  for (size_t k = 0; k < 2; k++) {
    int succeeded = 0;
    for (g_fail_at = 0; g_fail_at < 1000 && !succeeded; g_fail_at++) {
      g_nalloc = 0;
      wd_filter *f = NULL;
      char err[256];
      int rc = wd_filter_parse(fs[k], strlen(fs[k]), &f, err, sizeof err);
      if (rc != 0) {
        assert_int_equal(rc, WARDEN_ENOMEM); /* not the input's fault */
        assert_non_null(strstr(err, "out of memory"));
        continue;
      }
      roaring_bitmap_t *out = NULL;
      rc = wd_filter_eval(f, &ix, &out, err, sizeof err);
      wd_filter_free(f);
      if (rc != 0) {
        assert_int_equal(rc, WARDEN_ENOMEM);
        continue;
      }
      roaring_bitmap_free(out);
      succeeded = 1;
    }
    assert_true(succeeded);
    assert_true(g_fail_at > 5); /* failures were actually injected */
  }
  g_fail_at = -1;
  warden_set_allocator(NULL);
  roaring_bitmap_free(fk.universe);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),       cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_limits),      cmocka_unit_test(test_eval_errors),
      cmocka_unit_test(test_random),      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
