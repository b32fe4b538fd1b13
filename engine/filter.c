/*
 * filter.c -- metadata filters: parse the Bedrock and Mongo dialects into
 * one expression tree, then evaluate the tree to a bitmap of chunk ids.
 *
 * The parser checks everything that does not depend on the collection:
 * shapes, operator names, value kinds (a range needs a number, startsWith a
 * string, in a list), limits.  What depends on the collection -- the type of
 * each field -- is only known at evaluation time, so wd_filter_eval first
 * runs a type-check pass over every leaf (asking the index for each field's
 * type) and only then touches bitmaps.  Checking first keeps errors
 * deterministic: an AND that short-circuits on an empty bitmap must not
 * hide a type error in a later branch.
 *
 * Dialect detection: a top-level object is Bedrock when every one of its
 * keys is a Bedrock operator (equals, ..., andAll, orAll); otherwise it is
 * Mongo.  A Mongo collection with a field literally named "in" or "equals"
 * can still filter on it by wrapping the condition in {"$and": [...]}.
 *
 * Threading: a compiled wd_filter is immutable; evaluation keeps its state
 * on the stack and in per-call allocations, so one filter may be evaluated
 * from many threads at once.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/filter.h"
#include "engine/warden.h"
#include "base/wd_alloc.h"

#define FILTER_MAX_DEPTH 32      /* nested andAll/orAll/$and/$or */
#define FILTER_MAX_LEAVES 4096   /* comparisons in one filter */
#define FILTER_MAX_LIST 65536    /* values in one in/notIn list */
#define FILTER_MAX_KEY 256       /* bytes in a key */
#define FILTER_MAX_VALUE 65536   /* bytes in a string value */
#define FILTER_PATH_MAX 512      /* longer paths are truncated in messages */

enum { K_ALL, K_AND, K_OR, K_LEAF };

enum {
  OP_EQ,
  OP_NE,
  OP_GT,
  OP_GTE,
  OP_LT,
  OP_LTE,
  OP_IN,
  OP_NIN,
  OP_PREFIX,
  OP_LISTCONTAINS,
  OP_STRCONTAINS
};

/* What a leaf's value must look like, independent of the field type. */
enum { VK_SCALAR, VK_LIST, VK_NUMBER, VK_STRING };

typedef struct opdef {
  const char *name;
  int op;
  int vk;
} opdef;

static const opdef bedrock_ops[] = {
    {"equals", OP_EQ, VK_SCALAR},
    {"notEquals", OP_NE, VK_SCALAR},
    {"greaterThan", OP_GT, VK_NUMBER},
    {"greaterThanOrEquals", OP_GTE, VK_NUMBER},
    {"lessThan", OP_LT, VK_NUMBER},
    {"lessThanOrEquals", OP_LTE, VK_NUMBER},
    {"in", OP_IN, VK_LIST},
    {"notIn", OP_NIN, VK_LIST},
    {"startsWith", OP_PREFIX, VK_STRING},
    {"listContains", OP_LISTCONTAINS, VK_STRING},
    {"stringContains", OP_STRCONTAINS, VK_STRING},
};

