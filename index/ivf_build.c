/*
 * ivf_build.c -- IVF image construction (see ivf_build.h).
 *
 * Two passes over the live slots in ascending order: the first assigns each
 * vector to a list (FAISS, in batches), the second writes ids and vectors
 * list by list (a counting sort, so ids stay ascending within a list).
 * Vectors are re-read from the source in the second pass rather than kept,
 * so the builder's memory is the image plus one batch.
 */
#include "index/ivf_build.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "index/ann_faiss.h"
#include "base/wd_alloc.h"
#include "base/wd_types.h"

#define BATCH 8192
#define IDBUF 1024

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

size_t wd_ivf_default_nlist(uint64_t n) {
  size_t nl = (size_t)(4.0 * sqrt((double)n));
  if (nl < 1) nl = 1;
  if (nl > n) nl = (size_t)n;
  return nl;
}

/* Sequential reader of slot vectors with a one-block cache. */
typedef struct vreader {
  const wd_vecsrc *src;
  uint32_t blk;
  const float *base;
  int have;
} vreader;

/* Copy slot s's vector into out (unit length for cosine).  Returns 0 or a
 * negative get_block error; a missing block reads as zeros. */
static int read_vec(vreader *r, uint32_t s, float *out) {
  size_t dim = r->src->dim;
  uint32_t b = s / WD_BLOCK;
  if (!r->have || r->blk != b) {
    const float *base = NULL;
    int rc = r->src->get_block(r->src->ctx, b, &base);
    if (rc < 0) return rc;
    r->base = rc == 0 ? base : NULL;
    r->blk = b;
    r->have = 1;
  }
  if (!r->base) {
    memset(out, 0, dim * sizeof *out);
    return 0;
  }
  const float *x = r->base + WD_BLOCK + (size_t)(s % WD_BLOCK) * dim;
  if (r->src->metric == WD_METRIC_COSINE) {
    float inv = r->base[s % WD_BLOCK];
    for (size_t j = 0; j < dim; j++) out[j] = x[j] * inv;
  } else {
    memcpy(out, x, dim * sizeof *out);
  }
  return 0;
}

