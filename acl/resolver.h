/*
 * resolver.h -- post-retrieval source-permission checks (SPEC section 6).
 *
 * After the search, each candidate's source is checked by the handle's
 * resolver: none, grants (prefix grants stored in the collection), command
 * (a long-running child process speaking JSON Lines) or a C callback
 * registered with warden_set_resolver().  Fail closed: an error, timeout,
 * malformed/missing answer or dead process is a deny, reported as
 * WD_RES_ERROR / WD_RES_TIMEOUT so the query can say "degraded".  Answers
 * are never cached across revisions (a revoke must not leak through a
 * cache).
 *
 * Threading: one wd_resolver per handle, shared by query threads;
 * wd_resolver_check is thread-safe (the command resolver serialises access
 * to its child process).
 */
#ifndef WD_RESOLVER_H
#define WD_RESOLVER_H
#include <roaring/roaring.h>

#include "acl/acl.h"

#define WD_RES_DENY 0    /* the resolver said no */
#define WD_RES_ALLOW 1   /* the resolver said yes */
#define WD_RES_ERROR 2   /* failed: crash, garbage, wrong id, too few answers */
#define WD_RES_TIMEOUT 3 /* failed: no answer in time */

/* resolver.type in warden.yaml (engine/config.c parses it) */
#define WD_RESOLVER_NONE 0
#define WD_RESOLVER_GRANTS 1
#define WD_RESOLVER_COMMAND 2
#define WD_RESOLVER_TIMEOUT_MS 500 /* resolver.timeout_ms when unset */

typedef struct wd_resolver wd_resolver;

/* What the resolver needs of the collection's configuration. */
typedef struct wd_resolver_conf {
  int type;                /* WD_RESOLVER_* */
  const char *const *cmd;  /* resolver.command argv (ncmd entries) */
  size_t ncmd;
  unsigned timeout_ms;     /* 0: WD_RESOLVER_TIMEOUT_MS */
  const char *dir;         /* the collection directory (the child's cwd) */
} wd_resolver_conf;

/* Create a resolver.  Does not start a child process yet (that happens on
 * first use).  db: the handle errors are recorded on.  *out NULL-safe to
 * close. */
int wd_resolver_create(warden *db, const wd_resolver_conf *conf, wd_resolver **out);
/* wd_resolver_create from db's configuration (engine/permissions.c). */
int wd_resolver_open(warden *db, wd_resolver **out);
void wd_resolver_close(wd_resolver *r);
/* Replace the callback (NULL fn: back to the configured resolver). */
void wd_resolver_set_callback(wd_resolver *r, warden_resolver_fn fn, void *ctx);
/* Nonzero when candidates must be post-checked (not "none"). */
int wd_resolver_active(const wd_resolver *r);
/* Short name for plans and audit: "none", "grants", "command", "callback". */
const char *wd_resolver_name(const wd_resolver *r);

/* Pre-filter for the grants resolver: the slots whose source starts with a
 * prefix granted to someone in who (principal and expanded groups).  Sets
 * *out NULL when the resolver has no pre-filter.  tx: the query snapshot. */
int wd_resolver_prefilter(wd_resolver *r, wd_txn *tx, const wd_strlist *who,
                          roaring_bitmap_t **out);

/* Check n resources for principal (who->v[0]) with groups who->v[1..].
 * Writes out[i] = WD_RES_*.  evidence (may be NULL): evidence[i] receives
 * a new string (wd_free) saying what allowed or denied item i, e.g.
 * "grant group:eng s3://bucket/eng/" or "command: allowed", or NULL.
 * A failure of the resolver as a whole is not an error return: it is
 * WD_RES_ERROR/TIMEOUT per affected item, after asking for each item of a
 * failed batch on its own (resolver.c: the retry policy).  Returns 0, or a negative code only for caller bugs or
 * out-of-memory.  tx: the query snapshot (grants are read from it). */
int wd_resolver_check(wd_resolver *r, wd_txn *tx, const wd_strlist *who,
                      const warden_resource *items, size_t n, unsigned char *out,
                      char **evidence);
/* The same within a query's resolver budget: *budget_end (monotonic ms)
 * is where the budget ends, 0 to start one now (RES_BUDGET x timeout_ms,
 * resolver.c); it is written back so later checks of the same query share
 * it.  NULL: a budget of its own. */
int wd_resolver_check_until(wd_resolver *r, wd_txn *tx, const wd_strlist *who,
                            const warden_resource *items, size_t n, unsigned char *out,
                            char **evidence, int64_t *budget_end);

#endif
