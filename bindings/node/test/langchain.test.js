// langchain.test.js -- WardenVectorStore inside the real LangChain.js
// (@langchain/core from npm): a retriever piped into a prompt template and
// a fake LLM answers two principals differently from one collection, a
// revoke through setAcl is visible to the next invoke, and a search or a
// retriever without a principal is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Embeddings } from '@langchain/core/embeddings';
import { Document } from '@langchain/core/documents';
import { PromptTemplate } from '@langchain/core/prompts';
import { RunnableSequence, RunnablePassthrough } from '@langchain/core/runnables';
import { StringOutputParser } from '@langchain/core/output_parsers';
import { FakeLLM } from '@langchain/core/utils/testing';
import { VectorStore } from '@langchain/core/vectorstores';
import { Collection, InvalidInput, InvalidData } from '../lib/index.js';
import { WardenVectorStore } from '../lib/langchain.js';
import { tempDir, bow, DIM } from './helpers.js';

class BowEmbeddings extends Embeddings {
  constructor() { super({}); }
  async embedDocuments(texts) { return texts.map(bow); }
  async embedQuery(text) { return bow(text); }
}

const DOCS = [
  new Document({ pageContent: 'The dragon budget for next year is ten thousand gold.',
    metadata: { doc_id: 'budget', source: 's3://kb/budget.md', namespace: '/finance', year: 2025,
      acl: { allow: ['group:finance'] } } }),
  new Document({ pageContent: 'Dragons must be fed twice a day.',
    metadata: { doc_id: 'care', source: '/srv/kb/care.txt', acl: { allow: ['*'] } } }),
  new Document({ pageContent: 'Dragon salaries are confidential.',
    metadata: { doc_id: 'salaries', source: 's3://kb/hr/salaries.md', namespace: '/hr',
      acl: { allow: ['user:hr-lead'], deny: ['group:interns'] } } }),
];

async function store(t, docs = DOCS) {
  const c = await Collection.create(join(tempDir(t), 'c'), { dim: DIM, metric: 'cosine' });
  t.after(() => c.close());
  const s = new WardenVectorStore(new BowEmbeddings(), { collection: c });
  await s.addDocuments(docs);
  return { c, s };
}

function chain(retriever) {
  const prompt = PromptTemplate.fromTemplate('Context:\n{context}\nQuestion: {question}');
  return RunnableSequence.from([
    { context: retriever.pipe((docs) => docs.map((d) => d.pageContent).join('\n')), question: new RunnablePassthrough() },
    prompt,
    new FakeLLM({}), // echoes the prompt: the answer shows exactly what was retrieved
    new StringOutputParser(),
  ]);
}

test('a LangChain chain answers two principals differently from the same collection', async (t) => {
  const { c, s } = await store(t);
  assert.ok(s instanceof VectorStore);
  await c.setGroups('user:fiona', ['group:finance']);
  const fiona = chain(s.asRetriever({ k: 3, principal: 'user:fiona' }));
  const hr = chain(s.asRetriever({ k: 3, principal: 'user:hr-lead' }));
  const intern = chain(s.asRetriever({ k: 3, principal: 'user:hr-lead', groups: ['group:interns'] }));
  const q = 'what about the dragon budget?';
  const a = await fiona.invoke(q);
  const b = await hr.invoke(q);
  const i = await intern.invoke(q);
  assert.match(a, /ten thousand gold/);
  assert.match(a, /fed twice/);
  assert.doesNotMatch(a, /salaries/);
  assert.match(b, /salaries are confidential/);
  assert.doesNotMatch(b, /ten thousand gold/);
  assert.doesNotMatch(i, /salaries/, 'deny on an asserted group wins');
  assert.notEqual(a, b);
});

test('a revoke through setAcl is visible to the next invoke', async (t) => {
  const { c, s } = await store(t);
  const r = chain(s.asRetriever({ k: 3, principal: 'user:hr-lead' }));
  assert.match(await r.invoke('dragon salaries'), /salaries are confidential/);
  await c.setAcl('salaries', { allow: [] });
  assert.doesNotMatch(await r.invoke('dragon salaries'), /salaries are confidential/);
});

