#!/usr/bin/env python3
"""Corpus of the lexical benchmark (bench/lexical_bench.py).

debian: Debian's own documentation under /usr/share/doc (plain and .gz text
files: copyright, README, changelogs, ...) split into chunks of about 120
words; synthetic: text drawn from a Zipf(1.1) vocabulary of 50,000 words,
with ticket-like identifiers (ERR-1234) sprinkled in.  Every chunk gets
"sel", a uniform integer 0..999, so "sel < X" selects X/10 percent.

Writes DIR/chunks.jsonl ({"id", "text", "sel"}) and DIR/docs.jsonl (the same
as warden documents, one chunk per document, readable by everyone) and
DIR/queries.json (two-word queries taken from random chunks).
Usage: lexical_corpus.py debian|synthetic OUTDIR [MAXCHUNKS]
"""
import gzip, json, os, random, re, sys

WORD = re.compile(r"\w[\w\-./:@]*\w|\w", re.UNICODE)

def debian_texts():
    for root, _, files in os.walk("/usr/share/doc"):
        for f in sorted(files):
            p = os.path.join(root, f)
            if os.path.islink(p):
                continue
            try:
                if f.endswith(".gz"):
                    with gzip.open(p, "rb") as fh:
                        b = fh.read(2 << 20)
                elif "." not in f or f.endswith((".txt", ".md", ".rst")) or f.startswith(("README", "copyright", "changelog", "NEWS")):
                    with open(p, "rb") as fh:
                        b = fh.read(2 << 20)
                else:
                    continue
            except OSError:
                continue
            if b"\0" in b[:4096]:
                continue
            yield b.decode("utf-8", "replace")

def chunks_of(text, n=120):
    words = text.split()
    for i in range(0, len(words), n):
        c = " ".join(words[i:i + n])
        if len(c) > 20:
            yield c

def synthetic(maxc, rng):
    import bisect
    V = 50000
    w = [1.0 / (i + 1) ** 1.1 for i in range(V)]
    cum, s = [], 0.0
    for x in w:
        s += x
        cum.append(s)
    syl = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "vo", "pe", "da", "zu", "ri"]
    def word(i):
        out, j = [], i + 1
        while j:
            out.append(syl[j % 12]); j //= 12
        return "".join(out)
    vocab = [word(i) for i in range(V)]
    for c in range(maxc):
        n = rng.randint(40, 160)
        ws = [vocab[bisect.bisect_left(cum, rng.random() * s)] for _ in range(n)]
        if rng.random() < 0.2:
            ws.insert(rng.randrange(n), "ERR-%d" % rng.randrange(100000))
        yield " ".join(ws)

def main():
    kind, out = sys.argv[1], sys.argv[2]
    maxc = int(sys.argv[3]) if len(sys.argv) > 3 else 200000
    rng = random.Random(19)
    os.makedirs(out, exist_ok=True)
    texts = []
    if kind == "debian":
        for t in debian_texts():
            for c in chunks_of(t):
                texts.append(c)
                if len(texts) >= maxc:
                    break
            if len(texts) >= maxc:
                break
    else:
        texts = list(synthetic(maxc, rng))
    with open(os.path.join(out, "chunks.jsonl"), "w") as cf, open(os.path.join(out, "docs.jsonl"), "w") as df:
        for i, t in enumerate(texts):
            sel = rng.randrange(1000)
            cf.write(json.dumps({"id": i, "text": t, "sel": sel}) + "\n")
            df.write(json.dumps({"doc_id": "c%d" % i, "source": "file:///usr/share/doc/c%d" % i,
                                 "namespace": "/", "metadata": {"sel": sel},
                                 "acl": {"allow": ["*"]}, "chunks": [{"text": t}]}) + "\n")
    qs = []
    while len(qs) < 500:
        ws = [w for w in WORD.findall(rng.choice(texts)) if len(w) >= 4 and w.isalpha()]
        if len(ws) >= 2:
            qs.append(" ".join(rng.sample(ws, 2)).lower())
    json.dump(qs, open(os.path.join(out, "queries.json"), "w"))
    print(json.dumps({"kind": kind, "chunks": len(texts), "queries": len(qs)}))

if __name__ == "__main__":
    main()
