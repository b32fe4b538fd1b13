/*
 * directory.c -- permission writes that never touch a vector: per-document
 * ACL get/set/sync and the principals directory (set/get/sync).
 *
 * A sync file is read and validated completely before the write
 * transaction starts; any bad line fails the whole sync and nothing is
 * applied.  Inside the transaction only the differences are written (an
 * unchanged ACL costs one record read), so re-syncing a million documents
 * whose permissions mostly did not change is cheap.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "acl/acl.h"
#include "engine/doc.h"
#include "engine/store.h"

#define WD_MAX_SYNC_LINE (1u << 20)

static int begin_public(warden *db) {
  if (!db) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_err_clear(db);
  return 0;
}

/* Validate a principal list into a new deduplicated JSON array.  On error
 * writes "field[i]: reason" into why. */
static int plist(const char *field, const char *const *v, size_t n,
                 int allow_star, json_t **out, char *why, size_t wl) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) {
    char r[300];
    if (!v[i] || wd_principal_check(v[i], strlen(v[i]), allow_star, r, sizeof r)) {
      snprintf(why, wl, "%s[%zu]: %s", field, i, v[i] ? r : "NULL");
      json_decref(a);
      return -1;
    }
    int dup = 0;
    size_t j;
    json_t *e;
    json_array_foreach(a, j, e) if (strcmp(json_string_value(e), v[i]) == 0) dup = 1;
    if (!dup) json_array_append_new(a, json_string(v[i]));
  }
  *out = a;
  return 0;
}

static int plist_json(const char *field, const json_t *arr, int allow_star,
                      json_t **out, char *why, size_t wl) {
  if (!json_is_array(arr)) {
    snprintf(why, wl, "%s: expected an array of principals", field);
    return -1;
  }
  size_t n = json_array_size(arr);
  const char **v = wd_calloc(n ? n : 1, sizeof *v);
  if (!v) {
    snprintf(why, wl, "out of memory");
    return -2; /* not the input's fault */
  }
  for (size_t i = 0; i < n; i++) {
    const json_t *e = json_array_get(arr, i);
    if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e)) {
      snprintf(why, wl, "%s[%zu]: expected a string", field, i);
      wd_free(v);
      return -1;
    }
    v[i] = json_string_value(e);
  }
  int rc = plist(field, v, n, allow_star, out, why, wl);
  wd_free(v);
  return rc;
}

/* Same members, any order. */
static int same_set(const json_t *a, const json_t *b) {
  if (json_array_size(a) != json_array_size(b)) return 0;
  size_t i, j;
  json_t *x, *y;
  json_array_foreach(a, i, x) {
    int found = 0;
    json_array_foreach(b, j, y) if (json_equal(x, y)) found = 1;
    if (!found) return 0;
  }
  return 1;
}

/* ------------------------------------------------------------ acl get */

int warden_acl_get(warden *db, const char *doc_id, char **json_out) {
  int rc = begin_public(db);
  if (rc) return rc;
  if (!doc_id || !json_out) return wd_err(db, WARDEN_EINVAL, "acl get: NULL argument");
  size_t n = strlen(doc_id);
  if (n == 0 || n > WD_MAX_DOCID) return wd_err(db, WARDEN_EINVAL, "acl get: doc_id must be 1..1024 bytes");
  wd_txn tx;
  if ((rc = store_read_begin(db, &tx))) return rc;
  json_t *rec = NULL;
  rc = store_doc_get(&tx, doc_id, n, &rec);
  uint64_t rev = store_meta_u64(&tx, "revision");
  store_read_end(&tx);
  if (rc == WARDEN_ENOTFOUND)
    return wd_err(db, rc, "%.200s: no such document", doc_id);
  if (rc) return rc;
  json_t *o = json_pack("{s:O,s:O,s:O,s:I}", "doc_id", json_object_get(rec, "doc_id"),
                        "allow", json_object_get(rec, "allow"), "deny",
                        json_object_get(rec, "deny"), "revision", (json_int_t)rev);
  json_decref(rec);
  return wd_json_return(db, o, json_out);
}

/* --------------------------------------------------- acl set and sync */

typedef struct acl_change {
  const char *doc_id; /* borrowed */
  json_t *allow;      /* NULL = keep */
  json_t *deny;       /* NULL = keep */
} acl_change;

