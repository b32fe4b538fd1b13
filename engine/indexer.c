/*
 * indexer.c -- ANN index lifecycle (see indexer.h): warden_index_build,
 * load/validate/catch-up of the index snapshot used by queries, and the
 * index parts of `warden stats` and `warden check`.
 *
 * Trust model: the index file is derived data, so it is believed only
 * after it proves itself: checksums and structure (index/ivf.c), then
 * against the store -- its revision and next_slot must not be ahead of the
 * store's (an index from another or a restored store), and a sample of its
 * vectors must equal the embeddings in LMDB.  An index that fails any test
 * is never used; queries scan exactly and stats/explain say why.
 *
 * Staleness: slots are never reused and a slot's vector never changes, so
 * an index stamped with next_slot N is exact for every slot < N; deletes
 * and ACL changes only shrink the allowed bitmap.  A query whose snapshot
 * has more slots assigns the new ones (FAISS assignment against the
 * existing centroids) in memory, publishing a new snapshot; the next
 * `warden index` persists them without retraining.
 */
#include "engine/indexer.h"
#include "base/fileid.h"

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "index/ann_faiss.h"
#include "engine/graph_index.h"
#include "index/ivf_build.h"
#include "base/clock.h"

/* Vectors compared with the store when an index file is loaded. */
#define LOAD_SAMPLE 16
/* A collection this many times larger than the training set should
 * retrain: its lists have grown long and unbalanced. */
#define REBUILD_GROWTH 4

typedef struct ann_base {
  int refs;
  wd_ivf ix;
  roaring_bitmap_t *idset; /* the ids in ix's lists (NULL: out of memory) */
} ann_base;

typedef struct ann_snap {
  int refs;
  ann_base *base;
  wd_ivf_extra *ex;
  uint64_t next_slot; /* every live slot below this is indexed */
} ann_snap;

struct wd_ann {
  ann_snap *cur;
  const char *state; /* static: "missing", "ready", "corrupt", ... */
  char why[300];
  wd_fileid file; /* the index file as last inspected (fileid.h) */
  void *graph; /* engine/graph_index.c's state (issue 14) */
};

void **wd_ann_graph_slot(warden *db) {
  struct wd_ann *a = db->ann ? db->ann : (db->ann = wd_calloc(1, sizeof(struct wd_ann)));
  return a ? &a->graph : NULL;
}

void wd_index_path(const warden *db, char *buf, size_t len) {
  snprintf(buf, len, "%s/index/ivf.wdx", db->dir);
}

static void base_release(ann_base *b) {
  if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    wd_ivf_close(&b->ix);
    if (b->idset) roaring_bitmap_free(b->idset);
    wd_free(b);
  }
}

static void snap_release(ann_snap *s) {
  if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    base_release(s->base);
    wd_ivf_extra_free(s->ex);
    wd_free(s);
  }
}

static int get_block(void *ctx, uint32_t b, const float **base) {
  wd_txn *tx = ctx;
  store_bound_map(tx->db); /* a build reads every block */
  return store_block_get(tx, b, base);
}

static int live_bitmap(wd_txn *tx, roaring_bitmap_t **out) {
  roaring_bitmap_t *live = roaring_bitmap_create();
  if (!live) return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
  char kb[8];
  int rc = store_bm_or(tx, kb, store_key(kb, 'L', "", 0), live);
  if (rc) {
    roaring_bitmap_free(live);
    return rc;
  }
  *out = live;
  return 0;
}

/* Does the index's vector at position pos equal slot's embedding in tx?
 * 1 yes, 0 no, negative on a store error. */
static int vec_matches(const wd_ivf *ix, uint64_t pos, uint32_t slot, wd_txn *tx) {
  const float *base = NULL;
  int rc = store_block_get(tx, slot / WD_BLOCK, &base);
  if (rc < 0) return rc;
  if (rc != 0 || !base) return 0;
  size_t dim = ix->dim;
  const float *x = base + WD_BLOCK + (size_t)(slot % WD_BLOCK) * dim;
  float inv = ix->metric == WD_METRIC_COSINE ? base[slot % WD_BLOCK] : 1.0f;
  if (!ix->sq8) {
    const float *y = ix->vecs + pos * dim;
    for (size_t j = 0; j < dim; j++) {
      float v = x[j] * inv;
      if (fabsf(v - y[j]) > 1e-5f * (1.0f + fabsf(v))) return 0;
    }
    return 1;
  }
  const uint8_t *c = ix->codes + pos * dim;
  for (size_t j = 0; j < dim; j++) {
    float v = x[j] * inv;
    uint8_t e;
    wd_ivf_sq8_encode(&v, ix->sqmin + j, ix->sqscale + j, 1, &e);
    if (abs((int)e - (int)c[j]) > 1) return 0;
  }
  return 1;
}

/* Compare the index with the store state in tx: not ahead of it, and a
 * sample of vectors equal.  0 ok, else 3 (foreign) / 4 (newer) with why. */
