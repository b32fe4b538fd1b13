/*
 * kernels.c -- inner product and squared L2 kernels with run-time dispatch.
 *
 * Three implementations live side by side: AVX-512F, AVX2+FMA and portable
 * scalar C.  The SIMD ones are compiled with per-function target attributes
 * (the build uses plain x86-64 flags so the library runs on any CPU) and
 * chosen once, at first use, from what the CPU reports.  The choice is held
 * in atomic function pointers read with relaxed loads -- a plain load on
 * x86 -- so a hot loop pays one indirect call, nothing more.  The *_rows
 * variants loop inside the SIMD code so a block scan pays that call once
 * per run of rows, not once per row.
 *
 * Environment: WARDEN_SIMD=scalar|avx2|avx512 caps the level picked at
 * first use (a level the CPU lacks falls back to the best one below it).
 * It exists for benchmarks and for bisecting numeric differences.
 *
 * Threading: all functions are reentrant; the first call initialises the
 * dispatch table under pthread_once.  wd_kernels_force is for tests only
 * and must not race with other calls.
 */
#include "index/kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define WD_X86 1
#else
#define WD_X86 0
#endif

typedef float (*pair_fn)(const float *, const float *, size_t);
typedef void (*rows_fn)(const float *, const float *, size_t, size_t,
                        float *);

/* ---- scalar --------------------------------------------------------- */

/* Eight independent accumulators: breaks the add dependency chain (4-cycle
 * latency) so even the portable version keeps the FP units busy, and
 * summing in a fixed pairwise order keeps results reproducible. */
static float dot_scalar(const float *a, const float *b, size_t d) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
  size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
    s4 += a[i + 4] * b[i + 4];
    s5 += a[i + 5] * b[i + 5];
    s6 += a[i + 6] * b[i + 6];
    s7 += a[i + 7] * b[i + 7];
  }
  for (; i < d; i++) s0 += a[i] * b[i];
  return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}

static float l2sq_scalar(const float *a, const float *b, size_t d) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
  size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    float t0 = a[i] - b[i], t1 = a[i + 1] - b[i + 1];
    float t2 = a[i + 2] - b[i + 2], t3 = a[i + 3] - b[i + 3];
    float t4 = a[i + 4] - b[i + 4], t5 = a[i + 5] - b[i + 5];
    float t6 = a[i + 6] - b[i + 6], t7 = a[i + 7] - b[i + 7];
    s0 += t0 * t0;
    s1 += t1 * t1;
    s2 += t2 * t2;
    s3 += t3 * t3;
    s4 += t4 * t4;
    s5 += t5 * t5;
    s6 += t6 * t6;
    s7 += t7 * t7;
  }
  for (; i < d; i++) {
    float t = a[i] - b[i];
    s0 += t * t;
  }
  return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}

static void dot_rows_scalar(const float *q, const float *x, size_t n,
                            size_t d, float *out) {
  for (size_t r = 0; r < n; r++) out[r] = dot_scalar(q, x + r * d, d);
}

static void l2sq_rows_scalar(const float *q, const float *x, size_t n,
                             size_t d, float *out) {
  for (size_t r = 0; r < n; r++) out[r] = l2sq_scalar(q, x + r * d, d);
}

/* SQ8 row kernels, portable (the fallback everywhere, the only ones off
 * x86) */
static void sq8_dot_rows_scalar(const float *qs, const uint8_t *codes, size_t n,
                                size_t d, float *out) {
  for (size_t r = 0; r < n; r++) {
    const uint8_t *c = codes + r * d;
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t j = 0;
    for (; j + 4 <= d; j += 4) {
      a0 += qs[j] * c[j];
      a1 += qs[j + 1] * c[j + 1];
      a2 += qs[j + 2] * c[j + 2];
      a3 += qs[j + 3] * c[j + 3];
    }
    for (; j < d; j++) a0 += qs[j] * c[j];
    out[r] = (a0 + a1) + (a2 + a3);
  }
}

