/*
 * cmd_compact.c -- `warden compact DIR`: reclaim deleted slots and rows and
 * shrink the store (warden_compact).
 */
#include "cli.h"

const cli_cmd cli_cmd_compact = {
    "compact", {"DIR", NULL}, NULL,
    "Reclaim what deleted documents left (zero rows, unused slots, free\n"
    "pages) and shrink the store: the collection is rebuilt from one snapshot\n"
    "and swapped in atomically (a kill at any moment leaves the old or the\n"
    "new collection).  Needs the collection to itself: it fails while another\n"
    "process has it open, and opens wait for it to finish.",
    NULL,
    cmd_compact};

int cmd_compact(int argc, char **argv) {
  const char *ctx = "compact";
  cli_list pos = {0};
  int rc = cli_parse(ctx, argc, argv, NULL, NULL, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 1, 1, "DIR");
  if (rc != 0) goto done;
  char err[1024] = "";
  char *js = NULL;
  int wrc = warden_compact(pos.v[0], err, sizeof err, &js);
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
