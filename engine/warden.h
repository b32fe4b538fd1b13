/*
 * warden.h -- the public C API of libwarden, a permission-aware vector
 * retrieval engine.
 *
 * A collection is a directory: warden.yaml (configuration), one LMDB
 * environment (the source of truth) and derived index files.  A caller opens
 * it with warden_open(), asks warden_query() for the top-k chunks nearest to
 * a query embedding *on behalf of a principal*, and gets back only chunks
 * that principal may read, already filtered by metadata.
 *
 * Conventions (they hold for every function below):
 *  - Every call that can fail returns int: 0 (WARDEN_OK) on success, a
 *    negative WARDEN_E* code on failure.  warden_strerror() names a code;
 *    warden_errmsg() gives the detailed message of the last failed call made
 *    *by the calling thread* on a handle.
 *  - Out-parameters are written only on success.
 *  - Ownership is stated at each declaration.  Strings returned to the
 *    caller are freed with warden_free(); results with warden_results_free().
 *  - The library never prints, exits or aborts.
 *
 * Threading: one handle serves concurrent queries from any number of
 * threads; each query reads one consistent LMDB snapshot.  Writes (ingest,
 * delete, ACL, principal, grant changes) are serialized by LMDB's writer
 * lock, across threads and across processes.  A handle must not be used in
 * a child after fork(): calls there fail with WARDEN_EFORK.  An ingest or
 * upsert larger than a few thousand documents validates them on one helper
 * thread of its own while the calling thread applies them.  The thread
 * ends before the call returns (a warden_bulk_* load keeps it, idle between
 * calls, until warden_bulk_commit or warden_bulk_abort); progress
 * callbacks are still called on the calling thread.
 * WARDEN_INGEST_PIPE=0 in the environment keeps every ingest on the
 * calling thread.  A staged ingest (below) runs a second helper thread
 * that keeps the file's next pages allocated and in the page cache; it
 * too ends before the call returns, and data.mdb is cut back to LMDB's
 * end (a kill -9 may leave up to 512 MiB of zeroed tail, cut by the next
 * staged ingest).  WARDEN_INGEST_WARM=0 turns it off.
 *
 * Visibility: every committed write bumps the collection's 64-bit revision
 * and reports it.  A query that starts after a write returned sees that
 * write, in any thread or process.
 *
 * Memory: a handle keeps, for the newest revision its queries have seen,
 * decoded bitmaps and allowed sets (at most 64 MiB), decoded document
 * records of hits (at most 65,536) and the locations of embedding blocks.
 * They are keyed by revision, so they never serve a write's old state;
 * warden_close frees them.  It also remembers, in a fixed 64-entry table,
 * which allowed sets were scanned recently, and what exact scans of such
 * sets cost per vector; that only steers the planner's choice of strategy
 * (--explain: "allowed_cached", "cached_exact_ns"), never which chunks a
 * query may see.
 */
#ifndef WARDEN_H
#define WARDEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

#define WARDEN_OK 0
#define WARDEN_EINVAL (-30900)   /* bad argument or usage (CLI exit 2) */
#define WARDEN_EDATA (-30901)    /* invalid input data (CLI exit 3) */
#define WARDEN_ENOTFOUND (-30902) /* no such document / principal */
#define WARDEN_EIO (-30903)      /* I/O or LMDB error (CLI exit 1) */
#define WARDEN_ENOMEM (-30904)   /* allocation failed */
#define WARDEN_ECORRUPT (-30905) /* stored data or index file is damaged */
#define WARDEN_ECONFIG (-30906)  /* warden.yaml invalid */
#define WARDEN_ESTALE (-30907)   /* snapshot older than min_revision */
#define WARDEN_EEXIST (-30908)   /* collection already exists */
#define WARDEN_EFORK (-30909)    /* handle used in a child after fork() */
#define WARDEN_ERESOLVER (-30910) /* resolver could not be started/configured */
#define WARDEN_EINTERNAL (-30911) /* invariant broken: a bug, please report */

/* Static name and one-line description of an error code, e.g.
 * "WARDEN_EDATA: invalid input data".  Never NULL; do not free. */
const char *warden_strerror(int code);

/* ----------------------------------------------------------------- types */