static void sq8_l2_rows_scalar(const float *qm, const float *scale, const uint8_t *codes,
                               size_t n, size_t d, float *out) {
  for (size_t r = 0; r < n; r++) {
    const uint8_t *c = codes + r * d;
    float a0 = 0, a1 = 0;
    size_t j = 0;
    for (; j + 2 <= d; j += 2) {
      float d0 = qm[j] - scale[j] * c[j], d1 = qm[j + 1] - scale[j + 1] * c[j + 1];
      a0 += d0 * d0;
      a1 += d1 * d1;
    }
    for (; j < d; j++) {
      float d0 = qm[j] - scale[j] * c[j];
      a0 += d0 * d0;
    }
    out[r] = a0 + a1;
  }
}

/* Gathered rows (wd_sq8_i8_dot_gather): row r + GATHER_AHEAD is
 * requested while row r is scored. */
#define GATHER_AHEAD 3
static inline void gather_prefetch(const uint8_t *codes, size_t d, uint32_t row) {
  const char *p = (const char *)(codes + (size_t)row * d);
  for (size_t o = 0; o < d; o += 64) __builtin_prefetch(p + o, 0, 3);
}

static void sq8_i8_dot_rows_scalar(const int8_t *q, const uint8_t *codes, size_t n,
                                   size_t d, int32_t *out) {
  for (size_t r = 0; r < n; r++) {
    const uint8_t *c = codes + r * d;
    int32_t a = 0;
    for (size_t j = 0; j < d; j++) a += (int32_t)c[j] * (int32_t)q[j];
    out[r] = a;
  }
}

#define AVX2 __attribute__((target("avx2,fma")))

#if WD_X86
/* ---- AVX2 + FMA ----------------------------------------------------- */

static inline AVX2 float hsum256(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

/* Four 8-wide accumulators: FMA latency 4, two ports -> 4-8 chains in
 * flight; four is enough when the data streams from memory. */
static inline AVX2 float dot_avx2_one(const float *a, const float *b,
                                      size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8),
                         _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16),
                         _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24),
                         _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= d; i += 8)
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1),
                                  _mm256_add_ps(s2, s3)));
  for (; i < d; i++) s += a[i] * b[i];
  return s;
}

static inline AVX2 float l2sq_avx2_one(const float *a, const float *b,
                                       size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8),
                              _mm256_loadu_ps(b + i + 8));
    __m256 t2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16),
                              _mm256_loadu_ps(b + i + 16));
    __m256 t3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24),
                              _mm256_loadu_ps(b + i + 24));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    s1 = _mm256_fmadd_ps(t1, t1, s1);
    s2 = _mm256_fmadd_ps(t2, t2, s2);
    s3 = _mm256_fmadd_ps(t3, t3, s3);
  }
  for (; i + 8 <= d; i += 8) {
    __m256 t = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    s0 = _mm256_fmadd_ps(t, t, s0);
  }
  float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1),
                                  _mm256_add_ps(s2, s3)));
  for (; i < d; i++) {
    float t = a[i] - b[i];
    s += t * t;
  }
  return s;
}

static AVX2 float dot_avx2(const float *a, const float *b, size_t d) {
  return dot_avx2_one(a, b, d);
}
static AVX2 float l2sq_avx2(const float *a, const float *b, size_t d) {
  return l2sq_avx2_one(a, b, d);
}
static AVX2 void dot_rows_avx2(const float *q, const float *x, size_t n,
                               size_t d, float *out) {
  for (size_t r = 0; r < n; r++) out[r] = dot_avx2_one(q, x + r * d, d);
}
static AVX2 void l2sq_rows_avx2(const float *q, const float *x, size_t n,
                                size_t d, float *out) {
  for (size_t r = 0; r < n; r++) out[r] = l2sq_avx2_one(q, x + r * d, d);
}

/* ---- AVX-512F ------------------------------------------------------- */

