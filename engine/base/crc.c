/*
 * crc.c -- CRC-32C (Castagnoli) for stored values.  SSE4.2's crc32
 * instruction when the CPU has it (chosen at run time), else a table.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "base/crc.h"

static uint32_t table[256];
#if defined(__x86_64__)
static int have_hw;
#endif
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    table[i] = c;
  }
#if defined(__x86_64__)
  __builtin_cpu_init();
  have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const unsigned char *p,
                                                          size_t n) {
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c64 = __builtin_ia32_crc32di(c64, v);
    p += 8;
    n -= 8;
  }
  c = (uint32_t)c64;
  while (n--) c = __builtin_ia32_crc32qi(c, *p++);
  return c;
}
#endif

uint32_t wd_crc32c(const void *data, size_t n) {
  pthread_once(&once, init);
  const unsigned char *p = data;
  uint32_t c = 0xFFFFFFFFu;
#if defined(__x86_64__)
  if (have_hw) return crc_hw(c, p, n) ^ 0xFFFFFFFFu;
#endif
  while (n--) c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}
