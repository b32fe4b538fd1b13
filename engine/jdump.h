/*
 * jdump.h -- the compact JSON text of a stored record, written without
 * jansson's per-token callbacks and buffer copies.
 */
#ifndef WD_JDUMP_H
#define WD_JDUMP_H
#include <jansson.h>
#include <stddef.h>

/* The text json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(17)) gives for
 * the object or array v, byte for byte, in a buffer of the caller's (buf,
 * cap; *out == buf) or, when it does not fit, a new one (*out != buf, to be
 * freed with wd_free()).  *len: its length (no NUL counted; one is written).
 * A tree holding a real is handed to json_dumps itself (its %.17g and
 * exponent rewriting are jansson's to keep).  Returns 0, or -1 (out of
 * memory, or a value json_dumps would refuse). */
int wd_jdump(const json_t *v, char *buf, size_t cap, char **out, size_t *len);
#endif