int wd_ivf_build(const wd_ivf_build_in *in, wd_ivf_build_out *out, char *why,
                 size_t whylen) {
  const size_t dim = in->src->dim;
  const int metric = in->src->metric;
  uint64_t n = roaring_bitmap_get_cardinality(in->live);
  memset(out, 0, sizeof *out);
  if (n == 0) {
    snprintf(why, whylen, "no live vectors to index");
    return -3;
  }
  size_t nlist = in->old ? in->old->nlist : in->nlist ? in->nlist : wd_ivf_default_nlist(n);
  if (nlist > n && !in->old) nlist = (size_t)n;
  size_t per = in->max_train_per_list ? in->max_train_per_list : 40;
  int niter = in->niter ? in->niter : 10;
  int rc = 0;
  uint32_t *slots = wd_malloc(n * sizeof *slots);
  uint32_t *labels = wd_malloc(n * sizeof *labels);
  float *cent = wd_malloc(nlist * dim * sizeof *cent);
  float *buf = wd_malloc((size_t)BATCH * dim * sizeof *buf);
  uint64_t *bi = wd_malloc(BATCH * sizeof *bi); /* batch row -> index */
  uint32_t *lab = wd_malloc(BATCH * sizeof *lab);
  float *sqmin = wd_calloc(dim, sizeof *sqmin), *sqscale = wd_calloc(dim, sizeof *sqscale);
  uint64_t *offs = wd_calloc(nlist + 1, sizeof *offs);
  uint32_t *oldlab = NULL;
  float *sample = NULL;
  char *image = NULL;
  if (!slots || !labels || !cent || !buf || !bi || !lab || !sqmin || !sqscale || !offs) goto oom;
  roaring_bitmap_to_uint32_array(in->live, slots);
  vreader rd = {in->src, 0, NULL, 0};

  /* ---- centroids: reuse or train */
  double t0 = now_ms();
  if (in->old) {
    memcpy(cent, in->old->cent, nlist * dim * sizeof *cent);
    if (in->sq8) {
      memcpy(sqmin, in->old->sqmin, dim * sizeof *sqmin);
      memcpy(sqscale, in->old->sqscale, dim * sizeof *sqscale);
    }
    oldlab = wd_malloc(in->next_slot * sizeof *oldlab);
    if (!oldlab && in->next_slot) goto oom;
    memset(oldlab, 0xff, in->next_slot * sizeof *oldlab);
    for (size_t l = 0; l < nlist; l++)
      for (uint64_t i = in->old->offs[l]; i < in->old->offs[l + 1]; i++)
        if (in->old->ids[i] < in->next_slot) oldlab[in->old->ids[i]] = (uint32_t)l;
  } else {
    uint64_t ns = n < (uint64_t)nlist * per ? n : (uint64_t)nlist * per;
    sample = wd_malloc(ns * dim * sizeof *sample);
    if (!sample) goto oom;
    out->train_bytes = ns * dim * sizeof *sample;
    /* a seeded uniform random sample of ns of the n live slots, drawn in
     * ascending slot order (Knuth's selection sampling, TAOCP 3.4.2 S) so
     * the blocks are read in order: a stride over insertion order could
     * alias with a periodic input, a random sample cannot */
    uint64_t rng = 0x9E3779B97F4A7C15ull ^ in->seed, got = 0;
    for (uint64_t i = 0; i < n && got < ns; i++) {
      uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      z ^= z >> 31;
      /* select with probability (ns - got) / (n - i) */
      if ((double)(z >> 11) * (1.0 / 9007199254740992.0) * (double)(n - i) < (double)(ns - got))
        if ((rc = read_vec(&rd, slots[i], sample + got++ * dim))) goto done;
    }
    ns = got; /* == ns: the last n - i candidates are taken with certainty */
    if (in->sq8) {
      for (size_t j = 0; j < dim; j++) {
        float lo = sample[j], hi = sample[j];
        for (uint64_t i = 1; i < ns; i++) {
          float v = sample[i * dim + j];
          lo = v < lo ? v : lo;
          hi = v > hi ? v : hi;
        }
        sqmin[j] = lo;
        sqscale[j] = (hi - lo) / 255.0f;
      }
    }
    if (wd_faiss_train(dim, metric, sample, ns, nlist, niter, in->seed, cent, why, whylen)) {
      rc = -2;
      goto done;
    }
    wd_free(sample);
    sample = NULL;
    out->retrained = 1;
  }
  out->train_ms = now_ms() - t0;

  /* ---- pass 1: labels */
  t0 = now_ms();
  uint64_t done_n = 0;
  for (uint64_t i0 = 0; i0 < n;) {
    size_t nb = 0;
    uint64_t i = i0;
    for (; i < n && nb < BATCH; i++) {
      if (oldlab && slots[i] < in->next_slot && oldlab[slots[i]] != UINT32_MAX) {
        labels[i] = oldlab[slots[i]];
        out->reused++;
        continue;
      }
      if ((rc = read_vec(&rd, slots[i], buf + nb * dim))) goto done;
      bi[nb++] = i;
    }
    if (nb) {
      if (wd_faiss_assign(dim, metric, cent, nlist, buf, nb, lab, why, whylen)) {
        rc = -2;
        goto done;
      }
      for (size_t j = 0; j < nb; j++) labels[bi[j]] = lab[j];
      out->assigned += nb;
    }
    done_n = i;
    i0 = i;
    if (in->progress) in->progress(in->progress_ctx, done_n, n);
  }
  out->assign_ms = now_ms() - t0;

  /* ---- pass 2: the image */
  for (uint64_t i = 0; i < n; i++) offs[labels[i] + 1]++;
  for (size_t l = 0; l < nlist; l++) offs[l + 1] += offs[l];
  wd_ivf_layout lay;
  wd_ivf_layout_of(dim, nlist, n, in->sq8, &lay);
  size_t len = WD_IVF_HDR + lay.body_len;
  /* what the build holds at its peak: the image, slots and labels, one
   * batch, and (freed before this) the training sample */
  out->build_bytes = len + n * 8 + (size_t)BATCH * dim * sizeof *buf + nlist * dim * sizeof *cent;
  if (out->train_bytes > out->build_bytes) out->build_bytes = out->train_bytes + n * 8;
  image = wd_calloc(1, len);
  if (!image) goto oom;
  char *body = image + WD_IVF_HDR;
  memcpy(body + lay.cent, cent, nlist * dim * sizeof *cent);
  memcpy(body + lay.offs, offs, (nlist + 1) * sizeof *offs);
  uint32_t *ids = (uint32_t *)(body + lay.ids);
  if (in->sq8) {
    memcpy(body + lay.sqmin, sqmin, dim * sizeof *sqmin);
    memcpy(body + lay.sqscale, sqscale, dim * sizeof *sqscale);
  }
  /* offs becomes the fill cursor of each list */
  rd.have = 0;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t pos = offs[labels[i]]++;
    ids[pos] = slots[i];
    if (in->sq8) {
      if ((rc = read_vec(&rd, slots[i], buf))) goto done;
      wd_ivf_sq8_encode(buf, sqmin, sqscale, dim, (uint8_t *)(body + lay.codes) + pos * dim);
    } else {
      if ((rc = read_vec(&rd, slots[i], (float *)(body + lay.vecs) + pos * dim))) goto done;
    }
  }
  wd_ivf_header *h = (wd_ivf_header *)image;
  h->dim = (uint32_t)dim;
  h->metric = (uint32_t)metric;
  h->flags = in->sq8 ? WD_IVF_SQ8 : 0;
  h->nlist = (uint32_t)nlist;
  h->revision = in->revision;
  h->next_slot = in->next_slot;
  h->ntrained = in->old ? in->old_ntrained : n;
  h->nvec = n;
  h->body_len = lay.body_len;
  h->created = (uint64_t)time(NULL);
  wd_ivf_seal(image);
  out->image = image;
  out->len = len;
  out->nlist = nlist;
  out->nvec = n;
  image = NULL;
  rc = 0;
  goto done;
oom:
  snprintf(why, whylen, "out of memory");
  rc = -1;
done:
  wd_free(slots);
  wd_free(labels);
  wd_free(cent);
  wd_free(buf);
  wd_free(bi);
  wd_free(lab);
  wd_free(sqmin);
  wd_free(sqscale);
  wd_free(offs);
  wd_free(oldlab);
  wd_free(sample);
  wd_free(image);
  return rc;
}
