/*
 * config.c -- warden.yaml: load, validate and write (SPEC section 3).
 *
 * This is the only file that talks to libyaml.  We load the whole stream
 * with libyaml's document API and then walk the node graph by hand,
 * following the schema: every level knows its keys, so unknown keys, wrong
 * node kinds, duplicate keys and out-of-range values are reported as
 * "NAME:LINE: key.path: reason" with the line of the offending node.
 * Because the walk is driven by the (three levels deep) schema and never by
 * the document's shape, YAML aliases -- even self-referencing ones -- cannot
 * make it loop or blow up.
 *
 * The writer emits a fixed canonical layout with every free-form string in
 * a double-quoted scalar, then re-parses its own output before touching the
 * disk, so a file we write always loads back to the same config.
 */
/* mkostemp; the Makefile passes -D_GNU_SOURCE, a bare fuzzer build may not */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "engine/config.h"
#include "base/atomic.h"
#include "acl/names.h" /* the one principal grammar */
#include "engine/warden.h"
#include "base/wd_alloc.h"

#define CFG_MAX_FILE (16u << 20) /* a config this large is a mistake */
#define CFG_MAX_KEY 256          /* metadata key bytes */
#define CFG_MAX_NAME 256         /* principal NAME bytes */

/* ---------------------------------------------------------------- names */

static const char *const metric_names[] = {"cosine", "l2", "ip"};
static const char *const type_names[] = {"none", "string", "int",
                                         "float", "bool", "string_list"};
static const char *const index_names[] = {"auto", "flat", "ivf"};
static const char *const quant_names[] = {"none", "sq8"};
static const char *const graph_names[] = {"off", "on"};
static const char *const resolver_names[] = {"none", "grants", "command"};
static const char *const embedder_names[] = {"none", "hash"};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

int wd_metric_parse(const char *name) {
  if (!name) return -1;
  for (size_t i = 0; i < NELEM(metric_names); i++)
    if (strcmp(name, metric_names[i]) == 0) return (int)i;
  return -1;
}

const char *wd_metric_name(int metric) {
  if (metric < 0 || (size_t)metric >= NELEM(metric_names)) return "unknown";
  return metric_names[metric];
}

const char *wd_type_name(wd_type t) {
  if ((int)t < 0 || (size_t)t >= NELEM(type_names)) return "unknown";
  return type_names[t];
}

wd_type wd_type_parse(const char *name) {
  if (!name) return WD_T_NONE;
  /* index 0 ("none") is not a type a user may declare */
  for (size_t i = 1; i < NELEM(type_names); i++)
    if (strcmp(name, type_names[i]) == 0) return (wd_type)i;
  return WD_T_NONE;
}

/* ------------------------------------------------------------------ free */

static void free_strv(char **v, size_t n) {
  if (!v) return;
  for (size_t i = 0; i < n; i++) wd_free(v[i]);
  wd_free(v);
}

void wd_config_free(wd_config *cfg) {
  if (!cfg) return;
  if (cfg->meta)
    for (size_t i = 0; i < cfg->nmeta; i++) wd_free(cfg->meta[i].key);
  wd_free(cfg->meta);
  free_strv(cfg->default_allow, cfg->ndefault_allow);
  free_strv(cfg->default_deny, cfg->ndefault_deny);
  free_strv(cfg->resolver_cmd, cfg->nresolver_cmd);
  wd_free(cfg->audit_path);
  memset(cfg, 0, sizeof *cfg);
}

/* --------------------------------------------------------- parse context */

typedef struct ctx {
  yaml_document_t *doc;
  const char *name; /* file name for messages */
  char *err;
  size_t errlen;
  int rc; /* first error code; 0 while all is well */
} ctx;

static void set_err(ctx *c, int rc, size_t line, const char *path,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void set_err(ctx *c, int rc, size_t line, const char *path,
                    const char *fmt, ...) {
  if (c->rc) return; /* keep the first error: later ones are fallout */
  c->rc = rc;
  if (!c->err || c->errlen == 0) return;
  int n;
  if (path && *path)
    n = snprintf(c->err, c->errlen, "%s:%zu: %s: ", c->name, line, path);
  else
    n = snprintf(c->err, c->errlen, "%s:%zu: ", c->name, line);
  if (n < 0 || (size_t)n >= c->errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
  va_end(ap);
}

static size_t line_of(const yaml_node_t *n) { return n->start_mark.line + 1; }

static int is_null(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE) return 0;
  if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE &&
      n->data.scalar.style != YAML_ANY_SCALAR_STYLE)
    return 0;
  const char *s = (const char *)n->data.scalar.value;
  size_t l = n->data.scalar.length;
  return l == 0 || (l == 1 && s[0] == '~') ||
         (l == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) ||
                     !memcmp(s, "NULL", 4)));
}

/* A short, printable rendering of what the user wrote, for "got ...".
 * Written to buf (always NUL-terminated). */
