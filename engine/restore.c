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

#include "config.h"
#include "doc.h"
#include "scan.h"
#include "store.h"
#include "wd_internal.h"

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
  MDB_cursor *c;
  int rc = mdb_cursor_open(tx->t, db->dbi_docs, &c);
  if (rc) return store_mdb_err(db, rc, "export");
  MDB_val k, d;
  int mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST);
  outbuf b = {0};
  uint64_t pub = store_meta_u64(tx, "next_slot"); /* staged ingests: stage.h */
  while (mrc == 0 && !rc) {
    json_t *rec = NULL;
    int staged = 0;
    if (!(rc = store_doc_decode(db, &d, &rec))) {
      json_t *s0 = json_array_get(json_object_get(rec, "slots"), 0);
      staged = json_is_integer(s0) && (uint64_t)json_integer_value(s0) >= pub;
      if (!staged) rc = doc_line(tx, rec, as_float_types, &b);
    }
    json_decref(rec);
    if (!rc && !staged) rc = emit(db, w, ctx, b.p, b.n);
    if (!rc && !staged) (*ndocs)++;
    if (!rc) mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
  }
  if (!rc && mrc != MDB_NOTFOUND) rc = store_mdb_err(db, mrc, "export");
  wd_free(b.p);
  mdb_cursor_close(c);
  return rc;
}

/* The documents in insertion order (of their first chunk's slot), so that
 * a collection rebuilt from them breaks equal scores the same way (the
 * older chunk first). */
static int export_docs_by_slot(wd_txn *tx, write_fn w, void *ctx, uint64_t *ndocs) {
  warden *db = tx->db;
  MDB_cursor *c;
  int rc = mdb_cursor_open(tx->t, db->dbi_chunks, &c);
  if (rc) return store_mdb_err(db, rc, "export");
  MDB_val k, d;
  int mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST);
  outbuf b = {0};
  while (mrc == 0 && !rc) {
    uint32_t slot = 0, ord;
    if (k.mv_size == 4) {
      const unsigned char *kb = k.mv_data;
      slot = (uint32_t)kb[0] << 24 | (uint32_t)kb[1] << 16 | (uint32_t)kb[2] << 8 | kb[3];
    }
    const char *id, *text;
    size_t il, tl;
    if (k.mv_size != 4) rc = wd_err(db, WARDEN_ECORRUPT, "export: bad chunk key");
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
    if (!rc) mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
  }
  if (!rc && mrc != MDB_NOTFOUND) rc = store_mdb_err(db, mrc, "export");
  wd_free(b.p);
  mdb_cursor_close(c);
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
  MDB_cursor *c = NULL;
  MDB_val k, d;
  int mrc = mdb_cursor_open(tx.t, db->dbi_meta, &c);
  if (mrc) rc = store_mdb_err(db, mrc, "export");
  if (!rc) {
    k.mv_size = 2;
    k.mv_data = "t:";
    for (mrc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
      if (k.mv_size < 2 || memcmp(k.mv_data, "t:", 2) != 0) break;
      if (d.mv_size != 1) continue;
      char key[WD_MAX_KEYLEN + 1];
      size_t kl = k.mv_size - 2 > WD_MAX_KEYLEN ? WD_MAX_KEYLEN : k.mv_size - 2;
      memcpy(key, (const char *)k.mv_data + 2, kl);
      key[kl] = 0;
      json_object_set_new(types, key,
                          json_string(wd_type_name((wd_type) * (const unsigned char *)d.mv_data)));
    }
    mdb_cursor_close(c);
    c = NULL;
  }
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
  if (!rc && (mrc = mdb_cursor_open(tx.t, db->dbi_princ, &c))) rc = store_mdb_err(db, mrc, "export");
  for (mrc = rc ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &d, MDB_FIRST); mrc == 0 && !rc;
       mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
    json_t *g;
    if ((rc = store_get_strings(&tx, db->dbi_princ, k.mv_data, k.mv_size, "directory entry", &g)))
      break;
    rc = emit_json(db, w, ctx,
                   json_pack("{s:s%,s:o}", "principal", (const char *)k.mv_data, k.mv_size,
                             "groups", g));
    np++;
  }
  if (!rc && mrc != MDB_NOTFOUND) rc = store_mdb_err(db, mrc, "export directory");
  if (c) mdb_cursor_close(c);
  c = NULL;
  /* grants */
  if (!rc && (mrc = mdb_cursor_open(tx.t, db->dbi_grants, &c))) rc = store_mdb_err(db, mrc, "export");
  for (mrc = rc ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &d, MDB_FIRST); mrc == 0 && !rc;
       mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
    json_t *a;
    if ((rc = store_get_strings(&tx, db->dbi_grants, k.mv_data, k.mv_size, "grant", &a))) break;
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) {
      if (rc) break;
      rc = emit_json(db, w, ctx,
                     json_pack("{s:{s:s%,s:O}}", "grant", "principal", (const char *)k.mv_data,
                               k.mv_size, "prefix", e));
      ng++;
    }
    json_decref(a);
  }
  if (!rc && mrc != MDB_NOTFOUND) rc = store_mdb_err(db, mrc, "export grants");
  if (c) mdb_cursor_close(c);
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

