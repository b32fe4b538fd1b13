#!/usr/bin/python3
"""FAISS baselines for the warden benchmark (FAISS 1.12 AVX-512 from
../shared/anchors when it imports, else Debian python3-faiss 1.7.3).

Systems, each measured on every combination (filter mode x selectivity and
ACL-only principals) of every workload:
  faiss-flat       IndexFlatIP + IDSelectorBitmap (exact; cosine = IP on
                   unit vectors)
  faiss-ivf        IndexIVFFlat (nlist ~ 4 sqrt N) + IDSelectorBitmap,
                   nprobe sweep through SearchParametersIVF
  faiss-hnsw       IndexHNSWFlat (M=32) + IDSelectorBitmap, efSearch sweep;
                   1.7.3 ignores SearchParametersHNSW.efSearch for the beam,
                   so index.hnsw.efSearch is set as well
  postfilter-ivf   the naive RAG pipeline: unfiltered top-k' then drop what
  postfilter-hnsw  the principal may not read / the filter rejects
FAISS gets the allowed set as a ready-made bitmap (building it from metadata
and ACLs is not timed); warden pays for its own filter evaluation.

Each system runs in a child process so its peak RSS (getrusage) is its own.
Indexes are cached in bench/data/<workload>/<scale>/ with their build time.
Single-query QPS/latency: one OpenMP thread, one query per call, wall time
per call including the Python call overhead, which is measured and reported
separately (refs.python_call_us).  Batch QPS: all cores; a filter shared by
all queries is one search call, per-query filters are grouped and spread
over one Python thread per core (FAISS releases the GIL).

Output: bench/results/baselines-<workload>-<scale>.json (schema: SCHEMA.md).
Usage: baselines.py [--quick|--full] [--workload NAME ...] [--system NAME ...]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

# Which FAISS (issue 14): FAISS 1.12 AVX-512 from ../shared/anchors (or
# FAISS_PATH) when it imports, Debian's python3-faiss otherwise or with
# WARDEN_BENCH_FAISS=debian; the version and compile options go into the
# results (meta.faiss_version), so every table says which it was.
if os.environ.get("WARDEN_BENCH_FAISS") != "debian":
    _repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for _p in [os.environ.get("FAISS_PATH")] + [
            os.path.join(os.path.dirname(_repo), *([".."] * up), "shared", "anchors",
                         "faiss-1.12-avx512") for up in (0, 1)]:
        if _p and os.path.isdir(_p):
            sys.path.insert(0, os.path.abspath(_p))
            try:
                import faiss as _f  # noqa: F401
            except Exception:  # does not import here: Debian's
                sys.path.remove(os.path.abspath(_p))
                sys.modules.pop("faiss", None)
            break

SYSTEMS = ("faiss-flat", "faiss-ivf", "faiss-hnsw", "postfilter-ivf",
           "postfilter-hnsw")
# sweeps per scale (quick keeps both workloads within ~5 minutes on 2 cores)
NPROBES = {"quick": (1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
           "full": (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)}
EFS = {"quick": (16, 32, 64, 128, 256, 512, 1024),
       "full": (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)}
HNSW_M = 32
HNSW_EFC = 40
STOP_RECALL = 0.995  # a sweep stops once it is this close to exact
# evaluation sizes: queries scored for recall / batch QPS, and queries timed
# one by one on one thread
EVAL = {"quick": (200, 60), "full": (1000, 300)}


def log(*a):
    print("[baselines]", *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------- references

def measure_refs(d):
    """Python per-call overhead, read bandwidth and SGEMM rate of this run."""
    import faiss
    faiss.omp_set_num_threads(1)
    idx = faiss.IndexFlatIP(d)
    idx.add(np.ones((1, d), dtype=np.float32))
    q = np.ones((1, d), dtype=np.float32)
    for _ in range(200):
        idx.search(q, 1)
    n = 5000
    t = time.perf_counter()
    for _ in range(n):
        idx.search(q, 1)
    call_us = (time.perf_counter() - t) / n * 1e6
    p = faiss.SearchParameters()
    bits = np.ones(1, dtype=np.uint8)
    p.sel = faiss.IDSelectorBitmap(1, faiss.swig_ptr(bits))
    t = time.perf_counter()
    for _ in range(n):
        idx.search(q, 1, params=p)
    call_sel_us = (time.perf_counter() - t) / n * 1e6
    # single-thread read bandwidth: sum a 512 MB array (numpy, 1 thread)
    a = np.ones(128 * 2**20, dtype=np.float32)
    a.sum()
    t = time.perf_counter()
    reps = 3
    for _ in range(reps):
        a.sum()
    bw = reps * a.nbytes / (time.perf_counter() - t) / 1e9
    del a
    # SGEMM through numpy's BLAS (all cores), 2048^3
    m = 2048
    x = np.random.default_rng(0).standard_normal((m, m)).astype(np.float32)
    x @ x
    t = time.perf_counter()
    reps = 3
    for _ in range(reps):
        x @ x
    gf = reps * 2 * m ** 3 / (time.perf_counter() - t) / 1e9
    return {"python_call_us": round(call_us, 2),
            "python_call_with_selector_us": round(call_sel_us, 2),
            "read_bandwidth_gbs_1thread": round(bw, 2),
            "sgemm_gflops_all_cores": round(gf, 1)}


# ---------------------------------------------------------------- helpers

class Combo:
    """One combination with its truth and per-group bitmap selectors."""

    def __init__(self, faiss, manifest, c, wd, nq):
        self.c = c
        self.nq = nq
        self.groups = []
        self.qmask = [None] * nq  # query -> index into self.groups
        for qidx, mask in C.allowed_rows(manifest, c, wd):
            qidx = qidx[qidx < nq]
            if len(qidx) == 0:
                continue
            bits = np.packbits(mask, bitorder="little")
            sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
            self.groups.append({"q": qidx, "mask": mask, "bits": bits, "sel": sel})
            for qi in qidx:
                self.qmask[qi] = len(self.groups) - 1
        t = C.load_i32(os.path.join(wd, c["truth"])).reshape(-1, C.K)
        self.truth = t[:nq]
        self.shared = len(self.groups) == 1

    def score(self, ids):
        """recall@10, leaks and missing of an nq x >=10 id array."""
        hits = leaks = missing = 0
        tot = 0
        for g in self.groups:
            for qi in g["q"]:
                row = ids[qi, :C.K]
                got = row[row >= 0]
                missing += C.K - len(got)
                leaks += int((~g["mask"][got]).sum())
                tr = self.truth[qi]
                tr = tr[tr >= 0]
                hits += len(np.intersect1d(got, tr))
                tot += len(tr)
        return hits / max(1, tot), leaks, missing


def timed_single(fn, nsingle):
    lat = np.empty(nsingle)
    for i in range(nsingle):
        t = time.perf_counter()
        fn(i)
        lat[i] = time.perf_counter() - t
    return lat


def lat_stats(lat):
    return {"qps_single": round(len(lat) / lat.sum(), 1),
            "p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 4),
            "p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 4)}


# ---------------------------------------------------------------- indexes

def get_index(faiss, kind, x, wd, ncores):
    """Build or load a cached index; returns (index, build_s, cached)."""
    n, d = x.shape
    if kind == "flat":
        t = time.perf_counter()
        idx = faiss.IndexFlatIP(d)
        idx.add(x)
        return idx, time.perf_counter() - t, False, {}
    if kind == "ivf":
        nlist = int(round(4 * np.sqrt(n)))
        params = {"nlist": nlist, "train_iters": 10}
        name = "index-ivf-%d.faiss" % nlist
    else:
        params = {"M": HNSW_M, "efConstruction": HNSW_EFC}
        name = "index-hnsw-M%d-efc%d.faiss" % (HNSW_M, HNSW_EFC)
    path = os.path.join(wd, name)
    side = path + ".json"
    if os.path.exists(path) and os.path.exists(side):
        with open(side) as f:
            info = json.load(f)
        if info.get("n") == n and info.get("base_mtime") == int(
                os.stat(os.path.join(wd, "base.f32")).st_mtime):
            return faiss.read_index(path), info["build_s"], True, params
    faiss.omp_set_num_threads(ncores)
    t = time.perf_counter()
    if kind == "ivf":
        quant = faiss.IndexFlatIP(d)
        idx = faiss.IndexIVFFlat(quant, d, params["nlist"], faiss.METRIC_INNER_PRODUCT)
        idx.cp.niter = params["train_iters"]
        idx.train(x)
        idx.add(x)
    else:
        idx = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = HNSW_EFC
        idx.add(x)
    build_s = time.perf_counter() - t
    faiss.write_index(idx, path)
    with open(side, "w") as f:
        json.dump({"n": n, "build_s": build_s, "threads": ncores,
                   "base_mtime": int(os.stat(os.path.join(wd, "base.f32")).st_mtime)}, f)
    return idx, build_s, False, params


# ------------------------------------------------------------ evaluation

def run_filtered(faiss, idx, combo, Q, nsingle, ncores, make_params):
    """Recall/leaks + batch and single-query timing of one filtered config."""
    nq = combo.nq
    k = C.K
    plist = [make_params(g["sel"]) for g in combo.groups]
    ids = np.full((nq, k), -1, dtype=np.int64)
    # batch
    if combo.shared:
        faiss.omp_set_num_threads(ncores)
        t = time.perf_counter()
        _, I = idx.search(Q[:nq], k, params=plist[0])
        tb = time.perf_counter() - t
        ids[:] = I
    else:
        def work(gis):
            faiss.omp_set_num_threads(1)
            for gi in gis:
                g = combo.groups[gi]
                _, I = idx.search(Q[g["q"]], k, params=plist[gi])
                ids[g["q"]] = I
        chunks = [list(range(len(combo.groups)))[i::ncores] for i in range(ncores)]
        with ThreadPoolExecutor(ncores) as ex:
            t = time.perf_counter()
            list(ex.map(work, chunks))
            tb = time.perf_counter() - t
    recall, leaks, missing = combo.score(ids)
    # single query, one thread
    faiss.omp_set_num_threads(1)
    qm = combo.qmask

    def one(i):
        idx.search(Q[i:i + 1], k, params=plist[qm[i]])
    lat = timed_single(one, nsingle)
    rec = {"recall": round(recall, 4), "leaks": leaks, "missing": missing,
           "qps_batch": round(nq / tb, 1)}
    rec.update(lat_stats(lat))
    return rec


def postfilter_eval(faiss, idx, combos, Q, nq, nsingle, ncores, kprime):
    """One unfiltered config scored against every combination."""
    faiss.omp_set_num_threads(ncores)
    t = time.perf_counter()
    _, I = idx.search(Q[:nq], kprime)
    tb = time.perf_counter() - t
    faiss.omp_set_num_threads(1)

    def one(i):
        idx.search(Q[i:i + 1], kprime)
    lat = timed_single(one, nsingle)
    out = []
    for cb in combos:
        ids = np.full((nq, C.K), -1, dtype=np.int64)
        t = time.perf_counter()
        for g in cb.groups:
            m = g["mask"]
            for qi in g["q"]:
                row = I[qi]
                row = row[row >= 0]
                keep = row[m[row]][:C.K]
                ids[qi, :len(keep)] = keep
        drop_s = (time.perf_counter() - t) / nq  # per query, Python loop
        recall, leaks, missing = cb.score(ids)
        lat2 = lat + drop_s
        rec = {"recall": round(recall, 4), "leaks": leaks, "missing": missing,
               "qps_batch": round(nq / (tb + drop_s * nq / ncores), 1),
               "drop_ms": round(drop_s * 1e3, 4)}
        rec.update(lat_stats(lat2))
        out.append((cb, rec))
    return out


def worker(workload, scale, system, outpath):
    import faiss
    ncores = os.cpu_count() or 1
    wd = C.wdir(workload, scale)
    m = C.load_manifest(workload, scale)
    nq, nsingle = EVAL[scale]
    nq = min(nq, m["nq"])
    x = C.load_f32(os.path.join(wd, "base.f32"), m["d"])
    Q = np.ascontiguousarray(C.load_f32(os.path.join(wd, "queries.f32"), m["d"]))
    combos = [Combo(faiss, m, c, wd, nq) for c in m["combos"]]
    kind = system.split("-")[1]
    idx, build_s, cached, iparams = get_index(faiss, kind, x, wd, ncores)
    del x
    index_mb = None
    try:
        index_mb = round(faiss.serialize_index(idx).nbytes / 2**20, 1)
    except Exception:  # noqa: BLE001 - size is informative only
        pass
    base = {"system": system, "workload": workload, "scale": scale,
            "build_s": round(build_s, 2), "build_cached": cached,
            "index_mb": index_mb, "strategy": None,
            "nq_recall": nq, "nq_single": nsingle, "k": C.K}
    recs = []

    def emit(cb, params, r):
        rec = dict(base)
        rec.update({"mode": cb.c["mode"], "combo": cb.c["id"],
                    "selectivity": cb.c["selectivity"],
                    "nominal_selectivity": cb.c["nominal_selectivity"],
                    "principal": cb.c["principal"],
                    "params": dict(iparams, **params)})
        rec.update(r)
        recs.append(rec)

    t0 = time.time()
    if system == "faiss-flat":
        for cb in combos:
            def mk(sel):
                p = faiss.SearchParameters()
                p.sel = sel
                return p
            emit(cb, {}, run_filtered(faiss, idx, cb, Q, nsingle, ncores, mk))
    elif system == "faiss-ivf":
        for cb in combos:
            for npb in NPROBES[scale]:
                if npb > idx.nlist:
                    break

                def mk(sel, npb=npb):
                    p = faiss.SearchParametersIVF()
                    p.sel = sel
                    p.nprobe = npb
                    return p
                r = run_filtered(faiss, idx, cb, Q, nsingle, ncores, mk)
                emit(cb, {"nprobe": npb}, r)
                if r["recall"] >= STOP_RECALL:
                    break
    elif system == "faiss-hnsw":
        for cb in combos:
            for ef in EFS[scale]:
                idx.hnsw.efSearch = ef

                def mk(sel, ef=ef):
                    p = faiss.SearchParametersHNSW()
                    p.sel = sel
                    p.efSearch = ef
                    return p
                r = run_filtered(faiss, idx, cb, Q, nsingle, ncores, mk)
                emit(cb, {"efSearch": ef}, r)
                if r["recall"] >= STOP_RECALL:
                    break
    elif system == "postfilter-ivf":
        n = idx.ntotal
        for kp, npb in ((100, 16), (100, 64), (1000, 64), (1000, 256),
                        (10000, 256), (10000, 1024)):
            if kp > n or npb > idx.nlist:
                continue
            idx.nprobe = npb
            for cb, r in postfilter_eval(faiss, idx, combos, Q, nq, nsingle,
                                         ncores, kp):
                emit(cb, {"kprime": kp, "nprobe": npb}, r)
    elif system == "postfilter-hnsw":
        n = idx.ntotal
        # ef >= k'; k' = 10k (ef 10k) only in full mode: too slow for quick
        for kp, ef in ((100, 128), (100, 512), (1000, 1000), (10000, 10000)):
            if kp > n or (kp >= 10000 and scale == "quick"):
                continue
            idx.hnsw.efSearch = ef
            for cb, r in postfilter_eval(faiss, idx, combos, Q, nq, nsingle,
                                         ncores, kp):
                emit(cb, {"kprime": kp, "efSearch": ef}, r)
    rss = round(C.rss_mb(), 1)
    for r in recs:
        r["rss_mb"] = rss
    log("%s %s/%s: %d records, eval %.1fs, build %.1fs%s, rss %.0f MB"
        % (system, workload, scale, len(recs), time.time() - t0, build_s,
           " (cached)" if cached else "", rss))
    with open(outpath, "w") as f:
        json.dump(recs, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true")
    g.add_argument("--full", action="store_true")
    ap.add_argument("--workload", action="append", choices=C.WORKLOADS)
    ap.add_argument("--system", action="append", choices=SYSTEMS)
    ap.add_argument("--worker", nargs=4, metavar=("WORKLOAD", "SCALE", "SYSTEM", "OUT"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(*a.worker)
        return
    scale = "full" if a.full else "quick"
    os.makedirs(C.RESULTS, exist_ok=True)
    for w in a.workload or C.WORKLOADS:
        wd = C.wdir(w, scale)
        if not os.path.exists(os.path.join(wd, "truth-key.json")):
            log("%s/%s: no data/truth; run gen.py and truth.py first; skipped" % (w, scale))
            continue
        m = C.load_manifest(w, scale)
        t0 = time.time()
        refs = measure_refs(m["d"])
        log("%s refs: %s" % (w, refs))
        records = []
        for s in a.system or SYSTEMS:
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tf:
                out = tf.name
            try:
                r = subprocess.run([sys.executable, os.path.abspath(__file__),
                                    "--worker", w, scale, s, out])
                if r.returncode != 0:
                    log("%s on %s failed (exit %d)" % (s, w, r.returncode))
                    continue
                with open(out) as f:
                    records += json.load(f)
            finally:
                os.unlink(out)
        import faiss
        doc = {"meta": {"kind": "baselines", "workload": w, "scale": scale,
                        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
                        "machine": C.machine_info(), "commit": C.git_commit(),
                        "faiss_version": "%s %s" % (faiss.__version__,
                                                    faiss.get_compile_options()),
                        "n": m["n"], "d": m["d"], "nq": m["nq"], "k": C.K,
                        "seed": m["seed"], "data": m["data"],
                        "eval_queries": EVAL[scale][0],
                        "single_queries": EVAL[scale][1],
                        "seconds": round(time.time() - t0, 1)},
               "refs": refs, "records": records}
        path = os.path.join(C.RESULTS, "baselines-%s-%s.json" % (w, scale))
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)
        log("wrote %s (%d records, %.0fs)" % (path, len(records), time.time() - t0))


if __name__ == "__main__":
    main()
