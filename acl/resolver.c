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
 * a failed batch of n > 1 is split in halves and each half retried, down to
 * single resources, within a budget: at most 2*ceil(log2 n)+3 attempts
 * (enough to isolate one bad resource by bisection) and, for the command
 * resolver, a total of 2 x timeout_ms per check (a half started near the
 * end of the budget gets only what is left; a half never started takes the
 * failure of its parent).  The callback resolver has no timeout.
 *
 * Threading: check is thread-safe.  The child is used under r->lock, one
 * request at a time; grants and the callback run unlocked (the callback
 * must itself be thread-safe, warden.h says so).  set_callback must not
 * race with queries (warden.h).
 */
#include <errno.h>
#include <fcntl.h>
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

#include "grants.h"
#include "resolver.h"

extern char **environ;

#define RES_MAX_LINE (64u << 20) /* longest answer line accepted */
#define RES_CLOSE_WAIT_MS 200    /* grace period for the child at close */

struct wd_resolver {
  warden *db;
  int type;              /* WD_RESOLVER_* from warden.yaml */
  warden_resolver_fn fn; /* callback; when set it replaces type */
  void *ctx;
  /* command resolver: */
  char **argv;           /* NULL-terminated copy of resolver.command */
  char *cwd;             /* the collection directory, absolute */
  unsigned timeout_ms;
  pthread_mutex_t lock;  /* guards everything below */
  pid_t pid;             /* the child, 0 when none */
  int fd;                /* our end of the socketpair, -1 when none */
  long long next_id;
  char *buf;             /* bytes read from the child, not yet consumed */
  size_t len, cap;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ lifecycle */

int wd_resolver_open(warden *db, wd_resolver **out) {
  wd_resolver *r = wd_calloc(1, sizeof *r);
  if (!r) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  r->db = db;
  r->type = db->cfg.resolver_type;
  r->timeout_ms = db->cfg.resolver_timeout_ms ? db->cfg.resolver_timeout_ms : 500;
  r->fd = -1;
  pthread_mutex_init(&r->lock, NULL);
  if (r->type == WD_RESOLVER_COMMAND) {
    if (db->cfg.nresolver_cmd == 0 || !db->cfg.resolver_cmd || !db->cfg.resolver_cmd[0][0]) {
      wd_resolver_close(r);
      return wd_err(db, WARDEN_ERESOLVER, "resolver.command is empty");
    }
    char *abs = db->dir ? realpath(db->dir, NULL) : NULL;
    r->cwd = wd_strdup(abs ? abs : (db->dir ? db->dir : "."));
    free(abs);
    r->argv = wd_calloc(db->cfg.nresolver_cmd + 1, sizeof *r->argv);
    int oom = !r->cwd || !r->argv;
    for (size_t i = 0; !oom && i < db->cfg.nresolver_cmd; i++) {
      const char *a = db->cfg.resolver_cmd[i];
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
static void child_kill(wd_resolver *r) {
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
static void child_stop(wd_resolver *r) {
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
  child_stop(r);
  if (r->argv)
    for (size_t i = 0; r->argv[i]; i++) wd_free(r->argv[i]);
  wd_free(r->argv);
  wd_free(r->cwd);
  wd_free(r->buf);
  pthread_mutex_destroy(&r->lock);
  wd_free(r);
}

void wd_resolver_set_callback(wd_resolver *r, warden_resolver_fn fn, void *ctx) {
  if (!r) return;
  r->fn = fn;
  r->ctx = fn ? ctx : NULL;
}

int warden_set_resolver(warden *db, warden_resolver_fn fn, void *ctx) {
  if (!db) return WARDEN_EINVAL;
  int rc = wd_check_pid(db);
  if (rc) return rc;
  wd_err_clear(db);
  if (!db->resolver) return wd_err(db, WARDEN_EINVAL, "set resolver: handle is not open");
  wd_resolver_set_callback(db->resolver, fn, ctx);
  return 0;
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
  if (!s->arrays) return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
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
          return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
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
    if (!evidence[i]) rc = wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
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
    return wd_err(tx->db, WARDEN_ENOMEM, "out of memory");
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

static int child_start(wd_resolver *r, char *why, size_t wl) {
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
  posix_spawn_file_actions_addchdir_np(&fa, r->cwd);
  sigset_t none, dfl;
  sigemptyset(&none);
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGPIPE);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &dfl);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int e = posix_spawnp(&pid, r->argv[0], &fa, &at, r->argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  close(sv[1]);
  if (e) {
    close(sv[0]);
    snprintf(why, wl, "cannot start %.200s: %s", r->argv[0], strerror(e));
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
static int child_read(wd_resolver *r, int wait_ms) {
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

static int send_all(wd_resolver *r, const char *p, size_t n, int64_t deadline) {
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
      if (!json_is_boolean(b)) {
        snprintf(why, wl, "allowed[%zu] is not a boolean", i);
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
static int command_attempt(wd_resolver *r, const wd_strlist *who,
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
  if (r->pid <= 0 && child_start(r, why, wl)) ret = WD_RES_ERROR;
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
    for (size_t i = 0; i < n; i++) out[i] = a[i] ? WD_RES_ALLOW : WD_RES_DENY;
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
  int64_t deadline; /* command only */
  int attempts_left;
} batch;

static int mark(batch *b, size_t lo, size_t n, int kind, const char *why) {
  const char *name = b->callback ? "callback" : "command";
  for (size_t i = lo; i < lo + n; i++) {
    b->out[i] = (unsigned char)kind;
    if (!b->evidence) continue;
    if (kind == WD_RES_ALLOW || kind == WD_RES_DENY)
      b->evidence[i] = wd_asprintf("%s: %s", name, kind == WD_RES_ALLOW ? "allowed" : "denied");
    else
      b->evidence[i] = wd_asprintf("%s: %s: %s", name, kind == WD_RES_TIMEOUT ? "timeout" : "error", why);
    if (!b->evidence[i]) return WARDEN_ENOMEM;
  }
  return 0;
}

/* Resolve items[lo, lo+n); parent_kind/parent_why: how the enclosing batch
 * failed (0 for the first attempt). */
static int run(batch *b, size_t lo, size_t n, int parent_kind, const char *parent_why) {
  int timeout = (int)b->r->timeout_ms;
  if (!b->callback) {
    int64_t left = b->deadline - now_ms();
    if (left < timeout) timeout = (int)left;
  }
  if (parent_kind && (b->attempts_left <= 0 || timeout <= 0))
    return mark(b, lo, n, parent_kind, parent_why); /* budget spent */
  b->attempts_left--;
  char why[256] = "";
  int k = b->callback ? callback_attempt(b->r, b->who, b->items + lo, n, b->out + lo, why, sizeof why)
                      : command_attempt(b->r, b->who, b->items + lo, n, b->out + lo,
                                        timeout > 0 ? timeout : 1, why, sizeof why);
  if (k < 0) return k;
  if (k == 0) {
    if (!b->evidence) return 0;
    for (size_t i = lo; i < lo + n; i++) {
      b->evidence[i] = wd_asprintf("%s: %s", b->callback ? "callback" : "command",
                                   b->out[i] == WD_RES_ALLOW ? "allowed" : "denied");
      if (!b->evidence[i]) return WARDEN_ENOMEM;
    }
    return 0;
  }
  if (n == 1) return mark(b, lo, 1, k, why);
  size_t h = n / 2;
  int rc = run(b, lo, h, k, why);
  return rc ? rc : run(b, lo + h, n - h, k, why);
}

int wd_resolver_check(wd_resolver *r, wd_txn *tx, const wd_strlist *who,
                      const warden_resource *items, size_t n, unsigned char *out,
                      char **evidence) {
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
    int lg = 0;
    while (((size_t)1 << lg) < n && lg < 62) lg++;
    batch b = {r, r->fn != NULL, who, items, out, evidence,
               now_ms() + 2 * (int64_t)r->timeout_ms, 2 * lg + 3};
    rc = run(&b, 0, n, 0, "");
    if (rc == WARDEN_ENOMEM) rc = wd_err(r->db, rc, "out of memory");
  }
  if (rc && evidence)
    for (size_t i = 0; i < n; i++) {
      wd_free(evidence[i]);
      evidence[i] = NULL;
    }
  return rc;
}