static const opdef mongo_ops[] = {
    {"$eq", OP_EQ, VK_SCALAR},   {"$ne", OP_NE, VK_SCALAR},
    {"$gt", OP_GT, VK_NUMBER},   {"$gte", OP_GTE, VK_NUMBER},
    {"$lt", OP_LT, VK_NUMBER},   {"$lte", OP_LTE, VK_NUMBER},
    {"$in", OP_IN, VK_LIST},     {"$nin", OP_NIN, VK_LIST},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

typedef struct fnode {
  int kind;
  /* K_AND / K_OR */
  struct fnode **kids;
  size_t nkids;
  /* K_LEAF */
  int op;
  const char *opname; /* static: the operator as the user spelled it */
  int bedrock;        /* value path is path + ".value" */
  char *key;          /* NUL-free, 1..FILTER_MAX_KEY bytes */
  char *path;         /* where the leaf sits, for evaluation messages */
  wd_value *vals;     /* string values own their bytes */
  size_t nvals;
  size_t leaf; /* index of this leaf, 0..nleaves-1 */
} fnode;

struct wd_filter {
  fnode *root;
  size_t nleaves;
};

/* ------------------------------------------------------------- helpers */

static const char *type_name(wd_type t) {
  switch (t) {
    case WD_T_STRING: return "string";
    case WD_T_INT: return "int";
    case WD_T_FLOAT: return "float";
    case WD_T_BOOL: return "bool";
    case WD_T_STRING_LIST: return "string_list";
    default: return "untyped";
  }
}

/* "an int field", "a string field": messages read as English. */
static const char *type_article(wd_type t) {
  return t == WD_T_INT ? "an" : "a";
}

static const char *value_kind_name(const wd_value *v) {
  switch (v->type) {
    case WD_T_STRING: return "a string";
    case WD_T_INT:
    case WD_T_FLOAT: return "a number";
    case WD_T_BOOL: return "a boolean";
    default: return "a value";
  }
}

static int is_negated(int op) { return op == OP_NE || op == OP_NIN; }

static void set_err(char *err, size_t errlen, const char *path,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void set_err(char *err, size_t errlen, const char *path,
                    const char *fmt, ...) {
  if (!err || errlen == 0) return;
  int n = path && *path ? snprintf(err, errlen, "filter: %s: ", path)
                        : snprintf(err, errlen, "filter: ");
  if (n < 0) n = 0;
  if ((size_t)n >= errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
  va_end(ap);
}

static void node_free(fnode *n) {
  if (!n) return;
  for (size_t i = 0; i < n->nkids; i++) node_free(n->kids[i]);
  wd_free(n->kids);
  for (size_t i = 0; i < n->nvals; i++)
    if (n->vals[i].type == WD_T_STRING) wd_free((void *)n->vals[i].s);
  wd_free(n->vals);
  wd_free(n->key);
  wd_free(n->path);
  wd_free(n);
}

void wd_filter_free(wd_filter *f) {
  if (!f) return;
  node_free(f->root);
  wd_free(f);
}

/* ------------------------------------------------------------- parsing */

typedef struct pstate {
  char *err;
  size_t errlen;
  char path[FILTER_PATH_MAX];
  size_t plen;
  size_t nleaves;
  int oom; /* an allocation failed: not the input's fault */
} pstate;

/* Append ".seg" (or "seg" at the root) or "[i]" to the path; returns the
 * length to restore with path_pop.  Overlong paths are cut, not failed:
 * the path only serves messages. */
static size_t path_push(pstate *ps, const char *seg) {
  size_t old = ps->plen;
  if (ps->plen < sizeof ps->path - 1) {
    int n = snprintf(ps->path + ps->plen, sizeof ps->path - ps->plen, "%s%s",
                     ps->plen ? "." : "", seg);
    if (n > 0) ps->plen += (size_t)n;
    if (ps->plen >= sizeof ps->path) ps->plen = sizeof ps->path - 1;
  }
  return old;
}

static size_t path_push_index(pstate *ps, size_t i) {
  size_t old = ps->plen;
  if (ps->plen < sizeof ps->path - 1) {
    int n = snprintf(ps->path + ps->plen, sizeof ps->path - ps->plen, "[%zu]",
                     i);
    if (n > 0) ps->plen += (size_t)n;
    if (ps->plen >= sizeof ps->path) ps->plen = sizeof ps->path - 1;
  }
  return old;
}

static void path_pop(pstate *ps, size_t old) {
  ps->plen = old;
  ps->path[old] = 0;
}

#define PERR(ps, ...) set_err((ps)->err, (ps)->errlen, (ps)->path, __VA_ARGS__)
#define POOM(ps) ((ps)->oom = 1, PERR(ps, "out of memory"))

static fnode *node_new(pstate *ps, int kind) {
  fnode *n = wd_calloc(1, sizeof *n);
  if (!n) {
    POOM(ps);
    return NULL;
  }
  n->kind = kind;
  return n;
}

/* Parse one scalar value at the current path into *out (strings copied). */
static int parse_scalar(pstate *ps, const json_t *j, wd_value *out) {
  memset(out, 0, sizeof *out);
  switch (json_typeof(j)) {
    case JSON_STRING: {
      size_t len = json_string_length(j);
      if (len > FILTER_MAX_VALUE) {
        PERR(ps, "string value longer than %d bytes", FILTER_MAX_VALUE);
        return -1;
      }
      char *s = wd_strndup(json_string_value(j), len);
      if (!s) {
        POOM(ps);
        return -1;
      }
      out->type = WD_T_STRING;
      out->s = s;
      out->len = len;
      return 0;
    }
    case JSON_INTEGER:
      out->type = WD_T_INT;
      out->i = (int64_t)json_integer_value(j);
      return 0;
    case JSON_REAL:
      out->type = WD_T_FLOAT;
      out->f = json_real_value(j);
      return 0;
    case JSON_TRUE:
    case JSON_FALSE:
      out->type = WD_T_BOOL;
      out->b = json_is_true(j);
      return 0;
    case JSON_NULL:
      PERR(ps, "null is not a valid value");
      return -1;
    default:
      PERR(ps, "expected a string, number or boolean");
      return -1;
  }
}

static int check_key(pstate *ps, const char *key, size_t len) {
  if (len == 0) {
    PERR(ps, "empty key");
    return -1;
  }
  if (len > FILTER_MAX_KEY) {
    PERR(ps, "key longer than %d bytes", FILTER_MAX_KEY);
    return -1;
  }
  if (memchr(key, 0, len)) {
    PERR(ps, "key contains a NUL byte");
    return -1;
  }
  return 0;
}

/* Build a leaf.  The current path names the operator (leaf->path); vj is
 * the value, found at the path plus ".value" for Bedrock. */
static fnode *make_leaf(pstate *ps, const opdef *od, int bedrock,
                        const char *key, size_t keylen, const json_t *vj) {
  if (++ps->nleaves > FILTER_MAX_LEAVES) {
    PERR(ps, "more than %d conditions", FILTER_MAX_LEAVES);
    return NULL;
  }
  fnode *n = node_new(ps, K_LEAF);
  if (!n) return NULL;
  n->op = od->op;
  n->opname = od->name;
  n->bedrock = bedrock;
  n->leaf = ps->nleaves - 1;
  n->key = wd_strndup(key, keylen);
  n->path = wd_strdup(ps->path);
  if (!n->key || !n->path) {
    POOM(ps);
    goto fail;
  }
  size_t old = bedrock ? path_push(ps, "value") : ps->plen;
  switch (od->vk) {
    case VK_NUMBER:
      if (!json_is_number(vj)) {
        PERR(ps, "expected a number");
        goto fail_path;
      }
      break;
    case VK_STRING:
      if (!json_is_string(vj)) {
        PERR(ps, "expected a string");
        goto fail_path;
      }
      break;
    case VK_SCALAR:
      if (json_is_array(vj)) {
        PERR(ps, "expected a string, number or boolean (for a list use %s)",
             bedrock ? (od->op == OP_EQ ? "in" : "notIn")
                     : (od->op == OP_EQ ? "$in" : "$nin"));
        goto fail_path;
      }
      break;
    case VK_LIST:
      if (!json_is_array(vj)) {
        PERR(ps, "expected an array");
        goto fail_path;
      }
      if (json_array_size(vj) > FILTER_MAX_LIST) {
        PERR(ps, "more than %d values in a list", FILTER_MAX_LIST);
        goto fail_path;
      }
      break;
  }
  if (od->vk == VK_LIST) {
    size_t cnt = json_array_size(vj);
    n->vals = wd_calloc(cnt ? cnt : 1, sizeof *n->vals);
    if (!n->vals) {
      POOM(ps);
      goto fail_path;
    }
    for (size_t i = 0; i < cnt; i++) {
      size_t o2 = path_push_index(ps, i);
      if (parse_scalar(ps, json_array_get(vj, i), &n->vals[i]) < 0)
        goto fail_path;
      n->nvals++;
      path_pop(ps, o2);
    }
  } else {
    n->vals = wd_calloc(1, sizeof *n->vals);
    if (!n->vals) {
      POOM(ps);
      goto fail_path;
    }
    if (parse_scalar(ps, vj, &n->vals[0]) < 0) goto fail_path;
    n->nvals = 1;
  }
  path_pop(ps, old);
  return n;
fail_path:
  /* The message already carries the path; restoring it is bookkeeping. */
  path_pop(ps, old);
fail:
  node_free(n);
  return NULL;
}

/* Grow kids by one; returns -1 on OOM (message set). */
static int add_kid(pstate *ps, fnode *parent, fnode *kid) {
  fnode **k = wd_realloc(parent->kids, (parent->nkids + 1) * sizeof *k);
  if (!k) {
    POOM(ps);
    return -1;
  }
  parent->kids = k;
  parent->kids[parent->nkids++] = kid;
  return 0;
}

typedef fnode *(*parse_fn)(pstate *ps, const json_t *j, int depth);

/* andAll / orAll / $and / $or: an array of sub-filters one level deeper. */
static fnode *parse_combinator(pstate *ps, int kind, const json_t *arr,
                               int depth, parse_fn each) {
  if (depth + 1 > FILTER_MAX_DEPTH) {
    PERR(ps, "nested deeper than %d levels", FILTER_MAX_DEPTH);
    return NULL;
  }
  if (!json_is_array(arr) || json_array_size(arr) == 0) {
    PERR(ps, "expected a non-empty array");
    return NULL;
  }
  fnode *n = node_new(ps, kind);
  if (!n) return NULL;
  for (size_t i = 0; i < json_array_size(arr); i++) {
    size_t old = path_push_index(ps, i);
    fnode *kid = each(ps, json_array_get(arr, i), depth + 1);
    if (!kid || add_kid(ps, n, kid) < 0) {
      node_free(kid);
      node_free(n);
      return NULL;
    }
    path_pop(ps, old);
  }
  return n;
}

static const opdef *find_op(const opdef *tab, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(tab[i].name, name) == 0) return &tab[i];
  return NULL;
}

static int is_bedrock_word(const char *k) {
  return strcmp(k, "andAll") == 0 || strcmp(k, "orAll") == 0 ||
         find_op(bedrock_ops, NELEM(bedrock_ops), k) != NULL;
}

/* ---- Bedrock */

static fnode *parse_bedrock(pstate *ps, const json_t *j, int depth) {
  if (!json_is_object(j)) {
    PERR(ps, "expected an object");
    return NULL;
  }
  if (json_object_size(j) != 1) {
    PERR(ps, "expected exactly one operator, got %zu", json_object_size(j));
    return NULL;
  }
  void *it = json_object_iter((json_t *)j);
  const char *op = json_object_iter_key(it);
  const json_t *v = json_object_iter_value(it);
  size_t old = path_push(ps, op);
  fnode *n = NULL;
  if (strcmp(op, "andAll") == 0 || strcmp(op, "orAll") == 0) {
    n = parse_combinator(ps, op[0] == 'a' ? K_AND : K_OR, v, depth,
                         parse_bedrock);
    if (n) path_pop(ps, old);
    return n;
  }
  const opdef *od = find_op(bedrock_ops, NELEM(bedrock_ops), op);
  if (!od) {
    path_pop(ps, old);
    PERR(ps, "unknown operator \"%s\"", op);
    return NULL;
  }
  if (!json_is_object(v)) {
    PERR(ps, "expected an object with \"key\" and \"value\"");
    return NULL;
  }
  const json_t *kj = NULL, *vj = NULL;
  const char *f;
  json_t *fv;
  json_object_foreach((json_t *)v, f, fv) {
    if (strcmp(f, "key") == 0)
      kj = fv;
    else if (strcmp(f, "value") == 0)
      vj = fv;
    else {
      PERR(ps, "unexpected field \"%s\"", f);
      return NULL;
    }
  }
  if (!kj) {
    PERR(ps, "missing \"key\"");
    return NULL;
  }
  if (!vj) {
    PERR(ps, "missing \"value\"");
    return NULL;
  }
  size_t o2 = path_push(ps, "key");
  if (!json_is_string(kj)) {
    PERR(ps, "expected a string");
    return NULL;
  }
  if (check_key(ps, json_string_value(kj), json_string_length(kj)) < 0)
    return NULL;
  path_pop(ps, o2);
  n = make_leaf(ps, od, 1, json_string_value(kj), json_string_length(kj), vj);
  if (n) path_pop(ps, old);
  return n;
}

/* ---- Mongo */

static fnode *parse_mongo(pstate *ps, const json_t *j, int depth);

/* One "field": value entry; the current path is the field name. */
static fnode *parse_mongo_field(pstate *ps, const char *key, size_t keylen,
                                const json_t *v) {
  if (check_key(ps, key, keylen) < 0) return NULL;
  if (!json_is_object(v))
    return make_leaf(ps, &mongo_ops[0], 0, key, keylen, v); /* bare = $eq */
  if (json_object_size(v) == 0) {
    PERR(ps, "empty operator object");
    return NULL;
  }
  fnode *and = NULL, *only = NULL;
  const char *op;
  json_t *ov;
  json_object_foreach((json_t *)v, op, ov) {
    const opdef *od = find_op(mongo_ops, NELEM(mongo_ops), op);
    if (!od) {
      PERR(ps, "unknown operator \"%s\"", op);
      goto fail;
    }
    size_t old = path_push(ps, op);
    fnode *leaf = make_leaf(ps, od, 0, key, keylen, ov);
    if (!leaf) goto fail;
    path_pop(ps, old);
    if (!only && !and) {
      only = leaf;
      continue;
    }
    if (!and) {
      and = node_new(ps, K_AND);
      if (!and || add_kid(ps, and, only) < 0) {
        node_free(leaf);
        goto fail;
      }
      only = NULL;
    }
    if (add_kid(ps, and, leaf) < 0) {
      node_free(leaf);
      goto fail;
    }
  }
  return and ? and : only;
fail:
  node_free(only);
  node_free(and);
  return NULL;
}

static fnode *parse_mongo(pstate *ps, const json_t *j, int depth) {
  if (!json_is_object(j)) {
    PERR(ps, "expected an object");
    return NULL;
  }
  if (json_object_size(j) == 0) return node_new(ps, K_ALL);
  fnode *and = node_new(ps, K_AND);
  if (!and) return NULL;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)j, k, v) {
    size_t keylen = json_object_iter_key_len(json_object_key_to_iter(k));
    fnode *kid;
    if (strcmp(k, "$and") == 0 || strcmp(k, "$or") == 0) {
      size_t old = path_push(ps, k);
      kid = parse_combinator(ps, k[1] == 'a' ? K_AND : K_OR, v, depth,
                             parse_mongo);
      if (kid) path_pop(ps, old);
    } else if (k[0] == '$') {
      PERR(ps, "unknown operator \"%s\"", k);
      kid = NULL;
    } else {
      size_t old = path_push(ps, k);
      kid = parse_mongo_field(ps, k, keylen, v);
      if (kid) path_pop(ps, old);
    }
    if (!kid || add_kid(ps, and, kid) < 0) {
      node_free(kid);
      node_free(and);
      return NULL;
    }
  }
  if (and->nkids == 1) { /* no need for a one-child AND */
    fnode *only = and->kids[0];
    and->nkids = 0;
    node_free(and);
    return only;
  }
  return and;
}

