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

#include "engine/ingest.h"

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
      /* the field's name, formatted on error only */
#define FIELD                                                                          \
  (snprintf(field, sizeof field, "metadata.%.*s",                                      \
            (int)(kl > WD_MAX_KEYLEN ? WD_MAX_KEYLEN : kl), e->key),                   \
   field)
      if (json_object_get(m, e->key)) FAIL(FIELD, "duplicate key");
      switch (e->type) {
        case WARDEN_META_STRING:
          if (!e->str) FAIL(FIELD, "expected a string (str is NULL)");
          if (!(v = str_json(e->str, &why))) FAIL(FIELD, "%s", why);
          break;
        case WARDEN_META_INT:
          v = json_integer((json_int_t)e->i);
          break;
        case WARDEN_META_FLOAT:
          if (!isfinite(e->f)) FAIL(FIELD, "expected a finite number");
          v = json_real(e->f);
          break;
        case WARDEN_META_BOOL:
          if (e->i != 0 && e->i != 1) FAIL(FIELD, "a bool is 0 or 1, got %lld", (long long)e->i);
          v = json_boolean(e->i);
          break;
        case WARDEN_META_STRING_LIST:
          if (e->nlist && !e->list) FAIL(FIELD, "list is NULL with nlist = %zu", e->nlist);
          v = json_array();
          for (size_t x = 0; v && x < e->nlist; x++) {
            json_t *s = e->list[x] ? json_string(e->list[x]) : json_null();
            if (!s) {
              json_decref(v);
              FAIL(FIELD, "list string %zu is not valid UTF-8", x);
            }
            json_array_append_new(v, s);
          }
          break;
        default:
          FAIL(FIELD, "unknown type %d (expected a WARDEN_META_* value)", e->type);
      }
      if (!v) {
        rc = wd_err(g->db, WARDEN_ENOMEM, "out of memory");
        goto fail;
      }
      /* json_object_set_new refuses (and frees v for) a key not in UTF-8 */
      if (json_object_set_new(m, e->key, v)) FAIL(FIELD, "key is not valid UTF-8");
#undef FIELD
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

struct warden_bulk {
  warden *db;      /* g.db, which wd_ingest_free clears */
  wd_ingest g;
  uint64_t base;   /* documents given by earlier calls (for docs[I]) */
  uint64_t reserve;
  int failed;      /* an error ended the transaction: commit returns it */
  const warden_upsert_opts *opts;
};

/* Rows and NULLs; WARDEN_EINVAL before anything is looked at. */
static int check_args(warden *db, const warden_doc *docs, size_t ndocs,
                      const float *embeddings, size_t nrows) {
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
  return 0;
}

static int bulk_open(warden *db, const warden_upsert_opts *opts, uint64_t reserve,
                     uint64_t expect, warden_bulk **out) {
  warden_bulk *b = wd_calloc(1, sizeof *b);
  if (!b) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  b->db = db;
  b->g.db = db;
  b->g.typed = 1;
  b->g.keep_going = opts && opts->keep_going;
  b->opts = opts;
  b->reserve = reserve;
  b->g.expect = expect; /* 0: unknown, staged (engine/stage.h) */
  int rc = wd_ingest_begin(&b->g, reserve);
  if (rc) {
    wd_ingest_free(&b->g);
    wd_free(b);
    return rc;
  }
  *out = b;
  return 0;
}

/* Documents [i, i + n) of one call, validated as one pipeline job. */
typedef struct docs_job {
  const warden_doc *docs;
  const float *rows; /* the first document's rows, or NULL */
  size_t n;
  uint64_t at;       /* index of docs[0] across the bulk load */
  size_t dim;
} docs_job;

static int parse_docs(wd_ingest *p, void *arg) {
  docs_job *J = arg;
  const float *rows = J->rows;
  for (size_t i = 0; i < J->n; i++) {
    json_t *j = NULL;
    int rc = doc_json(p, &J->docs[i], J->at + i, &j);
    if (rc == 0) {
      rc = wd_ingest_doc(p, j, NULL, J->at + i, rows);
      json_decref(j);
    }
    if (rc < 0) return rc;
    if (rows) rows += J->docs[i].nchunks * J->dim;
  }
  return 0;
}

/* Validate and apply docs; may return WD_EMAPFULL.  Calls of at least two
 * jobs are pipelined (ingest.h): the worker validates job k+1 while this
 * thread applies job k; the rows are borrowed, so the call flushes. */
