/*
 * jskim.c -- see jskim.h.
 *
 * A strict RFC 8259 validator that says "yes" only where jansson
 * (json_loadb with JSON_REJECT_DUPLICATES) certainly accepts the text too;
 * everything it is not sure about -- escapes in keys, \u escapes of NUL or
 * surrogates, integers of 19 or more digits, reals with an exponent or of
 * 300 or more digits (jansson refuses what overflows), objects of more
 * than JSKIM_MAX_KEYS keys, nesting deeper than JSKIM_MAX_DEPTH -- is
 * "unsure", and the caller parses the line with jansson as before.
 */
#include "jskim.h"

#include <stdlib.h>
#include <string.h>

#define JSKIM_MAX_DEPTH 64
#define JSKIM_MAX_KEYS 64

typedef struct {
  const unsigned char *s;
  size_t n, i;
  int depth;
} skim;

static void ws(skim *k) {
  while (k->i < k->n) {
    unsigned char c = k->s[k->i];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    k->i++;
  }
}

static int hex(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* One UTF-8 sequence at s[i] (s[i] >= 0x80), shortest form, no
 * surrogates, at most U+10FFFF; its length or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t i) {
  unsigned c = s[i];
  size_t len;
  unsigned cp;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (n - i < len) return 0;
  for (size_t j = 1; j < len; j++) {
    if ((s[i + j] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i + j] & 0x3f);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

/* A string at s[i] == '"'; st..en its raw contents, esc whether it had
 * a backslash.  1 valid, 0 unsure. */
static int string(skim *k, size_t *st, size_t *en, int *esc) {
  const unsigned char *s = k->s;
  size_t i = k->i + 1, n = k->n;
  *esc = 0;
  *st = i;
  for (;;) {
    if (i >= n) return 0;
    unsigned char c = s[i];
    if (c == '"') break;
    if (c < 0x20) return 0;
    if (c == '\\') {
      *esc = 1;
      if (i + 1 >= n) return 0;
      unsigned char e = s[i + 1];
      if (e == 'u') {
        if (n - i < 6) return 0;
        int v = 0;
        for (int j = 2; j < 6; j++) {
          int h = hex(s[i + j]);
          if (h < 0) return 0;
          v = v * 16 + h;
        }
        if (v == 0 || (v >= 0xd800 && v <= 0xdfff)) return 0;
        i += 6;
        continue;
      }
      if (!strchr("\"\\/bfnrt", e) || e == 0) return 0;
      i += 2;
      continue;
    }
    if (c >= 0x80) {
      size_t l = utf8_seq(s, n, i);
      if (!l) return 0;
      i += l;
      continue;
    }
    i++;
  }
  *en = i;
  k->i = i + 1;
  return 1;
}

static int number(skim *k) {
  const unsigned char *s = k->s;
  size_t i = k->i, n = k->n, digits = 0;
  int real = 0;
  if (i < n && s[i] == '-') i++;
  if (i >= n) return 0;
  if (s[i] == '0') {
    i++;
    digits = 1;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < n && s[i] >= '0' && s[i] <= '9') i++, digits++;
  } else {
    return 0;
  }
  if (i < n && s[i] == '.') {
    real = 1;
    i++;
    if (i >= n || s[i] < '0' || s[i] > '9') return 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++, digits++;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) return 0; /* may overflow */
  if (!real && digits > 18) return 0;                  /* may not fit json_int_t */
  if (digits >= 300) return 0;
  k->i = i;
  return 1;
}

static int value(skim *k, jskim_doc *d, int role);

/* role: 0 any value, 1 the document, 2 the chunks array, 3 a chunk */
/* After a member or element: 1 on ',' (more follow), 2 on the closing
 * bracket (consumed, depth left), 0 on anything else. */
static int next_or_close(skim *k, char close) {
  ws(k);
  if (k->i >= k->n) return 0;
  if (k->s[k->i] == ',') {
    k->i++;
    ws(k);
    return 1;
  }
  if (k->s[k->i] != close) return 0;
  k->i++;
  k->depth--;
  return 2;
}

static int object(skim *k, jskim_doc *d, int role) {
  size_t ks[JSKIM_MAX_KEYS], kl[JSKIM_MAX_KEYS], nk = 0;
  if (++k->depth > JSKIM_MAX_DEPTH) return 0;
  k->i++;
  ws(k);
  if (k->i < k->n && k->s[k->i] == '}') {
    k->i++;
    k->depth--;
    return 1;
  }
  for (;;) {
    if (k->i >= k->n || k->s[k->i] != '"') return 0;
    size_t st, en;
    int esc;
    if (!string(k, &st, &en, &esc) || esc) return 0;
    if (nk == JSKIM_MAX_KEYS) return 0;
    for (size_t j = 0; j < nk; j++)
      if (kl[j] == en - st && memcmp(k->s + ks[j], k->s + st, en - st) == 0) return 0;
    ks[nk] = st;
    kl[nk++] = en - st;
    ws(k);
    if (k->i >= k->n || k->s[k->i] != ':') return 0;
    k->i++;
    ws(k);
    int sub = 0;
    if (role == 1 && en - st == 6 && memcmp(k->s + st, "chunks", 6) == 0) {
      sub = 2;
      d->has_chunks = 1;
    }
    if (role == 3 && en - st == 9 && memcmp(k->s + st, "embedding", 9) == 0 && !d->emb_chunk)
      d->emb_chunk = d->nchunks; /* this chunk's index + 1 */
    if (!value(k, d, sub)) return 0;
    int r = next_or_close(k, '}');
    if (r != 1) return r == 2;
  }
}

static int array(skim *k, jskim_doc *d, int role) {
  if (++k->depth > JSKIM_MAX_DEPTH) return 0;
  k->i++;
  ws(k);
  if (role == 2) d->chunks_array = 1;
  if (k->i < k->n && k->s[k->i] == ']') {
    k->i++;
    k->depth--;
    return 1;
  }
  for (;;) {
    if (role == 2) d->nchunks++;
    if (!value(k, d, role == 2 ? 3 : 0)) return 0;
    int r = next_or_close(k, ']');
    if (r != 1) return r == 2;
  }
}

static int literal(skim *k, const char *w, size_t l) {
  if (k->n - k->i < l || memcmp(k->s + k->i, w, l) != 0) return 0;
  k->i += l;
  return 1;
}

static int value(skim *k, jskim_doc *d, int role) {
  if (k->i >= k->n) return 0;
  unsigned char c = k->s[k->i];
  if (c == '{') return object(k, d, role == 1 ? 1 : role == 3 ? 3 : 0);
  if (c == '[') return array(k, d, role == 2 ? 2 : 0);
  if (c == '"') {
    size_t st, en;
    int esc;
    return string(k, &st, &en, &esc);
  }
  if (c == 't') return literal(k, "true", 4);
  if (c == 'f') return literal(k, "false", 5);
  if (c == 'n') return literal(k, "null", 4);
  return number(k);
}

int jskim_doc_line(const char *s, size_t n, jskim_doc *d) {
  memset(d, 0, sizeof *d);
  skim k = {(const unsigned char *)s, n, 0, 0};
  ws(&k);
  if (k.i >= n || s[k.i] != '{') return 0;
  if (!object(&k, d, 1)) return 0;
  ws(&k);
  return k.i == n;
}

/* ------------------------------------------- the document, decoded */

/* Runs on text jskim_doc_line accepted: the grammar is known to hold, so
 * this only walks it. */
typedef struct {
  const char *s;
  size_t n, i;
  void *(*alloc)(void *ctx, size_t n);
  void *ctx;
} dp;

static void dws(dp *p) {
  while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                         p->s[p->i] == '\r'))
    p->i++;
}

