#!/usr/bin/python3
"""Markdown table of the issue-14 bench for one data family
(bench/graph_faiss.py outputs):
per combination warden's QPS and recall next to the best FAISS
configuration reaching recall@10 0.95, for each FAISS run given, with the
ratio; then build times and index bytes per vector.

usage: graph_report.py BUILD.json FAISS_RUN.json [FAISS_RUN.json ...]
"""
import json
import sys

build = json.load(open(sys.argv[1]))
runs = [json.load(open(p)) for p in sys.argv[2:]]
g = build["index"]["graph"]
# one line per family of bench/graph_gen.py (its header says why each differs)
FAMILIES = {
    "image-784": "generated L2, %d x %d, clustered, low intrinsic dimension",
    "text-384": "generated cosine, %d x %d, sentence-embedding-like: power-law spectrum, "
                "mean offset, Zipf topics, outlier-dominated per-dimension ranges",
    "neardup-256": "generated L2, %d x %d, near-duplicate groups inside broad clusters",
    "heavytail-128": "generated cosine, %d x %d, Student-t values, log-normal "
                     "per-dimension scales",
    "uniform-960": "generated L2, %d x %d, near-uniform, high intrinsic dimension",
}
fam = runs[0].get("workload", "image-784")
desc = FAMILIES.get(fam, "generated " + runs[0].get("metric", "l2") + ", %d x %d")
print("%s (%s); single query, one thread; %s." % (
    fam, desc % (runs[0]["n"], runs[0]["d"]), runs[0]["machine"]))
print()
for r in runs:
    print("- FAISS: %s; Python call overhead %.1f us per call (included)" %
          (r["faiss"], r["python_call_us"]))
print()
print("QPS below = 1e6 / median latency (the machine was loaded: a few preempted "
      "calls dominate a mean; mean QPS and every configuration are in the JSON).")
print()
hdr = "| filter | sel | warden QPS (recall, strategy) |"
sep = "|---|---|---|"
for r in runs:
    v = r["faiss"].split()[0]
    hdr += " best FAISS %s (recall) | ratio |" % v
    sep += "---|---|"
print(hdr)
print(sep)
for i, p in enumerate(runs[0]["points"]):
    w = p["warden"]
    row = "| %s | %.3g %% | %.0f (%.3f, %s%s) |" % (
        p["combo"], 100 * p["selectivity"], 1e6 / w["p50_us"], w["recall"], w["strategy"],
        " ef %s" % w["ef_search"] if w["strategy"] == "graph" else "")
    for r in runs:
        q = r["points"][i]
        b = q["faiss_best"]
        wr = q["warden"]
        if b:
            row += " %.0f %s (%.3f) | %.2fx%s |" % (
                1e6 / b["p50_us"], b["system"], b["recall"], q["ratio"],
                "" if r is runs[0] else " (warden %.0f)" % (1e6 / wr["p50_us"]))
        else:
            row += " none reaches 0.95 | - |"
    print(row)
print()
print("warden ran right before each FAISS run of the same combination (its QPS "
      "in the first column is from the first run; the ratio of a later run uses "
      "warden's figure of that run).  Leaks (hits outside the allowed set): %s." %
      ", ".join(str(sum(p["warden"]["leaks"] for p in r["points"])) for r in runs))
print()
# batch, all cores (bench/graph_faiss.py: warden one query per call from one
# thread per core on one handle; FAISS its best single-query configuration as
# one batch call when the filter is shared, else one call per query from one
# thread per core)
r0 = runs[0]
if any(p["warden"].get("batch_qps") for p in r0["points"]):
    print("Batch on all cores (QPS, best of three runs each):")
    print()
    bh = "| filter | warden batch QPS |"
    bs = "|---|---|"
    for r in runs:
        bh += " FAISS %s batch QPS (config) | ratio |" % r["faiss"].split()[0]
        bs += "---|---|"
    print(bh)
    print(bs)
    for i, p in enumerate(r0["points"]):
        row = "| %s | %.0f |" % (p["combo"], p["warden"].get("batch_qps", 0))
        for r in runs:
            q = r["points"][i]
            b = q["faiss_best"]
            if b and b.get("batch_qps"):
                row += " %.0f (%s) | %.2fx |" % (b["batch_qps"], b["system"],
                                                q["warden"].get("batch_qps", 0) / b["batch_qps"])
            else:
                row += " - | - |"
        print(row)
    print()
print("| build (2 threads) | seconds | index bytes per vector |")
print("|---|---|---|")
print("| warden graph (M 16, efC 64) + calibration | %.1f + %.1f | %.0f (codes + graph) |" % (
    g["build_ms"] / 1e3, g["calibrate_ms"] / 1e3, g["bytes_per_vector"]))
print("| warden IVF (SQ8) | %.1f | %.0f |" % (build["index"]["total_ms"] / 1e3 -
                                             g["build_ms"] / 1e3 - g["calibrate_ms"] / 1e3,
                                             build["index"]["bytes"] / runs[0]["n"]))
for r in runs:
    v = r["faiss"].split()[0]
    for name, b in r["builds"].items():
        print("| FAISS %s %s | %.1f | %.0f |" % (v, name, b["build_s"], b["bytes_per_vector"]))
