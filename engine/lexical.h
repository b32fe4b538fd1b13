/*
 * lexical.h -- the lexical index: tokenizer, postings in LMDB, BM25.
 *
 * Tokenizer (the same for chunks and query texts):
 *   - the text is decoded as UTF-8 (an invalid byte is a separator);
 *   - word characters are Unicode letters and decimal digits (ICU
 *     u_isalnum) and, inside a word, combining marks;
 *   - every character is case-folded (ICU simple case folding, u_foldCase:
 *     all scripts, e.g. "ΣΟΦΊΑ" -> "σοφία", "ПРИВЕТ" -> "привет");
 *   - a word is a maximal run of word characters; a word that contains no
 *     digit is stemmed with Snowball (libstemmer) in the collection's
 *     language (lexical.language, default english; none: no stemming);
 *   - identifiers: words joined by single '-', '_', '.', '/', ':' or '@'
 *     with a word character on both sides ("ERR-4521", "v1.2.3",
 *     "a.b@c.org") are also emitted whole, case-folded and unstemmed, after
 *     their parts: "ERR-4521" gives "err", "4521", "err-4521", so a query
 *     for the exact identifier ranks its holder first and one for "4521"
 *     still finds it;
 *   - a token is at most WD_LEX_MAXTERM bytes (longer ones are cut at a
 *     character boundary).
 *   A chunk's length (BM25's dl) is its number of tokens.
 *
 * Layout (named database "lexicon", values end with a CRC-32C):
 *   "T"+term              directory: per window w (slots w*4096..+4095)
 *                         holding postings of term, 12 bytes
 *                         {u32 w, u16 n, u16 max_tf, u32 min_dl}, by w
 *   "B"+term              CRoaring portable bitmap of the term's slots
 *                         (df over an allowed set = one AND-cardinality)
 *   "P"+term+"\0"+u32be w postings of term in window w: u16 off[n] (slot
 *                         & 4095, increasing) then u16 tf[n]
 *   "D"+u32be w           u32 dl[4096]: token count of every slot of w
 *                         (0 for free slots)
 * A write transaction keeps every touched entry in memory and writes it at
 * commit or at a spill of a long ingest (store.c: once the entries hold
 * WD_SPILL_LEX bytes, wd_lex_flush, then what it wrote is dropped), so
 * postings change in the same transaction as the chunks they describe.
 * Of a stored term it reads only what a change needs: not its "B" (adds
 * wait as the tails of its posting blocks and are merged into the stored
 * bitmap when it is written, or before a removal from it), and of its
 * "T" only the windows from the first one touched on (the entries below
 * are copied back as stored).  An ingest adds windows past the stored
 * ones, so its memory does not grow with the collection; each flush still
 * rewrites every touched term's "B" and "T" whole (their size grows with
 * the collection).  max_tf/min_dl are bounds: a removal lowers n and
 * recomputes max_tf but keeps min_dl (still a valid lower bound).
 */
#ifndef WD_LEXICAL_H
#define WD_LEXICAL_H
#include <jansson.h>
#include <math.h>
#include <roaring/roaring.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/store.h"

#define WD_LEX_MAXTERM 128
#define WD_LEX_WIN 4096u /* slots per posting window */
#define WD_LEX_K1 1.2
#define WD_LEX_B 0.75

/* Languages of lexical.language, index = wd_config.lex_language; 0 is the
 * default (english).  NULL-terminated. */
extern const char *const wd_lex_languages[];
/* Index of name in wd_lex_languages, or -1. */
int wd_lex_language_parse(const char *name);

/* A tokenizer for one thread (the stemmer keeps state). */
typedef struct wd_lexer {
  struct sb_stemmer *st; /* NULL: no stemming */
  char *buf;             /* scratch for one compound token */
  size_t cap;
  wd_hmap stems;         /* word -> [u8 len][stem] (lexical.c) */
} wd_lexer;
/* 0, or WARDEN_ENOMEM (with no message: callers add it). */
int wd_lexer_init(wd_lexer *lx, int language);
void wd_lexer_free(wd_lexer *lx);
/* Call fn(term, len, ctx) for every token of text, in order.  Returns 0,
 * fn's nonzero return, or WARDEN_ENOMEM. */
int wd_lex_tokens(wd_lexer *lx, const char *text, size_t n,
                  int (*fn)(const char *t, size_t len, void *ctx), void *ctx);

/* BM25 (Robertson/Sparck Jones with Lucene's non-negative idf):
 *   idf = ln(1 + (N - df + 0.5) / (df + 0.5))
 *   w   = idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))
 * N, df and avgdl are taken over the caller's allowed set, never over the
 * whole collection.  A chunk's score is the sum of w over the distinct
 * query terms, added in the order the terms first occur in the query. */
static inline double wd_bm25_idf(double N, double df) {
  return log(1.0 + (N - df + 0.5) / (df + 0.5));
}
static inline double wd_bm25_w(double idf, double tf, double dl, double avgdl) {
  return idf * tf * (WD_LEX_K1 + 1.0) /
         (tf + WD_LEX_K1 * (1.0 - WD_LEX_B + WD_LEX_B * dl / avgdl));
}

