"""warden.cluster on a real Dask LocalCluster (worker processes): a sharded
collection and one collection get the same randomized documents, ACLs,
groups and mutations; every answer must be identical (same order, same
tie-break), with zero leaks against the brute-force model; a revoke is
visible to the next query that carries its token; a killed worker gives an
error or a partial answer naming the missing shard, never a silently
shorter one, and loses no acknowledged write."""
import os
import random
import signal
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import warden  # noqa: E402
from conftest import HERE  # noqa: E402
from model import (GROUPS, USERS, Model, compare, random_doc, random_filter,  # noqa: E402
                   random_query_args)

from warden.cluster import (ShardedCollection, ShardUnavailable, ShardWriteError,  # noqa: E402
                            Token, shard_of)


@pytest.fixture(scope="module")
def client():
    # worker processes import warden from this source tree
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(HERE)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       silence_logs=50)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def same(sharded, single):
    """'' when the sharded answer equals the single collection's."""
    a = [(h.doc_id, h.chunk, h.text, h.source, h.namespace, h.metadata) for h in sharded]
    b = [(h.doc_id, h.chunk, h.text, h.source, h.namespace, h.metadata) for h in single]
    if a != b:
        return f"sharded {[x[:2] for x in a]} != single {[x[:2] for x in b]}"
    for x, y in zip(sharded, single):
        if abs(x.score - y.score) > 1e-5:
            return f"score {x.score} != {y.score}"
    if sharded.degraded != single.degraded:
        return "degraded differs"
    return ""


def random_docs(rng, nrng, ids, dim, earlier):
    docs, embs = [], []
    for i in ids:
        d, e = random_doc(rng, i, dim, nrng)
        if earlier and rng.random() < 0.15:  # same vector as another document: a tie
            e[:] = rng.choice(earlier)
        earlier.append(e[0].copy())
        docs.append(d)
        embs.append(e)
    return docs, np.concatenate(embs)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_sharded_equals_single_collection(client, tmp_path, metric):
    rng, nrng, dim = random.Random(11), np.random.default_rng(11), 8
    sc = ShardedCollection.create(client, str(tmp_path / "sharded"), shards=3, dim=dim,
                                  metric=metric)
    one = warden.Collection.create(tmp_path / "one", dim=dim, metric=metric)
    m = Model(dim, metric)
    earlier, nid, checked = [], 0, 0
    for rnd in range(4):
        ids = list(range(nid, nid + (60 if rnd == 0 else 12)))
        nid = ids[-1] + 1
        ids += rng.sample(range(nid), 4)  # replacements: new insertion order
        ids = list(dict.fromkeys(ids))
        docs, emb = random_docs(rng, nrng, ids, dim, earlier)
        tok = sc.upsert(docs, emb)
        one.upsert(docs, emb)
        m.upsert(docs, emb)
        assert isinstance(tok, Token) and len(tok) == 3 and all(t > 0 for t in tok)
        gone = rng.sample(list(m.docs), 2)
        sc.delete(gone)
        one.delete(gone)
        m.delete(gone)
        for doc_id in rng.sample(list(m.docs), 4):
            allow = rng.sample(USERS + GROUPS + ["*"], rng.randint(0, 2))
            deny = rng.sample(USERS + GROUPS, rng.choice([0, 1]))
            t = sc.set_acl(doc_id, allow=allow, deny=deny)
            one.set_acl(doc_id, allow=allow, deny=deny)
            m.set_acl(doc_id, allow=allow, deny=deny)
            assert sum(1 for x in t if x) == 1, "an ACL change goes to the owning shard only"
        p, gs = rng.choice(USERS + GROUPS), rng.sample(GROUPS, rng.randint(0, 2))
        t = sc.set_groups(p, gs)
        one.set_groups(p, gs)
        m.set_groups(p, gs)
        assert all(x > 0 for x in t), "a directory change goes to every shard"
        for _ in range(25):
            p, asserted, ns = random_query_args(rng)
            flt = random_filter(rng)
            k = rng.choice([1, 5, 10, 25])
            q = nrng.standard_normal(dim).astype(np.float32)
            if rng.random() < 0.2:  # aim at a tied vector
                q = rng.choice(earlier).astype(np.float32)
            got = sc.query(q, principal=p, groups=asserted, k=k, filter=flt, namespaces=ns,
                           min_revision=t)
            want = one.query(q, principal=p, groups=asserted, k=k, filter=flt, namespaces=ns)
            why = same(got, want)
            assert not why, f"round {rnd} {p} {asserted} {ns} {flt} k={k}: {why}"
            exp, readable = m.answer(q, p, asserted, k, flt, ns)
            assert not compare(got, exp, readable), compare(got, exp, readable)
            assert got.partial is False and isinstance(got.revision, Token)
            checked += 1
        qs = nrng.standard_normal((3, dim)).astype(np.float32)
        gb = sc.query(qs, principal="user:u1", groups=["group:g0"], k=6)
        wb = one.query(qs, principal="user:u1", groups=["group:g0"], k=6)
        for x, y, q in zip(gb, wb, qs):
            exp, readable = m.answer(q, "user:u1", ["group:g0"], 6)
            assert not compare(x, exp, readable) and not compare(y, exp, readable)
    st = sc.stats()
    assert st["documents"] == one.stats()["documents"] == len(m.docs)
    assert checked == 100
    # reopen: the same shards, the same answers, sequence numbers keep growing
    sc.close()
    sc2 = ShardedCollection(client, str(tmp_path / "sharded"))
    q = nrng.standard_normal(dim).astype(np.float32)
    assert not same(sc2.query(q, principal="user:u2", k=20), one.query(q, principal="user:u2", k=20))
    docs, emb = random_docs(rng, nrng, [3, 900], dim, earlier)
    sc2.upsert(docs, emb)
    one.upsert(docs, emb)
    for q in [earlier[3].astype(np.float32), q]:
        assert not same(sc2.query(q, principal="user:u0", groups=GROUPS, k=30),
                        one.query(q, principal="user:u0", groups=GROUPS, k=30))
    sc2.close()


