"""warden.llama_index.WardenVectorStore against the real llama_index.core
(skipped when it cannot be imported: PyPI is not reachable here)."""
import pytest

pytest.importorskip("llama_index.core")
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode  # noqa: E402
from llama_index.core.vector_stores.types import (FilterOperator, MetadataFilter,  # noqa: E402
                                                  MetadataFilters, VectorStoreQuery)

import warden  # noqa: E402
from warden.llama_index import WardenVectorStore  # noqa: E402


def node(i, ref, emb, **md):
    return TextNode(text=f"text {i}", id_=f"n{i}", embedding=emb,
                    metadata=dict(md, acl={"allow": ["*"]}),
                    relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=ref)})


def test_store(tmp_path):
    col = warden.Collection.create(tmp_path / "kb", dim=3)
    store = WardenVectorStore(collection=col, principal="user:a")
    ids = store.add([node(1, "R1", [1, 0, 0], year=2024), node(2, "R1", [0, 1, 0], year=2020),
                     node(3, "R2", [0, 0, 1], year=2024)])
    assert ids == ["n1", "n2", "n3"]
    res = store.query(VectorStoreQuery(query_embedding=[1, 0.1, 0], similarity_top_k=2))
    assert res.ids == ["n1", "n2"] and len(res.similarities) == 2
    f = MetadataFilters(filters=[MetadataFilter(key="year", value=2024,
                                                operator=FilterOperator.GTE)])
    res = store.query(VectorStoreQuery(query_embedding=[1, 0.1, 0], similarity_top_k=3,
                                       filters=f))
    assert res.ids == ["n1", "n3"]
    anon = WardenVectorStore(collection=col)
    with pytest.raises(warden.InvalidInput, match="principal"):
        anon.query(VectorStoreQuery(query_embedding=[1, 0, 0], similarity_top_k=1))
    f = MetadataFilters(filters=[MetadataFilter(key="warden_principal", value="user:b")])
    assert anon.query(VectorStoreQuery(query_embedding=[1, 0, 0], similarity_top_k=1,
                                       filters=f)).ids == ["n1"]
    store.delete("R1")
    assert store.query(VectorStoreQuery(query_embedding=[1, 0, 0], similarity_top_k=3)).ids == ["n3"]
