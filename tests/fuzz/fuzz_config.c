/*
 * fuzz_config.c -- libFuzzer target for the warden.yaml loader (config.c).
 *
 * Feeds arbitrary bytes to wd_config_parse.  Whatever parses must also
 * survive the writer: it is written out, loaded back and compared field by
 * field, so the fuzzer checks the round-trip promise as well as memory
 * safety.  Build and run:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Iengine -Iengine/base -Iacl \
 *     tests/fuzz/fuzz_config.c engine/config.c engine/base/alloc.c -lyaml \
 *     -o /tmp/fuzz_config
 *   /tmp/fuzz_config -max_total_time=60 tests/fuzz/corpus/config
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static int streq(const char *a, const char *b) {
  if (!a || !b) return a == b;
  return strcmp(a, b) == 0;
}

static int strv_eq(char **a, char **b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!streq(a[i], b[i])) return 0;
  return 1;
}

static int cfg_eq(const wd_config *a, const wd_config *b) {
  if (a->dim != b->dim || a->metric != b->metric || a->nmeta != b->nmeta ||
      !!a->has_default_acl != !!b->has_default_acl ||
      a->ndefault_allow != b->ndefault_allow ||
      a->ndefault_deny != b->ndefault_deny || a->index_type != b->index_type ||
      a->nlist != b->nlist || a->sq8 != b->sq8 ||
      a->resolver_type != b->resolver_type ||
      a->nresolver_cmd != b->nresolver_cmd ||
      a->resolver_timeout_ms != b->resolver_timeout_ms ||
      a->embedder != b->embedder || !streq(a->audit_path, b->audit_path))
    return 0;
  for (size_t i = 0; i < a->nmeta; i++)
    if (!streq(a->meta[i].key, b->meta[i].key) ||
        a->meta[i].type != b->meta[i].type)
      return 0;
  return strv_eq(a->default_allow, b->default_allow, a->ndefault_allow) &&
         strv_eq(a->default_deny, b->default_deny, a->ndefault_deny) &&
         strv_eq(a->resolver_cmd, b->resolver_cmd, a->nresolver_cmd);
}

static char out_path[256];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wd_config cfg;
  char err[512];
  if (wd_config_parse((const char *)data, size, "fuzz.yaml", &cfg, err,
                      sizeof err) != 0) {
    if (!memchr(err, 0, sizeof err)) __builtin_trap(); /* unterminated */
    return 0;
  }
  if (!out_path[0]) {
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(out_path, sizeof out_path, "%s/fuzz_config.%d.yaml", dir,
             (int)getpid());
  }
  /* Everything that loads must write and load back equal. */
  if (wd_config_write(&cfg, out_path, err, sizeof err) != 0) __builtin_trap();
  wd_config back;
  if (wd_config_load(out_path, &back, err, sizeof err) != 0) __builtin_trap();
  if (!cfg_eq(&cfg, &back)) __builtin_trap();
  unlink(out_path);
  wd_config_free(&back);
  wd_config_free(&cfg);
  return 0;
}
