/*
 * calq.h -- the sample queries the graph's build-time calibration measures
 * with (index/hnsw.c wd_hnsw_calibrate): drawn from the collection's own
 * vectors so that they are about as hard as held-out queries from the
 * same distribution.  The IVF's probe calibration (engine/indexer.c) keeps
 * its midpoints: measured with these kinds instead, text-384 10 % reached
 * the same recall (0.986 for 0.988) at no fewer lists, and
 * tests/test_ann.c's half-space filter fell to recall 0.945.
 */
#ifndef WD_CALQ_H
#define WD_CALQ_H

#include <roaring/roaring.h>
#include <stddef.h>
#include <stdint.h>

#include "index/scan.h"

/* nq queries into q (nq x src->dim floats; unit length for cosine), every
 * third of each kind (see calq.c for the measurements behind them):
 *   0: a live vector moved 15 % of the way to another one;
 *   1: a live vector plus Gaussian noise of 0.3 x the data's spread per
 *      dimension, the vector itself left out: its slot goes to left[] and
 *      the caller removes every left[] slot from the allowed sets it
 *      measures (truth and search alike);
 *   2: a live vector plus noise of 0.5 x the spread, the vector kept.
 * left: room for nq slots; *nleft: how many were written.  Deterministic
 * in seed.  Returns 0; 1 when a vector could not be read (nothing to
 * calibrate with); a negative get_block error; -1 on allocation failure. */
int wd_calib_queries(const wd_vecsrc *src, const roaring_bitmap_t *live, size_t nq,
                     uint64_t seed, float *q, uint32_t *left, size_t *nleft);

#endif
