#!/bin/sh
# roundtrip.sh -- init, ingest, query (json, bedrock, batch, filters,
# namespaces, explain), stats, check, delete, and the export round trip:
# export -> ingest into a fresh collection -> export again is byte-identical.
. "$(dirname "$0")/common.inc"

D=$T/c
gen_docs 40 8 1 >"$T/docs.jsonl"

w init "$D" --dim 8
expect_rc 0 "init"
py_check "init report" '
assert out == [{"created": args[0], "dimension": 8, "metric": "cosine", "revision": 0}], out
' "$D"

w init "$D" --dim 8
expect_rc 1 "init over an existing collection" || true
expect_err_prefix "init twice" "init: "

w ingest "$D" "$T/docs.jsonl"
expect_rc 0 "ingest"
py_check "ingest report" '
r = out[0]
assert list(r) == ["documents", "replaced", "chunks", "bad_lines", "revision"], list(r)
assert r["documents"] == 40 and r["replaced"] == 0 and r["bad_lines"] == 0, r
assert r["chunks"] == sum(1 + i % 3 for i in range(40)), r
assert r["revision"] >= 1, r
'
REV1=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["revision"])' "$T/out")

w stats "$D"
expect_rc 0 "stats"
py_check "stats" '
s = out[0]
for k in ("documents", "chunks", "dimension", "metric", "revision"):
    assert k in s, (k, s)
assert s["documents"] == 40 and s["dimension"] == 8 and s["metric"] == "cosine", s
assert s["chunks"] == sum(1 + i % 3 for i in range(40)), s
assert s["revision"] == int(args[0]), s
' "$REV1"

w check "$D"
expect_rc 0 "check on a clean collection"

# Query with doc-004 chunk 1's own embedding, as alice (doc-004 allows her).
VEC=$("$PY" -c '
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d["doc_id"] == "doc-004": print(json.dumps(d["chunks"][1]["embedding"]))
' "$T/docs.jsonl")
w query "$D" --principal user:alice --vector "$VEC" -k 5
expect_rc 0 "query"
# The oracle: which documents alice may read, from the generator's rules.
ORACLE='
def allowed(i, p, groups=()):
    allow = ["user:alice"] if i % 2 == 0 else ["user:bob"]
    if i % 3 == 0: allow.append("group:eng")
    if i % 7 == 0: allow = ["*"]
    deny = ["user:mallory"] if i % 5 == 0 else []
    me = {p, *groups}
    return bool(set(allow) & (me | {"*"})) and not (set(deny) & me)
'
py_check "query shape and ACL" "$ORACLE"'
assert len(out) == 1, out
q = out[0]
assert list(q) == ["revision", "results"], list(q)
res = q["results"]
assert len(res) == 5, res
for h in res:
    assert list(h) == ["doc_id", "chunk", "score", "text", "source", "namespace", "metadata"], list(h)
    i = int(h["doc_id"][4:])
    assert allowed(i, "user:alice"), ("leak", h["doc_id"])
    assert h["text"] == "text of doc %d chunk %d" % (i, h["chunk"]), h
    assert h["namespace"] == "/ns%d/sub" % (i % 3), h
    assert h["metadata"]["year"] == i % 5 and h["metadata"]["kind"] == "ab"[i % 2], h
    assert h["metadata"]["tags"] == ["t%d" % (i % 4), "all"], h
assert res[0]["doc_id"] == "doc-004" and res[0]["chunk"] == 1, res[0]
assert abs(res[0]["score"] - 1.0) < 1e-4, res[0]
assert res[0]["source"] == "s3://bucket/doc-004.md", res[0]
scores = [h["score"] for h in res]
assert scores == sorted(scores, reverse=True), scores
'

# mallory is denied wherever the deny list names her; "*" docs otherwise.
w query "$D" --principal user:mallory --vector "$VEC" -k 40
expect_rc 0 "query as mallory"
py_check "exactly the allowed set for mallory" "$ORACLE"'
got = sorted({h["doc_id"] for h in out[0]["results"]})
want = sorted("doc-%03d" % i for i in range(40) if allowed(i, "user:mallory"))
assert got == want, (got, want)
'

# Caller-asserted groups widen access.
w query "$D" --principal user:zed --groups group:eng,group:x --vector "$VEC" -k 100 --exact
expect_rc 0 "query with --groups"
py_check "--groups" "$ORACLE"'
got = sorted({h["doc_id"] for h in out[0]["results"]})
want = sorted("doc-%03d" % i for i in range(40) if allowed(i, "user:zed", ["group:eng", "group:x"]))
assert got == want, (got, want)
n = sum(1 + i % 3 for i in range(40) if allowed(i, "user:zed", ["group:eng", "group:x"]))
assert len(out[0]["results"]) == n, (len(out[0]["results"]), n)
'

# Filters (both dialects, inline and @FILE) and namespaces.
w query "$D" --principal user:alice --vector "$VEC" -k 100 \
  --filter '{"lessThanOrEquals": {"key": "year", "value": 1}}'
expect_rc 0 "query --filter bedrock dialect"
py_check "filter year<=1" "$ORACLE"'
res = out[0]["results"]
assert res, "no results"
assert all(h["metadata"]["year"] <= 1 for h in res), res
got = sorted({h["doc_id"] for h in res})
want = sorted("doc-%03d" % i for i in range(40) if allowed(i, "user:alice") and i % 5 <= 1)
assert got == want, (got, want)
'
echo '{"kind": {"$eq": "a"}, "year": {"$gte": 3}}' >"$T/filter.json"
w query "$D" --principal user:alice --vector "$VEC" -k 100 --filter "@$T/filter.json"
expect_rc 0 "query --filter @FILE"
py_check "filter from file" '
res = out[0]["results"]
assert res and all(h["metadata"]["kind"] == "a" and h["metadata"]["year"] >= 3 for h in res), res
'
w query "$D" --principal user:alice --vector "$VEC" -k 100 --namespace /ns1 --namespace /ns2/
expect_rc 0 "query --namespace"
py_check "namespaces" '
res = out[0]["results"]
assert res and all(h["namespace"] in ("/ns1/sub", "/ns2/sub") for h in res), res
'

# --explain adds a plan object; --min-revision in the future is an error.
w query "$D" --principal user:alice --vector "$VEC" --explain
expect_rc 0 "query --explain"
py_check "explain" '
assert list(out[0])[:2] == ["revision", "results"] and isinstance(out[0].get("plan"), dict), out[0]
'
w query "$D" --principal user:alice --vector "$VEC" --min-revision 999999
[ "$rc" -ne 0 ] || fail "--min-revision in the future succeeded"
expect_err_prefix "--min-revision" "query: "

# Bedrock output shape.
w query "$D" --principal user:alice --vector "$VEC" -k 10 --format bedrock
expect_rc 0 "query --format bedrock"
py_check "bedrock shape" '
q = out[0]
assert list(q) == ["retrievalResults", "revision"], list(q)
rr = q["retrievalResults"]
assert len(rr) == 10, rr
assert rr[0]["documentId"] == "doc-004", rr[0]
seen = set()
for h in rr:
    assert list(h) == ["content", "location", "metadata", "score", "documentId"], list(h)
    src = h["metadata"]["x-amz-bedrock-kb-source-uri"]
    cid = h["metadata"]["x-amz-bedrock-kb-chunk-id"]
    assert cid.startswith(h["documentId"] + "#"), cid
    assert h["content"]["text"].startswith("text of doc"), h
    if src.startswith("s3://"):
        assert h["location"] == {"type": "S3", "s3Location": {"uri": src}}, h
    else:
        assert h["location"] == {"type": "CUSTOM", "customDocumentLocation": {"id": src}}, h
    seen.add(h["location"]["type"])
    assert "year" in h["metadata"], h
assert seen == {"S3", "CUSTOM"}, seen
'

# A batch from --vector-file (JSON Lines): one output line per query, in order.
"$PY" -c '
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1])]
for i in (4, 7, 14):
    print(json.dumps(docs[i]["chunks"][0]["embedding"]))