static const char *describe(const yaml_node_t *n, char *buf, size_t cap) {
  if (n->type == YAML_SEQUENCE_NODE) return "a sequence";
  if (n->type == YAML_MAPPING_NODE) return "a mapping";
  if (n->type != YAML_SCALAR_NODE) return "nothing";
  if (is_null(n)) return "null";
  const unsigned char *s = n->data.scalar.value;
  size_t l = n->data.scalar.length, o = 0;
  buf[o++] = '"';
  for (size_t i = 0; i < l && o + 8 < cap; i++) {
    if (i == 48) {
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
    if (s[i] < 0x20 || s[i] == 0x7f || s[i] == '"' || s[i] == '\\')
      o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", s[i]);
    else
      buf[o++] = (char)s[i];
  }
  buf[o++] = '"';
  buf[o] = 0;
  return buf;
}

static yaml_node_t *node(ctx *c, int id) {
  return yaml_document_get_node(c->doc, id);
}

/* The scalar's bytes, or NULL (with an error) if n is not a usable string. */
static const char *want_string(ctx *c, yaml_node_t *n, const char *path,
                               size_t *len) {
  char b[128];
  if (n->type != YAML_SCALAR_NODE || is_null(n)) {
    set_err(c, WARDEN_ECONFIG, line_of(n), path, "expected a string, got %s",
            describe(n, b, sizeof b));
    return NULL;
  }
  const char *s = (const char *)n->data.scalar.value;
  *len = n->data.scalar.length;
  if (memchr(s, 0, *len)) {
    set_err(c, WARDEN_ECONFIG, line_of(n), path,
            "string contains a NUL character");
    return NULL;
  }
  return s;
}

static char *dup_string(ctx *c, yaml_node_t *n, const char *path) {
  size_t len;
  const char *s = want_string(c, n, path, &len);
  if (!s) return NULL;
  char *d = wd_strndup(s, len);
  if (!d) set_err(c, WARDEN_ENOMEM, line_of(n), path, "out of memory");
  return d;
}

/* One of names[0..n); the index goes to *out. */
static int want_enum(ctx *c, yaml_node_t *n, const char *path,
                     const char *const *names, size_t nnames, int *out) {
  if (n->type == YAML_SCALAR_NODE && !is_null(n)) {
    const char *s = (const char *)n->data.scalar.value;
    size_t l = n->data.scalar.length;
    for (size_t i = 0; i < nnames; i++)
      if (strlen(names[i]) == l && memcmp(names[i], s, l) == 0) {
        *out = (int)i;
        return 0;
      }
  }
  char list[128] = "", b[128];
  size_t o = 0;
  for (size_t i = 0; i < nnames; i++)
    o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "",
                          names[i]);
  set_err(c, WARDEN_ECONFIG, line_of(n), path, "expected one of %s, got %s",
          list, describe(n, b, sizeof b));
  return -1;
}

/* A plain decimal integer in [lo, hi].  Quoted scalars are strings. */
static int want_uint(ctx *c, yaml_node_t *n, const char *path, unsigned lo,
                     unsigned hi, unsigned *out) {
  if (n->type == YAML_SCALAR_NODE && !is_null(n) &&
      n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
    const char *s = (const char *)n->data.scalar.value;
    size_t l = n->data.scalar.length, i = 0;
    if (l && s[0] == '+') i = 1;
    if (i < l) {
      uint64_t v = 0;
      for (; i < l && s[i] >= '0' && s[i] <= '9'; i++)
        if (v <= hi) v = v * 10 + (uint64_t)(s[i] - '0');
      if (i == l && v >= lo && v <= hi) {
        *out = (unsigned)v;
        return 0;
      }
    }
  }
  char b[128];
  set_err(c, WARDEN_ECONFIG, line_of(n), path,
          "expected an integer %u..%u, got %s", lo, hi,
          describe(n, b, sizeof b));
  return -1;
}

/* A plain decimal number in (0, 1] (index.target_recall). */
static int want_recall(ctx *c, yaml_node_t *n, const char *path, double *out) {
  if (n->type == YAML_SCALAR_NODE && !is_null(n) &&
      n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && n->data.scalar.length < 32) {
    char buf[32], *e;
    memcpy(buf, n->data.scalar.value, n->data.scalar.length);
    buf[n->data.scalar.length] = 0;
    double v = strtod(buf, &e);
    if (e != buf && *e == 0 && v > 0 && v <= 1) {
      *out = v;
      return 0;
    }
  }
  char b[128];
  set_err(c, WARDEN_ECONFIG, line_of(n), path, "expected a number in (0, 1], got %s",
          describe(n, b, sizeof b));
  return -1;
}

/* Mapping or null (an empty section): returns the pair range. */
static int want_mapping(ctx *c, yaml_node_t *n, const char *path,
                        yaml_node_pair_t **b, yaml_node_pair_t **e) {
  if (n->type == YAML_MAPPING_NODE) {
    *b = n->data.mapping.pairs.start;
    *e = n->data.mapping.pairs.top;
    return 0;
  }
  if (is_null(n)) {
    *b = *e = NULL;
    return 0;
  }
  char buf[128];
  set_err(c, WARDEN_ECONFIG, line_of(n), path, "expected a mapping, got %s",
          describe(n, buf, sizeof buf));
  return -1;
}

/* "parent.child" (or "child" at the top), truncated to fit. */
static void join(char *dst, size_t cap, const char *parent, const char *s,
                 size_t len) {
  int plen = (int)(len > 200 ? 200 : len);
  if (len == 0) s = "\"\"", plen = 2; /* make an empty key visible */
  if (parent && *parent)
    snprintf(dst, cap, "%s.%.*s", parent, plen, s);
  else
    snprintf(dst, cap, "%.*s", plen, s);
}

typedef struct keyref {
  const char *s;
  size_t len;
  size_t idx;
} keyref;

