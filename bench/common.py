"""Shared helpers for the warden benchmark scripts (gen, truth, baselines, report).

Everything that more than one script must agree on lives here: where a
workload's files are, which (mode, selectivity) combinations exist, how the
allowed set of a combination is computed from the generated per-document
arrays, and how the machine is described.  The allowed-set rule here is the
single definition used by ground truth, by the FAISS baselines and (through
manifest.json, see SCHEMA.md) by the warden C driver, so the three cannot
drift apart.
"""
import json
import os
import platform
import subprocess

import numpy as np

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
DATA = os.path.join(BENCH, "data")
RESULTS = os.path.join(BENCH, "results")
CACHE = os.path.join(BENCH, ".cache")

WORKLOADS = ("synthetic-384", "glove-100")
SELECTIVITIES = (0.001, 0.01, 0.1, 0.5, 1.0)
MODES = ("uncorrelated", "correlated", "anticorrelated")
K = 10
NQ = 1000

# Sizes per scale.  quick keeps the whole baseline run within a few minutes
# on 2 cores; full is the BENCH.md size.
SCALES = {
    "quick": {"synthetic-384": 50_000, "glove-100": 50_000},
    "full": {"synthetic-384": 200_000, "glove-100": None},  # None: all words
}


def wdir(workload, scale):
    return os.path.join(DATA, workload, scale)


def pct_name(s):
    """0.001 -> '0.1pct' style tag used in file names (stable, no dots)."""
    return ("%g" % (s * 100)).replace(".", "p") + "pct"


def ncells(s):
    """Number of equal-size spatial cells whose single cell covers fraction s."""
    return int(round(1.0 / s))


def combos_for(manifest):
    """The list of combinations recorded by gen.py in manifest.json."""
    return manifest["combos"]


def load_manifest(workload, scale):
    with open(os.path.join(wdir(workload, scale), "manifest.json")) as f:
        return json.load(f)


def load_f32(path, d):
    a = np.fromfile(path, dtype="<f4")
    return a.reshape(-1, d)


def load_i32(path):
    return np.fromfile(path, dtype="<i4")


def allowed_rows(manifest, combo, wd=None):
    """Per-query allowed sets of a combination, grouped.

    Returns a list of (query_indices, mask) where mask is a bool array of
    length N: the documents the query may receive.  Queries that share a
    mask are grouped so callers can batch them.
    """
    wd = wd or os.path.join(DATA, manifest["workload"], manifest["scale"])
    n = manifest["n"]
    nq = manifest["nq"]
    rule = combo["allowed"]
    kind = rule["kind"]
    if kind == "lt":
        vals = load_i32(os.path.join(wd, rule["doc_values"]))
        return [(np.arange(nq), vals < rule["value"])]
    if kind == "eq_per_query":
        dv = load_i32(os.path.join(wd, rule["doc_values"]))
        qv = load_i32(os.path.join(wd, rule["query_values"]))
        out = []
        for team in np.unique(qv):
            out.append((np.nonzero(qv == team)[0], dv == team))
        return out
    if kind == "mask":
        m = np.fromfile(os.path.join(wd, rule["file"]), dtype=np.uint8)
        assert m.size == n
        return [(np.arange(nq), m.astype(bool))]
    raise ValueError("unknown allowed rule %r" % kind)


def machine_info():
    info = {"cpu_model": None, "flags": [], "cores": os.cpu_count(),
            "kernel": platform.release(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not info["cpu_model"]:
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not info["flags"]:
                    fl = set(line.split(":", 1)[1].split())
                    info["flags"] = sorted(fl & {"avx", "avx2", "fma", "avx512f",
                                                 "avx512bw", "avx512vl",
                                                 "avx512_vnni", "avx512_bf16",
                                                 "sse4_2", "f16c"})
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            info["mem_gb"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return info


def git_commit():
    try:
        c = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"],
                           capture_output=True, text=True, timeout=10)
        d = subprocess.run(["git", "-C", REPO, "status", "--porcelain",
                            "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10)
        h = c.stdout.strip() or None
        if h and d.stdout.strip():
            h += "-dirty"
        return h
    except (OSError, subprocess.SubprocessError):
        return None


def rss_mb():
    """Peak resident set of this process in MB.

    VmHWM rather than getrusage's ru_maxrss: Linux carries ru_maxrss across
    execve, so a child would inherit its parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
