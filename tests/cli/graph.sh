#!/bin/sh
# graph.sh -- the filter-aware graph index end to end (issue 14): `warden
# index` builds index/hnsw.wdx next to the IVF file, queries use it with
# the effort calibrated at the recall target (--target-recall, --explain),
# never return a chunk the principal may not read, `warden index` again
# inserts new documents into the graph without rebuilding it, `warden
# check` verifies it and reports a damaged file, which queries then ignore.
. "$(dirname "$0")/common.inc"

cat >"$T/w.yaml" <<'YEOF'
dimension: 16
metric: l2
YEOF
D=$T/c
w init "$D" --config "$T/w.yaml"
expect_rc 0 "init"
# 3000 clustered vectors; doc i readable by user:a when i % 10 == 0 (10 %)
"$PY" - 3000 0 >"$T/docs.jsonl" <<'PYEOF'
import json, random, sys
n, off = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(5 + off)
cent = [[r.gauss(0, 1) for _ in range(16)] for _ in range(20)]
for i in range(off, off + n):
    c = cent[i % 20]
    allow = ["user:a"] if i % 10 == 0 else ["user:b"]
    print(json.dumps({"doc_id": "d%05d" % i, "source": "s3://b/%d" % i, "acl": {"allow": allow},
                      "chunks": [{"text": "t", "embedding": [round(x + r.gauss(0, 0.3), 5) for x in c]}]}))
PYEOF
w ingest "$D" "$T/docs.jsonl"
expect_rc 0 "ingest"
w index "$D"
expect_rc 0 "index"
py_check "index builds the graph" '
g = out[0]["graph"]
assert g["built"] and g["vectors"] == 3000 and not g["extended"], g
assert g["calibration_points"] > 5 and g["bytes_per_vector"] > 16, g
'
w stats "$D"
expect_rc 0 "stats"
py_check "stats show the graph" '
g = out[0]["index"]["graph"]
assert g["state"] == "ready" and g["vectors"] == 3000 and g["target_recall"] == 0.95, g
'
Q='[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0,1.1,1.2,1.3,1.4,1.5,1.6]'
w query "$D" --principal user:b --vector "$Q" --explain --ann
expect_rc 0 "query --ann --explain"
py_check "the graph answers with its calibrated effort" '
p = out[0]["plan"]
assert p["strategy"] == "graph", p
assert p["graph"]["calibrated"] and p["graph"]["ef_search"] >= 10, p
assert p["planner"]["target_recall"] == 0.95, p
'
EF95=$("$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["plan"]["graph"]["ef_search"])' "$T/out")
w query "$D" --principal user:b --vector "$Q" --explain --ann --target-recall 0.99
expect_rc 0 "query --target-recall 0.99"
py_check "a higher target costs more effort" '
p = out[0]["plan"]
assert p["planner"]["target_recall"] == 0.99, p
assert p["strategy"] != "graph" or p["graph"]["ef_search"] >= int(args[0]), (p, args)
' "$EF95"
w query "$D" --principal user:b --vector "$Q" --target-recall 1.5
expect_rc 2 "--target-recall out of range"
w query "$D" --principal user:a --vector "$Q" -k 20 --ann
expect_rc 0 "query as user:a"
py_check "never a chunk user:a may not read" '
ids = [int(h["doc_id"][1:]) for h in out[0]["results"]]
assert len(ids) == 20 and all(i % 10 == 0 for i in ids), ids
'
# new documents: the next index inserts them into the graph
"$PY" - 500 3000 >"$T/more.jsonl" <<'PYEOF'
import json, random, sys
n, off = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(5 + off)
for i in range(off, off + n):
    allow = ["user:a"] if i % 10 == 0 else ["user:b"]
    print(json.dumps({"doc_id": "d%05d" % i, "source": "s3://b/%d" % i, "acl": {"allow": allow},
                      "chunks": [{"text": "t", "embedding": [round(r.gauss(0, 1), 5) for _ in range(16)]}]}))
PYEOF
w ingest "$D" "$T/more.jsonl"
expect_rc 0 "ingest more"
w query "$D" --principal user:a --vector "$Q" -k 20 --ann --explain
expect_rc 0 "query a stale graph"
py_check "a stale graph scans the new slots exactly" '
p = out[0]["plan"]
ids = [int(h["doc_id"][1:]) for h in out[0]["results"]]
assert all(i % 10 == 0 for i in ids), ids
if p["strategy"] == "graph": assert p["graph"]["pending_slots"] == 50, p
'
w index "$D"
expect_rc 0 "index again"
py_check "the graph is extended, not rebuilt" '
g = out[0]["graph"]
assert g["built"] and g["extended"] and g["inserted"] == 500 and g["vectors"] == 3500, g
'
w check "$D"
expect_rc 0 "check"
py_check "check verifies the graph" '
g = out[0]["index"]["graph"]
assert g["state"] == "ok" and g["checked"] == 3500 and g["problems"] == [], g
'
# damage the graph file: check reports it, queries do not use it
"$PY" - "$D/index/hnsw.wdx" <<'PYEOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x40
open(p, "wb").write(bytes(b))
PYEOF
w check "$D"
CHECKS=$((CHECKS + 1))
[ "$rc" -ne 0 ] || fail "check passes a damaged graph file"
py_check "check names the damage" '
g = out[0]["index"]["graph"]
assert g["state"] == "corrupt" and "checksum" in g["problems"][0], g
'
w query "$D" --principal user:a --vector "$Q" -k 5 --ann --explain
expect_rc 0 "query with a damaged graph"
py_check "a damaged graph is never used" '
p = out[0]["plan"]
assert p["strategy"] != "graph" and p["graph"]["state"] == "corrupt", p
ids = [int(h["doc_id"][1:]) for h in out[0]["results"]]
assert len(ids) == 5 and all(i % 10 == 0 for i in ids), ids
'
w index "$D"
expect_rc 0 "index rebuilds a damaged graph"
py_check "rebuilt" 'g = out[0]["graph"]; assert g["built"] and not g["extended"] and g["previous_graph"] == "corrupt", g'
finish
