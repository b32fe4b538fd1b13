/*
 * npy.h -- read a 2-D NumPy .npy array of float32 or float16 (C order,
 * little-endian) through a read-only memory map: the header is parsed
 * here (format versions 1, 2 and 3), the data is never read into memory
 * as a whole.  Used by `warden ingest DIR META.jsonl --vectors EMB.npy`.
 */
#ifndef WARDEN_NPY_H
#define WARDEN_NPY_H

#include <stddef.h>
#include <stdint.h>

typedef struct cli_npy {
  const char *path;
  int fd;
  unsigned char *map; /* whole file, PROT_READ */
  size_t maplen;
  const unsigned char *data; /* first element */
  uint64_t rows, cols;
  int itemsize; /* 4: float32, 2: float16 */
  size_t released; /* bytes of the map before this were given back */
} cli_npy;

/* Map path and parse its header.  On failure writes "PATH: reason" to err
 * and returns 1 (I/O: cannot open or map) or 3 (not a usable .npy). */
int cli_npy_open(const char *path, cli_npy *out, char *err, size_t errlen);
void cli_npy_close(cli_npy *a);

/* Rows [first, first + n) as float32: a pointer into the map when the file
 * holds aligned float32, else converted into buf (n * cols floats). */
const float *cli_npy_rows(cli_npy *a, uint64_t first, uint64_t n, float *buf);

/* Rows before upto are done with: drop their pages from this process (they
 * stay in the page cache), so the mapping does not grow the process's
 * resident set with the file. */
void cli_npy_release(cli_npy *a, uint64_t upto);

#endif
