/*
 * seqlog.c -- see seqlog.h.
 */
#include "base/seqlog.h"

#include <string.h>

#include "base/wd_alloc.h"

static size_t put_varint(unsigned char *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (unsigned char)v;
  return n;
}

static uint64_t get_varint(const unsigned char **pp) {
  const unsigned char *p = *pp;
  uint64_t v = 0;
  unsigned shift = 0;
  while (*p & 0x80) {
    v |= (uint64_t)(*p++ & 0x7f) << shift;
    shift += 7;
  }
  v |= (uint64_t)*p++ << shift;
  *pp = p;
  return v;
}

/* the value's step, taken as a step of one past the expected next value
 * (consecutive lines cost one byte) and folded so small negatives are
 * small too */
static uint64_t zig(uint64_t val, uint64_t prev) {
  int64_t d = (int64_t)(val - prev - 1);
  return ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
}

static uint64_t unzig(uint64_t z, uint64_t prev) {
  uint64_t d = (z >> 1) ^ (0 - (z & 1));
  return prev + 1 + d;
}

int wd_seqlog_add(wd_seqlog *s, uint64_t key, uint64_t val) {
  if (s->n && key <= s->last_key) return -2;
  if (s->n % WD_SEQLOG_MARK == 0) {
    if (s->nmarks == s->mcap) {
      size_t nc = s->mcap ? s->mcap * 2 : 64;
      wd_seqmark *m = wd_realloc(s->marks, nc * sizeof *m);
      if (!m) return -1;
      s->marks = m;
      s->mcap = nc;
    }
    s->marks[s->nmarks++] = (wd_seqmark){key, val, s->nbytes};
  } else {
    if (s->bcap - s->nbytes < 20) {
      size_t nc = s->bcap ? s->bcap * 2 : 4096;
      unsigned char *b = wd_realloc(s->bytes, nc);
      if (!b) return -1;
      s->bytes = b;
      s->bcap = nc;
    }
    s->nbytes += put_varint(s->bytes + s->nbytes, key - s->last_key);
    s->nbytes += put_varint(s->bytes + s->nbytes, zig(val, s->last_val));
  }
  s->last_key = key;
  s->last_val = val;
  s->n++;
  return 0;
}

int wd_seqlog_find(const wd_seqlog *s, uint64_t key, uint64_t *val) {
  if (!s->nmarks || key < s->marks[0].key || key > s->last_key) return 0;
  size_t lo = 0, hi = s->nmarks; /* the last mark whose key <= key */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->marks[mid].key <= key) lo = mid;
    else hi = mid;
  }
  const wd_seqmark *m = &s->marks[lo];
  uint64_t k = m->key, v = m->val;
  size_t left = lo + 1 < s->nmarks ? WD_SEQLOG_MARK - 1 : (s->n - 1) % WD_SEQLOG_MARK;
  const unsigned char *p = s->bytes + m->off;
  while (k < key && left--) {
    k += get_varint(&p);
    v = unzig(get_varint(&p), v);
  }
  if (k != key) return 0;
  *val = v;
  return 1;
}

size_t wd_seqlog_size(const wd_seqlog *s) {
  return s->bcap + s->mcap * sizeof *s->marks;
}

void wd_seqlog_free(wd_seqlog *s) {
  wd_free(s->bytes);
  wd_free(s->marks);
  memset(s, 0, sizeof *s);
}
