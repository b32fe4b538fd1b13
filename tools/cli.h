/*
 * cli.h -- shared plumbing of the warden command-line tool.
 *
 * The CLI is a thin shell over warden.h: each subcommand (one file each,
 * cmd_*.c) parses its options with the table-driven parser below, calls the
 * library, and prints one JSON object per line on stdout.  Everything the
 * user must be able to rely on lives here so it is decided once: the exit
 * codes (SPEC section 5: 0 ok, 1 runtime/I/O, 2 usage, 3 invalid data), the
 * one-line error format `warden: CONTEXT: REASON` on stderr, and the JSON
 * output format.  Unlike the library, the CLI may print and exit.
 */
#ifndef WARDEN_CLI_H
#define WARDEN_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "warden.h"

#ifndef WARDEN_VERSION
#define WARDEN_VERSION "0.1.0"
#endif

/* Exit codes: a promise that never changes. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_RUNTIME 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_DATA 3

/* ------------------------------------------------------------ lists */

/* A growable array of borrowed strings (argv entries or pieces of a
 * cli_split()-owned buffer).  v is never NULL once initialised, so an empty
 * list can be told apart from "not given" where the library needs it. */
typedef struct cli_list {
  const char **v;
  size_t n, cap;
  char *owned; /* buffer the strings point into, when split; freed with list */
} cli_list;

void cli_list_push(cli_list *l, const char *s);
void cli_list_free(cli_list *l);
/* Split a comma-separated list into out (cleared first).  Empty items are
 * skipped, so "" gives an empty (but initialised) list. */
void cli_split(const char *s, cli_list *out);

/* Allocation for the CLI: out of memory prints an error and exits 1. */
void *cli_xmalloc(size_t n);
void *cli_xrealloc(void *p, size_t n);
char *cli_xstrdup(const char *s);

/* --------------------------------------------------------- options */

typedef enum cli_kind {
  CLI_FLAG,  /* the value is an int, set to 1 */
  CLI_STR,   /* a const char *, NULL when not given; twice = error */
  CLI_MULTI  /* a cli_list, repeatable */
} cli_kind;

/* One option of a command: the parser reads it and --help documents it
 * from this one entry, so an option cannot be accepted and undocumented or
 * documented and refused.  A command keeps its table static, next to a
 * struct that holds the parsed values. */
#define CLI_REQ 1u   /* the synopsis shows it without brackets (the command
                      * checks that it is there) */
#define CLI_ONEOF 2u /* with its CLI_ONEOF neighbours: "(A | B | C)" */

typedef struct cli_opt {
  const char *name; /* long name with dashes: "--dim"; NULL ends a table */
  char shortname;   /* 'k' for -k (the synopsis then shows -k), or 0 */
  cli_kind kind;
  size_t off;       /* where the value goes: offsetof(ARGS, field) */
  const char *arg;  /* the value's placeholder ("N", "cosine|l2|ip"); NULL
                     * for a flag */
  const char *help; /* its --help text; '\n' starts a continuation line */
  unsigned flags;   /* CLI_REQ, CLI_ONEOF */
  unsigned forms;   /* bit i: shown in usage form i of the command; 0: all */
} cli_opt;

/* One command (or subcommand, "acl set") as --help presents it. */
typedef struct cli_cmd {
  const char *name;     /* "init", "acl set" */
  const char *forms[3]; /* the positionals of each usage form ("DIR",
                         * "DIR [FILE ...|-]"); NULL ends the list */
  const cli_opt *opts;  /* NULL, or a table ended by a {NULL} entry */
  const char *about;    /* what it does ('\n' separates lines); for a
                         * subcommand, its line in the group's help */
  const char *prints;   /* what it prints, or NULL */
  int (*run)(int argc, char **argv); /* runs it: the words after its
                                      * name ("acl set": after "set") */
} cli_cmd;

/* A command group's own text ("acl": what the acl subcommands are for). */
typedef struct cli_group {
  const char *name;
  const char *about;
} cli_group;

/* Every command and group, in the order `warden --help` lists them
 * (tools/help.c); each cli_cmd itself lives in its cmd_*.c.  main()
 * dispatches from these same tables, so a command cannot run without
 * being in the help. */
extern const cli_cmd *const cli_commands[];
extern const cli_group cli_groups[];

