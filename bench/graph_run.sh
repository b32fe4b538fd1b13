#!/bin/sh
# make bench-graph: the issue-14 bench.  image-784 (bench/graph_gen.py),
# the warden collection built once (build/graph_bench build), then warden
# and FAISS combination by combination, back to back: against FAISS 1.12
# AVX-512 (../shared/anchors/faiss-1.12-avx512, or FAISS_PATH; Debian's
# python3-faiss when it does not import -- the table says which) and
# against Debian's 1.7.3; then the Markdown table (bench/graph_report.py).
#   sh bench/graph_run.sh [N]      (default 100000 vectors)
set -e
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
N=${1:-100000}
mkdir -p bench/results
D=$($PY bench/graph_gen.py --n "$N" | tail -1)
C=$D/collection
if [ ! -f "$C/index/hnsw.wdx" ]; then
  rm -rf "$C"
  build/graph_bench build "$D" "$C" > bench/results/graph-image-784-build.json
fi
$PY bench/graph_faiss.py "$D" "$C" bench/results/graph-image-784-faiss112.json
$PY bench/graph_faiss.py "$D" "$C" bench/results/graph-image-784-faiss173.json --debian
$PY bench/graph_report.py bench/results/graph-image-784-build.json \
  bench/results/graph-image-784-faiss112.json bench/results/graph-image-784-faiss173.json