int warden_import_ex(const char *dir, const char *path, unsigned flags, char *errbuf,
                     size_t errlen, char **json_out) {
  if (!dir || !*dir || !path) {
    set_msg(errbuf, errlen, "import: NULL argument");
    return WARDEN_EINVAL;
  }
  struct stat st;
  char p[4200];
  snprintf(p, sizeof p, "%s/warden.yaml", dir);
  if (stat(p, &st) == 0) {
    set_msg(errbuf, errlen, "%s: already holds a collection", dir);
    return WARDEN_EEXIST;
  }
  if (stat(dir, &st) == 0) {
    /* an existing directory must be empty: we rename over it */
    if (!S_ISDIR(st.st_mode) || rmdir(dir) != 0) {
      set_msg(errbuf, errlen, "%s: exists and is not an empty directory", dir);
      return WARDEN_EEXIST;
    }
  }
  const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
  FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (!in) {
    set_msg(errbuf, errlen, "%s: %s", path, strerror(errno));
    return WARDEN_EIO;
  }
  /* temp directory next to dir, renamed into place at the end */
  char *dcopy = wd_strdup(dir), *bcopy = wd_strdup(dir);
  char tmp[4200];
  if (!dcopy || !bcopy) {
    wd_free(dcopy);
    wd_free(bcopy);
    if (in != stdin) fclose(in);
    set_msg(errbuf, errlen, "out of memory");
    return WARDEN_ENOMEM;
  }
  snprintf(tmp, sizeof tmp, "%s/.%s.import-XXXXXX", dirname(dcopy), basename(bcopy));
  wd_free(dcopy);
  wd_free(bcopy);
  if (!mkdtemp(tmp)) {
    set_msg(errbuf, errlen, "%.900s: %s", tmp, strerror(errno));
    if (in != stdin) fclose(in);
    return WARDEN_EIO;
  }
  int rc = 0;
  char msg[1024] = "";
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  uint64_t ln = 0, nd = 0, np = 0, ng = 0, want_d = 0, want_p = 0, want_g = 0, rev0 = 0;
  int have_end = 0;
  json_t *types = NULL, *grants = json_array();
  FILE *pf = NULL, *df = NULL;
  char ppath[4300], dpath[4300];
  snprintf(ppath, sizeof ppath, "%s/principals.jsonl", tmp);
  snprintf(dpath, sizeof dpath, "%s/docs.jsonl", tmp);
  warden *db = NULL;
  uint64_t pblank = 0, dblank = 0; /* lines already in pf / df */
  while (!rc && (len = getline(&line, &cap, in)) >= 0) {
    ln++;
    size_t s = 0;
    while (s < (size_t)len && (line[s] == ' ' || line[s] == '\t' || line[s] == '\r' || line[s] == '\n'))
      s++;
    if (s == (size_t)len) continue;
    if (have_end) {
      snprintf(msg, sizeof msg, "%s:%llu: line: data after the end of the export", name,
               (unsigned long long)ln);
      rc = WARDEN_EDATA;
      break;
    }
    /* document lines go to ingest unparsed (it checks them); the others
     * are small and parsed here */
    int is_doc = ln > 1 && strncmp(line + s, "{\"doc_id\"", 9) == 0;
    if (is_doc) {
      if (!df && !(df = fopen(dpath, "wb"))) {
        snprintf(msg, sizeof msg, "%.900s: %s", dpath, strerror(errno));
        rc = WARDEN_EIO;
        break;
      }
      /* pad with blank lines so ingest's line numbers are this file's */
      for (; dblank + 1 < ln; dblank++) fputc('\n', df);
      fwrite(line, 1, (size_t)len, df);
      if (line[len - 1] != '\n') fputc('\n', df);
      dblank++;
      nd++;
      continue;
    }
    json_error_t je;
    json_t *o = json_loadb(line + s, (size_t)len - s, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
      snprintf(msg, sizeof msg, "%s:%llu: json: %s", name, (unsigned long long)ln,
               o ? "expected a JSON object" : je.text);
      json_decref(o);
      rc = WARDEN_EDATA;
      break;
    }
    if (ln == 1) {
      json_t *ver = json_object_get(o, "warden_export"), *cfg = json_object_get(o, "config");
      types = json_incref(json_object_get(o, "types"));
      rev0 = (uint64_t)json_integer_value(json_object_get(o, "revision"));
      const char *tk;
      json_t *tv;
      int bad_type = 0;
      if (json_is_object(types))
        json_object_foreach(types, tk, tv) if (!json_is_string(tv) ||
                                               wd_type_parse(json_string_value(tv)) == WD_T_NONE ||
                                               strlen(tk) == 0 || strlen(tk) > WD_MAX_KEYLEN)
          bad_type = 1;
      if (json_integer_value(ver) != 2 || !json_is_string(cfg) || !json_is_object(types) ||
          bad_type) {
        snprintf(msg, sizeof msg,
                 "%s:1: warden_export: not a full export (expected a header with "
                 "warden_export 2, config and types; `warden export DIR FILE --full` writes one)",
                 name);
        rc = WARDEN_EDATA;
      } else if (!(flags & WARDEN_IMPORT_TRUST_CONFIG) &&
                 untrusted_config(json_string_value(cfg), json_string_length(cfg), name, msg,
                                  sizeof msg)) {
        rc = WARDEN_EDATA;
      } else {
        char yp[4300];
        snprintf(yp, sizeof yp, "%s/in.yaml", tmp);
        FILE *yf = fopen(yp, "wb");
        if (!yf || fwrite(json_string_value(cfg), 1, json_string_length(cfg), yf) !=
                       json_string_length(cfg) ||
            fclose(yf) != 0) {
          if (yf) fclose(yf);
          snprintf(msg, sizeof msg, "%.900s: %s", yp, strerror(errno));
          rc = WARDEN_EIO;
        } else {
          char sub[4300];
          snprintf(sub, sizeof sub, "%s", tmp);
          warden_create_opts co = {0, NULL, yp};
          /* the collection lives in tmp itself; in.yaml is removed below */
          rc = warden_create(sub, &co, msg, sizeof msg);
          unlink(yp);
          if (rc) {
            char m2[1024];
            snprintf(m2, sizeof m2, "%s:1: config: %s", name, msg);
            snprintf(msg, sizeof msg, "%s", m2);
          }
        }
      }
    } else if (json_object_get(o, "principal")) {
      if (!pf && !(pf = fopen(ppath, "wb"))) {
        snprintf(msg, sizeof msg, "%.900s: %s", ppath, strerror(errno));
        rc = WARDEN_EIO;
      } else {
        for (; pblank + 1 < ln; pblank++) fputc('\n', pf);
        fwrite(line + s, 1, (size_t)len - s, pf);
        if (line[len - 1] != '\n') fputc('\n', pf);
        pblank++;
        np++;
      }
    } else if (json_object_get(o, "grant")) {
      json_t *g = json_object_get(o, "grant");
      json_t *gp = json_object_get(g, "principal"), *gx = json_object_get(g, "prefix");
      if (json_object_size(o) != 1 || !json_is_string(gp) || !json_is_string(gx) ||
          json_object_size(g) != 2) {
        snprintf(msg, sizeof msg, "%s:%llu: grant: expected {\"principal\": P, \"prefix\": X}",
                 name, (unsigned long long)ln);
        rc = WARDEN_EDATA;
      } else {
        json_object_set_new(g, "line", json_integer((json_int_t)ln));
        json_array_append(grants, g);
        ng++;
      }
    } else if (json_object_get(o, "warden_export_end")) {
      json_t *e = json_object_get(o, "warden_export_end");
      want_d = (uint64_t)json_integer_value(json_object_get(e, "documents"));
      want_p = (uint64_t)json_integer_value(json_object_get(e, "principals"));
      want_g = (uint64_t)json_integer_value(json_object_get(e, "grants"));
      have_end = 1;
    } else {
      snprintf(msg, sizeof msg,
               "%s:%llu: line: expected a principal, grant, document or end record", name,
               (unsigned long long)ln);
      rc = WARDEN_EDATA;
    }
    json_decref(o);
  }
  free(line);
  if (!rc && ferror(in)) {
    snprintf(msg, sizeof msg, "%s: read error", name);
    rc = WARDEN_EIO;
  }
  if (in != stdin) fclose(in);
  if (pf && fclose(pf) != 0 && !rc) {
    snprintf(msg, sizeof msg, "%.900s: %s", ppath, strerror(errno));
    rc = WARDEN_EIO;
  }
  if (df && fclose(df) != 0 && !rc) {
    snprintf(msg, sizeof msg, "%.900s: %s", dpath, strerror(errno));
    rc = WARDEN_EIO;
  }
  if (!rc && ln == 0) {
    snprintf(msg, sizeof msg, "%s: empty file (not a full export)", name);
    rc = WARDEN_EDATA;
  }
  if (!rc && (!have_end || want_d != nd || want_p != np || want_g != ng)) {
    snprintf(msg, sizeof msg,
             "%s:%llu: warden_export_end: %s (read %llu documents, %llu principals, %llu "
             "grants): the file is truncated or edited",
             name, (unsigned long long)ln, have_end ? "counts differ" : "missing",
             (unsigned long long)nd, (unsigned long long)np, (unsigned long long)ng);
    rc = WARDEN_EDATA;
  }
  if (!rc) rc = warden_open(tmp, NULL, &db, msg, sizeof msg);
  /* field types first, so values read back with the original's types */
  if (!rc) {
    types_op op = {types, rev0};
    rc = store_write(db, types_apply, &op, NULL);
  }
  if (!rc && np) {
    rc = warden_principals_sync(db, ppath, NULL, NULL);
    if (rc) {
      snprintf(msg, sizeof msg, "%s", warden_errmsg(db));
      rename_in_msg(msg, sizeof msg, ppath, name);
    }
  }
  size_t i;
  json_t *g;
  json_array_foreach(grants, i, g) {
    if (rc) break;
    rc = warden_grant_add(db, json_string_value(json_object_get(g, "principal")),
                          json_string_value(json_object_get(g, "prefix")), NULL);
    if (rc)
      snprintf(msg, sizeof msg, "%s:%lld: %s", name,
               (long long)json_integer_value(json_object_get(g, "line")), warden_errmsg(db));
  }
  warden_ingest_report rep = {0};
  if (!rc && nd) {
    const char *paths[] = {dpath};
    rc = warden_ingest(db, paths, 1, NULL, &rep);
    if (rc) {
      snprintf(msg, sizeof msg, "%s", warden_errmsg(db));
      rename_in_msg(msg, sizeof msg, dpath, name);
    }
  }
  uint64_t rev = 0;
  if (!rc) rc = warden_revision(db, &rev);
  warden_close(db);
  json_decref(types);
  json_decref(grants);
  unlink(ppath);
  unlink(dpath);
  if (!rc && rename(tmp, dir) != 0) {
    snprintf(msg, sizeof msg, "%s: %s", dir, strerror(errno));
    rc = WARDEN_EIO;
  }
  if (rc) {
    rm_tree(tmp);
    set_msg(errbuf, errlen, "%s", msg[0] ? msg : warden_strerror(rc));
    return rc;
  }
  if (json_out) {
    json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "imported", dir, "documents",
                          (json_int_t)nd, "principals", (json_int_t)np, "grants", (json_int_t)ng,
                          "revision", (json_int_t)rev, "source_revision", (json_int_t)rev0);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    *json_out = s ? wd_strdup(s) : NULL;
    free(s);
  }
  return 0;
}
