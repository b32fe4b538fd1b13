// collection.js -- Collection: one open warden collection (libwarden.so
// through koffi).  Queries and writes run on libuv's thread pool (koffi's
// async calls), so they never block the event loop, and any number may be
// in flight at once on one handle (libwarden is thread-safe per handle).
import { C, koffi, Hit, ERRLEN, META } from './ffi.js';
import { fromCode, invalid, invalidData, WardenError } from './errors.js';

const STRATEGIES = { auto: 0, exact: 1, ann: 2 };
const MODES = { semantic: 0, lexical: 1, hybrid: 2 };
const METRICS = ['cosine', 'l2', 'ip'];

/** The hits of one query, best first, with `revision`, `degraded` and `plan`. */
export class Hits extends Array {
  // map/filter/slice of the hits give plain arrays
  static get [Symbol.species]() {
    return Array;
  }
}

function cstr(buf) {
  const n = buf.indexOf(0);
  return buf.toString('utf8', 0, n < 0 ? buf.length : n);
}

function takeString(ptr) {
  if (!ptr) return null;
  try {
    return koffi.decode(ptr, 'char', -1);
  } finally {
    C.free(ptr);
  }
}

function checkStr(s, what, { optional = false } = {}) {
  if (s === undefined || s === null) {
    if (optional) return null;
    throw invalid(`${what}: required`);
  }
  if (typeof s !== 'string') throw invalid(`${what}: expected a string, got ${typeof s}`);
  if (s.includes('\0')) throw invalid(`${what}: contains a NUL character`);
  return s;
}

function strList(v, what) {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') v = [v];
  if (!Array.isArray(v)) throw invalid(`${what}: expected an array of strings`);
  return v.map((s, i) => checkStr(s, `${what}[${i}]`));
}

/** A LangChain/LlamaIndex-style source into a URI warden accepts. */
export function sourceUri(source, docId) {
  if (source === undefined || source === null || source === '') return `urn:warden:${encodeURIComponent(docId)}`;
  if (typeof source !== 'string') return source; // the library reports the type
  if (/^[A-Za-z][A-Za-z0-9+.-]*:./.test(source)) return source;
  if (source.startsWith('/')) return `file://${source}`;
  return `file:${source}`;
}

function metaOf(metadata, i) {
  const out = [];
  if (metadata === undefined || metadata === null) return out;
  if (typeof metadata !== 'object' || Array.isArray(metadata))
    throw invalidData(`docs[${i}].metadata: expected an object`);
  for (const [key, v] of Object.entries(metadata)) {
    const m = { key, type: 0, str: null, i: 0, f: 0, list: null, nlist: 0 };
    const where = `docs[${i}].metadata.${key}`;
    if (key.includes('\0')) throw invalidData(`${where}: key contains a NUL character`);
    if (typeof v === 'string') {
      if (v.includes('\0')) throw invalidData(`${where}: contains a NUL character`);
      Object.assign(m, { type: META.STRING, str: v });
    } else if (typeof v === 'boolean') {
      Object.assign(m, { type: META.BOOL, i: v ? 1 : 0 });
    } else if (typeof v === 'bigint') {
      Object.assign(m, { type: META.INT, i: v });
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw invalidData(`${where}: not a finite number`);
      if (Number.isSafeInteger(v)) Object.assign(m, { type: META.INT, i: v });
      else Object.assign(m, { type: META.FLOAT, f: v });
    } else if (Array.isArray(v) && v.every((s) => typeof s === 'string')) {
      if (v.some((s) => s.includes('\0'))) throw invalidData(`${where}: contains a NUL character`);
      Object.assign(m, { type: META.STRING_LIST, list: v, nlist: v.length });
    } else {
      throw invalidData(`${where}: expected a string, number, boolean or array of strings`);
    }
    out.push(m);
  }
  return out;
}

/** Embeddings as one row-major Float32Array of rows * dim. */
function f32Rows(x, dim, what) {
  if (x instanceof Float32Array) {
    if (x.length % dim !== 0) throw invalid(`${what}: ${x.length} floats is not a multiple of the dimension ${dim}`);
    return x;
  }
  if (ArrayBuffer.isView(x)) return f32Rows(Float32Array.from(x), dim, what);
  if (!Array.isArray(x)) throw invalid(`${what}: expected a Float32Array or an array of arrays of numbers`);
  if (x.length === 0) return new Float32Array(0);
  if (typeof x[0] === 'number') return f32Rows(Float32Array.from(x), dim, what);
  const out = new Float32Array(x.length * dim);
  x.forEach((row, r) => {
    if (!row || row.length !== dim)
      throw invalid(`${what}[${r}]: expected ${dim} numbers, got ${row?.length ?? typeof row}`);
    out.set(row, r * dim);
  });
  return out;
}

