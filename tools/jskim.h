/*
 * jskim.h -- a fast check that a META.jsonl line of `warden ingest
 * --vectors` is JSON jansson accepts, and the chunk facts pass 1 needs
 * (tools/ingest_npy.c), without building its tree.
 */
#ifndef WD_JSKIM_H
#define WD_JSKIM_H
#include <stddef.h>
#include <stdint.h>

typedef struct jskim_doc {
  int has_chunks;     /* the object has a "chunks" key */
  int chunks_array;   /* ... whose value is an array */
  uint64_t nchunks;   /* of that many elements */
  uint64_t emb_chunk; /* 0, or 1 + the index of the first element that is
                       * an object with an "embedding" key */
} jskim_doc;

/* 1: s[0..n) is one JSON object that json_loadb(JSON_REJECT_DUPLICATES)
 * accepts, and *d describes it as json_object_get would; 0: not sure (it
 * may be valid or not): parse it with jansson. */
int jskim_doc_line(const char *s, size_t n, jskim_doc *d);

#include "warden.h"

/* A line jskim_doc_line accepts, turned into *d exactly as
 * tools/ingest_npy.c's to_doc turns jansson's tree of it: strings decoded
 * (NUL-terminated, in memory from alloc(ctx, n), which must not fail or
 * must make the caller stop), metadata in line order, integers as
 * strtoll, reals as strtod read them (as jansson does).  Returns 1, or 0
 * for anything to_doc would refuse or treat specially (unknown or
 * missing fields, null or nested metadata values, non-string list or
 * principal entries, a chunk without a text, no chunks): parse those with
 * jansson and to_doc, which say why.  checked: the caller has just had
 * jskim_doc_line accept this very text (it is not checked again). */
int jskim_doc_parse(const char *s, size_t n, int checked, void *(*alloc)(void *ctx, size_t n),
                    void *ctx, warden_doc *d);
#endif