def test_revoke_visible_with_token(client, tmp_path):
    sc = ShardedCollection.create(client, str(tmp_path / "s"), shards=2, dim=4)
    e = np.eye(4, dtype=np.float32)
    docs = [{"doc_id": f"d{i}", "source": f"s3://b/d{i}", "acl": {"allow": ["group:eng"]},
             "chunks": ["x"]} for i in range(4)]
    sc.upsert(docs, e)
    t = sc.set_groups("user:alice", ["group:eng"])
    assert len(sc.query(e[0], principal="user:alice", k=4, min_revision=t)) == 4
    for i in range(4):
        t = t | sc.set_acl(f"d{i}", allow=["group:hr"])          # revoke, one by one
        got = sc.query(e[0], principal="user:alice", k=4, min_revision=t)
        assert {h.doc_id for h in got} == {f"d{j}" for j in range(i + 1, 4)}
    future = Token(x + 1000 for x in sc.revision)
    with pytest.raises(warden.StaleSnapshot):
        sc.query(e[0], principal="user:alice", min_revision=future)
    with pytest.raises(warden.InvalidInput, match="principal"):
        sc.query(e[0])
    with pytest.raises(warden.InvalidInput, match="Token"):
        sc.query(e[0], principal="user:alice", min_revision=3)
    with pytest.raises(warden.InvalidData, match=r"docs\[1\]\.source"):
        sc.upsert([docs[0], {"doc_id": "x", "chunks": ["t"]}], e[:2])
    sc.close()


