/*
 * resolver.c -- post-retrieval source-permission checks (see resolver.h):
 * the none, grants, command and callback resolvers, and the retry policy
 * they share.
 *
 * grants: a resource is allowed iff some grant held by the principal, one
 * of its (expanded) groups or "*" is a prefix of the resource's source.
 * Grants are read from the query's snapshot, so a revoke is seen by every
 * query that starts after it.  The pre-filter is the OR of the "S"+source
 * bitmaps under each granted prefix: exactly the slots the post-check will
 * allow (the post-check still runs; it is cheap).
 *
 * command: one long-lived child process per handle, started on first use,
 * speaking JSON Lines over a socketpair that is its stdin and stdout (its
 * stderr is the host's).  A socket rather than pipes so that writes use
 * MSG_NOSIGNAL: a dead child can never SIGPIPE the host process.  The child
 * runs with the collection directory as its working directory, so relative
 * paths in resolver.command (the program and its arguments) are relative
 * to the collection; a program name without '/' is looked up in PATH.  It
 * inherits no descriptor but 0, 1 and 2, an empty signal mask and default
 * SIGPIPE.  Any failure of a request -- no answer within timeout_ms, EOF,
 * unparsable JSON, a wrong id, a wrong count, a non-boolean entry -- kills
 * and reaps the child (it is restarted by the next request), so a child
 * that fell behind never answers a later request with an old answer; lines
 * with an older id are skipped anyway.
 *
 * Retry policy (SPEC: a failure affects only the resources it failed on):
 * a check first asks for the whole batch.  When that request fails (crash,
 * garbage, wrong id or count, no answer within timeout_ms), every resource
 * is asked again on its own, RES_POOL at a time on up to RES_POOL resolver
 * processes (started on first need, kept for later checks), each request
 * with its own timeout_ms, so instant failures are isolated exactly and a
 * slow resource costs one timeout_ms on one process while the others go
 * on.  An answer may also say per item that the resolver could not decide
 * (null in "allowed"; WARDEN_RESOLVER_UNDECIDED from a callback): that
 * item fails alone.  Everything a query asks its resolver shares one time
 * budget, RES_BUDGET x timeout_ms from its first check: a request never
 * outlives it, and resources not answered when it runs out fail
 * (denied, the query marked degraded).  So a query is back within
 * RES_BUDGET x timeout_ms of resolver time plus process start-up; with s
 * slow resources among the failed batch's, the retries take about
 * ceil(s / RES_POOL) x timeout_ms.
 *
 * The callback resolver cannot be interrupted: it must return within
 * timeout_ms by itself (marking what it could not decide in time as
 * WARDEN_RESOLVER_UNDECIDED, or returning nonzero).  Its per-resource
 * retries run one at a time in the query's thread and stop being started
 * once the budget is spent; a callback that overruns delays the query by
 * its overrun, never past the first call that returns after the budget.
 *
 * Threading: check is thread-safe.  Each resolver process is used under
 * its own lock, one request at a time; grants and the callback run
 * unlocked (the callback must itself be thread-safe, warden.h says so).
 * set_callback must not race with queries (warden.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "acl/grants.h"
#include "acl/resolver.h"

extern char **environ;

#define RES_MAX_LINE (64u << 20) /* longest answer line accepted */
#define RES_CLOSE_WAIT_MS 200    /* grace period for the child at close */
#define RES_POOL 8               /* resolver processes one check may use */
#define RES_BUDGET 4             /* a query's resolver time, x timeout_ms */

/* One resolver process and its connection. */
typedef struct kid {
  pthread_mutex_t lock;  /* guards everything below */
  pid_t pid;             /* the child, 0 when none */
  int fd;                /* our end of the socketpair, -1 when none */
  long long next_id;
  char *buf;             /* bytes read from the child, not yet consumed */
  size_t len, cap;
} kid;

