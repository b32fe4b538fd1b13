/*
 * test_config.c -- warden.yaml loading, validation and writing (config.c).
 *
 * Valid inputs are checked field by field against hand-written expectations;
 * invalid inputs against the exact "NAME:LINE: key.path:" prefix and the
 * reason.  The writer is checked by round trips: configs we build (by hand,
 * with strings that need escaping, and at random) must load back equal to
 * the struct we built -- the struct is the oracle, not the parser.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "warden.h"
#include "wd_alloc.h"

int wd_principal_check(const char *p, size_t len, int allow_star, char *why,
                       size_t whylen);

static const char SPEC_EXAMPLE[] =
    "dimension: 384            # required\n"
    "metric: cosine            # cosine | l2 | ip\n"
    "metadata:                 # optional declarations\n"
    "  student_year: int\n"
    "  spell_type: string      # types: string | int | float | bool\n"
    "  tags: string_list\n"
    "default_acl:              # optional\n"
    "  allow: [\"*\"]\n"
    "index:\n"
    "  type: auto              # auto | flat | ivf\n"
    "resolver:\n"
    "  type: none              # none | grants | command\n"
    "  command: [\"./bin/check-access\", \"--jsonl\"]\n"
    "  timeout_ms: 500\n"
    "embedder:\n"
    "  type: none              # none | hash\n"
    "audit:\n"
    "  path: audit.jsonl       # optional\n";

static int parse(const char *s, wd_config *c, char *err, size_t n) {
  return wd_config_parse(s, strlen(s), "warden.yaml", c, err, n);
}

/* ------------------------------------------------------------ valid input */

static void test_spec_example(void **state) {
  (void)state;
  wd_config c;
  char err[512];
  assert_int_equal(parse(SPEC_EXAMPLE, &c, err, sizeof err), 0);
  assert_int_equal(c.dim, 384);
  assert_int_equal(c.metric, WD_METRIC_COSINE);
  assert_int_equal(c.nmeta, 3);
  assert_string_equal(c.meta[0].key, "student_year");
  assert_int_equal(c.meta[0].type, WD_T_INT);
  assert_string_equal(c.meta[1].key, "spell_type");
  assert_int_equal(c.meta[1].type, WD_T_STRING);
  assert_string_equal(c.meta[2].key, "tags");
  assert_int_equal(c.meta[2].type, WD_T_STRING_LIST);
  assert_true(c.has_default_acl);
  assert_int_equal(c.ndefault_allow, 1);
  assert_string_equal(c.default_allow[0], "*");
  assert_int_equal(c.ndefault_deny, 0);
  assert_int_equal(c.index_type, WD_INDEX_AUTO);
  assert_int_equal(c.nlist, 0);
  assert_int_equal(c.sq8, 1); /* SQ8 is the default quantizer */
  assert_int_equal(c.graph, 1); /* the graph index is built by default */
  assert_true(c.target_recall == 0.95);
  assert_int_equal(c.resolver_type, WD_RESOLVER_NONE);
  assert_int_equal(c.nresolver_cmd, 2);
  assert_string_equal(c.resolver_cmd[0], "./bin/check-access");
  assert_string_equal(c.resolver_cmd[1], "--jsonl");
  assert_null(c.resolver_cmd[2]); /* argv is NULL-terminated */
  assert_int_equal(c.resolver_timeout_ms, 500);
  assert_int_equal(c.embedder, WD_EMBEDDER_NONE);
  assert_string_equal(c.audit_path, "audit.jsonl");
  wd_config_free(&c);
  assert_null(c.meta);
  wd_config_free(&c); /* freeing twice is harmless: free zeroes */
}

static void test_defaults(void **state) {
  (void)state;
  wd_config c;
  char err[512];
  assert_int_equal(parse("dimension: 1\n", &c, err, sizeof err), 0);
  assert_int_equal(c.dim, 1);
  assert_int_equal(c.metric, WD_METRIC_COSINE);
  assert_int_equal(c.nmeta, 0);
  assert_false(c.has_default_acl);
  assert_int_equal(c.index_type, WD_INDEX_AUTO);
  assert_int_equal(c.nlist, 0);
  assert_int_equal(c.sq8, 1); /* SQ8 is the default quantizer */
  assert_int_equal(c.resolver_type, WD_RESOLVER_NONE);
  assert_null(c.resolver_cmd);
  assert_int_equal(c.resolver_timeout_ms, 500);
  assert_int_equal(c.embedder, WD_EMBEDDER_NONE);
  assert_null(c.audit_path);
  wd_config_free(&c);

  wd_config z;
  memset(&z, 0, sizeof z);
  wd_config_free(&z); /* zeroed struct */
  wd_config_free(NULL);
}

