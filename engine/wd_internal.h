/*
 * wd_internal.h -- the handle and the helpers every engine module shares.
 *
 * Threading contract: a `warden` handle is shared by all threads.  Fields
 * set at open (env, dbis, cfg, dir) are read-only afterwards.  The map lock
 * is held shared by every transaction and exclusively only while the LMDB
 * map is resized (LMDB requires no live transaction in the process then).
 * Error messages are per thread (errkey), so concurrent queries do not
 * overwrite each other's messages.
 */
#ifndef WD_INTERNAL_H
#define WD_INTERNAL_H
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "acl/names.h"
#include "engine/config.h"
#include "engine/warden.h"
#include "base/wd_alloc.h"
#include "base/wd_types.h"

#define WD_ERRLEN 1024

struct warden {
  MDB_env *env;
  MDB_dbi dbi_meta;   /* "revision", "next_slot", counters, field types */
  MDB_dbi dbi_docs;   /* doc key -> document record (JSON) */
  MDB_dbi dbi_chunks; /* slot (u32 BE) -> chunk record */
  MDB_dbi dbi_blocks; /* block no (u32 BE) -> embedding block */
  MDB_dbi dbi_bitmaps;/* bitmap key -> CRoaring portable bitmap */
  MDB_dbi dbi_princ;  /* principal -> JSON array of groups */
  MDB_dbi dbi_grants; /* grant key -> "" (resolver issue) */
  MDB_dbi dbi_lex;    /* lexical index (engine/lexical.h) */
  int have_lex;       /* dbi_lex is open (not: read-only, older store) */
  wd_config cfg;
  char *dir;
  int read_only;
  pid_t pid;               /* process that opened the handle */
  pthread_key_t errkey;    /* per-thread message buffer */
  pthread_rwlock_t maplock;
  size_t mapsize;
  const char *map_base; /* where data.mdb is mapped (for value bounds) */
  size_t file_size;     /* data.mdb size last seen (atomic; grows only) */
  pthread_mutex_t growlock;
  struct wd_resolver *resolver; /* acl/resolver.c; never NULL once open */
  struct wd_audit *audit;       /* acl/audit.c; NULL when auditing is off */
  struct wd_ann *ann;           /* index/ANN state owned by engine/search.c */
  pthread_mutex_t annlock;      /* guards ann (load, catch-up, swap) */
  struct wd_bmcache *bmcache;   /* engine/store.c; NULL until first use */
  struct wd_doccache *doccache; /* engine/results.c; NULL until first use */
  struct wd_blktab *blktab;     /* engine/store.c; NULL until first use */
  pthread_mutex_t blklock;      /* guards blktab and its reference counts */
  /* engine/search.c: which allowed sets were scanned recently, to price
   * an exact scan over vectors still in the CPU cache (heuristic state:
   * relaxed atomics, races only blur the estimate) */
  _Atomic uint64_t touched; /* bytes read by this handle's scans, ever */
  struct {
    _Atomic uint64_t key;  /* allowed-set identity (hash), 0: empty */
    _Atomic uint64_t mark; /* touched when it was last used */
    _Atomic int exact;     /* 1: its vectors were scanned then (exact) */
  } recent[64];
  _Atomic uint64_t hot_ns; /* double bits: measured ns per vector of exact
                              scans priced cached (0: none yet) */
  /* engine/compact.c: a shared flock on DIR/store held while the handle is
   * open, so that warden_compact (which takes it exclusively) never swaps
   * the store under an open handle; -1 when none */
  int lockfd;
};

/* engine/collection.c: warden_open, without taking the shared lock
 * (warden_compact holds it exclusively). */
int wd_open_nolock(const char *dir, const warden_open_opts *opts, warden **out, char *errbuf,
                   size_t errlen);

/* engine/results.c: free the handle's document cache (NULL allowed). */
void wd_doccache_free(struct wd_doccache *c);

/* Record a message for the calling thread and return code. */
int wd_err(warden *db, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Clear the calling thread's message. */
void wd_err_clear(warden *db);
/* WARDEN_EFORK (with message) when used in a child after fork(). */
int wd_check_pid(warden *db);

/* The JSON object o (a new reference, consumed; NULL allowed: a failed
 * json_pack) as a compact string for a caller: free with warden_free.
 * NULL, with WARDEN_ENOMEM on db, when o is NULL or memory runs out.
 * wd_json_return: the same into *out (written only on success), returning
 * 0 or WARDEN_ENOMEM. */
struct json_t;
char *wd_json_string(warden *db, struct json_t *o);
int wd_json_return(warden *db, struct json_t *o, char **out);

/* Principal and namespace grammar: acl/names.h. */

/* Vectors warden can score in float32 (vecnorm.c): every component finite,
 * squared norm at most WD_VEC_MAX_NORM2, and for cosine a norm of at least
 * WD_VEC_MIN_NORM.  Returns 0, or -1 with a reason ("value 3 is not ...",
 * "norm ... is too small ...") in why. */
#define WD_VEC_MIN_NORM 1e-30
#define WD_VEC_MAX_NORM2 1e37
int wd_vec_check(const float *v, size_t dim, int metric, char *why, size_t wl);

/* restore.c: every document as ingest lines from one snapshot (the body of
 * warden_export). */
int wd_export_docs(warden *db, int (*write)(void *ctx, const char *buf, size_t len), void *ctx);

#endif
