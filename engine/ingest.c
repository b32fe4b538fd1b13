/*
 * ingest.c -- JSON Lines documents into the store (SPEC section 3).
 *
 * Two phases.  Phase 1 reads and validates every line with no transaction
 * open: syntax, doc_id, source, namespace, metadata value shapes, principal
 * syntax, embeddings (length, finiteness, non-zero for cosine), duplicates
 * within the input.  Parsed documents keep their embeddings as float arrays
 * (the JSON numbers are dropped to save memory).  Phase 2 applies them in
 * one write transaction: metadata types are checked against the fixed field
 * types (which earlier lines of the same input may have fixed), each old
 * version is removed, new slots are written.  Without keep_going any error
 * aborts the transaction, so nothing from the input is committed.
 *
 * Phase 2 is re-runnable: store_write() reruns it after growing the map.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/worker.h"
#include "engine/doc.h"
#include "engine/embed.h"
#include "engine/ingest.h"
#include "engine/store.h"

#define WD_MAX_LINE (8u << 20) /* 8 MiB: larger lines are refused */
#define WD_MAX_CHUNKS 100000
#define PIPE_MIN_BYTES ((uint64_t)4 << 20) /* smaller JSONL inputs: one thread */

typedef wd_pdoc pdoc;
typedef wd_ingest ingest;

/* One job in flight: its input, and the worker's side of the ingest it
 * fills (docs, ids, errors, bad_lines, fe). */
typedef struct pslot {
  ingest p;
  wd_parse_fn fn;
  void *job;
  int rc; /* the job's: 0 or negative */
  char msg[WD_ERRLEN];
} pslot;

struct wd_pipe {
  wd_worker w;
  pslot s[WD_PIPE_DEPTH];
  uint64_t given, taken; /* jobs given to the worker, taken back */
  size_t job;            /* documents per job (wd_pipe_job_size, read once) */
};

static int apply_batch(ingest *g);

#define SLAB_BLOCK ((size_t)4 << 20)

static void *slab_get(wd_slab *s, size_t n) {
  n = (n + 63) & ~(size_t)63;
  while (s->cur < s->nblk && s->used + n > s->cap[s->cur]) {
    s->cur++;
    s->used = 0;
  }
  if (s->cur == s->nblk) {
    size_t c = n > SLAB_BLOCK ? n : SLAB_BLOCK;
    char **nb = wd_realloc(s->blk, (s->nblk + 1) * sizeof *nb);
    if (!nb) return NULL;
    s->blk = nb;
    size_t *ncap = wd_realloc(s->cap, (s->nblk + 1) * sizeof *ncap);
    if (!ncap) return NULL;
    s->cap = ncap;
    if (!(s->blk[s->nblk] = wd_malloc(c))) return NULL;
    s->cap[s->nblk++] = c;
    s->used = 0;
  }
  void *p = s->blk[s->cur] + s->used;
  s->used += n;
  return p;
}

static const char *doc_id_of(const pdoc *d, size_t *n) {
  const json_t *id = json_object_get(d->rec, "doc_id");
  *n = json_string_length(id);
  return json_string_value(id);
}

/* The index + 1 of the batch's document with doc_id id[0..n), or 0. */
static size_t ids_find(const ingest *g, const char *id, size_t n, uint64_t h) {
  const wd_idset *s = &g->ids;
  if (!s->cap) return 0;
  for (size_t m = s->cap - 1, k = h & m;; k = (k + 1) & m) {
    uint32_t x = s->ix[k];
    if (!x) return 0;
    size_t l;
    const char *o = s->h[k] == h ? doc_id_of(&g->docs[x - 1], &l) : NULL;
    if (o && l == n && memcmp(o, id, n) == 0) return x;
  }
}

static void ids_put(wd_idset *s, uint64_t h, uint32_t x) {
  size_t m = s->cap - 1, k = h & m;
  while (s->ix[k]) k = (k + 1) & m;
  s->ix[k] = x;
  s->h[k] = h;
  s->n++;
}

/* Add document index i (hash h); 0 or -1 out of memory. */
static int ids_add(wd_idset *s, uint64_t h, size_t i) {
  if ((s->n + 1) * 2 > s->cap) {
    wd_idset o = *s;
    s->cap = o.cap ? o.cap * 2 : 1024;
    s->ix = wd_calloc(s->cap, sizeof *s->ix);
    s->h = wd_malloc(s->cap * sizeof *s->h);
    if (!s->ix || !s->h) {
      wd_free(s->ix);
      wd_free(s->h);
      *s = o;
      return -1;
    }
    s->n = 0;
    for (size_t k = 0; k < o.cap; k++)
      if (o.ix[k]) ids_put(s, o.h[k], o.ix[k]);
    wd_free(o.ix);
    wd_free(o.h);
  }
  ids_put(s, h, (uint32_t)(i + 1));
  return 0;
}

static void ids_clear(wd_idset *s) {
  if (s->n) memset(s->ix, 0, s->cap * sizeof *s->ix);
  s->n = 0;
}

static void ids_free(wd_idset *s) {
  wd_free(s->ix);
  wd_free(s->h);
  memset(s, 0, sizeof *s);
}

static void slab_reset(wd_slab *s) {
  s->cur = 0;
  s->used = 0;
}

static void slab_free(wd_slab *s) {
  for (size_t i = 0; i < s->nblk; i++) wd_free(s->blk[i]);
  wd_free(s->blk);
  wd_free(s->cap);
  memset(s, 0, sizeof *s);
}

static void pipe_close(ingest *g);
static void side_free(ingest *g);

static int add_error(ingest *g, const char *msg) {
  size_t n = strlen(msg);
  if (g->errlen + n + 2 > g->errcap) {
    size_t nc = (g->errcap + n + 2) * 2;
    char *e = wd_realloc(g->errors, nc);
    if (!e) return WARDEN_ENOMEM;
    g->errors = e;
    g->errcap = nc;
  }
  if (g->errlen) g->errors[g->errlen++] = '\n';
  memcpy(g->errors + g->errlen, msg, n + 1);
  g->errlen += n;
  return 0;
}

/* Report a bad line: with keep_going collect it, else fail. */
static int vbad(ingest *g, const char *file, uint64_t line, const char *field,
                const char *fmt, va_list ap) {
  char reason[600], msg[900];
  vsnprintf(reason, sizeof reason, fmt, ap);
  if (g->typed)
    snprintf(msg, sizeof msg, "docs[%llu].%s: %s", (unsigned long long)line, field, reason);
  else
    snprintf(msg, sizeof msg, "%s:%llu: %s: %s", file, (unsigned long long)line,
             field, reason);
  if (g->keep_going) {
    g->bad_lines++;
    if (add_error(g, msg)) return wd_err(g->db, WARDEN_ENOMEM, "out of memory");
    return 1; /* skip the line */
  }
  return wd_err(g->db, WARDEN_EDATA, "%s", msg);
}

