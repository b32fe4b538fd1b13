/*
 * cmd_delete.c -- `warden delete DIR DOC_ID ...`: delete documents in one
 * transaction.  Unknown ids are counted, not errors, so re-running a delete
 * is harmless.
 */
#include "cli.h"

const cli_cmd cli_cmd_delete = {
    "delete", {"DIR DOC_ID ...", NULL}, NULL,
    "Delete documents with all their chunks.  Unknown ids are counted.",
    "Prints {\"deleted\": N, \"unknown\": M, \"revision\": R}.",
    cmd_delete};

int cmd_delete(int argc, char **argv) {
  const char *ctx = "delete";
  cli_list pos = {0};
  int rc = cli_parse(ctx, argc, argv, NULL, NULL, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 2, -1, "DIR DOC_ID");
  if (rc != 0) goto done;

  warden *db = NULL;
  if ((rc = cli_open(ctx, pos.v[0], 0, &db)) != 0) goto done;
  warden_write_report rep = {0};
  int wrc = warden_delete(db, pos.v + 1, pos.n - 1, &rep);
  if (wrc != 0) {
    rc = cli_lib_err(db, ctx, wrc);
    warden_close(db);
    goto done;
  }
  warden_close(db);
  json_t *out = json_object();
  json_object_set_new(out, "deleted", json_integer((json_int_t)rep.changed));
  json_object_set_new(out, "unknown", json_integer((json_int_t)rep.unknown));
  json_object_set_new(out, "revision", json_integer((json_int_t)rep.revision));
  rc = cli_print_json(out);
done:
  cli_list_free(&pos);
  return rc;
}
