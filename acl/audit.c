/*
 * audit.c -- the append-only query audit log (see audit.h).
 *
 * Line format: one compact JSON object per query, members in this order:
 *   time (ISO-8601 UTC, milliseconds), principal, groups (expanded, without
 *   the principal), asserted_groups (the caller's), namespaces, filter (the
 *   filter as JSON when it parses, else the text, else null), revision,
 *   query (index in the batch), k, results [{doc_id, chunk, acl, resolver}],
 *   resolver {denied, error, timeout}, degraded, crc.
 *   On-behalf-of queries (wd_audit_write_obo) add, after asserted_groups:
 *   agent, agent_groups (expanded), agent_asserted_groups; and to each
 *   result agent_acl and agent_resolver, the agent's evidence.
 * Never chunk text.  crc is the CRC-32 (IEEE, as zlib's crc32) of the line
 * as it would be without the crc member: the line is written as
 *   CONTENT-without-its-final-"}"  ,"crc":"xxxxxxxx"}  "\n"
 * so a reader takes the line minus its last 18 bytes, appends "}" and
 * compares, with no JSON re-encoding involved.
 *
 * Durability: each line is one write(2) on an O_APPEND descriptor, under a
 * mutex, so concurrent queries never interleave.  With audit.fsync: true
 * each line is also fdatasync()ed before the query answers (an answer
 * then implies a durable record; see the README for what it costs).  By
 * default there is no fsync per line: measured on this project's ext4 VM, write() of a 600-byte line
 * costs ~1.4 us and write()+fdatasync() 0.3-1.3 ms, more than a query.  A
 * process crash loses nothing already written (it is in the page cache); a
 * power loss can lose the tail the kernel had not written back, and a line
 * torn by it is caught by its CRC.  When the log
 * is reopened and does not end in "\n" (a torn last line), a "\n" is
 * written first, so the torn line stays one damaged line instead of
 * corrupting the next good one.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "acl/audit.h"

struct wd_audit {
  int fd;
  int fsync; /* audit.fsync: fdatasync each line before the query answers */
  char *path;
  pthread_mutex_t lock;
};

/* ----------------------------------------------------------------- crc */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}

