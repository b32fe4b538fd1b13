/*
 * cli_util.c -- the shared plumbing of the warden CLI: option parsing,
 * error printing and exit codes, JSON output, file reading and the progress
 * reporter.  See cli.h for the contract of each piece; this file is the one
 * place that decides how the tool talks to its user.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ memory */

static void cli_oom(void) {
  fputs("warden: out of memory\n", stderr);
  exit(CLI_EXIT_RUNTIME);
}

void *cli_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) cli_oom();
  return p;
}

void *cli_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) cli_oom();
  return q;
}

char *cli_xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = cli_xmalloc(n);
  memcpy(d, s, n);
  return d;
}

/* ------------------------------------------------------------- lists */

void cli_list_push(cli_list *l, const char *s) {
  if (l->n + 1 >= l->cap || !l->v) {
    l->cap = l->cap ? l->cap * 2 : 8;
    l->v = cli_xrealloc(l->v, l->cap * sizeof *l->v);
  }
  l->v[l->n++] = s;
  l->v[l->n] = NULL;
}

void cli_list_free(cli_list *l) {
  free(l->v);
  free(l->owned);
  memset(l, 0, sizeof *l);
}

void cli_split(const char *s, cli_list *out) {
  cli_list_free(out);
  out->owned = cli_xstrdup(s);
  out->cap = 8;
  out->v = cli_xmalloc(out->cap * sizeof *out->v);
  out->v[0] = NULL;
  char *save = NULL;
  for (char *t = strtok_r(out->owned, ",", &save); t;
       t = strtok_r(NULL, ",", &save)) {
    /* Trim blanks so "a, b" works as a shell user would expect. */
    while (*t == ' ' || *t == '\t') t++;
    char *e = t + strlen(t);
    while (e > t && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
    if (*t) cli_list_push(out, t);
  }
}

/* ------------------------------------------------------------ errors */

/* Print msg with newlines folded, so every error stays one line. */
static void put_folded(const char *msg) {
  for (const char *p = msg; *p; p++) {
    if (*p == '\n' || *p == '\r') {
      if (p[1] && p[1] != '\n' && p[1] != '\r') fputs("; ", stderr);
    } else {
      fputc(*p, stderr);
    }
  }
}

/* The message is formatted into a buffer of its own size: library
 * messages (a bad name, a path, a plan) have no length limit, and an error
 * line is never cut. */
static void verr(const char *ctx, const char *fmt, va_list ap) {
  char small[512], *buf = small;
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  if (n >= (int)sizeof small) {
    buf = cli_xmalloc((size_t)n + 1);
    vsnprintf(buf, (size_t)n + 1, fmt, ap2);
  } else if (n < 0) {
    snprintf(small, sizeof small, "(unprintable message)");
  }
  va_end(ap2);
  fputs("warden: ", stderr);
  if (ctx && *ctx) {
    fputs(ctx, stderr);
    fputs(": ", stderr);
  }
  put_folded(buf);
  if (buf != small) free(buf);
}

void cli_err(const char *ctx, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verr(ctx, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* The help key of a context is its first word: "acl set" -> "acl". */
static void help_key(const char *ctx, char *buf, size_t n) {
  size_t i = 0;
  while (ctx && ctx[i] && ctx[i] != ' ' && i + 1 < n) {
    buf[i] = ctx[i];
    i++;
  }
  buf[i] = '\0';
}

int cli_usage(const char *ctx, const char *fmt, ...) {
  char key[64];
  help_key(ctx, key, sizeof key);
  va_list ap;
  va_start(ap, fmt);
  verr(ctx, fmt, ap);
  va_end(ap);
  if (*key)
    fprintf(stderr, " (see 'warden %s --help')\n", key);
  else
    fputs(" (see 'warden --help')\n", stderr);
  return CLI_EXIT_USAGE;
}

int cli_exit_code(int rc) {
  switch (rc) {
  case WARDEN_OK: return CLI_EXIT_OK;
  case WARDEN_EINVAL: return CLI_EXIT_USAGE;
  case WARDEN_EDATA:
  case WARDEN_ECONFIG: return CLI_EXIT_DATA;
  default: return CLI_EXIT_RUNTIME;
  }
}

int cli_lib_err(const warden *db, const char *ctx, int rc) {
  const char *msg = db ? warden_errmsg(db) : NULL;
  if (!msg || !*msg) msg = warden_strerror(rc);
  /* Library messages often name their operation already ("query: ...");
   * do not say it twice. */
  size_t n = ctx ? strlen(ctx) : 0;
  if (n && strncmp(msg, ctx, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
    ctx = NULL;
  cli_err(ctx, "%s", msg);
  return cli_exit_code(rc);
}

int cli_open(const char *ctx, const char *dir, int read_only, warden **out) {
  char errbuf[1024] = "";
  warden_open_opts o = {.read_only = read_only};
  int rc = warden_open(dir, &o, out, errbuf, sizeof errbuf);
  if (rc != 0) {
    cli_err(ctx, "%s", *errbuf ? errbuf : warden_strerror(rc));
    return cli_exit_code(rc);
  }
  return 0;
}

/* ----------------------------------------------------------- options */

static const cli_opt *find_long(const cli_opt *opts, const char *name,
                                size_t len) {
  for (const cli_opt *o = opts; o && o->name; o++)
    if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) return o;
  return NULL;
}

static const cli_opt *find_short(const cli_opt *opts, char c) {
  for (const cli_opt *o = opts; o && o->name; o++)
    if (o->shortname && o->shortname == c) return o;
  return NULL;
}

int cli_parse(const char *ctx, int argc, char **argv, const cli_opt *opts,
              void *vals, cli_list *pos) {
  int only_pos = 0;
  if (!pos->v) {
    pos->cap = 8;
    pos->v = cli_xmalloc(pos->cap * sizeof *pos->v);
    pos->v[0] = NULL;
  }
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (only_pos || a[0] != '-' || a[1] == '\0') {
      cli_list_push(pos, a);
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_pos = 1;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      char key[64];
      help_key(ctx, key, sizeof key);
      return cli_help(key) ? CLI_EXIT_RUNTIME : -1;
    }
    const cli_opt *o;
    const char *val = NULL;
    char shown[64];
    if (a[1] == '-') {
      const char *eq = strchr(a, '=');
      size_t len = eq ? (size_t)(eq - a) : strlen(a);
      o = find_long(opts, a, len);
      if (eq) val = eq + 1;
      snprintf(shown, sizeof shown, "%.*s", (int)(len < 60 ? len : 60), a);
    } else {
      o = a[2] == '\0' ? find_short(opts, a[1]) : NULL;
      /* "-k5" style: short option with attached value. */
      if (!o && a[2] != '\0') {
        o = find_short(opts, a[1]);
        if (o && o->kind != CLI_FLAG) val = a + 2;
        else o = NULL;
      }
      snprintf(shown, sizeof shown, "-%c", a[1]);
    }
    if (!o) return cli_usage(ctx, "unknown option '%s'", a);
    void *dest = (char *)vals + o->off;
    if (o->kind == CLI_FLAG) {
      if (val) return cli_usage(ctx, "option %s takes no value", shown);
      *(int *)dest = 1;
      continue;
    }
    if (!val) {
      if (i + 1 >= argc)
        return cli_usage(ctx, "option %s needs a value", shown);
      val = argv[++i];
    }
    if (o->kind == CLI_STR) {
      const char **d = dest;
      if (*d) return cli_usage(ctx, "option %s given twice", shown);
      *d = val;
    } else {
      cli_list_push(dest, val);
    }
  }
  return 0;
}

int cli_need_pos(const char *ctx, const cli_list *pos, size_t min, int max,
                 const char *names) {
  if (pos->n < min) {
    /* Name the first missing positional from the usage list. */
    const char *p = names;
    for (size_t i = 0; i < pos->n && p; i++) {
      p = strchr(p, ' ');
      if (p) p++;
    }
    char word[64] = "argument";
    if (p && *p) {
      size_t len = strcspn(p, " ");
      snprintf(word, sizeof word, "%.*s", (int)(len < 60 ? len : 60), p);
    }
    return cli_usage(ctx, "missing %s", word);
  }
  if (max >= 0 && pos->n > (size_t)max)
    return cli_usage(ctx, "unexpected argument '%s'", pos->v[max]);
  return 0;
}

int cli_parse_u64(const char *ctx, const char *opt, const char *s,
                  uint64_t min, uint64_t max, uint64_t *out) {
  return cli_parse_u64_limit(ctx, opt, s, min, max, NULL, out);
}

int cli_parse_u64_limit(const char *ctx, const char *opt, const char *s,
                        uint64_t min, uint64_t max, const char *max_name,
                        uint64_t *out) {
  char *end = NULL;
  errno = 0;
  if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
    return cli_usage(ctx, "%s: expected a number, got '%s'", opt, s ? s : "");
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end)
    return cli_usage(ctx, "%s: expected a number, got '%s'", opt, s);
  if (v < min || v > max)
    return cli_usage(ctx, "%s: %llu is out of range [%llu, %llu]%s%s%s", opt, v,
                     (unsigned long long)min, (unsigned long long)max,
                     max_name ? " (" : "", max_name ? max_name : "", max_name ? ")" : "");
  *out = v;
  return 0;
}

/* ------------------------------------------------------------ output */

typedef cli_buf sbuf; /* cli.h */

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    while (b->n + n + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 256;
    b->p = cli_xrealloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_string(sbuf *b, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  sb_put(b, "\"", 1);
  size_t run = 0; /* bytes copied verbatim since the last escape */
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[7];
    switch (c) {
    case '"': esc = "\\\""; break;
    case '\\': esc = "\\\\"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    case '\b': esc = "\\b"; break;
    case '\f': esc = "\\f"; break;
    default:
      if (c < 0x20) {
        u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0';
        u[4] = hex[c >> 4], u[5] = hex[c & 15], u[6] = '\0';
        esc = u;
      }
    }
    if (esc) {
      sb_put(b, s + i - run, run);
      run = 0;
      sb_puts(b, esc);
    } else {
      run++;
    }
  }
  sb_put(b, s + len - run, run);
  sb_put(b, "\"", 1);
}

/* Scores: the shortest "%.*g" of a float, without snprintf.  perf, 2,000
 * queries of 10 hits at d=784: printing was 65 % of the CLI's time, nearly
 * all of it in the precision searches of cli_json_score and sb_real (up to
 * 9 + 17 snprintf calls per score).
 *
 * g_text(f, p, out): what snprintf("%.*g", p, (double)f) writes, built
 * from the p-digit integer m = round(f / 10^(e - p + 1)).  The division by
 * an exact power of ten (|exponent| <= 22) rounds once; when the quotient
 * lies within 1e-6 of a rounding boundary that could flip m, or the
 * exponent is out of range, it returns 0 and the caller uses snprintf. */
static const double P10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int g_text(float f, int p, char *out) {
  double a = fabs((double)f);
  char *o = out;
  if (signbit(f)) *o++ = '-';
  if (a == 0) {
    strcpy(o, "0");
    return 1;
  }
  int e = (int)floor(log10(a));
  double m = 0;
  for (int tries = 0; tries < 3; tries++) {
    int sh = e - p + 1; /* a / 10^sh has p digits before the point */
    if (sh > 22 || sh < -22) return 0;
    double v = sh >= 0 ? a / P10[sh] : a * P10[-sh];
    double fr = v - floor(v);
    if (fabs(fr - 0.5) < 1e-6) return 0;
    m = nearbyint(v);
    if (m >= P10[p]) { /* rounded up to p + 1 digits (9.99 -> 10.0), or e was low */
      e++;
      continue;
    }
    if (m < P10[p - 1]) { /* e was high (log10 near a power of ten) */
      e--;
      continue;
    }
    break;
  }
  if (!(m >= P10[p - 1] && m < P10[p])) return 0;
  char dg[24];
  uint64_t mi = (uint64_t)m; /* below 1e9: exact */
  for (int i = p - 1; i >= 0; i--, mi /= 10) dg[i] = (char)('0' + mi % 10);
  int nd = p;
  while (nd > 1 && dg[nd - 1] == '0') nd--; /* %g drops trailing zeros */
  if (e < -4 || e >= p) {
    *o++ = dg[0];
    if (nd > 1) {
      *o++ = '.';
      memcpy(o, dg + 1, (size_t)nd - 1);
      o += nd - 1;
    }
    /* "e%c%02d" by hand: sprintf was a third of the score printing */
    int ae = e < 0 ? -e : e;
    *o++ = 'e';
    *o++ = e < 0 ? '-' : '+';
    if (ae >= 100) *o++ = (char)('0' + ae / 100);
    *o++ = (char)('0' + ae / 10 % 10);
    *o++ = (char)('0' + ae % 10);
    *o = 0;
  } else if (e >= 0) {
    int ip = e + 1; /* digits before the point */
    for (int i = 0; i < ip; i++) *o++ = i < nd ? dg[i] : '0';
    if (nd > ip) {
      *o++ = '.';
      memcpy(o, dg + ip, (size_t)(nd - ip));
      o += nd - ip;
    }
    *o = 0;
  } else {
    *o++ = '0';
    *o++ = '.';
    for (int i = 0; i < -e - 1; i++) *o++ = '0';
    memcpy(o, dg, (size_t)nd);
    o[nd] = 0;
  }
  return 1;
}

/* Texts of recently formatted scores, so that printing the double that
 * cli_json_score made from one finds its digits again (the shortest
 * double text of strtod(t) is t itself when t is a float's shortest
 * text: see cli_json_score). */
#define SCORE_MEMO 64
static struct {
  double d;
  char t[40]; /* a %.9g text (at most 15 bytes) and ".0" */
} score_memo[SCORE_MEMO];

static unsigned memo_slot(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return (unsigned)((u ^ (u >> 29) ^ (u >> 41)) % SCORE_MEMO);
}

/* Shortest "%.*g" that reads back as the same double; always looks like a
 * real (keeps a '.' or exponent) so a float field stays a float. */
static void sb_real(sbuf *b, double d) {
  char tmp[40];
  if (!isfinite(d)) { /* cannot come from JSON; print null rather than junk */
    sb_puts(b, "null");
    return;
  }
  unsigned ms = memo_slot(d);
  if (score_memo[ms].t[0] && score_memo[ms].d == d) {
    sb_puts(b, score_memo[ms].t);
    return;
  }
  /* the shortest %.*g that reads back as d: the p-digit decimals are
   * among the (p+1)-digit ones, so reading back is monotone in p and a
   * bisection finds it in 5 tries instead of up to 17 (perf: printing a
   * 10-hit result spent most of its time in these snprintf calls) */
  int lo = 1, hi = 17;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    snprintf(tmp, sizeof tmp, "%.*g", mid, d);
    if (strtod(tmp, NULL) == d) hi = mid;
    else lo = mid + 1;
  }
  snprintf(tmp, sizeof tmp, "%.*g", lo, d);
  if (!strpbrk(tmp, ".eE")) strcat(tmp, ".0");
  sb_puts(b, tmp);
}

static void sb_json(sbuf *b, const json_t *j) {
  char tmp[32];
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    const char *key;
    json_t *val;
    int first = 1;
    sb_put(b, "{", 1);
    json_object_foreach((json_t *)j, key, val) {
      if (!first) sb_put(b, ", ", 2);
      first = 0;
      sb_string(b, key, strlen(key));
      sb_put(b, ": ", 2);
      sb_json(b, val);
    }
    sb_put(b, "}", 1);
    break;
  }
  case JSON_ARRAY: {
    sb_put(b, "[", 1);
    for (size_t i = 0; i < json_array_size(j); i++) {
      if (i) sb_put(b, ", ", 2);
      sb_json(b, json_array_get(j, i));
    }
    sb_put(b, "]", 1);
    break;
  }
  case JSON_STRING:
    sb_string(b, json_string_value(j), json_string_length(j));
    break;
  case JSON_INTEGER: { /* by hand: snprintf per metadata integer showed in perf */
    json_int_t v = json_integer_value(j);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    char *e = tmp + sizeof tmp, *p = e;
    do *--p = (char)('0' + u % 10); while (u /= 10);
    if (v < 0) *--p = '-';
    sb_put(b, p, (size_t)(e - p));
    break;
  }
  case JSON_REAL: sb_real(b, json_real_value(j)); break;
  case JSON_TRUE: sb_puts(b, "true"); break;
  case JSON_FALSE: sb_puts(b, "false"); break;
  case JSON_NULL: sb_puts(b, "null"); break;
  }
}