typedef struct warden warden;                 /* an open collection */
typedef struct warden_results warden_results; /* answers to one query call */

#define WARDEN_METRIC_COSINE 0
#define WARDEN_METRIC_L2 1
#define WARDEN_METRIC_IP 2

/* Free a string or buffer returned by this library.  NULL is a no-op. */
void warden_free(void *p);

/* Detailed message of the last failed call made by the calling thread on
 * db, or "" when there is none.  Borrowed: valid until the calling thread's
 * next call on db; do not free. */
const char *warden_errmsg(const warden *db);

/* ------------------------------------------------------ create and open */

/* The largest embedding dimension (warden_create_opts.dim, `dimension:`). */
#define WARDEN_MAX_DIM 65536

typedef struct warden_create_opts {
  unsigned dim;            /* embedding dimension; 0 = take from config_path */
  const char *metric;      /* "cosine" | "l2" | "ip"; NULL = config or cosine */
  const char *config_path; /* warden.yaml to copy in; NULL = generate one */
} warden_create_opts;

/* Create a new, empty collection in dir (created if missing; must not
 * already hold a collection).  When both config_path and dim/metric are
 * given they must agree.  On failure a message of at most errlen bytes is
 * written to errbuf (may be NULL) and nothing is left behind that a later
 * create would trip over. */
int warden_create(const char *dir, const warden_create_opts *opts,
                  char *errbuf, size_t errlen);

typedef struct warden_open_opts {
  int read_only; /* nonzero: queries only; writes fail with WARDEN_EINVAL */
} warden_open_opts;

/* Open the collection in dir.  opts may be NULL (defaults).  On success
 * *out is a handle to close with warden_close().  On failure *out is
 * untouched and a message is written to errbuf. */
int warden_open(const char *dir, const warden_open_opts *opts, warden **out,
                char *errbuf, size_t errlen);

/* Close a handle.  No query may be running on it.  NULL is a no-op. */
void warden_close(warden *db);

/* Collection facts as one JSON object (documents, chunks, dimension,
 * metric, revision, index state, ...).  *json_out: free with warden_free. */
int warden_stats(warden *db, char **json_out);

/* Verify the collection's internal consistency (records, bitmaps,
 * embeddings, index files).  Writes a JSON report to *json_out (free with
 * warden_free) in every case it can; returns 0 when clean,
 * WARDEN_ECORRUPT when a problem was found. */
int warden_check(warden *db, char **json_out);

/* Write every document as JSON Lines that warden_ingest reads back into an
 * identical collection.  write() is called with consecutive pieces of the
 * output; a nonzero return from it stops the export with WARDEN_EIO.
 * Order: by doc_id (bytewise). */
int warden_export(warden *db, int (*write)(void *ctx, const char *buf,
                                           size_t len),
                  void *ctx);

/* ------------------------------------------- full export and import */

/* A full-fidelity export (restore.c): one JSON Lines stream, read from one
 * snapshot, holding the configuration (warden.yaml as written), every
 * metadata field type, the principals directory, the grants, every
 * document (exact float32 embeddings in shortest round-trip form, metadata
 * exactly as stored) and an end record with the counts.  Errors as for
 * warden_export, plus WARDEN_EIO when warden.yaml cannot be read. */
int warden_export_full(warden *db,
                       int (*write)(void *ctx, const char *buf, size_t len),
                       void *ctx);

/* Build a new collection in dir (which must not exist or be an empty
 * directory) from a full export at path ("-" = standard input).  The
 * collection is built in a temporary directory next to dir and renamed into
 * place only when everything was applied: on failure nothing is left.  Its
 * revision continues above the export's.  Errors: WARDEN_EEXIST (dir holds
 * something), WARDEN_EDATA ("FILE:LINE: field: reason"; a file without its
 * end record or with other counts is refused as truncated), WARDEN_EIO,
 * WARDEN_ECONFIG, WARDEN_ENOMEM; the message goes to errbuf.  *json_out
 * (may be NULL) gets {"imported","documents","principals","grants",
 * "revision","source_revision"}; free with warden_free. */
int warden_import(const char *dir, const char *path, char *errbuf,
                  size_t errlen, char **json_out);