int wd_ingest_bad(ingest *g, const char *file, uint64_t line, const char *field,
                  const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = vbad(g, file, line, field, fmt, ap);
  va_end(ap);
  return rc;
}
#define bad(...) wd_ingest_bad(__VA_ARGS__)

static int valid_utf8_nonul(const char *s, size_t n) {
  return memchr(s, 0, n) == NULL; /* jansson already checked UTF-8 */
}

static int check_principals(ingest *g, const char *file, uint64_t line,
                            const char *field, const json_t *arr, int allow_star,
                            json_t **out) {
  if (!json_is_array(arr))
    return bad(g, file, line, field, "expected an array of principals");
  json_t *o = json_array();
  size_t i;
  const json_t *p;
  json_array_foreach(arr, i, p) {
    char f[64], why[300]; /* f: the field's name, formatted on error only */
    if (!json_is_string(p)) {
      json_decref(o);
      snprintf(f, sizeof f, "%s[%zu]", field, i);
      return bad(g, file, line, f, "expected a string");
    }
    if (wd_principal_check(json_string_value(p), json_string_length(p),
                           allow_star, why, sizeof why)) {
      json_decref(o);
      snprintf(f, sizeof f, "%s[%zu]", field, i);
      return bad(g, file, line, f, "%s", why);
    }
    int dup = 0;
    size_t j;
    const json_t *q;
    json_array_foreach(o, j, q) if (json_equal(q, p)) dup = 1;
    if (!dup) json_array_append(o, (json_t *)p);
  }
  *out = o;
  return 0;
}

static json_t *strv_json(char **v, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(v[i]));
  return a;
}

/* Validate one decoded line into d.  Returns 0, 1 (skipped, keep_going) or
 * a negative error. */
#define MAX_SOURCE 4096 /* bytes of a source URI */
#define MAX_LIST 1024   /* strings in a string_list metadata value */

/* The document is an object holding only the known fields. */
static int doc_fields(ingest *g, const json_t *j, const char *file, uint64_t line) {
  if (!json_is_object(j)) return bad(g, file, line, "document", "expected a JSON object");
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)j, key, v) {
    if (strcmp(key, "doc_id") && strcmp(key, "source") && strcmp(key, "namespace") &&
        strcmp(key, "metadata") && strcmp(key, "acl") && strcmp(key, "chunks"))
      return bad(g, file, line, key,
                 "unknown field (expected doc_id, source, namespace, metadata, "
                 "acl, chunks)");
  }
  return 0;
}

/* source: a URI (scheme ":" ...) of at most MAX_SOURCE bytes. */
static int doc_source(ingest *g, const json_t *src, const char *file, uint64_t line) {
  if (!json_is_string(src))
    return bad(g, file, line, "source", src ? "expected a string" : "required field is missing");
  const char *s = json_string_value(src);
  size_t n = json_string_length(src), i = 0;
  while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                   (i > 0 && ((s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '-' || s[i] == '.'))))
    i++;
  if (n > MAX_SOURCE)
    return bad(g, file, line, "source", "must be at most %d bytes (got %zu)", MAX_SOURCE, n);
  if (!valid_utf8_nonul(s, n))
    return bad(g, file, line, "source", "contains a NUL character");
  if (i == 0 || i >= n || s[i] != ':')
    return bad(g, file, line, "source",
               "expected a URI such as s3://bucket/key, file:///path or https://...");
  return 0;
}

/* metadata: an object of strings, numbers, booleans and string lists. */
static int doc_metadata(ingest *g, json_t *meta, const char *file, uint64_t line) {
  if (!meta) return 0;
  if (!json_is_object(meta)) return bad(g, file, line, "metadata", "expected an object");
  const char *key;
  json_t *v;
  json_object_foreach(meta, key, v) {
    char f[WD_MAX_KEYLEN + 80];
    size_t kl = strlen(key);
    /* the field's name, formatted on error only */
#undef bad
#define bad(g, file, line, f, ...)                                                         \
  (snprintf(f, sizeof f, "metadata.%.*s", (int)(kl > WD_MAX_KEYLEN ? WD_MAX_KEYLEN : kl), \
            key),                                                                          \
   wd_ingest_bad(g, file, line, f, __VA_ARGS__))
    if (kl == 0 || kl > WD_MAX_KEYLEN)
      return bad(g, file, line, f, "keys must be 1..%d bytes", WD_MAX_KEYLEN);
    if (json_is_string(v)) {
      if (json_string_length(v) > WD_MAX_STRVAL || !valid_utf8_nonul(json_string_value(v), json_string_length(v)))
        return bad(g, file, line, f, "string values must be at most %d bytes, without NUL", WD_MAX_STRVAL);
    } else if (json_is_array(v)) {
      if (json_array_size(v) > MAX_LIST)
        return bad(g, file, line, f, "lists hold at most %d strings", MAX_LIST);
      size_t i;
      json_t *e;
      json_array_foreach(v, i, e) {
        if (!json_is_string(e)) return bad(g, file, line, f, "lists may only hold strings (string_list)");
        if (json_string_length(e) > WD_MAX_STRVAL || !valid_utf8_nonul(json_string_value(e), json_string_length(e)))
          return bad(g, file, line, f, "list strings must be at most %d bytes, without NUL", WD_MAX_STRVAL);
      }
    } else if (!json_is_integer(v) && !json_is_real(v) && !json_is_boolean(v)) {
      return bad(g, file, line, f, "expected a string, number, boolean or list of strings");
    }
#undef bad
#define bad(...) wd_ingest_bad(__VA_ARGS__)
  }
  return 0;
}

/* acl: {allow, deny} checked by the principal grammar, or the
 * collection's default_acl.  *allow and *deny are new references. */
static int doc_acl(ingest *g, const json_t *j, const char *file, uint64_t line, json_t **allow,
                   json_t **deny) {
  warden *db = g->db;
  json_t *acl = json_object_get(j, "acl");
  int rc;
  *allow = *deny = NULL;
  if (!acl) {
    if (!db->cfg.has_default_acl)
      return bad(g, file, line, "acl", "required (the collection has no default_acl)");
    *allow = strv_json(db->cfg.default_allow, db->cfg.ndefault_allow);
    *deny = strv_json(db->cfg.default_deny, db->cfg.ndefault_deny);
    return 0;
  }
  if (!json_is_object(acl)) return bad(g, file, line, "acl", "expected an object with allow and deny");
  const char *key;
  json_t *v;
  json_object_foreach(acl, key, v) if (strcmp(key, "allow") && strcmp(key, "deny"))
    return bad(g, file, line, "acl", "unknown field \"%s\" (expected allow, deny)", key);
  json_t *a = json_object_get(acl, "allow");
  if (!a) return bad(g, file, line, "acl.allow", "required field is missing");
  if ((rc = check_principals(g, file, line, "acl.allow", a, 1, allow))) return rc;
  json_t *dn = json_object_get(acl, "deny");
  if (!dn) {
    *deny = json_array();
    return 0;
  }
  if ((rc = check_principals(g, file, line, "acl.deny", dn, 0, deny))) {
    json_decref(*allow);
    *allow = NULL;
  }
  return rc;
}

