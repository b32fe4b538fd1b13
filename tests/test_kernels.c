/*
 * test_kernels.c -- the SIMD distance kernels against a double-precision
 * reference written here.
 *
 * Every level the CPU supports (scalar, AVX2+FMA, AVX-512F) is forced in
 * turn and checked over many dimensions 0..1100 -- all of 0..80 so every
 * tail length of every vector width is hit, then random ones -- with
 * unaligned pointers.  Float results are compared with a tolerance derived
 * from the sum of absolute terms (dot products may cancel); inputs of small
 * integers must match exactly, since every partial sum is then exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static int quick(void) { return getenv("WARDEN_TEST_QUICK") != NULL; }

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}
static float frand(void) { /* uniform in [-1, 1) */
  return (float)((double)(rnd() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* The level this CPU should get when asked for `want`, decided here
 * independently of kernels.c. */
static int expected_level(int want) {
  int best = WD_SIMD_SCALAR;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    best = WD_SIMD_AVX512;
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    best = WD_SIMD_AVX2;
#endif /* elsewhere only the portable kernels exist */
  return want < best ? want : best;
}

static double ref_dot(const float *a, const float *b, size_t d, double *abs) {
  double s = 0, sa = 0;
  for (size_t i = 0; i < d; i++) {
    s += (double)a[i] * b[i];
    sa += fabs((double)a[i] * b[i]);
  }
  *abs = sa;
  return s;
}

static double ref_l2sq(const float *a, const float *b, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; i++) {
    double t = (double)a[i] - b[i];
    s += t * t;
  }
  return s;
}

#define MAXD 1100
#define MAXROWS 9

/* Checks all four kernels at the current level for dimension d, with a
 * and x starting at float offsets oa, ox (unaligned). */
static void check_dim(size_t d, size_t oa, size_t ox, int ints) {
  static float abuf[MAXD + 16], xbuf[(MAXD + 16) * MAXROWS + 16];
  static float out[MAXROWS];
  float *a = abuf + oa, *x = xbuf + ox;
  size_t n = (size_t)(rnd() % (MAXROWS + 1)); /* 0..MAXROWS rows */
  for (size_t i = 0; i < d; i++)
    a[i] = ints ? (float)((int)(rnd() % 7) - 3) : frand();
  for (size_t i = 0; i < d * MAXROWS; i++)
    x[i] = ints ? (float)((int)(rnd() % 7) - 3) : frand() * 3.0f;
  /* Tolerance: float accumulation error grows at most ~d*eps relative to
   * the sum of |terms|; real kernels do far better, so 1e-5 relative with
   * a d-proportional floor is comfortably strict. */
  for (size_t r = 0; r < (n ? n : 1); r++) {
    const float *xr = x + r * d;
    double sa, rd = ref_dot(a, xr, d, &sa), rl = ref_l2sq(a, xr, d);
    float gd = wd_dot(a, xr, d), gl = wd_l2sq(a, xr, d);
    if (ints) {
      assert_true((double)gd == rd);
      assert_true((double)gl == rl);
    } else {
      double td = 1e-5 * sa + 1e-30;
      double tl = 1e-5 * rl + 1e-30;
      if (fabs(gd - rd) > td || fabs(gl - rl) > tl)
        fprintf(stderr, "%s d=%zu dot %.9g vs %.9g, l2 %.9g vs %.9g\n",
                wd_kernels_name(), d, gd, rd, gl, rl);
      assert_true(fabs(gd - rd) <= td);
      assert_true(fabs(gl - rl) <= tl);
    }
  }
  /* Row variants; out past n must stay untouched. */
  for (size_t r = 0; r < MAXROWS; r++) out[r] = 12345.0f;
  wd_dot_rows(a, x, n, d, out);
  for (size_t r = 0; r < MAXROWS; r++) {
    if (r >= n) {
      assert_true(out[r] == 12345.0f);
      continue;
    }
    double sa, rd = ref_dot(a, x + r * d, d, &sa);
    if (ints)
      assert_true((double)out[r] == rd);
    else
      assert_true(fabs(out[r] - rd) <= 1e-5 * sa + 1e-30);
  }
  for (size_t r = 0; r < MAXROWS; r++) out[r] = 12345.0f;
  wd_l2sq_rows(a, x, n, d, out);
  for (size_t r = 0; r < MAXROWS; r++) {
    if (r >= n) {
      assert_true(out[r] == 12345.0f);
      continue;
    }
    double rl = ref_l2sq(a, x + r * d, d);
    if (ints)
      assert_true((double)out[r] == rl);
    else
      assert_true(fabs(out[r] - rl) <= 1e-5 * rl + 1e-30);
  }
}

/* SQ8 rows against a double-precision reference on random codes; rows
 * past n untouched. */
static void check_sq8(size_t d, size_t n) {
  float qs[MAXD], sc[MAXD], out[MAXROWS];
  static uint8_t codes[MAXROWS * MAXD];
  for (size_t j = 0; j < d; j++) {
    qs[j] = (float)((int)(rnd() % 2001) - 1000) / 997.0f;
    sc[j] = (float)(rnd() % 1000 + 1) / 131072.0f;
  }
  for (size_t i = 0; i < n * d; i++) codes[i] = (uint8_t)rnd();
  for (size_t r = 0; r < MAXROWS; r++) out[r] = 12345.0f;
  wd_sq8_dot_rows(qs, codes, n, d, out);
  for (size_t r = 0; r < MAXROWS; r++) {
    if (r >= n) {
      assert_true(out[r] == 12345.0f);
      continue;
    }
    double ref = 0, mag = 0;
    for (size_t j = 0; j < d; j++) {
      ref += (double)qs[j] * codes[r * d + j];
      mag += fabs((double)qs[j] * codes[r * d + j]);
    }
    assert_true(fabs(out[r] - ref) <= 1e-5 * mag + 1e-30);
  }
  for (size_t r = 0; r < MAXROWS; r++) out[r] = 12345.0f;
  wd_sq8_l2_rows(qs, sc, codes, n, d, out);
  for (size_t r = 0; r < MAXROWS; r++) {
    if (r >= n) {
      assert_true(out[r] == 12345.0f);
      continue;
    }
    double ref = 0;
    for (size_t j = 0; j < d; j++) {
      double t = (double)qs[j] - (double)sc[j] * codes[r * d + j];
      ref += t * t;
    }
    assert_true(fabs(out[r] - ref) <= 1e-5 * ref + 1e-30);
  }
}

/* Byte query against byte codes: exact in integers, so equal, not close;
 * extreme values included (255 * -128 and 255 * 127 at every position). */
static void check_sq8_i8(size_t d, size_t n) {
  int8_t q[MAXD];
  int32_t out[MAXROWS];
  static uint8_t codes[MAXROWS * MAXD];
  int extreme = d % 3 == 0;
  /* the kernel's contract: exact for |q| <= wd_kernels_i8_qmax() (the
   * portable kernel, qmax 0, for every byte) */
  int lim = wd_kernels_i8_qmax();
  for (size_t j = 0; j < d; j++) {
    if (!lim || lim == 127)
      q[j] = extreme ? (int8_t)(j & 1 ? 127 : -128) : (int8_t)rnd();
    else
      q[j] = extreme ? (int8_t)(j & 2 ? lim : -lim) /* pairs of one sign: the 16-bit bound */ : (int8_t)((int)(rnd() % (2 * lim + 1)) - lim);
  }
  for (size_t i = 0; i < n * d; i++) codes[i] = extreme ? 255 : (uint8_t)rnd();
  for (size_t r = 0; r < MAXROWS; r++) out[r] = 12345;
  wd_sq8_i8_dot_rows(q, codes, n, d, out);
  for (size_t r = 0; r < MAXROWS; r++) {
    if (r >= n) {
      assert_int_equal(out[r], 12345);
      continue;
    }
    int64_t ref = 0;
    for (size_t j = 0; j < d; j++) ref += (int64_t)codes[r * d + j] * q[j];
    assert_int_equal((int64_t)out[r], ref);
  }
}

/* The gathered form: scattered rows in any order, a flag bit the mask
 * drops, n odd and even (the VNNI kernel pairs rows), each the same
 * integer as the row kernel's sum computed here. */
static void check_sq8_i8_gather(size_t d, size_t n) {
  int8_t q[MAXD];
  int32_t out[MAXROWS + 1];
  static uint8_t codes[MAXROWS * MAXD];
  uint32_t rows[MAXROWS];
  int lim = wd_kernels_i8_qmax();
  for (size_t j = 0; j < d; j++)
    q[j] = !lim || lim == 127 ? (int8_t)rnd() : (int8_t)((int)(rnd() % (2 * lim + 1)) - lim);
  for (size_t i = 0; i < MAXROWS * d; i++) codes[i] = (uint8_t)rnd();
  for (size_t r = 0; r < n; r++)
    rows[r] = (uint32_t)(rnd() % MAXROWS) | (r & 1 ? 0x80000000u : 0);
  for (size_t r = 0; r <= MAXROWS; r++) out[r] = 12345;
  wd_sq8_i8_dot_gather(q, codes, d, rows, 0x7fffffffu, n, out);
  for (size_t r = 0; r <= MAXROWS; r++) {
    if (r >= n) {
      assert_int_equal(out[r], 12345);
      continue;
    }
    const uint8_t *c = codes + (size_t)(rows[r] & 0x7fffffffu) * d;
    int64_t ref = 0;
    for (size_t j = 0; j < d; j++) ref += (int64_t)c[j] * q[j];
    assert_int_equal((int64_t)out[r], ref);
  }
}

/* wd_quant_i8 gives (int8_t)lrintf(x * s) bit for bit, ties included
 * (round to nearest even, as lrintf in the default mode), at every n. */
static void check_quant(size_t n) {
  float x[MAXD] = {0};
  int8_t out[MAXD + 1];
  float s = 127.0f / 3.0f;
  for (size_t j = 0; j < n; j++) {
    uint64_t r = rnd();
    /* exact halves (k + 0.5) / s now and then: the ties */
    x[j] = r & 1 ? ((float)((int)(r >> 8) % 254 - 127) + 0.5f) / s
                 : (float)((double)(int64_t)(r >> 16) / 9.3e13) * 3.0f;
  }
  out[n] = 99;
  wd_quant_i8(x, s, n, out);
  for (size_t j = 0; j < n; j++) assert_int_equal(out[j], (int8_t)lrintf(x[j] * s));
  assert_int_equal(out[n], 99);
}

static void run_level(int level) {
  int got = wd_kernels_force(level);
  assert_int_equal(got, expected_level(level));
  assert_int_equal(wd_kernels_level(), got);
  if (got != level) {
    fprintf(stderr, "level %d not supported by this CPU; skipped\n", level);
    return;
  }
  static const char *names[] = {"scalar", "avx2", "avx512"};
  assert_string_equal(wd_kernels_name(), names[level]);
  for (size_t d = 0; d <= 80; d++)
    for (int ints = 0; ints < 2; ints++)
      check_dim(d, rnd() % 16, rnd() % 16, ints);
  int iters = quick() ? 60 : 500;
  for (int it = 0; it < iters; it++)
    check_dim(1 + rnd() % MAXD, rnd() % 16, rnd() % 16, (int)(rnd() & 1));
  check_dim(MAXD, 1, 3, 0);
  check_dim(MAXD, 0, 0, 1);
  for (size_t d = 0; d <= 80; d++) check_sq8(d, rnd() % MAXROWS);
  check_sq8(MAXD, MAXROWS - 1);
  for (size_t d = 0; d <= 200; d++) check_sq8_i8(d, rnd() % MAXROWS);
  check_sq8_i8(MAXD, MAXROWS - 1);
  for (size_t d = 0; d <= 200; d++) check_sq8_i8_gather(d, rnd() % MAXROWS);
  for (size_t n = 0; n <= 6; n++) check_sq8_i8_gather(MAXD, n);
  for (size_t n = 0; n <= 100; n++) check_quant(n);
  check_quant(MAXD);
  fprintf(stderr, "level %s: byte kernel %s\n", wd_kernels_name(),
          wd_kernels_vnni() ? "AVX-512 VNNI" : "portable");
  if (level != WD_SIMD_AVX512) assert_false(wd_kernels_vnni());
  /* the byte kernel's query range: 127 with VNNI, 63 with AVX2's
   * vpmaddubsw (16-bit pair sums), none for the portable one */
  assert_int_equal(wd_kernels_i8_qmax(),
                   wd_kernels_vnni() ? 127 : level >= WD_SIMD_AVX2 ? 63 : 0);
}

static void test_scalar(void **st) {
  (void)st;
  run_level(WD_SIMD_SCALAR);
}
static void test_avx2(void **st) {
  (void)st;
  run_level(WD_SIMD_AVX2);
}
static void test_avx512(void **st) {
  (void)st;
  run_level(WD_SIMD_AVX512);
}

/* Out-of-range requests clamp; the library must never pick a level above
 * what the CPU has. */
static void test_force_clamps(void **st) {
  (void)st;
  assert_int_equal(wd_kernels_force(99), expected_level(WD_SIMD_AVX512));
  assert_int_equal(wd_kernels_force(-3), WD_SIMD_SCALAR);
  assert_string_equal(wd_kernels_name(), "scalar");
}

/* Table of hand-computed cases: catches sign and tail mistakes that a
 * random test with a tolerance could miss. */
static void test_table(void **st) {
  (void)st;
  static const struct {
    size_t d;
    float a[20], b[20];
    float dot, l2;
  } cases[] = {
      {0, {0}, {0}, 0, 0},
      {1, {2}, {-3}, -6, 25},
      {3, {1, 2, 3}, {4, 5, 6}, 32, 27},
      {17,
       {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
       {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, -5},
       27, 52},
      {9, {0, 0, 0, 0, 0, 0, 0, 0, 1e3f}, {0, 0, 0, 0, 0, 0, 0, 0, 1e3f},
       1e6f, 0},
  };
  for (int lv = WD_SIMD_SCALAR; lv <= WD_SIMD_AVX512; lv++) {
    if (wd_kernels_force(lv) != lv) continue;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      assert_true(wd_dot(cases[i].a, cases[i].b, cases[i].d) == cases[i].dot);
      assert_true(wd_l2sq(cases[i].a, cases[i].b, cases[i].d) ==
                  cases[i].l2);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_scalar),
      cmocka_unit_test(test_avx2),
      cmocka_unit_test(test_avx512),
      cmocka_unit_test(test_force_clamps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
