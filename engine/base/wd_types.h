/*
 * wd_types.h -- small types shared by the engine, acl and index modules.
 */
#ifndef WD_TYPES_H
#define WD_TYPES_H
#include <stdint.h>
#include <stddef.h>

/* Metadata value types (SPEC section 3). */
typedef enum wd_type {
  WD_T_NONE = 0,
  WD_T_STRING = 1,
  WD_T_INT = 2,
  WD_T_FLOAT = 3,
  WD_T_BOOL = 4,
  WD_T_STRING_LIST = 5
} wd_type;

const char *wd_type_name(wd_type t); /* "string", "int", ... */
/* Parse a type name; returns WD_T_NONE when unknown. */
wd_type wd_type_parse(const char *name);

/* A scalar metadata value.  For WD_T_STRING, s points to len bytes (not
 * necessarily NUL-terminated); the value borrows it. */
typedef struct wd_value {
  wd_type type; /* WD_T_STRING, WD_T_INT, WD_T_FLOAT or WD_T_BOOL */
  const char *s;
  size_t len;
  int64_t i;
  double f;
  int b;
} wd_value;

/* Internal metric ids equal the public WARDEN_METRIC_* values. */
#define WD_METRIC_COSINE 0
#define WD_METRIC_L2 1
#define WD_METRIC_IP 2

#endif
