/*
 * graph_index.c -- the graph index file's lifecycle (see graph_index.h).
 */
#include "engine/graph_index.h"
#include "base/fileid.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "engine/indexer.h"
#include "index/ivf.h"
#include "base/clock.h"

/* Nodes whose code is compared with the store when the file is loaded. */
#define LOAD_SAMPLE 16
/* Rebuild instead of extending when this share of the nodes was deleted:
 * deleted nodes still route the walk but cost hops that find nothing. */
#define REBUILD_DELETED 0.33

typedef struct gbase {
  int refs;
  wd_hnsw g;
} gbase;

typedef struct gstate {
  gbase *cur;
  const char *state;
  char why[300];
  wd_fileid file; /* the graph file as last inspected (fileid.h) */
} gstate;

void wd_graph_path(const warden *db, char *buf, size_t len) {
  snprintf(buf, len, "%s/index/hnsw.wdx", db->dir);
}

static void base_release(gbase *b) {
  if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    wd_hnsw_close(&b->g);
    wd_free(b);
  }
}

static int get_block(void *ctx, uint32_t b, const float **base) {
  wd_txn *tx = ctx;
  store_bound_map(tx->db); /* a build reads every block, many times */
  return store_block_get(tx, b, base);
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

/* Does node i's code equal slot's embedding in tx (within one code step)?
 * 1 yes, 0 no, negative on a store error. */
static int code_matches(const wd_hnsw *g, size_t i, wd_txn *tx) {
  uint32_t slot = g->ids[i];
  const float *base = NULL;
  int rc = store_block_get(tx, slot / WD_BLOCK, &base);
  if (rc < 0) return rc;
  if (rc != 0 || !base) return 0;
  size_t dim = g->dim;
  const float *x = base + WD_BLOCK + (size_t)(slot % WD_BLOCK) * dim;
  float inv = g->metric == WD_METRIC_COSINE ? base[slot % WD_BLOCK] : 1.0f;
  const uint8_t *c = g->codes + i * dim;
  for (size_t j = 0; j < dim; j++) {
    float v = x[j] * inv;
    uint8_t e;
    wd_ivf_sq8_encode(&v, g->sqmin + j, g->sqscale + j, 1, &e);
    if (abs((int)e - (int)c[j]) > 1) return 0;
  }
  return 1;
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

/* Against the store state in tx: not ahead of it, nsample codes equal
 * (every node when nsample is 0).  0 ok, 3 foreign, 4 newer (why set), or
 * a negative store error. */
static int vs_store(const wd_hnsw *g, wd_txn *tx, const roaring_bitmap_t *live, size_t nsample,
                    uint64_t *checked, char *why, size_t whylen) {
  uint64_t rev = store_meta_u64(tx, "revision"), ns = store_meta_u64(tx, "next_slot");
  if (g->h.revision > rev || g->h.next_slot > ns) {
    snprintf(why, whylen,
             "graph reflects revision %llu / %llu slots, the store has revision %llu / %llu "
             "slots (a graph from another or a newer store)",
             (unsigned long long)g->h.revision, (unsigned long long)g->h.next_slot,
             (unsigned long long)rev, (unsigned long long)ns);
    return 4;
  }
  size_t m = nsample == 0 || g->n < nsample ? g->n : nsample;
  for (size_t t = 0; t < m; t++) {
    size_t i = (size_t)((double)t * (double)g->n / (double)m);
    if (!roaring_bitmap_contains(live, g->ids[i])) continue; /* deleted since */
    if (!nsample) store_bound_map(tx->db); /* check: every node, not the load's sample */
    int rc = code_matches(g, i, tx);
    if (rc < 0) return rc;
    if (checked) (*checked)++;
    if (rc == 0) {
      snprintf(why, whylen, "the code of slot %u differs from the store's vector", g->ids[i]);
      return 3;
    }
  }
  return 0;
}

static gstate *gstate_get(warden *db) {
  void **slot = wd_ann_graph_slot(db);
  if (!slot) return NULL;
  if (!*slot) *slot = wd_calloc(1, sizeof(gstate));
  return *slot;
}

/* Under annlock: (re)load the file when it changed since last looked. */
static int refresh(warden *db, gstate *s) {
  char path[4096];
  wd_graph_path(db, path, sizeof path);
  int have;
  if (!wd_fileid_changed(&s->file, path, &have)) return 0;
  base_release(s->cur);
  s->cur = NULL;
  s->why[0] = 0;
  if (!have) {
    s->state = "missing";
    snprintf(s->why, sizeof s->why, "no graph file (run `warden index`)");
    return 0;
  }
  gbase *b = wd_calloc(1, sizeof *b);
  if (!b) {
    s->file.looked = 0;
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  }
  int rc = wd_hnsw_open_file(path, db->cfg.dim, db->cfg.metric, &b->g, s->why, sizeof s->why);
  if (rc == 0) {
    wd_txn t2;
    roaring_bitmap_t *live = NULL;
    int src = store_read_begin(db, &t2);
    if (src == 0) {
      src = live_bitmap(&t2, &live);
      if (src == 0) {
        rc = vs_store(&b->g, &t2, live, LOAD_SAMPLE, NULL, s->why, sizeof s->why);
        if (rc < 0) {
          src = rc;
          rc = 0;
        }
        roaring_bitmap_free(live);
      }
      store_read_end(&t2);
    }
    if (src) {
      wd_hnsw_close(&b->g);
      wd_free(b);
      s->file.looked = 0;
      return src;
    }
    if (rc) wd_hnsw_close(&b->g);
  }
  s->state = state_name(rc);
  if (rc) {
    wd_free(b);
    return 0;
  }
  b->refs = 1;
  s->cur = b;
  return 0;
}

int wd_graph_acquire(warden *db, wd_graph_ref *ref, const char **state) {
  memset(ref, 0, sizeof *ref);
  pthread_mutex_lock(&db->annlock);
  gstate *s = gstate_get(db);
  if (!s) {
    pthread_mutex_unlock(&db->annlock);
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  }
  int rc = refresh(db, s);
  if (rc) {
    pthread_mutex_unlock(&db->annlock);
    return rc;
  }
  if (!s->cur) {
    *state = s->state ? s->state : "missing";
    pthread_mutex_unlock(&db->annlock);
    return 1;
  }
  __atomic_add_fetch(&s->cur->refs, 1, __ATOMIC_ACQ_REL);
  ref->g = &s->cur->g;
  ref->next_slot = s->cur->g.h.next_slot;
  ref->base = s->cur;
  pthread_mutex_unlock(&db->annlock);
  *state = "ready";
  return 0;
}

void wd_graph_release(wd_graph_ref *ref) {
  if (ref && ref->base) base_release(ref->base);
  if (ref) ref->base = NULL;
}

/* Called by wd_ann_close (the slot's owner) with the state pointer. */
void wd_graph_state_free(void *p) {
  gstate *s = p;
  if (!s) return;
  base_release(s->cur);
  wd_free(s);
}

void wd_graph_close(warden *db) {
  pthread_mutex_lock(&db->annlock);
  void **slot = db->ann ? wd_ann_graph_slot(db) : NULL;
  if (slot && *slot) {
    wd_graph_state_free(*slot);
    *slot = NULL;
  }
  pthread_mutex_unlock(&db->annlock);
}


void wd_phase_progress(void *ctx, uint64_t done, uint64_t total) {
  const wd_phase_prog *p = ctx;
  if (p->opts->progress && strcmp(p->phase, "ivf") == 0)
    p->opts->progress(p->opts->progress_ctx, done, total);
  if (p->opts->phase_progress)
    p->opts->phase_progress(p->opts->progress_ctx, p->phase, done, total);
}

int wd_graph_build(warden *db, wd_txn *tx, const roaring_bitmap_t *live, int rebuild,
                   const warden_index_opts *opts,
                   json_t **report) {
  *report = NULL;
  char path[4096], why[300] = "", old_why[300] = "";
  wd_graph_path(db, path, sizeof path);
  double t0 = wd_now_ms();
  uint64_t rev = store_meta_u64(tx, "revision"), ns = store_meta_u64(tx, "next_slot");
  wd_hnsw old;
  int orc = wd_hnsw_open_file(path, db->cfg.dim, db->cfg.metric, &old, old_why, sizeof old_why);
  if (orc == 0) {
    orc = vs_store(&old, tx, live, LOAD_SAMPLE, NULL, old_why, sizeof old_why);
    if (orc < 0) {
      wd_hnsw_close(&old);
      return orc;
    }
    if (orc) wd_hnsw_close(&old);
  }
  int have_old = orc == 0;
  uint64_t deleted = 0;
  if (have_old)
    for (size_t i = 0; i < old.n; i++) deleted += !roaring_bitmap_contains(live, old.ids[i]);
  int extend = have_old && !rebuild && (double)deleted <= REBUILD_DELETED * (double)old.n;
  /* the slots to insert: every live one, or those after the old graph's */
  roaring_bitmap_t *add = roaring_bitmap_copy(live);
  if (!add) {
    if (have_old) wd_hnsw_close(&old);
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  }
  if (extend) {
    roaring_bitmap_t *r = roaring_bitmap_from_range(0, old.h.next_slot, 1);
    if (!r) {
      roaring_bitmap_free(add);
      wd_hnsw_close(&old);
      return wd_err(db, WARDEN_ENOMEM, "out of memory");
    }
    roaring_bitmap_andnot_inplace(add, r);
    roaring_bitmap_free(r);
  }
  uint64_t nadd = roaring_bitmap_get_cardinality(add);
  int rc = 0;
  void *img = NULL;
  size_t len = 0;
  uint32_t *slots = NULL;
  json_t *r = NULL;
  if (extend && nadd == 0) {
    /* nothing new: the file stays (slots never change, deletes are in the
     * bitmaps) */
    r = json_pack("{s:b,s:s,s:s,s:I,s:I}", "built", 0, "path", "index/hnsw.wdx", "reason",
                  "up to date: no new slots since the graph was written", "vectors",
                  (json_int_t)old.n, "next_slot", (json_int_t)old.h.next_slot);
    goto out;
  }
  slots = wd_malloc((nadd ? nadd : 1) * sizeof *slots);
  if (!slots) goto oom;
  roaring_bitmap_to_uint32_array(add, slots);
  wd_vecsrc src = {db->cfg.dim, db->cfg.metric, get_block, tx};
  /* all cores; WARDEN_BUILD_THREADS (tests only) pins the count: a
   * parallel build inserts in a scheduler-dependent order, and a test near
   * its recall bound must give the same graph every run */
  const char *bt = getenv("WARDEN_BUILD_THREADS");
  int threads = bt && atoi(bt) > 0 ? atoi(bt) : 0;
  wd_phase_prog gp = {opts, "graph"};
  wd_hnsw_build_in in = {&src,    slots, nadd, extend ? &old : NULL,
                         rev,     ns,    0,    0,
                         threads, 1234,  opts && opts->phase_progress ? wd_phase_progress : NULL,
                         &gp};
  int brc = wd_hnsw_build(&in, &img, &len, why, sizeof why);
  if (brc) {
    rc = brc == -1 ? wd_err(db, WARDEN_ENOMEM, "index: graph: out of memory")
         : brc < -3 ? brc
                    : wd_err(db, WARDEN_EINTERNAL, "index: graph: %s", why);
    goto out;
  }
  double t_build = wd_now_ms() - t0, t1 = wd_now_ms();
  int ncal = wd_hnsw_calibrate_image(&img, &len, &src, live, 4242, threads, why, sizeof why);
  if (ncal < 0) {
    rc = ncal == -1 ? wd_err(db, WARDEN_ENOMEM, "index: graph: out of memory")
         : ncal == -2 ? wd_err(db, WARDEN_EINTERNAL, "index: graph: %s", why)
                      : ncal;
    goto out;
  }
  double t_cal = wd_now_ms() - t1, t2 = wd_now_ms();
  if (wd_ivf_write_file(path, img, len, why, sizeof why)) {
    rc = wd_err(db, WARDEN_EIO, "index: graph: %s", why);
    goto out;
  }
  double t_write = wd_now_ms() - t2;
  const wd_hnsw_header *h = img;
  r = json_pack("{s:b,s:s,s:I,s:I,s:b,s:I,s:I,s:I,s:I,s:f,s:I,s:f,s:f,s:f,s:b,s:s}", "built", 1,
                "path", "index/hnsw.wdx", "vectors", (json_int_t)h->nvec, "inserted",
                (json_int_t)nadd, "extended", extend, "M", (json_int_t)h->M, "calibration_points",
                (json_int_t)ncal, "bytes", (json_int_t)len, "revision", (json_int_t)rev,
                "bytes_per_vector", (double)len / (double)h->nvec, "next_slot", (json_int_t)ns,
                "build_ms", t_build, "calibrate_ms", t_cal, "write_ms", t_write, "float_walk",
                (h->flags & WD_HNSW_FLOAT_WALK) != 0, "previous_graph", state_name(orc));
  if (r && old_why[0] && !have_old && orc != 1)
    json_object_set_new(r, "previous_graph_problem", json_string(old_why));
  goto out;
oom:
  rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
out:
  if (!rc && !r) rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
  if (rc) json_decref(r);
  else *report = r;
  if (have_old) wd_hnsw_close(&old);
  roaring_bitmap_free(add);
  wd_free(slots);
  wd_free(img);
  if (!rc) {
    /* forget the loaded graph so the next query reloads the file */
    pthread_mutex_lock(&db->annlock);
    gstate *s = gstate_get(db);
    if (s) {
      base_release(s->cur);
      s->cur = NULL;
      s->file.looked = 0;
    }
    pthread_mutex_unlock(&db->annlock);
  }
  return rc;
}

json_t *wd_graph_stats(warden *db, wd_txn *tx) {
  json_t *o = json_object();
  if (!o) return NULL;
  json_object_set_new(o, "enabled", json_boolean(db->cfg.graph != 0));
  json_object_set_new(o, "target_recall",
                      json_real(db->cfg.target_recall > 0 ? db->cfg.target_recall : 0.95));
  pthread_mutex_lock(&db->annlock);
  gstate *s = gstate_get(db);
  int rc = s ? refresh(db, s) : WARDEN_ENOMEM;
  if (rc) {
    pthread_mutex_unlock(&db->annlock);
    json_object_set_new(o, "state", json_string("error"));
    return o;
  }
  uint64_t ns = store_meta_u64(tx, "next_slot");
  if (s->cur) {
    const wd_hnsw *g = &s->cur->g;
    int stale = ns > g->h.next_slot;
    json_object_set_new(o, "state", json_string(stale ? "stale" : "ready"));
    json_object_set_new(o, "file", json_string("index/hnsw.wdx"));
    json_object_set_new(o, "vectors", json_integer((json_int_t)g->n));
    json_object_set_new(o, "M", json_integer((json_int_t)g->M));
    json_object_set_new(o, "maxlevel", json_integer((json_int_t)g->h.maxlevel));
    json_object_set_new(o, "bytes", json_integer((json_int_t)g->maplen));
    json_object_set_new(o, "bytes_per_vector", json_real((double)g->maplen / (double)g->n));
    json_object_set_new(o, "float_walk", json_boolean((g->h.flags & WD_HNSW_FLOAT_WALK) != 0));
    json_object_set_new(o, "calibration_points", json_integer((json_int_t)g->ncal));
    /* the measured curves the planner reads (index/hnsw.c calibration):
     * one [selectivity, efSearch, recall@10, code distances, two_hop,
     * second-hop lists read, hops (0: not recorded)] per point */
    json_t *cal = json_array();
    for (size_t i = 0; cal && i < g->ncal; i++) {
      const wd_hnsw_cal *c = &g->cal[i];
      json_array_append_new(cal, json_pack("[f,i,f,f,b,i,i]", (double)c->sel, (json_int_t)c->ef,
                                           (double)c->recall, (double)c->ndist,
                                           wd_hnsw_cal_mode(c), (json_int_t)c->lists,
                                           (json_int_t)wd_hnsw_cal_hops(c)));
    }
    if (cal) json_object_set_new(o, "calibration", cal);
    json_object_set_new(o, "revision", json_integer((json_int_t)g->h.revision));
    json_object_set_new(o, "next_slot", json_integer((json_int_t)g->h.next_slot));
    json_object_set_new(o, "pending_slots",
                        json_integer((json_int_t)(stale ? ns - g->h.next_slot : 0)));
  } else {
    json_object_set_new(o, "state", json_string(strcmp(s->state, "missing") == 0
                                                     ? "none" : s->state));
    json_object_set_new(o, "detail", json_string(s->why));
  }
  pthread_mutex_unlock(&db->annlock);
  return o;
}

int wd_graph_check(warden *db, wd_txn *tx, json_t *report) {
  char path[4096], why[300] = "";
  wd_graph_path(db, path, sizeof path);
  json_t *o = json_object(), *probs = json_array();
  roaring_bitmap_t *live = NULL;
  wd_hnsw g;
  memset(&g, 0, sizeof g);
  int np = 0, rc = 0, opened = 0;
  uint64_t checked = 0;
  if (!o || !probs) goto oom;
  if ((rc = live_bitmap(tx, &live))) goto out;
  int orc = wd_hnsw_open_file(path, db->cfg.dim, db->cfg.metric, &g, why, sizeof why);
  if (orc == 0) {
    opened = 1;
    orc = vs_store(&g, tx, live, 0, &checked, why, sizeof why);
    if (orc < 0) {
      rc = orc;
      goto out;
    }
  }
  if (orc == 1) {
    json_object_set_new(o, "state", json_string("none"));
    goto out;
  }
  if (orc) {
    json_object_set_new(o, "state", json_string(state_name(orc)));
    json_array_append_new(probs, json_sprintf("index/hnsw.wdx: %s (run `warden index "
                                              "--rebuild`; queries do not use it meanwhile)",
                                              why));
    np++;
    goto out;
  }
  /* every live slot below next_slot is a node (ids are strictly ascending:
   * none twice) */
  roaring_bitmap_t *want = roaring_bitmap_from_range(0, g.h.next_slot, 1);
  roaring_bitmap_t *have = roaring_bitmap_of_ptr(g.n, g.ids);
  if (!want || !have) {
    if (want) roaring_bitmap_free(want);
    if (have) roaring_bitmap_free(have);
    goto oom;
  }
  roaring_bitmap_and_inplace(want, live);
  roaring_bitmap_andnot_inplace(want, have);
  uint64_t missing = roaring_bitmap_get_cardinality(want);
  if (missing) {
    json_array_append_new(probs, json_sprintf("index/hnsw.wdx: %llu live slots below its "
                                              "next_slot are not nodes (first: %u)",
                                              (unsigned long long)missing,
                                              roaring_bitmap_minimum(want)));
    np++;
  }
  roaring_bitmap_free(want);
  roaring_bitmap_free(have);
  json_object_set_new(o, "state", json_string(np ? "corrupt" : "ok"));
  json_object_set_new(o, "revision", json_integer((json_int_t)g.h.revision));
  json_object_set_new(o, "next_slot", json_integer((json_int_t)g.h.next_slot));
  goto out;
oom:
  rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
out:
  if (opened) wd_hnsw_close(&g);
  if (live) roaring_bitmap_free(live);
  if (rc) {
    json_decref(o);
    json_decref(probs);
    return rc;
  }
  json_object_set_new(o, "checked", json_integer((json_int_t)checked));
  json_object_set_new(o, "problems", probs);
  json_object_set_new(report, "graph", o);
  return np;
}
