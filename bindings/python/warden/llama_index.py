"""warden as a LlamaIndex vector store (BasePydanticVectorStore).

    from warden.llama_index import WardenVectorStore
    store = WardenVectorStore(collection=warden.Collection("/srv/kb"),
                              principal=user.principal, groups=user.groups)
    index = VectorStoreIndex.from_vector_store(store, embed_model=...)

The principal comes from the store's construction or, per query, from the
reserved filter keys ``warden_principal`` / ``warden_groups`` of the
query's MetadataFilters (top-level AND); a query with neither raises
warden.InvalidInput.  Other MetadataFilters map to warden's filter
(== != > >= < <= in nin any contains; AND / OR, nested); an operator warden
cannot express raises instead of being dropped.

Nodes: each node is one warden document (doc_id = node_id, one chunk) whose
metadata gets ``node_id`` and ``ref_doc_id``; ``delete(ref_doc_id)``
deletes every node of that document (found by a scan of the collection's
export: O(collection), use ``delete_nodes(node_ids)`` when you know them); reserved metadata keys source / namespace / acl as in
warden.langchain.

This module needs llama-index-core; ``import warden`` does not.
"""
from __future__ import annotations

try:
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.schema import BaseNode, NodeRelationship, RelatedNodeInfo, TextNode
    from llama_index.core.vector_stores.types import (BasePydanticVectorStore,
                                                      VectorStoreQuery,
                                                      VectorStoreQueryResult)
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("warden.llama_index needs the 'llama-index-core' package "
                      "(pip install llama-index-core), which is not installed") from e

from typing import Any, List, Optional, Sequence

import numpy as np

from . import _adapt


class WardenVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store over one warden.Collection."""

    stores_text: bool = True
    is_embedding_query: bool = True
    principal: Optional[str] = None
    groups: List[str] = []
    namespaces: Optional[List[str]] = None
    _col: Any = PrivateAttr()

    def __init__(self, collection: Any, principal: Optional[str] = None,
                 groups: Optional[List[str]] = None,
                 namespaces: Optional[List[str]] = None, **kwargs: Any):
        super().__init__(principal=principal, groups=list(groups or []),
                         namespaces=namespaces, **kwargs)
        self._col = collection

    @property
    def client(self) -> Any:
        return self._col

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> List[str]:
        texts, metas, ids, rows = [], [], [], []
        for n in nodes:
            md = dict(n.metadata or {})
            md["node_id"] = n.node_id
            if n.ref_doc_id:
                md["ref_doc_id"] = n.ref_doc_id
            texts.append(n.get_content())
            metas.append(md)
            ids.append(n.node_id)
            rows.append(n.get_embedding())
        docs, out = _adapt.texts_to_documents(texts, metas, ids, kwargs.get("acl"))
        if docs:
            self._col.upsert(docs, np.asarray(rows, dtype=np.float32))
        return out

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        self._col.delete(_adapt.doc_ids_where(self._col, "ref_doc_id", ref_doc_id))

    def delete_nodes(self, node_ids: Optional[List[str]] = None, filters: Any = None,
                     **delete_kwargs: Any) -> None:
        if filters is not None or node_ids is None:
            raise NotImplementedError("WardenVectorStore.delete_nodes: by node_ids only")
        self._col.delete(list(node_ids))

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        flt, principal, groups = _adapt.filters_to_warden(query.filters)
        principal, groups = _adapt.filter_identity(principal, groups, self.principal,
                                                   self.groups, "WardenVectorStore.query")
        _adapt.require_principal({"principal": principal}, "WardenVectorStore.query")
        if query.doc_ids or query.node_ids:
            only = ({"node_id": {"$in": list(query.node_ids)}} if query.node_ids
                    else {"ref_doc_id": {"$in": list(query.doc_ids)}})
            flt = {"$and": [flt, only]} if flt else only
        hits = self._col.query(query.query_embedding, principal=principal, groups=groups,
                               k=query.similarity_top_k or 1, filter=flt,
                               namespaces=self.namespaces)
        nodes = [TextNode(text=h.text, id_=h.doc_id, metadata=_adapt.hit_metadata(h),
                          relationships=({NodeRelationship.SOURCE: RelatedNodeInfo(
                              node_id=h.metadata["ref_doc_id"])}
                              if "ref_doc_id" in h.metadata else {}))
                 for h in hits]
        return VectorStoreQueryResult(nodes=nodes, similarities=[h.score for h in hits],
                                      ids=[h.doc_id for h in hits])
