/*
 * query.c -- plan and run a permission-aware top-k query.
 *
 * One query, end to end, inside one LMDB read snapshot; each step is one
 * function of query_run, in this order, and uses the file that owns its
 * knowledge:
 *   1. who (qrun_who): the principal + caller groups + directory groups
 *      (acl/acl.c);
 *   2. the allowed set (qrun_allowed): readable(who) AND namespace mask
 *      AND filter bitmap AND live -- all bitmap algebra, no document looked
 *      at one by one (engine/allowed.c, next to the bitmap key encoding);
 *   3. strategy (qrun_search, with a resolver qrun_candidates): nearest
 *      allowed vectors -- the exact scan consults `allowed` inside the scan
 *      (index/scan.c), so disallowed chunks cost nothing; engine/search.c
 *      chooses exact or ANN;
 *   4. materialise (qrun_hits): text, source, metadata from the same
 *      snapshot (engine/results.c), each hit re-checked against its record
 *      by the ACL rule (acl_record_allows), so a result never mixes two
 *      revisions and never disagrees with its record;
 *   5. audit (qrun_audit, acl/audit.c) and the plan (qrun_explain).
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
#include "engine/allowed.h"
#include "engine/results.h"
#include "engine/store.h"
#include "base/clock.h"

#define WD_MAX_K WARDEN_MAX_K
#define WD_MAX_NQ 100000


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
#define WORK_PER_K 50    /* candidates checked per result asked for */
#define WORK_MIN 5000    /* ... but at least this many */
static size_t work_bound(size_t k) { return k * WORK_PER_K > WORK_MIN ? k * WORK_PER_K : WORK_MIN; }
/* Resolver rounds: the next round asks for (k - passed) / pass rate x
 * ROUND_MARGIN more candidates, the rate taken as at least MIN_PASS_RATE. */
#define MIN_PASS_RATE 0.02
#define ROUND_MARGIN 1.5

