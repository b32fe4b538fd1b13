/*
 * cmd_stats.c -- the read-mostly maintenance commands: `warden stats`,
 * `warden check`, `warden export` and `warden index`.
 *
 * export writes to FILE atomically (a temporary file in the same directory,
 * fsync, rename), so a reader never sees half an export and a failed export
 * leaves the previous FILE in place.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Shared shape of `stats DIR` and `check DIR`: open read-only, run one
 * call that returns JSON, print it. */
static int one_json(const char *ctx, int argc, char **argv,
                    int (*fn)(warden *, char **)) {
  cli_list pos = {0};
  int rc = cli_parse(ctx, argc, argv, NULL, NULL, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 1, 1, "DIR");
  if (rc != 0) goto done;
  warden *db = NULL;
  if ((rc = cli_open(ctx, pos.v[0], 1, &db)) != 0) goto done;
  char *json = NULL;
  int wrc = fn(db, &json);
  if (json) {
    /* check returns its report along with WARDEN_ECORRUPT. */
    rc = cli_print_lib_json(json);
    warden_free(json);
    if (wrc != 0) {
      if (wrc == WARDEN_ECORRUPT)
        cli_err(ctx, "%s", *warden_errmsg(db) ? warden_errmsg(db)
                                              : "problems found");
      else
        cli_lib_err(db, ctx, wrc);
      rc = CLI_EXIT_RUNTIME;
    }
  } else if (wrc != 0) {
    rc = cli_lib_err(db, ctx, wrc);
    if (rc == 0) rc = CLI_EXIT_RUNTIME;
  }
  warden_close(db);
done:
  cli_list_free(&pos);
  return rc;
}

const cli_cmd cli_cmd_stats = {
    "stats", {"DIR", NULL}, NULL,
    "Print collection facts: documents, chunks, dimension, metric, revision,\n"
    "index state.",
    NULL,
    cmd_stats};

const cli_cmd cli_cmd_check = {
    "check", {"DIR", NULL}, NULL,
    "Verify the collection's internal consistency and print a JSON report.\n"
    "Exit 1 when a problem was found.",
    NULL,
    cmd_check};

int cmd_stats(int argc, char **argv) {
  return one_json("stats", argc, argv, warden_stats);
}

int cmd_check(int argc, char **argv) {
  return one_json("check", argc, argv, warden_check);
}

typedef struct export_sink {
  FILE *f;
  uint64_t bytes, lines;
} export_sink;

static int export_write(void *ctx, const char *buf, size_t len) {
  export_sink *s = ctx;
  if (len && fwrite(buf, 1, len, s->f) != len) return -1;
  s->bytes += len;
  for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + len - p)));
       p++)
    s->lines++;
  return 0;
}

/* --full: warden_export_full (configuration, directory, grants, types,
 * documents), which `warden import` reads back. */
static int export_full;
static int export_any(warden *db, int (*w)(void *, const char *, size_t), void *ctx) {
  return export_full ? warden_export_full(db, w, ctx) : warden_export(db, w, ctx);
}

