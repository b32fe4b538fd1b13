// overhead.mjs -- per-call overhead of the FFI choices for the Node
// package, measured on this machine (see README "Node.js package"):
//   node bench/overhead.mjs        (from bindings/node, after `make`)
// 1. a trivial call (warden_dimension): koffi sync vs an N-API addon sync;
// 2. the same as an off-main-thread call: koffi .async vs napi async work;
// 3. a real query (10,000 chunks, dim 64, k 10): Collection.query (koffi
//    async + hit decoding) vs the koffi sync call on the main thread, one
//    at a time and 4 in flight.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { C, libraryPath, koffi } from '../lib/ffi.js';
import { Collection } from '../lib/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'warden-ovh-'));
const addonPath = join(tmp, 'napi_probe.node');
execFileSync('cc', ['-O2', '-shared', '-fPIC', '-I/usr/include/node', join(here, 'napi_probe.c'),
  '-o', addonPath, libraryPath()]);
const addon = createRequire(import.meta.url)(addonPath);

const dim = 64, n = 10000;
const coll = await Collection.create(join(tmp, 'c'), { dim, metric: 'l2' });
let seed = 1;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
const emb = new Float32Array(n * dim).map(rnd);
const docs = Array.from({ length: n }, (_, i) => ({
  doc_id: `d${i}`, source: `s3://b/d${i}`, acl: { allow: [i % 2 ? 'user:alice' : 'group:eng'] }, chunks: [`chunk ${i}`],
}));
await coll.upsert(docs, emb);
await coll.close(); // one LMDB environment open per process at a time
// a raw handle (the BigInt koffi uses) for the direct calls
const out = [null];
const eb = Buffer.alloc(256);
C.open(join(tmp, 'c'), null, out, eb, 256);
const db = out[0];

function timeSync(label, iters, fn) {
  for (let i = 0; i < 1000; i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) fn();
  const ns = Number(process.hrtime.bigint() - t0) / iters;
  console.log(`${label.padEnd(48)} ${(ns / 1000).toFixed(2)} us/call`);
  return ns;
}
async function timeAsync(label, iters, inflight, fn) {
  const run = async (m) => { for (let i = 0; i < m; i++) await fn(); };
  await run(200);
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inflight }, () => run(iters / inflight)));
  const ns = Number(process.hrtime.bigint() - t0) / iters;
  console.log(`${label.padEnd(48)} ${(ns / 1000).toFixed(2)} us/call (${inflight} in flight)`);
  return ns;
}
const p = (f) => (...a) => new Promise((res, rej) => f(...a, (e, r) => (e ? rej(e) : res(r))));

console.log(`node ${process.version}, koffi ${koffi.version}`);
timeSync('trivial call, koffi sync', 200000, () => C.dimension(db));
timeSync('trivial call, N-API addon sync', 200000, () => addon.dimSync(db));
const kAsync = p(C.dimension.async);
const nAsync = p(addon.dimAsync);
await timeAsync('trivial call, koffi .async', 20000, 1, () => kAsync(db));
await timeAsync('trivial call, N-API async work', 20000, 1, () => nAsync(db));
await timeAsync('trivial call, koffi .async', 20000, 4, () => kAsync(db));
await timeAsync('trivial call, N-API async work', 20000, 4, () => nAsync(db));

const q = new Float32Array(dim).map(rnd);
const qo = { principal: 'user:alice', groups: null, ngroups: 0, namespaces: null, nnamespaces: 0, filter: null,
  k: 10, strategy: 1, min_revision: 0, explain: 0, agent: null, agent_groups: null, nagent_groups: 0,
  target_recall: 0, mode: 0, text: null };
const ro = [null];
timeSync('query (exact, 5,000 allowed), koffi sync, no decode', 2000, () => {
  C.queryE(db, q, 1, qo, ro, eb, 256);
  C.resultsFree(ro[0]);
});
C.close(db);
const coll2 = await Collection.open(join(tmp, 'c'));
const opts = { principal: 'user:alice', k: 10, strategy: 'exact' };
await timeAsync('query, Collection.query (async + decode)', 2000, 1, () => coll2.query(q, opts));
await timeAsync('query, Collection.query (async + decode)', 4000, 4, () => coll2.query(q, opts));
await coll2.close();
rmSync(tmp, { recursive: true, force: true });