struct wd_resolver {
  warden *db;
  int type;              /* WD_RESOLVER_* from warden.yaml */
  warden_resolver_fn fn; /* callback; when set it replaces type */
  void *ctx;
  /* command resolver: */
  char **argv;           /* NULL-terminated copy of resolver.command */
  char *cwd;             /* the collection directory, absolute */
  unsigned timeout_ms;
  kid kids[RES_POOL];    /* kids[0] takes first attempts */
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ lifecycle */

int wd_resolver_create(warden *db, const wd_resolver_conf *conf, wd_resolver **out) {
  wd_resolver *r = wd_calloc(1, sizeof *r);
  if (!r) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  r->db = db;
  r->type = conf->type;
  r->timeout_ms = conf->timeout_ms ? conf->timeout_ms : WD_RESOLVER_TIMEOUT_MS;
  for (int i = 0; i < RES_POOL; i++) {
    r->kids[i].fd = -1;
    pthread_mutex_init(&r->kids[i].lock, NULL);
  }
  if (r->type == WD_RESOLVER_COMMAND) {
    if (conf->ncmd == 0 || !conf->cmd || !conf->cmd[0][0]) {
      wd_resolver_close(r);
      return wd_err(db, WARDEN_ERESOLVER, "resolver.command is empty");
    }
    char *abs = conf->dir ? realpath(conf->dir, NULL) : NULL;
    r->cwd = wd_strdup(abs ? abs : (conf->dir ? conf->dir : "."));
    free(abs);
    r->argv = wd_calloc(conf->ncmd + 1, sizeof *r->argv);
    int oom = !r->cwd || !r->argv;
    for (size_t i = 0; !oom && i < conf->ncmd; i++) {
      const char *a = conf->cmd[i];
      /* the program is spawned with the collection as cwd; an absolute
       * path does not depend on how posix_spawnp orders chdir and exec */
      if (i == 0 && a[0] != '/' && strchr(a, '/'))
        r->argv[i] = wd_asprintf("%s/%s", r->cwd, a);
      else
        r->argv[i] = wd_strdup(a);
      oom = !r->argv[i];
    }
    if (oom) {
      wd_resolver_close(r);
      return wd_err(db, WARDEN_ENOMEM, "out of memory");
    }
  }
  *out = r;
  return 0;
}

/* Kill and reap the child at once (after a failed request). */
static void child_kill(kid *r) {
  if (r->fd >= 0) close(r->fd);
  r->fd = -1;
  if (r->pid > 0) {
    kill(r->pid, SIGKILL);
    while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  r->pid = 0;
  r->len = 0;
}

/* Close the child's stdin, give it a moment to exit, then kill it. */
static void child_stop(kid *r) {
  if (r->pid <= 0) {
    child_kill(r);
    return;
  }
  shutdown(r->fd, SHUT_WR);
  int64_t end = now_ms() + RES_CLOSE_WAIT_MS;
  for (;;) {
    pid_t w = waitpid(r->pid, NULL, WNOHANG);
    if (w == r->pid || (w < 0 && errno != EINTR)) {
      r->pid = 0; /* exited (or not our child to reap) */
      break;
    }
    if (now_ms() >= end) break;
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  child_kill(r);
}

void wd_resolver_close(wd_resolver *r) {
  if (!r) return;
  for (int i = 0; i < RES_POOL; i++) {
    child_stop(&r->kids[i]);
    wd_free(r->kids[i].buf);
    pthread_mutex_destroy(&r->kids[i].lock);
  }
  if (r->argv)
    for (size_t i = 0; r->argv[i]; i++) wd_free(r->argv[i]);
  wd_free(r->argv);
  wd_free(r->cwd);
  wd_free(r);
}

void wd_resolver_set_callback(wd_resolver *r, warden_resolver_fn fn, void *ctx) {
  if (!r) return;
  r->fn = fn;
  r->ctx = fn ? ctx : NULL;
}

int wd_resolver_active(const wd_resolver *r) {
  return r && (r->fn || r->type == WD_RESOLVER_GRANTS || r->type == WD_RESOLVER_COMMAND);
}

const char *wd_resolver_name(const wd_resolver *r) {
  if (!r) return "none";
  if (r->fn) return "callback";
  switch (r->type) {
    case WD_RESOLVER_GRANTS: return "grants";
    case WD_RESOLVER_COMMAND: return "command";
    default: return "none";
  }
}

/* --------------------------------------------------------------- grants */

typedef struct grant_ref {
  const char *principal; /* borrowed from who, or "*" */
  const char *prefix;    /* borrowed from the JSON array in all */
  size_t plen;
} grant_ref;

typedef struct grant_set {
  json_t *arrays; /* keeps the prefix strings alive */
  grant_ref *g;
  size_t n, cap;
} grant_set;

static void grant_set_free(grant_set *s) {
  json_decref(s->arrays);
  wd_free(s->g);
  memset(s, 0, sizeof *s);
}

/* Every grant held by someone in who, or by "*". */
static int grant_set_load(wd_txn *tx, const wd_strlist *who, grant_set *s) {
  memset(s, 0, sizeof *s);
  s->arrays = json_array();
  if (!s->arrays) return wd_err(store_txn_handle(tx), WARDEN_ENOMEM, "out of memory");
  int star_seen = wd_strlist_has(who, "*", 1);
  for (size_t i = 0; i <= who->n; i++) {
    const char *p = i < who->n ? who->v[i] : "*";
    if (i == who->n && star_seen) break;
    json_t *a;
    int rc = grants_of(tx, p, strlen(p), &a);
    if (rc) {
      grant_set_free(s);
      return rc;
    }
    json_array_append_new(s->arrays, a);
    size_t j;
    json_t *e;
    json_array_foreach(a, j, e) {
      if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        grant_ref *ng = wd_realloc(s->g, nc * sizeof *ng);
        if (!ng) {
          grant_set_free(s);
          return wd_err(store_txn_handle(tx), WARDEN_ENOMEM, "out of memory");
        }
        s->g = ng;
        s->cap = nc;
      }
      s->g[s->n++] = (grant_ref){p, json_string_value(e), json_string_length(e)};
    }
  }
  return 0;
}

static int grants_check(wd_txn *tx, const wd_strlist *who, const warden_resource *items,
                        size_t n, unsigned char *out, char **evidence) {
  grant_set s;
  int rc = grant_set_load(tx, who, &s);
  if (rc) return rc;
  for (size_t i = 0; i < n && !rc; i++) {
    const char *src = items[i].source ? items[i].source : "";
    const grant_ref *hit = NULL;
    for (size_t j = 0; j < s.n && !hit; j++)
      if (strncmp(src, s.g[j].prefix, s.g[j].plen) == 0) hit = &s.g[j];
    out[i] = hit ? WD_RES_ALLOW : WD_RES_DENY;
    if (!evidence) continue;
    evidence[i] = hit ? wd_asprintf("grant %s %s", hit->principal, hit->prefix)
                      : wd_strdup("grants: no grant matches");
    if (!evidence[i]) rc = wd_err(store_txn_handle(tx), WARDEN_ENOMEM, "out of memory");
  }
  grant_set_free(&s);
  return rc;
}

static int cmp_cstr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int wd_resolver_prefilter(wd_resolver *r, wd_txn *tx, const wd_strlist *who,
                          roaring_bitmap_t **out) {
  if (!r || !tx || !who || !out) return WARDEN_EINVAL;
  if (r->fn || r->type != WD_RESOLVER_GRANTS) {
    *out = NULL;
    return 0;
  }
  grant_set s;
  int rc = grant_set_load(tx, who, &s);
  if (rc) return rc;
  const char **pre = wd_calloc(s.n ? s.n : 1, sizeof *pre);
  roaring_bitmap_t *acc = roaring_bitmap_create();
  if (!pre || !acc) {
    wd_free(pre);
    if (acc) roaring_bitmap_free(acc);
    grant_set_free(&s);
    return wd_err(store_txn_handle(tx), WARDEN_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < s.n; i++) pre[i] = s.g[i].prefix;
  /* sorted, a prefix covered by a shorter kept one adds nothing: skip it */
  qsort(pre, s.n, sizeof *pre, cmp_cstr);
  const char *kept = NULL;
  for (size_t i = 0; i < s.n && !rc; i++) {
    if (kept && strncmp(pre[i], kept, strlen(kept)) == 0) continue;
    kept = pre[i];
    char kb[512];
    size_t kl = store_key(kb, 'S', pre[i], strlen(pre[i]));
    rc = store_bm_walk(tx, kb, kl, kl, NULL, 0, acc, NULL, NULL);
  }
  wd_free(pre);
  grant_set_free(&s);
  if (rc) {
    roaring_bitmap_free(acc);
    return rc;
  }
  *out = acc;
  return 0;
}

/* ------------------------------------------------------ command resolver */

static int child_start(const wd_resolver *rs, kid *r, char *why, size_t wl) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
    snprintf(why, wl, "socketpair: %s", strerror(errno));
    return -1;
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 1);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawn_file_actions_addchdir_np(&fa, rs->cwd);
  sigset_t none, dfl;
  sigemptyset(&none);
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGPIPE);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &dfl);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int e = posix_spawnp(&pid, rs->argv[0], &fa, &at, rs->argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  close(sv[1]);
  if (e) {
    close(sv[0]);
    snprintf(why, wl, "cannot start %.200s: %s", rs->argv[0], strerror(e));
    return -1;
  }
  fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  r->fd = sv[0];
  r->pid = pid;
  r->len = 0;
  return 0;
}