typedef struct acl_op {
  acl_change *c;
  size_t n;
  uint64_t changed, unchanged, unknown;
} acl_op;

static int acl_apply(wd_txn *tx, void *ctx) {
  acl_op *op = ctx;
  op->changed = op->unchanged = op->unknown = 0;
  for (size_t i = 0; i < op->n; i++) {
    acl_change *c = &op->c[i];
    json_t *rec;
    int rc = store_doc_get(tx, c->doc_id, strlen(c->doc_id), &rec);
    if (rc == WARDEN_ENOTFOUND) {
      op->unknown++;
      continue;
    }
    if (rc) return rc;
    json_t *na = c->allow ? c->allow : json_object_get(rec, "allow");
    json_t *nd = c->deny ? c->deny : json_object_get(rec, "deny");
    if (same_set(na, json_object_get(rec, "allow")) &&
        same_set(nd, json_object_get(rec, "deny"))) {
      op->unchanged++;
      json_decref(rec);
      continue;
    }
    json_incref(na);
    json_incref(nd);
    rc = doc_index_acl(tx, rec, 0);
    json_object_set_new(rec, "allow", na);
    json_object_set_new(rec, "deny", nd);
    if (!rc) rc = doc_index_acl(tx, rec, 1);
    if (!rc) rc = store_doc_put(tx, c->doc_id, strlen(c->doc_id), rec);
    json_decref(rec);
    if (rc) return rc;
    op->changed++;
  }
  return 0;
}

static void report(warden_write_report *r, const acl_op *op, uint64_t rev) {
  if (!r) return;
  r->changed = op->changed;
  r->unchanged = op->unchanged;
  r->unknown = op->unknown;
  r->revision = rev;
}

int warden_acl_set(warden *db, const char *doc_id, const char *const *allow,
                   size_t nallow, const char *const *deny, size_t ndeny,
                   warden_write_report *rep) {
  int rc = begin_public(db);
  if (rc) return rc;
  if (!doc_id || strlen(doc_id) == 0 || strlen(doc_id) > WD_MAX_DOCID)
    return wd_err(db, WARDEN_EINVAL, "acl set: doc_id must be 1..1024 bytes");
  if (!allow && !deny)
    return wd_err(db, WARDEN_EINVAL, "acl set: give an allow list, a deny list or both");
  acl_change c = {doc_id, NULL, NULL};
  char why[400];
  if ((allow && plist("allow", allow, nallow, 1, &c.allow, why, sizeof why)) ||
      (deny && plist("deny", deny, ndeny, 0, &c.deny, why, sizeof why))) {
    json_decref(c.allow);
    return wd_err(db, WARDEN_EDATA, "acl set: %s", why);
  }
  acl_op op = {&c, 1, 0, 0, 0};
  uint64_t rev = 0;
  rc = store_write(db, acl_apply, &op, &rev);
  json_decref(c.allow);
  json_decref(c.deny);
  if (rc) return rc;
  if (op.unknown) return wd_err(db, WARDEN_ENOTFOUND, "%.200s: no such document", doc_id);
  report(rep, &op, rev);
  return 0;
}

/* Read a JSON Lines file, calling fn(obj, file, line, ctx) per non-blank
 * line.  fn returns 0 or a negative code (stop). */
