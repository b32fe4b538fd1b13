#!/bin/sh
# run.sh RUNNER TEST... -- runs build/arm64/tests/TEST under RUNNER
# (qemu-aarch64) from the repository root, then the CLI round trip with the
# arm64 warden (tests/cli/restore.sh passes too, in ~200 s: every CLI call
# pays the emulator's start-up).  Prints "N passed, N failed"; exits non-zero on a failure.
cd "$(dirname "$0")/../.."
runner=$1; shift
pass=0; fail=0; failed=""
export WARDEN_TEST_QUICK=1
for t in "$@"; do
  start=$(date +%s)
  if "$runner" "build/arm64/tests/$t" > "build/arm64/log.$t.txt" 2>&1; then
    pass=$((pass+1)); echo "PASS arm64/$t ($(( $(date +%s) - start ))s)"
  else
    fail=$((fail+1)); failed="$failed $t"; echo "FAIL arm64/$t"; tail -30 "build/arm64/log.$t.txt" | sed 's/^/    /'
  fi
done
# the CLI end to end: a wrapper runs the arm64 binary under the emulator
cat > build/arm64/warden-qemu <<WEOF
#!/bin/sh
exec $runner $(pwd)/build/arm64/warden "\$@"
WEOF
chmod +x build/arm64/warden-qemu
for s in roundtrip; do
  start=$(date +%s)
  if env WARDEN=build/arm64/warden-qemu sh tests/cli/$s.sh > "build/arm64/log.cli-$s.txt" 2>&1; then
    pass=$((pass+1)); echo "PASS arm64/cli/$s.sh ($(( $(date +%s) - start ))s)"
  else
    fail=$((fail+1)); failed="$failed cli/$s"; echo "FAIL arm64/cli/$s.sh"; tail -30 "build/arm64/log.cli-$s.txt" | sed 's/^/    /'
  fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] || { echo "failed:$failed"; exit 1; }
