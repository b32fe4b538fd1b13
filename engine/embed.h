/*
 * embed.h -- the built-in "hash" embedder: a lexical hashing embedder for
 * demos and tests.  It is NOT a semantic model: texts are near each other
 * when they share words, nothing more.  Deterministic across machines.
 */
#ifndef WD_EMBED_H
#define WD_EMBED_H
#include <stddef.h>

/* Embed text (n bytes) into out[dim], L2-normalised.  A text with no words
 * gets a fixed non-zero vector so cosine stays defined. */
void wd_embed_hash(const char *text, size_t n, float *out, size_t dim);

#endif