/* crc32 continued from crc (start with 0), as zlib's crc32(). */
static uint32_t crc32_update(uint32_t crc, const void *buf, size_t n) {
  pthread_once(&crc_once, crc_init);
  const unsigned char *p = buf;
  crc = ~crc;
  while (n--) crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

#define CRC_SUFFIX_LEN 18 /* ,"crc":"xxxxxxxx"} */

/* ------------------------------------------------------------- open/close */

int wd_audit_create(warden *db, const char *p, int fsync, const char *dir, wd_audit **out) {
  if (!p) {
    *out = NULL;
    return 0;
  }
  wd_audit *a = wd_calloc(1, sizeof *a);
  if (!a) return wd_err(db, WARDEN_ENOMEM, "out of memory");
  a->fd = -1;
  a->fsync = fsync;
  pthread_mutex_init(&a->lock, NULL);
  a->path = p[0] == '/' ? wd_strdup(p) : wd_asprintf("%s/%s", dir ? dir : ".", p);
  if (!a->path) {
    wd_audit_close(a);
    return wd_err(db, WARDEN_ENOMEM, "out of memory");
  }
  a->fd = open(a->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (a->fd < 0) {
    int rc = wd_err(db, WARDEN_EIO, "%s: %s", a->path, strerror(errno));
    wd_audit_close(a);
    return rc;
  }
  struct stat st;
  char last = '\n';
  if (fstat(a->fd, &st) == 0 && st.st_size > 0 && pread(a->fd, &last, 1, st.st_size - 1) == 1 &&
      last != '\n' && write(a->fd, "\n", 1) != 1) {
    int rc = wd_err(db, WARDEN_EIO, "%s: %s", a->path, strerror(errno));
    wd_audit_close(a);
    return rc;
  }
  *out = a;
  return 0;
}

void wd_audit_close(wd_audit *a) {
  if (!a) return;
  if (a->fd >= 0) close(a->fd);
  wd_free(a->path);
  pthread_mutex_destroy(&a->lock);
  wd_free(a);
}

/* ----------------------------------------------------------------- write */

/* A JSON string, or a marker when s is not valid UTF-8, or null. */
static json_t *jstr(const char *s) {
  if (!s) return json_null();
  json_t *j = json_string(s);
  return j ? j : json_string("(invalid UTF-8)");
}

static json_t *jstrv(const char *const *v, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++) json_array_append_new(a, jstr(v[i]));
  return a;
}

static json_t *build_record(const wd_audit_query *q, const wd_audit_agent *ag) {
  const warden_query_opts *o = q->opts;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char tbuf[64], when[80];
  strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when, sizeof when, "%s.%03ldZ", tbuf, ts.tv_nsec / 1000000);

  json_t *r = json_object();
  if (!r) return NULL;
  int bad = json_object_set_new(r, "time", json_string(when));
  bad |= json_object_set_new(r, "principal", jstr(o && o->principal ? o->principal
                                                  : q->who && q->who->n ? q->who->v[0] : NULL));
  bad |= json_object_set_new(r, "groups", q->who && q->who->n > 1
                                              ? jstrv((const char *const *)q->who->v + 1, q->who->n - 1)
                                              : json_array());
  bad |= json_object_set_new(r, "asserted_groups", jstrv(o ? o->groups : NULL, o && o->groups ? o->ngroups : 0));
  if (ag && ag->who && ag->who->n) { /* on-behalf-of */
    const wd_strlist *w = ag->who;
    bad |= json_object_set_new(r, "agent", jstr(w->v[0]));
    bad |= json_object_set_new(r, "agent_groups",
                               w->n > 1 ? jstrv((const char *const *)w->v + 1, w->n - 1) : json_array());
    bad |= json_object_set_new(r, "agent_asserted_groups",
                               jstrv(o ? o->agent_groups : NULL, o && o->agent_groups ? o->nagent_groups : 0));
  }
  bad |= json_object_set_new(r, "namespaces",
                             jstrv(o ? o->namespaces : NULL, o && o->namespaces ? o->nnamespaces : 0));
  json_t *f = json_null();
  if (o && o->filter) {
    json_error_t je;
    json_decref(f);
    f = json_loads(o->filter, JSON_DECODE_ANY, &je);
    if (!f) f = jstr(o->filter);
  }
  bad |= json_object_set_new(r, "filter", f);
  bad |= json_object_set_new(r, "revision", json_integer((json_int_t)q->revision));
  bad |= json_object_set_new(r, "query", json_integer((json_int_t)q->query_index));
  bad |= json_object_set_new(r, "k", json_integer(o && o->k ? (json_int_t)o->k : 10));
  json_t *res = json_array();
  for (size_t i = 0; res && i < q->nhits; i++) {
    const wd_audit_hit *h = &q->hits[i];
    json_t *e = json_object();
    if (!e) {
      bad = 1;
      break;
    }
    json_object_set_new(e, "doc_id", jstr(h->doc_id));
    json_object_set_new(e, "chunk", json_integer(h->chunk));
    json_object_set_new(e, "acl", jstr(h->acl_evidence));
    json_object_set_new(e, "resolver", jstr(h->resolver_evidence));
    if (ag && ag->who) {
      json_object_set_new(e, "agent_acl", jstr(ag->acl_evidence ? ag->acl_evidence[i] : NULL));
      json_object_set_new(e, "agent_resolver",
                          jstr(ag->resolver_evidence ? ag->resolver_evidence[i] : NULL));
    }
    bad |= json_array_append_new(res, e);
  }
  bad |= json_object_set_new(r, "results", res);
  bad |= json_object_set_new(r, "resolver", json_pack("{s:I,s:I,s:I}", "denied",
                                                      (json_int_t)q->resolver_denied, "error",
                                                      (json_int_t)q->resolver_errors, "timeout",
                                                      (json_int_t)q->resolver_timeouts));
  bad |= json_object_set_new(r, "degraded", json_boolean(q->degraded));
  if (bad) {
    json_decref(r);
    return NULL;
  }
  return r;
}

const char *wd_audit_path(const wd_audit *a) { return a ? a->path : NULL; }