/* warden_import with flags.  An export's configuration is taken as it is,
 * except that one naming a resolver command (a program queries would run)
 * or an audit.path (a file the collection would write) is refused with
 * WARDEN_EDATA ("FILE:1: config.resolver.command: ...") unless flags has
 * WARDEN_IMPORT_TRUST_CONFIG: an export file is data that may have been
 * moved or altered.  warden_import is this with flags 0. */
#define WARDEN_IMPORT_TRUST_CONFIG 1u
int warden_import_ex(const char *dir, const char *path, unsigned flags,
                     char *errbuf, size_t errlen, char **json_out);

/* An online, consistent, compacted copy of the collection into the new
 * directory dest (backup.c): warden.yaml, the ANN index file, and the
 * store copied from one read snapshot with LMDB's compacting copy (free
 * pages are not copied), while queries and writes go on.  Built in a
 * temporary directory next to dest and renamed: dest is absent or
 * complete.  The audit log is not copied.  Errors: WARDEN_EEXIST (dest
 * exists), WARDEN_EIO.  *json_out (may be NULL): {"backup","revision",
 * "store_bytes"}; free with warden_free. */
int warden_backup(warden *db, const char *dest, char **json_out);

/* Reclaim what deleted documents leave (zero rows, unused slots, free
 * pages) and shrink the store file (compact.c): the collection is rebuilt
 * from a full export into DIR/.compact (dense slots, insertion order kept,
 * everything else identical, revision continuing above the current one,
 * the ANN index rebuilt when there was one) and the stores are exchanged
 * atomically; a kill at any moment leaves the old collection or the new
 * one, never a mix, and leftovers are removed by the next compact.  Needs
 * the collection to itself: it fails (WARDEN_EIO) while any handle has it
 * open, and warden_open fails with "being compacted" meanwhile.  Needs free
 * disk for the export and a second store.  *json_out (may be NULL):
 * {"compacted","documents","bytes_before","bytes_after","revision_before",
 * "revision","index_rebuilt"}; free with warden_free. */
int warden_compact(const char *dir, char *errbuf, size_t errlen,
                   char **json_out);

/* ---------------------------------------------------------------- ingest */

typedef struct warden_ingest_opts {
  int keep_going; /* nonzero: commit the good lines, report the bad ones */
  /* Called now and then during long inputs (may be NULL): lines read so
   * far, bytes read so far, total bytes (0 when unknown). */
  void (*progress)(void *ctx, uint64_t lines, uint64_t bytes, uint64_t total);
  void *progress_ctx;
} warden_ingest_opts;

typedef struct warden_ingest_report {
  uint64_t documents; /* documents written (inserted or replaced) */
  uint64_t replaced;  /* of which replaced an existing doc_id */
  uint64_t chunks;    /* chunks written */
  uint64_t bad_lines; /* lines rejected (with keep_going) */
  uint64_t revision;  /* revision committed; unchanged if nothing written */
  /* With keep_going: one "FILE:LINE: field: reason" per bad line, joined by
   * '\n', or NULL.  Without keep_going the first error is in warden_errmsg.
   * Free with warden_free. */
  char *errors;
} warden_ingest_report;

/* Ingest JSON Lines documents (SPEC section 3) from the files in paths ("-"
 * means standard input).  All inputs of one call form one transaction:
 * unless keep_going, one bad line means nothing is committed and
 * WARDEN_EDATA is returned with "FILE:LINE: field: reason" in
 * warden_errmsg().  Upsert by doc_id.  opts may be NULL.  report may be
 * NULL; when not, it is written on success (free report->errors).
 *
 * Memory is bounded independently of the input's size: an input larger
 * than WARDEN_STAGE_MB (default 256) MiB, or of unknown size (standard
 * input), is written in staging transactions of about that much new data
 * that no reader can see, then published in one small transaction (README
 * "Memory of an ingest"; measured peak RSS 1.0 GB at 1M x 384, documented
 * cap 1.5 GB at any N).  Readers see all of the call or none of it, and a
 * kill -9 at any point leaves the collection as before or (once published)
 * as after.  Ingests (every path, every handle) run one at a time
 * (DIR/store/ingest.lock); deletes and ACL changes may commit between
 * staging transactions. */
int warden_ingest(warden *db, const char *const *paths, size_t npaths,
                  const warden_ingest_opts *opts, warden_ingest_report *report);

