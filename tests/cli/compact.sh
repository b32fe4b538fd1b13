#!/bin/sh
# compact.sh -- `warden compact`: deleted documents' rows, slots and pages
# are reclaimed and the file shrinks; every principal's answers stay the
# same, the ANN index is rebuilt, revisions go up; and a kill -9 at any
# moment of a compaction leaves a collection that passes check and answers
# exactly as before (then the next compact cleans up and succeeds).
. "$(dirname "$0")/common.inc"

ITERS=${WARDEN_COMPACT_KILLS:-10}
[ -n "${WARDEN_TEST_QUICK:-}" ] && ITERS=${WARDEN_COMPACT_KILLS:-3}
CHECKS=$((CHECKS + 1))
"$PY" - "$WARDEN" "$T" "$ITERS" <<'PYEOF' || fail "compact test failed"
import json, os, random, shutil, signal, subprocess, sys, time
W, T, iters = sys.argv[1], sys.argv[2], int(sys.argv[3])
random.seed(11)

def w(*args, check=True):
    p = subprocess.run([W] + list(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise SystemExit("warden %s: exit %d: %s" % (" ".join(args[:2]), p.returncode, p.stderr))
    return p

src = os.path.join(T, "src")
open(os.path.join(T, "w.yaml"), "w").write("dimension: 16\nmetric: cosine\nindex:\n  type: auto\n")
w("init", src, "--config", os.path.join(T, "w.yaml"))
with open(os.path.join(T, "docs.jsonl"), "w") as f:
    for i in range(600):
        acl = random.choice([{"allow": ["*"]}, {"allow": ["group:g1"]}, {"allow": ["*"], "deny": ["user:u2"]}])
        f.write(json.dumps({"doc_id": "d%03d" % i, "source": "s3://b/%d" % i, "acl": acl,
                            "metadata": {"n": i % 7},
                            "chunks": [{"text": "c%d" % j, "embedding": [random.gauss(0, 1) for _ in range(16)]}
                                       for j in range(1 + i % 3)]}) + "\n")
w("ingest", src, os.path.join(T, "docs.jsonl"))
w("principals", "set", src, "user:u1", "--groups", "group:g1")
w("index", src)
w("delete", src, *["d%03d" % i for i in range(0, 600, 3)] + ["d%03d" % i for i in range(1, 600, 3)])
vecs = [[random.gauss(0, 1) for _ in range(16)] for _ in range(4)]

# Exact answers must be identical across a compaction; the ANN indexes
# (IVF, graph) are rebuilt over the new slot layout, so their approximate
# answers may differ: they are checked to hold only chunks the exact scan
# allows (ann_safe), not to be equal.
def answers(d):
    out = []
    for p in ("user:u1", "user:u2", "user:nobody"):
        for v in vecs:
            for extra in (["--exact"], ["--exact", "--filter", '{"n": {"$gte": 3}}']):
                r = w("query", d, "--principal", p, "--vector", json.dumps(v), "-k", "30", *extra)
                o = json.loads(r.stdout)
                out.append((p, [(h["doc_id"], h["chunk"], h["score"], h["text"]) for h in o["results"]]))
    return out

def ann_safe(d):
    for p in ("user:u1", "user:u2", "user:nobody"):
        for v in vecs:
            allowed = {(h["doc_id"], h["chunk"]) for h in json.loads(w(
                "query", d, "--principal", p, "--vector", json.dumps(v), "-k", "10000",
                "--exact").stdout)["results"]}
            got = json.loads(w("query", d, "--principal", p, "--vector", json.dumps(v),
                               "-k", "30", "--ann").stdout)["results"]
            bad = [(h["doc_id"], h["chunk"]) for h in got if (h["doc_id"], h["chunk"]) not in allowed]
            assert not bad, ("ANN returned chunks the exact scan does not allow", p, bad)

def stats(d):
    return json.loads(w("stats", d).stdout)

ref = answers(src)
assert any(r for _, r in ref), "vacuous: no results"
rev0 = stats(src)["revision"]
pristine = os.path.join(T, "pristine")
shutil.copytree(src, pristine)

# 1. a clean compaction
t0 = time.time()
r = json.loads(w("compact", src).stdout)
full = time.time() - t0
assert r["bytes_after"] < r["bytes_before"], r
assert r["revision"] > r["revision_before"] == rev0, r
assert r["index_rebuilt"] is True, r
assert r["documents"] == 200, r
w("check", src)
assert answers(src) == ref, "answers changed by compact"
ann_safe(src)
assert not [n for n in os.listdir(src) if "compact" in n], os.listdir(src)
print("compact: %d -> %d bytes, revision %d -> %d, %.2f s" % (r["bytes_before"], r["bytes_after"], rev0, r["revision"], full), file=sys.stderr)
# compaction again: nothing to reclaim, still fine, revision still up
r2 = json.loads(w("compact", src).stdout)
assert r2["revision"] > r["revision"], (r, r2)
assert answers(src) == ref

# 2. kill -9 at random moments
outcomes = {"old": 0, "new": 0}
for i in range(iters):
    d = os.path.join(T, "k%d" % i)
    shutil.copytree(pristine, d)
    p = subprocess.Popen([W, "compact", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(random.uniform(0, full * 1.1))
    p.send_signal(signal.SIGKILL)
    p.wait()
    c = w("check", d, check=False)
    assert c.returncode == 0, ("check after kill %d: %s %s" % (i, c.stdout, c.stderr))
    assert answers(d) == ref, "answers changed after kill %d" % i
    rv = stats(d)["revision"]
    assert rv >= rev0, (rv, rev0)
    outcomes["new" if rv > rev0 else "old"] += 1
    r = json.loads(w("compact", d).stdout)   # cleans up leftovers, succeeds
    assert answers(d) == ref, "answers changed after compact following kill %d" % i
    assert stats(d)["revision"] > rv
    assert not [n for n in os.listdir(d) if "compact" in n], os.listdir(d)
    shutil.rmtree(d)
print("kill -9 during compact: %d kills, %d left the old store, %d the new" % (iters, outcomes["old"], outcomes["new"]), file=sys.stderr)
PYEOF
finish
