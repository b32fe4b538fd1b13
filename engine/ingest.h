/*
 * ingest.h -- the one document validator and applier shared by the JSON
 * Lines path (ingest.c) and the typed upsert (upsert.c).
 *
 * Both paths hand each document to wd_ingest_doc() as a JSON object in the
 * shape of an ingest line (SPEC section 3): the JSONL path straight from
 * jansson, the typed path after upsert.c has built that object from a
 * warden_doc (without embeddings, which it passes as float rows).  So every
 * limit, message and duplicate check is the same code; only the location
 * prefix differs: "FILE:LINE: field: reason" or "docs[I].field: reason".
 */
#ifndef WD_INGEST_H
#define WD_INGEST_H
#include <jansson.h>
#include <stdarg.h>

#include "engine/fastemb.h"
#include "engine/stage.h"
#include "engine/store.h"

typedef struct wd_pdoc {
  json_t *rec;        /* doc_id, source, namespace, metadata, allow, deny */
  json_t *texts;      /* array of chunk texts */
  float *emb;         /* nchunks * dim */
  int emb_borrowed;   /* emb points into the caller's rows: not freed */
  size_t nchunks;
  const char *file;
  uint64_t line;      /* the typed path: the index in docs */
  int bad;            /* rejected in phase 2 (keep_going) */
} wd_pdoc;

typedef struct wd_ingest {
  warden *db;
  int keep_going;
  int typed;          /* errors read "docs[I].field: reason" */
  const warden_ingest_opts *opts; /* the JSONL path's progress; may be NULL */
  wd_pdoc *docs;
  size_t ndocs, cap;
  wd_hmap ids;        /* doc_id -> where_code of its line (ingest.c) */
  char *errors;       /* keep_going: joined messages */
  size_t errlen, errcap;
  uint64_t bad_lines;
  uint64_t lines_total, bytes_total, size_total;
  /* phase 2 results */
  uint64_t written, replaced, chunks;
  /* the one write transaction of the whole input, open from
   * wd_ingest_begin to wd_ingest_finish; documents are applied to it in
   * batches of WD_BATCH and then freed */
  wd_txn tx;
  int open;
  uint64_t start_slot; /* next_slot when the transaction began */
  uint64_t *wfirst, *wwhere; /* per written document: first slot, where
                              * it came from (ingest.c where_code) */
  size_t nw, wcap;
  const char **files; /* the JSONL inputs seen so far (borrowed paths) */
  size_t nfiles, files_cap;
  wd_fastemb fe;      /* the current line's embedding arrays (fastemb.h) */
  /* bounded memory (stage.h): an input expected to be larger than one
   * staging txn (or of unknown size) is staged and then published */
  uint64_t expect;    /* bytes the input is expected to add; 0 unknown */
  wd_stage st;
  int lockfd, locked; /* DIR/store/ingest.lock, held from begin to free */
} wd_ingest;

/* Documents validated before they are applied and freed; bitmaps dirty
 * before they are written into the transaction and dropped. */
#define WD_BATCH 2048
#define WD_SPILL_BITMAPS 16384

/* Report a bad document: with keep_going collect the message and return 1
 * (skip it), else set it as the handle's message and return WARDEN_EDATA.
 * line is the document's index on the typed path. */
int wd_ingest_bad(wd_ingest *g, const char *file, uint64_t line,
                  const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Validate document j (not consumed) and queue it for apply.  rows: NULL to
 * take embeddings from j's chunks (or the embedder), else nchunks rows of
 * the collection's dimension, borrowed until wd_ingest_finish.  Returns 0,
 * 1 (skipped with keep_going) or a negative error. */
int wd_ingest_doc(wd_ingest *g, json_t *j, const char *file, uint64_t line,
                  const float *rows);

/* Reserve reserve bytes of map (store_reserve) and begin the write
 * transaction.  Call before the first wd_ingest_drain. */
int wd_ingest_begin(wd_ingest *g, uint64_t reserve);

/* Apply the queued documents to the transaction and free them (0, or a
 * negative error: then only wd_ingest_finish/free may follow).  Errors
 * with keep_going are collected, as in phase 1. */
int wd_ingest_drain(wd_ingest *g);

/* rc == 0: drain what is queued and commit, fill report (may be NULL).
 * Always: abort what is left open and free everything g holds.  Returns
 * rc, or the error of the drain or commit (WD_EMAPFULL: the reservation
 * was too small, nothing committed). */
int wd_ingest_finish(wd_ingest *g, int rc, warden_ingest_report *report);

/* Abort (if open) and free everything; g is zeroed. */
void wd_ingest_free(wd_ingest *g);

#endif
