#!/bin/sh
# usage.sh -- the CLI's promises about usage: --help/--version exit 0,
# usage errors exit 2 with one `warden: ...` line on stderr, bad query
# vectors exit 3 naming their line.
. "$(dirname "$0")/common.inc"

w --help
expect_rc 0 "--help"
grep -q "warden query DIR --principal P" "$T/out" || fail "--help lacks the query usage line"
w --version
expect_rc 0 "--version"
grep -q '^warden ' "$T/out" || fail "--version output: $(cat "$T/out")"
for c in init ingest query delete acl principals grants index stats check export; do
  w "$c" --help
  expect_rc 0 "$c --help"
  grep -q "^usage: warden $c" "$T/out" || fail "$c --help: $(head -1 "$T/out")"
done
w acl set --help
expect_rc 0 "acl set --help"

# usage_err WHAT ARGS...: exit 2, exactly one stderr line, "warden: " prefix.
usage_err() {
  what=$1; shift
  w "$@"
  expect_rc 2 "$what" || return 0
  [ -s "$T/out" ] && fail "$what: wrote to stdout: $(head -c 200 "$T/out")"
  [ "$(wc -l <"$T/err")" -eq 1 ] || fail "$what: stderr is not one line: $(cat "$T/err")"
  grep -q '^warden: ' "$T/err" || fail "$what: stderr: $(cat "$T/err")"
}

D=$T/c
usage_err "no arguments"
usage_err "unknown command" frobnicate
usage_err "init without DIR" init --dim 4
usage_err "init without --dim" init "$D"
usage_err "init --dim abc" init "$D" --dim abc
usage_err "init --dim 0" init "$D" --dim 0
usage_err "init --metric bogus" init "$D" --dim 4 --metric bogus
usage_err "init unknown flag" init "$D" --dim 4 --frob
usage_err "init --dim without value" init "$D" --dim
usage_err "init two DIRs" init "$D" "$D.2" --dim 4
[ -e "$D" ] && fail "a usage error created the collection"

w init "$D" --dim 4 --metric l2
expect_rc 0 "init --metric l2"
py_check "init l2" 'assert out[0]["metric"] == "l2" and out[0]["dimension"] == 4, out'
echo '{"doc_id": "a", "source": "s3://b/a", "acl": {"allow": ["*"]}, "chunks": [{"text": "x", "embedding": [1, 0, 0, 0]}]}' >"$T/a.jsonl"
w ingest "$D" "$T/a.jsonl"
expect_rc 0 "ingest one doc"

usage_err "query without --principal" query "$D" --vector '[1,0,0,0]'
usage_err "query without a vector" query "$D" --principal user:a
usage_err "query --vector and --text" query "$D" --principal user:a --vector '[1,0,0,0]' --text hi
usage_err "query --exact --ann" query "$D" --principal user:a --vector '[1,0,0,0]' --exact --ann
usage_err "query -k x" query "$D" --principal user:a --vector '[1,0,0,0]' -k x
usage_err "query -k 0" query "$D" --principal user:a --vector '[1,0,0,0]' -k 0
usage_err "query --format xml" query "$D" --principal user:a --vector '[1,0,0,0]' --format xml
usage_err "query twice --principal" query "$D" --principal user:a --principal user:b --vector '[1,0,0,0]'
usage_err "delete without DOC_ID" delete "$D"
usage_err "acl without subcommand" acl
usage_err "acl bogus subcommand" acl frob "$D" a
usage_err "acl set without lists" acl set "$D" a
usage_err "acl get without DOC_ID" acl get "$D"
usage_err "principals set without --groups" principals set "$D" user:a
usage_err "export extra argument" export "$D" f1 f2
usage_err "stats unknown flag" stats "$D" --bogus

# Good query (l2: squared distance, lower is better).
w query "$D" --principal user:a --vector '[1,0,0,0]' -k 1
expect_rc 0 "query l2"
py_check "l2 score" 'assert out[0]["results"][0]["doc_id"] == "a" and abs(out[0]["results"][0]["score"]) < 1e-6, out'
w query "$D" --principal user:a --vector='[0,1,0,0]' --k=1
expect_rc 0 "--opt=value syntax"

# Bad query vectors are invalid data: exit 3.
data_err() {
  what=$1; prefix=$2; shift 2
  w "$@"
  expect_rc 3 "$what" || return 0
  expect_err_prefix "$what" "$prefix"
}
data_err "wrong dimension" "--vector: " query "$D" --principal user:a --vector '[1,0,0]'
data_err "NaN token" "--vector: " query "$D" --principal user:a --vector '[NaN,0,0,0]'
data_err "overflow 1e999" "--vector: " query "$D" --principal user:a --vector '[1e999,0,0,0]'
data_err "float overflow 1e39" "--vector: " query "$D" --principal user:a --vector '[1e39,0,0,0]'
data_err "not an array" "--vector: " query "$D" --principal user:a --vector '{"a": 1}'
data_err "string element" "--vector: " query "$D" --principal user:a --vector '[1,"0",0,0]'
printf '[1,0,0,0]\n[0,1,0]\n[0,0,1,0]\n' >"$T/v.jsonl"
data_err "vector file bad line 2" "$T/v.jsonl:2: vector: " query "$D" --principal user:a --vector-file "$T/v.jsonl"
printf '[1,0,0,0]\n[0,1,0,0]\n[0,0,1,\n' >"$T/v2.jsonl"
data_err "vector file truncated" "$T/v2.jsonl:3: vector: " query "$D" --principal user:a --vector-file "$T/v2.jsonl"
: >"$T/empty.jsonl"
data_err "empty vector file" "$T/empty.jsonl: vector: " query "$D" --principal user:a --vector-file "$T/empty.jsonl"

# Runtime errors: exit 1.
w stats "$T/nowhere"
expect_rc 1 "stats on a missing collection"
expect_err_prefix "stats missing" "stats: "
w query "$D" --principal user:a --vector-file "$T/nofile"
expect_rc 1 "missing vector file"
w acl get "$D" no-such-doc
expect_rc 1 "acl get unknown doc"
expect_err_prefix "acl get unknown" "acl get: "
w index "$T/nowhere"
expect_rc 1 "index on a missing collection"

finish
