"""faiss_pick.py -- which FAISS a bench script compares against.

Issue 14: the peer is FAISS 1.12 built with AVX-512 (the prebuilt anchor in
../shared/anchors/faiss-1.12-avx512, relative to the repo's parent; a git
worktree under /work/wt/NAME has it one level further up), and Debian's
python3-faiss (1.7.3) when the anchor does not import -- its loader finds
no generic module on a CPU without AVX-512.  Every table says which one
ran: describe() is the version, compile options and path imported.
"""
import os
import sys


def import_faiss(repo, faiss_path=None, debian=False, log=None):
    """Import and return the faiss module: faiss_path, then $FAISS_PATH,
    then the anchor, the first that imports; Debian's when debian is set
    or none does."""
    if not debian:
        cands = [faiss_path, os.environ.get("FAISS_PATH")] + [
            os.path.join(os.path.dirname(repo), *([".."] * up), "shared", "anchors",
                         "faiss-1.12-avx512") for up in (0, 1)]
        for fp in cands:
            if not (fp and os.path.isdir(fp)):
                continue
            sys.path.insert(0, os.path.abspath(fp))
            try:
                import faiss  # noqa: F401
                break
            except Exception as e:  # ImportError, or the loader's own errors
                if log:
                    log("%s does not import here (%s); trying the next" % (fp, e))
                sys.path.remove(os.path.abspath(fp))
                for m in [m for m in sys.modules if m == "faiss" or m.startswith("faiss.")]:
                    del sys.modules[m]
    import faiss
    return faiss


def describe(faiss):
    return "%s %s (%s)" % (faiss.__version__, faiss.get_compile_options(),
                           os.path.dirname(faiss.__file__))