print()
' "$T/docs.jsonl" >"$T/batch.jsonl"
w query "$D" --principal user:alice --vector-file "$T/batch.jsonl" -k 3
expect_rc 0 "batch query"
py_check "batch order" '
assert len(out) == 3, out
assert [q["results"][0]["doc_id"] for q in out] == ["doc-004", "doc-007", "doc-014"], out
assert len({q["revision"] for q in out}) == 1, out
'
# One array spread over several lines is a single query.
"$PY" -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]), indent=2))' "$VEC" >"$T/one.json"
w query "$D" --principal user:alice --vector-file "$T/one.json" -k 1
expect_rc 0 "single pretty-printed vector file"
py_check "single vector file" 'assert len(out) == 1 and out[0]["results"][0]["doc_id"] == "doc-004", out'

# Export round trip: to stdout and to a file agree; a fresh collection fed
# the export exports the same bytes.
w export "$D"
expect_rc 0 "export to stdout"
cp "$T/out" "$T/exp-stdout.jsonl"
w export "$D" "$T/exp1.jsonl"
expect_rc 0 "export to file"
py_check "export report" 'assert out[0]["documents"] == 40 and out[0]["exported"] == args[0], out' "$T/exp1.jsonl"
cmp -s "$T/exp-stdout.jsonl" "$T/exp1.jsonl" || fail "export to stdout and to file differ"
ls "$T" | grep -q '\.tmp\.' && fail "export left a temporary file"
[ "$(wc -l <"$T/exp1.jsonl")" -eq 40 ] || fail "export has $(wc -l <"$T/exp1.jsonl") lines, expected 40"
w init "$T/c2" --dim 8
expect_rc 0 "init second collection"
w ingest "$T/c2" - <"$T/exp1.jsonl"
expect_rc 0 "ingest the export from stdin"
w export "$T/c2" "$T/exp2.jsonl"
expect_rc 0 "export second collection"
cmp -s "$T/exp1.jsonl" "$T/exp2.jsonl" || fail "export -> ingest -> export is not byte-identical"

# Re-ingest replaces; delete counts unknown ids.
w ingest "$D" "$T/docs.jsonl"
expect_rc 0 "re-ingest"
py_check "replaced" 'assert out[0]["documents"] == 40 and out[0]["replaced"] == 40, out'
w delete "$D" doc-001 doc-002 no-such-doc
expect_rc 0 "delete"
py_check "delete report" '
assert list(out[0]) == ["deleted", "unknown", "revision"], out
assert out[0]["deleted"] == 2 and out[0]["unknown"] == 1, out
'
w stats "$D"
py_check "stats after delete" 'assert out[0]["documents"] == 38, out'
w query "$D" --principal user:bob --vector "$VEC" -k 100
py_check "deleted docs are gone" '
assert not {"doc-001", "doc-002"} & {h["doc_id"] for h in out[0]["results"]}, out
'

finish
