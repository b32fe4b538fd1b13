#!/bin/sh
# layers.sh -- the layering of libwarden, checked (issue 12).
#
#   engine/base/  leaf headers and helpers: include nothing of warden's
#   index/        vector kernels and ANN structures: base/ only (vectors
#                 come through the wd_vecsrc callback, never the store)
#   acl/          permission rules over the store's interface
#                 (acl/acl_store.h): base/, acl/ and the public
#                 engine/warden.h only, so never struct warden or LMDB
#   engine/       the store (engine/store.c, the only caller of LMDB),
#                 query, ingest and the public warden_* entry points:
#                 may include any layer
#
# Every quoted include in these folders names its folder ("base/hmap.h",
# "acl/acl.h", ...), so an unqualified one is refused too.  Usage:
# sh tests/layers.sh [ROOT] (default: the repository this script is in).
cd "${1:-$(dirname "$0")/..}" || exit 2
bad=0
fail() { echo "layers: $*"; bad=1; }

# file -> its quoted includes, one "file target" per line
edges() {
  for f in "$@"; do
    [ -f "$f" ] || continue
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
      while read -r t; do echo "$f $t"; done
  done
}

check() { # folder-glob description allowed-regex
  desc=$1; allow=$2; shift 2
  edges "$@" | while read -r f t; do
    case "$f" in *.cpp) continue;; esac # index/faiss_capi.cpp: its own header only
    echo "$t" | grep -Eq "$allow" || echo "$f includes \"$t\": $desc"
  done
}

out=$(
  check "base/ includes only base/" '^base/[a-z_0-9]+\.h$' engine/base/*.c engine/base/*.h
  check "index/ includes only base/ and index/" '^(base|index)/[a-z_0-9]+\.h$' index/*.c index/*.h
  check "acl/ includes only base/, acl/ and engine/warden.h" \
    '^((base|acl)/[a-z_0-9]+\.h|engine/warden\.h)$' acl/*.c acl/*.h
  check "engine/ includes are path-qualified" '^(base|index|acl|engine)/[a-z_0-9]+\.h$' \
    engine/*.c engine/*.h
  check "the public header includes nothing of warden's" '^$' engine/warden.h
)
[ -n "$out" ] && fail "$out"

# LMDB: called only by the store; its header seen only by the store and
# the handle that holds the environment (engine/wd_internal.h)
calls=$(grep -lE '\bmdb_[a-z_]+[[:space:]]*\(' engine/*.c engine/*.h engine/base/* index/* acl/* 2>/dev/null |
        grep -v '^engine/store\.c$')
[ -n "$calls" ] && fail "mdb_* called outside engine/store.c: $calls"
hdr=$(grep -lE '#[[:space:]]*include[[:space:]]*<lmdb\.h>' engine/*.c engine/*.h engine/base/* index/* acl/* 2>/dev/null |
      grep -vE '^engine/(store\.c|wd_internal\.h)$')
[ -n "$hdr" ] && fail "<lmdb.h> included outside the store: $hdr"

# the public entry points live at the top of engine/
pub=$(grep -lE '^[a-z].*[ *]warden_[a-z_0-9]+\(' engine/base/*.c index/*.c acl/*.c 2>/dev/null)
[ -n "$pub" ] && fail "warden_* defined below engine/: $pub"

[ $bad -eq 0 ] && echo "layers: ok (base <- index, base <- acl, engine on top; LMDB in engine/store.c only)"
exit $bad
