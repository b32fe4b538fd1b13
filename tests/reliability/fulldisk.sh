#!/bin/sh
# fulldisk.sh WARDEN -- a collection on a full disk.
# A 2 MiB tmpfs is mounted (root only; skipped with a notice otherwise)
# and a collection there is fed until a write fails.  The failing ingest
# must exit 1 with one clear `warden: ...` line, and the collection must be
# intact: export identical to the one before the failing call, check
# clean, queries working.  Then the same with the map capped by
# WARDEN_MAPSIZE on a normal disk (the store grows the map on demand, so
# this one must simply succeed).
set -u
W=${1:?usage: fulldisk.sh WARDEN}
case "$W" in /*) ;; *) W=$(pwd)/$W ;; esac
T=$(mktemp -d "${TMPDIR:-/tmp}/warden-full.XXXXXX") || exit 1
M=$T/mnt
mkdir -p "$M"
fails=0
cleanup() { umount "$M" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

gen() { # N SEED -> JSONL docs with ~2 KB of text each
  python3 - "$1" "$2" <<'PY'
import json, random, sys
n, seed = int(sys.argv[1]), int(sys.argv[2]); r = random.Random(seed)
for i in range(n):
    print(json.dumps({"doc_id": "s%d-d%d" % (seed, i), "source": "s3://b/%d/%d" % (seed, i),
        "acl": {"allow": ["*"], "deny": []}, "metadata": {"k": "v%d" % (i % 50)},
        "chunks": [{"text": "".join(r.choice("abcdefgh ") for _ in range(2000)),
                    "embedding": [r.uniform(-1, 1) for _ in range(16)]}]}))
PY
}

if mount -t tmpfs -o size=2m tmpfs "$M" 2>/dev/null; then
  C=$M/c
  "$W" init "$C" --dim 16 --metric l2 >/dev/null || fail "init on tmpfs"
  ok=0
  for s in $(seq 1 40); do
    gen 60 "$s" > "$T/in.jsonl"
    "$W" export "$C" > "$T/before.jsonl" 2>/dev/null
    "$W" ingest "$C" "$T/in.jsonl" > "$T/out" 2> "$T/err"; rc=$?
    if [ $rc -eq 0 ]; then ok=$((ok + 1)); continue; fi
    [ $rc -eq 1 ] || fail "full disk: ingest exit $rc, expected 1"
    [ "$(wc -l < "$T/err")" -ge 1 ] && ! grep -qv '^warden: ' "$T/err" \
      || fail "full disk: stderr not 'warden: ...' lines: $(head -c 300 "$T/err")"
    grep -qiE 'space|full' "$T/err" || fail "full disk: unclear error: $(head -c 300 "$T/err")"
    [ -s "$T/out" ] && fail "full disk: a failed ingest printed a result"
    "$W" export "$C" > "$T/after.jsonl" 2>"$T/err2" || fail "full disk: export after failure: $(cat "$T/err2")"
    cmp -s "$T/before.jsonl" "$T/after.jsonl" || fail "full disk: collection changed by the failed ingest"
    "$W" check "$C" > "$T/chk" 2>&1 || fail "full disk: check after failure: $(head -c 300 "$T/chk")"
    "$W" query "$C" --principal user:x --vector "$(python3 -c 'print([0.5]*16)')" -k 3 > "$T/q" 2>&1 \
      || fail "full disk: query after failure: $(head -c 300 "$T/q")"
    # a smaller write that fits may still fail cleanly, never corrupt
    "$W" delete "$C" "s1-d0" > /dev/null 2>&1
    "$W" check "$C" > "$T/chk" 2>&1 || fail "full disk: check after delete: $(head -c 300 "$T/chk")"
    echo "fulldisk: tmpfs 2 MiB: ingest $((ok + 1)) refused with: $(head -1 "$T/err"); collection intact"
    break
  done
  [ $ok -eq 40 ] && fail "full disk: the tmpfs never filled"
  umount "$M"
else
  echo "fulldisk: SKIP tmpfs part (cannot mount; not root?)"
fi

# capped map on a normal disk: the store must grow it and succeed
C=$T/capped
"$W" init "$C" --dim 16 --metric l2 >/dev/null || fail "init capped"
gen 300 99 > "$T/in.jsonl"
WARDEN_MAPSIZE=65536 "$W" ingest "$C" "$T/in.jsonl" > "$T/out" 2> "$T/err" \
  || fail "capped map: ingest failed: $(head -c 300 "$T/err")"
WARDEN_MAPSIZE=65536 "$W" check "$C" > "$T/chk" 2>&1 || fail "capped map: check: $(head -c 300 "$T/chk")"
python3 -c "import json,sys; d=json.load(open('$T/chk')); sys.exit(0 if d['documents']==300 else 1)" \
  || fail "capped map: not 300 documents"
[ $fails -eq 0 ] && echo "fulldisk: all checks passed"
exit $((fails > 0))