/* SQ8: eight codes widened to eight floats per step. */
static AVX2 void sq8_dot_rows_avx2(const float *qs, const uint8_t *codes, size_t n,
                                   size_t d, float *out) {
  for (size_t r = 0; r < n; r++) {
    const uint8_t *c = codes + r * d;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 16 <= d; j += 16) {
      __m256 c0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(c + j))));
      __m256 c1 =
          _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(c + j + 8))));
      s0 = _mm256_fmadd_ps(_mm256_loadu_ps(qs + j), c0, s0);
      s1 = _mm256_fmadd_ps(_mm256_loadu_ps(qs + j + 8), c1, s1);
    }
    float t = hsum256(_mm256_add_ps(s0, s1));
    for (; j < d; j++) t += qs[j] * c[j];
    out[r] = t;
  }
}

static AVX2 void sq8_l2_rows_avx2(const float *qm, const float *scale, const uint8_t *codes,
                                  size_t n, size_t d, float *out) {
  for (size_t r = 0; r < n; r++) {
    const uint8_t *c = codes + r * d;
    __m256 s0 = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 8 <= d; j += 8) {
      __m256 cv = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(c + j))));
      __m256 t = _mm256_fnmadd_ps(_mm256_loadu_ps(scale + j), cv, _mm256_loadu_ps(qm + j));
      s0 = _mm256_fmadd_ps(t, t, s0);
    }
    float a = hsum256(s0);
    for (; j < d; j++) {
      float t = qm[j] - scale[j] * c[j];
      a += t * t;
    }
    out[r] = a;
  }
}

/* SQ8 bytes against a signed-byte query without VNNI: vpmaddubsw multiplies
 * 32 unsigned code bytes by 32 signed query bytes and adds adjacent pairs
 * into 16-bit lanes, vpmaddwd widens pairs of those into 32 bits.  The
 * 16-bit pair sums saturate unless |q| <= 64 (2 x 255 x 64 = 32,640):
 * callers quantize the query to wd_kernels_i8_qmax() = 63 on this path.
 * Measured (bench/graph_bench.c text-384 60k, uncorrelated 100 %, graph at
 * efSearch 64, one thread, AMD EPYC AVX2): the float SQ8 kernel, which
 * widens 8 codes to floats per step, was 28 % of a query. */
static AVX2 void sq8_i8_dot_rows_avx2(const int8_t *q, const uint8_t *codes, size_t n,
                                      size_t d, int32_t *out) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (size_t r = 0; r < n; r++) {
    const uint8_t *c = codes + r * d;
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    size_t j = 0;
    for (; j + 64 <= d; j += 64) {
      __m256i p0 = _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(c + j)),
                                        _mm256_loadu_si256((const __m256i *)(q + j)));
      __m256i p1 = _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(c + j + 32)),
                                        _mm256_loadu_si256((const __m256i *)(q + j + 32)));
      a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(p0, ones));
      a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(p1, ones));
    }
    for (; j + 32 <= d; j += 32) {
      __m256i p0 = _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(c + j)),
                                        _mm256_loadu_si256((const __m256i *)(q + j)));
      a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(p0, ones));
    }
    __m256i a = _mm256_add_epi32(a0, a1);
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
    int32_t t = _mm_cvtsi128_si32(h);
    for (; j < d; j++) t += (int32_t)c[j] * (int32_t)q[j];
    out[r] = t;
  }
}

#define AVX512 __attribute__((target("avx512f")))

/* The tail (d % 16) uses a masked load instead of a scalar loop: masked-off
 * lanes read as zero and never fault, so any d is handled in-register. */
