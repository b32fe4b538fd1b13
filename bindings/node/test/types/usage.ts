// usage.ts -- compiled (not run) by test/types.test.js with tsc --noEmit:
// the package's declarations type-check against real use, and misuse fails.
import { Collection, InvalidData, type Hits, type Hit } from '../../lib/index.js';
import { WardenVectorStore } from '../../lib/langchain.js';
import { WardenLlamaIndexStore } from '../../lib/llamaindex.js';
import { createVerifier, createWardenMcpServer } from '../../lib/mcp.js';
import { FakeEmbeddings } from '@langchain/core/utils/testing';

export async function main(): Promise<number> {
  const c: Collection = await Collection.create('/tmp/x', { dim: 4, metric: 'cosine' });
  const rev: number = await c.upsert([{ doc_id: 'a', source: 's3://b/a', acl: { allow: ['*'] }, chunks: ['t'] }],
    new Float32Array(4));
  const hits: Hits = await c.query([1, 0, 0, 0], { principal: 'user:a', k: 3, filter: { year: { $gt: 1 } } });
  const first: Hit | undefined = hits[0];
  const batch: Hits[] = await c.query([[1, 0, 0, 0]], { principal: 'user:a', agent: 'user:bot' });
  await c.setAcl('a', { allow: [] });
  const store = new WardenVectorStore(new FakeEmbeddings(), { collection: c });
  const r = store.asRetriever({ k: 2, principal: 'user:a', groups: ['group:g'] });
  await r.invoke('q');
  const li = new WardenLlamaIndexStore({ collection: c }).withPrincipal({ principal: 'user:a' });
  const v = createVerifier({ jwks: '/tmp/jwks.json', issuer: 'i', audience: 'a' });
  createWardenMcpServer({ collection: c, identityOf: () => undefined });
  try {
    // @ts-expect-error a query needs options with a principal
    await c.query([1, 0, 0, 0]);
  } catch (e) {
    if (e instanceof InvalidData) return e.code;
  }
  void li; void v; void first; void batch;
  return rev + hits.revision;
}
