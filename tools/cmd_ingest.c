/*
 * cmd_ingest.c -- `warden ingest DIR [FILE ...|-] [--keep-going]`: upsert
 * JSON Lines documents.  All inputs go to one warden_ingest() call, so they
 * commit (or fail) as one transaction.  Bad lines are the library's to
 * find; this file only turns its report into the CLI contract: each bad
 * line as `warden: FILE:LINE: field: reason` on stderr and exit 3.
 */
#include "cli.h"

#include <string.h>

/* Print a newline-separated list of "FILE:LINE: field: reason" errors, one
 * `warden: ...` line each. */
static void print_errors(const char *errors) {
  const char *p = errors;
  while (p && *p) {
    size_t len = strcspn(p, "\n");
    if (len) cli_err(NULL, "%.*s", (int)len, p);
    p += len;
    if (*p) p++;
  }
}

int cli_ingest_npy(const char *ctx, const char *dir, const char *meta, const char *vectors,
                   int keep_going); /* tools/ingest_npy.c */

int cmd_ingest(int argc, char **argv) {
  const char *ctx = "ingest";
  int keep_going = 0;
  const char *vectors = NULL;
  cli_list pos = {0};
  const cli_opt opts[] = {
      {"--keep-going", 0, CLI_FLAG, &keep_going},
      {"--vectors", 0, CLI_STR, &vectors},
      {NULL, 0, CLI_FLAG, NULL},
  };
  int rc = cli_parse(ctx, argc, argv, opts, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 1, -1, "DIR FILE");
  if (rc != 0) goto done;
  if (vectors) { /* META.jsonl --vectors EMB.npy */
    if (pos.n != 2 || strcmp(pos.v[1], "-") == 0) {
      rc = cli_usage(ctx, "--vectors takes exactly one META.jsonl file (not standard input)");
      goto done;
    }
    rc = cli_ingest_npy(ctx, pos.v[0], pos.v[1], vectors, keep_going);
    goto done;
  }

  static const char *const stdin_only[] = {"-"};
  const char *const *paths = pos.n > 1 ? pos.v + 1 : stdin_only;
  size_t npaths = pos.n > 1 ? pos.n - 1 : 1;
  size_t nstdin = 0;
  for (size_t i = 0; i < npaths; i++) nstdin += strcmp(paths[i], "-") == 0;
  if (nstdin > 1) {
    rc = cli_usage(ctx, "standard input ('-') given more than once");
    goto done;
  }

  warden *db = NULL;
  if ((rc = cli_open(ctx, pos.v[0], 0, &db)) != 0) goto done;
  cli_progress prog;
  cli_progress_init(&prog, ctx);
  warden_ingest_opts io = {.keep_going = keep_going,
                           .progress = cli_progress_cb,
                           .progress_ctx = &prog};
  warden_ingest_report rep = {0};
  int wrc = warden_ingest(db, paths, npaths, &io, &rep);
  cli_progress_done(&prog);
  if (wrc != 0) {
    /* A data error message is already "FILE:LINE: field: reason". */
    rc = cli_lib_err(db, wrc == WARDEN_EDATA ? NULL : ctx, wrc);
    warden_close(db);
    goto done;
  }
  warden_close(db);
  print_errors(rep.errors);
  warden_free(rep.errors);

  json_t *out = json_object();
  json_object_set_new(out, "documents", json_integer((json_int_t)rep.documents));
  json_object_set_new(out, "replaced", json_integer((json_int_t)rep.replaced));
  json_object_set_new(out, "chunks", json_integer((json_int_t)rep.chunks));
  json_object_set_new(out, "bad_lines", json_integer((json_int_t)rep.bad_lines));
  json_object_set_new(out, "revision", json_integer((json_int_t)rep.revision));
  rc = cli_print_json(out);
  if (rc == 0 && rep.bad_lines > 0) rc = CLI_EXIT_DATA;
done:
  cli_list_free(&pos);
  return rc;
}
