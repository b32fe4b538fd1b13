"""warden.Collection: one open collection (a directory), over libwarden.

Threading: one Collection serves queries from any number of Python threads
at once; the GIL is released for the whole C call (ctypes.CDLL), so N
threads query in parallel on N cores.  Writes are serialized by LMDB's
writer lock (across threads and processes).  close() and set_resolver()
wait for the calls running on the handle to finish and hold new ones back,
because the C library forbids both while queries run.

Zero copies: a query or upsert matrix that is already a C-contiguous
float32 NumPy array is handed to C as it is (its buffer pointer); anything
else is converted once with numpy.ascontiguousarray(dtype=float32).
"""
from __future__ import annotations

import ctypes
import json
import os
import re
import threading
from ctypes import byref, c_char_p, c_float, c_size_t, c_uint64, c_ubyte, c_void_p
from dataclasses import dataclass, field
from typing import (Any, Callable, Iterable, List, Mapping, NamedTuple,
                    Optional, Sequence, Union)

import numpy as np

from . import _lib as L
from .errors import Error, InvalidData, InvalidInput, from_code

lib = L.lib

__all__ = ["Collection", "Hit", "Hits", "Resource", "Revision",
           "STRATEGIES", "MODES", "UPSERT_PATH"]

STRATEGIES = {"auto": 0, "exact": 1, "ann": 2}
MODES = {"semantic": 0, "lexical": 1, "hybrid": 2}
METRICS = {0: "cosine", 1: "l2", 2: "ip"}

#: "typed" when libwarden has warden_upsert (documents as structs, the
#: embedding matrix passed by pointer); "json-fallback" when the library
#: predates it and Collection.upsert goes through warden_ingest_buffer.
UPSERT_PATH = "typed" if L.HAVE_UPSERT else "json-fallback"

Vector = Union[np.ndarray, Sequence[float], Sequence[Sequence[float]]]
Filter = Union[Mapping[str, Any], str, None]


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved chunk.  ``score`` is the cosine similarity (cosine),
    inner product (ip) or squared L2 distance (l2, lower is better)."""
    doc_id: str
    chunk: int
    score: float
    text: str
    source: str
    namespace: str
    metadata: dict = field(default_factory=dict)
    semantic_rank: int = 0  #: 1-based rank on the vector side (hybrid); 0 = none
    lexical_rank: int = 0   #: 1-based rank on the lexical side (hybrid); 0 = none


class Hits(list):
    """The hits of one query, best first (a list of Hit), plus:

    ``revision``: the revision of the snapshot the query read;
    ``degraded``: True when a candidate was dropped because the resolver
    failed (not because it said no): the answer may hold fewer than k;
    ``plan``: the planner's explanation (dict) when explain=True, else None.
    """
    revision: int
    degraded: bool
    plan: Optional[dict]

    def __init__(self, hits=(), revision: int = 0, degraded: bool = False,
                 plan: Optional[dict] = None):
        super().__init__(hits)
        self.revision = revision
        self.degraded = degraded
        self.plan = plan

    def __reduce__(self):  # picklable with its attributes (Dask)
        return (self.__class__, (list(self), self.revision, self.degraded, self.plan))


class Resource(NamedTuple):
    """One item of a resolver batch: the candidate's document and source."""
    doc_id: str
    source: str


class Revision(int):
    """The revision a write committed (an int), with the write's report:
    ``report`` is a dict (documents/replaced/chunks/bad_lines/errors for
    ingest and upsert; changed/unchanged/unknown for the other writes)."""
    report: dict

    def __new__(cls, value: int, report: Optional[dict] = None):
        self = super().__new__(cls, value)
        self.report = report or {}
        return self

    def __reduce__(self):
        return (self.__class__, (int(self), self.report))


Resolver = Callable[[str, List[str], List[Resource]], Sequence[bool]]


def _enc(s: Optional[str], what: str) -> Optional[bytes]:
    if s is None:
        return None
    if not isinstance(s, str):
        raise InvalidInput(f"{what}: expected a string, got {type(s).__name__}",
                           InvalidInput.code, "WARDEN_EINVAL")
    return s.encode("utf-8")


def _strlist(items, what: str) -> list:
    if items is None:
        return None
    if isinstance(items, (str, bytes)):
        raise InvalidInput(f"{what}: expected a list of strings, got a string",
                           InvalidInput.code, "WARDEN_EINVAL")
    out = list(items)
    for i, s in enumerate(out):
        if not isinstance(s, str):
            raise InvalidInput(f"{what}[{i}]: expected a string, got {type(s).__name__}",
                               InvalidInput.code, "WARDEN_EINVAL")
    return out


