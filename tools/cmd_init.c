/*
 * cmd_init.c -- `warden init DIR --dim N [--metric M] [--config FILE]`:
 * create an empty collection.  The report is read back from the new
 * collection rather than echoed from the flags, so with --config alone the
 * user sees the dimension and metric the file actually set.
 */
#include "cli.h"

#include <string.h>

static const char *metric_name(int m) {
  switch (m) {
  case WARDEN_METRIC_COSINE: return "cosine";
  case WARDEN_METRIC_L2: return "l2";
  case WARDEN_METRIC_IP: return "ip";
  default: return "unknown";
  }
}

typedef struct init_args {
  const char *dim, *metric, *config;
} init_args;

static const cli_opt init_opts[] = {
    {"--dim", 0, CLI_STR, offsetof(init_args, dim), "N",
     "embedding dimension, 1.." CLI_QUOTE(WARDEN_MAX_DIM) " (required unless --config gives it)",
     CLI_REQ, 0},
    {"--metric", 0, CLI_STR, offsetof(init_args, metric), "cosine|l2|ip",
     "the similarity: cosine (default), l2 or ip", 0, 0},
    {"--config", 0, CLI_STR, offsetof(init_args, config), "FILE",
     "take warden.yaml from FILE; --dim/--metric must agree", 0, 0},
    {NULL, 0, CLI_FLAG, 0, NULL, NULL, 0, 0},
};

const cli_cmd cli_cmd_init = {
    "init", {"DIR", NULL}, init_opts,
    "Create an empty collection in DIR (created if missing).",
    "Prints {\"created\": DIR, \"dimension\": N, \"metric\": M, \"revision\": 0}.",
    cmd_init};

int cmd_init(int argc, char **argv) {
  const char *ctx = "init";
  init_args a = {0};
  cli_list pos = {0};
  int rc = cli_parse(ctx, argc, argv, init_opts, &a, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 1, 1, "DIR");
  if (rc != 0) goto done;
  const char *dim_s = a.dim, *metric = a.metric, *config = a.config;

  uint64_t dim = 0;
  if (dim_s) {
    if ((rc = CLI_PARSE_LIMIT(ctx, "--dim", dim_s, 1, WARDEN_MAX_DIM, &dim)) != 0)
      goto done;
  } else if (!config) {
    rc = cli_usage(ctx, "--dim is required (or --config FILE)");
    goto done;
  }
  if (metric && strcmp(metric, "cosine") != 0 && strcmp(metric, "l2") != 0 &&
      strcmp(metric, "ip") != 0) {
    rc = cli_usage(ctx, "--metric: expected cosine, l2 or ip, got '%s'",
                   metric);
    goto done;
  }

  const char *dir = pos.v[0];
  char errbuf[1024] = "";
  warden_create_opts co = {
      .dim = (unsigned)dim, .metric = metric, .config_path = config};
  int wrc = warden_create(dir, &co, errbuf, sizeof errbuf);
  if (wrc != 0) {
    cli_err(ctx, "%s", *errbuf ? errbuf : warden_strerror(wrc));
    rc = cli_exit_code(wrc);
    goto done;
  }
  warden *db = NULL;
  if ((rc = cli_open(ctx, dir, 1, &db)) != 0) goto done;
  json_t *out = json_object();
  json_object_set_new(out, "created", json_string_nocheck(dir));
  json_object_set_new(out, "dimension", json_integer(warden_dimension(db)));
  json_object_set_new(out, "metric", json_string(metric_name(warden_metric(db))));
  json_object_set_new(out, "revision", json_integer(0));
  warden_close(db);
  rc = cli_print_json(out);
done:
  cli_list_free(&pos);
  return rc;
}
