"""warden.cluster throughput and overhead on this machine.

    /usr/bin/python3 bindings/python/bench/cluster.py [N_CHUNKS] [DIM] [SECONDS]

Same data (default 50,000 x 128 random vectors, user:a reads all) in:
  * one warden.Collection in this process (1 and 2 query threads);
  * a ShardedCollection of 1 shard on a LocalCluster of 1 worker process
    (the Dask overhead: same search work as the single collection);
  * a ShardedCollection of 2 shards on a LocalCluster of 1 worker process;
  * a ShardedCollection of 2 shards on 2 worker processes (one shard each);
queried with k=10 single vectors from 4 client threads for SECONDS each.
Prints QPS, mean latency, and the client-side merge time per query (the
_merge step alone, on real shard answers).
"""
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ["PYTHONPATH"] = os.pathsep.join(
    [os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")]
    + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])

import numpy as np  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import warden  # noqa: E402
from warden.cluster import ShardedCollection  # noqa: E402


def load(target, n, dim, rng):
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    for s in range(0, n, 10000):
        docs = [{"doc_id": f"d{i}", "source": f"s3://b/{i}", "acl": {"allow": ["user:a"]},
                 "chunks": [f"chunk {i}"]} for i in range(s, min(n, s + 10000))]
        target.upsert(docs, emb[s:s + len(docs)])


def run(query, qs, nthreads, seconds):
    counts, lat = [0] * nthreads, [0.0] * nthreads
    stop = time.perf_counter() + seconds

    def worker(t):
        i = t
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            query(qs[i % len(qs)])
            lat[t] += time.perf_counter() - t0
            counts[t] += 1
            i += nthreads
    ts = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    el = time.perf_counter() - t0
    return sum(counts) / el, sum(lat) / max(1, sum(counts)) * 1000


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
    dim = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    secs = float(sys.argv[3]) if len(sys.argv) > 3 else 5
    rng = np.random.default_rng(3)
    qs = rng.standard_normal((256, dim)).astype(np.float32)
    tmp = tempfile.mkdtemp()
    col = warden.Collection.create(os.path.join(tmp, "one"), dim=dim)
    load(col, n, dim, np.random.default_rng(1))
    for th in (1, 2):
        qps, ms = run(lambda q: col.query(q, principal="user:a", k=10), qs, th, secs)
        print(f"one Collection, in process, {th} thread(s): {qps:8.1f} QPS  {ms:6.2f} ms/query")
    for shards, workers in ((1, 1), (2, 1), (2, 2)):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None, silence_logs=50)
        client = Client(cluster)
        sc = ShardedCollection.create(client, os.path.join(tmp, f"sc{shards}{workers}"),
                                      shards=shards, dim=dim)
        load(sc, n, dim, np.random.default_rng(1))
        for th in (1, 4):
            qps, ms = run(lambda q: sc.query(q, principal="user:a", k=10), qs, th, secs)
            print(f"ShardedCollection {shards} shard(s) on {workers} worker process(es), {th} client "
                  f"thread(s): {qps:8.1f} QPS  {ms:6.2f} ms/query")
        # the merge step alone, on real answers of both shards
        answers = {i: sc._actors[i].query(qs[0], {"principal": "user:a", "k": 10}).result()
                   for i in range(shards)}
        m = 2000
        t0 = time.perf_counter()
        for _ in range(m):
            sc._merge(answers, 10, [], False)
        print(f"  merge of {shards} x 10 hits: {(time.perf_counter() - t0) / m * 1e6:6.1f} us/query")
        a = sc._actors[0]
        t0 = time.perf_counter()
        for _ in range(200):
            a.info().result()
        print(f"  actor round trip (info(), nothing searched): "
              f"{(time.perf_counter() - t0) / 200 * 1e3:6.2f} ms")
        sc.close()
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
