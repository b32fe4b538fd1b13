#!/bin/sh
# check_audit.sh -- `warden check` verifies the audit log when auditing is
# on (wd_audit_verify, engine/check.c): it counts the records whose CRC
# holds, the damaged lines and a torn last line, without calling them
# problems of the collection (a crash may tear the last line); with
# auditing off the report has no "audit" entry.
. "$(dirname "$0")/common.inc"

D=$T/c
printf 'dimension: 2\nmetric: cosine\naudit:\n  path: audit.jsonl\n' >"$T/warden.yaml"
w init "$D" --config "$T/warden.yaml"
expect_rc 0 "init"
echo '{"doc_id": "a", "source": "s3://b/a", "acl": {"allow": ["*"]}, "chunks": [{"text": "t", "embedding": [1, 0]}]}' >"$T/d.jsonl"
w ingest "$D" "$T/d.jsonl"
expect_rc 0 "ingest"
for i in 1 2 3; do
  w query "$D" --vector '[1,0]' --principal user:x
  expect_rc 0 "query $i"
done
w check "$D"
expect_rc 0 "check, clean log"
py_check "three good records" '
a = out[0]["audit"]
assert a["records"] == 3 and a["damaged_lines"] == 0 and a["torn_last_line"] is False, a
assert a["path"].endswith("audit.jsonl"), a'

printf '{"torn' >>"$D/audit.jsonl"
w check "$D"
expect_rc 0 "check, torn last line"
py_check "torn last line seen, records kept" '
a = out[0]["audit"]
assert a["records"] == 3 and a["torn_last_line"] is True, a
assert out[0]["ok"] is True, out[0]'

# flip one byte of the first record: its CRC no longer holds
"$PY" - "$D/audit.jsonl" <<'PYEOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.index(b'"principal"')
b[i + 1] = ord("P")
open(p, "wb").write(bytes(b))
PYEOF
w check "$D"
expect_rc 0 "check, damaged record"
py_check "one damaged line" '
a = out[0]["audit"]
assert a["records"] == 2 and a["damaged_lines"] == 1, a'

D2=$T/c2
printf 'dimension: 2\nmetric: cosine\n' >"$T/plain.yaml"
w init "$D2" --config "$T/plain.yaml"
expect_rc 0 "init without audit"
w check "$D2"
expect_rc 0 "check without audit"
py_check "no audit entry" 'assert "audit" not in out[0], out[0]'

finish
