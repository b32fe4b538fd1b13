/*
 * hybrid.c -- lexical and hybrid rounds, and their fusion (see hybrid.h).
 */
#include "engine/hybrid.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/lexical.h"
#include "index/scan.h"

void wd_fused_free(wd_fused *f) {
  wd_free(f->slot);
  wd_free(f->score);
  wd_free(f->srank);
  wd_free(f->lrank);
  wd_free(f->sem);
  wd_free(f->lex);
  memset(f, 0, sizeof *f);
}

void wd_fused_apply(const wd_fused *f, size_t pos, uint32_t slot, warden_hit *h) {
  size_t i = pos;
  if (i >= f->n || f->slot[i] != slot)
    for (i = 0; i < f->n && f->slot[i] != slot; i++) {
    }
  if (i >= f->n) return;
  h->score = f->score[i];
  h->semantic_rank = f->srank[i];
  h->lexical_rank = f->lrank[i];
}

static int fz_alloc(warden *db, wd_fused *f, size_t n) {
  wd_fused_free(f);
  size_t m = n ? n : 1;
  f->slot = wd_calloc(m, sizeof *f->slot);
  f->score = wd_calloc(m, sizeof *f->score);
  f->srank = wd_calloc(m, sizeof *f->srank);
  f->lrank = wd_calloc(m, sizeof *f->lrank);
  f->sem = wd_calloc(m, sizeof *f->sem);
  f->lex = wd_calloc(m, sizeof *f->lex);
  if (!f->slot || !f->score || !f->srank || !f->lrank || !f->sem || !f->lex) {
    wd_fused_free(f);
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  }
  return 0;
}

typedef struct cand_ {
  uint32_t slot, srank, lrank;
  double sem, lex; /* side scores, higher better */
  double fused;
} cand_;