/* The string at s[i] == '"', decoded; NULL when out of memory. */
static const char *dstring(dp *p) {
  size_t st = ++p->i, en = st, esc = 0;
  while (p->s[en] != '"') {
    if (p->s[en] == '\\') {
      esc = 1;
      en += p->s[en + 1] == 'u' ? 6 : 2;
    } else {
      en++;
    }
  }
  p->i = en + 1;
  char *o = p->alloc(p->ctx, en - st + 1); /* decoded is never longer */
  if (!o) return NULL;
  if (!esc) {
    memcpy(o, p->s + st, en - st);
    o[en - st] = 0;
    return o;
  }
  size_t k = 0;
  for (size_t i = st; i < en;) {
    char c = p->s[i];
    if (c != '\\') {
      o[k++] = c;
      i++;
      continue;
    }
    char e = p->s[i + 1];
    if (e == 'u') {
      unsigned v = 0;
      for (int j = 2; j < 6; j++) v = v * 16 + (unsigned)hex((unsigned char)p->s[i + j]);
      /* not 0, not a surrogate (the skim left those to jansson) */
      if (v < 0x80) {
        o[k++] = (char)v;
      } else if (v < 0x800) {
        o[k++] = (char)(0xc0 | (v >> 6));
        o[k++] = (char)(0x80 | (v & 0x3f));
      } else {
        o[k++] = (char)(0xe0 | (v >> 12));
        o[k++] = (char)(0x80 | ((v >> 6) & 0x3f));
        o[k++] = (char)(0x80 | (v & 0x3f));
      }
      i += 6;
      continue;
    }
    o[k++] = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e;
    i += 2;
  }
  o[k] = 0;
  return o;
}