int wd_filter_parse_json(const json_t *j, wd_filter **out, char *err,
                         size_t errlen) {
  pstate ps;
  memset(&ps, 0, sizeof ps);
  ps.err = err;
  ps.errlen = errlen;
  if (err && errlen) err[0] = 0;
  if (!out) {
    PERR(&ps, "no output pointer");
    return ps.oom ? WARDEN_ENOMEM : -1;
  }
  if (!j || !json_is_object(j)) {
    PERR(&ps, "expected a JSON object");
    return ps.oom ? WARDEN_ENOMEM : -1;
  }
  /* Bedrock iff every top-level key is a Bedrock word.  A mix is most
   * likely a Bedrock filter with a stray key, so say so rather than report
   * a confusing Mongo error about a field named "equals". */
  size_t nb = 0;
  const char *k, *first_b = NULL, *first_other = NULL;
  json_t *v;
  json_object_foreach((json_t *)j, k, v) {
    if (is_bedrock_word(k)) {
      nb++;
      if (!first_b) first_b = k;
    } else if (!first_other) {
      first_other = k;
    }
  }
  fnode *root;
  if (nb > 0 && nb == json_object_size(j)) {
    root = parse_bedrock(&ps, j, 0);
  } else {
    if (nb > 0) {
      const json_t *bv = json_object_get(j, first_b);
      if (json_is_array(bv) ||
          (json_is_object(bv) && json_object_get(bv, "key"))) {
        PERR(&ps, "Bedrock operator \"%s\" mixed with \"%s\"", first_b,
             first_other);
        return ps.oom ? WARDEN_ENOMEM : -1;
      }
    }
    root = parse_mongo(&ps, j, 0);
  }
  if (!root) return ps.oom ? WARDEN_ENOMEM : -1;
  wd_filter *f = wd_calloc(1, sizeof *f);
  if (!f) {
    node_free(root);
    POOM(&ps);
    return ps.oom ? WARDEN_ENOMEM : -1;
  }
  f->root = root;
  f->nleaves = ps.nleaves;
  *out = f;
  return 0;
}

