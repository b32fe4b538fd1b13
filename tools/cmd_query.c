/*
 * cmd_query.c -- `warden query`: top-k chunks a principal may read.
 *
 * The query vectors come from --vector (one JSON array), --vector-file (one
 * JSON array, or JSON Lines of arrays: a batch) or --text (embedded by the
 * collection).  They are validated here against the collection's dimension
 * before the library sees them, so a bad vector is reported as invalid data
 * (exit 3) naming its line.  A batch is one warden_query() call, so every
 * query of it reads the same snapshot; the output is one JSON line per
 * query, in input order, in warden's shape or Bedrock's Retrieve shape.
 */
#include "cli.h"
#include "fastemb.h" /* plain number arrays without a JSON node per number */

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct vecbuf {
  float *v;
  size_t nq, cap; /* cap in floats */
  unsigned dim;
} vecbuf;

/* Check that j is an array of dim finite numbers and append it.  On error
 * writes a reason to why and returns -1. */
static int vec_add(vecbuf *b, const json_t *j, char *why, size_t whylen) {
  if (!json_is_array(j)) {
    snprintf(why, whylen, "expected a JSON array of numbers");
    return -1;
  }
  size_t n = json_array_size(j);
  if (n != b->dim) {
    snprintf(why, whylen, "expected %u numbers, got %zu", b->dim, n);
    return -1;
  }
  if ((b->nq + 1) * b->dim > b->cap) {
    b->cap = b->cap ? b->cap * 2 : (size_t)b->dim * 16;
    while (b->cap < (b->nq + 1) * b->dim) b->cap *= 2;
    b->v = cli_xrealloc(b->v, b->cap * sizeof(float));
  }
  float *row = b->v + b->nq * b->dim;
  for (size_t i = 0; i < n; i++) {
    const json_t *e = json_array_get(j, i);
    if (!json_is_number(e)) {
      snprintf(why, whylen, "element %zu is not a number", i);
      return -1;
    }
    /* Finite as a double is not enough: 1e39 overflows a float. */
    float f = (float)json_number_value(e);
    if (!isfinite(f)) {
      snprintf(why, whylen, "element %zu is not a finite float", i);
      return -1;
    }
    row[i] = f;
  }
  b->nq++;
  return 0;
}

/* Append the n values at fe->v + off (parsed by wd_fastemb_plain), with
 * vec_add's checks and words. */
static int vec_add_floats(vecbuf *b, const float *v, size_t n, char *why, size_t whylen) {
  if (n != b->dim) {
    snprintf(why, whylen, "expected %u numbers, got %zu", b->dim, n);
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i])) {
      snprintf(why, whylen, "element %zu is not a finite float", i);
      return -1;
    }
  if ((b->nq + 1) * b->dim > b->cap) {
    b->cap = b->cap ? b->cap * 2 : (size_t)b->dim * 16;
    while (b->cap < (b->nq + 1) * b->dim) b->cap *= 2;
    b->v = cli_xrealloc(b->v, b->cap * sizeof(float));
  }
  memcpy(b->v + b->nq * b->dim, v, n * sizeof *v);
  b->nq++;
  return 0;
}

/* s[0..n) as one plain array of numbers, without jansson: 1 added (or
 * *bad set with why filled), 0 not plain (jansson's turn), exits on OOM.
 * Measured: jansson built a node per number, ~100 us per 784-d line, five
 * times the 20 us per query the CLI may spend outside the search. */
static int vec_fast(vecbuf *b, wd_fastemb *fe, const char *s, size_t n, int *bad, char *why,
                    size_t whylen) {
  size_t cnt = 0;
  fe->nv = 0;
  int r = wd_fastemb_plain(fe, s, n, &cnt);
  if (r < 0) { /* as cli_xmalloc: out of memory prints an error and exits 1 */
    fputs("warden: out of memory\n", stderr);
    exit(1);
  }
  if (r == 0) return 0;
  *bad = vec_add_floats(b, fe->v, cnt, why, whylen) != 0;
  return 1;
}

/* --vector-file: one JSON array (possibly spread over lines), or JSON
 * Lines of arrays.  Errors: `warden: FILE:LINE: vector: reason`, exit 3. */