static void test_valid_variants(void **state) {
  (void)state;
  wd_config c;
  char err[512];
  const char *y =
      "dimension: 65536\n"
      "metric: ip\n"
      "metadata: {a: float, \"b c\": bool}\n"
      "default_acl:\n"
      "  allow: ['group:eng', \"user:o'brien\", user:é]\n"
      "  deny:\n"
      "    - user:mallory\n"
      "index: {type: ivf, nlist: 1048576, quantizer: sq8, graph: off, target_recall: 0.9}\n"
      "resolver:\n"
      "  type: command\n"
      "  command:\n"
      "    - /usr/bin/check\n"
      "    - ''\n"
      "  timeout_ms: 600000\n"
      "embedder: {type: hash}\n";
  assert_int_equal(parse(y, &c, err, sizeof err), 0);
  assert_int_equal(c.dim, 65536);
  assert_int_equal(c.metric, WD_METRIC_IP);
  assert_int_equal(c.graph, 0);
  assert_true(c.target_recall == 0.9);
  assert_int_equal(c.nmeta, 2);
  assert_string_equal(c.meta[1].key, "b c");
  assert_int_equal(c.meta[0].type, WD_T_FLOAT);
  assert_int_equal(c.meta[1].type, WD_T_BOOL);
  assert_int_equal(c.ndefault_allow, 3);
  assert_string_equal(c.default_allow[1], "user:o'brien");
  assert_string_equal(c.default_allow[2], "user:\xc3\xa9");
  assert_int_equal(c.ndefault_deny, 1);
  assert_string_equal(c.default_deny[0], "user:mallory");
  assert_int_equal(c.index_type, WD_INDEX_IVF);
  assert_int_equal(c.nlist, 1048576);
  assert_int_equal(c.sq8, 1);
  assert_int_equal(c.resolver_type, WD_RESOLVER_COMMAND);
  assert_int_equal(c.nresolver_cmd, 2);
  assert_string_equal(c.resolver_cmd[1], "");
  assert_int_equal(c.resolver_timeout_ms, 600000);
  assert_int_equal(c.embedder, WD_EMBEDDER_HASH);
  wd_config_free(&c);

  /* empty sections take defaults; an empty allow list means nobody */
  y = "metric: l2\nmetadata:\nindex:\nresolver: {type: grants}\n"
      "default_acl: {allow: []}\naudit: {}\ndimension: +7\n";
  assert_int_equal(parse(y, &c, err, sizeof err), 0);
  assert_int_equal(c.dim, 7);
  assert_int_equal(c.metric, WD_METRIC_L2);
  assert_int_equal(c.nmeta, 0);
  assert_true(c.has_default_acl);
  assert_int_equal(c.ndefault_allow, 0);
  assert_int_equal(c.resolver_type, WD_RESOLVER_GRANTS);
  assert_null(c.audit_path);
  wd_config_free(&c);

  /* anchors and aliases work */
  y = "dimension: 2\ndefault_acl:\n  allow: &p [\"user:a\"]\n  deny: *p\n";
  assert_int_equal(parse(y, &c, err, sizeof err), 0);
  assert_int_equal(c.ndefault_deny, 1);
  assert_string_equal(c.default_deny[0], "user:a");
  wd_config_free(&c);

  /* explicit document markers and a BOM are fine */
  y = "\xef\xbb\xbf---\ndimension: 3\n...\n";
  assert_int_equal(parse(y, &c, err, sizeof err), 0);
  assert_int_equal(c.dim, 3);
  wd_config_free(&c);
}

/* ------------------------------------------------------------ error input */

typedef struct errcase {
  const char *yaml;
  int line;
  const char *path;   /* NULL: message has no key path */
  const char *reason; /* substring of the reason */
} errcase;

