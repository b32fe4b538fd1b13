#!/usr/bin/python3
"""index_crash.py -- kill -9 `warden index` while it builds and writes the ANN
index file (DIR/index/ivf.wdx: written to ivf.wdx.tmp.PID, fsynced, renamed),
then check that the collection is still consistent and every query path still
answers exactly.

Setup: a collection (l2, DIM 16) of ~8,000 documents / ~32,000 chunks whose
embeddings are small integers, so every squared distance is an exact float
and a Python oracle computed from the model of what was ingested is exact.
An unkilled run of each index mode is timed first.

Each iteration:
  - a random write (ingest of new documents and upserts, a delete, or an ACL
    sync; sometimes none), so the existing index becomes stale (catch-up of
    new slots in memory) or carries dead slots;
  - `warden index DIR` in one of three modes: "first" (the index file is
    removed first: a first build with training), "rebuild" (`--rebuild`
    over the old file: training, then rename over it) or "update" (plain
    `index` over the old, stale file: old centroids, fast);
  - SIGKILL either after a delay uniform over 0..1.3x the measured duration
    of that mode (kills land before, during and after the rename), or --
    every third kill -- after the temp file appeared plus a delay uniform
    over 0..1.3x the median measured write time (kills land mid-write);
  - after the kill:
      * the index file is either untouched (same inode, size, mtime) or the
        complete new one (a new inode); if the command printed its JSON it
        must be the new one;
      * `warden check` exits 0, reports ok and no problem; its index part is
        "none" or "ok", and a new file is stamped with the current revision;
      * `warden stats`: index state none/ready/stale (never corrupt, foreign,
        newer_than_store, error); an untouched file reports what it reported
        before the kill; a new file is "ready" with no pending slots;
      * queries for random principals, groups, metadata filters and
        namespaces, each with --exact, --ann and the default (auto) path:
        --exact equals the oracle; every answer on every path holds only
        chunks the principal may read, each with the oracle's distance for
        that chunk, best first, no duplicates, exactly min(k, allowed)
        hits; when a readable chunk equals the query (two of the four
        query vectors are stored chunks, one of them recent: caught up in
        memory when the index is stale) the best hit has distance 0 on every
        path (its own list is among the first probed); an IVF answer that probed every
        list (min_lists >= nlist: the build-time calibration often, not
        always, asks for all lists on this uniform data) must equal the
        oracle too; one that did not is approximate by design and only its
        recall is accumulated (>= RECALL_FLOOR on average); the plan's index
        state is never corrupt/foreign/newer/error;
  - then `warden index DIR` to completion: exit 0, stamped with the
    current revision and next_slot; `check` clean with every live chunk
    checked in the index; `stats` "ready", 0 pending; the queries again, now
    with the index state "ready" and the IVF path taken for --ann.
Temp files (ivf.wdx.tmp.PID) left by kills are counted, and whether the
next open (check/stats/query) or the next `warden index` removes them.
The warden binary is copied first (a concurrent relink cannot swap it).
Usage: index_crash.py --warden build/warden [--iters 20] [--seed 1] [--verbose]
"""
import argparse, json, operator, os, random, shutil, signal, subprocess, sys, tempfile, time

DIM = 16
NDOCS = 8000
VMAX = 20
USERS = ["user:u%d" % i for i in range(5)]
GROUPS = ["group:g%d" % i for i in range(3)]
NSS = ["/t0", "/t0/a", "/t1", "/t2/x"]
BAD_STATES = ("corrupt", "foreign", "newer_than_store", "error")
RECALL_FLOOR = 0.8


def rand_acl(r):
    if r.random() < 0.05:
        return [], []
    allow = sorted(set(r.sample(USERS + GROUPS + ["*"], r.randint(1, 3))))
    deny = sorted(set(r.sample(USERS + GROUPS, r.randint(0, 1))))
    return allow, deny


def rand_vec(r):
    return [r.randint(-VMAX, VMAX) for _ in range(DIM)]


