/*
 * cmd_backup.c -- `warden backup DIR DEST`: an online, consistent,
 * compacted copy of a collection (warden_backup).
 */
#include "cli.h"

const cli_cmd cli_cmd_backup = {
    "backup", {"DIR DEST", NULL}, NULL,
    "Copy the collection DIR to the new directory DEST while queries and\n"
    "writes go on: one consistent, compacted snapshot of the store plus\n"
    "warden.yaml and the index file.  DEST opens as a collection.",
    NULL,
    cmd_backup};

int cmd_backup(int argc, char **argv) {
  const char *ctx = "backup";
  cli_list pos = {0};
  int rc = cli_parse(ctx, argc, argv, NULL, NULL, &pos);
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