static int vs_store(const wd_ivf *ix, wd_txn *tx, const roaring_bitmap_t *live,
                    size_t nsample, char *why, size_t whylen) {
  uint64_t rev = store_meta_u64(tx, "revision"), ns = store_meta_u64(tx, "next_slot");
  if (ix->h.revision > rev || ix->h.next_slot > ns) {
    snprintf(why, whylen,
             "index reflects revision %llu / %llu slots, the store has revision %llu / %llu "
             "slots (an index from another or a newer store)",
             (unsigned long long)ix->h.revision, (unsigned long long)ix->h.next_slot,
             (unsigned long long)rev, (unsigned long long)ns);
    return 4;
  }
  uint64_t nvec = ix->h.nvec;
  size_t m = nvec < nsample ? (size_t)nvec : nsample;
  for (size_t i = 0; i < m; i++) {
    uint64_t pos = (uint64_t)((double)i * (double)nvec / (double)m);
    uint32_t slot = ix->ids[pos];
    if (!roaring_bitmap_contains(live, slot)) continue; /* deleted since */
    int rc = vec_matches(ix, pos, slot, tx);
    if (rc < 0) {
      snprintf(why, whylen, "could not read slot %u from the store", slot);
      return 3;
    }
    if (rc == 0) {
      snprintf(why, whylen, "the vector of slot %u differs from the store's", slot);
      return 3;
    }
  }
  return 0;
}

static const char *state_name(int rc) {
  switch (rc) {
    case 0: return "ready";
    case 1: return "missing";
    case 2: return "corrupt";
    case 3: return "foreign";
    case 4: return "newer_than_store";
    default: return "error";
  }
}

static struct wd_ann *ann_get(warden *db) {
  if (!db->ann) db->ann = wd_calloc(1, sizeof(struct wd_ann));
  return db->ann;
}

/* Under annlock: (re)load the file when it changed since last looked. */
static int refresh(warden *db) {
  struct wd_ann *a = ann_get(db);
  if (!a) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  char path[4096];
  wd_index_path(db, path, sizeof path);
  int have;
  if (!wd_fileid_changed(&a->file, path, &have)) return 0;
  snap_release(a->cur);
  a->cur = NULL;
  a->why[0] = 0;
  if (!have) {
    a->state = "missing";
    snprintf(a->why, sizeof a->why, "no index file (run `warden index`)");
    return 0;
  }
  ann_base *b = wd_calloc(1, sizeof *b);
  ann_snap *s = wd_calloc(1, sizeof *s);
  if (!b || !s) {
    wd_free(b);
    wd_free(s);
    a->file.looked = 0;
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  }
  int rc = wd_ivf_open_file(path, db->cfg.dim, db->cfg.metric, &b->ix, a->why, sizeof a->why);
  if (rc == 0) {
    /* against the latest store state, not the caller's (older) snapshot */
    wd_txn t2;
    roaring_bitmap_t *live = NULL;
    int src = store_read_begin(db, &t2);
    if (src == 0) {
      src = live_bitmap(&t2, &live);
      if (src == 0) {
        rc = vs_store(&b->ix, &t2, live, LOAD_SAMPLE, a->why, sizeof a->why);
        roaring_bitmap_free(live);
      }
      store_read_end(&t2);
    }
    if (src) {
      wd_ivf_close(&b->ix);
      wd_free(b);
      wd_free(s);
      a->file.looked = 0;
      return src;
    }
    if (rc) wd_ivf_close(&b->ix);
  }
  a->state = state_name(rc);
  if (rc) {
    wd_free(b);
    wd_free(s);
    return 0;
  }
  b->refs = 1;
  /* lets a query whose allowed set holds every indexed id probe without
   * the filter (engine/search.c); optional: NULL only costs that shortcut */
  b->idset = roaring_bitmap_of_ptr(0, NULL);
  if (b->idset) {
    roaring_bitmap_add_many(b->idset, b->ix.offs[b->ix.nlist], b->ix.ids);
    roaring_bitmap_run_optimize(b->idset);
  }
  s->refs = 1;
  s->base = b;
  s->next_slot = b->ix.h.next_slot;
  a->cur = s;
  return 0;
}

