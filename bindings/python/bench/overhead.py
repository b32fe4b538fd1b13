"""Per-call overhead of the foreign-function layers this package could use:
ctypes (stdlib) and cffi in ABI mode (Debian python3-cffi), on the same
libwarden.so, same calls.  Prints ns per call.

    /usr/bin/python3 bindings/python/bench/overhead.py
"""
import ctypes
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import numpy as np  # noqa: E402

import warden  # noqa: E402
from warden import _lib as L  # noqa: E402


def bench(fn, n=200000):
    fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1e9


def main():
    d = tempfile.mkdtemp()
    col = warden.Collection.create(os.path.join(d, "kb"), dim=16)
    rng = np.random.default_rng(1)
    col.upsert([{"doc_id": f"d{i}", "source": f"s3://b/{i}", "acl": {"allow": ["*"]},
                 "chunks": ["t"]} for i in range(100)],
               rng.standard_normal((100, 16)).astype(np.float32))
    db = col._db
    q = rng.standard_normal(16).astype(np.float32)

    import cffi
    ffi = cffi.FFI()
    ffi.cdef("""
      unsigned warden_dimension(const void *db);
      int warden_revision(void *db, uint64_t *out);
      typedef struct { const char *principal; const char *const *groups; size_t ngroups;
        const char *const *namespaces; size_t nnamespaces; const char *filter; unsigned k;
        int strategy; uint64_t min_revision; int explain; const char *agent;
        const char *const *agent_groups; size_t nagent_groups; float target_recall;
        int mode; const char *text; } warden_query_opts;
      int warden_query(void *db, const float *v, size_t nq, const warden_query_opts *o, void **out);
      void warden_results_free(void *r);
    """)
    C = ffi.dlopen(L.LIBRARY_PATH)
    cdb = ffi.cast("void *", db.value)
    rev = ffi.new("uint64_t *")
    crev = ctypes.c_uint64()
    lib = L.lib

    print(f"library: {L.LIBRARY_PATH}")
    print(f"warden_dimension   ctypes {bench(lambda: lib.warden_dimension(db)):7.0f} ns"
          f"   cffi-ABI {bench(lambda: C.warden_dimension(cdb)):7.0f} ns")
    print(f"warden_revision    ctypes {bench(lambda: lib.warden_revision(db, ctypes.byref(crev)), 50000):7.0f} ns"
          f"   cffi-ABI {bench(lambda: C.warden_revision(cdb, rev), 50000):7.0f} ns")

    # a raw k=10 query over 100 chunks, results freed, no Python objects made
    qo = L.QueryOpts()
    qo.principal = b"user:a"
    qo.k = 10
    res = ctypes.c_void_p()
    qp = q.ctypes.data_as(ctypes.POINTER(ctypes.c_float))

    def ct_q():
        lib.warden_query(db, qp, 1, ctypes.byref(qo), ctypes.byref(res))
        lib.warden_results_free(res)
    co = ffi.new("warden_query_opts *")
    pr = ffi.new("char[]", b"user:a")
    co.principal = pr
    co.k = 10
    cres = ffi.new("void **")
    cq = ffi.cast("float *", q.ctypes.data)

    def cf_q():
        C.warden_query(cdb, cq, 1, co, cres)
        C.warden_results_free(cres[0])
    print(f"raw query (100 x 16, k=10)  ctypes {bench(ct_q, 20000)/1000:6.2f} us"
          f"   cffi-ABI {bench(cf_q, 20000)/1000:6.2f} us")
    print(f"Collection.query (10 Hit objects)  {bench(lambda: col.query(q, principal='user:a'), 20000)/1000:6.2f} us")


if __name__ == "__main__":
    main()