int wd_filter_parse(const char *json, size_t len, wd_filter **out, char *err,
                    size_t errlen) {
  if (err && errlen) err[0] = 0;
  if (!json) {
    set_err(err, errlen, NULL, "no filter text");
    return -1;
  }
  json_error_t je;
  /* No JSON_DECODE_ANY: a filter is an object.  Duplicate keys would
   * silently drop a condition, so they are rejected. */
  json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
  if (!j) {
    set_err(err, errlen, NULL, "invalid JSON at line %d column %d: %s",
            je.line, je.column, je.text);
    return -1;
  }
  int rc = wd_filter_parse_json(j, out, err, errlen);
  json_decref(j);
  return rc;
}

/* ---------------------------------------------------------- evaluation */

typedef struct evctx {
  const wd_filter_index *ix;
  wd_type *types; /* field type of each leaf, from the type-check pass */
  char *err;
  size_t errlen;
} evctx;

/* Convert an equality value to the field's type.  Returns 1 with *out set
 * when the index must be asked, 0 when nothing can match (4.5 on an int
 * field), -1 on a type mismatch. */
static int convert_eq(wd_type t, const wd_value *v, wd_value *out) {
  *out = *v;
  switch (t) {
    case WD_T_STRING:
    case WD_T_STRING_LIST:
      return v->type == WD_T_STRING ? 1 : -1;
    case WD_T_BOOL:
      return v->type == WD_T_BOOL ? 1 : -1;
    case WD_T_INT:
      if (v->type == WD_T_INT) return 1;
      if (v->type != WD_T_FLOAT) return -1;
      /* Only an integral double inside int64 can equal an int.  2^63 is
       * exact in a double; the range check excludes it. */
      if (isnan(v->f) || floor(v->f) != v->f || v->f < -9223372036854775808.0 ||
          v->f >= 9223372036854775808.0)
        return 0;
      out->type = WD_T_INT;
      out->i = (int64_t)v->f;
      return 1;
    case WD_T_FLOAT:
      if (v->type == WD_T_FLOAT) return isnan(v->f) ? 0 : 1;
      if (v->type != WD_T_INT) return -1;
      out->type = WD_T_FLOAT;
      out->f = (double)v->i;
      return 1;
    default:
      return -1;
  }
}