/* Under annlock: publish a snapshot covering every slot of tx. */
static int catch_up(warden *db, wd_txn *tx) {
  struct wd_ann *a = db->ann;
  ann_snap *old = a->cur;
  uint64_t ns = store_meta_u64(tx, "next_slot");
  if (ns <= old->next_slot) return 0;
  const wd_ivf *ix = &old->base->ix;
  size_t dim = ix->dim;
  roaring_bitmap_t *live = NULL;
  int rc = live_bitmap(tx, &live);
  if (rc) return rc;
  roaring_bitmap_t *rng = roaring_bitmap_from_range(old->next_slot, ns, 1);
  if (rng) roaring_bitmap_and_inplace(rng, live);
  roaring_bitmap_free(live);
  uint64_t n = rng ? roaring_bitmap_get_cardinality(rng) : 0;
  uint32_t *slots = wd_malloc((n ? n : 1) * sizeof *slots);
  uint32_t *lab = wd_malloc((n ? n : 1) * sizeof *lab);
  float *vecs = wd_malloc((n ? n : 1) * dim * sizeof *vecs);
  ann_snap *s = wd_calloc(1, sizeof *s);
  wd_ivf_extra *ex = NULL;
  if (!rng || !slots || !lab || !vecs || !s) goto oom;
  roaring_bitmap_to_uint32_array(rng, slots);
  for (uint64_t i = 0; i < n; i++) {
    const float *base = NULL;
    int g = store_block_get(tx, slots[i] / WD_BLOCK, &base);
    if (g < 0) {
      rc = g;
      goto fail;
    }
    float *y = vecs + i * dim;
    if (g != 0 || !base) {
      memset(y, 0, dim * sizeof *y);
      continue;
    }
    const float *x = base + WD_BLOCK + (size_t)(slots[i] % WD_BLOCK) * dim;
    float inv = db->cfg.metric == WD_METRIC_COSINE ? base[slots[i] % WD_BLOCK] : 1.0f;
    for (size_t j = 0; j < dim; j++) y[j] = x[j] * inv;
  }
  char why[300];
  if (wd_faiss_assign(dim, db->cfg.metric, ix->cent, ix->nlist, vecs, n, lab, why, sizeof why)) {
    rc = wd_err(db, WARDEN_EINTERNAL, "index catch-up: %s", why);
    goto fail;
  }
  ex = wd_ivf_extra_clone(old->ex, ix->nlist, dim);
  if (!ex || wd_ivf_extra_add(ex, slots, lab, vecs, n)) goto oom;
  __atomic_add_fetch(&old->base->refs, 1, __ATOMIC_ACQ_REL);
  s->refs = 1;
  s->base = old->base;
  s->ex = ex;
  s->next_slot = ns;
  a->cur = s;
  snap_release(old);
  rc = 0;
  goto done;
oom:
  rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
fail:
  wd_ivf_extra_free(ex);
  wd_free(s);
done:
  if (rng) roaring_bitmap_free(rng);
  wd_free(slots);
  wd_free(lab);
  wd_free(vecs);
  return rc;
}

int wd_ann_acquire(warden *db, wd_txn *tx, wd_ann_ref *ref, const char **state) {
  pthread_mutex_lock(&db->annlock);
  int rc = refresh(db);
  if (rc) {
    pthread_mutex_unlock(&db->annlock);
    return rc;
  }
  struct wd_ann *a = db->ann;
  if (!a->cur) {
    *state = a->state ? a->state : "missing";
    pthread_mutex_unlock(&db->annlock);
    return 1;
  }
  if ((rc = catch_up(db, tx)) != 0) {
    pthread_mutex_unlock(&db->annlock);
    if (rc == WARDEN_ENOMEM) return rc;
    *state = "error";
    return 1;
  }
  ann_snap *s = a->cur;
  __atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
  pthread_mutex_unlock(&db->annlock);
  ref->ix = &s->base->ix;
  ref->ex = s->ex;
  ref->caught_up = s->ex ? s->ex->nvec : 0;
  ref->nindexed = s->base->ix.h.nvec + ref->caught_up;
  ref->idset = s->base->idset;
  ref->snap = s;
  return 0;
}

void wd_ann_release(wd_ann_ref *ref) {
  if (ref && ref->snap) snap_release(ref->snap);
  if (ref) ref->snap = NULL;
}

void wd_ann_close(warden *db) {
  if (!db->ann) return;
  wd_graph_state_free(db->ann->graph);
  snap_release(db->ann->cur);
  wd_free(db->ann);
  db->ann = NULL;
}

/* Forget the loaded index so the next use reloads the file. */
static void invalidate(warden *db) {
  pthread_mutex_lock(&db->annlock);
  if (db->ann) {
    snap_release(db->ann->cur);
    db->ann->cur = NULL;
    db->ann->file.looked = 0;
  }
  pthread_mutex_unlock(&db->annlock);
}

/* ------------------------------------------------------------ build */


/* Probe-depth calibration, run on a freshly built image: held-out-like
 * queries (the normalised midpoints of pairs of indexed vectors) are
 * answered exactly and by the IVF probe with increasing list counts.
 *
 * Unfiltered: the smallest count whose recall@10 reaches CALIB_TARGET,
 * times a margin, is stamped in the header (calib_lists): the minimum probe
 * of files without the table below, and of selectivities above it.
 *
 * The table (wd_ivf_cal, issue 14): the same sweep at each of
 * WD_IVF_CAL_SELS with a random allowed set of that share of the live
 * vectors (the exact answers over that set), noting the first count that
 * reaches each of WD_IVF_CAL_TGTS.  It replaces a rule tuned to the
 * bench's data (scan until 96 k allowed vectors were seen): on
 * bench/graph_gen.py text-384 at 10 % that read half the collection where
 * 3 % of the lists reach 0.95, on clustered data fewer still.  A sweep
 * stops once it probes more than CALIB_MAX_SHARE of the vectors (there
 * the exact scan or the graph is cheaper anyway; the entry stays 0, "not
 * reached").  Returns the unfiltered list count, or 0 when it could not be
 * measured; *cal is filled when it could (present = 1). */
