/*
 * oracle_model.h -- the brute-force model shared by the oracle test
 * (tests/test_oracle.c, under cmocka) and the soak (tests/crash/soak.c,
 * with its own assert macros): random documents, ACLs, nested groups,
 * namespaces, filters in both dialects, resolvers, the mutations, and the
 * query check against the model.  Included by exactly those two files,
 * after they define fail_msg/assert_int_equal/assert_true/assert_non_null
 * (cmocka or substitutes) and include <stdint.h>, <stdio.h>, <stdlib.h>,
 * <string.h>, <math.h>, <unistd.h> and warden.h.  Static definitions: each
 * includer gets its own copy of the model's state.
 */
#ifndef WARDEN_TESTS_ORACLE_MODEL_H
#define WARDEN_TESTS_ORACLE_MODEL_H
#define DIM 8
#define NUSERS 12
#define NGROUPS 10
#define MAXCH 3

/* ------------------------------------------------------------ rng */
static uint64_t rs = 88172645463325252ULL;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}
static int rr(int n) { return (int)(rnd() % (uint64_t)n); }

/* ------------------------------------------------------- oracle model */
static const char *NS[] = {"/", "/a", "/a/b", "/ab", "/ab/c", "/z/y/x"};
#define NNS 6
static const char *KINDS[] = {"charm", "hex", "curse", "charming", "potion"};
#define NKINDS 5
static const char *TAGS[] = {"red", "green", "blue", "redish", "gold", "grey"};
#define NTAGS 6

typedef struct odoc {
  int live;
  char id[32];
  int ns;
  int has_year, year;    /* int */
  int has_w;             /* float */
  double w;
  int has_kind, kind;    /* string */
  int has_tags, tagmask; /* string_list */
  int has_flag, flag;    /* bool */
  /* acl: principals encoded as ints: 0..NUSERS-1 users, 100+g groups, 999 '*' */
  int allow[6], nallow, deny[4], ndeny;
  int nch;
  int vec[MAXCH][DIM];
  uint32_t slot[MAXCH]; /* oracle's own slot counter, mirrors insertion order */
} odoc;

#define MAXDOCS 400
static odoc docs[MAXDOCS];
static int ndocs_used;
static uint32_t next_slot;
/* directory: member -> groups (users 0..NUSERS-1, groups 100..) */
static int dir_user[NUSERS][NGROUPS];
static int dir_group[NGROUPS][NGROUPS];

static void pname(int p, char *out) {
  if (p == 999)
    strcpy(out, "*");
  else if (p >= 100)
    sprintf(out, "group:g%d", p - 100);
  else
    sprintf(out, "user:u%d", p);
}

/* closure of user u + caller groups */
static void expand(int u, const int *cg, int ncg, int *ing /* NGROUPS */) {
  memset(ing, 0, NGROUPS * sizeof(int));
  for (int g = 0; g < NGROUPS; g++)
    if (dir_user[u][g]) ing[g] = 1;
  for (int i = 0; i < ncg; i++) ing[cg[i]] = 1;
  for (int changed = 1; changed;) {
    changed = 0;
    for (int g = 0; g < NGROUPS; g++)
      if (ing[g])
        for (int h = 0; h < NGROUPS; h++)
          if (dir_group[g][h] && !ing[h]) ing[h] = changed = 1;
  }
}

static int has(int p, int u, const int *ing) {
  if (p == 999) return 1;
  if (p >= 100) return ing[p - 100];
  return p == u;
}

/* Source resolver of the callback runs: a deterministic verdict per
 * (principal, document) that the oracle can recompute. */