static int by_slot(const void *a, const void *b) {
  const cand_ *x = a, *y = b;
  return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static int by_fused(const void *a, const void *b) {
  const cand_ *x = a, *y = b;
  if (x->fused != y->fused) return x->fused > y->fused ? -1 : 1;
  return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static int by_srank(const void *a, const void *b) {
  const cand_ *x = a, *y = b;
  return x->srank < y->srank ? -1 : x->srank > y->srank;
}

static int by_lrank(const void *a, const void *b) {
  const cand_ *x = a, *y = b;
  return x->lrank < y->lrank ? -1 : x->lrank > y->lrank;
}

/* The fused score of c[0..u) from their ranks / side scores (see hybrid.h). */
static void fuse(const warden *db, cand_ *c, size_t u) {
  int weighted = db->cfg.lex_fusion == WD_FUSION_WEIGHTED;
  double smin = INFINITY, smax = -INFINITY, lmin = INFINITY, lmax = -INFINITY;
  for (size_t i = 0; i < u; i++) {
    if (c[i].srank) {
      if (c[i].sem < smin) smin = c[i].sem;
      if (c[i].sem > smax) smax = c[i].sem;
    }
    if (c[i].lrank) {
      if (c[i].lex < lmin) lmin = c[i].lex;
      if (c[i].lex > lmax) lmax = c[i].lex;
    }
  }
  double rk = db->cfg.lex_rrf_k ? db->cfg.lex_rrf_k : 60, w = db->cfg.lex_weight;
  for (size_t i = 0; i < u; i++) {
    double f = 0;
    if (!weighted) {
      if (c[i].srank) f += 1.0 / (rk + (double)c[i].srank);
      if (c[i].lrank) f += 1.0 / (rk + (double)c[i].lrank);
    } else {
      if (c[i].srank) f += w * (smax > smin ? (c[i].sem - smin) / (smax - smin) : 1.0);
      if (c[i].lrank) f += (1.0 - w) * (lmax > lmin ? (c[i].lex - lmin) / (lmax - lmin) : 1.0);
    }
    c[i].fused = f;
  }
}

int wd_fused_renumber(warden *db, wd_fused *fz, int lexical, wd_hit_i *hits, size_t n, size_t k,
                      size_t *nout) {
  *nout = 0;
  cand_ *c = wd_calloc(n ? n : 1, sizeof *c);
  if (!c) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  size_t u = 0;
  for (size_t i = 0; i < n; i++) {
    size_t p = (size_t)hits[i].dist;
    if (p >= fz->n || fz->slot[p] != hits[i].id)
      for (p = 0; p < fz->n && fz->slot[p] != hits[i].id; p++) {
      }
    if (p >= fz->n) continue;
    c[u].slot = fz->slot[p];
    c[u].srank = fz->srank[p];
    c[u].lrank = fz->lrank[p];
    c[u].sem = fz->sem[p];
    c[u].lex = fz->lex[p];
    u++;
  }
  /* each side: rank among the passing candidates, in that side's order */
  qsort(c, u, sizeof *c, by_srank);
  for (size_t i = 0, r = 0; i < u; i++) /* zero ranks sort first */
    if (c[i].srank) c[i].srank = ++r <= k ? (uint32_t)r : 0;
  qsort(c, u, sizeof *c, by_lrank);
  for (size_t i = 0, r = 0; i < u; i++)
    if (c[i].lrank) c[i].lrank = ++r <= k ? (uint32_t)r : 0;
  /* as without a resolver, each side contributes its top k (of what passed) */
  size_t kept = 0;
  for (size_t i = 0; i < u; i++)
    if (c[i].srank || c[i].lrank) c[kept++] = c[i];
  u = kept;
  if (lexical) { /* the BM25 score itself; order = lexical rank */
    for (size_t i = 0; i < u; i++) c[i].fused = c[i].lrank ? -(double)c[i].lrank : -INFINITY;
  } else {
    fuse(db, c, u);
  }
  qsort(c, u, sizeof *c, by_fused);
  if (u > k) u = k;
  int rc = fz_alloc(db, fz, u);
  if (rc) {
    wd_free(c);
    return rc;
  }
  for (size_t i = 0; i < u; i++) {
    fz->slot[i] = c[i].slot;
    fz->score[i] = lexical ? (float)c[i].lex : (float)c[i].fused;
    fz->srank[i] = c[i].srank;
    fz->lrank[i] = c[i].lrank;
    fz->sem[i] = c[i].sem;
    fz->lex[i] = c[i].lex;
    hits[i].id = c[i].slot;
    hits[i].dist = (float)i;
  }
  fz->n = u;
  *nout = u;
  wd_free(c);
  return 0;
}

/* The lexical side's plan (--explain), or NULL when out of memory. */
static json_t *lex_plan(const wd_lex_info *li, size_t k) {
  typedef json_int_t I;
  return json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o?}", "strategy", "bm25-blockmax",
                   "k", (I)k, "terms", (I)li->terms, "terms_found", (I)li->terms_found, "windows",
                   (I)li->windows, "windows_disallowed", (I)li->win_disallowed, "windows_pruned",
                   (I)li->win_pruned, "blocks_read", (I)li->blocks, "postings_read",
                   (I)li->postings, "postings_scored", (I)li->scored, "ms",
                   wd_json_fixed(li->ms, 3));
}