#define CALIB_Q 48
#define CALIB_TARGET 0.95
#define CALIB_MAX_SHARE 0.5
/* Each sweep starts at 4 lists and grows by 1/4.  It started at 1 % of
 * the lists, which is no bound at all at 1M (nlist 4,000: 40) but at 10M
 * x 384 (bench-scale, nlist 12,649) made 126 lists the least any
 * calibration could say: the table read 142 (with the margin) at every
 * selectivity and target, recall 1.000 where FAISS's IVF reaches 0.96
 * with 16 lists. */
#define CALIB_FIRST 4

static size_t margin(size_t lists, size_t nl) {
  size_t b = lists + lists / 8 + 1; /* margin: queries differ from the sample */
  return b > nl ? nl : b;
}

/* Mean recall@10 over the CALIB_Q queries q with truth (nt[i] ids each)
 * when probing exactly `lists` lists through allowed (NULL: all). */
static double probe_recall(wd_ivf *ix, const wd_vecsrc *src, const float *q, size_t dim,
                           const roaring_bitmap_t *allowed, const uint64_t *bits,
                           uint64_t nbits, size_t lists, const wd_hit_i *truth,
                           const size_t *nt) {
  double rsum = 0;
  wd_hit_i res[10];
  for (size_t i = 0; i < CALIB_Q; i++) {
    wd_topk h;
    if (wd_topk_init(&h, 10)) return -1;
    wd_ivf_params p;
    memset(&p, 0, sizeof p);
    p.min_lists = lists;
    p.max_lists = lists;
    p.max_visited = UINT64_MAX;
    p.rerank = wd_ivf_rerank(10);
    p.bits = bits;
    p.nbits = nbits;
    wd_ivf_stats st;
    int rc = wd_ivf_search(ix, NULL, q + i * dim, allowed, &p, src, &h, &st);
    size_t m = rc ? 0 : wd_topk_drain_sorted(&h, res);
    wd_topk_free(&h);
    size_t hit = 0;
    for (size_t a = 0; a < nt[i]; a++)
      for (size_t b = 0; b < m; b++) hit += truth[i * 10 + a].id == res[b].id;
    rsum += nt[i] ? (double)hit / (double)nt[i] : 1.0;
  }
  return rsum / CALIB_Q;
}

