#!/usr/bin/python3
"""report.py -- bench/scale/run.sh's results into report.json / report.md.

    /usr/bin/python3 bench/scale/report.py RESULTS_DIR N
"""
import json
import os
import re
import sys

import numpy as np


def timing(path):
    """CPU s, wall s and peak RSS (bytes) of one /usr/bin/time -v log."""
    t = open(path).read()
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", t).group(1))
    sys_ = float(re.search(r"System time \(seconds\): ([\d.]+)", t).group(1))
    w = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", t).group(1)
    parts = [float(x) for x in w.split(":")]
    wall = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) * 1024
    return {"cpu_s": user + sys_, "wall_s": wall, "peak_rss": rss}


def main():
    r, n = sys.argv[1], int(sys.argv[2])
    steps = {}
    for s in ("gen", "ingest", "index", "check", "query", "truth"):
        p = os.path.join(r, s + ".time")
        if os.path.exists(p):
            steps[s] = timing(p)
    truth = json.load(open(os.path.join(r, "truth.json")))["truth"]
    allruns = [json.loads(l) for l in open(os.path.join(r, "warden-queries.jsonl"))]
    last = max(x.get("pass", 0) for x in allruns)
    runs = [x for x in allruns if x.get("pass", 0) == last]  # the table: the last pass
    sels = {}
    for s in ("0.1%", "1%", "10%", "100%"):
        cold = np.array([x["ms"] for x in allruns if x["sel"] == s and x.get("pass", 0) == 0])
        rs = [x for x in runs if x["sel"] == s]
        hits = sum(len(set(x["ids"]) & set(truth[s][x["q"]])) for x in rs)
        tot = sum(len(truth[s][x["q"]]) for x in rs)
        lat = np.array([x["ms"] for x in rs])
        sels[s] = {"recall": hits / max(1, tot), "qps": 1e3 / lat.mean(),
                   "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
                   "cold_qps": 1e3 / cold.mean(), "cold_p99_ms": float(np.percentile(cold, 99)),
                   "passes": last + 1}
    fa = {}
    fp = os.path.join(r, "faiss.json")
    if os.path.exists(fp):
        fa = json.load(open(fp))
    ing = json.loads(open(os.path.join(r, "ingest.out")).read().strip().splitlines()[-1])
    idx = json.loads(open(os.path.join(r, "index.out")).read().strip().splitlines()[-1])
    store = int(open(os.path.join(r, "store.bytes")).read() or 0)
    ib = os.path.join(r, "index.bytes")
    index_bytes = int(open(ib).read() or 0) if os.path.exists(ib) and open(ib).read().strip() else 0
    rep = {"n": n, "dim": 384, "steps": steps, "store_bytes": store, "index_bytes": index_bytes,
           "ingest": ing, "index": {k: idx.get(k) for k in ("nlist", "trained_on", "train_ms", "assign_ms",
                                                              "train_bytes", "build_bytes", "bytes", "total_ms")},
           "warden": sels, "faiss": fa}
    json.dump(rep, open(os.path.join(r, "report.json"), "w"), indent=1)
    L = ["# bench-scale: %d x 384 (gen.py, 1000 clusters, cosine)" % n, "",
         "| step | wall s | CPU s | peak RSS |", "| --- | ---: | ---: | ---: |"]
    for s, v in steps.items():
        L.append("| %s | %.1f | %.1f | %.2f GiB |" % (s, v["wall_s"], v["cpu_s"], v["peak_rss"] / 2 ** 30))
    if "ingest" in steps:
        L += ["", "Ingest: %.0f chunks/s (wall), %.0f per CPU second." % (
            n / steps["ingest"]["wall_s"], n / steps["ingest"]["cpu_s"])]
    L += ["Store on disk: %.2f GB; index files: %.2f GB." % (store / 1e9, index_bytes / 1e9), "",
          "| selectivity | warden recall@10 | QPS | p99 ms | first pass QPS (p99 ms) | FAISS IVF-SQ8 best (recall>=0.95) |",
          "| --- | ---: | ---: | ---: | ---: | --- |"]
    for s, v in sels.items():
        fb = (fa.get("sels", {}).get(s) or {}).get("best") if fa.get("sels") else None
        fs = ("nprobe %d: recall %.3f, %.0f QPS, p99 %.2f ms" % (fb["nprobe"], fb["recall"], fb["qps"], fb["p99_ms"])
              if fb else fa.get("skipped", "none reached 0.95"))
        L.append("| %s | %.3f | %.0f | %.2f | %.0f (%.1f) | %s |" % (
            s, v["recall"], v["qps"], v["p99_ms"], v["cold_qps"], v["cold_p99_ms"], fs))
    if fa.get("faiss"):
        L += ["", "FAISS: %s; %s trained in %.0f s, added in %.0f s." % (
            fa["faiss"], fa.get("index"), fa.get("train_s", 0), fa.get("add_s", 0))]
    open(os.path.join(r, "report.md"), "w").write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
