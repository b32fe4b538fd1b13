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
#endif