static size_t calibrate(warden *db, wd_txn *tx, const roaring_bitmap_t *live, void *image,
                        size_t len, wd_ivf_cal *cal) {
  memset(cal, 0, sizeof *cal);
  wd_ivf ix;
  char why[300];
  if (wd_ivf_open_image(image, len, db->cfg.dim, db->cfg.metric, &ix, why, sizeof why)) return 0;
  size_t dim = db->cfg.dim, n = roaring_bitmap_get_cardinality(live), got = 0, best = 0;
  float *q = wd_malloc(CALIB_Q * dim * sizeof(float));
  wd_topk *ex = wd_calloc(CALIB_Q, sizeof *ex);
  wd_hit_i *truth = wd_malloc(CALIB_Q * 10 * sizeof *truth);
  roaring_bitmap_t *al = NULL;
  uint64_t *bits = NULL;
  if (!q || !ex || !truth || n < 100) goto out;
  for (size_t i = 0; i < CALIB_Q; i++) {
    uint32_t a, b;
    const float *ba, *bb;
    if (!roaring_bitmap_select(live, (uint32_t)((i * 2654435761u) % n), &a) ||
        !roaring_bitmap_select(live, (uint32_t)((i * 40503u + 7919u) % n), &b) ||
        store_block_get(tx, a / WD_BLOCK, &ba) || store_block_get(tx, b / WD_BLOCK, &bb))
      goto out;
    const float *xa = ba + WD_BLOCK + (size_t)(a % WD_BLOCK) * dim;
    const float *xb = bb + WD_BLOCK + (size_t)(b % WD_BLOCK) * dim;
    float ia = ba[a % WD_BLOCK], ib = bb[b % WD_BLOCK];
    double n2 = 0;
    for (size_t j = 0; j < dim; j++) {
      float v = xa[j] * (ia > 0 ? ia : 1) + xb[j] * (ib > 0 ? ib : 1);
      q[i * dim + j] = v;
      n2 += (double)v * v;
    }
    if (db->cfg.metric == WD_METRIC_COSINE && n2 > 0)
      for (size_t j = 0; j < dim; j++) q[i * dim + j] = (float)(q[i * dim + j] / sqrt(n2));
  }
  wd_vecsrc src = {dim, db->cfg.metric, get_block, tx};
  size_t nt[CALIB_Q];
  size_t nl = ix.nlist;
  const double sels[WD_IVF_CAL_NSEL] = WD_IVF_CAL_SELS, tgts[WD_IVF_CAL_NTGT] = WD_IVF_CAL_TGTS;
  double avg_len = (double)ix.h.nvec / (double)(nl ? nl : 1);
  uint64_t rs = 0x9e3779b97f4a7c15ull;
  for (size_t si = 0; si < WD_IVF_CAL_NSEL; si++) {
    /* the allowed set: each live vector with probability sels[si] (a
     * fixed-seed xorshift: the same index gives the same table) */
    if (al) roaring_bitmap_free(al);
    wd_free(bits);
    bits = NULL;
    al = NULL;
    if (sels[si] < 1) {
      al = roaring_bitmap_create();
      if (!al) goto out;
      roaring_uint32_iterator_t it;
      roaring_init_iterator(live, &it);
      uint64_t thr = (uint64_t)(sels[si] * 18446744073709551615.0);
      for (; it.has_value; roaring_advance_uint32_iterator(&it)) {
        rs ^= rs << 13;
        rs ^= rs >> 7;
        rs ^= rs << 17;
        if (rs < thr) roaring_bitmap_add(al, it.current_value);
      }
      if (roaring_bitmap_get_cardinality(al) < 10) continue; /* too few to measure */
      uint64_t nb = 0;
      bits = wd_ivf_bits(al, &nb);
      if (!bits) goto out;
      for (size_t i = 0; i < CALIB_Q; i++) wd_topk_free(&ex[i]);
      for (size_t i = 0; i < CALIB_Q; i++)
        if (wd_topk_init(&ex[i], 10)) goto out;
      if (wd_scan_exact(&src, q, CALIB_Q, al, ex, NULL)) goto out;
      for (size_t i = 0; i < CALIB_Q; i++) nt[i] = wd_topk_drain_sorted(&ex[i], truth + i * 10);
      size_t t = 0;
      for (size_t lists = CALIB_FIRST; t < WD_IVF_CAL_NTGT;
           lists = lists * 5 / 4 + 1) {
        if (lists > nl) lists = nl;
        if ((double)lists * avg_len > CALIB_MAX_SHARE * (double)ix.h.nvec) break;
        double r = probe_recall(&ix, &src, q, dim, al, bits, nb, lists, truth, nt);
        if (r < 0) goto out;
        while (t < WD_IVF_CAL_NTGT && r >= tgts[t]) {
          size_t b = margin(lists, nl);
          cal->lists[si][t++] = (uint16_t)(b > 65535 ? 65535 : b);
        }
        if (lists >= nl) break;
      }
      continue;
    }
    /* unfiltered: the truth over every live vector, and calib_lists */
    for (size_t i = 0; i < CALIB_Q; i++)
      if (wd_topk_init(&ex[i], 10)) goto out;
    if (wd_scan_exact(&src, q, CALIB_Q, live, ex, NULL)) goto out;
    for (size_t i = 0; i < CALIB_Q; i++) nt[i] = wd_topk_drain_sorted(&ex[i], truth + i * 10);
    size_t t = 0;
    for (size_t lists = CALIB_FIRST;; lists = lists * 5 / 4 + 1) {
      if (lists > nl) lists = nl;
      double r = probe_recall(&ix, &src, q, dim, NULL, NULL, 0, lists, truth, nt);
      if (r < 0) goto out;
      while (t < WD_IVF_CAL_NTGT && r >= tgts[t]) {
        size_t b = margin(lists, nl);
        cal->lists[si][t++] = (uint16_t)(b > 65535 ? 65535 : b);
      }
      if (!best && (r >= CALIB_TARGET || lists >= nl)) best = margin(lists, nl);
      if ((best && t >= WD_IVF_CAL_NTGT) || lists >= nl) break;
    }
  }
  got = best;
  cal->present = got ? 1 : 0;
out:
  if (ex)
    for (size_t i = 0; i < CALIB_Q; i++) wd_topk_free(&ex[i]);
  wd_free(ex);
  wd_free(q);
  wd_free(truth);
  wd_free(bits);
  if (al) roaring_bitmap_free(al);
  wd_ivf_close(&ix);
  if (!got) memset(cal, 0, sizeof *cal);
  return got;
}

/* Remove ivf.wdx.tmp.PID files whose writer is gone (a build killed while
 * writing: found by tests/crash/index_crash.py, they piled up, each the
 * size of the index).  A live writer's file is left alone.  Returns how
 * many were removed. */
static int sweep_temp_files(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int removed = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    const char *pre = "ivf.wdx.tmp.";
    if (strncmp(e->d_name, "hnsw.wdx.tmp.", 13) == 0) pre = "hnsw.wdx.tmp."; /* the graph's */
    if (strncmp(e->d_name, pre, strlen(pre)) != 0) continue;
    char *end;
    long pid = strtol(e->d_name + strlen(pre), &end, 10);
    if (*end || pid <= 0 || pid == (long)getpid()) continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or cannot tell */
    if (unlinkat(dirfd(d), e->d_name, 0) == 0) removed++;
  }
  closedir(d);
  return removed;
}

