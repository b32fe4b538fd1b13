#!/bin/sh
# warm.sh -- a staged ingest's page-cache warming (engine/store.c
# store_warm_start) extends data.mdb past LMDB's end while it runs: the
# file must end where LMDB's data ends once the ingest returns, a tail a
# killed ingest left behind must be cut by the next staged ingest (and be
# harmless before), and the collection must answer as before.
. "$(dirname "$0")/common.inc"
D=$T/c
export WARDEN_STAGE_MB=0 # every input staged

# gen FIRST N FILE: N one-chunk documents, dimension 8
gen() {
  "$PY" - "$@" <<'PYEOF'
import json, random, sys
first, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
r = random.Random(first)
with open(out, "w") as f:
    for i in range(first, first + n):
        f.write(json.dumps({"doc_id": "d%06d" % i, "source": "s3://b/%d" % i,
                            "acl": {"allow": ["group:eng"]},
                            "chunks": [{"text": "doc %d" % i,
                                        "embedding": [r.uniform(-1, 1) for _ in range(8)]}]}) + "\n")
PYEOF
}

# lmdb_end: bytes of data.mdb LMDB uses (pages used x page size)
lmdb_end() {
  mdb_stat -e "$D/store" | awk '/Page size:/ {p=$3} /Number of pages used:/ {n=$5} END {print p*n}'
}
size() { stat -c %s "$D/store/data.mdb"; }
# ends_at_lmdb WHAT: data.mdb ends where LMDB's data does
ends_at_lmdb() {
  CHECKS=$((CHECKS + 1))
  e=$(lmdb_end); s=$(size)
  [ "$s" = "$e" ] || fail "$1: data.mdb is $s bytes, LMDB uses $e"
}

gen 0 3000 "$T/a.jsonl"
gen 3000 2000 "$T/b.jsonl"
gen 5000 2000 "$T/c.jsonl"
w init "$D" --dim 8
expect_rc 0 "init"
w ingest "$D" "$T/a.jsonl"
expect_rc 0 "staged ingest"
ends_at_lmdb "after a staged ingest"

# the tail a killed ingest leaves: harmless, then cut
truncate -s +16M "$D/store/data.mdb"
w query "$D" --vector '[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]' --principal group:eng --k 3
expect_rc 0 "query with a tail"
py_check "three hits with a tail" 'assert len(out[0]["results"]) == 3, out'
w check "$D"
expect_rc 0 "check with a tail"
w ingest "$D" "$T/b.jsonl"
expect_rc 0 "staged ingest after a tail"
ends_at_lmdb "the next staged ingest cut the tail"
w check "$D"
expect_rc 0 "check after the cut"
py_check "5000 documents" 'assert out[0]["ok"] and out[0]["documents"] == 5000, out'

# with the warming off, nothing cuts it: the cut above was the warming's
truncate -s +16M "$D/store/data.mdb"
before=$(size)
WARDEN_INGEST_WARM=0 w ingest "$D" "$T/c.jsonl"
expect_rc 0 "staged ingest, warming off"
CHECKS=$((CHECKS + 1))
[ "$(size)" -ge "$before" ] || fail "warming off: data.mdb shrank from $before to $(size)"
w check "$D"
expect_rc 0 "check, warming off"
py_check "7000 documents" 'assert out[0]["ok"] and out[0]["documents"] == 7000, out'

finish