/* Skip any value (valid JSON). */
static void dskip(dp *p) {
  int depth = 0;
  do {
    char c = p->s[p->i];
    if (c == '"') {
      p->i++;
      while (p->s[p->i] != '"') p->i += p->s[p->i] == '\\' ? 2 : 1;
      p->i++;
    } else {
      if (c == '{' || c == '[') depth++;
      if (c == '}' || c == ']') depth--;
      p->i++;
      if (depth == 0 && c != '{' && c != '[' && c != '}' && c != ']') {
        /* a number or literal: to its end */
        while (p->i < p->n && !strchr(",]} \t\r\n", p->s[p->i])) p->i++;
      }
    }
  } while (depth > 0);
}

/* key: at s[i] == '"' (no escapes: the skim refused those); *k, *kl */
static void dkey(dp *p, const char **k, size_t *kl) {
  size_t st = ++p->i;
  while (p->s[p->i] != '"') p->i++;
  *k = p->s + st;
  *kl = p->i - st;
  p->i++;
  dws(p);
  p->i++; /* ':' */
  dws(p);
}

/* After a member or element: 1 when another follows. */
static int dnext(dp *p) {
  dws(p);
  if (p->s[p->i] == ',') {
    p->i++;
    dws(p);
    return 1;
  }
  p->i++; /* '}' or ']' */
  return 0;
}

static int keyis(const char *k, size_t kl, const char *w) {
  return kl == strlen(w) && memcmp(k, w, kl) == 0;
}

/* An array of strings into *out, *n; 0 when an element is not a
 * string (to_doc's NULL entry, the library's "expected a string"). */
static int dstrings(dp *p, const char ***out, size_t *n) {
  /* count first: the text is valid, so a skip per element */
  size_t save = p->i, cnt = 0;
  p->i++;
  dws(p);
  if (p->s[p->i] != ']') {
    do {
      if (p->s[p->i] != '"') return 0;
      dskip(p);
      cnt++;
    } while (dnext(p));
  } else {
    p->i++;
  }
  const char **l = p->alloc(p->ctx, (cnt ? cnt : 1) * sizeof *l);
  if (!l) return 0;
  p->i = save + 1;
  dws(p);
  if (cnt) {
    size_t x = 0;
    do {
      if (!(l[x++] = dstring(p))) return 0;
    } while (dnext(p));
  } else {
    p->i++;
  }
  *out = l;
  *n = cnt;
  return 1;
}

static size_t dcount(dp *p) { /* elements or members of the value at s[i] */
  size_t save = p->i, cnt = 0;
  p->i++;
  dws(p);
  if (p->s[p->i] == ']' || p->s[p->i] == '}') {
    p->i = save;
    return 0;
  }
  do {
    if (p->s[save] == '{') {
      const char *k;
      size_t kl;
      dkey(p, &k, &kl);
    }
    dskip(p);
    cnt++;
  } while (dnext(p));
  p->i = save;
  return cnt;
}