static int keyref_cmp(const void *a, const void *b) {
  const keyref *x = a, *y = b;
  size_t m = x->len < y->len ? x->len : y->len;
  int r = memcmp(x->s, y->s, m);
  if (r) return r;
  if (x->len != y->len) return x->len < y->len ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Every key a scalar, no key twice.  Reports the earliest repeat in
 * document order.  Sorting keeps this O(n log n) for big metadata maps. */
static int check_keys(ctx *c, const char *path, yaml_node_pair_t *b,
                      yaml_node_pair_t *e) {
  size_t n = (size_t)(e - b);
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++) {
    yaml_node_t *k = node(c, b[i].key);
    if (k->type != YAML_SCALAR_NODE) {
      char buf[128];
      set_err(c, WARDEN_ECONFIG, line_of(k), path,
              "expected a string key, got %s", describe(k, buf, sizeof buf));
      return -1;
    }
  }
  if (n == 1) return 0;
  keyref *r = wd_calloc(n, sizeof *r);
  if (!r) {
    set_err(c, WARDEN_ENOMEM, 1, path, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    yaml_node_t *k = node(c, b[i].key);
    r[i].s = (const char *)k->data.scalar.value;
    r[i].len = k->data.scalar.length;
    r[i].idx = i;
  }
  qsort(r, n, sizeof *r, keyref_cmp);
  size_t dup = SIZE_MAX, first = 0;
  for (size_t i = 1; i < n; i++) {
    if (r[i].len == r[i - 1].len && !memcmp(r[i].s, r[i - 1].s, r[i].len)) {
      /* r[i-1] and r[i] are the group's two earliest when r[i-2] differs */
      int group_start = i < 2 || r[i - 2].len != r[i].len ||
                        memcmp(r[i - 2].s, r[i].s, r[i].len);
      if (group_start && r[i].idx < dup) {
        dup = r[i].idx;
        first = r[i - 1].idx;
      }
    }
  }
  wd_free(r);
  if (dup == SIZE_MAX) return 0;
  yaml_node_t *k = node(c, b[dup].key);
  char p[512];
  join(p, sizeof p, path, (const char *)k->data.scalar.value,
       k->data.scalar.length);
  set_err(c, WARDEN_ECONFIG, line_of(k), p, "duplicate key (first at line %zu)",
          line_of(node(c, b[first].key)));
  return -1;
}

/* Index of the key among names, or an "unknown key" error. */
static int known_key(ctx *c, yaml_node_t *k, const char *path,
                     const char *const *names, size_t nnames) {
  const char *s = (const char *)k->data.scalar.value;
  size_t l = k->data.scalar.length;
  for (size_t i = 0; i < nnames; i++)
    if (strlen(names[i]) == l && memcmp(names[i], s, l) == 0) return (int)i;
  char p[512], list[256] = "";
  size_t o = 0;
  for (size_t i = 0; i < nnames; i++)
    o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "",
                          names[i]);
  char shown[64];
  size_t sl = 0;
  for (size_t i = 0; i < l && sl + 1 < sizeof shown; i++)
    shown[sl++] = (s[i] >= 0x20 && s[i] != 0x7f) ? s[i] : '?';
  shown[sl] = 0;
  join(p, sizeof p, path, shown, sl);
  set_err(c, WARDEN_ECONFIG, line_of(k), p, "unknown key (expected %s)", list);
  return -1;
}

/* ------------------------------------------------------------ principals */

/* A sequence (or null = empty) of strings into a NULL-terminated vector. */
static int want_strv(ctx *c, yaml_node_t *n, const char *path, char ***out,
                     size_t *nout, int principals, int allow_star) {
  char b[128];
  if (n->type != YAML_SEQUENCE_NODE && !is_null(n)) {
    set_err(c, WARDEN_ECONFIG, line_of(n), path, "expected a sequence, got %s",
            describe(n, b, sizeof b));
    return -1;
  }
  size_t cnt = 0;
  yaml_node_item_t *it = NULL;
  if (n->type == YAML_SEQUENCE_NODE) {
    it = n->data.sequence.items.start;
    cnt = (size_t)(n->data.sequence.items.top - it);
  }
  char **v = wd_calloc(cnt + 1, sizeof *v);
  if (!v) {
    set_err(c, WARDEN_ENOMEM, line_of(n), path, "out of memory");
    return -1;
  }
  *out = v; /* owned by the config from here: freed with it on error */
  for (size_t i = 0; i < cnt; i++) {
    yaml_node_t *e = node(c, it[i]);
    char p[512];
    snprintf(p, sizeof p, "%s[%zu]", path, i);
    size_t len;
    const char *s = want_string(c, e, p, &len);
    if (!s) return -1;
    if (principals && len == 1 && s[0] == '*' && !allow_star) {
      set_err(c, WARDEN_ECONFIG, line_of(e), p,
              "\"*\" is not allowed (use an empty allow list)");
      return -1;
    }
    char why[400];
    if (principals && wd_principal_check(s, len, allow_star, why, sizeof why)) {
      set_err(c, WARDEN_ECONFIG, line_of(e), p, "invalid principal %s: %s",
              describe(e, b, sizeof b), why);
      return -1;
    }
    if (!(v[i] = wd_strndup(s, len))) {
      set_err(c, WARDEN_ENOMEM, line_of(e), p, "out of memory");
      return -1;
    }
    *nout = i + 1;
  }
  return 0;
}

/* -------------------------------------------------------------- sections */

