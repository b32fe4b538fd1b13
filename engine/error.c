/*
 * error.c -- error codes, names, and per-thread messages on a handle.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/wd_internal.h"

void warden_set_allocator(const warden_allocator *a) {
  if (a)
    wd_alloc_hook(a->malloc_fn, a->realloc_fn, a->free_fn, a->ctx);
  else
    wd_alloc_hook(NULL, NULL, NULL, NULL);
}

void warden_free(void *p) { wd_free(p); }

const char *warden_strerror(int code) {
  switch (code) {
    case WARDEN_OK: return "WARDEN_OK: success";
    case WARDEN_EINVAL: return "WARDEN_EINVAL: invalid argument or usage";
    case WARDEN_EDATA: return "WARDEN_EDATA: invalid input data";
    case WARDEN_ENOTFOUND: return "WARDEN_ENOTFOUND: not found";
    case WARDEN_EIO: return "WARDEN_EIO: I/O or storage error";
    case WARDEN_ENOMEM: return "WARDEN_ENOMEM: out of memory";
    case WARDEN_ECORRUPT: return "WARDEN_ECORRUPT: stored data is damaged";
    case WARDEN_ECONFIG: return "WARDEN_ECONFIG: invalid configuration";
    case WARDEN_ESTALE: return "WARDEN_ESTALE: snapshot older than the required revision";
    case WARDEN_EEXIST: return "WARDEN_EEXIST: collection already exists";
    case WARDEN_EFORK: return "WARDEN_EFORK: handle used after fork()";
    case WARDEN_ERESOLVER: return "WARDEN_ERESOLVER: resolver unavailable";
    case WARDEN_EINTERNAL: return "WARDEN_EINTERNAL: internal error (a bug)";
    default: return "WARDEN_EUNKNOWN: unknown error code";
  }
}

int wd_err(warden *db, int code, const char *fmt, ...) {
  if (!db) return code;
  char *buf = pthread_getspecific(db->errkey);
  if (!buf) {
    /* plain malloc, not the test allocation hook: reporting an allocation
     * failure must not itself depend on the allocation that failed */
    buf = malloc(WD_ERRLEN);
    if (!buf) return code;
    if (pthread_setspecific(db->errkey, buf) != 0) {
      free(buf);
      return code;
    }
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, WD_ERRLEN, fmt, ap);
  va_end(ap);
  return code;
}

void wd_err_clear(warden *db) {
  char *buf = db ? pthread_getspecific(db->errkey) : NULL;
  if (buf) buf[0] = 0;
}

const char *warden_errmsg(const warden *db) {
  if (!db) return "";
  const char *buf = pthread_getspecific(db->errkey);
  return buf ? buf : "";
}

int wd_check_pid(warden *db) {
  if (db->pid != getpid())
    return wd_err(db, WARDEN_EFORK,
                  "WARDEN_EFORK: this handle was opened by process %ld; open "
                  "the collection again in the child",
                  (long)db->pid);
  return 0;
}

/* wd_principal_check: acl/names.c */

char *wd_json_string(warden *db, struct json_t *o) {
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  char *d = s ? wd_strdup(s) : NULL;
  free(s);
  if (!d) wd_err(db, WARDEN_ENOMEM, "out of memory");
  return d;
}

int wd_json_return(warden *db, struct json_t *o, char **out) {
  char *s = wd_json_string(db, o);
  if (!s) return WARDEN_ENOMEM;
  *out = s;
  return 0;
}
