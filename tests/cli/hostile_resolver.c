/*
 * hostile_resolver.c -- a hostile command resolver for
 * tests/cli/resolver_hostile.sh (built by that script).
 *
 * Speaks the JSON Lines resolver protocol.  What it does with a request
 * depends on the doc_ids in it: any "crash-*" -> exits at once; any
 * "garbage-*" -> answers a line that is not JSON; any "slow-*" -> sleeps
 * 30 s before answering; otherwise "good-*" allowed, "no-*" denied and
 * "undecided-*" null (could not decide).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int any(json_t *res, const char *prefix) {
  size_t i;
  json_t *e;
  json_array_foreach(res, i, e) {
    const char *d = json_string_value(json_object_get(e, "doc_id"));
    if (d && strncmp(d, prefix, strlen(prefix)) == 0) return 1;
  }
  return 0;
}

int main(void) {
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, stdin) > 0) {
    json_t *req = json_loads(line, 0, NULL);
    json_t *res = json_object_get(req, "resources");
    if (any(res, "crash-")) return 3;
    if (any(res, "garbage-")) {
      fputs("this is {not json\n", stdout);
      fflush(stdout);
      json_decref(req);
      continue;
    }
    if (any(res, "slow-")) sleep(30);
    json_t *al = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(res, i, e) {
      const char *d = json_string_value(json_object_get(e, "doc_id"));
      json_array_append_new(al, !strncmp(d, "good-", 5)        ? json_true()
                                : !strncmp(d, "undecided-", 10) ? json_null()
                                                                : json_false());
    }
    json_t *ans = json_pack("{s:O,s:o}", "id", json_object_get(req, "id"), "allowed", al);
    char *s = json_dumps(ans, JSON_COMPACT);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(ans);
    json_decref(req);
  }
  free(line);
  return 0;
}