static int use_resolver;
static long resolver_calls;
static int resolver_says(const char *principal, const char *doc_id) {
  uint64_t h = 1469598103934665603ULL;
  for (const char *p = principal; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
  for (const char *p = doc_id; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
  return (h >> 17) % 3 != 0; /* about two thirds pass */
}
/* About one document in eleven is "broken": any batch holding one makes
 * the callback fail as a whole.  The engine must deny it (fail closed),
 * isolate it from the good documents of the batch, and mark the answer
 * degraded. */
static long resolver_failures, degraded_answers;
static int resolver_broken(const char *doc_id) {
  uint64_t h = 0x9e3779b97f4a7c15ULL;
  for (const char *p = doc_id; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
  return (h >> 23) % 11 == 0;
}
static int cb_resolver(void *ctx, const char *principal, const char *const *groups,
                       size_t ngroups, const warden_resource *res, size_t n,
                       unsigned char *allowed) {
  (void)ctx;
  (void)groups;
  (void)ngroups;
  resolver_calls++;
  for (size_t i = 0; i < n; i++)
    if (resolver_broken(res[i].doc_id)) {
      resolver_failures++;
      return -1;
    }
  for (size_t i = 0; i < n; i++) {
    if (strncmp(res[i].source, "s3://bkt/", 9) != 0 || strcmp(res[i].source + 9, res[i].doc_id))
      return -1; /* the engine passed a wrong source: fail loudly */
    allowed[i] = (unsigned char)resolver_says(principal, res[i].doc_id);
  }
  return 0;
}

/* Grants (use_resolver 2) and command-resolver policy rules (3): holder
 * encoded like ACL principals (users, 100+g groups, 999 "*"), a prefix of
 * the source "s3://bkt/doc-N", and for rules an effect. */
#define MAXRULES 24
static int rule_who[MAXRULES], rule_deny[MAXRULES], nrules;
static char rule_prefix[MAXRULES][32];
static int grant_live[MAXRULES];

static int holds(int p, int u, const int *ing) {
  if (p == 999) return 1;
  if (p >= 100) return ing[p - 100];
  return p == u;
}

static int rules_say(int u, const int *ing, const char *doc_id) {
  char src[64];
  snprintf(src, sizeof src, "s3://bkt/%s", doc_id);
  int allow = 0;
  for (int i = 0; i < nrules; i++) {
    if (use_resolver == 2 && !grant_live[i]) continue;
    if (!holds(rule_who[i], u, ing)) continue;
    if (strncmp(src, rule_prefix[i], strlen(rule_prefix[i])) != 0) continue;
    if (use_resolver == 3 && rule_deny[i]) return 0; /* deny wins */
    allow = 1;
  }
  return allow;
}

static int verdict(const char *up, int u, const int *ing, const char *doc_id) {
  if (use_resolver == 1) return resolver_says(up, doc_id) && !resolver_broken(doc_id);
  if (use_resolver >= 2) return rules_say(u, ing, doc_id);
  return 1;
}

static void random_rules(void) {
  nrules = 8 + rr(MAXRULES - 8);
  for (int i = 0; i < nrules; i++) {
    int t = rr(10);
    rule_who[i] = t < 1 ? 999 : t < 4 ? rr(NUSERS) : 100 + rr(NGROUPS);
    rule_deny[i] = rr(4) == 0;
    static const char *pre[] = {"s3://bkt/doc-", "s3://bkt/doc-1", "s3://bkt/doc-2",
                                "s3://bkt/doc-3", "s3://bkt/doc-4", "s3://bkt/doc-15",
                                "s3://bkt/doc-7", "s3://bkt/doc-9"};
    snprintf(rule_prefix[i], sizeof rule_prefix[i], "%s", pre[rr(8)]);
    grant_live[i] = 0;
  }
}

static int readable(const odoc *d, int u, const int *ing) {
  int ok = 0;
  for (int i = 0; i < d->nallow; i++)
    if (has(d->allow[i], u, ing)) ok = 1;
  for (int i = 0; i < d->ndeny; i++)
    if (d->deny[i] != 999 && has(d->deny[i], u, ing)) ok = 0;
  return ok;
}

static int ns_under(const char *ns, const char *prefix) {
  size_t n = strlen(prefix);
  while (n > 1 && prefix[n - 1] == '/') n--;
  if (n == 1 && prefix[0] == '/') return 1;
  return strncmp(ns, prefix, n) == 0 && (ns[n] == 0 || ns[n] == '/');
}

/* ------------------------------------------------------ filters */
enum { F_EQ, F_NE, F_GT, F_GTE, F_LT, F_LTE, F_IN, F_NIN, F_SW, F_LC, F_SC, F_AND, F_OR };
typedef struct fnode {
  int op, field; /* field: 0 year 1 w 2 kind 3 tags 4 flag 5 nokey(int) */
  int ival[3], nval;
  double fval;
  char sval[16];
  struct fnode *kid[3];
  int nkid;
} fnode;

static fnode pool[4096];
static int npool;

static int gen_mongo; /* the Mongo dialect has no string operators */

static fnode *gen_leaf(void) {
  fnode *f = &pool[npool++];
  memset(f, 0, sizeof *f);
  f->field = rr(6);
  switch (f->field) {
    case 0:
    case 5: {
      static const int ops[] = {F_EQ, F_NE, F_GT, F_GTE, F_LT, F_LTE, F_IN, F_NIN};
      f->op = ops[rr(8)];
      f->nval = (f->op == F_IN || f->op == F_NIN) ? 1 + rr(3) : 1;
      for (int i = 0; i < f->nval; i++) f->ival[i] = 1 + rr(7);
      if (rr(4) == 0 && f->op >= F_GT && f->op <= F_LTE) {
        f->fval = f->ival[0] + 0.5; /* non-integral bound on an int field */
        f->nval = -1;
      }
      break;
    }
    case 1: {
      static const int ops[] = {F_GT, F_GTE, F_LT, F_LTE, F_NE, F_EQ};
      f->op = ops[rr(6)];
      f->fval = (rr(9) - 4) * 0.25;
      break;
    }
    case 2: {
      static const int ops[] = {F_EQ, F_NE, F_IN, F_NIN, F_SW, F_SC};
      f->op = ops[rr(gen_mongo ? 4 : 6)];
      f->nval = (f->op == F_IN || f->op == F_NIN) ? 1 + rr(3) : 1;
      for (int i = 0; i < f->nval; i++) f->ival[i] = rr(NKINDS);
      if (f->op == F_SW) strcpy(f->sval, rr(2) ? "charm" : "c");
      if (f->op == F_SC) strcpy(f->sval, rr(2) ? "ar" : "ion");
      break;
    }
    case 3: {
      static const int ops[] = {F_EQ, F_NE, F_IN, F_NIN, F_LC, F_SW, F_SC};
      f->op = ops[rr(gen_mongo ? 4 : 7)];
      f->nval = (f->op == F_IN || f->op == F_NIN) ? 1 + rr(3) : 1;
      for (int i = 0; i < f->nval; i++) f->ival[i] = rr(NTAGS);
      if (f->op == F_SW) strcpy(f->sval, rr(2) ? "red" : "gr");
      if (f->op == F_SC) strcpy(f->sval, rr(2) ? "e" : "ol");
      break;
    }
    case 4:
      f->op = rr(2) ? F_EQ : F_NE;
      f->ival[0] = rr(2);
      f->nval = 1;
      break;
  }
  return f;
}

static fnode *gen_filter(int depth) {
  if (depth > 2 || rr(3) != 0) return gen_leaf();
  fnode *f = &pool[npool++];
  memset(f, 0, sizeof *f);
  f->op = rr(2) ? F_AND : F_OR;
  f->nkid = 2 + rr(2);
  for (int i = 0; i < f->nkid; i++) f->kid[i] = gen_filter(depth + 1);
  return f;
}

static const char *FIELDS[] = {"year", "w", "kind", "tags", "flag", "nokey"};

static void val_json(const fnode *f, int i, char *o) {
  switch (f->field) {
    case 0:
    case 5:
      if (f->nval < 0)
        sprintf(o, "%.1f", f->fval);
      else
        sprintf(o, "%d", f->ival[i]);
      break;
    case 1: sprintf(o, "%.2f", f->fval); break;
    case 2:
      if (f->op == F_SW || f->op == F_SC) sprintf(o, "\"%s\"", f->sval);
      else sprintf(o, "\"%s\"", KINDS[f->ival[i]]);
      break;
    case 3:
      if (f->op == F_SW || f->op == F_SC) sprintf(o, "\"%s\"", f->sval);
      else sprintf(o, "\"%s\"", TAGS[f->ival[i]]);
      break;
    case 4: strcpy(o, f->ival[0] ? "true" : "false"); break;
  }
}

static void render(const fnode *f, int mongo, char *out) {
  char v[64];
  if (f->op == F_AND || f->op == F_OR) {
    sprintf(out, mongo ? "{\"%s\":[" : "{\"%s\":[",
            mongo ? (f->op == F_AND ? "$and" : "$or") : (f->op == F_AND ? "andAll" : "orAll"));
    for (int i = 0; i < f->nkid; i++) {
      if (i) strcat(out, ",");
      render(f->kid[i], mongo, out + strlen(out));
    }
    strcat(out, "]}");
    return;
  }
  static const char *bed[] = {"equals", "notEquals", "greaterThan", "greaterThanOrEquals",
                              "lessThan", "lessThanOrEquals", "in", "notIn", "startsWith",
                              "listContains", "stringContains"};
  static const char *mon[] = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"};
  char val[256] = "";
  if (f->op == F_IN || f->op == F_NIN) {
    strcat(val, "[");
    for (int i = 0; i < f->nval; i++) {
      if (i) strcat(val, ",");
      val_json(f, i, v);
      strcat(val, v);
    }
    strcat(val, "]");
  } else {
    val_json(f, 0, val);
  }
  if (mongo && f->op <= F_NIN) {
    if (f->op == F_EQ && rr(2))
      sprintf(out, "{\"%s\":%s}", FIELDS[f->field], val);
    else
      sprintf(out, "{\"%s\":{\"%s\":%s}}", FIELDS[f->field], mon[f->op], val);
  } else {
    sprintf(out, "{\"%s\":{\"key\":\"%s\",\"value\":%s}}", bed[f->op], FIELDS[f->field], val);
  }
}

static int eval(const fnode *f, const odoc *d) {
  if (f->op == F_AND) {
    for (int i = 0; i < f->nkid; i++)
      if (!eval(f->kid[i], d)) return 0;
    return 1;
  }
  if (f->op == F_OR) {
    for (int i = 0; i < f->nkid; i++)
      if (eval(f->kid[i], d)) return 1;
    return 0;
  }
  int present = f->field == 0 ? d->has_year : f->field == 1 ? d->has_w : f->field == 2 ? d->has_kind
                : f->field == 3 ? d->has_tags : f->field == 4 ? d->has_flag : 0;
  int neg = f->op == F_NE || f->op == F_NIN;
  if (!present) return neg;
  int pos = 0;
  switch (f->field) {
    case 0: {
      double x = d->year, b = f->nval < 0 ? f->fval : f->ival[0];
      switch (f->op) {
        case F_EQ: case F_NE: pos = x == b; break;
        case F_GT: pos = x > b; break;
        case F_GTE: pos = x >= b; break;
        case F_LT: pos = x < b; break;
        case F_LTE: pos = x <= b; break;
        case F_IN: case F_NIN:
          for (int i = 0; i < f->nval; i++) pos |= d->year == f->ival[i];
          break;
      }
      break;
    }
    case 1: {
      double x = d->w, b = f->fval;
      switch (f->op) {
        case F_EQ: case F_NE: pos = x == b; break;
        case F_GT: pos = x > b; break;
        case F_GTE: pos = x >= b; break;
        case F_LT: pos = x < b; break;
        case F_LTE: pos = x <= b; break;
      }
      break;
    }
    case 2: {
      const char *k = KINDS[d->kind];
      switch (f->op) {
        case F_EQ: case F_NE: pos = d->kind == f->ival[0]; break;
        case F_IN: case F_NIN:
          for (int i = 0; i < f->nval; i++) pos |= d->kind == f->ival[i];
          break;
        case F_SW: pos = strncmp(k, f->sval, strlen(f->sval)) == 0; break;
        case F_SC: pos = strstr(k, f->sval) != NULL; break;
      }
      break;
    }
    case 3:
      for (int t = 0; t < NTAGS; t++) {
        if (!(d->tagmask & (1 << t))) continue;
        switch (f->op) {
          case F_EQ: case F_NE: case F_LC: pos |= t == f->ival[0]; break;
          case F_IN: case F_NIN:
            for (int i = 0; i < f->nval; i++) pos |= t == f->ival[i];
            break;
          case F_SW: pos |= strncmp(TAGS[t], f->sval, strlen(f->sval)) == 0; break;
          case F_SC: pos |= strstr(TAGS[t], f->sval) != NULL; break;
        }
      }
      break;
    case 4: pos = d->flag == f->ival[0]; break;
  }
  return neg ? !pos : pos;
}

/* ------------------------------------------------------ engine side */
static char dir[256];
static warden *db;
static int metric;
static int batch_mode;

static void doc_json(const odoc *d, char *o) {
  char p[40];
  o += sprintf(o, "{\"doc_id\":\"%s\",\"source\":\"s3://bkt/%s\",\"namespace\":\"%s\",\"metadata\":{",
               d->id, d->id, NS[d->ns]);
  int first = 1;
#define SEP (first ? (first = 0, "") : ",")
  if (d->has_year) o += sprintf(o, "%s\"year\":%d", SEP, d->year);
  if (d->has_w) o += sprintf(o, "%s\"w\":%.2f", SEP, d->w);
  if (d->has_kind) o += sprintf(o, "%s\"kind\":\"%s\"", SEP, KINDS[d->kind]);
  if (d->has_tags) {
    o += sprintf(o, "%s\"tags\":[", SEP);
    int f2 = 1;
    for (int t = 0; t < NTAGS; t++)
      if (d->tagmask & (1 << t)) o += sprintf(o, "%s\"%s\"", f2 ? (f2 = 0, "") : ",", TAGS[t]);
    o += sprintf(o, "]");
  }
  if (d->has_flag) o += sprintf(o, "%s\"flag\":%s", SEP, d->flag ? "true" : "false");
#undef SEP
  o += sprintf(o, "},\"acl\":{\"allow\":[");
  for (int i = 0; i < d->nallow; i++) {
    pname(d->allow[i], p);
    o += sprintf(o, "%s\"%s\"", i ? "," : "", p);
  }
  o += sprintf(o, "],\"deny\":[");
  for (int i = 0; i < d->ndeny; i++) {
    pname(d->deny[i], p);
    o += sprintf(o, "%s\"%s\"", i ? "," : "", p);
  }
  o += sprintf(o, "]},\"chunks\":[");
  for (int c = 0; c < d->nch; c++) {
    o += sprintf(o, "%s{\"text\":\"%s#%d\",\"embedding\":[", c ? "," : "", d->id, c);
    for (int j = 0; j < DIM; j++) o += sprintf(o, "%s%d", j ? "," : "", d->vec[c][j]);
    o += sprintf(o, "]}");
  }
  sprintf(o, "]}\n");
}

static void random_doc(odoc *d, const char *id) {
  memset(d, 0, sizeof *d);
  d->live = 1;
  snprintf(d->id, sizeof d->id, "%s", id);
  d->ns = rr(NNS);
  if ((d->has_year = rr(5) != 0)) d->year = 1 + rr(7);
  if ((d->has_w = rr(3) != 0)) d->w = (rr(9) - 4) * 0.25;
  if ((d->has_kind = rr(4) != 0)) d->kind = rr(NKINDS);
  if ((d->has_tags = rr(3) != 0)) d->tagmask = rr(1 << NTAGS);
  if ((d->has_flag = rr(2) != 0)) d->flag = rr(2);
  d->nallow = rr(4); /* 0: nobody */
  for (int i = 0; i < d->nallow; i++) {
    int t = rr(10);
    d->allow[i] = t < 1 ? 999 : t < 5 ? rr(NUSERS) : 100 + rr(NGROUPS);
  }
  d->ndeny = rr(5) == 0 ? 1 + rr(2) : 0;
  for (int i = 0; i < d->ndeny; i++) d->deny[i] = rr(2) ? rr(NUSERS) : 100 + rr(NGROUPS);
  d->nch = 1 + rr(MAXCH);
  for (int c = 0; c < d->nch; c++) {
    int nz = 0;
    for (int j = 0; j < DIM; j++) {
      d->vec[c][j] = rr(7) - 3;
      nz |= d->vec[c][j];
    }
    if (!nz) d->vec[c][0] = 1; /* cosine needs non-zero */
  }
}

static double odist(const int *v, const float *q) {
  double s = 0, nv = 0, nq = 0;
  for (int j = 0; j < DIM; j++) {
    if (metric == WARDEN_METRIC_L2)
      s += ((double)v[j] - q[j]) * ((double)v[j] - q[j]);
    else
      s += (double)v[j] * q[j];
    nv += (double)v[j] * v[j];
    nq += (double)q[j] * q[j];
  }
  if (metric == WARDEN_METRIC_L2) return s;
  if (metric == WARDEN_METRIC_IP) return -s;
  return -s / (sqrt(nv) * sqrt(nq));
}

typedef struct cand {
  double dist;
  uint32_t slot;
  int doc, ch;
} cand;

static int cmpc(const void *a, const void *b) {
  const cand *x = a, *y = b;
  if (x->dist != y->dist) return x->dist < y->dist ? -1 : 1;
  return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static cand cands[MAXDOCS * MAXCH];
static long nqueries, nleaks;

static int find_doc(const char *id) {
  for (int i = 0; i < ndocs_used; i++)
    if (docs[i].live && strcmp(docs[i].id, id) == 0) return i;
  return -1;
}

static void run_query(void) {
  int u = rr(NUSERS);
  int cg[3], ncg = rr(3) == 0 ? 1 + rr(2) : 0;
  for (int i = 0; i < ncg; i++) cg[i] = rr(NGROUPS);
  int ing[NGROUPS];
  expand(u, cg, ncg, ing);
  const char *nss[2];
  int nns = rr(3) == 0 ? 1 + rr(2) : 0;
  for (int i = 0; i < nns; i++) nss[i] = NS[rr(NNS)];
  char ftext[8192] = "";
  fnode *f = NULL;
  npool = 0;
  if (rr(2)) {
    gen_mongo = rr(2);
    f = gen_filter(0);
    render(f, gen_mongo, ftext);
  }
  int k = 1 + rr(12);
  int nq = batch_mode ? 2 + rr(3) : 1;
  float q[5][DIM];
  for (int i = 0; i < nq; i++) {
    int nz = 0;
    for (int j = 0; j < DIM; j++) {
      q[i][j] = (float)(rr(7) - 3);
      nz |= (int)q[i][j];
    }
    if (!nz) q[i][1] = 2;
  }
  char up[16], gbuf[3][16];
  sprintf(up, "user:u%d", u);
  const char *gs[3];
  for (int i = 0; i < ncg; i++) {
    sprintf(gbuf[i], "group:g%d", cg[i]);
    gs[i] = gbuf[i];
  }
  warden_query_opts o;
  memset(&o, 0, sizeof o);
  o.principal = up;
  o.groups = gs;
  o.ngroups = (size_t)ncg;
  o.namespaces = nss;
  o.nnamespaces = (size_t)nns;
  o.filter = f ? ftext : NULL;
  o.k = (unsigned)k;
  warden_results *r = NULL;
  int rc = warden_query(db, &q[0][0], (size_t)nq, &o, &r);
  if (rc) fail_msg("query failed: %d %s (filter %s)", rc, warden_errmsg(db), ftext);
  for (int qi = 0; qi < nq; qi++) {
    int nc = 0;
    for (int i = 0; i < ndocs_used; i++) {
      odoc *d = &docs[i];
      if (!d->live || !readable(d, u, ing)) continue;
      int nsok = nns == 0;
      for (int j = 0; j < nns; j++) nsok |= ns_under(NS[d->ns], nss[j]);
      if (!nsok) continue;
      if (f && !eval(f, d)) continue;
      if (use_resolver && !verdict(up, u, ing, d->id)) continue;
      for (int c = 0; c < d->nch; c++) cands[nc++] = (cand){odist(d->vec[c], q[qi]), d->slot[c], i, c};
    }
    qsort(cands, (size_t)nc, sizeof *cands, cmpc);
    size_t want = (size_t)(nc < k ? nc : k);
    size_t got = warden_results_count(r, (size_t)qi);
    /* a degraded answer may have lost good candidates to the resolver's
     * bounded retry: it must still leak nothing and stay in rank order of
     * what it kept, but it may be short */
    int degraded = warden_results_degraded(r, (size_t)qi);
    degraded_answers += degraded;
    if (degraded && use_resolver != 1) fail_msg("query %ld: degraded without a failing resolver", nqueries);
    if (degraded ? got > want : got != want)
      fail_msg("query %ld: %zu results, oracle %zu (user u%d filter %s)", nqueries, got, want, u,
               ftext);
    int exact = metric != WARDEN_METRIC_COSINE && !batch_mode && !degraded;
    for (size_t i = 0; i < got; i++) {
      const warden_hit *h = warden_results_hit(r, (size_t)qi, i);
      int di = find_doc(h->doc_id);
      /* leak check first: never an unreadable or filtered chunk */
      int ok = di >= 0 && readable(&docs[di], u, ing) && (!f || eval(f, &docs[di])) &&
               (!use_resolver || verdict(up, u, ing, h->doc_id));
      int nsok = nns == 0;
      for (int j = 0; di >= 0 && j < nns; j++) nsok |= ns_under(NS[docs[di].ns], nss[j]);
      if (!ok || !nsok || (int)h->chunk >= docs[di].nch) {
        nleaks++;
        fail_msg("LEAK: %s#%u returned to u%d", h->doc_id, h->chunk, u);
      }
      double true_d = odist(docs[di].vec[h->chunk], q[qi]);
      double rep_d = metric == WARDEN_METRIC_L2 ? h->score : -h->score;
      double tol = exact ? 0 : 1e-4 * (1 + fabs(true_d));
      if (fabs(rep_d - true_d) > tol)
        fail_msg("score of %s#%u: %g, oracle %g", h->doc_id, h->chunk, rep_d, true_d);
      if (!degraded && fabs(rep_d - cands[i].dist) > tol)
        fail_msg("rank %zu: distance %g, oracle %g (k %d, user u%d)", i, rep_d, cands[i].dist, k,
                 u);
      if (exact && (di != cands[i].doc || (int)h->chunk != cands[i].ch))
        fail_msg("rank %zu: %s#%u, oracle %s#%d (tie order)", i, h->doc_id, h->chunk,
                 docs[cands[i].doc].id, cands[i].ch);
    }
  }
  warden_results_free(r);
  nqueries++;
}

/* ------------------------------------------- on-behalf-of (agent) */
/* A query as user u through an agent (another user of the directory, with
 * its own asserted groups): the oracle says a chunk may come back only if
 * both may read it under the stored-ACL rule (each with its groups, deny
 * wins for either) and, with a resolver, the resolver allows both.  Same
 * ranking and leak checks as run_query. */
static long nagent_queries, nagent_hits;
__attribute__((unused)) static void run_agent_query(void) {
  int u = rr(NUSERS), a = rr(NUSERS);
  int cg[2], ncg = rr(3) == 0 ? 1 + rr(2) : 0, ag[2], nag = rr(3) == 0 ? 1 + rr(2) : 0;
  for (int i = 0; i < ncg; i++) cg[i] = rr(NGROUPS);
  for (int i = 0; i < nag; i++) ag[i] = rr(NGROUPS);
  int ing[NGROUPS], aing[NGROUPS];
  expand(u, cg, ncg, ing);
  expand(a, ag, nag, aing);
  const char *nss[1];
  int nns = rr(4) == 0;
  if (nns) nss[0] = NS[rr(NNS)];
  char ftext[8192] = "";
  fnode *f = NULL;
  npool = 0;
  if (rr(3) == 0) {
    gen_mongo = rr(2);
    f = gen_filter(0);
    render(f, gen_mongo, ftext);
  }
  int k = 1 + rr(12);
  int nq = batch_mode ? 2 + rr(3) : 1;
  float q[5][DIM];
  for (int i = 0; i < nq; i++) {
    int nz = 0;
    for (int j = 0; j < DIM; j++) {
      q[i][j] = (float)(rr(7) - 3);
      nz |= (int)q[i][j];
    }
    if (!nz) q[i][1] = 2;
  }
  char up[16], ap[16], gbuf[2][16], abuf[2][16];
  sprintf(up, "user:u%d", u);
  sprintf(ap, "user:u%d", a);
  const char *gs[2], *as[2];
  for (int i = 0; i < ncg; i++) {
    sprintf(gbuf[i], "group:g%d", cg[i]);
    gs[i] = gbuf[i];
  }
  for (int i = 0; i < nag; i++) {
    sprintf(abuf[i], "group:g%d", ag[i]);
    as[i] = abuf[i];
  }
  warden_query_opts o;
  memset(&o, 0, sizeof o);
  o.principal = up;
  o.groups = gs;
  o.ngroups = (size_t)ncg;
  o.agent = ap;
  o.agent_groups = as;
  o.nagent_groups = (size_t)nag;
  o.namespaces = nss;
  o.nnamespaces = (size_t)nns;
  o.filter = f ? ftext : NULL;
  o.k = (unsigned)k;
  warden_results *r = NULL;
  int rc = warden_query(db, &q[0][0], (size_t)nq, &o, &r);
  if (rc) fail_msg("agent query failed: %d %s (filter %s)", rc, warden_errmsg(db), ftext);
#define BOTH_MAY(d)                                                                          \
  (readable((d), u, ing) && readable((d), a, aing) &&                                       \
   (!use_resolver || (verdict(up, u, ing, (d)->id) && verdict(ap, a, aing, (d)->id))))
  for (int qi = 0; qi < nq; qi++) {
    int nc = 0;
    for (int i = 0; i < ndocs_used; i++) {
      odoc *d = &docs[i];
      if (!d->live || !BOTH_MAY(d)) continue;
      if (nns && !ns_under(NS[d->ns], nss[0])) continue;
      if (f && !eval(f, d)) continue;
      for (int c = 0; c < d->nch; c++) cands[nc++] = (cand){odist(d->vec[c], q[qi]), d->slot[c], i, c};
    }
    qsort(cands, (size_t)nc, sizeof *cands, cmpc);
    size_t want = (size_t)(nc < k ? nc : k);
    size_t got = warden_results_count(r, (size_t)qi);
    int degraded = warden_results_degraded(r, (size_t)qi);
    if (degraded && use_resolver != 1) fail_msg("agent query %ld: degraded without a failing resolver", nagent_queries);
    if (degraded ? got > want : got != want)
      fail_msg("agent query %ld: %zu results, oracle %zu (u%d via agent u%d, filter %s)", nagent_queries,
               got, want, u, a, ftext);
    int exact = metric != WARDEN_METRIC_COSINE && !batch_mode && !degraded;
    for (size_t i = 0; i < got; i++) {
      const warden_hit *h = warden_results_hit(r, (size_t)qi, i);
      int di = find_doc(h->doc_id);
      if (di < 0 || !BOTH_MAY(&docs[di]) || (f && !eval(f, &docs[di])) ||
          (nns && !ns_under(NS[docs[di].ns], nss[0])) || (int)h->chunk >= docs[di].nch) {
        nleaks++;
        fail_msg("LEAK: %s#%u returned to u%d via agent u%d", h->doc_id, h->chunk, u, a);
      }
      double true_d = odist(docs[di].vec[h->chunk], q[qi]);
      double rep_d = metric == WARDEN_METRIC_L2 ? h->score : -h->score;
      double tol = exact ? 0 : 1e-4 * (1 + fabs(true_d));
      if (fabs(rep_d - true_d) > tol)
        fail_msg("agent: score of %s#%u: %g, oracle %g", h->doc_id, h->chunk, rep_d, true_d);
      if (!degraded && fabs(rep_d - cands[i].dist) > tol)
        fail_msg("agent: rank %zu: distance %g, oracle %g", i, rep_d, cands[i].dist);
      if (exact && (di != cands[i].doc || (int)h->chunk != cands[i].ch))
        fail_msg("agent: rank %zu: %s#%u, oracle %s#%d (tie order)", i, h->doc_id, h->chunk,
                 docs[cands[i].doc].id, cands[i].ch);
    }
    nagent_hits += (long)got;
  }
#undef BOTH_MAY
  warden_results_free(r);
  nagent_queries++;
}

/* ---------------------------------------------------- mutations */
static char *buf;

static void ingest_round(int n) {
  char *o = buf;
  int idx[64];
  int m = 0;
  for (int i = 0; i < n; i++) {
    int target;
    if (ndocs_used > 0 && rr(4) == 0) {
      target = rr(ndocs_used); /* upsert (or resurrect) an existing id */
      int dup = 0;
      for (int j = 0; j < m; j++) dup |= idx[j] == target;
      if (dup) continue;
    } else {
      if (ndocs_used >= MAXDOCS) continue;
      target = ndocs_used++;
    }
    char id[32];
    snprintf(id, sizeof id, "doc-%d", target);
    random_doc(&docs[target], id);
    docs[target].live = 0; /* until committed */
    doc_json(&docs[target], o);
    o += strlen(o);
    idx[m++] = target;
  }
  if (m == 0) return;
  warden_ingest_report rep;
  int rc = warden_ingest_buffer(db, "round.jsonl", buf, (size_t)(o - buf), NULL, &rep);
  if (rc) fail_msg("ingest: %s", warden_errmsg(db));
  assert_int_equal(rep.documents, (uint64_t)m);
  for (int j = 0; j < m; j++) {
    odoc *d = &docs[idx[j]];
    d->live = 1;
    for (int c = 0; c < d->nch; c++) d->slot[c] = next_slot++;
  }
}

static void mutate(void) {
  if (use_resolver == 2 && rr(2)) { /* grant or revoke a grant */
    int i = rr(nrules);
    char pn[24];
    pname(rule_who[i], pn);
    warden_write_report wr;
    if (grant_live[i]) {
      assert_int_equal(warden_grant_remove(db, pn, rule_prefix[i], &wr), 0);
    } else {
      assert_int_equal(warden_grant_add(db, pn, rule_prefix[i], &wr), 0);
    }
    /* the same (holder, prefix) may appear twice in the table */
    int newv = !grant_live[i];
    for (int j = 0; j < nrules; j++)
      if (rule_who[j] == rule_who[i] && !strcmp(rule_prefix[j], rule_prefix[i])) grant_live[j] = newv;
    return;
  }
  int t = rr(4);
  if (t == 0 && ndocs_used) { /* delete */
    int i = rr(ndocs_used);
    const char *ids[1] = {docs[i].id};
    warden_write_report rep;
    assert_int_equal(warden_delete(db, ids, 1, &rep), 0);
    assert_int_equal(rep.changed, (uint64_t)docs[i].live);
    docs[i].live = 0;
  } else if (t == 1 && ndocs_used) { /* acl set */
    int i = rr(ndocs_used);
    if (!docs[i].live) return;
    odoc *d = &docs[i];
    d->nallow = rr(4);
    char pb[6][24];
    const char *al[6], *dn[4];
    for (int j = 0; j < d->nallow; j++) {
      int x = rr(10);
      d->allow[j] = x < 1 ? 999 : x < 5 ? rr(NUSERS) : 100 + rr(NGROUPS);
    }
    /* dedupe like the engine's set semantics (order irrelevant) */
    for (int j = 0; j < d->nallow; j++) {
      pname(d->allow[j], pb[j]);
      al[j] = pb[j];
    }
    d->ndeny = rr(3) == 0 ? 1 : 0;
    char db1[24];
    if (d->ndeny) {
      d->deny[0] = rr(2) ? rr(NUSERS) : 100 + rr(NGROUPS);
      pname(d->deny[0], db1);
      dn[0] = db1;
    }
    assert_int_equal(warden_acl_set(db, d->id, al, (size_t)d->nallow, dn, (size_t)d->ndeny, NULL), 0);
  } else { /* directory change, cycles allowed */
    int isuser = rr(2), who = isuser ? rr(NUSERS) : rr(NGROUPS);
    int *row = isuser ? dir_user[who] : dir_group[who];
    char gb[NGROUPS][16], pn[24];
    const char *gs[NGROUPS];
    int n = 0;
    for (int g = 0; g < NGROUPS; g++) {
      row[g] = rr(5) == 0;
      if (row[g]) {
        sprintf(gb[n], "group:g%d", g);
        gs[n] = gb[n];
        n++;
      }
    }
    pname(isuser ? who : 100 + who, pn);
    assert_int_equal(warden_principal_set(db, pn, gs, (size_t)n, NULL), 0);

#endif