/* Read what is available now (wait at most wait_ms, -1: do not wait).
 * Returns bytes read (>0), 0 on timeout, -1 on EOF/error, -2 on OOM,
 * -3 when the buffer limit is hit. */
static int child_read(kid *r, int wait_ms) {
  if (wait_ms >= 0) {
    struct pollfd p = {r->fd, POLLIN, 0};
    int pr = poll(&p, 1, wait_ms);
    if (pr < 0) return errno == EINTR ? 0 : -1;
    if (pr == 0) return 0;
  }
  if (r->cap - r->len < 65536) {
    if (r->cap >= RES_MAX_LINE) return -3;
    size_t nc = r->cap ? r->cap * 2 : 131072;
    char *nb = wd_realloc(r->buf, nc);
    if (!nb) return -2;
    r->buf = nb;
    r->cap = nc;
  }
  ssize_t k = recv(r->fd, r->buf + r->len, r->cap - r->len, 0);
  if (k > 0) {
    r->len += (size_t)k;
    return 1;
  }
  if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
  return -1;
}

static int send_all(kid *r, const char *p, size_t n, int64_t deadline) {
  while (n) {
    ssize_t k = send(r->fd, p, n, MSG_NOSIGNAL);
    if (k > 0) {
      p += k;
      n -= (size_t)k;
      continue;
    }
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int64_t left = deadline - now_ms();
      if (left <= 0) return WD_RES_TIMEOUT;
      struct pollfd pf = {r->fd, POLLOUT, 0};
      if (poll(&pf, 1, (int)left) < 0 && errno != EINTR) return WD_RES_ERROR;
      continue;
    }
    return WD_RES_ERROR; /* EPIPE / ECONNRESET: the child is gone */
  }
  return 0;
}

