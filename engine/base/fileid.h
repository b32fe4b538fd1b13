/*
 * fileid.h -- has a derived file (an ANN index file) changed since a
 * handle last looked at it?  Shared by the IVF (indexer.c) and the graph
 * (graph_index.c): each keeps one wd_fileid and reloads its file only when
 * this says it was replaced, rewritten or removed.  Includes nothing of
 * warden's.
 */
#ifndef WD_FILEID_H
#define WD_FILEID_H
#include <sys/stat.h>

typedef struct wd_fileid {
  int looked;  /* path was inspected at least once */
  int missing; /* ... and did not exist then */
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
} wd_fileid;

/* Every query asks, for the IVF's file and the graph's: two stats, 1.9 us
 * each on this VM (~25 % of a 0.1 % query).  Skipping the stat when the
 * last one was under 1 ms old was tried and not kept: a file damaged in
 * place (tests/test_ann.c test_crash_consistency) was then read through
 * the old mapping by the next query instead of being refused. */
/* Stat path.  0: as last looked (the same file, or still missing): keep
 * what was loaded.  1: changed (or first look): *id now describes it and
 * *have says whether it exists.  An atomic rename gives a new inode, an
 * in-place rewrite a new size or mtime. */
static inline int wd_fileid_changed(wd_fileid *id, const char *path, int *have) {
  struct stat st;
  *have = stat(path, &st) == 0;
  if (id->looked) {
    if (!*have && id->missing) return 0;
    if (*have && !id->missing && st.st_dev == id->dev && st.st_ino == id->ino &&
        st.st_size == id->size && st.st_mtim.tv_sec == id->mtime.tv_sec &&
        st.st_mtim.tv_nsec == id->mtime.tv_nsec)
      return 0;
  }
  id->looked = 1;
  id->missing = !*have;
  id->dev = *have ? st.st_dev : 0;
  id->ino = *have ? st.st_ino : 0;
  id->size = *have ? st.st_size : 0;
  if (*have) id->mtime = st.st_mtim;
  return 1;
}

#endif