static inline AVX512 float dot_avx512_one(const float *a, const float *b,
                                          size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16),
                         _mm512_loadu_ps(b + i + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32),
                         _mm512_loadu_ps(b + i + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48),
                         _mm512_loadu_ps(b + i + 48), s3);
  }
  for (; i + 16 <= d; i += 16)
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  if (i < d) {
    __mmask16 m = (__mmask16)((1u << (d - i)) - 1u);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i),
                         _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return _mm512_reduce_add_ps(
      _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

static inline AVX512 float l2sq_avx512_one(const float *a, const float *b,
                                           size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16),
                              _mm512_loadu_ps(b + i + 16));
    __m512 t2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32),
                              _mm512_loadu_ps(b + i + 32));
    __m512 t3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48),
                              _mm512_loadu_ps(b + i + 48));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    s1 = _mm512_fmadd_ps(t1, t1, s1);
    s2 = _mm512_fmadd_ps(t2, t2, s2);
    s3 = _mm512_fmadd_ps(t3, t3, s3);
  }
  for (; i + 16 <= d; i += 16) {
    __m512 t = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    s0 = _mm512_fmadd_ps(t, t, s0);
  }
  if (i < d) {
    __mmask16 m = (__mmask16)((1u << (d - i)) - 1u);
    __m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i),
                             _mm512_maskz_loadu_ps(m, b + i));
    s1 = _mm512_fmadd_ps(t, t, s1);
  }
  return _mm512_reduce_add_ps(
      _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

static AVX512 float dot_avx512(const float *a, const float *b, size_t d) {
  return dot_avx512_one(a, b, d);
}
static AVX512 float l2sq_avx512(const float *a, const float *b, size_t d) {
  return l2sq_avx512_one(a, b, d);
}
/* One row at a time, on purpose: a 4-rows-at-once variant (each query
 * load feeding four FMAs) is ~35% faster on cache-resident rows but twice
 * as slow streaming from DRAM on AMD EPYC -- four interleaved streams
 * defeat the hardware prefetcher -- and a scan is normally DRAM-bound. */
static AVX512 void dot_rows_avx512(const float *q, const float *x, size_t n,
                                   size_t d, float *out) {
  for (size_t r = 0; r < n; r++) out[r] = dot_avx512_one(q, x + r * d, d);
}
static AVX512 void l2sq_rows_avx512(const float *q, const float *x, size_t n,
                                    size_t d, float *out) {
  for (size_t r = 0; r < n; r++) out[r] = l2sq_avx512_one(q, x + r * d, d);
}

/* SQ8: sixteen codes widened to sixteen floats per step; masked tail. */
static AVX512 void sq8_dot_rows_avx512(const float *qs, const uint8_t *codes, size_t n,
                                       size_t d, float *out) {
  for (size_t r = 0; r < n; r++) {
    const uint8_t *c = codes + r * d;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t j = 0;
    for (; j + 32 <= d; j += 32) {
      __m512 c0 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c + j))));
      __m512 c1 =
          _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c + j + 16))));
      s0 = _mm512_fmadd_ps(_mm512_loadu_ps(qs + j), c0, s0);
      s1 = _mm512_fmadd_ps(_mm512_loadu_ps(qs + j + 16), c1, s1);
    }
    float t = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; j < d; j++) t += qs[j] * c[j];
    out[r] = t;
  }
}

static AVX512 void sq8_l2_rows_avx512(const float *qm, const float *scale,
                                      const uint8_t *codes, size_t n, size_t d, float *out) {
  for (size_t r = 0; r < n; r++) {
    const uint8_t *c = codes + r * d;
    __m512 s0 = _mm512_setzero_ps();
    size_t j = 0;
    for (; j + 16 <= d; j += 16) {
      __m512 cv = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c + j))));
      __m512 t = _mm512_fnmadd_ps(_mm512_loadu_ps(scale + j), cv, _mm512_loadu_ps(qm + j));
      s0 = _mm512_fmadd_ps(t, t, s0);
    }
    float a = _mm512_reduce_add_ps(s0);
    for (; j < d; j++) {
      float t = qm[j] - scale[j] * c[j];
      a += t * t;
    }
    out[r] = a;
  }
}

