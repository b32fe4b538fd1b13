/*
 * seqlog.h -- an append-only map from strictly increasing 64-bit keys to
 * 64-bit values, kept compressed: each entry is two varints (the key's
 * step and the value's step from the one before, zigzag-signed), with an
 * absolute mark every WD_SEQLOG_MARK entries to binary-search.  Ingest
 * uses it to remember, for every document written so far in one call,
 * its first slot and the line it came from (about 2.5 bytes a document
 * when slots and lines both advance in small steps, instead of 16).  Not
 * thread-safe (one owner).
 */
#ifndef WD_SEQLOG_H
#define WD_SEQLOG_H
#include <stddef.h>
#include <stdint.h>

#define WD_SEQLOG_MARK 64

typedef struct wd_seqmark {
  uint64_t key, val; /* the entry at this mark */
  size_t off;        /* where the entries after it start in bytes */
} wd_seqmark;

typedef struct wd_seqlog {
  unsigned char *bytes;
  size_t nbytes, bcap;
  wd_seqmark *marks;
  size_t nmarks, mcap;
  size_t n;               /* entries */
  uint64_t last_key, last_val;
} wd_seqlog;

/* Append (key, val); key must be greater than the last key added.
 * Returns 0, -1 on allocation failure, or -2 for a key out of order (the
 * log is unchanged either way). */
int wd_seqlog_add(wd_seqlog *s, uint64_t key, uint64_t val);
/* The value stored for key: 1 and *val, or 0 when key was never added. */
int wd_seqlog_find(const wd_seqlog *s, uint64_t key, uint64_t *val);
/* Bytes allocated (for reports and tests). */
size_t wd_seqlog_size(const wd_seqlog *s);
void wd_seqlog_free(wd_seqlog *s);

#endif
