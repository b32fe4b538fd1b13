#!/bin/sh
# bad_input.sh -- the bad-input table: each malformed ingest file is
# reported as `warden: FILE:LINE: field: reason`, exits 3, and commits
# nothing (the collection exports byte-identically before and after), even
# though good lines precede the bad one.  Then --keep-going commits the good
# lines, lists the bad ones and still exits 3.
. "$(dirname "$0")/common.inc"

D=$T/c
gen_docs 6 4 7 >"$T/base.jsonl"
w init "$D" --dim 4
expect_rc 0 "init"
w ingest "$D" "$T/base.jsonl"
expect_rc 0 "ingest base"
w export "$D" "$T/before.jsonl"
expect_rc 0 "export before"

GOOD1='{"doc_id": "new-1", "source": "s3://b/new-1", "namespace": "/n", "metadata": {"year": 2}, "acl": {"allow": ["user:alice"]}, "chunks": [{"text": "one", "embedding": [0.1, 0.2, 0.3, 0.4]}]}'
GOOD2='{"doc_id": "new-2", "source": "s3://b/new-2", "metadata": {"year": 3}, "acl": {"allow": ["group:eng"], "deny": ["user:x"]}, "chunks": [{"text": "two", "embedding": [0.4, 0.3, 0.2, 0.1]}]}'

# case NAME LINE: the file $T/NAME.jsonl (already written) must fail at LINE.
case_bad() {
  name=$1; line=$2; f=$T/$name.jsonl
  w ingest "$D" "$f"
  expect_rc 3 "$name" || true
  CHECKS=$((CHECKS + 1))
  if [ "$line" = any ]; then
    grep -q "^warden: $f:[0-9][0-9]*: " "$T/err" || fail "$name: stderr lacks '$f:LINE: ': $(head -c 400 "$T/err")"
  else
    # FILE:LINE: field: reason -- a field, then a non-empty reason.
    grep -q "^warden: $f:$line: [^ ][^:]*: ..*" "$T/err" ||
      fail "$name: stderr lacks '$f:$line: field: reason': $(head -c 400 "$T/err")"
  fi
  [ "$(grep -v -c '^warden: ingest: progress: ' "$T/err")" -eq 1 ] ||
    fail "$name: expected one stderr line, got: $(head -c 600 "$T/err")"
  [ -s "$T/out" ] && fail "$name: printed a report for a failed ingest: $(cat "$T/out")"
  w export "$D" "$T/after.jsonl"
  cmp -s "$T/before.jsonl" "$T/after.jsonl" || fail "$name: the collection changed"
}

{ echo "$GOOD1"; echo '{"doc_id": "bad", "source": "s3://b/bad", "acl": {"allow": ["*"]}, "chunks": [{"text": "x", "embedding": [1, 2, 3, 4]}'; echo "$GOOD2"; } >"$T/malformed.jsonl"
case_bad malformed 2

{ echo "$GOOD1"; echo "$GOOD2"; echo '{"doc_id": "bad", "source": "s3://b/bad", "acl": {"allow": ["*"]}, "chunks": [{"text": "x", "embedding": [1, 2, 3]}]}'; } >"$T/wrongdim.jsonl"
case_bad wrongdim 3

{ echo "$GOOD1"; echo '{"doc_id": "bad", "source": "s3://b/bad", "acl": {"allow": ["*"]}, "chunks": [{"text": "x", "embedding": [NaN, 0, 0, 1]}]}'; } >"$T/nan.jsonl"
case_bad nan 2

{ echo "$GOOD1"; echo '{"doc_id": "bad", "source": "s3://b/bad", "acl": {"allow": ["*"]}, "chunks": [{"text": "x", "embedding": [1e999, 0, 0, 1]}]}'; } >"$T/overflow.jsonl"
case_bad overflow 2

{ echo "$GOOD1"; echo '{"doc_id": "bad", "source": "s3://b/bad", "acl": {"allow": ["*"]}, "chunks": [{"text": "x", "embedding": [1e39, 0, 0, 1]}]}'; } >"$T/floatoverflow.jsonl"
case_bad floatoverflow 2

{ echo "$GOOD1"; echo "$GOOD2"; echo '{"doc_id": "bad", "source": "s3://b/bad", "acl": {"allow": ["alice"]}, "chunks": [{"text": "x", "embedding": [1, 0, 0, 1]}]}'; } >"$T/principal.jsonl"
case_bad principal 3