/* vpdpbusd: unsigned code bytes times signed query bytes, four products
 * summed into each 32-bit lane, no saturation. */
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))
static VNNI void sq8_i8_dot_rows_vnni(const int8_t *q, const uint8_t *codes, size_t n,
                                      size_t d, int32_t *out) {
  for (size_t r = 0; r < n; r++) {
    const uint8_t *c = codes + r * d;
    __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
    size_t j = 0;
    for (; j + 128 <= d; j += 128) {
      a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(c + j), _mm512_loadu_si512(q + j));
      a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512(c + j + 64),
                               _mm512_loadu_si512(q + j + 64));
    }
    for (; j + 64 <= d; j += 64)
      a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(c + j), _mm512_loadu_si512(q + j));
    if (j < d) {
      __mmask64 m = (__mmask64)((1ull << (d - j)) - 1ull); /* d - j < 64 */
      a1 = _mm512_dpbusd_epi32(a1, _mm512_maskz_loadu_epi8(m, c + j),
                               _mm512_maskz_loadu_epi8(m, q + j));
    }
    out[r] = _mm512_reduce_add_epi32(_mm512_add_epi32(a0, a1));
  }
}

/* Two rows per pass: the query's loads are shared and the two dependency
 * chains overlap (a graph hop scores ~7-30 scattered rows). */
static VNNI void sq8_i8_dot_gather_vnni(const int8_t *q, const uint8_t *codes, size_t d,
                                        const uint32_t *rows, uint32_t mask, size_t n,
                                        int32_t *out) {
  size_t r = 0;
  const __mmask64 m = (__mmask64)(d % 64 ? (1ull << (d % 64)) - 1ull : 0);
  const size_t d64 = d - d % 64;
  for (; r + 2 <= n; r += 2) {
    if (r + GATHER_AHEAD < n) gather_prefetch(codes, d, rows[r + GATHER_AHEAD] & mask);
    if (r + GATHER_AHEAD + 1 < n) gather_prefetch(codes, d, rows[r + GATHER_AHEAD + 1] & mask);
    const uint8_t *c0 = codes + (size_t)(rows[r] & mask) * d;
    const uint8_t *c1 = codes + (size_t)(rows[r + 1] & mask) * d;
    __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
    for (size_t j = 0; j < d64; j += 64) {
      __m512i qv = _mm512_loadu_si512(q + j);
      a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(c0 + j), qv);
      a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512(c1 + j), qv);
    }
    if (m) {
      __m512i qv = _mm512_maskz_loadu_epi8(m, q + d64);
      a0 = _mm512_dpbusd_epi32(a0, _mm512_maskz_loadu_epi8(m, c0 + d64), qv);
      a1 = _mm512_dpbusd_epi32(a1, _mm512_maskz_loadu_epi8(m, c1 + d64), qv);
    }
    out[r] = _mm512_reduce_add_epi32(a0);
    out[r + 1] = _mm512_reduce_add_epi32(a1);
  }
  if (r < n) sq8_i8_dot_rows_vnni(q, codes + (size_t)(rows[r] & mask) * d, 1, d, out + r);
}

/* wd_quant_i8 with AVX-512: vcvtps2dq rounds as lrintf does (the current
 * mode, to nearest even by default), vpmovdb keeps the low byte as the
 * (int8_t) conversion does. */
static AVX512 void quant_i8_avx512(const float *x, float s, size_t n, int8_t *out) {
  size_t j = 0;
  __m512 vs = _mm512_set1_ps(s);
  for (; j + 16 <= n; j += 16) {
    __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + j), vs));
    _mm_storeu_si128((__m128i *)(out + j), _mm512_cvtepi32_epi8(v));
  }
  for (; j < n; j++) out[j] = (int8_t)lrintf(x[j] * s);
}
#endif /* WD_X86 */

static void quant_i8_scalar(const float *x, float s, size_t n, int8_t *out) {
  for (size_t j = 0; j < n; j++) out[j] = (int8_t)lrintf(x[j] * s);
}

/* ---- dispatch ------------------------------------------------------- */

