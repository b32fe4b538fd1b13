#!/bin/sh
# probing.sh -- metadata schema probing: a principal learns nothing about
# metadata keys or types of documents it cannot read.  For every filter
# shape, a key that only hidden documents carry must answer exactly as a
# key no document has (same exit code, same output); keys declared in
# warden.yaml are public and a type mismatch on them stays an error.
. "$(dirname "$0")/common.inc"

cat >"$T/w.yaml" <<'YEOF'
dimension: 4
metadata:
  year: int
YEOF
D=$T/c
w init "$D" --config "$T/w.yaml"
expect_rc 0 "init"
cat >"$T/docs.jsonl" <<'JEOF'
{"doc_id": "hidden", "source": "s3://b/h", "metadata": {"year": 3, "salary": 100000, "codename": "falcon", "flags": ["a"], "vip": true}, "acl": {"allow": ["user:owner"]}, "chunks": [{"text": "h", "embedding": [1, 0, 0, 0]}]}
{"doc_id": "public", "source": "s3://b/p", "metadata": {"year": 1}, "acl": {"allow": ["*"]}, "chunks": [{"text": "p", "embedding": [0.9, 0.1, 0, 0]}]}
JEOF
w ingest "$D" "$T/docs.jsonl"
expect_rc 0 "ingest"

q() { # PRINCIPAL FILTER -> $T/ans: rc and stdout without the revision
  "$WARDEN" query "$D" --principal "$1" --vector '[1,0,0,0]' -k 5 --filter "$2" >"$T/o" 2>"$T/e"
  echo "rc=$?" >"$T/ans"; sed 's/"revision": *[0-9]*//' "$T/o" >>"$T/ans"
}
for key in salary codename flags vip; do
  for shape in '{"K": "x"}' '{"K": 5}' '{"K": true}' '{"K": {"$gt": 5}}' '{"K": {"$lt": "m"}}' \
               '{"K": {"$ne": "x"}}' '{"K": {"$ne": 7}}' '{"K": {"$nin": ["x", 1]}}' '{"K": {"$in": [true]}}' \
               '{"startsWith": {"key": "K", "value": "f"}}' '{"listContains": {"key": "K", "value": "a"}}' \
               '{"stringContains": {"key": "K", "value": "a"}}' '{"greaterThan": {"key": "K", "value": "z"}}' \
               '{"orAll": [{"equals": {"key": "K", "value": 1}}, {"equals": {"key": "year", "value": 1}}]}'; do
    for p in user:nobody user:someone; do
      q "$p" "$(echo "$shape" | sed "s/K/$key/")"; cp "$T/ans" "$T/a1"
      q "$p" "$(echo "$shape" | sed "s/K/no_such_key/")"; cp "$T/ans" "$T/a2"
      CHECKS=$((CHECKS + 1))
      cmp -s "$T/a1" "$T/a2" || fail "$p $shape on hidden key $key: $(tr '\n' ' ' <"$T/a1" | head -c 300) vs unknown key: $(tr '\n' ' ' <"$T/a2" | head -c 300)"
    done
  done
done
# declared keys are public: a mismatch is an error naming the type
w query "$D" --principal user:nobody --vector '[1,0,0,0]' --filter '{"year": "x"}'
expect_rc 3 "type mismatch on a declared key"
expect_err_prefix "declared key mismatch names the type" ".*key \"year\" is an int field"
# and the owner still gets correct answers from the hidden document
w query "$D" --principal user:owner --vector '[1,0,0,0]' --filter '{"salary": {"$gt": 5}}'
expect_rc 0 "owner range on an inferred key"
py_check "owner sees hidden" 'assert [h["doc_id"] for h in out[0]["results"]] == ["hidden"], out'
w query "$D" --principal user:owner --vector '[1,0,0,0]' --filter '{"salary": {"$ne": "x"}}'
expect_rc 0 "owner: a mismatch on an undeclared key is false, its negation true"
py_check "owner ne" 'assert sorted(h["doc_id"] for h in out[0]["results"]) == ["hidden", "public"], out'
finish