char *cli_json_text(const json_t *obj) {
  sbuf b = {0};
  sb_json(&b, obj);
  return b.p;
}

int cli_flush_stdout(void) {
  if (fflush(stdout) != 0 || ferror(stdout)) {
    cli_err("stdout", "%s", strerror(errno ? errno : EIO));
    return CLI_EXIT_RUNTIME;
  }
  return 0;
}

int cli_print_json(json_t *obj) {
  if (!obj) {
    cli_err(NULL, "out of memory");
    return CLI_EXIT_RUNTIME;
  }
  char *s = cli_json_text(obj);
  json_decref(obj);
  fputs(s, stdout);
  fputc('\n', stdout);
  free(s);
  return cli_flush_stdout();
}

/* The text cli_json_score's real prints as (sb_real finds it in the
 * memo), "null" for a non-finite float; out: room for 40 bytes.  Returns
 * the double the real holds. */
static double score_text(float f, char *out) {
  char tmp[32];
  if (!isfinite(f)) {
    strcpy(out, "null");
    return NAN;
  }
  /* bisection over the precision (reading back is monotone in it: the
   * p-digit decimals are among the (p+1)-digit ones) */
  int lo = 1, hi = 9, fast = 1;
  while (lo < hi && fast) {
    int mid = (lo + hi) / 2;
    fast = g_text(f, mid, tmp);
    if (fast && strtof(tmp, NULL) == f) hi = mid;
    else lo = mid + 1;
  }
  if (fast) fast = g_text(f, lo, tmp);
  if (!fast) { /* near a rounding boundary: snprintf decides */
    lo = 1;
    hi = 9;
    while (lo < hi) {
      int mid = (lo + hi) / 2;
      snprintf(tmp, sizeof tmp, "%.*g", mid, (double)f);
      if (strtof(tmp, NULL) == f) hi = mid;
      else lo = mid + 1;
    }
    snprintf(tmp, sizeof tmp, "%.*g", lo, (double)f);
  }
  double d = strtod(tmp, NULL);
  size_t tl = strlen(tmp); /* at most 15 bytes (%.9g), room for ".0" */
  memcpy(out, tmp, tl + 1);
  if (!strpbrk(tmp, ".eE")) memcpy(out + tl, ".0", 3);
  return d;
}

