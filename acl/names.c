/*
 * names.c -- the one principal grammar and the one namespace grammar, used
 * by every entry point that takes such a name: warden.yaml (default_acl),
 * ingest ACLs and namespaces, acl set/sync, principals set/get/sync,
 * grants, and the query principal, asserted groups and namespace prefixes
 * of the C API.  tests/test_harden.c feeds every principal entry point
 * one table of names, tests/test_names.c every namespace entry point one
 * table of namespaces.
 *
 *   principal := "user:" NAME | "group:" NAME        ("*" where allowed)
 *   NAME      := 1..256 bytes of valid UTF-8 (shortest form, no surrogates,
 *                at most U+10FFFF) holding no code point that is invisible
 *                or could be confused with a separator:
 *                  - controls: U+0000..U+001F, U+007F..U+009F (incl. U+0085)
 *                  - whitespace: U+0020, U+00A0, U+1680, U+2000..U+200A,
 *                    U+2028, U+2029, U+202F, U+205F, U+3000
 *                  - format characters (Cf) and other default-ignorable
 *                    code points: U+00AD, U+034F, U+061C, U+115F, U+1160,
 *                    U+17B4, U+17B5, U+180B..U+180F, U+200B..U+200F,
 *                    U+202A..U+202E, U+2060..U+206F, U+3164, U+FE00..U+FE0F,
 *                    U+FEFF, U+FFA0, U+FFF0..U+FFFB, U+1D173..U+1D17A,
 *                    U+E0000..U+E0FFF, and U+0600..U+0605, U+06DD, U+070F,
 *                    U+0890, U+0891, U+08E2, U+110BD, U+110CD,
 *                    U+13430..U+1343F, U+1BCA0..U+1BCA3
 *                  - noncharacters: U+FDD0..U+FDEF, U+xxFFFE, U+xxFFFF
 *
 * A deny entry with a trailing no-break space looks right when printed and
 * matches nobody; refusing it at the door is the only safe answer.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "acl/names.h"

/* Decode one UTF-8 code point at s[i..len); returns its byte length, or 0
 * when the bytes are not valid (overlong, surrogate, > U+10FFFF, cut). */
