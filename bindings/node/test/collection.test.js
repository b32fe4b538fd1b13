// collection.test.js -- the Collection contract over the real libwarden.so
// (a real LMDB collection in a temp dir): writes resolve to revisions,
// typed errors, queries as a principal, revokes seen by the next query,
// on-behalf-of agents, queries off the event loop and safe concurrently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  Collection, Hits, InvalidInput, InvalidData, NotFound, AlreadyExists, StaleSnapshot, WardenError,
} from '../lib/index.js';
import { tempDir } from './helpers.js';

async function fixture(t) {
  const c = await Collection.create(join(tempDir(t), 'c'), { dim: 2, metric: 'cosine' });
  t.after(() => c.close());
  const rev = await c.upsert([
    { doc_id: 'secret', source: 's3://b/secret', namespace: '/hr', metadata: { year: 2024, tags: ['pay'] },
      acl: { allow: ['user:alice'] }, chunks: ['salaries', { text: 'bonuses' }] },
    { doc_id: 'eng', source: 's3://b/eng', namespace: '/eng', metadata: { year: 2023 },
      acl: { allow: ['group:eng'] }, chunks: ['design'] },
    { doc_id: 'pub', source: 'https://example.org/p', acl: { allow: ['*'], deny: ['user:mallory'] }, chunks: ['hello'] },
  ], [[1, 0], [0.99, 0.1], [0.9, 0.3], [0.5, 0.5]]);
  return { c, rev };
}

const ids = (hits) => hits.map((h) => `${h.doc_id}#${h.chunk}`);

test('upsert resolves to the revision; query returns Hits with the contract fields', async (t) => {
  const { c, rev } = await fixture(t);
  assert.equal(rev, 1);
  assert.equal(c.revision(), 1);
  assert.equal(c.dimension, 2);
  assert.equal(c.metric, 'cosine');
  const h = await c.query([1, 0], { principal: 'user:alice', k: 10 });
  assert.ok(h instanceof Hits && Array.isArray(h));
  assert.deepEqual(ids(h), ['secret#0', 'secret#1', 'pub#0']);
  assert.equal(h.revision, 1);
  assert.equal(h.degraded, false);
  const top = h[0];
  assert.deepEqual(Object.keys(top).slice(0, 7), ['doc_id', 'chunk', 'score', 'text', 'source', 'namespace', 'metadata']);
  assert.equal(top.text, 'salaries');
  assert.equal(top.source, 's3://b/secret');
  assert.equal(top.namespace, '/hr');
  assert.deepEqual(top.metadata, { year: 2024, tags: ['pay'] });
  assert.ok(Math.abs(top.score - 1) < 1e-6);
  // Float32Array input, groups, filter (object), namespaces, k
  const e = await c.query(new Float32Array([1, 0]), { principal: 'user:bob', groups: ['group:eng'], k: 1 });
  assert.deepEqual(ids(e), ['eng#0']);
  const f = await c.query([1, 0], { principal: 'user:alice', filter: { year: { $gte: 2024 } } });
  assert.deepEqual(ids(f), ['secret#0', 'secret#1']);
  const n = await c.query([1, 0], { principal: 'user:alice', namespaces: ['/'], filter: '{"notEquals":{"key":"year","value":2024}}' });
  assert.deepEqual(ids(n), ['pub#0']);
  assert.deepEqual(ids(await c.query([1, 0], { principal: 'user:mallory' })), [], 'deny wins over *');
  const plan = (await c.query([1, 0], { principal: 'user:alice', explain: true })).plan;
  assert.equal(plan.allowed, 3);
});

test('a batch of vectors is answered from one snapshot, one Hits per row', async (t) => {
  const { c } = await fixture(t);
  const b = await c.query([[1, 0], [0.5, 0.5]], { principal: 'group:eng', k: 1 });
  assert.equal(b.length, 2);
  assert.deepEqual(b.map(ids), [['eng#0'], ['pub#0']]);
  assert.equal(b[0].revision, b[1].revision);
});

