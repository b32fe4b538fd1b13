/*
 * cmd_backup.c -- `warden backup DIR DEST`: an online, consistent,
 * compacted copy of a collection (warden_backup).
 */
#include "cli.h"

int cmd_backup(int argc, char **argv) {
  const char *ctx = "backup";
  cli_list pos = {0};
  const cli_opt opts[] = {{NULL, 0, CLI_FLAG, NULL}};
  int rc = cli_parse(ctx, argc, argv, opts, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 2, 2, "DIR DEST");
  if (rc != 0) goto done;
  warden *db = NULL;
  if ((rc = cli_open(ctx, pos.v[0], 1, &db)) != 0) goto done;
  char *js = NULL;
  int wrc = warden_backup(db, pos.v[1], &js);
  if (wrc != 0)
    rc = cli_lib_err(db, ctx, wrc);
  else {
    rc = cli_print_lib_json(js);
    warden_free(js);
  }
  warden_close(db);
done:
  cli_list_free(&pos);
  return rc;
}
