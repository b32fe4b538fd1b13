/*
 * ingest_npy.c -- `warden ingest DIR META.jsonl --vectors EMB.npy`: ingest
 * lines without embeddings whose chunks take their embeddings, in file
 * order, from the rows of a float32 or float16 .npy array.
 *
 * Pass 1 reads META once to count its chunks (and refuses lines that
 * cannot be read or that carry an embedding of their own), so that the row
 * count and the dimension are checked against EMB.npy before anything is
 * written.  Pass 2 turns each line into a warden_doc (strings borrowed
 * from the parsed line) and feeds batches of them, with their rows as a
 * pointer into the mapped file (float16 converted batch by batch), to one
 * warden_bulk_* load: one transaction, all or nothing, validated by the
 * library's one validator.  Its "docs[I].field: reason" errors are
 * printed as "META:LINE: field: reason".  Pass 2 parses on a reader
 * thread, one batch ahead of the calling thread, which holds the load's
 * write transaction and was the ingest's bottleneck (its parse was ~8 % of
 * that thread at 1M x 384).  Memory: two batches of parsed lines, 16 bytes
 * per skipped (blank or bad) line for the line map, the library's bounded
 * batch; the mapping's pages are given back as rows are consumed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "jskim.h"
#include "npy.h"

/* A batch is one warden_bulk_upsert call, and the library's pipeline
 * drains at the end of each call (its first job is validated while the
 * applying thread waits), so batches are large; rows are bounded by bytes
 * too, for the float16 conversion buffers (two batches), and by META
 * bytes, for the parsed lines (two batches of 16 MiB). */
#define NPY_BATCH_DOCS 65536
#define NPY_BATCH_ROWS 65536
#define NPY_BATCH_BYTES ((uint64_t)64 << 20)
#define NPY_BATCH_TEXT ((uint64_t)16 << 20) /* META bytes: long chunk texts */

/* Documents per batch: NPY_BATCH_DOCS, or WARDEN_NPY_BATCH (1..65536; the
 * tests use small batches so that many pass between the two threads). */
static size_t batch_docs(void) {
  const char *e = getenv("WARDEN_NPY_BATCH");
  long v = e && *e ? strtol(e, NULL, 10) : 0;
  return v >= 1 && v <= NPY_BATCH_DOCS ? (size_t)v : NPY_BATCH_DOCS;
}

int cli_ingest_npy(const char *ctx, const char *dir, const char *meta, const char *vectors,
                   int keep_going);

/* A bump allocator for one batch's pointer arrays. */
typedef struct arena {
  char *buf;
  size_t used, cap;
  char **old; /* earlier buffers, freed with the arena */
  size_t nold;
} arena;

static void *arena_get(arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (a->used + n > a->cap) {
    if (a->buf) {
      a->old = cli_xrealloc(a->old, (a->nold + 1) * sizeof *a->old);
      a->old[a->nold++] = a->buf;
    }
    a->cap = n > (1u << 20) ? n : (1u << 20);
    a->buf = cli_xmalloc(a->cap);
    a->used = 0;
  }
  void *p = a->buf + a->used;
  a->used += n;
  return p;
}

static void *arena_cb(void *a, size_t n) { return arena_get(a, n); }

static void arena_reset(arena *a) {
  for (size_t i = 0; i < a->nold; i++) free(a->old[i]);
  a->nold = 0;
  a->used = 0;
}

static void arena_free(arena *a) {
  arena_reset(a);
  free(a->old);
  free(a->buf);
}

/* One error line, kept with its line number so errors print in file order. */
typedef struct err_list {
  uint64_t *line;
  char **msg;
  size_t n, cap;
} err_list;

static void err_add(err_list *e, uint64_t line, char *msg) {
  if (e->n == e->cap) {
    e->cap = e->cap ? e->cap * 2 : 16;
    e->line = cli_xrealloc(e->line, e->cap * sizeof *e->line);
    e->msg = cli_xrealloc(e->msg, e->cap * sizeof *e->msg);
  }
  e->line[e->n] = line;
  e->msg[e->n++] = msg;
}

static const char *str_of(const json_t *v, int *has_nul) {
  const char *s = json_string_value(v);
  *has_nul = strlen(s) != json_string_length(v);
  return s;
}

/* Turn one parsed META line into d (pointers into j and the arena).
 * Returns 0, or 1 with field/why set: a shape the JSON path refuses with
 * the same words (the library checks everything else). */
