#!/bin/sh
# restore.sh -- a backup is a backup: a collection rebuilt from
# `warden export --full` + `warden import`, and one copied by `warden backup`
# (taken while writes go on), answer every principal's queries exactly as
# the original does -- including a deny through a nested directory group
# and a grant -- and a documents-only export reads back into a fresh
# collection (float fields stay float, lines do not grow).
. "$(dirname "$0")/common.inc"

cat >"$T/w.yaml" <<'YEOF'
dimension: 4
metric: cosine
resolver:
  type: grants
YEOF
D=$T/orig
w init "$D" --config "$T/w.yaml"
expect_rc 0 "init"

# Documents: "a-first" sorts first and carries an integral value (2) of a
# float field whose type was set by a later-sorting document ingested first.
"$PY" - "$T/docs.jsonl" <<'PYEOF'
import json, random, sys
random.seed(13)
out = open(sys.argv[1], "w")
def doc(i, score, acl, src):
    emb = [round(random.uniform(-1, 1), random.choice([1, 3, 7])) for _ in range(4)]
    emb[0] = emb[0] or 0.5
    return {"doc_id": i, "source": src, "namespace": "/t",
            "metadata": {"score": score, "tag": random.choice(["x", "y"])},
            "acl": acl, "chunks": [{"text": "text of " + i, "embedding": emb},
                                   {"text": "more " + i, "embedding": [0.1, 0.2, 0.3, 1e-7]}]}
# the float type comes from this first line
out.write(json.dumps(doc("z-last", 2.5, {"allow": ["*"]}, "s3://b/pub/z")) + "\n")
out.write(json.dumps(doc("a-first", 2, {"allow": ["group:staff"], "deny": ["group:banned"]},
                         "s3://b/pub/a")) + "\n")
for n in range(40):
    acl = random.choice([{"allow": ["*"]}, {"allow": ["group:staff"]},
                         {"allow": ["*"], "deny": ["group:banned"]},
                         {"allow": ["user:bob", "group:interns"]}])
    src = random.choice(["s3://b/pub/", "s3://b/priv/"]) + str(n)
    out.write(json.dumps(doc("d%02d" % n, random.choice([1.5, 3, 0.1 + n]), acl, src)) + "\n")
PYEOF
w ingest "$D" "$T/docs.jsonl"
expect_rc 0 "ingest"
# eve is banned only through the directory: interns -> banned
w principals set "$D" user:eve --groups group:interns,group:staff
expect_rc 0 "principals set eve"
w principals set "$D" group:interns --groups group:banned
expect_rc 0 "principals set interns"
w principals set "$D" user:bob --groups group:staff
w grants add "$D" --principal group:staff --prefix s3://b/
expect_rc 0 "grant staff"
w grants add "$D" --principal "*" --prefix s3://b/pub/
expect_rc 0 "grant everyone pub"

# answers: every principal, several vectors and filters, exact and default
answers() { # DIR OUTFILE
  : >"$2"
  for p in user:eve user:bob user:alice group:staff group:interns user:nobody; do
    for v in '[1,0,0,0]' '[0,1,0,0]' '[0.1,0.2,0.3,0]' '[-1,0.5,0,0]'; do
      for f in '' '{"score": {"$gte": 2}}' '{"tag": "x"}'; do
        if [ -n "$f" ]; then
          "$WARDEN" query "$1" --principal "$p" --vector "$v" -k 50 --filter "$f" >>"$2" 2>&1
        else
          "$WARDEN" query "$1" --principal "$p" --vector "$v" -k 50 >>"$2" 2>&1
        fi
        echo "rc=$? $p $v $f" >>"$2"
      done
    done
    "$WARDEN" principals get "$1" "$p" >>"$2" 2>&1
  done
  "$WARDEN" grants list "$1" >>"$2"
  # results without the revision (a restored collection has its own)
  sed -i 's/"revision": *[0-9]*//g' "$2"
}
answers "$D" "$T/a.orig"
CHECKS=$((CHECKS + 1))
grep -q '"doc_id": *"a-first"' "$T/a.orig" || fail "the original never returns a-first (test is vacuous)"
# the nested-group deny holds in the original (and must in every copy)
w query "$D" --principal user:eve --vector '[1,0,0,0]' -k 50
py_check "eve is denied a-first through interns -> banned" 'assert "a-first" not in [h["doc_id"] for h in out[0]["results"]], out'
w query "$D" --principal user:bob --vector '[1,0,0,0]' -k 50
py_check "bob reads a-first" 'assert "a-first" in [h["doc_id"] for h in out[0]["results"]], out'

