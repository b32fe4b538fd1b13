/*
 * results.c -- materialising hits and the results object that owns them.
 *
 * A hit's strings point into its results object: doc ids and texts are
 * copied (own), sources, namespaces and metadata are shared, per
 * document, through docinfo records that the handle's document cache may
 * share too (reference counted).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/results.h"

static void doc_unref(docinfo *d) {
  if (!d || __atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  wd_free(d->source);
  wd_free(d->namespace_);
  wd_free(d->metadata);
  json_decref(d->allow);
  json_decref(d->deny);
  wd_free(d);
}

/* Decoded document records of the newest revision seen, shared by a
 * handle's queries.  Measured: decoding the JSON record and re-encoding its
 * metadata was ~70 % of a query at 0.1 % selectivity.  Like the bitmap
 * cache (engine/store.c), it is keyed by revision: every committed write
 * bumps the revision, so (revision, doc_id) names one immutable record; a
 * snapshot older than the cache bypasses it, a newer one empties it. */
typedef struct wd_doccache {
  pthread_mutex_t mu; /* first: store_lazy_cache initialises it */
  uint64_t rev;
  wd_hmap map; /* doc_id -> docinfo* (one reference) */
} wd_doccache;

#define DOCCACHE_MAX 65536 /* documents; beyond it, new ones are not kept */

void wd_doccache_free(wd_doccache *c) {
  if (!c) return;
  WD_HMAP_FOREACH(&c->map, e) doc_unref(e->val);
  wd_hmap_free(&c->map);
  pthread_mutex_destroy(&c->mu);
  wd_free(c);
}

/* A new reference to the cached record of doc id for tx's revision, or
 * NULL. */
static docinfo *doccache_get(wd_txn *tx, const char *id, size_t il) {
  wd_doccache *c = __atomic_load_n(&tx->db->doccache, __ATOMIC_ACQUIRE);
  if (tx->write || !c) return NULL;
  docinfo *d = NULL;
  pthread_mutex_lock(&c->mu);
  if (c->rev == tx->rev && (d = wd_hmap_get(&c->map, id, il)))
    __atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
  pthread_mutex_unlock(&c->mu);
  return d;
}

/* Offer d (decoded in tx's snapshot) to the cache, which takes a reference
 * if it keeps it.  Failing to cache is never an error. */
static void doccache_offer(wd_txn *tx, const char *id, size_t il, docinfo *d) {
  warden *db = tx->db;
  if (tx->write) return;
  wd_doccache *c = store_lazy_cache(db, (void **)&db->doccache, sizeof *c);
  if (!c) return;
  pthread_mutex_lock(&c->mu);
  if (tx->rev > c->rev) { /* a newer revision: what is cached is stale */
    WD_HMAP_FOREACH(&c->map, e) doc_unref(e->val);
    wd_hmap_free(&c->map);
    c->rev = tx->rev;
  }
  if (tx->rev == c->rev && c->map.n < DOCCACHE_MAX && !wd_hmap_get(&c->map, id, il)) {
    __atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
    if (wd_hmap_put(&c->map, id, il, d, NULL)) __atomic_sub_fetch(&d->refs, 1, __ATOMIC_RELAXED);
  }
  pthread_mutex_unlock(&c->mu);
}

void warden_results_free(warden_results *r) {
  if (!r) return;
  for (size_t i = 0; r->q && i < r->nq; i++) {
    wd_free(r->q[i].hits);
    wd_free(r->q[i].plan);
  }
  wd_free(r->q);
  WD_HMAP_FOREACH(&r->docs, e) doc_unref(e->val);
  wd_hmap_free(&r->docs);
  for (size_t i = 0; i < r->ntexts; i++) wd_free(r->texts[i]);
  wd_free(r->texts);
  wd_free(r);
}

uint64_t warden_results_revision(const warden_results *r) { return r ? r->revision : 0; }
size_t warden_results_nqueries(const warden_results *r) { return r ? r->nq : 0; }
size_t warden_results_count(const warden_results *r, size_t qi) {
  return r && qi < r->nq ? r->q[qi].n : 0;
}
const warden_hit *warden_results_hit(const warden_results *r, size_t qi, size_t i) {
  if (!r || qi >= r->nq || i >= r->q[qi].n) return NULL;
  return &r->q[qi].hits[i];
}
int warden_results_degraded(const warden_results *r, size_t qi) {
  return r && qi < r->nq ? r->q[qi].degraded : 0;
}
const char *warden_results_plan(const warden_results *r, size_t qi) {
  return r && qi < r->nq ? r->q[qi].plan : NULL;
}