static int read_jsonl(warden *db, const char *path, const warden_ingest_opts *opts,
                      int (*fn)(json_t *o, const char *file, uint64_t line, void *ctx),
                      void *ctx) {
  int is_stdin = strcmp(path, "-") == 0;
  FILE *f = is_stdin ? stdin : fopen(path, "rb");
  if (!f) return wd_err(db, WARDEN_EIO, "%s: %s", path, strerror(errno));
  const char *name = is_stdin ? "<stdin>" : path;
  char *buf = NULL;
  size_t cap = 0;
  ssize_t len;
  uint64_t line = 0, bytes = 0, total = 0;
  int rc = 0;
  if (!is_stdin && fseek(f, 0, SEEK_END) == 0) {
    long t = ftell(f);
    total = t > 0 ? (uint64_t)t : 0;
    rewind(f);
  }
  while ((len = getline(&buf, &cap, f)) >= 0) {
    line++;
    bytes += (uint64_t)len;
    if (opts && opts->progress && (line & 4095) == 0)
      opts->progress(opts->progress_ctx, line, bytes, total);
    if ((size_t)len > WD_MAX_SYNC_LINE) {
      rc = wd_err(db, WARDEN_EDATA, "%s:%llu: line: longer than %u bytes", name,
                  (unsigned long long)line, WD_MAX_SYNC_LINE);
      break;
    }
    size_t s = 0;
    while (s < (size_t)len && (buf[s] == ' ' || buf[s] == '\t' || buf[s] == '\r' || buf[s] == '\n')) s++;
    if (s == (size_t)len) continue;
    json_error_t je;
    json_t *o = json_loadb(buf + s, (size_t)len - s, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
      rc = wd_err(db, WARDEN_EDATA, "%s:%llu: json: %s", name, (unsigned long long)line,
                  o ? "expected a JSON object" : je.text);
      json_decref(o);
      break;
    }
    rc = fn(o, name, line, ctx);
    json_decref(o);
    if (rc) break;
  }
  if (!rc && ferror(f)) rc = wd_err(db, WARDEN_EIO, "%s: read error", name);
  if (!rc && opts && opts->progress) opts->progress(opts->progress_ctx, line, bytes, total);
  free(buf);
  if (!is_stdin) fclose(f);
  return rc;
}

typedef struct sync_ctx {
  warden *db;
  acl_change *c;
  size_t n, cap;
  json_t *ids; /* doc_id -> line, for duplicates; owns the id strings */
} sync_ctx;

static int sync_line(json_t *o, const char *file, uint64_t line, void *vctx) {
  sync_ctx *s = vctx;
  warden *db = s->db;
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) if (strcmp(key, "doc_id") && strcmp(key, "allow") && strcmp(key, "deny"))
    return wd_err(db, WARDEN_EDATA, "%s:%llu: %s: unknown field (expected doc_id, allow, deny)",
                  file, (unsigned long long)line, key);
  json_t *id = json_object_get(o, "doc_id");
  if (!json_is_string(id) || json_string_length(id) == 0 || json_string_length(id) > WD_MAX_DOCID ||
      strlen(json_string_value(id)) != json_string_length(id))
    return wd_err(db, WARDEN_EDATA, "%s:%llu: doc_id: %s", file, (unsigned long long)line,
                  id ? "expected a string of 1..1024 bytes" : "required field is missing");
  json_t *prev = json_object_get(s->ids, json_string_value(id));
  if (prev)
    return wd_err(db, WARDEN_EDATA, "%s:%llu: doc_id: duplicate of line %lld in this file",
                  file, (unsigned long long)line, (long long)json_integer_value(prev));
  if (!json_object_get(o, "allow") && !json_object_get(o, "deny"))
    return wd_err(db, WARDEN_EDATA, "%s:%llu: allow: give allow, deny or both", file,
                  (unsigned long long)line);
  acl_change c = {NULL, NULL, NULL};
  char why[400];
  int prc = 0;
  if ((json_object_get(o, "allow") &&
       (prc = plist_json("allow", json_object_get(o, "allow"), 1, &c.allow, why, sizeof why))) ||
      (json_object_get(o, "deny") &&
       (prc = plist_json("deny", json_object_get(o, "deny"), 0, &c.deny, why, sizeof why)))) {
    json_decref(c.allow);
    if (prc == -2) return wd_err(db, WARDEN_ENOMEM, "out of memory");
    return wd_err(db, WARDEN_EDATA, "%s:%llu: %s", file, (unsigned long long)line, why);
  }
  json_object_set_new(s->ids, json_string_value(id), json_integer((json_int_t)line));
  /* the key string in s->ids lives as long as s->ids */
  json_object_iter_key(json_object_iter_at(s->ids, json_string_value(id)));
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 256;
    acl_change *nv = wd_realloc(s->c, nc * sizeof *nv);
    if (!nv) {
      json_decref(c.allow);
      json_decref(c.deny);
      return wd_err(db, WARDEN_ENOMEM, "out of memory");
    }
    s->c = nv;
    s->cap = nc;
  }
  c.doc_id = json_object_iter_key(json_object_iter_at(s->ids, json_string_value(id)));
  s->c[s->n++] = c;
  return 0;
}

