"""The Collection API: create/open, typed upsert, query shapes, errors
mapped from WARDEN_E* with the library's message, pass-through of the
newer query fields, zero-copy inputs, threads."""
import json
import os
import threading

import numpy as np
import pytest

import warden
from warden.collection import as_f32_rows


def doc(i, allow=("*",), deny=(), ns="/", chunks=("text",), **md):
    return {"doc_id": f"d{i}", "source": f"s3://b/d{i}", "namespace": ns,
            "metadata": md, "acl": {"allow": list(allow), "deny": list(deny)},
            "chunks": [{"text": c} for c in chunks]}


@pytest.fixture
def col(tmp_path):
    with warden.Collection.create(tmp_path / "kb", dim=4, metric="cosine") as c:
        yield c


def test_create_open_close_and_facts(tmp_path):
    p = tmp_path / "kb"
    c = warden.Collection.create(p, dim=4, metric="l2")
    assert (c.dim, c.metric, c.revision) == (4, "l2", 0)
    assert c.stats()["documents"] == 0
    c.close()
    c.close()  # idempotent
    with pytest.raises(warden.InvalidInput, match="closed"):
        c.revision
    with pytest.raises(warden.AlreadyExists) as e:
        warden.Collection.create(p, dim=4)
    assert e.value.code == -30908 and e.value.name == "WARDEN_EEXIST" and str(p) in str(e.value)
    with warden.Collection(p) as c2:
        assert c2.metric == "l2"
    with pytest.raises(warden.Error) as e:
        warden.Collection(tmp_path / "missing")
    assert str(tmp_path / "missing") in str(e.value)
    cfg = tmp_path / "w.yaml"
    cfg.write_text("dimension: 3\nmetric: ip\nembedder:\n  type: hash\n")
    c3 = warden.Collection.create(tmp_path / "kb2", config=cfg)
    assert (c3.dim, c3.metric) == (3, "ip")
    assert c3.embed("hello world").shape == (3,)
    with pytest.raises(warden.ConfigError):
        bad = tmp_path / "bad.yaml"
        bad.write_text("dimension: 3\nbogus: 1\n")
        warden.Collection.create(tmp_path / "kb3", config=bad)
    ro = warden.Collection(p, read_only=True)
    with pytest.raises(warden.InvalidInput):
        ro.delete(["x"])


def test_upsert_query_hits(col):
    emb = np.eye(4, dtype=np.float32)
    rev = col.upsert([doc(1, ns="/eng", chunks=("a", "b"), year=2024, tags=["x", "y"],
                          ok=True, w=0.5, team="core"),
                      doc(2, allow=["group:eng"], year=2023, chunks=("c",)),
                      doc(3, allow=["user:alice"], deny=["group:eng"], chunks=("d",))], emb[:4])
    assert isinstance(rev, warden.Revision) and rev == 1 == col.revision
    assert rev.report["documents"] == 3 and rev.report["chunks"] == 4
    hits = col.query(emb[0], principal="user:alice", k=10)
    assert isinstance(hits, warden.Hits) and hits.revision == 1 and hits.degraded is False
    assert [(h.doc_id, h.chunk) for h in hits] == [("d1", 0), ("d1", 1), ("d3", 0)]
    h = hits[0]
    assert (h.text, h.source, h.namespace, h.score) == ("a", "s3://b/d1", "/eng", pytest.approx(1.0))
    assert h.metadata == {"year": 2024, "tags": ["x", "y"], "ok": True, "w": 0.5, "team": "core"}
    # groups asserted by the caller; deny of a group wins
    got = col.query(emb[2], principal="user:alice", groups=["group:eng"], k=10)
    assert {x.doc_id for x in got} == {"d1", "d2"}
    # filter (dict or JSON text, both dialects) and namespaces
    assert [x.doc_id for x in col.query(emb[0], principal="user:bob", groups=["group:eng"],
                                        filter={"year": {"$gte": 2024}})] == ["d1", "d1"]
    assert {x.doc_id for x in col.query(emb[0], principal="user:bob", groups=["group:eng"],
            filter=json.dumps({"equals": {"key": "year", "value": 2023}}))} == {"d2"}
    assert {x.doc_id for x in col.query(emb[0], principal="user:bob", groups=["group:eng"],
                                        namespaces=["/eng"])} == {"d1"}
    # 2-D input -> one Hits per row
    batch = col.query(emb[[0, 1, 3]], principal="user:alice", k=1)
    assert isinstance(batch, list) and len(batch) == 3 and all(len(b) == 1 for b in batch)
    assert [b[0].doc_id for b in batch] == ["d1", "d1", "d3"]
    assert col.query([1, 0, 0, 0], principal="user:alice", k=1)[0].doc_id == "d1"
    assert col.query(emb[0], principal="user:alice", explain=True).plan["strategy"]


