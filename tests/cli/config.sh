#!/bin/sh
# config.sh -- `init --config FILE`: the file's dimension/metric are used
# and reported, --dim/--metric must agree with it, a bad file is invalid
# data naming FILE:LINE and leaves nothing behind; a collection with the
# hash embedder ingests chunks without embeddings and answers --text.
. "$(dirname "$0")/common.inc"

cat >"$T/w.yaml" <<'YEOF'
dimension: 16
metric: ip
embedder:
  type: hash
default_acl:
  allow: ["*"]
YEOF
w init "$T/c" --config "$T/w.yaml"
expect_rc 0 "init --config"
py_check "init --config report" '
assert out == [{"created": args[0], "dimension": 16, "metric": "ip", "revision": 0}], out
' "$T/c"

w init "$T/d" --config "$T/w.yaml" --dim 8
expect_rc 2 "init --config with a disagreeing --dim" || true
[ -e "$T/d/warden.yaml" ] && fail "a failed init left a collection behind"
w init "$T/d" --config "$T/w.yaml" --dim 16 --metric ip
expect_rc 0 "init --config with agreeing flags"

printf 'dimension: 16\nfoo: 1\n' >"$T/bad.yaml"
w init "$T/e" --config "$T/bad.yaml"
expect_rc 3 "init with an unknown config key"
expect_err_prefix "unknown config key" "init: .*bad.yaml:2: "
[ -e "$T/e/warden.yaml" ] && fail "a failed init left a config behind"
w init "$T/e" --config "$T/missing.yaml"
[ "$rc" -ne 0 ] || fail "init with a missing config file succeeded"

cat >"$T/docs.jsonl" <<'JEOF'
{"doc_id": "charm", "source": "s3://lib/charm", "chunks": [{"text": "the shield charm protego blocks spells"}]}
{"doc_id": "potion", "source": "s3://lib/potion", "chunks": [{"text": "brewing potions in a cauldron"}]}
JEOF
w ingest "$T/c" "$T/docs.jsonl"
expect_rc 0 "ingest without embeddings (hash embedder)"
w query "$T/c" --principal user:anyone --text "shield charm" -k 2
expect_rc 0 "query --text"
py_check "text query" '
res = out[0]["results"]
assert [h["doc_id"] for h in res] == ["charm", "potion"], res
assert res[0]["score"] > res[1]["score"], res
'
# Without an embedder, --text is refused and a chunk needs an embedding.
w init "$T/f" --dim 4
w query "$T/f" --principal user:a --text hi
[ "$rc" -ne 0 ] || fail "--text without an embedder succeeded"
w ingest "$T/f" "$T/docs.jsonl"
expect_rc 3 "chunk without embedding and no embedder"
expect_err_prefix "no embedder" "$T/docs.jsonl:1: "

finish
