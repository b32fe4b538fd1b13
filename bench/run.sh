#!/bin/sh
# make bench / make bench-full: data, ground truth, warden (C driver),
# FAISS baselines (python3-faiss), then the merged table and plots.
#   sh bench/run.sh quick|full
set -e
cd "$(dirname "$0")/.."
mode=${1:-quick}
PY=/usr/bin/python3
case "$mode" in
  quick) nscore=200 ;;
  full) nscore=1000 ;;
  *) echo "usage: bench/run.sh quick|full" >&2; exit 2 ;;
esac
mkdir -p bench/results
echo "== data ($mode)"
$PY bench/gen.py --$mode
echo "== ground truth"
$PY bench/truth.py --$mode
for wl in synthetic-384 glove-100; do
  d=bench/data/$wl/$mode
  [ -f "$d/manifest.json" ] || { echo "bench: $d missing" >&2; exit 1; }
  echo "== warden on $wl"
  build/warden_bench "$d" "bench/results/warden-$wl-$mode.json" "$d/collection" --queries $nscore
done
echo "== exact scan vs FAISS IndexFlat, 100k x 384 (same process)"
build/exact_scan bench/data/exact-scan | tee "bench/results/exact-scan-$mode.json"
echo "== permission changes (revoke, ACL sync vs re-ingest)"
case "$mode" in quick) pn=100000 ;; *) pn=1000000 ;; esac
build/perm_bench bench/data/perm $pn 64 | tee "bench/results/perm-$mode.json"
echo "== FAISS baselines"
$PY bench/baselines.py --$mode
echo "== report"
$PY bench/report.py --$mode
