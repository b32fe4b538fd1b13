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
    ws(k);
    if (k->i >= k->n) return 0;
    if (k->s[k->i] == ',') {
      k->i++;
      ws(k);
      continue;
    }
    if (k->s[k->i] != '}') return 0;
    k->i++;
    k->depth--;
    return 1;
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
    ws(k);
    if (k->i >= k->n) return 0;
    if (k->s[k->i] == ',') {
      k->i++;
      ws(k);
      continue;
    }
    if (k->s[k->i] != ']') return 0;
    k->i++;
    k->depth--;
    return 1;
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
