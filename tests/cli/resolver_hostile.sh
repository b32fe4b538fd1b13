#!/bin/sh
# resolver_hostile.sh -- resolver failure isolation (SPEC: a failure
# affects only the resources it failed on).  A command resolver that
# crashes, answers garbage, hangs or cannot decide on some resources among
# many good ones: every good resource is returned, every failed one
# denied, the answer is degraded, and the query is back within the
# documented bound (4 x timeout_ms of resolver time, plus start-up).
. "$(dirname "$0")/common.inc"

HERE=$(cd "$(dirname "$0")" && pwd)
${CC:-cc} -O1 -o "$T/hostile" "$HERE/hostile_resolver.c" -ljansson || { echo "FAIL: cannot build the hostile resolver"; exit 1; }
cat >"$T/w.yaml" <<YEOF
dimension: 4
metric: cosine
resolver:
  type: command
  command: ["$T/hostile"]
  timeout_ms: 300
YEOF
D=$T/c
w init "$D" --config "$T/w.yaml"
expect_rc 0 "init"
"$PY" - "$T/docs.jsonl" <<'PYEOF'
import json, random, sys
random.seed(7)
kinds = ["good"] * 60 + ["no"] * 16 + ["slow"] * 6 + ["crash"] * 6 + ["garbage"] * 6 + ["undecided"] * 6
random.shuffle(kinds)
with open(sys.argv[1], "w") as f:
    for i, k in enumerate(kinds):
        f.write(json.dumps({"doc_id": "%s-%d" % (k, i), "source": "s3://b/%d" % i, "acl": {"allow": ["*"]},
                            "chunks": [{"text": "t", "embedding": [1, random.random() * 0.1, 0, 0]}]}) + "\n")
PYEOF
w ingest "$D" "$T/docs.jsonl"
expect_rc 0 "ingest"

for k in 80 100; do
  start=$("$PY" -c 'import time; print(time.time())')
  w query "$D" --principal user:a --vector '[1,0,0,0]' -k $k --explain
  expect_rc 0 "query k=$k with a hostile resolver"
  py_check "k=$k: every good resource, nothing else, degraded, in time" '
import time
k = int(args[1]); el = time.time() - float(args[0])
res = out[0]["results"]
ids = [h["doc_id"] for h in res]
good = [i for i in ids if i.startswith("good-")]
assert len(ids) == len(good), ("a failed or denied resource was returned", [i for i in ids if not i.startswith("good-")])
assert len(good) == min(k, 60) if k <= 60 else len(good) == 60, ("good returned", len(good), "of 60")
assert out[0].get("degraded") is True, out[0].keys()
# bound: 4 x 300 ms of resolver time, plus process start-ups and the scan
assert el < 1.2 + 1.3, ("took %.2f s" % el)
import sys; sys.stderr.write("k=%d: %d good of 60, %.2f s" % (k, len(good), el) + "\n")
' "$start" "$k"
done
finish
