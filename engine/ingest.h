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

#include "base/seqlog.h"
#include "engine/fastemb.h"
#include "engine/lexical.h"
#include "engine/stage.h"
#include "engine/store.h"

/* Bump memory for one batch's embeddings (ingest.c): a float array per
 * document would be one large malloc each, which makes glibc consolidate
 * its free lists every time.  Reset when the batch's documents are freed;
 * its blocks are kept for the next batch. */
typedef struct wd_slab {
  char **blk;
  size_t *cap;
  size_t nblk, cur, used; /* blocks; the one in use; bytes used in it */
} wd_slab;

/* The doc_ids of one batch, for duplicates within it: indexes into the
 * batch's documents by the doc_id's hash, no copies of the ids (ingest.c). */
typedef struct wd_idset {
  uint32_t *ix; /* document index + 1; 0: empty */
  uint64_t *h;
  size_t cap, n;
} wd_idset;

typedef struct wd_pdoc {
  json_t *rec;        /* doc_id, source, namespace, metadata, allow, deny */
  json_t *texts;      /* array of chunk texts */
  float *emb;         /* nchunks * dim */
  int emb_borrowed;   /* emb points into the caller's rows or the batch's
                       * slab: not freed with the document */
  size_t nchunks;
  const char *file;
  uint64_t line;      /* the typed path: the index in docs */
  int bad;            /* rejected in phase 2 (keep_going) */
  size_t lex_first;   /* its chunks' tokens: from this chunk of the
                       * batch's lexpre on (SIZE_MAX: not counted) */
} wd_pdoc;

typedef struct wd_ingest {
  warden *db;
  int keep_going;
  int typed;          /* errors read "docs[I].field: reason" */
  const warden_ingest_opts *opts; /* the JSONL path's progress; may be NULL */
  wd_pdoc *docs;
  size_t ndocs, cap;
  wd_idset ids;       /* the batch's doc_ids (ingest.c) */
  char *errors;       /* keep_going: joined messages */
  size_t errlen, errcap;
  uint64_t bad_lines;
  uint64_t lines_total, bytes_total, size_total;
  /* phase 2 results */
  uint64_t written, replaced, chunks;
  uint64_t applied;   /* documents handed to phase 2 (progress) */
  /* the one write transaction of the whole input, open from
   * wd_ingest_begin to wd_ingest_finish; documents are applied to it in
   * batches of WD_BATCH and then freed */
  wd_txn tx;
  int open;
  uint64_t start_slot; /* next_slot when the transaction began */
  wd_seqlog wlog;     /* per written document: first slot -> where it came
                       * from (ingest.c where_code), ~2.5 bytes each */
  const char **files; /* the JSONL inputs seen so far (borrowed paths) */
  size_t nfiles, files_cap;
  wd_fastemb fe;      /* the current line's embedding arrays (fastemb.h) */
  wd_slab emb;        /* the batch's parsed embeddings (docs[i].emb) */
  /* the batch's chunk tokens, counted where it is parsed (on the
   * pipeline's thread), so the applying thread only adds postings */
  wd_lexpre lexpre;
  wd_lexer lx;
  int lx_ok;
  /* bounded memory (stage.h): an input expected to be larger than one
   * staging txn (or of unknown size) is staged and then published */
  uint64_t expect;    /* bytes the input is expected to add; 0 unknown */
  wd_stage st;
  int lockfd, locked; /* DIR/store/ingest.lock, held from begin to free */
  /* the parse/apply pipeline (wd_pipe_open); NULL: one thread */
  struct wd_pipe *pipe;
  size_t nstale;      /* docs[0..nstale) applied, not yet freed (pipeline) */
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

/* The parse/apply pipeline.  Validating a document (JSON, limits,
 * embeddings) needs no transaction; applying it needs the write
 * transaction, which lives on the calling thread.  With a pipeline a
 * worker thread validates job k+1 into its own side of the ingest (its
 * own documents, duplicate map, error list) while the calling thread
 * applies job k; the errors of a job are appended, in job order, before
 * that job is applied, so a run reports what a one-thread run with
 * batches of the job size reports.  Jobs are taken back in the order
 * they were given.  A job's documents must not borrow
 * from the job's input (rows excepted: the typed path flushes before its
 * call returns).
 *
 * wd_pipe_open returns 0 (pipelined) or -1 (no second CPU, no thread,
 * WARDEN_INGEST_PIPE=0: the caller goes on with wd_ingest_doc on one
 * thread; not an error).  wd_pipe_job_size is the documents per job (2048,
 * or WARDEN_INGEST_PIPE=N for tests).  wd_pipe_submit queues fn(worker
 * side, job); when WD_PIPE_DEPTH jobs are in flight it first waits for the
 * oldest, takes its documents and applies them; fn returns 0 or a negative error (as
 * wd_ingest_doc: 1 means skipped, and the job goes on).  wd_pipe_flush
 * waits, takes and applies.  Both return 0 or a negative error, with the
 * message set on the calling thread.  Up to WD_PIPE_DEPTH jobs are in
 * flight; a caller cycling through WD_PIPE_JOBS job buffers in order may
 * refill the next one as soon as a submit returns. */
#define WD_PIPE_DEPTH 3
#define WD_PIPE_JOBS (WD_PIPE_DEPTH + 1)
typedef int (*wd_parse_fn)(wd_ingest *p, void *job);
int wd_pipe_open(wd_ingest *g);
size_t wd_pipe_job_size(void);
int wd_pipe_submit(wd_ingest *g, wd_parse_fn fn, void *job);
int wd_pipe_flush(wd_ingest *g);
/* Wait until the worker is idle (before the memory of a job it may still
 * be reading goes away, after an error). */
void wd_pipe_wait(wd_ingest *g);
/* 1 when WARDEN_INGEST_PIPE asks for the pipeline whatever the input's
 * size (tests), 0 when it leaves it to the caller, -1 when it forbids it. */
int wd_pipe_forced(void);

/* Abort (if open) and free everything; g is zeroed. */
void wd_ingest_free(wd_ingest *g);

#endif
