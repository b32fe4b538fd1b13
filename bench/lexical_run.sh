#!/bin/sh
# bench/lexical_run.sh -- the lexical benchmark end to end (issue 19):
# corpora (Debian's /usr/share/doc in ~120-word chunks, and synthetic Zipf
# text), warden (build/lexical_bench) and its peers SQLite FTS5 and Xapian
# (bench/lexical_bench.py), one after the other so they do not compete.
# Usage: sh bench/lexical_run.sh [OUTDIR] [MAXCHUNKS]; JSON lines go to
# OUTDIR/results.jsonl (default /tmp/warden-lexbench).
set -e
out=${1:-/tmp/warden-lexbench}
max=${2:-200000}
mkdir -p "$out"
py=/usr/bin/python3
for kind in debian synthetic; do
  [ -f "$out/$kind/queries.json" ] || $py bench/lexical_corpus.py $kind "$out/$kind" "$max"
  rm -rf "$out/$kind-warden" "$out/$kind-warden.yaml"
  build/lexical_bench "$out/$kind" "$out/$kind-warden" | sed "s/^{/{\"corpus\":\"$kind\",/" | tee -a "$out/results.jsonl"
  $py bench/lexical_bench.py "$out/$kind" "$out/$kind-peers" | sed "s/^{/{\"corpus\": \"$kind\", /" | tee -a "$out/results.jsonl"
done