def test_namespace_routing(client, tmp_path):
    ns_map = {"/tenant-a": [0], "/tenant-b": [1, 2]}
    sc = ShardedCollection.create(client, str(tmp_path / "s"), shards=3, dim=4,
                                  namespace_shards=ns_map)
    rng = np.random.default_rng(2)
    docs = [{"doc_id": f"d{i}", "source": "s3://b/x", "namespace": ns,
             "acl": {"allow": ["*"]}, "chunks": ["x"]}
            for i, ns in enumerate(["/tenant-a", "/tenant-a/x", "/tenant-b", "/tenant-b/y", "/z"] * 4)]
    sc.upsert(docs, rng.standard_normal((20, 4)).astype(np.float32))
    per = {s["shard"]: s["documents"] for s in sc.stats()["shards"]}
    assert sum(per.values()) == 20
    for d in docs:
        s = shard_of(d["doc_id"], d["namespace"], 3, ns_map)
        if d["namespace"].startswith("/tenant-a"):
            assert s == 0
        elif d["namespace"].startswith("/tenant-b"):
            assert s in (1, 2)
    assert sc._shards_for_namespaces(["/tenant-a"]) == [0]
    assert sc._shards_for_namespaces(["/tenant-b/y"]) == [1, 2]
    assert sc._shards_for_namespaces(["/"]) == [0, 1, 2]
    got = sc.query(np.ones(4, np.float32), principal="user:x", k=20, namespaces=["/tenant-a"])
    assert len(got) == 8 and all(h.namespace.startswith("/tenant-a") for h in got)
    t = sc.set_acl("d0", allow=[], namespace="/tenant-a")
    assert [i for i, x in enumerate(t) if x] == [0]
    sc.close()


def _pids(sc):
    return {i: sc._actors[i].info().result(timeout=30)["pid"] for i in range(sc.nshards)}


