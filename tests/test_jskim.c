/*
 * test_jskim.c -- tools/jskim.c, the pass-1 skim of `warden ingest
 * --vectors`: whatever it accepts, jansson (json_loadb with
 * JSON_REJECT_DUPLICATES) accepts too, with the same chunk count and the
 * same first chunk carrying an "embedding"; it accepts the lines gen.py
 * and the CLI tests write (else the fast path would never be taken).
 * Differential: hand-written edge cases and seeded random mutations
 * (byte flips, deletions, insertions of JSON-significant bytes) of
 * realistic lines.
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

#include "tools/jskim.c"

/* What pass 1 took from jansson's tree before the skim. */
static void jansson_facts(json_t *j, jskim_doc *d) {
  memset(d, 0, sizeof *d);
  json_t *ch = json_object_get(j, "chunks");
  d->has_chunks = ch != NULL;
  if (!json_is_array(ch)) return;
  d->chunks_array = 1;
  d->nchunks = json_array_size(ch);
  for (size_t c = 0; c < json_array_size(ch); c++)
    if (json_object_get(json_array_get(ch, c), "embedding")) {
      d->emb_chunk = c + 1;
      break;
    }
}

static int accepted, refused, parsed;

/* jskim_doc_parse's memory: one pool per check, freed at its end */
static char *pool[4096];
static size_t npool;
static void *palloc(void *ctx, size_t n) {
  (void)ctx;
  assert_true(npool < sizeof pool / sizeof *pool);
  return pool[npool++] = malloc(n ? n : 1);
}

static void same_str(const char *a, const json_t *v) {
  if (!a) {
    assert_null(v);
    return;
  }
  assert_true(json_is_string(v));
  assert_int_equal(strlen(a), json_string_length(v));
  assert_memory_equal(a, json_string_value(v), strlen(a));
}

static void same_strs(const char *const *l, size_t n, const json_t *a) {
  assert_true(json_is_array(a));
  assert_int_equal(n, json_array_size(a));
  for (size_t i = 0; i < n; i++) same_str(l[i], json_array_get(a, i));
}

/* jskim_doc_parse's document is the one to_doc (tools/ingest_npy.c)
 * makes of jansson's tree: the same strings, metadata in order with the
 * same types and values, principals and texts. */
static void same_doc(const warden_doc *d, json_t *j) {
  const char *key;
  json_t *v;
  json_object_foreach(j, key, v) {
    assert_true(!strcmp(key, "doc_id") || !strcmp(key, "source") || !strcmp(key, "namespace") ||
                !strcmp(key, "metadata") || !strcmp(key, "acl") || !strcmp(key, "chunks"));
  }
  same_str(d->doc_id, json_object_get(j, "doc_id"));
  same_str(d->source, json_object_get(j, "source"));
  same_str(d->namespace_, json_object_get(j, "namespace"));
  json_t *m = json_object_get(j, "metadata");
  assert_int_equal(d->nmetadata, m ? json_object_size(m) : 0);
  size_t k = 0;
  json_object_foreach(m, key, v) {
    const warden_meta *e = &d->metadata[k++];
    assert_string_equal(e->key, key);
    if (json_is_string(v)) {
      assert_int_equal(e->type, WARDEN_META_STRING);
      same_str(e->str, v);
    } else if (json_is_integer(v)) {
      assert_int_equal(e->type, WARDEN_META_INT);
      assert_true(e->i == json_integer_value(v));
    } else if (json_is_real(v)) {
      assert_int_equal(e->type, WARDEN_META_FLOAT);
      assert_memory_equal(&e->f, &(double){json_real_value(v)}, sizeof(double));
    } else if (json_is_boolean(v)) {
      assert_int_equal(e->type, WARDEN_META_BOOL);
      assert_true(e->i == json_is_true(v));
    } else {
      assert_int_equal(e->type, WARDEN_META_STRING_LIST);
      same_strs(e->list, e->nlist, v);
    }
  }
  json_t *acl = json_object_get(j, "acl");
  assert_int_equal(d->has_acl, acl != NULL);
  if (acl) {
    same_strs(d->allow, d->nallow, json_object_get(acl, "allow"));
    json_t *dn = json_object_get(acl, "deny");
    if (dn) same_strs(d->deny, d->ndeny, dn);
    else assert_int_equal(d->ndeny, 0);
  }
  json_t *ch = json_object_get(j, "chunks");
  assert_int_equal(d->nchunks, json_array_size(ch));
  for (size_t c = 0; c < d->nchunks; c++) {
    json_t *o = json_array_get(ch, c);
    assert_int_equal(json_object_size(o), 1);
    same_str(d->texts[c], json_object_get(o, "text"));
  }
}