export class Collection {
  #db;
  #inflight = 0;
  #closing = null;
  #closed = false;

  /** @private use Collection.open / Collection.create */
  constructor(db, path) {
    this.#db = db;
    this.path = path;
    this.dimension = C.dimension(db);
    this.metric = METRICS[C.metric(db)] ?? 'cosine';
  }

  /** Create a new collection in `path` (a directory) and open it. */
  static async create(path, { dim, metric, config } = {}) {
    checkStr(path, 'path');
    const eb = Buffer.alloc(ERRLEN);
    const rc = C.create(path, { dim: dim ?? 0, metric: metric ?? null, config_path: config ?? null }, eb, ERRLEN);
    if (rc) throw fromCode(rc, cstr(eb));
    return Collection.open(path);
  }

  /** Open the collection in `path`.  readOnly: queries only. */
  static async open(path, { readOnly = false } = {}) {
    checkStr(path, 'path');
    const eb = Buffer.alloc(ERRLEN);
    const out = [null];
    const rc = await new Promise((res, rej) =>
      C.open.async(path, { read_only: readOnly ? 1 : 0 }, out, eb, ERRLEN, (e, r) => (e ? rej(e) : res(r))));
    if (rc) throw fromCode(rc, cstr(eb));
    return new Collection(out[0], path);
  }

  #handle() {
    if (this.#closed || this.#closing) throw invalid('the collection is closed');
    return this.#db;
  }

  /** Run fn.async(db, ...args, errbuf) off the main thread; reject with the typed error. */
  async #call(fn, ...args) {
    const db = this.#handle();
    const eb = Buffer.alloc(ERRLEN);
    this.#inflight++;
    try {
      const rc = await new Promise((res, rej) =>
        fn.async(db, ...args, eb, ERRLEN, (e, r) => (e ? rej(e) : res(r))));
      if (rc) throw fromCode(rc, cstr(eb) || C.strerror(rc));
    } finally {
      if (--this.#inflight === 0 && this.#closing) this.#closing();
    }
  }