static void value_path(const fnode *n, size_t i, char *buf, size_t len) {
  if (n->op == OP_IN || n->op == OP_NIN)
    snprintf(buf, len, "%s%s[%zu]", n->path, n->bedrock ? ".value" : "", i);
  else
    snprintf(buf, len, "%s%s", n->path, n->bedrock ? ".value" : "");
}

/* Type-check one leaf against its field's type t. */
static int check_leaf(evctx *E, const fnode *n, wd_type t) {
  if (t == WD_T_NONE) return 0; /* missing everywhere: nothing to mismatch */
  if (t < WD_T_STRING || t > WD_T_STRING_LIST) {
    set_err(E->err, E->errlen, n->path, "index reports an invalid type %d",
            (int)t);
    return WARDEN_EINTERNAL;
  }
  const char *needs = NULL;
  switch (n->op) {
    case OP_GT:
    case OP_GTE:
    case OP_LT:
    case OP_LTE:
      if (t != WD_T_INT && t != WD_T_FLOAT) needs = "int or float";
      break;
    case OP_PREFIX:
    case OP_STRCONTAINS:
      if (t != WD_T_STRING && t != WD_T_STRING_LIST)
        needs = "string or string_list";
      break;
    case OP_LISTCONTAINS:
      if (t != WD_T_STRING_LIST) needs = "string_list";
      break;
    default:
      for (size_t i = 0; i < n->nvals; i++) {
        wd_value cv;
        if (convert_eq(t, &n->vals[i], &cv) < 0) {
          char vp[FILTER_PATH_MAX + 32];
          value_path(n, i, vp, sizeof vp);
          set_err(E->err, E->errlen, vp, "key \"%s\" is %s %s field; got %s",
                  n->key, type_article(t), type_name(t),
                  value_kind_name(&n->vals[i]));
          return WARDEN_EDATA;
        }
      }
      break;
  }
  if (needs) {
    set_err(E->err, E->errlen, n->path, "key \"%s\" is %s %s field; %s needs %s",
            n->key, type_article(t), type_name(t), n->opname, needs);
    return WARDEN_EDATA;
  }
  return 0;
}

