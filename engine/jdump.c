/*
 * jdump.c -- see jdump.h.  jansson 2.14's dump.c, for the types a stored
 * record holds: object members in insertion order (json_object_foreach's
 * and json_dumps' order), "," and ":" without spaces, strings with '"'
 * and '\\' escaped, \b \f \n \r \t by name, other code points below 0x20
 * as \u%04X, everything else (valid UTF-8: jansson's strings are) as is;
 * integers as %lld.
 */
#include "engine/jdump.h"

#include "base/wd_alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char *p;
  size_t n, cap;
  char *own; /* p when heap-allocated */
  int fail;
} ob;

static int grow(ob *o, size_t more) {
  if (o->n + more <= o->cap) return 0;
  size_t nc = o->cap * 2;
  while (nc < o->n + more) nc *= 2;
  char *np = wd_malloc(nc);
  if (!np) {
    o->fail = 1;
    return -1;
  }
  memcpy(np, o->p, o->n);
  wd_free(o->own);
  o->p = o->own = np;
  o->cap = nc;
  return 0;
}

static void put(ob *o, const char *s, size_t n) {
  if (o->fail || grow(o, n)) return;
  memcpy(o->p + o->n, s, n);
  o->n += n;
}

static void putc1(ob *o, char c) {
  if (o->fail || grow(o, 1)) return;
  o->p[o->n++] = c;
}

static void str(ob *o, const char *s, size_t n) {
  static const char hexd[] = "0123456789ABCDEF";
  putc1(o, '"');
  size_t from = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    put(o, s + from, i - from);
    from = i + 1;
    char e[6] = {'\\', 0};
    size_t el = 2;
    switch (c) {
      case '\\': e[1] = '\\'; break;
      case '"': e[1] = '"'; break;
      case '\b': e[1] = 'b'; break;
      case '\f': e[1] = 'f'; break;
      case '\n': e[1] = 'n'; break;
      case '\r': e[1] = 'r'; break;
      case '\t': e[1] = 't'; break;
      default:
        e[1] = 'u';
        e[2] = '0';
        e[3] = '0';
        e[4] = hexd[c >> 4];
        e[5] = hexd[c & 15];
        el = 6;
    }
    put(o, e, el);
  }
  put(o, s + from, n - from);
  putc1(o, '"');
}

static void integer(ob *o, json_int_t v) {
  char b[24];
  size_t i = sizeof b;
  unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
  do {
    b[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) b[--i] = '-';
  put(o, b + i, sizeof b - i);
}

/* 1: a real somewhere (json_dumps' job); 0 written (or o->fail) */
static int value(ob *o, const json_t *v, int depth) {
  if (depth > 2048) { /* jansson's JSON_PARSER_MAX_DEPTH: let it judge */
    return 1;
  }
  switch (json_typeof(v)) {
    case JSON_OBJECT: {
      putc1(o, '{');
      const char *k;
      json_t *x;
      int first = 1;
      json_object_foreach((json_t *)v, k, x) {
        if (!first) putc1(o, ',');
        first = 0;
        str(o, k, strlen(k));
        putc1(o, ':');
        if (value(o, x, depth + 1)) return 1;
      }
      putc1(o, '}');
      return 0;
    }
    case JSON_ARRAY: {
      putc1(o, '[');
      for (size_t i = 0; i < json_array_size(v); i++) {
        if (i) putc1(o, ',');
        if (value(o, json_array_get(v, i), depth + 1)) return 1;
      }
      putc1(o, ']');
      return 0;
    }
    case JSON_STRING:
      str(o, json_string_value(v), json_string_length(v));
      return 0;
    case JSON_INTEGER:
      integer(o, json_integer_value(v));
      return 0;
    case JSON_TRUE:
      put(o, "true", 4);
      return 0;
    case JSON_FALSE:
      put(o, "false", 5);
      return 0;
    case JSON_NULL:
      put(o, "null", 4);
      return 0;
    default: /* JSON_REAL */
      return 1;
  }
}

int wd_jdump(const json_t *v, char *buf, size_t cap, char **out, size_t *len) {
  ob o = {buf, 0, cap, NULL, 0};
  if (!v || (!json_is_object(v) && !json_is_array(v)) || cap < 2) return -1;
  if (value(&o, v, 0)) {
    /* jansson's text, moved into memory of ours (the caller frees it
     * with wd_free) */
    wd_free(o.own);
    char *s = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!s) return -1;
    size_t n = strlen(s);
    char *d = n < cap ? buf : wd_malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    free(s);
    if (!d) return -1;
    *out = d;
    *len = n;
    return 0;
  }
  putc1(&o, 0);
  if (o.fail) {
    wd_free(o.own);
    return -1;
  }
  *out = o.p;
  *len = o.n - 1;
  return 0;
}
