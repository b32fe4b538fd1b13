"""A brute-force model of a warden collection for the oracle tests: it
holds the documents, ACLs and directory in plain Python and answers a
query by scoring every readable chunk with NumPy (float64), ordered by
score, then by insertion (slot) -- the rule warden documents."""
import random

import numpy as np

USERS = [f"user:u{i}" for i in range(6)]
GROUPS = [f"group:g{i}" for i in range(5)]
NAMESPACES = ["/a", "/a/b", "/c", "/c/d/e"]
TAGS = ["red", "green", "blue"]


class Model:
    def __init__(self, dim, metric="cosine"):
        self.dim, self.metric = dim, metric
        self.docs = {}       # doc_id -> dict (the upserted document)
        self.rows = {}       # doc_id -> float32 rows
        self.slot = {}       # doc_id -> first slot (chunks are consecutive)
        self.next_slot = 0
        self.dir = {}        # principal -> [groups]

    def upsert(self, docs, emb):
        r = 0
        for d in docs:
            n = len(d["chunks"])
            self.docs[d["doc_id"]] = d
            self.rows[d["doc_id"]] = emb[r:r + n]
            self.slot[d["doc_id"]] = self.next_slot
            self.next_slot += n
            r += n

    def delete(self, ids):
        for i in ids:
            for m in (self.docs, self.rows, self.slot):
                m.pop(i, None)

    def set_acl(self, doc_id, allow=None, deny=None):
        acl = dict(self.docs[doc_id]["acl"])
        if allow is not None:
            acl["allow"] = list(allow)
        if deny is not None:
            acl["deny"] = list(deny)
        self.docs[doc_id] = dict(self.docs[doc_id], acl=acl)

    def set_groups(self, p, groups):
        if groups:
            self.dir[p] = list(groups)
        else:
            self.dir.pop(p, None)

    def closure(self, p, asserted):
        seen = set()
        todo = list(asserted) + list(self.dir.get(p, []))
        while todo:
            g = todo.pop()
            if g in seen:
                continue
            seen.add(g)
            todo.extend(self.dir.get(g, []))
        return seen

    def readable(self, d, p, asserted, namespaces):
        if namespaces is not None:
            ns = d.get("namespace", "/")
            if not any(ns == n or ns.startswith(n.rstrip("/") + "/") or n == "/" for n in namespaces):
                return False
        who = {p} | self.closure(p, asserted)
        allow, deny = set(d["acl"].get("allow", [])), set(d["acl"].get("deny", []))
        return bool(allow & (who | {"*"})) and not (deny & who)

    @staticmethod
    def passes(d, flt):
        if flt is None:
            return True
        md = d.get("metadata", {})
        for key, cond in flt.items():
            if key not in md:
                return False
            v = md[key]
            for op, x in cond.items():
                if op == "$eq":
                    ok = v == x
                elif op == "$gte":
                    ok = v >= x
                elif op == "$lt":
                    ok = v < x
                else:
                    ok = v in x
                if not ok:
                    return False
        return True

    def score(self, q, rows):
        q = np.asarray(q, dtype=np.float64)
        r = np.asarray(rows, dtype=np.float64)
        # elementwise products summed per row (not BLAS, whose rows may take
        # different code paths): identical rows get identical scores
        if self.metric == "cosine":
            rn = r / np.sqrt((r * r).sum(axis=1, keepdims=True))
            return (rn * (q / np.sqrt((q * q).sum()))).sum(axis=1)
        if self.metric == "ip":
            return (r * q).sum(axis=1)
        return ((r - q) ** 2).sum(axis=1)

    def answer(self, q, p, asserted=(), k=10, flt=None, namespaces=None, allow_fn=None):
        """[(doc_id, chunk, score)] best first, and the set of readable keys."""
        cands = []
        readable = set()
        for doc_id, d in self.docs.items():
            if not self.readable(d, p, asserted, namespaces) or not self.passes(d, flt):
                continue
            if allow_fn is not None and not allow_fn(doc_id):
                continue
            s = self.score(q, self.rows[doc_id])
            for c in range(len(d["chunks"])):
                readable.add((doc_id, c))
                cands.append((float(s[c]), self.slot[doc_id] + c, doc_id, c))
        if self.metric == "l2":
            cands.sort(key=lambda t: (t[0], t[1]))
        else:
            cands.sort(key=lambda t: (-t[0], t[1]))
        return [(t[2], t[3], t[0]) for t in cands[:k]], readable


def random_doc(rng: random.Random, i, dim, nrng):
    """One random document (dict) and its chunk embeddings."""
    allow = rng.sample(USERS + GROUPS + ["*"], rng.randint(0, 3))
    deny = rng.sample(USERS + GROUPS, rng.choice([0, 0, 1]))
    n = rng.randint(1, 3)
    d = {"doc_id": f"doc{i}", "source": f"s3://bucket/{rng.choice(['hr', 'eng'])}/doc{i}",
         "namespace": rng.choice(NAMESPACES),
         "metadata": {"year": rng.randint(2020, 2026), "tag": rng.choice(TAGS)},
         "acl": {"allow": allow, "deny": deny},
         "chunks": [{"text": f"doc{i} chunk {c}"} for c in range(n)]}
    emb = nrng.standard_normal((n, dim)).astype(np.float32)
    if rng.random() < 0.1:  # exact duplicates: the tie-break decides
        emb[:] = emb[0]
    return d, emb


def random_filter(rng):
    return rng.choice([None, None, {"year": {"$gte": rng.randint(2021, 2025)}},
                       {"tag": {"$eq": rng.choice(TAGS)}},
                       {"year": {"$lt": 2024}, "tag": {"$in": ["red", "blue"]}}])


def random_query_args(rng):
    p = rng.choice(USERS + GROUPS[:2])
    asserted = rng.sample(GROUPS, rng.choice([0, 0, 1, 2]))
    ns = rng.choice([None, None, ["/a"], ["/c"], ["/a/b", "/c/d"]])
    return p, asserted, ns


def compare(ans, exp, readable, tol=1e-4):
    """'' when the warden answer matches the oracle, else why not.  Exact
    order is required except between scores closer than tol (float
    rounding of the two sides)."""
    got = [(h.doc_id, h.chunk) for h in ans]
    for key in got:
        if key not in readable:
            return f"LEAK: {key} is not readable"
    if len(set(got)) != len(got):
        return f"duplicate hits: {got}"
    if len(got) != len(exp):
        return f"{len(got)} hits, expected {len(exp)}: {got} vs {exp}"
    for i, (h, e) in enumerate(zip(ans, exp)):
        if abs(h.score - e[2]) > tol:
            return f"rank {i}: score {h.score} expected {e[2]} ({got} vs {exp})"
        if (h.doc_id, h.chunk) != (e[0], e[1]):
            # allowed only between genuinely near-equal (not tied) scores
            near = [x for x in exp if abs(x[2] - e[2]) <= tol and x[2] != e[2]]
            if not near:
                return f"rank {i}: {(h.doc_id, h.chunk)} expected {e[:2]} (order/tie-break)"
    return ""
