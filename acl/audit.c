/*
 * audit.c -- placeholder (auditing off); the full audit log replaces it.
 */
#include "audit.h"

int wd_audit_open(warden *db, wd_audit **out) {
  (void)db;
  *out = NULL;
  return 0;
}
void wd_audit_close(wd_audit *a) { (void)a; }
int wd_audit_write(wd_audit *a, warden *db, const wd_audit_query *q) {
  (void)a; (void)db; (void)q;
  return 0;
}
int64_t wd_audit_verify(const char *path, int *torn, uint64_t *bad) {
  (void)path;
  *torn = 0;
  *bad = 0;
  return 0;
}