static int parse_metadata(ctx *c, wd_config *cfg, yaml_node_t *n) {
  yaml_node_pair_t *b, *e;
  if (want_mapping(c, n, "metadata", &b, &e) ||
      check_keys(c, "metadata", b, e))
    return -1;
  size_t cnt = (size_t)(e - b);
  if (cnt == 0) return 0;
  cfg->meta = wd_calloc(cnt, sizeof *cfg->meta);
  if (!cfg->meta) {
    set_err(c, WARDEN_ENOMEM, line_of(n), "metadata", "out of memory");
    return -1;
  }
  for (size_t i = 0; i < cnt; i++) {
    yaml_node_t *k = node(c, b[i].key), *v = node(c, b[i].value);
    const char *ks = (const char *)k->data.scalar.value;
    size_t kl = k->data.scalar.length;
    char p[512];
    join(p, sizeof p, "metadata", ks, kl);
    if (kl < 1 || kl > CFG_MAX_KEY) {
      set_err(c, WARDEN_ECONFIG, line_of(k), p,
              "key must be 1..%d bytes, got %zu", CFG_MAX_KEY, kl);
      return -1;
    }
    if (memchr(ks, 0, kl)) {
      set_err(c, WARDEN_ECONFIG, line_of(k), p, "key contains a NUL character");
      return -1;
    }
    int t;
    if (want_enum(c, v, p, type_names + 1, NELEM(type_names) - 1, &t))
      return -1;
    if (!(cfg->meta[i].key = wd_strndup(ks, kl))) {
      set_err(c, WARDEN_ENOMEM, line_of(k), p, "out of memory");
      return -1;
    }
    cfg->meta[i].type = (wd_type)(t + 1);
    cfg->nmeta = i + 1;
  }
  return 0;
}

static int parse_acl(ctx *c, wd_config *cfg, yaml_node_t *n) {
  static const char *const keys[] = {"allow", "deny"};
  yaml_node_pair_t *b, *e;
  if (want_mapping(c, n, "default_acl", &b, &e) ||
      check_keys(c, "default_acl", b, e))
    return -1;
  int have_allow = 0;
  for (yaml_node_pair_t *p = b; p < e; p++) {
    yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
    int w = known_key(c, k, "default_acl", keys, NELEM(keys));
    if (w < 0) return -1;
    if (w == 0) {
      have_allow = 1;
      if (want_strv(c, v, "default_acl.allow", &cfg->default_allow,
                    &cfg->ndefault_allow, 1, 1))
        return -1;
    } else if (want_strv(c, v, "default_acl.deny", &cfg->default_deny,
                         &cfg->ndefault_deny, 1, 0)) {
      return -1;
    }
  }
  if (!have_allow) {
    set_err(c, WARDEN_ECONFIG, line_of(n), "default_acl.allow",
            "required key is missing");
    return -1;
  }
  cfg->has_default_acl = 1;
  return 0;
}

static int parse_index(ctx *c, wd_config *cfg, yaml_node_t *n) {
  static const char *const keys[] = {"type", "nlist", "quantizer", "graph", "target_recall"};
  yaml_node_pair_t *b, *e;
  if (want_mapping(c, n, "index", &b, &e) || check_keys(c, "index", b, e))
    return -1;
  for (yaml_node_pair_t *p = b; p < e; p++) {
    yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
    int w = known_key(c, k, "index", keys, NELEM(keys));
    if (w < 0) return -1;
    if (w == 0) {
      if (want_enum(c, v, "index.type", index_names, NELEM(index_names),
                    &cfg->index_type))
        return -1;
    } else if (w == 1) {
      if (want_uint(c, v, "index.nlist", 1, 1048576, &cfg->nlist)) return -1;
    } else if (w == 3) { /* issue 14: the graph index */
      if (want_enum(c, v, "index.graph", graph_names, NELEM(graph_names), &cfg->graph))
        return -1;
    } else if (w == 4) {
      if (want_recall(c, v, "index.target_recall", &cfg->target_recall)) return -1;
    } else if (want_enum(c, v, "index.quantizer", quant_names,
                         NELEM(quant_names), &cfg->sq8)) {
      return -1;
    }
  }
  return 0;
}

static int parse_resolver(ctx *c, wd_config *cfg, yaml_node_t *n) {
  static const char *const keys[] = {"type", "command", "timeout_ms"};
  yaml_node_pair_t *b, *e;
  if (want_mapping(c, n, "resolver", &b, &e) ||
      check_keys(c, "resolver", b, e))
    return -1;
  yaml_node_t *type_node = NULL;
  for (yaml_node_pair_t *p = b; p < e; p++) {
    yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
    int w = known_key(c, k, "resolver", keys, NELEM(keys));
    if (w < 0) return -1;
    if (w == 0) {
      type_node = v;
      if (want_enum(c, v, "resolver.type", resolver_names,
                    NELEM(resolver_names), &cfg->resolver_type))
        return -1;
    } else if (w == 1) {
      if (want_strv(c, v, "resolver.command", &cfg->resolver_cmd,
                    &cfg->nresolver_cmd, 0, 0))
        return -1;
      if (cfg->nresolver_cmd == 0) {
        set_err(c, WARDEN_ECONFIG, line_of(v), "resolver.command",
                "must not be empty");
        return -1;
      }
      if (cfg->resolver_cmd[0][0] == 0) {
        set_err(c, WARDEN_ECONFIG,
                line_of(node(c, v->data.sequence.items.start[0])),
                "resolver.command[0]", "program name must not be empty");
        return -1;
      }
    } else if (want_uint(c, v, "resolver.timeout_ms", 1, 600000,
                         &cfg->resolver_timeout_ms)) {
      return -1;
    }
  }
  if (cfg->resolver_type == WD_RESOLVER_COMMAND && cfg->nresolver_cmd == 0) {
    set_err(c, WARDEN_ECONFIG, line_of(type_node ? type_node : n),
            "resolver.command", "required when resolver.type is command");
    return -1;
  }
  return 0;
}

