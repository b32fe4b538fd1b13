#!/usr/bin/python3
"""crash.py -- kill -9 the warden CLI at random points of ingest, acl sync and
delete, then check that nothing committed was lost and nothing half-done
survived.  Two ingest kinds more: "bulk", JSONL inputs of 2100-3000
documents (more than one 2048-document batch, so the kill can land after
full embedding blocks were written into the still-open transaction), and
"npy", `ingest META --vectors EMB.npy` (the .npy written here by hand).
Two staged kinds ("staged", "staged_npy": the same inputs with
WARDEN_STAGE_MB=0, so the ingest commits a staging transaction per batch
and publishes in a last one, engine/stage.h) are killed at random too, and
once per run each at every named point of a staged ingest
(WARDEN_CRASH_AT: mid-staging, between staging transactions, during and
after the publish, and in the middle of reclaiming a killed ingest's
leftovers), where the outcome is known: the old state before the publish
commit, the new one after it; the next ingest must reclaim and succeed.

For each operation kind, ITERS times: a command is started on a collection
whose exact contents this script knows (the model), SIGKILLed after a random
delay (uniform over 0..1.3x the time an unkilled run of that kind takes, so
kills land before, during and after the commit), and the collection is
reopened:
  - `warden export` must equal either the model before the command or the
    model after it -- every document fully present (chunks, embeddings,
    metadata, ACL) or fully absent, never a mix;
  - if the command printed its JSON result before it died it was
    acknowledged, and the export must equal the after-model;
  - `warden stats` revision must be the old one (not committed) or the
    one after (committed), and agree with the export; the document and
    chunk counts must match the model;
  - `warden check` must be clean;
  - exact queries (`--exact`) for random principals must equal an oracle
    computed here from the model (l2 distances over small-integer
    embeddings, so exact: same distances in order, and the same documents
    except for ties at the k-th distance).
Usage: crash.py --warden build/warden [--iters 50] [--seed 1]
"""
import argparse, json, os, random, shutil, signal, struct, subprocess, sys, tempfile, time

DIM = 4
USERS = ["user:u%d" % i for i in range(5)]
GROUPS = ["group:g%d" % i for i in range(3)]
NSS = ["/t0", "/t0/a", "/t1", "/t2/x"]


def rand_acl(r):
    allow = sorted(set(r.sample(USERS + GROUPS + ["*"], r.randint(0, 3))))
    deny = sorted(set(r.sample(USERS + GROUPS, r.randint(0, 1))))
    return allow, deny


def rand_doc(r, i, gen):
    allow, deny = rand_acl(r)
    return {"doc_id": "doc-%04d" % i, "source": "s3://bkt/doc-%04d" % i,
            "namespace": r.choice(NSS),
            "metadata": {"year": r.randint(1, 7), "kind": r.choice(["a", "b", "c"]), "gen": gen},
            "acl": {"allow": allow, "deny": deny},
            "chunks": [{"text": "doc %d gen %d chunk %d %s" % (i, gen, c, "x" * r.randint(0, 300)),
                        "embedding": [float(r.randint(-3, 3)) for _ in range(DIM - 1)] + [1.0]}
                       for c in range(r.randint(1, 3))]}


def norm(d):
    return {"doc_id": d["doc_id"], "source": d["source"], "namespace": d["namespace"],
            "metadata": d["metadata"],
            "allow": sorted(d["acl"]["allow"]), "deny": sorted(d["acl"]["deny"]),
            "chunks": [(c["text"], [float(x) for x in c["embedding"]]) for c in d["chunks"]]}


