/*
 * imgmap.h -- map an index file (the IVF's ivf.wdx, the graph's hnsw.wdx)
 * read-only at a 2 MiB-aligned address with MADV_HUGEPAGE.
 *
 * Why: a query touches a few hundred codes at random across the whole
 * image (graph walk at 100 % on image-784 60k: ~190 SQ8 codes of 784
 * bytes spread over 47 MB), and with 4 KiB pages nearly every code costs
 * a TLB miss and a page walk -- perf showed the walk's prefetches as its
 * hottest instructions.  The page cache holds large folios for ext4 files
 * (Linux >= 6.16; this machine runs 6.18) and maps them with huge page
 * table entries when the mapping is aligned and advised: /proc/PID/smaps
 * shows FilePmdMapped 53 MB for hnsw.wdx with this, 0 without.  Measured
 * (bench/graph_bench.c --repeat 20, uncorr-100, 60k x 784, loaded 2-core
 * machine, three alternating runs): p50 86-92 us against 96-102 us.
 * Copying the file into anonymous huge pages instead was as fast per
 * query but made a one-shot `warden query` 2-5x slower (the copy and
 * huge-page compaction: 50-140 ms against 25 ms); this keeps mmap's lazy,
 * zero-copy load.  Where the kernel or file system has no large folios
 * the advice is ignored: plain 4 KiB pages, as before.  Includes nothing
 * of warden's.
 */
#ifndef WD_IMGMAP_H
#define WD_IMGMAP_H
#include <stddef.h>

/* Map len bytes of fd read-only (MAP_PRIVATE), aligned and advised as
 * above.  NULL with errno set on failure (the caller reports it). */
void *wd_img_load(int fd, size_t len);
/* Release what wd_img_load returned for the same len. */
void wd_img_free(void *p, size_t len);

#endif