/* The same from a buffer of JSON Lines; name is used in error messages. */
int warden_ingest_buffer(warden *db, const char *name, const char *buf,
                         size_t len, const warden_ingest_opts *opts,
                         warden_ingest_report *report);

/* ------------------------------------------------------- typed upsert */

/* Metadata value types of warden_meta. */
#define WARDEN_META_STRING 1
#define WARDEN_META_INT 2
#define WARDEN_META_FLOAT 3
#define WARDEN_META_BOOL 4
#define WARDEN_META_STRING_LIST 5

/* One metadata field of a typed document.  Only the member of its type is
 * read: str (STRING), i (INT; BOOL as 0/1), f (FLOAT), list/nlist
 * (STRING_LIST). */
typedef struct warden_meta {
  const char *key;
  int type;                 /* WARDEN_META_* */
  const char *str;
  int64_t i;
  double f;
  const char *const *list;
  size_t nlist;
} warden_meta;

/* One document of a typed upsert: the fields of an ingest line (SPEC
 * section 3) with chunk texts and without embeddings.  All pointers are
 * borrowed for the duration of the call. */
typedef struct warden_doc {
  const char *doc_id;       /* required, 1..1024 bytes of UTF-8 */
  const char *source;       /* required, a URI */
  const char *namespace_;   /* NULL = "/" */
  const warden_meta *metadata;
  size_t nmetadata;
  int has_acl;              /* 0: the collection's default_acl applies
                             * (an error when it has none) */
  const char *const *allow;
  size_t nallow;
  const char *const *deny;
  size_t ndeny;
  const char *const *texts; /* the chunk texts, nchunks >= 1 */
  size_t nchunks;
} warden_doc;

typedef struct warden_upsert_opts {
  int keep_going; /* nonzero: commit the good documents, report the bad */
  /* Called now and then (may be NULL): documents done, documents total. */
  void (*progress)(void *ctx, uint64_t done, uint64_t total);
  void *progress_ctx;
} warden_upsert_opts;

/* Upsert ndocs documents (by doc_id) in one transaction, with the same
 * validation, limits and atomicity as warden_ingest.  embeddings is
 * row-major float32, one row of warden_dimension() floats per chunk, in
 * document order and chunk order within a document; nrows must equal the
 * sum of the documents' nchunks.  embeddings may be NULL (nrows 0) when the
 * collection has an embedder: the texts are embedded.  Errors: WARDEN_EDATA
 * with "docs[I].FIELD: reason" in warden_errmsg() (I the index in docs),
 * nothing committed unless keep_going; WARDEN_EINVAL for NULL arguments or
 * a row count that does not match.  opts and report may be NULL; report as
 * for warden_ingest (free report->errors). */
int warden_upsert(warden *db, const warden_doc *docs, size_t ndocs,
                  const float *embeddings, size_t nrows,
                  const warden_upsert_opts *opts, warden_ingest_report *report);

/* ------------------------------------------------------- bulk load */

/* A bulk load: one logical transaction that any number of
 * warden_bulk_upsert() calls add to and warden_bulk_commit() commits, so
 * that readers see none of it before the commit and all of it after, and
 * a load of any size is all-or-nothing -- while each call's documents are
 * validated, applied and freed before it returns.  A load whose
 * expected_bytes is 0 or above WARDEN_STAGE_MB MiB is staged as
 * warden_ingest describes (bounded memory, one small publishing
 * transaction at commit; README "Memory of an ingest").  Validation,
 * limits, keep_going and errors are warden_upsert's;
 * I in "docs[I].FIELD: reason" counts documents across all calls of the
 * load, and a doc_id given twice in one load is refused.
 *
 * The load holds the collection's writer lock from begin to commit/abort
 * (a staged load: the ingest lock, and LMDB's between its staging
 * transactions): other writers wait, readers do not.  It must be used from the thread
 * that began it, which must make no other write to the collection (on any
 * handle) until it commits or aborts; close the handle only after that.
 * expected_bytes: roughly what the load brings (rows * dimension * 4 plus
 * texts and metadata); 0 when unknown.  The map is reserved for it up
 * front (address space, not disk): a load that outgrows the reservation
 * fails with WARDEN_EIO and commits nothing.
 *
 * warden_bulk_upsert: as warden_upsert (embeddings borrowed for the call
 * only).  WARDEN_EINVAL (bad arguments) leaves the load as it was; any
 * other error ends it: nothing is committed, later calls return the same
 * code, commit returns it and frees b.  warden_bulk_commit: commits and
 * frees b (always); report as for warden_ingest.  warden_bulk_abort:
 * discards everything and frees b (NULL is a no-op). */
