// ffi.js -- libwarden.so through koffi: the struct layouts of
// engine/warden.h, laid out by hand (they are fixed ABI: never reorder),
// and the function prototypes.  Internal to the package.
import koffi from 'koffi';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Where libwarden.so is: $WARDEN_LIB, else the repository's build/. */
export function libraryPath() {
  if (process.env.WARDEN_LIB) return process.env.WARDEN_LIB;
  const inRepo = resolve(here, '../../../build/libwarden.so');
  return existsSync(inRepo) ? inRepo : 'libwarden.so';
}

const lib = koffi.load(libraryPath());

// Opaque handles travel as BigInt addresses (koffi 3): a handle can be
// shared by any number of concurrent calls.
koffi.opaque('warden');
koffi.opaque('warden_results');

export const CreateOpts = koffi.struct('warden_create_opts', {
  dim: 'unsigned int',
  metric: 'const char *',
  config_path: 'const char *',
});
export const OpenOpts = koffi.struct('warden_open_opts', { read_only: 'int' });
export const IngestOpts = koffi.struct('warden_ingest_opts', {
  keep_going: 'int',
  progress: 'void *',
  progress_ctx: 'void *',
});
export const IngestReport = koffi.struct('warden_ingest_report', {
  documents: 'uint64_t',
  replaced: 'uint64_t',
  chunks: 'uint64_t',
  bad_lines: 'uint64_t',
  revision: 'uint64_t',
  errors: 'void *', // char *, freed with warden_free
});
export const Meta = koffi.struct('warden_meta', {
  key: 'const char *',
  type: 'int',
  str: 'const char *',
  i: 'int64_t',
  f: 'double',
  list: 'const char **',
  nlist: 'size_t',
});
export const Doc = koffi.struct('warden_doc', {
  doc_id: 'const char *',
  source: 'const char *',
  namespace_: 'const char *',
  metadata: 'const warden_meta *',
  nmetadata: 'size_t',
  has_acl: 'int',
  allow: 'const char **',
  nallow: 'size_t',
  deny: 'const char **',
  ndeny: 'size_t',
  texts: 'const char **',
  nchunks: 'size_t',
});
export const UpsertOpts = koffi.struct('warden_upsert_opts', {
  keep_going: 'int',
  progress: 'void *',
  progress_ctx: 'void *',
});
export const WriteReport = koffi.struct('warden_write_report', {
  changed: 'uint64_t',
  unchanged: 'uint64_t',
  unknown: 'uint64_t',
  revision: 'uint64_t',
});
export const QueryOpts = koffi.struct('warden_query_opts', {
  principal: 'const char *',
  groups: 'const char **',
  ngroups: 'size_t',
  namespaces: 'const char **',
  nnamespaces: 'size_t',
  filter: 'const char *',
  k: 'unsigned int',
  strategy: 'int',
  min_revision: 'uint64_t',
  explain: 'int',
  agent: 'const char *',
  agent_groups: 'const char **',
  nagent_groups: 'size_t',
  target_recall: 'float',
  mode: 'int',
  text: 'const char *',
});
export const Hit = koffi.struct('warden_hit', {
  doc_id: 'const char *',
  chunk: 'uint32_t',
  score: 'float',
  text: 'const char *',
  source: 'const char *',
  namespace_: 'const char *',
  metadata_json: 'const char *',
  semantic_rank: 'uint32_t',
  lexical_rank: 'uint32_t',
});

export const META = { STRING: 1, INT: 2, FLOAT: 3, BOOL: 4, STRING_LIST: 5 };
export const ERRLEN = 1024;

const f = (sig) => lib.func(sig);
export const C = {
  strerror: f('const char *warden_strerror(int code)'),
  free: f('void warden_free(void *p)'),
  errmsg: f('const char *warden_errmsg(const warden *db)'),
  create: f('int warden_create(const char *dir, const warden_create_opts *opts, _Out_ char *errbuf, size_t errlen)'),
  open: f('int warden_open(const char *dir, const warden_open_opts *opts, _Out_ warden **out, _Out_ char *errbuf, size_t errlen)'),
  close: f('void warden_close(warden *db)'),
  stats: f('int warden_stats(warden *db, _Out_ void **json_out)'),
  dimension: f('unsigned int warden_dimension(const warden *db)'),
  metric: f('int warden_metric(const warden *db)'),
  revision: f('int warden_revision(warden *db, _Out_ uint64_t *out)'),
  aclGet: f('int warden_acl_get(warden *db, const char *doc_id, _Out_ void **json_out)'),
  principalGet: f('int warden_principal_get(warden *db, const char *principal, _Out_ void **json_out)'),
  // the calls run on libuv's pool (.async) take an error buffer: the
  // message is per thread in libwarden (engine/ffi.c)
  queryE: f('int warden_query_e(warden *db, const float *vectors, size_t nq, const warden_query_opts *opts, _Out_ warden_results **out, _Out_ uint8_t *errbuf, size_t errlen)'),
  fetchE: f('int warden_fetch_e(warden *db, const char *doc_id, const warden_query_opts *opts, _Out_ warden_results **out, _Out_ uint8_t *errbuf, size_t errlen)'),
  queryTextE: f('int warden_query_text_e(warden *db, const char *text, const warden_query_opts *opts, _Out_ warden_results **out, _Out_ uint8_t *errbuf, size_t errlen)'),
  upsertE: f('int warden_upsert_e(warden *db, const warden_doc *docs, size_t ndocs, const float *embeddings, size_t nrows, const warden_upsert_opts *opts, _Out_ warden_ingest_report *report, _Out_ uint8_t *errbuf, size_t errlen)'),
  ingestBufferE: f('int warden_ingest_buffer_e(warden *db, const char *name, const char *buf, size_t len, const warden_ingest_opts *opts, _Out_ warden_ingest_report *report, _Out_ uint8_t *errbuf, size_t errlen)'),
  deleteE: f('int warden_delete_e(warden *db, const char **doc_ids, size_t n, _Out_ warden_write_report *report, _Out_ uint8_t *errbuf, size_t errlen)'),
  aclSetE: f('int warden_acl_set_e(warden *db, const char *doc_id, const char **allow, size_t nallow, const char **deny, size_t ndeny, _Out_ warden_write_report *report, _Out_ uint8_t *errbuf, size_t errlen)'),
  principalSetE: f('int warden_principal_set_e(warden *db, const char *principal, const char **groups, size_t ngroups, _Out_ warden_write_report *report, _Out_ uint8_t *errbuf, size_t errlen)'),
  resultsRevision: f('uint64_t warden_results_revision(const warden_results *r)'),
  resultsNqueries: f('size_t warden_results_nqueries(const warden_results *r)'),
  resultsCount: f('size_t warden_results_count(const warden_results *r, size_t qi)'),
  resultsHit: f('const warden_hit *warden_results_hit(const warden_results *r, size_t qi, size_t i)'),
  resultsDegraded: f('int warden_results_degraded(const warden_results *r, size_t qi)'),
  resultsPlan: f('const char *warden_results_plan(const warden_results *r, size_t qi)'),
  resultsFree: f('void warden_results_free(warden_results *r)'),
};

export { koffi };
