"""The adapters' logic (warden._adapt), tested without the frameworks:
identity is required, texts become documents, LlamaIndex-shaped filters
become warden filters (never silently dropped)."""
from types import SimpleNamespace as NS

import numpy as np
import pytest

import warden
from warden import _adapt


def embed_documents(texts):  # a deterministic "embedder": any callable works
    out = np.zeros((len(texts), 8), np.float32)
    for i, t in enumerate(texts):
        for w in t.lower().split():
            out[i, hash(w) % 8] += 1.0
        out[i, 7] += 0.01
    return out


def test_principal_is_required():
    for kw in ({}, {"principal": ""}, {"principal": None}, {"groups": ["group:x"]}):
        with pytest.raises(warden.InvalidInput, match="principal is required"):
            _adapt.search_args(kw, "search")
    with pytest.raises(warden.InvalidInput, match="unknown search argument"):
        _adapt.search_args({"principal": "user:a", "princpal": "x"}, "search")
    assert _adapt.search_args({"principal": "user:a", "groups": ["group:g"]}, "s")["groups"]


def test_texts_to_documents_and_upsert(tmp_path):
    col = warden.Collection.create(tmp_path / "kb", dim=8)
    ids = _adapt.add_documents(
        col, ["alpha beta", "gamma delta", "beta gamma"],
        [{"source": "s3://b/1", "namespace": "/eng", "year": 2024},
         {"acl": {"allow": ["user:bob"]}, "year": 2023}, {}],
        ["a", None, "c"], embed_documents, acl={"allow": ["user:alice"]})
    assert ids[0] == "a" and ids[2] == "c" and len(ids[1]) == 32
    hits = col.query(embed_documents(["alpha beta"])[0], principal="user:alice", k=5)
    assert [h.doc_id for h in hits][0] == "a" and ids[1] not in {h.doc_id for h in hits}
    md = _adapt.hit_metadata(hits[0])
    assert md == {"year": 2024, "doc_id": "a", "chunk": 0, "source": "s3://b/1",
                  "namespace": "/eng"}
    assert [h.doc_id for h in col.query(embed_documents(["gamma"])[0], principal="user:bob")] == [ids[1]]
    with pytest.raises(warden.InvalidInput, match="metadatas"):
        _adapt.texts_to_documents(["x"], [{}, {}])
    col.upsert(*[[{"doc_id": "z", "source": "s3://b/z", "metadata": {"ref_doc_id": "R"},
                   "acl": {"allow": ["*"]}, "chunks": ["t"]}], embed_documents(["t"])])
    assert _adapt.doc_ids_where(col, "ref_doc_id", "R") == ["z"]


def F(key, value, op="=="):
    return NS(key=key, value=value, operator=NS(value=op))


def test_llama_filters_map_to_warden():
    tree = NS(condition=NS(value="and"), filters=[
        F("warden_principal", "user:alice"), F("warden_groups", ["group:eng"]),
        F("year", 2024, ">="),
        NS(condition="or", filters=[F("tag", ["a", "b"], "in"), F("tag", "c", "!=")])])
    flt, p, g = _adapt.filters_to_warden(tree)
    assert (p, g) == ("user:alice", ["group:eng"])
    assert flt == {"$and": [{"year": {"$gte": 2024}},
                            {"$or": [{"tag": {"$in": ["a", "b"]}}, {"tag": {"$ne": "c"}}]}]}
    assert _adapt.filters_to_warden(None) == (None, None, None)
    assert _adapt.filters_to_warden(NS(condition=None, filters=[F("warden_principal", "user:x")])) \
        == (None, "user:x", None)
    for bad in (NS(condition="and", filters=[F("t", "x", "text_match")]),
                NS(condition="not", filters=[F("t", "x")]),
                NS(condition="or", filters=[F("warden_principal", "user:x"), F("t", 1)])):
        with pytest.raises(warden.InvalidInput):
            _adapt.filters_to_warden(bad)


def test_mapped_filter_is_accepted_by_warden(tmp_path):
    col = warden.Collection.create(tmp_path / "kb", dim=8)
    _adapt.add_documents(col, ["x y", "y z"], [{"year": 2024, "tag": "a"},
                                               {"year": 2020, "tag": "c"}],
                         ["1", "2"], embed_documents, acl={"allow": ["*"]})
    flt, _, _ = _adapt.filters_to_warden(NS(condition="or", filters=[
        F("year", 2024, ">="), F("tag", ["a", "b"], "in")]))
    assert [h.doc_id for h in col.query(embed_documents(["y"])[0], principal="user:q",
                                        filter=flt)] == ["1"]


def test_relevance_is_monotone():
    for metric, lo, hi in (("cosine", -1.0, 1.0), ("ip", -3.0, 3.0)):
        assert 0 <= _adapt.relevance(lo, metric) < _adapt.relevance(hi, metric) <= 1
    assert _adapt.relevance(0.0, "l2") == 1.0 > _adapt.relevance(1.0, "l2")


def test_adapters_raise_a_clear_import_error_without_the_framework():
    import importlib
    for mod, pkg in (("warden.langchain", "langchain-core"),
                     ("warden.llama_index", "llama-index-core")):
        try:
            importlib.import_module(mod)
        except ImportError as e:
            assert pkg in str(e)


def test_bound_identity_cannot_be_replaced_per_call():
    """Identity bound where a store/retriever is made wins over call-time
    data: a different principal, groups or agent in a call's kwargs (which
    a framework may let a model write) is refused; the same one is fine."""
    bound = {"principal": "user:mallory", "groups": ["group:eng"], "k": 3}
    assert _adapt.bound_merge(bound, {"k": 5}, "s") == {**bound, "k": 5}
    assert _adapt.bound_merge(bound, {"principal": "user:mallory"}, "s")["principal"] == "user:mallory"
    for key, val in (("principal", "user:ceo"), ("groups", ["group:hr"]),):
        with pytest.raises(warden.InvalidInput, match=key):
            _adapt.bound_merge(bound, {key: val}, "s")
    # nothing bound: the call names the identity (a retriever's search_kwargs)
    assert _adapt.bound_merge({}, {"principal": "user:a"}, "s") == {"principal": "user:a"}


def test_filters_cannot_override_a_bound_principal():
    """LlamaIndex filters are query data: on a store made for a principal
    they may not name warden_principal / warden_groups; on a store made
    without one they may."""
    with pytest.raises(warden.InvalidInput, match="bound"):
        _adapt.filter_identity("user:x", ["group:hr"], "user:mallory", None, "q")
    with pytest.raises(warden.InvalidInput, match="bound"):
        _adapt.filter_identity(None, ["group:hr"], "user:mallory", None, "q")
    assert _adapt.filter_identity(None, None, "user:mallory", ["group:a"], "q") == \
        ("user:mallory", ["group:a"])
    assert _adapt.filter_identity("user:x", ["group:hr"], None, None, "q") == \
        ("user:x", ["group:hr"])