static const errcase ERRCASES[] = {
    {"metric: cosine\n", 1, "dimension", "required key is missing"},
    {"# comment\n\nmetric: l2\n", 3, "dimension", "required key is missing"},
    {"dimension: 4\n# c\nmetric: euclid\n", 3, "metric",
     "expected one of cosine, l2, ip, got \"euclid\""},
    {"dimension: abc\n", 1, "dimension",
     "expected an integer 1..65536, got \"abc\""},
    {"dimension: 0\n", 1, "dimension", "expected an integer 1..65536"},
    {"dimension: 65537\n", 1, "dimension", "got \"65537\""},
    {"dimension: 99999999999999999999999\n", 1, "dimension", "expected an"},
    {"dimension: -4\n", 1, "dimension", "expected an integer"},
    {"dimension: 1.5\n", 1, "dimension", "expected an integer"},
    {"dimension: 0x10\n", 1, "dimension", "expected an integer"},
    {"dimension: \"384\"\n", 1, "dimension", "expected an integer"},
    {"dimension:\n", 1, "dimension", "got null"},
    {"dimension: [384]\n", 1, "dimension", "got a sequence"},
    {"dimension: {a: 1}\n", 1, "dimension", "got a mapping"},
    {"metric: [l2]\ndimension: 4\n", 1, "metric", "got a sequence"},
    {"dimension: 4\nmetric: Cosine\n", 2, "metric", "got \"Cosine\""},
    {"dimension: 4\ncolour: red\n", 2, "colour", "unknown key"},
    {"dimension: 4\nindex:\n  type: flat\n  nlists: 3\n", 4, "index.nlists",
     "unknown key (expected type, nlist, quantizer, graph, target_recall)"},
    {"dimension: 4\nmetric: l2\nmetric: ip\n", 3, "metric",
     "duplicate key (first at line 2)"},
    {"dimension: 4\nmetadata:\n  a: int\n  b: int\n  c: int\n  b: string\n"
     "  a: float\n",
     6, "metadata.b", "duplicate key (first at line 4)"},
    {"dimension: 4\nmetadata:\n  x: integer\n", 3, "metadata.x",
     "expected one of string, int, float, bool, string_list, got "
     "\"integer\""},
    {"dimension: 4\nmetadata:\n  x: none\n", 3, "metadata.x", "got \"none\""},
    {"dimension: 4\nmetadata: [a, b]\n", 2, "metadata",
     "expected a mapping, got a sequence"},
    {"dimension: 4\nmetadata: int\n", 2, "metadata", "expected a mapping"},
    {"dimension: 4\nmetadata:\n  \"\": int\n", 3, "metadata.\"\"",
     "key must be 1..256 bytes"},
    {"dimension: 4\nmetadata:\n  ? [k]\n  : int\n", 3, "metadata",
     "expected a string key, got a sequence"},
    {"dimension: 4\ndefault_acl:\n  deny: [\"user:x\"]\n", 3,
     "default_acl.allow", "required key is missing"},
    {"dimension: 4\ndefault_acl:\n  allow: []\n  deny: [\"user:b\", \"*\"]\n",
     4, "default_acl.deny[1]",
     "\"*\" is not allowed (use an empty allow list)"},
    {"dimension: 4\ndefault_acl:\n  allow: \"*\"\n", 3, "default_acl.allow",
     "expected a sequence, got \"*\""},
    {"dimension: 4\ndefault_acl:\n  allow:\n    - user:a\n    - bob\n", 5,
     "default_acl.allow[1]", "invalid principal \"bob\""},
    {"dimension: 4\ndefault_acl: {allow: [\"user:\"]}\n", 2,
     "default_acl.allow[0]", "invalid principal"},
    {"dimension: 4\ndefault_acl: {allow: [\"group:\"]}\n", 2,
     "default_acl.allow[0]", "invalid principal"},
    {"dimension: 4\ndefault_acl: {allow: [\"user:a b\"]}\n", 2,
     "default_acl.allow[0]", "invalid principal"},
    {"dimension: 4\ndefault_acl: {allow: [\"group:a\\tb\"]}\n", 2,
     "default_acl.allow[0]", "invalid principal"},
    {"dimension: 4\ndefault_acl: {allow: [\"user:a\\x7f\"]}\n", 2,
     "default_acl.allow[0]", "invalid principal"},
    {"dimension: 4\ndefault_acl: {allow: [\"user:a\\u0085\"]}\n", 2,
     "default_acl.allow[0]", "invalid principal"},
    {"dimension: 4\ndefault_acl: {allow: [\"user:a\\u3000\"]}\n", 2,
     "default_acl.allow[0]", "invalid principal"},
    {"dimension: 4\ndefault_acl: {allow: [\"role:x\"]}\n", 2,
     "default_acl.allow[0]", "invalid principal"},
    {"dimension: 4\ndefault_acl: {allow: [\"User:x\"]}\n", 2,
     "default_acl.allow[0]", "invalid principal"},
    {"dimension: 4\ndefault_acl: {allow: [~]}\n", 2, "default_acl.allow[0]",
     "expected a string, got null"},
    {"dimension: 4\ndefault_acl: {allow: [[\"user:a\"]]}\n", 2,
     "default_acl.allow[0]", "expected a string, got a sequence"},
    {"dimension: 4\ndefault_acl: {allow: [], other: 1}\n", 2,
     "default_acl.other", "unknown key"},
    {"dimension: 4\nindex:\n  type: hnsw\n", 3, "index.type",
     "expected one of auto, flat, ivf, got \"hnsw\""},
    {"dimension: 4\nindex:\n  nlist: 0\n", 3, "index.nlist",
     "expected an integer 1..1048576"},
    {"dimension: 4\nindex:\n  nlist: 1048577\n", 3, "index.nlist",
     "expected an integer 1..1048576"},
    {"dimension: 4\nindex:\n  quantizer: pq\n", 3, "index.quantizer",
     "expected one of none, sq8, got \"pq\""},
    /* issue 14: the graph index and the recall target */
    {"dimension: 4\nindex:\n  target_recall: 0\n", 3, "index.target_recall",
     "expected a number in (0, 1]"},
    {"dimension: 4\nindex:\n  target_recall: 1.5\n", 3, "index.target_recall",
     "expected a number in (0, 1]"},
    {"dimension: 4\nindex:\n  target_recall: high\n", 3, "index.target_recall",
     "expected a number in (0, 1]"},
    {"dimension: 4\nindex:\n  graph: maybe\n", 3, "index.graph",
     "expected one of off, on, got \"maybe\""},
    {"dimension: 4\nresolver:\n  timeout_ms: 5\n  type: command\n", 4,
     "resolver.command", "required when resolver.type is command"},
    {"dimension: 4\nresolver:\n  type: command\n  command: []\n", 4,
     "resolver.command", "must not be empty"},
    {"dimension: 4\nresolver:\n  command: ./check\n", 3, "resolver.command",
     "expected a sequence, got \"./check\""},
    {"dimension: 4\nresolver:\n  command:\n    - a\n    - [b]\n", 5,
     "resolver.command[1]", "expected a string, got a sequence"},
    {"dimension: 4\nresolver:\n  command: [\"\"]\n", 3, "resolver.command[0]",
     "program name must not be empty"},
    {"dimension: 4\nresolver:\n  timeout_ms: 0\n", 3, "resolver.timeout_ms",
     "expected an integer 1..600000"},
    {"dimension: 4\nresolver:\n  timeout_ms: 600001\n", 3,
     "resolver.timeout_ms", "expected an integer 1..600000"},
    {"dimension: 4\nresolver:\n  type: ldap\n", 3, "resolver.type",
     "expected one of none, grants, command, got \"ldap\""},
    {"dimension: 4\nembedder:\n  type: bert\n", 3, "embedder.type",
     "expected one of none, hash, got \"bert\""},
    {"dimension: 4\nembedder:\n  model: x\n", 3, "embedder.model",
     "unknown key (expected type)"},
    {"dimension: 4\naudit:\n  path: [a]\n", 3, "audit.path",
     "expected a string, got a sequence"},
    {"dimension: 4\naudit:\n  path: \"\"\n", 3, "audit.path",
     "must not be empty"},
    {"dimension: 4\naudit:\n  path: \"a\\0b\"\n", 3, "audit.path",
     "NUL character"},
    {"dimension: 4\naudit: audit.jsonl\n", 2, "audit", "expected a mapping"},
    /* a self-referencing alias must not loop */
    {"dimension: 4\nmetadata: &m {a: *m}\n", 2, "metadata.a",
     "got a mapping"},
    /* document-level problems carry no key path */
    {"", 1, NULL, "the document is empty"},
    {"# nothing here\n", 1, NULL, "the document is empty"},
    {"---\n", 1, NULL, "the document is empty"},
    {"- dimension: 4\n", 1, NULL, "expected a mapping at the top level"},
    {"384\n", 1, NULL, "expected a mapping at the top level, got \"384\""},
    {"dimension: 4\n---\ndimension: 5\n", 3, NULL,
     "only one YAML document is allowed"},
    {"dimension: 4\nmetric: [cosine\nindex: {}\n", 3, NULL,
     "YAML syntax error: while parsing a flow sequence (started at line 2)"},
    {"dimension: 4\nmetric: \"cosine\n", 3, NULL, "YAML syntax error"},
    {"dimension: 4\n\tmetric: l2\n", 2, NULL, "YAML syntax error"},
    {"dimension: 4\nmetric: l2\n  index: x\n", 3, NULL, "YAML syntax error"},
    {"dimension: 4\nmetric: *nope\n", 2, NULL, "YAML syntax error"},
    {"dimension: 4\nmetric: l\xff\n", 2, NULL, "YAML syntax error"},
};

