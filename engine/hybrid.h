/*
 * hybrid.h -- lexical and hybrid modes of a query: one candidate round.
 *
 * engine/query.c owns the snapshot, the allowed set and the resolver
 * rounds; for modes other than semantic it calls wd_hybrid_round where it
 * would call wd_search, with the same candidate set (allowed minus what
 * the resolver refused) and the same round size kk.  So the allowed set
 * gates both sides inside their traversals, and the resolver post-check
 * and the exactly-k rounds apply unchanged.
 *
 * Fusion (warden.yaml lexical.fusion):
 *   rrf (default)  score = sum over the sides that ranked the chunk of
 *                  1 / (rrf_k + rank), rrf_k = lexical.rrf_k (default 60),
 *                  rank 1-based within that side's top kk;
 *   weighted       each side's scores min-max normalised over its own top
 *                  kk (a side with one distinct score gives 1), then
 *                  semantic_weight * sem + (1 - semantic_weight) * lex;
 *                  a chunk one side did not rank gets 0 from it.
 * Ties: the older chunk (lower slot) first.  Each side contributes its top
 * kk (kk = k without a resolver, the round size with one).
 */
#ifndef WD_HYBRID_H
#define WD_HYBRID_H
#include <roaring/roaring.h>

#include "engine/search.h"
#include "engine/store.h"
#include "index/topk.h"

/* Per hit of a round: score shown to the caller and each side's rank. */
typedef struct wd_fused {
  size_t n;
  uint32_t *slot;
  float *score;
  uint32_t *srank, *lrank;
  double *sem, *lex; /* each side's score (rankfix: fusion redone after the resolver) */
} wd_fused;

void wd_fused_free(wd_fused *f);
/* Score and ranks of slot from the round (found by position pos first). */
void wd_fused_apply(const wd_fused *f, size_t pos, uint32_t slot, warden_hit *h);

/* One round of a lexical (o->mode LEXICAL) or hybrid query over cand: fill
 * heap (initialised with k = kk) in fused order (dist = position), fz with
 * the scores and ranks, si with the plan (strategy "lexical"/"hybrid",
 * detail holding each side's plan).  qv: the (normalised) query vector,
 * unused in lexical mode.  Returns 0 or a negative warden code. */
int wd_hybrid_round(warden *db, wd_txn *tx, const warden_query_opts *o, const float *qv,
                    const roaring_bitmap_t *cand, uint64_t ncand, uint64_t nlive,
                    uint64_t set_key, wd_topk *heap, wd_search_info *si, wd_fused *fz,
                    const roaring_bitmap_t *lstats);
/* lstats (rankfix): the set BM25's N, df and avgdl are computed over; NULL
 * means cand.  With a resolver query.c passes a set holding no document
 * the resolver denied (README "Hybrid", "Lexical statistics"). */

/* rankfix: after the resolver rounds, hits[0..n) are the candidates that
 * passed every check, in the round's fused order (dist = position in fz).
 * Renumber each side's ranks among them only (1, 2, ... in that side's
 * order; as without a resolver a side contributes its top k), redo the fusion from those ranks (weighted: normalised over
 * them), re-sort (ties: lower slot) and keep at most k: hits and fz are
 * rewritten (dist = new position) and *nout set.  So no score, rank or
 * order depends on a candidate the resolver refused.  0 or
 * WARDEN_ENOMEM (message set). */
int wd_fused_renumber(warden *db, wd_fused *fz, int lexical, wd_hit_i *hits, size_t n, size_t k,
                      size_t *nout);

#endif
