#!/usr/bin/python3
"""Issue 14 workload: `image-784`, generated L2 image-like vectors whose
geometry differs from synthetic-384 (unit-norm Gaussian mixture) and
GloVe-100 (cosine word vectors): 28x28 "images" with non-negative pixel
values 0..255, drawn from 40 classes, each a prototype plus a smooth
deformation in an 8-dimensional latent space (low intrinsic dimension,
clustered, strongly correlated neighbouring pixels, large shared offsets),
compared with L2.

Writes to bench/data/image-784/<N>/:
  base.f32 (N x 784), queries.f32 (NQ x 784, held out, same generator),
  meta.i32 (N x 3: urank, c10, c100 -- a random permutation rank and the
  document's cell among 10 / 100 k-means cells),
  combos.json (every filter combination: name, kind, selectivity, per-query
  filter JSON for warden, allowed rule for FAISS),
  truth-<combo>.i32 (NQ x 10, exact top-10 over each query's allowed set).

usage: graph_gen.py [--n N] [--nq NQ] [--seed S]
"""
import argparse
import json
import os
import sys

import numpy as np

D, SIDE = 784, 28


def log(*a):
    print("[graph_gen]", *a, file=sys.stderr, flush=True)


def blobs(rng, k):
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    img = np.zeros((SIDE, SIDE))
    for _ in range(k):
        cy, cx = rng.uniform(4, 24, 2)
        s = rng.uniform(1.5, 4.5)
        img += rng.uniform(0.4, 1.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return img.reshape(-1)


def generate(n, rng, protos, bases):
    ncl = len(protos)
    lab = rng.integers(0, ncl, n)
    z = rng.normal(0, 0.6, (n, bases.shape[1]))
    x = protos[lab] + np.einsum("nr,nrd->nd", z, bases[lab])
    x += rng.normal(0, 0.03, x.shape)
    return np.clip(np.rint(np.clip(x, 0, 1) * 255), 0, 255).astype(np.float32)


def kmeans(x, k, rng, it=8):
    c = x[rng.choice(len(x), k, replace=False)].copy()
    for _ in range(it):
        lab = assign(x, c)
        for j in range(k):
            m = lab == j
            if m.any():
                c[j] = x[m].mean(0)
    return c


def assign(x, c):
    out = np.empty(len(x), dtype=np.int32)
    cn = (c * c).sum(1)
    for i in range(0, len(x), 20000):
        b = x[i:i + 20000]
        out[i:i + 20000] = np.argmin(cn[None, :] - 2 * b @ c.T, axis=1)
    return out


def truth(base, bn, q, allowed_fn, k=10):
    """Exact top-k (L2) of each query over its allowed rows."""
    out = np.full((len(q), k), -1, dtype=np.int32)
    d = bn[None, :] - 2.0 * (q.astype(np.float64) @ base.astype(np.float64).T)
    for i in range(len(q)):
        m = allowed_fn(i)
        di = np.where(m, d[i], np.inf)
        na = int(m.sum())
        kk = min(k, na)
        if kk == 0:
            continue
        idx = np.argpartition(di, kk - 1)[:kk]
        idx = idx[np.argsort(di[idx], kind="stable")]
        out[i, :kk] = idx
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--nq", type=int, default=200)
    ap.add_argument("--seed", type=int, default=14)
    a = ap.parse_args()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "image-784", str(a.n))
    if os.path.exists(os.path.join(out, "combos.json")):
        log("exists:", out)
        print(out)
        return
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    ncl, r = 40, 8
    protos = np.stack([blobs(rng, 6) for _ in range(ncl)])
    protos /= protos.max(1, keepdims=True)
    bases = np.stack([np.stack([blobs(rng, 2) * rng.choice([-1, 1]) * 0.35 for _ in range(r)])
                      for _ in range(ncl)])
    log("generating", a.n, "x", D)
    base = generate(a.n, rng, protos, bases)
    q = generate(a.nq, rng, protos, bases)
    urank = rng.permutation(a.n).astype(np.int32)
    samp = base[rng.choice(a.n, min(a.n, 20000), replace=False)]
    c10 = kmeans(samp, 10, rng)
    c100 = kmeans(samp, 100, rng)
    l10, l100 = assign(base, c10), assign(base, c100)
    meta = np.stack([urank, l10, l100], 1).astype(np.int32)
    base.tofile(os.path.join(out, "base.f32"))
    q.tofile(os.path.join(out, "queries.f32"))
    meta.tofile(os.path.join(out, "meta.i32"))
    bn = (base.astype(np.float64) ** 2).sum(1)

    def cell_teams(c, lab_q, far):
        dq = ((q[:, None, :] - c[None, :, :]) ** 2).sum(2)
        return np.argmax(dq, 1) if far else np.argmin(dq, 1)

    combos = []
    for s in (0.001, 0.01, 0.1, 0.5, 1.0):
        lim = int(round(s * a.n))
        combos.append({"name": "uncorr-%g" % (s * 100), "kind": "uncorrelated", "sel": s,
                       "filters": [None if s >= 1 else json.dumps({"urank": {"$lt": lim}})] * a.nq,
                       "rule": ["urank", lim]})
    for K, col, c in ((10, 1, c10), (100, 2, c100)):
        for far in (0, 1):
            teams = cell_teams(c, None, far)
            key = "c%d" % K
            combos.append({"name": "%s-%d" % ("anti" if far else "corr", 100 // K),
                           "kind": "anti-correlated" if far else "correlated",
                           "sel": float(np.mean([(meta[:, col] == t).mean() for t in teams])),
                           "filters": [json.dumps({key: int(t)}) for t in teams],
                           "rule": ["cell", col, [int(t) for t in teams]]})
    for cb in combos:
        log("truth", cb["name"])
        rule = cb["rule"]
        if rule[0] == "urank":
            m = meta[:, 0] < rule[1]
            fn = lambda i, m=m: m  # noqa: E731
        else:
            col, teams = rule[1], rule[2]
            fn = lambda i, col=col, teams=teams: meta[:, col] == teams[i]  # noqa: E731
        truth(base, bn, q, fn).tofile(os.path.join(out, "truth-%s.i32" % cb["name"]))
    json.dump({"n": a.n, "d": D, "nq": a.nq, "metric": "l2", "combos": combos},
              open(os.path.join(out, "combos.json"), "w"))
    print(out)


if __name__ == "__main__":
    main()