static int to_doc(json_t *j, arena *ar, warden_doc *d, char *field, size_t fl, char *why,
                  size_t wl) {
  memset(d, 0, sizeof *d);
  int nul = 0;
#define BAD(F, ...)                            \
  do {                                         \
    snprintf(field, fl, "%s", F);              \
    snprintf(why, wl, __VA_ARGS__);            \
    return 1;                                  \
  } while (0)
  if (!json_is_object(j)) BAD("document", "expected a JSON object");
  const char *key;
  json_t *v;
  json_object_foreach(j, key, v) {
    if (strcmp(key, "doc_id") && strcmp(key, "source") && strcmp(key, "namespace") &&
        strcmp(key, "metadata") && strcmp(key, "acl") && strcmp(key, "chunks"))
      BAD(key, "unknown field (expected doc_id, source, namespace, metadata, acl, chunks)");
  }
  static const char *const sf[3] = {"doc_id", "source", "namespace"};
  const char **sd[3] = {&d->doc_id, &d->source, &d->namespace_};
  for (int i = 0; i < 3; i++) {
    v = json_object_get(j, sf[i]);
    if (!v) continue;
    if (!json_is_string(v)) BAD(sf[i], "expected a string");
    *sd[i] = str_of(v, &nul);
    if (nul) {
      if (i == 0) BAD(sf[i], "contains a NUL character");
      if (i == 1) BAD(sf[i], "expected a URI such as s3://bucket/key, file:///path or https://...");
      BAD(sf[i], "control character in namespace");
    }
  }
  json_t *m = json_object_get(j, "metadata");
  if (m) {
    if (!json_is_object(m)) BAD("metadata", "expected an object");
    size_t n = json_object_size(m), k = 0;
    warden_meta *mv = arena_get(ar, (n ? n : 1) * sizeof *mv);
    json_object_foreach(m, key, v) {
      warden_meta *e = &mv[k++];
      memset(e, 0, sizeof *e);
      e->key = key;
      char f[200]; /* the field's name, formatted on error only */
#define F (snprintf(f, sizeof f, "metadata.%.128s", key), f)
      if (json_is_string(v)) {
        e->type = WARDEN_META_STRING;
        e->str = str_of(v, &nul);
        if (nul) BAD(F, "string values must be at most 256 bytes, without NUL");
      } else if (json_is_integer(v)) {
        e->type = WARDEN_META_INT;
        e->i = json_integer_value(v);
      } else if (json_is_real(v)) {
        e->type = WARDEN_META_FLOAT;
        e->f = json_real_value(v);
      } else if (json_is_boolean(v)) {
        e->type = WARDEN_META_BOOL;
        e->i = json_is_true(v);
      } else if (json_is_array(v)) {
        e->type = WARDEN_META_STRING_LIST;
        e->nlist = json_array_size(v);
        const char **l = arena_get(ar, (e->nlist ? e->nlist : 1) * sizeof *l);
        for (size_t x = 0; x < e->nlist; x++) {
          json_t *s = json_array_get(v, x);
          l[x] = json_is_string(s) ? str_of(s, &nul) : NULL; /* NULL: "lists may only hold strings" */
          if (json_is_string(s) && nul) BAD(F, "list strings must be at most 256 bytes, without NUL");
        }
        e->list = l;
      } else {
        BAD(F, "expected a string, number, boolean or list of strings");
      }
#undef F
    }
    d->metadata = mv;
    d->nmetadata = n;
  }
  json_t *acl = json_object_get(j, "acl");
  if (acl) {
    if (!json_is_object(acl)) BAD("acl", "expected an object with allow and deny");
    json_object_foreach(acl, key, v) if (strcmp(key, "allow") && strcmp(key, "deny"))
      BAD("acl", "unknown field \"%s\" (expected allow, deny)", key);
    d->has_acl = 1;
    static const char *const af[2] = {"acl.allow", "acl.deny"};
    for (int w = 0; w < 2; w++) {
      json_t *a = json_object_get(acl, af[w] + 4);
      if (!a) {
        if (w == 0) BAD(af[w], "required field is missing");
        continue;
      }
      if (!json_is_array(a)) BAD(af[w], "expected an array of principals");
      size_t n = json_array_size(a);
      const char **l = arena_get(ar, (n ? n : 1) * sizeof *l);
      for (size_t x = 0; x < n; x++) {
        json_t *s = json_array_get(a, x);
        l[x] = json_is_string(s) ? json_string_value(s) : NULL; /* NULL: "expected a string" */
      }
      if (w == 0) {
        d->allow = l;
        d->nallow = n;
      } else {
        d->deny = l;
        d->ndeny = n;
      }
    }
  }
  json_t *ch = json_object_get(j, "chunks");
  if (!ch) BAD("chunks", "required field is missing");
  if (!json_is_array(ch) || json_array_size(ch) == 0)
    BAD("chunks", "expected a non-empty array of {text, embedding}");
  size_t n = json_array_size(ch);
  const char **t = arena_get(ar, n * sizeof *t);
  for (size_t c = 0; c < n; c++) {
    json_t *o = json_array_get(ch, c);
    char f[64]; /* the field's name, formatted on error only */
#define F(W) (snprintf(f, sizeof f, W ? "chunks[%zu].text" : "chunks[%zu]", c), f)
    if (!json_is_object(o)) BAD(F(0), "expected an object {text, embedding}");
    json_object_foreach(o, key, v) if (strcmp(key, "text"))
      BAD(F(0), "unknown field \"%s\" (expected text)", key);
    json_t *tx = json_object_get(o, "text");
    if (tx && !json_is_string(tx)) BAD(F(1), "expected a string");
    t[c] = tx ? str_of(tx, &nul) : NULL;
    if (tx && nul) BAD(F(1), "contains a NUL character (not supported with --vectors)");
#undef F
  }
  d->texts = t;
  d->nchunks = n;
#undef BAD
  return 0;
}

