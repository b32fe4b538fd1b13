#!/bin/sh
# libwarden.so must export warden_* and nothing else (engine/libwarden.map),
# and every function warden.h declares must be among them.
set -e
so=${1:-build/libwarden.so}
extra=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TtWwDdBbRrVvi]$/ {print $3}' | grep -v '^warden_' || true)
if [ -n "$extra" ]; then
  echo "libwarden.so exports symbols outside warden_*:"; echo "$extra" | head -20; exit 1
fi
missing=""
for f in $(grep -o 'warden_[a-z_0-9]*(' engine/warden.h | tr -d '(' | sort -u); do
  nm -D --defined-only "$so" | awk '{print $3}' | grep -qx "$f" || missing="$missing $f"
done
if [ -n "$missing" ]; then echo "declared in warden.h but not exported:$missing"; exit 1; fi
n=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TtWw]$/' | wc -l)
echo "libwarden.so: $n exported functions, all warden_*"
