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

int cmd_init(int argc, char **argv) {
  const char *ctx = "init";
  const char *dim_s = NULL, *metric = NULL, *config = NULL;
  cli_list pos = {0};
  const cli_opt opts[] = {
      {"--dim", 0, CLI_STR, &dim_s},
      {"--metric", 0, CLI_STR, &metric},
      {"--config", 0, CLI_STR, &config},
      {NULL, 0, CLI_FLAG, NULL},
  };
  int rc = cli_parse(ctx, argc, argv, opts, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 1, 1, "DIR");
  if (rc != 0) goto done;

  uint64_t dim = 0;
  if (dim_s) {
    if ((rc = cli_parse_u64(ctx, "--dim", dim_s, 1, 65536, &dim)) != 0)
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
