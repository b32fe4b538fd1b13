// langchain.js -- WardenVectorStore, a LangChain.js VectorStore over a
// warden Collection.  Searches run as a principal bound to the store view
// or the retriever (store.asRetriever({principal, groups, ...})); a search
// without one is refused, never answered as "everyone".
import { VectorStore, VectorStoreRetriever } from '@langchain/core/vectorstores';
import { Document } from '@langchain/core/documents';
import { randomUUID } from 'node:crypto';
import { invalid } from './errors.js';
import { Collection, sourceUri } from './collection.js';

const IDENTITY = Symbol('warden.identity');

/**
 * Turn LangChain Documents (+ one vector each) into warden documents: the
 * Documents that share a metadata.doc_id become the chunks of one warden
 * document, in order.  metadata.doc_id / source / namespace / acl are
 * taken out; the rest is the document's metadata (the first Document of a
 * doc_id gives it).  Returns {docs, rows, ids}.
 */
export function toWardenDocs(documents, vectors, { ids } = {}) {
  if (!Array.isArray(documents)) throw invalid('documents: expected an array of Documents');
  if (vectors.length !== documents.length)
    throw invalid(`addVectors: ${vectors.length} vectors for ${documents.length} documents`);
  const byId = new Map();
  const docIds = [];
  documents.forEach((d, i) => {
    const md = { ...(d.metadata ?? {}) };
    const docId = md.doc_id ?? ids?.[i] ?? d.id ?? randomUUID();
    const { doc_id: _d, source, namespace, acl, chunk: _c, score: _s, ...rest } = md;
    if (typeof docId !== 'string') throw invalid(`documents[${i}].metadata.doc_id: expected a string`);
    docIds.push(docId);
    let w = byId.get(docId);
    if (!w) {
      w = { doc: { doc_id: docId, source: sourceUri(source, docId), metadata: rest, chunks: [] }, rows: [] };
      if (namespace !== undefined) w.doc.namespace = namespace;
      if (acl !== undefined) w.doc.acl = acl;
      byId.set(docId, w);
    }
    w.doc.chunks.push({ text: d.pageContent });
    w.rows.push(vectors[i]);
  });
  const docs = [], rows = [];
  for (const w of byId.values()) {
    docs.push(w.doc);
    rows.push(...w.rows);
  }
  return { docs, rows, ids: docIds };
}

export class WardenVectorStore extends VectorStore {
  /** new WardenVectorStore(embeddings, { collection }) */
  constructor(embeddings, fields = {}) {
    super(embeddings, fields);
    if (!(fields.collection instanceof Collection))
      throw invalid('WardenVectorStore: { collection } must be an open warden Collection');
    this.collection = fields.collection;
    this[IDENTITY] = fields[IDENTITY] ?? null;
  }

  _vectorstoreType() {
    return 'warden';
  }

  /**
   * A view of this store that searches as one principal (groups: the ones
   * your IdP asserted) and, on-behalf-of, one agent; namespaces (prefixes)
   * scope every search of the view.
   */
  withPrincipal({ principal, groups = [], agent, agentGroups = [], namespaces } = {}) {
    if (typeof principal !== 'string' || !principal)
      throw invalid('WardenVectorStore: a principal is required (from your authentication, never from a prompt)');
    return new WardenVectorStore(this.embeddings, {
      collection: this.collection,
      [IDENTITY]: Object.freeze({
        principal, groups: [...groups], agent, agentGroups: [...agentGroups],
        namespaces: namespaces ? [...namespaces] : undefined,
      }),
    });
  }

  /** The identity this view searches as, or null. */
  get identity() {
    return this[IDENTITY];
  }

  async addVectors(vectors, documents, options = {}) {
    const { docs, rows, ids } = toWardenDocs(documents, vectors, options);
    await this.collection.upsert(docs, rows);
    return ids;
  }

  async addDocuments(documents, options = {}) {
    const vectors = await this.embeddings.embedDocuments(documents.map((d) => d.pageContent));
    return this.addVectors(vectors, documents, options);
  }

  /** delete({ ids }): remove these doc_ids (every chunk of each). */
  async delete(params = {}) {
    const ids = params.ids ?? [];
    if (!Array.isArray(ids)) throw invalid('delete: expected { ids: string[] }');
    await this.collection.delete(ids);
  }

  /**
   * [Document, score][] for the bound principal.  filter: a warden metadata
   * filter (Mongo or Bedrock dialect, object or JSON text); the bound
   * view's namespaces (if any) also apply.
   */
  async similaritySearchVectorWithScore(query, k, filter) {
    const id = this[IDENTITY];
    if (!id)
      throw invalid('WardenVectorStore: search refused without a principal: use store.withPrincipal({principal}) or store.asRetriever({principal})');
    const hits = await this.collection.query(query, {
      principal: id.principal,
      groups: id.groups,
      agent: id.agent,
      agentGroups: id.agentGroups,
      k,
      filter: filter ?? null,
      namespaces: id.namespaces,
    });
    return hits.map((h) => [
      new Document({
        id: h.doc_id,
        pageContent: h.text,
        metadata: { ...h.metadata, doc_id: h.doc_id, source: h.source, namespace: h.namespace, chunk: h.chunk, score: h.score },
      }),
      h.score,
    ]);
  }

  /**
   * asRetriever({ k, filter, principal, groups, agent, agentGroups, ... }):
   * a retriever bound to the principal.  Without one it is refused.
   */
  asRetriever(kOrFields, filter, callbacks, tags, metadata, verbose) {
    const f = typeof kOrFields === 'object' && kOrFields !== null ? kOrFields : { k: kOrFields, filter, callbacks, tags, metadata, verbose };
    const bound = f.principal !== undefined ? this.withPrincipal(f) : this[IDENTITY] ? this : null;
    if (!bound)
      throw invalid('WardenVectorStore.asRetriever: a principal is required (from your authentication, never from a prompt)');
    if (f.searchType && f.searchType !== 'similarity') throw invalid('WardenVectorStore: only searchType "similarity" is supported');
    return new VectorStoreRetriever({
      vectorStore: bound,
      k: f.k,
      filter: f.filter,
      tags: [...(f.tags ?? []), 'warden'],
      metadata: f.metadata,
      verbose: f.verbose,
      callbacks: f.callbacks,
    });
  }

  static async fromTexts(texts, metadatas, embeddings, dbConfig) {
    const docs = texts.map((t, i) => new Document({
      pageContent: t,
      metadata: Array.isArray(metadatas) ? (metadatas[i] ?? {}) : (metadatas ?? {}),
    }));
    return WardenVectorStore.fromDocuments(docs, embeddings, dbConfig);
  }

  static async fromDocuments(docs, embeddings, dbConfig) {
    const store = new WardenVectorStore(embeddings, dbConfig);
    await store.addDocuments(docs);
    return store;
  }
}
