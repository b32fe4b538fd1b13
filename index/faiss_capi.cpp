/*
 * faiss_capi.cpp -- our own implementation of the FAISS C API functions the
 * warden library calls (see faiss_capi.h), because Debian's FAISS 1.7.3
 * ships no libfaiss_c.  Only these are in libwarden: flat IP/L2 indexes
 * (add, assign, free) and k-means (Clustering); the rest of the C API that
 * the benchmarks and tests use is bench/faiss_capi_extra.cpp, linked into
 * those binaries only.
 *
 * Each function follows the upstream c_api conventions -- handles are the
 * C++ objects behind opaque pointers, int 0 on success, every C++ exception
 * caught at the boundary and turned into a negative code plus a per-thread
 * message for faiss_get_last_error() -- with one deliberate hardening:
 * NULL handles and output pointers are rejected with an error instead of
 * crashing, and nothing is ever printed (upstream's debug build prints
 * exceptions to stderr).  The shared boundary and checks are in
 * faiss_capi_impl.h.
 *
 * Threading: the only state of this file is the thread_local error buffer.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wextra"
#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#pragma GCC diagnostic pop

#include <cstdio>

#include "index/faiss_capi_impl.h"

namespace {

/* ---- error channel --------------------------------------------------- */

/* A fixed buffer, so recording an error can never itself throw. */
thread_local char last_error[1024];
thread_local bool have_error = false;

}  // namespace

void wd_faiss::set_error(const char *msg) noexcept {
  if (!msg || !*msg) msg = "unknown error";
  std::snprintf(last_error, sizeof last_error, "%s", msg);
  have_error = true;
}

using namespace wd_faiss;

extern "C" {

const char *faiss_get_last_error() { return have_error ? last_error : nullptr; }

void faiss_Index_free(FaissIndex *obj) { delete idx(obj); }

int faiss_Index_add(FaissIndex *index, idx_t n, const float *x) {
  return guarded([&] {
    need(index, "index");
    need_count(n, "n");
    if (n > 0) need(x, "x");
    idx(index)->add(n, x);
  });
}

int faiss_Index_assign(FaissIndex *index, idx_t n, const float *x,
                       idx_t *labels, idx_t k) {
  return guarded([&] {
    need(index, "index");
    need_count(n, "n");
    if (k <= 0) throw std::invalid_argument("k must be positive");
    if (n > 0) {
      need(x, "x");
      need(labels, "labels");
    }
    idx(index)->assign(n, x, labels, k);
  });
}

int faiss_IndexFlatIP_new_with(FaissIndexFlatIP **p_index, idx_t d) {
  return guarded([&] {
    need(p_index, "p_index");
    check_dim(d);
    *p_index = handle(new faiss::IndexFlatIP(d));
  });
}

int faiss_IndexFlatL2_new_with(FaissIndexFlatL2 **p_index, idx_t d) {
  return guarded([&] {
    need(p_index, "p_index");
    check_dim(d);
    *p_index = handle(new faiss::IndexFlatL2(d));
  });
}

void faiss_ClusteringParameters_init(FaissClusteringParameters *params) {
  if (!params) return;
  faiss::ClusteringParameters d;
  params->niter = d.niter;
  params->nredo = d.nredo;
  params->verbose = d.verbose;
  params->spherical = d.spherical;
  params->int_centroids = d.int_centroids;
  params->update_index = d.update_index;
  params->frozen_centroids = d.frozen_centroids;
  params->min_points_per_centroid = d.min_points_per_centroid;
  params->max_points_per_centroid = d.max_points_per_centroid;
  params->seed = d.seed;
  params->decode_block_size = d.decode_block_size;
}

/* Borrowed pointer into the clustering object, valid until it is trained
 * again or freed. */
void faiss_Clustering_centroids(FaissClustering *clustering,
                                float **centroids, size_t *size) {
  auto *c = reinterpret_cast<faiss::Clustering *>(clustering);
  if (centroids) *centroids = c ? c->centroids.data() : nullptr;
  if (size) *size = c ? c->centroids.size() : 0;
}

int faiss_Clustering_new_with_params(FaissClustering **p_clustering, int d,
                                     int k,
                                     const FaissClusteringParameters *cp) {
  return guarded([&] {
    need(p_clustering, "p_clustering");
    need(cp, "cp");
    check_dim(d);
    if (k <= 0) throw std::invalid_argument("k must be positive");
    faiss::ClusteringParameters p;
    p.niter = cp->niter;
    p.nredo = cp->nredo;
    p.verbose = cp->verbose != 0;
    p.spherical = cp->spherical != 0;
    p.int_centroids = cp->int_centroids != 0;
    p.update_index = cp->update_index != 0;
    p.frozen_centroids = cp->frozen_centroids != 0;
    p.min_points_per_centroid = cp->min_points_per_centroid;
    p.max_points_per_centroid = cp->max_points_per_centroid;
    p.seed = cp->seed;
    p.decode_block_size = cp->decode_block_size;
    *p_clustering =
        reinterpret_cast<FaissClustering *>(new faiss::Clustering(d, k, p));
  });
}

int faiss_Clustering_train(FaissClustering *clustering, idx_t n,
                           const float *x, FaissIndex *index) {
  return guarded([&] {
    need(clustering, "clustering");
    need(index, "index");
    need_count(n, "n");
    if (n > 0) need(x, "x");
    reinterpret_cast<faiss::Clustering *>(clustering)->train(n, x, *idx(index));
  });
}

void faiss_Clustering_free(FaissClustering *clustering) {
  delete reinterpret_cast<faiss::Clustering *>(clustering);
}

}  // extern "C"
