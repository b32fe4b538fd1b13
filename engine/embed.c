/*
 * embed.c -- the lexical hashing embedder (see embed.h).
 *
 * Words are lower-cased ASCII letter/digit runs (other bytes, including
 * UTF-8 multibyte sequences, are kept inside words), a short stop-word list
 * is dropped, a trailing plural "s" is stripped, and each word and each
 * pair of adjacent words adds +-weight to one hashed coordinate (feature
 * hashing with a sign bit, as in Weinberger et al. 2009).
 */
#include "engine/embed.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static uint64_t fnv(const char *s, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ULL;
  }
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 32;
  return h;
}

static int stop(const char *w, size_t n) {
  static const char *const sw[] = {
      "a", "an", "the", "of", "to", "and", "or", "is", "are", "in", "on",
      "for", "i", "my", "me", "how", "do", "does", "what", "which", "it",
      "with", "from", "at", "by", "be", "can", "you", "your", "this", "that"};
  for (size_t i = 0; i < sizeof sw / sizeof sw[0]; i++)
    if (strlen(sw[i]) == n && memcmp(sw[i], w, n) == 0) return 1;
  return 0;
}

static void add(float *out, size_t dim, uint64_t h, float w) {
  out[h % dim] += (h >> 63) ? -w : w;
}

void wd_embed_hash(const char *text, size_t n, float *out, size_t dim) {
  memset(out, 0, dim * sizeof *out);
  char word[64];
  uint64_t prev = 0;
  int have_prev = 0;
  size_t i = 0;
  while (i < n) {
    while (i < n && !((text[i] >= 'a' && text[i] <= 'z') ||
                      (text[i] >= 'A' && text[i] <= 'Z') ||
                      (text[i] >= '0' && text[i] <= '9') ||
                      (unsigned char)text[i] >= 0x80))
      i++;
    size_t wl = 0;
    while (i < n && ((text[i] >= 'a' && text[i] <= 'z') ||
                     (text[i] >= 'A' && text[i] <= 'Z') ||
                     (text[i] >= '0' && text[i] <= '9') ||
                     (unsigned char)text[i] >= 0x80)) {
      char c = text[i++];
      if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
      if (wl < sizeof word) word[wl++] = c;
    }
    if (wl == 0) break;
    if (stop(word, wl)) continue;
    if (wl > 3 && word[wl - 1] == 's' && word[wl - 2] != 's') wl--;
    uint64_t h = fnv(word, wl, 1469598103934665603ULL);
    add(out, dim, h, 1.0f);
    if (have_prev) add(out, dim, fnv((const char *)&h, 8, prev), 0.5f);
    prev = h;
    have_prev = 1;
  }
  double n2 = 0;
  for (size_t k = 0; k < dim; k++) n2 += (double)out[k] * out[k];
  if (n2 == 0) {
    out[0] = 1.0f;
    return;
  }
  float inv = (float)(1.0 / sqrt(n2));
  for (size_t k = 0; k < dim; k++) out[k] *= inv;
}