/* The property; returns the skim's answer. */
static int check(const char *s, size_t n) {
  jskim_doc d, e;
  int r = jskim_doc_line(s, n, &d);
  json_error_t je;
  json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
  if (r) {
    if (!j) fail_msg("skim accepted what jansson refuses (%s): %.*s", je.text, (int)n, s);
    jansson_facts(j, &e);
    assert_int_equal(d.has_chunks, e.has_chunks);
    assert_int_equal(d.chunks_array, e.chunks_array);
    assert_int_equal(d.nchunks, e.nchunks);
    assert_int_equal(d.emb_chunk, e.emb_chunk);
    accepted++;
    warden_doc wd;
    npool = 0;
    if (jskim_doc_parse(s, n, 1, palloc, NULL, &wd)) {
      same_doc(&wd, j);
      parsed++;
    }
    for (size_t i = 0; i < npool; i++) free(pool[i]);
    npool = 0;
  } else {
    refused++;
  }
  json_decref(j);
  return r;
}

static const char *const good[] = {
    "{\"doc_id\":\"doc-000000001\",\"source\":\"s3://bench/t001/000000001.md\",\"metadata\":"
    "{\"tenant\":\"t001\",\"bucket\":1,\"kind\":\"k1\"},\"acl\":{\"allow\":[\"group:g01\","
    "\"user:u001\"]},\"chunks\":[{\"text\":\"document 1 of tenant 1\"}]}",
    "{\"doc_id\": \"a\", \"source\": \"file:///x\", \"chunks\": [{\"text\": \"one\"}, "
    "{\"text\": \"two\"}, {\"text\": \"three\"}], \"metadata\": {\"f\": 1.5, \"b\": true, "
    "\"n\": null, \"l\": [\"x\", \"y\"], \"neg\": -0.25, \"z\": 0}}",
    "{\"doc_id\":\"\\u00e9t\\u00e9 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\",\"chunks\":[{\"text\":"
    "\"tab\\there \\\"q\\\" \\\\ \\/ \\n\"}]}",
    "{\"chunks\":[]}",
    "{}",
    "{\"chunks\":{\"text\":\"x\"}}",
    "{\"chunks\":[1,\"two\",[{\"embedding\":[1]}],{\"text\":\"t\",\"embedding\":[0.5,1]},"
    "{\"embedding\":null}]}",
    "{\"x\":{\"chunks\":[{\"embedding\":[1]}]},\"chunks\":[{\"text\":\"a\"}]}",
    " \t{\"chunks\":[{\"text\":\"a\"}]} \r\n",
    "{ \"doc_id\" : \"q\\u00e9\\u20ac\\u0041\\n\" , \"namespace\" : \"/a/b\" , \"acl\" : { \"deny\" : "
    "[ \"user:x\" ] , \"allow\" : [ ] } , \"metadata\" : { \"i\" : -42 , \"r\" : -0.0 , \"s\" : \"\" , "
    "\"l\" : [ ] , \"t\" : true , \"f\" : false , \"big\" : 123456789012345678 , \"x\" : "
    "3.141592653589793238 } , \"chunks\" : [ { \"text\" : \"\\\"\\\\\\/\\b\\f\\r\\t\" } , { \"text\" : "
    "\"\" } ] , \"source\" : \"s3://x\" }",
};

static const char *const unsure[] = {
    "{\"a\":1,\"a\":2}",             /* duplicate */
    "{\"a\":{\"b\":1,\"b\":1}}",     /* nested duplicate */
    "{\"\\u0061\":1,\"a\":2}",       /* a duplicate only once decoded */
    "{\"a\":\"\\u0000\"}",           /* NUL */
    "{\"a\":\"\\ud83d\\ude00\"}",    /* a surrogate pair: valid, left to jansson */
    "{\"a\":1e400}",                 /* overflows */
    "{\"a\":12345678901234567890}",  /* too big for json_int_t */
    "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":-}", "{\"a\":+1}",
    "{\"a\":tru}", "{\"a\":nul}", "{\"a\":\"x\"", "{\"a\" 1}", "{\"a\":1,}",
    "{\"a\":[1,]}", "{a:1}", "[1,2]", "\"x\"", "1", "{\"a\":1} x", "{\"a\":1}{}",
    "{\"a\":\"\x01\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}",
    "{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12g4\"}", "",
};

