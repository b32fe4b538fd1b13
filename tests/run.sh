#!/bin/sh
# Runs every test: unit/oracle binaries (release, then ASan+UBSan) and the
# CLI integration scripts.  Prints a closing "N passed, N failed" line and
# exits non-zero when anything failed.
cd "$(dirname "$0")/.."
pass=0; fail=0; failed=""
run() { # name, command...
  name=$1; shift
  start=$(date +%s)
  if "$@" > "build/log.$$.txt" 2>&1; then
    pass=$((pass+1)); echo "PASS $name ($(( $(date +%s) - start ))s)"
  else
    fail=$((fail+1)); failed="$failed $name"
    echo "FAIL $name"
    # the failed assertions first (pytest's "E   " and "FAILED" lines,
    # cmocka's "ERROR:" and "[  ERROR   ]", a script's "FAIL"/"not ok"), as
    # a long traceback or leak report may push them out of the tail
    grep -E '^(E   |FAILED |ERROR[: ]|\[  ERROR   \]|not ok|FAIL[: ])' "build/log.$$.txt" |
      head -20 | sed 's/^/    > /'
    tail -40 "build/log.$$.txt" | sed 's/^/    /'
    # the whole log, for what the last 40 lines do not show (the first
    # failed assertion before a sanitizer's leak report, say)
    cp "build/log.$$.txt" "build/failed-$(echo "$name" | tr '/' '_').log"
    echo "    (whole log: build/failed-$(echo "$name" | tr '/' '_').log)"
  fi
  rm -f "build/log.$$.txt"
}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$(pwd)/tests/lsan.supp
for t in build/rel/tests/test_*; do
  [ -x "$t" ] || continue
  case "$t" in *.o|*.d) continue;; esac
  run "$(basename "$t")" "$t"
done
for t in tests/cli/*.sh; do
  [ -f "$t" ] || continue
  run "cli/$(basename "$t")" env WARDEN=build/warden sh "$t"
done
for t in build/san/tests/test_*; do
  [ -x "$t" ] || continue
  case "$t" in *.o|*.d) continue;; esac
  run "san/$(basename "$t")" env WARDEN_TEST_QUICK=1 "$t"
done
for t in tests/cli/*.sh; do
  [ -f "$t" ] || continue
  run "san/cli/$(basename "$t")" env WARDEN=build/san/warden WARDEN_TEST_QUICK=1 sh "$t"
done
# the layering (base <- index, base <- acl, engine on top; LMDB only in
# engine/store.c): tests/layers.sh
run "layers" sh tests/layers.sh
# staged ingest (engine/stage.h): the ingest and export tests again with
# WARDEN_STAGE_MB=0, which stages every input (a staging txn per batch)
for t in test_upsert test_lexical; do
  run "staged/$t" env WARDEN_STAGE_MB=0 "build/rel/tests/$t"
  run "san/staged/$t" env WARDEN_STAGE_MB=0 WARDEN_TEST_QUICK=1 "build/san/tests/$t"
done
for t in npy restore roundtrip compact; do
  run "staged/cli/$t.sh" env WARDEN_STAGE_MB=0 WARDEN=build/warden sh "tests/cli/$t.sh"
  run "san/staged/cli/$t.sh" env WARDEN_STAGE_MB=0 WARDEN=build/san/warden WARDEN_TEST_QUICK=1 sh "tests/cli/$t.sh"
done
# the parse/apply pipeline (engine/ingest.h) forced on whatever the input's
# size, with the default job size (so every expected output stays the
# one-thread one): the ingest, upsert and allocation-failure tests again
for t in test_upsert test_fault; do
  run "pipe/$t" env WARDEN_INGEST_PIPE=2048 "build/rel/tests/$t"
done
# the lexical oracle and warden check over collections ingested through
# the pipeline with jobs of 3 documents: the tokens each job counts
# (wd_lexpre) must travel with its documents to the applying thread
run "pipe/test_lexical" env WARDEN_INGEST_PIPE=3 build/rel/tests/test_lexical
run "pipe/staged/test_lexical" env WARDEN_INGEST_PIPE=3 WARDEN_STAGE_MB=0 build/rel/tests/test_lexical
run "san/pipe/test_upsert" env WARDEN_INGEST_PIPE=2048 WARDEN_TEST_QUICK=1 build/san/tests/test_upsert
# the randomized oracle (no unreadable chunk, deny wins, revokes) over
# collections ingested through the pipeline with jobs of 3 documents
run "pipe/test_oracle" env WARDEN_INGEST_PIPE=3 build/rel/tests/test_oracle
for t in npy messages roundtrip restore; do
  run "pipe/cli/$t.sh" env WARDEN_INGEST_PIPE=2048 WARDEN=build/warden sh "tests/cli/$t.sh"
done
# --vectors parses META on a reader thread, two batches alternating
# (tools/ingest_npy.c): batches of 7 documents, so that errors, skipped
# rows and float16 conversions fall in many batches on both sides
run "npy-batch/cli/npy.sh" env WARDEN_NPY_BATCH=7 WARDEN=build/warden sh tests/cli/npy.sh
run "san/npy-batch/cli/npy.sh" env WARDEN_NPY_BATCH=7 WARDEN=build/san/warden WARDEN_TEST_QUICK=1 sh tests/cli/npy.sh
# libwarden.so exports warden_* only, and all of warden.h
run "symbols" sh tests/symbols.sh build/libwarden.so
# the CLI links the allocator the build chose (Makefile CLI_MALLOC, kept in
# build/cli_malloc.stamp: jemalloc when Debian's libjemalloc2 is there,
# empty for glibc's); the library never links it (its caller's choice)
run "cli-malloc" sh -c 'set -e
  want=$(cat build/cli_malloc.stamp)
  if [ -n "$want" ]; then ldd build/warden | grep -q libjemalloc
  else ! ldd build/warden | grep -q libjemalloc; fi
  if [ -e "/usr/lib/$(cc -dumpmachine)/libjemalloc.so.2" ] && [ -z "$want" ]; then
    echo "note: libjemalloc2 is installed but this build chose CLI_MALLOC= (glibc)"; fi
  ! ldd build/libwarden.so | grep -q libjemalloc'
# the README's CLI reference documents exactly the options the parsers read
run "cli-reference" sh tests/cli_reference.sh
# ---- bindings/node (issues 17, 20): `npm ci` from the committed lockfile,
# then node's own test runner over bindings/node/test (the Collection, the
# LangChain.js and LlamaIndex.TS stores inside the real frameworks, and
# warden-mcp with the MCP SDK's own client).  Needs the npm registry and
# build/libwarden.so.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  run "node/npm-ci" sh -c 'cd bindings/node && npm ci --no-audit --no-fund --prefer-offline'
  run "node/test" sh -c 'cd bindings/node && WARDEN_LIB="$(pwd)/../../build/libwarden.so" node --test --test-concurrency=1 test/'
else
  fail=$((fail+1)); failed="$failed node(missing)"; echo "FAIL node: node or npm not found"
fi
# ---- end bindings/node
# the short reliability run (crash, fuzz replay + 10 s per target, TSan,
# full disk): see tests/reliability.mk
run "reliability-short" sh tests/reliability/short.sh
# --- Python package (bindings/python): pytest suite, then an offline
# `pip install` into a fresh venv as the README says ---
run "python/pytest" /usr/bin/python3 -m pytest -q -rfEs -p no:cacheprovider bindings/python/tests
run "python/install" sh bindings/python/tests/install.sh
# --- end Python package ---
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] || { echo "failed:$failed"; exit 1; }
