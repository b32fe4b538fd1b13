/*
 * ann_faiss.c -- FAISS k-means and centroid assignment (see ann_faiss.h).
 * This is the only C file that calls FAISS.
 */
#include "index/ann_faiss.h"

#include <stdio.h>
#include <string.h>

#include "index/faiss_capi.h"
#include "base/wd_alloc.h"
#include "base/wd_types.h"

static int fail(char *err, size_t errlen, const char *what) {
  const char *m = faiss_get_last_error();
  if (err && errlen) snprintf(err, errlen, "faiss: %s: %s", what, m ? m : "failed");
  return -1;
}

/* A flat index holding the centroids, with the metric rule of the header. */
static int flat_new(size_t d, int metric, FaissIndex **out, char *err,
                    size_t errlen) {
  if (metric == WD_METRIC_L2) {
    FaissIndexFlatL2 *f = NULL;
    if (faiss_IndexFlatL2_new_with(&f, (idx_t)d)) return fail(err, errlen, "IndexFlatL2");
    *out = (FaissIndex *)f;
  } else {
    FaissIndexFlatIP *f = NULL;
    if (faiss_IndexFlatIP_new_with(&f, (idx_t)d)) return fail(err, errlen, "IndexFlatIP");
    *out = (FaissIndex *)f;
  }
  return 0;
}

int wd_faiss_train(size_t d, int metric, const float *x, size_t n,
                   size_t nlist, int niter, unsigned seed, float *centroids,
                   char *err, size_t errlen) {
  if (nlist == 0 || n < nlist || !x || !centroids) {
    if (err && errlen) snprintf(err, errlen, "train: need at least nlist vectors");
    return -1;
  }
  FaissClusteringParameters cp;
  faiss_ClusteringParameters_init(&cp);
  cp.niter = niter;
  cp.seed = (int)seed;
  cp.spherical = metric == WD_METRIC_COSINE;
  cp.min_points_per_centroid = 1; /* no warning on small samples */
  cp.max_points_per_centroid = 1 << 30; /* the caller already sampled */
  FaissClustering *cl = NULL;
  FaissIndex *assigner = NULL;
  int rc = 0;
  if (faiss_Clustering_new_with_params(&cl, (int)d, (int)nlist, &cp)) {
    rc = fail(err, errlen, "Clustering");
    goto done;
  }
  /* k-means itself always assigns by L2 (for unit vectors and spherical
   * centroids that is the same order as by inner product). */
  if ((rc = flat_new(d, WD_METRIC_L2, &assigner, err, errlen))) goto done;
  if (faiss_Clustering_train(cl, (idx_t)n, x, assigner)) {
    rc = fail(err, errlen, "k-means");
    goto done;
  }
  float *c = NULL;
  size_t sz = 0;
  faiss_Clustering_centroids(cl, &c, &sz);
  if (!c || sz != nlist * d) {
    if (err && errlen) snprintf(err, errlen, "faiss: k-means returned %zu floats", sz);
    rc = -1;
    goto done;
  }
  memcpy(centroids, c, nlist * d * sizeof *c);
done:
  if (assigner) faiss_Index_free(assigner);
  if (cl) faiss_Clustering_free(cl);
  return rc;
}

int wd_faiss_assign(size_t d, int metric, const float *centroids,
                    size_t nlist, const float *x, size_t n, uint32_t *labels,
                    char *err, size_t errlen) {
  if (n == 0) return 0;
  FaissIndex *q = NULL;
  idx_t *lab = wd_malloc(n * sizeof *lab);
  int rc = 0;
  if (!lab) {
    if (err && errlen) snprintf(err, errlen, "out of memory");
    return -1;
  }
  if ((rc = flat_new(d, metric, &q, err, errlen))) goto done;
  if (faiss_Index_add(q, (idx_t)nlist, centroids)) {
    rc = fail(err, errlen, "add centroids");
    goto done;
  }
  if (faiss_Index_assign(q, (idx_t)n, x, lab, 1)) {
    rc = fail(err, errlen, "assign");
    goto done;
  }
  for (size_t i = 0; i < n; i++) labels[i] = lab[i] < 0 ? 0 : (uint32_t)lab[i];
done:
  if (q) faiss_Index_free(q);
  wd_free(lab);
  return rc;
}