json_t *cli_json_score(float f) {
  if (!isfinite(f)) return json_null();
  char t[40];
  double d = score_text(f, t);
  unsigned ms = memo_slot(d);
  score_memo[ms].d = d;
  memcpy(score_memo[ms].t, t, strlen(t) + 1);
  return json_real(d);
}

int cli_print_lib_json(const char *text) {
  json_error_t e;
  json_t *j = json_loads(text ? text : "null", JSON_DECODE_ANY, &e);
  if (j) return cli_print_json(j);
  fputs(text, stdout);
  if (!*text || text[strlen(text) - 1] != '\n') fputc('\n', stdout);
  return cli_flush_stdout();
}

int cli_read_file(const char *ctx, const char *path, char **buf, size_t *len) {
  int is_stdin = strcmp(path, "-") == 0;
  FILE *f = is_stdin ? stdin : fopen(path, "rb");
  if (!f) {
    cli_err(ctx, "%s: %s", path, strerror(errno));
    return CLI_EXIT_RUNTIME;
  }
  size_t cap = 4096, n = 0;
  char *p = cli_xmalloc(cap);
  for (;;) {
    if (n + 1 >= cap) p = cli_xrealloc(p, cap *= 2);
    size_t got = fread(p + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) break;
  }
  int bad = ferror(f);
  int err = errno;
  if (!is_stdin) fclose(f);
  if (bad) {
    free(p);
    cli_err(ctx, "%s: %s", is_stdin ? "stdin" : path, strerror(err));
    return CLI_EXIT_RUNTIME;
  }
  p[n] = '\0';
  *buf = p;
  *len = n;
  return 0;
}

