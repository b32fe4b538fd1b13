/*
 * acl.c -- group expansion and readable-set bitmaps (see acl.h).
 */
#include "acl/acl.h"

#include <string.h>

#define WD_MAX_EXPANDED 65536 /* principals in one expansion */

int wd_strlist_has(const wd_strlist *l, const char *s, size_t n) {
  for (size_t i = 0; i < l->n; i++)
    if (strlen(l->v[i]) == n && memcmp(l->v[i], s, n) == 0) return 1;
  return 0;
}

int wd_strlist_add(wd_strlist *l, const char *s, size_t n) {
  if (wd_strlist_has(l, s, n)) return 0;
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 16;
    char **nv = wd_realloc(l->v, nc * sizeof *nv);
    if (!nv) return WARDEN_ENOMEM;
    l->v = nv;
    l->cap = nc;
  }
  char *d = wd_strndup(s, n);
  if (!d) return WARDEN_ENOMEM;
  l->v[l->n++] = d;
  return 0;
}

void wd_strlist_free(wd_strlist *l) {
  for (size_t i = 0; i < l->n; i++) wd_free(l->v[i]);
  wd_free(l->v);
  wd_free(l->parent);
  memset(l, 0, sizeof *l);
}

int acl_directory_groups(wd_txn *tx, const char *p, size_t n, json_t **out) {
  return store_directory_get(tx, p, n, out);
}

/* Record parents as entries are added (parallel array, same capacity). */
static int add_with_parent(wd_strlist *l, size_t *pcap, const char *s, size_t n, int parent) {
  size_t before = l->n;
  int rc = wd_strlist_add(l, s, n);
  if (rc || l->n == before) return rc;
  if (*pcap < l->cap) {
    int *np = wd_realloc(l->parent, l->cap * sizeof *np);
    if (!np) return WARDEN_ENOMEM;
    l->parent = np;
    *pcap = l->cap;
  }
  l->parent[l->n - 1] = parent;
  return 0;
}

char *acl_chain(const wd_strlist *who, size_t i) {
  size_t len = 1;
  for (int j = (int)i, hops = 0; j >= 0 && hops < 64; j = who->parent ? who->parent[j] : -1, hops++)
    len += strlen(who->v[j]) + 5;
  char *s = wd_malloc(len);
  if (!s) return NULL;
  s[0] = 0;
  for (int j = (int)i, hops = 0; j >= 0 && hops < 64; j = who->parent ? who->parent[j] : -1, hops++) {
    if (s[0]) strcat(s, " via ");
    strcat(s, who->v[j]);
  }
  return s;
}

int acl_expand(wd_txn *tx, const char *principal, const char *const *groups,
               size_t ngroups, wd_strlist *out) {
  wd_strlist l;
  memset(&l, 0, sizeof l);
  size_t pcap = 0;
  int rc = add_with_parent(&l, &pcap, principal, strlen(principal), -1);
  for (size_t i = 0; i < ngroups && !rc; i++)
    rc = add_with_parent(&l, &pcap, groups[i], strlen(groups[i]), -1);
  /* breadth-first over the directory; the list doubles as the visited set */
  for (size_t i = 0; i < l.n && !rc; i++) {
    json_t *g;
    if ((rc = acl_directory_groups(tx, l.v[i], strlen(l.v[i]), &g))) break;
    size_t j;
    json_t *e;
    json_array_foreach(g, j, e) {
      if (!json_is_string(e)) continue;
      if (l.n >= WD_MAX_EXPANDED) {
        rc = wd_err(store_txn_handle(tx), WARDEN_EDATA, "group expansion exceeds %d principals",
                    WD_MAX_EXPANDED);
        break;
      }
      if ((rc = add_with_parent(&l, &pcap, json_string_value(e), json_string_length(e), (int)i)))
        break;
    }
    json_decref(g);
  }
  if (rc) {
    wd_strlist_free(&l);
    return rc == WARDEN_ENOMEM ? wd_err(store_txn_handle(tx), rc, "out of memory") : rc;
  }
  *out = l;
  return 0;
}