typedef struct rstate {     /* resolver state shared by a batch's queries */
  roaring_bitmap_t *rejected; /* slots whose document the resolver refused */
  roaring_bitmap_t *failed;   /* of which refused because the resolver failed */
  roaring_bitmap_t *passed;   /* slots whose document the resolver allowed */
  wd_hmap evidence;           /* doc_id -> evidence string (owned) */
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
  int rc = 0;
  size_t m = 0;
  if (!items || !out || !ev || !aev) {
    rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n && !rc; i++) {
    if (roaring_bitmap_contains(rs->passed, c[i].id) || roaring_bitmap_contains(rs->rejected, c[i].id))
      continue;
    const char *id;
    size_t il;
    docinfo *d;
    if ((rc = wd_results_slot_doc(tx, r, c[i].id, &id, &il, &d))) break;
    int dup = 0;
    for (size_t j = 0; j < m && !dup; j++) dup = strcmp(items[j].doc_id, id) == 0;
    if (dup) continue;
    items[m].doc_id = id;
    items[m].source = d->source;
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
      if ((rc = wd_results_slot_doc(tx, r, c[i].id, &id, &il, &d))) goto done;
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

/* On-behalf-of: the principal and the agent must both pass the record
 * (acl_record_allows: the stored-ACL rule again, on the record). */
static int record_allows2(const wd_strlist *who, const wd_strlist *agent, const docinfo *d,
                          const warden_query_opts *o) {
  return acl_record_allows(who, d->allow, d->deny, d->namespace_, o->namespaces, o->nnamespaces) &&
         (!agent ||
          acl_record_allows(agent, d->allow, d->deny, d->namespace_, o->namespaces, o->nnamespaces));
}

/* On-behalf-of, for --explain: {"principal":..,"groups":[expanded]} of
 * the agent, or NULL when out of memory. */
static json_t *plan_agent(const warden_query_opts *o, const wd_strlist *agent) {
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
  return j;
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

/* One call's state, from the vectors to the results: the steps of the
 * header comment are the functions below, in order. */
typedef struct qrun {
  warden *db;
  const warden_query_opts *o;
  size_t nq, k, dim, kmax;
  int active;           /* a resolver post-checks the candidates */
  float *own_vec;       /* lexical, or hybrid without a vector: the query's own */
  float *qv;            /* nq query vectors, normalised for cosine */
  wd_filter *flt;
  wd_topk *heaps;       /* per query, filled by the search without a resolver */
  wd_hit_i *sorted;     /* candidates of the current query, in rank order */
  warden_results *r;
  wd_txn tx;
  int in_txn;
  wd_strlist who, awho; /* awho: the agent's expanded set (on-behalf-of) */
  roaring_bitmap_t *live, *allowed;
  uint64_t set_key, nallowed, nlive;
  rstate rs;
  roaring_bitmap_t *lstats; /* rankfix: BM25 statistics set with a resolver */
  int lstats_exact;
  uint64_t pre_checked, pre_d, pre_e, pre_t; /* the lexical pre-check's counts */
  wd_fused fz;
  wd_search_info si;
  double t0, t_plan, t_scan;
} qrun;

typedef struct qone { /* one query of a batch */
  size_t n, rounds;
  uint64_t checked, denied0, errors0, timeouts0;
  int work_hit, degraded;
} qone;

/* The query vectors (the query's own for lexical mode), the filter, and
 * the buffers every later step writes into. */
static int qrun_prepare(qrun *Q, const float *vecs, size_t nq) {
  warden *db = Q->db;
  const warden_query_opts *o = Q->o;
  /* lexical mode needs no vector; hybrid without one embeds the text */
  if (o->mode != WARDEN_MODE_SEMANTIC && (o->mode == WARDEN_MODE_LEXICAL || !vecs)) {
    if (o->mode == WARDEN_MODE_HYBRID && db->cfg.embedder != WD_EMBEDDER_HASH)
      return wd_err(db, WARDEN_EINVAL,
                    "query: hybrid mode needs a query vector or an embedder (embedder.type)");
    float *v = Q->own_vec = wd_calloc(db->cfg.dim, sizeof(float));
    if (!v) return wd_err(db, WARDEN_ENOMEM, "out of memory");
    if (o->mode == WARDEN_MODE_HYBRID) wd_embed_hash(o->text, strlen(o->text), v, db->cfg.dim);
    if (o->mode == WARDEN_MODE_LEXICAL || db->cfg.metric == WD_METRIC_COSINE) {
      double n2 = 0;
      for (size_t i = 0; i < db->cfg.dim; i++) n2 += (double)v[i] * v[i];
      if (!(n2 > 0)) v[0] = 1; /* a vector without words: any non-zero one */
    }
    vecs = v;
    nq = 1;
  }
  Q->t0 = wd_now_ms();
  Q->nq = nq;
  Q->k = o->k ? o->k : 10;
  size_t dim = Q->dim = db->cfg.dim;
  if (o->filter) {
    char ferr[512];
    int frc = wd_filter_parse(o->filter, strlen(o->filter), &Q->flt, ferr, sizeof ferr);
    if (frc) return wd_err(db, frc == WARDEN_ENOMEM ? WARDEN_ENOMEM : WARDEN_EDATA, "%s", ferr);
  }
  Q->active = wd_resolver_active(db->resolver);
  Q->kmax = Q->active ? work_bound(Q->k) + Q->k : Q->k;
  Q->qv = wd_malloc(nq * dim * sizeof(float));
  Q->r = wd_results_new(nq, 0);
  Q->heaps = wd_calloc(nq, sizeof *Q->heaps);
  Q->sorted = wd_malloc(Q->kmax * sizeof *Q->sorted);
  Q->live = roaring_bitmap_create();
  Q->rs.rejected = roaring_bitmap_create();
  Q->rs.failed = roaring_bitmap_create();
  Q->rs.passed = roaring_bitmap_create();
  if (!Q->qv || !Q->r || !Q->heaps || !Q->sorted || !Q->live || !Q->rs.rejected ||
      !Q->rs.failed || !Q->rs.passed)
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  float *qv = Q->qv;
  memcpy(qv, vecs, nq * dim * sizeof(float));
  if (db->cfg.metric == WD_METRIC_COSINE)
    for (size_t q = 0; q < nq; q++) {
      double n2 = 0;
      for (size_t i = 0; i < dim; i++) n2 += (double)qv[q * dim + i] * qv[q * dim + i];
      float inv = (float)(1.0 / sqrt(n2));
      for (size_t i = 0; i < dim; i++) qv[q * dim + i] *= inv;
    }
  for (size_t q = 0; q < nq; q++)
    if (wd_topk_init(&Q->heaps[q], Q->k)) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  return 0;
}

/* The snapshot every later step reads, at least as new as asked. */
static int qrun_snapshot(qrun *Q) {
  int rc = store_read_begin(Q->db, &Q->tx);
  if (rc) return rc;
  Q->in_txn = 1;
  Q->r->revision = store_meta_u64(&Q->tx, "revision");
  if (Q->o->min_revision && Q->r->revision < Q->o->min_revision)
    return wd_err(Q->db, WARDEN_ESTALE,
                  "query: the collection is at revision %llu, older than the required %llu",
                  (unsigned long long)Q->r->revision, (unsigned long long)Q->o->min_revision);
  return 0;
}

/* 1. who may read: the principal, its groups and the directory's, and on
 * behalf of an agent the agent's too (acl/acl.c). */
static int qrun_who(qrun *Q) {
  const warden_query_opts *o = Q->o;
  int rc = acl_expand(&Q->tx, o->principal, o->groups, o->ngroups, &Q->who);
  if (rc) return rc;
  if (o->agent) {
    if ((rc = acl_expand(&Q->tx, o->agent, o->agent_groups, o->nagent_groups, &Q->awho)))
      return rc;
    Q->rs.agent = &Q->awho;
  }
  return 0;
}

/* 2. the allowed set (engine/allowed.c), narrowed to what the agent may
 * read too, to one document for warden_fetch, and by the grants
 * resolver's pre-filter (a superset, still post-checked). */
static int qrun_allowed(qrun *Q, const char *only_doc) {
  warden *db = Q->db;
  wd_txn *tx = &Q->tx;
  char kb[8];
  int rc = store_bm_or(tx, kb, store_key(kb, 'L', "", 0), Q->live);
  if (!rc) rc = wd_allowed_set(tx, Q->o, Q->flt, &Q->who, Q->live, &Q->allowed, &Q->set_key);
  if (rc) return rc;
  roaring_bitmap_t *allowed = Q->allowed;
  if (Q->o->agent) { /* on-behalf-of: what both may read (the cached set is the principal's) */
    roaring_bitmap_t *ab = NULL;
    if ((rc = acl_readable(tx, &Q->awho, &ab))) return rc;
    roaring_bitmap_and_inplace(allowed, ab);
    roaring_bitmap_free(ab);
  }
  if (only_doc && (rc = only_doc_slots(tx, only_doc, allowed))) return rc; /* warden_fetch */
  for (int a = 0; Q->active && a < (Q->o->agent ? 2 : 1); a++) {
    roaring_bitmap_t *pf = NULL;
    if ((rc = wd_resolver_prefilter(db->resolver, tx, a ? &Q->awho : &Q->who, &pf))) return rc;
    if (pf) {
      roaring_bitmap_and_inplace(allowed, pf);
      roaring_bitmap_free(pf);
    }
  }
  roaring_bitmap_and_inplace(allowed, Q->live); /* defensive: only live slots */
  Q->nallowed = roaring_bitmap_get_cardinality(allowed);
  Q->nlive = roaring_bitmap_get_cardinality(Q->live);
  Q->t_plan = wd_now_ms();
  return 0;
}

/* 3. strategy: without a resolver, the nearest allowed vectors of every
 * query at once (engine/search.c chooses exact or ANN; hybrid and lexical
 * go through engine/hybrid.c).  With one, the search runs per query in
 * rounds (qrun_candidates); lexical and hybrid first check BM25's
 * statistics set (lex_precheck). */
static int qrun_search(qrun *Q) {
  warden *db = Q->db;
  const warden_query_opts *o = Q->o;
  int rc = 0;
  wd_search_info_clear(&Q->si);
  Q->si.explain = o->explain; /* the planner builds its detail only then */
  if (!Q->active) {
    if (o->mode != WARDEN_MODE_SEMANTIC)
      rc = wd_hybrid_round(db, &Q->tx, o, Q->qv, Q->allowed, Q->nallowed, Q->nlive, Q->set_key,
                           Q->heaps, &Q->si, &Q->fz, NULL);
    else
      rc = wd_search_t(db, &Q->tx, Q->qv, Q->nq, Q->allowed, Q->nallowed, Q->nlive, o->strategy,
                       o->target_recall, Q->set_key, Q->heaps, &Q->si);
    if (rc) return rc;
  }
  Q->pre_d = Q->rs.denied;
  Q->pre_e = Q->rs.errors;
  Q->pre_t = Q->rs.timeouts;
  if (Q->active && o->mode != WARDEN_MODE_SEMANTIC) {
    Q->rs.budget_end = 0;
    int pdeg = 0;
    if ((rc = lex_precheck(db, &Q->tx, Q->r, &Q->who, &Q->rs, Q->allowed, o->text ? o->text : "",
                           work_bound(Q->k), &Q->lstats, &Q->lstats_exact, &pdeg,
                           &Q->pre_checked)))
      return rc;
  }
  Q->t_scan = wd_now_ms();
  return 0;
}

/* 3 (with a resolver). Over-fetch in rounds until k candidates of query q
 * pass the resolver or the allowed set is exhausted; never pad.  Leaves
 * the candidates that passed in Q->sorted[0..s->n), in rank order. */
static int qrun_candidates(qrun *Q, size_t q, qone *s) {
  warden *db = Q->db;
  const warden_query_opts *o = Q->o;
  rstate *rs = &Q->rs;
  size_t k = Q->k, kk = k, n = 0;
  int rc = 0;
  /* each query of a batch has its own resolver budget (the first one
   * shares it with the lexical pre-check) */
  if (q > 0 || !Q->lstats) rs->budget_end = 0;
  if (q == 0) s->checked = Q->pre_checked;
  for (;;) {
    s->rounds++;
    roaring_bitmap_t *cand = roaring_bitmap_andnot(Q->allowed, rs->rejected);
    uint64_t ncand = cand ? roaring_bitmap_get_cardinality(cand) : 0;
    wd_topk h;
    if (!cand || wd_topk_init(&h, kk)) {
      if (cand) roaring_bitmap_free(cand);
      return wd_err(db, WARDEN_ENOMEM, "out of memory");
    }
    const float *qv = Q->qv + q * Q->dim;
    wd_search_info_clear(&Q->si); /* the last round's plan is the one kept */
    rc = o->mode != WARDEN_MODE_SEMANTIC
             ? wd_hybrid_round(db, &Q->tx, o, qv, cand, ncand, Q->nlive, 0, &h, &Q->si, &Q->fz,
                               Q->lstats)
             : wd_search_t(db, &Q->tx, qv, 1, cand, ncand, Q->nlive, o->strategy,
                           o->target_recall, 0, &h, &Q->si);
    roaring_bitmap_free(cand);
    if (!rc) n = wd_topk_drain_sorted(&h, Q->sorted);
    wd_topk_free(&h);
    if (rc) return rc;
    if ((rc = resolve_round(db, &Q->tx, Q->r, &Q->who, rs, Q->sorted, n, &s->degraded,
                            &s->checked)))
      return rc;
    size_t pass = 0;
    for (size_t i = 0; i < n; i++) pass += roaring_bitmap_contains(rs->passed, Q->sorted[i].id);
    if (pass >= k || n < kk) break; /* enough, or allowed set exhausted */
    if (s->checked >= work_bound(k)) {
      s->work_hit = 1;
      break;
    }
    /* size the next round from the observed pass rate */
    double rate = n ? (double)pass / (double)n : 0;
    if (rate < MIN_PASS_RATE) rate = MIN_PASS_RATE;
    size_t want = (size_t)((double)(k - pass) / rate * ROUND_MARGIN) + pass + k;
    if (want < kk * 2) want = kk * 2;
    if (want > Q->kmax) want = Q->kmax;
    if (want <= kk) {
      s->work_hit = 1;
      break;
    }
    kk = want;
  }
  /* keep the candidates that passed, in rank order, at most k */
  size_t w = 0;
  int fused = o->mode != WARDEN_MODE_SEMANTIC;
  for (size_t i = 0; i < n && (fused || w < k); i++)
    if (roaring_bitmap_contains(rs->passed, Q->sorted[i].id)) Q->sorted[w++] = Q->sorted[i];
  s->n = w;
  /* rankfix: ranks and the fused score among what passed only */
  if (fused &&
      (rc = wd_fused_renumber(db, &Q->fz, o->mode == WARDEN_MODE_LEXICAL, Q->sorted, w, k, &s->n)))
    return rc;
  return 0;
}

/* 4. materialise query q's hits into the results (engine/results.c), and
 * re-check each against its document record (acl_record_allows): a
 * disagreement with the bitmaps means damaged storage, and the query fails
 * closed. */
static int qrun_hits(qrun *Q, size_t q, const qone *s) {
  warden *db = Q->db;
  const warden_query_opts *o = Q->o;
  warden_results *r = Q->r;
  size_t n = s->n;
  r->q[q].degraded = s->degraded;
  r->q[q].hits = wd_calloc(n ? n : 1, sizeof(warden_hit));
  if (!r->q[q].hits) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    warden_hit *h = &r->q[q].hits[i];
    const wd_hit_i *c = &Q->sorted[i];
    int rc = wd_results_materialise(&Q->tx, r, c->id, wd_dist_to_score(db->cfg.metric, c->dist), h);
    if (rc) return rc;
    if (o->mode != WARDEN_MODE_SEMANTIC) /* fused score, each side's rank */
      wd_fused_apply(&Q->fz, (size_t)c->dist, c->id, h);
    docinfo *d = wd_results_doc(r, h->doc_id);
    if (!d || !record_allows2(&Q->who, o->agent ? &Q->awho : NULL, d, o))
      return wd_err(db, WARDEN_ECORRUPT,
                    "query: the bitmaps selected a chunk its document record does not "
                    "allow; refusing to answer (run warden check)");
    r->q[q].n++;
  }
  return 0;
}

/* 5. audit: one line per query with each hit's evidence (acl/audit.c);
 * an audited deployment must not answer unaudited, so failing to write it
 * fails the query. */
static int qrun_audit(qrun *Q, size_t q, const qone *s) {
  warden *db = Q->db;
  const warden_query_opts *o = Q->o;
  const qres *res = &Q->r->q[q];
  size_t n = res->n;
  wd_audit_hit *ah = wd_calloc(n ? n : 1, sizeof *ah);
  /* on-behalf-of: the agent's evidence per hit */
  int obo = o->agent != NULL;
  char **aacl = obo ? wd_calloc(n ? n : 1, sizeof *aacl) : NULL;
  const char **ares = obo ? wd_calloc(n ? n : 1, sizeof *ares) : NULL;
  int rc = 0;
  if (!ah || (obo && (!aacl || !ares))) {
    rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    const warden_hit *h = &res->hits[i];
    docinfo *d = wd_results_doc(Q->r, h->doc_id);
    ah[i].doc_id = h->doc_id;
    ah[i].chunk = h->chunk;
    ah[i].acl_evidence = d && d->allow ? acl_evidence(&Q->who, d->allow) : NULL;
    ah[i].resolver_evidence = wd_hmap_get(&Q->rs.evidence, h->doc_id, strlen(h->doc_id));
    if (aacl) {
      aacl[i] = d && d->allow ? acl_evidence(&Q->awho, d->allow) : NULL;
      ares[i] = wd_hmap_get(&Q->rs.agent_evidence, h->doc_id, strlen(h->doc_id));
    }
  }
  wd_audit_query aq = {o, &Q->who, Q->r->revision, q, ah, n, Q->rs.denied - s->denied0,
                       Q->rs.errors - s->errors0, Q->rs.timeouts - s->timeouts0, s->degraded};
  wd_audit_agent ag = {&Q->awho, (const char *const *)aacl, ares};
  rc = wd_audit_write_obo(db->audit, db, &aq, obo ? &ag : NULL);
done:
  for (size_t i = 0; ah && i < n; i++) wd_free((char *)ah[i].acl_evidence);
  for (size_t i = 0; aacl && i < n; i++) wd_free(aacl[i]);
  wd_free(aacl);
  wd_free((void *)ares);
  wd_free(ah);
  return rc;
}

/* --explain: the plan of query q as a JSON object text (warden_results_plan),
 * its members in this order (the order it has always had). */
static int qrun_explain(qrun *Q, size_t q, const qone *s) {
  static const char *paths[] = {"sparse", "dense", "dense-sgemm"};
  typedef json_int_t I;
  warden *db = Q->db;
  const wd_search_info *si = &Q->si;
  const rstate *rs = &Q->rs;
  int exact = !si->strategy || !strcmp(si->strategy, "exact");
  uint64_t failed = rs->errors - s->errors0 + rs->timeouts - s->timeouts0;
  json_t *p = json_object();
  int bad = !p;
  bad = bad || json_object_set_new(p, "strategy", json_string(si->strategy ? si->strategy : "exact"));
  if (exact)
    bad = bad || json_object_set_new(p, "path",
                                     json_string(paths[si->path < 0 || si->path > 2 ? 0 : si->path]));
  bad = bad || json_object_set_new(p, "simd", json_string(wd_kernels_name()));
  bad = bad || json_object_set_new(p, "k", json_integer((I)Q->k));
  bad = bad || json_object_set_new(p, "live_chunks", json_integer((I)Q->nlive));
  bad = bad || json_object_set_new(p, "allowed", json_integer((I)Q->nallowed));
  bad = bad || json_object_set_new(p, "selectivity",
                                   wd_json_sig(Q->nlive ? (double)Q->nallowed / (double)Q->nlive : 0.0, 6));
  bad = bad || json_object_set_new(p, "scanned",
                                   json_integer((I)(Q->active ? si->scanned : si->scanned / Q->nq)));
  bad = bad || json_object_set_new(p, "resolver", json_string(wd_resolver_name(db->resolver)));
  bad = bad || json_object_set_new(p, "rounds", json_integer((I)s->rounds));
  bad = bad || json_object_set_new(p, "checked", json_integer((I)s->checked));
  bad = bad || json_object_set_new(p, "dropped_by_resolver",
                                   json_integer((I)(rs->denied - s->denied0 + failed)));
  bad = bad || json_object_set_new(p, "resolver_failed", json_integer((I)failed));
  bad = bad || json_object_set_new(p, "work_bound", json_integer((I)(Q->active ? work_bound(Q->k) : 0)));
  bad = bad || json_object_set_new(p, "work_bound_hit", json_boolean(s->work_hit));
  bad = bad || json_object_set_new(p, "revision", json_integer((I)Q->r->revision));
  bad = bad || json_object_set_new(p, "plan_ms", wd_json_fixed(Q->t_plan - Q->t0, 3));
  bad = bad || json_object_set_new(p, "scan_ms",
                                   wd_json_fixed((Q->active ? wd_now_ms() : Q->t_scan) - Q->t_plan, 3));
  bad = bad || json_object_set_new(p, "batch", json_integer((I)Q->nq));
  if (Q->lstats)
    bad = bad || json_object_set_new(p, "lexical_stats",
                                     json_string(Q->lstats_exact ? "resolver-checked"
                                                                 : "resolver-checked-subset"));
  if (si->detail) bad = bad || json_object_update(p, si->detail);
  if (Q->o->agent) bad = bad || json_object_set_new(p, "agent", plan_agent(Q->o, &Q->awho));
  char *t = bad ? NULL : json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
  json_decref(p);
  Q->r->q[q].plan = t ? wd_strdup(t) : NULL; /* results free it with wd_free */
  if (t) {
    json_free_t jfree;
    json_get_alloc_funcs(NULL, &jfree);
    jfree(t);
  }
  return Q->r->q[q].plan ? 0 : wd_err(db, WARDEN_ENOMEM, "out of memory");
}

/* Query q of the batch, after the search: its candidates, hits, audit
 * line and plan. */
static int qrun_one(qrun *Q, size_t q) {
  qone s;
  memset(&s, 0, sizeof s);
  s.denied0 = Q->rs.denied;
  s.errors0 = Q->rs.errors;
  s.timeouts0 = Q->rs.timeouts;
  if (q == 0) { /* the first query also owns the lexical pre-check's verdicts */
    s.denied0 = Q->pre_d;
    s.errors0 = Q->pre_e;
    s.timeouts0 = Q->pre_t;
  }
  /* in a batch, a document the resolver failed on for an earlier query
   * stays out of the later ones too: their answers are degraded as well */
  s.degraded = Q->active && !roaring_bitmap_is_empty(Q->rs.failed);
  int rc;
  if (!Q->active)
    s.n = wd_topk_drain_sorted(&Q->heaps[q], Q->sorted);
  else if ((rc = qrun_candidates(Q, q, &s)))
    return rc;
  if ((rc = qrun_hits(Q, q, &s))) return rc;
  if (Q->db->audit && (rc = qrun_audit(Q, q, &s))) return rc;
  if (Q->o->explain && (rc = qrun_explain(Q, q, &s))) return rc;
  return 0;
}

static void qrun_free(qrun *Q) {
  if (Q->in_txn) store_read_end(&Q->tx);
  wd_search_info_clear(&Q->si);
  wd_strlist_free(&Q->who);
  wd_strlist_free(&Q->awho);
  WD_HMAP_FOREACH(&Q->rs.agent_evidence, e) wd_free(e->val);
  wd_hmap_free(&Q->rs.agent_evidence);
  /* CRoaring 0.2 rejects NULL */
  roaring_bitmap_t *bms[] = {Q->allowed, Q->live, Q->lstats, Q->rs.rejected, Q->rs.failed,
                             Q->rs.passed};
  for (size_t i = 0; i < sizeof bms / sizeof bms[0]; i++)
    if (bms[i]) roaring_bitmap_free(bms[i]);
  WD_HMAP_FOREACH(&Q->rs.evidence, e) wd_free(e->val);
  wd_hmap_free(&Q->rs.evidence);
  if (Q->heaps)
    for (size_t q = 0; q < Q->nq; q++) wd_topk_free(&Q->heaps[q]);
  wd_free(Q->heaps);
  wd_free(Q->sorted);
  wd_free(Q->qv);
  wd_free(Q->own_vec);
  wd_fused_free(&Q->fz);
  wd_filter_free(Q->flt);
}

static int query_run(warden *db, const float *vecs, size_t nq, const warden_query_opts *o,
                     const char *only_doc, warden_results **out) {
  if (!db || !out) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_err_clear(db);
  if ((rc = validate(db, vecs, nq, o))) return rc;
  qrun Q;
  memset(&Q, 0, sizeof Q);
  Q.db = db;
  Q.o = o;
  if (!(rc = qrun_prepare(&Q, vecs, nq)) && !(rc = qrun_snapshot(&Q)) && !(rc = qrun_who(&Q)) &&
      !(rc = qrun_allowed(&Q, only_doc)) && !(rc = qrun_search(&Q)))
    for (size_t q = 0; q < Q.nq && !rc; q++) rc = qrun_one(&Q, q);
  warden_results *r = Q.r;
  qrun_free(&Q);
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
