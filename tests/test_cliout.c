/*
 * test_cliout.c -- tools/cli_util.c's hand-built output (cli_buf_*), which
 * `warden query` prints its hits with, against the jansson tree printed by
 * cli_json_text that it replaced: byte for byte the same text.
 *
 *  1. metadata: random objects (nested objects and arrays, strings with
 *     quotes, backslashes, control and non-ASCII characters, integers to
 *     the int64 limits, reals of every magnitude, true/false/null) as the
 *     library hands them over (json_dumps with wd_json_dup's flags), and
 *     the same objects pretty-printed, indented and escaped (the fallback
 *     path), then texts that are not objects at all;
 *  2. scores: random float bit patterns, the non-finite ones included.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "tools/cli_util.c"

/* cli_parse (in cli_util.c) prints usage through help.c, which this test
 * does not link: never called here. */
int cli_help(const char *cmd) {
  (void)cmd;
  return 0;
}

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}

static json_t *rand_value(int depth);

static json_t *rand_string(void) {
  static const char *const parts[] = {"a", "key", "\"", "\\", "\n", "\t", "\x01", "\x1f", "/",
                                      "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", " ", "z9"};
  char b[64];
  size_t n = 0, k = rnd() % 6;
  for (size_t i = 0; i < k; i++) {
    const char *p = parts[rnd() % (sizeof parts / sizeof *parts)];
    size_t l = strlen(p);
    if (n + l >= sizeof b) break;
    memcpy(b + n, p, l);
    n += l;
  }
  return json_stringn(b, n);
}

static json_t *rand_value(int depth) {
  int kind = (int)(rnd() % (depth > 3 ? 6 : 8));
  switch (kind) {
  case 0: return rand_string();
  case 1: {
    static const json_int_t edge[] = {0, 1, -1, 9, 10, -10, INT64_MAX, INT64_MIN, 1000000007};
    return json_integer(rnd() & 1 ? edge[rnd() % 9] : (json_int_t)(rnd() >> (rnd() % 64)));
  }
  case 2: {
    uint64_t bits = rnd();
    double d;
    memcpy(&d, &bits, sizeof d);
    if (!isfinite(d)) d = 0.5;
    if (rnd() % 4 == 0) d = (double)(int)(rnd() % 1000) / 8.0; /* short ones: 12.5 */
    if (rnd() % 8 == 0) d = (float)d;                          /* a float widened */
    return json_real(d);
  }
  case 3: return json_true();
  case 4: return json_false();
  case 5: return json_null();
  case 6: {
    json_t *a = json_array();
    for (size_t i = 0, n = rnd() % 4; i < n; i++) json_array_append_new(a, rand_value(depth + 1));
    return a;
  }
  default: {
    json_t *o = json_object();
    for (size_t i = 0, n = rnd() % 5; i < n; i++) {
      json_t *k = rand_string();
      json_object_set_new(o, json_string_value(k), rand_value(depth + 1));
      json_decref(k);
    }
    return o;
  }
  }
}

/* what the CLI printed before: parse, {} unless an object, print */
static char *reference(const char *text) {
  json_error_t e;
  json_t *m = text && *text ? json_loads(text, 0, &e) : NULL;
  if (!json_is_object(m)) {
    json_decref(m);
    m = json_object();
  }
  char *s = cli_json_text(m);
  json_decref(m);
  return s;
}

static void same(const char *text) {
  cli_buf b = {0};
  cli_buf_raw(&b, "x", 1); /* appended to what is there, not from 0 */
  cli_buf_lib_object(&b, text);
  char *want = reference(text);
  if (strcmp(b.p + 1, want) != 0 || b.p[0] != 'x')
    fail_msg("input %s\n  got  %s\n  want %s", text ? text : "(null)", b.p + 1, want);
  free(want);
  free(b.p);
}

static void test_metadata(void **st) {
  (void)st;
  for (int i = 0; i < 4000; i++) {
    json_t *o = json_object();
    for (size_t k = 0, n = rnd() % 8; k < n; k++) {
      json_t *key = rand_string();
      json_object_set_new(o, json_string_value(key), rand_value(1));
      json_decref(key);
    }
    /* as the library hands it over (engine/results.c wd_json_dup) */
    char *dump = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    same(dump);
    free(dump);
    /* other forms of the same object: the parsing fallback */
    char *pretty = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    same(pretty);
    free(pretty);
    json_decref(o);
  }
  static const char *const odd[] = {
      NULL, "", "[]", "[1,2]", "3", "\"s\"", "null", "{", "{\"a\":}", "{\"a\":1,}", "{\"a\":01}",
      "{\"a\":1.}", "{\"a\":-}", "{\"a\":1e999}", "{\"a\":1}x", "{\"a\":1} ", " {\"a\":1}",
      "{\"a\":tru}", "{\"a\":\"\\u00e9\"}", "{\"a\":-0}", "{\"a\":-0.0}", "{\"a\":1E2}",
      "{\"a\":123456789012345678901}", "{\"a\":9223372036854775807}", "{\"a\":{\"b\":[[]]}}",
      "{\"a\":1,\"a\":2}", "{\"\":\"\"}", "{\"a\":\"\x01\"}", "{}"};
  for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) same(odd[i]);
  /* nesting past the fast path's 64 levels */
  char deep[400];
  size_t n = 0;
  n += (size_t)sprintf(deep + n, "{\"a\":");
  for (int i = 0; i < 100; i++) deep[n++] = '[';
  for (int i = 0; i < 100; i++) deep[n++] = ']';
  deep[n++] = '}';
  deep[n] = 0;
  same(deep);
}

static void test_scores(void **st) {
  (void)st;
  for (int i = 0; i < 200000; i++) {
    uint32_t bits = (uint32_t)rnd();
    float f;
    memcpy(&f, &bits, sizeof f);
    if (i < 6) f = (float[]){0.0f, -0.0f, INFINITY, -INFINITY, NAN, 0.83f}[i];
    cli_buf b = {0};
    cli_buf_score(&b, f);
    json_t *j = cli_json_score(f);
    char *want = cli_json_text(j);
    json_decref(j);
    if (strcmp(b.p, want) != 0) fail_msg("score %a: got %s want %s", (double)f, b.p, want);
    free(want);
    free(b.p);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_metadata),
      cmocka_unit_test(test_scores),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