static int check_tree(evctx *E, const fnode *n) {
  if (n->kind == K_LEAF) {
    wd_type t = E->ix->field_type(E->ix->ctx, n->key);
    E->types[n->leaf] = t;
    int rc = check_leaf(E, n, t);
    if (rc == WARDEN_EDATA && t != WD_T_NONE && E->ix->is_public &&
        !E->ix->is_public(E->ix->ctx, n->key)) {
      /* an undeclared key's type is not public (see filter.h): answer as
       * for a key no document has */
      E->types[n->leaf] = WD_T_NONE;
      if (E->err && E->errlen) E->err[0] = 0;
      rc = 0;
    }
    return rc;
  }
  for (size_t i = 0; i < n->nkids; i++) {
    int rc = check_tree(E, n->kids[i]);
    if (rc) return rc;
  }
  return 0;
}

static int cb_fail(evctx *E, const fnode *n, int rc) {
  set_err(E->err, E->errlen, n->path, "index lookup of key \"%s\" failed (%d)",
          n->key, rc);
  return rc;
}

/* Range leaf: translate the bound to the field's type and ask the index. */
static int leaf_range(evctx *E, const fnode *n, wd_type t,
                      roaring_bitmap_t *acc) {
  const wd_value *v = &n->vals[0];
  int lower = n->op == OP_GT || n->op == OP_GTE;
  int incl = n->op == OP_GTE || n->op == OP_LTE;
  wd_value b;
  memset(&b, 0, sizeof b);
  b.type = t;
  int unbounded = 0;
  if (t == WD_T_FLOAT) {
    b.f = v->type == WD_T_INT ? (double)v->i : v->f;
    if (isnan(b.f)) return 0;
  } else if (v->type == WD_T_INT) {
    b.i = v->i;
  } else {
    double d = v->f;
    if (isnan(d)) return 0;
    if (floor(d) != d) {
      /* Non-integral, hence |d| < 2^52: x > 4.5 <=> x >= 5, x < 4.5 <=>
       * x <= 4, whether or not the comparison was inclusive. */
      b.i = (int64_t)(lower ? ceil(d) : floor(d));
      incl = 1;
    } else if (d >= 9223372036854775808.0) {
      if (lower) return 0; /* no int64 is above 2^63 */
      unbounded = 1;
    } else if (d < -9223372036854775808.0) {
      if (!lower) return 0;
      unbounded = 1;
    } else {
      b.i = (int64_t)d;
    }
  }
  const wd_value *lo = NULL, *hi = NULL;
  int lo_incl = 0, hi_incl = 0;
  if (!unbounded) {
    if (lower) {
      lo = &b;
      lo_incl = incl;
    } else {
      hi = &b;
      hi_incl = incl;
    }
  }
  int rc = E->ix->range(E->ix->ctx, n->key, lo, lo_incl, hi, hi_incl, acc);
  return rc < 0 ? cb_fail(E, n, rc) : 0;
}