typedef struct warden_bulk warden_bulk;
int warden_bulk_begin(warden *db, const warden_upsert_opts *opts, uint64_t expected_bytes,
                      warden_bulk **out);
int warden_bulk_upsert(warden_bulk *b, const warden_doc *docs, size_t ndocs,
                       const float *embeddings, size_t nrows);
int warden_bulk_commit(warden_bulk *b, warden_ingest_report *report);
void warden_bulk_abort(warden_bulk *b);

/* ---------------------------------------------------- writes and reports */

typedef struct warden_write_report {
  uint64_t changed;     /* records changed */
  uint64_t unchanged;   /* records already as requested */
  uint64_t unknown;     /* doc_ids / principals not found */
  uint64_t revision;    /* revision committed (current one if no change) */
} warden_write_report;

/* Delete documents (all their chunks, embeddings, metadata, ACL).  Unknown
 * ids are counted in report->unknown, not an error.  report may be NULL. */
int warden_delete(warden *db, const char *const *doc_ids, size_t n,
                  warden_write_report *report);

/* The document's ACL as {"doc_id":..,"allow":[..],"deny":[..]}.
 * WARDEN_ENOTFOUND if unknown.  *json_out: free with warden_free. */
int warden_acl_get(warden *db, const char *doc_id, char **json_out);

/* Replace a document's allow and/or deny list.  A NULL list (with n == 0)
 * keeps the current one; a non-NULL list with n == 0 sets it empty.
 * Vectors are not touched.  report may be NULL. */
int warden_acl_set(warden *db, const char *doc_id, const char *const *allow,
                   size_t nallow, const char *const *deny, size_t ndeny,
                   warden_write_report *report);

/* Apply an ACL sync file (JSON Lines {"doc_id","allow","deny"}) in one
 * transaction; only differences are written.  A malformed line or a
 * doc_id repeated in the file fails the whole sync (WARDEN_EDATA, nothing
 * applied).  Unknown doc_ids are counted, not errors.  opts: only progress
 * is used; may be NULL. */
int warden_acl_sync(warden *db, const char *path,
                    const warden_ingest_opts *opts, warden_write_report *report);

/* Set the groups a principal belongs to in the collection's directory
 * (replacing its previous list; an empty list removes the entry). */
int warden_principal_set(warden *db, const char *principal,
                         const char *const *groups, size_t ngroups,
                         warden_write_report *report);

/* {"principal":..,"groups":[..],"expanded":[..]} (expanded: transitive
 * closure).  An unknown principal has empty lists (not an error). */
int warden_principal_get(warden *db, const char *principal, char **json_out);

/* Apply a principals file (JSON Lines {"principal","groups"}) in one
 * transaction.  Principals not in the file are left as they are. */
int warden_principals_sync(warden *db, const char *path,
                           const warden_ingest_opts *opts,
                           warden_write_report *report);

/* ---------------------------------------------------------------- query */

/* The largest k a query may ask for (warden_query_opts.k, CLI -k). */
#define WARDEN_MAX_K 10000

#define WARDEN_STRATEGY_AUTO 0  /* the planner decides */
#define WARDEN_STRATEGY_EXACT 1 /* exact scan over the allowed set */
#define WARDEN_STRATEGY_ANN 2   /* the ANN index, with the allowed set */