/* Run `warden ARGV...` (argv[0] is the command word) from those tables:
 * a command, or a group's subcommand ("acl set").  Returns the exit code
 * (-1: a --help was printed). */
int cli_dispatch(int argc, char **argv);

/* Parse args (argv[0] is the first word after the (sub)command) against
 * opts (NULL, or ended by a {NULL} entry), storing values at
 * (char *)vals + opt->off.  Non-option words go to pos in order; "-" is a
 * word; "--" ends options.  "--name=value" and "--name value" are both
 * accepted.  --help/-h prints the help of the command named by the first
 * word of ctx and returns -1 (the caller exits 0).  A usage error is
 * printed and returns CLI_EXIT_USAGE.  0 on success. */
int cli_parse(const char *ctx, int argc, char **argv, const cli_opt *opts,
              void *vals, cli_list *pos);

/* Check the number of positional words: between min and max (max < 0:
 * unlimited).  names is the usage list of positionals ("DIR DOC_ID") used in
 * the "missing" message.  Returns 0 or CLI_EXIT_USAGE (printed). */
int cli_need_pos(const char *ctx, const cli_list *pos, size_t min, int max,
                 const char *names);

/* Parse a decimal unsigned integer option value in [min, max].
 * Returns 0 or CLI_EXIT_USAGE (printed). */
int cli_parse_u64(const char *ctx, const char *opt, const char *s,
                  uint64_t min, uint64_t max, uint64_t *out);
/* The same, for a bound that is a library limit: the out-of-range message
 * names it ("-k: 20000 is out of range [1, 10000] (WARDEN_MAX_K)"). */
int cli_parse_u64_limit(const char *ctx, const char *opt, const char *s,
                        uint64_t min, uint64_t max, const char *max_name,
                        uint64_t *out);
