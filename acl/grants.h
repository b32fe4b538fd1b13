/*
 * grants.h -- the stored grants of the `grants` resolver, read by
 * acl/resolver.c and written by engine/grants.c (warden_grant_*).
 *
 * Layout of the "grants" LMDB database: key = principal (user:NAME,
 * group:NAME or "*"), value = JSON array of the prefixes granted to it,
 * sorted bytewise and without duplicates.  (A key of principal + "\0" +
 * prefix would not fit LMDB's 511-byte key limit for a 256-byte name and a
 * 500-byte prefix.)  A grant to "*" lets every principal read the prefix.
 */
#ifndef WD_GRANTS_H
#define WD_GRANTS_H
#include <jansson.h>

#include "acl/acl_store.h"

#define WD_MAX_GRANT_PREFIX 500 /* the "S"+source bitmap keys keep 500 bytes */

/* The prefixes granted to principal p (exact key, no expansion) as a JSON
 * array (new reference; empty when none).  WARDEN_ECORRUPT when the stored
 * entry is damaged. */
static inline int grants_of(wd_txn *tx, const char *p, size_t n, json_t **out) {
  return store_grants_get(tx, p, n, out);
}

#endif
