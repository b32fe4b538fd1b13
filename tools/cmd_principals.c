/*
 * cmd_principals.c -- `warden principals set|sync|get`: the collection's
 * directory of group memberships, which queries expand (nested groups
 * included) on top of the groups the caller asserts.
 */
#include "cli.h"

#include <string.h>

static int write_report(const warden_write_report *rep, int with_unchanged) {
  json_t *out = json_object();
  json_object_set_new(out, "changed", json_integer((json_int_t)rep->changed));
  if (with_unchanged)
    json_object_set_new(out, "unchanged", json_integer((json_int_t)rep->unchanged));
  json_object_set_new(out, "revision", json_integer((json_int_t)rep->revision));
  return cli_print_json(out);
}

static const cli_opt pr_set_opts[] = {
    {"--groups", 0, CLI_STR, 0, "G1,G2", "its groups, replacing the old list ('' removes the\nentry)",
     CLI_REQ, 0},
    {NULL, 0, CLI_FLAG, 0, NULL, NULL, 0, 0},
};

static int pr_set(int argc, char **argv);
static int pr_sync(int argc, char **argv);
static int pr_get(int argc, char **argv);

const cli_cmd cli_cmd_principals_set = {
    "principals set", {"DIR PRINCIPAL", NULL}, pr_set_opts, "replace PRINCIPAL's groups", NULL,
    pr_set};

const cli_cmd cli_cmd_principals_sync = {
    "principals sync", {"DIR FILE", NULL}, NULL,
    "apply a JSON Lines file of {\"principal\", \"groups\"}", NULL,
    pr_sync};

const cli_cmd cli_cmd_principals_get = {
    "principals get", {"DIR PRINCIPAL", NULL}, NULL,
    "print {\"principal\", \"groups\", \"expanded\"}", NULL,
    pr_get};

static int pr_set(int argc, char **argv) {
  const char *ctx = "principals set";
  const char *groups_s = NULL; /* pr_set_opts' one value */
  cli_list pos = {0}, groups = {0};
  int rc = cli_parse(ctx, argc, argv, pr_set_opts, &groups_s, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 2, 2, "DIR PRINCIPAL");
  if (rc == 0 && !groups_s) rc = cli_usage(ctx, "--groups is required");
  if (rc != 0) goto done;
  cli_split(groups_s, &groups);
  warden *db = NULL;
  if ((rc = cli_open(ctx, pos.v[0], 0, &db)) != 0) goto done;
  warden_write_report rep = {0};
  int wrc = warden_principal_set(db, pos.v[1], groups.v, groups.n, &rep);
  rc = wrc ? cli_lib_err(db, ctx, wrc) : write_report(&rep, 0);
  warden_close(db);
done:
  cli_list_free(&groups);
  cli_list_free(&pos);
  return rc;
}

static int pr_sync(int argc, char **argv) {
  return cli_sync("principals sync", argc, argv, warden_principals_sync, NULL);
}

static int pr_get(int argc, char **argv) {
  return cli_get("principals get", argc, argv, "DIR PRINCIPAL", warden_principal_get);
}
