/*
 * bm25.c -- BM25 top-k over the lexical index with the allowed set inside
 * the traversal (see lexical.h for the layout and the scoring formula).
 *
 * Statistics first, over the allowed set only: N = |allowed|, sum of the
 * allowed chunks' lengths (one pass over allowed, which also expands it to
 * a dense bitset), df(t) = |slots(t) AND allowed| (one AND-cardinality of
 * the term's slot bitmap).  Nothing a caller cannot read enters N, df or
 * avgdl, so a principal's scores are a function of what it may read.
 * With a resolver the statistics come from a separate set
 * (wd_lex_search_stats): query.c's lex_precheck passes the allowed
 * documents the resolver has checked and not refused, so its denials are
 * cannot-read here too.  info->postings counts only allowed postings
 * (the plan must not reveal hidden ones).
 *
 * Traversal (block-max, score-at-a-time over 4096-slot windows): each
 * query term's directory gives, per window, the number of postings and the
 * bounds max_tf / min_dl, hence an upper bound of the term's weight in that
 * window.  A window with no allowed slot is skipped without reading its
 * postings; the others are visited in decreasing order of their summed
 * bounds, and the walk stops at the first window whose bound is below the
 * current k-th score -- no later window can hold a better hit.  In a
 * visited window every posting is tested against the allowed bitset before
 * it is scored.  The top-k is therefore exact over the allowed set and
 * never trimmed afterwards: pruning only skips windows that cannot
 * contribute.  Bounds are inflated by 1e-9 relative so rounding can never
 * make a bound smaller than a score it covers.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/lexical.h"
#include "base/clock.h"

#define MAX_QTERMS 1024


typedef struct qterms {
  char **t;
  size_t *l;
  size_t n, cap;
} qterms;

static int add_qterm(const char *t, size_t l, void *ctx) {
  qterms *q = ctx;
  for (size_t i = 0; i < q->n; i++)
    if (q->l[i] == l && memcmp(q->t[i], t, l) == 0) return 0;
  if (q->n >= MAX_QTERMS) return 0;
  if (q->n == q->cap) {
    size_t nc = q->cap ? q->cap * 2 : 16;
    char **nt = wd_realloc(q->t, nc * sizeof *nt);
    if (!nt) return WARDEN_ENOMEM;
    q->t = nt;
    size_t *nl = wd_realloc(q->l, nc * sizeof *nl);
    if (!nl) return WARDEN_ENOMEM;
    q->l = nl;
    q->cap = nc;
  }
  if (!(q->t[q->n] = wd_strndup(t, l))) return WARDEN_ENOMEM;
  q->l[q->n++] = l;
  return 0;
}

static void qterms_free(qterms *q) {
  for (size_t i = 0; i < q->n; i++) wd_free(q->t[i]);
  wd_free(q->t);
  wd_free(q->l);
}

int wd_lex_query_terms(warden *db, const char *text, char ***terms, size_t **lens, size_t *n) {
  wd_lexer lx;
  qterms q;
  memset(&q, 0, sizeof q);
  if (wd_lexer_init(&lx, db->cfg.lex_language)) return WARDEN_ENOMEM;
  int rc = wd_lex_tokens(&lx, text, strlen(text), add_qterm, &q);
  wd_lexer_free(&lx);
  if (rc) {
    qterms_free(&q);
    return WARDEN_ENOMEM;
  }
  *terms = q.t;
  *lens = q.l;
  *n = q.n;
  return 0;
}

typedef struct went { /* one (window, term) pair of the directories */
  uint32_t w, t;
  double bound;
} went;

static int went_cmp(const void *a, const void *b) {
  const went *x = a, *y = b;
  if (x->w != y->w) return x->w < y->w ? -1 : 1;
  return x->t < y->t ? -1 : x->t > y->t;
}

typedef struct win {
  uint32_t w;
  size_t first, n; /* its entries in the went array */
  double ub;
} win;

static int win_cmp(const void *a, const void *b) {
  const win *x = a, *y = b;
  if (x->ub != y->ub) return x->ub > y->ub ? -1 : 1;
  return x->w < y->w ? -1 : x->w > y->w;
}

/* Top-k heap, worst at [0]: worse = lower score, or equal and later slot. */
static int worse(const wd_lex_hit *a, const wd_lex_hit *b) {
  return a->score < b->score || (a->score == b->score && a->slot > b->slot);
}

static void sift_down(wd_lex_hit *h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && worse(&h[l], &h[m])) m = l;
    if (r < n && worse(&h[r], &h[m])) m = r;
    if (m == i) return;
    wd_lex_hit t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