static _Atomic(pair_fn) g_dot;
static _Atomic(pair_fn) g_l2sq;
static _Atomic(rows_fn) g_dot_rows;
static _Atomic(rows_fn) g_l2sq_rows;
typedef void (*sq8dot_fn)(const float *, const uint8_t *, size_t, size_t, float *);
typedef void (*sq8l2_fn)(const float *, const float *, const uint8_t *, size_t, size_t,
                         float *);
static _Atomic(sq8dot_fn) g_sq8_dot_rows;
static _Atomic(sq8l2_fn) g_sq8_l2_rows;
typedef void (*sq8i8_fn)(const int8_t *, const uint8_t *, size_t, size_t, int32_t *);
static _Atomic(sq8i8_fn) g_sq8_i8_dot_rows;
typedef void (*sq8i8g_fn)(const int8_t *, const uint8_t *, size_t, const uint32_t *, uint32_t,
                          size_t, int32_t *);
static _Atomic(sq8i8g_fn) g_sq8_i8_dot_gather;
typedef void (*quant_fn)(const float *, float, size_t, int8_t *);
static _Atomic(quant_fn) g_quant_i8;
static _Atomic int g_vnni;
static _Atomic int g_i8_qmax;
static _Atomic int g_level = -1;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int cpu_best(void) {
#if WD_X86
  /* __builtin_cpu_supports also checks (via XGETBV, in libgcc) that the OS
   * saves the wider register state, so a "yes" is safe to act on. */
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return WD_SIMD_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return WD_SIMD_AVX2;
#endif
  return WD_SIMD_SCALAR;
}

static int set_level(int level) {
  int best = cpu_best();
  if (level > best) level = best;
  if (level < WD_SIMD_SCALAR) level = WD_SIMD_SCALAR;
  pair_fn d = dot_scalar, l = l2sq_scalar;
  rows_fn dr = dot_rows_scalar, lr = l2sq_rows_scalar;
  sq8dot_fn sd = sq8_dot_rows_scalar;
  sq8l2_fn sl = sq8_l2_rows_scalar;
#if WD_X86
  if (level == WD_SIMD_AVX512) {
    d = dot_avx512, l = l2sq_avx512;
    dr = dot_rows_avx512, lr = l2sq_rows_avx512;
    sd = sq8_dot_rows_avx512, sl = sq8_l2_rows_avx512;
  } else if (level == WD_SIMD_AVX2) {
    d = dot_avx2, l = l2sq_avx2;
    dr = dot_rows_avx2, lr = l2sq_rows_avx2;
    sd = sq8_dot_rows_avx2, sl = sq8_l2_rows_avx2;
  }
#endif
  sq8i8_fn si = sq8_i8_dot_rows_scalar;
  sq8i8g_fn sg = NULL; /* NULL: the row kernel, one row at a time */
  quant_fn qf = quant_i8_scalar;
#if WD_X86
  if (level == WD_SIMD_AVX512) qf = quant_i8_avx512;
#endif
  int vnni = 0, qmax = 0;
#if WD_X86
  if (level >= WD_SIMD_AVX2) {
    si = sq8_i8_dot_rows_avx2;
    qmax = 63;
  }
  /* VNNI rides on the AVX-512 level (forcing avx2 or scalar turns it off) */
  if (level == WD_SIMD_AVX512 && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vnni")) {
    si = sq8_i8_dot_rows_vnni;
    sg = sq8_i8_dot_gather_vnni;
    vnni = 1;
    qmax = 127;
  }
#endif
  atomic_store(&g_sq8_i8_dot_rows, si);
  atomic_store(&g_sq8_i8_dot_gather, sg);
  atomic_store(&g_quant_i8, qf);
  atomic_store(&g_vnni, vnni);
  atomic_store(&g_i8_qmax, qmax);
  atomic_store(&g_sq8_dot_rows, sd);
  atomic_store(&g_sq8_l2_rows, sl);
  atomic_store(&g_dot, d);
  atomic_store(&g_l2sq, l);
  atomic_store(&g_dot_rows, dr);
  atomic_store(&g_l2sq_rows, lr);
  atomic_store(&g_level, level);
  return level;
}

