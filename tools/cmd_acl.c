/*
 * cmd_acl.c -- `warden acl get|set|sync` (document ACLs, changed without
 * re-embedding) and `warden grants` (source-permission grants for the
 * `grants` resolver).
 */
#include "cli.h"

#include <string.h>

static int acl_get(int argc, char **argv);
static int acl_set(int argc, char **argv);
static int acl_sync(int argc, char **argv);

const cli_cmd cli_cmd_acl_get = {
    "acl get", {"DIR DOC_ID", NULL}, NULL, "print {\"doc_id\", \"allow\", \"deny\"}", NULL,
    acl_get};

typedef struct acl_set_args {
  const char *allow, *deny;
} acl_set_args;

static const cli_opt acl_set_opts[] = {
    {"--allow", 0, CLI_STR, offsetof(acl_set_args, allow), "P,...",
     "the new allow list (--allow '' sets an empty list,\nwhich means nobody)", 0, 0},
    {"--deny", 0, CLI_STR, offsetof(acl_set_args, deny), "P,...", "the new deny list", 0, 0},
    {NULL, 0, CLI_FLAG, 0, NULL, NULL, 0, 0},
};

const cli_cmd cli_cmd_acl_set = {
    "acl set", {"DIR DOC_ID", NULL}, acl_set_opts,
    "replace the allow and/or deny list (at least one of\nthem; the one not given is kept)", NULL,
    acl_set};

const cli_cmd cli_cmd_acl_sync = {
    "acl sync", {"DIR FILE", NULL}, NULL,
    "apply a JSON Lines file of {\"doc_id\", \"allow\", \"deny\"} in one\n"
    "transaction; prints {\"changed\", \"unchanged\", \"unknown_doc\",\n"
    "\"revision\"}",
    NULL,
    acl_sync};

static int acl_get(int argc, char **argv) {
  return cli_get("acl get", argc, argv, "DIR DOC_ID", warden_acl_get);
}

static int acl_set(int argc, char **argv) {
  const char *ctx = "acl set";
  acl_set_args a = {0};
  cli_list pos = {0}, allow = {0}, deny = {0};
  int rc = cli_parse(ctx, argc, argv, acl_set_opts, &a, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 2, 2, "DIR DOC_ID");
  if (rc != 0) goto done;
  const char *allow_s = a.allow, *deny_s = a.deny;
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

/* `warden grants add|remove DIR --principal P --prefix URI_PREFIX` and
 * `warden grants list DIR`: the grants read by the `grants` resolver. */
typedef struct grant_args {
  const char *principal, *prefix;
} grant_args;

static const cli_opt grant_opts[] = {
    {"--principal", 0, CLI_STR, offsetof(grant_args, principal), "P",
     "the user or group the grant is for", CLI_REQ, 0},
    {"--prefix", 0, CLI_STR, offsetof(grant_args, prefix), "URI_PREFIX",
     "source URIs starting with it become readable", CLI_REQ, 0},
    {NULL, 0, CLI_FLAG, 0, NULL, NULL, 0, 0},
};

static int grants_add(int argc, char **argv);
static int grants_remove(int argc, char **argv);
static int grants_list(int argc, char **argv);

const cli_cmd cli_cmd_grants_add = {
    "grants add", {"DIR", NULL}, grant_opts, "add a grant", NULL, grants_add};

const cli_cmd cli_cmd_grants_remove = {
    "grants remove", {"DIR", NULL}, grant_opts, "remove a grant", NULL, grants_remove};

const cli_cmd cli_cmd_grants_list = {
    "grants list", {"DIR", NULL}, NULL, "print every grant", NULL, grants_list};

/* One body for the three: sub is "add", "remove" or "list". */
static int grants_run(const char *sub, int argc, char **argv) {
  const char *ctx = "grants";
  int is_list = strcmp(sub, "list") == 0, is_add = strcmp(sub, "add") == 0;
  grant_args a = {0};
  cli_list pos = {0};
  int rc = cli_parse(ctx, argc, argv, is_list ? NULL : grant_opts, &a, &pos);
  const char *principal = a.principal, *prefix = a.prefix;
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

static int grants_add(int argc, char **argv) { return grants_run("add", argc, argv); }
static int grants_remove(int argc, char **argv) { return grants_run("remove", argc, argv); }
static int grants_list(int argc, char **argv) { return grants_run("list", argc, argv); }
