#!/bin/sh
# npy.sh -- `warden ingest DIR META.jsonl --vectors EMB.npy`: the NumPy path
# gives the same collection as the JSONL path for the same float32 values
# (float16 too), row count / dimension / dtype / layout errors are refused
# before anything is written, a bad line names META:LINE (also across
# batches), keep_going keeps the rows of later lines aligned.
. "$(dirname "$0")/common.inc"
NP=/usr/bin/python3 # Debian's python3-numpy (tools/deps.sh test)

D=$T/c
# gen N DIM DTYPE PREFIX: PREFIX.meta.jsonl, PREFIX.npy (float32 or
# float16) and PREFIX.jsonl: the same documents with the npy's values as
# exact decimal floats (what the JSONL path must store identically)
gen() {
  "$NP" - "$@" <<'PYEOF'
import json, sys
import numpy as np
n, dim, dt, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
r = np.random.default_rng(7)
docs, rows = [], []
for i in range(n):
    nc = 1 + i % 3
    d = {"doc_id": "d%05d" % i, "source": "s3://b/%d" % i, "namespace": "/n%d" % (i % 2),
         "metadata": {"year": i % 4, "w": i * 0.5, "kind": "ab"[i % 2], "tags": ["x", "y%d" % (i % 3)]},
         "acl": {"allow": ["user:alice" if i % 2 else "group:eng"], "deny": []},
         "chunks": [{"text": "doc %d chunk %d" % (i, c)} for c in range(nc)]}
    docs.append(d)
    rows.append(r.standard_normal((nc, dim)))
a = np.concatenate(rows).astype(np.float32 if dt == "f4" else np.float16)
np.save(out + ".npy", a)
f32 = a.astype(np.float32)
k = 0
with open(out + ".meta.jsonl", "w") as m, open(out + ".jsonl", "w") as j:
    for d in docs:
        m.write(json.dumps(d) + "\n")
        for c in d["chunks"]:
            c["embedding"] = [float(x) for x in f32[k]]
            k += 1
        j.write(json.dumps(d) + "\n")
PYEOF
}

gen 60 8 f4 "$T/a"
w init "$D" --dim 8
expect_rc 0 "init"
w ingest "$D" "$T/a.meta.jsonl" --vectors "$T/a.npy"
expect_rc 0 "ingest --vectors float32"
py_check "report" '
r = out[0]
assert list(r) == ["documents", "replaced", "chunks", "bad_lines", "revision"], r
assert r["documents"] == 60 and r["chunks"] == sum(1 + i % 3 for i in range(60)) and r["bad_lines"] == 0, r
'
w export "$D"; cp "$T/out" "$T/npy.export"
w init "$T/j" --dim 8 >/dev/null
w ingest "$T/j" "$T/a.jsonl"
expect_rc 0 "ingest the same as JSONL"
w export "$T/j"
CHECKS=$((CHECKS + 1))
cmp -s "$T/out" "$T/npy.export" || fail "NumPy and JSONL ingests export differently"

# the rows land on their chunks: d00006's chunk found by its own row
VEC=$("$NP" -c 'import numpy as np, json, sys; a = np.load(sys.argv[1]); print(json.dumps([float(x) for x in a[int(sys.argv[2])]]))' "$T/a.npy" 12)
w query "$D" --principal group:eng --vector "$VEC" -k 1
expect_rc 0 "query"
py_check "row 12 is d00006 chunk 0" '
h = out[0]["results"][0]
assert (h["doc_id"], h["chunk"]) == ("d00006", 0) and abs(h["score"] - 1) < 1e-5, h
'

# float16
gen 30 8 f2 "$T/h"
w init "$T/h16" --dim 8 >/dev/null
w ingest "$T/h16" "$T/h.meta.jsonl" --vectors "$T/h.npy"
expect_rc 0 "ingest --vectors float16"
w export "$T/h16"; cp "$T/out" "$T/h16.export"
w init "$T/hj" --dim 8 >/dev/null
w ingest "$T/hj" "$T/h.jsonl" >/dev/null
w export "$T/hj"
CHECKS=$((CHECKS + 1))
cmp -s "$T/out" "$T/h16.export" || fail "float16 rows differ from their float32 values"