static void heap_push(wd_lex_hit *h, size_t *n, size_t k, uint32_t slot, double score) {
  wd_lex_hit x = {slot, score};
  if (*n < k) {
    size_t i = (*n)++;
    h[i] = x;
    while (i > 0) {
      size_t p = (i - 1) / 2;
      if (!worse(&h[i], &h[p])) break;
      wd_lex_hit t = h[i];
      h[i] = h[p];
      h[p] = t;
      i = p;
    }
  } else if (worse(&h[0], &x)) {
    h[0] = x;
    sift_down(h, *n, 0);
  }
}

static int hit_cmp(const void *a, const void *b) {
  const wd_lex_hit *x = a, *y = b;
  if (worse(x, y)) return 1;
  if (worse(y, x)) return -1;
  return 0;
}

static void be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static int get_lens(wd_txn *tx, uint32_t w, const unsigned char **lens) {
  unsigned char kb[5];
  kb[0] = 'D';
  be32(kb + 1, w);
  const void *v;
  size_t vl;
  int rc = store_lex_get_fast(tx, kb, 5, &v, &vl); /* CRC: warden check */
  if (rc == WARDEN_ENOTFOUND) {
    *lens = NULL;
    return 0;
  }
  if (rc) return rc;
  if (vl != WD_LEX_WIN * 4)
    return wd_err(tx->db, WARDEN_ECORRUPT, "lexical index: chunk lengths of window %u are damaged", w);
  *lens = v;
  return 0;
}

static uint32_t len_at(const unsigned char *lens, uint32_t off) {
  uint32_t d = 0;
  if (lens) memcpy(&d, lens + 4 * off, 4);
  return d;
}

int wd_lex_search(warden *db, wd_txn *tx, const char *text, const roaring_bitmap_t *allowed,
                  size_t k, wd_lex_hit **hits, size_t *nout, wd_lex_info *info) {
  return wd_lex_search_stats(db, tx, text, NULL, allowed, k, hits, nout, info);
}

/* Sum of the chunk lengths of the slots of s (stats set given apart). */
static int stats_sumdl(wd_txn *tx, const roaring_bitmap_t *s, uint64_t *sum) {
  *sum = 0;
  roaring_uint32_iterator_t *si = roaring_create_iterator(s);
  if (!si) return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
  int rc = 0;
  uint32_t cw = UINT32_MAX;
  const unsigned char *lens = NULL;
  for (; si->has_value; roaring_advance_uint32_iterator(si)) {
    uint32_t v = si->current_value, w = v / WD_LEX_WIN;
    if (w != cw) {
      if ((rc = get_lens(tx, w, &lens))) break;
      cw = w;
    }
    *sum += len_at(lens, v % WD_LEX_WIN);
  }
  roaring_free_uint32_iterator(si);
  return rc;
}

int wd_lex_term_slots(warden *db, wd_txn *tx, const char *text, roaring_bitmap_t *out) {
  char **terms = NULL;
  size_t *tlen = NULL, nt = 0;
  if (wd_lex_query_terms(db, text, &terms, &tlen, &nt)) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  int rc = 0;
  for (size_t t = 0; t < nt && db->have_lex && !rc; t++) {
    char kb[WD_LEX_MAXTERM + 8];
    kb[0] = 'B';
    memcpy(kb + 1, terms[t], tlen[t]);
    const void *v;
    size_t vl;
    rc = store_lex_get(tx, kb, tlen[t] + 1, &v, &vl);
    if (rc == WARDEN_ENOTFOUND) {
      rc = 0;
      continue;
    }
    if (rc) break;
    roaring_bitmap_t *bm = roaring_bitmap_portable_deserialize_safe(v, vl);
    if (!bm) {
      rc = wd_err(db, WARDEN_ECORRUPT, "lexical index: slot bitmap of a term is damaged");
      break;
    }
    roaring_bitmap_or_inplace(out, bm);
    roaring_bitmap_free(bm);
  }
  for (size_t i = 0; i < nt; i++) wd_free(terms[i]);
  wd_free(terms);
  wd_free(tlen);
  return rc;
}

