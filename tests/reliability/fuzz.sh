#!/bin/sh
# fuzz.sh -- run or replay the libFuzzer targets of tests/fuzz/.
#   fuzz.sh replay TARGET...        run each build/fuzz/fuzz_TARGET over its
#                                   seeds and regression inputs, no fuzzing
#   fuzz.sh run SECONDS TARGET...   fuzz each target for SECONDS, starting
#                                   from its seeds (working corpus in
#                                   build/fuzz/corpus/, never the repo's)
# A crash leaves its input in build/fuzz/artifacts/TARGET/; copy it into
# tests/fuzz/regressions/TARGET/ once the bug is fixed so the replay keeps
# it fixed.  Exits non-zero when any target crashed.
cd "$(dirname "$0")/../.."
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=suppressions=$(pwd)/tests/lsan.supp
export FUZZ_TMPDIR=$(pwd)/build/fuzz/tmp
mkdir -p "$FUZZ_TMPDIR"
trap 'rm -rf "$FUZZ_TMPDIR"' EXIT
mode=$1; shift
fail=0
if [ "$mode" = replay ]; then
  for t in "$@"; do
    files=$(find tests/fuzz/corpus/$t tests/fuzz/regressions/$t -type f ! -name '.*' 2>/dev/null)
    [ -n "$files" ] || continue
    n=$(echo "$files" | wc -l)
    # shellcheck disable=SC2086
    if build/fuzz/fuzz_$t -runs=1 $files > build/fuzz/replay_$t.log 2>&1; then
      echo "PASS fuzz-replay/$t ($n inputs)"
    else
      echo "FAIL fuzz-replay/$t"; tail -30 build/fuzz/replay_$t.log | sed 's/^/    /'; fail=1
    fi
  done
  exit $fail
fi
secs=$1; shift
total=0
for t in "$@"; do
  mkdir -p build/fuzz/corpus/$t build/fuzz/artifacts/$t
  log=build/fuzz/run_$t.log
  if build/fuzz/fuzz_$t -max_total_time="$secs" -max_len=8192 -timeout=20 -rss_limit_mb=4096 \
       -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts/$t/ \
       build/fuzz/corpus/$t tests/fuzz/corpus/$t > "$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    total=$((total + ${runs:-0}))
    echo "PASS fuzz/$t (${secs}s, ${runs:-?} executions)"
  else
    echo "FAIL fuzz/$t: see $log; input in build/fuzz/artifacts/$t/"
    grep -m5 -E 'ERROR|SUMMARY|runtime error' "$log" | sed 's/^/    /'
    fail=1
  fi
done
echo "fuzz: $total executions in total"
exit $fail
