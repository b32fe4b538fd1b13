"""py_ingest.py JSONL CONFIG [LABEL]: time Python's Collection.ingest of one
JSON Lines file into a fresh collection made from CONFIG (a warden.yaml),
in a temporary directory; prints LABEL, wall seconds, CPU seconds and
peak RSS (KiB).  Run with /usr/bin/python3 from the repository root after
`make`; LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 in front
gives the library jemalloc (README "Ingest throughput")."""
import os
import resource
import shutil
import sys
import tempfile
import time

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(root, "bindings", "python"))
os.environ.setdefault("WARDEN_LIBRARY", os.path.join(root, "build", "libwarden.so"))
import warden  # noqa: E402

if len(sys.argv) < 3:
    sys.exit(__doc__)
tmp = tempfile.mkdtemp(prefix="py-ingest.")
try:
    c = warden.Collection.create(os.path.join(tmp, "c"), config=sys.argv[2])
    t = time.time()
    c.ingest(sys.argv[1])
    wall = time.time() - t
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print("%s wall %.2f cpu %.1f rss %d" % (sys.argv[3] if len(sys.argv) > 3 else "ingest", wall,
                                           ru.ru_utime + ru.ru_stime, ru.ru_maxrss))
    c.close()
finally:
    shutil.rmtree(tmp, ignore_errors=True)