/* Check one decoded answer line for request id with n resources.
 * Returns 0 (out filled), 1 (stale line: skip it) or WD_RES_ERROR. */
static int parse_answer(const char *line, size_t len, long long id, size_t n,
                        unsigned char *out, char *why, size_t wl) {
  json_error_t je;
  json_t *o = json_loadb(line, len, 0, &je);
  int ret = WD_RES_ERROR;
  json_t *jid = json_object_get(o, "id"), *al = json_object_get(o, "allowed");
  if (!json_is_object(o)) {
    snprintf(why, wl, "malformed answer: %s", o ? "not a JSON object" : je.text);
  } else if (!json_is_integer(jid)) {
    snprintf(why, wl, "answer without an integer id");
  } else if (json_integer_value(jid) < id && json_integer_value(jid) > 0) {
    ret = 1;
  } else if (json_integer_value(jid) != id) {
    snprintf(why, wl, "answer for id %lld, expected %lld", (long long)json_integer_value(jid), id);
  } else if (!json_is_array(al) || json_array_size(al) != n) {
    snprintf(why, wl, "expected \"allowed\" with %zu entries", n);
  } else {
    ret = 0;
    for (size_t i = 0; i < n && !ret; i++) {
      json_t *b = json_array_get(al, i);
      if (json_is_null(b)) {
        out[i] = WD_RES_ERROR; /* could not decide: this item fails alone */
      } else if (!json_is_boolean(b)) {
        snprintf(why, wl, "allowed[%zu] is not a boolean or null", i);
        ret = WD_RES_ERROR;
      } else {
        out[i] = json_is_true(b) ? WD_RES_ALLOW : WD_RES_DENY;
      }
    }
  }
  json_decref(o);
  return ret;
}