typedef struct warden_query_opts {
  const char *principal;         /* required: user:NAME | group:NAME */
  const char *const *groups;     /* groups asserted by the caller's IdP */
  size_t ngroups;
  const char *const *namespaces; /* namespace prefixes; none = all */
  size_t nnamespaces;
  const char *filter;   /* metadata filter JSON, either dialect; NULL: none */
  unsigned k;           /* results per query; 0 means 10 */
  int strategy;         /* WARDEN_STRATEGY_* */
  uint64_t min_revision; /* fail with WARDEN_ESTALE if snapshot is older */
  int explain;          /* nonzero: fill the plan (warden_results_plan) */
  /* On-behalf-of (an agent acting for the principal): when agent is set, a
   * chunk is returned only if both the principal and the agent may read
   * it.  agent: user:NAME | group:NAME; agent_groups as groups. */
  const char *agent;
  const char *const *agent_groups;
  size_t nagent_groups;
  /* Recall the ANN search aims for, in (0, 1]; 0 = the collection's
   * index.target_recall (default 0.95). */
  float target_recall;
  /* WARDEN_MODE_*: semantic (vectors, the default), lexical (BM25 over
   * text) or hybrid (both, fused). */
  int mode;
  /* The lexical query text (lexical and hybrid modes). */
  const char *text;
} warden_query_opts;

#define WARDEN_MODE_SEMANTIC 0
#define WARDEN_MODE_LEXICAL 1
#define WARDEN_MODE_HYBRID 2

/* Search nq query vectors (row-major, nq * dimension floats) for the
 * opts->k nearest chunks each that the principal may read and that pass the
 * filter (and, when a resolver is configured or registered, that it
 * allows).  *out: free with warden_results_free; untouched on failure.
 * Thread-safe.  opts->mode LEXICAL ranks by BM25 over opts->text (vectors
 * may be NULL, nq 1); HYBRID fuses BM25 with the vector side (vectors may
 * be NULL when the collection has an embedder: opts->text is embedded);
 * hits then carry the fused score and semantic_rank / lexical_rank (see
 * README "Hybrid retrieval").  Errors:
 *   WARDEN_EINVAL   bad principal/groups/namespace syntax, k > 10000, no
 *                   vectors, unknown strategy; an agent or agent_groups
 *                   entry not in the principal/group grammar, or
 *                   agent_groups without an agent; an unknown mode, lexical or
 *                   hybrid without a text or with a batch, hybrid without
 *                   a vector on a collection without an embedder;
 *   WARDEN_EDATA    a non-finite or (cosine) all-zero vector; a malformed
 *                   filter or one whose types do not match the fields;
 *   WARDEN_ESTALE   the snapshot is older than opts->min_revision;
 *   WARDEN_ECORRUPT stored data failed its checksum, or a hit's document
 *                   record does not allow it (the query fails closed);
 *   WARDEN_EIO      storage error, or the audit line could not be written
 *                   (an audited query never answers unaudited);
 *   WARDEN_ENOMEM.
 * On-behalf-of (opts->agent set): the allowed set is what the principal
 * may read intersected with what the agent may read (each with its
 * asserted groups and the directory's, deny winning for either); a
 * resolver is asked for the principal and then, for the documents it
 * allowed, for the agent -- a document passes only if both are allowed,
 * and a failure of either check is a deny that marks the answer degraded;
 * the plan (explain) names the agent and the audit line records both
 * identities with the evidence for each. */
int warden_query(warden *db, const float *vectors, size_t nq,
                 const warden_query_opts *opts, warden_results **out);

/* Every chunk of document doc_id that opts->principal (and, when set,
 * opts->agent) may read -- the same allowed set, resolver checks, record
 * re-check and audit line as warden_query -- as one query's results
 * (warden_results_count(r, 0) hits, in chunk order; their scores mean
 * nothing).  opts->k and opts->strategy are ignored (at most 10000
 * chunks); the filter and namespaces apply.  An unknown doc_id and one the
 * caller may not read both give zero hits (not an error), so a fetch does
 * not reveal that a document exists.  Errors as warden_query. */
int warden_fetch(warden *db, const char *doc_id, const warden_query_opts *opts,
                 warden_results **out);

/* The same for one query text, embedded by the collection's embedder
 * (WARDEN_EINVAL when the collection has none). */
int warden_query_text(warden *db, const char *text,
                      const warden_query_opts *opts, warden_results **out);

/* One result.  All pointers are borrowed from the results object: valid
 * until warden_results_free; do not free. */
