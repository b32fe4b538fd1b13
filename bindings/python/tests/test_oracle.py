"""Randomized differential test through Python: every answer of
warden.Collection.query is compared with a brute-force model (readable set
per principal, NumPy scores), across upserts, deletes, ACL and group
changes between rounds.  Zero leaks, deny wins, a revoke is visible to the
next query, a resolver exception is a deny and marks the answer degraded."""
import os
import random
import zlib

import numpy as np
import pytest

import warden
from model import (GROUPS, USERS, Model, compare, random_doc, random_filter,
                   random_query_args)

ROUNDS = int(os.environ.get("WARDEN_PY_ORACLE_ROUNDS", "15"))


@pytest.mark.parametrize("metric,seed", [("cosine", 1), ("l2", 2), ("ip", 3)])
def test_oracle(tmp_path, metric, seed):
    rng, nrng, dim = random.Random(seed), np.random.default_rng(seed), 8
    col = warden.Collection.create(tmp_path / "kb", dim=dim, metric=metric)
    m = Model(dim, metric)
    nid = 0
    checked = 0
    for rnd in range(ROUNDS):
        # writes: new documents, replacements, deletes, ACL and group changes
        docs, embs = [], []
        for _ in range(40 if rnd == 0 else 10):
            i = nid if rng.random() < 0.7 or nid == 0 else rng.randrange(nid)
            nid = max(nid, i + 1)
            d, e = random_doc(rng, i, dim, nrng)
            if any(x["doc_id"] == d["doc_id"] for x in docs):
                continue
            docs.append(d)
            embs.append(e)
        emb = np.concatenate(embs)
        rev = col.upsert(docs, emb)
        m.upsert(docs, emb)
        assert col.revision == rev
        ids = list(m.docs)
        for doc_id in rng.sample(ids, 2):
            col.delete([doc_id])
            m.delete([doc_id])
        for doc_id in rng.sample(list(m.docs), 5):
            allow = rng.sample(USERS + GROUPS + ["*"], rng.randint(0, 2))
            deny = rng.sample(USERS + GROUPS, rng.choice([0, 1]))
            col.set_acl(doc_id, allow=allow, deny=deny)
            m.set_acl(doc_id, allow=allow, deny=deny)
        for _ in range(2):  # nested groups, cycles allowed
            p = rng.choice(USERS + GROUPS)
            gs = rng.sample(GROUPS, rng.randint(0, 2))
            col.set_groups(p, gs)
            m.set_groups(p, gs)
        for _ in range(60):
            p, asserted, ns = random_query_args(rng)
            flt = random_filter(rng)
            k = rng.choice([1, 5, 10, 30])
            q = nrng.standard_normal(dim).astype(np.float32)
            ans = col.query(q, principal=p, groups=asserted, k=k, filter=flt, namespaces=ns)
            exp, readable = m.answer(q, p, asserted, k, flt, ns)
            why = compare(ans, exp, readable)
            assert not why, f"round {rnd} {p} {asserted} {ns} {flt} k={k}: {why}"
            assert not ans.degraded
            checked += 1
        # a batch is answered from one snapshot, each row as alone
        qs = nrng.standard_normal((4, dim)).astype(np.float32)
        p, asserted, ns = random_query_args(rng)
        batch = col.query(qs, principal=p, groups=asserted, k=7, namespaces=ns)
        assert len(batch) == 4 and len({b.revision for b in batch}) == 1
        for q, ans in zip(qs, batch):
            exp, readable = m.answer(q, p, asserted, 7, None, ns)
            assert not compare(ans, exp, readable)
    assert checked == ROUNDS * 60


def test_deny_wins_and_revoke_is_visible_next_query(tmp_path):
    col = warden.Collection.create(tmp_path / "kb", dim=4)
    col.set_groups("user:draco", ["group:year4"])
    col.upsert([{"doc_id": "protego", "source": "s3://h/protego",
                 "acl": {"allow": ["group:year4"], "deny": ["user:draco"]},
                 "chunks": ["shield charm"]}], np.eye(4, dtype=np.float32)[:1])
    q = np.array([1, 0, 0, 0], np.float32)
    assert col.query(q, principal="user:draco") == []              # deny wins over group
    assert len(col.query(q, principal="user:harry", groups=["group:year4"])) == 1
    rev = col.set_acl("protego", allow=["group:year5"])             # revoke
    ans = col.query(q, principal="user:harry", groups=["group:year4"], min_revision=rev)
    assert ans == [] and ans.revision >= rev