/* The embedding of chunk c (its text t, its "embedding" e, may be NULL)
 * into out: the caller's row (typed path), the embedder's, the one
 * wd_fastemb_scan parsed, or the JSON array; then checked (vecnorm.c). */
static int chunk_embedding(ingest *g, const char *file, uint64_t line, size_t c, const json_t *t,
                           const json_t *e, int typed, float *out) {
  warden *db = g->db;
  unsigned dim = db->cfg.dim;
  char f[80]; /* the field's name, formatted on error only */
#undef bad
#define bad(g, file, line, f, ...) \
  (snprintf(f, sizeof f, "chunks[%zu].embedding", c), wd_ingest_bad(g, file, line, f, __VA_ARGS__))
  if (typed) {
    /* the typed path: the caller's row, checked below like a parsed one */
  } else if (!e) {
    if (db->cfg.embedder == WD_EMBEDDER_NONE)
      return bad(g, file, line, f, "missing, and the collection has no embedder");
    wd_embed_hash(json_string_value(t), json_string_length(t), out, dim);
  } else if (!json_is_array(e)) {
    return bad(g, file, line, f, "expected an array of numbers");
  } else if (json_array_size(e) == 0 && g->fe.next < g->fe.narr) {
    /* parsed by wd_fastemb_scan, its text blanked to [] */
    size_t cnt = g->fe.cnt[g->fe.next], off = g->fe.off;
    g->fe.next++;
    g->fe.off += cnt;
    if (cnt != dim)
      return bad(g, file, line, f, "has %zu values, the collection's dimension is %u", cnt, dim);
    /* only now: a literal [] is an entry of 0 values, and when no line had
     * values yet fe.v is NULL (NULL + 0 is undefined; fuzz_ingest found it) */
    memcpy(out, g->fe.v + off, dim * sizeof *out);
  } else if (json_array_size(e) != dim) {
    return bad(g, file, line, f, "has %zu values, the collection's dimension is %u",
               json_array_size(e), dim);
  } else {
    for (size_t i = 0; i < dim; i++) {
      json_t *x = json_array_get(e, i);
      if (!json_is_number(x)) return bad(g, file, line, f, "value %zu is not a number", i);
      out[i] = (float)json_number_value(x);
    }
  }
  char why[200]; /* finite, not underflowing or overflowing (vecnorm.c) */
  if (wd_vec_check(out, dim, db->cfg.metric, why, sizeof why))
    return bad(g, file, line, f, "%s", why);
#undef bad
#define bad(...) wd_ingest_bad(__VA_ARGS__)
  return 0;
}

/* chunks: 1..WD_MAX_CHUNKS objects {text, embedding}; fills d->texts and
 * d->emb (rows, when given, are the embeddings: the typed path). */
static int doc_chunks(ingest *g, const json_t *chunks, const char *file, uint64_t line,
                      const float *rows, pdoc *d) {
  unsigned dim = g->db->cfg.dim;
  if (!json_is_array(chunks) || json_array_size(chunks) == 0 ||
      json_array_size(chunks) > WD_MAX_CHUNKS)
    return bad(g, file, line, "chunks",
               chunks ? "expected a non-empty array of {text, embedding}" : "required field is missing");
  size_t nc = json_array_size(chunks);
  d->emb = rows ? (float *)rows : slab_get(&g->emb, nc * dim * sizeof(float));
  d->emb_borrowed = 1; /* the caller's rows, or the batch's slab */
  d->texts = json_array();
  if (!d->emb || !d->texts) return wd_err(g->db, WARDEN_ENOMEM, "out of memory");
  for (size_t c = 0; c < nc; c++) {
    json_t *ch = json_array_get(chunks, c);
    char f[80]; /* the field's name, formatted on error only */
    if (!json_is_object(ch)) {
      snprintf(f, sizeof f, "chunks[%zu]", c);
      return bad(g, file, line, f, "expected an object {text, embedding}");
    }
    const char *key;
    json_t *v;
    json_object_foreach(ch, key, v) if (strcmp(key, "text") && strcmp(key, "embedding")) {
      snprintf(f, sizeof f, "chunks[%zu]", c);
      return bad(g, file, line, f, "unknown field \"%s\" (expected text, embedding)", key);
    }
    json_t *t = json_object_get(ch, "text");
    if (!json_is_string(t)) {
      snprintf(f, sizeof f, "chunks[%zu].text", c);
      return bad(g, file, line, f, t ? "expected a string" : "required field is missing");
    }
    json_array_append(d->texts, t);
    int rc = chunk_embedding(g, file, line, c, t, json_object_get(ch, "embedding"), rows != NULL,
                             d->emb + c * dim);
    if (rc) return rc;
  }
  d->nchunks = nc;
  return 0;
}

/* One input document, validated completely, as a record ready to write:
 * fields, doc_id, source, namespace, metadata, acl, chunks. */
static int parse_doc(ingest *g, json_t *j, const char *file, uint64_t line,
                     const float *rows, pdoc *d) {
  int rc;
  if ((rc = doc_fields(g, j, file, line))) return rc;
  json_t *id = json_object_get(j, "doc_id");
  if (!json_is_string(id)) return bad(g, file, line, "doc_id", id ? "expected a string" : "required field is missing");
  size_t idlen = json_string_length(id);
  if (idlen == 0 || idlen > WD_MAX_DOCID)
    return bad(g, file, line, "doc_id", "must be 1..%d bytes", WD_MAX_DOCID);
  if (!valid_utf8_nonul(json_string_value(id), idlen))
    return bad(g, file, line, "doc_id", "contains a NUL character");
  json_t *src = json_object_get(j, "source");
  if ((rc = doc_source(g, src, file, line))) return rc;
  char ns[WD_MAX_NAMESPACE + 1], why[300];
  json_t *nsj = json_object_get(j, "namespace");
  if (nsj && !json_is_string(nsj)) return bad(g, file, line, "namespace", "expected a string");
  if (wd_namespace_check(nsj ? json_string_value(nsj) : "/", nsj ? json_string_length(nsj) : 1,
                     ns, why, sizeof why))
    return bad(g, file, line, "namespace", "%s", why);
  json_t *meta = json_object_get(j, "metadata");
  if ((rc = doc_metadata(g, meta, file, line))) return rc;
  json_t *allow, *deny;
  if ((rc = doc_acl(g, j, file, line, &allow, &deny))) return rc;
  if ((rc = doc_chunks(g, json_object_get(j, "chunks"), file, line, rows, d))) {
    json_decref(allow);
    json_decref(deny);
    json_decref(d->texts);
    if (!d->emb_borrowed) wd_free(d->emb);
    d->texts = NULL;
    d->emb = NULL;
    return rc;
  }
  d->rec = json_object();
  json_object_set(d->rec, "doc_id", id);
  json_object_set(d->rec, "source", src);
  json_object_set_new(d->rec, "namespace", json_string(ns));
  json_object_set_new(d->rec, "metadata", meta ? json_incref(meta) : json_object());
  json_object_set_new(d->rec, "allow", allow);
  json_object_set_new(d->rec, "deny", deny);
  d->file = file;
  d->line = line;
  return 0;
}

