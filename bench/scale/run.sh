#!/bin/sh
# bench/scale/run.sh -- `make bench-scale [N=10000000] [Q=200] [GRAPH=on|off]`
# (not in CI).  Generates N x 384 clustered vectors (gen.py: EMB.npy +
# META.jsonl with gen.py's ACL groups, so 0.1 %, 1 %, 10 % and 100 %
# selectivities exist), ingests them through the NumPy path, builds the
# index, measures single-thread queries at each selectivity (recall@10
# against exact ground truth computed from the .npy with NumPy, QPS, p99)
# and FAISS IVF-SQ8 with IDSelectorBitmap on the same data, and records
# store size on disk and the peak RSS, CPU and wall time of every step
# (/usr/bin/time -v) into bench/results/scale-N/ (report.md, report.json).
# Scratch data goes to $WORK (default bench/scale/work-N; ~1.7 KB per
# vector for data + store: 17 GB at 10M).
# FROM=STEP (gen, ingest, index, check, query, truth) resumes a run at that
# step with WORK's data and collection as the earlier steps left them.
set -e
cd "$(dirname "$0")/../.."
N=${N:-10000000}
Q=${Q:-200}
GRAPH=${GRAPH:-on}
DIM=384
W=${WORK:-bench/scale/work-$N}
R=bench/results/scale-$N
PY=/usr/bin/python3
FROM=${FROM:-gen}
case " gen ingest index check query truth " in
*" $FROM "*) ;;
*) echo "bench-scale: FROM=$FROM: not a step (gen ingest index check query truth)" >&2; exit 2 ;;
esac
mkdir -p "$W" "$R"
started=0
step() {
  name=$1
  shift
  [ "$name" = "$FROM" ] && started=1
  [ $started = 1 ] || { echo "== $name: skipped (FROM=$FROM)"; return 0; }
  rm -f "$R/$name.time" "$R/$name.out" "$R/$name.err"
  echo "== $name: $*"
  if ! /usr/bin/time -v -o "$R/$name.time" "$@" > "$R/$name.out" 2> "$R/$name.err"; then
    tail -5 "$R/$name.err" >&2
    exit 1
  fi
  grep -E "Elapsed|Maximum resident" "$R/$name.time" | sed 's/^\s*/   /'
}
step gen $PY bench/scale/gen.py "$N" $DIM "$W/data" --npy f4 --queries "$Q"
if [ $started = 1 ] || [ "$FROM" = ingest ]; then
  rm -rf "$W/c"
  printf 'dimension: %d\nmetric: cosine\nindex:\n  type: auto\n  quantizer: sq8\n' $DIM > "$W/warden.yaml"
  [ "$GRAPH" = off ] && printf '  graph: off\n' >> "$W/warden.yaml"
  build/warden init "$W/c" --config "$W/warden.yaml" > /dev/null
fi
step ingest build/warden ingest "$W/c" "$W/data.meta.jsonl" --vectors "$W/data.npy"
step index build/warden index "$W/c"
step check build/warden check "$W/c"
step query build/scale_query "$W/c" "$W/data.queries.npy" "$R/warden-queries.jsonl"
step truth $PY bench/scale/truth.py "$W/data" "$N" "$R" --faiss
du -sb "$W/c/store" | cut -f1 > "$R/store.bytes"
du -sb "$W/c/index" 2>/dev/null | cut -f1 > "$R/index.bytes" || true
$PY bench/scale/report.py "$R" "$N"
echo "== $R/report.md"
cat "$R/report.md"