/* Export into a temporary file next to path, then rename it over path. */
static int export_file(warden *db, const char *path, export_sink *s) {
  const char *ctx = "export";
  size_t n = strlen(path) + 16;
  char *tmp = cli_xmalloc(n);
  snprintf(tmp, n, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    cli_err(ctx, "%s: %s", path, strerror(errno));
    free(tmp);
    return CLI_EXIT_RUNTIME;
  }
  /* mkstemp makes 0600; give the file the mode a plain create would. */
  mode_t um = umask(0);
  umask(um);
  (void)fchmod(fd, 0666 & ~um);
  s->f = fdopen(fd, "wb");
  if (!s->f) {
    cli_err(ctx, "%s: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    free(tmp);
    return CLI_EXIT_RUNTIME;
  }
  int rc = 0;
  int wrc = export_any(db, export_write, s);
  if (wrc != 0) {
    rc = cli_lib_err(db, ctx, wrc);
  } else if (fflush(s->f) != 0 || fsync(fileno(s->f)) != 0) {
    cli_err(ctx, "%s: %s", tmp, strerror(errno));
    rc = CLI_EXIT_RUNTIME;
  }
  if (fclose(s->f) != 0 && rc == 0) {
    cli_err(ctx, "%s: %s", tmp, strerror(errno));
    rc = CLI_EXIT_RUNTIME;
  }
  if (rc == 0 && rename(tmp, path) != 0) {
    cli_err(ctx, "%s: %s", path, strerror(errno));
    rc = CLI_EXIT_RUNTIME;
  }
  if (rc != 0) {
    unlink(tmp);
  } else {
    /* Make the rename itself durable. */
    char *d = cli_xstrdup(path);
    int dfd = open(dirname(d), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
      (void)fsync(dfd);
      close(dfd);
    }
    free(d);
  }
  free(tmp);
  return rc;
}

static const cli_opt export_opts[] = {
    {"--full", 0, CLI_FLAG, 0, NULL,
     "a full-fidelity export from one snapshot: configuration,\n"
     "metadata field types, principals directory, grants and\n"
     "documents, ended by a record of the counts; `warden import`\n"
     "reads it back into an identical collection", 0, 0},
    {NULL, 0, CLI_FLAG, 0, NULL, NULL, 0, 0},
};

const cli_cmd cli_cmd_export = {
    "export", {"DIR [FILE]", NULL}, export_opts,
    "Write every document as JSON Lines that `warden ingest` reads back\n"
    "unchanged, ordered by doc_id, to FILE (written atomically) or stdout.",
    NULL,
    cmd_export};

int cmd_export(int argc, char **argv) {
  const char *ctx = "export";
  cli_list pos = {0};
  int rc = cli_parse(ctx, argc, argv, export_opts, &export_full, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 1, 2, "DIR FILE");
  if (rc != 0) goto done;
  warden *db = NULL;
  if ((rc = cli_open(ctx, pos.v[0], 1, &db)) != 0) goto done;
  export_sink s = {.f = stdout};
  const char *path = pos.n > 1 && strcmp(pos.v[1], "-") != 0 ? pos.v[1] : NULL;
  if (path) {
    rc = export_file(db, path, &s);
    if (rc == 0) {
      json_t *out = json_object();
      json_object_set_new(out, "exported", json_string_nocheck(path));
      json_object_set_new(out, "documents", json_integer((json_int_t)s.lines));
      json_object_set_new(out, "bytes", json_integer((json_int_t)s.bytes));
      rc = cli_print_json(out);
    }
  } else {
    int wrc = export_any(db, export_write, &s);
    if (wrc != 0)
      rc = cli_lib_err(db, ctx, wrc);
    else
      rc = cli_flush_stdout();
  }
  warden_close(db);
done:
  cli_list_free(&pos);
  return rc;
}

/* `warden index DIR [--rebuild]`: build or refresh the ANN index file. */
static const cli_opt index_opts[] = {
    {"--rebuild", 0, CLI_FLAG, 0, NULL, "rebuild from scratch", 0, 0},
    {NULL, 0, CLI_FLAG, 0, NULL, NULL, 0, 0},
};

const cli_cmd cli_cmd_index = {
    "index", {"DIR", NULL}, index_opts, "Build (or with --rebuild, rebuild from scratch) the ANN index.",
    NULL,
    cmd_index};

int cmd_index(int argc, char **argv) {
  const char *ctx = "index";
  int rebuild = 0; /* index_opts' one value */
  cli_list pos = {0};
  int rc = cli_parse(ctx, argc, argv, index_opts, &rebuild, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 1, 1, "DIR");
  if (rc != 0) goto done;
  warden *db = NULL;
  if ((rc = cli_open(ctx, pos.v[0], 0, &db)) != 0) goto done;
  cli_progress prog;
  cli_progress_init(&prog, ctx);
  warden_index_opts io = {.rebuild = rebuild,
                          .progress_ctx = &prog,
                          .phase_progress = cli_progress_phase_cb};
  char *json = NULL;
  int wrc = warden_index_build(db, &io, &json);
  cli_progress_done(&prog);
  if (wrc != 0) {
    rc = cli_lib_err(db, ctx, wrc);
  } else if (json) {
    rc = cli_print_lib_json(json);
  } else {
    json_t *out = json_object();
    json_object_set_new(out, "built", json_true());
    rc = cli_print_json(out);
  }
  warden_free(json);
  warden_close(db);
done:
  cli_list_free(&pos);
  return rc;
}