static void pdoc_free(pdoc *d) {
  json_decref(d->rec);
  json_decref(d->texts);
  if (!d->emb_borrowed) wd_free(d->emb);
}

/* Where a document of this call came from, as one nonzero number: the
 * typed path's index + 1, or the JSONL path's input file (its position in
 * g->files, which holds the caller's path strings) and line.  0 means out
 * of memory.  A duplicate doc_id names the first copy's FILE:LINE with it,
 * also when the first copy is in another input of the same call. */
#define WD_WHERE_LINE_BITS 40
#define WD_WHERE_LEN 64
static uint64_t where_code(ingest *g, const char *file, uint64_t line) {
  if (g->typed) return line + 1;
  size_t fi = 0;
  while (fi < g->nfiles && g->files[fi] != file) fi++;
  if (fi == g->nfiles) {
    if (g->nfiles == g->files_cap) {
      size_t nc = g->files_cap ? g->files_cap * 2 : 4;
      const char **nf = wd_realloc(g->files, nc * sizeof *nf);
      if (!nf) return 0;
      g->files = nf;
      g->files_cap = nc;
    }
    g->files[g->nfiles++] = file;
  }
  return ((uint64_t)fi << WD_WHERE_LINE_BITS) | (line & ((1ull << WD_WHERE_LINE_BITS) - 1));
}

/* "FILE:LINE" or "docs[I]" for a where_code. */
static const char *where_name(const ingest *g, uint64_t code, char *buf, size_t len) {
  if (g->typed) {
    snprintf(buf, len, "docs[%llu]", (unsigned long long)(code - 1));
  } else {
    size_t fi = (size_t)(code >> WD_WHERE_LINE_BITS);
    const char *f = fi < g->nfiles ? g->files[fi] : "?";
    size_t fl = strlen(f);
    /* keep the end of a long path: it is the part that tells files apart */
    int cut = fl > len - 24;
    snprintf(buf, len, "%s%s:%llu", cut ? "..." : "", cut ? f + fl - (len - 27) : f,
             (unsigned long long)(code & ((1ull << WD_WHERE_LINE_BITS) - 1)));
  }
  return buf;
}

/* Count d's chunk tokens into the batch's lexpre (lexical.h): here, on the
 * thread that parses, not on the one that holds the write transaction.
 * 0, or -1 out of memory (d->lex_first is then SIZE_MAX). */
static int count_tokens(ingest *g, pdoc *d) {
  d->lex_first = SIZE_MAX;
  if (!g->db->have_lex) return 0;
  if (!g->lx_ok) {
    if (wd_lexer_init(&g->lx, g->db->cfg.lex_language)) return -1;
    g->lx_ok = 1;
  }
  size_t first = g->lexpre.nch;
  for (size_t c = 0; c < d->nchunks; c++) {
    const json_t *t = json_array_get(d->texts, c);
    if (wd_lex_pre_add(&g->lexpre, &g->lx, json_string_value(t), json_string_length(t))) {
      g->lexpre.nch = first; /* what it counted stays unused */
      return -1;
    }
  }
  d->lex_first = first;
  return 0;
}

int wd_ingest_doc(ingest *g, json_t *j, const char *file, uint64_t line,
                  const float *rows) {
  if (g->nstale) { /* applied by a pipelined call, not yet freed */
    for (size_t i = 0; i < g->nstale; i++) pdoc_free(&g->docs[i]);
    g->nstale = 0;
    slab_reset(&g->emb);
    wd_lex_pre_reset(&g->lexpre);
    ids_clear(&g->ids);
  }
  if (g->ndocs == g->cap) {
    size_t nc = g->cap ? g->cap * 2 : 64;
    pdoc *nd = wd_realloc(g->docs, nc * sizeof *nd);
    if (!nd) return wd_err(g->db, WARDEN_ENOMEM, "out of memory");
    g->docs = nd;
    g->cap = nc;
  }
  pdoc *d = &g->docs[g->ndocs];
  memset(d, 0, sizeof *d);
  int rc = parse_doc(g, j, file, line, rows, d);
  if (rc) return rc;
  size_t idl;
  const char *ids = doc_id_of(d, &idl);
  uint64_t h = wd_hash64(ids, idl, 0x9e3779b97f4a7c15ull);
  size_t prev = ids_find(g, ids, idl, h);
  if (prev) {
    pdoc_free(d);
    const pdoc *first = &g->docs[prev - 1];
    uint64_t code = where_code(g, first->file, first->line);
    char at[WD_WHERE_LEN];
    if (!code) return wd_err(g->db, WARDEN_ENOMEM, "out of memory");
    return bad(g, file, line, "doc_id", "duplicate of %s in this input",
               where_name(g, code, at, sizeof at));
  }
  if (ids_add(&g->ids, h, g->ndocs) || count_tokens(g, d)) {
    pdoc_free(d);
    return wd_err(g->db, WARDEN_ENOMEM, "out of memory");
  }
  g->ndocs++;
  return 0;
}

static int parse_line(ingest *g, const char *file, uint64_t line,
                      const char *buf, size_t len) {
  /* the embedding arrays are parsed on the side (fastemb.h); jansson
   * reads the rest, or the whole line again when it refuses the rest */
  json_error_t je;
  json_t *j = NULL;
  if (wd_fastemb_scan(&g->fe, buf, len) == 0 && g->fe.len)
    j = json_loadb(g->fe.line, g->fe.len, JSON_REJECT_DUPLICATES, &je);
  if (!j) {
    g->fe.narr = 0;
    j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
  }
  if (!j) {
    /* jansson says "end of file expected" etc.; keep its words */
    return bad(g, file, line, "json", "%s (column %d)", je.text, je.column);
  }
  int rc = wd_ingest_doc(g, j, file, line, NULL);
  json_decref(j);
  return rc;
}

