/*
 * npy.c -- the .npy reader of npy.h.
 *
 * Format (numpy.lib.format): "\x93NUMPY", major, minor, then the header
 * length (u16 LE for version 1, u32 LE for 2 and 3), then an ASCII (3:
 * UTF-8) Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (1000, 384), }
 * padded with spaces and a newline; the data follows.
 */
#include "npy.h"
#include "warden.h" /* WARDEN_MAX_DIM */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The value after 'key': in the header dict (NULL when absent). */
static const char *dict_value(const char *h, size_t n, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "'%s'", key);
  size_t pl = strlen(pat);
  for (size_t i = 0; i + pl <= n; i++)
    if (memcmp(h + i, pat, pl) == 0) {
      const char *p = h + i + pl;
      while (p < h + n && (*p == ' ' || *p == ':')) p++;
      return p;
    }
  return NULL;
}

static int fail(char *err, size_t errlen, const char *path, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(char *err, size_t errlen, const char *path, int code, const char *fmt, ...) {
  char why[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  snprintf(err, errlen, "%s: %s", path, why);
  return code;
}

int cli_npy_open(const char *path, cli_npy *a, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  a->path = path;
  a->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (a->fd < 0) return fail(err, errlen, path, 1, "%s", strerror(errno));
  struct stat st;
  if (fstat(a->fd, &st) != 0) {
    int e = errno;
    close(a->fd);
    return fail(err, errlen, path, 1, "%s", strerror(e));
  }
  size_t size = (size_t)st.st_size;
  if (size < 10) {
    close(a->fd);
    return fail(err, errlen, path, 3, "not a .npy file (%zu bytes)", size);
  }
  a->map = mmap(NULL, size, PROT_READ, MAP_SHARED, a->fd, 0);
  if (a->map == MAP_FAILED) {
    int e = errno;
    close(a->fd);
    a->map = NULL;
    return fail(err, errlen, path, 1, "cannot map: %s", strerror(e));
  }
  a->maplen = size;
  madvise(a->map, size, MADV_SEQUENTIAL);
  int rc = 3;
  const unsigned char *m = a->map;
  if (memcmp(m, "\x93NUMPY", 6) != 0) {
    fail(err, errlen, path, 3, "not a .npy file (no \\x93NUMPY magic)");
    goto bad;
  }
  unsigned major = m[6];
  size_t hlen, off;
  if (major == 1) {
    hlen = (size_t)m[8] | (size_t)m[9] << 8;
    off = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) {
      fail(err, errlen, path, 3, "truncated header");
      goto bad;
    }
    hlen = (size_t)m[8] | (size_t)m[9] << 8 | (size_t)m[10] << 16 | (size_t)m[11] << 24;
    off = 12;
  } else {
    fail(err, errlen, path, 3, ".npy format version %u is not supported (1, 2 or 3)", major);
    goto bad;
  }
  if (hlen > size - off) {
    fail(err, errlen, path, 3, "truncated header (%zu bytes announced)", hlen);
    goto bad;
  }
  const char *h = (const char *)m + off;
  const char *v = dict_value(h, hlen, "descr");
  char descr[16] = "";
  if (v && *v == '\'') {
    size_t i = 0;
    v++;
    while (v < h + hlen && *v != '\'' && i + 1 < sizeof descr) descr[i++] = *v++;
    descr[i] = 0;
  }
  if (!strcmp(descr, "<f4"))
    a->itemsize = 4;
  else if (!strcmp(descr, "<f2"))
    a->itemsize = 2;
  else {
    fail(err, errlen, path, 3,
         "dtype '%s' is not supported (float32 '<f4' or float16 '<f2', little-endian)",
         descr[0] ? descr : "?");
    goto bad;
  }
  v = dict_value(h, hlen, "fortran_order");
  if (!v || strncmp(v, "False", 5) != 0) {
    fail(err, errlen, path, 3, "fortran_order must be False (write the array in C order, "
                               "e.g. numpy.ascontiguousarray)");
    goto bad;
  }
  v = dict_value(h, hlen, "shape");
  uint64_t dims[3];
  int nd = 0;
  if (v && *v == '(') {
    v++;
    while (v < h + hlen && *v != ')' && nd < 3) {
      while (v < h + hlen && (*v == ' ' || *v == ',')) v++;
      if (v >= h + hlen || *v == ')') break;
      if (!isdigit((unsigned char)*v)) {
        nd = -1;
        break;
      }
      char *e;
      dims[nd++] = strtoull(v, &e, 10);
      v = e;
    }
  }
  if (nd != 2) {
    fail(err, errlen, path, 3, "expected a 2-D array (rows, dimension), the shape is %s",
         nd == 1 ? "1-D" : nd == 3 ? "3-D or more" : "unreadable");
    goto bad;
  }
  a->rows = dims[0];
  a->cols = dims[1];
  off += hlen;
  if (a->cols == 0 || a->cols > WARDEN_MAX_DIM || a->rows > (uint64_t)1 << 40) {
    fail(err, errlen, path, 3, "shape (%llu, %llu) is out of range", (unsigned long long)a->rows,
         (unsigned long long)a->cols);
    goto bad;
  }
  uint64_t need = a->rows * a->cols * (uint64_t)a->itemsize;
  if (size - off != need) {
    fail(err, errlen, path, 3,
         "the header says %llu x %llu %s (%llu bytes of data) but the file holds %llu",
         (unsigned long long)a->rows, (unsigned long long)a->cols,
         a->itemsize == 4 ? "float32" : "float16", (unsigned long long)need,
         (unsigned long long)(size - off));
    goto bad;
  }
  a->data = m + off;
  return 0;
bad:
  cli_npy_close(a);
  return rc;
}

void cli_npy_close(cli_npy *a) {
  if (a->map) munmap(a->map, a->maplen);
  if (a->fd > 0) close(a->fd);
  a->map = NULL;
  a->fd = -1;
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
  if (e == 0) {
    if (m == 0) {
      bits = sign;
    } else { /* subnormal: m * 2^-24 */
      float f = (float)m * (1.0f / 16777216.0f);
      return sign ? -f : f;
    }
  } else if (e == 31) {
    bits = sign | 0x7f800000u | (m << 13); /* inf / nan */
  } else {
    bits = sign | ((e + 112) << 23) | (m << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

const float *cli_npy_rows(cli_npy *a, uint64_t first, uint64_t n, float *buf) {
  const unsigned char *p = a->data + first * a->cols * (uint64_t)a->itemsize;
  if (a->itemsize == 4 && ((uintptr_t)p & 3) == 0) return (const float *)(const void *)p;
  size_t cnt = (size_t)(n * a->cols);
  if (a->itemsize == 4) {
    memcpy(buf, p, cnt * 4);
  } else {
    for (size_t i = 0; i < cnt; i++) {
      uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
      buf[i] = half_to_float(h);
    }
  }
  return buf;
}

void cli_npy_release(cli_npy *a, uint64_t upto) {
  if (!a->map) return;
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  size_t to = (size_t)(a->data - a->map) + (size_t)(upto * a->cols * (uint64_t)a->itemsize);
  to = to / pg * pg; /* the page holding row upto stays */
  if (to > a->released) madvise(a->map + a->released, to - a->released, MADV_DONTNEED);
  if (to > a->released) a->released = to;
}
