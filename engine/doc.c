/*
 * doc.c -- keep bitmaps, records, chunks and embeddings in agreement.
 */
#include "engine/doc.h"

#include "engine/lexical.h"

#include <string.h>

int doc_slots(warden *db, const json_t *rec, uint32_t **slots, size_t *n) {
  const json_t *a = json_object_get(rec, "slots");
  if (!json_is_array(a)) return wd_err(db, WARDEN_ECORRUPT, "document record without slots");
  size_t m = json_array_size(a);
  uint32_t *s = wd_calloc(m ? m : 1, sizeof *s);
  if (!s) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  for (size_t i = 0; i < m; i++) {
    json_int_t v = json_integer_value(json_array_get(a, i));
    if (!json_is_integer(json_array_get(a, i)) || v < 0 || v > (json_int_t)WD_MAX_SLOTS) {
      wd_free(s);
      return wd_err(db, WARDEN_ECORRUPT, "document record has a bad slot");
    }
    s[i] = (uint32_t)v;
  }
  *slots = s;
  *n = m;
  return 0;
}

typedef struct {
  wd_txn *tx;
  const char *field;
  const uint32_t *slots;
  size_t n;
  int set;
} bits_ctx;

static int bits_key(wd_txn *tx, const char *key, size_t klen,
                    const uint32_t *slots, size_t n, int set) {
  if (set) return store_bm_add(tx, key, klen, slots, n); /* no read: store.c */
  roaring_bitmap_t *bm;
  int rc = store_bm_mut(tx, key, klen, &bm);
  if (rc) return rc;
  for (size_t i = 0; i < n; i++) roaring_bitmap_remove(bm, slots[i]);
  return 0;
}

static int meta_bits(const wd_value *v, void *ctx) {
  bits_ctx *c = ctx;
  char kb[512];
  size_t kl = store_vkey(kb, c->field, v);
  int rc = bits_key(c->tx, kb, kl, c->slots, c->n, c->set);
  if (rc || (v->type != WD_T_INT && v->type != WD_T_FLOAT)) return rc;
  uint64_t e = store_num_enc(v);
  kl = store_nkey(kb, 'B', c->field, e, 7);
  if ((rc = bits_key(c->tx, kb, kl, c->slots, c->n, c->set))) return rc;
  kl = store_nkey(kb, 'C', c->field, e, 6);
  return bits_key(c->tx, kb, kl, c->slots, c->n, c->set);
}

int doc_meta_values(const json_t *v, wd_type t,
                    int (*fn)(const wd_value *val, void *ctx), void *ctx) {
  wd_value x;
  memset(&x, 0, sizeof x);
  switch (t) {
    case WD_T_STRING:
      if (!json_is_string(v)) return 0;
      x.type = WD_T_STRING;
      x.s = json_string_value(v);
      x.len = json_string_length(v);
      return fn(&x, ctx);
    case WD_T_INT:
      if (!json_is_integer(v)) return 0;
      x.type = WD_T_INT;
      x.i = json_integer_value(v);
      return fn(&x, ctx);
    case WD_T_FLOAT:
      if (!json_is_number(v)) return 0;
      x.type = WD_T_FLOAT;
      x.f = json_number_value(v);
      return fn(&x, ctx);
    case WD_T_BOOL:
      if (!json_is_boolean(v)) return 0;
      x.type = WD_T_BOOL;
      x.b = json_is_true(v);
      return fn(&x, ctx);
    case WD_T_STRING_LIST: {
      size_t i;
      const json_t *e;
      json_array_foreach(v, i, e) {
        if (!json_is_string(e)) continue;
        /* a list may name one element twice: index it once */
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++) dup = json_equal(json_array_get(v, j), e);
        if (dup) continue;
        x.type = WD_T_STRING;
        x.s = json_string_value(e);
        x.len = json_string_length(e);
        int rc = fn(&x, ctx);
        if (rc) return rc;
      }
      return 0;
    }
    default:
      return 0;
  }
}

