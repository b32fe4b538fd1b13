/*
 * cmd_import.c -- `warden import DIR FILE [--trust-config]`: a new collection from a full
 * export (warden_import).
 */
#include "cli.h"

#include <string.h>

static const cli_opt import_opts[] = {
    {"--trust-config", 0, CLI_FLAG, 0, NULL,
     "accept an export whose warden.yaml names a resolver\n"
     "command or an audit.path (refused by default: an\n"
     "export file is data, and a command would be run)", 0, 0},
    {NULL, 0, CLI_FLAG, 0, NULL, NULL, 0, 0},
};

const cli_cmd cli_cmd_import = {
    "import", {"DIR FILE", NULL}, import_opts,
    "Create the collection DIR (it must not exist, or be an empty directory)\n"
    "from a full export (`warden export SRC FILE --full`; FILE - = stdin).\n"
    "Nothing is left behind on failure; a truncated file is refused.",
    NULL,
    cmd_import};

int cmd_import(int argc, char **argv) {
  const char *ctx = "import";
  cli_list pos = {0};
  int trust = 0; /* import_opts' one value */
  int rc = cli_parse(ctx, argc, argv, import_opts, &trust, &pos);
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
