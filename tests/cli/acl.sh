#!/bin/sh
# acl.sh -- permissions change without re-embedding, and take effect for
# the next query from any process: acl set (revoke, deny, empty allow),
# acl get, acl sync, principals set/get/sync with nested groups.
. "$(dirname "$0")/common.inc"

D=$T/c
w init "$D" --dim 4
expect_rc 0 "init"
cat >"$T/docs.jsonl" <<'JEOF'
{"doc_id": "secret", "source": "s3://b/secret", "namespace": "/hr", "acl": {"allow": ["user:alice"]}, "chunks": [{"text": "salaries", "embedding": [1, 0, 0, 0]}]}
{"doc_id": "public", "source": "https://example.org/p", "namespace": "/pub", "acl": {"allow": ["*"]}, "chunks": [{"text": "hello", "embedding": [0.9, 0.1, 0, 0]}]}
{"doc_id": "eng", "source": "file:///eng", "namespace": "/eng", "acl": {"allow": ["group:staff"]}, "chunks": [{"text": "design", "embedding": [0.8, 0.2, 0, 0]}]}
JEOF
w ingest "$D" "$T/docs.jsonl"
expect_rc 0 "ingest"

# ids PRINCIPAL [ARGS...]: the doc_ids PRINCIPAL gets, comma-joined, in $ids.
ids() {
  p=$1; shift
  w query "$D" --principal "$p" --vector '[1,0,0,0]' -k 10 "$@"
  expect_rc 0 "query as $p" || { ids=ERR; return; }
  ids=$("$PY" -c 'import json,sys; print(",".join(sorted(h["doc_id"] for h in json.loads(open(sys.argv[1]).readline())["results"])))' "$T/out")
}
want() { CHECKS=$((CHECKS + 1)); [ "$ids" = "$1" ] || fail "$2: got '$ids', expected '$1'"; }

ids user:alice; want "public,secret" "alice before revoke"
ids user:bob; want "public" "bob before"

w acl set "$D" secret --allow user:bob
expect_rc 0 "acl set (revoke alice, grant bob)"
py_check "acl set report" '
assert list(out[0]) == ["changed", "revision"] and out[0]["changed"] == 1, out
'
ids user:alice; want "public" "alice after revoke (new process)"
ids user:bob; want "public,secret" "bob after grant"
w acl get "$D" secret
expect_rc 0 "acl get"
py_check "acl get" '
assert out[0]["doc_id"] == "secret" and out[0]["allow"] == ["user:bob"] and out[0]["deny"] == [], out
'
# Setting the same list again changes nothing.
w acl set "$D" secret --allow user:bob
expect_rc 0 "acl set again"
py_check "unchanged" 'assert out[0]["changed"] == 0, out'

# Deny wins over "*"; an empty allow list means nobody.
w acl set "$D" public --deny user:bob
expect_rc 0 "acl set --deny"
ids user:bob; want "secret" "bob denied public"
w acl get "$D" public
py_check "deny kept allow" 'assert out[0]["allow"] == ["*"] and out[0]["deny"] == ["user:bob"], out'
w acl set "$D" secret --allow ''
expect_rc 0 "acl set --allow ''"
ids user:bob; want "" "empty allow means nobody"
w acl set "$D" secret --allow bogus
expect_rc 3 "acl set with a bad principal" || true
w acl set "$D" no-such --allow user:bob
expect_rc 1 "acl set on an unknown doc" || true

# Groups: asserted by the caller, or from the directory (nested).
ids user:carol; want "public" "carol without groups"
ids user:carol --groups group:staff; want "eng,public" "carol with asserted group"
w principals set "$D" user:carol --groups group:devs
expect_rc 0 "principals set carol"
w principals set "$D" group:devs --groups group:staff
expect_rc 0 "principals set devs"
ids user:carol; want "eng,public" "carol via nested directory groups"
w principals get "$D" user:carol
expect_rc 0 "principals get"
py_check "principals get" '
p = out[0]
assert p["principal"] == "user:carol" and p["groups"] == ["group:devs"], p
assert set(p["expanded"]) >= {"group:devs", "group:staff"}, p
'
# A cycle is harmless.
w principals set "$D" group:staff --groups group:devs
expect_rc 0 "principals cycle"
ids user:carol; want "eng,public" "carol with a group cycle"
printf '%s\n' '{"principal": "user:carol", "groups": []}' >"$T/p.jsonl"
w principals sync "$D" "$T/p.jsonl"
expect_rc 0 "principals sync"
ids user:carol; want "public" "carol after principals sync"

# acl sync: counts, one transaction, unknown ids counted.
cat >"$T/sync.jsonl" <<'JEOF'
{"doc_id": "secret", "allow": ["user:alice"], "deny": []}
{"doc_id": "public", "allow": ["*"], "deny": ["user:bob"]}
{"doc_id": "ghost", "allow": ["*"], "deny": []}
JEOF
w acl sync "$D" "$T/sync.jsonl"
expect_rc 0 "acl sync"
py_check "acl sync report" '
assert list(out[0]) == ["changed", "unchanged", "unknown_doc", "revision"], out
assert out[0]["changed"] == 1 and out[0]["unchanged"] == 1 and out[0]["unknown_doc"] == 1, out
'
ids user:alice; want "public,secret" "alice after sync"
printf '%s\n%s\n' '{"doc_id": "public", "allow": [], "deny": []}' '{"doc_id": "eng", "allow": [' >"$T/badsync.jsonl"
w acl sync "$D" "$T/badsync.jsonl"
expect_rc 3 "bad acl sync"
expect_err_prefix "bad acl sync" "$T/badsync.jsonl:2: "
ids user:alice; want "public,secret" "a failed sync applied nothing"

finish
