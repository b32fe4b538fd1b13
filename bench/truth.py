#!/usr/bin/python3
"""Exact ground truth: top-10 over each query's allowed set, float64 scores.

For every combination in a workload's manifest (filter mode x selectivity,
and ACL-only queries of the bench users) the allowed set of each query is
computed by common.allowed_rows (the same rule the baselines and the warden
driver use) and the 10 most similar allowed documents are found by brute
force with float64 accumulation: cosine on unit vectors = inner product.
Ties are broken by the lower row id.

Output: bench/data/<workload>/<scale>/truth-<combo>.i32, raw little-endian
int32, nq x 10 row ids, best first (-1 pads when fewer than 10 are allowed).
truth-key.json records what they were computed from; they are recomputed
only when the data changed (or --force).

Usage: truth.py [--quick|--full] [--workload NAME ...] [--force]
"""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402


def log(*a):
    print("[truth]", *a, file=sys.stderr, flush=True)


def topk_rows(scores, cols, k):
    """Top-k column ids of each row of scores (restricted to cols), best
    first, ties to the lower id."""
    nq = scores.shape[0]
    out = np.full((nq, k), -1, dtype=np.int32)
    m = len(cols)
    if m == 0:
        return out
    sub = scores[:, cols] if len(cols) != scores.shape[1] else scores
    kk = min(k, m)
    if m > kk:
        part = np.argpartition(-sub, kk - 1, axis=1)[:, :kk]
        # argpartition may cut inside a group of equal scores; widen by
        # taking everything >= the k-th score, then sort.
        kth = np.take_along_axis(sub, part, 1).min(1)
    else:
        kth = sub.min(1)
    for i in range(nq):
        cand = np.nonzero(sub[i] >= kth[i])[0]
        order = np.lexsort((cols[cand], -sub[i, cand]))[:kk]
        out[i, :kk] = cols[cand[order]]
    return out


def key_of(wd, manifest):
    h = hashlib.sha256()
    h.update(json.dumps(manifest, sort_keys=True).encode())
    for f in ("base.f32", "queries.f32"):
        st = os.stat(os.path.join(wd, f))
        h.update(("%s:%d:%d" % (f, st.st_size, int(st.st_mtime))).encode())
    h.update(b"k=%d" % C.K)
    return h.hexdigest()


def run(workload, scale, force):
    wd = C.wdir(workload, scale)
    if not os.path.exists(os.path.join(wd, "manifest.json")):
        log("%s/%s: no data, run gen.py first; skipped" % (workload, scale))
        return
    m = C.load_manifest(workload, scale)
    key = key_of(wd, m)
    kpath = os.path.join(wd, "truth-key.json")
    if not force and os.path.exists(kpath):
        with open(kpath) as f:
            old = json.load(f)
        if old.get("key") == key and all(
                os.path.exists(os.path.join(wd, c["truth"])) for c in m["combos"]):
            log("%s/%s up to date" % (workload, scale))
            return
    t0 = time.time()
    d = m["d"]
    x = C.load_f32(os.path.join(wd, "base.f32"), d).astype(np.float64)
    q = C.load_f32(os.path.join(wd, "queries.f32"), d).astype(np.float64)
    scores = q @ x.T  # float64 accumulation (BLAS dgemm)
    del x
    log("%s/%s: scores %d x %d in %.1fs" % (workload, scale, *scores.shape,
                                            time.time() - t0))
    for c in m["combos"]:
        t1 = time.time()
        res = np.full((m["nq"], C.K), -1, dtype=np.int32)
        for qidx, mask in C.allowed_rows(m, c, wd):
            cols = np.nonzero(mask)[0]
            res[qidx] = topk_rows(scores[qidx], cols, C.K)
        res.astype("<i4").tofile(os.path.join(wd, c["truth"]))
        log("  %-24s sel=%.4f %.1fs" % (c["id"], c["selectivity"], time.time() - t1))
    with open(kpath, "w") as f:
        json.dump({"key": key, "k": C.K, "computed": time.strftime("%Y-%m-%dT%H:%M:%S"),
                   "seconds": round(time.time() - t0, 1)}, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true")
    g.add_argument("--full", action="store_true")
    ap.add_argument("--workload", action="append", choices=C.WORKLOADS)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    scale = "full" if a.full else "quick"
    for w in a.workload or C.WORKLOADS:
        run(w, scale, a.force)


if __name__ == "__main__":
    main()
