// llamaindex.test.js -- WardenLlamaIndexStore inside the real LlamaIndex.TS
// (llamaindex from npm): VectorStoreIndex.fromDocuments over the warden
// store (the framework's own node parser and embedding pipeline), then its
// retriever as different principals; a query without one is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { BaseEmbedding, Document, Settings, VectorStoreIndex, storageContextFromDefaults, FilterOperator } from 'llamaindex';
import { Collection, InvalidInput } from '../lib/index.js';
import { WardenLlamaIndexStore } from '../lib/llamaindex.js';
import { tempDir, bow, DIM } from './helpers.js';

class BowEmbedding extends BaseEmbedding {
  async getTextEmbedding(text) { return bow(text); }
}
Settings.embedModel = new BowEmbedding();

async function index(t) {
  const c = await Collection.create(join(tempDir(t), 'c'), { dim: DIM, metric: 'cosine' });
  t.after(() => c.close());
  const store = new WardenLlamaIndexStore({ collection: c });
  const docs = [
    new Document({ id_: 'spells', text: 'Forbidden spells are kept in the restricted section.',
      metadata: { source: 's3://hogwarts/spells.md', year: 7, acl: { allow: ['group:staff'] } } }),
    new Document({ id_: 'menu', text: 'The feast menu has pumpkin pie and treacle tart.',
      metadata: { source: 's3://hogwarts/menu.md', year: 1, acl: { allow: ['*'] } } }),
  ];
  const storageContext = await storageContextFromDefaults({ vectorStore: store });
  const idx = await VectorStoreIndex.fromDocuments(docs, { storageContext });
  return { c, store, idx };
}

const docIds = (nodes) => nodes.map((n) => n.node.metadata.doc_id);

test("LlamaIndex's VectorStoreIndex over the warden store retrieves as a principal", async (t) => {
  const { c, idx } = await index(t);
  assert.equal(c.stats().documents, 2, 'the framework stored both documents in warden');
  const asStaff = idx.asRetriever({ similarityTopK: 2, customParams: { principal: 'user:snape', groups: ['group:staff'] } });
  const asStudent = idx.asRetriever({ similarityTopK: 2, customParams: { principal: 'user:harry' } });
  const s = await asStaff.retrieve({ query: 'restricted spells' });
  const h = await asStudent.retrieve({ query: 'restricted spells' });
  assert.deepEqual(docIds(s), ['spells', 'menu']);
  assert.deepEqual(docIds(h), ['menu']);
  assert.match(s[0].node.getContent(), /Forbidden spells/);
  assert.equal(s[0].node.metadata.source, 's3://hogwarts/spells.md');
  assert.equal(typeof s[0].score, 'number');
  // a revoke is seen by the next retrieve
  await c.setAcl('spells', { allow: [] });
  assert.deepEqual(docIds(await asStaff.retrieve({ query: 'restricted spells' })), ['menu']);
});

test('a bound store view and LlamaIndex metadata filters', async (t) => {
  const { store } = await index(t);
  const view = store.withPrincipal({ principal: 'user:snape', groups: ['group:staff'] });
  const idx = await VectorStoreIndex.fromVectorStore(view);
  const r = idx.asRetriever({ similarityTopK: 5, filters: { filters: [{ key: 'year', value: 5, operator: FilterOperator.GT }] } });
  assert.deepEqual(docIds(await r.retrieve({ query: 'spells' })), ['spells']);
  const both = idx.asRetriever({ similarityTopK: 5, filters: { condition: 'or', filters: [
    { key: 'year', value: 1, operator: '==' }, { key: 'year', value: 7, operator: '==' }] } });
  assert.equal((await both.retrieve({ query: 'spells' })).length, 2);
});

test('a query without a principal is refused; delete removes a document', async (t) => {
  const { idx, store, c } = await index(t);
  await assert.rejects(idx.asRetriever({ similarityTopK: 2 }).retrieve({ query: 'spells' }),
    (e) => e instanceof InvalidInput && /principal/.test(e.message));
  await store.delete('menu');
  assert.equal(c.stats().documents, 1);
});
