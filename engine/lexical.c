/*
 * lexical.c -- tokenizer and the postings' write path (see lexical.h).
 */
#include "engine/lexical.h"

#include <libstemmer.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unicode/uchar.h>

const char *const wd_lex_languages[] = {
    "english",  "none",       "arabic",   "armenian",  "basque",     "catalan",
    "danish",   "dutch",      "finnish",  "french",    "german",     "greek",
    "hindi",    "hungarian",  "indonesian", "irish",   "italian",    "lithuanian",
    "nepali",   "norwegian",  "porter",   "portuguese", "romanian",  "russian",
    "serbian",  "spanish",    "swedish",  "tamil",     "turkish",    "yiddish",
    NULL};

int wd_lex_language_parse(const char *name) {
  for (int i = 0; wd_lex_languages[i]; i++)
    if (strcmp(wd_lex_languages[i], name) == 0) return i;
  return -1;
}

/* ----------------------------------------------------------- tokenizer */

int wd_lexer_init(wd_lexer *lx, int language) {
  memset(lx, 0, sizeof *lx);
  if (language < 0 || language == 1 /* none */) return 0;
  const char *name = wd_lex_languages[language];
  lx->st = sb_stemmer_new(name, "UTF_8");
  /* a language this libstemmer lacks is refused by config; NULL here is
   * out of memory */
  return lx->st ? 0 : WARDEN_ENOMEM;
}

void wd_lexer_free(wd_lexer *lx) {
  if (lx->st) sb_stemmer_delete(lx->st);
  WD_HMAP_FOREACH(&lx->stems, e) wd_free(e->val);
  wd_hmap_free(&lx->stems);
  wd_free(lx->buf);
  memset(lx, 0, sizeof *lx);
}

/* Decode one UTF-8 code point at p (< e); *len its byte length.  Invalid
 * sequences give -1 with len 1. */
static int32_t utf8_next(const unsigned char *p, const unsigned char *e, size_t *len) {
  unsigned c = p[0];
  *len = 1;
  if (c < 0x80) return (int32_t)c;
  int n;
  uint32_t cp;
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return -1;
  }
  if (e - p < n) return -1;
  for (int i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) return -1;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
      cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return -1;
  *len = (size_t)n;
  return (int32_t)cp;
}

