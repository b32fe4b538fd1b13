/*
 * ivf.c -- the IVF index image, its file, and the filtered adaptive probe
 * (see ivf.h).
 *
 * Probe order: distances from the query to every centroid (one *_rows
 * kernel call), heapified once; lists are popped nearest first, so a
 * search that stops after a few lists pays O(nlist + lists*log nlist)
 * instead of a full sort.
 *
 * Why adaptive probing: with a filter of selectivity s, the nearest lists
 * hold only s of their vectors as candidates, so a fixed nprobe loses
 * recall as s falls.  Probing continues until enough *allowed* vectors
 * were scanned (want_allowed), which is what the k results are drawn from,
 * under hard bounds (max_lists, max_visited) so a hostile filter cannot
 * turn a query into a full scan; the planner (engine/search.c) sends such
 * filters to the exact scan in the first place.
 */
#include "index/ivf.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/imgmap.h"
#include "index/kernels.h"
#include "base/wd_alloc.h"
#include "base/wd_types.h"

_Static_assert(sizeof(wd_ivf_header) == WD_IVF_HDR, "header is 128 bytes");
_Static_assert(sizeof(wd_ivf_cal) <= sizeof(((wd_ivf_header *)0)->pad), "the table fits the padding");

static const char MAGIC[8] = {'W', 'D', 'I', 'V', 'F', '\r', '\n', 0x1a};

static size_t al64(size_t x) { return (x + 63) & ~(size_t)63; }

void wd_ivf_layout_of(size_t dim, size_t nlist, size_t nvec, int sq8,
                      wd_ivf_layout *l) {
  memset(l, 0, sizeof *l);
  size_t o = 0;
  l->cent = o;
  o = al64(o + nlist * dim * sizeof(float));
  l->offs = o;
  o = al64(o + (nlist + 1) * sizeof(uint64_t));
  l->ids = o;
  o = al64(o + nvec * sizeof(uint32_t));
  if (sq8) {
    l->sqmin = o;
    o = al64(o + dim * sizeof(float));
    l->sqscale = o;
    o = al64(o + dim * sizeof(float));
    l->codes = o;
    o = al64(o + nvec * dim);
  } else {
    l->vecs = o;
    o = al64(o + nvec * dim * sizeof(float));
  }
  l->body_len = o;
}

/* ------------------------------------------------------------ checksum */

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t round1(uint64_t acc, uint64_t w) {
  return rotl(acc + w * P2, 31) * P1;
}

uint64_t wd_ivf_checksum(const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t a0 = P1 + P2, a1 = P2, a2 = 0, a3 = 0 - P1;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    uint64_t w[4];
    memcpy(w, b + i, 32);
    a0 = round1(a0, w[0]);
    a1 = round1(a1, w[1]);
    a2 = round1(a2, w[2]);
    a3 = round1(a3, w[3]);
  }
  uint64_t h = rotl(a0, 1) + rotl(a1, 7) + rotl(a2, 12) + rotl(a3, 18);
  h ^= (uint64_t)n * P3;
  for (; i < n; i++) h = rotl(h ^ (b[i] * P1), 11) * P2;
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

void wd_ivf_seal(void *image) {
  wd_ivf_header *h = image;
  memcpy(h->magic, MAGIC, 8);
  h->version = WD_IVF_VERSION;
  h->body_sum = wd_ivf_checksum((char *)image + WD_IVF_HDR, h->body_len);
  h->hdr_sum = wd_ivf_checksum(image, offsetof(wd_ivf_header, hdr_sum));
}

/* --------------------------------------------------------------- files */

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n > (1u << 30) ? (1u << 30) : n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