test('typed errors map WARDEN_E* codes and carry the library message', async (t) => {
  const { c } = await fixture(t);
  await assert.rejects(c.query([1, 0], {}), (e) => e instanceof InvalidInput && /principal/.test(e.message));
  await assert.rejects(c.query([1, 0], { principal: 'alice' }),
    (e) => e instanceof InvalidInput && e.codeName === 'WARDEN_EINVAL' && e.code === -30900 &&
      e.message.includes('"alice" is not a principal'));
  await assert.rejects(c.query([1, 0, 0], { principal: 'user:a' }), InvalidInput);
  await assert.rejects(c.query([0, 0], { principal: 'user:a' }),
    (e) => e instanceof InvalidData && e.codeName === 'WARDEN_EDATA' && /all zeros/.test(e.message));
  await assert.rejects(c.query([1, 0], { principal: 'user:a', filter: { year: { $bogus: 1 } } }), InvalidData);
  await assert.rejects(c.query([1, 0], { principal: 'user:a', minRevision: 99 }),
    (e) => e instanceof StaleSnapshot && e.codeName === 'WARDEN_ESTALE');
  assert.throws(() => c.getAcl('nope'), (e) => e instanceof NotFound && e instanceof WardenError);
  await assert.rejects(Collection.create(c.path, { dim: 2 }), AlreadyExists);
  // a bad document: nothing committed, the message names docs[I].FIELD
  const before = c.revision();
  await assert.rejects(c.upsert([
    { doc_id: 'ok', source: 's3://b/ok', acl: { allow: ['*'] }, chunks: ['x'] },
    { doc_id: 'bad', source: 'not a uri', acl: { allow: ['*'] }, chunks: ['y'] },
  ], [[1, 0], [0, 1]]), (e) => e instanceof InvalidData && e.message.startsWith('docs[1].source:'));
  assert.equal(c.revision(), before);
  await assert.rejects(c.upsert([{ doc_id: 'x', source: 's3://b/x', chunks: ['a'] }], [[1, 0]]),
    (e) => e instanceof InvalidData && /acl/.test(e.message), 'no acl and no default_acl: refused');
  await assert.rejects(c.upsert([{ doc_id: 'x', source: 's3://b/x', acl: { allow: ['*'] }, chunks: ['a', 'b'] }], [[1, 0]]),
    (e) => e instanceof InvalidInput && /rows/.test(e.message));
  await assert.rejects(c.upsert([{ doc_id: 'x', source: 's3://b/x', metadata: { m: { nested: 1 } }, acl: { allow: ['*'] }, chunks: ['a'] }], [[1, 0]]),
    (e) => e instanceof InvalidData && e.message.startsWith('docs[0].metadata.m:'));
  assert.equal(c.revision(), before);
});

test('setAcl, delete, setGroups resolve to their revisions and the next query sees them', async (t) => {
  const { c } = await fixture(t);
  assert.deepEqual(ids(await c.query([1, 0], { principal: 'user:alice', k: 1 })), ['secret#0']);
  const r1 = await c.setAcl('secret', { allow: ['user:bob'] });
  assert.equal(r1, 2);
  assert.deepEqual(c.getAcl('secret').allow, ['user:bob']);
  assert.deepEqual(ids(await c.query([1, 0], { principal: 'user:alice' })), ['pub#0'], 'revoke seen at once');
  const r2 = await c.setAcl('pub', { deny: [] });
  assert.deepEqual(c.getAcl('pub'), { doc_id: 'pub', allow: ['*'], deny: [], revision: r2 }, 'omitted allow kept, [] empties');
  const r3 = await c.setGroups('user:carol', ['group:eng']);
  assert.equal(r3, r2 + 1);
  assert.deepEqual(c.getGroups('user:carol').expanded, ['group:eng']);
  assert.deepEqual(ids(await c.query([1, 0], { principal: 'user:carol' })), ['eng#0', 'pub#0']);
  const r4 = await c.delete(['eng', 'unknown']);
  assert.equal(r4, r3 + 1);
  assert.deepEqual(ids(await c.query([1, 0], { principal: 'user:carol' })), ['pub#0']);
  assert.equal(c.stats().documents, 2);
});

