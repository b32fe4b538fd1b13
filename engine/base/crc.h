/*
 * crc.h -- CRC-32C (Castagnoli) of stored values (base/crc.c).
 */
#ifndef WD_CRC_H
#define WD_CRC_H
#include <stddef.h>
#include <stdint.h>

uint32_t wd_crc32c(const void *p, size_t n);

#endif