static size_t utf8_put(char *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xc0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

static int is_word(int32_t c) {
  if (c < 0x80) /* ASCII without ICU (and -1, an invalid byte) */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  return u_isalnum(c);
}
static int is_digit(int32_t c) { return c < 0x80 ? c >= '0' && c <= '9' : u_isdigit(c); }
static uint32_t fold(int32_t c) {
  if (c < 0x80) return (uint32_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return (uint32_t)u_foldCase(c, U_FOLD_CASE_DEFAULT);
}
static int is_mark(int32_t c) {
  if (c < 0x80) return 0;
  int8_t t = u_charType(c);
  return t == U_NON_SPACING_MARK || t == U_ENCLOSING_MARK || t == U_COMBINING_SPACING_MARK;
}
static int is_joiner(int32_t c) {
  return c == '-' || c == '_' || c == '.' || c == '/' || c == ':' || c == '@';
}

/* The length of s cut to at most max bytes at a character boundary. */
static size_t cut(const char *s, size_t n, size_t max) {
  if (n <= max) return n;
  size_t m = max;
  while (m > 0 && ((unsigned char)s[m] & 0xc0) == 0x80) m--;
  return m;
}

/* Emit one word (folded bytes w[0..n)): stemmed unless it has a digit. */
/* Stems already computed by this lexer: word -> [u8 len][stem], at most
 * STEM_CACHE words (natural text repeats its words; Snowball costs more
 * than a hash lookup). */
#define STEM_CACHE 65536

static int emit_word(wd_lexer *lx, const char *w, size_t n, int digit,
                     int (*fn)(const char *, size_t, void *), void *ctx) {
  if (lx->st && !digit) {
    const unsigned char *c = n <= 64 ? wd_hmap_get(&lx->stems, w, n) : NULL;
    if (c) return fn((const char *)c + 1, c[0], ctx);
    const sb_symbol *s = sb_stemmer_stem(lx->st, (const sb_symbol *)w, (int)n);
    if (!s) return WARDEN_ENOMEM;
    int sl = sb_stemmer_length(lx->st);
    if (sl > 0) {
      size_t cl = cut((const char *)s, (size_t)sl, WD_LEX_MAXTERM);
      if (n <= 64 && cl <= 255 && lx->stems.n < STEM_CACHE) {
        unsigned char *e = wd_malloc(cl + 1);
        if (e) {
          e[0] = (unsigned char)cl;
          memcpy(e + 1, s, cl);
          if (wd_hmap_put(&lx->stems, w, n, e, NULL)) wd_free(e); /* uncached: fine */
        }
      }
      return fn((const char *)s, cl, ctx);
    }
  }
  return fn(w, cut(w, n, WD_LEX_MAXTERM), ctx);
}

int wd_lex_tokens(wd_lexer *lx, const char *text, size_t n,
                  int (*fn)(const char *t, size_t len, void *ctx), void *ctx) {
  const unsigned char *p = (const unsigned char *)text, *e = p + n;
  /* the folded text of one compound is at most 4 bytes per input byte
   * (folding never makes a code point longer than 4 bytes) */
  while (p < e) {
    size_t l;
    int32_t c = utf8_next(p, e, &l);
    if (!is_word(c)) {
      p += l;
      continue;
    }
    /* a compound: words separated by single joiners */
    size_t cl = 0, wstart = 0, nparts = 0;
    int digit = 0;
    const unsigned char *q = p;
    for (;;) {
      if (lx->cap < cl + 8) {
        size_t nc = lx->cap ? lx->cap * 2 : 256;
        while (nc < cl + 8) nc *= 2;
        char *nb = wd_realloc(lx->buf, nc);
        if (!nb) return WARDEN_ENOMEM;
        lx->buf = nb;
        lx->cap = nc;
      }
      size_t ql = 0;
      int32_t d = q < e ? utf8_next(q, e, &ql) : -1;
      if (q < e && (is_word(d) || (is_mark(d) && cl > wstart))) {
        if (is_digit(d)) digit = 1;
        cl += utf8_put(lx->buf + cl, fold(d));
        q += ql;
        continue;
      }
      /* end of a word */
      int rc = emit_word(lx, lx->buf + wstart, cl - wstart, digit, fn, ctx);
      if (rc) return rc;
      nparts++;
      digit = 0;
      size_t nl = 0;
      if (q < e && is_joiner(d) && q + ql < e && is_word(utf8_next(q + ql, e, &nl))) {
        lx->buf[cl++] = (char)d;
        q += ql;
        wstart = cl;
        continue;
      }
      break;
    }
    if (nparts > 1) {
      int rc = fn(lx->buf, cut(lx->buf, cl, WD_LEX_MAXTERM), ctx);
      if (rc) return rc;
    }
    p = q;
  }
  return 0;
}

/* ---------------------------------------------------- the write path */

typedef struct dirent_ {
  uint32_t w;
  uint16_t n, max_tf;
  uint32_t min_dl;
} dirent_;

/* Expected postings of wd_lex_check. */
typedef struct lblock {
  uint16_t *off, *tf;
  size_t n, cap;
} lblock;

/* The write path keeps, per dirty term, one lterm (in the transaction's
 * arena, its key inline) holding the term's slot bitmap, its directory
 * and its dirty posting windows (sorted by window).  Small directories
 * and blocks live inside the lterm, so a term seen once costs no
 * allocation besides its bitmap. */
#define PB_INL 4  /* postings held inline by a block */
#define DIR_INL 2 /* directory entries held inline by a term */

typedef struct pblock {
  uint32_t w, n, cap;
  uint32_t n0; /* postings read from the store (a lazy term's pending
                * adds are off[n0..n)) */
  uint16_t *p; /* NULL: inl; else off[cap] then tf[cap] */
  uint16_t inl[2 * PB_INL];
} pblock;
#define PB_OFF(b) ((b)->p ? (b)->p : (b)->inl)
#define PB_TF(b) (PB_OFF(b) + (b)->cap)

typedef struct lterm {
  uint64_t hash;
  /* NULL: a new term (its slots are its postings'), or a lazy one */
  roaring_bitmap_t *bm;
  /* a stored term whose slot bitmap is not read: the stored bitmap plus
   * the pending adds of its blocks is the term's (term_load_bm) */
  int lazy;
  /* the directory in memory holds the windows from dlo on; the stored
   * entries below dlo are read only if needed (dir_extend) and written
   * back as they are (0: all of it is in memory, or nothing is stored) */
  uint32_t dlo;
  dirent_ *dir; /* NULL: dir1 */
  size_t ndir, capdir;
  pblock *blk; /* NULL: blk1 */
  size_t nblk, capblk;
  dirent_ dir1[DIR_INL];
  pblock blk1[1];
  uint32_t klen;
  char key[];
} lterm;
#define LT_DIR(t) ((t)->dir ? (t)->dir : (t)->dir1)
#define LT_BLK(t) ((t)->blk ? (t)->blk : (t)->blk1)

typedef struct achunk {
  struct achunk *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
} achunk;
#define ACHUNK (256u << 10)

/* Per chunk: distinct terms with their counts.  Tokens go to one arena
 * (reused from chunk to chunk), then sorted and grouped: no allocation per
 * token. */
typedef struct tcount {
  char *arena;
  size_t alen, acap;
  uint32_t *off, *len; /* per token */
  size_t ntok, captok;
  uint32_t *dtok, *dcnt; /* per distinct term: a token of it, its count */
  uint64_t *dh;          /* and its wd_hash64 */
  size_t nd, capd;
  uint32_t *ht; /* count_text's table: distinct index + 1, 0 empty */
  size_t htcap;
} tcount;

typedef struct wd_lexw {
  wd_lexer lx;
  int lx_ok;
  lterm **tab; /* open addressing by lterm.hash, NULL = empty */
  size_t tcap, tn;
  achunk *ar; /* lterms; all freed with the transaction */
  wd_hmap lens; /* u32 window -> uint32_t[WD_LEX_WIN] */
  size_t mem;   /* bytes held by the dirty entries (an estimate) */
  size_t mapped; /* bytes of stored values read since the map was released */
  tcount tc;    /* scratch of wd_lex_doc */
} wd_lexw;

static void *arena_alloc(wd_lexw *x, size_t sz) {
  sz = (sz + 15) & ~(size_t)15;
  x->mem += sz;
  if (!x->ar || x->ar->cap - x->ar->used < sz) {
    size_t cap = sz > ACHUNK / 4 ? sz : ACHUNK;
    achunk *c = wd_malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->used = 0;
    c->cap = cap;
    if (sz > ACHUNK / 4 && x->ar) { /* a big one: keep filling the current chunk */
      c->next = x->ar->next;
      x->ar->next = c;
      c->used = sz;
      return c->data;
    }
    c->next = x->ar;
    x->ar = c;
  }
  void *p = x->ar->data + x->ar->used;
  x->ar->used += sz;
  return p;
}

/* Free what an lterm owns (not the lterm: the arena holds it). */
static void lterm_release(lterm *t) {
  if (t->bm) roaring_bitmap_free(t->bm);
  wd_free(t->dir);
  pblock *b = LT_BLK(t);
  for (size_t i = 0; i < t->nblk; i++) wd_free(b[i].p);
  wd_free(t->blk);
}

static void lblock_free(lblock *b) {
  if (!b) return;
  wd_free(b->off);
  wd_free(b->tf);
  wd_free(b);
}

static void tcount_free(tcount *c) {
  wd_free(c->arena);
  wd_free(c->off);
  wd_free(c->len);
  wd_free(c->dtok);
  wd_free(c->dcnt);
  wd_free(c->dh);
  wd_free(c->ht);
  memset(c, 0, sizeof *c);
}

/* The dirty entries (terms, their arena, chunk lengths); the lexer and
 * the scratch stay. */
static void lexw_drop(wd_lexw *x) {
  for (size_t i = 0; i < x->tcap; i++)
    if (x->tab[i]) lterm_release(x->tab[i]);
  wd_free(x->tab);
  x->tab = NULL;
  x->tcap = x->tn = 0;
  while (x->ar) {
    achunk *n = x->ar->next;
    wd_free(x->ar);
    x->ar = n;
  }
  WD_HMAP_FOREACH(&x->lens, e) wd_free(e->val);
  wd_hmap_free(&x->lens);
  x->mem = 0;
}

size_t wd_lex_mem(const wd_txn *tx) { return tx->lex ? tx->lex->mem : 0; }

void wd_lex_txn_drop(wd_txn *tx) {
  if (tx->lex) lexw_drop(tx->lex);
}

void wd_lex_txn_free(wd_txn *tx) {
  wd_lexw *x = tx->lex;
  if (!x) return;
  lexw_drop(x);
  tcount_free(&x->tc);
  if (x->lx_ok) wd_lexer_free(&x->lx);
  wd_free(x);
  tx->lex = NULL;
}

static void be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static size_t tkey(char *kb, char kind, const char *t, size_t tl) {
  kb[0] = kind;
  memcpy(kb + 1, t, tl);
  return tl + 1;
}

static size_t pkey(char *kb, const char *t, size_t tl, uint32_t w) {
  kb[0] = 'P';
  memcpy(kb + 1, t, tl);
  kb[1 + tl] = 0;
  be32((unsigned char *)kb + 2 + tl, w);
  return tl + 6;
}

/* The map pages a flush reads (every touched term's slot bitmap and
 * directory: they grow with the collection) count in the resident set
 * until released; released every WD_LEX_MAPPED bytes read. */
#define WD_LEX_MAPPED ((size_t)64 << 20)
static void lex_mapped(wd_txn *tx, size_t n) {
  wd_lexw *x = tx->lex;
  if ((x->mapped += n) < WD_LEX_MAPPED) return;
  store_release_map(tx->db);
  x->mapped = 0;
}

static int oom(wd_txn *tx) { return wd_err(tx->db, WARDEN_ENOMEM, "out of memory"); }

static int corrupt(warden *db, const char *what, const char *t, size_t tl) {
  return wd_err(db, WARDEN_ECORRUPT, "lexical index: %s of term \"%.*s\" is damaged", what,
                (int)(tl > 60 ? 60 : tl), t);
}

static lterm **tab_slot(lterm **tab, size_t cap, const char *t, size_t tl, uint64_t h) {
  size_t mask = cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    lterm *e = tab[i];
    if (!e || (e->hash == h && e->klen == tl && memcmp(e->key, t, tl) == 0)) return &tab[i];
  }
}

static int tab_grow(wd_lexw *x) {
  size_t nc = x->tcap ? x->tcap * 2 : 1024;
  lterm **nt = wd_calloc(nc, sizeof *nt);
  if (!nt) return -1;
  for (size_t i = 0; i < x->tcap; i++)
    if (x->tab[i]) *tab_slot(nt, nc, x->tab[i]->key, x->tab[i]->klen, x->tab[i]->hash) = x->tab[i];
  wd_free(x->tab);
  x->tab = nt;
  x->tcap = nc;
  return 0;
}

static int term_mut(wd_txn *tx, const char *t, size_t tl, uint64_t h, lterm **out) {
  wd_lexw *x = tx->lex;
  if (x->tcap) {
    lterm *e = *tab_slot(x->tab, x->tcap, t, tl, h);
    if (e) {
      *out = e;
      return 0;
    }
  }
  if ((x->tn + 1) * 4 > x->tcap * 3 && tab_grow(x)) return oom(tx);
  char kb[WD_LEX_MAXTERM + 8];
  const void *v;
  size_t vl;
  lterm *lt = arena_alloc(x, sizeof *lt + tl);
  if (!lt) return oom(tx);
  memset(lt, 0, sizeof *lt);
  lt->hash = h;
  lt->klen = (uint32_t)tl;
  memcpy(lt->key, t, tl);
  lt->capdir = DIR_INL;
  lt->capblk = 1;
  /* a stored term has a directory (flush writes and deletes "B" and "T"
   * together).  Neither its slot bitmap (term_load_bm) nor its directory
   * (dir_extend) is read here: an ingest adds windows past the stored
   * ones, so touching a common term costs neither a decode that grows
   * with the collection nor memory that does */
  int rc = store_lex_get(tx, kb, tkey(kb, 'T', t, tl), &v, &vl);
  if (rc == 0) {
    lt->lazy = 1;
    if (vl % 12) {
      rc = corrupt(tx->db, "directory", t, tl);
    } else if (vl) { /* (an empty one, as earlier builds read it: none) */
      uint32_t lw;
      memcpy(&lw, (const char *)v + vl - 12, 4);
      lt->dlo = lw + 1;
      lex_mapped(tx, vl);
    }
  } else if (rc == WARDEN_ENOTFOUND) {
    rc = 0; /* a new term: no bitmap until needed (term_bitmap) */
  }
  if (rc) {
    lterm_release(lt);
    return rc;
  }
  *tab_slot(x->tab, x->tcap, t, tl, h) = lt;
  x->tn++;
  *out = lt;
  return 0;
}

/* The dirty block of window w of lt (loaded from LMDB when stored: the
 * term's directory names window w). */
static int block_mut(wd_txn *tx, lterm *lt, uint32_t w, int stored, pblock **out) {
  pblock *bs = LT_BLK(lt);
  size_t lo = 0, hi = lt->nblk;
  if (hi && bs[hi - 1].w == w) {
    *out = &bs[hi - 1];
    return 0;
  }
  if (hi && bs[hi - 1].w < w) lo = hi;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (bs[mid].w < w)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < lt->nblk && bs[lo].w == w) {
    *out = &bs[lo];
    return 0;
  }
  pblock b;
  memset(&b, 0, sizeof b);
  b.w = w;
  b.cap = PB_INL;
  const void *v;
  size_t vl;
  int rc = WARDEN_ENOTFOUND;
  if (stored) {
    char kb[WD_LEX_MAXTERM + 8];
    rc = store_lex_get(tx, kb, pkey(kb, lt->key, lt->klen, w), &v, &vl);
  }
  if (rc == 0) {
    if (vl % 4) {
      rc = corrupt(tx->db, "postings", lt->key, lt->klen);
    } else {
      b.n = b.n0 = (uint32_t)(vl / 4);
      if (b.n > PB_INL) {
        b.cap = b.n;
        if (!(b.p = wd_malloc((size_t)b.cap * 4))) rc = oom(tx);
        tx->lex->mem += (size_t)b.cap * 4;
      }
      if (!rc) {
        memcpy(PB_OFF(&b), v, (size_t)b.n * 2);
        memcpy(PB_TF(&b), (const char *)v + (size_t)b.n * 2, (size_t)b.n * 2);
      }
    }
  } else if (rc == WARDEN_ENOTFOUND) {
    rc = 0;
  }
  if (!rc && lt->nblk == lt->capblk) {
    size_t nc = lt->capblk * 2 < 4 ? 4 : lt->capblk * 2;
    pblock *nb = lt->blk ? wd_realloc(lt->blk, nc * sizeof *nb) : wd_malloc(nc * sizeof *nb);
    if (!nb) {
      rc = oom(tx);
    } else {
      if (!lt->blk) memcpy(nb, lt->blk1, lt->nblk * sizeof *nb);
      lt->blk = nb;
      lt->capblk = nc;
      bs = nb;
      tx->lex->mem += nc * sizeof *nb;
    }
  }
  if (rc) {
    wd_free(b.p);
    return rc;
  }
  memmove(bs + lo + 1, bs + lo, (lt->nblk - lo) * sizeof *bs);
  bs[lo] = b;
  lt->nblk++;
  *out = &bs[lo];
  return 0;
}

