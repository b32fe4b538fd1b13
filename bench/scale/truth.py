#!/usr/bin/python3
"""truth.py -- exact ground truth and FAISS for `make bench-scale`.

    /usr/bin/python3 bench/scale/truth.py DATA N OUTDIR [--faiss]

DATA is gen.py's prefix (DATA.npy, DATA.queries.npy).  For every query and
selectivity of scale_query.c (0.1 %: user:u<q%1000>; 1 %: group:g<q%100>;
10 %: groups g<q%10*10..+9>; 100 %: all) the exact top 10 by cosine over
the documents that principal may read, computed here from the .npy with
NumPy in blocks (not through warden): OUTDIR/truth.json.

--faiss: FAISS on the same vectors (FAISS 1.12 AVX-512 from
../shared/anchors when it imports, else Debian's python3-faiss 1.7.3;
bench/faiss_pick.py, and faiss.json says which): IndexIVFScalar-
Quantizer (SQ8, nlist = 4 sqrt N, inner product on unit vectors, trained on
a random 40 * nlist vectors, as warden's IVF), IDSelectorBitmap for each
query's allowed set, nprobe doubled from 1 until recall@10 >= 0.95, single
thread, one Python call per query (its ~20-50 us overhead is in FAISS's
QPS): OUTDIR/faiss.json.  Memory: the SQ8 codes (N * 384 bytes), the
training sample and one block of floats (rows are read, not mapped).
"""
import json
import os
import sys
import time

import numpy as np

K = 10
BLOCK = 200000


def allowed_mask(sel, q, n):
    """Documents principal q may read at selectivity sel (gen.py's ACLs)."""
    i = np.arange(n)
    t = i % 1000
    if sel == "0.1%":
        return t == q % 1000            # user:u<i%1000>
    if sel == "1%":
        return (t % 100) == q % 100     # group:g<t%100>
    if sel == "10%":
        lo = (q % 10) * 10
        return ((t % 100) >= lo) & ((t % 100) < lo + 10)
    return np.ones(n, bool)


SELS = ["0.1%", "1%", "10%", "100%"]


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class Rows:
    """Row blocks of a float32 C-order .npy read with pread, not a memory
    map: a map's touched pages count in the resident set (15 GB at 10M)."""

    def __init__(self, path):
        self.f = open(path, "rb")
        v = np.lib.format.read_magic(self.f)
        shape, fortran, dtype = np.lib.format._read_array_header(self.f, v)
        assert not fortran and dtype == np.float32, (fortran, dtype)
        self.shape, self.off = shape, self.f.tell()

    def __getitem__(self, sl):
        if isinstance(sl, slice):
            lo, hi = sl.start, sl.stop
            self.f.seek(self.off + lo * self.shape[1] * 4)
            return np.fromfile(self.f, np.float32, (hi - lo) * self.shape[1]).reshape(hi - lo, self.shape[1])
        return np.stack([self[int(i):int(i) + 1][0] for i in sl])


def main():
    data, n, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    emb = Rows(data + ".npy")
    qs = unit(np.load(data + ".queries.npy").astype(np.float32))
    nq = len(qs)
    assert emb.shape[0] == n, (emb.shape, n)
    t0 = time.time()
    # per selectivity and query: running top K (score, id)
    best = {s: [(np.full(K, -np.inf), np.full(K, -1)) for _ in range(nq)] for s in SELS}
    t_all = np.arange(n) % 1000
    for lo in range(0, n, BLOCK):
        hi = min(n, lo + BLOCK)
        x = unit(np.asarray(emb[lo:hi], dtype=np.float32))
        sc = qs @ x.T  # nq x B
        tt = t_all[lo:hi]
        for s in SELS:
            for q in range(nq):
                if s == "0.1%":
                    m = tt == q % 1000
                elif s == "1%":
                    m = (tt % 100) == q % 100
                elif s == "10%":
                    b = (q % 10) * 10
                    m = ((tt % 100) >= b) & ((tt % 100) < b + 10)
                else:
                    m = None
                v = sc[q] if m is None else np.where(m, sc[q], -np.inf)
                top = np.argpartition(-v, K)[:K] if len(v) > K else np.arange(len(v))
                bs, bi = best[s][q]
                cs = np.concatenate([bs, v[top]])
                ci = np.concatenate([bi, top + lo])
                o = np.argsort(-cs, kind="stable")[:K]
                best[s][q] = (cs[o], ci[o])
        sys.stderr.write("\rtruth: %d/%d" % (hi, n))
    sys.stderr.write("\n")
    truth = {s: [[int(i) for i, sc in zip(best[s][q][1], best[s][q][0]) if sc > -np.inf]
                 for q in range(nq)] for s in SELS}
    json.dump({"k": K, "queries": nq, "seconds": time.time() - t0, "truth": truth},
              open(outdir + "/truth.json", "w"))
    if "--faiss" in sys.argv:
        faiss_run(emb, qs, n, truth, outdir)


