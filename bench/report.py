#!/usr/bin/python3
"""Merge baseline and warden results into the benchmark report.

Reads bench/results/baselines-<workload>-<scale>.json (baselines.py) and,
when present, the warden driver's bench/results/warden-<workload>-<scale>.json
(same record schema, SCHEMA.md; a bare JSON list of records, an object with
"records", or JSON Lines are all accepted).  Writes per workload:
  bench/results/<date>-<workload>[-quick].json   merged records + summary
  bench/results/<date>-<workload>[-quick].md     the Markdown tables
  bench/results/<date>-<workload>[-quick]-qps.png     best QPS vs selectivity
  bench/results/<date>-<workload>[-quick]-curves.png  recall vs QPS curves
and prints the Markdown to stdout.  A system's point for a combination is
its best QPS among configurations with recall@10 >= 0.95 and zero leaks;
"not reached" says so, with the best recall it did reach.

Usage: report.py [--quick|--full] [--workload NAME ...] [--warden FILE]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

TARGET = 0.95
MODE_ORDER = {"uncorrelated": 0, "correlated": 1, "anticorrelated": 2, "acl": 3}


def log(*a):
    print("[report]", *a, file=sys.stderr, flush=True)


def load_any(path):
    """Records and meta from a results file in any of the accepted shapes."""
    with open(path) as f:
        text = f.read()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        recs = [json.loads(line) for line in text.splitlines() if line.strip()]
        return recs, {}, {}
    if isinstance(doc, list):
        return doc, {}, {}
    return doc.get("records", []), doc.get("meta", {}), doc.get("refs", {})


def is_warden(system):
    return system.startswith("warden")


def best_point(recs, key="qps_single"):
    ok = [r for r in recs if (r.get("recall") or 0) >= TARGET
          and not r.get("leaks") and r.get(key)]
    if ok:
        return max(ok, key=lambda r: r[key]), True
    if not recs:
        return None, False
    return max(recs, key=lambda r: r.get("recall") or 0), False


def combo_key(r):
    return r.get("combo") or "%s-%s" % (r["mode"], r.get("selectivity"))


def summarise(records):
    """{combo: {system: summary}} and the ordered combo list."""
    by = {}
    info = {}
    for r in records:
        ck = combo_key(r)
        by.setdefault(ck, {}).setdefault(r["system"], []).append(r)
        info.setdefault(ck, r)
    order = sorted(info, key=lambda c: (MODE_ORDER.get(info[c]["mode"], 9),
                                        info[c].get("selectivity") or 0, c))
    out = {}
    for ck in order:
        out[ck] = {}
        for sysname, recs in by[ck].items():
            summ = {"leaks_total": sum(int(r.get("leaks") or 0) for r in recs),
                    "max_recall": max((r.get("recall") or 0) for r in recs)}
            for key in ("qps_single", "qps_batch"):
                b, reached = best_point(recs, key)
                summ[key] = {"reached": reached,
                             "qps": b.get(key) if (b and reached) else None,
                             "recall": b.get("recall") if b else None,
                             "params": b.get("params") if b else None,
                             "p50_ms": b.get("p50_ms") if b else None,
                             "p99_ms": b.get("p99_ms") if b else None,
                             "strategy": b.get("strategy") if b else None}
            out[ck][sysname] = summ
    return out, order, info


def fmt_qps(q):
    if q is None:
        return "-"
    return "%.0f" % q if q >= 100 else "%.1f" % q


def fmt_params(p):
    if not p:
        return ""
    skip = {"nlist", "train_iters", "M", "efConstruction"}
    s = ",".join("%s=%s" % (k, v) for k, v in p.items() if k not in skip)
    return " (%s)" % s if s else ""


def markdown(workload, scale, meta, refs, summary, order, info, systems, key):
    lines = []
    ws = [s for s in systems if is_warden(s)]
    fs = [s for s in systems if not is_warden(s)]
    hdr = ["combination", "sel."] + systems
    if ws:
        hdr.append("warden/best FAISS")
    lines.append("| " + " | ".join(hdr) + " |")
    lines.append("|" + "---|" * len(hdr))
    for ck in order:
        r0 = info[ck]
        sel = r0.get("selectivity")
        label = ck if r0["mode"] != "acl" else "acl %s" % r0.get("principal", ck)
        row = [label, "%.3g%%" % (sel * 100) if sel is not None else "?"]
        for s in systems:
            sm = summary[ck].get(s)
            if sm is None:
                row.append("n/a")
                continue
            b = sm[key]
            cell = (fmt_qps(b["qps"]) + fmt_params(b["params"])) if b["reached"] \
                else "not reached (max R=%.3f)" % sm["max_recall"]
            if s.startswith("warden") and b.get("strategy"):
                cell += " [%s]" % b["strategy"]
            if sm["leaks_total"]:
                cell += " **LEAKS=%d**" % sm["leaks_total"]
            row.append(cell)
        if ws:
            wq = [summary[ck][s][key]["qps"] for s in ws
                  if s in summary[ck] and summary[ck][s][key]["reached"]]
            main = "warden-auto" if "warden-auto" in summary[ck] else ws[0]
            wmain = summary[ck].get(main, {}).get(key, {})
            fq = [summary[ck][s][key]["qps"] for s in fs
                  if s in summary[ck] and summary[ck][s][key]["reached"]]
            if wmain.get("reached") and fq:
                row.append("%.2fx" % (wmain["qps"] / max(fq)))
            elif wq and not fq:
                row.append("FAISS not reached")
            else:
                row.append("-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def plots(prefix, workload, records, summary, order, info, systems):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing; no plots")
        return []
    files = []
    modes = [m for m in ("uncorrelated", "correlated", "anticorrelated")
             if any(info[c]["mode"] == m for c in order)]
    if modes:
        fig, axes = plt.subplots(1, len(modes), figsize=(5.5 * len(modes), 4.5),
                                 squeeze=False)
        for ax, mode in zip(axes[0], modes):
            for s in systems:
                xs, ys = [], []
                for ck in order:
                    if info[ck]["mode"] not in (mode,) and not (
                            info[ck]["mode"] == "uncorrelated"
                            and (info[ck].get("selectivity") or 0) >= 1.0):
                        continue
                    sm = summary[ck].get(s)
                    if sm and sm["qps_single"]["reached"]:
                        xs.append(info[ck]["selectivity"] * 100)
                        ys.append(sm["qps_single"]["qps"])
                if xs:
                    pts = sorted(zip(xs, ys))
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-",
                            label=s, lw=2.5 if is_warden(s) else 1.2)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("selectivity (% of corpus allowed)")
            ax.set_ylabel("single-thread QPS at recall@10 >= 0.95")
            ax.set_title("%s: %s" % (workload, mode))
            ax.grid(True, which="both", alpha=0.3)
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        f = prefix + "-qps.png"
        fig.savefig(f, dpi=90)
        plt.close(fig)
        files.append(f)
    # recall vs QPS curves, one panel per combination
    n = len(order)
    cols = 5
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for i, ck in enumerate(order):
        ax = axes[i // cols][i % cols]
        for s in systems:
            pts = [(r["recall"], r["qps_single"]) for r in records
                   if combo_key(r) == ck and r["system"] == s
                   and r.get("recall") is not None and r.get("qps_single")]
            if not pts:
                continue
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts],
                    "o-" if len(pts) > 1 else "s", ms=3, label=s,
                    lw=2.5 if is_warden(s) else 1.0)
        ax.axvline(TARGET, color="grey", ls=":", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlim(0, 1.01)
        ax.set_title("%s (%.3g%%)" % (ck, (info[ck].get("selectivity") or 0) * 100),
                     fontsize=9)
        ax.tick_params(labelsize=7)
        if i % cols == 0:
            ax.set_ylabel("QPS (1 thread)", fontsize=8)
        if i // cols == rows - 1:
            ax.set_xlabel("recall@10", fontsize=8)
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower right", fontsize=9)
    fig.suptitle("%s: recall vs single-thread QPS" % workload)
    fig.tight_layout()
    f = prefix + "-curves.png"
    fig.savefig(f, dpi=80)
    plt.close(fig)
    files.append(f)
    return files


def system_order(systems):
    pref = ["warden-auto", "warden-exact", "warden-ann", "faiss-flat", "faiss-ivf",
            "faiss-hnsw", "postfilter-ivf", "postfilter-hnsw"]
    return sorted(systems, key=lambda s: (pref.index(s) if s in pref else len(pref), s))


def report(workload, scale, warden_path):
    bpath = os.path.join(C.RESULTS, "baselines-%s-%s.json" % (workload, scale))
    wpath = warden_path or os.path.join(C.RESULTS, "warden-%s-%s.json" % (workload, scale))
    records, meta, refs, sources = [], {}, {}, {}
    if os.path.exists(bpath):
        r, meta, refs = load_any(bpath)
        records += r
        sources["baselines"] = os.path.relpath(bpath, C.REPO)
    if os.path.exists(wpath):
        r, wmeta, wrefs = load_any(wpath)
        r = [x for x in r if x.get("workload", workload) == workload]
        records += r
        sources["warden"] = os.path.relpath(wpath, C.REPO)
        refs = dict(refs, **{"warden_" + k: v for k, v in wrefs.items()})
        meta.setdefault("warden_meta", wmeta)
    else:
        log("%s: no warden results (%s); baselines only" % (workload, wpath))
    if not records:
        log("%s/%s: no results at all; skipped" % (workload, scale))
        return None
    systems = system_order({r["system"] for r in records})
    summary, order, info = summarise(records)
    date = time.strftime("%Y-%m-%d")
    stem = "%s-%s" % (date, workload) + ("-quick" if scale == "quick" else "")
    prefix = os.path.join(C.RESULTS, stem)
    machine = C.machine_info()
    head = [
        "## %s (%s: N=%s, d=%s, %s queries scored, k=10)"
        % (workload, scale, meta.get("n"), meta.get("d"), meta.get("eval_queries")),
        "",
        "Machine: %s, %s cores, flags %s; commit %s; FAISS %s."
        % (machine["cpu_model"], machine["cores"], " ".join(machine["flags"]),
           C.git_commit(), meta.get("faiss_version")),
        "Same run: read bandwidth %s GB/s (1 thread), SGEMM %s GFLOP/s (all cores), "
        "Python call overhead %s us per FAISS call (included in FAISS single-query "
        "numbers)." % (refs.get("read_bandwidth_gbs_1thread"),
                       refs.get("sgemm_gflops_all_cores"), refs.get("python_call_us")),
        "",
        "Best single-query QPS (1 thread) at recall@10 >= %.2f, zero leaks:" % TARGET,
        "",
        "",
    ]
    flat = [r["recall"] for r in records if r["system"] == "faiss-flat"]
    if flat:
        head.insert(-3, "")
        head.insert(-4, "Ground-truth check: faiss-flat (exact, float32) recall is %.4f "
                    "at worst (must be 1.0000)." % min(flat))
    md = "\n".join(head) + markdown(workload, scale, meta, refs, summary, order,
                                    info, systems, "qps_single")
    md += "\n\nBest batch QPS (all cores) at recall@10 >= %.2f:\n\n" % TARGET
    md += markdown(workload, scale, meta, refs, summary, order, info, systems,
                   "qps_batch")
    builds = {}
    for r in records:
        b = builds.setdefault(r["system"], {})
        b["build_s"] = r.get("build_s")
        b["rss_mb"] = r.get("rss_mb")
        b["index_mb"] = r.get("index_mb")
        b["leaks"] = b.get("leaks", 0) + int(r.get("leaks") or 0)
    md += "\n\n| system | build s | peak RSS MB | index MB | leaks (all runs) |\n|---|---|---|---|---|\n"
    for s in systems:
        b = builds[s]
        md += "| %s | %s | %s | %s | %d |\n" % (s, b["build_s"], b["rss_mb"],
                                               b["index_mb"], b["leaks"])
    wm = meta.get("warden_meta") or {}
    ivf_b = builds.get("faiss-ivf", {}).get("build_s")
    if wm.get("index_s") and ivf_b:
        # the index build on its own, against FAISS's IVF train + add
        md += ("\nwarden build = ingest %.1f s (LMDB, bitmaps) + ANN index %.1f s "
               "(k-means, lists, calibration); FAISS IndexIVFFlat train + add: %.1f s "
               "(warden index / FAISS IVF = %.2fx).\n"
               % (wm.get("ingest_s", 0), wm["index_s"], ivf_b, wm["index_s"] / ivf_b))
    files = plots(prefix, workload, records, summary, order, info, systems)
    doc = {"meta": {"workload": workload, "scale": scale, "date": date,
                    "machine": machine, "commit": C.git_commit(),
                    "sources": sources, "target_recall": TARGET,
                    "baseline_meta": meta},
           "refs": refs, "summary": summary, "records": records,
           "plots": [os.path.basename(f) for f in files]}
    with open(prefix + ".json", "w") as f:
        json.dump(doc, f, indent=1)
    with open(prefix + ".md", "w") as f:
        f.write(md + "\n")
    log("wrote %s.{json,md} and %d plots" % (prefix, len(files)))
    return md


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true")
    g.add_argument("--full", action="store_true")
    ap.add_argument("--workload", action="append", choices=C.WORKLOADS)
    ap.add_argument("--warden", help="warden results file (default "
                    "bench/results/warden-<workload>-<scale>.json)")
    a = ap.parse_args()
    scale = "full" if a.full else "quick"
    os.makedirs(C.RESULTS, exist_ok=True)
    out = []
    for w in a.workload or C.WORKLOADS:
        md = report(w, scale, a.warden)
        if md:
            out.append(md)
    print("\n\n".join(out) if out else "no results to report")


if __name__ == "__main__":
    main()
