/*
 * fastemb.h -- embedding arrays of an ingest line parsed without a JSON
 * node per number.
 *
 * wd_fastemb_scan() walks one JSON Lines line (tracking strings and
 * nesting, nothing more) to the arrays that are the value of a chunk's
 * "embedding" key (top-level "chunks" -> array -> object -> "embedding"),
 * parses each that is a plain array of JSON numbers straight into floats,
 * and writes a copy of the line with "[]" in place of those arrays, so
 * that jansson then lexes a few hundred bytes and builds a few nodes
 * instead of one per number.  When jansson refuses the copy, the caller
 * parses the original line again, so syntax errors keep their columns.  ingest.c's
 * validator takes chunk c's embedding from the next entry when it finds
 * an empty array (a literal "[]" is recorded too, as an entry of 0
 * values).  Anything not plainly valid -- a string in the array, a number
 * JSON forbids ("01", "1.", "+1"), an integer jansson would call too big,
 * a real that overflows a double -- stops the fast parse of that array and
 * leaves its text alone, so jansson and the validator report it with the
 * words they always used.  Values are exactly (float)strtod(text): the
 * common case by Clinger's exact fast path, the rest by strtod itself.
 */
#ifndef WD_FASTEMB_H
#define WD_FASTEMB_H
#include <stddef.h>

typedef struct wd_fastemb {
  float *v;        /* values of every recorded array, in order */
  size_t nv, vcap;
  size_t *cnt;     /* values per recorded array */
  size_t narr, acap;
  size_t next, off; /* consumer: next array, its first value */
  char *line;       /* the copy without the recorded arrays */
  size_t len, lcap; /* len 0: nothing recorded, parse the original */
} wd_fastemb;

/* Scan line s[0..n).  Returns 0 or -1 (out of memory: then nothing is
 * recorded). */
int wd_fastemb_scan(wd_fastemb *fe, const char *s, size_t n);
void wd_fastemb_free(wd_fastemb *fe);

/* One plain JSON array of numbers, s[0..n) being exactly that array with
 * optional white space around it (a query vector line of `warden query
 * --vector-file`).  Returns 1 and appends its values to fe->v (fe->nv
 * grows by *count); 0 when s is anything else (the caller lets jansson
 * parse it, so its errors keep their words); -1 out of memory.  Values as
 * wd_fastemb_scan's. */
int wd_fastemb_plain(wd_fastemb *fe, const char *s, size_t n, size_t *count);

#endif