static int lens_mut(wd_txn *tx, uint32_t w, uint32_t **out) {
  wd_lexw *x = tx->lex;
  unsigned char kb[5];
  kb[0] = 'D';
  be32(kb + 1, w);
  uint32_t *l = wd_hmap_get(&x->lens, kb, 5);
  if (l) {
    *out = l;
    return 0;
  }
  if (!(l = wd_calloc(WD_LEX_WIN, sizeof *l))) return oom(tx);
  x->mem += WD_LEX_WIN * sizeof *l;
  const void *v;
  size_t vl;
  int rc = store_lex_get(tx, kb, 5, &v, &vl);
  if (rc == 0) {
    if (vl != WD_LEX_WIN * 4)
      rc = wd_err(tx->db, WARDEN_ECORRUPT, "lexical index: chunk lengths of window %u are damaged", w);
    else
      memcpy(l, v, vl);
  } else if (rc == WARDEN_ENOTFOUND) {
    rc = 0;
  }
  if (!rc && wd_hmap_put(&x->lens, kb, 5, l, NULL)) rc = oom(tx);
  if (rc) {
    wd_free(l);
    return rc;
  }
  *out = l;
  return 0;
}

static dirent_ dir_at(const void *v, size_t i) {
  const unsigned char *p = (const unsigned char *)v + 12 * i;
  dirent_ d;
  memcpy(&d.w, p, 4);
  memcpy(&d.n, p + 4, 2);
  memcpy(&d.max_tf, p + 6, 2);
  memcpy(&d.min_dl, p + 8, 4);
  return d;
}