/* Document index -> META line.  Documents are lines in order, so line =
 * index + a shift that changes only after a skipped (blank or bad) line:
 * only those changes are kept. */
typedef struct linemap {
  struct lm_step { uint64_t from, shift; } *v; /* documents from on: + shift */
  size_t n, cap;
  uint64_t ndocs;
} linemap;

static void linemap_add(linemap *m, uint64_t line) {
  uint64_t shift = line - m->ndocs;
  if (!m->n || m->v[m->n - 1].shift != shift) {
    if (m->n == m->cap) {
      m->cap = m->cap ? m->cap * 2 : 64;
      m->v = cli_xrealloc(m->v, m->cap * sizeof *m->v);
    }
    m->v[m->n++] = (struct lm_step){m->ndocs, shift};
  }
  m->ndocs++;
}

static uint64_t linemap_get(const linemap *m, uint64_t doc) {
  size_t lo = 0, hi = m->n; /* the last step with from <= doc */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (m->v[mid].from <= doc) lo = mid;
    else hi = mid;
  }
  return doc + m->v[lo].shift;
}

/* "docs[I].rest" -> "META:LINE: rest", and "docs[J]" inside rest -> "line L". */
static char *map_msg(const char *meta, const char *msg, const linemap *lm, uint64_t *line_out) {
  uint64_t nlines = lm->ndocs;
  unsigned long long i;
  int off = 0;
  *line_out = 0;
  if (sscanf(msg, "docs[%llu].%n", &i, &off) != 1 || off == 0 || i >= nlines) {
    char *s = cli_xmalloc(strlen(meta) + strlen(msg) + 4);
    sprintf(s, "%s: %s", meta, msg);
    return s;
  }
  *line_out = linemap_get(lm, i);
  const char *rest = msg + off;
  char tail[1200];
  const char *dup = strstr(rest, "duplicate of docs[");
  unsigned long long jx;
  if (dup && sscanf(dup, "duplicate of docs[%llu]", &jx) == 1 && jx < nlines) {
    snprintf(tail, sizeof tail, "%.*sduplicate of line %llu in this input", (int)(dup - rest),
             rest, (unsigned long long)linemap_get(lm, jx));
    rest = tail;
  }
  char *s = cli_xmalloc(strlen(meta) + strlen(rest) + 32);
  sprintf(s, "%s:%llu: %s", meta, (unsigned long long)*line_out, rest);
  return s;
}

/* Pass 2's reader thread: it parses META into batches of documents (and
 * converts float16 rows) while the calling thread loads the batch before
 * into the library; two batches alternate.  The line map, the error list
 * and the bad-line count are the reader's until it has stopped. */
