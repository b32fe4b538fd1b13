/*
 * test_jdump.c -- engine/jdump.c writes stored records exactly as
 * json_dumps(JSON_COMPACT | JSON_REAL_PRECISION(17)) did: seeded random
 * trees (objects in insertion order, arrays, strings with every ASCII
 * byte and multi-byte UTF-8, integers to both int64 ends, true, false,
 * null, reals, deep nesting), in the caller's buffer and past it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/wd_alloc.h"
#include "engine/jdump.h"

static unsigned long long rs = 0x9e3779b97f4a7c15ull;
static unsigned long long rnd(void) {
  rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
  return rs;
}

static json_t *rstring(void) {
  static const char *const mb[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc2\x85"};
  char b[64];
  size_t n = 0, want = rnd() % 20;
  while (n < want && n + 4 < sizeof b) {
    unsigned r = (unsigned)(rnd() % 10);
    if (r < 7) {
      b[n++] = (char)(1 + rnd() % 127); /* every ASCII byte but NUL */
    } else {
      const char *m = mb[rnd() % 4];
      memcpy(b + n, m, strlen(m));
      n += strlen(m);
    }
  }
  return json_stringn(b, n);
}

static json_t *rvalue(int depth, int reals) {
  unsigned r = (unsigned)(rnd() % (depth > 6 ? 6 : 9));
  switch (r) {
    case 0: return rstring();
    case 1: {
      static const json_int_t edge[] = {0, -1, 1, INT64_MAX, INT64_MIN, 9, 10, -10, 1000000007};
      return json_integer(rnd() % 2 ? edge[rnd() % 9] : (json_int_t)rnd());
    }
    case 2: return json_true();
    case 3: return json_false();
    case 4: return json_null();
    case 5: return reals ? json_real((double)(int64_t)rnd() / 1e9) : rstring();
    case 6: case 7: {
      json_t *o = json_object();
      size_t n = rnd() % 6;
      for (size_t i = 0; i < n; i++) {
        json_t *k = rstring();
        json_object_set_new(o, json_string_value(k), rvalue(depth + 1, reals));
        json_decref(k);
      }
      return o;
    }
    default: {
      json_t *a = json_array();
      size_t n = rnd() % 6;
      for (size_t i = 0; i < n; i++) json_array_append_new(a, rvalue(depth + 1, reals));
      return a;
    }
  }
}

static void same(const json_t *v, size_t cap) {
  char *want = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(17));
  assert_non_null(want);
  char *buf = malloc(cap), *out;
  size_t len;
  assert_int_equal(wd_jdump(v, buf, cap, &out, &len), 0);
  assert_int_equal(len, strlen(want));
  if (memcmp(out, want, len + 1) != 0) fail_msg("jdump: %s\njansson: %s", out, want);
  if (out != buf) wd_free(out);
  free(buf);
  free(want);
}

static void test_random(void **state) {
  (void)state;
  int n = getenv("WARDEN_TEST_QUICK") ? 3000 : 30000;
  for (int i = 0; i < n; i++) {
    json_t *o = json_object();
    for (int k = 0; k < 1 + i % 7; k++) {
      char key[16];
      snprintf(key, sizeof key, "k%d\n\"%d", k, (int)(rnd() % 100));
      json_object_set_new(o, key, rvalue(0, i % 5 == 0));
    }
    same(o, 4096);
    same(o, 2); /* always past the caller's buffer */
    json_decref(o);
  }
}

static void test_record(void **state) {
  (void)state;
  json_t *r = json_pack("{s:s,s:s,s:s,s:{s:s,s:i,s:b,s:[s,s]},s:[s,s],s:[],s:[i]}", "doc_id",
                        "doc-\"1\"\\", "source", "s3://b/\x01k", "namespace", "/", "metadata",
                        "tenant", "t001", "bucket", 7, "ok", 1, "tags", "a", "\xc3\xa9",
                        "allow", "group:g01", "user:u001", "deny", "slots", 12345);
  assert_non_null(r);
  same(r, 4096);
  char *out;
  size_t len;
  char buf[4096];
  assert_int_equal(wd_jdump(r, buf, sizeof buf, &out, &len), 0);
  assert_string_equal(out,
                      "{\"doc_id\":\"doc-\\\"1\\\"\\\\\",\"source\":\"s3://b/\\u0001k\",\"namespace\":"
                      "\"/\",\"metadata\":{\"tenant\":\"t001\",\"bucket\":7,\"ok\":true,\"tags\":[\"a\","
                      "\"\xc3\xa9\"]},\"allow\":[\"group:g01\",\"user:u001\"],\"deny\":[],\"slots\":"
                      "[12345]}");
  json_decref(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_record),
      cmocka_unit_test(test_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