# refused before anything is written: the collection stays as it is
REV=$("$WARDEN" stats "$D" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["revision"])')
unchanged() {
  w export "$D"
  CHECKS=$((CHECKS + 1))
  cmp -s "$T/out" "$T/npy.export" || fail "$1: the collection changed"
  R=$("$WARDEN" stats "$D" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["revision"])')
  [ "$R" = "$REV" ] || fail "$1: revision $R, expected $REV"
}
mk() { "$NP" -c "import numpy as np; $1" "$T"; }
mk 'import sys; a = np.load(sys.argv[1] + "/a.npy"); np.save(sys.argv[1] + "/short.npy", a[:-1])'
w ingest "$D" "$T/a.meta.jsonl" --vectors "$T/short.npy"
expect_rc 3 "one row short"
expect_err_prefix "one row short" "ingest: $T/short.npy: 119 rows for the 120 chunks of $T/a.meta.jsonl"
unchanged "one row short"
mk 'import sys; np.save(sys.argv[1] + "/wide.npy", np.ones((120, 9), np.float32))'
w ingest "$D" "$T/a.meta.jsonl" --vectors "$T/wide.npy"
expect_rc 3 "wrong dimension"
expect_err_prefix "wrong dimension" "ingest: $T/wide.npy: rows of 9 values, the collection's dimension is 8"
mk 'import sys; np.save(sys.argv[1] + "/f8.npy", np.ones((120, 8)))'
w ingest "$D" "$T/a.meta.jsonl" --vectors "$T/f8.npy"
expect_rc 3 "float64"
expect_err_prefix "float64" "ingest: $T/f8.npy: dtype '<f8' is not supported"
mk 'import sys; np.save(sys.argv[1] + "/be.npy", np.ones((120, 8), ">f4"))'
w ingest "$D" "$T/a.meta.jsonl" --vectors "$T/be.npy"
expect_rc 3 "big-endian"
expect_err_prefix "big-endian" "ingest: $T/be.npy: dtype '>f4' is not supported"
mk 'import sys; np.save(sys.argv[1] + "/fo.npy", np.asfortranarray(np.ones((120, 8), np.float32)))'
w ingest "$D" "$T/a.meta.jsonl" --vectors "$T/fo.npy"
expect_rc 3 "Fortran order"
expect_err_prefix "Fortran order" "ingest: $T/fo.npy: fortran_order must be False"
mk 'import sys; np.save(sys.argv[1] + "/one.npy", np.ones(960, np.float32))'
w ingest "$D" "$T/a.meta.jsonl" --vectors "$T/one.npy"
expect_rc 3 "1-D"
expect_err_prefix "1-D" "ingest: $T/one.npy: expected a 2-D array"
head -c 1000 "$T/a.npy" >"$T/trunc.npy"
w ingest "$D" "$T/a.meta.jsonl" --vectors "$T/trunc.npy"
expect_rc 3 "truncated"
expect_err_prefix "truncated" "ingest: $T/trunc.npy: the header says 120 x 8 float32 (3840 bytes of data) but the file holds"
printf 'not numpy at all' >"$T/junk.npy"
w ingest "$D" "$T/a.meta.jsonl" --vectors "$T/junk.npy"
expect_rc 3 "not .npy"
expect_err_prefix "not .npy" "ingest: $T/junk.npy: not a .npy file"
w ingest "$D" "$T/a.meta.jsonl" --vectors "$T/missing.npy"
expect_rc 1 "missing file"
expect_err_prefix "missing file" "ingest: $T/missing.npy: No such file or directory"
w ingest "$D" - --vectors "$T/a.npy"
expect_rc 2 "stdin"
head -3 "$T/a.jsonl" >"$T/withemb.jsonl"
mk 'import sys; np.save(sys.argv[1] + "/six.npy", np.ones((6, 8), np.float32))'
w ingest "$D" "$T/withemb.jsonl" --vectors "$T/six.npy"
expect_rc 3 "META with embeddings"
expect_err_prefix "META with embeddings" "$T/withemb.jsonl:1: chunks\[0\].embedding: not allowed with --vectors"
unchanged "the refusals"

# a bad line: without --keep-going nothing; with it, the rest keep their rows
"$PY" - "$T/a.meta.jsonl" "$T/bad.meta.jsonl" <<'PYEOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
d = json.loads(lines[9]); d["source"] = "nope"; lines[9] = json.dumps(d)
d = json.loads(lines[20]); d["doc_id"] = 5; lines[20] = json.dumps(d)
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
PYEOF
w init "$T/k" --dim 8 >/dev/null
w ingest "$T/k" "$T/bad.meta.jsonl" --vectors "$T/a.npy"
expect_rc 3 "bad line"
expect_err_prefix "bad line" "$T/bad.meta.jsonl:10: source: expected a URI"
w stats "$T/k"
py_check "nothing committed" 'assert out[0]["documents"] == 0 and out[0]["revision"] == 0, out'
w ingest "$T/k" "$T/bad.meta.jsonl" --vectors "$T/a.npy" --keep-going
expect_rc 3 "keep going"
py_check "keep going report" '
assert out[0]["documents"] == 58 and out[0]["bad_lines"] == 2, out
lines = err.splitlines()
assert len(lines) == 2, err
assert ":10: source: expected a URI" in lines[0], lines
assert ":21: doc_id: expected a string" in lines[1], lines
'
w query "$T/k" --principal user:alice --vector "$(
  "$NP" -c 'import numpy as np, json, sys; a = np.load(sys.argv[1]); print(json.dumps([float(x) for x in a[-1]]))' "$T/a.npy")" -k 1
py_check "the last row is still d00059 chunk 2" '
h = out[0]["results"][0]
assert (h["doc_id"], h["chunk"]) == ("d00059", 2) and abs(h["score"] - 1) < 1e-5, h
'