static int parse_embedder(ctx *c, wd_config *cfg, yaml_node_t *n) {
  static const char *const keys[] = {"type"};
  yaml_node_pair_t *b, *e;
  if (want_mapping(c, n, "embedder", &b, &e) ||
      check_keys(c, "embedder", b, e))
    return -1;
  for (yaml_node_pair_t *p = b; p < e; p++) {
    yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
    if (known_key(c, k, "embedder", keys, NELEM(keys)) < 0) return -1;
    if (want_enum(c, v, "embedder.type", embedder_names, NELEM(embedder_names),
                  &cfg->embedder))
      return -1;
  }
  return 0;
}

static int parse_audit(ctx *c, wd_config *cfg, yaml_node_t *n) {
  static const char *const keys[] = {"path", "fsync"};
  static const char *const bools[] = {"false", "true"};
  yaml_node_pair_t *b, *e;
  if (want_mapping(c, n, "audit", &b, &e) || check_keys(c, "audit", b, e))
    return -1;
  for (yaml_node_pair_t *p = b; p < e; p++) {
    yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
    int ki = known_key(c, k, "audit", keys, NELEM(keys));
    if (ki < 0) return -1;
    if (ki == 1) { /* hardening (issue 13): fsync each audit line */
      if (want_enum(c, v, "audit.fsync", bools, NELEM(bools), &cfg->audit_fsync)) return -1;
      continue;
    }
    if (!(cfg->audit_path = dup_string(c, v, "audit.path"))) return -1;
    if (!cfg->audit_path[0]) {
      set_err(c, WARDEN_ECONFIG, line_of(v), "audit.path",
              "must not be empty");
      return -1;
    }
  }
  if (cfg->audit_fsync && !cfg->audit_path) {
    set_err(c, WARDEN_ECONFIG, line_of(n), "audit.fsync", "needs audit.path");
    return -1;
  }
  return 0;
}

/* lexical: language, fusion, rrf_k, semantic_weight (engine/lexical.h) */
static int parse_lexical(ctx *c, wd_config *cfg, yaml_node_t *n) {
  static const char *const keys[] = {"language", "fusion", "rrf_k", "semantic_weight"};
  static const char *const fusions[] = {"rrf", "weighted"};
  yaml_node_pair_t *b, *e;
  if (want_mapping(c, n, "lexical", &b, &e) || check_keys(c, "lexical", b, e)) return -1;
  for (yaml_node_pair_t *p = b; p < e; p++) {
    yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
    int w = known_key(c, k, "lexical", keys, NELEM(keys));
    if (w < 0) return -1;
    if (w == 0) {
      /* (not want_enum: its message buffer is too small for ~30 names) */
      char *s = dup_string(c, v, "lexical.language");
      if (!s) return -1;
      int li = -1;
      for (int i = 0; wd_lex_languages[i]; i++)
        if (strcmp(wd_lex_languages[i], s) == 0) li = i;
      if (li < 0) {
        set_err(c, WARDEN_ECONFIG, line_of(v), "lexical.language",
                "unknown language \"%.64s\" (english, none, or a Snowball stemmer name: "
                "french, german, russian, spanish, ...)", s);
        wd_free(s);
        return -1;
      }
      wd_free(s);
      cfg->lex_language = li;
    } else if (w == 1) {
      if (want_enum(c, v, "lexical.fusion", fusions, NELEM(fusions), &cfg->lex_fusion)) return -1;
    } else if (w == 2) {
      if (want_uint(c, v, "lexical.rrf_k", 1, 100000, &cfg->lex_rrf_k)) return -1;
    } else {
      char *s = dup_string(c, v, "lexical.semantic_weight");
      if (!s) return -1;
      char *end;
      double x = strtod(s, &end);
      int ok = *s && !*end && x >= 0 && x <= 1;
      wd_free(s);
      if (!ok) {
        set_err(c, WARDEN_ECONFIG, line_of(v), "lexical.semantic_weight",
                "expected a number in [0, 1]");
        return -1;
      }
      cfg->lex_weight = x;
    }
  }
  return 0;
}

