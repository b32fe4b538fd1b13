/*
 * api_pending.c -- TEMPORARY weak stand-ins for warden.h functions that the
 * header declares but libwarden.a does not define yet (index build), so the CLI links and says "not available" instead of breaking
 * the build.  A strong definition in libwarden.a overrides these whenever
 * its object is linked in.  Delete this file once the library defines all
 * of them (a weak definition here could otherwise keep an archive member
 * that only defines these from being pulled in).
 */
#include "cli.h"

#define PENDING(db)                                                          \
  do {                                                                       \
    (void)(db);                                                              \
    cli_api_pending = 1;                                                     \
    return WARDEN_EINTERNAL;                                                 \
  } while (0)

__attribute__((weak)) int warden_index_build(warden *db,
                                             const warden_index_opts *opts,
                                             char **json_out) {
  (void)opts;
  (void)json_out;
  PENDING(db);
}