static int bulk_add(warden_bulk *b, const warden_doc *docs, size_t ndocs,
                    const float *embeddings) {
  warden *db = b->g.db;
  size_t row = 0, dim = db->cfg.dim, job = wd_pipe_job_size();
  int rc = 0;
  int pipe = wd_pipe_forced() >= 0 && (wd_pipe_forced() > 0 || ndocs >= 2 * job) &&
             wd_pipe_open(&b->g) == 0;
  if (pipe) {
    docs_job jobs[WD_PIPE_JOBS];
    int cur = 0;
    uint64_t applied0 = b->g.applied; /* done: what reached the applier */
    for (size_t i = 0; i < ndocs && !rc; i += job, cur = (cur + 1) % WD_PIPE_JOBS) {
      docs_job *J = &jobs[cur];
      J->docs = docs + i;
      J->n = ndocs - i < job ? ndocs - i : job;
      J->rows = embeddings ? embeddings + row * dim : NULL;
      J->at = b->base + i;
      J->dim = dim;
      for (size_t k = 0; k < J->n; k++) row += docs[i + k].nchunks;
      rc = wd_pipe_submit(&b->g, parse_docs, J);
      if (!rc && b->opts && b->opts->progress)
        b->opts->progress(b->opts->progress_ctx, b->base + (b->g.applied - applied0),
                          b->base + ndocs);
    }
    if (!rc) rc = wd_pipe_flush(&b->g);
    /* on an error the worker may still be reading a job on this stack */
    wd_pipe_wait(&b->g);
    if (!rc && b->opts && b->opts->progress)
      b->opts->progress(b->opts->progress_ctx, b->base + ndocs, b->base + ndocs);
    b->base += ndocs;
    return rc;
  }
  for (size_t i = 0; i < ndocs && rc >= 0; i++) {
    json_t *j = NULL;
    const float *rows = embeddings ? embeddings + row * dim : NULL;
    row += docs[i].nchunks;
    uint64_t at = b->base + i;
    rc = doc_json(&b->g, &docs[i], at, &j);
    if (rc == 0) {
      rc = wd_ingest_doc(&b->g, j, NULL, at, rows);
      json_decref(j);
    }
    /* the rows are borrowed for this call only: apply before returning */
    if (rc >= 0 && (b->g.ndocs >= WD_BATCH || i + 1 == ndocs)) rc = wd_ingest_drain(&b->g);
    if (b->opts && b->opts->progress && ((i + 1) % 1024 == 0 || i + 1 == ndocs))
      b->opts->progress(b->opts->progress_ctx, at + 1, b->base + ndocs);
  }
  b->base += ndocs;
  return rc < 0 ? rc : 0;
}

static int public_code(warden_bulk *b, int rc) {
  if (rc == WD_EMAPFULL)
    return wd_err(b->db, WARDEN_EIO,
                  "bulk load: outgrew the %llu MiB of map reserved for it (pass a larger "
                  "expected_bytes to warden_bulk_begin)",
                  (unsigned long long)(b->reserve >> 20));
  return rc;
}

int warden_bulk_begin(warden *db, const warden_upsert_opts *opts, uint64_t expected_bytes,
                      warden_bulk **out) {
  if (!db || !out) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_err_clear(db);
  if (db->read_only) return wd_err(db, WARDEN_EINVAL, "collection was opened read-only");
  uint64_t reserve = expected_bytes ? 2 * expected_bytes + ((uint64_t)1 << 30) : (uint64_t)64 << 30;
  return bulk_open(db, opts, reserve, expected_bytes, out);
}

int warden_bulk_upsert(warden_bulk *b, const warden_doc *docs, size_t ndocs,
                       const float *embeddings, size_t nrows) {
  if (!b) return WARDEN_EINVAL;
  warden *db = b->db;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_err_clear(db);
  if (b->failed) return wd_err(db, b->failed, "bulk load: an earlier call failed; abort it");
  if ((rc = check_args(db, docs, ndocs, embeddings, nrows))) return rc;
  rc = bulk_add(b, docs, ndocs, embeddings);
  if (rc) {
    rc = public_code(b, rc);
    b->failed = rc;
    wd_ingest_free(&b->g); /* ends the transaction: nothing committed */
  }
  return rc;
}

int warden_bulk_commit(warden_bulk *b, warden_ingest_report *report) {
  if (!b) return WARDEN_EINVAL;
  int rc = b->failed;
  if (!rc) {
    rc = wd_ingest_finish(&b->g, 0, report);
    if (rc) rc = public_code(b, rc);
  }
  wd_ingest_free(&b->g);
  wd_free(b);
  return rc;
}

void warden_bulk_abort(warden_bulk *b) {
  if (!b) return;
  wd_ingest_free(&b->g);
  wd_free(b);
}

int warden_upsert(warden *db, const warden_doc *docs, size_t ndocs,
                  const float *embeddings, size_t nrows,
                  const warden_upsert_opts *opts, warden_ingest_report *report) {
  if (!db) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_err_clear(db);
  if ((rc = check_args(db, docs, ndocs, embeddings, nrows))) return rc;
  /* the rows, texts and records, twice, and room for the bitmaps */
  uint64_t bytes = (uint64_t)(embeddings ? nrows : 0) * db->cfg.dim * sizeof(float);
  for (size_t i = 0; i < ndocs; i++) bytes += 512 + 64 * docs[i].nchunks;
  for (int attempt = 0;; attempt++) {
    uint64_t reserve = (2 * bytes + ((uint64_t)256 << 20)) << (2 * attempt);
    warden_bulk *b;
    if ((rc = bulk_open(db, opts, reserve, bytes + 1, &b))) return rc;
    rc = bulk_add(b, docs, ndocs, embeddings);
    rc = wd_ingest_finish(&b->g, rc, report);
    wd_free(b);
    /* a call's whole input is at hand: replay it with a larger map */
    if (rc != WD_EMAPFULL) return rc;
    if (attempt >= 6)
      return wd_err(db, WARDEN_EIO, "upsert: outgrew the %llu MiB of map reserved for it",
                    (unsigned long long)(reserve >> 20));
  }
}