int acl_readable(wd_txn *tx, const wd_strlist *who, roaring_bitmap_t **out) {
  roaring_bitmap_t *allow = roaring_bitmap_create();
  roaring_bitmap_t *deny = roaring_bitmap_create();
  int rc = 0;
  char kb[512];
  for (size_t i = 0; i < who->n && !rc; i++) {
    size_t n = strlen(who->v[i]);
    if (n > WD_PRINCIPAL_MAX) continue; /* longer names cannot be stored principals */
    rc = store_bm_or(tx, kb, store_key(kb, 'A', who->v[i], n), allow);
    if (!rc) rc = store_bm_or(tx, kb, store_key(kb, 'D', who->v[i], n), deny);
  }
  if (!rc) rc = store_bm_or(tx, kb, store_key(kb, 'A', "*", 1), allow);
  if (rc) {
    roaring_bitmap_free(allow);
    roaring_bitmap_free(deny);
    return rc;
  }
  roaring_bitmap_andnot_inplace(allow, deny); /* deny wins */
  roaring_bitmap_free(deny);
  *out = allow;
  return 0;
}

typedef struct {
  const char *prefix; /* normalised */
  size_t plen;        /* length of "N" + prefix */
} ns_ctx;

/* Take "N/a" and "N/a/..." but not "N/ab": the walk already matched the
 * prefix bytes, wd_namespace_covers says whether the rest is a segment. */
static int ns_take(const char *key, size_t klen, void *ctx) {
  ns_ctx *c = ctx;
  return wd_namespace_covers(c->prefix, c->plen - 1, key + 1, klen - 1);
}

int acl_namespace_mask(wd_txn *tx, const char *const *prefixes, size_t n,
                       roaring_bitmap_t **out) {
  roaring_bitmap_t *m = roaring_bitmap_create();
  for (size_t i = 0; i < n; i++) {
    char ns[WD_MAX_NAMESPACE + 1], why[300];
    if (strlen(prefixes[i]) > WD_MAX_NAMESPACE ||
        wd_namespace_normalize(prefixes[i], ns, why, sizeof why)) {
      roaring_bitmap_free(m);
      return wd_err(store_txn_handle(tx), WARDEN_EINVAL, "namespace \"%.100s\": %s", prefixes[i],
                    strlen(prefixes[i]) > WD_MAX_NAMESPACE ? "too long" : why);
    }
    char kb[512];
    size_t kl = store_key(kb, 'N', ns, strlen(ns));
    ns_ctx c = {ns, kl};
    int rc = store_bm_walk(tx, kb, kl, kl, NULL, 0, m, ns_take, &c);
    if (rc) {
      roaring_bitmap_free(m);
      return rc;
    }
  }
  *out = m;
  return 0;
}

/* Defence in depth: the stored-ACL rule and the namespace prefixes,
 * evaluated again on a document's record (allow, deny, namespace),
 * independently of the bitmaps that selected it.  The query fails closed
 * when they disagree (engine/query.c). */
int acl_record_allows(const wd_strlist *who, const json_t *allow, const json_t *deny,
                      const char *ns, const char *const *prefixes, size_t nprefixes) {
  int ok = 0;
  size_t i;
  const json_t *p;
  json_array_foreach(allow, i, p) {
    const char *s = json_string_value(p);
    if (s && (strcmp(s, "*") == 0 || wd_strlist_has(who, s, strlen(s)))) ok = 1;
  }
  json_array_foreach(deny, i, p) {
    const char *s = json_string_value(p);
    if (s && wd_strlist_has(who, s, strlen(s))) ok = 0; /* deny wins */
  }
  if (!ok || !nprefixes) return ok;
  for (size_t j = 0; j < nprefixes; j++) {
    char pre[WD_MAX_NAMESPACE + 1], why[300];
    if (wd_namespace_normalize(prefixes[j], pre, why, sizeof why)) continue;
    if (wd_namespace_covers(pre, strlen(pre), ns, strlen(ns))) return 1;
  }
  return 0;
}

char *acl_evidence(const wd_strlist *who, const json_t *allow) {
  size_t i;
  const json_t *p;
  json_array_foreach(allow, i, p) {
    const char *s = json_string_value(p);
    if (s && strcmp(s, "*") == 0) return wd_strdup("*");
    for (size_t j = 0; s && j < who->n; j++)
      if (strcmp(who->v[j], s) == 0) return acl_chain(who, j);
  }
  return NULL;
}
