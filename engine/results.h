/*
 * results.h -- the results object of a query and the hits in it
 * (engine/results.c): materialising a slot into a hit (text, source,
 * metadata, from the query's snapshot) and owning everything the hits
 * point to, so that a warden_results outlives the snapshot.
 */
#ifndef WD_RESULTS_H
#define WD_RESULTS_H
#include <jansson.h>

#include "engine/store.h"

/* What a query needs from a document record, decoded once.  Immutable
 * once built and shared by reference count: between the results that hold
 * it and the handle's document cache. */
typedef struct docinfo {
  char *source, *namespace_, *metadata;
  json_t *allow; /* for audit evidence and the record re-check */
  json_t *deny;
  int refs;      /* atomic */
} docinfo;

typedef struct qres {
  warden_hit *hits;
  size_t n;
  int degraded;
  char *plan;
} qres;

struct warden_results {
  uint64_t revision;
  size_t nq;
  qres *q;
  wd_hmap docs; /* doc_id -> docinfo*, shared by hits */
  char **texts; /* owned strings: doc ids and texts */
  size_t ntexts, captexts;
};


/* A new results object for nq queries (NULL when out of memory). */
warden_results *wd_results_new(size_t nq, uint64_t revision);
/* Fill hit h from slot s in the snapshot (the document record through the
 * results' and the handle's document caches). */
int wd_results_materialise(wd_txn *tx, warden_results *r, uint32_t s, float score,
                           warden_hit *h);
/* The document behind slot s, through the same caches. */
int wd_results_slot_doc(wd_txn *tx, warden_results *r, uint32_t s, const char **id, size_t *il,
                        docinfo **dout);
/* The decoded record of a document some hit of r names, or NULL. */
docinfo *wd_results_doc(const warden_results *r, const char *doc_id);
/* j as compact JSON in a new string (wd_free), NULL when out of memory. */
char *wd_json_dup(const json_t *j);

#endif