/* OR into acc the chunks matching the leaf's positive form (for $ne/$nin,
 * the chunks equal to one of the values). */
static int leaf_positive(evctx *E, const fnode *n, roaring_bitmap_t *acc) {
  wd_type t = E->types[n->leaf];
  if (t == WD_T_NONE) return 0;
  const wd_filter_index *ix = E->ix;
  int rc = 0;
  switch (n->op) {
    case OP_GT:
    case OP_GTE:
    case OP_LT:
    case OP_LTE:
      return leaf_range(E, n, t, acc);
    case OP_PREFIX:
      rc = ix->prefix(ix->ctx, n->key, n->vals[0].s, n->vals[0].len, acc);
      break;
    case OP_STRCONTAINS:
      rc = ix->contains(ix->ctx, n->key, n->vals[0].s, n->vals[0].len, acc);
      break;
    default: /* EQ NE IN NIN LISTCONTAINS: union of equalities */
      for (size_t i = 0; i < n->nvals && rc >= 0; i++) {
        wd_value cv;
        if (convert_eq(t, &n->vals[i], &cv) == 1)
          rc = ix->eq(ix->ctx, n->key, &cv, acc);
      }
      break;
  }
  return rc < 0 ? cb_fail(E, n, rc) : 0;
}

static int nomem(evctx *E) {
  set_err(E->err, E->errlen, NULL, "out of memory");
  return WARDEN_ENOMEM;
}

static int eval_node(evctx *E, const fnode *n, roaring_bitmap_t **out);