static int load_vector_file(const char *path, vecbuf *b) {
  char *buf = NULL;
  size_t len = 0;
  int rc = cli_read_file("query", path, &buf, &len);
  if (rc != 0) return rc;
  const char *name = strcmp(path, "-") == 0 ? "stdin" : path;
  /* room for one vector per line up front: growing by doubling copied
   * and faulted in the matrix again and again (2,000 x 784: 6 MB) */
  size_t lines = 1;
  for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + len - p))) != NULL; p++) lines++;
  if (b->dim && lines * b->dim > b->cap) {
    b->cap = lines * b->dim;
    b->v = cli_xrealloc(b->v, b->cap * sizeof(float));
  }
  char why[256];
  json_error_t e;
  wd_fastemb fe;
  memset(&fe, 0, sizeof fe);
  int bad = 0;
  /* the whole file one array: a line count is not known, say line 1 */
  if (vec_fast(b, &fe, buf, len, &bad, why, sizeof why)) {
    if (bad) {
      cli_err(NULL, "%s:1: vector: %s", name, why);
      rc = CLI_EXIT_DATA;
    }
    wd_fastemb_free(&fe);
    free(buf);
    return rc;
  }
  /* JSON Lines: skip the whole-file parse when the first line is a
   * complete array (it could only fail at the second line) */
  json_t *whole = NULL;
  {
    const char *nl = memchr(buf, '\n', len);
    size_t cnt = 0;
    fe.nv = 0;
    if (!nl || wd_fastemb_plain(&fe, buf, (size_t)(nl - buf), &cnt) != 1)
      whole = json_loadb(buf, len, 0, &e);
  }
  if (whole) {
    if (vec_add(b, whole, why, sizeof why) != 0) {
      cli_err(NULL, "%s:%d: vector: %s", name, e.line > 0 ? e.line : 1, why);
      rc = CLI_EXIT_DATA;
    }
    json_decref(whole);
    wd_fastemb_free(&fe);
    free(buf);
    return rc;
  }
  size_t lineno = 0;
  for (char *p = buf; p < buf + len && rc == 0;) {
    char *nl = memchr(p, '\n', (size_t)(buf + len - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(buf + len - p);
    lineno++;
    size_t m = n;
    if (m && p[m - 1] == '\r') m--;
    size_t k = 0;
    while (k < m && (p[k] == ' ' || p[k] == '\t')) k++;
    if (k < m && vec_fast(b, &fe, p, m, &bad, why, sizeof why)) {
      if (bad) {
        cli_err(NULL, "%s:%zu: vector: %s", name, lineno, why);
        rc = CLI_EXIT_DATA;
      }
    } else if (k < m) {
      json_t *j = json_loadb(p, m, 0, &e);
      if (!j) {
        cli_err(NULL, "%s:%zu: vector: %s", name, lineno, e.text);
        rc = CLI_EXIT_DATA;
      } else {
        if (vec_add(b, j, why, sizeof why) != 0) {
          cli_err(NULL, "%s:%zu: vector: %s", name, lineno, why);
          rc = CLI_EXIT_DATA;
        }
        json_decref(j);
      }
    }
    p += n + (nl ? 1 : 0);
  }
  wd_fastemb_free(&fe);
  free(buf);
  if (rc == 0 && b->nq == 0) {
    cli_err(NULL, "%s: vector: no query vectors in the file", name);
    rc = CLI_EXIT_DATA;
  }
  return rc;
}

static json_t *jstr(const char *s) { return json_string_nocheck(s ? s : ""); }

/* The metadata of a hit as a JSON object ({} when absent). */
static json_t *hit_metadata(const warden_hit *h) {
  json_error_t e;
  json_t *m = h->metadata_json && *h->metadata_json
                  ? json_loads(h->metadata_json, 0, &e)
                  : NULL;
  if (!json_is_object(m)) {
    json_decref(m);
    m = json_object();
  }
  return m;
}

static int g_mode; /* WARDEN_MODE_* of this query (hybrid issue) */


/* Amazon Bedrock Knowledge Bases `Retrieve` result shape. */
static json_t *hit_bedrock(const warden_hit *h) {
  const char *src = h->source ? h->source : "";
  json_t *o = json_object();
  json_t *content = json_object();
  json_object_set_new(content, "text", jstr(h->text));
  json_object_set_new(o, "content", content);
  json_t *loc = json_object();
  if (strncmp(src, "s3://", 5) == 0) {
    json_t *s3 = json_object();
    json_object_set_new(s3, "uri", jstr(src));
    json_object_set_new(loc, "type", json_string("S3"));
    json_object_set_new(loc, "s3Location", s3);
  } else {
    json_t *cu = json_object();
    json_object_set_new(cu, "id", jstr(src));
    json_object_set_new(loc, "type", json_string("CUSTOM"));
    json_object_set_new(loc, "customDocumentLocation", cu);
  }
  json_object_set_new(o, "location", loc);
  json_t *md = hit_metadata(h);
  json_object_set_new(md, "x-amz-bedrock-kb-source-uri", jstr(src));
  size_t idlen = strlen(h->doc_id ? h->doc_id : "") + 16;
  char *chunk_id = cli_xmalloc(idlen);
  snprintf(chunk_id, idlen, "%s#%u", h->doc_id ? h->doc_id : "",
           (unsigned)h->chunk);
  json_object_set_new(md, "x-amz-bedrock-kb-chunk-id", jstr(chunk_id));
  free(chunk_id);
  json_object_set_new(o, "metadata", md);
  json_object_set_new(o, "score", cli_json_score(h->score));
  json_object_set_new(o, "documentId", jstr(h->doc_id));
  return o;
}

/* The json format's line of query qi, built by hand (cli_buf): the same
 * bytes as the jansson tree print_results builds for --format bedrock.
 * perf, 2,000 queries of 10 hits at d=784: the trees per hit and the parse
 * of each hit's metadata were 24 % of the CLI's time, ~31 us per query. */
/* a string literal into the line (its length from sizeof, not counted) */
#define LIT(b, s) cli_buf_raw((b), (s), sizeof(s) - 1)

static void rank(cli_buf *b, uint32_t r) {
  if (r) cli_buf_uint(b, r);
  else LIT(b, "null");
}

static void line_warden(cli_buf *b, const warden_results *r, size_t qi, const json_t *plan) {
  b->n = 0;
  LIT(b, "{\"revision\": ");
  cli_buf_uint(b, warden_results_revision(r));
  LIT(b, ", \"results\": [");
  size_t n = warden_results_count(r, qi);
  int first = 1;
  for (size_t i = 0; i < n; i++) {
    const warden_hit *h = warden_results_hit(r, qi, i);
    if (!h) continue;
    if (!first) LIT(b, ", ");
    first = 0;
    LIT(b, "{\"doc_id\": ");
    cli_buf_str(b, h->doc_id);
    LIT(b, ", \"chunk\": ");
    cli_buf_uint(b, h->chunk);
    LIT(b, ", \"score\": ");
    cli_buf_score(b, h->score);
    LIT(b, ", \"text\": ");
    cli_buf_str(b, h->text);
    LIT(b, ", \"source\": ");
    cli_buf_str(b, h->source);
    LIT(b, ", \"namespace\": ");
    cli_buf_str(b, h->namespace_);
    LIT(b, ", \"metadata\": ");
    cli_buf_lib_object(b, h->metadata_json);
    if (g_mode != WARDEN_MODE_SEMANTIC) { /* each side's 1-based rank, null: not ranked */
      LIT(b, ", \"semantic_rank\": ");
      rank(b, h->semantic_rank);
      LIT(b, ", \"lexical_rank\": ");
      rank(b, h->lexical_rank);
    }
    LIT(b, "}");
  }
  LIT(b, "]");
  if (warden_results_degraded(r, qi)) LIT(b, ", \"degraded\": true");
  if (plan) {
    LIT(b, ", \"plan\": ");
    cli_buf_json(b, plan);
  }
  LIT(b, "}\n");
}

/* --explain: the library's plan is a JSON text of any length; it is
 * parsed (no size assumed) so it prints as an object in our format.
 * Should it ever fail to parse, it is kept verbatim as a string and the
 * reason goes to stderr, rather than being dropped silently.  NULL when
 * explain was off. */
static json_t *plan_json(const warden_results *r, size_t qi) {
  const char *plan = warden_results_plan(r, qi);
  if (!plan) return NULL;
  json_error_t e;
  json_t *pj = json_loads(plan, JSON_DECODE_ANY, &e);
  if (!pj)
    cli_err("query", "--explain: the plan of query %zu is not valid JSON (%s at byte %d); "
            "printed as a string", qi + 1, e.text, e.position);
  return pj ? pj : jstr(plan);
}

static int print_results(const warden_results *r, int bedrock) {
  uint64_t rev = warden_results_revision(r);
  if (!bedrock) {
    /* one flush at the end: a flush per line was a write(2) per query */
    cli_buf b = {0};
    for (size_t qi = 0; qi < warden_results_nqueries(r); qi++) {
      json_t *plan = plan_json(r, qi);
      line_warden(&b, r, qi, plan);
      json_decref(plan);
      if (fwrite(b.p, 1, b.n, stdout) != b.n) break; /* reported below */
    }
    free(b.p);
    return cli_flush_stdout();
  }
  for (size_t qi = 0; qi < warden_results_nqueries(r); qi++) {
    json_t *hits = json_array();
    size_t n = warden_results_count(r, qi);
    for (size_t i = 0; i < n; i++) {
      const warden_hit *h = warden_results_hit(r, qi, i);
      if (h) json_array_append_new(hits, hit_bedrock(h));
    }
    json_t *out = json_object();
    json_object_set_new(out, "retrievalResults", hits);
    json_object_set_new(out, "revision", json_integer((json_int_t)rev));
    if (warden_results_degraded(r, qi))
      json_object_set_new(out, "degraded", json_true());
    json_t *plan = plan_json(r, qi);
    if (plan) json_object_set_new(out, "plan", plan);
    int rc = cli_print_json(out);
    if (rc != 0) return rc;
  }
  return 0;
}

typedef struct query_args {
  const char *principal, *groups, *vector, *vector_file, *text, *k, *filter,
      *format, *min_revision, *agent, *agent_groups, *mode, *target_recall;
  cli_list namespaces;
  int exact, ann, explain;
} query_args;

#define QO(f) offsetof(query_args, f)
static const cli_opt query_opts[] = {
    {"--principal", 0, CLI_STR, QO(principal), "P",
     "the caller (user:NAME or group:NAME); required", CLI_REQ, 0},
    {"--groups", 0, CLI_STR, QO(groups), "G1,G2",
     "groups asserted by the caller's identity provider", 0, 0},
    {"--vector", 0, CLI_STR, QO(vector), "JSON",
     "one query embedding, a JSON array of numbers", CLI_ONEOF, 0},
    {"--vector-file", 0, CLI_STR, QO(vector_file), "F",
     "one JSON array, or JSON Lines of arrays (a batch:\n"
     "one output line per query, in order); '-' = stdin", CLI_ONEOF, 0},
    {"--text", 0, CLI_STR, QO(text), "STR", "embed STR with the collection's embedder",
     CLI_ONEOF, 0},
    {"--k", 'k', CLI_STR, QO(k), "N",
     "results per query, 1.." CLI_QUOTE(WARDEN_MAX_K) " (default 10)", 0, 0},
    {"--filter", 0, CLI_STR, QO(filter), "JSON|@FILE",
     "metadata filter (Bedrock or Mongo dialect); @FILE reads FILE", 0, 0},
    {"--namespace", 0, CLI_MULTI, QO(namespaces), "PREFIX",
     "namespace prefix; repeatable (any of them matches)", 0, 0},
    {"--exact", 0, CLI_FLAG, QO(exact), NULL, "force the exact scan", 0, 0},
    {"--ann", 0, CLI_FLAG, QO(ann), NULL, "force the ANN index", 0, 0},
    {"--explain", 0, CLI_FLAG, QO(explain), NULL, "add the query plan to the output", 0, 0},
    {"--format", 0, CLI_STR, QO(format), "json|bedrock",
     "json (default) or bedrock (Bedrock Retrieve shape)", 0, 0},
    {"--min-revision", 0, CLI_STR, QO(min_revision), "R",
     "fail unless the snapshot has at least revision R", 0, 0},
    {"--agent", 0, CLI_STR, QO(agent), "P",
     "on behalf of: agent P acts for the principal; a chunk\n"
     "is returned only if both may read it", 0, 0},
    {"--agent-groups", 0, CLI_STR, QO(agent_groups), "G1,G2",
     "groups asserted for the agent (needs --agent)", 0, 0},
    {"--mode", 0, CLI_STR, QO(mode), "semantic|lexical|hybrid",
     "semantic (default), lexical (BM25 over --text) or\n"
     "hybrid (both, fused; --text is also embedded when no\n"
     "--vector is given); Bedrock's SEMANTIC / HYBRID are accepted", 0, 0},
    {"--target-recall", 0, CLI_STR, QO(target_recall), "R",
     "recall the ANN search aims for, in (0, 1] (default:\n"
     "index.target_recall, 0.95); --explain shows the effort", 0, 0},
    {NULL, 0, CLI_FLAG, 0, NULL, NULL, 0, 0},
};
#undef QO

const cli_cmd cli_cmd_query = {
    "query", {"DIR", NULL}, query_opts,
    "Top-k chunks nearest to the query that principal P may read.",
    "Prints {\"revision\": R, \"results\": [{\"doc_id\", \"chunk\", \"score\", \"text\",\n"
    "\"source\", \"namespace\", \"metadata\"}, ...]} per query; lexical and hybrid\n"
    "hits add \"semantic_rank\" and \"lexical_rank\" (null: not ranked by that side).",
    cmd_query};

int cmd_query(int argc, char **argv) {
  const char *ctx = "query";
  query_args a = {0};
  cli_list aglist = {0};
  cli_list pos = {0}, glist = {0};
  char *filter_buf = NULL;
  vecbuf vb = {0};
  warden *db = NULL;
  warden_results *res = NULL;
  int rc = cli_parse(ctx, argc, argv, query_opts, &a, &pos);
  if (rc == 0) rc = cli_need_pos(ctx, &pos, 1, 1, "DIR");
  if (rc != 0) goto done;
  const char *principal = a.principal, *groups = a.groups, *vector = a.vector,
             *vector_file = a.vector_file, *text = a.text, *k_s = a.k,
             *filter = a.filter, *format = a.format, *minrev_s = a.min_revision,
             *mode_s = a.mode, *agent = a.agent, *agent_groups = a.agent_groups,
             *recall_s = a.target_recall;
  int exact = a.exact, ann = a.ann, explain = a.explain;
  const cli_list *namespaces = &a.namespaces;

  if (!principal) {
    rc = cli_usage(ctx, "--principal is required");
    goto done;
  }
  /* --mode semantic (default) | lexical | hybrid; Bedrock's
   * overrideSearchType values SEMANTIC / HYBRID are accepted as well */
  int mode = WARDEN_MODE_SEMANTIC;
  if (mode_s) {
    if (!strcmp(mode_s, "semantic") || !strcmp(mode_s, "SEMANTIC")) mode = WARDEN_MODE_SEMANTIC;
    else if (!strcmp(mode_s, "lexical")) mode = WARDEN_MODE_LEXICAL;
    else if (!strcmp(mode_s, "hybrid") || !strcmp(mode_s, "HYBRID")) mode = WARDEN_MODE_HYBRID;
    else {
      rc = cli_usage(ctx, "--mode: expected semantic, lexical or hybrid (or Bedrock's SEMANTIC, HYBRID), got '%s'",
                     mode_s);
      goto done;
    }
  }
  g_mode = mode;
  if (mode != WARDEN_MODE_SEMANTIC) {
    if (!text) {
      rc = cli_usage(ctx, "--mode %s needs --text (the lexical query)", mode_s);
      goto done;
    }
    if (vector_file || (mode == WARDEN_MODE_LEXICAL && vector)) {
      rc = cli_usage(ctx, "--mode %s: %s", mode_s,
                     vector_file ? "--vector-file is for semantic batches"
                                 : "lexical mode takes no vector");
      goto done;
    }
  } else if ((vector != NULL) + (vector_file != NULL) + (text != NULL) != 1) {
    rc = cli_usage(ctx, "give exactly one of --vector, --vector-file, --text");
    goto done;
  }
  if (exact && ann) {
    rc = cli_usage(ctx, "--exact and --ann exclude each other");
    goto done;
  }
  int bedrock = 0;
  if (format) {
    if (strcmp(format, "bedrock") == 0) bedrock = 1;
    else if (strcmp(format, "json") != 0) {
      rc = cli_usage(ctx, "--format: expected json or bedrock, got '%s'", format);
      goto done;
    }
  }
  uint64_t k = 10, minrev = 0;
  if (k_s && (rc = CLI_PARSE_LIMIT(ctx, "-k", k_s, 1, WARDEN_MAX_K, &k)) != 0)
    goto done;
  if (minrev_s && (rc = cli_parse_u64(ctx, "--min-revision", minrev_s, 0,
                                      UINT64_MAX, &minrev)) != 0)
    goto done;
  double target_recall = 0;
  if (recall_s) {
    char *e = NULL;
    target_recall = strtod(recall_s, &e);
    if (!*recall_s || *e || !(target_recall > 0 && target_recall <= 1)) {
      rc = cli_usage(ctx, "--target-recall: expected a number in (0, 1], got '%s'", recall_s);
      goto done;
    }
  }
  if (filter && filter[0] == '@') {
    size_t flen;
    if ((rc = cli_read_file(ctx, filter + 1, &filter_buf, &flen)) != 0)
      goto done;
    filter = filter_buf;
  }
  if (groups) cli_split(groups, &glist);
  if (agent_groups && !agent) {
    rc = cli_usage(ctx, "--agent-groups needs --agent");
    goto done;
  }
  if (agent_groups) cli_split(agent_groups, &aglist);

  if ((rc = cli_open(ctx, pos.v[0], 1, &db)) != 0) goto done;

  warden_query_opts qo = {
      .principal = principal,
      .groups = glist.n ? glist.v : NULL,
      .ngroups = glist.n,
      .namespaces = namespaces->n ? namespaces->v : NULL,
      .nnamespaces = namespaces->n,
      .filter = filter,
      .k = (unsigned)k,
      .strategy = exact ? WARDEN_STRATEGY_EXACT
                        : ann ? WARDEN_STRATEGY_ANN : WARDEN_STRATEGY_AUTO,
      .min_revision = minrev,
      .explain = explain,
      .agent = agent,
      .agent_groups = aglist.n ? aglist.v : NULL,
      .nagent_groups = aglist.n,
      .mode = mode,
      .text = mode != WARDEN_MODE_SEMANTIC ? text : NULL,
      .target_recall = (float)target_recall,
  };
  int wrc;
  if (mode == WARDEN_MODE_LEXICAL || (mode == WARDEN_MODE_HYBRID && !vector)) {
    wrc = warden_query(db, NULL, 1, &qo, &res);
  } else if (text && mode == WARDEN_MODE_SEMANTIC) {
    wrc = warden_query_text(db, text, &qo, &res);
  } else {
    vb.dim = warden_dimension(db);
    if (vector) {
      json_error_t e;
      char why[256];
      json_t *j = json_loads(vector, 0, &e);
      if (!j) {
        cli_err("--vector", "%s", e.text);
        rc = CLI_EXIT_DATA;
        goto done;
      }
      int bad = vec_add(&vb, j, why, sizeof why);
      json_decref(j);
      if (bad) {
        cli_err("--vector", "%s", why);
        rc = CLI_EXIT_DATA;
        goto done;
      }
    } else if ((rc = load_vector_file(vector_file, &vb)) != 0) {
      goto done;
    }
    wrc = warden_query(db, vb.v, vb.nq, &qo, &res);
  }
  if (wrc != 0) {
    rc = cli_lib_err(db, ctx, wrc);
    goto done;
  }
  rc = print_results(res, bedrock);
done:
  if (res) warden_results_free(res);
  warden_close(db);
  free(vb.v);
  free(filter_buf);
  cli_list_free(&a.namespaces);
  cli_list_free(&glist);
  cli_list_free(&aglist);
  cli_list_free(&pos);
  return rc;
}