static json_t *build_request(const wd_strlist *who, const warden_resource *items, size_t n) {
  json_t *o = json_object(), *g = json_array(), *res = json_array();
  int bad = !o || !g || !res;
  for (size_t i = 1; !bad && i < who->n; i++) bad = json_array_append_new(g, json_string(who->v[i]));
  for (size_t i = 0; !bad && i < n; i++) {
    json_t *e = json_object();
    bad = !e || json_object_set_new(e, "doc_id", json_string(items[i].doc_id ? items[i].doc_id : "")) ||
          json_object_set_new(e, "source", json_string(items[i].source ? items[i].source : "")) ||
          json_array_append_new(res, e);
  }
  if (!bad)
    bad = json_object_set_new(o, "id", json_integer(0)) ||
          json_object_set_new(o, "principal", json_string(who->v[0])) ||
          json_object_set_new(o, "groups", g) || json_object_set_new(o, "resources", res);
  else {
    json_decref(g);
    json_decref(res);
  }
  if (bad) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* One request to the child for n resources.  Returns 0 (out filled),
 * WD_RES_ERROR or WD_RES_TIMEOUT (why says what), or WARDEN_ENOMEM. */
static int command_attempt(wd_resolver *rs, kid *r, const wd_strlist *who,
                           const warden_resource *items, size_t n, unsigned char *out,
                           int timeout_ms, char *why, size_t wl) {
  json_t *req = build_request(who, items, n);
  if (!req) {
    snprintf(why, wl, "cannot encode the request (not UTF-8?)");
    return WD_RES_ERROR;
  }
  int64_t deadline = now_ms() + timeout_ms;
  pthread_mutex_lock(&r->lock);
  int ret = 0;
  if (r->pid > 0) {
    /* whatever the child sent since the last answer is stale: drop it; an
     * EOF here means it died in between, so start a fresh one */
    int k;
    while ((k = child_read(r, -1)) > 0) r->len = 0;
    r->len = 0;
    if (k == -1) child_kill(r);
  }
  if (r->pid <= 0 && child_start(rs, r, why, wl)) ret = WD_RES_ERROR;
  long long id = ++r->next_id;
  char *text = NULL;
  if (!ret) {
    json_object_set_new(req, "id", json_integer(id));
    text = json_dumps(req, JSON_COMPACT);
    if (!text) ret = WARDEN_ENOMEM;
  }
  if (!ret) {
    ret = send_all(r, text, strlen(text), deadline);
    if (!ret) ret = send_all(r, "\n", 1, deadline);
    if (ret) snprintf(why, wl, ret == WD_RES_TIMEOUT ? "request not accepted in time" : "the process exited");
  }
  size_t scan = 0; /* bytes of buf known to hold no newline */
  while (!ret) {
    char *nl = r->len > scan ? memchr(r->buf + scan, '\n', r->len - scan) : NULL;
    if (nl) {
      size_t ll = (size_t)(nl - r->buf);
      int pr = parse_answer(r->buf, ll, id, n, out, why, wl);
      memmove(r->buf, nl + 1, r->len - ll - 1);
      r->len -= ll + 1;
      scan = 0;
      if (pr == 1) continue; /* an old answer: skip */
      ret = pr;
      break;
    }
    scan = r->len;
    int64_t left = deadline - now_ms();
    if (left <= 0) {
      ret = WD_RES_TIMEOUT;
      snprintf(why, wl, "no answer within %d ms", timeout_ms);
      break;
    }
    int k = child_read(r, (int)(left > INT_MAX ? INT_MAX : left));
    if (k == -1) {
      ret = WD_RES_ERROR;
      snprintf(why, wl, "the process exited");
    } else if (k == -2) {
      ret = WARDEN_ENOMEM;
    } else if (k == -3) {
      ret = WD_RES_ERROR;
      snprintf(why, wl, "answer longer than %u bytes", RES_MAX_LINE);
    }
  }
  if (ret) child_kill(r); /* a fresh child for the next request */
  pthread_mutex_unlock(&r->lock);
  free(text);
  json_decref(req);
  return ret;
}

static int callback_attempt(wd_resolver *r, const wd_strlist *who,
                            const warden_resource *items, size_t n, unsigned char *out,
                            char *why, size_t wl) {
  unsigned char *a = wd_calloc(n, 1); /* zero: an entry left unset is a deny */
  if (!a) return WARDEN_ENOMEM;
  int rc = r->fn(r->ctx, who->v[0], (const char *const *)who->v + 1, who->n - 1, items, n, a);
  if (rc) {
    snprintf(why, wl, "callback returned %d", rc);
  } else {
    for (size_t i = 0; i < n; i++)
      out[i] = a[i] == WARDEN_RESOLVER_UNDECIDED ? WD_RES_ERROR
               : a[i]                            ? WD_RES_ALLOW
                                                 : WD_RES_DENY;
  }
  wd_free(a);
  return rc ? WD_RES_ERROR : 0;
}

/* ---------------------------------------------------- the retry policy */

typedef struct batch {
  wd_resolver *r;
  int callback;
  const wd_strlist *who;
  const warden_resource *items;
  unsigned char *out;
  char **evidence;
  int64_t deadline;   /* end of the query's resolver budget */
  /* per-resource phase */
  pthread_mutex_t lock;
  size_t next, n;     /* next item to ask, items */
  int fail_kind;      /* how the whole batch failed */
  const char *fail_why;
  int rc;             /* first ENOMEM of a worker */
} batch;

static const char *res_name(const batch *b) { return b->callback ? "callback" : "command"; }

static int evidence_of(batch *b, size_t i, int kind, const char *why) {
  if (!b->evidence) return 0;
  const char *name = res_name(b);
  if (kind == WD_RES_ALLOW || kind == WD_RES_DENY)
    b->evidence[i] = wd_asprintf("%s: %s", name, kind == WD_RES_ALLOW ? "allowed" : "denied");
  else if (!why || !*why)
    b->evidence[i] = wd_asprintf("%s: could not decide", name);
  else
    b->evidence[i] = wd_asprintf("%s: %s: %s", name, kind == WD_RES_TIMEOUT ? "timeout" : "error", why);
  return b->evidence[i] ? 0 : WARDEN_ENOMEM;
}

/* One request for items[lo, lo+n) on process k (command) or the callback.
 * Returns 0 (out filled, items may be WD_RES_ERROR = undecided), a
 * WD_RES_ERROR/TIMEOUT for the whole request, or WARDEN_ENOMEM. */
static int attempt(batch *b, kid *k, size_t lo, size_t n, int timeout, char *why, size_t wl) {
  return b->callback ? callback_attempt(b->r, b->who, b->items + lo, n, b->out + lo, why, wl)
                     : command_attempt(b->r, k, b->who, b->items + lo, n, b->out + lo, timeout,
                                       why, wl);
}

/* Time left of the budget for one request: at most timeout_ms. */
static int request_timeout(const batch *b) {
  int64_t left = b->deadline - now_ms();
  if (left > (int64_t)b->r->timeout_ms) left = b->r->timeout_ms;
  return left > 0 ? (int)left : 0;
}

/* Per-resource phase: a worker asks one item at a time on its process. */
static void worker(batch *b, kid *k) {
  for (;;) {
    pthread_mutex_lock(&b->lock);
    size_t i = b->next < b->n && !b->rc ? b->next++ : b->n;
    pthread_mutex_unlock(&b->lock);
    if (i >= b->n) return;
    char why[256] = "";
    int t = request_timeout(b), rc;
    if (t <= 0) { /* budget spent: the item takes the batch's failure */
      char w2[320];
      snprintf(w2, sizeof w2, "resolver budget (%d x timeout_ms) spent after: %s", RES_BUDGET,
               b->fail_why);
      b->out[i] = (unsigned char)b->fail_kind;
      rc = evidence_of(b, i, b->fail_kind, w2);
    } else {
      int a = attempt(b, k, i, 1, t, why, sizeof why);
      if (a < 0) {
        rc = a;
      } else {
        if (a) b->out[i] = (unsigned char)a;
        rc = evidence_of(b, i, b->out[i], a ? why : "");
      }
    }
    if (rc) {
      pthread_mutex_lock(&b->lock);
      if (!b->rc) b->rc = rc;
      pthread_mutex_unlock(&b->lock);
    }
  }
}

typedef struct wargs {
  batch *b;
  kid *k;
} wargs;

static void *worker_main(void *p) {
  wargs *w = p;
  worker(w->b, w->k);
  return NULL;
}

static int run(batch *b, size_t n) {
  char why[256] = "";
  int t = request_timeout(b);
  int k = t > 0 ? attempt(b, &b->r->kids[0], 0, n, t, why, sizeof why) : WD_RES_TIMEOUT;
  if (t <= 0) snprintf(why, sizeof why, "resolver budget (%d x timeout_ms) spent", RES_BUDGET);
  if (k < 0) return k;
  if (k == 0 || n == 1) {
    for (size_t i = 0; i < n; i++) {
      if (k) b->out[i] = (unsigned char)k;
      int rc = evidence_of(b, i, b->out[i], k ? why : "");
      if (rc) return rc;
    }
    return 0;
  }
  /* the batch failed as a whole: ask every item on its own */
  pthread_mutex_init(&b->lock, NULL);
  b->next = 0;
  b->n = n;
  b->fail_kind = k;
  b->fail_why = why;
  b->rc = 0;
  pthread_t th[RES_POOL];
  wargs wa[RES_POOL];
  int nth = 0;
  if (!b->callback && t > 0)
    for (int w = 1; w < RES_POOL && (size_t)w < n; w++) {
      wa[nth] = (wargs){b, &b->r->kids[w]};
      if (pthread_create(&th[nth], NULL, worker_main, &wa[nth]) != 0) break;
      nth++;
    }
  worker(b, &b->r->kids[0]); /* the calling thread works too */
  for (int i = 0; i < nth; i++) pthread_join(th[i], NULL);
  pthread_mutex_destroy(&b->lock);
  return b->rc;
}

int wd_resolver_check_until(wd_resolver *r, wd_txn *tx, const wd_strlist *who,
                            const warden_resource *items, size_t n, unsigned char *out,
                            char **evidence, int64_t *budget_end) {
  if (!r || !who || who->n == 0 || (n && (!items || !out))) return WARDEN_EINVAL;
  if (evidence)
    for (size_t i = 0; i < n; i++) evidence[i] = NULL;
  if (n == 0) return 0;
  int rc = 0;
  if (!r->fn && r->type == WD_RESOLVER_GRANTS) {
    if (!tx) return WARDEN_EINVAL;
    rc = grants_check(tx, who, items, n, out, evidence);
  } else if (!r->fn && r->type != WD_RESOLVER_COMMAND) {
    for (size_t i = 0; i < n; i++) out[i] = WD_RES_ALLOW;
  } else {
    int64_t end = budget_end && *budget_end ? *budget_end
                                            : now_ms() + RES_BUDGET * (int64_t)r->timeout_ms;
    if (budget_end) *budget_end = end;
    batch b;
    memset(&b, 0, sizeof b);
    b.r = r;
    b.callback = r->fn != NULL;
    b.who = who;
    b.items = items;
    b.out = out;
    b.evidence = evidence;
    b.deadline = end;
    rc = run(&b, n);
    if (rc == WARDEN_ENOMEM) rc = wd_err(r->db, rc, "out of memory");
  }
  if (rc && evidence)
    for (size_t i = 0; i < n; i++) {
      wd_free(evidence[i]);
      evidence[i] = NULL;
    }
  return rc;
}

int wd_resolver_check(wd_resolver *r, wd_txn *tx, const wd_strlist *who,
                      const warden_resource *items, size_t n, unsigned char *out,
                      char **evidence) {
  return wd_resolver_check_until(r, tx, who, items, n, out, evidence, NULL);
}