int warden_acl_sync(warden *db, const char *path, const warden_ingest_opts *opts,
                    warden_write_report *rep) {
  int rc = begin_public(db);
  if (rc) return rc;
  if (!path) return wd_err(db, WARDEN_EINVAL, "acl sync: no file");
  sync_ctx s = {db, NULL, 0, 0, json_object()};
  rc = read_jsonl(db, path, opts, sync_line, &s);
  acl_op op = {s.c, s.n, 0, 0, 0};
  uint64_t rev = 0;
  if (!rc) rc = store_write(db, acl_apply, &op, &rev);
  for (size_t i = 0; i < s.n; i++) {
    json_decref(s.c[i].allow);
    json_decref(s.c[i].deny);
  }
  wd_free(s.c);
  json_decref(s.ids);
  if (rc) return rc;
  report(rep, &op, rev);
  return 0;
}

/* ------------------------------------------------------------ principals */

typedef struct princ_change {
  char *principal;
  json_t *groups; /* validated array; empty = remove */
} princ_change;

typedef struct princ_op {
  princ_change *c;
  size_t n;
  uint64_t changed, unchanged;
} princ_op;

static int princ_apply(wd_txn *tx, void *ctx) {
  princ_op *op = ctx;
  op->changed = op->unchanged = 0;
  for (size_t i = 0; i < op->n; i++) {
    princ_change *c = &op->c[i];
    json_t *cur;
    size_t pl = strlen(c->principal);
    int rc = acl_directory_groups(tx, c->principal, pl, &cur);
    if (rc) return rc;
    int same = same_set(cur, c->groups);
    json_decref(cur);
    if (same) {
      op->unchanged++;
      continue;
    }
    if (json_array_size(c->groups) == 0) {
      rc = store_del_val(tx, WD_DB_PRINC, c->principal, pl, "write principal");
    } else {
      char *s = json_dumps(c->groups, JSON_COMPACT);
      if (!s) return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
      rc = store_put_val(tx, WD_DB_PRINC, c->principal, pl, s, strlen(s), "write principal");
      free(s);
    }
    if (rc) return rc;
    tx->changed = 1;
    op->changed++;
  }
  return 0;
}

static int check_principal_arg(warden *db, const char *p) {
  char why[300];
  if (!p || wd_principal_check(p, strlen(p), 0, why, sizeof why))
    return wd_err(db, WARDEN_EDATA, "principal: %s", p ? why : "NULL");
  return 0;
}

int warden_principal_set(warden *db, const char *principal,
                         const char *const *groups, size_t ngroups,
                         warden_write_report *rep) {
  int rc = begin_public(db);
  if (rc) return rc;
  if ((rc = check_principal_arg(db, principal))) return rc;
  princ_change c = {(char *)principal, NULL};
  char why[400];
  if (plist("groups", groups, ngroups, 0, &c.groups, why, sizeof why))
    return wd_err(db, WARDEN_EDATA, "principals set: %s", why);
  size_t i;
  json_t *e;
  json_array_foreach(c.groups, i, e) if (strncmp(json_string_value(e), "group:", 6) != 0) {
    /* format the message before the array (and e with it) is freed */
    rc = wd_err(db, WARDEN_EDATA, "principals set: groups[%zu]: \"%s\" is not a group", i,
                json_string_value(e));
    json_decref(c.groups);
    return rc;
  }
  princ_op op = {&c, 1, 0, 0};
  uint64_t rev = 0;
  rc = store_write(db, princ_apply, &op, &rev);
  json_decref(c.groups);
  if (rc) return rc;
  if (rep) {
    rep->changed = op.changed;
    rep->unchanged = op.unchanged;
    rep->unknown = 0;
    rep->revision = rev;
  }
  return 0;
}

int warden_principal_get(warden *db, const char *principal, char **json_out) {
  int rc = begin_public(db);
  if (rc) return rc;
  if ((rc = check_principal_arg(db, principal))) return rc;
  if (!json_out) return wd_err(db, WARDEN_EINVAL, "principals get: NULL argument");
  wd_txn tx;
  if ((rc = store_read_begin(db, &tx))) return rc;
  json_t *g = NULL;
  wd_strlist ex;
  memset(&ex, 0, sizeof ex);
  rc = acl_directory_groups(&tx, principal, strlen(principal), &g);
  if (!rc) rc = acl_expand(&tx, principal, NULL, 0, &ex);
  uint64_t rev = store_meta_u64(&tx, "revision");
  store_read_end(&tx);
  if (rc) {
    json_decref(g);
    return rc;
  }
  json_t *e = json_array();
  for (size_t i = 1; i < ex.n; i++) json_array_append_new(e, json_string(ex.v[i]));
  wd_strlist_free(&ex);
  json_t *o = json_pack("{s:s,s:o,s:o,s:I}", "principal", principal, "groups", g, "expanded",
                        e, "revision", (json_int_t)rev);
  return wd_json_return(db, o, json_out);
}

