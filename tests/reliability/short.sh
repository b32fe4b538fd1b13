#!/bin/sh
# short.sh -- the quick reliability run inside `make test` (target
# test-reliability-short): every part runs even when an earlier one fails;
# prints PASS/FAIL per part and exits non-zero if any failed.  Expects the
# binaries built by tests/reliability.mk (build/warden, build/fuzz/fuzz_*,
# build/tsan/test_concurrency, build/tsan/test_upsert, build/tsan/warden).
cd "$(dirname "$0")/../.."
fail=0; failed=""
part() { # name, command...
  name=$1; shift
  start=$(date +%s)
  if "$@" > "build/rel-short.$$.log" 2>&1; then
    echo "PASS $name ($(( $(date +%s) - start ))s): $(grep -a -E '^(crash|index_crash|fuzz|fulldisk|threads_|tenant_|revoke_|killed_)' "build/rel-short.$$.log" | tr '\n' ' ' | cut -c1-400)"
  else
    fail=1; failed="$failed $name"
    echo "FAIL $name"; grep -a -v '^ *#[0-9]' "build/rel-short.$$.log" | tail -25 | sed 's/^/    /'
  fi
  rm -f "build/rel-short.$$.log"
}
TARGETS="config filter ingest records"
part crash python3 tests/crash/crash.py --warden build/warden --iters 5
part index-crash /usr/bin/python3 tests/crash/index_crash.py --warden build/warden --iters 8
part fuzz-replay sh tests/reliability/fuzz.sh replay $TARGETS
part fuzz-10s sh tests/reliability/fuzz.sh run 10 $TARGETS
part tsan env TSAN_OPTIONS="halt_on_error=1 suppressions=$(pwd)/tests/reliability/tsan.supp" \
  WARDEN_TEST_QUICK=1 build/tsan/test_concurrency
# the ingest pipeline (engine/ingest.h) forced on for every test of
# test_upsert; its test_pipeline forces jobs of a few documents itself
part tsan-ingest env TSAN_OPTIONS="halt_on_error=1 suppressions=$(pwd)/tests/reliability/tsan.supp" \
  WARDEN_INGEST_PIPE=2048 WARDEN_TEST_QUICK=1 build/tsan/test_upsert
# --vectors' META reader thread, the library's pipeline worker and the
# page-cache warming of a staged ingest (WARDEN_STAGE_MB=0), with
# batches of 7 documents so that both hand many batches over
part tsan-npy env TSAN_OPTIONS="halt_on_error=1 suppressions=$(pwd)/tests/reliability/tsan.supp" \
  WARDEN_NPY_BATCH=7 WARDEN_INGEST_PIPE=3 WARDEN_STAGE_MB=0 WARDEN=build/tsan/warden sh tests/cli/npy.sh
part fulldisk sh tests/reliability/fulldisk.sh build/warden
[ $fail -eq 0 ] || { echo "reliability (short) failed:$failed"; exit 1; }
echo "reliability (short): all parts passed"