def test_resolver_exception_is_deny_and_degraded(tmp_path):
    """Against the model: a resolver that refuses by rule gives exactly the
    oracle's answer; one that raises on some documents never lets them (or
    their batch) through, and marks the answer degraded."""
    rng, nrng, dim = random.Random(9), np.random.default_rng(9), 8
    col = warden.Collection.create(tmp_path / "kb", dim=dim)
    m = Model(dim)
    docs, embs = [], []
    for i in range(120):
        d, e = random_doc(rng, i, dim, nrng)
        docs.append(d)
        embs.append(e)
    emb = np.concatenate(embs)
    col.upsert(docs, emb)
    m.upsert(docs, emb)

    def rule(doc_id):  # the resolver's own "no"
        return zlib.crc32(doc_id.encode()) % 3 != 0

    def bad(doc_id):   # documents the resolver cannot check
        return zlib.crc32(doc_id.encode()) % 7 == 0

    calls = []

    def deny_by_rule(principal, groups, resources):
        calls.append((principal, tuple(groups), len(resources)))
        assert all(isinstance(r, warden.Resource) and r.source.startswith("s3://")
                   for r in resources)
        return [rule(r.doc_id) for r in resources]

    def raising(principal, groups, resources):
        if any(bad(r.doc_id) for r in resources):
            raise RuntimeError("permission service unavailable")
        return [rule(r.doc_id) for r in resources]

    col.set_resolver(deny_by_rule)
    for _ in range(40):
        p, asserted, ns = random_query_args(rng)
        q = nrng.standard_normal(dim).astype(np.float32)
        ans = col.query(q, principal=p, groups=asserted, k=10, namespaces=ns)
        exp, readable = m.answer(q, p, asserted, 10, None, ns, allow_fn=rule)
        assert not compare(ans, exp, readable)
        assert not ans.degraded
    assert calls and calls[0][0].startswith(("user:", "group:"))

    col.set_resolver(raising)
    degraded = 0
    for _ in range(40):
        p, asserted, ns = random_query_args(rng)
        q = nrng.standard_normal(dim).astype(np.float32)
        ans = col.query(q, principal=p, groups=asserted, k=10, namespaces=ns)
        exp_all, _ = m.answer(q, p, asserted, 10, None, ns)
        _, readable = m.answer(q, p, asserted, 10, None, ns,
                               allow_fn=lambda d: rule(d) and not bad(d))
        for h in ans:
            assert (h.doc_id, h.chunk) in readable, "resolver failure let a chunk through"
        if any(bad(d) for d, _c, _s in exp_all):
            assert ans.degraded, "a failed resolver check must mark the answer degraded"
            degraded += 1
        if ans.degraded:
            assert isinstance(col.last_resolver_error, RuntimeError)
    assert degraded > 0

    col.set_resolver(None)  # back to the configured one (none): stored ACL only
    p, asserted, ns = "user:u0", [], None
    q = nrng.standard_normal(dim).astype(np.float32)
    exp, readable = m.answer(q, p, asserted, 10, None, ns)
    assert not compare(col.query(q, principal=p), exp, readable)


def test_resolver_bad_answers_fail_closed(tmp_path):
    col = warden.Collection.create(tmp_path / "kb", dim=4)
    col.upsert([{"doc_id": "a", "source": "s3://x/a", "acl": {"allow": ["*"]},
                 "chunks": ["t"]}], np.ones((1, 4), np.float32))
    q = np.ones(4, np.float32)
    for answer in (lambda r: [], lambda r: [None] * len(r), lambda r: ["yes"] * len(r),
                   lambda r: [True] * (len(r) + 1), lambda r: None):
        col.set_resolver(lambda p, g, r, a=answer: a(r))
        ans = col.query(q, principal="user:x")
        assert ans == [] and ans.degraded
    col.set_resolver(lambda p, g, r: [True] * len(r))
    assert len(col.query(q, principal="user:x")) == 1
