/*
 * restore.c -- exports that lose nothing, and the import that reads them.
 *
 * Document lines (warden_export and the document part of a full export)
 * are the ingest format with
 *  - embeddings printed as the shortest decimal that reads back as the same
 *    float32 ("0.1", not "0.100000001"), so an exported line is never much
 *    longer than the ingest line it came from;
 *  - metadata numbers exact (17 significant digits where needed), and in a
 *    documents-only export a float field's integral value printed as a
 *    float ("2.0"), so a fresh collection infers float, not int.
 *
 * A full export (warden_export_full) is one JSON Lines file, all of it read
 * from one LMDB snapshot:
 *   {"warden_export":2,"revision":R,"config":"<warden.yaml>","types":{k:t}}
 *   {"principal":P,"groups":[...]}            one per directory entry
 *   {"grant":{"principal":P,"prefix":X}}      one per grant
 *   <document line>                           one per document, in insertion
 *                                             order (equal scores tie alike)
 *   {"warden_export_end":{"documents":N,"principals":N,"grants":N}}
 * The trailer makes a truncated file an error instead of a smaller
 * collection.
 *
 * warden_import builds the collection in a temporary directory next to the
 * target and renames it into place only when everything was applied, so a
 * failed import leaves nothing behind.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/config.h"
#include "engine/doc.h"
#include "index/scan.h"
#include "engine/store.h"
#include "engine/wd_internal.h"

/* ------------------------------------------------------- number output */

/* The shortest %g form of v that strtof reads back as v, with the exponent
 * trimmed ("1e-05" -> "1e-5").  out holds at least 32 bytes. */
static size_t fmt_f32(float v, char *out) {
  int n = 0;
  if (v == 0 && signbit(v)) { /* "-0" would read back as the integer 0 */
    memcpy(out, "-0.0", 5);
    return 4;
  }
  for (int p = 6; p <= 9; p++) {
    n = snprintf(out, 32, "%.*g", p, (double)v);
    if (strtof(out, NULL) == v) break;
  }
  char *e = strchr(out, 'e');
  if (e) {
    char *d = e + 1, *s = e + 1;
    if (*s == '+') s++;
    else if (*s == '-') *d++ = *s++;
    while (*s == '0' && s[1]) s++;
    memmove(d, s, strlen(s) + 1);
    n = (int)strlen(out);
  }
  return (size_t)n;
}

typedef struct outbuf {
  char *p;
  size_t n, cap;
  int oom;
} outbuf;

static void ob_put(outbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < b->n + n + 1) nc *= 2;
    char *np = wd_realloc(b->p, nc);
    if (!np) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = nc;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

static void ob_json(outbuf *b, const json_t *j, size_t flags) {
  char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17) | flags);
  if (!s) {
    b->oom = 1;
    return;
  }
  ob_put(b, s, strlen(s));
  free(s);
}

/* ----------------------------------------------------- document lines */

typedef int (*write_fn)(void *ctx, const char *buf, size_t len);

/* One document line into b.  as_float_types: print integral values of
 * float fields as floats (documents-only export). */