/* Index (set=1) or unindex (set=0) the chunk texts of slots in a write
 * transaction (doc.c calls this from doc_index, so every ingest, upsert,
 * delete and compact path keeps the postings).  The chunk records must
 * exist. */
int wd_lex_doc(wd_txn *tx, const uint32_t *slots, size_t n, int set);
/* The tokens of chunk texts counted ahead of wd_lex_doc_pre, e.g. by the
 * ingest's parsing thread while another applies the batch before: per
 * chunk its distinct terms in first-occurrence order, their counts and
 * hashes, and its token count -- what wd_lex_doc computes from the stored
 * text, so postings come out the same.  Zeroed = empty. */
typedef struct wd_lexpre {
  char *arena; /* the distinct terms' bytes */
  size_t alen, acap;
  uint32_t *toff, *tlen, *tcnt;
  uint64_t *th;
  size_t nt, capt;
  struct wd_lexpre_ch {
    size_t first;  /* its first term */
    uint32_t nd;   /* distinct terms */
    uint32_t ntok; /* tokens (BM25's dl) */
  } *ch;
  size_t nch, capch;
  struct tcount *tc; /* scratch (lexical.c) */
} wd_lexpre;
/* Count text's tokens with lx as chunk p->nch (the next).  0 or
 * WARDEN_ENOMEM (no message; p is as before). */
int wd_lex_pre_add(wd_lexpre *p, wd_lexer *lx, const char *text, size_t n);
void wd_lex_pre_reset(wd_lexpre *p); /* empty, memory kept */
void wd_lex_pre_free(wd_lexpre *p);
/* As wd_lex_doc(tx, slots, n, 1), from chunks first .. first + n - 1 of p
 * (their texts are the chunk records' of slots). */
int wd_lex_doc_pre(wd_txn *tx, const uint32_t *slots, size_t n, const wd_lexpre *p,
                   size_t first);
/* store.c: write the transaction's dirty lexical entries (at commit) /
 * drop them (always, after commit or abort). */
int wd_lex_flush(wd_txn *tx);
void wd_lex_txn_free(wd_txn *tx);
/* Bytes the transaction's dirty lexical entries hold (an estimate that
 * grows with the postings added; store_write_spill writes them past
 * WD_SPILL_LEX). */
size_t wd_lex_mem(const wd_txn *tx);
/* store.c, after a spill's wd_lex_flush: forget the written entries (the
 * next change reads them back from the transaction), keep the lexer. */
void wd_lex_txn_drop(wd_txn *tx);

/* warden check: rebuild the postings of every live chunk (live: slots in
 * "L") from its text and compare with what is stored; append problems to
 * probs (at most 100 entries in all).  Returns the number of problems or a
 * negative warden code. */
int wd_lex_check(warden *db, wd_txn *tx, const roaring_bitmap_t *live, json_t *probs);

/* ---------------------------------------------------------- search */

typedef struct wd_lex_hit {
  uint32_t slot;
  double score;
} wd_lex_hit;

typedef struct wd_lex_info {
  size_t terms;        /* distinct query terms */
  size_t terms_found;  /* of which with postings in the allowed set */
  uint64_t windows;    /* windows holding a query term */
  uint64_t win_disallowed; /* skipped: no allowed slot */
  uint64_t win_pruned; /* skipped: block-max bound below the k-th score */
  uint64_t blocks;     /* posting blocks decoded */
  uint64_t postings;   /* allowed postings read in decoded blocks */
  uint64_t scored;     /* allowed postings scored */
  double ms;
} wd_lex_info;

/* The distinct tokens of a query text, in first-occurrence order (at most
 * 1024): *terms (each and the array wd_free), *lens.  0 or WARDEN_ENOMEM
 * (no message). */
int wd_lex_query_terms(warden *db, const char *text, char ***terms, size_t **lens, size_t *n);

/* BM25 top-k of text over allowed (the candidate set of this round):
 * *hits (wd_free) best first, ties by slot (the older chunk first), *n of
 * them (<= k).  Statistics over allowed only.  Returns 0 or a negative
 * warden code with the message set. */
int wd_lex_search(warden *db, wd_txn *tx, const char *text, const roaring_bitmap_t *allowed,
                  size_t k, wd_lex_hit **hits, size_t *n, wd_lex_info *info);

/* rankfix: as wd_lex_search, but N, df and avgdl over stats (NULL: over
 * allowed); the traversal and the hits stay within allowed.  query.c
 * passes the resolver-checked set here (see README "Hybrid"). */
int wd_lex_search_stats(warden *db, wd_txn *tx, const char *text, const roaring_bitmap_t *stats,
                        const roaring_bitmap_t *allowed, size_t k, wd_lex_hit **hits, size_t *n,
                        wd_lex_info *info);
/* rankfix: OR into out the slots (live or not) holding any token of text.
 * 0 or a negative warden code with the message set. */
int wd_lex_term_slots(warden *db, wd_txn *tx, const char *text, roaring_bitmap_t *out);

#endif
