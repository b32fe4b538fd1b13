#!/usr/bin/env python3
"""Markdown tables from bench/lexical_run.sh's results.jsonl (the last
figure of each (corpus, system, what, selectivity) wins).
Usage: lexical_report.py RESULTS.jsonl"""
import json, sys

rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    rows[(r["corpus"], r["system"], r["what"], r.get("selectivity"))] = r

SELS = [0.001, 0.01, 0.1, 1]
for corpus in ("debian", "synthetic"):
    systems = [s for s in ("warden", "sqlite-fts5", "xapian") if (corpus, s, "index", None) in rows]
    if not systems:
        continue
    n = rows[(corpus, systems[0], "index", None)]["chunks"]
    print(f"\n{corpus} ({n:,} chunks), single thread, k=10, QPS wall (QPS per CPU-second):\n")
    print("| system | index chunks/s | " + " | ".join(f"lexical {s*100:g} %" for s in SELS) +
          " | " + " | ".join(f"hybrid {s*100:g} %" for s in SELS) + " |")
    print("|---" * (2 + 2 * len(SELS)) + "|")
    for s in systems:
        ix = rows[(corpus, s, "index", None)]
        cells = [f"{ix['chunks_per_s']:,} ({ix['chunks_per_cpu_s']:,})"]
        for what in ("lexical", "hybrid"):
            for sel in SELS:
                r = rows.get((corpus, s, what, sel))
                cells.append(f"{r['qps']:,.0f} ({r['qps_cpu']:,.0f})" if r else "--")
        print(f"| {s} | " + " | ".join(cells) + " |")