typedef struct psync_ctx {
  warden *db;
  princ_change *c;
  size_t n, cap;
  json_t *seen;
} psync_ctx;

static int psync_line(json_t *o, const char *file, uint64_t line, void *vctx) {
  psync_ctx *s = vctx;
  warden *db = s->db;
  const char *key;
  json_t *v;
  unsigned long long ln = (unsigned long long)line;
  json_object_foreach(o, key, v) if (strcmp(key, "principal") && strcmp(key, "groups"))
    return wd_err(db, WARDEN_EDATA, "%s:%llu: %s: unknown field (expected principal, groups)",
                  file, ln, key);
  json_t *p = json_object_get(o, "principal");
  char why[400];
  if (!json_is_string(p))
    return wd_err(db, WARDEN_EDATA, "%s:%llu: principal: %s", file, ln,
                  p ? "expected a string" : "required field is missing");
  if (wd_principal_check(json_string_value(p), json_string_length(p), 0, why, sizeof why))
    return wd_err(db, WARDEN_EDATA, "%s:%llu: principal: %s", file, ln, why);
  if (json_object_get(s->seen, json_string_value(p)))
    return wd_err(db, WARDEN_EDATA, "%s:%llu: principal: duplicate of line %lld", file, ln,
                  (long long)json_integer_value(json_object_get(s->seen, json_string_value(p))));
  princ_change c = {NULL, NULL};
  json_t *g = json_object_get(o, "groups");
  if (!g) return wd_err(db, WARDEN_EDATA, "%s:%llu: groups: required field is missing", file, ln);
  int prc = plist_json("groups", g, 0, &c.groups, why, sizeof why);
  if (prc == -2) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  if (prc) return wd_err(db, WARDEN_EDATA, "%s:%llu: %s", file, ln, why);
  size_t i;
  json_t *e;
  json_array_foreach(c.groups, i, e) if (strncmp(json_string_value(e), "group:", 6) != 0) {
    /* format the message before the array (and e with it) is freed */
    int erc = wd_err(db, WARDEN_EDATA, "%s:%llu: groups[%zu]: \"%s\" is not a group", file,
                     ln, i, json_string_value(e));
    json_decref(c.groups);
    return erc;
  }
  json_object_set_new(s->seen, json_string_value(p), json_integer((json_int_t)line));
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 64;
    princ_change *nv = wd_realloc(s->c, nc * sizeof *nv);
    if (!nv) {
      json_decref(c.groups);
      return wd_err(db, WARDEN_ENOMEM, "out of memory");
    }
    s->c = nv;
    s->cap = nc;
  }
  c.principal = wd_strdup(json_string_value(p));
  if (!c.principal) {
    json_decref(c.groups);
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  }
  s->c[s->n++] = c;
  return 0;
}

int warden_principals_sync(warden *db, const char *path, const warden_ingest_opts *opts,
                           warden_write_report *rep) {
  int rc = begin_public(db);
  if (rc) return rc;
  if (!path) return wd_err(db, WARDEN_EINVAL, "principals sync: no file");
  psync_ctx s = {db, NULL, 0, 0, json_object()};
  rc = read_jsonl(db, path, opts, psync_line, &s);
  princ_op op = {s.c, s.n, 0, 0};
  uint64_t rev = 0;
  if (!rc) rc = store_write(db, princ_apply, &op, &rev);
  for (size_t i = 0; i < s.n; i++) {
    wd_free(s.c[i].principal);
    json_decref(s.c[i].groups);
  }
  wd_free(s.c);
  json_decref(s.seen);
  if (rc) return rc;
  if (rep) {
    rep->changed = op.changed;
    rep->unchanged = op.unchanged;
    rep->unknown = 0;
    rep->revision = rev;
  }
  return 0;
}