/* Returns 0 when the error matched; prints and returns 1 otherwise. */
static int check_err(const char *yaml, size_t len, int line, const char *path,
                     const char *reason) {
  wd_config c;
  memset(&c, 0x5a, sizeof c); /* untouched on failure */
  char err[1024];
  int rc = wd_config_parse(yaml, len, "warden.yaml", &c, err, sizeof err);
  char prefix[256];
  if (path)
    snprintf(prefix, sizeof prefix, "warden.yaml:%d: %s: ", line, path);
  else
    snprintf(prefix, sizeof prefix, "warden.yaml:%d: ", line);
  if (rc != WARDEN_ECONFIG || strncmp(err, prefix, strlen(prefix)) != 0 ||
      !strstr(err + strlen(prefix), reason)) {
    print_error("input:\n%s\nrc=%d\nerr:      %s\nexpected: %s...%s\n",
                yaml, rc, rc ? err : "(none)", prefix, reason);
    if (rc == 0) wd_config_free(&c);
    return 1;
  }
  unsigned char *b = (unsigned char *)&c;
  for (size_t i = 0; i < sizeof c; i++) assert_int_equal(b[i], 0x5a);
  return 0;
}

static void test_errors(void **state) {
  (void)state;
  int bad = 0;
  for (size_t i = 0; i < sizeof ERRCASES / sizeof ERRCASES[0]; i++) {
    const errcase *e = &ERRCASES[i];
    bad += check_err(e->yaml, strlen(e->yaml), e->line, e->path, e->reason);
  }
  assert_int_equal(bad, 0);
}

