/*
 * query.c -- plan and run a permission-aware top-k query.
 *
 * One query, end to end, inside one LMDB read snapshot:
 *   1. who   = the principal + caller groups + directory groups (acl/)
 *   2. allowed = readable(who) AND namespace mask AND filter bitmap
 *      -- all bitmap algebra; no document is looked at one by one;
 *   3. nearest allowed vectors: the exact scan consults `allowed` inside
 *      the scan (index/scan.c), so disallowed chunks cost nothing;
 *   4. the hits are materialised (text, source, metadata) from the same
 *      snapshot, so a result never mixes two revisions.
 * Because everything happens in one snapshot that began after any write
 * that returned before the query started, a revoke that has returned is
 * never missed.
 *
 * Threading: warden_query is reentrant; all state lives on the stack or in
 * the results object.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "acl/acl.h"
#include "acl/audit.h"
#include "engine/embed.h"
#include "acl/resolver.h"
#include "engine/search.h"
#include "engine/filter.h"
#include "engine/hybrid.h"
#include "index/kernels.h"
#include "engine/lexical.h"
#include "index/scan.h"
#include "engine/store.h"

#define WD_MAX_K WARDEN_MAX_K
#define WD_MAX_NQ 100000

/* What a query needs from a document record, decoded once.  Immutable
 * once built and shared by reference count: between the results that hold
 * it and the handle's document cache. */
typedef struct docinfo {
  char *source, *namespace_, *metadata;
  json_t *allow; /* for audit evidence and the record re-check */
  json_t *deny;
  int refs;      /* atomic */
} docinfo;

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

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
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

static char *json_str(const json_t *j) {
  char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
  if (!s) return NULL;
  char *d = wd_strdup(s);
  free(s);
  return d;
}

/* The derived-bitmap cache key of a query's allowed set (before any
 * resolver pre-filter): NUL, 'A', the counts of groups and namespaces,
 * then the principal, groups and namespaces NUL-terminated, then the
 * filter text.  The counts make the encoding unambiguous.  NULL (do not
 * cache) when long or out of memory. */
static char *allowed_key(const warden_query_opts *o, size_t *len) {
  size_t n = 2 + 8 + strlen(o->principal) + 1 + (o->filter ? strlen(o->filter) : 0);
  for (size_t i = 0; i < o->ngroups; i++) n += strlen(o->groups[i]) + 1;
  for (size_t i = 0; i < o->nnamespaces; i++) n += strlen(o->namespaces[i]) + 1;
  if (n > 8192) return NULL;
  char *k = wd_malloc(n), *p = k;
  if (!k) return NULL;
  uint32_t ng = (uint32_t)o->ngroups, nn = (uint32_t)o->nnamespaces;
  *p++ = 0;
  *p++ = 'A';
  memcpy(p, &ng, 4);
  memcpy(p + 4, &nn, 4);
  p += 8;
  size_t l = strlen(o->principal) + 1;
  memcpy(p, o->principal, l);
  p += l;
  for (size_t i = 0; i < o->ngroups; i++) {
    l = strlen(o->groups[i]) + 1;
    memcpy(p, o->groups[i], l);
    p += l;
  }
  for (size_t i = 0; i < o->nnamespaces; i++) {
    l = strlen(o->namespaces[i]) + 1;
    memcpy(p, o->namespaces[i], l);
    p += l;
  }
  if (o->filter) memcpy(p, o->filter, strlen(o->filter));
  *len = n;
  return k;
}

