/*
 * check_access.c -- an example `command` resolver for warden (SPEC section
 * 6), and the misbehaving child the resolver tests need.
 *
 * usage: check-access POLICY.jsonl [test flags]
 *
 * POLICY holds one rule per line:
 *   {"principal": "user:alice" | "group:eng" | "*",
 *    "prefix": "s3://bucket/eng/", "effect": "allow" | "deny"}
 * A resource is allowed iff some allow rule and no deny rule matches it
 * (deny wins); a rule matches when its principal is the request's principal
 * or one of its groups (or "*") and the resource's source starts with its
 * prefix.  Requests arrive on stdin, one JSON object per line:
 *   {"id": N, "principal": P, "groups": [...], "resources": [{"doc_id", "source"}]}
 * and each is answered on stdout with {"id": N, "allowed": [true, false, ...]}.
 *
 * Test flags (misbehave on purpose).  When --marker STR is given they apply
 * only to requests in which some doc_id or source contains STR, otherwise
 * to every request; "after N" counts those requests:
 *   --crash-after N   exit(3) without answering once more than N came
 *   --hang-after N    stop answering (keep reading) once more than N came
 *   --garbage         answer a line that is not JSON
 *   --wrong-id        answer with id + 1
 *   --too-few         answer one entry fewer than asked
 *   --slow-ms M       sleep M ms before answering
 *
 * Build: gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror
 *        tools/resolvers/check_access.c -o build/check-access -ljansson
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct rule {
  char *principal, *prefix;
  int deny;
} rule;

static rule *rules;
static size_t nrules;

static void die(const char *fmt, const char *a) {
  fprintf(stderr, "check-access: ");
  fprintf(stderr, fmt, a);
  fputc('\n', stderr);
  exit(2);
}

static void load_policy(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) die("cannot open policy %s", path);
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) >= 0) {
    if (strspn(line, " \t\r\n") == strlen(line)) continue;
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    const char *p = json_string_value(json_object_get(o, "principal"));
    const char *x = json_string_value(json_object_get(o, "prefix"));
    const char *e = json_string_value(json_object_get(o, "effect"));
    if (!p || !x || !e || (strcmp(e, "allow") && strcmp(e, "deny")))
      die("bad policy line: %s", line);
    rules = realloc(rules, (nrules + 1) * sizeof *rules);
    if (!rules) die("%s", "out of memory");
    rules[nrules].principal = strdup(p);
    rules[nrules].prefix = strdup(x);
    rules[nrules].deny = strcmp(e, "deny") == 0;
    nrules++;
    json_decref(o);
  }
  free(line);
  fclose(f);
}

static int holds(const json_t *req, const char *p) {
  if (strcmp(p, "*") == 0) return 1;
  const char *me = json_string_value(json_object_get(req, "principal"));
  if (me && strcmp(me, p) == 0) return 1;
  size_t i;
  json_t *g;
  json_array_foreach(json_object_get(req, "groups"), i, g) {
    if (json_is_string(g) && strcmp(json_string_value(g), p) == 0) return 1;
  }
  return 0;
}

static int allowed(const json_t *req, const char *source) {
  int allow = 0;
  for (size_t i = 0; i < nrules; i++) {
    if (!holds(req, rules[i].principal)) continue;
    if (strncmp(source, rules[i].prefix, strlen(rules[i].prefix)) != 0) continue;
    if (rules[i].deny) return 0; /* deny wins */
    allow = 1;
  }
  return allow;
}

int main(int argc, char **argv) {
  const char *marker = NULL;
  long crash_after = -1, hang_after = -1, slow_ms = 0;
  int garbage = 0, wrong_id = 0, too_few = 0;
  if (argc < 2 || argv[1][0] == '-') die("%s", "usage: check-access POLICY.jsonl [test flags]");
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    int has_val = i + 1 < argc;
    if (!strcmp(a, "--marker") && has_val) marker = argv[++i];
    else if (!strcmp(a, "--crash-after") && has_val) crash_after = atol(argv[++i]);
    else if (!strcmp(a, "--hang-after") && has_val) hang_after = atol(argv[++i]);
    else if (!strcmp(a, "--slow-ms") && has_val) slow_ms = atol(argv[++i]);
    else if (!strcmp(a, "--garbage")) garbage = 1;
    else if (!strcmp(a, "--wrong-id")) wrong_id = 1;
    else if (!strcmp(a, "--too-few")) too_few = 1;
    else die("unknown option %s", a);
  }
  load_policy(argv[1]);
  long matched = 0;
  int hung = 0;
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, stdin) >= 0) {
    if (hung) continue; /* read on, so EOF still ends the process */
    json_error_t je;
    json_t *req = json_loads(line, 0, &je);
    json_t *res = json_object_get(req, "resources");
    json_int_t id = json_integer_value(json_object_get(req, "id"));
    int match = marker == NULL;
    size_t i;
    json_t *r;
    json_array_foreach(res, i, r) {
      const char *d = json_string_value(json_object_get(r, "doc_id"));
      const char *s = json_string_value(json_object_get(r, "source"));
      if (marker && ((d && strstr(d, marker)) || (s && strstr(s, marker)))) match = 1;
    }
    if (match) matched++;
    if (match && crash_after >= 0 && matched > crash_after) exit(3);
    if (match && hang_after >= 0 && matched > hang_after) {
      hung = 1;
      json_decref(req);
      continue;
    }
    if (match && slow_ms > 0) {
      struct timespec ts = {slow_ms / 1000, (slow_ms % 1000) * 1000000L};
      nanosleep(&ts, NULL);
    }
    if (match && garbage) {
      printf("this is not json {\n");
    } else {
      json_t *al = json_array();
      size_t n = json_array_size(res);
      if (match && too_few && n > 0) n--;
      for (i = 0; i < n; i++) {
        const char *s = json_string_value(json_object_get(json_array_get(res, i), "source"));
        json_array_append_new(al, json_boolean(allowed(req, s ? s : "")));
      }
      json_t *ans = json_pack("{s:I,s:o}", "id", id + (match && wrong_id ? 1 : 0), "allowed", al);
      char *txt = json_dumps(ans, JSON_COMPACT);
      printf("%s\n", txt);
      free(txt);
      json_decref(ans);
    }
    fflush(stdout);
    json_decref(req);
  }
  free(line);
  return 0;
}