def rand_doc(r, i, gen):
    allow, deny = rand_acl(r)
    return {"doc_id": "doc-%05d" % i, "source": "s3://bkt/doc-%05d" % i,
            "namespace": r.choice(NSS),
            "metadata": {"year": r.randint(1, 7), "kind": r.choice(["a", "b", "c"]), "gen": gen},
            "acl": {"allow": allow, "deny": deny},
            "chunks": [{"text": "d%d g%d c%d" % (i, gen, c), "embedding": [float(x) for x in rand_vec(r)]}
                       for c in range(r.randint(1, 7))]}


def ns_under(ns, prefix):
    prefix = prefix.rstrip("/")
    return prefix == "" or ns == prefix or ns.startswith(prefix + "/")


class IndexCrash:
    def __init__(self, warden, seed, verbose=False):
        self.verbose = verbose
        self.r = random.Random(seed)
        self.tmp = tempfile.mkdtemp(prefix="warden-index-crash-")
        # run a private copy: a concurrent `make` relinking build/warden
        # must not swap the binary in the middle of a run
        self.w = os.path.join(self.tmp, "warden")
        shutil.copy2(warden, self.w)
        self.coll = os.path.join(self.tmp, "c")
        self.ixdir = os.path.join(self.coll, "index")
        self.ixfile = os.path.join(self.ixdir, "ivf.wdx")
        self.model = {}  # doc_id -> doc (input form)
        self.flat = None  # [(doc_id, chunk, embedding ints, |e|^2)], rebuilt after writes
        self.rev = 0
        self.next_id = 0
        self.gen = 0
        self.dur = {}  # mode -> seconds of an unkilled run
        self.writes = []  # measured write+fsync+rename times of the file (s)
        self.stats = {"kills": 0, "timed": 0, "mid_write": 0, "exited_first": 0,
                      "untouched": 0, "replaced": 0, "acked": 0, "tmp_left": 0,
                      "tmp_gone_open": 0, "tmp_gone_index": 0, "checks": 0, "queries": 0,
                      "ann_exact": 0, "ann_approx": 0, "fallback_exact": 0, "completions": 0,
                      "stale_seen": 0, "missing_seen": 0,
                      "known_items": 0}
        self.modes = {"first": 0, "rebuild": 0, "update": 0}
        self.recall = []
        self.run(["init", self.coll, "--dim", str(DIM), "--metric", "l2"])

    def run(self, args, ok=(0,)):
        p = subprocess.run([self.w] + args, capture_output=True, text=True)
        if p.returncode not in ok:
            raise SystemExit("FAIL: warden %s -> %d: %s" % (" ".join(args[:3]), p.returncode, p.stderr[:500]))
        return p

    # ---------------------------------------------------------- writes
    def ingest(self, docs):
        path = os.path.join(self.tmp, "in.jsonl")
        with open(path, "w") as f:
            for d in docs:
                f.write(json.dumps(d) + "\n")
        out = json.loads(self.run(["ingest", self.coll, path]).stdout)
        self.rev += 1
        if out.get("revision") != self.rev:
            raise SystemExit("FAIL: ingest committed revision %s, expected %d" % (out.get("revision"), self.rev))
        for d in docs:
            self.model[d["doc_id"]] = d
        self.flat = None

    def write_op(self):
        op = self.r.choice(["ingest", "ingest", "delete", "sync", "none"])
        if op == "ingest":
            self.gen += 1
            docs, seen = [], set()
            for _ in range(self.r.randint(5, 60)):
                if self.r.random() < 0.3:
                    i = int(self.r.choice(sorted(self.model))[4:])
                else:
                    i = self.next_id
                    self.next_id += 1
                if i not in seen:
                    seen.add(i)
                    docs.append(rand_doc(self.r, i, self.gen))
            self.ingest(docs)
        elif op == "delete":
            ids = self.r.sample(sorted(self.model), self.r.randint(1, 20))
            out = json.loads(self.run(["delete", self.coll] + ids).stdout)
            self.rev += 1
            if out.get("deleted") != len(ids) or out.get("revision") != self.rev:
                raise SystemExit("FAIL: delete: %s, expected %d deleted at revision %d" % (out, len(ids), self.rev))
            for i in ids:
                del self.model[i]
            self.flat = None
        elif op == "sync":
            path = os.path.join(self.tmp, "acl.jsonl")
            changed = 0
            with open(path, "w") as f:
                for i in self.r.sample(sorted(self.model), self.r.randint(5, 40)):
                    allow, deny = rand_acl(self.r)
                    f.write(json.dumps({"doc_id": i, "allow": allow, "deny": deny}) + "\n")
                    d = dict(self.model[i])
                    if sorted(d["acl"]["allow"]) != allow or sorted(d["acl"]["deny"]) != deny:
                        changed += 1
                    d["acl"] = {"allow": allow, "deny": deny}
                    self.model[i] = d
            out = json.loads(self.run(["acl", "sync", self.coll, path]).stdout)
            if changed:
                self.rev += 1
            if out.get("changed") != changed or out.get("revision") != self.rev:
                raise SystemExit("FAIL: acl sync: %s, expected %d changed at revision %d" % (out, changed, self.rev))
        return op

    # ------------------------------------------------------ file state
    def ident(self):
        try:
            st = os.stat(self.ixfile)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def tmp_files(self):
        try:
            return sorted(n for n in os.listdir(self.ixdir) if n.startswith("ivf.wdx.tmp."))
        except FileNotFoundError:
            return []

    def st(self):
        return json.loads(self.run(["stats", self.coll]).stdout)

    def nchunks(self):
        return sum(len(d["chunks"]) for d in self.model.values())

    def check(self, what, new_file=False, completed=False):
        p = self.run(["check", self.coll], ok=(0, 1))
        try:
            chk = json.loads(p.stdout)
        except ValueError:
            chk = {}
        ix = chk.get("index", {})
        if p.returncode != 0 or not chk.get("ok") or chk.get("problems") or ix.get("problems"):
            raise SystemExit("FAIL: %s: warden check exit %d: %s %s" % (what, p.returncode, p.stdout[:700], p.stderr[:300]))
        if ix.get("state") not in ("none", "ok"):
            raise SystemExit("FAIL: %s: warden check index state %s: %s" % (what, ix.get("state"), p.stdout[:700]))
        if chk.get("revision") != self.rev or chk.get("documents") != len(self.model) or chk.get("chunks") != self.nchunks():
            raise SystemExit("FAIL: %s: check says revision %s, %s docs, %s chunks; model %d, %d, %d"
                             % (what, chk.get("revision"), chk.get("documents"), chk.get("chunks"),
                                self.rev, len(self.model), self.nchunks()))
        if new_file and (ix.get("state") != "ok" or ix.get("revision") != self.rev or ix.get("pending_slots") != 0):
            raise SystemExit("FAIL: %s: a new index file must be ok at revision %d with 0 pending slots: %s"
                             % (what, self.rev, json.dumps(ix)))
        if completed and ix.get("checked") != self.nchunks():
            raise SystemExit("FAIL: %s: check verified %s indexed vectors, %d live chunks"
                             % (what, ix.get("checked"), self.nchunks()))
        self.stats["checks"] += 1
        return chk

    # ---------------------------------------------------------- oracle
    def readable(self, d, user, groups, nss, flt):
        who = {user} | set(groups)
        acl = d["acl"]
        if not (set(acl["allow"]) & (who | {"*"})) or set(acl["deny"]) & who:
            return False
        if nss and not any(ns_under(d["namespace"], p) for p in nss):
            return False
        return flt is None or flt[1](d["metadata"])

    def rand_filter(self):
        c = self.r.random()
        if c < 0.5:
            return None
        if c < 0.7:
            y = self.r.randint(1, 7)
            return ({"year": {"$lte": y}}, lambda m, y=y: m["year"] <= y)
        if c < 0.85:
            ks = self.r.sample(["a", "b", "c"], self.r.randint(1, 2))
            return ({"kind": {"$in": ks}}, lambda m, ks=ks: m["kind"] in ks)
        y, k = self.r.randint(1, 7), self.r.choice(["a", "b", "c"])
        return ({"$or": [{"year": y}, {"kind": k}]}, lambda m, y=y, k=k: m["year"] == y or m["kind"] == k)

    def distances(self, v):
        if self.flat is None:
            self.flat = []
            for d in self.model.values():
                for ci, c in enumerate(d["chunks"]):
                    e = tuple(int(x) for x in c["embedding"])
                    self.flat.append((d["doc_id"], ci, e, sum(x * x for x in e)))
        nv = sum(x * x for x in v)
        mul = operator.mul
        return {(doc, ci): ne - 2 * sum(map(mul, e, v)) + nv for doc, ci, e, ne in self.flat}

    def compare(self, what, mode, plan, got, dist, ok, k):
        """got: [(score, doc, chunk)]; dist: (doc, chunk) -> distance; ok: doc -> readable."""
        cands = sorted((dd, doc, ci) for (doc, ci), dd in dist.items() if ok[doc])
        want = cands[:k]
        seen = set()
        for s, doc, ci in got:
            if doc not in self.model or not ok[doc]:
                raise SystemExit("FAIL: %s: %s: LEAK or unknown: %s#%d returned (exists: %s)"
                                 % (what, mode, doc, ci, doc in self.model))
            if (doc, ci) not in dist:
                raise SystemExit("FAIL: %s: %s: no such chunk %s#%d" % (what, mode, doc, ci))
            if (doc, ci) in seen:
                raise SystemExit("FAIL: %s: %s: %s#%d returned twice" % (what, mode, doc, ci))
            seen.add((doc, ci))
            if s != float(dist[(doc, ci)]):
                raise SystemExit("FAIL: %s: %s: %s#%d has score %r, its distance is %d"
                                 % (what, mode, doc, ci, s, dist[(doc, ci)]))
        if [g[0] for g in got] != sorted(g[0] for g in got):
            raise SystemExit("FAIL: %s: %s: results not best first: %s" % (what, mode, [g[0] for g in got]))
        if len(got) != len(want):
            raise SystemExit("FAIL: %s: %s: %d results, expected min(k=%d, allowed=%d) = %d"
                             % (what, mode, len(got), k, len(cands), len(want)))
        if not want:
            return
        if want[0][0] == 0:
            self.stats["known_items"] += 1
        if want[0][0] == 0 and got[0][0] != 0:
            # known item: the query is a readable stored vector; its own
            # list is among the first probed, so every path finds distance 0
            raise SystemExit("FAIL: %s: %s (strategy %s): a readable chunk equals the query, best "
                             "result has distance %s (%s#%d)"
                             % (what, mode, plan.get("strategy"), got[0][0], got[0][1], got[0][2]))
        kth = want[-1][0]
        strategy = plan.get("strategy")
        ivf = plan.get("ivf", {})
        nlist = plan.get("index", {}).get("nlist", 0)
        # the graph (issue 14) is approximate by design, like a partial IVF
        # probe; so is the scan of its codes ("codes": SQ8 distances, a
        # float re-rank of the best)
        ann = strategy in ("ivf", "graph", "codes")
        exact = not ann or (strategy == "ivf" and nlist and ivf.get("min_lists", 0) >= nlist)
        if not ann and mode != "exact":
            self.stats["fallback_exact"] += 1
        if not exact:
            self.stats["ann_approx"] += 1
            self.recall.append(sum(1 for g in got if g[0] <= kth) / len(want))
            return
        if strategy == "ivf":
            self.stats["ann_exact"] += 1
        if [g[0] for g in got] != [float(w[0]) for w in want]:
            raise SystemExit("FAIL: %s: %s (strategy %s) k=%d: distances %s, oracle %s"
                             % (what, mode, strategy, k, [g[0] for g in got], [w[0] for w in want]))
        must = {(w[1], w[2]) for w in want if w[0] < kth}
        if not must <= seen:
            raise SystemExit("FAIL: %s: %s misses %s" % (what, mode, sorted(must - seen)[:3]))

    def queries(self, what, completed=False, rounds=3):
        vecs = [rand_vec(self.r) for _ in range(2)]
        # stored chunks as queries too (recent ones first: the catch-up of
        # new slots): when readable, distance 0 must come first on every path
        ids = sorted(self.model)
        for doc in (self.model[self.r.choice(ids[-100:])], self.model[self.r.choice(ids)]):
            vecs.append([int(x) for x in self.r.choice(doc["chunks"])["embedding"]])
        vf = os.path.join(self.tmp, "q.jsonl")
        with open(vf, "w") as f:
            for v in vecs:
                f.write(json.dumps([float(x) for x in v]) + "\n")
        dists = [self.distances(v) for v in vecs]
        for _ in range(rounds):
            user = self.r.choice(USERS)
            groups = self.r.sample(GROUPS, self.r.randint(0, 2))
            nss = self.r.sample(NSS[:3], 1) if self.r.random() < 0.25 else []
            flt = self.rand_filter()
            k = self.r.randint(1, 20)
            ok = {i: self.readable(d, user, groups, nss, flt) for i, d in self.model.items()}
            base = ["query", self.coll, "--principal", user, "--vector-file", vf, "-k", str(k), "--explain"]
            if groups:
                base += ["--groups", ",".join(groups)]
            for p in nss:
                base += ["--namespace", p]
            if flt:
                base += ["--filter", json.dumps(flt[0])]
            desc = "%s [%s %s ns=%s filter=%s k=%d]" % (what, user, groups, nss,
                                                         json.dumps(flt[0]) if flt else None, k)
            for mode, extra in (("exact", ["--exact"]), ("ann", ["--ann"]), ("auto", [])):
                outs = [json.loads(l) for l in self.run(base + extra).stdout.splitlines() if l.strip()]
                if len(outs) != len(vecs):
                    raise SystemExit("FAIL: %s: %s: %d answers for %d vectors" % (desc, mode, len(outs), len(vecs)))
                for qi, (out, dist) in enumerate(zip(outs, dists)):
                    plan = out.get("plan", {})
                    if out.get("revision") != self.rev:
                        raise SystemExit("FAIL: %s: %s: revision %s, expected %d" % (desc, mode, out.get("revision"), self.rev))
                    istate = plan.get("index", {}).get("state")
                    if istate in BAD_STATES:
                        raise SystemExit("FAIL: %s: %s: plan index state %s: %s" % (desc, mode, istate, json.dumps(plan)))
                    if mode == "exact" and plan.get("strategy") != "exact":
                        raise SystemExit("FAIL: %s: --exact ran %s" % (desc, plan.get("strategy")))
                    if mode == "ann" and completed and any(ok.values()):
                        # an ANN index answered: the IVF, or (issue 14) the graph
                        # `warden index` builds next to it or a scan of its codes
                        # (below 200 allowed nodes the graph declines to walk and
                        # the codes are the index's answer), each from a ready file
                        gstate = plan.get("graph", {}).get("state")
                        if (plan.get("strategy") not in ("ivf", "graph", "codes") or
                                istate != "ready" or
                                (plan.get("strategy") in ("graph", "codes") and gstate != "ready")):
                            raise SystemExit("FAIL: %s: --ann after a completed index ran %s with index state %s"
                                             % (desc, plan.get("strategy"), istate))
                    if mode == "ann" and istate == "caught_up":
                        self.stats["stale_seen"] += 1
                    if mode == "ann" and istate == "missing":
                        self.stats["missing_seen"] += 1
                    got = [(h["score"], h["doc_id"], h["chunk"]) for h in out["results"]]
                    self.stats["queries"] += 1
                    self.compare("%s q%d" % (desc, qi), mode, plan, got, dist, ok, k)

    # ------------------------------------------------------------ index
    def index_args(self, mode):
        if mode == "first":
            try:
                os.unlink(self.ixfile)
            except FileNotFoundError:
                pass
        return ["index", self.coll] + (["--rebuild"] if mode == "rebuild" else [])

    def write_s(self):
        w = sorted(self.writes[-9:]) or [0.005]
        return w[len(w) // 2]

    def note_done(self, out, what):
        """A completed `warden index` run: its JSON result."""
        res = None
        for line in out.splitlines():
            try:
                res = json.loads(line)
            except ValueError:
                pass
        if not res or not res.get("built"):
            raise SystemExit("FAIL: %s: index printed %r" % (what, out[:400]))
        if res.get("revision") != self.rev:
            raise SystemExit("FAIL: %s: index stamped revision %s, expected %d" % (what, res.get("revision"), self.rev))
        self.writes.append(res.get("write_ms", 0) / 1e3)
        return res

    def complete(self, what):
        """Run `warden index` to completion and check everything is ready."""
        t0 = time.monotonic()
        p = self.run(["index", self.coll])
        res = self.note_done(p.stdout, what)
        mode = "update" if res.get("previous_index") == "ready" else "first"
        self.dur[mode] = time.monotonic() - t0
        st = self.st()
        if st["revision"] != self.rev or res.get("next_slot") != st.get("slots_used"):
            raise SystemExit("FAIL: %s: index next_slot %s, store %s (revision %s/%d)"
                             % (what, res.get("next_slot"), st.get("slots_used"), st["revision"], self.rev))
        ix = st["index"]
        if ix.get("state") != "ready" or ix.get("pending_slots") != 0 or ix.get("revision") != self.rev:
            raise SystemExit("FAIL: %s: after a completed index, stats index: %s" % (what, json.dumps(ix)))
        self.check(what, new_file=True, completed=True)
        self.stats["completions"] += 1
        return res

    def once(self, it, mode, kill_kind):
        op = self.write_op()
        what = "iter %d (%s after %s, %s kill)" % (it, mode, op, kill_kind)
        args = self.index_args(mode)
        before_id = self.ident()
        before_ix = self.st()["index"]
        tmp_before = set(self.tmp_files())
        t0 = time.monotonic()
        p = subprocess.Popen([self.w] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if kill_kind == "timed":
            delay = self.r.uniform(0, 1.3 * self.dur[mode])
            time.sleep(delay)
        else:
            mine = os.path.join(self.ixdir, "ivf.wdx.tmp.%d" % p.pid)
            while p.poll() is None and not os.path.exists(mine):
                time.sleep(0.0003)
            delay = self.r.uniform(0, 1.3 * self.write_s())
            if p.poll() is None:
                time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        t_kill = time.monotonic() - t0
        out, err = p.communicate()
        self.stats["kills"] += 1
        self.stats["timed" if kill_kind == "timed" else "mid_write"] += 1
        self.modes[mode] += 1
        if p.returncode not in (0, -9):
            raise SystemExit("FAIL: %s: index exited %d: %s" % (what, p.returncode, err.decode()[:400]))
        if p.returncode == 0:
            self.stats["exited_first"] += 1
            self.note_done(out.decode(), what)
        acked = any(l.strip().startswith("{") for l in out.decode().splitlines())
        after_id = self.ident()
        replaced = after_id is not None and after_id != before_id
        if after_id is not None and after_id[0] == (before_id or (None,))[0] and after_id != before_id:
            raise SystemExit("FAIL: %s: the index file was modified in place: %s -> %s" % (what, before_id, after_id))
        if acked and not replaced:
            raise SystemExit("FAIL: %s: index printed its result but the file is not new" % what)
        self.stats["replaced" if replaced else "untouched"] += 1
        if acked:
            self.stats["acked"] += 1
        new_tmp = sorted(set(self.tmp_files()) - tmp_before)
        if new_tmp:
            if replaced or new_tmp != ["ivf.wdx.tmp.%d" % p.pid]:
                raise SystemExit("FAIL: %s: temp files %s after the kill (file replaced: %s)" % (what, new_tmp, replaced))
            self.stats["tmp_left"] += 1
        if self.verbose:
            print("%s: killed at %.1f ms (delay %.1f ms), exit %d, file %s, temp left %s"
                  % (what, t_kill * 1e3, delay * 1e3, p.returncode,
                     "replaced" if replaced else "untouched", new_tmp), file=sys.stderr)
        # reopen: check first, then stats, then queries
        self.check(what, new_file=replaced)
        st = self.st()
        ix = st["index"]
        if ix.get("state") in BAD_STATES or ix.get("state") not in ("none", "ready", "stale"):
            raise SystemExit("FAIL: %s: stats index state %s: %s" % (what, ix.get("state"), json.dumps(ix)))
        if replaced:
            if ix.get("state") != "ready" or ix.get("revision") != self.rev or ix.get("pending_slots") != 0:
                raise SystemExit("FAIL: %s: a new index file, but stats index: %s" % (what, json.dumps(ix)))
        else:
            keys = ("state", "revision", "next_slot", "vectors", "nlist")
            if any(ix.get(k) != before_ix.get(k) for k in keys):
                raise SystemExit("FAIL: %s: the index file is untouched but stats changed: before %s, after %s"
                                 % (what, json.dumps(before_ix), json.dumps(ix)))
        self.queries(what)
        if new_tmp and not os.path.exists(os.path.join(self.ixdir, new_tmp[0])):
            self.stats["tmp_gone_open"] += 1
        # finish the job: the next index must succeed and be exact
        self.complete(what + ", then index")
        if new_tmp:
            # the next build removes temp files whose writer is gone
            if os.path.exists(os.path.join(self.ixdir, new_tmp[0])):
                raise SystemExit("FAIL: %s: %s survived the next `warden index`" % (what, new_tmp[0]))
            self.stats["tmp_gone_index"] += 1
        self.queries(what + ", then index", completed=True, rounds=2)

    def main(self, iters):
        self.gen = 1
        self.next_id = NDOCS
        docs = [rand_doc(self.r, i, 1) for i in range(NDOCS)]
        self.ingest(docs)
        # calibrate: one unkilled run of each mode
        for mode in ("first", "rebuild", "update"):
            if mode == "update":
                self.write_op()
            args = self.index_args(mode)
            t0 = time.monotonic()
            p = self.run(args)
            self.dur[mode] = time.monotonic() - t0
            self.note_done(p.stdout, "calibration " + mode)
            self.check("calibration " + mode, new_file=True, completed=True)
        self.queries("calibration", completed=True)
        for i in range(iters):
            mode = self.r.choice(["first", "rebuild", "rebuild", "update", "update"])
            self.once(i, mode, "mid-write" if i % 3 == 2 else "timed")
        s = self.stats
        rec = sum(self.recall) / len(self.recall) if self.recall else 1.0
        if rec < RECALL_FLOOR:
            raise SystemExit("FAIL: approximate IVF answers: mean recall %.3f < %.2f over %d answers"
                             % (rec, RECALL_FLOOR, len(self.recall)))
        print("index_crash: %d kills (%d timed, %d mid-write; modes first %d, rebuild %d, update %d; "
              "unkilled measured %s ms, write %.1f ms): %d left the file untouched, %d landed after the "
              "rename (%d acknowledged, %d runs had already exited); %d left a temp file (%d removed by "
              "the next open, %d by the next index); %d checks clean; %d queries equal the oracle or "
              "bounded by it (%d IVF answers exact, %d approximate with mean recall %.3f, %d non-exact "
              "modes answered by the exact scan; %d ANN answers from a stale index caught up, %d with no "
              "index; %d known-item queries found their chunk); %d completed index runs ready; %d documents at revision %d"
              % (s["kills"], s["timed"], s["mid_write"], self.modes["first"], self.modes["rebuild"],
                 self.modes["update"], "/".join("%s %.0f" % (m, self.dur[m] * 1e3) for m in sorted(self.dur)),
                 self.write_s() * 1e3, s["untouched"], s["replaced"], s["acked"], s["exited_first"],
                 s["tmp_left"], s["tmp_gone_open"], s["tmp_gone_index"], s["checks"], s["queries"],
                 s["ann_exact"], s["ann_approx"], rec, s["fallback_exact"], s["stale_seen"],
                 s["missing_seen"], s["known_items"], s["completions"], len(self.model), self.rev))

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--warden", default="build/warden")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="one line per kill on stderr")
    a = ap.parse_args()
    c = IndexCrash(a.warden, a.seed, a.verbose)
    try:
        c.main(a.iters)
    finally:
        c.cleanup()
