/*
 * ffi.c -- variants of the calls a language binding runs on a worker
 * thread (koffi's async calls, N-API async work, a thread pool), which
 * copy the failure's message into a caller buffer *on the thread that
 * failed*.  warden_errmsg() is per thread: read from the binding's main
 * thread after the worker returned, it would say nothing (or describe an
 * older failure of that thread).  Each is exactly the plain call plus that
 * copy; see warden.h.
 */
#include <stdio.h>
#include <string.h>

#include "engine/wd_internal.h"

static int copy_msg(warden *db, int rc, char *errbuf, size_t errlen) {
  if (rc && errbuf && errlen) snprintf(errbuf, errlen, "%s", db ? warden_errmsg(db) : "");
  else if (errbuf && errlen) errbuf[0] = 0;
  return rc;
}

int warden_query_e(warden *db, const float *vectors, size_t nq, const warden_query_opts *opts,
                   warden_results **out, char *errbuf, size_t errlen) {
  return copy_msg(db, warden_query(db, vectors, nq, opts, out), errbuf, errlen);
}

int warden_fetch_e(warden *db, const char *doc_id, const warden_query_opts *opts,
                   warden_results **out, char *errbuf, size_t errlen) {
  return copy_msg(db, warden_fetch(db, doc_id, opts, out), errbuf, errlen);
}

int warden_query_text_e(warden *db, const char *text, const warden_query_opts *opts,
                        warden_results **out, char *errbuf, size_t errlen) {
  return copy_msg(db, warden_query_text(db, text, opts, out), errbuf, errlen);
}

int warden_upsert_e(warden *db, const warden_doc *docs, size_t ndocs, const float *embeddings,
                    size_t nrows, const warden_upsert_opts *opts, warden_ingest_report *report,
                    char *errbuf, size_t errlen) {
  return copy_msg(db, warden_upsert(db, docs, ndocs, embeddings, nrows, opts, report), errbuf,
                  errlen);
}

int warden_ingest_buffer_e(warden *db, const char *name, const char *buf, size_t len,
                           const warden_ingest_opts *opts, warden_ingest_report *report,
                           char *errbuf, size_t errlen) {
  return copy_msg(db, warden_ingest_buffer(db, name, buf, len, opts, report), errbuf, errlen);
}

int warden_delete_e(warden *db, const char *const *doc_ids, size_t n, warden_write_report *report,
                    char *errbuf, size_t errlen) {
  return copy_msg(db, warden_delete(db, doc_ids, n, report), errbuf, errlen);
}

int warden_acl_set_e(warden *db, const char *doc_id, const char *const *allow, size_t nallow,
                     const char *const *deny, size_t ndeny, warden_write_report *report,
                     char *errbuf, size_t errlen) {
  return copy_msg(db, warden_acl_set(db, doc_id, allow, nallow, deny, ndeny, report), errbuf,
                  errlen);
}

int warden_principal_set_e(warden *db, const char *principal, const char *const *groups,
                           size_t ngroups, warden_write_report *report, char *errbuf,
                           size_t errlen) {
  return copy_msg(db, warden_principal_set(db, principal, groups, ngroups, report), errbuf,
                  errlen);
}