static int handle_line(ingest *g, const char *file, uint64_t line,
                       const char *buf, size_t len) {
  int rc = parse_line(g, file, line, buf, len);
  if (rc == 0 && g->ndocs >= WD_BATCH) rc = wd_ingest_drain(g);
  return rc;
}

/* One job of lines for the pipeline: their text, and where each is. */
#define LINE_TOO_LONG ((size_t)-1)
typedef struct lines_job {
  const char *name;
  char *text;
  size_t tlen, tcap;
  struct jline {
    size_t off, len; /* len LINE_TOO_LONG: refused, no text */
    uint64_t line;
  } *l;
  size_t n, cap;
} lines_job;

static int parse_lines(ingest *p, void *arg) {
  lines_job *J = arg;
  for (size_t i = 0; i < J->n; i++) {
    const struct jline *l = &J->l[i];
    int rc = l->len == LINE_TOO_LONG
                 ? bad(p, J->name, l->line, "line", "longer than %u bytes", WD_MAX_LINE)
                 : parse_line(p, J->name, l->line, J->text + l->off, l->len);
    if (rc < 0) return rc;
  }
  return 0;
}

/* Queue one line (text NULL: too long) into jobs[*cur]; a full job goes to
 * the worker and the next one of the ring (free: ingest.h) is filled. */
static int queue_line(ingest *g, lines_job *jobs, int *cur, const char *name, uint64_t line,
                      const char *text, size_t len) {
  lines_job *J = &jobs[*cur];
  if (J->n == J->cap) {
    size_t nc = J->cap ? J->cap * 2 : 256;
    struct jline *nl = wd_realloc(J->l, nc * sizeof *nl);
    if (!nl) return wd_err(g->db, WARDEN_ENOMEM, "out of memory");
    J->l = nl;
    J->cap = nc;
  }
  if (text && J->tlen + len > J->tcap) {
    size_t nc = J->tcap ? J->tcap : (size_t)1 << 20;
    while (nc < J->tlen + len) nc *= 2;
    char *nt = wd_realloc(J->text, nc);
    if (!nt) return wd_err(g->db, WARDEN_ENOMEM, "out of memory");
    J->text = nt;
    J->tcap = nc;
  }
  J->name = name;
  J->l[J->n].off = J->tlen;
  J->l[J->n].len = text ? len : LINE_TOO_LONG;
  J->l[J->n].line = line;
  J->n++;
  if (text) {
    memcpy(J->text + J->tlen, text, len);
    J->tlen += len;
  }
  /* by lines, and by bytes: a job's text stays small beside the map */
  if (J->n < g->pipe->job && J->tlen < ((size_t)32 << 20)) return 0;
  int rc = wd_pipe_submit(g, parse_lines, J);
  *cur = (*cur + 1) % WD_PIPE_JOBS;
  jobs[*cur].n = 0;
  jobs[*cur].tlen = 0;
  return rc;
}

static void progress(ingest *g, uint64_t lines, uint64_t bytes) {
  if (g->opts && g->opts->progress)
    g->opts->progress(g->opts->progress_ctx, lines, bytes, g->size_total);
}

/* Read lines from one source (FILE or buffer).  Lines longer than
 * WD_MAX_LINE are refused without being held in memory. */