static int doc_line(wd_txn *tx, json_t *rec, int as_float_types, outbuf *b) {
  warden *db = tx->db;
  uint32_t *slots = NULL;
  size_t ns = 0;
  int rc = doc_slots(db, rec, &slots, &ns);
  if (rc) return rc;
  json_t *meta = json_object_get(rec, "metadata");
  json_t *m2 = NULL;
  if (as_float_types && json_is_object(meta)) {
    m2 = json_deep_copy(meta);
    const char *key;
    json_t *v;
    json_object_foreach(m2, key, v) if (json_is_integer(v) &&
                                        store_field_type(tx, key) == WD_T_FLOAT)
      json_object_set_new(m2, key, json_real((double)json_integer_value(v)));
  }
  json_t *o = json_pack("{s:O,s:O,s:O,s:O,s:{s:O,s:O}}", "doc_id", json_object_get(rec, "doc_id"),
                        "source", json_object_get(rec, "source"), "namespace",
                        json_object_get(rec, "namespace"), "metadata", m2 ? m2 : meta, "acl",
                        "allow", json_object_get(rec, "allow"), "deny",
                        json_object_get(rec, "deny"));
  json_decref(m2);
  if (!o) {
    wd_free(slots);
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  }
  b->n = 0;
  ob_json(b, o, JSON_PRESERVE_ORDER);
  json_decref(o);
  if (b->n) b->n--; /* drop the closing brace: chunks follow */
  ob_put(b, ",\"chunks\":[", 11);
  size_t dim = db->cfg.dim;
  char num[40];
  for (size_t i = 0; i < ns && !rc; i++) {
    uint32_t ord;
    const char *id, *text;
    size_t il, tl;
    const float *blk;
    if ((rc = store_chunk_get(tx, slots[i], &ord, &id, &il, &text, &tl))) break;
    int br = store_block_get(tx, slots[i] / WD_BLOCK, &blk);
    if (br) {
      rc = br < 0 ? br : wd_err(db, WARDEN_ECORRUPT, "export: embedding of slot %u missing", slots[i]);
      break;
    }
    const float *v = blk + WD_BLOCK + (size_t)(slots[i] % WD_BLOCK) * dim;
    ob_put(b, i ? ",{\"text\":" : "{\"text\":", i ? 9 : 8);
    json_t *t = json_stringn(text, tl);
    if (!t) {
      rc = wd_err(db, WARDEN_ECORRUPT, "export: chunk text of slot %u is not UTF-8", slots[i]);
      break;
    }
    ob_json(b, t, 0);
    json_decref(t);
    ob_put(b, ",\"embedding\":[", 14);
    for (size_t j = 0; j < dim; j++) {
      if (j) ob_put(b, ",", 1);
      ob_put(b, num, fmt_f32(v[j], num));
    }
    ob_put(b, "]}", 2);
  }
  wd_free(slots);
  ob_put(b, "]}\n", 3);
  if (!rc && b->oom) rc = wd_err(db, WARDEN_ENOMEM, "out of memory");
  return rc;
}

static int emit(warden *db, write_fn w, void *ctx, const char *s, size_t n) {
  return w(ctx, s, n) ? wd_err(db, WARDEN_EIO, "export: write failed") : 0;
}

static int emit_json(warden *db, write_fn w, void *ctx, json_t *o) {
  if (!o) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  outbuf b = {0};
  ob_json(&b, o, JSON_PRESERVE_ORDER);
  json_decref(o);
  ob_put(&b, "\n", 1);
  int rc = b.oom ? wd_err(db, WARDEN_ENOMEM, "out of memory") : emit(db, w, ctx, b.p, b.n);
  wd_free(b.p);
  return rc;
}

static int export_docs(wd_txn *tx, int as_float_types, write_fn w, void *ctx, uint64_t *ndocs) {
  warden *db = tx->db;
  wd_iter it;
  int rc = store_iter_begin(tx, WD_DB_DOCS, NULL, 0, "export", &it);
  outbuf b = {0};
  uint64_t pub = store_meta_u64(tx, "next_slot"); /* staged ingests: stage.h */
  while (!rc && (rc = store_iter_next(&it)) == 1) {
    json_t *rec = NULL;
    int staged = 0;
    if (!(rc = store_doc_decode(db, it.val, it.vlen, &rec))) {
      json_t *s0 = json_array_get(json_object_get(rec, "slots"), 0);
      staged = json_is_integer(s0) && (uint64_t)json_integer_value(s0) >= pub;
      if (!staged) rc = doc_line(tx, rec, as_float_types, &b);
    }
    json_decref(rec);
    if (!rc && !staged) rc = emit(db, w, ctx, b.p, b.n);
    if (!rc && !staged) (*ndocs)++;
  }
  wd_free(b.p);
  store_iter_end(&it);
  return rc;
}

