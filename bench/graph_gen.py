#!/usr/bin/python3
"""Issue 14 workloads: generated data families whose geometry differs from
each other and from synthetic-384 (unit-norm Gaussian mixture) and GloVe-100
(cosine word vectors), so the graph index and the planner are measured on
data they were not tuned on.  `--family` picks one (default image-784):

  image-784      L2.  28x28 "images" with non-negative pixel values 0..255,
                 drawn from 40 classes, each a prototype plus a smooth
                 deformation in an 8-dimensional latent space (low intrinsic
                 dimension, clustered, strongly correlated neighbouring
                 pixels, large shared offsets).  Integer values 0..255: almost
                 lossless under per-dimension 8-bit scalar quantization, so
                 this family flatters SQ8 codes.
  text-384       cosine.  Sentence-embedding-like: topics of Zipf-distributed
                 sizes in a latent space with a power-law eigen-spectrum
                 (variance of component i ~ 1/i, randomly rotated, so every
                 coordinate mixes many components), a shared mean offset (all
                 cosines positive, as with real encoders), a few "rogue"
                 coordinates with larger offset and variance, a Student-t
                 noise floor and rare large spikes.  Float values whose
                 per-dimension range is set by a few outliers, not by the
                 bulk: an 8-bit code per dimension spends most of its levels
                 on values almost no vector has.
  neardup-256    L2.  Many groups of near-duplicates (2 to ~60 members that
                 differ by a tiny per-group jitter, 0.3 % to 3 % of the
                 distance between unrelated neighbours) inside 64 broad
                 Gaussian clusters; half the queries are fresh near-duplicates
                 of an indexed group, half fresh points.  The true top-10 is
                 often decided by differences far below an 8-bit code's step,
                 and graph search meets many almost-equal distances.
  heavytail-128  cosine.  100 clusters, centres and offsets drawn per
                 dimension from a Student-t (3 degrees of freedom) times a
                 log-normal per-dimension scale (sigma 1: a few dimensions
                 carry ~10x the spread of the median one and dominate the
                 angle).  Every dimension's range is set by its extreme
                 t-draws: stresses 8-bit codes and per-dimension ranges.
  uniform-960    L2.  High-dimensional, near-uniform in [0,1]^960 with only a
                 weak cluster component (GIST-like hard case): high intrinsic
                 dimension, distances concentrate (the 10th and the 100th
                 neighbour are almost equally far), so graphs and IVF need to
                 visit much of the data for a high recall.

Writes to bench/data/<family>/<N>/:
  base.f32 (N x D), queries.f32 (NQ x D, held out, same generator),
  meta.i32 (N x 3: urank, c10, c100 -- a random permutation rank and the
  document's cell among 10 / 100 k-means cells; for cosine families k-means
  runs on the normalised vectors),
  combos.json (metric, every filter combination: name, kind, selectivity,
  per-query filter JSON for warden, allowed rule for FAISS; families other
  than image-784 also record "family"),
  truth-<combo>.i32 (NQ x 10, exact top-10 over each query's allowed set under
  the family's metric: cosine = inner product of the normalised vectors).
The filter combinations are the same for every family.

usage: graph_gen.py [--family F] [--n N] [--nq NQ] [--seed S]
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


def gen_image(rng, n, nq):
    ncl, r = 40, 8
    protos = np.stack([blobs(rng, 6) for _ in range(ncl)])
    protos /= protos.max(1, keepdims=True)
    bases = np.stack([np.stack([blobs(rng, 2) * rng.choice([-1, 1]) * 0.35 for _ in range(r)])
                      for _ in range(ncl)])
    return generate(n, rng, protos, bases), generate(nq, rng, protos, bases)


def gen_text(rng, n, nq, d=384):
    """Topics (Zipf sizes) in a rotated power-law latent space + mean offset,
    rogue coordinates, Student-t noise floor and rare spikes (see header)."""
    sq = np.sqrt(1.0 / np.arange(1, d + 1))
    sq /= np.sqrt((sq * sq).sum())                    # latent variance sums to 1
    rot = np.linalg.qr(rng.normal(size=(d, d)))[0]
    ntop = 300
    w = 1.0 / np.arange(1, ntop + 1) ** 1.1
    w /= w.sum()
    cent = rng.normal(size=(ntop, d)) * sq
    spread = rng.uniform(0.35, 0.7, ntop)
    mu = rng.normal(size=d)
    mu *= 0.8 / np.linalg.norm(mu)
    rogue = rng.choice(d, 4, replace=False)
    rogue_off = rng.choice([-1, 1], 4) * 0.25

    def draw(m):
        out = np.empty((m, d), dtype=np.float32)
        for s in range(0, m, 20000):
            k = min(20000, m - s)
            t = rng.choice(ntop, k, p=w)
            z = cent[t] + rng.normal(size=(k, d)) * sq * spread[t, None]
            x = z @ rot.T + mu
            x[:, rogue] = 3.0 * x[:, rogue] + rogue_off
            x += 0.01 * rng.standard_t(2.5, size=(k, d))
            spike = rng.random((k, d)) < 2e-4
            x[spike] += rng.normal(0, 0.5, int(spike.sum()))
            out[s:s + k] = x
        return out
    return draw(n), draw(nq)


def gen_neardup(rng, n, nq, d=256):
    """Near-duplicate groups (geometric sizes, per-group jitter) inside 64
    broad clusters; half the queries near-duplicates of indexed groups."""
    ncl = 64
    ccent = rng.normal(size=(ncl, d))
    cscale = rng.uniform(0.5, 0.9, ncl)
    sizes = rng.geometric(0.15, size=n)
    cs = np.cumsum(sizes)
    ng = int(np.searchsorted(cs, n)) + 1
    sizes = sizes[:ng].copy()
    sizes[-1] -= int(cs[ng - 1]) - n
    gcl = rng.integers(0, ncl, ng)
    orig = ccent[gcl] + rng.normal(size=(ng, d)) * cscale[gcl, None]
    jit = np.exp(rng.uniform(np.log(0.005), np.log(0.05), ng))
    g = np.repeat(np.arange(ng), sizes)
    base = (orig[g] + rng.normal(size=(n, d)) * jit[g, None]).astype(np.float32)
    base = base[rng.permutation(n)]
    qg = rng.integers(0, ng, nq)
    qc = rng.integers(0, ncl, nq)
    fresh = ccent[qc] + rng.normal(size=(nq, d)) * cscale[qc, None]
    dup = orig[qg] + rng.normal(size=(nq, d)) * jit[qg, None]
    q = np.where((np.arange(nq) % 2 == 0)[:, None], dup, fresh).astype(np.float32)
    return base, q


def gen_heavytail(rng, n, nq, d=128):
    """Student-t (3 dof) clusters times log-normal per-dimension scales."""
    ncl = 100
    scale = np.exp(rng.normal(0, 1.0, d))
    cent = rng.standard_t(3, size=(ncl, d)) * scale

    def draw(m):
        lab = rng.integers(0, ncl, m)
        return (cent[lab] + 0.6 * rng.standard_t(3, size=(m, d)) * scale).astype(np.float32)
    return draw(n), draw(nq)


def gen_uniform(rng, n, nq, d=960):
    """0.8 U[0,1]^d + 0.2 one of 100 uniform centres: near-uniform."""
    ncl = 100
    cent = rng.uniform(0, 1, (ncl, d))

    def draw(m):
        out = np.empty((m, d), dtype=np.float32)
        for s in range(0, m, 20000):
            k = min(20000, m - s)
            lab = rng.integers(0, ncl, k)
            out[s:s + k] = 0.8 * rng.uniform(0, 1, (k, d)) + 0.2 * cent[lab]
        return out
    return draw(n), draw(nq)


FAMILIES = {  # name: (generator, metric, dimension)
    "image-784": (gen_image, "l2", D),
    "text-384": (gen_text, "cosine", 384),
    "neardup-256": (gen_neardup, "l2", 256),
    "heavytail-128": (gen_heavytail, "cosine", 128),
    "uniform-960": (gen_uniform, "l2", 960),
}


def unit(x):
    """Rows scaled to unit L2 norm (float32, as warden stores cosine vectors)."""
    x64 = x.astype(np.float64)
    return (x64 / np.linalg.norm(x64, axis=1, keepdims=True)).astype(np.float32)


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


def truth(d, allowed_fn, k=10):
    """Exact top-k of each query over its allowed rows; d[i] is query i's
    distance (smaller is nearer) to every base row."""
    out = np.full((len(d), k), -1, dtype=np.int32)
    for i in range(len(d)):
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
    ap.add_argument("--family", default="image-784", choices=sorted(FAMILIES))
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--nq", type=int, default=200)
    ap.add_argument("--seed", type=int, default=14)
    a = ap.parse_args()
    gen, metric, dim = FAMILIES[a.family]
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", a.family, str(a.n))
    if os.path.exists(os.path.join(out, "combos.json")):
        log("exists:", out)
        print(out)
        return
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    log("generating", a.family, a.n, "x", dim)
    base, q = gen(rng, a.n, a.nq)
    assert base.shape == (a.n, dim) and q.shape == (a.nq, dim)
    # the geometry the metric sees: cosine ranks by the normalised vectors
    gb, gq = (unit(base), unit(q)) if metric == "cosine" else (base, q)
    urank = rng.permutation(a.n).astype(np.int32)
    samp = gb[rng.choice(a.n, min(a.n, 20000), replace=False)]
    c10 = kmeans(samp, 10, rng)
    c100 = kmeans(samp, 100, rng)
    l10, l100 = assign(gb, c10), assign(gb, c100)
    meta = np.stack([urank, l10, l100], 1).astype(np.int32)
    base.tofile(os.path.join(out, "base.f32"))
    q.tofile(os.path.join(out, "queries.f32"))
    meta.tofile(os.path.join(out, "meta.i32"))
    log("distances")
    # L2: |b|^2 - 2 q.b (|q|^2 is constant per query); cosine: -q.b of the
    # normalised vectors (warden's cosine score)
    bn = (gb.astype(np.float64) ** 2).sum(1) if metric == "l2" else np.zeros(a.n)
    dist = bn[None, :] - 2.0 * (gq.astype(np.float64) @ gb.astype(np.float64).T)

    def cell_teams(c, far):
        dq = ((gq[:, None, :] - c[None, :, :]) ** 2).sum(2)
        return np.argmax(dq, 1) if far else np.argmin(dq, 1)

    combos = []
    for s in (0.001, 0.01, 0.1, 0.5, 1.0):
        lim = int(round(s * a.n))
        combos.append({"name": "uncorr-%g" % (s * 100), "kind": "uncorrelated", "sel": s,
                       "filters": [None if s >= 1 else json.dumps({"urank": {"$lt": lim}})] * a.nq,
                       "rule": ["urank", lim]})
    for K, col, c in ((10, 1, c10), (100, 2, c100)):
        for far in (0, 1):
            teams = cell_teams(c, far)
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
        truth(dist, fn).tofile(os.path.join(out, "truth-%s.i32" % cb["name"]))
    man = {"n": a.n, "d": dim, "nq": a.nq, "metric": metric, "combos": combos}
    if a.family != "image-784":
        man["family"] = a.family
    json.dump(man, open(os.path.join(out, "combos.json"), "w"))
    print(out)


if __name__ == "__main__":
    main()