/* ---------------------------------------------------------- progress */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cli_progress_init(cli_progress *p, const char *ctx) {
  memset(p, 0, sizeof *p);
  p->ctx = p->base = ctx;
  p->tty = isatty(STDERR_FILENO);
  p->start = p->last = now_s();
}

void cli_progress_cb(void *ctx, uint64_t lines, uint64_t bytes,
                     uint64_t total) {
  cli_progress *p = ctx;
  double t = now_s();
  double mb = (double)bytes / 1e6;
  if (p->tty) {
    /* Redraw at most 10 times a second, and only once the job has run
     * long enough that a bar is worth the flicker. */
    if (t - p->start < 0.3 || t - p->last < 0.1) return;
    p->last = t;
    p->drawn = 1;
    if (total) {
      double frac = (double)bytes / (double)total;
      if (frac > 1) frac = 1;
      int w = (int)(frac * 30);
      fprintf(stderr, "\r\033[Kwarden: %s: [%.*s%*s] %3d%% %llu lines, %.1f MB",
              p->ctx, w, "##############################", 30 - w, "",
              (int)(frac * 100), (unsigned long long)lines, mb);
    } else {
      fprintf(stderr, "\r\033[Kwarden: %s: %llu lines, %.1f MB", p->ctx,
              (unsigned long long)lines, mb);
    }
    fflush(stderr);
    return;
  }
  if (t - p->last < 2.0 && lines / 100000 == p->last_lines / 100000) return;
  p->last = t;
  p->last_lines = lines;
  if (total)
    fprintf(stderr, "warden: %s: progress: %llu lines, %.1f of %.1f MB (%d%%)\n",
            p->ctx, (unsigned long long)lines, mb, (double)total / 1e6,
            (int)(100.0 * (double)bytes / (double)total));
  else
    fprintf(stderr, "warden: %s: progress: %llu lines, %.1f MB\n", p->ctx,
            (unsigned long long)lines, mb);
}

