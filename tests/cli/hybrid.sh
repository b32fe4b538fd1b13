#!/bin/sh
# hybrid.sh -- `warden query --mode lexical|semantic|hybrid` end to end:
# exact identifiers found lexically, ranks and fused scores in the output,
# Bedrock's HYBRID / SEMANTIC names, --explain showing both sides' plans,
# the ACL applied to the lexical side, usage errors, check after writes.
. "$(dirname "$0")/common.inc"

D=$T/c
cat >"$T/warden.yaml" <<'YAML'
dimension: 8
metric: cosine
embedder:
  type: hash
YAML
w init "$D" --config "$T/warden.yaml"
expect_rc 0 "init"
cat >"$T/docs.jsonl" <<'JSONL'
{"doc_id": "t1", "source": "s3://b/t1", "namespace": "/it", "acl": {"allow": ["user:ann"]}, "chunks": [{"text": "Ticket ERR-4521: the build disk is full"}]}
{"doc_id": "t2", "source": "s3://b/t2", "namespace": "/it", "acl": {"allow": ["*"]}, "chunks": [{"text": "How to free disk space on build machines"}, {"text": "Running backups of the servers"}]}
{"doc_id": "t3", "source": "s3://b/t3", "namespace": "/hr", "acl": {"allow": ["user:bob"]}, "chunks": [{"text": "Secret salary review ERR-4521 disk disk"}]}
JSONL
w ingest "$D" "$T/docs.jsonl"
expect_rc 0 "ingest"

w query "$D" --principal user:ann --mode lexical --text "err-4521"
expect_rc 0 "lexical query"
py_check "identifier found, hidden doc absent" '
r = out[0]["results"]
assert [h["doc_id"] for h in r] == ["t1"], r
assert r[0]["lexical_rank"] == 1 and r[0]["semantic_rank"] is None, r
assert r[0]["score"] > 0, r
'

w query "$D" --principal user:bob --mode lexical --text "ERR-4521 run"
expect_rc 0 "lexical query as bob"
py_check "bob sees t3 and the public run chunk (stemmed)" '
r = out[0]["results"]
assert sorted((h["doc_id"], h["chunk"]) for h in r) == [("t2", 1), ("t3", 0)], r
'

w query "$D" --principal user:ann --mode hybrid --text "disk full" --explain -k 3
expect_rc 0 "hybrid query"
py_check "hybrid: fused score, both ranks, both plans" '
o = out[0]
r = o["results"]
assert 1 <= len(r) <= 3, r
assert all(h["doc_id"] in ("t1", "t2") for h in r), r
for h in r:
    assert h["semantic_rank"] is not None or h["lexical_rank"] is not None, h
    s = (1/(60+h["semantic_rank"]) if h["semantic_rank"] else 0) + (1/(60+h["lexical_rank"]) if h["lexical_rank"] else 0)
    assert abs(h["score"] - s) < 1e-6, (h, s)
assert [h["score"] for h in r] == sorted([h["score"] for h in r], reverse=True), r
p = o["plan"]
assert p["strategy"] == "hybrid" and p["mode"] == "hybrid" and p["fusion"] == "rrf" and p["rrf_k"] == 60, p
assert p["lexical"]["strategy"] == "bm25-blockmax" and "strategy" in p["semantic"], p
'

w query "$D" --principal user:ann --mode HYBRID --text "disk" --format bedrock
expect_rc 0 "bedrock HYBRID"
py_check "bedrock shape" '
r = out[0]["retrievalResults"]
assert r and all("content" in h and "location" in h for h in r), out
'
w query "$D" --principal user:ann --mode SEMANTIC --text "disk" --format bedrock
expect_rc 0 "bedrock SEMANTIC"

w query "$D" --principal user:ann --mode hybrid --text "disk" --vector '[1,0,0,0,0,0,0,0]'
expect_rc 0 "hybrid with an explicit vector"

w query "$D" --principal user:ann --mode lexical
expect_rc 2 "lexical without --text"
expect_err_prefix "lexical without --text" "query: "
w query "$D" --principal user:ann --mode lexical --text x --vector '[1,0,0,0,0,0,0,0]'
expect_rc 2 "lexical with a vector"
w query "$D" --principal user:ann --mode fuzzy --text x
expect_rc 2 "unknown mode"
expect_err_prefix "unknown mode" "query: "

w delete "$D" t1
expect_rc 0 "delete"
w query "$D" --principal user:ann --mode lexical --text "err-4521"
expect_rc 0 "lexical after delete"
py_check "deleted doc gone" 'assert out[0]["results"] == [], out'
w ingest "$D" "$T/docs.jsonl"
expect_rc 0 "re-ingest (upsert)"
w check "$D"
expect_rc 0 "check after writes"
py_check "check ok" 'assert out[0]["ok"] is True, out'

finish