static char *own(warden_results *r, const char *s, size_t n) {
  if (r->ntexts == r->captexts) {
    size_t nc = r->captexts ? r->captexts * 2 : 32;
    char **nv = wd_realloc(r->texts, nc * sizeof *nv);
    if (!nv) return NULL;
    r->texts = nv;
    r->captexts = nc;
  }
  char *d = wd_strndup(s, n);
  if (d) r->texts[r->ntexts++] = d;
  return d;
}

char *wd_json_dup(const json_t *j) {
  char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
  if (!s) return NULL;
  char *d = wd_strdup(s);
  free(s);
  return d;
}

warden_results *wd_results_new(size_t nq, uint64_t revision) {
  warden_results *r = wd_calloc(1, sizeof *r);
  if (!r) return NULL;
  r->nq = nq;
  r->revision = revision;
  r->q = wd_calloc(nq ? nq : 1, sizeof *r->q);
  if (!r->q) {
    wd_free(r);
    return NULL;
  }
  return r;
}

docinfo *wd_results_doc(const warden_results *r, const char *doc_id) {
  return wd_hmap_get(&r->docs, doc_id, strlen(doc_id));
}

/* Fill hit h from slot s in the snapshot. */
int wd_results_materialise(wd_txn *tx, warden_results *r, uint32_t s, float score,
                           warden_hit *h) {
  uint32_t ord;
  const char *id, *text;
  size_t il, tl;
  int rc = store_chunk_get(tx, s, &ord, &id, &il, &text, &tl);
  if (rc == WARDEN_ENOTFOUND)
    return wd_err(tx->db, WARDEN_ECORRUPT, "slot %u is allowed but has no chunk record", s);
  if (rc) return rc;
  docinfo *d = wd_hmap_get(&r->docs, id, il);
  if (!d && (d = doccache_get(tx, id, il)) && wd_hmap_put(&r->docs, id, il, d, NULL)) {
    doc_unref(d);
    return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
  }
  if (!d) {
    json_t *rec;
    if ((rc = store_doc_get(tx, id, il, &rec))) {
      if (rc == WARDEN_ENOTFOUND)
        rc = wd_err(tx->db, WARDEN_ECORRUPT, "chunk %u names a missing document", s);
      return rc;
    }
    d = wd_calloc(1, sizeof *d);
    if (d) {
      d->refs = 1;
      d->source = wd_strdup(json_string_value(json_object_get(rec, "source")));
      d->namespace_ = wd_strdup(json_string_value(json_object_get(rec, "namespace")));
      d->metadata = wd_json_dup(json_object_get(rec, "metadata"));
      d->allow = json_incref(json_object_get(rec, "allow"));
      d->deny = json_incref(json_object_get(rec, "deny"));
    }
    json_decref(rec);
    if (!d || !d->source || !d->namespace_ || !d->metadata ||
        wd_hmap_put(&r->docs, id, il, d, NULL)) {
      doc_unref(d);
      return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
    }
    doccache_offer(tx, id, il, d);
  }
  h->doc_id = own(r, id, il);
  h->text = own(r, text, tl);
  if (!h->doc_id || !h->text) return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
  h->chunk = ord;
  h->score = score;
  h->source = d->source;
  h->namespace_ = d->namespace_;
  h->metadata_json = d->metadata;
  return 0;
}

/* Document behind a slot, through the results' document cache. */
int wd_results_slot_doc(wd_txn *tx, warden_results *r, uint32_t s, const char **id, size_t *il,
                        docinfo **dout) {
  warden_hit h;
  memset(&h, 0, sizeof h);
  int rc = wd_results_materialise(tx, r, s, 0, &h); /* caches the document */
  if (rc) return rc;
  *id = h.doc_id;
  *il = strlen(h.doc_id);
  *dout = wd_hmap_get(&r->docs, *id, *il);
  return 0;
}
