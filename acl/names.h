/*
 * names.h -- the one grammar of principal names and of namespaces
 * (acl/names.c).  Every entry point that takes one checks it here.
 */
#ifndef WD_NAMES_H
#define WD_NAMES_H
#include <stddef.h>

/* Principal syntax: user:NAME | group:NAME | "*" (when allow_star).
 * NAME: 1..WD_PRINCIPAL_MAX_NAME bytes of valid UTF-8 without whitespace,
 * control, format or other invisible code points (Unicode ones included:
 * names.c lists them).  Returns 0 when valid, else -1 with a reason in
 * why. */
#define WD_PRINCIPAL_MAX_NAME 256
#define WD_PRINCIPAL_MAX (6 + WD_PRINCIPAL_MAX_NAME) /* "group:" + NAME */
int wd_principal_check(const char *p, size_t len, int allow_star, char *why, size_t whylen);

/* Namespaces: "/" or "/seg/seg..." of at most WD_MAX_NAMESPACE bytes, no
 * empty, "." or ".." segment, no control character; trailing slashes are
 * dropped ("/a/b/" -> "/a/b").  out (>= n + 1 bytes, at most
 * WD_MAX_NAMESPACE + 1) receives the normal form.  Returns 0, or -1 with a
 * reason in why.  A namespace prefix covers whole segments: "/a" covers
 * "/a" and "/a/b", never "/ab" (wd_namespace_covers). */
#define WD_MAX_NAMESPACE 256
int wd_namespace_check(const char *in, size_t n, char *out, char *why, size_t wl);
int wd_namespace_normalize(const char *in, char *out, char *why, size_t wl); /* NUL-terminated in */
/* The one prefix rule: does the normalised prefix cover namespace ns? */
int wd_namespace_covers(const char *prefix, size_t plen, const char *ns, size_t nlen);

#endif
