/*
 * config.h -- warden.yaml: load, validate, write.  The one door to libyaml.
 *
 * Schema (SPEC section 3).  Unknown keys, wrong types and a missing
 * `dimension` are errors reported as "PATH:LINE: key.path: reason".
 */
#ifndef WD_CONFIG_H
#define WD_CONFIG_H
#include <stddef.h>

#include "acl/resolver.h" /* WD_RESOLVER_* */
#include "base/wd_types.h"

#define WD_INDEX_AUTO 0
#define WD_INDEX_FLAT 1
#define WD_INDEX_IVF 2


#define WD_FUSION_RRF 0
#define WD_FUSION_WEIGHTED 1

#define WD_EMBEDDER_NONE 0
#define WD_EMBEDDER_HASH 1

typedef struct wd_meta_decl {
  char *key;
  wd_type type;
} wd_meta_decl;

typedef struct wd_config {
  unsigned dim;   /* 1..65536, required */
  int metric;     /* WD_METRIC_*, default cosine */
  wd_meta_decl *meta;
  size_t nmeta;
  int has_default_acl;
  char **default_allow;
  size_t ndefault_allow;
  char **default_deny;
  size_t ndefault_deny;
  /* index: */
  int index_type;     /* WD_INDEX_*, default auto */
  unsigned nlist;     /* index.nlist, 0 = choose from collection size */
  int sq8;            /* index.quantizer: none (0) | sq8 (1) */
  int graph;          /* index.graph: off (0) | on (1, default): build the
                         filter-aware graph index (index/hnsw.h) */
  double target_recall; /* index.target_recall in (0, 1], default 0.95
                           (0 also means the default) */
  /* resolver: */
  int resolver_type;  /* WD_RESOLVER_*, default none */
  char **resolver_cmd; /* argv, NULL-terminated, nresolver_cmd entries */
  size_t nresolver_cmd;
  unsigned resolver_timeout_ms; /* default 500 */
  /* embedder: */
  int embedder;       /* WD_EMBEDDER_*, default none */
  /* lexical: (engine/lexical.h) */
  int lex_language;   /* index into wd_lex_languages; 0 = english */
  int lex_fusion;     /* WD_FUSION_*: how hybrid mode fuses the two sides */
  unsigned lex_rrf_k; /* reciprocal rank fusion constant, default 60 */
  double lex_weight;  /* weighted fusion: weight of the semantic side */
  /* audit: */
  char *audit_path;   /* NULL = no audit log; relative to the collection */
  int audit_fsync;    /* audit.fsync: fdatasync every line (default 0) */
} wd_config;

/* lexical.language names (engine/lexical.c), NULL-terminated. */
extern const char *const wd_lex_languages[];

/* The defaults of every key (what an absent key means). */
void wd_config_defaults(wd_config *cfg);

/* Load and validate path.  On success fills *out (free with
 * wd_config_free) and returns 0; on failure returns WARDEN_ECONFIG (or
 * WARDEN_EIO when the file cannot be read) with "PATH:LINE: key: reason"
 * in err, and *out is untouched. */
int wd_config_load(const char *path, wd_config *out, char *err, size_t errlen);
/* The same from a buffer; name is used in messages. */
int wd_config_parse(const char *buf, size_t len, const char *name,
                    wd_config *out, char *err, size_t errlen);
/* Write cfg as YAML to path atomically (temp file, fsync, rename).
 * Returns 0 or WARDEN_EIO with a message. */
int wd_config_write(const wd_config *cfg, const char *path, char *err,
                    size_t errlen);
void wd_config_free(wd_config *cfg);
/* Metric name <-> id; -1 when unknown. */
int wd_metric_parse(const char *name);
const char *wd_metric_name(int metric);

#endif