/* Index of the first of the n stored entries at v with a window >= w. */
static size_t dir_lower(const void *v, size_t n, uint32_t w) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    uint32_t mw;
    memcpy(&mw, (const char *)v + 12 * mid, 4);
    if (mw < w)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Bring the stored directory entries of windows w..dlo-1 into memory
 * (before the ones there: the stored entries ascend). */
static int dir_extend(wd_txn *tx, lterm *lt, uint32_t w) {
  if (w >= lt->dlo) return 0;
  char kb[WD_LEX_MAXTERM + 8];
  const void *v;
  size_t vl;
  int rc = store_lex_get(tx, kb, tkey(kb, 'T', lt->key, lt->klen), &v, &vl);
  if (rc == WARDEN_ENOTFOUND) { /* damaged: check reports it */
    lt->dlo = 0;
    return 0;
  }
  if (rc) return rc;
  if (vl % 12) return corrupt(tx->db, "directory", lt->key, lt->klen);
  size_t n = vl / 12, i0 = dir_lower(v, n, w), i1 = dir_lower(v, n, lt->dlo), m = i1 - i0;
  if (m) {
    if (lt->ndir + m > lt->capdir) {
      size_t nc = lt->ndir + m;
      dirent_ *nd = wd_malloc(nc * sizeof *nd);
      if (!nd) return oom(tx);
      memcpy(nd + m, LT_DIR(lt), lt->ndir * sizeof *nd);
      wd_free(lt->dir);
      lt->dir = nd;
      lt->capdir = nc;
      tx->lex->mem += nc * sizeof *nd;
    } else {
      memmove(LT_DIR(lt) + m, LT_DIR(lt), lt->ndir * sizeof *lt->dir);
    }
    dirent_ *d = LT_DIR(lt);
    for (size_t i = 0; i < m; i++) d[i] = dir_at(v, i0 + i);
    lt->ndir += m;
  }
  lt->dlo = i0 ? w : 0; /* nothing stored below: all of it is here */
  return 0;
}

/* Index of window w in t's directory, or where it would go (*found 0). */
static size_t dir_find(const lterm *t, uint32_t w, int *found) {
  const dirent_ *d = LT_DIR(t);
  size_t lo = 0, hi = t->ndir;
  if (hi == 0 || d[hi - 1].w < w) { /* ingest appends: usually the last */
    *found = 0;
    return hi;
  }
  if (d[hi - 1].w == w) {
    *found = 1;
    return hi - 1;
  }
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (d[mid].w < w)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = lo < t->ndir && d[lo].w == w;
  return lo;
}

static int term_load_bm(wd_txn *tx, lterm *t);

static int posting_add(wd_txn *tx, const char *t, size_t tl, uint64_t h, uint32_t slot,
                       uint32_t tf, uint32_t dl) {
  lterm *lt;
  pblock *b;
  int rc = term_mut(tx, t, tl, h, &lt), found;
  uint32_t w = slot / WD_LEX_WIN;
  if (rc || (rc = dir_extend(tx, lt, w))) return rc;
  size_t di = dir_find(lt, w, &found);
  if ((rc = block_mut(tx, lt, w, found, &b))) return rc;
  uint16_t off = (uint16_t)(slot % WD_LEX_WIN), tf16 = (uint16_t)(tf > 65535 ? 65535 : tf);
  uint16_t *bo = PB_OFF(b);
  size_t pos = b->n;
  while (pos > 0 && bo[pos - 1] >= off) pos--;
  if (pos < b->n && bo[pos] == off) return 0; /* already there */
  /* pending adds are the tail of each block: one below a stored posting
   * (no ingest does that: slots ascend) reads the bitmap first */
  if (lt->lazy && pos < b->n0 && (rc = term_load_bm(tx, lt))) return rc;
  if (!found && lt->ndir == lt->capdir) {
    size_t nc = lt->capdir * 2 < 4 ? 4 : lt->capdir * 2;
    dirent_ *nd = lt->dir ? wd_realloc(lt->dir, nc * sizeof *nd) : wd_malloc(nc * sizeof *nd);
    if (!nd) return oom(tx);
    if (!lt->dir) memcpy(nd, lt->dir1, lt->ndir * sizeof *nd);
    lt->dir = nd;
    lt->capdir = nc;
    tx->lex->mem += nc * sizeof *nd;
  }
  if (b->n == b->cap) {
    uint32_t nc = b->cap * 2;
    uint16_t *np = wd_malloc((size_t)nc * 4);
    if (!np) return oom(tx);
    memcpy(np, PB_OFF(b), (size_t)b->n * 2);
    memcpy(np + nc, PB_TF(b), (size_t)b->n * 2);
    wd_free(b->p);
    b->p = np;
    b->cap = nc;
    tx->lex->mem += (size_t)nc * 4;
  }
  if (lt->bm) roaring_bitmap_add(lt->bm, slot);
  bo = PB_OFF(b);
  uint16_t *bt = PB_TF(b);
  if (pos < b->n) { /* ingest appends: usually at the end */
    memmove(bo + pos + 1, bo + pos, (b->n - pos) * 2);
    memmove(bt + pos + 1, bt + pos, (b->n - pos) * 2);
  }
  bo[pos] = off;
  bt[pos] = tf16;
  b->n++;
  dirent_ *ds = LT_DIR(lt);
  if (!found) {
    memmove(ds + di + 1, ds + di, (lt->ndir - di) * sizeof *ds);
    lt->ndir++;
    ds[di].w = w;
    ds[di].n = 0;
    ds[di].max_tf = 0;
    ds[di].min_dl = UINT32_MAX;
  }
  dirent_ *d = &ds[di];
  d->n++;
  if (tf16 > d->max_tf) d->max_tf = tf16;
  if (dl < d->min_dl) d->min_dl = dl;
  tx->changed = 1;
  return 0;
}

/* A new term's slot bitmap is the set of its postings (posting_add and
 * posting_del change both alike).  Built from them (ascending, adds
 * only), it is the bitmap the adds would have built: CRoaring's container
 * types under adds depend only on the cardinality. */
static size_t term_npost(const lterm *t) {
  const pblock *bs = LT_BLK(t);
  size_t n = 0;
  for (size_t i = 0; i < t->nblk; i++) n += bs[i].n;
  return n;
}