# 1. full export + import
w export "$D" "$T/full.jsonl" --full
expect_rc 0 "export --full"
w import "$T/r1" "$T/full.jsonl"
expect_rc 0 "import"
py_check "import report" 'assert out[0]["documents"] == 42 and out[0]["principals"] == 3 and out[0]["grants"] == 2, out'
answers "$T/r1" "$T/a.r1"
CHECKS=$((CHECKS + 1))
cmp -s "$T/a.orig" "$T/a.r1" || fail "import answers differ: $(diff "$T/a.orig" "$T/a.r1" | head -5)"
w check "$T/r1"
expect_rc 0 "check of the imported collection"
# revision continues above the original's
"$WARDEN" stats "$D" >"$T/s0"; "$WARDEN" stats "$T/r1" >"$T/s1"
CHECKS=$((CHECKS + 1))
"$PY" -c 'import json,sys; a=json.load(open(sys.argv[1]))["revision"]; b=json.load(open(sys.argv[2]))["revision"]; sys.exit(0 if b > a else 1)' "$T/s0" "$T/s1" || fail "restored revision not above the original's"
# a second export of the restored collection equals the first (but header)
w export "$T/r1" "$T/full2.jsonl" --full
CHECKS=$((CHECKS + 1))
tail -n +2 "$T/full.jsonl" >"$T/f1"; tail -n +2 "$T/full2.jsonl" >"$T/f2"
cmp -s "$T/f1" "$T/f2" || fail "export of the restored collection differs: $(diff "$T/f1" "$T/f2" | head -4 | cut -c1-300)"

# refusals: truncated, not a full export, target exists; nothing left
head -n -1 "$T/full.jsonl" >"$T/trunc.jsonl"
w import "$T/r2" "$T/trunc.jsonl"
expect_rc 3 "import of a truncated export"
expect_err_prefix "truncated" "import: .*trunc.jsonl:[0-9]*: warden_export_end: missing"
CHECKS=$((CHECKS + 1))
[ ! -e "$T/r2" ] && [ -z "$(ls -A "$T" | grep '^\.r2')" ] || fail "failed import left files: $(ls -A "$T")"
w import "$T/r2" "$T/docs.jsonl"
expect_rc 3 "import of a documents-only file"
w import "$T/r1" "$T/full.jsonl"
expect_rc 1 "import over an existing collection" || true
sed 's/"group:banned"/"group:ban ned"/' "$T/full.jsonl" >"$T/bad.jsonl"
w import "$T/r2" "$T/bad.jsonl"
expect_rc 3 "import with a bad principal"
expect_err_prefix "bad principal names the line" "import: .*bad.jsonl:[0-9]*: "
CHECKS=$((CHECKS + 1))
[ ! -e "$T/r2" ] || fail "failed import left $T/r2"
# an export is data: a resolver command (or audit path) planted in its
# config is not run unless the importer says it trusts the file
"$PY" - "$T/full.jsonl" "$T/evil.jsonl" "$T/PWNED" <<'PYEOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
h = json.loads(lines[0])
assert "resolver:\n  type: grants\n" in h["config"], h["config"]
h["config"] = h["config"].replace(
    "resolver:\n  type: grants\n",
    'resolver:\n  type: command\n  command: ["/bin/sh", "-c", "touch %s; exit 1"]\n'
    % sys.argv[3])