/* cli_parse_u64_limit with the limit's value and its name from one macro. */
#define CLI_PARSE_LIMIT(ctx, opt, s, min, LIMIT, out) \
  cli_parse_u64_limit(ctx, opt, s, min, LIMIT, #LIMIT, out)

/* ---------------------------------------------------------- errors */

/* `warden: CTX: MESSAGE` on stderr, one line (newlines in the message are
 * folded).  ctx may be NULL: `warden: MESSAGE`. */
void cli_err(const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A usage error: prints `warden: CTX: MESSAGE (see 'warden CMD --help')`
 * and returns CLI_EXIT_USAGE. */
int cli_usage(const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Exit code for a library return code. */
int cli_exit_code(int rc);
/* Print a library error (warden_errmsg(db), or warden_strerror(rc) when
 * there is no message) and return its exit code. */
int cli_lib_err(const warden *db, const char *ctx, int rc);

/* Open the collection in dir; on failure prints the error and returns the
 * exit code (nonzero); 0 on success. */
int cli_open(const char *ctx, const char *dir, int read_only, warden **out);

/* A read-only "get DIR NAME" command: opens DIR read-only, calls get with
 * NAME and prints the JSON it returns.  Returns the exit code. */
int cli_get(const char *ctx, int argc, char **argv, const char *usage,
            int (*get)(warden *db, const char *name, char **json_out));

/* A "sync DIR FILE" command: runs sync with progress on stderr and prints
 * {"changed", "unchanged", [unknown_key,] "revision"}.  Returns the exit
 * code. */
int cli_sync(const char *ctx, int argc, char **argv,
             int (*sync)(warden *db, const char *path, const warden_ingest_opts *opts,
                         warden_write_report *rep),
             const char *unknown_key);

/* ------------------------------------------------------------ output */

/* Print obj as one line of JSON on stdout (", " and ": " separators, keys
 * in insertion order, reals in their shortest round-trip form) and decref
 * it.  Returns 0, or CLI_EXIT_RUNTIME if stdout failed (printed). */
int cli_print_json(json_t *obj);
/* Append obj's JSON text to a growing buffer (used by cli_print_json). */
char *cli_json_text(const json_t *obj);
/* A JSON real for a float score: the shortest decimal that reads back as
 * the same float, so 0.83f prints as 0.83 and not 0.829999983. */
json_t *cli_json_score(float f);
/* Output lines built by hand (cmd_query's hits: a jansson tree per hit,
 * and a parse of its metadata, were most of the CLI's per-query time),
 * byte for byte what cli_print_json prints for the same values. */
typedef struct cli_buf {
  char *p;
  size_t n, cap;
} cli_buf;
void cli_buf_raw(cli_buf *b, const char *s, size_t n);
void cli_buf_str(cli_buf *b, const char *s); /* a JSON string ("" for NULL) */
void cli_buf_uint(cli_buf *b, uint64_t v);
void cli_buf_score(cli_buf *b, float f);     /* as cli_json_score's real prints */
void cli_buf_json(cli_buf *b, const json_t *j);
/* A JSON object text from the library (warden_hit.metadata_json), as
 * json_loads + cli_print_json print it; {} when it is not an object. */
void cli_buf_lib_object(cli_buf *b, const char *text);
/* Print a JSON document produced by the library as one line (re-encoded
 * through cli_print_json when it parses; verbatim otherwise). */
int cli_print_lib_json(const char *text);
/* Flush stdout and report a write failure (exit code or 0). */
int cli_flush_stdout(void);

/* Read a whole file ("-" = stdin) into a NUL-terminated buffer (free()).
 * On failure prints `warden: CTX: PATH: reason` and returns exit code. */
int cli_read_file(const char *ctx, const char *path, char **buf, size_t *len);

/* ----------------------------------------------------------- progress */

/* Progress of a long ingest or sync on stderr: a bar redrawn in place when
 * stderr is a terminal, otherwise a plain line every ~2 s or 100k lines. */
typedef struct cli_progress {
  const char *ctx;
  int tty;
  double start, last;
  uint64_t last_lines;
  int drawn; /* a bar is on screen and must be cleared */
  const char *phase; /* cli_progress_phase_cb's current phase */
  char label[64];    /* "CTX: PHASE" */
  const char *base;  /* ctx as given to cli_progress_init */
} cli_progress;

void cli_progress_init(cli_progress *p, const char *ctx);
/* Matches warden_ingest_opts.progress. */
void cli_progress_cb(void *ctx, uint64_t lines, uint64_t bytes,
                     uint64_t total);
/* Matches warden_index_opts.progress: items done out of total. */
void cli_progress_count_cb(void *ctx, uint64_t done, uint64_t total);
/* Matches warden_index_opts.phase_progress: as cli_progress_count_cb,
 * labelled "CTX: PHASE", with a line when a phase starts. */
void cli_progress_phase_cb(void *ctx, const char *phase, uint64_t done, uint64_t total);
void cli_progress_done(cli_progress *p);

/* --------------------------------------------------------------- help */

/* Print the help of cmd ("init", "acl", ...; NULL: the top-level usage
 * summary) on stdout.  Returns 0, CLI_EXIT_RUNTIME if stdout failed, or
 * CLI_EXIT_USAGE (printed) for an unknown command. */
int cli_help(const char *cmd);
/* The same text in a malloc'd string (NULL: unknown command). */
char *cli_help_text(const char *cmd);

/* Stringify a numeric macro, so a limit's --help text and its message are
 * written from the library's constant: CLI_QUOTE(WARDEN_MAX_K) is "10000". */
#define CLI_QUOTE_(x) #x
#define CLI_QUOTE(x) CLI_QUOTE_(x)

/* ----------------------------------------------------------- commands */

/* Each takes the words after its command name.  Their cli_cmd entries
 * (cli_cmd_init, ...) are in the same files. */
int cmd_init(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_export(int argc, char **argv);
/* hardening (issue 13): cmd_import.c, cmd_backup.c */
int cmd_import(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_compact(int argc, char **argv);

extern const cli_cmd cli_cmd_init, cli_cmd_ingest, cli_cmd_query,
    cli_cmd_delete, cli_cmd_acl_get, cli_cmd_acl_set, cli_cmd_acl_sync,
    cli_cmd_principals_set, cli_cmd_principals_sync, cli_cmd_principals_get,
    cli_cmd_grants_add, cli_cmd_grants_remove, cli_cmd_grants_list,
    cli_cmd_index, cli_cmd_stats, cli_cmd_check, cli_cmd_export,
    cli_cmd_import, cli_cmd_backup, cli_cmd_compact;

#endif