/* The documents in insertion order (of their first chunk's slot), so that
 * a collection rebuilt from them breaks equal scores the same way (the
 * older chunk first). */
static int export_docs_by_slot(wd_txn *tx, write_fn w, void *ctx, uint64_t *ndocs) {
  warden *db = tx->db;
  wd_iter it;
  int rc = store_iter_begin(tx, WD_DB_CHUNKS, NULL, 0, "export", &it);
  outbuf b = {0};
  while (!rc && (rc = store_iter_next(&it)) == 1) {
    rc = 0;
    uint32_t slot = 0, ord;
    if (it.klen == 4) {
      const unsigned char *kb = it.key;
      slot = (uint32_t)kb[0] << 24 | (uint32_t)kb[1] << 16 | (uint32_t)kb[2] << 8 | kb[3];
    }
    const char *id, *text;
    size_t il, tl;
    if (it.klen != 4) rc = wd_err(db, WARDEN_ECORRUPT, "export: bad chunk key");
    if (!rc && slot >= store_meta_u64(tx, "next_slot")) break; /* staged (stage.h) */
    if (!rc) rc = store_chunk_get(tx, slot, &ord, &id, &il, &text, &tl);
    if (!rc && ord == 0) {
      json_t *rec = NULL;
      rc = store_doc_get(tx, id, il, &rec);
      if (rc == WARDEN_ENOTFOUND)
        rc = wd_err(db, WARDEN_ECORRUPT, "export: chunk %u names a missing document", slot);
      if (!rc) rc = doc_line(tx, rec, 0, &b);
      json_decref(rec);
      if (!rc) rc = emit(db, w, ctx, b.p, b.n);
      if (!rc) (*ndocs)++;
    }
  }
  wd_free(b.p);
  store_iter_end(&it);
  return rc;
}

int wd_export_docs(warden *db, write_fn w, void *ctx) {
  wd_txn tx;
  int rc = store_read_begin(db, &tx);
  if (rc) return rc;
  uint64_t n = 0;
  rc = export_docs(&tx, 1, w, ctx, &n);
  store_read_end(&tx);
  return rc;
}

/* ------------------------------------------------------- full export */

static int read_text(warden *db, const char *path, char **out) {
  FILE *f = fopen(path, "rb");
  if (!f) return wd_err(db, WARDEN_EIO, "%s: %s", path, strerror(errno));
  outbuf b = {0};
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) ob_put(&b, chunk, n);
  int err = ferror(f);
  fclose(f);
  if (err) {
    wd_free(b.p);
    return wd_err(db, WARDEN_EIO, "%s: read error", path);
  }
  if (b.oom) {
    wd_free(b.p);
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  }
  if (!b.p) ob_put(&b, "", 0);
  *out = b.p;
  return b.p ? 0 : wd_err(db, WARDEN_ENOMEM, "out of memory");
}