int wd_hybrid_round(warden *db, wd_txn *tx, const warden_query_opts *o, const float *qv,
                    const roaring_bitmap_t *cand, uint64_t ncand, uint64_t nlive,
                    uint64_t set_key, wd_topk *heap, wd_search_info *si, wd_fused *fz,
                    const roaring_bitmap_t *lstats) {
  size_t kk = heap->k;
  wd_lex_hit *lh = NULL;
  size_t nl = 0;
  wd_lex_info li;
  int rc = wd_lex_search_stats(db, tx, o->text ? o->text : "", lstats, cand, kk, &lh, &nl, &li);
  if (rc) return rc;
  memset(si, 0, sizeof *si); /* the caller released si->detail */
  wd_search_info ss; /* the semantic side's, released at out */
  memset(&ss, 0, sizeof ss);
  if (o->mode == WARDEN_MODE_LEXICAL) {
    if ((rc = fz_alloc(db, fz, nl))) goto out;
    for (size_t i = 0; i < nl; i++) {
      fz->slot[i] = lh[i].slot;
      fz->score[i] = (float)lh[i].score;
      fz->lex[i] = lh[i].score;
      fz->lrank[i] = (uint32_t)(i + 1);
      wd_topk_push(heap, (float)i, lh[i].slot);
    }
    fz->n = nl;
    si->strategy = "lexical";
    si->scanned = li.scored;
    json_t *lp = o->explain ? lex_plan(&li, kk) : NULL;
    if (lp) si->detail = json_pack("{s:s,s:O}", "mode", "lexical", "lexical", lp);
    json_decref(lp);
    goto out;
  }
  /* hybrid: the semantic side over the same candidates */
  wd_topk sh;
  if (wd_topk_init(&sh, kk)) {
    rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
    goto out;
  }
  ss.explain = o->explain;
  rc = wd_search_t(db, tx, qv, 1, cand, ncand, nlive, o->strategy, o->target_recall, set_key,
                   &sh, &ss);
  wd_hit_i *sem = rc ? NULL : wd_malloc((sh.n ? sh.n : 1) * sizeof *sem);
  size_t ns = 0;
  if (!rc && !sem) rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
  if (!rc) ns = wd_topk_drain_sorted(&sh, sem);
  wd_topk_free(&sh);
  cand_ *c = rc ? NULL : wd_calloc(ns + nl + 1, sizeof *c);
  if (!rc && !c) rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
  if (rc) {
    wd_free(sem);
    goto out;
  }
  size_t m = 0;
  for (size_t i = 0; i < ns; i++) {
    c[m].slot = sem[i].id;
    c[m].srank = (uint32_t)(i + 1);
    c[m].sem = -(double)sem[i].dist; /* dist: lower is better */
    m++;
  }
  for (size_t i = 0; i < nl; i++) {
    c[m].slot = lh[i].slot;
    c[m].lrank = (uint32_t)(i + 1);
    c[m].lex = lh[i].score;
    m++;
  }
  wd_free(sem);
  qsort(c, m, sizeof *c, by_slot);
  size_t u = 0;
  for (size_t i = 0; i < m; i++) { /* merge the two sides' entries */
    if (u && c[u - 1].slot == c[i].slot) {
      if (c[i].srank) {
        c[u - 1].srank = c[i].srank;
        c[u - 1].sem = c[i].sem;
      }
      if (c[i].lrank) {
        c[u - 1].lrank = c[i].lrank;
        c[u - 1].lex = c[i].lex;
      }
    } else {
      c[u++] = c[i];
    }
  }
  int weighted = db->cfg.lex_fusion == WD_FUSION_WEIGHTED;
  double rk = db->cfg.lex_rrf_k ? db->cfg.lex_rrf_k : 60, w = db->cfg.lex_weight;
  fuse(db, c, u);
  qsort(c, u, sizeof *c, by_fused);
  if (u > kk) u = kk;
  if ((rc = fz_alloc(db, fz, u))) {
    wd_free(c);
    goto out;
  }
  for (size_t i = 0; i < u; i++) {
    fz->slot[i] = c[i].slot;
    fz->score[i] = (float)c[i].fused;
    fz->srank[i] = c[i].srank;
    fz->lrank[i] = c[i].lrank;
    fz->sem[i] = c[i].sem;
    fz->lex[i] = c[i].lex;
    wd_topk_push(heap, (float)i, c[i].slot);
  }
  fz->n = u;
  wd_free(c);
  si->strategy = "hybrid";
  si->path = ss.path;
  si->scanned = ss.scanned;
  si->fell_back = ss.fell_back;
  if (o->explain) {
    static const char *paths[] = {"sparse", "dense", "dense-sgemm"};
    const char *st = ss.strategy ? ss.strategy : "exact";
    json_t *sp = json_pack("{s:s}", "strategy", st);
    if (sp && !strcmp(st, "exact") &&
        json_object_set_new(sp, "path", json_string(paths[ss.path < 0 || ss.path > 2 ? 0 : ss.path])))
      json_decref(sp), sp = NULL;
    if (sp && (json_object_set_new(sp, "k", json_integer((json_int_t)kk)) ||
               json_object_set_new(sp, "scanned", json_integer((json_int_t)ss.scanned)) ||
               (ss.detail && json_object_update(sp, ss.detail))))
      json_decref(sp), sp = NULL;
    json_t *d = json_pack("{s:s}", "mode", "hybrid");
    if (d && (weighted ? json_object_set_new(d, "fusion", json_string("weighted")) ||
                             json_object_set_new(d, "semantic_weight", wd_json_sig(w, 6))
                       : json_object_set_new(d, "fusion", json_string("rrf")) ||
                             json_object_set_new(d, "rrf_k", wd_json_fixed(rk, 0))))
      json_decref(d), d = NULL;
    json_t *lp = lex_plan(&li, kk);
    if (d && lp && sp && !json_object_set(d, "lexical", lp) && !json_object_set(d, "semantic", sp))
      si->detail = d;
    else
      json_decref(d); /* never half a plan */
    json_decref(lp);
    json_decref(sp);
  }
out:
  wd_search_info_clear(&ss);
  wd_free(lh);
  return rc;
}