static int parse_root(ctx *c, wd_config *cfg, yaml_node_t *root) {
  static const char *const keys[] = {"dimension", "metric",  "metadata",
                                     "default_acl", "index", "resolver",
                                     "embedder",  "audit", "lexical"};
  char b[128];
  if (root->type != YAML_MAPPING_NODE) {
    set_err(c, WARDEN_ECONFIG, line_of(root), NULL,
            "expected a mapping at the top level, got %s",
            describe(root, b, sizeof b));
    return -1;
  }
  yaml_node_pair_t *pb = root->data.mapping.pairs.start,
                   *pe = root->data.mapping.pairs.top;
  if (check_keys(c, NULL, pb, pe)) return -1;
  int have_dim = 0;
  for (yaml_node_pair_t *p = pb; p < pe; p++) {
    yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
    int w = known_key(c, k, NULL, keys, NELEM(keys)), r = 0;
    switch (w) {
    case 0:
      have_dim = 1;
      r = want_uint(c, v, "dimension", 1, 65536, &cfg->dim);
      break;
    case 1:
      r = want_enum(c, v, "metric", metric_names, NELEM(metric_names),
                    &cfg->metric);
      break;
    case 2: r = parse_metadata(c, cfg, v); break;
    case 3: r = parse_acl(c, cfg, v); break;
    case 4: r = parse_index(c, cfg, v); break;
    case 5: r = parse_resolver(c, cfg, v); break;
    case 6: r = parse_embedder(c, cfg, v); break;
    case 7: r = parse_audit(c, cfg, v); break;
    case 8: r = parse_lexical(c, cfg, v); break;
    default: r = -1;
    }
    if (r) return -1;
  }
  if (!have_dim) {
    set_err(c, WARDEN_ECONFIG, line_of(root), "dimension",
            "required key is missing");
    return -1;
  }
  return 0;
}

/* libyaml's own complaint, with the best line number it offers. */
static void yaml_error(ctx *c, yaml_parser_t *p, const char *buf, size_t len) {
  if (p->error == YAML_MEMORY_ERROR) {
    set_err(c, WARDEN_ENOMEM, 1, NULL, "out of memory");
    return;
  }
  size_t line;
  if (p->error == YAML_READER_ERROR) {
    /* reader errors carry a byte offset, not a mark */
    line = 1;
    for (size_t i = 0; i < p->problem_offset && i < len; i++)
      if (buf[i] == '\n') line++;
  } else {
    line = p->problem_mark.line + 1;
  }
  const char *prob = p->problem ? p->problem : "unknown error";
  if (p->context && p->context_mark.line + 1 != line)
    set_err(c, WARDEN_ECONFIG, line, NULL,
            "YAML syntax error: %s (started at line %zu): %s", p->context,
            p->context_mark.line + 1, prob);
  else if (p->context)
    set_err(c, WARDEN_ECONFIG, line, NULL, "YAML syntax error: %s: %s",
            p->context, prob);
  else
    set_err(c, WARDEN_ECONFIG, line, NULL, "YAML syntax error: %s", prob);
}

void wd_config_defaults(wd_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->metric = WD_METRIC_COSINE;
  cfg->index_type = WD_INDEX_AUTO;
  /* SQ8 by default: a quarter of the bytes per probed vector, re-ranked
   * with the exact vectors; measured faster than flat lists at every IVF
   * point of the bench, recall@10 >= 0.98 (see the README) */
  cfg->sq8 = 1;
  cfg->graph = 1;
  cfg->target_recall = 0.95;
  cfg->resolver_type = WD_RESOLVER_NONE;
  cfg->resolver_timeout_ms = 500;
  cfg->embedder = WD_EMBEDDER_NONE;
  cfg->lex_language = 0; /* english */
  cfg->lex_fusion = WD_FUSION_RRF;
  cfg->lex_rrf_k = 60;
  cfg->lex_weight = 0.5;
}

int wd_config_parse(const char *buf, size_t len, const char *name,
                    wd_config *out, char *err, size_t errlen) {
  ctx c = {NULL, name ? name : "warden.yaml", err, errlen, 0};
  if (err && errlen) err[0] = 0;
  if (!buf && len) {
    set_err(&c, WARDEN_ECONFIG, 1, NULL, "no input");
    return c.rc;
  }
  wd_config cfg;
  wd_config_defaults(&cfg);

  yaml_parser_t parser;
  yaml_document_t doc, extra;
  if (!yaml_parser_initialize(&parser)) {
    set_err(&c, WARDEN_ENOMEM, 1, NULL, "out of memory");
    return c.rc;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)(buf ? buf : ""),
                               len);
  if (!yaml_parser_load(&parser, &doc)) {
    yaml_error(&c, &parser, buf, len);
    yaml_parser_delete(&parser);
    return c.rc;
  }
  c.doc = &doc;
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (!root || is_null(root)) {
    /* a null root's mark sits past the last line: blame line 1 */
    set_err(&c, WARDEN_ECONFIG, 1, NULL,
            "the document is empty (dimension is required)");
  } else {
    parse_root(&c, &cfg, root);
  }
  if (!c.rc) {
    /* A second document (or trailing garbage) is a mistake, not ignorable */
    if (!yaml_parser_load(&parser, &extra)) {
      yaml_error(&c, &parser, buf, len);
    } else {
      yaml_node_t *r2 = yaml_document_get_root_node(&extra);
      if (r2)
        set_err(&c, WARDEN_ECONFIG, line_of(r2), NULL,
                "only one YAML document is allowed");
      yaml_document_delete(&extra);
    }
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  if (c.rc) {
    wd_config_free(&cfg);
    return c.rc;
  }
  *out = cfg;
  return 0;
}

static int io_err(char *err, size_t errlen, const char *path, const char *what,
                  int e) {
  if (err && errlen)
    snprintf(err, errlen, "%s: %s: %s", path, what, strerror(e));
  return WARDEN_EIO;
}