int wd_ivf_write_file(const char *path, const void *image, size_t len,
                      char *why, size_t whylen) {
  char tmp[4096], dir[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp ||
      snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
    snprintf(why, whylen, "%s: path too long", path);
    return -1;
  }
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    snprintf(why, whylen, "%s: %s", tmp, strerror(errno));
    return -1;
  }
  if (write_all(fd, image, len) || fsync(fd)) {
    snprintf(why, whylen, "%s: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    return -1;
  }
  if (close(fd) || rename(tmp, path)) {
    snprintf(why, whylen, "%s: %s", path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  /* make the rename itself durable */
  int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
}

/* SQ8 of the centroids with their own per-dimension ranges. */
static void centroid_codes(wd_ivf *ix) {
  size_t dim = ix->dim, nl = ix->nlist;
  char *m = wd_malloc((2 * dim + nl) * sizeof(float) + nl * dim);
  if (!m) return;
  float *mn = (float *)m, *sc = mn + dim, *cn = sc + dim;
  uint8_t *codes = (uint8_t *)(cn + nl);
  for (size_t j = 0; j < dim; j++) {
    float lo = ix->cent[j], hi = ix->cent[j];
    for (size_t l = 1; l < nl; l++) {
      float v = ix->cent[l * dim + j];
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
    }
    mn[j] = lo;
    sc[j] = (hi - lo) / 255.0f;
  }
  for (size_t l = 0; l < nl; l++) {
    wd_ivf_sq8_encode(ix->cent + l * dim, mn, sc, dim, codes + l * dim);
    /* L2: |decoded centroid|^2, so |q - c|^2 = |q|^2 - 2 q.c + |c|^2 runs
     * on the byte dot product */
    double n2 = 0;
    for (size_t j = 0; j < dim; j++) {
      double x = (double)mn[j] + (double)sc[j] * codes[l * dim + j];
      n2 += x * x;
    }
    cn[l] = (float)n2;
  }
  ix->cq = m;
  ix->cnorm = cn;
  ix->cmin = mn;
  ix->cscale = sc;
  ix->ccodes = codes;
}

int wd_ivf_open_image(const void *image, size_t len, size_t dim, int metric,
                      wd_ivf *ix, char *why, size_t whylen) {
  memset(ix, 0, sizeof *ix);
  if (len < WD_IVF_HDR) {
    snprintf(why, whylen, "truncated: %zu bytes, shorter than the header", len);
    return 2;
  }
  const wd_ivf_header *h = image;
  if (memcmp(h->magic, MAGIC, 8) != 0) {
    snprintf(why, whylen, "not a warden index file (bad magic)");
    return 3;
  }
  if (h->hdr_sum != wd_ivf_checksum(image, offsetof(wd_ivf_header, hdr_sum))) {
    snprintf(why, whylen, "header checksum mismatch");
    return 2;
  }
  if (h->version != WD_IVF_VERSION) {
    snprintf(why, whylen, "format version %u, this build reads %u", h->version,
             WD_IVF_VERSION);
    return 3;
  }
  if (h->dim != dim || h->metric != (uint32_t)metric) {
    snprintf(why, whylen, "built for dimension %u metric %u, collection has %zu/%d",
             h->dim, h->metric, dim, metric);
    return 3;
  }
  if (h->nlist == 0 || h->nlist > (1u << 24) || (h->flags & ~WD_IVF_SQ8) ||
      h->nvec > h->next_slot || h->nvec > (1ull << 32)) {
    snprintf(why, whylen, "implausible header (nlist %u, nvec %llu)", h->nlist,
             (unsigned long long)h->nvec);
    return 2;
  }
  wd_ivf_layout lay;
  int sq8 = (h->flags & WD_IVF_SQ8) != 0;
  wd_ivf_layout_of(dim, h->nlist, h->nvec, sq8, &lay);
  if (lay.body_len != h->body_len || len != WD_IVF_HDR + h->body_len) {
    snprintf(why, whylen, "truncated or padded: %zu bytes, header says %llu", len,
             (unsigned long long)(WD_IVF_HDR + h->body_len));
    return 2;
  }
  const char *body = (const char *)image + WD_IVF_HDR;
  if (h->body_sum != wd_ivf_checksum(body, h->body_len)) {
    snprintf(why, whylen, "body checksum mismatch");
    return 2;
  }
  ix->h = *h;
  ix->dim = dim;
  ix->metric = metric;
  ix->sq8 = sq8;
  ix->nlist = h->nlist;
  ix->cent = (const float *)(body + lay.cent);
  ix->offs = (const uint64_t *)(body + lay.offs);
  ix->ids = (const uint32_t *)(body + lay.ids);
  if (sq8) {
    ix->sqmin = (const float *)(body + lay.sqmin);
    ix->sqscale = (const float *)(body + lay.sqscale);
    ix->codes = (const uint8_t *)(body + lay.codes);
  } else {
    ix->vecs = (const float *)(body + lay.vecs);
  }
  /* structure: a checksum only proves the bytes are what was written */
  if (ix->offs[0] != 0 || ix->offs[ix->nlist] != h->nvec) goto bad;
  for (size_t l = 0; l < ix->nlist; l++) {
    if (ix->offs[l + 1] < ix->offs[l]) goto bad;
    for (uint64_t i = ix->offs[l]; i < ix->offs[l + 1]; i++)
      if (ix->ids[i] >= h->next_slot || (i > ix->offs[l] && ix->ids[i] <= ix->ids[i - 1]))
        goto bad;
  }
  centroid_codes(ix);
  return 0;
bad:
  snprintf(why, whylen, "inverted lists are inconsistent");
  memset(ix, 0, sizeof *ix);
  return 2;
}

int wd_ivf_open_file(const char *path, size_t dim, int metric, wd_ivf *ix,
                     char *why, size_t whylen) {
  memset(ix, 0, sizeof *ix);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(why, whylen, "%s: %s", path, strerror(errno));
    return errno == ENOENT ? 1 : 2;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    snprintf(why, whylen, "%s: %s", path, strerror(errno));
    close(fd);
    return 2;
  }
  size_t len = (size_t)st.st_size;
  if (len < WD_IVF_HDR) {
    close(fd);
    snprintf(why, whylen, "truncated: %zu bytes, shorter than the header", len);
    return 2;
  }
  void *m = wd_img_load(fd, len); /* huge pages: see imgmap.h */
  close(fd);
  if (!m) {
    snprintf(why, whylen, "%s: mmap: %s", path, strerror(errno));
    return 2;
  }
  int rc = wd_ivf_open_image(m, len, dim, metric, ix, why, whylen);
  if (rc) {
    wd_img_free(m, len);
    return rc;
  }
  ix->map = m;
  ix->maplen = len;
  return 0;
}

void wd_ivf_close(wd_ivf *ix) {
  if (!ix) return;
  if (ix->map) wd_img_free(ix->map, ix->maplen);
  wd_free(ix->owned);
  wd_free(ix->cq);
  memset(ix, 0, sizeof *ix);
}

/* -------------------------------------------------------------- extras */

void wd_ivf_extra_free(wd_ivf_extra *ex) {
  if (!ex) return;
  for (size_t l = 0; ex->ids && l < ex->nlist; l++) {
    wd_free(ex->ids[l]);
    wd_free(ex->vecs[l]);
  }
  wd_free(ex->ids);
  wd_free(ex->vecs);
  wd_free(ex->cnt);
  wd_free(ex->cap);
  wd_free(ex);
}

wd_ivf_extra *wd_ivf_extra_clone(const wd_ivf_extra *src, size_t nlist,
                                 size_t dim) {
  wd_ivf_extra *ex = wd_calloc(1, sizeof *ex);
  if (!ex) return NULL;
  ex->nlist = nlist;
  ex->dim = dim;
  ex->cnt = wd_calloc(nlist, sizeof *ex->cnt);
  ex->cap = wd_calloc(nlist, sizeof *ex->cap);
  ex->ids = wd_calloc(nlist, sizeof *ex->ids);
  ex->vecs = wd_calloc(nlist, sizeof *ex->vecs);
  if (!ex->cnt || !ex->cap || !ex->ids || !ex->vecs) goto oom;
  if (src) {
    for (size_t l = 0; l < nlist; l++) {
      uint32_t n = src->cnt[l];
      if (!n) continue;
      ex->ids[l] = wd_malloc(n * sizeof(uint32_t));
      ex->vecs[l] = wd_malloc((size_t)n * dim * sizeof(float));
      if (!ex->ids[l] || !ex->vecs[l]) goto oom;
      memcpy(ex->ids[l], src->ids[l], n * sizeof(uint32_t));
      memcpy(ex->vecs[l], src->vecs[l], (size_t)n * dim * sizeof(float));
      ex->cnt[l] = ex->cap[l] = n;
    }
    ex->nvec = src->nvec;
  }
  return ex;
oom:
  wd_ivf_extra_free(ex);
  return NULL;
}

int wd_ivf_extra_add(wd_ivf_extra *ex, const uint32_t *slots,
                     const uint32_t *labels, const float *vecs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint32_t l = labels[i];
    if (l >= ex->nlist) continue;
    if (ex->cnt[l] == ex->cap[l]) {
      uint32_t nc = ex->cap[l] ? ex->cap[l] * 2 : 8;
      uint32_t *ni = wd_realloc(ex->ids[l], nc * sizeof *ni);
      if (!ni) return -1;
      ex->ids[l] = ni;
      float *nv = wd_realloc(ex->vecs[l], (size_t)nc * ex->dim * sizeof *nv);
      if (!nv) return -1;
      ex->vecs[l] = nv;
      ex->cap[l] = nc;
    }
    ex->ids[l][ex->cnt[l]] = slots[i];
    memcpy(ex->vecs[l] + (size_t)ex->cnt[l] * ex->dim, vecs + i * ex->dim,
           ex->dim * sizeof(float));
    ex->cnt[l]++;
    ex->nvec++;
  }
  return 0;
}