def test_worker_killed_during_queries_and_writes(client, tmp_path):
    dim = 8
    rng, nrng = random.Random(5), np.random.default_rng(5)
    # a call to the dead shard fails within the timeout even when the
    # scheduler has not yet noticed the death (its own connect retries for
    # 30 s): the threads below finish well inside their join
    sc = ShardedCollection.create(client, str(tmp_path / "s"), shards=2, dim=dim, timeout=15)
    one = warden.Collection.create(tmp_path / "one", dim=dim)
    docs, emb = random_docs(rng, nrng, range(80), dim, [])
    sc.upsert(docs, emb)
    one.upsert(docs, emb)
    pids = _pids(sc)
    assert len(set(pids.values())) == 2, "two shards on two worker processes"
    victim = 1
    stop = threading.Event()
    wrong, errors, answered = [], [], [0]
    acked, lock, in_doubt = {}, threading.Lock(), []

    def queries():
        qrng = np.random.default_rng(1)
        while not stop.is_set():
            q = qrng.standard_normal(dim).astype(np.float32)
            with lock:  # the pair of queries sees the same writes
                try:
                    got = sc.query(q, principal="user:u1", groups=["group:g1"], k=10)
                except ShardUnavailable as e:
                    errors.append(e)
                    continue
                want = one.query(q, principal="user:u1", groups=["group:g1"], k=10)
            if same(got, want):
                wrong.append(same(got, want))
            answered[0] += 1

    def writes():
        i = 1000
        while not stop.is_set():
            d, e = random_doc(rng, i, dim, nrng)
            d["acl"] = {"allow": ["*"]}
            try:
                with lock:
                    tok = sc.upsert([d], e)
                    one.upsert([d], e)
                acked[d["doc_id"]] = (tok, e[0])
            except (ShardUnavailable, ShardWriteError):
                in_doubt.append((d, e))  # may or may not have committed
            i += 1
            time.sleep(0.01)
    ts = [threading.Thread(target=queries), threading.Thread(target=writes)]
    for t in ts:
        t.start()
    time.sleep(1.0)
    os.kill(pids[victim], signal.SIGKILL)
    time.sleep(2.0)
    stop.set()
    for t in ts:
        t.join(120)
    assert not any(t.is_alive() for t in ts), "a call to the dead shard hung past its timeout"
    # The writer above may not have reached the dead shard in its window:
    # a query to it can hold the pair lock until its timeout, and stop is
    # set by then (make test, 2026-12-04: no write refused, in_doubt
    # empty).  One write routed to the dead shard, after the kill, always
    # is refused -- and may or may not have committed.
    j = 5000
    while True:
        d, e = random_doc(rng, j, dim, nrng)
        if sc.shard_for(d["doc_id"], d.get("namespace")) == victim:
            break
        j += 1
    d["acl"] = {"allow": ["*"]}
    with pytest.raises((ShardUnavailable, ShardWriteError)):
        sc.upsert([d], e)
    in_doubt.append((d, e))  # retried on both below, as the writer's are
    assert not wrong, wrong[:3]
    assert errors and all(victim in e.missing for e in errors)
    assert answered[0] > 0
    # a partial answer names the shard and holds only shard 0's true hits
    q = nrng.standard_normal(dim).astype(np.float32)
    with pytest.raises(ShardUnavailable) as ei:
        sc.query(q, principal="user:u0", groups=GROUPS, k=50)
    assert ei.value.missing == [victim] and str(victim) in str(ei.value)
    part = sc.query(q, principal="user:u0", groups=GROUPS, k=50, allow_partial=True)
    assert part.partial and part.missing_shards == [victim]
    full = one.query(q, principal="user:u0", groups=GROUPS, k=10000)
    shard0 = [h for h in full if sc.shard_for(h.doc_id, h.namespace) == 0][:50]
    assert [(h.doc_id, h.chunk) for h in part] == [(h.doc_id, h.chunk) for h in shard0]
    # a write to every shard: committed on the live one, named as failed on
    # the dead one; the same call again after recovery settles it
    with pytest.raises(ShardWriteError) as ei:
        sc.set_groups("user:u1", ["group:g3"])
    assert list(ei.value.failed) == [victim] and ei.value.committed[1 - victim] > 0
    assert ei.value.committed[victim] == 0
    # the nanny restarts the worker; recover() reopens the shard; every
    # acknowledged write is there
    dead_addr = sc.placement()[victim]
    deadline = time.time() + 90
    while time.time() < deadline:  # the dead worker gone, its replacement up
        ws = client.scheduler_info()["workers"]
        if len(ws) >= 2 and dead_addr not in ws:
            break
        time.sleep(0.2)
    assert sc.recover() == [victim]
    assert len(set(_pids(sc).values()) - {pids[victim]}) >= 1
    assert acked, "some writes were acknowledged"
    for doc_id, (tok, row) in acked.items():
        got = sc.query(row, principal="user:zz", k=3, min_revision=tok)
        assert doc_id in {h.doc_id for h in got}, f"acknowledged {doc_id} lost"
    assert in_doubt, "some writes were refused while the shard was down"
    sc.set_groups("user:u1", ["group:g3"])
    one.set_groups("user:u1", ["group:g3"])
    for d, e in in_doubt:  # writes are idempotent: retrying settles them
        sc.upsert([d], e)
        one.upsert([d], e)
    for _ in range(10):
        q = nrng.standard_normal(dim).astype(np.float32)
        assert not same(sc.query(q, principal="user:u2", groups=["group:g2"], k=15),
                        one.query(q, principal="user:u2", groups=["group:g2"], k=15))
    sc.close()


