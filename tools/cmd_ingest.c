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

typedef struct ingest_args {
  const char *vectors;
  int keep_going;
} ingest_args;

static const cli_opt ingest_opts[] = {
    {"--vectors", 0, CLI_STR, offsetof(ingest_args, vectors), "EMB.npy",
     "the embeddings are the rows of EMB.npy, a 2-D float32 or\n"
     "float16 .npy (C order), one row per chunk of META.jsonl\n"
     "in file order; META's chunks have text, no embedding.\n"
     "Rows and dimension are checked before anything is written",
     CLI_REQ, 1u << 1},
    {"--keep-going", 0, CLI_FLAG, offsetof(ingest_args, keep_going), NULL,
     "commit the good lines; report every bad one (exit 3\nif any was bad)", 0, 0},
    {NULL, 0, CLI_FLAG, 0, NULL, NULL, 0, 0},
};

const cli_cmd cli_cmd_ingest = {
    "ingest", {"DIR [FILE ...|-]", "DIR META.jsonl", NULL}, ingest_opts,
    "Upsert JSON Lines documents (one per line) from the FILEs, or standard\n"
    "input when none is given or FILE is '-'.  All inputs form one\n"
    "transaction: a bad line is reported as `FILE:LINE: field: reason` and\n"
    "nothing is committed (exit 3).",
    "Prints {\"documents\", \"replaced\", \"chunks\", \"bad_lines\", \"revision\"}.",
    cmd_ingest};

int cmd_ingest(int argc, char **argv) {
  const char *ctx = "ingest";
  ingest_args a = {0};
  cli_list pos = {0};
  int rc = cli_parse(ctx, argc, argv, ingest_opts, &a, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 1, -1, "DIR FILE");
  if (rc != 0) goto done;
  const char *vectors = a.vectors;
  int keep_going = a.keep_going;
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
