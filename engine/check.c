/*
 * check.c -- warden_check: rebuild every bitmap from the records and
 * compare with the stored ones; check every chunk record and embedding,
 * the counters, the lexical postings, the ANN index files, and (when
 * auditing is on) the audit log.
 *
 * The steps, each a function below: check_docs walks the document records
 * and, per record, collects the bitmaps it implies (record_bitmaps) and
 * checks its chunks and vectors (check_slots); check_counters;
 * check_bitmaps compares the stored bitmaps with what the records imply,
 * check_missing reports the implied ones not stored; the lexical and index
 * checks are their modules' (wd_lex_check, wd_index_check).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "acl/audit.h"
#include "engine/doc.h"
#include "engine/indexer.h"
#include "engine/lexical.h"
#include "engine/store.h"
#include "index/scan.h"

#define MAX_PROBLEMS 100          /* problems listed; more are only counted */
#define SHOWN_KEY 60              /* bytes of a key shown in a problem */
#define SEEN_MARK 0xFFFFFFFFu     /* a slot that never names a chunk */
#define NORM_TOLERANCE 1e-5f      /* relative error allowed of a stored 1/|v| */

typedef struct check_ctx {
  warden *db;
  wd_txn tx;
  json_t *probs;
  wd_hmap want; /* bitmap key -> expected bitmap */
  roaring_bitmap_t *slots_seen;
  uint64_t ndocs, nchunks, nbitmaps;
  uint64_t pub; /* next_slot: slots from it on are an unpublished staged ingest's (stage.h) */
} check_ctx;

