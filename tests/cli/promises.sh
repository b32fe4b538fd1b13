#!/bin/sh
# promises.sh -- limits and messages that must say what the code does:
# a failed init leaves nothing behind, the ingest line limit is 8 MiB
# (not the buffer's next doubling), -k's range names the real limit, an
# over-long source is called over-long, and a duplicate doc_id names the
# file its first copy is in.
. "$(dirname "$0")/common.inc"

# 1. init that cannot open (audit log in a missing directory)
cat >"$T/bad.yaml" <<YEOF
dimension: 4
audit:
  path: $T/no/such/dir/audit.jsonl
YEOF
w init "$T/c" --config "$T/bad.yaml"
CHECKS=$((CHECKS + 1)); [ "$rc" -ne 0 ] || fail "init with an unwritable audit path succeeded"
CHECKS=$((CHECKS + 1))
[ ! -e "$T/c/warden.yaml" ] && [ ! -e "$T/c/store" ] || fail "failed init left $(ls "$T/c" 2>&1)"
mkdir "$T/no"; mkdir "$T/no/such"; mkdir "$T/no/such/dir"
w init "$T/c" --config "$T/bad.yaml"
expect_rc 0 "init retried once the directory exists"
# a pre-existing empty directory is kept, but emptied of what init wrote
mkdir "$T/e"
sed "s|$T/no|$T/none|" "$T/bad.yaml" >"$T/bad2.yaml"
w init "$T/e" --config "$T/bad2.yaml"
CHECKS=$((CHECKS + 1)); [ -d "$T/e" ] && [ -z "$(ls -A "$T/e")" ] || fail "failed init in an existing dir left $(ls -A "$T/e")"

D=$T/d
w init "$D" --dim 4
expect_rc 0 "init"
# 2. the 8 MiB line limit (8388608 bytes without the newline)
"$PY" - "$T" <<'PYEOF'
import sys
t = sys.argv[1]
doc = '{"doc_id":"%s","source":"s3://b/x","acl":{"allow":["*"]},"chunks":[{"text":"t","embedding":[1,0,0,0]}]}'
lim = 8 << 20
for name, n in (("fits", lim), ("over", lim + 1), ("twelve", 12 << 20)):
    d = doc % name
    open("%s/%s.jsonl" % (t, name), "w").write(" " * (n - len(d)) + d + "\n")
PYEOF
w ingest "$D" "$T/fits.jsonl"
expect_rc 0 "a line of exactly 8 MiB"
w ingest "$D" "$T/over.jsonl"
expect_rc 3 "a line of 8 MiB + 1"
expect_err_prefix "line limit message" ".*over.jsonl:1: line: longer than 8388608 bytes"
w ingest "$D" "$T/twelve.jsonl"
expect_rc 3 "a line of 12 MiB (was accepted below ~16 MiB)"

# 3. -k names the real limit
w query "$D" --principal user:a --vector '[1,0,0,0]' -k 2000000
expect_rc 2 "-k 2000000"
CHECKS=$((CHECKS + 1)); grep -q "10000" "$T/err" && ! grep -q "1000000" "$T/err" || fail "-k message: $(cat "$T/err")"
w query "$D" --principal user:a --vector '[1,0,0,0]' -k 10000
expect_rc 0 "-k 10000"

# 4. a source over 4096 bytes is too long, not "not a URI"
"$PY" -c 'import json; print(json.dumps({"doc_id":"long","source":"s3://b/"+"x"*4100,"acl":{"allow":["*"]},"chunks":[{"text":"t","embedding":[1,0,0,0]}]}))' >"$T/long.jsonl"
w ingest "$D" "$T/long.jsonl"
expect_rc 3 "source of 4107 bytes"
expect_err_prefix "source length message" ".*long.jsonl:1: source: must be at most 4096 bytes (got 4107)"

# 5. a duplicate names the file of its first copy
printf '%s\n' '{"doc_id":"dup","source":"s3://b/1","acl":{"allow":["*"]},"chunks":[{"text":"t","embedding":[1,0,0,0]}]}' >"$T/one.jsonl"
printf '%s\n%s\n' '{"doc_id":"other","source":"s3://b/2","acl":{"allow":["*"]},"chunks":[{"text":"t","embedding":[1,0,0,0]}]}' \
  '{"doc_id":"dup","source":"s3://b/3","acl":{"allow":["*"]},"chunks":[{"text":"t","embedding":[1,0,0,0]}]}' >"$T/two.jsonl"
w ingest "$D" "$T/one.jsonl" "$T/two.jsonl"
expect_rc 3 "duplicate across inputs"
expect_err_prefix "duplicate names the first file" ".*two.jsonl:2: doc_id: duplicate of .*one.jsonl:1 in this input"

finish