typedef struct batch {
  warden_doc *docs;
  json_t **js; /* each document's jansson tree, NULL when skimmed */
  size_t nb;
  arena ar;
  float *conv;
  size_t conv_rows;
  const float *rows;
  uint64_t row0, nrows; /* its rows in EMB.npy */
  uint64_t text;        /* bytes of META lines in it */
  uint64_t ln, bytes;   /* lines and bytes read when it was cut */
  char *fatal;          /* ends the ingest after this batch */
  int fatal_rc, fatal_ctx;
  int send; /* 0: the documents are not loaded (the fatal error comes first) */
  int last;
} batch;

typedef struct reader {
  FILE *f;
  const char *meta;
  cli_npy *npy;
  int keep_going, need_conv;
  size_t batch; /* documents per batch */
  uint64_t batch_rows; /* rows per batch (at least one document's) */
  linemap *lines;
  err_list *errs;
  uint64_t bad;
  batch b[2];
  int ready[2]; /* filled by the reader, not yet taken back */
  int stop;     /* the loader gave up */
  int running;
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} reader;

static void batch_clear(batch *B, uint64_t row) {
  for (size_t i = 0; i < B->nb; i++) json_decref(B->js[i]);
  B->nb = 0;
  arena_reset(&B->ar);
  free(B->fatal);
  B->fatal = NULL;
  B->fatal_rc = B->fatal_ctx = 0;
  B->send = 1;
  B->last = 0;
  B->row0 = row;
  B->nrows = 0;
  B->text = 0;
}

/* Hand slot i to the loader; then wait for slot j to come back (NULL:
 * the loader stopped). */
static batch *reader_pass(reader *R, int i, int j) {
  batch *B = &R->b[i];
  if (B->send && B->nb) {
    if (R->need_conv && B->nrows > B->conv_rows) {
      B->conv_rows = B->nrows;
      free(B->conv);
      B->conv = cli_xmalloc(B->conv_rows * R->npy->cols * sizeof *B->conv);
    }
    B->rows = cli_npy_rows(R->npy, B->row0, B->nrows, B->conv);
  }
  pthread_mutex_lock(&R->mu);
  R->ready[i] = 1;
  pthread_cond_broadcast(&R->cv);
  if (j >= 0)
    while (R->ready[j] && !R->stop) pthread_cond_wait(&R->cv, &R->mu);
  int stop = R->stop;
  pthread_mutex_unlock(&R->mu);
  return stop || j < 0 ? NULL : &R->b[j];
}

static char *fmt_msg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  if (!s) {
    fputs("warden: out of memory\n", stderr);
    exit(CLI_EXIT_RUNTIME);
  }
  return s;
}

