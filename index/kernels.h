/*
 * kernels.h -- vector distance kernels with run-time SIMD dispatch.
 *
 * The functions pick the best implementation for the CPU they run on
 * (AVX-512F, AVX2+FMA, or portable scalar C) the first time they are
 * called; the choice can be forced for tests with wd_kernels_force().
 * Inputs need no particular alignment.  Storage-free: these functions
 * know nothing of LMDB or collections.
 */
#ifndef WD_KERNELS_H
#define WD_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#define WD_SIMD_SCALAR 0
#define WD_SIMD_AVX2 1
#define WD_SIMD_AVX512 2

/* Inner product of a and b (d floats). */
float wd_dot(const float *a, const float *b, size_t d);
/* Squared L2 distance between a and b (d floats). */
float wd_l2sq(const float *a, const float *b, size_t d);
/* Inner products of q against n rows of x (row stride d floats):
 * out[i] = dot(q, x + i*d).  Used by the dense scan path. */
void wd_dot_rows(const float *q, const float *x, size_t n, size_t d,
                 float *out);
/* Squared L2 from q to n rows of x: out[i] = l2sq(q, x + i*d). */
void wd_l2sq_rows(const float *q, const float *x, size_t n, size_t d,
                  float *out);

/* SQ8 codes (one byte per dimension, decoded as min + scale * code):
 * out[i] = sum_j qs[j] * c[i*d + j], with qs = q * scale (the caller adds
 * dot(q, min)), over n rows of codes. */
void wd_sq8_dot_rows(const float *qs, const uint8_t *codes, size_t n, size_t d,
                     float *out);
/* out[i] = sum_j (qm[j] - scale[j] * c[i*d + j])^2, with qm = q - min. */
void wd_sq8_l2_rows(const float *qm, const float *scale, const uint8_t *codes,
                    size_t n, size_t d, float *out);

/* SQ8 codes against a query quantized to signed bytes:
 * out[i] = sum_j q[j] * c[i*d + j], exact in 32-bit integers (d <= 65536)
 * provided every |q[j]| <= wd_kernels_i8_qmax().  Native with AVX-512 VNNI
 * (one instruction per 64 byte pairs, qmax 127) and with AVX2 (vpmaddubsw,
 * whose 16-bit pair sums bound qmax to 63); portable C otherwise, where
 * qmax is 0: the byte path is not faster than the float one there, and
 * callers (the IVF scan, the graph walk) only quantize the query when
 * qmax > 0.  wd_kernels_vnni() says whether the VNNI kernel is in use. */
void wd_sq8_i8_dot_rows(const int8_t *q, const uint8_t *codes, size_t n, size_t d,
                        int32_t *out);
/* The same for n scattered rows: out[i] is the row codes + (rows[i] &
 * mask) * d against q (mask drops flag bits the caller keeps in rows[]).
 * Rows a few places ahead are prefetched while one is scored. */
void wd_sq8_i8_dot_gather(const int8_t *q, const uint8_t *codes, size_t d, const uint32_t *rows,
                          uint32_t mask, size_t n, int32_t *out);
/* out[j] = (int8_t)lrintf(x[j] * s), j < n: the byte query of the
 * kernels above, the same bits on every level (vectorised with AVX-512:
 * the lrintf call per dimension was ~3 % of a graph query at d=784). */
void wd_quant_i8(const float *x, float s, size_t n, int8_t *out);
int wd_kernels_vnni(void);
int wd_kernels_i8_qmax(void);

/* The level in use (WD_SIMD_*) and its name ("avx512", "avx2", "scalar"). */
int wd_kernels_level(void);
const char *wd_kernels_name(void);
/* Force a level (for tests).  Returns the level actually set: a level the
 * CPU lacks falls back to the best one below it.  Not thread-safe. */
int wd_kernels_force(int level);

#endif