static void test_error_exact_messages(void **state) {
  (void)state;
  static const struct {
    const char *yaml, *msg;
  } T[] = {
      {"dimension: 4\n# c\nmetric: euclid\n",
       "warden.yaml:3: metric: expected one of cosine, l2, ip, got \"euclid\""},
      {"metric: l2\n", "warden.yaml:1: dimension: required key is missing"},
      {"dimension: 4\ndefault_acl:\n  allow: []\n  deny: [\"*\"]\n",
       "warden.yaml:4: default_acl.deny[0]: \"*\" is not allowed (use an "
       "empty allow list)"},
  };
  for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
    wd_config c;
    char err[512];
    assert_int_equal(parse(T[i].yaml, &c, err, sizeof err), WARDEN_ECONFIG);
    assert_string_equal(err, T[i].msg);
  }
  /* a tiny or absent message buffer is fine */
  wd_config c;
  char tiny[8];
  assert_int_equal(parse("metric: x\n", &c, tiny, sizeof tiny),
                   WARDEN_ECONFIG);
  assert_int_equal(strlen(tiny), 7);
  assert_int_equal(parse("metric: x\n", &c, NULL, 0), WARDEN_ECONFIG);
}

static void test_error_limits(void **state) {
  (void)state;
  char y[2048], key[300], err[512];
  wd_config c;
  /* metadata key: 256 bytes is fine, 257 is not */
  memset(key, 'k', 256);
  key[256] = 0;
  snprintf(y, sizeof y, "dimension: 4\nmetadata:\n  %s: int\n", key);
  assert_int_equal(parse(y, &c, err, sizeof err), 0);
  assert_int_equal(strlen(c.meta[0].key), 256);
  wd_config_free(&c);
  key[256] = 'k';
  key[257] = 0;
  snprintf(y, sizeof y, "dimension: 4\nmetadata:\n  %s: int\n", key);
  assert_int_equal(parse(y, &c, err, sizeof err), WARDEN_ECONFIG);
  assert_non_null(strstr(err, "warden.yaml:3: metadata."));
  assert_non_null(strstr(err, "key must be 1..256 bytes, got 257"));

  /* principal NAME: 256 bytes fine, 257 not */
  char name[300];
  memset(name, 'n', 256);
  name[256] = 0;
  snprintf(y, sizeof y, "dimension: 4\ndefault_acl:\n  allow: [group:%s]\n",
           name);
  assert_int_equal(parse(y, &c, err, sizeof err), 0);
  wd_config_free(&c);
  name[256] = 'n';
  name[257] = 0;
  snprintf(y, sizeof y, "dimension: 4\ndefault_acl:\n  allow: [group:%s]\n",
           name);
  assert_int_equal(parse(y, &c, err, sizeof err), WARDEN_ECONFIG);
  assert_non_null(strstr(err, "warden.yaml:3: default_acl.allow[0]: "));

  /* an embedded NUL byte in the raw input is a YAML error, not truncation */
  static const char nul[] = "dimension: 4\nmetric: l2\0junk\n";
  assert_int_equal(check_err(nul, sizeof nul - 1, 2, NULL, "YAML syntax error"),
                   0);
}

/* ---------------------------------------------------------- round trips */

static char tmpdir[256];

static void cfg_equal(const wd_config *a, const wd_config *b) {
  assert_int_equal(a->dim, b->dim);
  assert_int_equal(a->metric, b->metric);
  assert_int_equal(a->nmeta, b->nmeta);
  for (size_t i = 0; i < a->nmeta; i++) {
    assert_string_equal(a->meta[i].key, b->meta[i].key);
    assert_int_equal(a->meta[i].type, b->meta[i].type);
  }
  assert_int_equal(!!a->has_default_acl, !!b->has_default_acl);
  assert_int_equal(a->ndefault_allow, b->ndefault_allow);
  for (size_t i = 0; i < a->ndefault_allow; i++)
    assert_string_equal(a->default_allow[i], b->default_allow[i]);
  assert_int_equal(a->ndefault_deny, b->ndefault_deny);
  for (size_t i = 0; i < a->ndefault_deny; i++)
    assert_string_equal(a->default_deny[i], b->default_deny[i]);
  assert_int_equal(a->index_type, b->index_type);
  assert_int_equal(a->nlist, b->nlist);
  assert_int_equal(a->sq8, b->sq8);
  assert_int_equal(a->resolver_type, b->resolver_type);
  assert_int_equal(a->nresolver_cmd, b->nresolver_cmd);
  for (size_t i = 0; i < a->nresolver_cmd; i++)
    assert_string_equal(a->resolver_cmd[i], b->resolver_cmd[i]);
  assert_int_equal(a->resolver_timeout_ms, b->resolver_timeout_ms);
  assert_int_equal(a->embedder, b->embedder);
  if (!a->audit_path || !b->audit_path)
    assert_ptr_equal(a->audit_path, b->audit_path);
  else
    assert_string_equal(a->audit_path, b->audit_path);
}