int wd_config_load(const char *path, wd_config *out, char *err,
                   size_t errlen) {
  if (err && errlen) err[0] = 0;
  if (!path || !out) {
    if (err && errlen) snprintf(err, errlen, "wd_config_load: no path");
    return WARDEN_EIO;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_err(err, errlen, path, "cannot open", errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return io_err(err, errlen, path, "cannot stat", e);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return io_err(err, errlen, path, "not a regular file", EINVAL);
  }
  if ((uint64_t)st.st_size > CFG_MAX_FILE) {
    close(fd);
    if (err && errlen)
      snprintf(err, errlen, "%s:1: file is larger than %u bytes", path,
               CFG_MAX_FILE);
    return WARDEN_ECONFIG;
  }
  size_t cap = (size_t)st.st_size, len = 0;
  char *buf = wd_malloc(cap + 1);
  if (!buf) {
    close(fd);
    if (err && errlen) snprintf(err, errlen, "%s: out of memory", path);
    return WARDEN_ENOMEM;
  }
  while (len < cap) {
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      wd_free(buf);
      close(fd);
      return io_err(err, errlen, path, "cannot read", e);
    }
    if (r == 0) break; /* shrank under us: parse what we have */
    len += (size_t)r;
  }
  close(fd);
  int rc = wd_config_parse(buf, len, path, out, err, errlen);
  wd_free(buf);
  return rc;
}

/* ---------------------------------------------------------------- writer */

typedef struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 512;
    while (nc < b->len + n + 1) nc *= 2;
    char *q = wd_realloc(b->p, nc);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q;
    b->cap = nc;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void sb_printf(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->oom = 1;
    return;
  }
  if ((size_t)n < sizeof tmp) {
    sb_put(b, tmp, (size_t)n);
    return;
  }
  char *big = wd_malloc((size_t)n + 1);
  if (!big) {
    b->oom = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb_put(b, big, (size_t)n);
  wd_free(big);
}

/* A YAML double-quoted scalar.  Code points libyaml would refuse raw, or
 * would read as line breaks (NEL, LS, PS), are escaped; invalid UTF-8 sets
 * *bad since YAML cannot carry raw bytes. */
static void sb_quote(sbuf *b, const char *str, int *bad) {
  const unsigned char *s = (const unsigned char *)str;
  sb_put(b, "\"", 1);
  for (size_t i = 0; s[i];) {
    unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      sb_put(b, e, 2);
      i++;
      continue;
    }
    if (c >= 0x20 && c < 0x7f) {
      sb_put(b, (const char *)s + i, 1);
      i++;
      continue;
    }
    if (c == '\t' || c == '\n' || c == '\r') {
      char e[2] = {'\\', c == '\t' ? 't' : c == '\n' ? 'n' : 'r'};
      sb_put(b, e, 2);
      i++;
      continue;
    }
    if (c < 0x80) { /* other C0 controls and DEL */
      sb_printf(b, "\\x%02x", c);
      i++;
      continue;
    }
    uint32_t cp;
    size_t n;
    if ((c & 0xe0) == 0xc0) cp = c & 0x1f, n = 2;
    else if ((c & 0xf0) == 0xe0) cp = c & 0x0f, n = 3;
    else if ((c & 0xf8) == 0xf0) cp = c & 0x07, n = 4;
    else {
      *bad = 1;
      return;
    }
    for (size_t k = 1; k < n; k++) {
      if ((s[i + k] & 0xc0) != 0x80) {
        *bad = 1;
        return;
      }
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    static const uint32_t minv[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < minv[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      *bad = 1;
      return;
    }
    if (cp <= 0x9f || cp == 0xfeff || cp == 0xfffe || cp == 0xffff ||
        cp == 0x2028 || cp == 0x2029)
      sb_printf(b, cp <= 0xff ? "\\x%02x" : "\\u%04x", (unsigned)cp);
    else
      sb_put(b, (const char *)s + i, n);
    i += n;
  }
  sb_put(b, "\"", 1);
}

/* A plain key is safe when it cannot be mistaken for YAML syntax. */
static int plain_key_ok(const char *s) {
  if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
        s[0] == '_'))
    return 0;
  for (size_t i = 1; s[i]; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
      return 0;
  }
  return 1;
}

static void sb_strv(sbuf *b, char **v, size_t n, int *bad) {
  sb_put(b, "[", 1);
  for (size_t i = 0; i < n; i++) {
    if (i) sb_put(b, ", ", 2);
    if (!v || !v[i]) {
      *bad = 1;
      return;
    }
    sb_quote(b, v[i], bad);
  }
  sb_put(b, "]\n", 2);
}

static int in_range(int v, size_t n) { return v >= 0 && (size_t)v < n; }

/* Render cfg; NULL with *bad set when cfg holds something YAML or the
 * schema cannot express. */
