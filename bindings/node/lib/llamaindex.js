// llamaindex.js -- WardenLlamaIndexStore, a LlamaIndex.TS vector store
// (BaseVectorStore: add, delete, query) over a warden Collection.  Queries
// run as a principal: the store view's (store.withPrincipal({...})) or the
// retriever's customParams ({ principal, groups, agent, agentGroups }); a
// query without one is refused.
import { BaseVectorStore, TextNode, NodeRelationship, MetadataMode } from 'llamaindex';
import { invalid } from './errors.js';
import { Collection, sourceUri } from './collection.js';

const IDENTITY = Symbol('warden.identity');

const OPS = {
  '==': 'equals', '!=': 'notEquals', '>': 'greaterThan', '<': 'lessThan',
  '>=': 'greaterThanOrEquals', '<=': 'lessThanOrEquals', in: 'in', nin: 'notIn',
  contains: 'listContains', text_match: 'stringContains',
};

/** LlamaIndex MetadataFilters as a warden filter (Bedrock dialect), or null. */
export function toWardenFilter(filters) {
  if (!filters || !filters.filters || filters.filters.length === 0) return null;
  const parts = filters.filters.map((f) => {
    if (f.operator === 'any' || f.operator === 'all') {
      const vs = Array.isArray(f.value) ? f.value : [f.value];
      const each = vs.map((v) => ({ listContains: { key: f.key, value: v } }));
      return each.length === 1 ? each[0] : { [f.operator === 'any' ? 'orAll' : 'andAll']: each };
    }
    const op = OPS[f.operator ?? '=='];
    if (!op) throw invalid(`filters: operator "${f.operator}" is not supported by warden`);
    return { [op]: { key: f.key, value: f.value } };
  });
  if (parts.length === 1) return parts[0];
  return { [filters.condition === 'or' ? 'orAll' : 'andAll']: parts };
}

export class WardenLlamaIndexStore extends BaseVectorStore {
  storesText = true;

  /** new WardenLlamaIndexStore({ collection, embedModel? }) */
  constructor(params = {}) {
    super(params);
    if (!(params.collection instanceof Collection))
      throw invalid('WardenLlamaIndexStore: { collection } must be an open warden Collection');
    this.collection = params.collection;
    this[IDENTITY] = params[IDENTITY] ?? null;
  }

  client() {
    return this.collection;
  }

  /** A view that queries as one principal (and, on-behalf-of, one agent). */
  withPrincipal({ principal, groups = [], agent, agentGroups = [], namespaces } = {}) {
    if (typeof principal !== 'string' || !principal)
      throw invalid('WardenLlamaIndexStore: a principal is required (from your authentication, never from a prompt)');
    return new WardenLlamaIndexStore({
      collection: this.collection,
      embedModel: this.embedModel,
      [IDENTITY]: Object.freeze({
        principal, groups: [...groups], agent, agentGroups: [...agentGroups],
        namespaces: namespaces ? [...namespaces] : undefined,
      }),
    });
  }

  /**
   * Store embedded nodes.  Nodes are grouped into warden documents by
   * metadata.doc_id, else their source document (ref doc id), else their
   * own id; the nodes given for a document in one call become its chunks,
   * in order, replacing what it held.  metadata.source, .namespace and
   * .acl ({allow, deny}) are taken out; without an acl the collection's
   * default_acl applies or the call is refused.  Returns "DOC_ID#CHUNK"
   * ids, the ids query() returns.
   */
  async add(nodes) {
    const byId = new Map();
    const ids = [];
    for (const [i, n] of nodes.entries()) {
      const emb = n.embedding; // (getEmbedding() throws when unset)
      if (!emb || !emb.length) throw invalid(`add: node ${i} (${n.id_}) has no embedding`);
      const md = { ...(n.metadata ?? {}) };
      const docId = md.doc_id ?? n.sourceNode?.nodeId ?? n.id_;
      const { doc_id: _d, source, namespace, acl, chunk: _c, score: _s, ...rest } = md;
      let w = byId.get(docId);
      if (!w) {
        w = { doc: { doc_id: docId, source: sourceUri(source, docId), metadata: rest, chunks: [] }, rows: [] };
        if (namespace !== undefined) w.doc.namespace = namespace;
        if (acl !== undefined) w.doc.acl = acl;
        byId.set(docId, w);
      }
      ids.push(`${docId}#${w.doc.chunks.length}`);
      w.doc.chunks.push({ text: n.getContent(MetadataMode.NONE) });
      w.rows.push(emb);
    }
    if (!byId.size) return [];
    const docs = [], rows = [];
    for (const w of byId.values()) {
      docs.push(w.doc);
      rows.push(...w.rows);
    }
    await this.collection.upsert(docs, rows);
    return ids;
  }

  /** Delete a document (every chunk of it) by its doc_id / ref doc id. */
  async delete(refDocId) {
    await this.collection.delete([String(refDocId).replace(/#\d+$/, '')]);
  }

  async query(query, _options) {
    const cp = query.customParams;
    const id = cp && cp.principal !== undefined ? cp : this[IDENTITY];
    if (!id || typeof id.principal !== 'string' || !id.principal)
      throw invalid('WardenLlamaIndexStore: query refused without a principal: use store.withPrincipal({principal}) or customParams: {principal}');
    if (!query.queryEmbedding) throw invalid('WardenLlamaIndexStore: query needs queryEmbedding');
    const hits = await this.collection.query(query.queryEmbedding, {
      principal: id.principal,
      groups: id.groups ?? [],
      agent: id.agent,
      agentGroups: id.agentGroups ?? [],
      namespaces: id.namespaces,
      k: query.similarityTopK ?? 10,
      filter: toWardenFilter(query.filters),
    });
    const nodes = hits.map((h) => new TextNode({
      id_: `${h.doc_id}#${h.chunk}`,
      text: h.text,
      metadata: { ...h.metadata, doc_id: h.doc_id, source: h.source, namespace: h.namespace, chunk: h.chunk, score: h.score },
      relationships: { [NodeRelationship.SOURCE]: { nodeId: h.doc_id } },
    }));
    return { nodes, similarities: hits.map((h) => h.score), ids: nodes.map((n) => n.id_) };
  }
}
