/*
 * audit.h -- the append-only query audit log (audit.path in warden.yaml).
 *
 * One JSON line per query: time, principal, groups, namespaces, filter,
 * revision, and each returned (doc_id, chunk) with the evidence that let it
 * through (the allow entry that matched and the group chain that reached
 * it; the grant or resolver answer), plus how many candidates the resolver
 * denied and why.  Never chunk text.  Each line is written with a single
 * write(2) on an O_APPEND descriptor and carries a CRC of its own content,
 * so a torn last line (crash mid-write) is detectable.
 */
#ifndef WD_AUDIT_H
#define WD_AUDIT_H
#include <stdint.h>

#include "acl/acl.h"

typedef struct wd_audit_hit {
  const char *doc_id;
  uint32_t chunk;
  const char *acl_evidence;      /* e.g. "group:students via group:year5" */
  const char *resolver_evidence; /* e.g. "grant group:eng s3://b/eng/"; NULL */
} wd_audit_hit;

typedef struct wd_audit_query {
  const warden_query_opts *opts;
  const wd_strlist *who;   /* expanded principal set */
  uint64_t revision;
  size_t query_index;      /* position in a batch */
  const wd_audit_hit *hits;
  size_t nhits;
  uint64_t resolver_denied, resolver_errors, resolver_timeouts;
  int degraded;
} wd_audit_query;

typedef struct wd_audit wd_audit;

/* Open the log at path (relative to dir unless absolute); path NULL:
 * auditing is off, *out NULL.  fsync: fdatasync every line.  db: the
 * handle errors are recorded on. */
int wd_audit_create(warden *db, const char *path, int fsync, const char *dir, wd_audit **out);
/* wd_audit_create from db's audit.path and audit.fsync
 * (engine/permissions.c). */
int wd_audit_open(warden *db, wd_audit **out);
void wd_audit_close(wd_audit *a);
/* The log's file (for warden check: engine/check.c). */
const char *wd_audit_path(const wd_audit *a);
/* Append one record.  Thread-safe.  Returns 0 or WARDEN_EIO (the query
 * then fails: an audited deployment must not answer unaudited). */
int wd_audit_write(wd_audit *a, warden *db, const wd_audit_query *q);
/* On-behalf-of queries: the agent's expanded set and, per hit of the
 * record (parallel to q->hits), the agent's ACL and resolver evidence
 * (entries may be NULL). */
typedef struct wd_audit_agent {
  const wd_strlist *who;
  const char *const *acl_evidence;
  const char *const *resolver_evidence;
} wd_audit_agent;
/* wd_audit_write for an on-behalf-of query: the record also carries, after
 * asserted_groups, agent, agent_groups (expanded) and
 * agent_asserted_groups, and each result agent_acl and agent_resolver.
 * agent NULL: exactly wd_audit_write. */
int wd_audit_write_obo(wd_audit *a, warden *db, const wd_audit_query *q,
                       const wd_audit_agent *agent);
/* Verify a log file: returns the number of good lines, sets *torn when the
 * last line is incomplete or fails its CRC, *bad for damaged lines before
 * the last.  (warden check reports it: engine/check.c.) */
int64_t wd_audit_verify(const char *path, int *torn, uint64_t *bad);

#endif
