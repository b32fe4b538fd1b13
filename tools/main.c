/*
 * main.c -- entry point of the warden CLI: finds the subcommand in the
 * command tables of tools/help.c and hands it the remaining words.
 * Everything else lives in cmd_*.c (one file per subcommand group) and
 * cli_util.c (shared plumbing).
 */
#include "cli.h"

#include <string.h>

int main(int argc, char **argv) {
  if (argc < 2) return cli_usage(NULL, "missing command");
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) return cli_help(NULL);
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
    fputs("warden " WARDEN_VERSION "\n", stdout);
    return cli_flush_stdout();
  }
  if (strcmp(cmd, "help") == 0) return cli_help(argc > 2 ? argv[2] : NULL);
  /* The commands are the help's own tables (tools/help.c). */
  int rc = cli_dispatch(argc - 1, argv + 1);
  /* A command returns -1 after printing its --help: exit 0. */
  return rc < 0 ? CLI_EXIT_OK : rc;
}