static int term_bitmap(wd_txn *tx, lterm *t) {
  size_t n = term_npost(t), k = 0;
  uint32_t *v = wd_malloc((n ? n : 1) * sizeof *v);
  if (!v) return oom(tx);
  const pblock *bs = LT_BLK(t);
  for (size_t i = 0; i < t->nblk; i++) {
    const uint16_t *o = PB_OFF(&bs[i]);
    for (size_t j = 0; j < bs[i].n; j++) v[k++] = bs[i].w * WD_LEX_WIN + o[j];
  }
  t->bm = roaring_bitmap_create();
  if (t->bm) roaring_bitmap_add_many(t->bm, n, v);
  wd_free(v);
  return t->bm ? 0 : oom(tx);
}

/* A lazy term's slot bitmap: the stored one plus its pending adds. */
static int term_load_bm(wd_txn *tx, lterm *t) {
  char kb[WD_LEX_MAXTERM + 8];
  const void *v;
  size_t vl;
  roaring_bitmap_t *bm = NULL;
  int rc = store_lex_get(tx, kb, tkey(kb, 'B', t->key, t->klen), &v, &vl);
  if (rc == 0) {
    lex_mapped(tx, vl);
    if (!(bm = roaring_bitmap_portable_deserialize_safe(v, vl)))
      return corrupt(tx->db, "slot bitmap", t->key, t->klen);
  } else if (rc == WARDEN_ENOTFOUND) { /* damaged: check reports it */
    if (!(bm = roaring_bitmap_create())) return oom(tx);
  } else {
    return rc;
  }
  uint32_t add[256];
  size_t na = 0;
  const pblock *bs = LT_BLK(t);
  for (size_t i = 0; i < t->nblk; i++) {
    const uint16_t *o = PB_OFF(&bs[i]);
    for (size_t j = bs[i].n0; j < bs[i].n; j++) {
      add[na++] = bs[i].w * WD_LEX_WIN + o[j];
      if (na == sizeof add / sizeof *add) {
        roaring_bitmap_add_many(bm, na, add);
        na = 0;
      }
    }
  }
  if (na) roaring_bitmap_add_many(bm, na, add);
  t->bm = bm;
  t->lazy = 0;
  return 0;
}

static int term_empty(const lterm *t) {
  if (t->lazy) return 0; /* stored (never empty) plus adds */
  return t->bm ? roaring_bitmap_is_empty(t->bm) : term_npost(t) == 0;
}

static int posting_del(wd_txn *tx, const char *t, size_t tl, uint64_t h, uint32_t slot) {
  lterm *lt;
  pblock *b;
  int rc = term_mut(tx, t, tl, h, &lt), found;
  uint32_t w = slot / WD_LEX_WIN;
  if (rc || (rc = dir_extend(tx, lt, w))) return rc;
  dir_find(lt, w, &found);
  if ((rc = block_mut(tx, lt, w, found, &b))) return rc;
  if (lt->lazy ? (rc = term_load_bm(tx, lt)) : !lt->bm && (rc = term_bitmap(tx, lt)))
    return rc;
  uint16_t off = (uint16_t)(slot % WD_LEX_WIN);
  uint16_t *bo = PB_OFF(b), *bt = PB_TF(b);
  size_t pos = 0;
  while (pos < b->n && bo[pos] < off) pos++;
  roaring_bitmap_remove(lt->bm, slot);
  tx->changed = 1;
  if (pos == b->n || bo[pos] != off) return 0; /* not there: check reports */
  memmove(bo + pos, bo + pos + 1, (b->n - pos - 1) * 2);
  memmove(bt + pos, bt + pos + 1, (b->n - pos - 1) * 2);
  b->n--;
  size_t di = dir_find(lt, w, &found);
  if (!found) return 0;
  dirent_ *ds = LT_DIR(lt);
  if (b->n == 0) {
    memmove(ds + di, ds + di + 1, (lt->ndir - di - 1) * sizeof *ds);
    lt->ndir--;
    return 0;
  }
  dirent_ *d = &ds[di];
  d->n = (uint16_t)b->n;
  d->max_tf = 0;
  for (size_t i = 0; i < b->n; i++)
    if (bt[i] > d->max_tf) d->max_tf = bt[i];
  return 0;
}

#define TC_TERM(c, j) ((c)->arena + (c)->off[(c)->dtok[j]])
#define TC_LEN(c, j) ((c)->len[(c)->dtok[j]])

static int count_tok(const char *t, size_t l, void *ctx) {
  tcount *c = ctx;
  if (c->alen + l > c->acap) {
    size_t nc = c->acap ? c->acap * 2 : 4096;
    while (nc < c->alen + l) nc *= 2;
    char *na = wd_realloc(c->arena, nc);
    if (!na) return WARDEN_ENOMEM;
    c->arena = na;
    c->acap = nc;
  }
  if (c->ntok == c->captok) {
    size_t nc = c->captok ? c->captok * 2 : 256;
    uint32_t *no = wd_realloc(c->off, nc * sizeof *no);
    if (!no) return WARDEN_ENOMEM;
    c->off = no;
    uint32_t *nl = wd_realloc(c->len, nc * sizeof *nl);
    if (!nl) return WARDEN_ENOMEM;
    c->len = nl;
    c->captok = nc;
  }
  if (c->alen > UINT32_MAX - l) return WARDEN_ENOMEM; /* > 4 GiB of tokens */
  memcpy(c->arena + c->alen, t, l);
  c->off[c->ntok] = (uint32_t)c->alen;
  c->len[c->ntok++] = (uint32_t)l;
  c->alen += l;
  return 0;
}

/* Tokens of a chunk text counted into c (its previous content dropped):
 * distinct terms in first-occurrence order, found with a hash table. */
static int count_text(wd_lexer *lx, const char *text, size_t tl, tcount *c) {
  c->alen = c->ntok = c->nd = 0;
  int rc = wd_lex_tokens(lx, text, tl, count_tok, c);
  if (rc) return rc;
  if (c->ntok > c->capd) {
    uint32_t *nt = wd_realloc(c->dtok, c->ntok * sizeof *nt);
    if (!nt) return WARDEN_ENOMEM;
    c->dtok = nt;
    uint32_t *nc = wd_realloc(c->dcnt, c->ntok * sizeof *nc);
    if (!nc) return WARDEN_ENOMEM;
    c->dcnt = nc;
    uint64_t *nh = wd_realloc(c->dh, c->ntok * sizeof *nh);
    if (!nh) return WARDEN_ENOMEM;
    c->dh = nh;
    c->capd = c->ntok;
  }
  size_t hc = 64;
  while (hc < 2 * c->ntok) hc *= 2;
  if (hc > c->htcap) {
    uint32_t *nh = wd_realloc(c->ht, hc * sizeof *nh);
    if (!nh) return WARDEN_ENOMEM;
    c->ht = nh;
    c->htcap = hc;
  }
  memset(c->ht, 0, hc * sizeof *c->ht);
  size_t nd = 0, mask = hc - 1;
  for (size_t i = 0; i < c->ntok; i++) {
    const char *t = c->arena + c->off[i];
    uint32_t l = c->len[i];
    uint64_t h = wd_hash64(t, l, 0);
    size_t k = h & mask;
    for (;; k = (k + 1) & mask) {
      uint32_t j = c->ht[k];
      if (!j) break;
      j--;
      if (c->dh[j] == h && c->len[c->dtok[j]] == l &&
          memcmp(c->arena + c->off[c->dtok[j]], t, l) == 0)
        break;
    }
    if (c->ht[k]) {
      c->dcnt[c->ht[k] - 1]++;
      continue;
    }
    c->ht[k] = (uint32_t)(nd + 1);
    c->dtok[nd] = (uint32_t)i;
    c->dh[nd] = h;
    c->dcnt[nd++] = 1;
  }
  c->nd = nd;
  return 0;
}

