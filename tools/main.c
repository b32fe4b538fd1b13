/*
 * main.c -- entry point of the warden CLI: finds the subcommand in a table
 * and hands it the remaining words.  Everything else lives in cmd_*.c (one
 * file per subcommand group) and cli_util.c (shared plumbing).
 */
#include "cli.h"

#include <string.h>

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
} commands[] = {
    {"init", cmd_init},         {"ingest", cmd_ingest},
    {"query", cmd_query},       {"delete", cmd_delete},
    {"acl", cmd_acl},           {"principals", cmd_principals},
    {"grants", cmd_grants},     {"index", cmd_index},
    {"stats", cmd_stats},       {"check", cmd_check},
    {"export", cmd_export},
    /* hardening (issue 13) */
    {"import", cmd_import},     {"backup", cmd_backup},
    {"compact", cmd_compact},
};

int main(int argc, char **argv) {
  if (argc < 2) return cli_usage(NULL, "missing command");
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) return cli_help(NULL);
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
    fputs("warden " WARDEN_VERSION "\n", stdout);
    return cli_flush_stdout();
  }
  if (strcmp(cmd, "help") == 0) return cli_help(argc > 2 ? argv[2] : NULL);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(cmd, commands[i].name) == 0) {
      /* A command returns -1 after printing its --help: exit 0. */
      int rc = commands[i].run(argc - 2, argv + 2);
      return rc < 0 ? CLI_EXIT_OK : rc;
    }
  return cli_usage(NULL, "unknown command '%s'", cmd);
}
