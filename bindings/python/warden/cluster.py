"""warden.cluster: one logical collection sharded over Dask workers.

Dask distributed supplies the processes, placement, transport and failure
detection; this module supplies the semantics:

* **Shards.**  Shard i is an ordinary warden collection in
  ``ROOT/shard-III`` on the local disk of the worker that holds it, kept
  open by a Dask actor (:class:`ShardServer`) pinned to that worker.
  ``ROOT/shard-III/shard.json`` records the shard's index, the shard count
  and the routing rule, so a later ``ShardedCollection(client, root)``
  finds every shard by asking the workers what they hold.
* **Routing.**  A document goes to shard ``crc32(doc_id) % N`` (zlib.crc32
  of the UTF-8 doc_id).  With ``namespace_shards={"/tenant-a": [0, 1],
  ...}`` a document whose namespace is under a mapped prefix (by whole
  path segment, longest prefix wins) goes to ``shards[crc32(doc_id) %
  len(shards)]`` of that prefix, and a query whose namespaces all lie
  under mapped prefixes touches only those shards.
* **Queries** go to every shard that can hold an allowed chunk, with the
  principal, groups, filter and namespaces unchanged: each shard enforces
  them itself, so no shard sends back a chunk the principal may not read.
  Each shard answers its own exact top-k and the client merges them into
  the top-k one collection holding the same documents would return.
  **Tie-break:** one collection orders equal scores by insertion (slot
  order: documents in upsert order, chunks in order; a replaced document
  counts as new).  Every document written through a ShardedCollection
  gets a global sequence number in the reserved metadata key ``_wseq``
  (hidden from hits), and the merge orders by (score, _wseq, chunk): the
  same order.  _wseq is max(last + 1, microseconds since the epoch), the
  last one recorded in every shard.json, so it grows across reopens.
* **Writes** go to the owning shard (upsert, delete, set_acl) or to every
  shard (set_groups, grants, principals_sync).  Each returns a
  :class:`Token`: the revision every shard it touched committed (0 for
  shards it did not touch).  ``query(min_revision=token)`` sends shard i
  min_revision=token[i], so a shard older than a write that returned
  refuses (warden.StaleSnapshot): a revoke that returned is visible to
  every later query that carries its token.  One write is one transaction
  per shard, not across shards: a write that fails on some shards raises
  :class:`ShardWriteError` with ``.committed`` (the token of the shards
  that did commit) and ``.failed``; writes are idempotent (upsert by
  doc_id, replace-style ACL and group lists), so retrying is safe.
* **Failure.**  A query that cannot reach a shard raises
  :class:`ShardUnavailable` naming the shards, or with
  ``allow_partial=True`` returns the merge of the shards that answered
  with ``.partial = True`` and ``.missing_shards``; never a silently
  shorter answer.  :meth:`ShardedCollection.recover` re-opens the shards of
  lost workers on live workers that can see their directories.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import zlib
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .collection import Collection, Hit, Hits, Revision
from .errors import Error, InvalidInput, NotFound

try:
    from dask.distributed import Client, wait  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("warden.cluster needs Dask distributed (Debian: apt-get install "
                      "python3-distributed), which is not installed") from e

__all__ = ["ShardedCollection", "ShardServer", "Token", "ShardUnavailable",
           "ShardWriteError", "shard_of"]

SEQ_KEY = "_wseq"
SHARD_META = "shard.json"


class ShardUnavailable(Error):
    """One or more shards did not answer (their worker died or is
    unreachable).  ``missing`` lists the shard indexes; ``causes`` the
    errors seen."""

    def __init__(self, message: str, missing: Sequence[int] = (), causes: Sequence = ()):
        super().__init__(message, -30903, "WARDEN_EIO")
        self.missing = list(missing)
        self.causes = list(causes)

    def __reduce__(self):
        return (self.__class__, (self.message, self.missing, []))


class ShardWriteError(Error):
    """A write committed on some shards and failed on others.
    ``committed``: Token of the shards that committed; ``failed``: {shard:
    exception}.  Retrying the same write is safe (writes are idempotent)."""

    def __init__(self, message: str, committed: "Token", failed: Dict[int, BaseException]):
        code = next((e.code for e in failed.values() if isinstance(e, Error)), -30903)
        super().__init__(message, code, "")
        self.committed = committed
        self.failed = failed


class Token(tuple):
    """A consistency token: one revision per shard (0 = no requirement).
    ``a | b`` is the element-wise maximum (a token covering both writes)."""

    def __new__(cls, revs: Iterable[int]):
        return super().__new__(cls, (int(r) for r in revs))

    def __or__(self, other: "Token") -> "Token":
        if len(other) != len(self):
            raise InvalidInput("tokens of different shard counts", InvalidInput.code,
                               "WARDEN_EINVAL")
        return Token(max(a, b) for a, b in zip(self, other))

    def __repr__(self) -> str:
        return f"Token({list(self)})"


def _ns_under(ns: str, prefix: str) -> bool:
    p = prefix.rstrip("/")
    return p == "" or ns == p or ns.startswith(p + "/")


def shard_of(doc_id: str, namespace: Optional[str], nshards: int,
             namespace_shards: Optional[Mapping[str, Sequence[int]]] = None) -> int:
    """The shard of a document under the routing rule (module docstring)."""
    h = zlib.crc32(doc_id.encode("utf-8"))
    if namespace_shards:
        best = None
        for prefix, shards in namespace_shards.items():
            if _ns_under(namespace or "/", prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        if best is not None:
            group = list(namespace_shards[best])
            return group[h % len(group)]
    return h % nshards


def _strip_seq(h: Hit) -> Hit:
    md = dict(h.metadata)
    md.pop(SEQ_KEY, None)
    return Hit(h.doc_id, h.chunk, h.score, h.text, h.source, h.namespace, md,
               h.semantic_rank, h.lexical_rank)


def _write_json_atomic(path: str, obj: dict) -> None:
    tmp = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"
    with open(tmp, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ----------------------------------------------------------- worker side


class ShardServer:
    """A Dask actor holding one shard open on the worker it runs on.
    Called through the actor proxy; every method returns plain picklable
    values (Hits, ints, dicts).  Queries run on the worker's actor thread."""

    def __init__(self, path: str, index: int, create: Optional[dict] = None):
        self.path, self.index = path, index
        meta_path = os.path.join(path, SHARD_META)
        if create is not None:
            args = dict(create)
            meta = args.pop("meta")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Collection.create(path, **args).close()
            _write_json_atomic(meta_path, dict(meta, index=index, max_seq=0))
        with open(meta_path) as f:
            self.meta = json.load(f)
        if self.meta.get("index") != index:
            raise InvalidInput(f"{path}: holds shard {self.meta.get('index')}, not {index}",
                               InvalidInput.code, "WARDEN_EINVAL")
        self.col = Collection(path)
        self._lock = threading.Lock()
        from concurrent.futures import ThreadPoolExecutor
        self._pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                        thread_name_prefix="warden-shard")

    def info(self) -> dict:
        return {"index": self.index, "pid": os.getpid(), "path": self.path,
                "revision": self.col.revision, "max_seq": self.meta.get("max_seq", 0),
                "meta": self.meta}

    async def query(self, vector, kwargs: dict):
        # a coroutine, so Dask does not queue it behind the worker's single
        # actor thread: queries run on this shard's own pool, in parallel
        # (the GIL is released inside libwarden)
        import asyncio
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: self.col.query(vector, **kwargs))

    def upsert(self, docs: list, emb, max_seq: int) -> Revision:
        return self._bump(self.col.upsert(docs, emb), max_seq)

    def ingest_lines(self, data: bytes, max_seq: int, keep_going: bool = False) -> Revision:
        fd, tmp = tempfile.mkstemp(prefix=".ingest-", suffix=".jsonl", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            rev = self.col.ingest([tmp], keep_going=keep_going)
        finally:
            os.unlink(tmp)
        return self._bump(rev, max_seq)

    def _bump(self, rev, max_seq):
        """Record max_seq (the largest _wseq written) in shard.json."""
        with self._lock:
            if max_seq > self.meta.get("max_seq", 0):
                self.meta["max_seq"] = max_seq
                _write_json_atomic(os.path.join(self.path, SHARD_META), self.meta)
        return rev

    def sync_file(self, kind: str, data: bytes) -> Revision:
        """acl_sync / principals_sync from the file's bytes."""
        fd, tmp = tempfile.mkstemp(prefix=f".{kind}-", suffix=".jsonl", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return getattr(self.col, kind)(tmp)
        finally:
            os.unlink(tmp)

    def call(self, name: str, *args, **kwargs):
        if name not in ("delete", "set_acl", "set_groups", "grant_add", "grant_remove",
                        "stats", "get_acl", "get_groups", "grants", "check", "export",
                        "index_build", "set_resolver"):
            raise InvalidInput(f"shard call {name!r} not allowed", InvalidInput.code,
                               "WARDEN_EINVAL")
        if name == "stats":
            return self.col.stats()
        return getattr(self.col, name)(*args, **kwargs)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.col.close()


def _scan_root(root: str) -> list:
    """On a worker: the shard directories under root it can see."""
    out = []
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return out
    for n in names:
        p = os.path.join(root, n, SHARD_META)
        if n.startswith("shard-") and os.path.exists(p):
            try:
                with open(p) as f:
                    out.append((os.path.join(root, n), json.load(f)))
            except (OSError, ValueError):
                continue
    return out


def _shard_dir(root: str, i: int) -> str:
    return os.path.join(root, f"shard-{i:03d}")


# ----------------------------------------------------------- client side


class ShardedCollection:
    """One logical warden collection sharded over Dask workers.

    ``ShardedCollection.create(client, root, shards=4, dim=384,
    metric="cosine")`` makes the shards (shard i on worker i mod W);
    ``ShardedCollection(client, root)`` reopens them where the workers hold
    them.  ``root`` is a directory on the workers' disks.  The API follows
    warden.Collection (see the module docstring for routing, ordering,
    tokens and failures)."""

    def __init__(self, client, root: str, *, timeout: float = 60.0,
                 _placement: Optional[Dict[int, str]] = None):
        self.client, self.root, self.timeout = client, root, timeout
        self._futures: Dict[int, Any] = {}
        self._actors: Dict[int, Any] = {}
        self._workers: Dict[int, str] = {}
        self._seq_lock = threading.Lock()
        found = self._find_shards()
        if not found:
            raise NotFound(f"{root}: no shards found on any worker", NotFound.code,
                           "WARDEN_ENOTFOUND")
        meta = next(iter(found.values()))[0][1]
        self.nshards = int(meta["shards"])
        self.namespace_shards = meta.get("namespace_shards") or None
        self.dim, self.metric = int(meta["dim"]), meta["metric"]
        missing = [i for i in range(self.nshards) if i not in found]
        if missing:
            raise ShardUnavailable(f"{root}: shards {missing} are on no live worker", missing)
        placement = _placement or self._place(found)
        for i in range(self.nshards):
            self._open_shard(i, placement[i])
        infos = self._each(lambda a: a.info(), range(self.nshards))
        self._last_seq = max(x["max_seq"] for x in infos.values())

    # ---- placement and plumbing

    def _find_shards(self) -> Dict[int, List[Tuple[str, dict]]]:
        # a worker that just died may still be listed: skip what does not answer
        seen = self.client.run(_scan_root, self.root, on_error="ignore")
        found: Dict[int, List[Tuple[str, dict]]] = {}
        for addr, items in seen.items():
            for path, meta in items:
                found.setdefault(int(meta["index"]), []).append((addr, meta))
        return found

    def _place(self, found) -> Dict[int, str]:
        workers = sorted(self.client.scheduler_info()["workers"])
        load = {w: 0 for w in workers}
        placement = {}
        for i in sorted(found):
            holders = [a for a, _ in found[i]]
            pref = workers[i % len(workers)] if workers else None
            if pref in holders:
                w = pref
            else:
                w = min(holders, key=lambda a: (load.get(a, 0), a))
            placement[i] = w
            load[w] = load.get(w, 0) + 1
        return placement

    def _open_shard(self, i: int, worker: str, create: Optional[dict] = None) -> None:
        fut = self.client.submit(ShardServer, _shard_dir(self.root, i), i, create,
                                 actor=True, workers=[worker], allow_other_workers=False,
                                 pure=False, key=f"warden-shard-{i}-{time.time_ns()}")
        actor = fut.result(timeout=self.timeout)
        self._futures[i], self._actors[i], self._workers[i] = fut, actor, worker

    def _each(self, fn, shards: Iterable[int], *, partial: bool = False):
        """Run fn(actor) on the shards in parallel; {shard: result}.  warden
        errors from a shard are raised as they are; a shard that cannot be
        reached raises ShardUnavailable (or, with partial, is left out)."""
        pending = {}
        down: Dict[int, BaseException] = {}
        for i in shards:
            try:
                pending[i] = fn(self._actors[i])
            except Exception as e:  # the call could not even be sent
                down[i] = e
        out, warden_err = {}, None
        for i, f in pending.items():
            try:
                out[i] = f.result(timeout=self.timeout)
            except Error as e:
                warden_err = warden_err or (i, e)
            except Exception as e:
                down[i] = e
        if warden_err is not None:
            raise warden_err[1]
        if down and not partial:
            raise ShardUnavailable(
                f"shard(s) {sorted(down)} unavailable: "
                + "; ".join(f"{i}: {type(e).__name__}: {e}" for i, e in sorted(down.items())),
                sorted(down), list(down.values()))
        return (out, sorted(down)) if partial else out

    def _write(self, fn, shards: Iterable[int], renumber=None) -> "Token":
        shards = sorted(set(shards))
        pending, failed = {}, {}
        for i in shards:
            try:
                pending[i] = fn(i, self._actors[i])
            except Exception as e:
                failed[i] = e
        revs = [0] * self.nshards
        for i, f in pending.items():
            try:
                revs[i] = int(f.result(timeout=self.timeout))
            except Exception as e:
                if renumber is not None and isinstance(e, Error):
                    renumber(i, e)
                failed[i] = e
        tok = Token(revs)
        if failed:
            first = next(iter(failed.values()))
            if isinstance(first, Error) and len(failed) == len(shards):
                raise first  # nothing committed: the shard's own error
            raise ShardWriteError(
                f"write failed on shard(s) {sorted(failed)} (committed on "
                f"{[i for i in shards if i not in failed]}): "
                + "; ".join(f"{i}: {type(e).__name__}: {e}" for i, e in sorted(failed.items())),
                tok, failed)
        return tok

    def _next_seqs(self, n: int) -> List[int]:
        with self._seq_lock:
            start = max(self._last_seq + 1, time.time_ns() // 1000)
            self._last_seq = start + n - 1
        return list(range(start, start + n))

    def shard_for(self, doc_id: str, namespace: Optional[str] = None) -> int:
        """The shard a document with this id and namespace lives on."""
        return shard_of(doc_id, namespace, self.nshards, self.namespace_shards)

    def _shards_for_namespaces(self, namespaces: Optional[Sequence[str]]) -> List[int]:
        """The shards that can hold a document visible under these query
        namespaces.  A query prefix q sees documents routed by a mapped
        prefix p when p is under q or q under p; when q is under no mapped
        prefix it may also see hash-routed documents, which can be on any
        shard."""
        if not self.namespace_shards or not namespaces:
            return list(range(self.nshards))
        out = set()
        for q in namespaces:
            if not any(_ns_under(q, p) for p in self.namespace_shards):
                return list(range(self.nshards))
            for p, group in self.namespace_shards.items():
                if _ns_under(q, p) or _ns_under(p, q):
                    out.update(group)
        return sorted(out)

    # ---- create / open / close

    @classmethod
    def create(cls, client, root: str, shards: int = 4, dim: Optional[int] = None,
               metric: str = "cosine", *, config: Optional[str] = None,
               namespace_shards: Optional[Mapping[str, Sequence[int]]] = None,
               timeout: float = 60.0) -> "ShardedCollection":
        """Create ``shards`` empty shards under ``root`` (on the workers'
        disks; shard i on worker i mod W) and open them."""
        if not isinstance(shards, int) or shards < 1:
            raise InvalidInput("shards must be >= 1", InvalidInput.code, "WARDEN_EINVAL")
        ns_map = None
        if namespace_shards:
            ns_map = {}
            for p, group in namespace_shards.items():
                g = [int(x) for x in group]
                if not g or any(not 0 <= x < shards for x in g):
                    raise InvalidInput(f"namespace_shards[{p!r}]: shard indexes must be in "
                                       f"0..{shards - 1}", InvalidInput.code, "WARDEN_EINVAL")
                ns_map[p] = g
        if config is not None and dim is None:
            import yaml  # python3-yaml; only to read the dimension of a config
            with open(config) as f:
                y = yaml.safe_load(f)
            dim, metric = int(y["dimension"]), y.get("metric", metric)
        if not dim:
            raise InvalidInput("create: dim (or config) is required", InvalidInput.code,
                               "WARDEN_EINVAL")
        workers = sorted(client.scheduler_info()["workers"])
        if not workers:
            raise ShardUnavailable("create: the Dask cluster has no workers")
        if any(client.run(_scan_root, root, on_error="ignore").values()):
            from .errors import AlreadyExists
            raise AlreadyExists(f"{root}: already holds shards", AlreadyExists.code,
                                "WARDEN_EEXIST")
        meta = {"shards": shards, "dim": int(dim), "metric": metric,
                "namespace_shards": ns_map, "routing": "crc32(doc_id) % shards"}
        self = cls.__new__(cls)
        self.client, self.root, self.timeout = client, root, timeout
        self._futures, self._actors, self._workers = {}, {}, {}
        self._seq_lock = threading.Lock()
        self.nshards, self.namespace_shards = shards, ns_map
        self.dim, self.metric = int(dim), metric
        self._last_seq = 0
        for i in range(shards):
            create = {"dim": int(dim), "metric": metric, "config": config, "meta": meta}
            self._open_shard(i, workers[i % len(workers)], create)
        return self

    def close(self) -> None:
        """Close every reachable shard and release the actors."""
        for i, a in list(self._actors.items()):
            try:
                a.close().result(timeout=self.timeout)
            except Exception:
                pass
        for f in self._futures.values():
            f.release()
        self._actors.clear()
        self._futures.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def placement(self) -> Dict[int, str]:
        """{shard: worker address} as currently placed."""
        return dict(self._workers)

    def recover(self) -> List[int]:
        """Re-open the shards whose actor no longer answers on a live worker
        that can see the shard's directory (its own disk after a restart, a
        shared disk, or a restored `warden backup`).  Returns the shards
        moved."""
        dead = []
        for i, a in self._actors.items():
            try:
                a.info().result(timeout=min(self.timeout, 10))
            except Exception:
                dead.append(i)
        if not dead:
            return []
        found = self._find_shards()
        workers = sorted(self.client.scheduler_info()["workers"])
        missing = [i for i in dead if i not in found]
        if missing:
            raise ShardUnavailable(f"shards {missing}: no live worker holds their directory",
                                   missing)
        load = {w: sum(1 for j, x in self._workers.items() if x == w and j not in dead)
                for w in workers}
        for i in dead:
            holders = [a for a, _ in found[i]]
            w = min(holders, key=lambda a: (load.get(a, 0), a))
            load[w] = load.get(w, 0) + 1
            try:
                self._futures[i].release()
            except Exception:
                pass
            self._open_shard(i, w)
        return dead

    def move(self, shard: int, worker: str) -> None:
        """Serve ``shard`` from ``worker`` (which must see its directory:
        a shared disk, or a copy made there from a backup).  The new actor
        opens the shard before the old one is released, so queries keep
        being answered."""
        found = self._find_shards()
        if worker not in [a for a, _ in found.get(shard, [])]:
            raise NotFound(f"shard {shard}: {worker} does not hold {_shard_dir(self.root, shard)}",
                           NotFound.code, "WARDEN_ENOTFOUND")
        old = self._futures.get(shard)
        old_actor = self._actors.get(shard)
        self._open_shard(shard, worker)
        if old_actor is not None:
            try:
                old_actor.close().result(timeout=self.timeout)
            except Exception:
                pass
        if old is not None:
            old.release()

    # ---- facts

    @property
    def revision(self) -> Token:
        """The newest committed revision of every shard (a Token)."""
        infos = self._each(lambda a: a.info(), range(self.nshards))
        return Token(infos[i]["revision"] for i in range(self.nshards))

    def stats(self) -> dict:
        """Summed documents and chunks, the revision token and each shard's
        own stats (``shards``: list, with its worker)."""
        st = self._each(lambda a: a.call("stats"), range(self.nshards))
        per = [dict(st[i], shard=i, worker=self._workers[i]) for i in range(self.nshards)]
        return {"shards": per, "nshards": self.nshards,
                "documents": sum(s.get("documents", 0) for s in per),
                "chunks": sum(s.get("chunks", 0) for s in per),
                "dimension": self.dim, "metric": self.metric,
                "revision": list(Token(s.get("revision", 0) for s in per))}

    # ---- writes

    def upsert(self, documents: Sequence[Mapping[str, Any]],
               embeddings=None, *, keep_going: bool = False) -> Token:
        """As Collection.upsert; each shard's part is one transaction.
        Returns the Token of the shards written."""
        docs = list(documents)
        nch = [len(d.get("chunks") or []) if isinstance(d, Mapping) else 0 for d in docs]
        emb = None
        if embeddings is not None:
            emb = np.ascontiguousarray(embeddings, dtype=np.float32)
            if emb.ndim != 2 or emb.shape[0] != sum(nch):
                raise InvalidInput(f"upsert: embeddings has shape {emb.shape}, the documents "
                                   f"have {sum(nch)} chunks", InvalidInput.code,
                                   "WARDEN_EINVAL")
        from . import _lib
        from .collection import _fill_doc
        for i, d in enumerate(docs):  # structure checked here, before any shard writes
            if not isinstance(d, Mapping):
                raise InvalidInput(f"docs[{i}]: expected a dict", InvalidInput.code,
                                   "WARDEN_EINVAL")
            _fill_doc(_lib.Doc(), d, i, [])
        seqs = self._next_seqs(len(docs))
        parts: Dict[int, Tuple[list, list]] = {}
        row = 0
        for i, d in enumerate(docs):
            if not isinstance(d, Mapping) or not isinstance(d.get("doc_id"), str):
                raise InvalidInput(f"docs[{i}].doc_id: required (a string)", InvalidInput.code,
                                   "WARDEN_EINVAL")
            md = dict(d.get("metadata") or {})
            if SEQ_KEY in md:
                raise InvalidInput(f"docs[{i}].metadata.{SEQ_KEY}: reserved by warden.cluster",
                                   InvalidInput.code, "WARDEN_EINVAL")
            md[SEQ_KEY] = seqs[i]
            s = self.shard_for(d["doc_id"], d.get("namespace"))
            p = parts.setdefault(s, ([], []))
            p[0].append(dict(d, metadata=md))
            p[1].extend(range(row, row + nch[i]))
            row += nch[i]
        top = seqs[-1] if seqs else 0
        gidx: Dict[int, List[int]] = {}
        for i, d in enumerate(docs):
            gidx.setdefault(self.shard_for(d["doc_id"], d.get("namespace")), []).append(i)

        def renumber(shard: int, e: Error) -> None:
            # the shard names docs[J] of its part: say which input document
            import re
            msg = re.sub(r"docs\[(\d+)\]",
                         lambda m: f"docs[{gidx[shard][int(m.group(1))]}]"
                         if int(m.group(1)) < len(gidx[shard]) else m.group(0), e.message)
            e.message = msg
            e.args = (msg,)
        return self._write(lambda i, a: a.upsert(
            parts[i][0], emb[parts[i][1]] if emb is not None else None, top), parts, renumber)

    def ingest(self, paths: Union[str, Sequence[str]], *, keep_going: bool = False) -> Token:
        """Distributed ingest of JSON Lines files (read here, split by
        shard, each shard's part ingested by its worker in one
        transaction)."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        parts: Dict[int, List[bytes]] = {}
        lines = []
        for p in paths:
            with open(p, "rb") as f:
                for ln, raw in enumerate(f, 1):
                    if raw.strip():
                        lines.append((p, ln, raw))
        seqs = self._next_seqs(len(lines))
        for (p, ln, raw), seq in zip(lines, seqs):
            try:
                d = json.loads(raw)
                md = d.setdefault("metadata", {})
                if not isinstance(md, dict) or SEQ_KEY in md:
                    raise ValueError(f"metadata.{SEQ_KEY} is reserved")
                md[SEQ_KEY] = seq
                s = self.shard_for(d["doc_id"], d.get("namespace"))
            except (ValueError, KeyError, TypeError) as e:
                from .errors import InvalidData
                raise InvalidData(f"{p}:{ln}: {e}", InvalidData.code, "WARDEN_EDATA") from None
            parts.setdefault(s, []).append(json.dumps(d, ensure_ascii=False).encode() + b"\n")
        top = seqs[-1] if seqs else 0
        return self._write(lambda i, a: a.ingest_lines(b"".join(parts[i]), top, keep_going),
                           parts)

    def ingest_numpy(self, meta_jsonl: str, vectors: Union[str, np.ndarray],
                     batch: int = 10000) -> Token:
        """Distributed ingest of documents without embeddings (JSON Lines,
        as upsert's dicts) and their rows in a .npy file (or array), one
        row per chunk in order; sent in batches of ``batch`` documents."""
        rows = np.load(vectors, mmap_mode="r") if isinstance(vectors, str) else vectors
        tok = Token([0] * self.nshards)
        docs: list = []
        r0 = r = 0
        with open(meta_jsonl) as f:
            for line in f:
                if not line.strip():
                    continue
                d = json.loads(line)
                docs.append(d)
                r += len(d.get("chunks") or [])
                if len(docs) >= batch:
                    tok = tok | self.upsert(docs, rows[r0:r])
                    docs, r0 = [], r
        if docs:
            tok = tok | self.upsert(docs, rows[r0:r])
        if r != len(rows):
            raise InvalidInput(f"{meta_jsonl}: {r} chunks, {len(rows)} rows", InvalidInput.code,
                               "WARDEN_EINVAL")
        return tok

    def delete(self, doc_ids: Union[str, Iterable[str]],
               namespaces: Optional[Mapping[str, str]] = None) -> Token:
        """Delete documents on their shards.  With namespace routing, give
        ``namespaces={doc_id: namespace}`` for documents in mapped
        namespaces, or the delete goes to every shard."""
        ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
        parts: Dict[int, List[str]] = {}
        for d in ids:
            for s in self._owners(d, (namespaces or {}).get(d)):
                parts.setdefault(s, []).append(d)
        return self._write(lambda i, a: a.call("delete", parts[i]), parts)

    def _owners(self, doc_id: str, namespace: Optional[str]) -> List[int]:
        if self.namespace_shards and namespace is None:
            return list(range(self.nshards))  # could be on any routing group
        return [self.shard_for(doc_id, namespace)]

    def set_acl(self, doc_id: str, allow: Optional[Sequence[str]] = None,
                deny: Optional[Sequence[str]] = None, *, namespace: Optional[str] = None) -> Token:
        """Replace a document's allow and/or deny list on its shard."""
        return self._write(lambda i, a: a.call("set_acl", doc_id, allow, deny),
                           self._owners(doc_id, namespace))

    def acl_sync(self, path: str) -> Token:
        """An ACL sync file split by shard; each shard's part is one
        transaction (unknown doc_ids are counted per shard)."""
        parts: Dict[int, List[bytes]] = {}
        with open(path, "rb") as f:
            for ln, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    d = json.loads(raw)["doc_id"]
                except (ValueError, KeyError, TypeError):
                    from .errors import InvalidData
                    raise InvalidData(f"{path}:{ln}: doc_id: expected a JSON object with a "
                                      "doc_id", InvalidData.code, "WARDEN_EDATA") from None
                for s in self._owners(d, None):
                    parts.setdefault(s, []).append(raw if raw.endswith(b"\n") else raw + b"\n")
        return self._write(lambda i, a: a.sync_file("acl_sync", b"".join(parts[i])), parts)

    def set_groups(self, principal: str, groups: Sequence[str]) -> Token:
        """Directory change: applied on every shard."""
        return self._write(lambda i, a: a.call("set_groups", principal, list(groups)),
                           range(self.nshards))

    def principals_sync(self, path: str) -> Token:
        """A principals file applied on every shard."""
        with open(path, "rb") as f:
            data = f.read()
        return self._write(lambda i, a: a.sync_file("principals_sync", data),
                           range(self.nshards))

    def grant_add(self, principal: str, prefix: str) -> Token:
        return self._write(lambda i, a: a.call("grant_add", principal, prefix),
                           range(self.nshards))

    def grant_remove(self, principal: str, prefix: str) -> Token:
        return self._write(lambda i, a: a.call("grant_remove", principal, prefix),
                           range(self.nshards))

    def set_resolver(self, fn) -> None:
        """Register fn (picklable; it runs on the workers) as every shard's
        resolver; None restores the configured one."""
        self._each(lambda a: a.call("set_resolver", fn), range(self.nshards))

    # ---- queries

    def query(self, vector, principal: Optional[str] = None, groups: Sequence[str] = (),
              k: int = 10, filter=None, namespaces: Optional[Sequence[str]] = None, *,
              min_revision: Union[Token, Sequence[int], int, None] = None,
              allow_partial: bool = False, **kwargs) -> Union[Hits, List[Hits]]:
        """As Collection.query, over every shard that can hold an allowed
        chunk; the answer is the exact merge of the shards' top-k (ordered
        by score, then global insertion).  ``min_revision``: a Token (shard
        i must be at least token[i], else StaleSnapshot).  The hits carry
        ``.revision`` (the Token of the snapshots read), ``.partial`` and
        ``.missing_shards``; a shard that cannot be reached raises
        ShardUnavailable unless ``allow_partial``."""
        if min_revision in (None, 0):
            mins = [0] * self.nshards
        elif isinstance(min_revision, int):
            raise InvalidInput("min_revision: pass the Token a write returned (one revision "
                               "per shard)", InvalidInput.code, "WARDEN_EINVAL")
        else:
            mins = list(min_revision)
            if len(mins) != self.nshards:
                raise InvalidInput(f"min_revision: a token of {len(mins)} shards for "
                                   f"{self.nshards}", InvalidInput.code, "WARDEN_EINVAL")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 10000:
            raise InvalidInput("query: k must be 1..10000", InvalidInput.code, "WARDEN_EINVAL")
        q = vector
        if q is not None and not isinstance(q, str):
            q = np.ascontiguousarray(q, dtype=np.float32)
        base = dict(principal=principal, groups=list(groups or []), k=k, filter=filter,
                    namespaces=namespaces, **kwargs)
        shards = self._shards_for_namespaces(namespaces)
        pend_kw = {i: dict(base, min_revision=mins[i]) for i in shards}
        # one call per shard, sent through its actor
        futs = {}
        down: Dict[int, BaseException] = {}
        for i in shards:
            try:
                futs[i] = self._actors[i].query(q, pend_kw[i])
            except Exception as e:
                down[i] = e
        answers = {}
        for i, f in futs.items():
            try:
                answers[i] = f.result(timeout=self.timeout)
            except Error:
                raise
            except Exception as e:
                down[i] = e
        missing = sorted(down)
        if missing and not allow_partial:
            raise ShardUnavailable(
                f"query: shard(s) {missing} unavailable (answer would be incomplete): "
                + "; ".join(f"{i}: {type(e).__name__}: {e}" for i, e in sorted(down.items())),
                missing, list(down.values()))
        return self._merge(answers, k, missing, batch=isinstance(q, np.ndarray) and q.ndim == 2)

    def _merge(self, answers: Dict[int, Any], k: int, missing: List[int], batch: bool):
        lower_better = self.metric == "l2"
        revs = [0] * self.nshards
        for i, a in answers.items():
            revs[i] = (a[0].revision if batch and a else getattr(a, "revision", 0))
        tok = Token(revs)
        rows = max((len(a) for a in answers.values()), default=0) if batch else 1
        out = []
        for r in range(rows):
            cands = []
            degraded = False
            for i, a in answers.items():
                hits = a[r] if batch else a
                degraded = degraded or hits.degraded
                for h in hits:
                    seq = h.metadata.get(SEQ_KEY, 0)
                    cands.append(((h.score if lower_better else -h.score), seq, h.chunk, h))
            cands.sort(key=lambda t: t[:3])
            hs = ClusterHits([_strip_seq(t[3]) for t in cands[:k]], tok, degraded, None)
            hs.partial = bool(missing)
            hs.missing_shards = list(missing)
            out.append(hs)
        if batch:
            return out
        return out[0] if out else ClusterHits([], tok, False, None, bool(missing), missing)


class ClusterHits(Hits):
    """Hits of a sharded query: ``.revision`` is a Token; ``.partial`` is
    True when shards were missing (named in ``.missing_shards``)."""

    def __init__(self, hits=(), revision=None, degraded=False, plan=None, partial=False,
                 missing_shards=()):
        super().__init__(hits, revision, degraded, plan)
        self.partial = partial
        self.missing_shards = list(missing_shards)

    def __reduce__(self):
        return (self.__class__, (list(self), self.revision, self.degraded, self.plan,
                                 self.partial, self.missing_shards))