test('on-behalf-of: an agent sees only what both it and the user may read', async (t) => {
  const { c } = await fixture(t);
  await c.setGroups('user:bot', ['group:eng']);
  await c.setAcl('secret', { allow: ['user:alice', 'group:eng'] });
  const as = (agent) => c.query([1, 0], { principal: 'user:alice', agent, k: 10 }).then(ids);
  assert.deepEqual(await as(undefined), ['secret#0', 'secret#1', 'pub#0']);
  assert.deepEqual(await as('user:bot'), ['secret#0', 'secret#1', 'pub#0']);
  assert.deepEqual(await as('user:other-bot'), ['pub#0'], 'the agent lacks group:eng');
  assert.deepEqual(ids(await c.query([1, 0], { principal: 'user:alice', agent: 'user:bot', agentGroups: ['group:x'] })),
    ['secret#0', 'secret#1', 'pub#0']);
  await c.setAcl('pub', { deny: ['group:x'] });
  assert.deepEqual(ids(await c.query([1, 0], { principal: 'user:alice', agent: 'user:bot', agentGroups: ['group:x'] })),
    ['secret#0', 'secret#1'], "a deny for the agent's asserted group wins");
  await assert.rejects(c.query([1, 0], { principal: 'user:alice', agent: 'bot' }), InvalidInput);
});

test('queries run off the main thread: the event loop keeps turning during a long one', async (t) => {
  const c = await Collection.create(join(tempDir(t), 'big'), { dim: 64, metric: 'l2' });
  t.after(() => c.close());
  const n = 20000;
  const emb = new Float32Array(n * 64);
  for (let i = 0; i < emb.length; i++) emb[i] = ((i * 7919) % 1000) / 1000;
  await c.upsert(Array.from({ length: n }, (_, i) => ({
    doc_id: `d${i}`, source: `s3://b/d${i}`, acl: { allow: ['*'] }, chunks: ['x'],
  })), emb);
  const batch = Array.from({ length: 400 }, (_, q) => Array.from({ length: 64 }, (_, j) => ((q + j) % 10) / 10));
  let ticks = 0, done = false;
  const spin = () => { if (!done) { ticks++; setImmediate(spin); } };
  setImmediate(spin);
  const t0 = performance.now();
  const res = await c.query(batch, { principal: 'user:x', k: 5, strategy: 'exact' });
  const ms = performance.now() - t0;
  done = true;
  assert.equal(res.length, 400);
  // a synchronous call would have held the loop for the whole query: 0 ticks
  assert.ok(ticks > 10, `only ${ticks} event-loop turns during a ${ms.toFixed(0)} ms query`);
});

test('concurrent queries and writes on one handle: a revoke is seen by every query that starts after it', async (t) => {
  const { c } = await fixture(t);
  const docs = Array.from({ length: 200 }, (_, i) => ({
    doc_id: `m${i}`, source: `s3://b/m${i}`, acl: { allow: ['user:alice'] }, chunks: [`m ${i}`],
  }));
  await c.upsert(docs, docs.map((_, i) => [1, (i % 10) / 10]));
  const victims = ['m1', 'm2', 'm3', 'm4', 'm5'];
  let revoked = new Set();
  const seenAfter = [];
  const queries = [];
  for (let round = 0; round < 40; round++) {
    const snapshot = new Set(revoked);
    queries.push(c.query([1, 0.1], { principal: 'user:alice', k: 300 }).then((h) => {
      for (const v of snapshot) if (h.some((x) => x.doc_id === v)) seenAfter.push(`${v} after revoke (round ${round})`);
    }));
    if (round % 8 === 0 && round / 8 < victims.length) {
      const v = victims[round / 8];
      await c.setAcl(v, { allow: [] });
      revoked.add(v);
    }
  }
  await Promise.all(queries);
  assert.deepEqual(seenAfter, []);
  const final = await c.query([1, 0.1], { principal: 'user:alice', k: 300 });
  for (const v of victims) assert.ok(!final.some((x) => x.doc_id === v));
  assert.equal(final.length, 200 - victims.length + 3); // + secret (2 chunks) and pub
});

test('close waits for calls in flight, then refuses new ones', async (t) => {
  const { c } = await fixture(t);
  const inflight = Array.from({ length: 8 }, () => c.query([1, 0], { principal: 'user:alice' }));
  const closed = c.close();
  assert.equal(c.closed, true);
  await assert.rejects(c.query([1, 0], { principal: 'user:alice' }), /closed/);
  const res = await Promise.all(inflight);
  assert.ok(res.every((h) => h.length === 3));
  await closed;
  const again = await Collection.open(c.path, { readOnly: true });
  t.after(() => again.close());
  assert.equal((await again.query([1, 0], { principal: 'user:alice' })).length, 3);
  await assert.rejects(again.setAcl('pub', { allow: [] }), InvalidInput);
});