static void roundtrip(const wd_config *cfg) {
  char path[512], err[1024];
  snprintf(path, sizeof path, "%s/warden.yaml", tmpdir);
  int rc = wd_config_write(cfg, path, err, sizeof err);
  if (rc) {
    if (cfg->audit_path) {
      fprintf(stderr, "audit_path bytes:");
      for (const char *q = cfg->audit_path; *q; q++)
        fprintf(stderr, " %02x", (unsigned char)*q);
      fprintf(stderr, "\n");
    }
    fail_msg("write failed: %d %s", rc, err);
  }
  wd_config back;
  rc = wd_config_load(path, &back, err, sizeof err);
  if (rc) fail_msg("load failed: %d %s", rc, err);
  cfg_equal(cfg, &back);
  wd_config_free(&back);
}

static void test_roundtrip_examples(void **state) {
  (void)state;
  wd_config c;
  char err[512];
  assert_int_equal(parse(SPEC_EXAMPLE, &c, err, sizeof err), 0);
  roundtrip(&c);
  wd_config_free(&c);
  assert_int_equal(parse("dimension: 9\n", &c, err, sizeof err), 0);
  roundtrip(&c);
  wd_config_free(&c);
  assert_int_equal(parse("dimension: 9\ndefault_acl: {allow: []}\n", &c, err,
                         sizeof err),
                   0);
  roundtrip(&c);
  wd_config_free(&c);

  /* strings that need quoting or escapes, built by hand */
  static char *allow[] = {"*", "user:o'brien", "group:a\"b\\c", "user:#x",
                          "user:\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91",
                          "group:-x:y", NULL};
  static char *deny[] = {"user:[x]", "group:{a,b}", "user:&anchor",
                         "user:*star", NULL};
  static char *cmd[] = {"/bin/check access",
                        "--arg=\"quoted\"",
                        "tab\tnew\nline\rcr",
                        "ctl\x01\x1f\x7f",
                        "nel\xc2\x85ls\xe2\x80\xa8ps\xe2\x80\xa9",
                        "bom\xef\xbb\xbf",
                        "c1\xc2\x80\xc2\x9f nbsp\xc2\xa0",
                        "",
                        "  lead and trail  ",
                        "null",
                        "~",
                        "- dash",
                        "# hash",
                        "'single'",
                        NULL};
  static wd_meta_decl meta[] = {
      {"plain_key", WD_T_INT},  {"with space", WD_T_STRING},
      {"null", WD_T_BOOL},      {"~", WD_T_FLOAT},
      {"- dash", WD_T_STRING_LIST}, {"a: b", WD_T_INT},
      {"#c", WD_T_INT},         {"\"q\"", WD_T_INT},
      {"x.y-z", WD_T_INT},      {"123", WD_T_INT},
      {"true", WD_T_BOOL},      {"\xc3\xa9t\xc3\xa9", WD_T_FLOAT},
      {"new\nline", WD_T_INT},  {"? q", WD_T_INT},
  };
  wd_config h;
  memset(&h, 0, sizeof h);
  h.dim = 65536;
  h.metric = WD_METRIC_L2;
  h.meta = meta;
  h.nmeta = sizeof meta / sizeof meta[0];
  h.has_default_acl = 1;
  h.default_allow = allow;
  h.ndefault_allow = 6;
  h.default_deny = deny;
  h.ndefault_deny = 4;
  h.index_type = WD_INDEX_IVF;
  h.nlist = 1048576;
  h.sq8 = 1;
  h.resolver_type = WD_RESOLVER_COMMAND;
  h.resolver_cmd = cmd;
  h.nresolver_cmd = 14;
  h.resolver_timeout_ms = 1;
  h.embedder = WD_EMBEDDER_HASH;
  h.audit_path = "logs/\"audit\" \\ file\n.jsonl";
  roundtrip(&h);
}