static char *render(const wd_config *cfg, size_t *len, int *bad, int *oom) {
  sbuf b = {NULL, 0, 0, 0};
  if (!in_range(cfg->metric, NELEM(metric_names)) ||
      !in_range(cfg->index_type, NELEM(index_names)) ||
      !in_range(cfg->sq8, NELEM(quant_names)) || !in_range(cfg->graph, NELEM(graph_names)) ||
      !(cfg->target_recall >= 0 && cfg->target_recall <= 1) || /* 0: the default */
      !in_range(cfg->resolver_type, NELEM(resolver_names)) ||
      !in_range(cfg->embedder, NELEM(embedder_names))) {
    *bad = 1;
    return NULL;
  }
  sb_printf(&b, "# warden collection configuration (SPEC section 3).\n"
                "# Written by warden; comments are not preserved.\n");
  sb_printf(&b, "dimension: %u\n", cfg->dim);
  sb_printf(&b, "metric: %s\n", metric_names[cfg->metric]);
  if (cfg->nmeta) {
    sb_printf(&b, "metadata:\n");
    for (size_t i = 0; i < cfg->nmeta && !*bad; i++) {
      const wd_meta_decl *m = &cfg->meta[i];
      if (!m->key || m->type < WD_T_STRING || m->type > WD_T_STRING_LIST) {
        *bad = 1;
        break;
      }
      sb_put(&b, "  ", 2);
      if (plain_key_ok(m->key))
        sb_put(&b, m->key, strlen(m->key));
      else
        sb_quote(&b, m->key, bad);
      sb_printf(&b, ": %s\n", type_names[m->type]);
    }
  }
  if (cfg->has_default_acl) {
    sb_printf(&b, "default_acl:\n  allow: ");
    sb_strv(&b, cfg->default_allow, cfg->ndefault_allow, bad);
    if (cfg->ndefault_deny) {
      sb_printf(&b, "  deny: ");
      sb_strv(&b, cfg->default_deny, cfg->ndefault_deny, bad);
    }
  }
  sb_printf(&b, "index:\n  type: %s\n", index_names[cfg->index_type]);
  if (cfg->nlist) sb_printf(&b, "  nlist: %u\n", cfg->nlist);
  sb_printf(&b, "  quantizer: %s\n", quant_names[cfg->sq8]);
  if (!cfg->graph) sb_printf(&b, "  graph: off\n");
  if (cfg->target_recall > 0 && cfg->target_recall != 0.95) sb_printf(&b, "  target_recall: %.17g\n", cfg->target_recall);
  sb_printf(&b, "resolver:\n  type: %s\n", resolver_names[cfg->resolver_type]);
  if (cfg->nresolver_cmd) {
    sb_printf(&b, "  command: ");
    sb_strv(&b, cfg->resolver_cmd, cfg->nresolver_cmd, bad);
  }
  sb_printf(&b, "  timeout_ms: %u\n", cfg->resolver_timeout_ms);
  sb_printf(&b, "embedder:\n  type: %s\n", embedder_names[cfg->embedder]);
  /* the lexical section only when it says something (a zeroed config's
   * rrf_k 0 and weight 0 mean the defaults) */
  if (cfg->lex_language != 0 || cfg->lex_fusion != WD_FUSION_RRF ||
      (cfg->lex_rrf_k != 0 && cfg->lex_rrf_k != 60) ||
      (cfg->lex_weight != 0 && cfg->lex_weight != 0.5)) {
    int nl = 0;
    while (wd_lex_languages[nl]) nl++;
    if (cfg->lex_language < 0 || cfg->lex_language >= nl || cfg->lex_fusion < 0 ||
        cfg->lex_fusion > 1 || !(cfg->lex_weight >= 0 && cfg->lex_weight <= 1) ||
        cfg->lex_rrf_k > 100000) {
      *bad = 1;
    } else {
      char wb[40];
      snprintf(wb, sizeof wb, "%.15g", cfg->lex_weight); /* shortest that reads back */
      if (strtod(wb, NULL) != cfg->lex_weight) snprintf(wb, sizeof wb, "%.17g", cfg->lex_weight);
      sb_printf(&b, "lexical:\n  language: %s\n  fusion: %s\n  rrf_k: %u\n  semantic_weight: %s\n",
                wd_lex_languages[cfg->lex_language], cfg->lex_fusion ? "weighted" : "rrf",
                cfg->lex_rrf_k ? cfg->lex_rrf_k : 60, wb);
    }
  }
  if (cfg->audit_path) {
    sb_printf(&b, "audit:\n  path: ");
    sb_quote(&b, cfg->audit_path, bad);
    sb_put(&b, "\n", 1);
    if (cfg->audit_fsync) sb_printf(&b, "  fsync: true\n");
  }
  if (b.oom || *bad) {
    *oom = b.oom;
    wd_free(b.p);
    return NULL;
  }
  *len = b.len;
  return b.p;
}

int wd_config_write(const wd_config *cfg, const char *path, char *err,
                    size_t errlen) {
  if (err && errlen) err[0] = 0;
  if (!cfg || !path) {
    if (err && errlen) snprintf(err, errlen, "wd_config_write: no config");
    return WARDEN_EIO;
  }
  int bad = 0, oom = 0;
  size_t len = 0;
  char *text = render(cfg, &len, &bad, &oom);
  if (!text) {
    if (err && errlen)
      snprintf(err, errlen, "%s: %s", path,
               oom ? "out of memory"
                   : "config holds a value that cannot be written "
                     "(bad enum or invalid UTF-8)");
    return oom ? WARDEN_ENOMEM : WARDEN_ECONFIG;
  }
  /* Never write a file we would refuse to load. */
  wd_config check;
  int rc = wd_config_parse(text, len, path, &check, err, errlen);
  if (rc) {
    wd_free(text);
    return rc;
  }
  wd_config_free(&check);

  const char *what = NULL;
  int wrc = wd_atomic_write(path, text, len, &what), e = errno;
  wd_free(text);
  if (wrc == 0) return 0;
  if (e == ENOMEM && what && !strcmp(what, "out of memory")) {
    if (err && errlen) snprintf(err, errlen, "%s: out of memory", path);
    return WARDEN_ENOMEM;
  }
  return io_err(err, errlen, path, what, e);
}
