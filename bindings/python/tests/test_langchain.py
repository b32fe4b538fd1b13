"""warden.langchain.WardenVectorStore against the real langchain_core
(skipped when it cannot be imported: PyPI is not reachable here)."""
import numpy as np
import pytest

pytest.importorskip("langchain_core")
from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402

import warden  # noqa: E402
from warden.langchain import WardenVectorStore  # noqa: E402


class HashEmb(Embeddings):
    def embed_documents(self, texts):
        out = np.zeros((len(texts), 8), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, sum(map(ord, w)) % 8] += 1
            out[i, 7] += 0.01
        return out.tolist()

    def embed_query(self, text):
        return self.embed_documents([text])[0]


def test_store_and_retriever(tmp_path):
    store = WardenVectorStore.from_texts(
        ["shield charm protego", "light charm lumos"], HashEmb(),
        [{"acl": {"allow": ["group:year4"], "deny": ["user:draco"]}, "source": "s3://h/p"},
         {"acl": {"allow": ["*"]}}], ids=["protego", "lumos"], path=str(tmp_path / "kb"))
    with pytest.raises(warden.InvalidInput, match="principal"):
        store.similarity_search("shield")
    with pytest.raises(warden.InvalidInput, match="principal"):
        store.as_retriever()
    r = store.as_retriever(search_kwargs={"principal": "user:harry", "groups": ["group:year4"],
                                          "k": 2})
    docs = r.invoke("shield charm")
    assert isinstance(docs[0], Document) and docs[0].id == "protego"
    assert docs[0].metadata["source"] == "s3://h/p"
    draco = store.as_retriever(search_kwargs={"principal": "user:draco",
                                              "groups": ["group:year4"]})
    assert [d.id for d in draco.invoke("shield charm")] == ["lumos"]
    scored = store.similarity_search_with_score("lumos", k=1, principal="user:x")
    assert scored[0][0].id == "lumos" and isinstance(scored[0][1], float)
    by_vec = store.similarity_search_by_vector(HashEmb().embed_query("lumos"), k=1,
                                               principal="user:x")
    assert by_vec[0].id == "lumos"
    store.add_documents([Document(page_content="new text", metadata={"acl": {"allow": ["*"]}},
                                  id="n1")])
    assert store.delete(["n1", "lumos"])
    assert store.similarity_search("lumos", k=5, principal="user:x") == []