def as_f32_rows(x: Vector, dim: int, what: str = "vector") -> np.ndarray:
    """x as a C-contiguous float32 array (1-D of dim, or 2-D of rows x dim).
    A C-contiguous float32 ndarray is returned as it is: no copy."""
    if isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous:
        a = x
    else:
        try:
            a = np.ascontiguousarray(x, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise InvalidData(f"{what}: not a numeric array ({e})", InvalidData.code,
                              "WARDEN_EDATA") from None
    if a.ndim not in (1, 2) or a.shape[-1] != dim:
        raise InvalidData(f"{what}: shape {a.shape} does not match the collection's "
                          f"dimension {dim} (expected ({dim},) or (n, {dim}))",
                          InvalidData.code, "WARDEN_EDATA")
    return a


class _Guard:
    """Counts the calls running on a handle; close() and set_resolver()
    take it exclusively (they wait for running calls and hold new ones)."""
    __slots__ = ("_cv", "_n", "_excl", "closed")

    def __init__(self):
        self._cv = threading.Condition(threading.Lock())
        self._n = 0
        self._excl = False
        self.closed = False

    def enter(self):
        with self._cv:
            while self._excl:
                self._cv.wait()
            if self.closed:
                raise InvalidInput("the collection is closed", InvalidInput.code,
                                   "WARDEN_EINVAL")
            self._n += 1

    def leave(self):
        with self._cv:
            self._n -= 1
            if self._n == 0 and self._excl:
                self._cv.notify_all()

    def exclusive_begin(self):
        with self._cv:
            while self._excl:
                self._cv.wait()
            self._excl = True
            while self._n:
                self._cv.wait()

    def exclusive_end(self):
        with self._cv:
            self._excl = False
            self._cv.notify_all()


class Collection:
    """An open warden collection.

    ``Collection(path)`` opens an existing collection (``read_only=True``
    for queries only); ``Collection.create(path, dim=..., metric=...)`` or
    ``Collection.create(path, config="warden.yaml")`` makes a new one.  Also
    a context manager (``with Collection(path) as col: ...`` closes it).

    Every write returns the revision it committed (a :class:`Revision`);
    every query reports the revision of the snapshot it read.  Errors are
    subclasses of :class:`warden.Error` carrying the library's message.
    """

    def __init__(self, path: Union[str, os.PathLike], *, read_only: bool = False):
        self.path = os.fspath(path)
        self._db = None
        self._guard = _Guard()
        self._resolver_cb = None
        #: the last exception a Python resolver raised (it counted as a deny)
        self.last_resolver_error: Optional[BaseException] = None
        err = ctypes.create_string_buffer(1024)
        h = c_void_p()
        oo = L.OpenOpts(1 if read_only else 0)
        rc = lib.warden_open(self.path.encode(), byref(oo), byref(h), err, len(err))
        if rc:
            raise from_code(rc, err.value.decode("utf-8", "replace"), self._strerror(rc))
        self._db = h
        self.dim: int = lib.warden_dimension(h)  #: embedding dimension
        self.metric: str = METRICS.get(lib.warden_metric(h), "?")  #: cosine | l2 | ip

    @classmethod
    def create(cls, path: Union[str, os.PathLike], dim: Optional[int] = None,
               metric: Optional[str] = None, *,
               config: Optional[Union[str, os.PathLike]] = None) -> "Collection":
        """Create an empty collection in ``path`` and open it.  Give ``dim``
        (and ``metric``: cosine | l2 | ip, default cosine) or ``config``, a
        warden.yaml to copy in; when both are given they must agree.
        Raises AlreadyExists when ``path`` already holds a collection."""
        if isinstance(dim, os.PathLike) or (isinstance(dim, str) and config is None):
            config, dim = dim, None  # Collection.create(path, "warden.yaml")
        co = L.CreateOpts(int(dim or 0), _enc(metric, "metric"),
                          os.fsencode(config) if config is not None else None)
        err = ctypes.create_string_buffer(1024)
        rc = lib.warden_create(os.fsencode(path), byref(co), err, len(err))
        if rc:
            raise from_code(rc, err.value.decode("utf-8", "replace"), cls._strerror(rc))
        return cls(path)

    # ----------------------------------------------------------- plumbing

    @staticmethod
    def _strerror(rc: int) -> str:
        s = lib.warden_strerror(rc)
        return s.decode() if s else ""

    def _fail(self, rc: int) -> Error:
        msg = lib.warden_errmsg(self._db)  # per thread: read right after the call
        return from_code(rc, msg.decode("utf-8", "replace") if msg else "",
                         self._strerror(rc))

    def _call(self, fn, *args):
        g = self._guard
        g.enter()
        try:
            rc = fn(self._db, *args)
            if rc:
                raise self._fail(rc)
        finally:
            g.leave()

    def close(self) -> None:
        """Close the handle (waits for calls running on it).  Idempotent."""
        g = self._guard
        if g.closed:
            return
        g.exclusive_begin()
        try:
            if not g.closed:
                g.closed = True
                lib.warden_close(self._db)
                self._db = None
        finally:
            g.exclusive_end()

    def __enter__(self) -> "Collection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            if self._db is not None and not self._guard.closed:
                self._guard.closed = True
                lib.warden_close(self._db)
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._guard.closed else f"dim={self.dim}, metric={self.metric!r}"
        return f"<warden.Collection {self.path!r} {state}>"

    # ---------------------------------------------------------- facts

    @property
    def revision(self) -> int:
        """The newest committed revision (reads a fresh snapshot)."""
        out = c_uint64()
        self._call(lib.warden_revision, byref(out))
        return out.value

    def _json_out(self, fn, *args) -> Any:
        p = c_void_p()
        self._call(fn, *args, byref(p))
        return json.loads(L.take_string(p))

    def stats(self) -> dict:
        """Collection facts: documents, chunks, dimension, metric, revision,
        index state, ..."""
        return self._json_out(lib.warden_stats)

    def check(self) -> dict:
        """Verify internal consistency; returns the report (``"ok"`` is True
        when clean).  Damage is reported in the dict, not raised."""
        g = self._guard
        g.enter()
        try:
            p = c_void_p()
            rc = lib.warden_check(self._db, byref(p))
            if rc and rc != -30905:
                raise self._fail(rc)
            rep = json.loads(L.take_string(p)) if p.value else {}
            if isinstance(rep, dict):
                rep.setdefault("ok", rc == 0)
            return rep
        finally:
            g.leave()

    def export(self, path: Optional[Union[str, os.PathLike]] = None) -> Optional[str]:
        """Every document as JSON Lines that ``ingest`` reads back (ordered by
        doc_id).  Written to ``path`` when given, else returned as a str."""
        parts: List[bytes] = []

        def write(_ctx, buf, n):
            parts.append(ctypes.string_at(buf, n))
            return 0
        cb = L.WRITE_FN(write)
        self._call(lib.warden_export, cb, None)
        data = b"".join(parts)
        if path is None:
            return data.decode("utf-8")
        with open(path, "wb") as f:
            f.write(data)
        return None

    def embed(self, text: str) -> np.ndarray:
        """The collection's embedder applied to ``text`` (float32, dim).
        InvalidInput when the collection has no embedder."""
        out = np.empty(self.dim, dtype=np.float32)
        self._call(lib.warden_embed, _enc(text, "text"),
                   out.ctypes.data_as(ctypes.POINTER(c_float)))
        return out

    def index_build(self, rebuild: bool = False) -> dict:
        """Build or update the ANN index (DIR/index/ivf.wdx); returns the report."""
        class IndexOpts(ctypes.Structure):  # warden.h's warden_index_opts, whole
            _fields_ = [("rebuild", ctypes.c_int), ("progress", c_void_p),
                        ("progress_ctx", c_void_p), ("phase_progress", c_void_p)]
        o = IndexOpts(1 if rebuild else 0, None, None, None)
        return self._json_out(lib.warden_index_build, ctypes.cast(byref(o), c_void_p))

    # ---------------------------------------------------------- writes

    @staticmethod
    def _wrev(rep: L.WriteReport) -> Revision:
        return Revision(rep.revision, {"changed": rep.changed, "unchanged": rep.unchanged,
                                       "unknown": rep.unknown})

    @staticmethod
    def _irev(rep: L.IngestReport) -> Revision:
        errors = L.take_string(c_void_p(rep.errors)) if rep.errors else ""
        return Revision(rep.revision, {"documents": rep.documents, "replaced": rep.replaced,
                                       "chunks": rep.chunks, "bad_lines": rep.bad_lines,
                                       "errors": errors.split("\n") if errors else []})

    def upsert(self, documents: Sequence[Mapping[str, Any]],
               embeddings: Optional[Vector] = None, *, keep_going: bool = False) -> Revision:
        """Insert or replace documents (by doc_id) in one transaction.

        ``documents``: dicts shaped like ingest lines without embeddings:
        ``{"doc_id", "source", "namespace"?, "metadata"?: {key: str | int |
        float | bool | [str]}, "acl"?: {"allow": [...], "deny": [...]},
        "chunks": [{"text": ...} or "text", ...]}``.
        ``embeddings``: a 2-D float array, one row per chunk in document and
        chunk order (None when the collection has an embedder).  Bad input
        raises InvalidData naming ``docs[I].FIELD`` and commits nothing,
        unless ``keep_going`` (then the good documents are committed and the
        bad ones listed in ``.report["errors"]``).  Returns the revision."""
        if isinstance(documents, Mapping):
            raise InvalidInput("upsert: documents must be a list of dicts, got one dict",
                               InvalidInput.code, "WARDEN_EINVAL")
        docs = list(documents)
        nchunks = []
        for i, d in enumerate(docs):
            if not isinstance(d, Mapping):
                raise InvalidData(f"docs[{i}]: expected a dict, got {type(d).__name__}",
                                  InvalidData.code, "WARDEN_EDATA")
            ch = d.get("chunks")
            if not isinstance(ch, (list, tuple)):
                raise InvalidData(f"docs[{i}].chunks: expected a list of chunks",
                                  InvalidData.code, "WARDEN_EDATA")
            nchunks.append(len(ch))
        total = sum(nchunks)
        if embeddings is None and total and all(
                isinstance(c, Mapping) and "embedding" in c for d in docs for c in d["chunks"]):
            embeddings = [c["embedding"] for d in docs for c in d["chunks"]]
        emb = None
        if embeddings is not None:
            emb = as_f32_rows(embeddings, self.dim, "embeddings")
            if emb.ndim == 1:
                emb = emb.reshape(1, -1)
            if emb.shape[0] != total:
                raise InvalidInput(f"upsert: embeddings has {emb.shape[0]} rows, the "
                                   f"documents have {total} chunks", InvalidInput.code,
                                   "WARDEN_EINVAL")
        if not docs:
            return Revision(self.revision, {"documents": 0, "replaced": 0, "chunks": 0,
                                            "bad_lines": 0, "errors": []})
        if L.HAVE_UPSERT:
            return self._upsert_typed(docs, emb, keep_going)
        return self._upsert_json(docs, emb, keep_going)

    def _upsert_typed(self, docs, emb, keep_going) -> Revision:
        keep: list = []
        arr = (L.Doc * len(docs))()
        for i, d in enumerate(docs):
            _fill_doc(arr[i], d, i, keep)
        rep = L.IngestReport()
        uo = L.UpsertOpts(1 if keep_going else 0, None, None)
        ptr = emb.ctypes.data_as(ctypes.POINTER(c_float)) if emb is not None else None
        nrows = emb.shape[0] if emb is not None else 0
        self._call(lib.warden_upsert, arr, len(docs), ptr, nrows, byref(uo), byref(rep))
        return self._irev(rep)

    def _upsert_json(self, docs, emb, keep_going) -> Revision:
        # FALLBACK (only while libwarden lacks warden_upsert): the same
        # documents as JSON Lines through warden_ingest_buffer.
        lines = []
        row = 0
        for i, d in enumerate(docs):
            line = {k: v for k, v in d.items() if k != "chunks"}
            chunks = []
            for c in d["chunks"]:
                text = c.get("text") if isinstance(c, Mapping) else c
                cj = {"text": text}
                if emb is not None:
                    cj["embedding"] = emb[row].tolist()
                row += 1
                chunks.append(cj)
            line["chunks"] = chunks
            try:
                lines.append(json.dumps(line, ensure_ascii=False, allow_nan=False))
            except (TypeError, ValueError) as e:
                raise InvalidData(f"docs[{i}]: {e}", InvalidData.code, "WARDEN_EDATA") from None
        buf = ("\n".join(lines) + "\n").encode("utf-8")
        rep = L.IngestReport()
        io = L.IngestOpts(1 if keep_going else 0, None, None)
        try:
            self._call(lib.warden_ingest_buffer, b"docs", buf, len(buf), byref(io), byref(rep))
        except Error as e:  # "docs:LINE: field: reason" -> "docs[I].field: reason"
            m = re.match(r"docs:(\d+): ([^:]+): (.*)", e.message, re.S)
            if m:
                e.message = f"docs[{int(m.group(1)) - 1}].{m.group(2)}: {m.group(3)}"
                e.args = (e.message,)
            raise
        rev = self._irev(rep)
        rev.report["errors"] = [re.sub(r"^docs:(\d+): ([^:]+):",
                                       lambda m: f"docs[{int(m.group(1)) - 1}].{m.group(2)}:", x)
                                for x in rev.report["errors"]]
        return rev

    def ingest(self, paths: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
               *, keep_going: bool = False) -> Revision:
        """Ingest JSON Lines files (SPEC section 3) in one transaction."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        enc = [os.fsencode(p) for p in paths]
        arr = (c_char_p * max(1, len(enc)))(*enc)
        rep = L.IngestReport()
        io = L.IngestOpts(1 if keep_going else 0, None, None)
        self._call(lib.warden_ingest, arr, len(enc), byref(io), byref(rep))
        return self._irev(rep)

    def delete(self, doc_ids: Union[str, Iterable[str]]) -> Revision:
        """Delete documents; unknown ids are counted in ``.report["unknown"]``."""
        ids = [doc_ids] if isinstance(doc_ids, str) else _strlist(doc_ids, "doc_ids")
        arr, _k = L.strarray(ids)
        rep = L.WriteReport()
        self._call(lib.warden_delete, arr, len(ids), byref(rep))
        return self._wrev(rep)

    def get_acl(self, doc_id: str) -> dict:
        """{"doc_id", "allow", "deny"}; NotFound for an unknown document."""
        return self._json_out(lib.warden_acl_get, _enc(doc_id, "doc_id"))

    def set_acl(self, doc_id: str, allow: Optional[Sequence[str]] = None,
                deny: Optional[Sequence[str]] = None) -> Revision:
        """Replace a document's allow and/or deny list (None keeps that list,
        [] empties it).  Vectors are not touched."""
        a, ka = L.strarray(_strlist(allow, "allow"))
        d, kd = L.strarray(_strlist(deny, "deny"))
        rep = L.WriteReport()
        self._call(lib.warden_acl_set, _enc(doc_id, "doc_id"), a, len(ka), d, len(kd),
                   byref(rep))
        return self._wrev(rep)

    def acl_sync(self, path: Union[str, os.PathLike]) -> Revision:
        """Apply an ACL sync file (JSON Lines {"doc_id","allow","deny"})."""
        rep = L.WriteReport()
        self._call(lib.warden_acl_sync, os.fsencode(path), None, byref(rep))
        return self._wrev(rep)

    def set_groups(self, principal: str, groups: Sequence[str]) -> Revision:
        """Set the groups ``principal`` belongs to in the collection's
        directory (replacing its list; [] removes the entry)."""
        g, kg = L.strarray(_strlist(groups, "groups"))
        rep = L.WriteReport()
        self._call(lib.warden_principal_set, _enc(principal, "principal"), g, len(kg),
                   byref(rep))
        return self._wrev(rep)

    def get_groups(self, principal: str) -> dict:
        """{"principal", "groups", "expanded"} (expanded: transitive closure)."""
        return self._json_out(lib.warden_principal_get, _enc(principal, "principal"))

    def principals_sync(self, path: Union[str, os.PathLike]) -> Revision:
        """Apply a principals file (JSON Lines {"principal","groups"})."""
        rep = L.WriteReport()
        self._call(lib.warden_principals_sync, os.fsencode(path), None, byref(rep))
        return self._wrev(rep)

    def grant_add(self, principal: str, prefix: str) -> Revision:
        """Let ``principal`` read every source starting with ``prefix``
        (resolver type grants)."""
        rep = L.WriteReport()
        self._call(lib.warden_grant_add, _enc(principal, "principal"),
                   _enc(prefix, "prefix"), byref(rep))
        return self._wrev(rep)

    def grant_remove(self, principal: str, prefix: str) -> Revision:
        """Remove a grant."""
        rep = L.WriteReport()
        self._call(lib.warden_grant_remove, _enc(principal, "principal"),
                   _enc(prefix, "prefix"), byref(rep))
        return self._wrev(rep)

    def grants(self) -> list:
        """The grants: [{"principal", "prefix"}, ...]."""
        return self._json_out(lib.warden_grant_list).get("grants", [])

    # ---------------------------------------------------------- resolver

    def set_resolver(self, fn: Optional[Resolver]) -> None:
        """Use ``fn(principal, groups, resources) -> list[bool]`` as this
        handle's source-permission resolver (``resources``: Resource items
        with .doc_id and .source, one batch of candidates).  It runs on the
        query threads (holding the GIL while it runs) and must be
        thread-safe.  An exception, a result of the wrong length or an item
        that is not True/False (e.g. None, "could not decide") fails the
        batch: every resource in it is denied and the answer is marked
        degraded.  ``set_resolver(None)`` restores the one configured in
        warden.yaml.  Waits for running queries to finish."""
        if fn is None:
            cb = L.RESOLVER_FN()
        else:
            if not callable(fn):
                raise InvalidInput("set_resolver: expected a callable or None",
                                   InvalidInput.code, "WARDEN_EINVAL")
            cb = L.RESOLVER_FN(self._make_trampoline(fn))
        g = self._guard
        g.exclusive_begin()
        try:
            if g.closed:
                raise InvalidInput("the collection is closed", InvalidInput.code,
                                   "WARDEN_EINVAL")
            rc = lib.warden_set_resolver(self._db, cb, None)
            if rc:
                raise self._fail(rc)
            self._resolver_cb = cb if fn is not None else None  # keep it alive
        finally:
            g.exclusive_end()

    def _make_trampoline(self, fn: Resolver):
        def trampoline(_ctx, principal, groups, ngroups, res, n, allowed):
            try:
                p = principal.decode("utf-8")
                gs = [groups[i].decode("utf-8") for i in range(ngroups)]
                items = [Resource(res[i].doc_id.decode("utf-8"),
                                  res[i].source.decode("utf-8")) for i in range(n)]
                out = list(fn(p, gs, items))
                if len(out) != n:
                    raise ValueError(f"resolver returned {len(out)} answers for {n} resources")
                vals = []
                for v in out:
                    if v is True or (type(v) is int and v == 1) or (
                            isinstance(v, np.bool_) and bool(v)):
                        vals.append(1)
                    elif v is False or (type(v) is int and v == 0) or isinstance(v, np.bool_):
                        vals.append(0)
                    else:
                        raise ValueError(f"resolver answer {v!r} is not True/False")
                for i, v in enumerate(vals):
                    allowed[i] = v
                return 0
            except BaseException as e:  # a failure is a deny, never an allow
                self.last_resolver_error = e
                return 1
        return trampoline

    # ---------------------------------------------------------- query

    def query(self, vector: Union[Vector, str, None], principal: Optional[str] = None,
              groups: Sequence[str] = (), k: int = 10, filter: Filter = None,
              namespaces: Optional[Sequence[str]] = None, *, min_revision: int = 0,
              strategy: str = "auto", explain: bool = False,
              agent: Optional[str] = None, agent_groups: Optional[Sequence[str]] = None,
              target_recall: Optional[float] = None, mode: Optional[str] = None,
              text: Optional[str] = None) -> Union[Hits, List[Hits]]:
        """The ``k`` nearest chunks ``principal`` may read.

        ``vector``: one embedding (1-D, dim floats) -> Hits; a 2-D matrix ->
        a list of Hits, one per row, answered from one snapshot; a str ->
        embedded by the collection's embedder.  ``principal`` (user:NAME |
        group:NAME) is required and must come from your authentication,
        never from a prompt; ``groups`` are the groups your IdP asserted.
        ``filter``: a metadata filter (dict or JSON text, Mongo or Bedrock
        dialect); ``namespaces``: namespace prefixes (None = all).
        ``min_revision``: raise StaleSnapshot if the snapshot is older.
        ``strategy``: auto | exact | ann.  ``explain``: fill Hits.plan.
        ``agent``/``agent_groups``: on-behalf-of (a chunk is returned only
        when both the principal and the agent may read it).
        ``target_recall`` in (0, 1]: the ANN recall to aim for.
        ``mode``: semantic | lexical | hybrid, with ``text`` the lexical
        query.  Fields this libwarden build does not implement are refused
        with InvalidInput."""
        g = self._guard
        qo = L.QueryOpts()
        keep: list = []
        qo.principal = _enc(principal, "principal")
        gl = _strlist(groups or [], "groups")
        qo.groups, kg = L.strarray(gl) if gl else (None, [])
        qo.ngroups = len(gl)
        if namespaces is not None:
            nl = _strlist(namespaces, "namespaces")
            qo.namespaces, kn = L.strarray(nl)
            qo.nnamespaces = len(nl)
            keep.append(kn)
        if filter is not None:
            qo.filter = (filter if isinstance(filter, str)
                         else json.dumps(filter, allow_nan=False)).encode("utf-8")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InvalidInput("query: k must be 1..10000", InvalidInput.code, "WARDEN_EINVAL")
        qo.k = min(k, 0xFFFFFFFF)
        try:
            qo.strategy = STRATEGIES[strategy]
        except KeyError:
            raise InvalidInput(f"query: strategy must be one of {sorted(STRATEGIES)}",
                               InvalidInput.code, "WARDEN_EINVAL") from None
        qo.min_revision = int(min_revision or 0)
        qo.explain = 1 if explain else 0
        if agent is not None:
            qo.agent = _enc(agent, "agent")
        if agent_groups is not None:
            al = _strlist(agent_groups, "agent_groups")
            qo.agent_groups, ka = L.strarray(al)
            qo.nagent_groups = len(al)
            keep.append(ka)
        if target_recall is not None:
            qo.target_recall = float(target_recall)
        if mode is not None:
            try:
                qo.mode = MODES[mode]
            except KeyError:
                raise InvalidInput(f"query: mode must be one of {sorted(MODES)}",
                                   InvalidInput.code, "WARDEN_EINVAL") from None
        if text is not None:
            qo.text = _enc(text, "text")
        keep.append(kg)
        res = c_void_p()
        batch = False
        if vector is None and qo.mode != MODES["semantic"]:
            # lexical, or hybrid with the text embedded by the collection's
            # embedder: the library takes the text alone (no vector)
            if text is None:
                raise InvalidInput("query: mode: lexical and hybrid need text=",
                                   InvalidInput.code, "WARDEN_EINVAL")
            g.enter()
            try:
                rc = lib.warden_query(self._db, None, 1, byref(qo), byref(res))
                if rc:
                    raise self._fail(rc)
            finally:
                g.leave()
        elif vector is None or isinstance(vector, str):
            qtext = vector if isinstance(vector, str) else text
            if qtext is None:
                raise InvalidInput("query: a vector or a text is required",
                                   InvalidInput.code, "WARDEN_EINVAL")
            g.enter()
            try:
                rc = lib.warden_query_text(self._db, qtext.encode("utf-8"), byref(qo),
                                           byref(res))
                if rc:
                    raise self._fail(rc)
            finally:
                g.leave()
        else:
            q = as_f32_rows(vector, self.dim)
            batch = q.ndim == 2
            nq = q.shape[0] if batch else 1
            g.enter()
            try:
                rc = lib.warden_query(self._db, q.ctypes.data_as(ctypes.POINTER(c_float)),
                                      nq, byref(qo), byref(res))
                if rc:
                    raise self._fail(rc)
            finally:
                g.leave()
        try:
            out = _collect(res)
        finally:
            lib.warden_results_free(res)
        return out if batch else out[0]


_DECODE = json.JSONDecoder().decode  # str in: skips json.loads' encoding sniffing


def _collect(res: c_void_p) -> List[Hits]:
    rev = lib.warden_results_revision(res)
    answers = []
    hit_at = lib.warden_results_hit
    loads = _DECODE
    for qi in range(lib.warden_results_nqueries(res)):
        n = lib.warden_results_count(res, qi)
        hits = []
        for i in range(n):
            h = hit_at(res, qi, i).contents
            md = h.metadata_json
            hits.append(Hit(h.doc_id.decode("utf-8"), h.chunk, h.score,
                            (h.text or b"").decode("utf-8"), (h.source or b"").decode("utf-8"),
                            (h.namespace_ or b"/").decode("utf-8"),
                            loads(md.decode("utf-8")) if md and md != b"{}" else {},
                            h.semantic_rank, h.lexical_rank))
        plan = lib.warden_results_plan(res, qi)
        answers.append(Hits(hits, rev, bool(lib.warden_results_degraded(res, qi)),
                            loads(plan.decode("utf-8")) if plan else None))
    return answers


def _meta_struct(m: L.Meta, key: str, v: Any, where: str, keep: list) -> None:
    kb = key.encode("utf-8")
    keep.append(kb)
    m.key = kb
    if isinstance(v, bool) or isinstance(v, np.bool_):
        m.type, m.i = L.META_BOOL, 1 if v else 0
    elif isinstance(v, (int, np.integer)):
        if not -(1 << 63) <= int(v) < (1 << 63):
            raise InvalidData(f"{where}: integer out of the 64-bit range", InvalidData.code,
                              "WARDEN_EDATA")
        m.type, m.i = L.META_INT, int(v)
    elif isinstance(v, (float, np.floating)):
        m.type, m.f = L.META_FLOAT, float(v)
    elif isinstance(v, str):
        b = v.encode("utf-8")
        keep.append(b)
        m.type, m.str = L.META_STRING, b
    elif isinstance(v, (list, tuple)):
        items = _strlist(v, where)
        arr, k = L.strarray(items)
        keep.extend((arr, k))
        m.type, m.list, m.nlist = L.META_STRING_LIST, arr, len(items)
    else:
        raise InvalidData(f"{where}: unsupported value type {type(v).__name__} "
                          "(string, int, float, bool or list of strings)",
                          InvalidData.code, "WARDEN_EDATA")


def _fill_doc(s: L.Doc, d: Mapping[str, Any], i: int, keep: list) -> None:
    """Fill one warden_doc from an ingest-line-shaped dict; every buffer the
    struct points into is appended to ``keep`` (alive for the call)."""
    def strf(name, required):
        v = d.get(name)
        if v is None:
            if required:
                raise InvalidData(f"docs[{i}].{name}: required", InvalidData.code,
                                  "WARDEN_EDATA")
            return None
        if not isinstance(v, str):
            raise InvalidData(f"docs[{i}].{name}: expected a string", InvalidData.code,
                              "WARDEN_EDATA")
        b = v.encode("utf-8")
        keep.append(b)
        return b
    known = {"doc_id", "source", "namespace", "metadata", "acl", "chunks"}
    for key in d:
        if key not in known:
            raise InvalidData(f"docs[{i}].{key}: unknown field", InvalidData.code,
                              "WARDEN_EDATA")
    s.doc_id = strf("doc_id", True)
    s.source = strf("source", True)
    s.namespace_ = strf("namespace", False)
    md = d.get("metadata") or {}
    if not isinstance(md, Mapping):
        raise InvalidData(f"docs[{i}].metadata: expected an object", InvalidData.code,
                          "WARDEN_EDATA")
    if md:
        marr = (L.Meta * len(md))()
        keep.append(marr)
        for j, (key, v) in enumerate(md.items()):
            if not isinstance(key, str):
                raise InvalidData(f"docs[{i}].metadata: keys must be strings",
                                  InvalidData.code, "WARDEN_EDATA")
            _meta_struct(marr[j], key, v, f"docs[{i}].metadata.{key}", keep)
        s.metadata, s.nmetadata = marr, len(md)
    acl = d.get("acl")
    if acl is not None:
        if not isinstance(acl, Mapping):
            raise InvalidData(f"docs[{i}].acl: expected an object", InvalidData.code,
                              "WARDEN_EDATA")
        for key in acl:
            if key not in ("allow", "deny"):
                raise InvalidData(f"docs[{i}].acl.{key}: unknown field", InvalidData.code,
                                  "WARDEN_EDATA")
        s.has_acl = 1
        for name in ("allow", "deny"):
            lst = acl.get(name) or []
            try:
                items = _strlist(lst, f"docs[{i}].acl.{name}")
            except InvalidInput as e:
                raise InvalidData(str(e), InvalidData.code, "WARDEN_EDATA") from None
            arr, k = L.strarray(items)
            keep.extend((arr, k))
            setattr(s, name, arr)
            setattr(s, "n" + name, len(items))
    texts = []
    chunks = d.get("chunks")
    if not isinstance(chunks, (list, tuple)):
        raise InvalidData(f"docs[{i}].chunks: expected a list of chunks", InvalidData.code,
                          "WARDEN_EDATA")
    for j, c in enumerate(chunks):
        t = c.get("text") if isinstance(c, Mapping) else c
        if not isinstance(t, str):
            raise InvalidData(f"docs[{i}].chunks[{j}].text: expected a string",
                              InvalidData.code, "WARDEN_EDATA")
        texts.append(t)
    arr, k = L.strarray(texts)
    keep.extend((arr, k))
    s.texts, s.nchunks = arr, len(texts)