int wd_audit_write(wd_audit *a, warden *db, const wd_audit_query *q) {
  return wd_audit_write_obo(a, db, q, NULL);
}

int wd_audit_write_obo(wd_audit *a, warden *db, const wd_audit_query *q,
                       const wd_audit_agent *agent) {
  if (!a) return 0;
  if (!q) return wd_err(db, WARDEN_EINVAL, "audit: no record");
  json_t *rec = build_record(q, agent);
  char *content = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
  json_decref(rec);
  size_t cl = content ? strlen(content) : 0;
  if (!content || cl < 2 || content[cl - 1] != '}') {
    free(content);
    return wd_err(db, WARDEN_ENOMEM, "audit: out of memory");
  }
  uint32_t crc = crc32_update(0, content, cl);
  char *line = wd_malloc(cl + CRC_SUFFIX_LEN + 2);
  if (!line) {
    free(content);
    return wd_err(db, WARDEN_ENOMEM, "audit: out of memory");
  }
  memcpy(line, content, cl - 1);
  snprintf(line + cl - 1, CRC_SUFFIX_LEN + 3, ",\"crc\":\"%08x\"}\n", (unsigned)crc);
  size_t len = cl - 1 + CRC_SUFFIX_LEN + 1;
  free(content);
  int rc = 0;
  pthread_mutex_lock(&a->lock);
  ssize_t w;
  do {
    w = write(a->fd, line, len);
  } while (w < 0 && errno == EINTR);
  if (w != (ssize_t)len) {
    int e = w < 0 ? errno : ENOSPC;
    /* end the torn line so the next record starts on a line of its own */
    if (w > 0 && write(a->fd, "\n", 1) < 0) {
    }
    rc = wd_err(db, WARDEN_EIO, "audit: %s: %s", a->path, strerror(e));
  } else if (a->fsync && fdatasync(a->fd) != 0) {
    /* the line may not be durable: the query must not answer */
    rc = wd_err(db, WARDEN_EIO, "audit: %s: fdatasync: %s", a->path, strerror(errno));
  }
  pthread_mutex_unlock(&a->lock);
  wd_free(line);
  return rc;
}

/* ---------------------------------------------------------------- verify */

/* Does line (without its "\n") carry a matching crc? */
static int line_ok(const char *s, size_t n) {
  if (n < CRC_SUFFIX_LEN + 2) return 0;
  const char *suf = s + n - CRC_SUFFIX_LEN;
  if (memcmp(suf, ",\"crc\":\"", 8) != 0 || memcmp(suf + 16, "\"}", 2) != 0) return 0;
  uint32_t want = 0;
  for (int i = 0; i < 8; i++) {
    char c = suf[8 + i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return 0;
    want = want << 4 | (uint32_t)d;
  }
  uint32_t crc = crc32_update(0, s, n - CRC_SUFFIX_LEN);
  crc = crc32_update(crc, "}", 1);
  return crc == want;
}

int64_t wd_audit_verify(const char *path, int *torn, uint64_t *bad) {
  if (!path) return WARDEN_EINVAL;
  FILE *f = fopen(path, "rb");
  if (!f) return WARDEN_EIO;
  char *buf = NULL;
  size_t cap = 0;
  ssize_t len;
  int64_t good = 0;
  uint64_t nbad = 0;
  int last_bad = 0, is_torn = 0;
  while ((len = getline(&buf, &cap, f)) >= 0) {
    if (len == 0) continue;
    if (buf[len - 1] != '\n') { /* the file ends mid-line */
      is_torn = 1;
      break;
    }
    if (len == 1) continue; /* a blank line carries no record */
    if (line_ok(buf, (size_t)len - 1)) {
      good++;
      last_bad = 0;
    } else {
      nbad++;
      last_bad = 1;
    }
  }
  int err = ferror(f);
  free(buf);
  fclose(f);
  if (err) return WARDEN_EIO;
  if (!is_torn && last_bad) { /* a complete last line with a bad crc */
    is_torn = 1;
    nbad--;
  }
  if (torn) *torn = is_torn;
  if (bad) *bad = nbad;
  return good;
}