static int lexw_get(wd_txn *tx, wd_lexw **out) {
  if (!tx->lex) {
    wd_lexw *x = wd_calloc(1, sizeof *x);
    if (!x) return oom(tx);
    if (wd_lexer_init(&x->lx, tx->db->cfg.lex_language)) {
      wd_free(x);
      return oom(tx);
    }
    x->lx_ok = 1;
    tx->lex = x;
  }
  *out = tx->lex;
  return 0;
}

int wd_lex_doc(wd_txn *tx, const uint32_t *slots, size_t n, int set) {
  if (!tx->db->have_lex) return 0;
  wd_lexw *x = NULL;
  int rc = lexw_get(tx, &x);
  if (rc) return rc;
  tcount *c = &x->tc;
  for (size_t i = 0; i < n && !rc; i++) {
    uint32_t ord;
    const char *id, *text;
    size_t il, tl;
    if ((rc = store_chunk_get(tx, slots[i], &ord, &id, &il, &text, &tl))) {
      if (rc == WARDEN_ENOTFOUND)
        rc = wd_err(tx->db, WARDEN_ECORRUPT, "slot %u has no chunk record", slots[i]);
      break;
    }
    if ((rc = count_text(&x->lx, text, tl, c))) {
      if (rc == WARDEN_ENOMEM) rc = oom(tx);
      break;
    }
    uint32_t *lens = NULL;
    if ((rc = lens_mut(tx, slots[i] / WD_LEX_WIN, &lens))) break;
    uint32_t ntok = c->ntok > UINT32_MAX ? UINT32_MAX : (uint32_t)c->ntok;
    lens[slots[i] % WD_LEX_WIN] = set ? ntok : 0;
    tx->changed = 1;
    for (size_t j = 0; j < c->nd && !rc; j++) {
      const char *t = TC_TERM(c, j);
      size_t l = TC_LEN(c, j);
      uint64_t h = c->dh[j];
      rc = set ? posting_add(tx, t, l, h, slots[i], c->dcnt[j], ntok)
               : posting_del(tx, t, l, h, slots[i]);
    }
  }
  return rc;
}

/* ------------------------------------------------ tokens counted ahead */

int wd_lex_pre_add(wd_lexpre *p, wd_lexer *lx, const char *text, size_t n) {
  if (!p->tc && !(p->tc = wd_calloc(1, sizeof *p->tc))) return WARDEN_ENOMEM;
  tcount *c = p->tc;
  int rc = count_text(lx, text, n, c);
  if (rc) return rc;
  size_t bytes = 0;
  for (size_t j = 0; j < c->nd; j++) bytes += TC_LEN(c, j);
  if (p->alen + bytes > UINT32_MAX) return WARDEN_ENOMEM; /* offsets are u32 */
  if (p->nch == p->capch) {
    size_t nc = p->capch ? p->capch * 2 : 256;
    struct wd_lexpre_ch *nch = wd_realloc(p->ch, nc * sizeof *nch);
    if (!nch) return WARDEN_ENOMEM;
    p->ch = nch;
    p->capch = nc;
  }
  if (p->nt + c->nd > p->capt) {
    size_t nc = p->capt ? p->capt : 4096;
    while (nc < p->nt + c->nd) nc *= 2;
    uint32_t *a = wd_realloc(p->toff, nc * sizeof *a);
    if (!a) return WARDEN_ENOMEM;
    p->toff = a;
    if (!(a = wd_realloc(p->tlen, nc * sizeof *a))) return WARDEN_ENOMEM;
    p->tlen = a;
    if (!(a = wd_realloc(p->tcnt, nc * sizeof *a))) return WARDEN_ENOMEM;
    p->tcnt = a;
    uint64_t *h = wd_realloc(p->th, nc * sizeof *h);
    if (!h) return WARDEN_ENOMEM;
    p->th = h;
    p->capt = nc;
  }
  if (p->alen + bytes > p->acap) {
    size_t nc = p->acap ? p->acap : (size_t)1 << 16;
    while (nc < p->alen + bytes) nc *= 2;
    char *na = wd_realloc(p->arena, nc);
    if (!na) return WARDEN_ENOMEM;
    p->arena = na;
    p->acap = nc;
  }
  struct wd_lexpre_ch *ch = &p->ch[p->nch++];
  ch->first = p->nt;
  ch->nd = (uint32_t)c->nd;
  ch->ntok = c->ntok > UINT32_MAX ? UINT32_MAX : (uint32_t)c->ntok;
  for (size_t j = 0; j < c->nd; j++) {
    size_t l = TC_LEN(c, j);
    memcpy(p->arena + p->alen, TC_TERM(c, j), l);
    p->toff[p->nt] = (uint32_t)p->alen;
    p->tlen[p->nt] = (uint32_t)l;
    p->tcnt[p->nt] = c->dcnt[j];
    p->th[p->nt] = c->dh[j];
    p->nt++;
    p->alen += l;
  }
  return 0;
}

void wd_lex_pre_reset(wd_lexpre *p) { p->alen = p->nt = p->nch = 0; }

void wd_lex_pre_free(wd_lexpre *p) {
  wd_free(p->arena);
  wd_free(p->toff);
  wd_free(p->tlen);
  wd_free(p->tcnt);
  wd_free(p->th);
  wd_free(p->ch);
  if (p->tc) tcount_free(p->tc);
  wd_free(p->tc);
  memset(p, 0, sizeof *p);
}

int wd_lex_doc_pre(wd_txn *tx, const uint32_t *slots, size_t n, const wd_lexpre *p,
                   size_t first) {
  if (!tx->db->have_lex) return 0;
  if (first + n > p->nch)
    return wd_err(tx->db, WARDEN_EINTERNAL,
                  "lexical index: the tokens of chunks %zu..%zu were not counted (%zu were)",
                  first, first + n - 1, p->nch);
  wd_lexw *x = NULL;
  int rc = lexw_get(tx, &x);
  for (size_t i = 0; i < n && !rc; i++) {
    const struct wd_lexpre_ch *ch = &p->ch[first + i];
    uint32_t *lens = NULL;
    if ((rc = lens_mut(tx, slots[i] / WD_LEX_WIN, &lens))) break;
    lens[slots[i] % WD_LEX_WIN] = ch->ntok;
    tx->changed = 1;
    for (size_t j = ch->first; j < ch->first + ch->nd && !rc; j++)
      rc = posting_add(tx, p->arena + p->toff[j], p->tlen[j], p->th[j], slots[i], p->tcnt[j],
                       ch->ntok);
  }
  return rc;
}