def test_writes_return_revisions(col):
    e = np.eye(4, dtype=np.float32)
    r1 = col.upsert([doc(1), doc(2)], e[:2])
    r2 = col.set_acl("d1", allow=["user:a"])
    assert r2 == r1 + 1 and r2.report["changed"] == 1
    assert col.get_acl("d1")["allow"] == ["user:a"]
    r3 = col.set_groups("user:a", ["group:g"])
    assert r3 == r2 + 1 and col.get_groups("user:a")["groups"] == ["group:g"]
    r4 = col.delete(["d2", "nope"])
    assert r4 == r3 + 1 and r4.report["unknown"] == 1
    r5 = col.delete("d1")  # a single id, not its characters
    assert r5 == r4 + 1 and col.stats()["documents"] == 0
    r6 = col.grant_add("user:a", "s3://b/")
    assert r6 == r5 + 1 and col.grants() == [{"principal": "user:a", "prefix": "s3://b/"}]
    r7 = col.upsert([doc(3)], e[:1])
    r8 = col.upsert([doc(3)], e[:1])  # replace
    assert r8 == r7 + 1 and r8.report["replaced"] == 1


def test_errors_carry_code_and_message(col):
    e = np.eye(4, dtype=np.float32)
    with pytest.raises(warden.InvalidData) as ei:
        col.upsert([doc(1), {"doc_id": "x", "chunks": ["t"], "acl": {"allow": ["*"]}}], e[:2])
    assert "docs[1]" in str(ei.value) and "source" in str(ei.value)
    assert isinstance(ei.value, warden.InvalidInput) and isinstance(ei.value, warden.Error)
    assert col.revision == 0, "a bad document commits nothing"
    with pytest.raises(warden.InvalidData, match="docs.0..acl.allow|principal|acl"):
        col.upsert([doc(1, allow=["not a principal"])], e[:1])
    with pytest.raises(warden.InvalidInput, match="rows"):
        col.upsert([doc(1)], e[:2])
    with pytest.raises(warden.InvalidData, match="dimension"):
        col.upsert([doc(1)], np.ones((1, 5), np.float32))
    with pytest.raises(warden.InvalidData, match="docs.0..metadata.bad"):
        col.upsert([doc(1, bad={"x": 1})], e[:1])
    col.upsert([doc(1, year=2024)], e[:1])
    with pytest.raises(warden.InvalidInput, match="principal"):
        col.query(e[0])  # no principal: refused, never answered as everyone
    with pytest.raises(warden.InvalidInput, match="principal"):
        col.query(e[0], principal="alice")
    with pytest.raises(warden.InvalidData):
        col.query(e[0], principal="user:a", filter={"year": {"$lt": "x"}})
    with pytest.raises(warden.InvalidData, match="finite"):
        col.query([np.nan, 0, 0, 0], principal="user:a")
    with pytest.raises(warden.InvalidData, match="dimension"):
        col.query([1, 0], principal="user:a")
    with pytest.raises(warden.NotFound) as ei:
        col.get_acl("nope")
    assert ei.value.code == -30902 and isinstance(ei.value, LookupError)
    with pytest.raises(warden.StaleSnapshot) as ei:
        col.query(e[0], principal="user:a", min_revision=col.revision + 1)
    assert "revision" in ei.value.message
    assert len(col.query(e[0], principal="user:a", min_revision=col.revision)) == 1
    with pytest.raises(warden.InvalidInput, match="strategy"):
        col.query(e[0], principal="user:a", strategy="fast")
    assert len(col.query(e[0], principal="user:a", strategy="exact")) == 1


def test_newer_query_fields_are_passed_to_c(col):
    """agent/agent_groups/target_recall/mode/text fill warden_query_opts;
    a build that does not implement one refuses it (InvalidInput naming the
    field), one that does answers -- never silently ignored."""
    col.upsert([doc(1, allow=["user:a"])], np.eye(4, dtype=np.float32)[:1])
    q = np.eye(4, dtype=np.float32)[0]
    for kw, field in ((dict(agent="user:bot"), "agent"),
                      (dict(agent_groups=["group:bots"]), "agent"),
                      (dict(target_recall=0.9), "target_recall"),
                      (dict(mode="hybrid", text="text"), "mode"),
                      (dict(mode="lexical", text="text"), "mode")):
        try:
            hits = col.query(q, principal="user:a", **kw)
        except warden.InvalidInput as e:
            assert field in str(e), (kw, str(e))
        else:
            assert isinstance(hits, warden.Hits)
            if field == "agent" and "agent" in kw:
                assert hits == [], "user:bot may not read d1: on-behalf-of must refuse it"
    with pytest.raises(warden.InvalidInput, match="mode"):
        col.query(q, principal="user:a", mode="fuzzy")


def test_zero_copy_inputs():
    a = np.zeros((3, 4), np.float32)
    assert as_f32_rows(a, 4) is a
    assert as_f32_rows(a[1], 4) is a[1] or as_f32_rows(a[1], 4).base is a
    f64 = np.zeros((3, 4))
    assert as_f32_rows(f64, 4) is not f64 and as_f32_rows(f64, 4).dtype == np.float32
    strided = np.zeros((3, 8), np.float32)[:, ::2]
    assert as_f32_rows(strided, 4).flags.c_contiguous