int warden_index_build(warden *db, const warden_index_opts *opts, char **json_out) {
  if (!db) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_err_clear(db);
  warden_index_opts o;
  memset(&o, 0, sizeof o);
  if (opts) o = *opts;
  char path[4096], dir[4096], why[300];
  wd_index_path(db, path, sizeof path);
  snprintf(dir, sizeof dir, "%s/index", db->dir);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    return wd_err(db, WARDEN_EIO, "index: %s: %s", dir, strerror(errno));
  int swept = sweep_temp_files(dir);
  double t0 = wd_now_ms();
  wd_txn tx;
  if ((rc = store_read_begin(db, &tx))) return rc;
  roaring_bitmap_t *live = NULL;
  wd_ivf old;
  memset(&old, 0, sizeof old);
  int have_old = 0;
  const char *old_state = "missing";
  char old_why[300] = "";
  wd_ivf_build_out bo;
  memset(&bo, 0, sizeof bo);
  if ((rc = live_bitmap(&tx, &live))) goto done;
  uint64_t n = roaring_bitmap_get_cardinality(live);
  uint64_t rev = store_meta_u64(&tx, "revision"), ns = store_meta_u64(&tx, "next_slot");
  if (n == 0) {
    if (json_out) {
      *json_out = wd_json_string(db, json_pack("{s:b,s:s,s:I}", "built", 0, "reason",
                                          "empty collection: nothing to index", "revision",
                                          (json_int_t)rev));
      if (!*json_out) rc = WARDEN_ENOMEM;
    }
    goto done;
  }
  int orc = wd_ivf_open_file(path, db->cfg.dim, db->cfg.metric, &old, old_why, sizeof old_why);
  if (orc == 0) {
    orc = vs_store(&old, &tx, live, LOAD_SAMPLE, old_why, sizeof old_why);
    if (orc) wd_ivf_close(&old);
  }
  old_state = state_name(orc);
  have_old = orc == 0;
  /* Reuse the old centroids unless told otherwise or the config changed. */
  int reuse = have_old && !o.rebuild && old.sq8 == (db->cfg.sq8 != 0) &&
              (db->cfg.nlist == 0 || db->cfg.nlist == old.nlist);
  wd_vecsrc src = {db->cfg.dim, db->cfg.metric, get_block, &tx};
  wd_ivf_build_in in;
  memset(&in, 0, sizeof in);
  in.src = &src;
  in.live = live;
  in.next_slot = ns;
  in.revision = rev;
  in.nlist = db->cfg.nlist;
  in.sq8 = db->cfg.sq8 != 0;
  in.old = reuse ? &old : NULL;
  in.old_ntrained = reuse ? old.h.ntrained : 0;
  in.seed = 1234;
  wd_phase_prog ivf_prog = {&o, "ivf"};
  in.progress = o.progress || o.phase_progress ? wd_phase_progress : NULL;
  in.progress_ctx = &ivf_prog;
  if (in.progress) in.progress(in.progress_ctx, 0, n);
  int brc = wd_ivf_build(&in, &bo, why, sizeof why);
  if (brc) {
    rc = brc == -1 ? wd_err(db, WARDEN_ENOMEM, "index: out of memory")
         : brc == -2 ? wd_err(db, WARDEN_EINTERNAL, "index: %s", why)
         : brc < -3 ? brc
                    : wd_err(db, WARDEN_EINTERNAL, "index: %s", why);
    goto done;
  }
  double t_cal = wd_now_ms();
  wd_ivf_cal cal;
  size_t calib = calibrate(db, &tx, live, bo.image, bo.len, &cal);
  ((wd_ivf_header *)bo.image)->calib_lists = (uint32_t)calib;
  memcpy(((wd_ivf_header *)bo.image)->pad, &cal, sizeof cal); /* zero when not measured */
  wd_ivf_seal(bo.image);
  t_cal = wd_now_ms() - t_cal;
  double t_write = wd_now_ms();
  if (wd_ivf_write_file(path, bo.image, bo.len, why, sizeof why)) {
    rc = wd_err(db, WARDEN_EIO, "index: %s", why);
    goto done;
  }
  t_write = wd_now_ms() - t_write;
  /* written: the image's memory (n x dim bytes with SQ8, 3.9 GB at 10M x
   * 384) is not held through the graph build, whose own peak it would add
   * to (the report below needs only bo's sizes) */
  wd_free(bo.image);
  bo.image = NULL;
  invalidate(db);
  /* the filter-aware graph index (engine/graph_index.c), next to the IVF */
  json_t *graph_rep = NULL;
  if (db->cfg.graph && db->cfg.index_type != WD_INDEX_FLAT &&
      (rc = wd_graph_build(db, &tx, live, o.rebuild, &o, &graph_rep)))
    goto done;
  uint64_t ntrained = reuse ? old.h.ntrained : n;
  if (json_out) {
    json_t *r = json_pack(
        "{s:b,s:s,s:s,s:I,s:I,s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:b,s:s,s:I,s:f,s:f,s:f,s:f}",
        "built", 1, "path", "index/ivf.wdx", "type", "ivf", "vectors", (json_int_t)n, "nlist",
        (json_int_t)bo.nlist, "quantizer", in.sq8 ? "sq8" : "none", "retrained", bo.retrained,
        "trained_on", (json_int_t)ntrained, "reused", (json_int_t)bo.reused, "assigned",
        (json_int_t)bo.assigned, "revision", (json_int_t)rev, "next_slot", (json_int_t)ns,
        "rebuild_suggested", n > REBUILD_GROWTH * ntrained, "previous_index", old_state,
        "bytes", (json_int_t)bo.len, "train_ms", bo.train_ms, "assign_ms", bo.assign_ms,
        "write_ms", t_write, "total_ms", wd_now_ms() - t0);
    if (r) {
      json_object_set_new(r, "calibrated_min_lists", json_integer((json_int_t)calib));
      json_object_set_new(r, "calibrate_ms", json_real(t_cal));
      if (cal.present) { /* the probe-depth table: lists per selectivity and target (0: not reached) */
        const double sels[WD_IVF_CAL_NSEL] = WD_IVF_CAL_SELS, tgts[WD_IVF_CAL_NTGT] = WD_IVF_CAL_TGTS;
        json_t *ct = json_object(), *js = json_array(), *jt = json_array(), *jl = json_array();
        for (size_t i = 0; i < WD_IVF_CAL_NSEL; i++) {
          json_array_append_new(js, json_real(sels[i]));
          json_t *row = json_array();
          for (size_t t = 0; t < WD_IVF_CAL_NTGT; t++)
            json_array_append_new(row, json_integer(cal.lists[i][t]));
          json_array_append_new(jl, row);
        }
        for (size_t t = 0; t < WD_IVF_CAL_NTGT; t++) json_array_append_new(jt, json_real(tgts[t]));
        json_object_set_new(ct, "selectivities", js);
        json_object_set_new(ct, "targets", jt);
        json_object_set_new(ct, "lists", jl);
        json_object_set_new(r, "probe_calibration", ct);
      }
      json_object_set_new(r, "train_bytes", json_integer((json_int_t)bo.train_bytes));
      json_object_set_new(r, "build_bytes", json_integer((json_int_t)bo.build_bytes));
      json_object_set_new(r, "stale_temp_files_removed", json_integer(swept));
      if (graph_rep) json_object_set(r, "graph", graph_rep);
    }
    if (r && old_why[0] && !have_old && orc != 1)
      json_object_set_new(r, "previous_index_problem", json_string(old_why));
    *json_out = wd_json_string(db, r);
    if (!*json_out) rc = WARDEN_ENOMEM;
  }
  json_decref(graph_rep);
done:
  if (have_old) wd_ivf_close(&old);
  wd_free(bo.image);
  if (live) roaring_bitmap_free(live);
  store_read_end(&tx);
  return rc;
}