static void test_write_rejects(void **state) {
  (void)state;
  char path[512], err[512];
  snprintf(path, sizeof path, "%s/bad.yaml", tmpdir);
  wd_config h;
  memset(&h, 0, sizeof h);
  h.resolver_timeout_ms = 500;
  /* dim 0 would not load back: refused, and no file appears */
  assert_int_equal(wd_config_write(&h, path, err, sizeof err),
                   WARDEN_ECONFIG);
  assert_int_not_equal(access(path, F_OK), 0);
  h.dim = 4;
  h.metric = 7;
  assert_int_equal(wd_config_write(&h, path, err, sizeof err),
                   WARDEN_ECONFIG);
  h.metric = 0;
  char *allow[] = {"bob", NULL};
  h.has_default_acl = 1;
  h.default_allow = allow;
  h.ndefault_allow = 1;
  assert_int_equal(wd_config_write(&h, path, err, sizeof err),
                   WARDEN_ECONFIG);
  h.has_default_acl = 0;
  h.audit_path = "bad\xff utf8";
  assert_int_equal(wd_config_write(&h, path, err, sizeof err),
                   WARDEN_ECONFIG);
  h.audit_path = NULL;
  assert_int_not_equal(access(path, F_OK), 0);
  /* a directory that does not exist is an I/O error */
  snprintf(path, sizeof path, "%s/no/such/dir/warden.yaml", tmpdir);
  assert_int_equal(wd_config_write(&h, path, err, sizeof err), WARDEN_EIO);
  /* overwrite keeps the existing file's mode */
  snprintf(path, sizeof path, "%s/mode.yaml", tmpdir);
  assert_int_equal(wd_config_write(&h, path, err, sizeof err), 0);
  assert_int_equal(chmod(path, 0600), 0);
  h.dim = 5;
  assert_int_equal(wd_config_write(&h, path, err, sizeof err), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  wd_config back;
  assert_int_equal(wd_config_load(path, &back, err, sizeof err), 0);
  assert_int_equal(back.dim, 5);
  wd_config_free(&back);
}

static void test_load_io(void **state) {
  (void)state;
  char path[512], err[512];
  wd_config c;
  snprintf(path, sizeof path, "%s/missing.yaml", tmpdir);
  assert_int_equal(wd_config_load(path, &c, err, sizeof err), WARDEN_EIO);
  assert_non_null(strstr(err, "missing.yaml"));
  assert_int_equal(wd_config_load(tmpdir, &c, err, sizeof err), WARDEN_EIO);
  /* invalid content read from a file names the file */
  snprintf(path, sizeof path, "%s/inv.yaml", tmpdir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("dimension: 4\nmetric: cos\n", f);
  fclose(f);
  assert_int_equal(wd_config_load(path, &c, err, sizeof err), WARDEN_ECONFIG);
  char want[600];
  snprintf(want, sizeof want, "%s:2: metric: ", path);
  assert_int_equal(strncmp(err, want, strlen(want)), 0);
}

/* Random valid configs: the generated struct is the oracle. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}

static size_t put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) return o[0] = (char)cp, 1;
  if (cp < 0x800)
    return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 63)), 2;
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12);
    o[1] = (char)(0x80 | ((cp >> 6) & 63));
    o[2] = (char)(0x80 | (cp & 63));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18);
  o[1] = (char)(0x80 | ((cp >> 12) & 63));
  o[2] = (char)(0x80 | ((cp >> 6) & 63));
  o[3] = (char)(0x80 | (cp & 63));
  return 4;
}

/* A random code point; printable_only excludes whitespace and controls
 * (for principal names). */
static uint32_t rand_cp(int printable_only) {
  for (;;) {
    uint32_t cp;
    switch (rnd() % 6) {
    case 0: cp = 1 + rnd() % 0x7f; break;
    case 1: cp = 0x80 + rnd() % 0x780; break;
    case 2: cp = 0x800 + rnd() % 0xf800; break;
    case 3: cp = 0x10000 + rnd() % 0x100000; break;
    case 4: {
      static const char special[] = "\"\\'#:-[]{},&*!|>%@`?\t\n ";
      cp = (uint32_t)special[rnd() % (sizeof special - 1)];
      break;
    }
    default: cp = 'a' + rnd() % 26; break;
    }
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    if (printable_only) {
      /* what the principal grammar (principal.c, tested by test_harden)
       * takes; this test is about the writer, not the grammar */
      char one[16] = "user:", why[300];
      size_t n = 5 + put_utf8(one + 5, cp);
      if (wd_principal_check(one, n, 0, why, sizeof why)) continue;
    }
    return cp;
  }
}

static char *rand_str(size_t minlen, size_t maxchars, int printable_only) {
  size_t n = minlen + rnd() % (maxchars - minlen + 1);
  char *s = wd_malloc(n * 4 + 1), *o = s;
  for (size_t i = 0; i < n; i++) o += put_utf8(o, rand_cp(printable_only));
  *o = 0;
  return s;
}

static char *rand_principal(int allow_star) {
  if (allow_star && rnd() % 8 == 0) return wd_strdup("*");
  char *name = rand_str(1, 12, 1);
  char *p = wd_asprintf("%s:%s", rnd() % 2 ? "user" : "group", name);
  wd_free(name);
  return p;
}

static char **rand_vec(size_t n, int kind) { /* 0 allow, 1 deny, 2 argv */
  char **v = wd_calloc(n + 1, sizeof *v);
  for (size_t i = 0; i < n; i++)
    v[i] = kind == 2 ? rand_str(i == 0 ? 1 : 0, 10, 0)
                     : rand_principal(kind == 0);
  return v;
}

static void test_roundtrip_random(void **state) {
  (void)state;
  int iters = getenv("WARDEN_TEST_QUICK") ? 40 : 300;
  for (int it = 0; it < iters; it++) {
    wd_config c;
    memset(&c, 0, sizeof c);
    c.dim = 1 + rnd() % 65536;
    c.metric = (int)(rnd() % 3);
    c.nmeta = rnd() % 6;
    c.meta = c.nmeta ? wd_calloc(c.nmeta, sizeof *c.meta) : NULL;
    for (size_t i = 0; i < c.nmeta; i++) {
      char *k = rand_str(1, 8, 0);
      /* keys must be unique: a numeric suffix makes them so */
      c.meta[i].key = wd_asprintf("%s%zu", k, i);
      wd_free(k);
      c.meta[i].type = (wd_type)(1 + rnd() % 5);
    }
    if (rnd() % 2) {
      c.has_default_acl = 1;
      c.ndefault_allow = rnd() % 4;
      c.default_allow = rand_vec(c.ndefault_allow, 0);
      c.ndefault_deny = rnd() % 3;
      if (c.ndefault_deny) c.default_deny = rand_vec(c.ndefault_deny, 1);
    }
    c.index_type = (int)(rnd() % 3);
    c.nlist = rnd() % 2 ? 1 + rnd() % 1048576 : 0;
    c.sq8 = (int)(rnd() % 2);
    c.resolver_type = (int)(rnd() % 3);
    if (c.resolver_type == WD_RESOLVER_COMMAND || rnd() % 4 == 0) {
      c.nresolver_cmd = 1 + rnd() % 4;
      c.resolver_cmd = rand_vec(c.nresolver_cmd, 2);
    }
    c.resolver_timeout_ms = 1 + rnd() % 600000;
    c.embedder = (int)(rnd() % 2);
    if (rnd() % 2) c.audit_path = rand_str(1, 20, 0);
    roundtrip(&c);
    wd_config_free(&c);
  }
}

/* Every allocation failure is reported, and leaks nothing (ASan checks). */
static long fail_at, alloc_count;
static void *f_malloc(void *ctx, size_t n) {
  (void)ctx;
  return ++alloc_count == fail_at ? NULL : malloc(n);
}
static void *f_realloc(void *ctx, void *p, size_t n) {
  (void)ctx;
  return ++alloc_count == fail_at ? NULL : realloc(p, n);
}
static void f_free(void *ctx, void *p) {
  (void)ctx;
  free(p);
}

static void test_alloc_failures(void **state) {
  (void)state;
  warden_allocator a = {f_malloc, f_realloc, f_free, NULL};
  char path[512], err[512];
  snprintf(path, sizeof path, "%s/oom.yaml", tmpdir);
  int ok_parse = 0, ok_write = 0;
  for (fail_at = 1; fail_at < 200 && !(ok_parse && ok_write); fail_at++) {
    wd_config c;
    alloc_count = 0;
    warden_set_allocator(&a);
    int rc = parse(SPEC_EXAMPLE, &c, err, sizeof err);
    warden_set_allocator(NULL);
    if (rc == 0) {
      ok_parse = 1;
      alloc_count = 0;
      warden_set_allocator(&a);
      int w = wd_config_write(&c, path, err, sizeof err);
      warden_set_allocator(NULL);
      if (w == 0) ok_write = 1;
      else assert_int_equal(w, WARDEN_ENOMEM);
      wd_config_free(&c);
    } else {
      assert_int_equal(rc, WARDEN_ENOMEM);
    }
  }
  assert_true(ok_parse && ok_write);
}

static void test_names(void **state) {
  (void)state;
  static const struct {
    const char *name;
    int metric;
  } M[] = {{"cosine", 0}, {"l2", 1}, {"ip", 2}, {"L2", -1}, {"", -1},
           {"euclid", -1}};
  for (size_t i = 0; i < sizeof M / sizeof M[0]; i++) {
    assert_int_equal(wd_metric_parse(M[i].name), M[i].metric);
    if (M[i].metric >= 0)
      assert_string_equal(wd_metric_name(M[i].metric), M[i].name);
  }
  assert_int_equal(wd_metric_parse(NULL), -1);
  assert_string_equal(wd_metric_name(3), "unknown");
  assert_string_equal(wd_metric_name(-1), "unknown");
  static const struct {
    const char *name;
    wd_type t;
  } T[] = {{"string", WD_T_STRING}, {"int", WD_T_INT},
           {"float", WD_T_FLOAT},   {"bool", WD_T_BOOL},
           {"string_list", WD_T_STRING_LIST}};
  for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
    assert_int_equal(wd_type_parse(T[i].name), T[i].t);
    assert_string_equal(wd_type_name(T[i].t), T[i].name);
  }
  assert_int_equal(wd_type_parse("none"), WD_T_NONE);
  assert_int_equal(wd_type_parse("Int"), WD_T_NONE);
  assert_int_equal(wd_type_parse(NULL), WD_T_NONE);
  assert_string_equal(wd_type_name(WD_T_NONE), "none");
  assert_string_equal(wd_type_name((wd_type)42), "unknown");
}

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/wd_test_config.XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spec_example),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_valid_variants),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_error_exact_messages),
      cmocka_unit_test(test_error_limits),
      cmocka_unit_test(test_roundtrip_examples),
      cmocka_unit_test(test_write_rejects),
      cmocka_unit_test(test_load_io),
      cmocka_unit_test(test_roundtrip_random),
      cmocka_unit_test(test_alloc_failures),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
