/*
 * npy2jsonl.c -- META.jsonl + EMB.npy (float32, C order) -> full ingest
 * lines: each line's chunks, in order, take the next rows of EMB.npy as
 * their "embedding" arrays (printed with %.9g, which round-trips float32).
 * The JSON Lines twin of the NumPy path's input, for measuring both paths
 * on the same data; gen.py --jsonl does the same in Python at ~100 docs/s
 * at d=384, this at disk speed.
 *
 *   npy2jsonl META.jsonl EMB.npy > OUT.jsonl
 *
 * Lines are expected as gen.py writes them: "chunks" is the last field and
 * each chunk object is {"text": ...} (no embedding of its own).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *m) {
  fprintf(stderr, "npy2jsonl: %s\n", m);
  exit(1);
}

int main(int argc, char **argv) {
  if (argc != 3) die("usage: npy2jsonl META.jsonl EMB.npy > OUT.jsonl");
  FILE *m = fopen(argv[1], "r"), *e = fopen(argv[2], "rb");
  if (!m || !e) die("cannot open the inputs");
  unsigned char pre[10];
  if (fread(pre, 1, 10, e) != 10 || memcmp(pre, "\x93NUMPY", 6)) die("not a .npy file");
  size_t hl = pre[8] | (size_t)pre[9] << 8;
  if (pre[6] != 1) die("only .npy version 1 headers");
  char *hdr = calloc(1, hl + 1);
  if (!hdr || fread(hdr, 1, hl, e) != hl) die("short header");
  if (!strstr(hdr, "'<f4'") || strstr(hdr, "True")) die("need float32, C order");
  char *sh = strstr(hdr, "'shape': (");
  unsigned long long rows, dim;
  if (!sh || sscanf(sh + 10, "%llu, %llu", &rows, &dim) != 2 || !dim) die("bad shape");
  float *v = malloc(dim * sizeof *v);
  size_t cap = 1 << 20;
  char *line = malloc(cap);
  static char obuf[1 << 20];
  setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
  unsigned long long used = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, m)) > 0) {
    if (line[n - 1] == '\n') line[--n] = 0;
    char *p = strstr(line, "\"chunks\":");
    if (!p) die("a line without chunks");
    char *q = p;
    fwrite(line, 1, (size_t)(q - line), stdout);
    /* copy the chunks array, adding the embedding before each chunk's
     * closing brace at depth 2 (inside the array, outside strings) */
    int depth = 0, str = 0;
    for (; *q; q++) {
      char c = *q;
      if (str) {
        if (c == '\\' && q[1]) {
          putchar(c);
          c = *++q;
        } else if (c == '"') {
          str = 0;
        }
        putchar(c);
        continue;
      }
      if (c == '"') str = 1;
      if (c == '[' || c == '{') depth++;
      if (c == '}' && depth == 2) {
        if (used >= rows) die("more chunks than rows");
        if (fread(v, sizeof *v, dim, e) != dim) die("short read of rows");
        used++;
        fputs(",\"embedding\":[", stdout);
        for (unsigned long long j = 0; j < dim; j++) printf(j ? ",%.9g" : "%.9g", v[j]);
        putchar(']');
      }
      if (c == ']' || c == '}') depth--;
      putchar(c);
    }
    putchar('\n');
  }
  if (used != rows) die("fewer chunks than rows");
  free(line);
  free(v);
  free(hdr);
  return fclose(stdout) ? 1 : 0;
}
