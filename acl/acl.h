/*
 * acl.h -- who may read what: group expansion and the stored-ACL rule as
 * bitmap algebra.
 *
 * Stored-ACL rule (SPEC section 2): principal P with group set G may read
 * document D iff D's namespace is under one of the query's prefixes (when
 * given) AND allow(D) meets {P} u G u {*} AND deny(D) misses {P} u G.
 * With one allow bitmap and one deny bitmap per principal, the readable set
 * is  OR(allow[x] : x in {P} u G u {*})  ANDNOT  OR(deny[x] : x in {P} u G),
 * a few bitmap operations whatever the collection size.
 */
#ifndef WD_ACL_H
#define WD_ACL_H
#include <roaring/roaring.h>

#include "acl/acl_store.h"
#include "acl/names.h"
#include "base/wd_alloc.h"

typedef struct wd_strlist {
  char **v;
  size_t n, cap;
  /* acl_expand only: parent[i] is the index of the entry whose directory
   * listed v[i] (-1 for the principal and caller-asserted groups), so the
   * chain that reached a group can be told (audit evidence). */
  int *parent;
} wd_strlist;

int wd_strlist_add(wd_strlist *l, const char *s, size_t n); /* dedups */
int wd_strlist_has(const wd_strlist *l, const char *s, size_t n);
void wd_strlist_free(wd_strlist *l);

/* {P} u G: the principal, the caller's groups and every group the
 * directory lists for any of them, transitively (cycles harmless).
 * out[0] is the principal. */
int acl_expand(wd_txn *tx, const char *principal, const char *const *groups,
               size_t ngroups, wd_strlist *out);

/* "group:students via group:year5 via user:harry": how who->v[i] was
 * reached.  New string (wd_free) or NULL on allocation failure. */
char *acl_chain(const wd_strlist *who, size_t i);

/* Readable slots for the expanded set who (from acl_expand). */
int acl_readable(wd_txn *tx, const wd_strlist *who, roaring_bitmap_t **out);

/* Slots whose namespace lies under one of the prefixes (path segments:
 * "/a" covers "/a" and "/a/b", never "/ab").  Prefixes are validated;
 * WARDEN_EINVAL for a malformed one. */
int acl_namespace_mask(wd_txn *tx, const char *const *prefixes, size_t n,
                       roaring_bitmap_t **out);

/* The stored-ACL rule and the namespace prefixes (normalised here; a
 * malformed one covers nothing) evaluated again on one document's record:
 * allow and deny (JSON arrays of principals) and its namespace ns.  1 when
 * who may read it.  For the query's re-check of every hit. */
int acl_record_allows(const wd_strlist *who, const json_t *allow, const json_t *deny,
                      const char *ns, const char *const *prefixes, size_t nprefixes);
/* The allow entry that admitted a document for who, as a chain ("*", or
 * acl_chain's form); NULL when none (or out of memory).  wd_free. */
char *acl_evidence(const wd_strlist *who, const json_t *allow);

/* The groups the directory lists for p (not expanded) as a JSON array
 * (new reference), or an empty array. */
int acl_directory_groups(wd_txn *tx, const char *p, size_t n, json_t **out);


#endif