def faiss_run(emb, qs, n, truth, outdir):
    try:
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        sys.path.insert(0, os.path.join(repo, "bench"))
        from faiss_pick import describe, import_faiss
        faiss = import_faiss(repo, log=lambda m: sys.stderr.write("truth: %s\n" % m))
    except ImportError:
        json.dump({"skipped": "python3-faiss not installed"}, open(outdir + "/faiss.json", "w"))
        return
    faiss.omp_set_num_threads(2)
    d = emb.shape[1]
    nlist = max(1, int(4 * np.sqrt(n)))
    quant = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFScalarQuantizer(quant, d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT)
    t0 = time.time()
    ntrain = min(n, 40 * nlist)
    rng = np.random.default_rng(1)
    pick = np.sort(rng.choice(n, ntrain, replace=False))
    train = np.concatenate([emb[lo:min(n, lo + BLOCK)][pick[(pick >= lo) & (pick < lo + BLOCK)] - lo]
                            for lo in range(0, n, BLOCK)])
    index.train(unit(train))
    del train
    t_train = time.time() - t0
    t0 = time.time()
    for lo in range(0, n, BLOCK):
        index.add(unit(np.asarray(emb[lo:min(n, lo + BLOCK)], dtype=np.float32)))
    t_add = time.time() - t0
    faiss.omp_set_num_threads(1)  # queries single-threaded, as scale_query.c
    res = {"faiss": describe(faiss), "index": "IVF%d,SQ8" % nlist, "train_s": t_train, "add_s": t_add, "sels": {}}
    nprobes = [p for p in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096) if p <= nlist]
    if nprobes[-1] != nlist:
        nprobes.append(nlist)
    for s in SELS:
        masks = {}
        pts = []
        for p in nprobes:
            lat, hits, tot = [], 0, 0
            for q in range(len(qs)):
                key = q % 1000 if s == "0.1%" else q % 100 if s == "1%" else q % 10 if s == "10%" else 0
                if key not in masks:
                    masks[key] = np.packbits(allowed_mask(s, q, n), bitorder="little")
                sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(masks[key]))
                params = faiss.SearchParametersIVF(sel=sel, nprobe=p)
                t1 = time.perf_counter()
                _, I = index.search(qs[q:q + 1], K, params=params)
                lat.append((time.perf_counter() - t1) * 1e3)
                want = set(truth[s][q])
                hits += len(want & set(int(i) for i in I[0] if i >= 0))
                tot += len(want)
            lat = np.array(lat)
            pts.append({"nprobe": p, "recall": hits / max(1, tot), "qps": 1e3 / lat.mean(),
                        "p99_ms": float(np.percentile(lat, 99))})
            if hits / max(1, tot) >= 0.95:
                break
        ok = [x for x in pts if x["recall"] >= 0.95]
        res["sels"][s] = {"best": max(ok, key=lambda x: x["qps"]) if ok else None, "sweep": pts}
        sys.stderr.write("faiss %s: %s\n" % (s, res["sels"][s]["best"]))
    json.dump(res, open(outdir + "/faiss.json", "w"))


if __name__ == "__main__":
    main()
