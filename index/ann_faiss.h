/*
 * ann_faiss.h -- the one door from warden's C code to FAISS (through its C
 * API, index/faiss_capi.h): k-means training of IVF centroids and bulk
 * assignment of vectors to their nearest centroid.
 *
 * Only these two steps use FAISS.  The inverted lists, the filtered list
 * scan and the index file are warden's own (index/ivf.c): measured on this
 * machine, Debian's generic FAISS build scans IVF lists with an
 * IDSelectorBitmap 2.5-5x slower than our AVX-512/AVX2 kernels at the same
 * nprobe (bench/ivf_bench.c: 700-1300 vs 2100-5700 QPS at 200k x 384), and FAISS's selector cannot consult a CRoaring bitmap
 * without first expanding it to a dense byte map per query.
 *
 * Metric rule (FAISS's IndexIVF convention): L2 collections cluster and
 * assign by L2; cosine collections pass unit vectors, cluster spherically
 * and assign by inner product; IP collections assign by inner product.
 *
 * Threading: reentrant.  FAISS uses OpenMP internally.
 */
#ifndef WD_ANN_FAISS_H
#define WD_ANN_FAISS_H
#include <stddef.h>
#include <stdint.h>

/* Train nlist centroids (nlist*d floats into centroids) from n >= nlist
 * sample vectors x (row-major, d floats each) with niter k-means
 * iterations and a fixed seed.  Returns 0, or -1 with a message in err. */
int wd_faiss_train(size_t d, int metric, const float *x, size_t n,
                   size_t nlist, int niter, unsigned seed, float *centroids,
                   char *err, size_t errlen);

/* Label each of n vectors x with its nearest of nlist centroids (labels: n
 * entries).  Returns 0, or -1 with a message in err. */
int wd_faiss_assign(size_t d, int metric, const float *centroids,
                    size_t nlist, const float *x, size_t n, uint32_t *labels,
                    char *err, size_t errlen);

#endif