static int dmeta(dp *p, warden_doc *d) {
  if (p->s[p->i] != '{') return 0;
  size_t n = dcount(p), k = 0;
  warden_meta *mv = p->alloc(p->ctx, (n ? n : 1) * sizeof *mv);
  if (!mv) return 0;
  p->i++;
  dws(p);
  if (n) {
    do {
      warden_meta *e = &mv[k++];
      memset(e, 0, sizeof *e);
      const char *key;
      size_t kl;
      dkey(p, &key, &kl);
      char *kc = p->alloc(p->ctx, kl + 1);
      if (!kc) return 0;
      memcpy(kc, key, kl);
      kc[kl] = 0;
      e->key = kc;
      char c = p->s[p->i];
      if (c == '"') {
        e->type = WARDEN_META_STRING;
        if (!(e->str = dstring(p))) return 0;
      } else if (c == 't' || c == 'f') {
        e->type = WARDEN_META_BOOL;
        e->i = c == 't';
        p->i += c == 't' ? 4 : 5;
      } else if (c == '[') {
        e->type = WARDEN_META_STRING_LIST;
        const char **l;
        if (!dstrings(p, &l, &e->nlist)) return 0;
        e->list = l;
      } else if (c == '-' || (c >= '0' && c <= '9')) {
        size_t st = p->i, en = st;
        int real = 0;
        while (en < p->n && !strchr(",]} \t\r\n", p->s[en])) real |= p->s[en++] == '.';
        char nb[320]; /* the skim refused 300 digits or more */
        memcpy(nb, p->s + st, en - st);
        nb[en - st] = 0;
        if (real) {
          e->type = WARDEN_META_FLOAT;
          e->f = strtod(nb, NULL);
        } else {
          e->type = WARDEN_META_INT;
          e->i = strtoll(nb, NULL, 10);
        }
        p->i = en;
      } else {
        return 0; /* null or an object: to_doc's words */
      }
    } while (dnext(p));
  } else {
    p->i++;
  }
  d->metadata = mv;
  d->nmetadata = n;
  return 1;
}

static int dacl(dp *p, warden_doc *d) {
  if (p->s[p->i] != '{') return 0;
  p->i++;
  dws(p);
  int allow = 0;
  if (p->s[p->i] == '}') return 0; /* acl.allow missing */
  do {
    const char *k;
    size_t kl;
    dkey(p, &k, &kl);
    if (p->s[p->i] != '[') return 0;
    if (keyis(k, kl, "allow")) {
      if (!dstrings(p, (const char ***)&d->allow, &d->nallow)) return 0;
      allow = 1;
    } else if (keyis(k, kl, "deny")) {
      if (!dstrings(p, (const char ***)&d->deny, &d->ndeny)) return 0;
    } else {
      return 0;
    }
  } while (dnext(p));
  d->has_acl = 1;
  return allow;
}

static int dchunks(dp *p, warden_doc *d) {
  if (p->s[p->i] != '[') return 0;
  size_t n = dcount(p), c = 0;
  if (!n) return 0;
  const char **t = p->alloc(p->ctx, n * sizeof *t);
  if (!t) return 0;
  p->i++;
  dws(p);
  do {
    if (p->s[p->i] != '{') return 0;
    p->i++;
    dws(p);
    if (p->s[p->i] != '"') return 0; /* {}: no text */
    const char *k;
    size_t kl;
    dkey(p, &k, &kl);
    if (!keyis(k, kl, "text") || p->s[p->i] != '"') return 0;
    if (!(t[c++] = dstring(p))) return 0;
    dws(p);
    if (p->s[p->i] != '}') return 0; /* another field */
    p->i++;
  } while (dnext(p));
  d->texts = t;
  d->nchunks = n;
  return 1;
}

int jskim_doc_parse(const char *s, size_t n, int checked, void *(*alloc)(void *ctx, size_t n),
                    void *ctx, warden_doc *d) {
  jskim_doc sk;
  if (!checked && !jskim_doc_line(s, n, &sk)) return 0;
  memset(d, 0, sizeof *d);
  dp p = {s, n, 0, alloc, ctx};
  dws(&p);
  p.i++; /* '{' */
  dws(&p);
  if (s[p.i] == '}') return 0;
  int chunks = 0;
  do {
    const char *k;
    size_t kl;
    dkey(&p, &k, &kl);
    const char **str = keyis(k, kl, "doc_id")      ? &d->doc_id
                       : keyis(k, kl, "source")    ? &d->source
                       : keyis(k, kl, "namespace") ? &d->namespace_
                                                   : NULL;
    if (str) {
      if (s[p.i] != '"' || !(*str = dstring(&p))) return 0;
    } else if (keyis(k, kl, "metadata")) {
      if (!dmeta(&p, d)) return 0;
    } else if (keyis(k, kl, "acl")) {
      if (!dacl(&p, d)) return 0;
    } else if (keyis(k, kl, "chunks")) {
      if (!dchunks(&p, d)) return 0;
      chunks = 1;
    } else {
      return 0;
    }
  } while (dnext(&p));
  return chunks;
}