void cli_progress_count_cb(void *ctx, uint64_t done, uint64_t total) {
  cli_progress *p = ctx;
  double t = now_s();
  double frac = total ? (double)done / (double)total : 0;
  if (frac > 1) frac = 1;
  if (p->tty) {
    if (t - p->start < 0.3 || t - p->last < 0.1) return;
    p->last = t;
    p->drawn = 1;
    int w = (int)(frac * 30);
    fprintf(stderr, "\r\033[Kwarden: %s: [%.*s%*s] %3d%% %llu of %llu vectors",
            p->ctx, w, "##############################", 30 - w, "",
            (int)(frac * 100), (unsigned long long)done,
            (unsigned long long)total);
    fflush(stderr);
    return;
  }
  if (t - p->last < 2.0) return;
  p->last = t;
  fprintf(stderr, "warden: %s: progress: %llu of %llu vectors (%d%%)\n", p->ctx,
          (unsigned long long)done, (unsigned long long)total,
          (int)(frac * 100));
}

void cli_progress_phase_cb(void *ctx, const char *phase, uint64_t done, uint64_t total) {
  cli_progress *p = ctx;
  if (!p->phase || strcmp(p->phase, phase) != 0) {
    cli_progress_done(p);
    p->phase = phase;
    snprintf(p->label, sizeof p->label, "%s: %s", p->base, phase);
    p->ctx = p->label;
    if (!p->tty)
      fprintf(stderr, "warden: %s: progress: %llu of %llu vectors\n", p->ctx,
              (unsigned long long)done, (unsigned long long)total);
    p->last = now_s();
    return;
  }
  cli_progress_count_cb(ctx, done, total);
}

