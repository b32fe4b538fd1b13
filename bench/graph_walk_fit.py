#!/usr/bin/python3
"""Fit the graph walk's price on build/graph_walk lines (stdin or files):
mean search time = fixed + dist x (a + b x dim) + hops x h + rerank x dim x r,
by least squares, against the same without the hop term.  Prints both fits
and their relative errors (median, max), overall and per dimension.

    for f in ...; do taskset -c 0 build/graph_walk bench/data/$f/60000 uncorr-10; ...; done \\
        | /usr/bin/python3 bench/graph_walk_fit.py
"""
import fileinput

import numpy as np

rows = []
for line in fileinput.input():
    t = line.split()
    if len(t) < 17 or t[1] != "ef":
        continue
    v = dict(zip(t[1::2], t[2::2]))
    rows.append((float(v["mean_us"]), float(v["dist"]), float(v["hops"]),
                 float(v["rerank"]), float(v["dim"])))
if len(rows) < 6:
    raise SystemExit("graph_walk_fit: need at least 6 graph_walk lines")
y = np.array([r[0] for r in rows])
X = np.array([[1, r[1], r[1] * r[4], r[2], r[3] * r[4]] for r in rows])
c, *_ = np.linalg.lstsq(X, y, rcond=None)
X2 = X[:, [0, 1, 2, 4]]
c2, *_ = np.linalg.lstsq(X2, y, rcond=None)
e = np.abs(X @ c - y) / y
e2 = np.abs(X2 @ c2 - y) / y
print("with hops:  fixed %.2f us, per distance %.1f ns + %.4f ns x dim, per hop %.1f ns, "
      "per re-rank row %.4f ns x dim; rel. error median %.3f max %.3f"
      % (c[0], c[1] * 1e3, c[2] * 1e3, c[3] * 1e3, c[4] * 1e3, np.median(e), e.max()))
print("no hops:    fixed %.2f us, per distance %.1f ns + %.4f ns x dim, "
      "per re-rank row %.4f ns x dim; rel. error median %.3f max %.3f"
      % (c2[0], c2[1] * 1e3, c2[2] * 1e3, c2[3] * 1e3, np.median(e2), e2.max()))
for d in sorted({r[4] for r in rows}):
    i = [k for k, r in enumerate(rows) if r[4] == d]
    print("  dim %4d: %3d walks, distances per hop %.1f, error with hops %.3f, without %.3f"
          % (d, len(i), np.median([rows[k][1] / rows[k][2] for k in i]), np.median(e[i]),
             np.median(e2[i])))