{ echo "$GOOD1"; echo '{"doc_id": "bad", "source": "s3://b/bad", "acl": {"allow": ["user:a"], "deny": ["usr:b"]}, "chunks": [{"text": "x", "embedding": [1, 0, 0, 1]}]}'; } >"$T/principal2.jsonl"
case_bad principal2 2

# year is an int in the collection (from the base documents).
{ echo "$GOOD1"; echo '{"doc_id": "bad", "source": "s3://b/bad", "metadata": {"year": "four"}, "acl": {"allow": ["*"]}, "chunks": [{"text": "x", "embedding": [1, 0, 0, 1]}]}'; } >"$T/mdtype.jsonl"
case_bad mdtype 2

{ echo "$GOOD1"; echo '{"doc_id": "bad", "source": "s3://b/bad", "metadata": {"year": {"a": 1}}, "acl": {"allow": ["*"]}, "chunks": [{"text": "x", "embedding": [1, 0, 0, 1]}]}'; } >"$T/mdobject.jsonl"
case_bad mdobject 2

# Truncated: the last line is cut mid-object (no newline at the end).
{ echo "$GOOD1"; echo "$GOOD2"; printf '%s' '{"doc_id": "cut", "source": "s3://b/cut", "acl": {"allow": ["*"]}, "chunks": [{"text": "x", "embe'; } >"$T/truncated.jsonl"
case_bad truncated 3

: >"$T/empty.jsonl"
case_bad empty any

# A 10 MB line (a huge chunk text) whose last field is bad: the whole line
# must be read as line 2, not split at a buffer boundary.
"$PY" - "$T/big.jsonl" "$GOOD1" "$GOOD2" <<'PYEOF'
import json, sys
with open(sys.argv[1], "w") as f:
    f.write(sys.argv[2] + "\n")
    d = {"doc_id": "big", "source": "s3://b/big", "acl": {"allow": ["*"]},
         "chunks": [{"text": "x" * (10 * 1024 * 1024), "embedding": [1, 0, 0]}]}
    f.write(json.dumps(d) + "\n")
    f.write(sys.argv[3] + "\n")
PYEOF
case_bad big 2

# The same doc_id twice in one input.
{ echo "$GOOD1"; echo "$GOOD2"; echo "$GOOD1"; } >"$T/dup.jsonl"
case_bad dup 3

# Not UTF-8.
{ echo "$GOOD1"; printf '{"doc_id": "bad\377", "source": "s3://b/bad", "acl": {"allow": ["*"]}, "chunks": [{"text": "x", "embedding": [1, 0, 0, 1]}]}\n'; } >"$T/utf8.jsonl"
case_bad utf8 2

# Two inputs form one transaction: a bad line in the second file keeps the
# good first file out too.
echo '{"doc_id": "new-3", "source": "s3://b/new-3", "acl": {"allow": ["*"]}, "chunks": [{"text": "three", "embedding": [0.5, 0.5, 0.5, 0.5]}]}' >"$T/ok1.jsonl"
w ingest "$D" "$T/ok1.jsonl" "$T/wrongdim.jsonl"
expect_rc 3 "two files, second bad"
expect_err_prefix "two files" "$T/wrongdim.jsonl:3: "
w export "$D" "$T/after.jsonl"
cmp -s "$T/before.jsonl" "$T/after.jsonl" || fail "two files: the good file was committed"

# --keep-going: the good lines are committed, each bad line listed, exit 3.
{ echo "$GOOD1"; echo '{"doc_id": "bad1", "chunks": [}'; echo "$GOOD2";
  echo '{"doc_id": "bad2", "source": "s3://b/bad", "acl": {"allow": ["*"]}, "chunks": [{"text": "x", "embedding": [1, 2]}]}'; } >"$T/mixed.jsonl"
w ingest "$D" "$T/mixed.jsonl" --keep-going
expect_rc 3 "--keep-going with bad lines"
py_check "--keep-going report" '
r = out[0]
assert r["documents"] == 2 and r["bad_lines"] == 2 and r["chunks"] == 2, r
lines = err.splitlines()
f = args[0]
assert any(l.startswith("warden: %s:2: " % f) for l in lines), lines
assert any(l.startswith("warden: %s:4: " % f) for l in lines), lines
assert all(l.startswith("warden: ") for l in lines), lines
' "$T/mixed.jsonl"
w stats "$D"
py_check "--keep-going committed the good lines" 'assert out[0]["documents"] == 8, out'
w acl get "$D" new-2
expect_rc 0 "acl get of a kept doc"
py_check "kept doc acl" '
assert out[0]["allow"] == ["group:eng"] and out[0]["deny"] == ["user:x"], out
'

finish