int warden_export_full(warden *db, write_fn w, void *ctx) {
  if (!db || !w) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_err_clear(db);
  char path[4096];
  snprintf(path, sizeof path, "%s/warden.yaml", db->dir);
  char *yaml = NULL;
  if ((rc = read_text(db, path, &yaml))) return rc;
  wd_txn tx;
  if ((rc = store_read_begin(db, &tx))) {
    wd_free(yaml);
    return rc;
  }
  /* header: configuration as written, every field type (declared or
   * inferred), the revision of the snapshot */
  json_t *types = json_object();
  wd_iter it;
  rc = store_iter_begin(&tx, WD_DB_META, "t:", 2, "export", &it);
  while (!rc && (rc = store_iter_next(&it)) == 1) {
    rc = 0;
    if (it.klen < 2 || memcmp(it.key, "t:", 2) != 0) break;
    if (it.vlen != 1) continue;
    char key[WD_MAX_KEYLEN + 1];
    size_t kl = it.klen - 2 > WD_MAX_KEYLEN ? WD_MAX_KEYLEN : it.klen - 2;
    memcpy(key, (const char *)it.key + 2, kl);
    key[kl] = 0;
    json_object_set_new(types, key,
                        json_string(wd_type_name((wd_type) * (const unsigned char *)it.val)));
  }
  store_iter_end(&it);
  for (size_t i = 0; i < db->cfg.nmeta; i++)
    json_object_set_new(types, db->cfg.meta[i].key, json_string(wd_type_name(db->cfg.meta[i].type)));
  uint64_t rev = store_meta_u64(&tx, "revision");
  if (!rc)
    rc = emit_json(db, w, ctx,
                   json_pack("{s:i,s:I,s:s,s:O}", "warden_export", 2, "revision", (json_int_t)rev,
                             "config", yaml, "types", types));
  json_decref(types);
  wd_free(yaml);
  /* the directory */
  uint64_t np = 0, ng = 0, nd = 0;
  if (!rc) rc = store_iter_begin(&tx, WD_DB_PRINC, NULL, 0, "export directory", &it);
  while (!rc && (rc = store_iter_next(&it)) == 1) {
    json_t *g;
    if ((rc = store_get_strings(&tx, WD_DB_PRINC, it.key, it.klen, "directory entry", &g)))
      break;
    rc = emit_json(db, w, ctx,
                   json_pack("{s:s%,s:o}", "principal", (const char *)it.key, it.klen,
                             "groups", g));
    np++;
  }
  store_iter_end(&it);
  /* grants */
  if (!rc) rc = store_iter_begin(&tx, WD_DB_GRANTS, NULL, 0, "export grants", &it);
  while (!rc && (rc = store_iter_next(&it)) == 1) {
    json_t *a;
    if ((rc = store_get_strings(&tx, WD_DB_GRANTS, it.key, it.klen, "grant", &a))) break;
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) {
      if (rc) break;
      rc = emit_json(db, w, ctx,
                     json_pack("{s:{s:s%,s:O}}", "grant", "principal", (const char *)it.key,
                               it.klen, "prefix", e));
      ng++;
    }
    json_decref(a);
  }
  store_iter_end(&it);
  /* documents, with their values exactly as stored (the types above say
   * how a fresh collection must read them) */
  if (!rc) rc = export_docs_by_slot(&tx, w, ctx, &nd);
  if (!rc)
    rc = emit_json(db, w, ctx,
                   json_pack("{s:{s:I,s:I,s:I}}", "warden_export_end", "documents",
                             (json_int_t)nd, "principals", (json_int_t)np, "grants",
                             (json_int_t)ng));
  store_read_end(&tx);
  return rc;
}

/* ------------------------------------------------------------- import */

