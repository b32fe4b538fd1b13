/*
 * upsert.c -- warden_upsert(): typed documents and float rows, no JSON text.
 *
 * Each warden_doc is turned into the JSON object of the equivalent ingest
 * line (SPEC section 3) -- without its embeddings, which stay the caller's
 * float rows and are borrowed, not copied -- and handed to the validator
 * and applier the JSON Lines path uses (ingest.h).  So limits, messages,
 * duplicate detection, metadata type checks, keep_going and atomicity are
 * the same code; errors read "docs[I].field: reason".
 *
 * What only this file checks is what JSON cannot express: a metadata type
 * code outside WARDEN_META_*, a NULL array with a non-zero count, a
 * repeated metadata key (the JSONL path refuses it as a JSON syntax error),
 * a bool other than 0/1, a non-finite float metadata value, and strings
 * that are not UTF-8 (jansson checks those while parsing a line).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ingest.h"

/* A new JSON string for s, or NULL with *why set when s is not UTF-8. */
static json_t *str_json(const char *s, const char **why) {
  json_t *v = json_string(s);
  if (!v) *why = "not valid UTF-8";
  return v;
}

/* Build the ingest-line object of document i into *out.  Returns 0, 1
 * (reported and skipped with keep_going) or a negative error. */
static int doc_json(wd_ingest *g, const warden_doc *d, uint64_t i, json_t **out) {
  const char *why = NULL;
  char field[WD_MAX_KEYLEN + 64];
  int rc = 0;
  json_t *j = json_object(), *v;
  if (!j) return wd_err(g->db, WARDEN_ENOMEM, "out of memory");
#define FAIL(F, ...)                                  \
  do {                                                \
    rc = wd_ingest_bad(g, NULL, i, F, __VA_ARGS__);   \
    goto fail;                                        \
  } while (0)
#define SETSTR(KEY, S)                                        \
  do {                                                        \
    if ((S) != NULL) {                                        \
      if (!(v = str_json((S), &why))) FAIL(KEY, "%s", why);   \
      json_object_set_new(j, KEY, v);                         \
    }                                                         \
  } while (0)
  SETSTR("doc_id", d->doc_id);
  SETSTR("source", d->source);
  SETSTR("namespace", d->namespace_);
  if (d->nmetadata && !d->metadata) FAIL("metadata", "NULL with nmetadata = %zu", d->nmetadata);
  if (d->nmetadata) {
    json_t *m = json_object();
    json_object_set_new(j, "metadata", m);
    for (size_t k = 0; k < d->nmetadata; k++) {
      const warden_meta *e = &d->metadata[k];
      if (!e->key) {
        snprintf(field, sizeof field, "metadata[%zu]", k);
        FAIL(field, "key is NULL");
      }
      size_t kl = strlen(e->key);
      snprintf(field, sizeof field, "metadata.%.*s", (int)(kl > WD_MAX_KEYLEN ? WD_MAX_KEYLEN : kl),
               e->key);
      if (json_object_get(m, e->key)) FAIL(field, "duplicate key");
      switch (e->type) {
        case WARDEN_META_STRING:
          if (!e->str) FAIL(field, "expected a string (str is NULL)");
          if (!(v = str_json(e->str, &why))) FAIL(field, "%s", why);
          break;
        case WARDEN_META_INT:
          v = json_integer((json_int_t)e->i);
          break;
        case WARDEN_META_FLOAT:
          if (!isfinite(e->f)) FAIL(field, "expected a finite number");
          v = json_real(e->f);
          break;
        case WARDEN_META_BOOL:
          if (e->i != 0 && e->i != 1) FAIL(field, "a bool is 0 or 1, got %lld", (long long)e->i);
          v = json_boolean(e->i);
          break;
        case WARDEN_META_STRING_LIST:
          if (e->nlist && !e->list) FAIL(field, "list is NULL with nlist = %zu", e->nlist);
          v = json_array();
          for (size_t x = 0; v && x < e->nlist; x++) {
            json_t *s = e->list[x] ? json_string(e->list[x]) : json_null();
            if (!s) {
              json_decref(v);
              FAIL(field, "list string %zu is not valid UTF-8", x);
            }
            json_array_append_new(v, s);
          }
          break;
        default:
          FAIL(field, "unknown type %d (expected a WARDEN_META_* value)", e->type);
      }
      if (!v) {
        rc = wd_err(g->db, WARDEN_ENOMEM, "out of memory");
        goto fail;
      }
      /* json_object_set_new refuses (and frees v for) a key not in UTF-8 */
      if (json_object_set_new(m, e->key, v)) FAIL(field, "key is not valid UTF-8");
    }
  }
  if (d->has_acl) {
    json_t *acl = json_object();
    json_object_set_new(j, "acl", acl);
    const char *const *lists[2] = {d->allow, d->deny};
    size_t ns[2] = {d->nallow, d->ndeny};
    const char *names[2] = {"acl.allow", "acl.deny"};
    for (int w = 0; w < 2; w++) {
      if (ns[w] && !lists[w]) FAIL(names[w], "NULL with %zu entries", ns[w]);
      json_t *a = json_array();
      json_object_set_new(acl, names[w] + 4, a);
      for (size_t x = 0; x < ns[w]; x++) {
        json_t *s = lists[w][x] ? json_string(lists[w][x]) : json_null();
        if (!s) {
          snprintf(field, sizeof field, "%s[%zu]", names[w], x);
          FAIL(field, "not valid UTF-8");
        }
        json_array_append_new(a, s);
      }
    }
  }
  if (d->nchunks && !d->texts) FAIL("chunks", "texts is NULL with nchunks = %zu", d->nchunks);
  json_t *chunks = json_array();
  json_object_set_new(j, "chunks", chunks);
  for (size_t c = 0; c < d->nchunks; c++) {
    json_t *ch = json_object();
    json_array_append_new(chunks, ch);
    if (d->texts[c]) {
      if (!(v = json_string(d->texts[c]))) {
        snprintf(field, sizeof field, "chunks[%zu].text", c);
        FAIL(field, "not valid UTF-8");
      }
      json_object_set_new(ch, "text", v);
    }
  }
#undef SETSTR
#undef FAIL
  *out = j;
  return 0;
fail:
  json_decref(j);
  return rc;
}