void cli_progress_done(cli_progress *p) {
  if (p->tty && p->drawn) {
    fputs("\r\033[K", stderr);
    fflush(stderr);
  }
  p->drawn = 0;
}

int cli_get(const char *ctx, int argc, char **argv, const char *usage,
            int (*get)(warden *db, const char *name, char **json_out)) {
  cli_list pos = {0};
  int rc = cli_parse(ctx, argc, argv, NULL, NULL, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 2, 2, usage);
  if (rc != 0) goto done;
  warden *db = NULL;
  if ((rc = cli_open(ctx, pos.v[0], 1, &db)) != 0) goto done;
  char *json = NULL;
  int wrc = get(db, pos.v[1], &json);
  if (wrc != 0) {
    rc = cli_lib_err(db, ctx, wrc);
  } else {
    rc = cli_print_lib_json(json);
    warden_free(json);
  }
  warden_close(db);
done:
  cli_list_free(&pos);
  return rc;
}

int cli_sync(const char *ctx, int argc, char **argv,
             int (*sync)(warden *db, const char *path, const warden_ingest_opts *opts,
                         warden_write_report *rep),
             const char *unknown_key) {
  cli_list pos = {0};
  int rc = cli_parse(ctx, argc, argv, NULL, NULL, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 2, 2, "DIR FILE");
  if (rc != 0) goto done;
  warden *db = NULL;
  if ((rc = cli_open(ctx, pos.v[0], 0, &db)) != 0) goto done;
  cli_progress prog;
  cli_progress_init(&prog, ctx);
  warden_ingest_opts io = {.progress = cli_progress_cb, .progress_ctx = &prog};
  warden_write_report rep = {0};
  int wrc = sync(db, pos.v[1], &io, &rep);
  cli_progress_done(&prog);
  if (wrc != 0) {
    /* data errors already read "FILE:LINE: field: reason" */
    rc = cli_lib_err(db, wrc == WARDEN_EDATA ? NULL : ctx, wrc);
  } else {
    json_t *out = json_object();
    json_object_set_new(out, "changed", json_integer((json_int_t)rep.changed));
    json_object_set_new(out, "unchanged", json_integer((json_int_t)rep.unchanged));
    if (unknown_key) json_object_set_new(out, unknown_key, json_integer((json_int_t)rep.unknown));
    json_object_set_new(out, "revision", json_integer((json_int_t)rep.revision));
    rc = cli_print_json(out);
  }
  warden_close(db);
done:
  cli_list_free(&pos);
  return rc;
}