  #json(fn, ...args) {
    const db = this.#handle();
    const out = [null];
    const rc = fn(db, ...args, out);
    if (rc) throw fromCode(rc, C.errmsg(db) || C.strerror(rc));
    return JSON.parse(takeString(out[0]));
  }

  /** Close the handle once the calls in flight have finished; later calls fail. */
  close() {
    if (this.#closed) return Promise.resolve();
    if (this.#closing) return this.#closingPromise;
    this.#closingPromise = new Promise((res) => {
      this.#closing = () => {
        this.#closed = true;
        C.close(this.#db);
        this.#db = null;
        res();
      };
    });
    if (this.#inflight === 0) this.#closing();
    return this.#closingPromise;
  }
  #closingPromise;

  get closed() {
    return this.#closed || !!this.#closing;
  }

  /** The newest committed revision (reads a fresh snapshot). */
  revision() {
    const db = this.#handle();
    const out = [0];
    const rc = C.revision(db, out);
    if (rc) throw fromCode(rc, C.errmsg(db));
    return Number(out[0]);
  }

  /** Collection facts (documents, chunks, dimension, metric, revision, index...). */
  stats() {
    return this.#json(C.stats);
  }

  // ------------------------------------------------------------ writes

  /**
   * Insert or replace documents (by doc_id) in one transaction.
   * documents: [{doc_id, source, namespace?, metadata?, acl?: {allow, deny},
   * chunks: [{text} | "text", ...]}]; embeddings: one row per chunk in
   * document and chunk order (Float32Array of rows*dim, or number[][]), or
   * null when the collection has an embedder.  Resolves to the revision
   * committed; nothing is committed when a document is bad (InvalidData
   * naming docs[I].FIELD) unless keepGoing.
   */
  async upsert(documents, embeddings = null, { keepGoing = false } = {}) {
    return (await this.upsertReport(documents, embeddings, { keepGoing })).revision;
  }

  /** upsert(), resolving to the whole report: {revision, documents, replaced, chunks, badLines, errors}. */
  async upsertReport(documents, embeddings = null, { keepGoing = false } = {}) {
    if (!Array.isArray(documents)) throw invalid('upsert: documents must be an array of objects');
    const docs = documents.map((d, i) => {
      if (!d || typeof d !== 'object') throw invalidData(`docs[${i}]: expected an object`);
      const chunks = d.chunks;
      if (!Array.isArray(chunks)) throw invalidData(`docs[${i}].chunks: expected an array of chunks`);
      const texts = chunks.map((c, j) => {
        const t = typeof c === 'string' ? c : c?.text;
        if (typeof t !== 'string') throw invalidData(`docs[${i}].chunks[${j}].text: expected a string`);
        if (t.includes('\0')) throw invalidData(`docs[${i}].chunks[${j}].text: contains a NUL character`);
        return t;
      });
      const meta = metaOf(d.metadata, i);
      const acl = d.acl;
      if (acl !== undefined && acl !== null && (typeof acl !== 'object' || Array.isArray(acl)))
        throw invalidData(`docs[${i}].acl: expected {allow, deny}`);
      const allow = acl ? strList(acl.allow ?? [], `docs[${i}].acl.allow`) : null;
      const deny = acl ? strList(acl.deny ?? [], `docs[${i}].acl.deny`) : null;
      for (const [f, v] of [['doc_id', d.doc_id], ['source', d.source], ['namespace', d.namespace]])
        if (typeof v === 'string' && v.includes('\0')) throw invalidData(`docs[${i}].${f}: contains a NUL character`);
      return {
        doc_id: d.doc_id ?? null,
        source: d.source ?? null,
        namespace_: d.namespace ?? null,
        metadata: meta.length ? meta : null,
        nmetadata: meta.length,
        has_acl: acl ? 1 : 0,
        allow: allow?.length ? allow : null,
        nallow: allow?.length ?? 0,
        deny: deny?.length ? deny : null,
        ndeny: deny?.length ?? 0,
        texts,
        nchunks: texts.length,
      };
    });
    let emb = null;
    const total = docs.reduce((s, d) => s + d.nchunks, 0);
    if (embeddings === null || embeddings === undefined) {
      const all = documents.every((d) => d.chunks.every((c) => c && typeof c === 'object' && c.embedding));
      if (all && total) embeddings = documents.flatMap((d) => d.chunks.map((c) => c.embedding));
    }
    if (embeddings !== null && embeddings !== undefined) {
      emb = f32Rows(embeddings, this.dimension, 'embeddings');
      if (emb.length / this.dimension !== total)
        throw invalid(`upsert: embeddings has ${emb.length / this.dimension} rows, the documents have ${total} chunks`);
    }
    if (!docs.length) return { revision: this.revision(), documents: 0, replaced: 0, chunks: 0, badLines: 0, errors: [] };
    const rep = {};
    await this.#call(C.upsertE, docs, docs.length, emb, emb ? emb.length / this.dimension : 0,
      { keep_going: keepGoing ? 1 : 0, progress: null, progress_ctx: null }, rep);
    const errors = takeString(rep.errors);
    return {
      revision: Number(rep.revision),
      documents: Number(rep.documents),
      replaced: Number(rep.replaced),
      chunks: Number(rep.chunks),
      badLines: Number(rep.bad_lines),
      errors: errors ? errors.split('\n') : [],
    };
  }

  /** Delete documents (all their chunks); unknown ids are no error.  Resolves to the revision. */
  async delete(docIds) {
    const ids = strList(docIds, 'docIds') ?? [];
    if (!ids.length) return this.revision();
    const rep = {};
    await this.#call(C.deleteE, ids, ids.length, rep);
    return Number(rep.revision);
  }

  /**
   * Replace a document's allow and/or deny list (an omitted list is kept;
   * [] sets it empty).  Vectors are not touched.  Resolves to the revision;
   * every query that starts after it resolved sees the change.
   */
  async setAcl(docId, { allow, deny } = {}) {
    checkStr(docId, 'docId');
    const a = strList(allow, 'allow');
    const d = strList(deny, 'deny');
    const rep = {};
    // a list given empty must reach C as non-NULL: koffi passes [] as NULL
    const ptr = (l) => (l === null ? null : l.length ? l : EMPTY);
    await this.#call(C.aclSetE, docId, ptr(a), a?.length ?? 0, ptr(d), d?.length ?? 0, rep);
    return Number(rep.revision);
  }

  /** The document's ACL: {doc_id, allow, deny}.  NotFound when unknown. */
  getAcl(docId) {
    checkStr(docId, 'docId');
    return this.#json(C.aclGet, docId);
  }

  /** Set the groups a principal belongs to in the collection's directory ([] removes it). */
  async setGroups(principal, groups) {
    checkStr(principal, 'principal');
    const g = strList(groups, 'groups') ?? [];
    const rep = {};
    await this.#call(C.principalSetE, principal, g.length ? g : EMPTY, g.length, rep);
    return Number(rep.revision);
  }

  /** {principal, groups, expanded} from the directory. */
  getGroups(principal) {
    checkStr(principal, 'principal');
    return this.#json(C.principalGet, principal);
  }

  // ------------------------------------------------------------- query

  #queryOpts(o) {
    if (!o || typeof o !== 'object') throw invalid('query: options with a principal are required');
    const principal = checkStr(o.principal, 'query: principal');
    const groups = strList(o.groups, 'query: groups') ?? [];
    const namespaces = strList(o.namespaces, 'query: namespaces');
    const agent = checkStr(o.agent, 'query: agent', { optional: true });
    const agentGroups = strList(o.agentGroups, 'query: agentGroups') ?? [];
    let filter = o.filter ?? null;
    if (filter !== null && typeof filter !== 'string') filter = JSON.stringify(filter);
    if (filter !== null && filter.includes('\0')) throw invalid('query: filter: contains a NUL character');
    const k = o.k ?? 10;
    if (!Number.isInteger(k) || k < 1) throw invalid('query: k must be 1..10000');
    const strategy = STRATEGIES[o.strategy ?? 'auto'];
    if (strategy === undefined) throw invalid(`query: strategy must be one of ${Object.keys(STRATEGIES)}`);
    const mode = MODES[o.mode ?? 'semantic'];
    if (mode === undefined) throw invalid(`query: mode must be one of ${Object.keys(MODES)}`);
    const minRevision = o.minRevision ?? 0;
    if (!Number.isInteger(minRevision) || minRevision < 0) throw invalid('query: minRevision must be an integer >= 0');
    return {
      principal,
      groups: groups.length ? groups : null,
      ngroups: groups.length,
      namespaces: namespaces === null ? null : namespaces.length ? namespaces : EMPTY,
      nnamespaces: namespaces?.length ?? 0,
      filter,
      k: Math.min(k, 0xffffffff),
      strategy,
      min_revision: minRevision,
      explain: o.explain ? 1 : 0,
      agent,
      agent_groups: agentGroups.length ? agentGroups : null,
      nagent_groups: agentGroups.length,
      target_recall: o.targetRecall ?? 0,
      mode,
      text: checkStr(o.text, 'query: text', { optional: true }),
    };
  }

  /**
   * The k nearest chunks the principal may read.  vector: one embedding
   * (Float32Array | number[]) -> Hits; number[][] -> Hits[] (one snapshot).
   * options: {principal (required: from your authentication, never from a
   * prompt), groups, k, filter (object or JSON text, Mongo or Bedrock
   * dialect), namespaces, minRevision, agent, agentGroups (on-behalf-of:
   * both must be allowed), strategy, explain}.
   */
  async query(vector, options) {
    const qo = this.#queryOpts(options);
    const batch = Array.isArray(vector) && vector.length > 0 && typeof vector[0] !== 'number';
    const v = f32Rows(vector, this.dimension, 'vector');
    const nq = v.length / this.dimension;
    if (nq === 0) throw invalid('query: a vector is required');
    if (!batch && nq !== 1) throw invalid(`query: expected ${this.dimension} numbers, got ${v.length}`);
    const out = [null];
    await this.#call(C.queryE, v, nq, qo, out);
    const all = this.#collect(out[0]);
    return batch ? all : all[0];
  }

  /** The same for a query text, embedded by the collection's embedder. */
  async queryText(text, options) {
    checkStr(text, 'query: text');
    const qo = this.#queryOpts(options);
    const out = [null];
    await this.#call(C.queryTextE, text, qo, out);
    return this.#collect(out[0])[0];
  }

  /**
   * Every chunk of one document (in chunk order) that the principal -- and,
   * with options.agent, the agent -- may read, under the same checks as a
   * query (filter and namespaces apply; k is ignored).  An unknown doc_id
   * and an unreadable one both give no hits.
   */
  async fetch(docId, options) {
    checkStr(docId, 'fetch: docId');
    const qo = this.#queryOpts({ ...options, k: 1 });
    const out = [null];
    await this.#call(C.fetchE, docId, qo, out);
    return this.#collect(out[0])[0];
  }

  #collect(r) {
    try {
      const revision = Number(C.resultsRevision(r));
      const all = [];
      const nq = Number(C.resultsNqueries(r));
      for (let q = 0; q < nq; q++) {
        const hits = new Hits();
        const n = Number(C.resultsCount(r, q));
        for (let i = 0; i < n; i++) {
          const h = koffi.decode(C.resultsHit(r, q, i), Hit);
          hits.push({
            doc_id: h.doc_id,
            chunk: h.chunk,
            score: h.score,
            text: h.text,
            source: h.source,
            namespace: h.namespace_,
            metadata: h.metadata_json ? JSON.parse(h.metadata_json) : {},
            semantic_rank: h.semantic_rank,
            lexical_rank: h.lexical_rank,
          });
        }
        hits.revision = revision;
        hits.degraded = !!C.resultsDegraded(r, q);
        const plan = C.resultsPlan(r, q);
        hits.plan = plan ? JSON.parse(plan) : null;
        all.push(hits);
      }
      return all;
    } finally {
      C.resultsFree(r);
    }
  }
}

// A non-NULL pointer for an empty list (koffi passes [] as NULL, and the
// library tells "keep" (NULL) from "set empty" (non-NULL, n == 0)).
const EMPTY = [''];

export { WardenError };
