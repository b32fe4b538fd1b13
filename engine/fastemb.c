/*
 * fastemb.c -- see fastemb.h.
 */
#include "engine/fastemb.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/wd_alloc.h"

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* s[0..8) are all ASCII digits (SWAR: each byte's high nibble is 3 and
 * adding 6 to it does not carry out of the low nibble). */
static int eight_digits(const char *s) {
  uint64_t v;
  memcpy(&v, s, 8);
  return ((v & 0xF0F0F0F0F0F0F0F0ull) == 0x3030303030303030ull) &&
         (((v + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull) == 0x3030303030303030ull);
}

/* The value of the eight digits s[0..8), most significant first. */
static uint32_t eight_value(const char *s) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  /* pairs, then quads, then the eight, by multiplication (s[0] is the
   * lowest byte) */
  uint64_t v;
  memcpy(&v, s, 8);
  v -= 0x3030303030303030ull;
  v = (v * 10) + (v >> 8);
  v = (((v & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
       (((v >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >> 32;
  return (uint32_t)v;
#else
  uint32_t v = 0;
  for (int k = 0; k < 8; k++) v = v * 10 + (uint32_t)(s[k] - '0');
  return v;
#endif
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* m * 10^e10 (m of up to 19 digits, |e10| <= 22) straight to the float
 * (float)strtod would give, without the correctly rounded double: two
 * roundings make d within 2^-52 of the exact value x, and when d lies
 * farther than 2^-50 (relative) from every midpoint between two floats,
 * x is on the same side of each as d, and so is strtod's double (within
 * 2^-53 of x): both round to the float d rounds to.  Returns 0 near a
 * midpoint, or outside the normal float range: the caller asks strtod.
 * The case it is for: 17-digit decimals (Python's json.dumps of float32
 * values widened to double) have m >= 2^53, beyond the exact path above,
 * and went to strtod: 80-100 -> 42-46 ns a number (2,000 x 384 such
 * numbers, best of 5, one core; 29-31 with f's neighbours from its bits
 * rather than nextafterf).  Measured and not kept: reading the 1-7 digits
 * a run ends with in one SWAR step (27-29 against 29-31 ns on that text,
 * 15 against 13.5 on "37.0"-like text), and a branch-free read of short
 * numbers, 8 digits per SWAR step before and after the point (20-21
 * against 20-21 ns on "37.0"-like text, 34 against 29 on "%.9g" text). */
static int float_near(uint64_t m, int e10, int neg, float *out) {
  double d = (double)m;
  d = e10 < 0 ? d / pow10_exact[-e10] : d * pow10_exact[e10];
  if (!(d > 1e-30 && d < 1e30)) return 0;
  float f = (float)d, fu, fd;
  /* f's neighbours: f is positive and normal (the range above), so one
   * more or less in its bits (nextafterf without the call) */
  uint32_t fb;
  memcpy(&fb, &f, 4);
  fb++;
  memcpy(&fu, &fb, 4);
  fb -= 2;
  memcpy(&fd, &fb, 4);
  double up = ((double)f + (double)fu) * 0.5;
  double dn = ((double)f + (double)fd) * 0.5;
  double tol = d * 0x1p-50;
  if (fabs(d - up) <= tol || fabs(d - dn) <= tol) return 0;
  *out = neg ? -f : f;
  return 1;
}

/* Parse one JSON number at s[i..n) into *out; *end after it.  Returns 0,
 * or -1 when the text is not a number JSON allows, an integer jansson
 * refuses as too big, or a real that overflows a double. */
static int number(const char *s, size_t n, size_t i, float *out, size_t *end) {
  size_t st = i;
  int neg = 0;
  if (i < n && s[i] == '-') {
    neg = 1;
    i++;
  }
  if (i >= n) return -1;
  uint64_t m = 0;
  int sig = 0, e10 = 0, exact = 1, isreal = 0, intdigits = 0;
  if (s[i] == '0') {
    i++;
    intdigits = 1;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (sig <= 11 && n - i >= 8 && eight_digits(s + i)) {
      m = m * 100000000u + eight_value(s + i);
      sig += 8;
      intdigits += 8;
      i += 8;
    }
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      if (sig < 19) {
        m = m * 10 + (uint64_t)(s[i] - '0');
        sig++;
      } else {
        exact = 0;
      }
      intdigits++;
      i++;
    }
  } else {
    return -1;
  }
  if (i < n && s[i] == '.') {
    isreal = 1;
    i++;
    if (i >= n || s[i] < '0' || s[i] > '9') return -1;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      /* eight significant digits at once: the same m, sig and e10 as
       * eight turns of the loop below */
      if (m != 0 && sig <= 11 && n - i >= 8 && eight_digits(s + i)) {
        m = m * 100000000u + eight_value(s + i);
        sig += 8;
        e10 -= 8;
        i += 8;
        continue;
      }
      if (m == 0 && s[i] == '0') {
        e10--; /* a leading zero: not a significant digit */
      } else if (sig < 19) {
        m = m * 10 + (uint64_t)(s[i] - '0');
        sig++;
        e10--;
      } else {
        exact = 0; /* strtod rounds the rest */
      }
      i++;
    }
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    isreal = 1;
    i++;
    int eneg = 0, ev = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
    if (i >= n || s[i] < '0' || s[i] > '9') return -1;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      if (ev < 100000) ev = ev * 10 + (s[i] - '0');
      i++;
    }
    e10 += eneg ? -ev : ev;
  }
  /* jansson reads an integer into json_int_t and refuses what overflows */
  if (!isreal && intdigits > 18) return -1;
  *end = i;
  double d;
  if (exact && m < ((uint64_t)1 << 53) && e10 >= -22 && e10 <= 22) {
    d = (double)m;
    d = e10 < 0 ? d / pow10_exact[-e10] : d * pow10_exact[e10];
    if (neg) d = -d;
  } else if (exact && m && e10 >= -22 && e10 <= 22 && float_near(m, e10, neg, out)) {
    *end = i;
    return 0;
  } else {
    char buf[400];
    size_t len = i - st;
    if (len >= sizeof buf) return -1;
    memcpy(buf, s + st, len);
    buf[len] = 0;
    errno = 0;
    d = strtod(buf, NULL);
    if (errno == ERANGE && isinf(d)) return -1; /* jansson: "real number overflow" */
  }
  *out = (float)d;
  return 0;
}

static int grow(wd_fastemb *fe, size_t want) {
  if (want <= fe->vcap) return 0;
  size_t nc = fe->vcap ? fe->vcap : 1024;
  while (nc < want) nc *= 2;
  float *v = wd_realloc(fe->v, nc * sizeof *v);
  if (!v) return -1;
  fe->v = v;
  fe->vcap = nc;
  return 0;
}

/* The array at s[k] == '['.  Returns 1 (recorded; *end after ']'), 0 (left
 * to jansson) or -1 (out of memory). */
static int array(wd_fastemb *fe, const char *s, size_t n, size_t k, size_t *end) {
  size_t i = k + 1, start = fe->nv;
  while (i < n && is_ws(s[i])) i++;
  if (i < n && s[i] != ']') {
    for (;;) {
      if (fe->nv == fe->vcap && grow(fe, fe->nv + 1)) return -1;
      size_t e;
      if (number(s, n, i, &fe->v[fe->nv], &e)) {
        fe->nv = start;
        return 0;
      }
      fe->nv++;
      i = e;
      while (i < n && is_ws(s[i])) i++;
      if (i < n && s[i] == ',') {
        i++;
        while (i < n && is_ws(s[i])) i++;
        continue;
      }
      if (i < n && s[i] == ']') break;
      fe->nv = start;
      return 0;
    }
  }
  if (i >= n) {
    fe->nv = start;
    return 0;
  }
  if (fe->narr == fe->acap) {
    size_t nc = fe->acap ? fe->acap * 2 : 16;
    size_t *c = wd_realloc(fe->cnt, nc * sizeof *c);
    if (!c) {
      fe->nv = start;
      return -1;
    }
    fe->cnt = c;
    fe->acap = nc;
  }
  fe->cnt[fe->narr++] = fe->nv - start;
  *end = i + 1;
  return 1;
}

int wd_fastemb_plain(wd_fastemb *fe, const char *s, size_t n, size_t *count) {
  size_t i = 0, end = 0, nv = fe->nv, narr = fe->narr;
  while (i < n && is_ws(s[i])) i++;
  if (i >= n || s[i] != '[') return 0;
  int r = array(fe, s, n, i, &end);
  if (r <= 0) return r;
  fe->narr = narr; /* the count is returned, not recorded */
  while (end < n && is_ws(s[end])) end++;
  if (end != n) { /* something after the array: jansson's to report */
    fe->nv = nv;
    return 0;
  }
  *count = fe->nv - nv;
  return 1;
}

int wd_fastemb_scan(wd_fastemb *fe, const char *s, size_t n) {
  fe->nv = fe->narr = fe->next = fe->off = 0;
  int depth = 0, in_chunks = 0;
  size_t i = 0;
  /* where the recorded arrays are, to blank them once the scan is done */
  size_t spans_local[64][2], (*spans)[2] = spans_local, nspans = 0, spcap = 64;
  int rc = 0;
  while (i < n) {
    char c = s[i];
    if (c == '"') {
      size_t st = ++i;
      while (i < n && s[i] != '"') i += s[i] == '\\' ? 2 : 1;
      if (i >= n) break; /* unterminated: jansson says so */
      size_t en = i++;
      size_t k = i;
      while (k < n && is_ws(s[k])) k++;
      if (k >= n || s[k] != ':') continue; /* a value, not a key */
      k++;
      if (depth == 1) {
        in_chunks = en - st == 6 && memcmp(s + st, "chunks", 6) == 0;
      } else if (depth == 3 && in_chunks && en - st == 9 && memcmp(s + st, "embedding", 9) == 0) {
        while (k < n && is_ws(s[k])) k++;
        size_t end;
        int r = k < n && s[k] == '[' ? array(fe, s, n, k, &end) : 0;
        if (r < 0) {
          rc = -1;
          break;
        }
        if (r > 0) {
          if (nspans == spcap) {
            size_t nc = spcap * 2;
            size_t(*ns)[2] = wd_malloc(nc * sizeof *ns);
            if (!ns) {
              rc = -1;
              break;
            }
            memcpy(ns, spans, nspans * sizeof *ns);
            if (spans != spans_local) wd_free(spans);
            spans = ns;
            spcap = nc;
          }
          spans[nspans][0] = k;
          spans[nspans++][1] = end;
          i = end;
          continue;
        }
      }
      i = k;
      continue;
    }
    if (c == '{' || c == '[') depth++;
    else if (c == '}' || c == ']') depth--;
    i++;
  }
  /* the line without the recorded arrays' text: "[]" in their place */
  if (rc == 0 && nspans) {
    size_t need = n + 1;
    if (need > fe->lcap) {
      char *l = wd_realloc(fe->line, need);
      if (!l) rc = -1;
      else {
        fe->line = l;
        fe->lcap = need;
      }
    }
    if (rc == 0) {
      size_t o = 0, from = 0;
      for (size_t x = 0; x < nspans; x++) {
        size_t k = spans[x][0], end = spans[x][1];
        memcpy(fe->line + o, s + from, k - from);
        o += k - from;
        fe->line[o++] = '[';
        fe->line[o++] = ']';
        from = end;
      }
      memcpy(fe->line + o, s + from, n - from);
      o += n - from;
      fe->len = o;
    }
  }
  if (rc || !nspans) {
    fe->nv = fe->narr = 0;
    fe->len = 0;
  }
  if (spans != spans_local) wd_free(spans);
  return rc;
}

void wd_fastemb_free(wd_fastemb *fe) {
  wd_free(fe->v);
  wd_free(fe->line);
  wd_free(fe->cnt);
  memset(fe, 0, sizeof *fe);
}