class Crash:
    def __init__(self, warden, seed):
        self.w = os.path.abspath(warden)
        self.r = random.Random(seed)
        self.tmp = tempfile.mkdtemp(prefix="warden-crash-")
        self.coll = os.path.join(self.tmp, "c")
        self.model = {}  # doc_id -> doc (input form)
        self.rev = 0
        self.next_id = 0
        self.gen = 0
        self.stats = {"kills": 0, "acked": 0, "committed_unacked": 0, "absent": 0,
                      "queries": 0, "checks": 0, "points": 0}
        self.dur = {}
        self.run(["init", self.coll, "--dim", str(DIM), "--metric", "l2"])

    def run(self, args, ok=(0,)):
        p = subprocess.run([self.w] + args, capture_output=True, text=True)
        if p.returncode not in ok:
            raise SystemExit("FAIL: warden %s -> %d: %s" % (" ".join(args[:3]), p.returncode, p.stderr[:500]))
        return p

    # ------------------------------------------------------ operations
    def make_ingest(self):
        docs = []
        n = self.r.randint(20, 120)
        self.gen += 1
        for _ in range(n):
            if self.model and self.r.random() < 0.3:
                i = int(self.r.choice(list(self.model))[4:])
            else:
                i = self.next_id
                self.next_id += 1
            if any(d["doc_id"] == "doc-%04d" % i for d in docs):
                continue
            docs.append(rand_doc(self.r, i, self.gen))
        path = os.path.join(self.tmp, "in.jsonl")
        with open(path, "w") as f:
            for d in docs:
                f.write(json.dumps(d) + "\n")
        after = dict(self.model)
        for d in docs:
            after[d["doc_id"]] = d
        return ["ingest", self.coll, path], after

    def make_docs(self, lo, hi):
        docs, seen = [], set()
        n = self.r.randint(lo, hi)
        self.gen += 1
        ids = list(self.model)
        for _ in range(n):
            if ids and self.r.random() < 0.3:
                i = int(self.r.choice(ids)[4:])
            else:
                i = self.next_id
                self.next_id += 1
            if i in seen:
                continue
            seen.add(i)
            docs.append(rand_doc(self.r, i, self.gen))
        after = dict(self.model)
        for d in docs:
            after[d["doc_id"]] = d
        return docs, after

    def make_bulk(self):
        docs, after = self.make_docs(2100, 3000)
        path = os.path.join(self.tmp, "bulk.jsonl")
        with open(path, "w") as f:
            for d in docs:
                f.write(json.dumps(d) + "\n")
        return ["ingest", self.coll, path], after

    def make_npy(self):
        docs, after = self.make_docs(20, 2600)
        meta = os.path.join(self.tmp, "meta.jsonl")
        rows = []
        with open(meta, "w") as f:
            for d in docs:
                m = json.loads(json.dumps(d))
                for c in m["chunks"]:
                    rows.append(c.pop("embedding"))
                f.write(json.dumps(m) + "\n")
        npy = os.path.join(self.tmp, "emb.npy")
        hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (len(rows), DIM)
        hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
        with open(npy, "wb") as f:
            f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
            for r in rows:
                f.write(struct.pack("<%df" % DIM, *r))
        return ["ingest", self.coll, meta, "--vectors", npy], after

    def make_sync(self):
        after = dict(self.model)
        ids = self.r.sample(sorted(self.model), min(len(self.model), self.r.randint(5, 60)))
        path = os.path.join(self.tmp, "acl.jsonl")
        changed = 0
        with open(path, "w") as f:
            for i in ids:
                allow, deny = rand_acl(self.r)
                f.write(json.dumps({"doc_id": i, "allow": allow, "deny": deny}) + "\n")
                d = json.loads(json.dumps(after[i]))
                if sorted(d["acl"]["allow"]) != allow or sorted(d["acl"]["deny"]) != deny:
                    changed += 1
                d["acl"] = {"allow": allow, "deny": deny}
                after[i] = d
            f.write(json.dumps({"doc_id": "no-such-doc", "allow": [], "deny": []}) + "\n")
        if not changed:
            return None, None
        return ["acl", "sync", self.coll, path], after

    def make_delete(self):
        ids = self.r.sample(sorted(self.model), min(len(self.model), self.r.randint(1, 25)))
        if not ids:
            return None, None
        after = {k: v for k, v in self.model.items() if k not in ids}
        return ["delete", self.coll] + ids + ["never-existed"], after

    # ---------------------------------------------------------- checks
    def export(self):
        p = self.run(["export", self.coll])
        out = {}
        for line in p.stdout.splitlines():
            d = json.loads(line)
            out[d["doc_id"]] = norm(d)
        return out

    def same(self, exp, model):
        return exp == {k: norm(v) for k, v in model.items()}

    def verify(self, before, after, acked, what, expect=None):
        exp = self.export()
        st = json.loads(self.run(["stats", self.coll]).stdout)
        is_before, is_after = self.same(exp, before), self.same(exp, after)
        if acked and not is_after:
            raise SystemExit("FAIL: %s: acknowledged (revision %s) but the export is not the new state"
                             % (what, acked))
        if not is_before and not is_after:
            diff = [k for k in set(exp) | set(after) | set(before)
                    if exp.get(k) != (norm(after[k]) if k in after else None)
                    and exp.get(k) != (norm(before[k]) if k in before else None)]
            raise SystemExit("FAIL: %s: collection is neither the old nor the new state; documents "
                             "that match neither: %s" % (what, diff[:5]))
        if expect == "before" and not is_before:
            raise SystemExit("FAIL: %s: killed before the publish commit but the export is the new state"
                             % what)
        if expect == "after" and not is_after:
            raise SystemExit("FAIL: %s: killed after the publish commit but the export is the old state"
                             % what)
        if is_after and not is_before:
            if st["revision"] != self.rev + 1:
                raise SystemExit("FAIL: %s: new state at revision %d, expected %d"
                                 % (what, st["revision"], self.rev + 1))
            self.rev += 1
            self.model = after
            self.stats["acked" if acked else "committed_unacked"] += 1
        else:
            if st["revision"] != self.rev:
                raise SystemExit("FAIL: %s: old state but revision %d, expected %d"
                                 % (what, st["revision"], self.rev))
            self.stats["absent"] += 1
        nch = sum(len(d["chunks"]) for d in self.model.values())
        if st["documents"] != len(self.model) or st["chunks"] != nch:
            raise SystemExit("FAIL: %s: stats say %d docs %d chunks, model %d/%d"
                             % (what, st["documents"], st["chunks"], len(self.model), nch))
        p = self.run(["check", self.coll], ok=(0, 1))
        chk = json.loads(p.stdout) if p.stdout.strip() else {}
        if p.returncode != 0 or not chk.get("ok"):
            raise SystemExit("FAIL: %s: warden check: %s %s" % (what, p.stdout[:600], p.stderr[:300]))
        self.stats["checks"] += 1
        self.queries(what)

    def readable(self, d, user, groups):
        who = {user} | set(groups)
        acl = d["acl"]
        return bool(set(acl["allow"]) & (who | {"*"})) and not (set(acl["deny"]) & who)

    def queries(self, what):
        for _ in range(3):
            user = self.r.choice(USERS)
            groups = self.r.sample(GROUPS, self.r.randint(0, 2))
            k = self.r.randint(1, 15)
            vecs = [[float(self.r.randint(-3, 3)) for _ in range(DIM)] for _ in range(3)]
            vf = os.path.join(self.tmp, "q.jsonl")
            with open(vf, "w") as f:
                for v in vecs:
                    f.write(json.dumps(v) + "\n")
            args = ["query", self.coll, "--principal", user, "--vector-file", vf, "-k", str(k), "--exact"]
            if groups:
                args += ["--groups", ",".join(groups)]
            outs = [json.loads(l) for l in self.run(args).stdout.splitlines() if l.strip()]
            if len(outs) != len(vecs):
                raise SystemExit("FAIL: %s: %d query answers for %d vectors" % (what, len(outs), len(vecs)))
            for v, out in zip(vecs, outs):
                cands = []
                for d in self.model.values():
                    if not self.readable(d, user, groups):
                        continue
                    for ci, c in enumerate(d["chunks"]):
                        cands.append((sum((a - b) ** 2 for a, b in zip(c["embedding"], v)), d["doc_id"], ci))
                cands.sort()
                want = cands[:k]
                got = [(h["score"], h["doc_id"], h["chunk"]) for h in out["results"]]
                self.stats["queries"] += 1
                for s, doc, ci in got:
                    if doc not in self.model or not self.readable(self.model[doc], user, groups):
                        raise SystemExit("FAIL: %s: LEAK: %s#%d returned to %s %s" % (what, doc, ci, user, groups))
                if [round(g[0], 3) for g in got] != [float(w[0]) for w in want]:
                    raise SystemExit("FAIL: %s: query %s k=%d for %s: distances %s, oracle %s"
                                     % (what, v, k, user, [g[0] for g in got], [w[0] for w in want]))
                if want:
                    kth = want[-1][0]
                    must = {(w[1], w[2]) for w in want if w[0] < kth}
                    have = {(g[1], g[2]) for g in got}
                    if not must <= have:
                        raise SystemExit("FAIL: %s: query misses %s" % (what, sorted(must - have)[:3]))
                    allk = {(c[1], c[2]) for c in cands if c[0] == kth}
                    if not all((g[1], g[2]) in must or (g[1], g[2]) in allk for g in got):
                        raise SystemExit("FAIL: %s: query returned a chunk the oracle does not rank" % what)

    # ------------------------------------------------------------ main
    def once(self, kind, kill, crash_at=None):
        args, after = {"ingest": self.make_ingest, "sync": self.make_sync,
                       "delete": self.make_delete, "bulk": self.make_bulk,
                       "npy": self.make_npy, "staged": self.make_bulk,
                       "staged_npy": self.make_npy}[kind]()
        if args is None:
            return False
        before = self.model
        env = dict(os.environ)
        env.pop("WARDEN_CRASH_AT", None)
        if kind.startswith("staged"):
            env["WARDEN_STAGE_MB"] = "0"  # a staging txn per 2048-document batch
        if crash_at:
            env["WARDEN_CRASH_AT"] = crash_at
        t0 = time.monotonic()
        p = subprocess.Popen([self.w] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        if kill:
            delay = self.r.uniform(0, 1.3 * self.dur.get(kind, 0.05))
            time.sleep(delay)
            p.send_signal(signal.SIGKILL)
        out, err = p.communicate()
        if not kill:
            self.dur[kind] = time.monotonic() - t0
        acked = None
        for line in out.decode().splitlines():
            try:
                acked = json.loads(line).get("revision")
            except ValueError:
                pass
        if p.returncode not in (0, -9):
            raise SystemExit("FAIL: %s exited %d: %s" % (kind, p.returncode, err.decode()[:400]))
        expect = None
        if crash_at:
            if p.returncode != -9:
                raise SystemExit("FAIL: %s never reached crash point %s" % (kind, crash_at))
            expect = "after" if crash_at == "publish-done" else "before"
            self.stats["points"] += 1
        if kill or crash_at:
            self.stats["kills"] += 1
        self.verify(before, after, acked, "%s (kill=%s%s)" % (kind, kill, ", at " + crash_at if crash_at else ""),
                    expect)
        return True

    def points(self):
        """kill -9 at every named point of a staged ingest (engine/stage.c)."""
        for kind in ("staged", "staged_npy"):
            for point in ("stage-mid", "stage-between", "publish-mid", "publish-done"):
                while not self.once(kind, False, crash_at=point):
                    pass
            # leftovers of a kill between staging txns, then a kill while the
            # next ingest reclaims them, then an ingest that must finish
            self.once(kind, False, crash_at="stage-between")
            self.once(kind, False, crash_at="reclaim-mid")
            self.once(kind, False)

    def main(self, iters):
        # calibrate: one unkilled run of each kind (also grows the collection)
        for _ in range(2):
            self.once("ingest", False)
        self.once("sync", False)
        self.once("delete", False)
        self.once("bulk", False)
        self.once("npy", False)
        self.once("staged", False)
        self.once("staged_npy", False)
        self.points()
        for i in range(iters):
            for kind in ("ingest", "sync", "delete", "bulk", "npy", "staged", "staged_npy"):
                while not self.once(kind, True):
                    self.once("ingest", False)
        s = self.stats
        print("crash: %d kills (%d per operation, %d at named staged-ingest points); after reopen: %d acknowledged commits, %d commits "
              "done but not yet acknowledged, %d operations absent; %d checks clean; %d oracle "
              "queries equal; %d documents at revision %d" %
              (s["kills"], iters, s["points"], s["acked"], s["committed_unacked"], s["absent"], s["checks"],
               s["queries"], len(self.model), self.rev))

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--warden", default="build/warden")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    c = Crash(a.warden, a.seed)
    try:
        c.main(a.iters)
    finally:
        c.cleanup()
