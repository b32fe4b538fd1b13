"""GIL release, measured: N Python threads querying one warden.Collection.

    /usr/bin/python3 bindings/python/bench/threads.py [N_CHUNKS] [DIM] [SECONDS]

Builds a collection of N_CHUNKS random vectors (default 50,000 x 128, every
chunk readable by user:a with a 1-in-4 ACL for user:b), then runs single
k=10 queries (exact scans over the allowed set) from 1 and from 2 threads
for SECONDS each and prints queries per second, with the library loaded as
the package loads it (ctypes.CDLL: the GIL is released during each call)
and, for contrast, as ctypes.PyDLL (the GIL held during each call).  Each
figure is the median of 3 runs, the modes interleaved, so that load from
other processes hits both alike.
"""
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import numpy as np  # noqa: E402

import warden  # noqa: E402


def run(col, qs, principal, nthreads, seconds):
    counts = [0] * nthreads
    stop = time.perf_counter() + seconds

    def worker(t):
        i = t
        n = 0
        while time.perf_counter() < stop:
            col.query(qs[i % len(qs)], principal=principal, k=10)
            i += nthreads
            n += 1
        counts[t] = n
    ts = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / (time.perf_counter() - t0)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
    dim = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    secs = float(sys.argv[3]) if len(sys.argv) > 3 else 5
    rng = np.random.default_rng(7)
    d = tempfile.mkdtemp()
    col = warden.Collection.create(os.path.join(d, "kb"), dim=dim)
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    t = time.perf_counter()
    for s in range(0, n, 10000):
        docs = [{"doc_id": f"d{i}", "source": f"s3://b/{i}",
                 "acl": {"allow": ["user:a"] + (["user:b"] if i % 4 == 0 else [])},
                 "chunks": [f"chunk {i}"]} for i in range(s, min(n, s + 10000))]
        col.upsert(docs, emb[s:s + len(docs)])
    print(f"upsert {n} x {dim}: {time.perf_counter() - t:.2f} s ({warden.UPSERT_PATH})")
    qs = rng.standard_normal((256, dim)).astype(np.float32)
    import ctypes
    import statistics
    from warden import _lib, collection
    libs = {"CDLL (GIL released)": _lib.lib, "PyDLL (GIL held)": ctypes.PyDLL(_lib.LIBRARY_PATH)}
    _lib.declare(libs["PyDLL (GIL held)"])
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for p in ("user:a", "user:b"):
        res = {m: {1: [], 2: []} for m in libs}
        for _ in range(3):
            for mode, lib in libs.items():
                collection.lib = lib
                for th in (1, 2):
                    res[mode][th].append(run(col, qs, p, th, secs / 3))
        collection.lib = _lib.lib
        for mode in libs:
            q1, q2 = (statistics.median(res[mode][t]) for t in (1, 2))
            print(f"{p} {mode:20s}: 1 thread {q1:8.1f} QPS   2 threads {q2:8.1f} QPS   "
                  f"speed-up {q2 / q1:.2f}x")
    # CPU used by the process while 2 threads query (process CPU seconds
    # per wall second): at most 1 core when the GIL is held across the call.
    for mode, lib in libs.items():
        collection.lib = lib
        c0, w0 = time.process_time(), time.perf_counter()
        run(col, qs, "user:a", 2, secs / 2)
        cores = (time.process_time() - c0) / (time.perf_counter() - w0)
        print(f"{mode:20s}: 2 query threads used {cores:.2f} cores")
    collection.lib = _lib.lib
    # Python running during one long C call (independent of how much CPU the
    # machine gives us): while one thread is inside a batch query of 256
    # vectors, how many times does a second thread wake from sleep(1 ms)?
    for mode, lib in libs.items():
        collection.lib = lib
        ticks, stop = [], threading.Event()

        def ticker():
            while not stop.is_set():
                time.sleep(0.001)
                ticks.append(time.perf_counter())
        t = threading.Thread(target=ticker)
        t.start()
        time.sleep(0.05)
        t0 = time.perf_counter()
        col.query(qs, principal="user:a", k=10)
        t1 = time.perf_counter()
        stop.set()
        t.join()
        inside = sum(1 for x in ticks if t0 < x < t1)
        print(f"{mode:20s}: during one {1000 * (t1 - t0):.0f} ms batch query the other "
              f"thread ran {inside} times")
    collection.lib = _lib.lib
    print(f"load average after: {os.getloadavg()[0]:.2f}")



if __name__ == "__main__":
    main()
