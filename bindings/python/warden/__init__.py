"""warden: permission-aware vector retrieval for RAG pipelines.

A thin, typed Python layer over libwarden (engine/warden.h)::

    import warden
    col = warden.Collection.create("/tmp/kb", dim=384, metric="cosine")
    rev = col.upsert([{"doc_id": "a", "source": "s3://b/a", "acl": {"allow": ["*"]},
                       "chunks": [{"text": "hello"}]}], embeddings)   # (1, 384) float32
    hits = col.query(vector, principal="user:alice", groups=["group:eng"], k=10,
                     filter={"year": {"$gte": 2024}}, namespaces=["/eng"])
    for h in hits: print(h.score, h.doc_id, h.source, h.text)

The principal always comes from your application's authentication, never
from a model's output: a query without one is refused.

Modules: ``warden.Collection`` (this one collection), ``warden.langchain``
and ``warden.llama_index`` (framework vector stores, imported on demand),
``warden.cluster`` (a collection sharded over Dask workers).
Errors are subclasses of ``warden.Error`` (one per WARDEN_E* code).
"""
from .errors import (AlreadyExists, ConfigError, Corrupt, Error, InternalError,
                     InvalidData, InvalidInput, NotFound, OutOfMemory, ResolverError,
                     StaleSnapshot, StorageError, UsedAfterFork)
from .collection import (MODES, STRATEGIES, UPSERT_PATH, Collection, Hit, Hits,
                         Resource, Revision)
from ._lib import LIBRARY_PATH

__version__ = "0.1.0"

__all__ = ["Collection", "Hit", "Hits", "Resource", "Revision", "Error",
           "InvalidInput", "InvalidData", "NotFound", "StorageError", "OutOfMemory",
           "Corrupt", "ConfigError", "StaleSnapshot", "AlreadyExists", "UsedAfterFork",
           "ResolverError", "InternalError", "LIBRARY_PATH", "UPSERT_PATH",
           "STRATEGIES", "MODES"]