static void problem(json_t *list, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(json_t *list, const char *fmt, ...) {
  if (json_array_size(list) >= MAX_PROBLEMS) return;
  char b[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  json_array_append_new(list, json_string(b));
}

static int keylen_shown(size_t n) { return (int)(n > SHOWN_KEY ? SHOWN_KEY : n); }

/* The record's slots belong in the bitmap under key. */
static int want_add(check_ctx *C, const char *key, size_t klen, const uint32_t *s, size_t n) {
  roaring_bitmap_t *bm = wd_hmap_get(&C->want, key, klen);
  if (!bm) {
    bm = roaring_bitmap_create();
    if (!bm || wd_hmap_put(&C->want, key, klen, bm, NULL)) {
      if (bm) roaring_bitmap_free(bm);
      return wd_err(C->db, WARDEN_ENOMEM, "out of memory");
    }
  }
  roaring_bitmap_add_many(bm, n, s);
  return 0;
}

/* Metadata value x of a field of type t as a wd_value; 0 when x does not
 * have the field's type. */
static int meta_value(wd_type t, const json_t *x, wd_value *val) {
  memset(val, 0, sizeof *val);
  if (t == WD_T_STRING || t == WD_T_STRING_LIST) {
    if (!json_is_string(x)) return 0;
    val->type = WD_T_STRING;
    val->s = json_string_value(x);
    val->len = json_string_length(x);
  } else if (t == WD_T_INT) {
    if (!json_is_integer(x)) return 0;
    val->type = WD_T_INT;
    val->i = json_integer_value(x);
  } else if (t == WD_T_FLOAT) {
    if (!json_is_number(x)) return 0;
    val->type = WD_T_FLOAT;
    val->f = json_number_value(x);
  } else {
    if (!json_is_boolean(x)) return 0;
    val->type = WD_T_BOOL;
    val->b = json_is_true(x);
  }
  return 1;
}

/* Every bitmap the record implies (engine/store.h, layout): live, allow
 * and deny per principal, namespace, source, and per metadata value (with
 * the bucket bitmaps of numbers). */
static int record_bitmaps(check_ctx *C, const json_t *rec, const char *id, const uint32_t *s,
                          size_t n) {
  char kb[512];
  int rc = want_add(C, kb, store_key(kb, 'L', "", 0), s, n);
  const char *lists[2] = {"allow", "deny"};
  for (int l = 0; l < 2 && !rc; l++) {
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(rec, lists[l]), i, p) {
      if (rc) break;
      rc = want_add(C, kb, store_key(kb, l ? 'D' : 'A', json_string_value(p), json_string_length(p)),
                    s, n);
    }
  }
  json_t *ns = json_object_get(rec, "namespace"), *src = json_object_get(rec, "source");
  if (!rc) rc = want_add(C, kb, store_key(kb, 'N', json_string_value(ns), json_string_length(ns)), s, n);
  if (!rc)
    rc = want_add(C, kb, store_key(kb, 'S', json_string_value(src), json_string_length(src)), s, n);
  const char *field;
  json_t *v;
  json_object_foreach((json_t *)json_object_get(rec, "metadata"), field, v) {
    if (rc) break;
    wd_type t = store_field_type(&C->tx, field);
    if (t == WD_T_NONE) {
      problem(C->probs, "%s: metadata field \"%s\" has no recorded type", id, field);
      continue;
    }
    json_t *vals = json_is_array(v) ? v : NULL;
    size_t cnt = vals ? json_array_size(vals) : 1;
    for (size_t i = 0; i < cnt && !rc; i++) {
      wd_value val;
      if (!meta_value(t, vals ? json_array_get(vals, i) : v, &val) ||
          (t == WD_T_STRING_LIST) != (vals != NULL)) {
        problem(C->probs, "%s: metadata \"%s\" does not have its field's type (%s)", id, field,
                wd_type_name(t));
        break;
      }
      rc = want_add(C, kb, store_vkey(kb, field, &val), s, n);
      if (!rc && (val.type == WD_T_INT || val.type == WD_T_FLOAT)) {
        rc = want_add(C, kb, store_nkey(kb, 'B', field, store_num_enc(&val), 7), s, n);
        if (!rc) rc = want_add(C, kb, store_nkey(kb, 'C', field, store_num_enc(&val), 6), s, n);
      }
    }
  }
  return rc;
}

/* The chunk record and the embedding of each of the document's slots. */
static void check_slots(check_ctx *C, const char *id, const uint32_t *s, size_t n) {
  const wd_config *cfg = &C->db->cfg;
  for (size_t i = 0; i < n; i++) {
    store_bound_map(C->db); /* check reads every block */
    if (roaring_bitmap_contains(C->slots_seen, s[i]))
      problem(C->probs, "%s: slot %u is claimed by two documents", id, s[i]);
    roaring_bitmap_add(C->slots_seen, s[i]);
    uint32_t ord;
    const char *cid, *text;
    size_t il, tl;
    int r = store_chunk_get(&C->tx, s[i], &ord, &cid, &il, &text, &tl);
    if (r || il != strlen(id) || memcmp(cid, id, il) != 0 || ord != i)
      problem(C->probs, "%s: chunk %zu (slot %u) record is missing or names another document",
              id, i, s[i]);
    const float *blk;
    if (store_block_get(&C->tx, s[i] / WD_BLOCK, &blk)) {
      problem(C->probs, "%s: chunk %zu (slot %u) has no embedding block", id, i, s[i]);
      continue;
    }
    const float *vec = blk + WD_BLOCK + (size_t)(s[i] % WD_BLOCK) * cfg->dim;
    double n2 = 0;
    int finite = 1;
    for (size_t j = 0; j < cfg->dim; j++) {
      if (!isfinite(vec[j])) finite = 0;
      n2 += (double)vec[j] * vec[j];
    }
    float inv = blk[s[i] % WD_BLOCK];
    float expect = n2 > 0 ? (float)(1.0 / sqrt(n2)) : 0.0f;
    char why[200];
    if (!finite || fabsf(inv - expect) > NORM_TOLERANCE * (expect > 1 ? expect : 1))
      problem(C->probs, "%s: chunk %zu (slot %u) embedding or its norm is damaged", id, i, s[i]);
    else if (wd_vec_check(vec, cfg->dim, cfg->metric, why, sizeof why))
      /* stored before ingest refused such vectors: it would score NaN
       * or overflow, and k-means (warden index) would fail on it */
      problem(C->probs,
              "%s: chunk %zu (slot %u) embedding cannot be scored: %s (re-ingest or delete "
              "the document)",
              id, i, s[i], why);
  }
}

/* Every document record: decodable, its bitmaps, chunks and vectors. */
static int check_docs(check_ctx *C) {
  wd_iter it;
  int rc = store_iter_begin(&C->tx, WD_DB_DOCS, NULL, 0, "check documents", &it);
  while (!rc && (rc = store_iter_next(&it)) == 1) {
    rc = 0;
    json_t *rec = NULL;
    uint32_t *s = NULL;
    size_t n = 0;
    int drc = store_doc_decode(C->db, it.val, it.vlen, &rec);
    if (!drc) drc = doc_slots(C->db, rec, &s, &n);
    if (drc == WARDEN_ENOMEM) {
      rc = drc;
    } else if (drc) {
      problem(C->probs, "document record %zu bytes under key \"%.*s\" is damaged", it.vlen,
              keylen_shown(it.klen), (const char *)it.key);
    } else if (n && s[0] >= C->pub) {
      /* staged, not published: not part of the collection yet */
    } else {
      C->ndocs++;
      C->nchunks += n;
      const char *id = json_string_value(json_object_get(rec, "doc_id"));
      rc = record_bitmaps(C, rec, id, s, n);
      if (!rc) check_slots(C, id, s, n);
    }
    wd_free(s);
    json_decref(rec);
  }
  store_iter_end(&it);
  return rc;
}

static void check_counters(check_ctx *C) {
  uint64_t docs = store_meta_u64(&C->tx, "docs"), chunks = store_meta_u64(&C->tx, "chunks");
  if (docs != C->ndocs)
    problem(C->probs, "document counter says %llu, records say %llu", (unsigned long long)docs,
            (unsigned long long)C->ndocs);
  if (chunks != C->nchunks)
    problem(C->probs, "chunk counter says %llu, records say %llu", (unsigned long long)chunks,
            (unsigned long long)C->nchunks);
  uint64_t nrec;
  if (store_count(&C->tx, WD_DB_CHUNKS, &nrec) == 0 &&
      nrec - store_count_from(&C->tx, 0, (uint32_t)C->pub) != C->nchunks)
    problem(C->probs, "%zu chunk records for %llu chunks", (size_t)nrec,
            (unsigned long long)C->nchunks);
}

/* Every stored bitmap must equal the one the records imply; each implied
 * one met is marked seen (SEEN_MARK) for check_missing. */
static void check_bitmaps(check_ctx *C) {
  wd_iter it;
  if (store_iter_begin(&C->tx, WD_DB_BITMAPS, NULL, 0, "check bitmaps", &it)) return;
  while (store_iter_next(&it) == 1) {
    roaring_bitmap_t *got = NULL;
    if (store_bm_decode(C->db, it.val, it.vlen, &got)) got = NULL;
    if (got && !roaring_bitmap_is_empty(got) && roaring_bitmap_maximum(got) >= C->pub) {
      roaring_bitmap_remove_range(got, C->pub, (uint64_t)UINT32_MAX + 1); /* staged */
      if (roaring_bitmap_is_empty(got)) { /* only staged slots */
        roaring_bitmap_free(got);
        continue;
      }
    }
    C->nbitmaps++;
    roaring_bitmap_t *exp = wd_hmap_get(&C->want, it.key, it.klen);
    const char *kk = it.key;
    int kl = keylen_shown(it.klen);
    if (!got)
      problem(C->probs, "bitmap %.*s cannot be decoded", kl, kk);
    else if (!exp) {
      if (!roaring_bitmap_is_empty(got))
        problem(C->probs, "bitmap %.*s names chunks no record names", kl, kk);
    } else if (!roaring_bitmap_equals(got, exp))
      problem(C->probs, "bitmap %.*s disagrees with the records (%llu stored, %llu expected)", kl,
              kk, (unsigned long long)roaring_bitmap_get_cardinality(got),
              (unsigned long long)roaring_bitmap_get_cardinality(exp));
    if (exp) {
      roaring_bitmap_clear(exp);
      roaring_bitmap_add(exp, SEEN_MARK);
    }
    if (got) roaring_bitmap_free(got);
  }
  store_iter_end(&it);
}

/* The implied bitmaps no stored one matched; frees them. */
static void check_missing(check_ctx *C) {
  WD_HMAP_FOREACH(&C->want, e) {
    roaring_bitmap_t *bm = e->val;
    if (!roaring_bitmap_contains(bm, SEEN_MARK))
      problem(C->probs, "bitmap %.*s is missing", keylen_shown(e->klen), e->key);
    roaring_bitmap_free(bm);
  }
  wd_hmap_free(&C->want);
}

/* The lexical postings against the chunk texts (engine/lexical.c). */
static int check_lexical(check_ctx *C) {
  char lk[2] = "L";
  roaring_bitmap_t *lv = roaring_bitmap_create();
  int lrc = lv ? store_bm_or(&C->tx, lk, 1, lv) : WARDEN_ENOMEM;
  if (!lrc) lrc = wd_lex_check(C->db, &C->tx, lv, C->probs);
  if (lv) roaring_bitmap_free(lv);
  return lrc < 0 ? lrc : 0;
}

/* The audit log's records (wd_audit_verify), when auditing is on.  Not a
 * problem of the collection: the log is evidence kept beside it, and a
 * line torn by a crash is expected there (it is reported, never
 * repaired). */
static json_t *check_audit(warden *db) {
  const char *path = db->audit ? wd_audit_path(db->audit) : NULL;
  if (!path) return NULL;
  int torn = 0;
  uint64_t bad = 0;
  int64_t good = wd_audit_verify(path, &torn, &bad);
  if (good < 0) return json_pack("{s:s,s:s}", "path", path, "error", "cannot be read");
  return json_pack("{s:s,s:I,s:I,s:b}", "path", path, "records", (json_int_t)good,
                   "damaged_lines", (json_int_t)bad, "torn_last_line", torn);
}

int warden_check(warden *db, char **json_out) {
  if (!db || !json_out) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  check_ctx C;
  memset(&C, 0, sizeof C);
  C.db = db;
  if ((rc = store_read_begin(db, &C.tx))) return rc;
  C.pub = store_meta_u64(&C.tx, "next_slot");
  C.probs = json_array();
  C.slots_seen = roaring_bitmap_create();
  if (!C.probs || !C.slots_seen) rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
  if (!rc) rc = check_docs(&C);
  if (!rc) {
    check_counters(&C);
    check_bitmaps(&C);
    rc = check_lexical(&C);
  }
  check_missing(&C);
  if (C.slots_seen) roaring_bitmap_free(C.slots_seen);
  uint64_t rev = store_meta_u64(&C.tx, "revision");
  /* the ANN index files against the store */
  json_t *ixrep = json_object();
  int nix = rc ? 0 : wd_index_check(db, &C.tx, ixrep);
  store_read_end(&C.tx);
  if (!rc && nix < 0) rc = nix;
  if (rc) {
    json_decref(C.probs);
    json_decref(ixrep);
    return rc;
  }
  json_t *probs = C.probs;
  if (nix > 0) problem(probs, "index: %d problem(s), see \"index\"", nix);
  size_t np = json_array_size(probs);
  json_t *o = json_pack("{s:b,s:I,s:I,s:I,s:I,s:o}", "ok", np == 0, "documents",
                        (json_int_t)C.ndocs, "chunks", (json_int_t)C.nchunks, "bitmaps",
                        (json_int_t)C.nbitmaps, "revision", (json_int_t)rev, "problems", probs);
  if (o && json_object_get(ixrep, "index"))
    json_object_set(o, "index", json_object_get(ixrep, "index"));
  json_decref(ixrep);
  json_t *au = o ? check_audit(db) : NULL;
  if (au) json_object_set_new(o, "audit", au);
  char *s = wd_json_string(db, o);
  if (!s) return WARDEN_ENOMEM;
  *json_out = s;
  if (np) return wd_err(db, WARDEN_ECORRUPT, "check: %zu problem(s) found", np);
  return 0;
}