/* One lexical search's state, shared by its four steps below. */
typedef struct lexq {
  warden *db;
  wd_txn *tx;
  const roaring_bitmap_t *stats, *allowed;
  size_t k;
  wd_lex_info *info;
  char **terms;
  size_t *tlen, nt;
  uint64_t N;           /* chunks the statistics are over */
  double avgdl;
  size_t nwin;
  uint64_t staged_w;    /* windows at and above it: an unpublished staged ingest's (stage.h) */
  uint32_t *wa, *wl;    /* per window: allowed / live slots */
  roaring_bitmap_t *live;
  roaring_uint32_iterator_t *it; /* over allowed */
  double *idf;          /* per term */
  went *ents;           /* (window, term) pairs that may score */
  size_t nents, capents;
  win *wins;            /* windows, by decreasing bound */
  size_t nwins;
  wd_lex_hit *heap;     /* the k best so far (min-heap) */
  size_t hn;
  double *acc;          /* per slot of a window: its score so far */
  uint32_t *mark;       /* per slot: the epoch acc[] was last reset in */
  uint16_t *touched;    /* slots scored in the current window */
  uint64_t wbits[WD_LEX_WIN / 64]; /* the allowed slots of a partly allowed window */
} lexq;

/* 1. per window: how many slots are allowed and live; the total length of
 * the allowed chunks.  A window whose live slots are all allowed (allowed
 * is a subset of live) is summed straight from its length block and later
 * scored without testing postings; only partly allowed windows are walked
 * slot by slot. */
static int lex_windows(lexq *L) {
  uint32_t maxs = roaring_bitmap_maximum(L->allowed);
  size_t nwin = L->nwin = (size_t)maxs / WD_LEX_WIN + 1;
  L->wa = wd_calloc(nwin, sizeof *L->wa);
  L->wl = wd_calloc(nwin, sizeof *L->wl);
  L->live = roaring_bitmap_create();
  L->it = roaring_create_iterator(L->allowed);
  if (!L->wa || !L->wl || !L->live || !L->it) return wd_err(L->db, WARDEN_ENOMEM, "out of memory");
  char lk[1] = {'L'};
  int rc = store_bm_or(L->tx, lk, 1, L->live);
  if (rc) return rc;
  uint64_t sumdl = 0;
  for (size_t w = 0; w < nwin; w++) {
    uint64_t lo = (uint64_t)w * WD_LEX_WIN, hi = lo + WD_LEX_WIN;
    L->wa[w] = (uint32_t)roaring_bitmap_range_cardinality(L->allowed, lo, hi);
    if (!L->wa[w]) continue;
    L->wl[w] = (uint32_t)roaring_bitmap_range_cardinality(L->live, lo, hi);
    const unsigned char *lens;
    if ((rc = get_lens(L->tx, (uint32_t)w, &lens))) return rc;
    if (!lens) continue;
    if (L->wa[w] == L->wl[w]) {
      uint32_t l4[WD_LEX_WIN];
      memcpy(l4, lens, sizeof l4);
      uint64_t s = 0;
      for (size_t i = 0; i < WD_LEX_WIN; i++) s += l4[i];
      sumdl += s;
    } else {
      uint32_t b[WD_LEX_WIN], got = 0;
      roaring_move_uint32_iterator_equalorlarger(L->it, (uint32_t)lo);
      if (L->it->has_value) got = roaring_read_uint32_iterator(L->it, b, L->wa[w]); /* all in w */
      for (uint32_t i = 0; i < got && b[i] < hi; i++) sumdl += len_at(lens, b[i] % WD_LEX_WIN);
    }
  }
  if (L->stats && (rc = stats_sumdl(L->tx, L->stats, &sumdl))) return rc; /* N, avgdl over stats */
  L->avgdl = sumdl ? (double)sumdl / (double)L->N : 1.0;
  return 0;
}

/* 2. per term: df over allowed (or stats), idf, the windows it may score
 * in with an upper bound of its weight there. */