/* Fill hit h from slot s in the snapshot. */
static int materialise(wd_txn *tx, warden_results *r, uint32_t s, float score,
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
      d->metadata = json_str(json_object_get(rec, "metadata"));
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

/* ------------------------------------------------------ filter index */

typedef struct fx_ctx {
  wd_txn *tx;
} fx_ctx;

static wd_type fx_type(void *ctx, const char *key) {
  return store_field_type(((fx_ctx *)ctx)->tx, key);
}

/* Only keys declared in warden.yaml have a public type (filter.h). */
static int fx_public(void *ctx, const char *key) {
  const wd_config *cfg = &((fx_ctx *)ctx)->tx->db->cfg;
  for (size_t i = 0; i < cfg->nmeta; i++)
    if (strcmp(cfg->meta[i].key, key) == 0) return 1;
  return 0;
}

static int fx_eq(void *ctx, const char *key, const wd_value *v, roaring_bitmap_t *acc) {
  fx_ctx *c = ctx;
  if (strlen(key) > WD_MAX_KEYLEN) return 0;
  if (v->type == WD_T_STRING && v->len > WD_MAX_STRVAL) return 0; /* cannot be stored */
  char kb[512];
  size_t kl = store_vkey(kb, key, v);
  return store_bm_or(c->tx, kb, kl, acc);
}

/* Walk keys kind+field+"\0"+top nbytes of the encoding, for encodings
 * (truncated to nbytes) in [lo, hi]. */
static int walk_level(wd_txn *tx, const char *field, char kind, int nbytes, uint64_t lo,
                      uint64_t hi, roaring_bitmap_t *acc) {
  if (lo > hi) return 0;
  char lk[512], hk[512];
  int shift = 8 * (8 - nbytes);
  size_t ll = store_nkey(lk, kind, field, lo << shift, nbytes);
  size_t hl = store_nkey(hk, kind, field, hi << shift, nbytes);
  size_t plen = strlen(field) > WD_MAX_KEYLEN ? WD_MAX_KEYLEN + 2 : strlen(field) + 2;
  return store_bm_walk(tx, lk, ll, plen, hk, hl, acc, NULL, NULL);
}

/* Range [lo, hi] over encodings, decomposed like a segment tree: exact
 * values at the ragged edges, 256-value buckets next, 65536-value buckets
 * in the middle -- at most ~1000 bitmaps whatever the number of distinct
 * values in the range.  Half-open arithmetic in 128 bits: no overflow at
 * the ends of the u64 range. */
static int range_enc(wd_txn *tx, const char *field, uint64_t lo, uint64_t hi,
                     roaring_bitmap_t *acc) {
  typedef unsigned __int128 u128;
  if (lo > hi) return 0;
  u128 L = lo, H = (u128)hi + 1; /* [L, H) */
  int rc;
  if (H - L < 512) return walk_level(tx, field, 'V', 8, lo, hi, acc);
  u128 bL = (L + 255) >> 8, bH = H >> 8; /* full 256-buckets [bL, bH) */
  if (bL >= bH) return walk_level(tx, field, 'V', 8, lo, hi, acc);
  if (L < (bL << 8) && (rc = walk_level(tx, field, 'V', 8, lo, (uint64_t)((bL << 8) - 1), acc)))
    return rc;
  if ((bH << 8) < H && (rc = walk_level(tx, field, 'V', 8, (uint64_t)(bH << 8), hi, acc)))
    return rc;
  u128 cL = (bL + 255) >> 8, cH = bH >> 8; /* full 65536-buckets [cL, cH) */
  if (cL >= cH) return walk_level(tx, field, 'B', 7, (uint64_t)bL, (uint64_t)(bH - 1), acc);
  if (bL < (cL << 8) &&
      (rc = walk_level(tx, field, 'B', 7, (uint64_t)bL, (uint64_t)((cL << 8) - 1), acc)))
    return rc;
  if ((cH << 8) < bH &&
      (rc = walk_level(tx, field, 'B', 7, (uint64_t)(cH << 8), (uint64_t)(bH - 1), acc)))
    return rc;
  return walk_level(tx, field, 'C', 6, (uint64_t)cL, (uint64_t)(cH - 1), acc);
}

static int fx_range(void *ctx, const char *key, const wd_value *lo, int lo_incl,
                    const wd_value *hi, int hi_incl, roaring_bitmap_t *acc) {
  fx_ctx *c = ctx;
  if (strlen(key) > WD_MAX_KEYLEN) return 0;
  uint64_t l = 0, h = UINT64_MAX;
  if (lo) {
    l = store_num_enc(lo);
    if (!lo_incl) {
      if (l == UINT64_MAX) return 0;
      l++;
    }
  }
  if (hi) {
    h = store_num_enc(hi);
    if (!hi_incl) {
      if (h == 0) return 0;
      h--;
    }
  }
  return range_enc(c->tx, key, l, h, acc);
}

typedef struct match_ctx {
  size_t plen;
  const char *needle;
  size_t nlen;
} match_ctx;

static int take_contains(const char *k, size_t kl, void *ctx) {
  match_ctx *m = ctx;
  return memmem(k + m->plen, kl - m->plen, m->needle, m->nlen) != NULL;
}

static int fx_prefix(void *ctx, const char *key, const char *p, size_t n,
                     roaring_bitmap_t *acc) {
  fx_ctx *c = ctx;
  size_t fl = strlen(key);
  if (fl > WD_MAX_KEYLEN || n > WD_MAX_STRVAL) return 0;
  char kb[512];
  kb[0] = 'V';
  memcpy(kb + 1, key, fl);
  kb[fl + 1] = 0;
  memcpy(kb + fl + 2, p, n);
  return store_bm_walk(c->tx, kb, fl + 2 + n, fl + 2 + n, NULL, 0, acc, NULL, NULL);
}

static int fx_contains(void *ctx, const char *key, const char *needle, size_t n,
                       roaring_bitmap_t *acc) {
  fx_ctx *c = ctx;
  size_t fl = strlen(key);
  if (fl > WD_MAX_KEYLEN || n > WD_MAX_STRVAL) return 0;
  char kb[512];
  kb[0] = 'V';
  memcpy(kb + 1, key, fl);
  kb[fl + 1] = 0;
  match_ctx m = {fl + 2, needle, n};
  return store_bm_walk(c->tx, kb, fl + 2, fl + 2, NULL, 0, acc, take_contains, &m);
}


/* ------------------------------------------------------------- query */

static int validate(warden *db, const float *vecs, size_t nq, const warden_query_opts *o) {
  char why[300];
  if (!o || !o->principal) return wd_err(db, WARDEN_EINVAL, "query: a principal is required");
  if (wd_principal_check(o->principal, strlen(o->principal), 0, why, sizeof why))
    return wd_err(db, WARDEN_EINVAL, "query: principal: %s", why);
  for (size_t i = 0; i < o->ngroups; i++)
    if (!o->groups || !o->groups[i] ||
        wd_principal_check(o->groups[i], strlen(o->groups[i]), 0, why, sizeof why) ||
        strncmp(o->groups[i], "group:", 6) != 0)
      return wd_err(db, WARDEN_EINVAL, "query: groups[%zu]: %s", i,
                    o->groups && o->groups[i] ? "expected group:NAME" : "NULL");
  if (o->nnamespaces && !o->namespaces) return wd_err(db, WARDEN_EINVAL, "query: namespaces is NULL");
  if (o->k > WD_MAX_K) return wd_err(db, WARDEN_EINVAL, "query: k must be 1..%d", WD_MAX_K);
  /* On-behalf-of: the agent follows the principal's grammar; its groups
   * the groups' (agent_groups without an agent is a caller bug). */
  if (o->agent && wd_principal_check(o->agent, strlen(o->agent), 0, why, sizeof why))
    return wd_err(db, WARDEN_EINVAL, "query: agent: %s", why);
  if (o->nagent_groups && !o->agent)
    return wd_err(db, WARDEN_EINVAL, "query: agent_groups: given without an agent");
  for (size_t i = 0; i < o->nagent_groups; i++)
    if (!o->agent_groups || !o->agent_groups[i] ||
        wd_principal_check(o->agent_groups[i], strlen(o->agent_groups[i]), 0, why, sizeof why) ||
        strncmp(o->agent_groups[i], "group:", 6) != 0)
      return wd_err(db, WARDEN_EINVAL, "query: agent_groups[%zu]: %s", i,
                    o->agent_groups && o->agent_groups[i] ? "expected group:NAME" : "NULL");
  /* Fields of warden_query_opts this build does not implement yet. */
  if (!(o->target_recall >= 0 && o->target_recall <= 1)) /* 0: index.target_recall */
    return wd_err(db, WARDEN_EINVAL, "query: target_recall: must be in (0, 1], or 0 for the default");
  /* lexical / hybrid modes (engine/hybrid.h): one query text */
  if (o->mode < WARDEN_MODE_SEMANTIC || o->mode > WARDEN_MODE_HYBRID)
    return wd_err(db, WARDEN_EINVAL, "query: mode: expected semantic, lexical or hybrid (%d)", o->mode);
  if (o->mode != WARDEN_MODE_SEMANTIC) {
    if (!o->text)
      return wd_err(db, WARDEN_EINVAL, "query: mode: lexical and hybrid need a query text");
    if (nq > 1)
      return wd_err(db, WARDEN_EINVAL, "query: mode: lexical and hybrid take one query, not a batch");
    if (o->mode == WARDEN_MODE_LEXICAL || !vecs) return 0; /* no vector to check */
  }
  if (o->strategy < WARDEN_STRATEGY_AUTO || o->strategy > WARDEN_STRATEGY_ANN)
    return wd_err(db, WARDEN_EINVAL, "query: unknown strategy %d", o->strategy);
  if (nq == 0 || nq > WD_MAX_NQ || !vecs)
    return wd_err(db, WARDEN_EINVAL, "query: 1..%d query vectors required", WD_MAX_NQ);
  size_t d = db->cfg.dim;
  for (size_t q = 0; q < nq; q++)
    if (wd_vec_check(vecs + q * d, d, db->cfg.metric, why, sizeof why))
      return wd_err(db, WARDEN_EDATA, "query %zu: %s", q, why);
  return 0;
}

/* Work bound of the resolver over-fetch: at most this many candidates are
 * checked per query (documented in the README); hitting it is reported in
 * the plan as "work_bound_hit" and the query returns what passed. */
static size_t work_bound(size_t k) { return k * 50 > 5000 ? k * 50 : 5000; }

/* Document behind a slot, through the results' document cache. */
static int slot_doc(wd_txn *tx, warden_results *r, uint32_t s, const char **id,
                    size_t *il, docinfo **dout) {
  warden_hit h;
  memset(&h, 0, sizeof h);
  int rc = materialise(tx, r, s, 0, &h); /* caches the document */
  if (rc) return rc;
  *id = h.doc_id;
  *il = strlen(h.doc_id);
  *dout = wd_hmap_get(&r->docs, *id, *il);
  return 0;
}

typedef struct rstate {     /* resolver state shared by a batch's queries */
  roaring_bitmap_t *rejected; /* slots whose document the resolver refused */
  roaring_bitmap_t *failed;   /* of which refused because the resolver failed */
  roaring_bitmap_t *passed;   /* slots whose document the resolver allowed */
  wd_hmap evidence;           /* doc_id -> evidence string (owned) */
  wd_hmap failed_docs;        /* doc_id -> (void*)1 failed (not denied) */
  uint64_t denied, errors, timeouts;
  const wd_strlist *agent;    /* on-behalf-of: the agent's expanded set, or NULL */
  wd_hmap agent_evidence;     /* doc_id -> the agent's evidence (owned) */
  int64_t budget_end;         /* end of the call's resolver time (resolver.c) */
} rstate;

/* On-behalf-of: the documents the principal's check allowed are checked
 * again for the agent; a document passes only if both are allowed, and a
 * failure of the agent's check is a failure (deny, degraded).  aev[j]
 * receives the agent's evidence for items[j]. */
static int agent_round(warden *db, wd_txn *tx, const wd_strlist *agent,
                       const warden_resource *items, size_t m, unsigned char *out, char **aev,
                       int64_t *budget_end) {
  warden_resource *sub = wd_calloc(m ? m : 1, sizeof *sub);
  unsigned char *aout = wd_malloc(m ? m : 1);
  char **sev = wd_calloc(m ? m : 1, sizeof *sev);
  size_t *at = wd_calloc(m ? m : 1, sizeof *at);
  int rc = 0;
  size_t ns = 0;
  if (!sub || !aout || !sev || !at) {
    rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t j = 0; j < m; j++)
    if (out[j] == WD_RES_ALLOW) {
      at[ns] = j;
      sub[ns++] = items[j];
    }
  /* the agent's check spends the same per-query resolver budget */
  if (ns && (rc = wd_resolver_check_until(db->resolver, tx, agent, sub, ns, aout, sev, budget_end)))
    goto done;
  for (size_t t = 0; t < ns; t++) {
    out[at[t]] = aout[t];
    aev[at[t]] = sev[t];
    sev[t] = NULL;
  }
done:
  for (size_t t = 0; sev && t < m; t++) wd_free(sev[t]);
  wd_free(sub);
  wd_free(aout);
  wd_free(sev);
  wd_free(at);
  return rc;
}

/* Check the candidates' documents not yet decided; update the state. */
static int resolve_round(warden *db, wd_txn *tx, warden_results *r, const wd_strlist *who,
                         rstate *rs, const wd_hit_i *c, size_t n, int *degraded,
                         uint64_t *checked) {
  warden_resource *items = wd_calloc(n ? n : 1, sizeof *items);
  unsigned char *out = wd_malloc(n ? n : 1);
  char **ev = wd_calloc(n ? n : 1, sizeof *ev);
  char **aev = wd_calloc(n ? n : 1, sizeof *aev);
  uint32_t *first = wd_calloc(n ? n : 1, sizeof *first);
  int rc = 0;
  size_t m = 0;
  if (!items || !out || !ev || !aev || !first) {
    rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n && !rc; i++) {
    if (roaring_bitmap_contains(rs->passed, c[i].id) || roaring_bitmap_contains(rs->rejected, c[i].id))
      continue;
    const char *id;
    size_t il;
    docinfo *d;
    if ((rc = slot_doc(tx, r, c[i].id, &id, &il, &d))) break;
    int dup = 0;
    for (size_t j = 0; j < m && !dup; j++) dup = strcmp(items[j].doc_id, id) == 0;
    if (dup) continue;
    items[m].doc_id = id;
    items[m].source = d->source;
    first[m] = c[i].id;
    m++;
  }
  if (rc || m == 0) goto done;
  *checked += m;
  if ((rc = wd_resolver_check_until(db->resolver, tx, who, items, m, out, ev, &rs->budget_end)))
    goto done;
  if (rs->agent && (rc = agent_round(db, tx, rs->agent, items, m, out, aev, &rs->budget_end)))
    goto done;
  /* apply per document to every candidate chunk of it */
  for (size_t j = 0; j < m; j++) {
    int ok = out[j] == WD_RES_ALLOW;
    if (out[j] == WD_RES_DENY) rs->denied++;
    if (out[j] == WD_RES_ERROR) rs->errors++;
    if (out[j] == WD_RES_TIMEOUT) rs->timeouts++;
    if (out[j] == WD_RES_ERROR || out[j] == WD_RES_TIMEOUT) *degraded = 1;
    for (size_t i = 0; i < n; i++) {
      const char *id;
      size_t il;
      docinfo *d;
      if (roaring_bitmap_contains(rs->passed, c[i].id) || roaring_bitmap_contains(rs->rejected, c[i].id))
        continue;
      if ((rc = slot_doc(tx, r, c[i].id, &id, &il, &d))) goto done;
      if (strcmp(id, items[j].doc_id) != 0) continue;
      roaring_bitmap_add(ok ? rs->passed : rs->rejected, c[i].id);
      if (out[j] == WD_RES_ERROR || out[j] == WD_RES_TIMEOUT) roaring_bitmap_add(rs->failed, c[i].id);
    }
    if (ev[j]) {
      void *old = NULL;
      if (wd_hmap_put(&rs->evidence, items[j].doc_id, strlen(items[j].doc_id), ev[j], &old)) {
        rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
        goto done;
      }
      wd_free(old);
      ev[j] = NULL;
    }
    if (aev[j]) {
      void *old = NULL;
      if (wd_hmap_put(&rs->agent_evidence, items[j].doc_id, strlen(items[j].doc_id), aev[j], &old)) {
        rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
        goto done;
      }
      wd_free(old);
      aev[j] = NULL;
    }
  }
done:
  for (size_t j = 0; ev && j < n; j++) wd_free(ev[j]);
  for (size_t j = 0; aev && j < n; j++) wd_free(aev[j]);
  wd_free(aev);
  wd_free(items);
  wd_free(out);
  wd_free(ev);
  wd_free(first);
  return rc;
}

/* rankfix -- BM25 statistics with a resolver.  A principal's scores must
 * not depend on documents it cannot read, and the resolver's denials count
 * as cannot-read; but the rounds only check the candidates they return,
 * so N, df and avgdl over "allowed minus rejected" would still count
 * documents the resolver would deny.  So before the first round:
 *   - if the allowed set has at most `bound` chunks, every document of it
 *     is checked and the statistics are over allowed minus what the
 *     resolver refused: exactly the readable set (plan "lexical_stats":
 *     "resolver-checked");
 *   - otherwise the documents holding a query term are checked, in slot
 *     order, until `bound` documents were checked, and the statistics are
 *     over the checked documents that passed ("resolver-checked-subset"):
 *     still nothing denied enters them, at the price of a smaller N.
 * *stats (roaring_bitmap_free) is that set; *exact says which case. */
static int lex_precheck(warden *db, wd_txn *tx, warden_results *r, const wd_strlist *who,
                        rstate *rs, const roaring_bitmap_t *allowed, const char *text,
                        size_t bound, roaring_bitmap_t **stats, int *exact, int *degraded,
                        uint64_t *checked) {
  *stats = NULL;
  *exact = roaring_bitmap_get_cardinality(allowed) <= bound;
  roaring_bitmap_t *pool = roaring_bitmap_create();
  if (!pool) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  int rc = 0;
  if (*exact) {
    roaring_bitmap_or_inplace(pool, allowed);
  } else {
    if ((rc = wd_lex_term_slots(db, tx, text, pool))) goto done;
    roaring_bitmap_and_inplace(pool, allowed);
  }
  enum { BATCH = 64 };
  wd_hit_i b[BATCH];
  size_t nb = 0;
  roaring_uint32_iterator_t *it = roaring_create_iterator(pool);
  if (!it) {
    rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
    goto done;
  }
  for (;;) {
    int more = it->has_value;
    if (more) {
      b[nb].id = it->current_value;
      b[nb++].dist = 0;
      roaring_advance_uint32_iterator(it);
    }
    if (nb == BATCH || (!more && nb)) {
      if (*checked >= bound) { /* the work bound: what is left stays unchecked */
        *exact = 0;
        break;
      }
      if ((rc = resolve_round(db, tx, r, who, rs, b, nb, degraded, checked))) break;
      nb = 0;
    }
    if (!more) break;
  }
  roaring_free_uint32_iterator(it);
  if (rc) goto done;
  *stats = *exact ? roaring_bitmap_andnot(allowed, rs->rejected)
                  : roaring_bitmap_and(allowed, rs->passed);
  if (!*stats) rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
done:
  roaring_bitmap_free(pool);
  return rc;
}

/* Defence in depth: the stored-ACL rule and the namespace prefixes,
 * evaluated again on the document record of every hit, independently of
 * the bitmaps that selected it.  A disagreement means damaged storage: the
 * query fails closed. */
static int record_allows(const wd_strlist *who, const docinfo *d, const warden_query_opts *o) {
  int ok = 0;
  size_t i;
  const json_t *p;
  json_array_foreach(d->allow, i, p) {
    const char *s = json_string_value(p);
    if (s && (strcmp(s, "*") == 0 || wd_strlist_has(who, s, strlen(s)))) ok = 1;
  }
  json_array_foreach(d->deny, i, p) {
    const char *s = json_string_value(p);
    if (s && wd_strlist_has(who, s, strlen(s))) ok = 0;
  }
  if (!ok || !o->nnamespaces) return ok;
  for (size_t j = 0; j < o->nnamespaces; j++) {
    char ns[WD_MAX_NAMESPACE + 1], why[300];
    if (wd_namespace_normalize(o->namespaces[j], ns, why, sizeof why)) continue;
    size_t n = strlen(ns);
    if (n == 1 || (strncmp(d->namespace_, ns, n) == 0 &&
                   (d->namespace_[n] == 0 || d->namespace_[n] == '/')))
      return 1;
  }
  return 0;
}

/* On-behalf-of: the principal and the agent must both pass the record. */
static int record_allows2(const wd_strlist *who, const wd_strlist *agent, const docinfo *d,
                          const warden_query_opts *o) {
  return record_allows(who, d, o) && (!agent || record_allows(agent, d, o));
}

/* The allow entry that admitted this document for who, as a chain. */
static char *acl_evidence(const wd_strlist *who, const json_t *allow) {
  size_t i;
  const json_t *p;
  json_array_foreach(allow, i, p) {
    const char *s = json_string_value(p);
    if (s && strcmp(s, "*") == 0) return wd_strdup("*");
    for (size_t j = 0; s && j < who->n; j++)
      if (strcmp(who->v[j], s) == 0) return acl_chain(who, j);
  }
  return NULL;
}

/* On-behalf-of, for --explain: {"principal":..,"groups":[expanded]} of
 * the agent as JSON (wd_free), or NULL when out of memory. */
static char *plan_agent(const warden_query_opts *o, const wd_strlist *agent) {
  json_t *g = json_array();
  for (size_t i = 1; g && i < agent->n; i++) json_array_append_new(g, json_string(agent->v[i]));
  json_t *a = json_string(o->agent);
  if (!a) a = json_string("(invalid UTF-8)");
  json_t *j = json_object();
  if (j && (json_object_set_new(j, "principal", a) | json_object_set_new(j, "groups", g))) {
    json_decref(j);
    j = NULL;
  } else if (!j) {
    json_decref(a);
    json_decref(g);
  }
  char *s = j ? json_str(j) : NULL;
  json_decref(j);
  return s;
}

/* warden_query, or with only_doc set (warden_fetch) the same query with
 * the allowed set narrowed to that document's chunks. */
static int query_run(warden *db, const float *vecs, size_t nq, const warden_query_opts *o,
                     const char *only_doc, warden_results **out);
static int only_doc_slots(wd_txn *tx, const char *id, roaring_bitmap_t *allowed);

int warden_query(warden *db, const float *vecs, size_t nq, const warden_query_opts *o,
                 warden_results **out) {
  return query_run(db, vecs, nq, o, NULL, out);
}

static int query_run(warden *db, const float *vecs, size_t nq, const warden_query_opts *o,
                     const char *only_doc, warden_results **out) {
  if (!db || !out) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_err_clear(db);
  if ((rc = validate(db, vecs, nq, o))) return rc;
  /* lexical mode needs no vector; hybrid without one embeds the text */
  float *own_vec = NULL;
  if (o->mode != WARDEN_MODE_SEMANTIC && (o->mode == WARDEN_MODE_LEXICAL || !vecs)) {
    if (o->mode == WARDEN_MODE_HYBRID && db->cfg.embedder != WD_EMBEDDER_HASH)
      return wd_err(db, WARDEN_EINVAL,
                    "query: hybrid mode needs a query vector or an embedder (embedder.type)");
    own_vec = wd_calloc(db->cfg.dim, sizeof(float));
    if (!own_vec) return wd_err(db, WARDEN_ENOMEM, "out of memory");
    if (o->mode == WARDEN_MODE_HYBRID) wd_embed_hash(o->text, strlen(o->text), own_vec, db->cfg.dim);
    if (o->mode == WARDEN_MODE_LEXICAL || db->cfg.metric == WD_METRIC_COSINE) {
      double n2 = 0;
      for (size_t i = 0; i < db->cfg.dim; i++) n2 += (double)own_vec[i] * own_vec[i];
      if (!(n2 > 0)) own_vec[0] = 1; /* a vector without words: any non-zero one */
    }
    vecs = own_vec;
    nq = 1;
  }
  wd_fused fz;
  memset(&fz, 0, sizeof fz);
  double t0 = now_ms();
  size_t k = o->k ? o->k : 10, dim = db->cfg.dim;
  char ferr[512];
  wd_filter *flt = NULL;
  if (o->filter) {
    int frc = wd_filter_parse(o->filter, strlen(o->filter), &flt, ferr, sizeof ferr);
    if (frc) {
      wd_free(own_vec);
      return wd_err(db, frc == WARDEN_ENOMEM ? WARDEN_ENOMEM : WARDEN_EDATA, "%s", ferr);
    }
  }
  int active = wd_resolver_active(db->resolver);
  size_t kmax = active ? work_bound(k) + k : k;
  float *qv = wd_malloc(nq * dim * sizeof(float));
  warden_results *r = wd_calloc(1, sizeof *r);
  wd_topk *heaps = wd_calloc(nq, sizeof *heaps);
  wd_hit_i *sorted = wd_malloc(kmax * sizeof *sorted);
  roaring_bitmap_t *allowed = NULL, *live = roaring_bitmap_create();
  rstate rs;
  memset(&rs, 0, sizeof rs);
  roaring_bitmap_t *lstats = NULL; /* rankfix: BM25 statistics set with a resolver */
  rs.rejected = roaring_bitmap_create();
  rs.failed = roaring_bitmap_create();
  rs.passed = roaring_bitmap_create();
  wd_strlist who, awho; /* awho: the agent's expanded set (on-behalf-of) */
  memset(&who, 0, sizeof who);
  memset(&awho, 0, sizeof awho);
  wd_txn tx;
  int in_txn = 0;
  if (!qv || !r || !heaps || !sorted || !live || !rs.rejected || !rs.failed || !rs.passed) {
    rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
    goto out;
  }
  r->nq = nq;
  r->q = wd_calloc(nq, sizeof *r->q);
  if (!r->q) {
    rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
    goto out;
  }
  memcpy(qv, vecs, nq * dim * sizeof(float));
  if (db->cfg.metric == WD_METRIC_COSINE)
    for (size_t q = 0; q < nq; q++) {
      double n2 = 0;
      for (size_t i = 0; i < dim; i++) n2 += (double)qv[q * dim + i] * qv[q * dim + i];
      float inv = (float)(1.0 / sqrt(n2));
      for (size_t i = 0; i < dim; i++) qv[q * dim + i] *= inv;
    }
  for (size_t q = 0; q < nq; q++)
    if (wd_topk_init(&heaps[q], k)) {
      rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
      goto out;
    }
  if ((rc = store_read_begin(db, &tx))) goto out;
  in_txn = 1;
  r->revision = store_meta_u64(&tx, "revision");
  if (o->min_revision && r->revision < o->min_revision) {
    rc = wd_err(db, WARDEN_ESTALE,
                "query: the collection is at revision %llu, older than the required %llu",
                (unsigned long long)r->revision, (unsigned long long)o->min_revision);
    goto out;
  }
  /* 1-2: the allowed set.  Within one revision it is a function of the
   * caller's identity, the namespaces and the filter text: repeated
   * queries take it from the revision's cache (engine/store.c). */
  if ((rc = acl_expand(&tx, o->principal, o->groups, o->ngroups, &who))) goto out;
  if (o->agent) {
    if ((rc = acl_expand(&tx, o->agent, o->agent_groups, o->nagent_groups, &awho))) goto out;
    rs.agent = &awho;
  }
  char kb[8];
  if ((rc = store_bm_or(&tx, kb, store_key(kb, 'L', "", 0), live))) goto out;
  size_t akl = 0;
  char *akey = allowed_key(o, &akl);
  uint64_t set_key = 0; /* FNV-1a of akey: the planner's cache-recency key */
  if (akey) {
    set_key = 14695981039346656037ull;
    for (size_t i = 0; i < akl; i++) set_key = (set_key ^ (unsigned char)akey[i]) * 1099511628211ull;
    /* on-behalf-of: the scanned set also depends on the agent; NUL-separated */
    for (size_t i = 0; o->agent && i <= o->nagent_groups; i++) {
      const char *p = i ? o->agent_groups[i - 1] : o->agent;
      for (; *p; p++) set_key = (set_key ^ (unsigned char)*p) * 1099511628211ull;
      set_key = (set_key ^ 0) * 1099511628211ull;
    }
    if (!set_key) set_key = 1;
  }
  if (akey && store_derived_get(&tx, akey, akl, &allowed)) goto have_allowed;
  if ((rc = acl_readable(&tx, &who, &allowed))) goto allowed_out;
  if (o->nnamespaces) {
    roaring_bitmap_t *m;
    if ((rc = acl_namespace_mask(&tx, o->namespaces, o->nnamespaces, &m))) goto allowed_out;
    roaring_bitmap_and_inplace(allowed, m);
    roaring_bitmap_free(m);
  }
  if (flt) {
    fx_ctx fc = {&tx};
    wd_filter_index ix = {&fc, fx_type, fx_eq, fx_range, fx_prefix, fx_contains, live, fx_public};
    roaring_bitmap_t *fb;
    if ((rc = wd_filter_eval(flt, &ix, &fb, ferr, sizeof ferr))) {
      if (rc == WARDEN_EDATA) wd_err(db, rc, "%s", ferr);
      goto allowed_out;
    }
    roaring_bitmap_and_inplace(allowed, fb);
    roaring_bitmap_free(fb);
  }
  roaring_bitmap_and_inplace(allowed, live);
  if (akey) store_derived_put(&tx, akey, akl, allowed);
have_allowed:
allowed_out:
  wd_free(akey);
  if (rc) goto out;
  if (o->agent) { /* on-behalf-of: what both may read (the cached set is the principal's) */
    roaring_bitmap_t *ab = NULL;
    if ((rc = acl_readable(&tx, &awho, &ab))) goto out;
    roaring_bitmap_and_inplace(allowed, ab);
    roaring_bitmap_free(ab);
  }
  if (only_doc && (rc = only_doc_slots(&tx, only_doc, allowed))) goto out; /* warden_fetch */
  if (active) { /* grants: a pre-filter superset, still post-checked */
    roaring_bitmap_t *pf = NULL;
    if ((rc = wd_resolver_prefilter(db->resolver, &tx, &who, &pf))) goto out;
    if (pf) {
      roaring_bitmap_and_inplace(allowed, pf);
      roaring_bitmap_free(pf);
    }
    pf = NULL;
    if (o->agent && (rc = wd_resolver_prefilter(db->resolver, &tx, &awho, &pf))) goto out;
    if (pf) {
      roaring_bitmap_and_inplace(allowed, pf);
      roaring_bitmap_free(pf);
    }
  }
  roaring_bitmap_and_inplace(allowed, live); /* defensive: only live slots */
  uint64_t nallowed = roaring_bitmap_get_cardinality(allowed);
  uint64_t nlive = roaring_bitmap_get_cardinality(live);
  double t_plan = now_ms();
  wd_search_info si;
  memset(&si, 0, sizeof si);
  /* 3: nearest allowed vectors */
  if (!active) {
    if (o->mode != WARDEN_MODE_SEMANTIC)
      rc = wd_hybrid_round(db, &tx, o, qv, allowed, nallowed, nlive, set_key, heaps, &si, &fz,
                           NULL);
    else
      rc = wd_search_t(db, &tx, qv, nq, allowed, nallowed, nlive, o->strategy, o->target_recall,
                       set_key, heaps, &si);
    if (rc) goto out;
  }
  /* rankfix: lexical and hybrid with a resolver -- BM25's statistics over
   * a set holding no document the resolver refused (lex_precheck). */
  int lstats_exact = 0;
  uint64_t pre_checked = 0, pre_d = rs.denied, pre_e = rs.errors, pre_t = rs.timeouts;
  if (active && o->mode != WARDEN_MODE_SEMANTIC) {
    rs.budget_end = 0;
    int pdeg = 0;
    if ((rc = lex_precheck(db, &tx, r, &who, &rs, allowed, o->text ? o->text : "", work_bound(k),
                           &lstats, &lstats_exact, &pdeg, &pre_checked)))
      goto out;
  }
  double t_scan = now_ms();
  for (size_t q = 0; q < nq && !rc; q++) {
    size_t n = 0, rounds = 0;
    uint64_t checked = 0, denied0 = rs.denied, errors0 = rs.errors, timeouts0 = rs.timeouts;
    if (q == 0) { /* the first query also owns the lexical pre-check's verdicts */
      denied0 = pre_d;
      errors0 = pre_e;
      timeouts0 = pre_t;
    }
    /* in a batch, a document the resolver failed on for an earlier query
     * stays out of the later ones too: their answers are degraded as well */
    int work_hit = 0, degraded = active && !roaring_bitmap_is_empty(rs.failed);
    if (!active) {
      n = wd_topk_drain_sorted(&heaps[q], sorted);
    } else {
      /* over-fetch in rounds until k candidates pass the resolver or the
       * allowed set is exhausted; never pad */
      size_t kk = k;
      /* each query of a batch has its own resolver budget (the first one
       * shares it with the lexical pre-check) */
      if (q > 0 || !lstats) rs.budget_end = 0;
      if (q == 0) checked = pre_checked;
      for (;;) {
        rounds++;
        roaring_bitmap_t *cand = roaring_bitmap_andnot(allowed, rs.rejected);
        uint64_t ncand = roaring_bitmap_get_cardinality(cand);
        wd_topk h;
        if (!cand || wd_topk_init(&h, kk)) {
          if (cand) roaring_bitmap_free(cand);
          rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
          break;
        }
        rc = o->mode != WARDEN_MODE_SEMANTIC
                 ? wd_hybrid_round(db, &tx, o, qv + q * dim, cand, ncand, nlive, 0, &h, &si, &fz,
                                   lstats)
                 : wd_search_t(db, &tx, qv + q * dim, 1, cand, ncand, nlive, o->strategy,
                               o->target_recall, 0, &h, &si);
        roaring_bitmap_free(cand);
        if (!rc) n = wd_topk_drain_sorted(&h, sorted);
        wd_topk_free(&h);
        if (rc) break;
        if ((rc = resolve_round(db, &tx, r, &who, &rs, sorted, n, &degraded, &checked))) break;
        size_t pass = 0;
        for (size_t i = 0; i < n; i++) pass += roaring_bitmap_contains(rs.passed, sorted[i].id);
        if (pass >= k || n < kk) break; /* enough, or allowed set exhausted */
        if (checked >= work_bound(k)) {
          work_hit = 1;
          break;
        }
        /* size the next round from the observed pass rate */
        double rate = n ? (double)pass / (double)n : 0;
        if (rate < 0.02) rate = 0.02;
        size_t want = (size_t)((double)(k - pass) / rate * 1.5) + pass + k;
        if (want < kk * 2) want = kk * 2;
        if (want > kmax) want = kmax;
        if (want <= kk) {
          work_hit = 1;
          break;
        }
        kk = want;
      }
      if (rc) break;
      /* keep the candidates that passed, in rank order, at most k */
      size_t w = 0;
      int fused = o->mode != WARDEN_MODE_SEMANTIC;
      for (size_t i = 0; i < n && (fused || w < k); i++)
        if (roaring_bitmap_contains(rs.passed, sorted[i].id)) sorted[w++] = sorted[i];
      n = w;
      /* rankfix: ranks and the fused score among what passed only */
      if (fused &&
          (rc = wd_fused_renumber(db, &fz, o->mode == WARDEN_MODE_LEXICAL, sorted, w, k, &n)))
        break;
    }
    r->q[q].degraded = degraded;
    r->q[q].hits = wd_calloc(n ? n : 1, sizeof(warden_hit));
    wd_audit_hit *ah = db->audit ? wd_calloc(n ? n : 1, sizeof *ah) : NULL;
    /* on-behalf-of: the agent's evidence per hit, for the audit line */
    int obo = db->audit && o->agent;
    char **aacl = obo ? wd_calloc(n ? n : 1, sizeof *aacl) : NULL;
    const char **ares = obo ? wd_calloc(n ? n : 1, sizeof *ares) : NULL;
    if (!r->q[q].hits || (db->audit && !ah) || (obo && (!aacl || !ares))) {
      wd_free(aacl);
      wd_free((void *)ares);
      wd_free(ah);
      rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
      break;
    }
    for (size_t i = 0; i < n && !rc; i++) {
      warden_hit *h = &r->q[q].hits[i];
      rc = materialise(&tx, r, sorted[i].id, wd_dist_to_score(db->cfg.metric, sorted[i].dist), h);
      if (rc) break;
      if (o->mode != WARDEN_MODE_SEMANTIC) /* fused score, each side's rank */
        wd_fused_apply(&fz, (size_t)sorted[i].dist, sorted[i].id, h);
      docinfo *dinf = wd_hmap_get(&r->docs, h->doc_id, strlen(h->doc_id));
      if (!dinf || !record_allows2(&who, o->agent ? &awho : NULL, dinf, o)) {
        rc = wd_err(db, WARDEN_ECORRUPT,
                    "query: the bitmaps selected a chunk its document record does not "
                    "allow; refusing to answer (run warden check)");
        break;
      }
      r->q[q].n++;
      if (ah) {
        ah[i].doc_id = h->doc_id;
        ah[i].chunk = h->chunk;
        docinfo *d = wd_hmap_get(&r->docs, h->doc_id, strlen(h->doc_id));
        ah[i].acl_evidence = d && d->allow ? acl_evidence(&who, d->allow) : NULL;
        ah[i].resolver_evidence = wd_hmap_get(&rs.evidence, h->doc_id, strlen(h->doc_id));
        if (aacl) {
          aacl[i] = d && d->allow ? acl_evidence(&awho, d->allow) : NULL;
          ares[i] = wd_hmap_get(&rs.agent_evidence, h->doc_id, strlen(h->doc_id));
        }
      }
    }
    if (!rc && db->audit) {
      wd_audit_query aq = {o, &who, r->revision, q, ah, r->q[q].n, rs.denied - denied0,
                           rs.errors - errors0, rs.timeouts - timeouts0, degraded};
      wd_audit_agent ag = {&awho, (const char *const *)aacl, ares};
      rc = wd_audit_write_obo(db->audit, db, &aq, o->agent ? &ag : NULL);
    }
    for (size_t i = 0; ah && i < n; i++) wd_free((char *)ah[i].acl_evidence);
    for (size_t i = 0; aacl && i < n; i++) wd_free(aacl[i]);
    wd_free(aacl);
    wd_free((void *)ares);
    wd_free(ah);
    if (!rc && o->explain) {
      static const char *paths[] = {"sparse", "dense", "dense-sgemm"};
      char *ajson = o->agent ? plan_agent(o, &awho) : NULL; /* on-behalf-of */
      r->q[q].plan = wd_asprintf(
          "{\"strategy\":\"%s\"%s%s%s,\"simd\":\"%s\",\"k\":%zu,"
          "\"live_chunks\":%llu,\"allowed\":%llu,\"selectivity\":%.6g,"
          "\"scanned\":%llu,\"resolver\":\"%s\",\"rounds\":%zu,\"checked\":%llu,"
          "\"dropped_by_resolver\":%llu,\"resolver_failed\":%llu,\"work_bound\":%zu,"
          "\"work_bound_hit\":%s,\"revision\":%llu,\"plan_ms\":%.3f,\"scan_ms\":%.3f,"
          "\"batch\":%zu%s%s%s%s%s}",
          si.strategy ? si.strategy : "exact",
          !si.strategy || !strcmp(si.strategy, "exact") ? ",\"path\":\"" : "",
          !si.strategy || !strcmp(si.strategy, "exact") ? paths[si.path < 0 || si.path > 2 ? 0 : si.path] : "",
          !si.strategy || !strcmp(si.strategy, "exact") ? "\"" : "",
          wd_kernels_name(), k, (unsigned long long)nlive, (unsigned long long)nallowed,
          nlive ? (double)nallowed / (double)nlive : 0.0,
          (unsigned long long)(active ? si.scanned : si.scanned / nq),
          wd_resolver_name(db->resolver), rounds, (unsigned long long)checked,
          (unsigned long long)(rs.denied - denied0 + rs.errors - errors0 + rs.timeouts - timeouts0),
          (unsigned long long)(rs.errors - errors0 + rs.timeouts - timeouts0),
          active ? work_bound(k) : 0, work_hit ? "true" : "false",
          (unsigned long long)r->revision, t_plan - t0, (active ? now_ms() : t_scan) - t_plan, nq,
          !lstats ? "" : lstats_exact ? ",\"lexical_stats\":\"resolver-checked\""
                                      : ",\"lexical_stats\":\"resolver-checked-subset\"",
          si.detail[0] ? "," : "", si.detail, ajson ? ",\"agent\":" : "", ajson ? ajson : "");
      wd_free(ajson);
      if (!r->q[q].plan) rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
    }
  }
out:
  if (in_txn) store_read_end(&tx);
  wd_strlist_free(&who);
  wd_strlist_free(&awho);
  WD_HMAP_FOREACH(&rs.agent_evidence, e) wd_free(e->val);
  wd_hmap_free(&rs.agent_evidence);
  if (allowed) roaring_bitmap_free(allowed); /* CRoaring 0.2 rejects NULL */
  if (live) roaring_bitmap_free(live);
  if (lstats) roaring_bitmap_free(lstats);
  if (rs.rejected) roaring_bitmap_free(rs.rejected);
  if (rs.failed) roaring_bitmap_free(rs.failed);
  if (rs.passed) roaring_bitmap_free(rs.passed);
  WD_HMAP_FOREACH(&rs.evidence, e) wd_free(e->val);
  wd_hmap_free(&rs.evidence);
  wd_hmap_free(&rs.failed_docs);
  if (heaps)
    for (size_t q = 0; q < nq; q++) wd_topk_free(&heaps[q]);
  wd_free(heaps);
  wd_free(sorted);
  wd_free(qv);
  wd_free(own_vec);
  wd_fused_free(&fz);
  wd_filter_free(flt);
  if (rc) {
    warden_results_free(r);
    /* every failure carries a message, even from a helper that only
     * returned a code */
    if (!warden_errmsg(db)[0]) wd_err(db, rc, "query: %s", warden_strerror(rc));
    return rc;
  }
  *out = r;
  return 0;
}

/* ------------------------------------------------------------ fetch */

/* Narrow allowed to the slots of document id in tx's snapshot (empty when
 * there is no such document: a fetch does not tell "unknown" from "not
 * yours"). */
static int only_doc_slots(wd_txn *tx, const char *id, roaring_bitmap_t *allowed) {
  json_t *rec = NULL;
  roaring_bitmap_t *mine = roaring_bitmap_create();
  if (!mine) return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
  int rc = store_doc_get(tx, id, strlen(id), &rec);
  if (rc == WARDEN_ENOTFOUND) rc = 0;
  size_t i;
  const json_t *v;
  if (!rc && rec)
    json_array_foreach(json_object_get(rec, "slots"), i, v) roaring_bitmap_add(mine, (uint32_t)json_integer_value(v));
  json_decref(rec);
  if (!rc) roaring_bitmap_and_inplace(allowed, mine);
  roaring_bitmap_free(mine);
  return rc;
}

static int cmp_chunk(const void *a, const void *b) {
  const warden_hit *x = a, *y = b;
  return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

int warden_fetch(warden *db, const char *doc_id, const warden_query_opts *opts,
                 warden_results **out) {
  if (!db || !out) return WARDEN_EINVAL;
  if (!doc_id || !*doc_id) return wd_err(db, WARDEN_EINVAL, "fetch: a doc_id is required");
  if (!opts) return wd_err(db, WARDEN_EINVAL, "query: a principal is required");
  warden_query_opts o = *opts;
  o.k = WD_MAX_K; /* every chunk of the document (at most WD_MAX_K) */
  o.strategy = WARDEN_STRATEGY_EXACT;
  float *v = wd_calloc(db->cfg.dim ? db->cfg.dim : 1, sizeof(float));
  if (!v) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  v[0] = 1; /* any valid vector: the allowed set holds only this document */
  int rc = query_run(db, v, 1, &o, doc_id, out);
  wd_free(v);
  if (!rc && (*out)->q[0].n > 1) qsort((*out)->q[0].hits, (*out)->q[0].n, sizeof(warden_hit), cmp_chunk);
  return rc;
}

int warden_query_text(warden *db, const char *text, const warden_query_opts *o,
                      warden_results **out) {
  if (!db || !text || !out) return WARDEN_EINVAL;
  if (db->cfg.embedder != WD_EMBEDDER_HASH)
    return wd_err(db, WARDEN_EINVAL,
                  "query: --text needs an embedder (set embedder.type: hash in warden.yaml)");
  float *v = wd_malloc(db->cfg.dim * sizeof(float));
  if (!v) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  wd_embed_hash(text, strlen(text), v, db->cfg.dim);
  int rc = warden_query(db, v, 1, o, out);
  wd_free(v);
  return rc;
}