def test_distributed_ingest_syncs_and_stats(client, tmp_path):
    import json
    rng, nrng, dim = random.Random(21), np.random.default_rng(21), 8
    sc = ShardedCollection.create(client, str(tmp_path / "s"), shards=3, dim=dim)
    one = warden.Collection.create(tmp_path / "one", dim=dim)
    m = Model(dim)
    docs, emb = random_docs(rng, nrng, range(40), dim, [])
    # JSON Lines with embeddings, split by shard and ingested by the workers
    jl = tmp_path / "docs.jsonl"
    r = 0
    with open(jl, "w") as f:
        for d in docs:
            line = dict(d, chunks=[{"text": c["text"], "embedding": emb[r + j].tolist()}
                                   for j, c in enumerate(d["chunks"])])
            r += len(d["chunks"])
            f.write(json.dumps(line) + "\n")
    tok = sc.ingest(str(jl))
    one.ingest(jl)
    m.upsert(docs, emb)
    # NumPy input: documents without embeddings + a .npy of their rows
    docs2, emb2 = random_docs(rng, nrng, range(40, 70), dim, [])
    meta = tmp_path / "meta.jsonl"
    meta.write_text("".join(json.dumps(d) + "\n" for d in docs2))
    np.save(tmp_path / "emb.npy", emb2)
    tok = tok | sc.ingest_numpy(str(meta), str(tmp_path / "emb.npy"), batch=7)
    one.upsert(docs2, emb2)
    m.upsert(docs2, emb2)
    # acl sync split by shard; principals sync fanned out to every shard
    acl = tmp_path / "acl.jsonl"
    changes = [(f"doc{i}", rng.sample(USERS + ["*"], 1), rng.sample(GROUPS, 1)) for i in range(0, 70, 3)]
    acl.write_text("".join(json.dumps({"doc_id": d, "allow": a, "deny": x}) + "\n"
                           for d, a, x in changes))
    tok = tok | sc.acl_sync(str(acl))
    one.acl_sync(acl)
    for d, a, x in changes:
        m.set_acl(d, allow=a, deny=x)
    pr = tmp_path / "principals.jsonl"
    pr.write_text('{"principal": "user:u0", "groups": ["group:g1"]}\n'
                  '{"principal": "group:g1", "groups": ["group:g2"]}\n')
    t = sc.principals_sync(str(pr))
    assert all(x > 0 for x in t)
    tok = tok | t
    one.principals_sync(pr)
    m.set_groups("user:u0", ["group:g1"])
    m.set_groups("group:g1", ["group:g2"])
    st = sc.stats()
    assert st["documents"] == 70 == one.stats()["documents"]
    assert st["chunks"] == one.stats()["chunks"] and len(st["shards"]) == 3
    for _ in range(30):
        p, asserted, ns = random_query_args(rng)
        q = nrng.standard_normal(dim).astype(np.float32)
        got = sc.query(q, principal=p, groups=asserted, k=10, namespaces=ns, min_revision=tok)
        assert not same(got, one.query(q, principal=p, groups=asserted, k=10, namespaces=ns))
        exp, readable = m.answer(q, p, asserted, 10, None, ns)
        assert not compare(got, exp, readable)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"doc_id": "x"\n')
    with pytest.raises(warden.InvalidData, match="bad.jsonl:1"):
        sc.ingest(str(bad))
    sc.close()


def _deny_hr(principal, groups, resources):  # module level: picklable for the workers
    if any("/boom/" in r.source for r in resources):
        raise RuntimeError("permission service down")
    return ["/hr/" not in r.source for r in resources]


