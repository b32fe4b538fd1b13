/*
 * vecnorm.c -- which vectors warden can score in float32 (stored and query
 * vectors alike).
 *
 * Norms are computed in double.  A vector is refused when
 *  - a component is not a finite float32;
 *  - (cosine) its norm is 0, or below WD_VEC_MIN_NORM: 1/norm is then not a
 *    finite float32, or the products of the scan underflow into subnormals
 *    and the score loses its digits ([1e-40, 0, 0, 0] scored NaN and ranked
 *    above real matches);
 *  - (every metric) its squared norm is above WD_VEC_MAX_NORM2: an inner
 *    product, a cosine dot or a squared L2 distance between two such
 *    vectors could overflow float32 and print as null.  With both squared
 *    norms <= 1e37, |a.b| <= 1e37 and |a-b|^2 <= 4e37 < FLT_MAX.
 */
#include <math.h>
#include <stdio.h>

#include "engine/wd_internal.h"

int wd_vec_check(const float *v, size_t dim, int metric, char *why, size_t wl) {
  double n2 = 0;
  for (size_t i = 0; i < dim; i++) {
    if (!isfinite(v[i])) {
      snprintf(why, wl, "value %zu is not a finite float32", i);
      return -1;
    }
    n2 += (double)v[i] * v[i];
  }
  if (n2 > WD_VEC_MAX_NORM2) {
    snprintf(why, wl, "norm %.3g is too large (at most %.3g: scores would overflow float32)",
             sqrt(n2), sqrt(WD_VEC_MAX_NORM2));
    return -1;
  }
  if (metric == WD_METRIC_COSINE) {
    if (!(n2 > 0)) {
      snprintf(why, wl, "is all zeros (cosine needs a non-zero vector)");
      return -1;
    }
    if (sqrt(n2) < WD_VEC_MIN_NORM) {
      snprintf(why, wl,
               "norm %.3g is too small to normalise in float32 (cosine needs a norm of at "
               "least %.0e)",
               sqrt(n2), WD_VEC_MIN_NORM);
      return -1;
    }
  }
  return 0;
}