static int acl_bits(wd_txn *tx, const json_t *rec, const uint32_t *s, size_t n,
                    int set) {
  const char *lists[2] = {"allow", "deny"};
  for (int l = 0; l < 2; l++) {
    const json_t *a = json_object_get(rec, lists[l]);
    size_t i;
    const json_t *p;
    json_array_foreach(a, i, p) {
      char kb[512];
      size_t kl = store_key(kb, l ? 'D' : 'A', json_string_value(p),
                            json_string_length(p));
      int rc = bits_key(tx, kb, kl, s, n, set);
      if (rc) return rc;
    }
  }
  return 0;
}

int doc_index_acl(wd_txn *tx, const json_t *rec, int set) {
  uint32_t *s;
  size_t n;
  int rc = doc_slots(tx->db, rec, &s, &n);
  if (rc) return rc;
  rc = acl_bits(tx, rec, s, n, set);
  wd_free(s);
  return rc;
}

/* The postings of slots s[skip..n), from the tokens counted ahead when
 * the ingest has them. */
static int lex_index(wd_txn *tx, const uint32_t *s, size_t n, size_t skip, int set) {
  if (set && tx->lex_pre)
    return wd_lex_doc_pre(tx, s + skip, n - skip, tx->lex_pre, tx->lex_pre_first + skip);
  return wd_lex_doc(tx, s + skip, n - skip, set);
}

int doc_index(wd_txn *tx, const json_t *rec, int set) {
  uint32_t *s;
  size_t n;
  int rc = doc_slots(tx->db, rec, &s, &n);
  if (rc) return rc;
  char kb[512];
  size_t kl;
  if (tx->stage_live && set) {
    /* a staged ingest: live bits wait for publish, and so do the postings
     * of slots in the posting window shared with published ones (stage.h);
     * a document's slots ascend */
    roaring_bitmap_add_many(tx->stage_live, n, s);
    size_t k = 0;
    while (k < n && s[k] < tx->stage_lex_from) k++;
    if (k < n && (rc = lex_index(tx, s, n, k, 1))) goto out;
  } else {
    kl = store_key(kb, 'L', "", 0);
    if ((rc = bits_key(tx, kb, kl, s, n, set))) goto out;
    /* the lexical postings of the chunk texts (engine/lexical.c) */
    if ((rc = lex_index(tx, s, n, 0, set))) goto out;
  }
  if ((rc = acl_bits(tx, rec, s, n, set))) goto out;
  const json_t *ns = json_object_get(rec, "namespace");
  kl = store_key(kb, 'N', json_string_value(ns), json_string_length(ns));
  if ((rc = bits_key(tx, kb, kl, s, n, set))) goto out;
  /* by source, so grants (prefixes of sources) become a bitmap walk; keys
   * keep the first 500 bytes, a superset that the resolver post-checks */
  const json_t *src = json_object_get(rec, "source");
  kl = store_key(kb, 'S', json_string_value(src), json_string_length(src));
  if ((rc = bits_key(tx, kb, kl, s, n, set))) goto out;
  const char *field;
  const json_t *v;
  json_object_foreach((json_t *)json_object_get(rec, "metadata"), field, v) {
    wd_type t = store_field_type(tx, field);
    bits_ctx c = {tx, field, s, n, set};
    if ((rc = doc_meta_values(v, t, meta_bits, &c))) goto out;
  }
out:
  wd_free(s);
  return rc;
}

int doc_remove(wd_txn *tx, const json_t *rec) {
  int rc = doc_index(tx, rec, 0);
  if (rc) return rc;
  uint32_t *s;
  size_t n;
  if ((rc = doc_slots(tx->db, rec, &s, &n))) return rc;
  for (size_t i = 0; i < n && !rc; i++) {
    rc = store_chunk_del(tx, s[i]);
    if (!rc) rc = store_vec_zero(tx, s[i]);
  }
  wd_free(s);
  if (rc) return rc;
  const json_t *id = json_object_get(rec, "doc_id");
  if ((rc = store_doc_del(tx, json_string_value(id), json_string_length(id))))
    return rc;
  tx->ndocs--;
  tx->nchunks -= n;
  return 0;
}