static void *read_meta(void *arg) {
  reader *R = arg;
  const char *meta = R->meta;
  char *line = NULL;
  size_t lcap = 0;
  uint64_t ln = 0, bytes = 0, row = 0;
  int cur = 0;
  batch *B = &R->b[0];
  batch_clear(B, 0);
  for (;;) {
    ssize_t got = getline(&line, &lcap, R->f);
    int eof = got < 0;
    json_t *j = NULL;
    uint64_t rows_of = 0;
    /* the usual line is read without a jansson tree (jskim.h): fast */
    int fast = 0;
    size_t s = 0, len = 0;
    if (!eof) {
      ln++;
      bytes += (uint64_t)got;
      len = (size_t)got;
      while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
      while (s < len && (line[s] == ' ' || line[s] == '\t')) s++;
      if (s == len) continue;
      jskim_doc sk;
      if ((fast = jskim_doc_line(line + s, len - s, &sk))) rows_of = sk.chunks_array ? sk.nchunks : 0;
    }
    if (!eof && !fast) {
    jansson:;
      json_error_t je;
      j = json_loadb(line + s, len - s, JSON_REJECT_DUPLICATES, &je);
      if (!j) { /* the file changed since pass 1 */
        B->fatal = fmt_msg("%s:%llu: json: %s (column %d)", meta, (unsigned long long)ln,
                           je.text, je.column);
        B->fatal_rc = CLI_EXIT_DATA;
        B->send = 0;
        break;
      }
      json_t *ch = json_object_get(j, "chunks");
      uint64_t r = json_is_array(ch) ? json_array_size(ch) : 0;
      if (fast && r != rows_of) { /* cannot be: the skim counts as jansson does */
        B->fatal = fmt_msg("%s:%llu: internal error: %llu chunks skimmed, %llu parsed", meta,
                           (unsigned long long)ln, (unsigned long long)rows_of,
                           (unsigned long long)r);
        B->fatal_rc = CLI_EXIT_RUNTIME;
        B->fatal_ctx = 1;
        B->send = 0;
        json_decref(j);
        break;
      }
      rows_of = r;
      fast = 0;
    }
    /* pass the batch on at the end, or when this line would overfill it */
    if (B->nb && (eof || B->nb >= R->batch || B->nrows + rows_of > R->batch_rows ||
                   B->text >= NPY_BATCH_TEXT)) {
      B->ln = ln;
      B->bytes = bytes;
      if (!(B = reader_pass(R, cur, cur ^ 1))) {
        json_decref(j);
        goto out;
      }
      cur ^= 1;
      batch_clear(B, row);
    }
    if (eof) break;
    /* a shape the fast reader leaves to to_doc: jansson's tree after all */
    if (fast && !jskim_doc_parse(line + s, len - s, 1, arena_cb, &B->ar, &B->docs[B->nb]))
      goto jansson;
    char field[256], why[512];
    if (!fast && to_doc(j, &B->ar, &B->docs[B->nb], field, sizeof field, why, sizeof why)) {
      char *msg = fmt_msg("%s:%llu: %s: %s", meta, (unsigned long long)ln, field, why);
      json_decref(j);
      if (!R->keep_going) { /* after the documents before it, so that an
                             * earlier bad line is reported first */
        B->fatal = msg;
        B->fatal_rc = CLI_EXIT_DATA;
        break;
      }
      err_add(R->errs, ln, msg);
      R->bad++;
      /* its rows are skipped: a batch's rows are contiguous */
      row += rows_of;
      if (B->nb) {
        B->ln = ln;
        B->bytes = bytes;
        if (!(B = reader_pass(R, cur, cur ^ 1))) goto out;
        cur ^= 1;
      }
      batch_clear(B, row);
      continue;
    }
    linemap_add(R->lines, ln);
    B->text += len;
    B->js[B->nb++] = j;
    row += rows_of;
    B->nrows += rows_of;
  }
  /* the last batch: at the end, or with the error that ends the ingest */
  B->ln = ln;
  B->bytes = bytes;
  B->last = 1;
  reader_pass(R, cur, -1);
out:
  free(line);
  return NULL;
}

/* Stop the reader (it is waiting for a slot, or done) and wait for it. */
static void reader_stop(reader *R) {
  if (!R || !R->running) return;
  pthread_mutex_lock(&R->mu);
  R->stop = 1;
  pthread_cond_broadcast(&R->cv);
  pthread_mutex_unlock(&R->mu);
  pthread_join(R->th, NULL);
  R->running = 0;
}

static void reader_free(reader *R) {
  if (!R) return;
  reader_stop(R);
  for (int i = 0; i < 2; i++) {
    batch *B = &R->b[i];
    if (B->js) batch_clear(B, 0);
    arena_free(&B->ar);
    free(B->js);
    free(B->docs);
    free(B->conv);
  }
  pthread_mutex_destroy(&R->mu);
  pthread_cond_destroy(&R->cv);
  free(R);
}

static int cmp_err(const void *a, const void *b, void *ctx) {
  const uint64_t *ln = ctx;
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return ln[x] < ln[y] ? -1 : ln[x] > ln[y] ? 1 : (x < y ? -1 : x > y);
}