/* ------------------------------------------------------ stats, check */

static const char *type_name(int t) {
  return t == WD_INDEX_FLAT ? "flat" : t == WD_INDEX_IVF ? "ivf" : "auto";
}

json_t *wd_index_stats(warden *db, wd_txn *tx) {
  json_t *o = json_object();
  if (!o) return NULL;
  json_object_set_new(o, "type", json_string(type_name(db->cfg.index_type)));
  json_object_set_new(o, "quantizer", json_string(db->cfg.sq8 ? "sq8" : "none"));
  pthread_mutex_lock(&db->annlock);
  int rc = refresh(db);
  struct wd_ann *a = db->ann;
  if (rc || !a) {
    pthread_mutex_unlock(&db->annlock);
    json_object_set_new(o, "state", json_string("error"));
    return o;
  }
  uint64_t ns = store_meta_u64(tx, "next_slot");
  if (a->cur) {
    const wd_ivf *ix = &a->cur->base->ix;
    uint64_t covered = a->cur->next_slot;
    uint64_t caught = a->cur->ex ? a->cur->ex->nvec : 0;
    int stale = ns > ix->h.next_slot;
    json_object_set_new(o, "state", json_string(stale ? "stale" : "ready"));
    json_object_set_new(o, "file", json_string("index/ivf.wdx"));
    json_object_set_new(o, "file_quantizer", json_string(ix->sq8 ? "sq8" : "none"));
    json_object_set_new(o, "nlist", json_integer((json_int_t)ix->nlist));
    json_object_set_new(o, "vectors", json_integer((json_int_t)ix->h.nvec));
    json_object_set_new(o, "revision", json_integer((json_int_t)ix->h.revision));
    json_object_set_new(o, "next_slot", json_integer((json_int_t)ix->h.next_slot));
    json_object_set_new(o, "store_next_slot", json_integer((json_int_t)ns));
    json_object_set_new(o, "pending_slots",
                        json_integer((json_int_t)(stale ? ns - ix->h.next_slot : 0)));
    json_object_set_new(o, "caught_up_in_memory",
                        json_integer((json_int_t)(covered > ix->h.next_slot ? caught : 0)));
    json_object_set_new(o, "trained_on", json_integer((json_int_t)ix->h.ntrained));
    uint64_t nlive = store_meta_u64(tx, "chunks");
    json_object_set_new(o, "rebuild_suggested",
                        json_boolean(nlive > REBUILD_GROWTH * ix->h.ntrained));
  } else {
    json_object_set_new(o, "state", json_string(strcmp(a->state, "missing") == 0
                                                     ? "none" : a->state));
    json_object_set_new(o, "detail", json_string(a->why));
    json_object_set_new(o, "queries_use", json_string("exact scan"));
  }
  pthread_mutex_unlock(&db->annlock);
  json_t *gs = wd_graph_stats(db, tx);
  if (gs) json_object_set_new(o, "graph", gs);
  return o;
}