static int read_stream(ingest *g, const char *name, FILE *f, const char *mem,
                       size_t memlen) {
  char *buf = NULL, *blk = NULL;
  size_t cap = 0, len = 0, mpos = 0, bpos = 0, bfill = 0;
  uint64_t line = 0, nonblank = 0;
  int rc = 0, too_long = 0, eof = 0, cur = 0;
  lines_job jobs[WD_PIPE_JOBS];
  memset(jobs, 0, sizeof jobs);
  const size_t BLK = (size_t)1 << 20;
  while (!eof) {
    len = 0;
    too_long = 0;
    int got = 0;
    for (;;) { /* one line: pieces up to the next '\n' */
      const char *src;
      size_t avail;
      if (f) {
        if (bpos == bfill) {
          if (!blk && !(blk = wd_malloc(BLK))) {
            rc = wd_err(g->db, WARDEN_ENOMEM, "out of memory");
            goto out;
          }
          bfill = fread(blk, 1, BLK, f);
          bpos = 0;
          if (bfill == 0) {
            if (ferror(f)) {
              rc = wd_err(g->db, WARDEN_EIO, "%s: read error: %s", name, strerror(errno));
              goto out;
            }
            eof = 1;
            break;
          }
        }
        src = blk + bpos;
        avail = bfill - bpos;
      } else {
        if (mpos >= memlen) {
          eof = 1;
          break;
        }
        src = mem + mpos;
        avail = memlen - mpos;
      }
      got = 1;
      const char *nl = memchr(src, '\n', avail);
      size_t take = nl ? (size_t)(nl - src) : avail, used = take + (nl != NULL);
      g->bytes_total += used;
      if (f) bpos += used;
      else mpos += used;
      if (!too_long) {
        if (len + take > WD_MAX_LINE) {
          too_long = 1; /* refused without being held in memory */
        } else if (take) {
          if (len + take + 1 > cap) {
            size_t nc = cap ? cap : 4096;
            while (nc < len + take + 1) nc *= 2;
            char *nb = wd_realloc(buf, nc);
            if (!nb) {
              rc = wd_err(g->db, WARDEN_ENOMEM, "out of memory");
              goto out;
            }
            buf = nb;
            cap = nc;
          }
          memcpy(buf + len, src, take);
          len += take;
        }
      }
      if (nl) break;
    }
    if (!got) break;
    line++;
    g->lines_total++;
    if ((g->lines_total & 1023) == 0) progress(g, g->lines_total, g->bytes_total);
    if (too_long) {
      nonblank++;
      rc = g->pipe ? queue_line(g, jobs, &cur, name, line, NULL, 0)
                   : bad(g, name, line, "line", "longer than %u bytes", WD_MAX_LINE);
      if (rc < 0) goto out;
      rc = 0;
      continue;
    }
    size_t s = 0;
    while (s < len && (buf[s] == ' ' || buf[s] == '\t' || buf[s] == '\r')) s++;
    if (s == len) continue; /* blank lines are ignored */
    nonblank++;
    rc = g->pipe ? queue_line(g, jobs, &cur, name, line, buf + s, len - s)
                 : handle_line(g, name, line, buf + s, len - s);
    if (rc < 0) goto out;
    rc = 0;
  }
  if (g->pipe) { /* this input's last lines, applied before its end is judged */
    if (jobs[cur].n) rc = wd_pipe_submit(g, parse_lines, &jobs[cur]);
    if (!rc) rc = wd_pipe_flush(g);
    if (rc < 0) goto out;
  }
  if (nonblank == 0) {
    rc = bad(g, name, line ? line : 1, "input", "no documents (empty input)");
    if (rc > 0) rc = 0;
  }
out:
  /* the worker may still be reading a job: it must end before the jobs go */
  if (g->pipe) wd_pipe_wait(g);
  for (int k = 0; k < WD_PIPE_JOBS; k++) {
    wd_free(jobs[k].text);
    wd_free(jobs[k].l);
  }
  wd_free(buf);
  wd_free(blk);
  return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------- phase 2 */

/* Check (and fix, for new fields) metadata types of one document. */
static int check_types(wd_txn *tx, pdoc *d, char *field, size_t fl, char *why,
                       size_t wl) {
  const char *key;
  json_t *v;
  json_object_foreach(json_object_get(d->rec, "metadata"), key, v) {
    wd_type have = json_is_string(v) ? WD_T_STRING
                   : json_is_integer(v) ? WD_T_INT
                   : json_is_real(v) ? WD_T_FLOAT
                   : json_is_boolean(v) ? WD_T_BOOL
                                        : WD_T_STRING_LIST;
    wd_type t = store_field_type(tx, key);
    if (t == WD_T_NONE) {
      int rc = store_field_type_put(tx, key, have);
      if (rc) return rc;
      continue;
    }
    if (t == have || (t == WD_T_FLOAT && have == WD_T_INT)) continue;
    snprintf(field, fl, "metadata.%s", key);
    snprintf(why, wl, "expected %s (the field's type), got %s", wd_type_name(t),
             wd_type_name(have));
    return 1;
  }
  return 0;
}

/* Remember that document d of this call now owns slots from first on, so
 * that a later batch repeating its doc_id is told which line it repeats. */
static int note_written(ingest *g, uint64_t first, uint64_t where) {
  int rc = wd_seqlog_add(&g->wlog, first, where);
  if (rc == -2) /* slots only ascend, and every document has a chunk */
    return wd_err(g->db, WARDEN_EINTERNAL, "ingest: first slot %llu after %llu",
                  (unsigned long long)first, (unsigned long long)g->wlog.last_key);
  return rc ? wd_err(g->db, WARDEN_ENOMEM, "out of memory") : 0;
}

/* The line (or index) of the document of this call whose first slot is
 * first; 0 when none. */
static int written_where(const ingest *g, uint64_t first, uint64_t *where) {
  return wd_seqlog_find(&g->wlog, first, where);
}

/* Apply the queued documents to the open transaction and free them. */
static int apply_batch(ingest *g) {
  wd_txn *tx = &g->tx;
  warden *db = g->db;
  int rc = 0;
  uint64_t staged = 0; /* bytes of new data (stage.h) */
  g->applied += g->ndocs;
  for (size_t i = 0; i < g->ndocs && !rc; i++) {
    pdoc *d = &g->docs[i];
    char field[WD_MAX_KEYLEN + 16], why[400];
    rc = check_types(tx, d, field, sizeof field, why, sizeof why);
    if (rc > 0) {
      rc = bad(g, d->file, d->line, field, "%s", why);
      if (rc > 0) rc = 0;
      continue;
    }
    if (rc) break;
    json_t *id = json_object_get(d->rec, "doc_id");
    const char *ids = json_string_value(id);
    size_t idl = json_string_length(id);
    json_t *old = NULL;
    /* staged: a replacement waits for publish (stage.h); a second
     * occurrence of its doc_id in this input is a duplicate */
    uintptr_t rfirst = g->st.on ? (uintptr_t)wd_hmap_get(&g->st.repl_ids, ids, idl) : 0;
    int defer = 0;
    if (rfirst) {
      uint64_t where;
      char at[WD_WHERE_LEN];
      if (written_where(g, rfirst - 1, &where))
        rc = bad(g, d->file, d->line, "doc_id", "duplicate of %s in this input",
                 where_name(g, where, at, sizeof at));
      else
        rc = bad(g, d->file, d->line, "doc_id", "duplicate in this input");
      if (rc > 0) rc = 0;
      continue;
    }
    rc = store_doc_get(tx, ids, idl, &old);
    if (rc == 0 && g->st.on) {
      json_t *s0 = json_array_get(json_object_get(old, "slots"), 0);
      if (!(json_is_integer(s0) && (uint64_t)json_integer_value(s0) >= g->start_slot)) {
        json_decref(old);
        defer = 1;
        g->replaced++;
        rc = WARDEN_ENOTFOUND; /* written below as new, stored at publish */
      }
    }
    if (rc == 0) {
      /* written by an earlier batch of this same input? */
      json_t *s0 = json_array_get(json_object_get(old, "slots"), 0);
      uint64_t where;
      if (json_is_integer(s0) && (uint64_t)json_integer_value(s0) >= g->start_slot &&
          written_where(g, (uint64_t)json_integer_value(s0), &where)) {
        json_decref(old);
        char at[WD_WHERE_LEN];
        rc = bad(g, d->file, d->line, "doc_id", "duplicate of %s in this input",
                 where_name(g, where, at, sizeof at));
        if (rc > 0) rc = 0;
        continue;
      }
      rc = doc_remove(tx, old);
      json_decref(old);
      if (rc) break;
      g->replaced++;
    } else if (rc != WARDEN_ENOTFOUND) {
      break;
    }
    rc = 0;
    if (tx->next_slot + d->nchunks > WD_MAX_SLOTS) {
      rc = wd_err(db, WARDEN_EIO, "collection is full (%u chunk slots used)",
                  (unsigned)tx->next_slot);
      break;
    }
    uint64_t wcode = where_code(g, d->file, d->line);
    if (!wcode) {
      rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
      break;
    }
    if ((rc = note_written(g, tx->next_slot, wcode))) break;
    json_t *slots = json_array();
    for (size_t c = 0; c < d->nchunks && !rc; c++) {
      uint32_t s = (uint32_t)tx->next_slot++;
      json_array_append_new(slots, json_integer(s));
      json_t *t = json_array_get(d->texts, c);
      if (!(rc = store_chunk_put(tx, s, (uint32_t)c, ids, idl, json_string_value(t),
                                 json_string_length(t))))
        rc = store_vec_put(tx, s, d->emb + c * db->cfg.dim);
    }
    if (rc) {
      json_decref(slots);
      break;
    }
    json_object_set_new(d->rec, "slots", slots);
    uint64_t first = json_integer_value(json_array_get(slots, 0));
    tx->lex_pre = d->lex_first == SIZE_MAX ? NULL : &g->lexpre;
    tx->lex_pre_first = d->lex_first;
    rc = doc_index(tx, d->rec, 1);
    tx->lex_pre = NULL;
    if (!rc && defer) {
      /* the stage keeps the record (with its slots) for the publish txn;
       * the document goes on with a copy (ids points into it) */
      json_t *copy = json_deep_copy(d->rec);
      if (!copy || json_array_append(g->st.repl, d->rec)) {
        json_decref(copy);
        rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
      } else {
        if (wd_hmap_put(&g->st.repl_ids, ids, idl, (void *)(uintptr_t)(first + 1), NULL))
          rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
        json_decref(d->rec);
        d->rec = copy;
      }
    } else if (!rc) {
      rc = store_doc_put(tx, ids, idl, d->rec);
    }
    if (rc) break;
    json_object_del(d->rec, "slots");
    tx->ndocs++;
    tx->nchunks += d->nchunks;
    g->written++;
    g->chunks += d->nchunks;
    staged += 512 + d->nchunks * ((uint64_t)db->cfg.dim * sizeof(float) + 64);
    for (size_t c = 0; c < d->nchunks; c++)
      staged += json_string_length(json_array_get(d->texts, c));
  }
  if (g->pipe)
    g->nstale = g->ndocs; /* freed by the worker, beside its parsing */
  else {
    for (size_t i = 0; i < g->ndocs; i++) pdoc_free(&g->docs[i]);
    slab_reset(&g->emb);
    wd_lex_pre_reset(&g->lexpre);
  }
  g->ndocs = 0;
  ids_clear(&g->ids);
  /* blocks are written once full; bitmaps when many are dirty */
  if (!rc) rc = store_write_spill(tx, WD_SPILL_BITMAPS);
  /* staged: commit this staging txn once it holds enough */
  if (!rc) rc = wd_stage_step(&g->st, tx, staged);
  return rc;
}

/* ------------------------------------------------------------ pipeline */

int wd_pipe_forced(void) {
  const char *e = getenv("WARDEN_INGEST_PIPE");
  if (!e || !*e) return 0;
  return strcmp(e, "0") == 0 ? -1 : 1;
}

size_t wd_pipe_job_size(void) {
  const char *e = getenv("WARDEN_INGEST_PIPE");
  if (e && *e) {
    char *end;
    unsigned long v = strtoul(e, &end, 10);
    if (*end == 0 && v >= 1 && v <= WD_BATCH) return v;
  }
  return WD_BATCH;
}

int wd_pipe_open(ingest *g) {
  if (g->pipe) return 0;
  if (wd_pipe_forced() < 0) return -1;
  if (wd_pipe_forced() == 0 && sysconf(_SC_NPROCESSORS_ONLN) < 2) return -1;
  struct wd_pipe *q = wd_calloc(1, sizeof *q);
  if (!q) return -1;
  for (int k = 0; k < WD_PIPE_DEPTH; k++) {
    q->s[k].p.db = g->db;
    q->s[k].p.keep_going = g->keep_going;
    q->s[k].p.typed = g->typed;
  }
  q->job = wd_pipe_job_size();
  if (wd_worker_start(&q->w)) {
    wd_free(q);
    return -1;
  }
  g->pipe = q;
  return 0;
}

/* On the worker: free what the calling thread applied from this slot's
 * last job, then parse. */
static void pipe_job(void *arg) {
  pslot *sl = arg;
  ingest *p = &sl->p;
  for (size_t i = 0; i < p->nstale; i++) pdoc_free(&p->docs[i]);
  p->nstale = 0;
  slab_reset(&p->emb);
  wd_lex_pre_reset(&p->lexpre);
  ids_clear(&p->ids); /* duplicates within one job, as within one batch */
  sl->rc = sl->fn(p, sl->job);
  if (sl->rc > 0) sl->rc = 0;
  if (sl->rc < 0) snprintf(sl->msg, sizeof sl->msg, "%s", warden_errmsg(p->db));
}

void wd_pipe_wait(ingest *g) {
  if (g->pipe) wd_worker_wait(&g->pipe->w);
}

/* Wait for the oldest job given; its errors join g's, its documents
 * become g's batch (and g's applied ones go to its slot to be freed);
 * apply them. */
static int pipe_take(ingest *g) {
  struct wd_pipe *q = g->pipe;
  wd_worker_wait_for(&q->w, q->taken + 1);
  pslot *sl = &q->s[q->taken % WD_PIPE_DEPTH];
  ingest *p = &sl->p;
  q->taken++;
  if (p->errlen) {
    if (add_error(g, p->errors)) return wd_err(g->db, WARDEN_ENOMEM, "out of memory");
    p->errlen = 0;
  }
  g->bad_lines += p->bad_lines;
  p->bad_lines = 0;
  if (sl->rc < 0) return wd_err(g->db, sl->rc, "%s", sl->msg);
  pdoc *d = g->docs;
  size_t cap = g->cap, stale = g->ndocs > g->nstale ? g->ndocs : g->nstale;
  g->docs = p->docs;
  g->cap = p->cap;
  g->ndocs = p->ndocs;
  g->nstale = 0;
  p->docs = d;
  p->cap = cap;
  p->ndocs = 0;
  p->nstale = stale;
  wd_slab es = g->emb; /* the embeddings go with their documents */
  g->emb = p->emb;
  p->emb = es;
  wd_lexpre lp = g->lexpre; /* and so do their tokens (the lexers stay) */
  g->lexpre = p->lexpre;
  p->lexpre = lp;
  return g->ndocs ? apply_batch(g) : 0;
}

int wd_pipe_submit(ingest *g, wd_parse_fn fn, void *job) {
  struct wd_pipe *q = g->pipe;
  if (q->given - q->taken == WD_PIPE_DEPTH) {
    int rc = pipe_take(g);
    if (rc) return rc;
  }
  pslot *sl = &q->s[q->given % WD_PIPE_DEPTH];
  sl->fn = fn;
  sl->job = job;
  sl->rc = 0;
  q->given++;
  wd_worker_run(&q->w, pipe_job, sl);
  return 0;
}

int wd_pipe_flush(ingest *g) {
  if (!g->pipe) return 0;
  int rc = 0;
  while (!rc && g->pipe->taken < g->pipe->given) rc = pipe_take(g);
  return rc;
}

static void pipe_close(ingest *g) {
  struct wd_pipe *q = g->pipe;
  if (!q) return;
  wd_worker_stop(&q->w);
  for (int k = 0; k < WD_PIPE_DEPTH; k++) side_free(&q->s[k].p);
  wd_free(q);
  g->pipe = NULL;
}

int wd_ingest_begin(ingest *g, uint64_t reserve) {
  /* one ingest at a time, for its whole length (stage.h); leftovers of a
   * killed staged ingest go first */
  if (g->db->read_only) return wd_err(g->db, WARDEN_EINVAL, "collection was opened read-only");
  int rc = wd_stage_lock(g->db, &g->lockfd);
  if (rc) return rc;
  g->locked = 1;
  rc = wd_stage_reclaim(g->db);
  if (!rc) rc = store_reserve(g->db, reserve);
  if (!rc) rc = store_write_begin(g->db, &g->tx);
  if (rc) return rc;
  g->open = 1;
  g->start_slot = g->tx.next_slot;
  if (g->expect == 0 || g->expect > wd_stage_cap())
    rc = wd_stage_start(&g->st, g->db, &g->tx);
  return rc;
}

int wd_ingest_drain(ingest *g) {
  if (!g->open) return wd_err(g->db, WARDEN_EINTERNAL, "ingest: no transaction");
  return apply_batch(g);
}

/* What parsing fills: the batch's documents (queued or applied and not yet
 * freed), doc_id index, errors, file names, embedding slab and scratch. */
static void side_free(ingest *g) {
  for (size_t i = 0; i < (g->ndocs > g->nstale ? g->ndocs : g->nstale); i++)
    pdoc_free(&g->docs[i]);
  wd_free(g->docs);
  ids_free(&g->ids);
  wd_free(g->errors);
  wd_free(g->files);
  wd_fastemb_free(&g->fe);
  slab_free(&g->emb);
  wd_lex_pre_free(&g->lexpre);
  if (g->lx_ok) wd_lexer_free(&g->lx);
  g->lx_ok = 0;
}

void wd_ingest_free(ingest *g) {
  pipe_close(g);
  if (g->open) store_write_abort(&g->tx);
  g->open = 0;
  /* a staged ingest that did not publish removes what it staged (an
   * error here leaves it to the next ingest) */
  if (g->st.on && g->st.ntxn) (void)wd_stage_reclaim(g->db);
  wd_stage_free(&g->st);
  if (g->locked) wd_stage_unlock(&g->lockfd);
  side_free(g);
  wd_seqlog_free(&g->wlog);
  memset(g, 0, sizeof *g);
}

int wd_ingest_finish(ingest *g, int rc, warden_ingest_report *report) {
  uint64_t rev = 0;
  if (!rc && g->pipe) rc = wd_pipe_flush(g);
  if (!rc && g->ndocs) rc = wd_ingest_drain(g);
  if (!rc) {
    rc = g->st.on ? wd_stage_publish(&g->st, &g->tx, &rev) : store_write_commit(&g->tx, &rev);
    g->open = 0;
    if (!rc) g->st.ntxn = 0; /* published: nothing to reclaim */
  }
  if (!rc && report) {
    memset(report, 0, sizeof *report);
    report->documents = g->written;
    report->replaced = g->replaced;
    report->chunks = g->chunks;
    report->bad_lines = g->bad_lines;
    report->revision = rev;
    report->errors = g->errors;
    g->errors = NULL;
  }
  wd_ingest_free(g);
  return rc;
}

/* Bytes of map to reserve for an input of n bytes (JSONL or rows):
 * embeddings as floats take less than their decimal text, records and
 * bitmaps little; twice the input and 256 MiB covers it, and a replayable
 * input that still outgrows it is replayed with a larger map. */
static uint64_t reserve_for(uint64_t n, int attempt) {
  uint64_t r = 2 * n + ((uint64_t)256 << 20);
  return r << (attempt * 2);
}

static int run_once(warden *db, ingest *g, const char *const *paths, size_t npaths,
                    const char *bufname, const char *buf, size_t buflen, uint64_t reserve) {
  int rc = wd_ingest_begin(g, reserve);
  if (rc) return rc;
  /* parse on a second thread unless the input is small (or of unknown
   * size: standard input); one thread otherwise, or when there is none */
  if (wd_pipe_forced() > 0 || g->expect == 0 || g->size_total >= PIPE_MIN_BYTES)
    (void)wd_pipe_open(g);
  if (paths) {
    for (size_t i = 0; i < npaths && !rc; i++) {
      int is_stdin = strcmp(paths[i], "-") == 0;
      FILE *f = is_stdin ? stdin : fopen(paths[i], "rb");
      if (!f) {
        rc = wd_err(db, WARDEN_EIO, "%s: %s", paths[i], strerror(errno));
        break;
      }
      rc = read_stream(g, is_stdin ? "<stdin>" : paths[i], f, NULL, 0);
      if (!is_stdin) fclose(f);
    }
  } else {
    rc = read_stream(g, bufname, NULL, buf, buflen);
  }
  progress(g, g->lines_total, g->bytes_total);
  return rc;
}

static int run(warden *db, const warden_ingest_opts *opts, const char *const *paths,
               size_t npaths, const char *bufname, const char *buf, size_t buflen,
               warden_ingest_report *report) {
  uint64_t size_total = 0;
  int has_stdin = 0;
  if (paths) {
    for (size_t i = 0; i < npaths; i++) {
      struct stat st;
      if (strcmp(paths[i], "-") == 0)
        has_stdin = 1;
      else if (stat(paths[i], &st) == 0)
        size_total += (uint64_t)st.st_size;
    }
  } else {
    size_total = buflen;
  }
  for (int attempt = 0;; attempt++) {
    ingest g;
    memset(&g, 0, sizeof g);
    g.db = db;
    g.opts = opts;
    g.keep_going = opts && opts->keep_going;
    g.size_total = size_total;
    g.expect = has_stdin ? 0 : size_total + 1;
    /* standard input cannot be replayed: reserve generously up front */
    uint64_t reserve = has_stdin ? ((uint64_t)64 << 30) : reserve_for(size_total, attempt);
    int rc = run_once(db, &g, paths, npaths, bufname, buf, buflen, reserve);
    rc = wd_ingest_finish(&g, rc, report);
    if (rc != WD_EMAPFULL) return rc;
    if (has_stdin || attempt >= 6)
      return wd_err(db, WARDEN_EIO,
                    "ingest: the input outgrew the %llu MiB of map reserved for it",
                    (unsigned long long)(reserve >> 20));
  }
}

int warden_ingest(warden *db, const char *const *paths, size_t npaths,
                  const warden_ingest_opts *opts, warden_ingest_report *report) {
  if (!db) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_err_clear(db);
  static const char *const dash[] = {"-"};
  if (!paths || npaths == 0) {
    paths = dash;
    npaths = 1;
  }
  return run(db, opts, paths, npaths, NULL, NULL, 0, report);
}

int warden_ingest_buffer(warden *db, const char *name, const char *buf,
                         size_t len, const warden_ingest_opts *opts,
                         warden_ingest_report *report) {
  if (!db || (!buf && len)) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_err_clear(db);
  return run(db, opts, NULL, 0, name ? name : "<buffer>", buf ? buf : "", len, report);
}