static int lex_terms(lexq *L) {
  warden *db = L->db;
  L->staged_w = (store_meta_u64(L->tx, "next_slot") + WD_LEX_WIN - 1) / WD_LEX_WIN;
  for (size_t t = 0; t < L->nt; t++) {
    char kb[WD_LEX_MAXTERM + 8];
    kb[0] = 'B';
    memcpy(kb + 1, L->terms[t], L->tlen[t]);
    const void *v;
    size_t vl;
    int rc = store_lex_get(L->tx, kb, L->tlen[t] + 1, &v, &vl);
    if (rc == WARDEN_ENOTFOUND) continue;
    if (rc) return rc;
    roaring_bitmap_t *bm = roaring_bitmap_portable_deserialize_safe(v, vl);
    if (!bm) return wd_err(db, WARDEN_ECORRUPT, "lexical index: slot bitmap of a term is damaged");
    uint64_t df = roaring_bitmap_and_cardinality(bm, L->stats ? L->stats : L->allowed);
    roaring_bitmap_free(bm);
    if (df == 0) continue;
    L->info->terms_found++;
    L->idf[t] = wd_bm25_idf((double)L->N, (double)df);
    kb[0] = 'T';
    if ((rc = store_lex_get(L->tx, kb, L->tlen[t] + 1, &v, &vl))) {
      if (rc == WARDEN_ENOTFOUND)
        rc = wd_err(db, WARDEN_ECORRUPT, "lexical index: a term has slots but no directory");
      return rc;
    }
    if (vl % 12) return wd_err(db, WARDEN_ECORRUPT, "lexical index: directory of a term is damaged");
    for (size_t i = 0; i < vl / 12; i++) {
      const unsigned char *p = (const unsigned char *)v + 12 * i;
      uint32_t w, min_dl;
      uint16_t max_tf;
      memcpy(&w, p, 4);
      memcpy(&max_tf, p + 6, 2);
      memcpy(&min_dl, p + 8, 4);
      if (w >= L->staged_w) continue; /* an unpublished staged ingest's (stage.h) */
      L->info->windows++;
      if (w >= L->nwin || !L->wa[w]) {
        L->info->win_disallowed++;
        continue;
      }
      if (L->nents == L->capents) {
        size_t nc = L->capents ? L->capents * 2 : 256;
        went *ne = wd_realloc(L->ents, nc * sizeof *ne);
        if (!ne) return wd_err(db, WARDEN_ENOMEM, "out of memory");
        L->ents = ne;
        L->capents = nc;
      }
      went *e = &L->ents[L->nents++];
      e->w = w;
      e->t = (uint32_t)t;
      e->bound = wd_bm25_w(L->idf[t], (double)max_tf, (double)min_dl, L->avgdl) * (1.0 + 1e-9);
    }
  }
  return 0;
}

/* 3. the windows by decreasing bound (the sum of their terms' bounds). */
static int lex_order(lexq *L) {
  went *ents = L->ents;
  size_t nents = L->nents;
  if (nents) qsort(ents, nents, sizeof *ents, went_cmp);
  L->wins = wd_calloc(nents ? nents : 1, sizeof *L->wins);
  if (!L->wins) return wd_err(L->db, WARDEN_ENOMEM, "out of memory");
  for (size_t i = 0; i < nents;) {
    size_t j = i;
    double ub = 0;
    while (j < nents && ents[j].w == ents[i].w) ub += ents[j++].bound;
    win *W = &L->wins[L->nwins++];
    W->w = ents[i].w;
    W->first = i;
    W->n = j - i;
    W->ub = ub * (1.0 + 1e-9);
    i = j;
  }
  if (L->nwins) qsort(L->wins, L->nwins, sizeof *L->wins, win_cmp);
  return 0;
}

/* 4, one window: add every allowed posting of its terms into acc[], then
 * offer the window's scored slots to the heap. */
static int lex_score_window(lexq *L, const win *W, uint32_t epoch) {
  warden *db = L->db;
  wd_lex_info *info = L->info;
  double *acc = L->acc, avgdl = L->avgdl;
  uint32_t *mark = L->mark;
  uint16_t *touched = L->touched;
  uint64_t *wbits = L->wbits;
  const unsigned char *lens;
  int rc = get_lens(L->tx, W->w, &lens);
  if (rc) return rc;
  size_t ntouch = 0;
  uint32_t base = W->w * WD_LEX_WIN;
  int full = L->wa[W->w] == L->wl[W->w]; /* every live slot allowed: no test */
  if (!full) {
    memset(L->wbits, 0, sizeof L->wbits);
    uint32_t b[WD_LEX_WIN], got = 0;
    roaring_move_uint32_iterator_equalorlarger(L->it, base);
    if (L->it->has_value) got = roaring_read_uint32_iterator(L->it, b, L->wa[W->w]);
    for (uint32_t i = 0; i < got && b[i] < base + WD_LEX_WIN; i++) {
      uint32_t o = b[i] - base;
      wbits[o >> 6] |= 1ull << (o & 63);
    }
  }
  for (size_t e = W->first; e < W->first + W->n; e++) {
    uint32_t t = L->ents[e].t;
    size_t tl = L->tlen[t];
    char kb[WD_LEX_MAXTERM + 8];
    kb[0] = 'P';
    memcpy(kb + 1, L->terms[t], tl);
    kb[1 + tl] = 0;
    be32((unsigned char *)kb + 2 + tl, W->w);
    const void *v;
    size_t vl;
    if ((rc = store_lex_get_fast(L->tx, kb, tl + 6, &v, &vl))) { /* CRC: warden check */
      if (rc == WARDEN_ENOTFOUND)
        rc = wd_err(db, WARDEN_ECORRUPT, "lexical index: a directory names missing postings");
      return rc;
    }
    if (vl % 4 || !lens)
      return wd_err(db, WARDEN_ECORRUPT, "lexical index: postings of window %u are damaged", W->w);
    size_t n = vl / 4;
    const unsigned char *po = v, *pt = (const unsigned char *)v + 2 * n;
    double idf = L->idf[t];
    info->blocks++;
    for (size_t i = 0; i < n; i++) {
      uint16_t off, tf;
      memcpy(&off, po + 2 * i, 2);
      if (off >= WD_LEX_WIN) continue;
      if (!full && !(wbits[off >> 6] >> (off & 63) & 1)) continue; /* not allowed */
      info->postings++; /* only allowed postings: the plan reveals nothing else */
      memcpy(&tf, pt + 2 * i, 2);
      if (mark[off] != epoch) {
        mark[off] = epoch;
        acc[off] = 0.0;
        touched[ntouch++] = off;
      }
      acc[off] += wd_bm25_w(idf, (double)tf, (double)len_at(lens, off), avgdl);
      info->scored++;
    }
  }
  for (size_t i = 0; i < ntouch; i++)
    heap_push(L->heap, &L->hn, L->k, base + touched[i], acc[touched[i]]);
  return 0;
}