typedef struct warden_hit {
  const char *doc_id;
  uint32_t chunk;            /* ordinal of the chunk within its document */
  float score;               /* cosine / inner product / squared L2 */
  const char *text;
  const char *source;
  const char *namespace_;
  const char *metadata_json; /* the document's metadata as a JSON object */
  uint32_t semantic_rank;    /* 1-based rank on the vector side; 0 = none */
  uint32_t lexical_rank;     /* 1-based rank on the lexical side; 0 = none */
} warden_hit;

uint64_t warden_results_revision(const warden_results *r);
size_t warden_results_nqueries(const warden_results *r);
/* Number of hits for query qi (best first), at most k. */
size_t warden_results_count(const warden_results *r, size_t qi);
/* Hit i of query qi, or NULL when out of range. */
const warden_hit *warden_results_hit(const warden_results *r, size_t qi,
                                     size_t i);
/* Nonzero when a candidate of query qi was dropped because the resolver
 * failed (not because it said no) -- in a batch, also when it failed on a
 * document for an earlier query of the same call, which then stays out of
 * the later ones.  A degraded answer may hold fewer than k hits. */
int warden_results_degraded(const warden_results *r, size_t qi);
/* The plan of query qi as a JSON object, or NULL when explain was off.
 * Borrowed from r. */
const char *warden_results_plan(const warden_results *r, size_t qi);
void warden_results_free(warden_results *r);

/* Embed text with the collection's embedder into out (dimension floats).
 * WARDEN_EINVAL when the collection has no embedder. */
int warden_embed(warden *db, const char *text, float *out);

/* The collection's newest committed revision (reads a fresh snapshot). */
int warden_revision(warden *db, uint64_t *out);

/* Dimension and metric of an open collection. */
unsigned warden_dimension(const warden *db);
int warden_metric(const warden *db);


/* ------------------------------------------------ ANN index lifecycle */

/* Initialise the whole struct (`= {0}` or designated initialisers): it
 * grew a field, phase_progress, after its first three, and a caller built
 * against the three-field header passes a struct the library reads past --
 * such a caller must be rebuilt (the Python binding declares all four). */
typedef struct warden_index_opts {
  int rebuild; /* nonzero: retrain from scratch even if an index exists */
  /* progress (may be NULL): vectors assigned to IVF lists, vectors total */
  void (*progress)(void *ctx, uint64_t done, uint64_t total);
  void *progress_ctx;
  /* every phase (may be NULL), progress_ctx shared: phase "ivf" (vectors
   * assigned to lists, as progress) then "graph" (vectors inserted into
   * the graph index), each from 0 to its total; called on the calling
   * thread, at most every 4,096 vectors, and once with done == total */
  void (*phase_progress)(void *ctx, const char *phase, uint64_t done, uint64_t total);
} warden_index_opts;

/* Build (or bring up to date) the collection's ANN index file,
 * DIR/index/ivf.wdx, from the store: IVF lists of SQ8 codes by default
 * (index.quantizer: none keeps float vectors).  The file is written to a
 * temp file, fsynced and renamed, so a crash leaves the old file or the
 * new one, never a mix; temp files left by killed builds are removed.
 * *json_out (may be NULL) receives a report (free with warden_free): sizes,
 * timings, "calibrated_min_lists", "rebuild_suggested",
 * "stale_temp_files_removed"; an empty collection is not an error (the
 * report says "built": false).  Errors: WARDEN_EIO (file system, with the
 * path), WARDEN_ENOMEM, WARDEN_EINTERNAL (FAISS training failed), or a
 * store error such as WARDEN_ECORRUPT; on error the old index file is
 * untouched. */
int warden_index_build(warden *db, const warden_index_opts *opts,
                       char **json_out);

/* ------------------------------------------ source-permission resolver */

/* One resource checked by a resolver. */
typedef struct warden_resource {
  const char *doc_id;
  const char *source;
} warden_resource;

/* A resolver callback (SPEC section 6).  Fill allowed[i] with 1 (may read),
 * 0, or WARDEN_RESOLVER_UNDECIDED (could not decide: that resource fails
 * alone -- denied, the query marked degraded) for each of the n resources
 * and return 0.  A nonzero return means the call failed: warden then asks
 * for each resource on its own, so only the resources it fails on again
 * are denied.  Timeouts: warden cannot interrupt a callback; it must
 * return within the collection's resolver.timeout_ms (default 500) by
 * itself, marking what it could not decide in time UNDECIDED.  A query
 * stops making new calls once its resolver budget (4 x timeout_ms) is
 * spent; resources not answered by then are denied and the query is
 * degraded.  Called from query threads, possibly concurrently: it must be
 * thread-safe.  All pointers are borrowed for the duration of the call. */
