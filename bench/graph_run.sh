#!/bin/sh
# make bench-graph: the issue-14 bench.  One data family (bench/graph_gen.py
# --family; default image-784), the warden collection built once
# (build/graph_bench build), then warden and FAISS combination by
# combination, back to back: against FAISS 1.12 AVX-512
# (../shared/anchors/faiss-1.12-avx512, or FAISS_PATH; Debian's
# python3-faiss when it does not import -- the table says which) and against
# Debian's 1.7.3; then the Markdown table (bench/graph_report.py), written to
# bench/results/graph-FAMILY.md next to the JSON it is made from.
#   sh bench/graph_run.sh [N] [FAMILY]   (default 100000 vectors, image-784;
#   families: image-784 text-384 neardup-256 heavytail-128 uniform-960)
set -e
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
N=${1:-100000}
F=${2:-image-784}
R=bench/results/graph-$F
mkdir -p bench/results
D=$($PY bench/graph_gen.py --family "$F" --n "$N" | tail -1)
C=$D/collection
if [ ! -f "$C/index/hnsw.wdx" ]; then
  rm -rf "$C"
  build/graph_bench build "$D" "$C" > "$R-build.json"
fi
$PY bench/graph_faiss.py "$D" "$C" "$R-faiss112.json"
$PY bench/graph_faiss.py "$D" "$C" "$R-faiss173.json" --debian
$PY bench/graph_report.py "$R-build.json" "$R-faiss112.json" "$R-faiss173.json" | tee "$R.md"
