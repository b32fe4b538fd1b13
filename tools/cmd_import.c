/*
 * cmd_import.c -- `warden import DIR FILE [--trust-config]`: a new collection from a full
 * export (warden_import).
 */
#include "cli.h"

#include <string.h>

int cmd_import(int argc, char **argv) {
  const char *ctx = "import";
  cli_list pos = {0};
  int trust = 0;
  const cli_opt opts[] = {{"--trust-config", 0, CLI_FLAG, &trust}, {NULL, 0, CLI_FLAG, NULL}};
  int rc = cli_parse(ctx, argc, argv, opts, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 2, 2, "DIR FILE");
  if (rc != 0) goto done;
  char err[1024] = "";
  char *js = NULL;
  int wrc = warden_import_ex(pos.v[0], pos.v[1], trust ? WARDEN_IMPORT_TRUST_CONFIG : 0, err,
                             sizeof err, &js);
  if (wrc != 0) {
    cli_err(ctx, "%s", err[0] ? err : warden_strerror(wrc));
    rc = cli_exit_code(wrc);
    goto done;
  }
  rc = js ? cli_print_lib_json(js) : cli_flush_stdout();
  warden_free(js);
done:
  cli_list_free(&pos);
  return rc;
}
