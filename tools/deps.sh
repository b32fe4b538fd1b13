#!/bin/sh
# Checks that the Debian packages warden needs are installed.  As root it
# installs the missing ones with apt-get; otherwise it prints the exact
# command and fails.  Usage: tools/deps.sh [build|test|demo|bench]
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
#   npm               fetching the GloVe-derived bench vectors
set -e
what=${1:-build}
pkgs="libfaiss-dev liblmdb-dev libopenblas-dev libyaml-dev libroaring-dev libjansson-dev g++ make pkg-config"
case "$what" in
  test) pkgs="$pkgs libcmocka-dev clang libclang-rt-14-dev libomp-14-dev lmdb-utils python3" ;;
  demo) pkgs="$pkgs python3" ;;
  bench) pkgs="$pkgs python3-faiss python3-numpy python3-matplotlib"
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
