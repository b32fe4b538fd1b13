/*
 * help.c -- `warden --help` and `warden COMMAND --help`, generated.
 *
 * Nothing here is written by hand twice: every command's usage forms, its
 * options and their descriptions come from the cli_cmd entry next to its
 * parser in cmd_*.c (the same cli_opt table cli_parse() reads), and this
 * file only lays them out.  The top-level summary is the usage lines of
 * every command; `warden COMMAND --help` is its usage lines, what it does,
 * one line per option and what it prints.  tests/cli_reference.sh checks the
 * README's CLI reference against this output.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* Usage lines longer than this are wrapped between items. */
#define HELP_WRAP 100
/* Option descriptions start this many columns after the option's indent
 * (further right only when the option itself is wider). */
#define HELP_OPT_W 19

/* The order of `warden --help`. */
const cli_cmd *const cli_commands[] = {
    &cli_cmd_init,           &cli_cmd_ingest,          &cli_cmd_query,
    &cli_cmd_delete,         &cli_cmd_acl_get,         &cli_cmd_acl_set,
    &cli_cmd_acl_sync,       &cli_cmd_principals_set,  &cli_cmd_principals_sync,
    &cli_cmd_principals_get, &cli_cmd_grants_add,      &cli_cmd_grants_remove,
    &cli_cmd_grants_list,
    &cli_cmd_index,          &cli_cmd_stats,           &cli_cmd_check,
    &cli_cmd_export,         &cli_cmd_import,          &cli_cmd_backup,
    &cli_cmd_compact,        NULL,
};

const cli_group cli_groups[] = {
    {"acl", "Read or change document ACLs without touching vectors."},
    {"principals", "The collection's directory of group memberships."},
    {"grants", "Source-permission grants for the `grants` resolver."},
    {NULL, NULL},
};

static const char main_head[] =
    "usage: warden COMMAND [ARGS]   (warden COMMAND --help for details)\n\n";
static const char main_tail[] =
    "\n"
    "Output: one JSON object per line on stdout.  Errors: `warden: CONTEXT: REASON`\n"
    "on stderr.  Exit codes: 0 success, 1 runtime or I/O error, 2 usage error,\n"
    "3 invalid input data.\n"
    "\n"
    "  --help      this text        --version   print the version\n";

/* ------------------------------------------------------------ buffer */

typedef struct hbuf {
  char *p;
  size_t n, cap;
} hbuf;

