#!/usr/bin/env python3
"""The peers of the lexical benchmark (issue 19): SQLite FTS5 bm25() and
Xapian (BM25Weight), on the corpus of bench/lexical_corpus.py, measured the
way bench/lexical_bench.c measures warden: indexing chunks/s in
transactions of BATCH chunks, then single-thread QPS of the same 500
two-word OR queries at k=10 for selectivity 0.1 / 1 / 10 / 100 %
("sel < X").

  FTS5   tokenize='porter unicode61'; the selectivity is a join with a
         rowid table holding sel (indexed): ... WHERE f MATCH ? AND
         m.sel < ? ORDER BY bm25(f) LIMIT 10
  Xapian english stemmer, sel in value slot 0; the selectivity is
         OP_FILTER with a value range (Xapian's own way to restrict a
         match; it still walks the postings of the query terms)

Usage: lexical_bench.py CORPUSDIR WORKDIR [BATCH]
Prints one JSON object per measurement.
"""
import json, os, shutil, sqlite3, sys, time

def cpu():
    return time.process_time()

def emit(**kw):
    print(json.dumps(kw), flush=True)

def load(cdir):
    chunks = [json.loads(l) for l in open(os.path.join(cdir, "chunks.jsonl"))]
    queries = json.load(open(os.path.join(cdir, "queries.json")))
    return chunks, queries

SELS = [1, 10, 100, 1000]

def fts5(chunks, queries, work, batch):
    path = os.path.join(work, "fts5.db")
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE VIRTUAL TABLE f USING fts5(text, tokenize='porter unicode61')")
    db.execute("CREATE TABLE m(id INTEGER PRIMARY KEY, sel INTEGER)")
    db.execute("CREATE INDEX m_sel ON m(sel)")
    t0, c0 = time.time(), cpu()
    for i in range(0, len(chunks), batch):
        with db:
            part = chunks[i:i + batch]
            db.executemany("INSERT INTO f(rowid, text) VALUES (?, ?)", [(c["id"] + 1, c["text"]) for c in part])
            db.executemany("INSERT INTO m(id, sel) VALUES (?, ?)", [(c["id"] + 1, c["sel"]) for c in part])
    t1, c1 = time.time(), cpu()
    emit(system="sqlite-fts5", what="index", chunks=len(chunks), seconds=round(t1 - t0, 3),
         cpu_seconds=round(c1 - c0, 3), chunks_per_s=round(len(chunks) / (t1 - t0)),
         chunks_per_cpu_s=round(len(chunks) / (c1 - c0)))
    def fq(q):
        return " OR ".join('"%s"' % w.replace('"', '') for w in q.split())
    for s in SELS:
        if s < 1000:
            sql = ("SELECT f.rowid, bm25(f) AS r FROM f JOIN m ON m.id = f.rowid "
                   "WHERE f MATCH ? AND m.sel < ? ORDER BY r LIMIT 10")
            args = lambda q: (fq(q), s)
        else:
            sql = "SELECT rowid, bm25(f) AS r FROM f WHERE f MATCH ? ORDER BY r LIMIT 10"
            args = lambda q: (fq(q),)
        for q in queries[:100]:
            db.execute(sql, args(q)).fetchall()
        hits, t0, c0 = 0, time.time(), cpu()
        for q in queries:
            hits += len(db.execute(sql, args(q)).fetchall())
        dt, dc = time.time() - t0, cpu() - c0
        emit(system="sqlite-fts5", what="lexical", selectivity=s / 1000, queries=len(queries),
             qps=round(len(queries) / dt, 1), qps_cpu=round(len(queries) / dc, 1),
             mean_hits=round(hits / len(queries), 2))
    db.close()

def xap(chunks, queries, work, batch):
    import xapian
    path = os.path.join(work, "xapian.db")
    shutil.rmtree(path, ignore_errors=True)
    db = xapian.WritableDatabase(path, xapian.DB_CREATE_OR_OVERWRITE)
    tg = xapian.TermGenerator()
    tg.set_stemmer(xapian.Stem("english"))
    t0, c0 = time.time(), cpu()
    for i in range(0, len(chunks), batch):
        db.begin_transaction()
        for c in chunks[i:i + batch]:
            d = xapian.Document()
            tg.set_document(d)
            tg.index_text(c["text"])
            d.add_value(0, xapian.sortable_serialise(c["sel"]))
            db.add_document(d)  # docids 1, 2, ... in order
        db.commit_transaction()
    t1, c1 = time.time(), cpu()
    emit(system="xapian", what="index", chunks=len(chunks), seconds=round(t1 - t0, 3),
         cpu_seconds=round(c1 - c0, 3), chunks_per_s=round(len(chunks) / (t1 - t0)),
         chunks_per_cpu_s=round(len(chunks) / (c1 - c0)))
    db.close()
    db = xapian.Database(path)
    qp = xapian.QueryParser()
    qp.set_stemmer(xapian.Stem("english"))
    qp.set_stemming_strategy(xapian.QueryParser.STEM_SOME)
    qp.set_default_op(xapian.Query.OP_OR)
    enq = xapian.Enquire(db)
    enq.set_weighting_scheme(xapian.BM25Weight())
    for s in SELS:
        def run(q):
            query = qp.parse_query(q)
            if s < 1000:
                query = xapian.Query(xapian.Query.OP_FILTER, query,
                                     xapian.Query(xapian.Query.OP_VALUE_LE, 0, xapian.sortable_serialise(s - 1)))
            enq.set_query(query)
            return enq.get_mset(0, 10).size()
        for q in queries[:100]:
            run(q)
        hits, t0, c0 = 0, time.time(), cpu()
        for q in queries:
            hits += run(q)
        dt, dc = time.time() - t0, cpu() - c0
        emit(system="xapian", what="lexical", selectivity=s / 1000, queries=len(queries),
             qps=round(len(queries) / dt, 1), qps_cpu=round(len(queries) / dc, 1),
             mean_hits=round(hits / len(queries), 2))

def main():
    cdir, work = sys.argv[1], sys.argv[2]
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    os.makedirs(work, exist_ok=True)
    chunks, queries = load(cdir)
    fts5(chunks, queries, work, batch)
    xap(chunks, queries, work, batch)

if __name__ == "__main__":
    main()