def test_resolver_on_shards_and_move(client, tmp_path):
    rng, nrng, dim = random.Random(8), np.random.default_rng(8), 8
    sc = ShardedCollection.create(client, str(tmp_path / "s"), shards=2, dim=dim)
    one = warden.Collection.create(tmp_path / "one", dim=dim)
    docs, emb = random_docs(rng, nrng, range(50), dim, [])
    for d in docs[:5]:
        d["source"] = d["source"].replace("/hr/", "/boom/").replace("/eng/", "/boom/")
    sc.upsert(docs, emb)
    one.upsert(docs, emb)
    sc.set_resolver(_deny_hr)
    one.set_resolver(_deny_hr)
    degraded = 0
    for _ in range(20):
        p, asserted, ns = random_query_args(rng)
        q = nrng.standard_normal(dim).astype(np.float32)
        got = sc.query(q, principal=p, groups=asserted, k=5, namespaces=ns)
        want = one.query(q, principal=p, groups=asserted, k=5, namespaces=ns)
        assert all("/hr/" not in h.source and "/boom/" not in h.source for h in got)
        # a failed batch drops what was in it, and shards batch their own
        # candidates: degraded answers may differ, clean ones may not; a
        # sharded answer is degraded whenever one collection's is
        if not want.degraded and not got.degraded:
            assert not same(got, want)
        assert got.degraded or not want.degraded
        degraded += got.degraded
    assert degraded, "a failing resolver marks merged answers degraded"
    sc.set_resolver(None)
    one.set_resolver(None)
    q = nrng.standard_normal(dim).astype(np.float32)
    assert not same(sc.query(q, principal="user:u0", groups=GROUPS, k=20),
                    one.query(q, principal="user:u0", groups=GROUPS, k=20))
    # move shard 0 to the other worker (LocalCluster: one shared disk)
    other = [w for w in client.scheduler_info()["workers"] if w != sc.placement()[0]][0]
    sc.move(0, other)
    assert sc.placement()[0] == other
    assert not same(sc.query(q, principal="user:u0", groups=GROUPS, k=20),
                    one.query(q, principal="user:u0", groups=GROUPS, k=20))
    sc.close()


def test_ties_follow_global_insertion_order(client, tmp_path):
    """Equal scores: one collection answers in insertion order (a replaced
    document counts as new); the sharded merge must give the same order
    although the tied documents live on different shards."""
    sc = ShardedCollection.create(client, str(tmp_path / "s"), shards=3, dim=8)
    one = warden.Collection.create(tmp_path / "one", dim=8)
    v = np.random.default_rng(0).standard_normal(8).astype(np.float32)
    docs = [{"doc_id": f"t{i}", "source": "s3://b/x", "acl": {"allow": ["*"]},
             "chunks": ["x", "y"]} for i in range(12)]
    emb = np.tile(v, (24, 1))
    for part in (docs[:5], docs[5:]):
        sc.upsert(part, emb[:2 * len(part)])
        one.upsert(part, emb[:2 * len(part)])
    sc.upsert([docs[3], docs[0]], emb[:4])   # replaced: now the newest
    one.upsert([docs[3], docs[0]], emb[:4])
    assert len({sc.shard_for(d["doc_id"]) for d in docs}) == 3
    want = one.query(v, principal="user:a", k=24)
    order = [(h.doc_id, h.chunk) for h in want]
    assert order[:2] == [("t1", 0), ("t1", 1)] and order[-4:] == [
        ("t3", 0), ("t3", 1), ("t0", 0), ("t0", 1)], order
    assert [(h.doc_id, h.chunk) for h in sc.query(v, principal="user:a", k=24)] == order
    for k in (1, 3, 7):
        assert [(h.doc_id, h.chunk) for h in sc.query(v, principal="user:a", k=k)] == order[:k]
    sc.close()


def test_shard_errors_name_the_input_document(client, tmp_path):
    sc = ShardedCollection.create(client, str(tmp_path / "s"), shards=3, dim=4)
    docs = [{"doc_id": f"d{i}", "source": "s3://b/x", "acl": {"allow": ["*"]}, "chunks": ["x"]}
            for i in range(9)]
    bad = next(i for i in range(9) if sc.shard_for(f"d{i}") == sc.shard_for("d8") and i != 8)
    docs[8]["acl"] = {"allow": ["not a principal"]}   # caught by the shard, not the client
    with pytest.raises((warden.InvalidData, ShardWriteError)) as ei:
        sc.upsert(docs, np.ones((9, 4), np.float32))
    assert "docs[8]" in str(ei.value) or "docs[8]" in str(
        getattr(ei.value, "failed", {}).get(sc.shard_for("d8"), "")), str(ei.value)
    assert bad != 8
    sc.close()
