#!/usr/bin/python3
"""gen.py -- clustered synthetic documents for the scale benchmarks.

    /usr/bin/python3 bench/scale/gen.py N DIM OUT [--jsonl] [--npy f4|f2]
        [--clusters C] [--seed S] [--queries Q] [--words W]

Writes, for N documents of one chunk each:
  OUT.meta.jsonl  ingest lines without embeddings (for --vectors)
  OUT.npy         the N x DIM embeddings, C order (--npy; float32 or float16),
                  written through a memory map, block by block
  OUT.jsonl       full ingest lines with embeddings (--jsonl)
  OUT.queries.npy Q query vectors from the same distribution (--queries)

Vectors: C Gaussian clusters (centres on the unit sphere, spread 0.35 of
it), so that an IVF index has structure to find, as real embeddings do.
Metadata per document: "tenant" (one of 1000: tenant t holds 0.1 % of the
documents), "bucket" (int 0..99: bucket < b selects b %), "kind" (one of
10), and an ACL of "group:g<tenant % 100>" plus "user:u<i % 1000>", which
gives the selectivities 0.1 %, 1 %, 10 % and 100 % of the scale run.
Chunk text: "document I of tenant T", then (--words W) W words drawn from a
Zipf(1) law over a 30,000-word vocabulary ("w0" the most frequent), so
that the lexical index sees RAG-sized chunks (the vectors do not change).
Deterministic for a seed; memory is O(block), not O(N).
"""
import argparse
import json
import sys

import numpy as np

BLOCK = 20000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("dim", type=int)
    ap.add_argument("out")
    ap.add_argument("--jsonl", action="store_true")
    ap.add_argument("--npy", choices=["f4", "f2"])
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--queries", type=int, default=0)
    ap.add_argument("--words", type=int, default=0)
    a = ap.parse_args()
    wrng = np.random.default_rng(a.seed + 2000)
    vocab = np.array(["w%d" % r for r in range(30000)])
    zipf_cdf = np.cumsum(1.0 / np.arange(1, 30001))
    zipf_cdf /= zipf_cdf[-1]

    def words(n):
        if not a.words:
            return [""] * n
        r = np.searchsorted(zipf_cdf, wrng.random((n, a.words)))
        r = np.minimum(r, 29999)
        return [" " + " ".join(row) for row in vocab[r]]

    rng = np.random.default_rng(a.seed)
    centres = rng.standard_normal((a.clusters, a.dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spread = 0.35 / np.sqrt(a.dim)

    def vectors(rng, n):
        c = rng.integers(0, a.clusters, n)
        return centres[c] + rng.standard_normal((n, a.dim)).astype(np.float32) * spread

    meta = open(a.out + ".meta.jsonl", "w")
    full = open(a.out + ".jsonl", "w") if a.jsonl else None
    npy = None
    if a.npy:
        npy = np.lib.format.open_memmap(a.out + ".npy", mode="w+",
                                        dtype=np.float32 if a.npy == "f4" else np.float16,
                                        shape=(a.n, a.dim))
    for lo in range(0, a.n, BLOCK):
        hi = min(a.n, lo + BLOCK)
        v = vectors(rng, hi - lo)
        if npy is not None:
            npy[lo:hi] = v
        extra = words(hi - lo)
        texts = None
        if full is not None:
            texts = [",".join(r) for r in np.char.mod("%.6f", v)]
        for i in range(lo, hi):
            t = i % 1000
            d = {"doc_id": "doc-%09d" % i,
                 "source": "s3://bench/t%03d/%09d.md" % (t, i),
                 "metadata": {"tenant": "t%03d" % t, "bucket": i % 100,
                              "kind": "k%d" % (i % 10)},
                 "acl": {"allow": ["group:g%02d" % (t % 100), "user:u%03d" % (i % 1000)]},
                 "chunks": [{"text": "document %d of tenant %d%s" % (i, t, extra[i - lo])}]}
            line = json.dumps(d, separators=(",", ":"))
            meta.write(line + "\n")
            if full is not None:
                emb = '[{"text":"document %d of tenant %d%s","embedding":[%s]}]' % (
                    i, t, extra[i - lo], texts[i - lo])
                full.write(line[: line.rindex('"chunks":') + 9] + emb + "}\n")
        sys.stderr.write("\rgen: %d/%d" % (hi, a.n))
    sys.stderr.write("\n")
    meta.close()
    if full is not None:
        full.close()
    if npy is not None:
        npy.flush()
        del npy
    if a.queries:
        q = vectors(np.random.default_rng(a.seed + 1000), a.queries)
        np.save(a.out + ".queries.npy", q.astype(np.float32))


if __name__ == "__main__":
    main()
