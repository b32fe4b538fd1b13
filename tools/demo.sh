#!/bin/sh
# make demo: permission-aware retrieval over a Hogwarts spell handbook.
#
# Builds a fresh collection in a temporary directory from tools/demo/ (the
# config, 44 handbook pages and the school directory of users and nested
# groups), then asks the same question as different students and shows that
# each gets a different answer, drawn only from what their ACLs allow;
# filters in both dialects; a namespace restriction; and a permission revoke
# that takes effect on the very next query.  Vectors come from the built-in
# lexical hashing embedder, so no model is needed.
#
# The script does not just print: after each step it *checks* the claim with
# an independent oracle (Python reading the same JSONL files and applying
# the SPEC's ACL rule itself) and prints "ok: ..." lines.  Any failed
# command or check stops it with a non-zero exit status.
#
# Run from the repository root after the build (make demo does both).
# Environment: WARDEN (binary, default build/warden), WARDEN_DEMO_KEEP=1 to
# keep the collection afterwards.
set -eu

W=${WARDEN:-build/warden}
DATA=tools/demo
PY=/usr/bin/python3
K=5
QUESTION="how do I protect myself from a curse"

[ -x "$W" ] || { echo "demo: $W not found; run make first" >&2; exit 1; }
[ -x "$PY" ] || { echo "demo: $PY is needed to check the results" >&2; exit 1; }
for f in warden.yaml handbook.jsonl principals.jsonl; do
  [ -f "$DATA/$f" ] || { echo "demo: missing $DATA/$f (run from the repo root)" >&2; exit 1; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/warden-demo.XXXXXX")
C=$TMP/hogwarts
OUT=$TMP/out.json
ERR=$TMP/err.txt
finish() {
  rc=$?
  if [ "${WARDEN_DEMO_KEEP:-0}" = 1 ]; then
    echo "The collection is kept in $C (remove it with: rm -rf $TMP)"
  else
    rm -rf "$TMP"
  fi
  [ $rc -eq 0 ] || echo "demo: FAILED (exit $rc)" >&2
  exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM

# The checker and pretty-printer.  Independent of warden: it reads the demo
# files and applies SPEC section 2 (nested groups, deny wins, empty allow =
# nobody) on its own.  Usage: python3 -c "$CHECK" SUBCOMMAND ARGS...
# (The code sits in single quotes: it must not contain an apostrophe.)
CHECK='
import json, sys
DATA = "tools/demo"
cmd, args = sys.argv[1], sys.argv[2:]

def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def load(path):
    with open(path) as f:
        return json.load(f)

def results(path):
    return load(path)["results"]

def docs(overrides):
    out = {}
    with open(DATA + "/handbook.jsonl") as f:
        for line in f:
            d = json.loads(line)
            out[d["doc_id"]] = d
    for doc_id, acl in json.loads(overrides or "{}").items():
        out[doc_id]["acl"] = acl
    return out

def principal_set(p):
    direct = {}
    with open(DATA + "/principals.jsonl") as f:
        for line in f:
            o = json.loads(line)
            direct[o["principal"]] = o["groups"]
    seen, todo = {p}, [p]
    while todo:
        for g in direct.get(todo.pop(), []):
            if g not in seen:
                seen.add(g)
                todo.append(g)
    return seen

def readable(d, pset):
    allow, deny = set(d["acl"].get("allow", [])), set(d["acl"].get("deny", []))
    return bool(allow & (pset | {"*"})) and not (deny & pset)

if cmd == "table":
    o = load(args[0])
    rs = o["results"]
    print("  revision %d, %d result%s" % (o["revision"], len(rs), "" if len(rs) == 1 else "s"))
    rows = [("rank", "score", "doc_id#chunk", "namespace", "text")]
    for i, r in enumerate(rs, 1):
        text = " ".join(r["text"].split())
        text = text[:60] + ("..." if len(text) > 60 else "")
        rows.append((str(i), "%.3f" % r["score"], "%s#%d" % (r["doc_id"], r["chunk"]),
                     r["namespace"], text))
    width = [max(len(row[c]) for row in rows) for c in range(4)]
    for row in rows:
        print("  " + "  ".join(row[c].ljust(width[c]) for c in range(4)) + "  " + row[4])
elif cmd == "stats":    # FILE: documents and chunks match the handbook
    o, ds = load(args[0]), docs(None)
    nc = sum(len(d["chunks"]) for d in ds.values())
    if o["documents"] != len(ds) or o["chunks"] != nc:
        fail("stats says %s documents, %s chunks; the handbook has %d, %d"
             % (o["documents"], o["chunks"], len(ds), nc))
    print("ok: %d documents, %d chunks, as in the handbook" % (len(ds), nc))
elif cmd == "acl":      # FILE PRINCIPAL K [OVERRIDES]: every hit permitted, exactly k
    rs, p, k = results(args[0]), args[1], int(args[2])
    ds = docs(args[3] if len(args) > 3 else None)
    pset = principal_set(p)
    for r in rs:
        if not readable(ds[r["doc_id"]], pset):
            fail("%s got %s, which its ACL does not allow" % (p, r["doc_id"]))
    nvis = sum(len(d["chunks"]) for d in ds.values() if readable(d, pset))
    if len(rs) != min(k, nvis):
        fail("%s: %d results, expected exactly min(k=%d, %d readable chunks)" % (p, len(rs), k, nvis))
    print("ok: all %d results are readable by %s (of %d chunks it may read)" % (len(rs), p, nvis))
elif cmd == "all":      # FILE PRINCIPAL: the hits are exactly the readable chunks
    rs, p = results(args[0]), args[1]
    pset = principal_set(p)
    want = {(i, n) for i, d in docs(None).items() if readable(d, pset) for n in range(len(d["chunks"]))}
    got = {(r["doc_id"], r["chunk"]) for r in rs}
    if got != want:
        fail("%s: extra %s, missing %s" % (p, sorted(got - want), sorted(want - got)))
    print("ok: %s can reach exactly the %d chunks the ACLs allow, no more, no fewer" % (p, len(want)))
elif cmd == "denied":   # PRINCIPAL FILE...: no hit from a doc whose deny matches
    p, files = args[0], args[1:]
    pset = principal_set(p)
    ds = docs(None)
    denied = sorted(i for i, d in ds.items() if set(d["acl"].get("deny", [])) & pset)
    for f in files:
        for r in results(f):
            if r["doc_id"] in denied:
                fail("%s got %s although it is denied" % (p, r["doc_id"]))
    print("ok: %s never saw a document that denies it (%s)" % (p, ", ".join(denied)))
elif cmd == "has":      # FILE DOC yes|no
    ids = {r["doc_id"] for r in results(args[0])}
    if (args[1] in ids) != (args[2] == "yes"):
        fail("%s is %s the results" % (args[1], "not in" if args[2] == "yes" else "still in"))
    print("ok: %s is %s the results" % (args[1], "in" if args[2] == "yes" else "absent from"))
elif cmd == "differ":   # FILE...: the answers are pairwise different
    sets = [tuple(sorted((r["doc_id"], r["chunk"]) for r in results(f))) for f in args]
    if len(set(sets)) != len(sets):
        fail("two principals got the same answer")
    print("ok: %d principals, %d different answers" % (len(sets), len(sets)))
elif cmd == "meta":     # FILE PYTHON-EXPR-over-m: every hit satisfies it
    rs = results(args[0])
    if not rs:
        fail("no results to check")
    for r in rs:
        if not eval(args[1], {}, {"m": r["metadata"]}):
            fail("%s does not satisfy %s: %s" % (r["doc_id"], args[1], r["metadata"]))
    print("ok: all %d results satisfy %s" % (len(rs), args[1]))
elif cmd == "ns":       # FILE PREFIX: every hit is under the namespace
    rs, pre = results(args[0]), args[1].rstrip("/")
    if not rs:
        fail("no results to check")
    for r in rs:
        if not (r["namespace"] == pre or r["namespace"].startswith(pre + "/")):
            fail("%s is in %s, outside %s" % (r["doc_id"], r["namespace"], pre))
    print("ok: all %d results are under %s" % (len(rs), pre))
elif cmd == "bedrock":  # FILE: Bedrock Retrieve shape, S3 locations of our sources
    o, ds = load(args[0]), docs(None)
    rs = o["retrievalResults"]
    if not rs:
        fail("no retrievalResults")
    width = max(len(r["location"].get("s3Location", {}).get("uri", "")) for r in rs)
    for r in rs:
        loc, doc = r["location"], ds[r["documentId"]]
        if loc["type"] != "S3" or loc["s3Location"]["uri"] != doc["source"]:
            fail("%s: location %s, source is %s" % (r["documentId"], loc, doc["source"]))
        text = " ".join(r["content"]["text"].split())[:40]
        print("  %.3f  %s  %s..." % (r["score"], loc["s3Location"]["uri"].ljust(width), text))
    print("ok: %d retrievalResults, each with its S3 location" % len(rs))
elif cmd == "expand":   # FILE: "expanded" holds all groups of the principal, transitively
    o = load(args[0])
    want = principal_set(o["principal"]) - {o["principal"]}
    if set(o["expanded"]) != want:
        fail("expanded %s, expected %s" % (sorted(o["expanded"]), sorted(want)))
    print("ok: %s is in %d groups, nested groups included" % (o["principal"], len(want)))
elif cmd == "field":    # FILE KEY: print a top-level field
    print(load(args[0])[args[1]])
elif cmd == "compact":  # FILE: one JSON object per line, compact
    with open(args[0]) as f:
        for line in f:
            if line.strip():
                print("  " + json.dumps(json.loads(line), separators=(", ", ": ")))
else:
    fail("unknown check " + cmd)
'
check() { "$PY" -c "$CHECK" "$@"; }

heading() { echo; echo "== $* =="; }
say() { echo "$*"; }

# Show a warden command the way a user would type it ($C = the collection).
show() {
  line='$ warden'
  for a in "$@"; do
    if [ "$a" = "$C" ]; then
      # shellcheck disable=SC2016 # a literal $C, as the user would type it
      a='$C'
    else
      case "$a" in
        '' | *[!A-Za-z0-9_./:,=@+-]*) a="'$a'" ;;
      esac
    fi
    line="$line $a"
  done
  echo "$line"
}

# Run warden, output to $OUT; stop loudly on failure.
w() {
  show "$@"
  "$W" "$@" >"$OUT" 2>"$ERR" || {
    rc=$?
    cat "$ERR" >&2
    echo "demo: command failed (exit $rc): warden $*" >&2
    exit 1
  }
  [ ! -s "$ERR" ] || sed 's/^/  (stderr) /' "$ERR"
}

# ask NAME QUERY-ARGS...: run a query, keep its output in $TMP/NAME.json and
# print it as a table.
ask() {
  name=$1; shift
  w query "$C" "$@"
  cp "$OUT" "$TMP/$name.json"
  check table "$OUT"
}

say "warden demo: a permission-aware handbook of spells"
say "  C=$C"

heading "1. Create the collection"
w init "$C" --config "$DATA/warden.yaml"
check compact "$OUT"
say "  (warden.yaml: 256-d cosine, embedder: hash, so chunks need no vectors)"

heading "2. Load the school directory (users and nested groups)"
say "  e.g. user:hermione -> year5, gryffindor, prefects; group:year5 -> group:year4 -> ...;"
say "  group:students -> group:hogwarts -> group:students is a cycle (harmless)."
w principals sync "$C" "$DATA/principals.jsonl"
check compact "$OUT"
w principals get "$C" user:hermione
check compact "$OUT"
check expand "$OUT"
say "  warden expands nested groups itself at query time; the cycle ends the walk."

heading "3. Ingest the handbook (44 pages, embedded by the hash embedder)"
w ingest "$C" "$DATA/handbook.jsonl"
check compact "$OUT"
w stats "$C"
check compact "$OUT"
check stats "$OUT"

heading "4. One question, four readers"
say "  Question: \"$QUESTION\""
say "  The principal comes from the caller (the app's login), never from the question."
echo
say "  Luna: fourth year, Ravenclaw (also on the Dumbledore's Army list by name)"
ask luna --principal user:luna --text "$QUESTION" -k $K
check acl "$TMP/luna.json" user:luna $K
echo
say "  Hermione: fifth year, Gryffindor, prefect"
ask hermione --principal user:hermione --text "$QUESTION" -k $K
check acl "$TMP/hermione.json" user:hermione $K
check has "$TMP/hermione.json" dumbledores-army/protego-practice.md yes
echo
say "  Draco: fifth year, Slytherin, prefect -- but denied by name on the DA notes"
say "  and on the prefects' incident reports (deny wins over his groups)"
ask draco --principal user:draco --text "$QUESTION" -k $K
check acl "$TMP/draco.json" user:draco $K
check differ "$TMP/luna.json" "$TMP/hermione.json" "$TMP/draco.json"
echo
say "  Professor Snape (staff): the restricted section opens"
ask snape --principal user:snape --text "$QUESTION" -k $K
check acl "$TMP/snape.json" user:snape $K
check has "$TMP/snape.json" restricted/unforgivable-curses.md yes
echo
say "  Everything Draco can reach (k=100, more than the collection holds):"
w query "$C" --principal user:draco --text "$QUESTION" -k 100
cp "$OUT" "$TMP/draco-all.json"
check all "$TMP/draco-all.json" user:draco
check denied user:draco "$TMP/draco.json" "$TMP/draco-all.json"

heading "5. Metadata filters, in both dialects"
say "  Mongo/Pinecone style: only pages for the first four years, as Hermione"
# shellcheck disable=SC2016 # $lte is Mongo syntax, not a shell variable
ask mongo --principal user:hermione --text "$QUESTION" -k $K \
  --filter '{"student_year": {"$lte": 4}}'
check meta "$TMP/mongo.json" 'm["student_year"] <= 4'
check acl "$TMP/mongo.json" user:hermione $K
echo
say "  Bedrock Knowledge Bases style: defense pages up to the fourth year, as Luna"
ask bedrock --principal user:luna --text "$QUESTION" -k $K \
  --filter '{"andAll":[{"equals":{"key":"use_case","value":"defense"}},{"lessThanOrEquals":{"key":"student_year","value":4}}]}'
check meta "$TMP/bedrock.json" 'm["use_case"] == "defense" and m["student_year"] <= 4'
check acl "$TMP/bedrock.json" user:luna $K

heading "6. Namespace restriction"
say "  Only the charms shelf (/school/charms), as Luna"
ask charms --principal user:luna --text "$QUESTION" -k 3 --namespace /school/charms
check ns "$TMP/charms.json" /school/charms
check acl "$TMP/charms.json" user:luna 3

heading "7. The same answer in the Amazon Bedrock Retrieve shape"
say "  --format bedrock: pipelines written against Bedrock Knowledge Bases parse it as is"
w query "$C" --principal user:luna --text "$QUESTION" -k 3 --format bedrock
check bedrock "$OUT"

heading "8. Revoke: Educational Decree No. 24 disbands Dumbledore's Army"
say "  The DA notes become readable by Dumbledore only.  Only the ACL changes:"
say "  no re-embedding, one transaction, effective for the very next query."
w acl set "$C" dumbledores-army/protego-practice.md --allow user:dumbledore
check compact "$OUT"
rev_write=$(check field "$OUT" revision)
w acl get "$C" dumbledores-army/protego-practice.md
check compact "$OUT"
echo
say "  Hermione asks again:"
ask hermione2 --principal user:hermione --text "$QUESTION" -k $K
rev_query=$(check field "$TMP/hermione2.json" revision)
check has "$TMP/hermione2.json" dumbledores-army/protego-practice.md no
check acl "$TMP/hermione2.json" user:hermione $K \
  '{"dumbledores-army/protego-practice.md": {"allow": ["user:dumbledore"], "deny": ["user:draco", "user:umbridge"]}}'
say "  The revoke committed revision $rev_write; the next query read revision $rev_query."
if [ "$rev_query" -lt "$rev_write" ]; then
  echo "FAIL: the query read revision $rev_query, older than the revoke ($rev_write)" >&2
  exit 1
fi
say "ok: the query's snapshot ($rev_query) includes the revoke ($rev_write)"

echo
say "Demo complete: every check passed."
if [ "${WARDEN_DEMO_KEEP:-0}" = 1 ]; then
  :
else
  say "The collection was built in $C and is deleted now"
  say "(run WARDEN_DEMO_KEEP=1 make demo to keep it and explore with build/warden)."
fi
