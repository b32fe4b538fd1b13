"""warden as a LangChain VectorStore (langchain_core.vectorstores.VectorStore).

    from warden.langchain import WardenVectorStore
    store = WardenVectorStore(warden.Collection("/srv/kb"), embedding=my_embeddings)
    retriever = store.as_retriever(search_kwargs={"principal": user.principal,
                                                  "groups": user.groups, "k": 5})
    docs = retriever.invoke("how do I rotate the signing key?")

The principal and groups are bound where the retriever is made, by your
trusted code, from your authentication -- never from a prompt.  A search
without a principal raises warden.InvalidInput (never "everyone").
Document.id is the warden doc_id; Document.metadata holds the document's
metadata plus doc_id, chunk, source and namespace.  add_texts/add_documents
take the reserved metadata keys source, namespace and acl (see
warden._adapt), or ``acl=`` for every text.

This module needs langchain-core; ``import warden`` does not.
"""
from __future__ import annotations

try:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("warden.langchain needs the 'langchain-core' package "
                      "(pip install langchain-core), which is not installed") from e

from typing import Any, Callable, Iterable, List, Optional, Tuple

from . import _adapt
from .collection import Collection


class WardenVectorStore(VectorStore):
    """A LangChain VectorStore over one warden.Collection (or anything with
    its query/upsert/delete, e.g. warden.cluster.ShardedCollection)."""

    def __init__(self, collection: Collection, embedding: Embeddings, **search_defaults: Any):
        self.collection = collection
        self._embedding = embedding
        self._defaults = search_defaults  # e.g. k=, filter= bound for every search

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    # ---- writes
    def add_texts(self, texts: Iterable[str], metadatas: Optional[List[dict]] = None, *,
                  ids: Optional[List[str]] = None, acl: Optional[dict] = None,
                  **kwargs: Any) -> List[str]:
        return _adapt.add_documents(self.collection, list(texts), metadatas, ids,
                                    self._embedding.embed_documents, acl)

    def add_documents(self, documents: List[Document], **kwargs: Any) -> List[str]:
        ids = kwargs.pop("ids", None) or [getattr(d, "id", None) for d in documents]
        return self.add_texts([d.page_content for d in documents],
                              [d.metadata for d in documents], ids=ids, **kwargs)

    def delete(self, ids: Optional[List[str]] = None, **kwargs: Any) -> Optional[bool]:
        if ids is None:
            raise ValueError("WardenVectorStore.delete: name the ids (deleting everything "
                             "is not supported)")
        self.collection.delete(list(ids))
        return True

    @classmethod
    def from_texts(cls, texts: List[str], embedding: Embeddings,
                   metadatas: Optional[List[dict]] = None, *, ids: Optional[List[str]] = None,
                   collection: Optional[Collection] = None, path: Optional[str] = None,
                   acl: Optional[dict] = None, **kwargs: Any) -> "WardenVectorStore":
        """A store over ``collection`` (or a new one created at ``path`` with
        the embedding's dimension), with the texts added."""
        if collection is None:
            if path is None:
                raise ValueError("from_texts: give collection= or path=")
            dim = len(embedding.embed_query(texts[0] if texts else "x"))
            collection = Collection.create(path, dim=dim, metric=kwargs.pop("metric", "cosine"))
        store = cls(collection, embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids, acl=acl)
        return store

    # ---- searches
    def _search(self, vector, k, kwargs) -> List[Tuple[Document, float]]:
        args = _adapt.search_args(_adapt.bound_merge(self._defaults, kwargs, "WardenVectorStore search"),
                                  "WardenVectorStore search")
        args.setdefault("k", k)
        k = args.pop("k")
        hits = self.collection.query(vector, k=k, **args)
        return [(Document(page_content=h.text, metadata=_adapt.hit_metadata(h), id=h.doc_id),
                 h.score) for h in hits]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> List[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def similarity_search_with_score(self, query: str, k: int = 4,
                                     **kwargs: Any) -> List[Tuple[Document, float]]:
        _adapt.require_principal(_adapt.bound_merge(self._defaults, kwargs, "similarity_search"),
                                 "similarity_search")
        return self._search(self._embedding.embed_query(query), k, kwargs)

    def similarity_search_by_vector(self, embedding: List[float], k: int = 4,
                                    **kwargs: Any) -> List[Document]:
        return [d for d, _ in self._search(embedding, k, kwargs)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        metric = getattr(self.collection, "metric", "cosine")
        return lambda s: _adapt.relevance(s, metric)

    def as_retriever(self, **kwargs: Any):
        """A VectorStoreRetriever; ``search_kwargs`` must bind the principal
        (and groups) now, so every later call is made as them."""
        sk = _adapt.bound_merge(self._defaults, kwargs.get("search_kwargs") or {}, "as_retriever")
        _adapt.require_principal(sk, "as_retriever(search_kwargs=...)")
        return super().as_retriever(**kwargs)