int warden_upsert(warden *db, const warden_doc *docs, size_t ndocs,
                  const float *embeddings, size_t nrows,
                  const warden_upsert_opts *opts, warden_ingest_report *report) {
  if (!db) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_err_clear(db);
  if (!docs && ndocs) return wd_err(db, WARDEN_EINVAL, "upsert: docs is NULL with ndocs = %zu", ndocs);
  size_t total = 0;
  for (size_t i = 0; i < ndocs; i++) total += docs[i].nchunks;
  if (embeddings) {
    if (nrows != total)
      return wd_err(db, WARDEN_EINVAL,
                    "upsert: %zu embedding rows for %zu chunks (one row per chunk)", nrows, total);
  } else {
    if (nrows)
      return wd_err(db, WARDEN_EINVAL, "upsert: embeddings is NULL with nrows = %zu", nrows);
    if (db->cfg.embedder == WD_EMBEDDER_NONE && total)
      return wd_err(db, WARDEN_EINVAL,
                    "upsert: embeddings is NULL and the collection has no embedder");
  }
  if (db->read_only) return wd_err(db, WARDEN_EINVAL, "collection was opened read-only");
  wd_ingest g;
  memset(&g, 0, sizeof g);
  g.db = db;
  g.typed = 1;
  g.keep_going = opts && opts->keep_going;
  size_t row = 0, dim = db->cfg.dim;
  rc = 0;
  for (size_t i = 0; i < ndocs && rc >= 0; i++) {
    json_t *j = NULL;
    const float *rows = embeddings ? embeddings + row * dim : NULL;
    row += docs[i].nchunks;
    rc = doc_json(&g, &docs[i], i, &j);
    if (rc == 0) {
      rc = wd_ingest_doc(&g, j, NULL, i, rows);
      json_decref(j);
    }
    if (opts && opts->progress && ((i + 1) % 1024 == 0 || i + 1 == ndocs))
      opts->progress(opts->progress_ctx, i + 1, ndocs);
  }
  return wd_ingest_finish(&g, rc < 0 ? rc : 0, report);
}