static size_t utf8_next(const unsigned char *s, size_t len, size_t i, uint32_t *cp) {
  unsigned char b = s[i];
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  size_t n;
  uint32_t c, min;
  if (b >= 0xc2 && b <= 0xdf) n = 2, c = b & 0x1f, min = 0x80;
  else if ((b & 0xf0) == 0xe0) n = 3, c = b & 0x0f, min = 0x800;
  else if (b >= 0xf0 && b <= 0xf4) n = 4, c = b & 0x07, min = 0x10000;
  else return 0;
  if (i + n > len) return 0;
  for (size_t k = 1; k < n; k++) {
    if ((s[i + k] & 0xc0) != 0x80) return 0;
    c = (c << 6) | (s[i + k] & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
  *cp = c;
  return n;
}

static const uint32_t refused[][2] = {
    {0x0000, 0x0020}, {0x007f, 0x00a0}, {0x00ad, 0x00ad}, {0x034f, 0x034f},
    {0x0600, 0x0605}, {0x061c, 0x061c}, {0x06dd, 0x06dd}, {0x070f, 0x070f},
    {0x0890, 0x0891}, {0x08e2, 0x08e2}, {0x115f, 0x1160}, {0x1680, 0x1680},
    {0x17b4, 0x17b5}, {0x180b, 0x180f}, {0x2000, 0x200f}, {0x2028, 0x202f},
    {0x205f, 0x206f}, {0x3000, 0x3000}, {0x3164, 0x3164}, {0xfdd0, 0xfdef},
    {0xfe00, 0xfe0f}, {0xfeff, 0xfeff}, {0xffa0, 0xffa0}, {0xfff0, 0xfffb},
    {0x110bd, 0x110bd}, {0x110cd, 0x110cd}, {0x13430, 0x1343f},
    {0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a}, {0xe0000, 0xe0fff},
};

static int cp_refused(uint32_t c) {
  if ((c & 0xfffe) == 0xfffe) return 1; /* U+xxFFFE, U+xxFFFF */
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    if (c >= refused[i][0] && c <= refused[i][1]) return 1;
  return 0;
}

/* Print p for a message: printable ASCII as is, everything else as \uXXXX
 * (or \xHH for bytes that are not UTF-8), so the reader sees the invisible
 * character that was refused.  At most ~80 characters of p. */
static void shown(const char *p, size_t len, char *out, size_t outlen) {
  const unsigned char *s = (const unsigned char *)p;
  size_t o = 0, shownc = 0;
  out[0] = 0;
  for (size_t i = 0; i < len && o + 16 < outlen;) {
    if (++shownc > 80) {
      o += (size_t)snprintf(out + o, outlen - o, "...");
      break;
    }
    uint32_t c;
    size_t n = utf8_next(s, len, i, &c);
    if (n == 0) {
      o += (size_t)snprintf(out + o, outlen - o, "\\x%02X", s[i]);
      i++;
    } else if (c == '"' || c == '\\') {
      o += (size_t)snprintf(out + o, outlen - o, "\\%c", (char)c);
      i++;
    } else if (c > 0x20 && c < 0x7f) {
      out[o++] = (char)c;
      out[o] = 0;
      i++;
    } else if (c < 0x80 || cp_refused(c)) {
      o += (size_t)snprintf(out + o, outlen - o, c > 0xffff ? "\\U%06X" : "\\u%04X", (unsigned)c);
      i += n;
    } else {
      if (o + n >= outlen) break;
      memcpy(out + o, s + i, n);
      o += n;
      out[o] = 0;
      i += n;
    }
  }
}

int wd_principal_check(const char *p, size_t len, int allow_star, char *why,
                       size_t whylen) {
  char sh[200];
  if (len == 1 && p[0] == '*') {
    if (allow_star) return 0;
    snprintf(why, whylen, "\"*\" is not allowed here (use an empty allow list)");
    return -1;
  }
  size_t pre;
  if (len >= 5 && memcmp(p, "user:", 5) == 0)
    pre = 5;
  else if (len >= 6 && memcmp(p, "group:", 6) == 0)
    pre = 6;
  else {
    shown(p, len, sh, sizeof sh);
    snprintf(why, whylen, "\"%s\" is not a principal (expected user:NAME, group:NAME%s)", sh,
             allow_star ? " or *" : "");
    return -1;
  }
  size_t n = len - pre;
  if (n == 0 || n > WD_PRINCIPAL_MAX_NAME) {
    shown(p, len, sh, sizeof sh);
    snprintf(why, whylen, "\"%s\": name must be 1..%d bytes", sh, WD_PRINCIPAL_MAX_NAME);
    return -1;
  }
  const unsigned char *s = (const unsigned char *)p;
  for (size_t i = pre; i < len;) {
    uint32_t c;
    size_t k = utf8_next(s, len, i, &c);
    if (k == 0) {
      shown(p, len, sh, sizeof sh);
      snprintf(why, whylen, "\"%s\": name is not valid UTF-8 (byte %zu)", sh, i);
      return -1;
    }
    if (cp_refused(c)) {
      shown(p, len, sh, sizeof sh);
      snprintf(why, whylen,
               "\"%s\": name contains whitespace, a control or an invisible "
               "character (U+%04X at byte %zu)",
               sh, (unsigned)c, i);
      return -1;
    }
    i += k;
  }
  return 0;
}

/* ------------------------------------------------------------ namespaces */

/* "/a/b/" -> "/a/b"; rejects empty segments, "." and "..". */
int wd_namespace_check(const char *in, size_t n, char *out, char *why, size_t wl) {
  if (n == 0 || in[0] != '/') {
    snprintf(why, wl, "must start with \"/\"");
    return -1;
  }
  if (n > WD_MAX_NAMESPACE) {
    snprintf(why, wl, "longer than %d bytes", WD_MAX_NAMESPACE);
    return -1;
  }
  while (n > 1 && in[n - 1] == '/') n--;
  memcpy(out, in, n);
  out[n] = 0;
  if (n == 1) return 0;
  const char *p = out + 1;
  while (1) {
    const char *e = strchr(p, '/');
    size_t sl = e ? (size_t)(e - p) : strlen(p);
    if (sl == 0 || (sl == 1 && p[0] == '.') || (sl == 2 && p[0] == '.' && p[1] == '.')) {
      snprintf(why, wl, "empty, \".\" or \"..\" path segment in \"%s\"", out);
      return -1;
    }
    for (size_t i = 0; i < sl; i++)
      if ((unsigned char)p[i] < 0x20) {
        snprintf(why, wl, "control character in namespace");
        return -1;
      }
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

int wd_namespace_normalize(const char *in, char *out, char *why, size_t wl) {
  return wd_namespace_check(in, strlen(in), out, why, wl);
}

int wd_namespace_covers(const char *prefix, size_t plen, const char *ns, size_t nlen) {
  if (plen == 1) return 1; /* "/" covers everything */
  return nlen >= plen && memcmp(ns, prefix, plen) == 0 && (nlen == plen || ns[plen] == '/');
}