static void test_edges(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    if (!check(good[i], strlen(good[i]))) fail_msg("skim unsure of a plain line: %s", good[i]);
  /* the fast reader takes gen.py's line and the one with every shape */
  parsed = 0;
  check(good[0], strlen(good[0]));
  check(good[9], strlen(good[9]));
  assert_int_equal(parsed, 2);
  /* and leaves what to_doc words itself to it */
  static const char *const tojansson[] = {
      "{\"doc_id\":\"a\",\"chunks\":[{\"text\":\"t\",\"embedding\":[1]}]}",
      "{\"doc_id\":\"a\",\"chunks\":[]}", "{\"doc_id\":\"a\"}",
      "{\"doc_id\":1,\"chunks\":[{\"text\":\"t\"}]}",
      "{\"x\":1,\"chunks\":[{\"text\":\"t\"}]}",
      "{\"metadata\":{\"a\":null},\"chunks\":[{\"text\":\"t\"}]}",
      "{\"metadata\":{\"a\":{}},\"chunks\":[{\"text\":\"t\"}]}",
      "{\"metadata\":{\"a\":[1]},\"chunks\":[{\"text\":\"t\"}]}",
      "{\"acl\":{\"deny\":[]},\"chunks\":[{\"text\":\"t\"}]}",
      "{\"acl\":{\"allow\":[1]},\"chunks\":[{\"text\":\"t\"}]}",
      "{\"acl\":{\"allow\":[],\"other\":[]},\"chunks\":[{\"text\":\"t\"}]}",
      "{\"chunks\":[{}]}", "{\"chunks\":[{\"text\":1}]}", "{\"chunks\":[\"t\"]}",
  };
  for (size_t i = 0; i < sizeof tojansson / sizeof *tojansson; i++) {
    warden_doc wd;
    npool = 0;
    if (jskim_doc_parse(tojansson[i], strlen(tojansson[i]), 0, palloc, NULL, &wd))
      fail_msg("fast reader took %s", tojansson[i]);
    for (size_t k = 0; k < npool; k++) free(pool[k]);
    npool = 0;
  }
  for (size_t i = 0; i < sizeof unsure / sizeof *unsure; i++)
    if (check(unsure[i], strlen(unsure[i]))) fail_msg("skim accepted %s", unsure[i]);
  /* a raw NUL byte inside a string */
  char nul[] = "{\"a\":\"x\0y\"}";
  assert_int_equal(check(nul, sizeof nul - 1), 0);
}

static void test_mutations(void **state) {
  (void)state;
  static const char ins[] = "{}[]\",:\\ 0-.e9tfnu\x80\xc3\xa9\x01";
  unsigned long long x = 88172645463325252ull;
  char buf[2048];
  int n_muts = getenv("WARDEN_TEST_QUICK") ? 20000 : 200000;
  accepted = refused = 0;
  for (int m = 0; m < n_muts; m++) {
    const char *g = good[m % (sizeof good / sizeof *good)];
    size_t n = strlen(g);
    memcpy(buf, g, n);
    int edits = 1 + (int)(m % 3);
    for (int e = 0; e < edits; e++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      size_t at = n ? (size_t)(x % n) : 0;
      unsigned op = (unsigned)(x >> 40) % 3;
      char c = ins[(x >> 20) % (sizeof ins - 1)];
      if (op == 0 && n) {
        buf[at] = c;
      } else if (op == 1 && n) {
        memmove(buf + at, buf + at + 1, n - at - 1);
        n--;
      } else if (n + 1 < sizeof buf) {
        memmove(buf + at + 1, buf + at, n - at);
        buf[at] = c;
        n++;
      }
    }
    check(buf, n);
  }
  /* both answers occur: the mutations reach the fast path and its refusals */
  assert_true(accepted > n_muts / 50);
  assert_true(parsed > n_muts / 100);
  assert_true(refused > n_muts / 50);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_edges),
      cmocka_unit_test(test_mutations),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