#define WARDEN_RESOLVER_UNDECIDED 2
typedef int (*warden_resolver_fn)(void *ctx, const char *principal,
                                  const char *const *groups, size_t ngroups,
                                  const warden_resource *res, size_t n,
                                  unsigned char *allowed);

/* Use fn as the source-permission resolver of this handle, instead of the
 * one configured in warden.yaml.  fn NULL restores the configured one.
 * Not to be called while queries run on db. */
int warden_set_resolver(warden *db, warden_resolver_fn fn, void *ctx);

/* Grants (resolver type "grants", like S3 Access Grants): principal may
 * read every source URI that starts with prefix. */
int warden_grant_add(warden *db, const char *principal, const char *prefix,
                     warden_write_report *report);
int warden_grant_remove(warden *db, const char *principal, const char *prefix,
                        warden_write_report *report);
/* {"grants":[{"principal":..,"prefix":..}],"revision":R}; free with
 * warden_free. */
int warden_grant_list(warden *db, char **json_out);

/* ------------------------------------------------- for FFI bindings */

/* The calls a binding runs on a worker thread (koffi's async calls, N-API
 * async work, a thread pool), each exactly the plain call of the same name
 * without "_e", plus: on failure the message warden_errmsg() would give on
 * that thread is copied into errbuf (at most errlen bytes, NUL-terminated;
 * errbuf may be NULL); on success errbuf is set to "".  warden_errmsg() is
 * per thread, so a binding that reads it from its main thread after the
 * worker returned would get nothing.  Errors and ownership: as the plain
 * call's. */
int warden_query_e(warden *db, const float *vectors, size_t nq,
                   const warden_query_opts *opts, warden_results **out,
                   char *errbuf, size_t errlen);
int warden_fetch_e(warden *db, const char *doc_id,
                   const warden_query_opts *opts, warden_results **out,
                   char *errbuf, size_t errlen);
int warden_query_text_e(warden *db, const char *text,
                        const warden_query_opts *opts, warden_results **out,
                        char *errbuf, size_t errlen);
int warden_upsert_e(warden *db, const warden_doc *docs, size_t ndocs,
                    const float *embeddings, size_t nrows,
                    const warden_upsert_opts *opts,
                    warden_ingest_report *report, char *errbuf, size_t errlen);
int warden_ingest_buffer_e(warden *db, const char *name, const char *buf,
                           size_t len, const warden_ingest_opts *opts,
                           warden_ingest_report *report, char *errbuf,
                           size_t errlen);
int warden_delete_e(warden *db, const char *const *doc_ids, size_t n,
                    warden_write_report *report, char *errbuf, size_t errlen);
int warden_acl_set_e(warden *db, const char *doc_id, const char *const *allow,
                     size_t nallow, const char *const *deny, size_t ndeny,
                     warden_write_report *report, char *errbuf, size_t errlen);
int warden_principal_set_e(warden *db, const char *principal,
                           const char *const *groups, size_t ngroups,
                           warden_write_report *report, char *errbuf,
                           size_t errlen);

/* -------------------------------------------------------- test hooks */

/* Allocation hook used by every allocation libwarden makes itself (not by
 * LMDB, CRoaring, jansson or FAISS, nor the per-thread error message
 * buffers, so that an allocation failure can always be reported).  For fault-injection tests: install
 * before opening handles; NULL restores malloc/realloc/free.  This is the
 * one process-wide setting; it is not thread-safe to change while handles
 * are in use.  The functions must be thread-safe: index builds and large
 * ingests allocate from helper threads. */
typedef struct warden_allocator {
  void *(*malloc_fn)(void *ctx, size_t n);
  void *(*realloc_fn)(void *ctx, void *p, size_t n);
  void (*free_fn)(void *ctx, void *p);
  void *ctx;
} warden_allocator;
void warden_set_allocator(const warden_allocator *a);

#ifdef __cplusplus
}
#endif
#endif /* WARDEN_H */
