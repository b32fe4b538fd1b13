#!/bin/sh
# Checks that the Debian packages warden needs are installed.  As root it
# installs the missing ones with apt-get; otherwise it prints the exact
# command and fails.  Usage: tools/deps.sh [build|test|demo|bench|arm64]
#
# Why each package:
#   libfaiss-dev      FAISS C++ library + C API headers (ANN indexes)
#   liblmdb-dev       LMDB, the collection's source of truth
#   libopenblas-dev   SGEMM for batched exact search and k-means
#   libyaml-dev       warden.yaml parsing
#   libroaring-dev    CRoaring bitmaps (filters, ACLs, allowed sets)
#   libjansson-dev    JSON for ingest, filters, output
#   libcmocka-dev     unit tests
#   clang, libclang-rt-14-dev   sanitizer and fuzzer runtimes (test)
#   libomp-14-dev     OpenMP for the clang-built fuzz and TSan libraries (test)
#   lmdb-utils        mdb_stat / mdb_dump for debugging collections
#   python3-faiss python3-numpy python3-matplotlib   bench baselines and plots
#   time              /usr/bin/time -v: each step's peak RSS in make bench-scale
#   python3-numpy (test)   .npy files for tests/cli/npy.sh (warden ingest --vectors)
#   npm               fetching the GloVe-derived bench vectors
#   nodejs npm        bindings/node tests (only when no node is installed)
#   libstemmer-dev    Snowball stemmers for the lexical index (lexical.language)
#   libicu-dev        ICU: Unicode letter/digit classes and case folding (tokenizer)
#   libjemalloc2      the CLI's allocator (Makefile CLI_MALLOC): 1.1-1.4x ingest
#   python3-xapian    the Xapian peer of the lexical benchmark (bench/lexical_bench.py;
#                     SQLite FTS5 comes with Python's sqlite3)
#   arm64 (make arm64, make arm64-test): the aarch64 cross compilers,
#     qemu-user to run the tests, and the arm64 -dev libraries (multiarch:
#     dpkg --add-architecture arm64), plus libstdc++6/libgomp1 for arm64
set -e
what=${1:-build}
pkgs="libfaiss-dev liblmdb-dev libopenblas-dev libyaml-dev libroaring-dev libjansson-dev g++ make pkg-config"
pkgs="$pkgs libstemmer-dev libicu-dev" # lexical index (hybrid retrieval)
pkgs="$pkgs libjemalloc2" # the CLI's allocator
case "$what" in
  test) pkgs="$pkgs libcmocka-dev clang libclang-rt-14-dev libomp-14-dev lmdb-utils python3 python3-numpy"
        # bindings/node tests (npm ci + node --test): Node.js >= 20 is on
        # the machine image; ask Debian for one only when there is none
        command -v npm >/dev/null 2>&1 || pkgs="$pkgs nodejs npm" ;;
  demo) pkgs="$pkgs python3" ;;
  arm64) # hardening (issue 13): the cross build and its emulated tests
         if [ "$(id -u)" = 0 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
           dpkg --add-architecture arm64
         fi
         pkgs="gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user libfaiss-dev:arm64
               liblmdb-dev:arm64 libroaring-dev:arm64 libjansson-dev:arm64 libyaml-dev:arm64
               libopenblas-dev:arm64 libcmocka-dev:arm64 libstdc++6:arm64 libgomp1:arm64
               libstemmer-dev:arm64 libicu-dev:arm64
               libcmocka-dev libjansson-dev" ;;
  bench) pkgs="$pkgs python3-faiss python3-numpy python3-matplotlib python3-xapian time"
         # npm may come from elsewhere than Debian (e.g. a Node.js install):
         # only ask for Debian's when there is no npm command at all
         command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm" ;;
esac
# --- Python package (bindings/python, warden.cluster) ---
#   python3-numpy python3-pytest   the package's arrays and its tests (make test)
#   python3-venv python3-setuptools python3-pip   `pip install ./bindings/python`
#                                  in a venv, offline (tests/run.sh checks it)
#   python3-distributed            Dask, for warden.cluster and its tests
#   python3-cffi                   the ctypes-vs-cffi overhead bench only
case "$what" in
  test) pkgs="$pkgs python3-numpy python3-pytest python3-venv python3-setuptools python3-pip python3-distributed" ;;
  bench) pkgs="$pkgs python3-cffi" ;;
esac
# --- end Python package ---
missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "warden: installing missing packages:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || true
  apt-get install -y -qq $missing >&2
else
  echo "warden: missing packages:$missing" >&2
  echo "warden: run: sudo apt-get install -y$missing" >&2
  exit 1
fi