def test_threads_query_one_collection(col):
    rng = np.random.default_rng(5)
    emb = rng.standard_normal((200, 4)).astype(np.float32)
    col.upsert([doc(i, allow=["user:a"] if i % 2 else ["user:b"]) for i in range(200)], emb)
    qs = rng.standard_normal((50, 4)).astype(np.float32)
    want = [[(h.doc_id, h.chunk) for h in col.query(q, principal="user:a")] for q in qs]
    errors = []

    def worker():
        try:
            for _ in range(5):
                for q, w in zip(qs, want):
                    got = col.query(q, principal="user:a")
                    assert [(h.doc_id, h.chunk) for h in got] == w
                    assert all(int(h.doc_id[1:]) % 2 for h in got)
        except BaseException as e:
            errors.append(e)
    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[0]


def test_close_waits_for_running_queries(col, tmp_path):
    col.upsert([doc(1)], np.ones((1, 4), np.float32))
    started, release = threading.Event(), threading.Event()

    def slow(p, g, r):
        started.set()
        release.wait(5)
        return [True] * len(r)
    col.set_resolver(slow)
    out = []
    t = threading.Thread(target=lambda: out.append(col.query(np.ones(4, np.float32),
                                                             principal="user:a")))
    t.start()
    started.wait(5)
    closer = threading.Thread(target=col.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive(), "close() must wait for the running query"
    release.set()
    t.join(5)
    closer.join(5)
    assert len(out[0]) == 1


def test_help_is_usable():
    import pydoc
    text = pydoc.render_doc(warden, renderer=pydoc.plaintext)
    for name in ("Collection", "upsert", "query", "set_resolver", "StaleSnapshot", "Hit"):
        assert name in text
    assert warden.Collection.query.__doc__ and warden.Collection.upsert.__annotations__


def test_library_override(tmp_path):
    """WARDEN_LIBRARY is honoured, and a wrong one is an ImportError that
    says what was tried (checked in a child: the library loads once)."""
    import subprocess
    import sys
    env = dict(os.environ, WARDEN_LIBRARY=str(tmp_path / "nope.so"))
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-c", "import warden"], cwd=pkg, env=env,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "WARDEN_LIBRARY" in r.stderr and "nope.so" in r.stderr


def test_json_fallback_gives_the_same_collection(tmp_path, monkeypatch):
    """The JSON Lines fallback (for a libwarden without warden_upsert)
    writes the same collection as the typed path, and names docs[I] too."""
    from warden import _lib
    rng = np.random.default_rng(3)
    docs = [doc(i, ns="/n", chunks=("a", "b"), year=i, tag="t", f=0.25, ok=bool(i % 2),
                tags=["x"]) for i in range(5)]
    emb = rng.standard_normal((10, 4)).astype(np.float32)
    typed = warden.Collection.create(tmp_path / "t", dim=4)
    typed.upsert(docs, emb)
    monkeypatch.setattr(_lib, "HAVE_UPSERT", False)
    fb = warden.Collection.create(tmp_path / "f", dim=4)
    fb.upsert(docs, emb)
    assert fb.export() == typed.export()
    with pytest.raises(warden.InvalidData, match=r"docs\[1\]\.source"):
        fb.upsert([doc(1), {"doc_id": "x", "chunks": ["t"], "acl": {"allow": ["*"]}}], emb[:2])


def test_lexical_and_hybrid_modes(col):
    """mode='lexical'/'hybrid' with text= reach the C library's BM25 side:
    an identifier only the text carries is found, each side's rank is on
    the hit, and a document the principal may not read never comes back
    (neither side leaks it)."""
    docs = [doc(1, allow=["user:a"], chunks=("ticket ERR-4521 crashed the build",)),
            doc(2, allow=["user:a"], chunks=("the weather is fine",)),
            doc(3, allow=["user:b"], chunks=("ERR-4521 also seen here",))]
    e = np.eye(4, dtype=np.float32)[:3]
    col.upsert(docs, e)
    lex = col.query(None, principal="user:a", mode="lexical", text="err-4521", k=5)
    assert [h.doc_id for h in lex] == ["d1"]
    assert lex[0].lexical_rank == 1 and lex[0].semantic_rank == 0
    hyb = col.query(e[1], principal="user:a", mode="hybrid", text="err-4521", k=5)
    ids = [h.doc_id for h in hyb]
    assert set(ids) == {"d1", "d2"}, ids
    by = {h.doc_id: h for h in hyb}
    assert by["d1"].lexical_rank == 1 and by["d2"].semantic_rank == 1
    assert "d3" not in ids
    # user:b reads only d3: the same text finds d3 and nothing of user:a's
    assert [h.doc_id for h in col.query(None, principal="user:b", mode="lexical",
                                        text="err-4521", k=5)] == ["d3"]