int wd_index_check(warden *db, wd_txn *tx, json_t *report) {
  char path[4096], why[300];
  wd_index_path(db, path, sizeof path);
  json_t *o = json_object(), *probs = json_array();
  roaring_bitmap_t *live = NULL, *seen = roaring_bitmap_create();
  wd_ivf ix;
  memset(&ix, 0, sizeof ix);
  int np = 0, rc = 0, opened = 0;
  uint64_t checked = 0, mism = 0, missing = 0, dup = 0;
  if (!o || !probs || !seen) goto oom;
  if ((rc = live_bitmap(tx, &live))) goto out;
  int orc = wd_ivf_open_file(path, db->cfg.dim, db->cfg.metric, &ix, why, sizeof why);
  if (orc == 0) {
    opened = 1;
    orc = vs_store(&ix, tx, live, 0, why, sizeof why);
  }
  if (orc == 1) {
    json_object_set_new(o, "state", json_string("none"));
    goto out;
  }
  if (orc) {
    json_object_set_new(o, "state", json_string(state_name(orc)));
    json_array_append_new(probs, json_sprintf("index/ivf.wdx: %s (run `warden index "
                                              "--rebuild`; queries scan exactly meanwhile)",
                                              why));
    np++;
    goto out;
  }
  for (size_t l = 0; l < ix.nlist; l++)
    for (uint64_t i = ix.offs[l]; i < ix.offs[l + 1]; i++) {
      uint32_t s = ix.ids[i];
      if (roaring_bitmap_contains(seen, s)) {
        dup++;
        continue;
      }
      roaring_bitmap_add(seen, s);
      if (!roaring_bitmap_contains(live, s)) continue; /* deleted since: harmless */
      store_bound_map(tx->db); /* check compares every vector */
      int m = vec_matches(&ix, i, s, tx);
      if (m < 0) {
        rc = m;
        goto out;
      }
      checked++;
      if (!m && mism++ < 5)
        json_array_append_new(probs, json_sprintf("index/ivf.wdx: slot %u: vector differs "
                                                  "from the store", s));
    }
  roaring_bitmap_t *want = roaring_bitmap_from_range(0, ix.h.next_slot, 1);
  if (!want) goto oom;
  roaring_bitmap_and_inplace(want, live);
  roaring_bitmap_andnot_inplace(want, seen);
  missing = roaring_bitmap_get_cardinality(want);
  if (missing) {
    uint32_t first = roaring_bitmap_minimum(want);
    json_array_append_new(probs, json_sprintf("index/ivf.wdx: %llu live slots below its "
                                              "next_slot are not indexed (first: %u)",
                                              (unsigned long long)missing, first));
  }
  roaring_bitmap_free(want);
  if (dup)
    json_array_append_new(probs, json_sprintf("index/ivf.wdx: %llu slots appear in more than "
                                              "one list", (unsigned long long)dup));
  if (mism > 5)
    json_array_append_new(probs, json_sprintf("index/ivf.wdx: %llu vectors differ in all",
                                              (unsigned long long)mism));
  np = (int)((mism ? 1 : 0) + (missing ? 1 : 0) + (dup ? 1 : 0));
  json_object_set_new(o, "state", json_string(np ? "corrupt" : "ok"));
  json_object_set_new(o, "revision", json_integer((json_int_t)ix.h.revision));
  json_object_set_new(o, "next_slot", json_integer((json_int_t)ix.h.next_slot));
  json_object_set_new(o, "pending_slots",
                      json_integer((json_int_t)(store_meta_u64(tx, "next_slot") -
                                                ix.h.next_slot)));
  goto out;
oom:
  rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
out:
  if (opened) wd_ivf_close(&ix);
  if (live) roaring_bitmap_free(live);
  if (seen) roaring_bitmap_free(seen);
  if (rc) {
    json_decref(o);
    json_decref(probs);
    return rc;
  }
  json_object_set_new(o, "checked", json_integer((json_int_t)checked));
  json_object_set_new(o, "problems", probs);
  /* the graph file (issue 14), with or without an IVF file:
   * report["index"]["graph"] */
  int ng = wd_graph_check(db, tx, o);
  if (ng < 0) {
    json_decref(o);
    return ng;
  }
  json_object_set_new(report, "index", o);
  return np + ng;
}
