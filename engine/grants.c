/*
 * grants.c -- prefix grants for the `grants` resolver (SPEC section 6):
 * warden_grant_add / remove / list.
 *
 * A grant {principal, prefix} lets that principal, or any member of that
 * group, read every source URI that starts with prefix, like S3 Access
 * Grants.  Principals are user:NAME, group:NAME or "*" (everyone).  A
 * prefix is 1..500 bytes of UTF-8: sources are indexed by their first 500
 * bytes ("S" bitmaps), so a longer prefix could not be pre-filtered.
 * Storage layout: see grants.h.  Every change bumps the revision like any
 * other permission write, so a revoke is visible to every later query.
 */
#include <stdlib.h>
#include <string.h>

#include "acl/grants.h"
#include "engine/store.h"

static int begin_public(warden *db) {
  if (!db) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_err_clear(db);
  return 0;
}

typedef struct grant_op {
  const char *principal, *prefix;
  int add;
  uint64_t changed, unchanged, unknown;
} grant_op;

/* Position of prefix in the sorted array a, or where it would go (*found
 * says which). */
static size_t find_prefix(const json_t *a, const char *prefix, int *found) {
  size_t lo = 0, hi = json_array_size(a);
  *found = 0;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(json_string_value(json_array_get(a, mid)), prefix);
    if (c == 0) {
      *found = 1;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static int grant_apply(wd_txn *tx, void *ctx) {
  grant_op *op = ctx;
  op->changed = op->unchanged = op->unknown = 0;
  size_t pl = strlen(op->principal);
  json_t *a;
  int rc = grants_of(tx, op->principal, pl, &a);
  if (rc) return rc;
  int found;
  size_t at = find_prefix(a, op->prefix, &found);
  if (op->add == found) {
    /* already granted / nothing to revoke */
    if (op->add)
      op->unchanged = 1;
    else
      op->unknown = 1;
    json_decref(a);
    return 0;
  }
  if (op->add)
    rc = json_array_insert_new(a, at, json_string(op->prefix));
  else
    rc = json_array_remove(a, at);
  if (rc) {
    json_decref(a);
    return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
  }
  if (json_array_size(a) == 0) {
    rc = store_del_val(tx, WD_DB_GRANTS, op->principal, pl, "write grant");
  } else {
    char *s = json_dumps(a, JSON_COMPACT);
    if (!s) {
      json_decref(a);
      return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
    }
    rc = store_put_val(tx, WD_DB_GRANTS, op->principal, pl, s, strlen(s), "write grant");
    free(s);
    json_decref(a);
    if (rc) return rc;
    tx->changed = 1;
    op->changed = 1;
    return 0;
  }
  json_decref(a);
  if (rc) return rc;
  tx->changed = 1;
  op->changed = 1;
  return 0;
}

static int grant_write(warden *db, const char *what, const char *principal,
                       const char *prefix, int add, warden_write_report *rep) {
  int rc = begin_public(db);
  if (rc) return rc;
  char why[300];
  if (!principal || wd_principal_check(principal, strlen(principal), 1, why, sizeof why))
    return wd_err(db, WARDEN_EDATA, "%s: principal: %s", what, principal ? why : "NULL");
  if (!prefix) return wd_err(db, WARDEN_EDATA, "%s: prefix: NULL", what);
  size_t n = strlen(prefix);
  if (n == 0 || n > WD_MAX_GRANT_PREFIX)
    return wd_err(db, WARDEN_EDATA, "%s: prefix: must be 1..%d bytes (got %zu)", what,
                  WD_MAX_GRANT_PREFIX, n);
  json_t *probe = json_string(prefix); /* NULL when not valid UTF-8 */
  if (!probe) return wd_err(db, WARDEN_EDATA, "%s: prefix: not valid UTF-8", what);
  json_decref(probe);
  grant_op op = {principal, prefix, add, 0, 0, 0};
  uint64_t rev = 0;
  if ((rc = store_write(db, grant_apply, &op, &rev))) return rc;
  if (rep) {
    rep->changed = op.changed;
    rep->unchanged = op.unchanged;
    rep->unknown = op.unknown;
    rep->revision = rev;
  }
  return 0;
}

/* Adding an existing grant counts as unchanged; removing a grant that does
 * not exist counts as unknown (neither is an error). */
int warden_grant_add(warden *db, const char *principal, const char *prefix,
                     warden_write_report *report) {
  return grant_write(db, "grant add", principal, prefix, 1, report);
}

int warden_grant_remove(warden *db, const char *principal, const char *prefix,
                        warden_write_report *report) {
  return grant_write(db, "grant remove", principal, prefix, 0, report);
}

int warden_grant_list(warden *db, char **json_out) {
  int rc = begin_public(db);
  if (rc) return rc;
  if (!json_out) return wd_err(db, WARDEN_EINVAL, "grant list: NULL argument");
  wd_txn tx;
  if ((rc = store_read_begin(db, &tx))) return rc;
  json_t *list = json_array();
  wd_iter it;
  rc = store_iter_begin(&tx, WD_DB_GRANTS, NULL, 0, "walk grants", &it);
  /* keys come in bytewise order, prefixes are stored sorted: the list is
   * ordered by (principal, prefix) */
  while (!rc && (rc = store_iter_next(&it)) == 1) {
    json_t *a;
    if ((rc = grants_of(&tx, it.key, it.klen, &a))) break;
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) {
      json_t *g = json_object();
      json_object_set_new(g, "principal", json_stringn(it.key, it.klen));
      json_object_set(g, "prefix", e);
      json_array_append_new(list, g);
    }
    json_decref(a);
    rc = 0;
  }
  store_iter_end(&it);
  uint64_t rev = store_meta_u64(&tx, "revision");
  store_read_end(&tx);
  if (rc) {
    json_decref(list);
    return rc;
  }
  json_t *o = json_pack("{s:o,s:I}", "grants", list, "revision", (json_int_t)rev);
  return wd_json_return(db, o, json_out);
}