/* ------------------------------------------------ hand-built JSON lines */

void cli_buf_raw(cli_buf *b, const char *s, size_t n) { sb_put(b, s, n); }
void cli_buf_str(cli_buf *b, const char *s) { sb_string(b, s ? s : "", s ? strlen(s) : 0); }

void cli_buf_uint(cli_buf *b, uint64_t v) {
  char tmp[24], *e = tmp + sizeof tmp, *p = e;
  do *--p = (char)('0' + v % 10); while (v /= 10);
  sb_put(b, p, (size_t)(e - p));
}

void cli_buf_score(cli_buf *b, float f) {
  char t[40];
  score_text(f, t);
  sb_puts(b, t);
}

void cli_buf_json(cli_buf *b, const json_t *j) { sb_json(b, j); }

/* One value of a compact jansson dump at *pp (wd_json_dup's form: no
 * whitespace, strings escaped only where JSON requires it), printed as
 * sb_json prints the value json_loads makes of it.  0 when the text holds
 * anything outside that form -- a backslash in a string, whitespace, a
 * non-canonical or overlong integer, a real that does not read back
 * finite, a repeated key, an object of over 32 keys, nesting past 64 --:
 * the caller then parses it instead (tests/test_cliout.c compares the
 * two on random objects). */
static int sb_dump_value(sbuf *b, const char **pp, int depth) {
  const char *p = *pp;
  if (depth > 64) return 0;
  switch (*p) {
  case '{':
  case '[': {
    int obj = *p == '{';
    char close = obj ? '}' : ']';
    sb_put(b, p, 1);
    p++;
    if (*p == close) {
      sb_put(b, p, 1);
      *pp = p + 1;
      return 1;
    }
    /* keys seen in this object: json_loads keeps the last of duplicates
     * (not in a dump, but then the parse decides) */
    const char *keys[32];
    size_t klen[32], nk = 0;
    for (;;) {
      if (obj) {
        const char *k0 = p;
        if (*p != '"' || !sb_dump_value(b, &p, depth + 1) || *p != ':') return 0;
        size_t kl = (size_t)(p - k0);
        for (size_t i = 0; i < nk; i++)
          if (klen[i] == kl && memcmp(keys[i], k0, kl) == 0) return 0;
        if (nk == 32) return 0;
        keys[nk] = k0;
        klen[nk++] = kl;
        sb_put(b, ": ", 2);
        p++;
      }
      if (!sb_dump_value(b, &p, depth + 1)) return 0;
      if (*p == ',') {
        sb_put(b, ", ", 2);
        p++;
        continue;
      }
      if (*p != close) return 0;
      sb_put(b, p, 1);
      *pp = p + 1;
      return 1;
    }
  }
  case '"': {
    const char *q = p + 1;
    while (*q && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20) q++;
    if (*q != '"') return 0;
    sb_string(b, p + 1, (size_t)(q - p - 1));
    *pp = q + 1;
    return 1;
  }
  case 't':
  case 'f':
  case 'n': {
    const char *w = *p == 't' ? "true" : *p == 'f' ? "false" : "null";
    size_t wl = strlen(w);
    if (strncmp(p, w, wl) != 0) return 0;
    sb_put(b, w, wl);
    *pp = p + wl;
    return 1;
  }
  default: {
    /* JSON's grammar, -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
#define DIGITS(c) ((c) >= '0' && (c) <= '9')
    const char *q = p + (*p == '-');
    const char *d = q;
    if (!DIGITS(*q) || (*q == '0' && DIGITS(q[1]))) return 0;
    while (DIGITS(*q)) q++;
    size_t nd = (size_t)(q - d);
    int real = 0;
    if (*q == '.') {
      real = 1;
      if (!DIGITS(q[1])) return 0;
      for (q++; DIGITS(*q);) q++;
    }
    if (*q == 'e' || *q == 'E') {
      real = 1;
      q++;
      if (*q == '+' || *q == '-') q++;
      if (!DIGITS(*q)) return 0;
      while (DIGITS(*q)) q++;
    }
#undef DIGITS
    size_t n = (size_t)(q - p);
    if (n > 30) return 0;
    if (!real) { /* at most 18 digits, and not -0: the int64 as dumped */
      if (nd > 18 || (*p == '-' && *d == '0')) return 0;
      sb_put(b, p, n);
    } else {
      char tmp[32];
      memcpy(tmp, p, n);
      tmp[n] = 0;
      char *e = NULL;
      double v = strtod(tmp, &e);
      if (e != tmp + n || !isfinite(v)) return 0;
      sb_real(b, v);
    }
    *pp = q;
    return 1;
  }
  }
}

void cli_buf_lib_object(cli_buf *b, const char *text) {
  size_t at = b->n;
  const char *p = text;
  if (p && *p == '{' && sb_dump_value(b, &p, 0) && *p == 0) return;
  b->n = at; /* not the dump form: parse it, as cli_print_json's callers did */
  if (b->p) b->p[at] = 0;
  json_error_t e;
  json_t *m = text && *text ? json_loads(text, 0, &e) : NULL;
  if (json_is_object(m)) {
    sb_json(b, m);
  } else {
    sb_puts(b, "{}");
  }
  json_decref(m);
}