static void set_msg(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_msg(char *buf, size_t len, const char *fmt, ...) {
  if (!buf || !len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

static void rm_tree(const char *dir) {
  static const char *const files[] = {"warden.yaml", "store/data.mdb", "store/lock.mdb",
                                      "docs.jsonl", "principals.jsonl", "in.yaml",
                                      "index/ivf.wdx"};
  char p[4400];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, files[i]);
    unlink(p);
  }
  snprintf(p, sizeof p, "%s/store", dir);
  rmdir(p);
  snprintf(p, sizeof p, "%s/index", dir);
  rmdir(p);
  rmdir(dir);
}

/* Replace the temp file name tmp at the start of msg by name. */
static void rename_in_msg(char *msg, size_t len, const char *tmp, const char *name) {
  size_t tl = strlen(tmp);
  if (strncmp(msg, tmp, tl) != 0) return;
  char rest[1024];
  snprintf(rest, sizeof rest, "%s", msg + tl);
  snprintf(msg, len, "%s%s", name, rest);
}

typedef struct types_op {
  json_t *types;
  uint64_t rev0;
} types_op;

static int types_apply(wd_txn *tx, void *ctx) {
  types_op *op = ctx;
  const char *key;
  json_t *v;
  json_object_foreach(op->types, key, v) {
    wd_type t = wd_type_parse(json_string_value(v));
    if (store_field_type(tx, key) == t) continue; /* declared in warden.yaml */
    int rc = store_field_type_put(tx, key, t);
    if (rc) return rc;
  }
  /* continue from the original's revision (the commit adds one), so a
   * client's --min-revision taken from the original is still met */
  if (store_meta_u64(tx, "revision") < op->rev0) {
    int rc = store_meta_put_u64(tx, "revision", op->rev0);
    if (rc) return rc;
  }
  tx->changed = 1;
  return 0;
}

/* An export file is data that may have travelled: the parts of its
 * configuration that run a program (resolver.command) or write a file of
 * the importer's choosing (audit.path) are taken only when the caller
 * trusts the file.  Returns 0, or nonzero with the refusal in msg. */
static int untrusted_config(const char *yaml, size_t len, const char *name, char *msg,
                            size_t ml) {
  wd_config c;
  char err[512];
  if (wd_config_parse(yaml, len, name, &c, err, sizeof err)) return 0; /* create reports it */
  int bad = 0;
  if (c.resolver_type == WD_RESOLVER_COMMAND) {
    snprintf(msg, ml,
             "%s:1: config.resolver.command: the export names a resolver program that "
             "queries would run; import it with --trust-config (C: "
             "WARDEN_IMPORT_TRUST_CONFIG) only if you trust this file",
             name);
    bad = 1;
  } else if (c.audit_path) {
    snprintf(msg, ml,
             "%s:1: config.audit.path: the export names an audit log path the collection "
             "would write; import it with --trust-config (C: WARDEN_IMPORT_TRUST_CONFIG) "
             "only if you trust this file",
             name);
    bad = 1;
  }
  wd_config_free(&c);
  return bad;
}

int warden_import(const char *dir, const char *path, char *errbuf, size_t errlen,
                  char **json_out) {
  return warden_import_ex(dir, path, 0, errbuf, errlen, json_out);
}

/* The state of one import, from the file to the renamed directory. */
typedef struct import_st {
  const char *name;   /* the file as messages name it */
  unsigned flags;
  char tmp[4200];     /* the new collection, renamed to dir at the end */
  char ppath[4300], dpath[4300]; /* principal and document lines, for sync and ingest */
  FILE *pf, *df;
  uint64_t pblank, dblank; /* lines already in pf / df */
  uint64_t ln, nd, np, ng, want_d, want_p, want_g, rev0;
  int have_end;
  json_t *types, *grants;
  char msg[1024];
} import_st;

/* dir must not hold a collection; an existing empty directory is removed
 * (the import renames over it). */
static int import_target(const char *dir, char *errbuf, size_t errlen) {
  struct stat st;
  char p[4200];
  snprintf(p, sizeof p, "%s/warden.yaml", dir);
  if (stat(p, &st) == 0) {
    set_msg(errbuf, errlen, "%s: already holds a collection", dir);
    return WARDEN_EEXIST;
  }
  if (stat(dir, &st) == 0 && (!S_ISDIR(st.st_mode) || rmdir(dir) != 0)) {
    set_msg(errbuf, errlen, "%s: exists and is not an empty directory", dir);
    return WARDEN_EEXIST;
  }
  return 0;
}

/* A temporary directory next to dir. */
static int import_tmpdir(const char *dir, char *tmp, size_t tl, char *errbuf, size_t errlen) {
  char *dcopy = wd_strdup(dir), *bcopy = wd_strdup(dir);
  if (!dcopy || !bcopy) {
    wd_free(dcopy);
    wd_free(bcopy);
    set_msg(errbuf, errlen, "out of memory");
    return WARDEN_ENOMEM;
  }
  snprintf(tmp, tl, "%s/.%s.import-XXXXXX", dirname(dcopy), basename(bcopy));
  wd_free(dcopy);
  wd_free(bcopy);
  if (!mkdtemp(tmp)) {
    set_msg(errbuf, errlen, "%.900s: %s", tmp, strerror(errno));
    return WARDEN_EIO;
  }
  return 0;
}

/* Line ln of the input into *f (opened on first use), padded with blank
 * lines so that a later ingest or sync names this file's line numbers. */
static int import_copy_line(import_st *I, FILE **f, const char *path, uint64_t *blank,
                            const char *s, size_t n) {
  if (!*f && !(*f = fopen(path, "wb"))) {
    snprintf(I->msg, sizeof I->msg, "%.900s: %s", path, strerror(errno));
    return WARDEN_EIO;
  }
  for (; *blank + 1 < I->ln; (*blank)++) fputc('\n', *f);
  fwrite(s, 1, n, *f);
  if (s[n - 1] != '\n') fputc('\n', *f);
  (*blank)++;
  return 0;
}

/* Line 1: the header {warden_export: 2, revision, config, types}; creates
 * the collection in I->tmp from its config. */
static int import_header(import_st *I, json_t *o) {
  json_t *ver = json_object_get(o, "warden_export"), *cfg = json_object_get(o, "config");
  I->types = json_incref(json_object_get(o, "types"));
  I->rev0 = (uint64_t)json_integer_value(json_object_get(o, "revision"));
  const char *tk;
  json_t *tv;
  int bad_type = 0;
  if (json_is_object(I->types))
    json_object_foreach(I->types, tk, tv) if (!json_is_string(tv) ||
                                               wd_type_parse(json_string_value(tv)) == WD_T_NONE ||
                                               strlen(tk) == 0 || strlen(tk) > WD_MAX_KEYLEN)
      bad_type = 1;
  if (json_integer_value(ver) != 2 || !json_is_string(cfg) || !json_is_object(I->types) ||
      bad_type) {
    snprintf(I->msg, sizeof I->msg,
             "%s:1: warden_export: not a full export (expected a header with "
             "warden_export 2, config and types; `warden export DIR FILE --full` writes one)",
             I->name);
    return WARDEN_EDATA;
  }
  if (!(I->flags & WARDEN_IMPORT_TRUST_CONFIG) &&
      untrusted_config(json_string_value(cfg), json_string_length(cfg), I->name, I->msg,
                       sizeof I->msg))
    return WARDEN_EDATA;
  char yp[4300];
  snprintf(yp, sizeof yp, "%s/in.yaml", I->tmp);
  FILE *yf = fopen(yp, "wb");
  if (!yf || fwrite(json_string_value(cfg), 1, json_string_length(cfg), yf) !=
                 json_string_length(cfg) ||
      fclose(yf) != 0) {
    if (yf) fclose(yf);
    snprintf(I->msg, sizeof I->msg, "%.900s: %s", yp, strerror(errno));
    return WARDEN_EIO;
  }
  char sub[4300];
  snprintf(sub, sizeof sub, "%s", I->tmp);
  warden_create_opts co = {0, NULL, yp};
  /* the collection lives in tmp itself; in.yaml is removed below */
  int rc = warden_create(sub, &co, I->msg, sizeof I->msg);
  unlink(yp);
  if (rc) {
    char m2[1024];
    snprintf(m2, sizeof m2, "%.300s:1: config: %.700s", I->name, I->msg);
    snprintf(I->msg, sizeof I->msg, "%s", m2);
  }
  return rc;
}

/* One non-blank line (line, len; s: where it starts after white space). */
static int import_line(import_st *I, const char *line, size_t len, size_t s) {
  if (I->have_end) {
    snprintf(I->msg, sizeof I->msg, "%s:%llu: line: data after the end of the export", I->name,
             (unsigned long long)I->ln);
    return WARDEN_EDATA;
  }
  /* document lines go to ingest unparsed (it checks them); the others
   * are small and parsed here */
  if (I->ln > 1 && strncmp(line + s, "{\"doc_id\"", 9) == 0) {
    int rc = import_copy_line(I, &I->df, I->dpath, &I->dblank, line, len);
    if (!rc) I->nd++;
    return rc;
  }
  json_error_t je;
  json_t *o = json_loadb(line + s, len - s, JSON_REJECT_DUPLICATES, &je);
  if (!json_is_object(o)) {
    snprintf(I->msg, sizeof I->msg, "%s:%llu: json: %s", I->name, (unsigned long long)I->ln,
             o ? "expected a JSON object" : je.text);
    json_decref(o);
    return WARDEN_EDATA;
  }
  int rc = 0;
  if (I->ln == 1) {
    rc = import_header(I, o);
  } else if (json_object_get(o, "principal")) {
    if (!(rc = import_copy_line(I, &I->pf, I->ppath, &I->pblank, line + s, len - s))) I->np++;
  } else if (json_object_get(o, "grant")) {
    json_t *g = json_object_get(o, "grant");
    json_t *gp = json_object_get(g, "principal"), *gx = json_object_get(g, "prefix");
    if (json_object_size(o) != 1 || !json_is_string(gp) || !json_is_string(gx) ||
        json_object_size(g) != 2) {
      snprintf(I->msg, sizeof I->msg, "%s:%llu: grant: expected {\"principal\": P, \"prefix\": X}",
               I->name, (unsigned long long)I->ln);
      rc = WARDEN_EDATA;
    } else {
      json_object_set_new(g, "line", json_integer((json_int_t)I->ln));
      json_array_append(I->grants, g);
      I->ng++;
    }
  } else if (json_object_get(o, "warden_export_end")) {
    json_t *e = json_object_get(o, "warden_export_end");
    I->want_d = (uint64_t)json_integer_value(json_object_get(e, "documents"));
    I->want_p = (uint64_t)json_integer_value(json_object_get(e, "principals"));
    I->want_g = (uint64_t)json_integer_value(json_object_get(e, "grants"));
    I->have_end = 1;
  } else {
    snprintf(I->msg, sizeof I->msg,
             "%s:%llu: line: expected a principal, grant, document or end record", I->name,
             (unsigned long long)I->ln);
    rc = WARDEN_EDATA;
  }
  json_decref(o);
  return rc;
}

/* Every line of in; then the end record's counts must match what was
 * read (a truncated or edited file is refused).  Closes in. */
static int import_read(import_st *I, FILE *in) {
  int rc = 0;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while (!rc && (len = getline(&line, &cap, in)) >= 0) {
    I->ln++;
    size_t s = 0;
    while (s < (size_t)len && (line[s] == ' ' || line[s] == '\t' || line[s] == '\r' || line[s] == '\n'))
      s++;
    if (s == (size_t)len) continue;
    rc = import_line(I, line, (size_t)len, s);
  }
  free(line);
  if (!rc && ferror(in)) {
    snprintf(I->msg, sizeof I->msg, "%s: read error", I->name);
    rc = WARDEN_EIO;
  }
  if (in != stdin) fclose(in);
  if (I->pf && fclose(I->pf) != 0 && !rc) {
    snprintf(I->msg, sizeof I->msg, "%.900s: %s", I->ppath, strerror(errno));
    rc = WARDEN_EIO;
  }
  if (I->df && fclose(I->df) != 0 && !rc) {
    snprintf(I->msg, sizeof I->msg, "%.900s: %s", I->dpath, strerror(errno));
    rc = WARDEN_EIO;
  }
  I->pf = I->df = NULL;
  if (!rc && I->ln == 0) {
    snprintf(I->msg, sizeof I->msg, "%s: empty file (not a full export)", I->name);
    rc = WARDEN_EDATA;
  }
  if (!rc && (!I->have_end || I->want_d != I->nd || I->want_p != I->np || I->want_g != I->ng)) {
    snprintf(I->msg, sizeof I->msg,
             "%s:%llu: warden_export_end: %s (read %llu documents, %llu principals, %llu "
             "grants): the file is truncated or edited",
             I->name, (unsigned long long)I->ln, I->have_end ? "counts differ" : "missing",
             (unsigned long long)I->nd, (unsigned long long)I->np, (unsigned long long)I->ng);
    rc = WARDEN_EDATA;
  }
  return rc;
}

/* Into the new collection: field types first (so values read back with
 * the original's types), the directory, the grants, the documents. */
static int import_apply(import_st *I, uint64_t *rev) {
  warden *db = NULL;
  int rc = warden_open(I->tmp, NULL, &db, I->msg, sizeof I->msg);
  if (!rc) {
    types_op op = {I->types, I->rev0};
    rc = store_write(db, types_apply, &op, NULL);
  }
  if (!rc && I->np) {
    rc = warden_principals_sync(db, I->ppath, NULL, NULL);
    if (rc) {
      snprintf(I->msg, sizeof I->msg, "%s", warden_errmsg(db));
      rename_in_msg(I->msg, sizeof I->msg, I->ppath, I->name);
    }
  }
  size_t i;
  json_t *g;
  json_array_foreach(I->grants, i, g) {
    if (rc) break;
    rc = warden_grant_add(db, json_string_value(json_object_get(g, "principal")),
                          json_string_value(json_object_get(g, "prefix")), NULL);
    if (rc)
      snprintf(I->msg, sizeof I->msg, "%s:%lld: %s", I->name,
               (long long)json_integer_value(json_object_get(g, "line")), warden_errmsg(db));
  }
  warden_ingest_report rep = {0};
  if (!rc && I->nd) {
    const char *paths[] = {I->dpath};
    rc = warden_ingest(db, paths, 1, NULL, &rep);
    if (rc) {
      snprintf(I->msg, sizeof I->msg, "%s", warden_errmsg(db));
      rename_in_msg(I->msg, sizeof I->msg, I->dpath, I->name);
    }
  }
  if (!rc) rc = warden_revision(db, rev);
  warden_close(db);
  return rc;
}

int warden_import_ex(const char *dir, const char *path, unsigned flags, char *errbuf,
                     size_t errlen, char **json_out) {
  if (!dir || !*dir || !path) {
    set_msg(errbuf, errlen, "import: NULL argument");
    return WARDEN_EINVAL;
  }
  int rc = import_target(dir, errbuf, errlen);
  if (rc) return rc;
  import_st *I = wd_calloc(1, sizeof *I);
  if (!I) {
    set_msg(errbuf, errlen, "out of memory");
    return WARDEN_ENOMEM;
  }
  I->flags = flags;
  I->name = strcmp(path, "-") == 0 ? "<stdin>" : path;
  FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (!in) {
    set_msg(errbuf, errlen, "%s: %s", path, strerror(errno));
    wd_free(I);
    return WARDEN_EIO;
  }
  if ((rc = import_tmpdir(dir, I->tmp, sizeof I->tmp, errbuf, errlen))) {
    if (in != stdin) fclose(in);
    wd_free(I);
    return rc;
  }
  I->grants = json_array();
  snprintf(I->ppath, sizeof I->ppath, "%s/principals.jsonl", I->tmp);
  snprintf(I->dpath, sizeof I->dpath, "%s/docs.jsonl", I->tmp);
  uint64_t rev = 0;
  rc = import_read(I, in);
  if (!rc) rc = import_apply(I, &rev);
  json_decref(I->types);
  json_decref(I->grants);
  unlink(I->ppath);
  unlink(I->dpath);
  if (!rc && rename(I->tmp, dir) != 0) {
    snprintf(I->msg, sizeof I->msg, "%s: %s", dir, strerror(errno));
    rc = WARDEN_EIO;
  }
  if (rc) {
    rm_tree(I->tmp);
    set_msg(errbuf, errlen, "%s", I->msg[0] ? I->msg : warden_strerror(rc));
    wd_free(I);
    return rc;
  }
  if (json_out) {
    json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "imported", dir, "documents",
                          (json_int_t)I->nd, "principals", (json_int_t)I->np, "grants",
                          (json_int_t)I->ng, "revision", (json_int_t)rev, "source_revision",
                          (json_int_t)I->rev0);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    *json_out = s ? wd_strdup(s) : NULL;
    free(s);
  }
  wd_free(I);
  return 0;
}
