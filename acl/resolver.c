/*
 * resolver.c -- placeholder: "none" only (the full resolvers replace it).
 */
#include "resolver.h"

struct wd_resolver {
  warden *db;
  warden_resolver_fn fn;
  void *ctx;
};

int wd_resolver_open(warden *db, wd_resolver **out) {
  wd_resolver *r = wd_calloc(1, sizeof *r);
  if (!r) return WARDEN_ENOMEM;
  r->db = db;
  *out = r;
  return 0;
}
void wd_resolver_close(wd_resolver *r) { wd_free(r); }
void wd_resolver_set_callback(wd_resolver *r, warden_resolver_fn fn, void *ctx) {
  r->fn = fn;
  r->ctx = ctx;
}
int wd_resolver_active(const wd_resolver *r) { return r && r->fn; }
const char *wd_resolver_name(const wd_resolver *r) { return r && r->fn ? "callback" : "none"; }
int wd_resolver_prefilter(wd_resolver *r, wd_txn *tx, const wd_strlist *who,
                          roaring_bitmap_t **out) {
  (void)r; (void)tx; (void)who;
  *out = NULL;
  return 0;
}
int wd_resolver_check(wd_resolver *r, wd_txn *tx, const wd_strlist *who,
                      const warden_resource *items, size_t n, unsigned char *out,
                      char **evidence) {
  (void)tx;
  for (size_t i = 0; i < n; i++) {
    out[i] = WD_RES_ALLOW;
    if (evidence) evidence[i] = NULL;
  }
  if (!r || !r->fn) return 0;
  int rc = r->fn(r->ctx, who->v[0], (const char *const *)who->v + 1, who->n - 1, items, n, out);
  for (size_t i = 0; i < n; i++) out[i] = rc ? WD_RES_ERROR : (out[i] ? WD_RES_ALLOW : WD_RES_DENY);
  return 0;
}
int warden_set_resolver(warden *db, warden_resolver_fn fn, void *ctx) {
  if (!db) return WARDEN_EINVAL;
  wd_resolver_set_callback(db->resolver, fn, ctx);
  return 0;
}
