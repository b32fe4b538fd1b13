/*
 * permissions.c -- the engine side of acl/: the resolver and the audit log
 * built from the collection's configuration, and warden_set_resolver.
 *
 * acl/ sees neither struct warden nor warden.yaml (acl/acl_store.h): what
 * it needs of them is handed over here, once, at open.
 */
#include "acl/audit.h"
#include "acl/resolver.h"
#include "engine/wd_internal.h"

int wd_resolver_open(warden *db, wd_resolver **out) {
  wd_resolver_conf conf = {db->cfg.resolver_type, (const char *const *)db->cfg.resolver_cmd,
                           db->cfg.nresolver_cmd, db->cfg.resolver_timeout_ms, db->dir};
  return wd_resolver_create(db, &conf, out);
}

int wd_audit_open(warden *db, wd_audit **out) {
  return wd_audit_create(db, db->cfg.audit_path, db->cfg.audit_fsync, db->dir, out);
}

int warden_set_resolver(warden *db, warden_resolver_fn fn, void *ctx) {
  if (!db) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_err_clear(db);
  if (!db->resolver) return wd_err(db, WARDEN_EINVAL, "set resolver: handle is not open");
  wd_resolver_set_callback(db->resolver, fn, ctx);
  return 0;
}