open(sys.argv[2], "w").write("\n".join([json.dumps(h)] + lines[1:]) + "\n")
PYEOF
w import "$T/r2" "$T/evil.jsonl"
expect_rc 3 "import of an export whose config names a resolver command"
expect_err_prefix "the refusal names the field" "import: .*evil.jsonl:1: config.resolver.command: "
CHECKS=$((CHECKS + 1))
[ ! -e "$T/r2" ] && [ ! -e "$T/PWNED" ] || fail "refused import left files or ran the command"
w import "$T/r2" "$T/evil.jsonl" --trust-config
expect_rc 0 "import --trust-config takes the resolver"
w query "$T/r2" --principal user:alice --vector '[1,0,0,0]' -k 3
CHECKS=$((CHECKS + 1))
[ -e "$T/PWNED" ] || fail "the trusted resolver command did not run"
rm -rf "$T/r2" "$T/PWNED"

# 2. documents-only export: float stays float, lines do not grow
w export "$D" "$T/docs-out.jsonl"
expect_rc 0 "export"
w init "$T/r3" --dim 4 --metric cosine
w ingest "$T/r3" "$T/docs-out.jsonl"
expect_rc 0 "plain export reads back into a fresh collection (float field starting with 2)"
CHECKS=$((CHECKS + 1))
"$PY" - "$T/docs.jsonl" "$T/docs-out.jsonl" <<'PYEOF' || fail "exported lines are longer than the ingested ones"
import json, sys
a = {json.loads(l)["doc_id"]: l for l in open(sys.argv[1])}
for l in open(sys.argv[2]):
    d = json.loads(l)
    src = json.loads(a[d["doc_id"]])
    # every float32 reads back as the same float32, in no more characters
    for c0, c1 in zip(src["chunks"], d["chunks"]):
        for x, y in zip(c0["embedding"], c1["embedding"]):
            import struct
            f = struct.unpack("f", struct.pack("f", x))[0]
            assert struct.unpack("f", struct.pack("f", y))[0] == f, (x, y)
    e0 = ",".join(json.dumps(x) for c in src["chunks"] for x in c["embedding"])
    e1 = l[l.index('"chunks"'):]
    n0 = sum(len(repr(float(x)).rstrip("0").rstrip(".")) for c in src["chunks"] for x in c["embedding"])
    n1 = sum(len(s) for s in e1.split('"embedding":[')[1:] for s in [s.split("]")[0]])
    assert n1 <= n0 + 8, (d["doc_id"], n0, n1, e1)
PYEOF

# 3. backup while writes go on
( i=0; while [ $i -lt 30 ]; do
    "$WARDEN" acl set "$D" "d0$((i % 10))" --allow "user:w$i" >/dev/null 2>&1
    i=$((i + 1)); done ) &
wpid=$!
w backup "$D" "$T/b1"
expect_rc 0 "backup during writes"
wait $wpid
w check "$T/b1"
expect_rc 0 "check of the backup"
# a quiet backup answers exactly as the original
w backup "$D" "$T/b2"
expect_rc 0 "backup"
answers "$D" "$T/a.now"
answers "$T/b2" "$T/a.b2"
CHECKS=$((CHECKS + 1))
cmp -s "$T/a.now" "$T/a.b2" || fail "backup answers differ: $(diff "$T/a.now" "$T/a.b2" | head -5)"
w backup "$D" "$T/b2"
expect_rc 1 "backup onto an existing directory" || true
# compacted: deleting half the documents, the backup is smaller than the store
i=0; while [ $i -lt 30 ]; do "$WARDEN" delete "$D" "d$(printf %02d $i)" >/dev/null; i=$((i + 1)); done
w backup "$D" "$T/b3"
expect_rc 0 "backup after deletes"
CHECKS=$((CHECKS + 1))
[ "$(stat -c %s "$T/b3/store/data.mdb")" -lt "$(stat -c %s "$D/store/data.mdb")" ] || fail "backup not smaller than the store"

finish