int cli_ingest_npy(const char *ctx, const char *dir, const char *meta, const char *vectors,
                   int keep_going) {
  char err[1024];
  cli_npy npy;
  int rc = cli_npy_open(vectors, &npy, err, sizeof err);
  if (rc) {
    cli_err(ctx, "%s", err);
    return rc == 3 ? CLI_EXIT_DATA : CLI_EXIT_RUNTIME;
  }
  FILE *f = NULL;
  warden *db = NULL;
  warden_bulk *bulk = NULL;
  char *line = NULL;
  size_t lcap = 0;
  linemap lines = {0};
  err_list errs = {0};
  reader *R = NULL;
  struct stat st;
  uint64_t meta_size = stat(meta, &st) == 0 ? (uint64_t)st.st_size : 0;

  if ((rc = cli_open(ctx, dir, 0, &db)) != 0) goto done;
  if (npy.cols != warden_dimension(db)) {
    cli_err(ctx, "%s: rows of %llu values, the collection's dimension is %u", vectors,
            (unsigned long long)npy.cols, warden_dimension(db));
    rc = CLI_EXIT_DATA;
    goto done;
  }
  /* pass 1: count chunks; refuse what would leave the rows unaligned */
  f = fopen(meta, "rb");
  if (!f) {
    cli_err(ctx, "%s: %s", meta, strerror(errno));
    rc = CLI_EXIT_RUNTIME;
    goto done;
  }
  uint64_t ln = 0, nchunks = 0, ndocs = 0;
  ssize_t got;
  while ((got = getline(&line, &lcap, f)) >= 0) {
    ln++;
    size_t s = 0, len = (size_t)got;
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    while (s < len && (line[s] == ' ' || line[s] == '\t')) s++;
    if (s == len) continue;
    /* the usual line is checked without building its tree (jskim.h);
     * what the skim is unsure of goes to jansson, as before */
    jskim_doc sk;
    if (jskim_doc_line(line + s, len - s, &sk)) {
      ndocs++;
      if (sk.emb_chunk) {
        cli_err(NULL,
                "%s:%llu: chunks[%llu].embedding: not allowed with --vectors (the "
                "embeddings are the rows of %s)",
                meta, (unsigned long long)ln, (unsigned long long)(sk.emb_chunk - 1), vectors);
        rc = CLI_EXIT_DATA;
        goto done;
      }
      if (sk.chunks_array) nchunks += sk.nchunks;
      continue;
    }
    json_error_t je;
    json_t *j = json_loadb(line + s, len - s, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
      cli_err(NULL, "%s:%llu: json: %s (column %d)", meta, (unsigned long long)ln, je.text,
              je.column);
      rc = CLI_EXIT_DATA;
      goto done;
    }
    ndocs++;
    json_t *ch = json_object_get(j, "chunks");
    if (json_is_array(ch)) {
      for (size_t c = 0; c < json_array_size(ch); c++)
        if (json_object_get(json_array_get(ch, c), "embedding")) {
          cli_err(NULL,
                  "%s:%llu: chunks[%zu].embedding: not allowed with --vectors (the "
                  "embeddings are the rows of %s)",
                  meta, (unsigned long long)ln, c, vectors);
          json_decref(j);
          rc = CLI_EXIT_DATA;
          goto done;
        }
      nchunks += json_array_size(ch);
    }
    json_decref(j);
  }
  if (ferror(f)) {
    cli_err(ctx, "%s: read error: %s", meta, strerror(errno));
    rc = CLI_EXIT_RUNTIME;
    goto done;
  }
  if (ndocs == 0) {
    cli_err(NULL, "%s:%llu: input: no documents (empty input)", meta,
            (unsigned long long)(ln ? ln : 1));
    rc = CLI_EXIT_DATA;
    goto done;
  }
  if (nchunks != npy.rows) {
    cli_err(ctx, "%s: %llu rows for the %llu chunks of %s (one row per chunk, in file order)",
            vectors, (unsigned long long)npy.rows, (unsigned long long)nchunks, meta);
    rc = CLI_EXIT_DATA;
    goto done;
  }
  /* pass 2: batches into one bulk load, parsed on a reader thread */
  rewind(f);
  warden_upsert_opts uo = {.keep_going = keep_going};
  uint64_t expect = npy.rows * npy.cols * 4 + meta_size;
  int wrc = warden_bulk_begin(db, &uo, expect, &bulk);
  if (wrc) {
    rc = cli_lib_err(db, ctx, wrc);
    goto done;
  }
  cli_progress prog;
  cli_progress_init(&prog, ctx);
  R = cli_xmalloc(sizeof *R);
  memset(R, 0, sizeof *R);
  R->f = f;
  R->meta = meta;
  R->npy = &npy;
  R->keep_going = keep_going;
  R->batch = batch_docs();
  R->batch_rows = NPY_BATCH_BYTES / (npy.cols * sizeof(float));
  if (R->batch_rows > NPY_BATCH_ROWS) R->batch_rows = NPY_BATCH_ROWS;
  if (R->batch_rows < 1) R->batch_rows = 1;
  R->lines = &lines;
  R->errs = &errs;
  R->need_conv = npy.itemsize != 4 || ((uintptr_t)npy.data & 3);
  for (int i = 0; i < 2; i++) {
    R->b[i].js = cli_xmalloc(NPY_BATCH_DOCS * sizeof *R->b[i].js);
    R->b[i].docs = cli_xmalloc(NPY_BATCH_DOCS * sizeof *R->b[i].docs);
  }
  pthread_mutex_init(&R->mu, NULL);
  pthread_cond_init(&R->cv, NULL);
  if (pthread_create(&R->th, NULL, read_meta, R) != 0) {
    cli_err(ctx, "cannot start a thread: %s", strerror(errno));
    rc = CLI_EXIT_RUNTIME;
    goto done;
  }
  R->running = 1;
  for (int cur = 0;; cur ^= 1) {
    batch *B = &R->b[cur];
    pthread_mutex_lock(&R->mu);
    while (!R->ready[cur]) pthread_cond_wait(&R->cv, &R->mu);
    pthread_mutex_unlock(&R->mu);
    if (B->send && B->nb) {
      wrc = warden_bulk_upsert(bulk, B->docs, B->nb, B->rows, B->nrows);
      if (wrc) {
        reader_stop(R); /* the line map is the reader's until it is done */
        if (wrc == WARDEN_EDATA) {
          /* the message names docs[I]: say FILE:LINE instead */
          uint64_t l;
          char *m = map_msg(meta, warden_errmsg(db), &lines, &l);
          cli_err(NULL, "%s", m);
          free(m);
          rc = CLI_EXIT_DATA;
        } else {
          rc = cli_lib_err(db, ctx, wrc);
        }
        goto done;
      }
      cli_npy_release(&npy, B->row0 + B->nrows);
      cli_progress_cb(&prog, B->ln, B->bytes, meta_size);
    }
    if (B->fatal) {
      reader_stop(R);
      cli_err(B->fatal_ctx ? ctx : NULL, "%s", B->fatal);
      rc = B->fatal_rc;
      goto done;
    }
    int last = B->last;
    pthread_mutex_lock(&R->mu);
    R->ready[cur] = 0;
    pthread_cond_broadcast(&R->cv);
    pthread_mutex_unlock(&R->mu);
    if (last) break;
  }
  reader_stop(R);
  cli_progress_done(&prog);
  warden_ingest_report rep = {0};
  wrc = warden_bulk_commit(bulk, &rep);
  bulk = NULL;
  if (wrc) {
    rc = cli_lib_err(db, wrc == WARDEN_EDATA ? NULL : ctx, wrc);
    goto done;
  }
  /* the library's errors, named by line, with ours, in file order */
  const char *p = rep.errors;
  while (p && *p) {
    size_t len = strcspn(p, "\n");
    char *one = cli_xmalloc(len + 1);
    memcpy(one, p, len);
    one[len] = 0;
    uint64_t l;
    err_add(&errs, 0, map_msg(meta, one, &lines, &l));
    errs.line[errs.n - 1] = l;
    free(one);
    p += len;
    if (*p) p++;
  }
  warden_free(rep.errors);
  size_t *order = cli_xmalloc((errs.n ? errs.n : 1) * sizeof *order);
  for (size_t i = 0; i < errs.n; i++) order[i] = i;
  qsort_r(order, errs.n, sizeof *order, cmp_err, errs.line);
  for (size_t i = 0; i < errs.n; i++) cli_err(NULL, "%s", errs.msg[order[i]]);
  free(order);
  json_t *out = json_object();
  json_object_set_new(out, "documents", json_integer((json_int_t)rep.documents));
  json_object_set_new(out, "replaced", json_integer((json_int_t)rep.replaced));
  json_object_set_new(out, "chunks", json_integer((json_int_t)rep.chunks));
  json_object_set_new(out, "bad_lines", json_integer((json_int_t)(rep.bad_lines + R->bad)));
  json_object_set_new(out, "revision", json_integer((json_int_t)rep.revision));
  rc = cli_print_json(out);
  if (rc == 0 && rep.bad_lines + R->bad > 0) rc = CLI_EXIT_DATA;
done:
  reader_free(R); /* first: it reads f */
  if (bulk) warden_bulk_abort(bulk);
  if (db) warden_close(db);
  if (f) fclose(f);
  free(line);
  free(lines.v);
  for (size_t i = 0; i < errs.n; i++) free(errs.msg[i]);
  free(errs.msg);
  free(errs.line);
  cli_npy_close(&npy);
  return rc;
}