static int eval_and(evctx *E, const fnode *n, roaring_bitmap_t **out) {
  roaring_bitmap_t *acc = NULL;
  int rc = 0;
  /* Positive children first: they narrow the set, and a negated child is
   * then a cheap ANDNOT instead of a universe-sized complement. */
  for (size_t i = 0; i < n->nkids; i++) {
    const fnode *k = n->kids[i];
    if (k->kind == K_LEAF && is_negated(k->op)) continue;
    roaring_bitmap_t *b = NULL;
    if ((rc = eval_node(E, k, &b)) != 0) goto done;
    if (!acc) {
      acc = b;
    } else {
      roaring_bitmap_and_inplace(acc, b);
      roaring_bitmap_free(b);
    }
    if (roaring_bitmap_is_empty(acc)) break;
  }
  if (!acc && !(acc = roaring_bitmap_copy(E->ix->universe))) {
    rc = nomem(E);
    goto done;
  }
  for (size_t i = 0; i < n->nkids && !roaring_bitmap_is_empty(acc); i++) {
    const fnode *k = n->kids[i];
    if (k->kind != K_LEAF || !is_negated(k->op)) continue;
    roaring_bitmap_t *pos = roaring_bitmap_create();
    if (!pos) {
      rc = nomem(E);
      goto done;
    }
    rc = leaf_positive(E, k, pos);
    if (rc == 0) roaring_bitmap_andnot_inplace(acc, pos);
    roaring_bitmap_free(pos);
    if (rc) goto done;
  }
done:
  if (rc) {
    if (acc) roaring_bitmap_free(acc);
    return rc;
  }
  *out = acc;
  return 0;
}

static int eval_node(evctx *E, const fnode *n, roaring_bitmap_t **out) {
  roaring_bitmap_t *acc = NULL;
  int rc = 0;
  switch (n->kind) {
    case K_ALL:
      if (!(acc = roaring_bitmap_copy(E->ix->universe))) return nomem(E);
      break;
    case K_AND:
      return eval_and(E, n, out);
    case K_OR:
      if (!(acc = roaring_bitmap_create())) return nomem(E);
      for (size_t i = 0; i < n->nkids && rc == 0; i++) {
        const fnode *k = n->kids[i];
        if (k->kind == K_LEAF && !is_negated(k->op)) {
          rc = leaf_positive(E, k, acc); /* ORs straight into acc */
        } else {
          roaring_bitmap_t *b = NULL;
          if ((rc = eval_node(E, k, &b)) == 0) {
            roaring_bitmap_or_inplace(acc, b);
            roaring_bitmap_free(b);
          }
        }
      }
      break;
    case K_LEAF:
      if (!(acc = roaring_bitmap_create())) return nomem(E);
      rc = leaf_positive(E, n, acc);
      if (rc == 0 && is_negated(n->op)) {
        roaring_bitmap_t *neg = roaring_bitmap_andnot(E->ix->universe, acc);
        roaring_bitmap_free(acc);
        acc = neg;
        if (!acc) return nomem(E);
      }
      break;
    default:
      set_err(E->err, E->errlen, NULL, "corrupt filter node");
      return WARDEN_EINTERNAL;
  }
  if (rc) {
    roaring_bitmap_free(acc);
    return rc;
  }
  *out = acc;
  return 0;
}

int wd_filter_eval(const wd_filter *f, const wd_filter_index *ix,
                   roaring_bitmap_t **out, char *err, size_t errlen) {
  if (err && errlen) err[0] = 0;
  if (!f || !ix || !out || !ix->universe || !ix->field_type || !ix->eq ||
      !ix->range || !ix->prefix || !ix->contains) {
    set_err(err, errlen, NULL, "missing filter, index or output");
    return WARDEN_EINVAL;
  }
  evctx E = {ix, NULL, err, errlen};
  E.types = wd_calloc(f->nleaves ? f->nleaves : 1, sizeof *E.types);
  if (!E.types) return nomem(&E);
  roaring_bitmap_t *r = NULL;
  int rc = check_tree(&E, f->root);
  if (rc == 0) rc = eval_node(&E, f->root, &r);
  wd_free(E.types);
  if (rc) return rc;
  /* The index may know chunks that are no longer live; the answer never
   * includes them. */
  roaring_bitmap_and_inplace(r, ix->universe);
  *out = r;
  return 0;
}