static void hb_putn(hbuf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    while (b->n + n + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 1024;
    b->p = cli_xrealloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void hb_puts(hbuf *b, const char *s) { hb_putn(b, s, strlen(s)); }

static void hb_spaces(hbuf *b, size_t n) {
  while (n--) hb_putn(b, " ", 1);
}

/* Length of the current (last) line. */
static size_t hb_col(const hbuf *b) {
  size_t i = b->n;
  while (i > 0 && b->p[i - 1] != '\n') i--;
  return b->n - i;
}

/* Text whose lines are separated by '\n': the first continues the current
 * line, each further one starts at column indent.  Ends with a newline. */
static void hb_lines(hbuf *b, const char *text, size_t indent) {
  for (const char *p = text;;) {
    size_t len = strcspn(p, "\n");
    hb_putn(b, p, len);
    hb_puts(b, "\n");
    p += len;
    if (!*p || !p[1]) break;
    p++;
    hb_spaces(b, indent);
  }
}

/* ---------------------------------------------------------- synopsis */

static int in_form(const cli_opt *o, int form) {
  return o->forms == 0 || (o->forms & (1u << form));
}

/* "-k N", "--namespace PREFIX ...", "--exact" (no brackets). */
static void opt_item(hbuf *b, const cli_opt *o, int repeat) {
  if (o->shortname) {
    char s[3] = {'-', o->shortname, '\0'};
    hb_puts(b, s);
  } else {
    hb_puts(b, o->name);
  }
  if (o->arg) {
    hb_puts(b, " ");
    hb_puts(b, o->arg);
  }
  if (repeat && o->kind == CLI_MULTI) hb_puts(b, " ...");
}

/* Append one usage item (an option, or a "(A | B)" group), wrapping before
 * it when the line would get too long.  *o advances past what it used. */
static void synopsis_item(hbuf *b, const cli_opt **op, int form, size_t indent) {
  const cli_opt *o = *op;
  hbuf item = {0};
  if (o->flags & CLI_ONEOF) {
    hb_puts(&item, "(");
    int first = 1;
    for (; o->name && (o->flags & CLI_ONEOF); o++) {
      if (!in_form(o, form)) continue;
      if (!first) hb_puts(&item, " | ");
      first = 0;
      opt_item(&item, o, 1);
    }
    hb_puts(&item, ")");
  } else {
    if (!(o->flags & CLI_REQ)) hb_puts(&item, "[");
    opt_item(&item, o, 1);
    if (!(o->flags & CLI_REQ)) hb_puts(&item, "]");
    o++;
  }
  *op = o;
  if (hb_col(b) + 1 + item.n > HELP_WRAP) {
    hb_puts(b, "\n");
    hb_spaces(b, indent);
  } else {
    hb_puts(b, " ");
  }
  hb_puts(b, item.p);
  free(item.p);
}

/* "warden NAME FORM [options...]" for one usage form, the line started
 * with prefix; continuation lines are indented under the first word after
 * the command name. */
static void synopsis(hbuf *b, const cli_cmd *c, int form, const char *prefix) {
  hb_puts(b, prefix);
  hb_puts(b, "warden ");
  hb_puts(b, c->name);
  size_t indent = strlen(prefix) + strlen("warden ") + strlen(c->name) + 1;
  if (c->forms[form] && *c->forms[form]) {
    hb_puts(b, " ");
    hb_puts(b, c->forms[form]);
  }
  for (const cli_opt *o = c->opts; o && o->name;) {
    if (!in_form(o, form) && !(o->flags & CLI_ONEOF)) {
      o++;
      continue;
    }
    synopsis_item(b, &o, form, indent);
  }
  hb_puts(b, "\n");
}

static int nforms(const cli_cmd *c) {
  int n = 0;
  while (n < 3 && c->forms[n]) n++;
  return n ? n : 1;
}

/* -------------------------------------------------------- option list */

static void opt_list(hbuf *b, const cli_opt *opts, size_t indent) {
  for (const cli_opt *o = opts; o && o->name; o++) {
    hb_spaces(b, indent);
    size_t start = b->n;
    opt_item(b, o, 0);
    size_t w = b->n - start;
    hb_spaces(b, w + 2 <= HELP_OPT_W ? HELP_OPT_W - w : 2);
    hb_lines(b, o->help ? o->help : "", indent + HELP_OPT_W);
  }
}

/* --------------------------------------------------------------- help */

static const cli_group *find_group(const char *name) {
  for (const cli_group *g = cli_groups; g->name; g++)
    if (strcmp(g->name, name) == 0) return g;
  return NULL;
}

/* A command's subcommand word ("set" of "acl set"), or NULL. */
static const char *member_of(const cli_cmd *c, const char *group) {
  size_t n = strlen(group);
  return strncmp(c->name, group, n) == 0 && c->name[n] == ' ' ? c->name + n + 1 : NULL;
}

static void usage_lines(hbuf *b, const cli_cmd *c, int *first) {
  for (int f = 0; f < nforms(c); f++) {
    synopsis(b, c, f, *first ? "usage: " : "       ");
    *first = 0;
  }
}

static void group_help(hbuf *b, const cli_group *g) {
  int first = 1;
  size_t w = 0;
  for (const cli_cmd *const *c = cli_commands; *c; c++) {
    const char *sub = member_of(*c, g->name);
    if (!sub) continue;
    usage_lines(b, *c, &first);
    if (strlen(sub) > w) w = strlen(sub);
  }
  hb_puts(b, "\n");
  hb_lines(b, g->about, 0);
  for (const cli_cmd *const *c = cli_commands; *c; c++) {
    const char *sub = member_of(*c, g->name);
    if (!sub) continue;
    hb_puts(b, "  ");
    hb_puts(b, sub);
    hb_spaces(b, w + 3 - strlen(sub));
    hb_lines(b, (*c)->about, w + 5);
    opt_list(b, (*c)->opts, w + 5);
    if ((*c)->prints) {
      hb_spaces(b, w + 5);
      hb_lines(b, (*c)->prints, w + 5);
    }
  }
}

static void cmd_help(hbuf *b, const cli_cmd *c) {
  int first = 1;
  usage_lines(b, c, &first);
  hb_puts(b, "\n");
  hb_lines(b, c->about, 0);
  opt_list(b, c->opts, 2);
  if (c->prints) hb_lines(b, c->prints, 0);
}

char *cli_help_text(const char *cmd) {
  hbuf b = {0};
  if (!cmd || !*cmd) {
    hb_puts(&b, main_head);
    for (const cli_cmd *const *c = cli_commands; *c; c++)
      for (int f = 0; f < nforms(*c); f++) synopsis(&b, *c, f, "  ");
    hb_puts(&b, main_tail);
    return b.p;
  }
  const cli_group *g = find_group(cmd);
  if (g) {
    group_help(&b, g);
    return b.p;
  }
  for (const cli_cmd *const *c = cli_commands; *c; c++)
    if (strcmp((*c)->name, cmd) == 0) {
      cmd_help(&b, *c);
      return b.p;
    }
  return NULL;
}

int cli_help(const char *cmd) {
  char *h = cli_help_text(cmd);
  if (!h) return cli_usage(NULL, "unknown command '%s'", cmd);
  fputs(h, stdout);
  free(h);
  return cli_flush_stdout();
}

/* ----------------------------------------------------------- dispatch */

/* "get, set or sync": the subcommands of group g, for a usage error. */
static char *sub_list(const cli_group *g) {
  hbuf b = {0};
  const char *last = NULL;
  for (const cli_cmd *const *c = cli_commands; *c; c++) {
    const char *sub = member_of(*c, g->name);
    if (!sub) continue;
    if (last) {
      if (b.n) hb_puts(&b, ", ");
      hb_puts(&b, last);
    }
    last = sub;
  }
  if (b.n) hb_puts(&b, " or ");
  hb_puts(&b, last ? last : "");
  return b.p;
}

int cli_dispatch(int argc, char **argv) {
  const char *cmd = argv[0];
  for (const cli_cmd *const *c = cli_commands; *c; c++)
    if (strcmp(cmd, (*c)->name) == 0) return (*c)->run(argc - 1, argv + 1);
  const cli_group *g = find_group(cmd);
  if (!g) return cli_usage(NULL, "unknown command '%s'", cmd);
  if (argc < 2) {
    char *subs = sub_list(g);
    int rc = cli_usage(g->name, "missing subcommand (%s)", subs);
    free(subs);
    return rc;
  }
  const char *sub = argv[1];
  if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) return cli_help(g->name);
  for (const cli_cmd *const *c = cli_commands; *c; c++) {
    const char *s = member_of(*c, g->name);
    if (s && strcmp(s, sub) == 0) return (*c)->run(argc - 2, argv + 2);
  }
  return cli_usage(g->name, "unknown subcommand '%s'", sub);
}