# a doc_id repeated in a later batch (2048 documents a batch)
"$NP" - "$T/big" <<'PYEOF'
import json, sys
import numpy as np
n = 2600
with open(sys.argv[1] + ".meta.jsonl", "w") as m:
    for i in range(n):
        m.write(json.dumps({"doc_id": "b%d" % (3 if i == 2500 else i), "source": "file:///b",
                            "acl": {"allow": ["*"]}, "chunks": [{"text": "t"}]}) + "\n")
np.save(sys.argv[1] + ".npy", np.random.default_rng(1).standard_normal((n, 8)).astype(np.float32))
PYEOF
w init "$T/big" --dim 8 >/dev/null
w ingest "$T/big" "$T/big.meta.jsonl" --vectors "$T/big.npy"
expect_rc 3 "repeat across batches"
expect_err_prefix "repeat across batches" "$T/big.meta.jsonl:2501: doc_id: duplicate of line 4 in this input"
w ingest "$T/big" "$T/big.meta.jsonl" --vectors "$T/big.npy" --keep-going
expect_rc 3 "repeat across batches, keep going"
py_check "2599 documents" 'assert out[0]["documents"] == 2599 and out[0]["bad_lines"] == 1, out'
# line numbers after skipped lines: a blank line (line 3) and a line the
# CLI refuses (line 102, kept going) shift the document-to-line map; the
# library's error for line 2502 must still name it and the line it repeats
"$NP" - "$T/shift" <<'PYEOF'
import json, sys
import numpy as np
n = 2600
docs = [{"doc_id": "s%d" % i, "source": "file:///s", "acl": {"allow": ["*"]},
         "chunks": [{"text": "t"}]} for i in range(n)]
docs[100]["doc_id"] = 5        # line 102 once the blank line is in
docs[2500]["doc_id"] = "s150"  # line 2502, repeating line 152
lines = [json.dumps(d) for d in docs]
lines.insert(2, "   ")
open(sys.argv[1] + ".meta.jsonl", "w").write("\n".join(lines) + "\n")
np.save(sys.argv[1] + ".npy", np.random.default_rng(2).standard_normal((n, 8)).astype(np.float32))
PYEOF
w init "$T/shift" --dim 8 >/dev/null
w ingest "$T/shift" "$T/shift.meta.jsonl" --vectors "$T/shift.npy" --keep-going
expect_rc 3 "shifted lines"
py_check "shifted lines report" '
assert out[0]["documents"] == 2598 and out[0]["bad_lines"] == 2, out
lines = err.splitlines()
assert len(lines) == 2, err
assert lines[0].endswith("shift.meta.jsonl:102: doc_id: expected a string"), lines
assert lines[1].endswith("shift.meta.jsonl:2502: doc_id: duplicate of line 152 in this input"), lines
'
# several batches of the reader thread (65,536 rows each: 819 documents of
# 80 chunks): a refused line in the second batch, a bad source (the
# library's) in the third; every later document keeps its own rows
"$NP" - "$T/multi" <<'PYEOF'
import json, sys
import numpy as np
n, c = 2000, 80
docs = [{"doc_id": "m%d" % i, "source": "file:///m", "acl": {"allow": ["*"]},
         "chunks": [{"text": "t"}] * c} for i in range(n)]
docs[1000]["acl"] = 5                     # line 1001: refused by the CLI
docs[1900]["source"] = "nope"             # line 1901: refused by the library
open(sys.argv[1] + ".meta.jsonl", "w").write("\n".join(json.dumps(d) for d in docs) + "\n")
np.save(sys.argv[1] + ".npy", np.random.default_rng(3).standard_normal((n * c, 8)).astype(np.float32))
PYEOF
w init "$T/multi" --dim 8 >/dev/null
w ingest "$T/multi" "$T/multi.meta.jsonl" --vectors "$T/multi.npy"
expect_rc 3 "several batches"
expect_err_prefix "several batches" "$T/multi.meta.jsonl:1001: acl: "
w stats "$T/multi"
py_check "several batches: nothing committed" 'assert out[0]["documents"] == 0, out'
w ingest "$T/multi" "$T/multi.meta.jsonl" --vectors "$T/multi.npy" --keep-going
expect_rc 3 "several batches, keep going"
py_check "several batches, keep going report" '
assert out[0]["documents"] == 1998 and out[0]["chunks"] == 1998 * 80 and out[0]["bad_lines"] == 2, out
lines = err.splitlines()
assert len(lines) == 2, err
assert ":1001: acl: " in lines[0], lines
assert ":1901: source: expected a URI" in lines[1], lines
'
for r in 1001 120005 159999; do
  w query "$T/multi" --principal user:x --vector "$(
    "$NP" -c 'import numpy as np, json, sys; a = np.load(sys.argv[1]); print(json.dumps([float(x) for x in a[int(sys.argv[2])]]))' "$T/multi.npy" $r)" -k 1
  py_check "row $r is its own document's chunk" '
h = out[0]["results"][0]
want = {"1001": ("m12", 41), "120005": ("m1500", 5), "159999": ("m1999", 79)}[args[0]]
assert (h["doc_id"], h["chunk"]) == want and abs(h["score"] - 1) < 1e-5, (h, want)
' $r
done
finish