test('returned Documents carry doc_id, source, namespace, chunk and score; filters apply', async (t) => {
  const { s } = await store(t);
  const view = s.withPrincipal({ principal: 'user:x', groups: ['group:finance'] });
  const res = await view.similaritySearchWithScore('dragon budget', 5);
  assert.deepEqual(res.map(([d]) => d.metadata.doc_id), ['budget', 'care']);
  const [d, score] = res[0];
  assert.equal(d.metadata.source, 's3://kb/budget.md');
  assert.equal(d.metadata.namespace, '/finance');
  assert.equal(d.metadata.chunk, 0);
  assert.equal(d.metadata.year, 2025);
  assert.equal(d.metadata.score, score);
  assert.equal(d.id, 'budget');
  assert.equal((await view.similaritySearch('dragon', 5))[1].metadata.source, 'file:///srv/kb/care.txt',
    'a path source becomes a file URI');
  const f = await view.similaritySearch('dragon', 5, { year: { $eq: 2025 } });
  assert.deepEqual(f.map((x) => x.metadata.doc_id), ['budget']);
  const r = s.asRetriever({ k: 5, filter: { year: { $ne: 2025 } }, principal: 'user:x', groups: ['group:finance'] });
  assert.deepEqual((await r.invoke('dragon')).map((x) => x.metadata.doc_id), ['care']);
  const ns = s.withPrincipal({ principal: 'user:x', groups: ['group:finance'], namespaces: ['/finance'] });
  assert.deepEqual((await ns.similaritySearch('dragon', 5)).map((x) => x.metadata.doc_id), ['budget']);
});

test('a search or a retriever without a principal is refused', async (t) => {
  const { s } = await store(t);
  await assert.rejects(s.similaritySearch('dragon', 3), (e) => e instanceof InvalidInput && /principal/.test(e.message));
  await assert.rejects(s.similaritySearchVectorWithScore(bow('dragon'), 3), InvalidInput);
  assert.throws(() => s.asRetriever(3), InvalidInput);
  assert.throws(() => s.asRetriever({ k: 3 }), InvalidInput);
  assert.throws(() => s.asRetriever({ k: 3, principal: '' }), InvalidInput);
  assert.throws(() => s.withPrincipal({}), InvalidInput);
});

test('on-behalf-of retriever: the agent must also be allowed', async (t) => {
  const { c, s } = await store(t);
  await c.setGroups('user:fiona', ['group:finance']);
  const r = s.asRetriever({ k: 3, principal: 'user:fiona', agent: 'user:summarizer-bot' });
  assert.deepEqual((await r.invoke('dragon budget')).map((d) => d.metadata.doc_id), ['care']);
  await c.setGroups('user:summarizer-bot', ['group:finance']);
  assert.deepEqual((await r.invoke('dragon budget')).map((d) => d.metadata.doc_id).sort(), ['budget', 'care']);
});

test('addVectors, fromTexts, fromDocuments, delete; a Document without acl needs default_acl', async (t) => {
  const dir = tempDir(t);
  const c = await Collection.create(join(dir, 'c'), { dim: DIM });
  t.after(() => c.close());
  const emb = new BowEmbeddings();
  const s = await WardenVectorStore.fromTexts(['alpha dragons', 'beta dragons'],
    [{ doc_id: 'a', acl: { allow: ['*'] } }, { doc_id: 'b', acl: { allow: ['*'] } }], emb, { collection: c });
  const view = s.withPrincipal({ principal: 'user:u' });
  assert.deepEqual((await view.similaritySearch('alpha', 1)).map((d) => d.metadata.doc_id), ['a']);
  // two Documents with one doc_id become two chunks of one warden document
  const ids = await s.addVectors([bow('gamma one'), bow('gamma two')], [
    new Document({ pageContent: 'gamma one', metadata: { doc_id: 'g', acl: { allow: ['*'] } } }),
    new Document({ pageContent: 'gamma two', metadata: { doc_id: 'g' } }),
  ]);
  assert.deepEqual(ids, ['g', 'g']);
  const g = await view.similaritySearch('gamma two', 2);
  assert.deepEqual(g.map((d) => [d.metadata.doc_id, d.metadata.chunk]), [['g', 1], ['g', 0]]);
  await s.delete({ ids: ['g', 'a'] });
  assert.deepEqual((await view.similaritySearch('gamma alpha beta', 5)).map((d) => d.metadata.doc_id), ['b']);
  await assert.rejects(s.addDocuments([new Document({ pageContent: 'no acl', metadata: { doc_id: 'n' } })]),
    (e) => e instanceof InvalidData && /acl/.test(e.message));
  // with a default_acl in warden.yaml, a Document without acl gets it
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(dir, 'w.yaml'), `dimension: ${DIM}\nmetric: cosine\ndefault_acl:\n  allow: ["group:staff"]\n`);
  const c2 = await Collection.create(join(dir, 'c2'), { config: join(dir, 'w.yaml') });
  t.after(() => c2.close());
  const s2 = await WardenVectorStore.fromDocuments([new Document({ pageContent: 'staff only dragons' })], emb, { collection: c2 });
  assert.equal((await s2.withPrincipal({ principal: 'user:a' }).similaritySearch('dragons', 3)).length, 0);
  const hit = await s2.withPrincipal({ principal: 'user:a', groups: ['group:staff'] }).similaritySearch('dragons', 3);
  assert.equal(hit.length, 1);
  assert.match(hit[0].metadata.doc_id, /^[0-9a-f-]{36}$/, 'a generated doc_id');
});