static int term_cmp(const void *a, const void *b) {
  const lterm *x = *(const lterm *const *)a, *y = *(const lterm *const *)b;
  size_t m = x->klen < y->klen ? x->klen : y->klen;
  int r = memcmp(x->key, y->key, m);
  return r ? r : (x->klen < y->klen ? -1 : x->klen > y->klen);
}

/* Writes every dirty entry once, in key order ("B", "D", "P", "T": LMDB
 * inserts faster in order); what is written does not depend on the order. */
int wd_lex_flush(wd_txn *tx) {
  wd_lexw *x = tx->lex;
  if (!x) return 0;
  int rc = 0;
  char kb[WD_LEX_MAXTERM + 8];
  unsigned char *buf = NULL;
  size_t cap = 0, nt = 0;
  lterm **ts = NULL;
#define NEED(sz)                                \
  do {                                          \
    if ((sz) > cap) {                           \
      size_t nc_ = (sz) * 2;                    \
      unsigned char *nb_ = wd_realloc(buf, nc_); \
      if (!nb_) {                               \
        rc = oom(tx);                           \
        goto out;                               \
      }                                         \
      buf = nb_;                                \
      cap = nc_;                                \
    }                                           \
  } while (0)
  if (x->tn && !(ts = wd_malloc(x->tn * sizeof *ts))) {
    rc = oom(tx);
    goto out;
  }
  for (size_t i = 0; i < x->tcap; i++)
    if (x->tab[i]) ts[nt++] = x->tab[i];
  if (nt > 1) qsort(ts, nt, sizeof *ts, term_cmp);
  for (size_t k = 0; k < nt; k++) { /* "B" */
    lterm *t = ts[k];
    /* one bitmap decoded at a time: a lazy term's is freed once written */
    int lazy = t->lazy;
    if (lazy && (rc = term_load_bm(tx, t))) goto out;
    if (term_empty(t)) {
      if ((rc = store_lex_del(tx, kb, tkey(kb, 'B', t->key, t->klen)))) goto out;
      continue;
    }
    int fresh = !t->bm;
    if (fresh && (rc = term_bitmap(tx, t))) goto out;
    roaring_bitmap_run_optimize(t->bm);
    size_t sz = roaring_bitmap_portable_size_in_bytes(t->bm);
    NEED(sz);
    roaring_bitmap_portable_serialize(t->bm, (char *)buf);
    if (fresh || lazy) {
      roaring_bitmap_free(t->bm);
      t->bm = NULL;
      t->lazy = lazy; /* still not empty ("T" below) */
    }
    if ((rc = store_lex_put(tx, kb, tkey(kb, 'B', t->key, t->klen), buf, sz))) goto out;
  }
  WD_HMAP_FOREACH(&x->lens, e) { /* "D" */
    const uint32_t *l = e->val;
    int any = 0;
    for (size_t i = 0; i < WD_LEX_WIN && !any; i++) any = l[i] != 0;
    rc = any ? store_lex_put(tx, e->key, e->klen, l, WD_LEX_WIN * 4)
             : store_lex_del(tx, e->key, e->klen);
    if (rc) goto out;
  }
  for (size_t k = 0; k < nt; k++) { /* "P" */
    lterm *t = ts[k];
    const pblock *bs = LT_BLK(t);
    for (size_t i = 0; i < t->nblk; i++) {
      const pblock *b = &bs[i];
      size_t kl = pkey(kb, t->key, t->klen, b->w);
      if (b->n == 0) {
        if ((rc = store_lex_del(tx, kb, kl))) goto out;
        continue;
      }
      NEED((size_t)b->n * 4);
      memcpy(buf, PB_OFF(b), (size_t)b->n * 2);
      memcpy(buf + (size_t)b->n * 2, PB_TF(b), (size_t)b->n * 2);
      if ((rc = store_lex_put(tx, kb, kl, buf, (size_t)b->n * 4))) goto out;
    }
  }
  for (size_t k = 0; k < nt; k++) { /* "T" */
    lterm *t = ts[k];
    if (term_empty(t)) {
      if ((rc = store_lex_del(tx, kb, tkey(kb, 'T', t->key, t->klen)))) goto out;
      continue;
    }
    /* the stored entries below dlo, as they are, then the ones here */
    const void *sv = NULL;
    size_t pre = 0, svl = 0;
    if (t->dlo) {
      rc = store_lex_get(tx, kb, tkey(kb, 'T', t->key, t->klen), &sv, &svl);
      if (rc == WARDEN_ENOTFOUND) {
        rc = 0;
        svl = 0;
      }
      if (rc) goto out;
      if (svl % 12) {
        rc = corrupt(tx->db, "directory", t->key, t->klen);
        goto out;
      }
      pre = dir_lower(sv, svl / 12, t->dlo);
    }
    NEED((pre + t->ndir) * 12 + 1);
    if (pre) memcpy(buf, sv, pre * 12);
    if (sv) lex_mapped(tx, svl); /* sv is not read again */
    const dirent_ *d = LT_DIR(t);
    for (size_t i = 0; i < t->ndir; i++) {
      unsigned char *p = buf + 12 * (pre + i);
      memcpy(p, &d[i].w, 4);
      memcpy(p + 4, &d[i].n, 2);
      memcpy(p + 6, &d[i].max_tf, 2);
      memcpy(p + 8, &d[i].min_dl, 4);
    }
    if ((rc = store_lex_put(tx, kb, tkey(kb, 'T', t->key, t->klen), buf, (pre + t->ndir) * 12)))
      goto out;
  }
#undef NEED
out:
  wd_free(ts);
  wd_free(buf);
  return rc;
}

/* ---------------------------------------------------------- check */

typedef struct chk {
  warden *db;
  json_t *probs;
  int n;
  wd_hmap want; /* P-key -> lblock* (expected postings) */
  uint32_t staged_w; /* windows from here on hold only unpublished slots */
} chk;