static void init_once(void) {
  int level = WD_SIMD_AVX512;
  const char *env = getenv("WARDEN_SIMD");
  if (env) {
    if (strcmp(env, "scalar") == 0)
      level = WD_SIMD_SCALAR;
    else if (strcmp(env, "avx2") == 0)
      level = WD_SIMD_AVX2;
    /* anything else ("avx512", "", typos): best available */
  }
  set_level(level);
}

static inline void ensure_init(void) {
  if (atomic_load_explicit(&g_level, memory_order_acquire) < 0)
    pthread_once(&g_once, init_once);
}

float wd_dot(const float *a, const float *b, size_t d) {
  ensure_init();
  return atomic_load_explicit(&g_dot, memory_order_relaxed)(a, b, d);
}

float wd_l2sq(const float *a, const float *b, size_t d) {
  ensure_init();
  return atomic_load_explicit(&g_l2sq, memory_order_relaxed)(a, b, d);
}

void wd_dot_rows(const float *q, const float *x, size_t n, size_t d,
                 float *out) {
  ensure_init();
  atomic_load_explicit(&g_dot_rows, memory_order_relaxed)(q, x, n, d, out);
}

void wd_l2sq_rows(const float *q, const float *x, size_t n, size_t d,
                  float *out) {
  ensure_init();
  atomic_load_explicit(&g_l2sq_rows, memory_order_relaxed)(q, x, n, d, out);
}

void wd_sq8_dot_rows(const float *qs, const uint8_t *codes, size_t n, size_t d,
                     float *out) {
  ensure_init();
  atomic_load_explicit(&g_sq8_dot_rows, memory_order_relaxed)(qs, codes, n, d, out);
}

void wd_sq8_l2_rows(const float *qm, const float *scale, const uint8_t *codes,
                    size_t n, size_t d, float *out) {
  ensure_init();
  atomic_load_explicit(&g_sq8_l2_rows, memory_order_relaxed)(qm, scale, codes, n, d, out);
}

void wd_sq8_i8_dot_rows(const int8_t *q, const uint8_t *codes, size_t n, size_t d,
                        int32_t *out) {
  ensure_init();
  atomic_load_explicit(&g_sq8_i8_dot_rows, memory_order_relaxed)(q, codes, n, d, out);
}

void wd_sq8_i8_dot_gather(const int8_t *q, const uint8_t *codes, size_t d, const uint32_t *rows,
                          uint32_t mask, size_t n, int32_t *out) {
  ensure_init();
  sq8i8g_fn g = atomic_load_explicit(&g_sq8_i8_dot_gather, memory_order_relaxed);
  if (g) {
    g(q, codes, d, rows, mask, n, out);
    return;
  }
  sq8i8_fn f = atomic_load_explicit(&g_sq8_i8_dot_rows, memory_order_relaxed);
  for (size_t r = 0; r < n; r++) {
    if (r + GATHER_AHEAD < n) gather_prefetch(codes, d, rows[r + GATHER_AHEAD] & mask);
    f(q, codes + (size_t)(rows[r] & mask) * d, 1, d, out + r);
  }
}

void wd_quant_i8(const float *x, float s, size_t n, int8_t *out) {
  ensure_init();
  atomic_load_explicit(&g_quant_i8, memory_order_relaxed)(x, s, n, out);
}

int wd_kernels_vnni(void) {
  ensure_init();
  return atomic_load(&g_vnni);
}

int wd_kernels_i8_qmax(void) {
  ensure_init();
  return atomic_load(&g_i8_qmax);
}

int wd_kernels_level(void) {
  ensure_init();
  return atomic_load(&g_level);
}

const char *wd_kernels_name(void) {
  switch (wd_kernels_level()) {
  case WD_SIMD_AVX512: return "avx512";
  case WD_SIMD_AVX2: return "avx2";
  default: return "scalar";
  }
}

int wd_kernels_force(int level) {
  /* Run the lazy init first so it cannot later overwrite the forced level. */
  ensure_init();
  return set_level(level);
}