/* ----------------------------------------------------------------- sq8 */

void wd_ivf_sq8_encode(const float *x, const float *sqmin,
                       const float *sqscale, size_t dim, uint8_t *code) {
  for (size_t j = 0; j < dim; j++) {
    float v = sqscale[j] > 0 ? (x[j] - sqmin[j]) / sqscale[j] : 0.0f;
    v = v < 0 ? 0 : v > 255 ? 255 : v;
    code[j] = (uint8_t)(v + 0.5f);
  }
}

/* -------------------------------------------------------------- search */

typedef struct cl_ent {
  float d;
  uint32_t l;
} cl_ent;

static void sift_down(cl_ent *h, size_t n, size_t i) {
  for (;;) {
    size_t m = i, a = 2 * i + 1, b = a + 1;
    if (a < n && (h[a].d < h[m].d || (h[a].d == h[m].d && h[a].l < h[m].l))) m = a;
    if (b < n && (h[b].d < h[m].d || (h[b].d == h[m].d && h[b].l < h[m].l))) m = b;
    if (m == i) return;
    cl_ent t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

/* The probe order: lists by ascending (distance, id), popped one at a
 * time.  perf, text-384 60k at 10 % (979 lists, ~30 probed): heapifying
 * all 979 entries, each comparison a coin flip for the branch predictor,
 * was 10 % of a query (sift_down).  So only the nearest ones are heaped
 * first: a 256-bucket histogram of the distances (linear between the
 * smallest and the largest) picks the buckets holding at least `want`
 * lists, a branchless pass splits the entries into those buckets (heaped)
 * and the rest (kept aside), and the rest is heaped only if the probe
 * reaches it.  Bucketing is monotone in the distance, so every entry kept
 * aside is farther than every heaped one and the pop order is the full
 * heap's, ties included (test_ivf_probe_order). */
typedef struct probe_order {
  cl_ent *h, *rest; /* heap; entries kept aside (nlist each) */
  uint8_t *bk;      /* scratch: each entry's bucket (nlist) */
  size_t hn, nrest;
} probe_order;

#define PO_SPLIT_MIN 256 /* fewer lists: one heap, as before */

static void po_init(probe_order *o, size_t nlist, size_t want) {
  cl_ent *h = o->h;
  o->hn = nlist;
  o->nrest = 0;
  if (nlist >= PO_SPLIT_MIN && want < nlist / 2) {
    float mn = h[0].d, mx = h[0].d;
    for (size_t i = 1; i < nlist; i++) {
      mn = h[i].d < mn ? h[i].d : mn;
      mx = h[i].d > mx ? h[i].d : mx;
    }
    float range = mx - mn, scale = range > 0 && range < INFINITY ? 255.0f / range : 0;
    uint32_t hist[256] = {0};
    uint8_t *bk = o->bk;
    for (size_t i = 0; i < nlist; i++) {
      float x = (h[i].d - mn) * scale;
      if (!(x < 255.0f)) x = x >= 0 ? 255.0f : 0.0f; /* inf, nan */
      if (!(x >= 0)) x = 0;
      bk[i] = (uint8_t)x;
      hist[bk[i]]++;
    }
    uint32_t B = 0, cum = hist[0];
    while (cum < want && B < 255) cum += hist[++B];
    if (cum < nlist) {
      /* split in place: heaped entries compact to the front (lo <= i),
       * the rest go to o->rest */
      size_t lo = 0, ri = 0;
      for (size_t i = 0; i < nlist; i++) {
        cl_ent e = h[i];
        int in = bk[i] <= B;
        h[lo] = e;
        o->rest[ri] = e;
        lo += (size_t)in;
        ri += (size_t)!in;
      }
      o->hn = lo;
      o->nrest = ri;
    }
  }
  for (size_t i = o->hn / 2; i-- > 0;) sift_down(h, o->hn, i);
}

/* The next list, or 0 when none is left. */
static int po_pop(probe_order *o, uint32_t *l) {
  if (o->hn == 0) {
    if (o->nrest == 0) return 0;
    memcpy(o->h, o->rest, o->nrest * sizeof *o->h);
    o->hn = o->nrest;
    o->nrest = 0;
    for (size_t i = o->hn / 2; i-- > 0;) sift_down(o->h, o->hn, i);
  }
  *l = o->h[0].l;
  o->h[0] = o->h[--o->hn];
  sift_down(o->h, o->hn, 0);
  return 1;
}

long wd_ivf_probe_order(const float *d, size_t n, size_t want, uint32_t *order, size_t m) {
  cl_ent *h = wd_malloc((2 * n + 1) * sizeof *h + n);
  if (!h) return -1;
  for (size_t i = 0; i < n; i++) h[i] = (cl_ent){d[i], (uint32_t)i};
  probe_order po = {h, h + n, (uint8_t *)(h + 2 * n + 1), 0, 0};
  po_init(&po, n, want);
  size_t k = 0;
  while (k < m && po_pop(&po, &order[k])) k++;
  wd_free(h);
  return (long)k;
}

/* wd_topk_offer() for a run of kernel values: dist = a + b * v[r].  The heap's
 * worst distance is kept in a register and re-read only after a push, so
 * a rejected candidate costs one compare (perf: the per-candidate heap
 * reads were ~15 % of an unfiltered GloVe probe).  Ties go to wd_topk_offer(). */
static inline void offer_run(wd_topk *t, const float *v, size_t len, float a, float b,
                             const uint32_t *ids) {
  float thr = t->n < t->k ? INFINITY : t->h[0].dist;
  for (size_t r = 0; r < len; r++) {
    float d = a + b * v[r];
    if (d <= thr) {
      wd_topk_offer(t, d, ids[r]);
      thr = t->n < t->k ? INFINITY : t->h[0].dist;
    }
  }
}

/* Container by container: a bitset container is one 8 KiB copy and a run
 * container a few word fills, instead of one iterator step per id
 * (measured: 14 % of an unfiltered IVF query at 50k vectors went to the
 * per-id loop).  Uses CRoaring's container layout from its public
 * headers; tests/test_ann.c checks the result against
 * roaring_bitmap_contains on array, bitset and run containers. */
static void set_range(uint64_t *b, uint64_t lo, uint64_t hi) { /* [lo, hi] */
  uint64_t wl = lo >> 6, wh = hi >> 6;
  uint64_t ml = ~0ull << (lo & 63), mh = ~0ull >> (63 - (hi & 63));
  if (wl == wh) {
    b[wl] |= ml & mh;
    return;
  }
  b[wl] |= ml;
  for (uint64_t w = wl + 1; w < wh; w++) b[w] = ~0ull;
  b[wh] |= mh;
}

uint64_t *wd_ivf_bits(const roaring_bitmap_t *allowed, uint64_t *nbits) {
  *nbits = 0;
  if (!allowed || roaring_bitmap_is_empty(allowed)) return NULL;
  uint64_t n = (uint64_t)roaring_bitmap_maximum(allowed) + 1;
  size_t words = (size_t)((n + 63) / 64);
  /* whole 64 Ki-id chunks, so bitset containers copy without bounds
   * arithmetic */
  size_t alloc = ((words + 1023) / 1024) * 1024;
  uint64_t *b = wd_calloc(alloc, sizeof *b);
  if (!b) return NULL;
  const roaring_array_t *ra = &allowed->high_low_container;
  for (int32_t i = 0; i < ra->size; i++) {
    uint8_t type = ra->typecodes[i];
    const void *c = container_unwrap_shared(ra->containers[i], &type);
    uint64_t base = (uint64_t)ra->keys[i] << 16;
    uint64_t *w = b + (base >> 6);
    if (type == BITSET_CONTAINER_TYPE_CODE) {
      memcpy(w, ((const bitset_container_t *)c)->array, 1024 * sizeof *w);
    } else if (type == ARRAY_CONTAINER_TYPE_CODE) {
      const array_container_t *a = c;
      for (int32_t j = 0; j < a->cardinality; j++) w[a->array[j] >> 6] |= 1ull << (a->array[j] & 63);
    } else if (type == RUN_CONTAINER_TYPE_CODE) {
      const run_container_t *r = c;
      for (int32_t j = 0; j < r->n_runs; j++)
        set_range(w, r->runs[j].value, (uint64_t)r->runs[j].value + r->runs[j].length);
    } else { /* unknown layout: per id */
      roaring_uint32_iterator_t it;
      uint32_t ids[1024];
      roaring_init_iterator(allowed, &it);
      for (;;) {
        uint32_t got = roaring_read_uint32_iterator(&it, ids, 1024);
        for (uint32_t k = 0; k < got; k++) b[ids[k] >> 6] |= 1ull << (ids[k] & 63);
        if (got < 1024) break;
      }
      break;
    }
  }
  *nbits = n;
  return b;
}

typedef struct filt {
  const roaring_bitmap_t *rb;
  const uint64_t *bits;
  uint64_t nbits;
} filt;

static inline int is_allowed(const filt *f, uint32_t id) {
  if (f->bits) return id < f->nbits && ((f->bits[id >> 6] >> (id & 63)) & 1);
  return !f->rb || roaring_bitmap_contains(f->rb, id);
}

/* Longest run of consecutive allowed list entries per kernel call. */
#define RUN_MAX 128
/* Runs ahead whose first row is prefetched while one is scored. */
#define PF_RUNS 6

static inline void prefetch_entry(const wd_ivf *ix, uint64_t i) {
  const char *p = ix->sq8 ? (const char *)(ix->codes + i * ix->dim)
                          : (const char *)(ix->vecs + i * ix->dim);
  size_t bytes = ix->sq8 ? ix->dim : ix->dim * sizeof(float);
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 3);
}

/* offer_run() for a block of list entries of which only the allowed ones
 * may enter the heap; returns how many were allowed.  The count is
 * branch-free; the allowed test gates only candidates that beat the
 * heap's worst. */
static inline uint64_t offer_run_allowed(wd_topk *t, const float *v, size_t len, float a,
                                         float b, const uint32_t *ids, const filt *f) {
  float thr = t->n < t->k ? INFINITY : t->h[0].dist;
  uint64_t n = 0;
  for (size_t r = 0; r < len; r++) {
    int ok = is_allowed(f, ids[r]);
    n += (uint64_t)ok;
    float d = a + b * v[r];
    if (ok && d <= thr) {
      wd_topk_offer(t, d, ids[r]);
      thr = t->n < t->k ? INFINITY : t->h[0].dist;
    }
  }
  return n;
}

static inline float flat_dist(int metric, const float *q, const float *x,
                              size_t dim) {
  return metric == WD_METRIC_L2 ? wd_l2sq(q, x, dim) : -wd_dot(q, x, dim);
}

/* Centroid inner products from the byte centroids with a byte query
 * (AVX-512 VNNI): only the probe order depends on them, and the probe
 * depth is calibrated through this same path.  perf at 200k x 384: the
 * float centroid scan (2.7 MB per query) was 8 % of an unfiltered query.
 * 0 or -1 (out of memory). */
static int centroid_dots_i8(const wd_ivf *ix, const float *q, float *cd) {
  size_t dim = ix->dim, nl = ix->nlist;
  int8_t *qi = wd_malloc(dim ? dim : 1);
  int32_t *acc = wd_malloc(nl * sizeof *acc);
  float *qsc = wd_malloc((dim ? dim : 1) * sizeof *qsc);
  if (!qi || !acc || !qsc) {
    wd_free(qi);
    wd_free(acc);
    wd_free(qsc);
    return -1;
  }
  float mx = 0, base = 0;
  for (size_t j = 0; j < dim; j++) {
    qsc[j] = q[j] * ix->cscale[j];
    float v = fabsf(qsc[j]);
    mx = v > mx ? v : mx;
    base += q[j] * ix->cmin[j];
  }
  float qm = (float)wd_kernels_i8_qmax();
  float inv = mx > 0 ? qm / mx : 0, back = mx / qm;
  wd_quant_i8(qsc, inv, dim, qi);
  wd_free(qsc);
  wd_sq8_i8_dot_rows(qi, ix->ccodes, nl, dim, acc);
  for (size_t l = 0; l < nl; l++) {
    float dot = base + (float)acc[l] * back;
    /* L2 without |q|^2 (the same for every list: the order is what counts) */
    cd[l] = ix->metric == WD_METRIC_L2 ? ix->cnorm[l] - 2.0f * dot : dot;
  }
  wd_free(qi);
  wd_free(acc);
  return 0;
}

/* Kernel values of list entries [i, i + len) into run: the distance of
 * entry r is the returned offset plus (l2) or minus (inner product)
 * run[r].  qs, qi: the shifted/scaled and byte queries of an SQ8 list
 * (qi NULL without VNNI); irun: scratch for the byte kernel. */
static inline float list_dists(const wd_ivf *ix, const float *q, const float *qs,
                               const int8_t *qi, float qiscale, float qconst, uint64_t i,
                               size_t len, float *run, int32_t *irun) {
  const size_t dim = ix->dim;
  const int l2 = ix->metric == WD_METRIC_L2;
  if (!ix->sq8) {
    if (l2)
      wd_l2sq_rows(q, ix->vecs + i * dim, len, dim, run);
    else
      wd_dot_rows(q, ix->vecs + i * dim, len, dim, run);
    return 0.0f;
  }
  const uint8_t *c = ix->codes + i * dim;
  if (l2) {
    wd_sq8_l2_rows(qs, ix->sqscale, c, len, dim, run);
    return 0.0f;
  }
  if (qi) {
    wd_sq8_i8_dot_rows(qi, c, len, dim, irun);
    for (size_t r = 0; r < len; r++) run[r] = (float)irun[r] * qiscale;
  } else {
    wd_sq8_dot_rows(qs, c, len, dim, run);
  }
  return -qconst;
}

int wd_ivf_search(const wd_ivf *ix, const wd_ivf_extra *ex, const float *q,
                  const roaring_bitmap_t *allowed, const wd_ivf_params *p,
                  const wd_vecsrc *exact, wd_topk *heap, wd_ivf_stats *st) {
  const size_t dim = ix->dim, nlist = ix->nlist;
  const int metric = ix->metric, l2 = metric == WD_METRIC_L2;
  wd_ivf_stats s;
  memset(&s, 0, sizeof s);
  int rc = 0;
  uint32_t *runs = NULL; /* (offset in list, length) of allowed runs */
  size_t runcap = 0;
  float *cd = wd_malloc(nlist * sizeof *cd);
  /* the probe order's heap, the entries it keeps aside, their buckets */
  cl_ent *h = wd_malloc(2 * nlist * sizeof *h + nlist);
  float *qs = ix->sq8 ? wd_malloc(dim * sizeof *qs) : NULL;
  int8_t *qi = NULL; /* VNNI: the query in bytes */
  float qiscale = 0;
  wd_topk cand; /* sq8: approximate candidates before re-ranking */
  memset(&cand, 0, sizeof cand);
  size_t rr = p->rerank > heap->k ? p->rerank : heap->k;
  if (!cd || !h || (ix->sq8 && (!qs || wd_topk_init(&cand, rr)))) {
    rc = -1;
    goto done;
  }
  if (ix->ccodes && wd_kernels_i8_qmax() && !(rc = centroid_dots_i8(ix, q, cd))) {
    /* probe order from the byte centroids (see centroid_dots_i8) */
  } else if (rc) {
    goto done;
  } else if (l2) {
    wd_l2sq_rows(q, ix->cent, nlist, dim, cd);
  } else {
    wd_dot_rows(q, ix->cent, nlist, dim, cd);
  }
  for (size_t l = 0; l < nlist; l++) {
    h[l].d = l2 ? cd[l] : -cd[l];
    h[l].l = (uint32_t)l;
  }
  probe_order po = {h, h + nlist, (uint8_t *)(h + 2 * nlist), 0, 0};
  {
    /* lists heaped first: what the calibrated depth asks for, four times
     * over (the want rule reads on past it), at least 64 */
    size_t want = p->min_lists * 4 > 64 ? p->min_lists * 4 : 64;
    po_init(&po, nlist, want);
  }

  float qconst = 0;
  if (ix->sq8) {
    for (size_t j = 0; j < dim; j++) {
      if (l2) {
        qs[j] = q[j] - ix->sqmin[j];
      } else {
        qs[j] = q[j] * ix->sqscale[j];
        qconst += q[j] * ix->sqmin[j];
      }
    }
  }
  /* With AVX-512 VNNI the inner-product scan runs on bytes: the scaled
   * query is quantized to int8 (qi = round(qs * 127 / max|qs|)) and one
   * vpdpbusd does 64 code-times-query products.  The estimate is coarser
   * than the float one, but the candidates are re-ranked with the exact
   * vectors, and the probe depth is calibrated through this same path.
   * perf: the float SQ8 kernel was compute-bound (~130 cycles per
   * 384-byte code against ~45 to stream it). */
  /* (AVX2: the same with a 7-bit query, wd_kernels_i8_qmax) */
  int qmax = wd_kernels_i8_qmax();
  if (ix->sq8 && !l2 && qmax) {
    float mx = 0;
    for (size_t j = 0; j < dim; j++) mx = fabsf(qs[j]) > mx ? fabsf(qs[j]) : mx;
    qi = wd_malloc(dim ? dim : 1);
    if (!qi) {
      rc = -1;
      goto done;
    }
    float inv = mx > 0 ? (float)qmax / mx : 0;
    wd_quant_i8(qs, inv, dim, qi);
    qiscale = mx / (float)qmax;
  }
  int32_t irun[RUN_MAX];
  wd_topk *out = ix->sq8 ? &cand : heap;
  float run[RUN_MAX];
  const filt fl = {allowed, p->bits, p->nbits}, *allowed_f = &fl;
  uint64_t allowed_seen = 0;
  double eff = 0, last_dens = 1.0; /* allowed share of the list before */
  while (po.hn + po.nrest > 0) {
    if (s.lists == p->min_lists) {
      s.visited_min = s.visited;
      s.scanned_min = allowed_seen;
      if (p->starve_below > 0 && s.visited > 0 &&
          (double)allowed_seen < p->starve_below * (double)s.visited) {
        s.starved = 1;
        break;
      }
    }
    size_t need = p->min_lists;
    if (p->ndyn && s.visited >= WD_IVF_DYN_MIN) { /* wd_ivf_params.dyn_*: a correlated filter */
      double loc = (double)allowed_seen / (double)s.visited;
      for (size_t i = 0; i < p->ndyn; i++)
        if (loc >= WD_IVF_DYN_FACTOR * p->dyn_sel[i]) {
          if (p->dyn_lists[i] < need) need = p->dyn_lists[i];
          break;
        }
    }
    if (s.lists >= need && allowed_seen >= p->want_allowed && eff >= p->min_eff) break;
    if (s.lists >= p->max_lists || (s.lists > 0 && s.visited >= p->max_visited)) {
      s.bound_hit = 1;
      break;
    }
    uint32_t l;
    if (!po_pop(&po, &l)) break;
    s.lists++;
    uint64_t b = ix->offs[l], e = ix->offs[l + 1];
    s.visited += e - b;
    uint64_t seen0 = allowed_seen, len0 = e - b;
    uint64_t i = b;
    if (p->whole_from > 0 && p->bits && last_dens >= p->whole_from) {
      /* dense filters: every entry through the kernel in RUN_MAX blocks,
       * the allowed test only on the way into the heap -- no branch per
       * entry on a coin-flip bit, no kernel call per short run */
      while (i < e) {
        size_t len = e - i < RUN_MAX ? (size_t)(e - i) : RUN_MAX;
        float a = list_dists(ix, q, qs, qi, qiscale, qconst, i, len, run, irun);
        allowed_seen += offer_run_allowed(out, run, len, a, l2 ? 1.0f : -1.0f, ix->ids + i,
                                          allowed_f);
        i += len;
      }
    }
    if (i < e) {
      /* runs of consecutive allowed entries first, then one *_rows kernel
       * call per run (the whole list when nothing is filtered out), with
       * the first row of the run PF_RUNS ahead requested meanwhile: at
       * selective filters the allowed codes are scattered through the
       * list and each was a demand miss (perf, glove-100 10 %: 44 % of
       * the query in the byte kernel) */
      if (e - i > runcap) {
        wd_free(runs);
        runcap = (size_t)(e - i);
        runs = wd_malloc(2 * runcap * sizeof *runs);
        if (!runs) {
          rc = -1;
          goto done;
        }
      }
      size_t nr = 0;
      while (i < e) {
        if (!is_allowed(allowed_f, ix->ids[i])) {
          i++;
          continue;
        }
        uint64_t j = i + 1;
        while (j < e && j - i < RUN_MAX && is_allowed(allowed_f, ix->ids[j])) j++;
        runs[2 * nr] = (uint32_t)(i - b);
        runs[2 * nr + 1] = (uint32_t)(j - i);
        nr++;
        i = j;
      }
      for (size_t r = 0; r < nr && r < PF_RUNS; r++) prefetch_entry(ix, b + runs[2 * r]);
      for (size_t r = 0; r < nr; r++) {
        if (r + PF_RUNS < nr) prefetch_entry(ix, b + runs[2 * (r + PF_RUNS)]);
        uint64_t at = b + runs[2 * r];
        size_t len = runs[2 * r + 1];
        float a = list_dists(ix, q, qs, qi, qiscale, qconst, at, len, run, irun);
        offer_run(out, run, len, a, l2 ? 1.0f : -1.0f, ix->ids + at);
        allowed_seen += len;
      }
    }
    if (e > b) last_dens = (double)(allowed_seen - seen0) / (double)(e - b);
    if (ex && l < ex->nlist) {
      s.visited += ex->cnt[l];
      for (uint32_t i = 0; i < ex->cnt[l]; i++) {
        uint32_t id = ex->ids[l][i];
        if (!is_allowed(allowed_f, id)) continue;
        allowed_seen++;
        /* extras hold exact vectors: straight into the final heap */
        wd_topk_offer(heap, flat_dist(metric, q, ex->vecs[l] + (size_t)i * dim, dim), id);
      }
      len0 += ex->cnt[l];
    }
    if (p->min_eff > 0) {
      double share = (double)len0 * p->sel;
      double w = share > 0 ? (double)(allowed_seen - seen0) / share : 0;
      eff += w < 1 ? w : 1;
    }
  }
  s.scanned = allowed_seen;
  if (s.lists <= p->min_lists) {
    s.visited_min = s.visited;
    s.scanned_min = allowed_seen;
  }
  if (ix->sq8 && !s.starved) {
    /* re-rank the approximate candidates with the exact vectors */
    wd_hit_i *c = wd_malloc((cand.n ? cand.n : 1) * sizeof *c);
    if (!c) {
      rc = -1;
      goto done;
    }
    size_t n = wd_topk_drain_sorted(&cand, c);
    for (size_t i = 0; i < n; i++) {
      uint32_t id = c[i].id;
      const float *base = NULL;
      int g = exact ? exact->get_block(exact->ctx, id / WD_BLOCK, &base) : 1;
      if (g < 0) {
        rc = g;
        wd_free(c);
        goto done;
      }
      if (g != 0 || !base) {
        wd_topk_offer(heap, c[i].dist, id); /* no exact vector: keep the estimate */
        continue;
      }
      const float *x = base + WD_BLOCK + (size_t)(id % WD_BLOCK) * dim;
      float v = l2 ? wd_l2sq(q, x, dim) : wd_dot(q, x, dim);
      float d = l2 ? v : metric == WD_METRIC_COSINE ? -(v * base[id % WD_BLOCK]) : -v;
      wd_topk_offer(heap, d, id);
      s.reranked++;
    }
    wd_free(c);
  }
done:
  if (st) *st = s;
  wd_free(runs);
  wd_free(cd);
  wd_free(h);
  wd_free(qs);
  wd_free(qi);
  wd_topk_free(&cand);
  return rc;
}
