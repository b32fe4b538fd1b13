/*
 * cmd_acl.c -- `warden acl get|set|sync` (document ACLs, changed without
 * re-embedding) and `warden grants` (source-permission grants for the
 * `grants` resolver).
 */
#include "cli.h"

#include <string.h>

static int acl_get(int argc, char **argv) {
  return cli_get("acl get", argc, argv, "DIR DOC_ID", warden_acl_get);
}

static int acl_set(int argc, char **argv) {
  const char *ctx = "acl set";
  const char *allow_s = NULL, *deny_s = NULL;
  cli_list pos = {0}, allow = {0}, deny = {0};
  const cli_opt opts[] = {
      {"--allow", 0, CLI_STR, &allow_s},
      {"--deny", 0, CLI_STR, &deny_s},
      {NULL, 0, CLI_FLAG, NULL},
  };
  int rc = cli_parse(ctx, argc, argv, opts, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 2, 2, "DIR DOC_ID");
  if (rc != 0) goto done;
  if (!allow_s && !deny_s) {
    rc = cli_usage(ctx, "give --allow and/or --deny");
    goto done;
  }
  /* cli_split leaves v non-NULL even for "", which the library reads as
   * "set an empty list"; a NULL list keeps the current one. */
  if (allow_s) cli_split(allow_s, &allow);
  if (deny_s) cli_split(deny_s, &deny);
  warden *db = NULL;
  if ((rc = cli_open(ctx, pos.v[0], 0, &db)) != 0) goto done;
  warden_write_report rep = {0};
  int wrc = warden_acl_set(db, pos.v[1], allow.v, allow.n, deny.v, deny.n,
                           &rep);
  if (wrc == 0 && rep.unknown > 0) {
    cli_err(ctx, "%s: no such document", pos.v[1]);
    rc = CLI_EXIT_RUNTIME;
  } else if (wrc != 0) {
    rc = cli_lib_err(db, ctx, wrc);
  } else {
    json_t *out = json_object();
    json_object_set_new(out, "changed", json_integer((json_int_t)rep.changed));
    json_object_set_new(out, "revision", json_integer((json_int_t)rep.revision));
    rc = cli_print_json(out);
  }
  warden_close(db);
done:
  cli_list_free(&allow);
  cli_list_free(&deny);
  cli_list_free(&pos);
  return rc;
}

static int acl_sync(int argc, char **argv) {
  return cli_sync("acl sync", argc, argv, warden_acl_sync, "unknown_doc");
}

int cmd_acl(int argc, char **argv) {
  if (argc < 1) return cli_usage("acl", "missing subcommand (get, set or sync)");
  const char *sub = argv[0];
  if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
    fputs(cli_help_text("acl"), stdout);
    return cli_flush_stdout();
  }
  if (strcmp(sub, "get") == 0) return acl_get(argc - 1, argv + 1);
  if (strcmp(sub, "set") == 0) return acl_set(argc - 1, argv + 1);
  if (strcmp(sub, "sync") == 0) return acl_sync(argc - 1, argv + 1);
  return cli_usage("acl", "unknown subcommand '%s'", sub);
}

/* `warden grants add|remove DIR --principal P --prefix URI_PREFIX` and
 * `warden grants list DIR`: the grants read by the `grants` resolver. */
int cmd_grants(int argc, char **argv) {
  const char *ctx = "grants";
  if (argc < 1) return cli_usage(ctx, "missing subcommand (add, remove or list)");
  const char *sub = argv[0];
  if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
    fputs(cli_help_text("grants"), stdout);
    return cli_flush_stdout();
  }
  int is_list = strcmp(sub, "list") == 0, is_add = strcmp(sub, "add") == 0;
  if (!is_list && !is_add && strcmp(sub, "remove") != 0)
    return cli_usage(ctx, "unknown subcommand '%s'", sub);
  const char *principal = NULL, *prefix = NULL;
  cli_list pos = {0};
  const cli_opt opts[] = {
      {"--principal", 0, CLI_STR, &principal},
      {"--prefix", 0, CLI_STR, &prefix},
      {NULL, 0, CLI_FLAG, NULL},
  };
  const cli_opt list_opts[] = {{NULL, 0, CLI_FLAG, NULL}};
  int rc = cli_parse(ctx, argc - 1, argv + 1, is_list ? list_opts : opts, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 1, 1, "DIR");
  if (rc == 0 && !is_list && (!principal || !prefix))
    rc = cli_usage(ctx, "%s needs --principal and --prefix", sub);
  if (rc != 0) goto done;
  warden *db = NULL;
  if ((rc = cli_open(ctx, pos.v[0], is_list, &db)) != 0) goto done;
  int wrc;
  if (is_list) {
    char *json = NULL;
    wrc = warden_grant_list(db, &json);
    rc = wrc ? cli_lib_err(db, ctx, wrc) : cli_print_lib_json(json);
    warden_free(json);
  } else {
    warden_write_report rep = {0};
    wrc = is_add ? warden_grant_add(db, principal, prefix, &rep)
                 : warden_grant_remove(db, principal, prefix, &rep);
    if (wrc != 0) {
      rc = cli_lib_err(db, ctx, wrc);
    } else {
      json_t *out = json_object();
      json_object_set_new(out, "changed", json_integer((json_int_t)rep.changed));
      json_object_set_new(out, "revision", json_integer((json_int_t)rep.revision));
      rc = cli_print_json(out);
    }
  }
  warden_close(db);
done:
  cli_list_free(&pos);
  return rc;
}