/* 4. score window by window; stop once no window can beat the k-th. */
static int lex_score(lexq *L) {
  uint32_t epoch = 0;
  for (size_t wi = 0; wi < L->nwins; wi++) {
    const win *W = &L->wins[wi];
    if (L->hn == L->k && W->ub < L->heap[0].score) {
      L->info->win_pruned += L->nwins - wi;
      break;
    }
    int rc = lex_score_window(L, W, ++epoch);
    if (rc) return rc;
  }
  return 0;
}

int wd_lex_search_stats(warden *db, wd_txn *tx, const char *text, const roaring_bitmap_t *stats,
                        const roaring_bitmap_t *allowed, size_t k, wd_lex_hit **hits,
                        size_t *nout, wd_lex_info *info) {
  double t0 = wd_now_ms();
  memset(info, 0, sizeof *info);
  *hits = NULL;
  *nout = 0;
  lexq *L = wd_calloc(1, sizeof *L);
  if (!L) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  L->db = db;
  L->tx = tx;
  L->stats = stats;
  L->allowed = allowed;
  L->k = k;
  L->info = info;
  int rc = wd_lex_query_terms(db, text, &L->terms, &L->tlen, &L->nt);
  if (rc) {
    wd_free(L);
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  }
  info->terms = L->nt;
  L->N = roaring_bitmap_get_cardinality(stats ? stats : allowed);
  L->idf = wd_calloc(L->nt ? L->nt : 1, sizeof *L->idf);
  L->heap = wd_calloc(k ? k : 1, sizeof *L->heap);
  L->acc = wd_malloc(WD_LEX_WIN * sizeof *L->acc);
  L->mark = wd_calloc(WD_LEX_WIN, sizeof *L->mark);
  L->touched = wd_malloc(WD_LEX_WIN * sizeof *L->touched);
  if (!L->idf || !L->heap || !L->acc || !L->mark || !L->touched)
    rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
  else if (L->N && L->nt && db->have_lex && !roaring_bitmap_is_empty(allowed) &&
           !(rc = lex_windows(L)) && !(rc = lex_terms(L)) && !(rc = lex_order(L)) &&
           !(rc = lex_score(L))) {
    qsort(L->heap, L->hn, sizeof *L->heap, hit_cmp);
    *hits = L->heap;
    *nout = L->hn;
    L->heap = NULL;
  }
  if (L->it) roaring_free_uint32_iterator(L->it);
  for (size_t i = 0; i < L->nt; i++) wd_free(L->terms[i]);
  wd_free(L->terms);
  wd_free(L->tlen);
  wd_free(L->wa);
  wd_free(L->wl);
  if (L->live) roaring_bitmap_free(L->live);
  wd_free(L->idf);
  wd_free(L->ents);
  wd_free(L->wins);
  wd_free(L->heap);
  wd_free(L->acc);
  wd_free(L->mark);
  wd_free(L->touched);
  wd_free(L);
  info->ms = wd_now_ms() - t0;
  if (rc && *hits) {
    wd_free(*hits);
    *hits = NULL;
    *nout = 0;
  }
  return rc;
}