static void prob(chk *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void prob(chk *c, const char *fmt, ...) {
  c->n++;
  if (json_array_size(c->probs) >= 100) return;
  char b[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  json_array_append_new(c->probs, json_string(b));
}

static int chk_key(const void *k, size_t kl, const void *v, size_t vl, void *ctx) {
  chk *c = ctx;
  const char *key = k;
  int kn = (int)(kl > 60 ? 60 : kl);
  if (key[0] == 'P' && kl >= 6) { /* window: the key's last 4 bytes, BE */
    const unsigned char *w = (const unsigned char *)key + kl - 4;
    if (((uint32_t)w[0] << 24 | (uint32_t)w[1] << 16 | (uint32_t)w[2] << 8 | w[3]) >= c->staged_w)
      return 0; /* an unpublished staged ingest's (engine/stage.h) */
  }
  if (!v) {
    prob(c, "lexical index: entry %.*s fails its checksum", kn, key);
    return 0;
  }
  if (key[0] == 'P') {
    lblock *b = wd_hmap_get(&c->want, k, kl);
    int ok = b && vl == b->n * 4 && memcmp(v, b->off, b->n * 2) == 0 &&
             memcmp((const char *)v + b->n * 2, b->tf, b->n * 2) == 0;
    if (!ok) prob(c, "lexical index: postings %.*s disagree with the chunk texts", kn, key);
    if (b) b->cap = SIZE_MAX; /* mark as seen */
  }
  return 0;
}

/* Directory and bitmap of one term against the expected blocks. */
typedef struct tchk {
  chk *c;
  wd_txn *tx;
} tchk;

static int chk_term(const void *k, size_t kl, const void *v, size_t vl, void *ctx) {
  tchk *tc = ctx;
  chk *c = tc->c;
  const char *key = k;
  const char *t = key + 1;
  size_t tl = kl - 1;
  int kn = (int)(tl > 60 ? 60 : tl);
  if (!v) return 0; /* reported by the key walk */
  if (vl % 12) {
    prob(c, "lexical index: directory of \"%.*s\" is damaged", kn, t);
    return 0;
  }
  uint64_t total = 0;
  for (size_t i = 0; i < vl / 12; i++) {
    dirent_ d = dir_at(v, i);
    if (d.w >= c->staged_w) continue; /* unpublished (engine/stage.h) */
    char kb[WD_LEX_MAXTERM + 8];
    size_t pl = pkey(kb, t, tl, d.w);
    lblock *b = wd_hmap_get(&c->want, kb, pl);
    uint16_t mt = 0;
    for (size_t j = 0; b && j < b->n; j++)
      if (b->tf[j] > mt) mt = b->tf[j];
    if (!b || d.n != b->n || d.max_tf < mt)
      prob(c, "lexical index: directory of \"%.*s\" disagrees at window %u", kn, t, d.w);
    total += d.n;
  }
  char kb[WD_LEX_MAXTERM + 8];
  const void *bv;
  size_t bl;
  int rc = store_lex_get(tc->tx, kb, tkey(kb, 'B', t, tl), &bv, &bl);
  if (rc == WARDEN_ENOMEM) return rc;
  roaring_bitmap_t *bm = rc ? NULL : roaring_bitmap_portable_deserialize_safe(bv, bl);
  if (bm) roaring_bitmap_remove_range(bm, (uint64_t)c->staged_w * WD_LEX_WIN, (uint64_t)UINT32_MAX + 1);
  if (!bm || roaring_bitmap_get_cardinality(bm) != total)
    prob(c, "lexical index: slot bitmap of \"%.*s\" disagrees with its postings", kn, t);
  if (bm) roaring_bitmap_free(bm);
  return 0;
}

int wd_lex_check(warden *db, wd_txn *tx, const roaring_bitmap_t *live, json_t *probs) {
  /* a store that predates the lexical index: nothing to hold against it */
  if (!db->have_lex || store_meta_u64(tx, "lexicon") != 1) return 0;
  chk c;
  memset(&c, 0, sizeof c);
  c.db = db;
  c.probs = probs;
  uint64_t pub = store_meta_u64(tx, "next_slot");
  c.staged_w = (uint32_t)((pub + WD_LEX_WIN - 1) / WD_LEX_WIN);
  wd_lexer lx;
  if (wd_lexer_init(&lx, db->cfg.lex_language)) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  tcount tc;
  memset(&tc, 0, sizeof tc);
  int rc = 0;
  roaring_uint32_iterator_t *it = roaring_create_iterator(live);
  uint32_t *lens = NULL, lens_w = UINT32_MAX;
  int lens_ok = 0;
  for (; it && it->has_value && !rc; roaring_advance_uint32_iterator(it)) {
    uint32_t s = it->current_value;
    uint32_t ord;
    const char *id, *text;
    size_t il, tl;
    if (store_chunk_get(tx, s, &ord, &id, &il, &text, &tl)) continue; /* reported elsewhere */
    if ((rc = count_text(&lx, text, tl, &tc))) break;
    uint32_t w = s / WD_LEX_WIN;
    if (w != lens_w) {
      const void *v;
      size_t vl;
      lens_w = w;
      unsigned char kb[5];
      kb[0] = 'D';
      be32(kb + 1, w);
      lens_ok = store_lex_get(tx, kb, 5, &v, &vl) == 0 && vl == WD_LEX_WIN * 4;
      lens = lens_ok ? (uint32_t *)v : NULL;
    }
    uint32_t dl = 0;
    if (lens) memcpy(&dl, lens + s % WD_LEX_WIN, 4);
    if (!lens_ok || dl != tc.ntok)
      prob(&c, "lexical index: length of slot %u is %u, its text has %zu tokens", s, dl, tc.ntok);
    for (size_t j = 0; j < tc.nd && !rc; j++) {
      char kb[WD_LEX_MAXTERM + 8];
      size_t kl = pkey(kb, TC_TERM(&tc, j), TC_LEN(&tc, j), w);
      lblock *b = wd_hmap_get(&c.want, kb, kl);
      if (!b) {
        if (!(b = wd_calloc(1, sizeof *b)) || wd_hmap_put(&c.want, kb, kl, b, NULL)) {
          wd_free(b);
          rc = WARDEN_ENOMEM;
          break;
        }
      }
      if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 4;
        uint16_t *no = wd_realloc(b->off, nc * 2);
        if (!no) {
          rc = WARDEN_ENOMEM;
          break;
        }
        b->off = no;
        uint16_t *nt = wd_realloc(b->tf, nc * 2);
        if (!nt) {
          rc = WARDEN_ENOMEM;
          break;
        }
        b->tf = nt;
        b->cap = nc;
      }
      uintptr_t tf = tc.dcnt[j];
      b->off[b->n] = (uint16_t)(s % WD_LEX_WIN);
      b->tf[b->n++] = (uint16_t)(tf > 65535 ? 65535 : tf);
    }
  }
  if (!it) rc = WARDEN_ENOMEM;
  if (it) roaring_free_uint32_iterator(it);
  if (!rc) rc = store_lex_walk(tx, "P", 1, chk_key, &c);
  if (!rc) {
    WD_HMAP_FOREACH(&c.want, e) {
      lblock *b = e->val;
      if (b->cap != SIZE_MAX)
        prob(&c, "lexical index: postings %.*s are missing", (int)(e->klen > 60 ? 60 : e->klen),
             e->key);
    }
    tchk t = {&c, tx};
    rc = store_lex_walk(tx, "T", 1, chk_term, &t);
  }
  WD_HMAP_FOREACH(&c.want, e) {
    lblock *b = e->val;
    b->cap = 0;
    lblock_free(b);
  }
  wd_hmap_free(&c.want);
  tcount_free(&tc);
  wd_lexer_free(&lx);
  if (rc == WARDEN_ENOMEM) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  return rc ? rc : c.n;
}
